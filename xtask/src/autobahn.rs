//! `cargo xtask autobahn`: the Autobahn|Testsuite (RFC 6455 conformance) against our bench
//! server's `/echo` and `/fanout` routes.
//!
//! The suite lives outside the repository (`../shared/autobahn`, or `$AUTOBAHN_DIR`): its
//! `run.sh` installs it into a virtual environment (here `target/autobahn-venv`) and prints a
//! one-line summary. Reports go to `target/autobahn/<route>/index.html`. Every case of
//! sections 1–10 must pass (FAILED = 0); compression (12.*, 13.*) is excluded until
//! permessage-deflate exists. `docs/conformance.md` explains the non-OK behaviours we accept.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::test::{env_or, run_cmd, workspace_root};

/// The routes the suite runs against, each a separate run and report.
const ROUTES: [&str; 2] = ["echo", "fanout"];

pub(crate) fn run(_args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let Some(suite) = suite_dir(&root) else {
        let msg = "the Autobahn suite was not found (set AUTOBAHN_DIR, or keep ../shared/autobahn beside the repository)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err(msg.into());
        }
        eprintln!("xtask autobahn: SKIPPED: {msg}");
        return Ok(());
    };
    run_cmd(
        Command::new(env_or("CARGO", "cargo"))
            .current_dir(&root)
            .args([
                "build",
                "--release",
                "-p",
                "examples",
                "--example",
                "bench_server",
            ]),
    )?;
    let server_bin = root.join("target/release/examples/bench_server");
    let port = free_port()?;
    let mut server = Server::start(&server_bin, port)?;
    let mut failures = Vec::new();
    for route in ROUTES {
        let out = root.join("target/autobahn").join(route);
        let url = format!("ws://127.0.0.1:{port}/{route}");
        eprintln!("xtask autobahn: {url} (report: {})", out.display());
        let status = Command::new(suite.join("run.sh"))
            .args([
                "--no-compression",
                "--agent",
                &format!("armature-{route}"),
                "--out",
            ])
            .arg(&out)
            .arg(&url)
            .env("AUTOBAHN_VENV", root.join("target/autobahn-venv"))
            .status()
            .map_err(|e| format!("cannot run {}: {e}", suite.join("run.sh").display()))?;
        if !status.success() {
            failures.push(format!("/{route}: run.sh exited with {status}"));
        } else if let Err(unexpected) = check_report(&out) {
            failures.push(format!("/{route}: {unexpected}"));
        }
        if !server.alive() {
            failures.push(format!("the bench server died during the /{route} run"));
            break;
        }
    }
    server.stop();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("autobahn: {}", failures.join("; ")))
    }
}

/// Behaviours other than OK that we accept, case by case, each explained in
/// `docs/conformance.md`. Anything else that is not OK fails the run.
const ACCEPTED: [(&str, &str); 3] = [
    ("7.1.6", "INFORMATIONAL"),
    ("7.13.1", "INFORMATIONAL"),
    ("7.13.2", "INFORMATIONAL"),
];

/// Reads `index.json` and lists every case whose behaviour is neither OK nor accepted.
fn check_report(dir: &Path) -> Result<(), String> {
    let path = dir.join("index.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let index: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut unexpected = Vec::new();
    let agents = index.as_object().into_iter().flat_map(|a| a.values());
    for cases in agents.filter_map(|c| c.as_object()) {
        for (id, result) in cases {
            let behavior = result["behavior"].as_str().unwrap_or("?");
            let accepted = behavior == "OK" || ACCEPTED.contains(&(id.as_str(), behavior));
            if !accepted {
                unexpected.push(format!("{id}={behavior}"));
            }
        }
    }
    if unexpected.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "cases not OK and not accepted in docs/conformance.md: {}",
            unexpected.join(", ")
        ))
    }
}

fn suite_dir(root: &Path) -> Option<PathBuf> {
    let candidate = std::env::var_os("AUTOBAHN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/autobahn"));
    candidate.join("run.sh").exists().then_some(candidate)
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// A bench server child process, killed on drop.
pub(crate) struct Server(Child);

impl Server {
    /// Starts `bin PORT` and waits until it accepts connections.
    pub(crate) fn start(bin: &Path, port: u16) -> Result<Server, String> {
        let child = Command::new(bin)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut server = Server(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if !server.alive() || Instant::now() > deadline {
                server.stop();
                return Err(format!(
                    "{} did not start listening on {addr}",
                    bin.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
