//! Project automation: `cargo xtask <task>`.
//!
//! - `cargo xtask test`: everything the README's test command promises (see `test.rs`).
//! - `cargo xtask autobahn`: the Autobahn conformance suite against the bench server.
//! - `cargo xtask browser`: the demo page in headless Chromium.
//! - `cargo xtask fuzz [--seconds N]`: every fuzz target for a bounded time.
//! - `cargo xtask bench`: end-to-end benchmarks against the peers (see `bench.rs`).
//! - `cargo xtask asyncapi`: rewrites the demo's typed chat AsyncAPI document and client
//!   (`examples/static/generated/`, see `asyncapi.rs`).

mod asyncapi;
mod autobahn;
mod bench;
mod browser;
mod fuzz;
mod test;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("test") => test::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("autobahn") => autobahn::run(&rest),
        Some("browser") => browser::run(&rest),
        Some("fuzz") => fuzz::run(&rest),
        Some("asyncapi") => asyncapi::run(&rest),
        _ => {
            eprintln!("usage: cargo xtask <test|autobahn|browser|fuzz|bench|asyncapi> [options]");
            eprintln!("  test   run the whole test suite (what CI runs)");
            eprintln!(
                "  autobahn  the Autobahn conformance suite against the bench server (--compression: 12.*/13.* too)"
            );
            eprintln!("  browser  the demo page in headless Chromium");
            eprintln!("  fuzz [--seconds N]  every fuzz target for N seconds (default 60)");
            eprintln!("  bench  end-to-end benchmarks against the peers");
            eprintln!(
                "  asyncapi  rewrite examples/static/generated/ (AsyncAPI document, TS/JS client)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}
