//! `cargo xtask test`: the README's test command.
//!
//! Prepares what the tests need that cargo does not fetch (a Python virtual environment with
//! the `websockets` package, for the interoperability test; the npm GraphQL clients), runs the workspace's tests and
//! doc tests, the demo page in headless Chromium (`browser.rs`), then the Autobahn
//! conformance suite (`autobahn.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let python = python_env(&root)?;
    graphql_node_clients(&root)?;
    crate::asyncapi::node_tools(&root)?;
    ws_node_client(&root)?;
    let mut cargo = Command::new(env_or("CARGO", "cargo"));
    cargo
        .current_dir(&root)
        .args(["test", "--workspace", "--all-targets"])
        .args(args)
        .env("ARMATURE_PYTHON", &python);
    run_cmd(&mut cargo)?;
    let mut doc = Command::new(env_or("CARGO", "cargo"));
    doc.current_dir(&root)
        .args(["test", "--workspace", "--doc"]);
    run_cmd(&mut doc)?;
    crate::browser::run(&[])?;
    crate::autobahn::run(&[])
}

/// The npm GraphQL clients (`graphql-ws`, `subscriptions-transport-ws`, `graphql-sse`) the
/// tests of armature-realtime-graphql run against our server, installed from their lock
/// file into the test's own folder.
fn graphql_node_clients(root: &Path) -> Result<(), String> {
    let dir = root.join("crates/armature-realtime-graphql/tests/node");
    if dir.join("node_modules/graphql-ws").exists()
        && dir.join("node_modules/graphql-sse").exists()
        && dir.join("node_modules/subscriptions-transport-ws").exists()
    {
        return Ok(());
    }
    eprintln!("xtask: npm ci in {} (GraphQL clients)", dir.display());
    run_cmd(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir),
    )
}

/// The npm `ws` client that armature-ws's permessage-deflate test (`tests/node_deflate.rs`)
/// runs against our server, installed from its lock file into the test's own folder.
fn ws_node_client(root: &Path) -> Result<(), String> {
    let dir = root.join("crates/armature-ws/tests/node");
    if dir.join("node_modules/ws").exists() {
        return Ok(());
    }
    eprintln!("xtask: npm ci in {} (the ws client)", dir.display());
    run_cmd(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir),
    )
}

/// A virtual environment under `target/py` with the Python packages the tests use.
fn python_env(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join("target").join("py");
    let python = venv.join("bin").join("python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import websockets"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !ready {
        eprintln!(
            "xtask: preparing {} (python3 -m venv, pip install websockets)",
            venv.display()
        );
        run_cmd(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run_cmd(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg("websockets==15.0.1"),
        )?;
    }
    Ok(python)
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the workspace
/// root), else `target/` of the workspace.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"))
}

pub(crate) fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

pub(crate) fn run_cmd(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}
