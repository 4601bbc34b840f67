//! Placeholder: the read path bench lands with it.
fn main() {}
