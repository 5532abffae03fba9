//! The fastwebsockets peer server for `cargo xtask bench`: `peer_fastwebsockets PORT` (or `PORT=…`), with
//! `WORKERS` runtime threads (default 1). See [`benches::peer::fastws`].

fn main() -> std::io::Result<()> {
    benches::peer::main_with("peer_fastwebsockets", benches::peer::fastws::serve)
}
