//! Import benchmark (written next).
fn main() {}
