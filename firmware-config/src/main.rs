//! nguon-provision binary.
fn main() {}
