//! `cargo xtask bench`: end-to-end benchmarks (being built; see the issue tracker).

pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    Err("the end-to-end bench is not built yet; run `cargo bench -p benches` for the micro-benchmarks".into())
}
