//! The two-node Redis scenario of `cargo xtask bench`: the `fanout` example of
//! `armature-realtime-redis` (nodes A and B, real WebSocket clients on B), once against one
//! `redis-server` and once against a 3-primary Redis Cluster, each run printing single-node,
//! cross-node volatile and cross-node durable fan-out (deliveries/s, latency p50/p99) measured
//! in the same run. See `docs/redis.md`.

use std::process::Command;

use super::process::Paths;

/// Builds and runs the scenario; returns its report (also written to
/// `target/bench-report/redis-fanout.txt`). `Err` is a reason to skip it.
pub(crate) fn run(paths: &Paths, quick: bool) -> Result<String, String> {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("redis-server is not installed".into());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&paths.root)
        .args([
            "build",
            "--release",
            "-p",
            "armature-realtime-redis",
            "--example",
            "fanout",
        ])
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err("cargo build --example fanout failed".into());
    }
    let bin = paths.target.join("release").join("examples").join("fanout");
    let counts: [&str; 2] = if quick {
        ["200", "200"]
    } else {
        ["1000", "1000"]
    };
    let mut report = String::new();
    for cluster in [false, true] {
        let mut cmd = Command::new(&bin);
        cmd.args(counts);
        if cluster {
            cmd.arg("--cluster");
        }
        cmd.env_remove("REDIS_URL");
        let out = cmd
            .output()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "fanout{} failed: {}",
                if cluster { " --cluster" } else { "" },
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        report.push_str(&String::from_utf8_lossy(&out.stdout));
        report.push('\n');
    }
    let _ = std::fs::create_dir_all(&paths.report);
    let _ = std::fs::write(paths.report.join("redis-fanout.txt"), &report);
    Ok(report)
}
