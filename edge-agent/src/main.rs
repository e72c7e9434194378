//! nguon-agent binary.
fn main() {}
