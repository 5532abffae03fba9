//! The axum peer server for `cargo xtask bench`: `peer_axum PORT` (or `PORT=…`), with
//! `WORKERS` runtime threads (default 1). See [`benches::peer::axum_peer`].

fn main() -> std::io::Result<()> {
    benches::peer::main_with("peer_axum", benches::peer::axum_peer::serve)
}
