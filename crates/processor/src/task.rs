//! One pipeline on one input partition, exactly once. Placeholder: filled in next.
