//! Helpers shared by the examples (`cargo run -p examples --example NAME`).

/// The port an example listens on: the first argument, else `PORT`, else `default`.
pub fn port_from_env(default: u16) -> u16 {
    std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}
