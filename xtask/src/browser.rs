//! `cargo xtask browser`: the demo page in headless Chromium
//! (`crates/armature-realtime/tests/browser/demo.cjs`, driven by playwright-core).
//!
//! Needs Node.js with npm and a Chromium (`CHROMIUM`, default `/usr/bin/chromium`; Debian's
//! package `chromium`, which `.ci/run` installs). playwright-core is installed with npm into
//! the test's own folder; it downloads no browser. The screenshot of the page is saved as
//! `target/demo-screenshot.png`.

use std::path::Path;
use std::process::Command;

use crate::test::{env_or, run_cmd, workspace_root};

pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let chromium = env_or("CHROMIUM", "/usr/bin/chromium");
    let missing = [
        (!Path::new(&chromium).exists())
            .then(|| format!("no Chromium at {chromium} (apt-get install chromium)")),
        which("node")
            .is_none()
            .then(|| "no node on PATH".to_owned()),
        which("npm").is_none().then(|| "no npm on PATH".to_owned()),
    ];
    let missing: Vec<String> = missing.into_iter().flatten().collect();
    if !missing.is_empty() {
        let msg = format!("the browser test needs: {}", missing.join(", "));
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err(msg);
        }
        eprintln!("xtask browser: SKIPPED: {msg}");
        return Ok(());
    }
    let dir = root.join("crates/armature-realtime/tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        run_cmd(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir),
        )?;
    }
    run_cmd(
        Command::new(env_or("CARGO", "cargo"))
            .current_dir(&root)
            .args(["build", "-p", "examples", "--example", "demo"]),
    )?;
    run_cmd(
        Command::new("node")
            .arg(dir.join("demo.cjs"))
            .arg(crate::test::target_dir(&root).join("debug/examples/demo"))
            .arg(crate::test::target_dir(&root).join("demo-screenshot.png"))
            .env("NODE_PATH", dir.join("node_modules"))
            .env("CHROMIUM", &chromium),
    )
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}
