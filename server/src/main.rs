//! nguon-server binary.
fn main() {}
