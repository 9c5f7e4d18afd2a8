//! verdict binary entry point.
fn main() {}
