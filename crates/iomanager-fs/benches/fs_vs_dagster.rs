//! Benchmarks of the filesystem backend against Dagster (being written).
fn main() {}
