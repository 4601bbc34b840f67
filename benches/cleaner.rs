//! Placeholder: the log cleaner bench lands with compaction.
fn main() {}
