//! Processes: building the binaries, preparing the Node peer, starting a server pinned to
//! one core and the generator pinned to the other, with every wait bounded.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::catalog::{Launch, Server};

/// Where things are.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    /// The workspace root.
    pub(crate) root: PathBuf,
    /// Cargo's target directory (`CARGO_TARGET_DIR` or `ROOT/target`).
    pub(crate) target: PathBuf,
    /// `target/bench-report` under the workspace root.
    pub(crate) report: PathBuf,
}

impl Paths {
    pub(crate) fn discover() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .map(|t| if t.is_absolute() { t } else { root.join(t) })
            .unwrap_or_else(|| root.join("target"));
        let report = root.join("target").join("bench-report");
        Self {
            root,
            target,
            report,
        }
    }

    fn release(&self, name: &str) -> PathBuf {
        self.target.join("release").join(name)
    }

    fn uws_dir(&self) -> PathBuf {
        self.root.join("benches").join("peers").join("uws")
    }
}

/// Runs a command to completion; on failure, the error carries the tail of its stderr.
fn run_quiet(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(6)
        .collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "{what} failed ({}): {}",
        out.status,
        tail.join(" / ")
    ))
}

fn cargo(paths: &Paths) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&paths.root);
    cmd
}

/// Builds the generator and the Rust peers (`cargo build --release -p benches --bins`).
pub(crate) fn build_benches(paths: &Paths) -> Result<(), String> {
    run_quiet(
        cargo(paths).args(["build", "--release", "-p", "benches", "--bins"]),
        "cargo build --release -p benches --bins",
    )
}

/// Builds whatever `server` needs; `Err` is the reason to skip it.
pub(crate) fn prepare(paths: &Paths, server: &Server) -> Result<(), String> {
    match server.launch {
        Launch::BenchesBin(bin) => {
            let path = paths.release(bin);
            if path.exists() {
                Ok(())
            } else {
                Err(format!("{} was not built", path.display()))
            }
        }
        Launch::OurExample => {
            if !paths
                .root
                .join("examples/examples/bench_server.rs")
                .exists()
            {
                return Err("examples/examples/bench_server.rs does not exist yet".into());
            }
            run_quiet(
                cargo(paths).args([
                    "build",
                    "--release",
                    "-p",
                    "examples",
                    "--example",
                    "bench_server",
                ]),
                "cargo build --release -p examples --example bench_server",
            )
        }
        Launch::NodeUws => prepare_uws(paths),
    }
}

fn prepare_uws(paths: &Paths) -> Result<(), String> {
    let dir = paths.uws_dir();
    let version = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("node is not installed ({e})"))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    if !version.starts_with("v20.") {
        return Err(format!(
            "the uWebSockets.js build is for Node 20; found node {version}"
        ));
    }
    if !dir
        .join("node_modules/@trufflesuite/uws-js-unofficial")
        .exists()
    {
        eprintln!("bench: npm ci in {} (uWebSockets.js)", dir.display());
        run_quiet(
            Command::new("npm")
                .current_dir(&dir)
                .args(["ci", "--no-audit", "--no-fund"]),
            "npm ci (benches/peers/uws)",
        )?;
    }
    run_quiet(
        Command::new("node")
            .current_dir(&dir)
            .args(["-e", "require('@trufflesuite/uws-js-unofficial')"]),
        "loading uWebSockets.js in node",
    )
}

/// CPU pinning with `taskset`, if it exists and the machine has two cores or more.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pinning {
    /// Whether `taskset` is used.
    pub(crate) enabled: bool,
}

impl Pinning {
    pub(crate) fn detect() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let taskset = Command::new("taskset")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Self {
            enabled: taskset && cores >= 2,
        }
    }

    /// A command for `program`, pinned to `core` when pinning is on.
    fn command(&self, core: u8, program: &Path) -> Command {
        if self.enabled {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(core.to_string()).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }
}

/// A running server; killed when dropped.
#[derive(Debug)]
pub(crate) struct RunningServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub(crate) port: u16,
}

impl RunningServer {
    /// The server's pid (taskset execs the program, so it is the same process).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Starts `server` on core 0 with `WORKERS=1` (and `COMPRESSION=shared` when
/// `compressed`), logging its stderr to `log`, and waits (at most 15 s) until it accepts
/// connections.
pub(crate) fn start_server(
    paths: &Paths,
    pinning: Pinning,
    server: &Server,
    log: &Path,
    compressed: bool,
) -> Result<RunningServer, String> {
    let port = free_port()?;
    let mut cmd = match server.launch {
        Launch::BenchesBin(bin) => pinning.command(0, &paths.release(bin)),
        Launch::OurExample => pinning.command(0, &paths.release("examples/bench_server")),
        Launch::NodeUws => {
            let mut cmd = pinning.command(0, Path::new("node"));
            cmd.arg(paths.uws_dir().join("server.js"));
            cmd
        }
    };
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
    cmd.arg(port.to_string())
        .env("PORT", port.to_string())
        .env("WORKERS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file);
    if compressed {
        cmd.env("COMPRESSION", "shared");
    } else {
        cmd.env_remove("COMPRESSION");
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.id))?;
    let mut running = RunningServer { child, port };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = running.child.try_wait() {
            return Err(format!(
                "{} exited at start ({status}); see {}",
                server.id,
                log.display()
            ));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(running);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not listen on port {port} within 15 s",
                server.id
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the generator on core 1 against `server` with `args`; returns its stdout (one JSON
/// object). Killed after `timeout`.
pub(crate) fn run_loadgen(
    paths: &Paths,
    pinning: Pinning,
    server: &RunningServer,
    args: &[&str],
    timeout: Duration,
) -> Result<String, String> {
    let mut cmd = pinning.command(1, &paths.release("loadgen"));
    cmd.args(args)
        .arg("--addr")
        .arg(format!("127.0.0.1:{}", server.port))
        .arg("--server-pid")
        .arg(server.pid().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start loadgen: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no loadgen stdout")?;
    let mut stderr = child.stderr.take().ok_or("no loadgen stderr")?;
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for loadgen: {e}")),
        }
    };
    let out = out_reader.join().unwrap_or_default();
    let err = err_reader.join().unwrap_or_default();
    match status {
        None => Err(format!("loadgen killed after {} s", timeout.as_secs())),
        Some(s) if s.success() => Ok(out),
        Some(s) => {
            let msg = err
                .lines()
                .find(|l| l.starts_with("loadgen:"))
                .unwrap_or(err.trim());
            Err(format!(
                "loadgen failed ({s}): {}",
                msg.trim_start_matches("loadgen: ")
            ))
        }
    }
}
