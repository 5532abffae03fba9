//! The tungstenite peer server for `cargo xtask bench`: `peer_tungstenite PORT` (or `PORT=…`), with
//! `WORKERS` runtime threads (default 1). See [`benches::peer::tungstenite`].

fn main() -> std::io::Result<()> {
    benches::peer::main_with("peer_tungstenite", benches::peer::tungstenite::serve)
}
