//! Support code for the benchmarks.
//!
//! - `benches/`: criterion micro-benchmarks (`cargo bench -p benches`).
//! - [`peer`]: the peer servers `cargo xtask bench` compares us with (binaries
//!   `peer_tungstenite`, `peer_axum`, `peer_fastwebsockets`; the uWebSockets peer is Node
//!   code in `benches/peers/uws/`).
//! - [`loadgen`]: the load generator (binary `loadgen`) that drives every server through
//!   `../shared/bench/PROTOCOL.md` and reports what it measured as JSON.
//!
//! See `docs/benchmarks.md` for how to run them and what each scenario measures.

pub mod loadgen;
pub mod peer;
