//! Gateway overhead over a fast testkit upstream (filled in below).
fn main() {}
