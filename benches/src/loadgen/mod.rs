//! The load generator of `cargo xtask bench` (`src/bin/loadgen.rs` is its command line).
//!
//! Measuring code (payload stamps, percentiles, delivery ledgers, client framing) is kept
//! apart from the sockets and tested on its own; the scenario modules drive sockets with it.

pub mod cli;
pub mod common;
pub mod deflate;
pub mod delivery;
pub mod echo;
pub mod fanout;
pub mod idle;
pub mod payload;
pub mod sse_client;
pub mod stats;
pub mod system;
pub mod wire;
pub mod ws_client;
