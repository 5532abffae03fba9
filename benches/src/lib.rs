//! Support code for the benchmarks: micro-benchmarks live in `benches/`, and the peer servers
//! and load generator of `cargo xtask bench` are added here.
