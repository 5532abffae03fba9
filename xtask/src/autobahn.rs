//! `cargo xtask autobahn`: the Autobahn|Testsuite (RFC 6455 conformance) against our bench
//! server's `/echo` and `/fanout` routes.
//!
//! The suite lives outside the repository (`../shared/autobahn`, or `$AUTOBAHN_DIR`): its
//! `run.sh` installs it into a virtual environment (here `target/autobahn-venv`) and prints a
//! one-line summary. Reports go to `$CARGO_TARGET_DIR/autobahn/<route>[-<group>]/index.html`.
//! Every case must be OK or accepted. The server runs with `COMPRESSION=shared`; by default
//! (and so in `cargo xtask test` and CI) both routes run all 517 cases, the 216
//! permessage-deflate cases (12.*, 13.*) included (`--compression` says the same);
//! `AUTOBAHN_COMPRESSION=echo` runs the compression cases on `/echo` only (quicker),
//! `--no-compression` only sections 1–10 on both. Cases run in fuzzingclient slices
//! (sections 1–10, then each 12.x and 13.x group), `AUTOBAHN_JOBS` at a time (3 by
//! default); each `/fanout` slice gets a server of its own, since all `/fanout`
//! connections of one server share a room. `docs/conformance.md` explains the non-OK
//! behaviours we accept.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::test::{env_or, run_cmd, workspace_root};

/// The routes the suite runs against, each a separate run and report.
const ROUTES: [&str; 2] = ["echo", "fanout"];

/// The permessage-deflate case groups, each run as its own fuzzingclient slice so that
/// several run at once (a compression case takes seconds, most of it in the Python client).
const COMPRESSION_GROUPS: [&str; 12] = [
    "12.1.*", "12.2.*", "12.3.*", "12.4.*", "12.5.*", "13.1.*", "13.2.*", "13.3.*", "13.4.*",
    "13.5.*", "13.6.*", "13.7.*",
];

/// Cases per route: sections 1–10, and with them 12.* and 13.*.
const CASES_WITHOUT_COMPRESSION: usize = 301;
const CASES_WITH_COMPRESSION: usize = 517;

/// One fuzzingclient process: a route and a slice of the case list.
struct Slice {
    route: &'static str,
    name: String,
    cases: String,
    no_compression: bool,
}

/// Which routes run the permessage-deflate cases (12.*, 13.*).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    /// `--no-compression`: sections 1–10 only, on both routes.
    Off,
    /// `AUTOBAHN_COMPRESSION=echo`: the compression cases on `/echo`; sections 1–10 on both.
    Echo,
    /// The default (and CI's), or `--compression`: all 517 cases on both routes.
    Both,
}

impl Compression {
    fn on(self, route: &str) -> bool {
        match self {
            Compression::Off => false,
            Compression::Echo => route == "echo",
            Compression::Both => true,
        }
    }
}

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mode = if args.iter().any(|a| a == "--no-compression") {
        Compression::Off
    } else if !args.iter().any(|a| a == "--compression")
        && std::env::var("AUTOBAHN_COMPRESSION").is_ok_and(|v| v == "echo")
    {
        Compression::Echo
    } else {
        Compression::Both
    };
    let compression = mode != Compression::Off;
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
    let target = crate::test::target_dir(&root);
    let server_bin = target.join("release/examples/bench_server");
    // One server for every /echo slice; each /fanout slice gets a server of its own, since
    // all /fanout connections of a server share one room and concurrent slices would see
    // each other's broadcasts.
    // The suite's virtual environment, made once before any slice starts (slices that
    // each found it missing would make it at once and break each other's copy).
    run_cmd(
        Command::new(suite.join("setup.sh")).env("AUTOBAHN_VENV", target.join("autobahn-venv")),
    )?;
    // AUTOBAHN_ROUTES=echo or =fanout runs one route (to rerun it alone).
    let only = std::env::var("AUTOBAHN_ROUTES").ok();
    let routes: Vec<&'static str> = ROUTES
        .into_iter()
        .filter(|r| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|x| x == *r))
        })
        .collect();
    let port = free_port()?;
    let mut server = Server::start(&server_bin, port, compression)?;
    let mut slices = Vec::new();
    // Sections 1–10 of both routes first (the longest slices), then the compression groups.
    for &route in &routes {
        slices.push(Slice {
            route,
            name: "base".into(),
            cases: "*".into(),
            no_compression: true,
        });
    }
    for &route in &routes {
        if mode.on(route) {
            for group in COMPRESSION_GROUPS {
                slices.push(Slice {
                    route,
                    name: group.trim_end_matches(".*").into(),
                    cases: group.into(),
                    no_compression: false,
                });
            }
        }
    }
    // Slices several at a time (the Python client is the slow side, and each /fanout slice
    // has its own server); without compression the slices run one after the other.
    let default_jobs = if compression { "3" } else { "1" };
    let jobs: usize = env_or("AUTOBAHN_JOBS", default_jobs)
        .parse()
        .map_err(|e| format!("AUTOBAHN_JOBS: {e}"))?;
    let jobs = jobs.max(1);
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    // A running slice: its index, its run.sh, and its own server for a /fanout slice.
    let mut running: Vec<(usize, Child, Option<Server>)> = Vec::new();
    let mut pending: Vec<usize> = (0..slices.len()).collect();
    while !pending.is_empty() || !running.is_empty() {
        while running.len() < jobs && !pending.is_empty() {
            let next = pending.remove(0);
            let slice = &slices[next];
            let out = report_dir(&target, slice);
            let own_server = if slice.route == "fanout" {
                let p = free_port()?;
                Some((p, Server::start(&server_bin, p, compression)?))
            } else {
                None
            };
            let slice_port = own_server.as_ref().map_or(port, |(p, _)| *p);
            let url = format!("ws://127.0.0.1:{slice_port}/{}", slice.route);
            eprintln!(
                "xtask autobahn: {url} {} (report: {})",
                slice.cases,
                out.display()
            );
            let mut cmd = Command::new(suite.join("run.sh"));
            if slice.no_compression {
                cmd.arg("--no-compression");
            }
            let child = cmd
                .args(["--agent", &format!("armature-{}", slice.route), "--out"])
                .arg(&out)
                .arg(&url)
                .arg(&slice.cases)
                .env("AUTOBAHN_VENV", target.join("autobahn-venv"))
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", suite.join("run.sh").display()))?;
            running.push((next, child, own_server.map(|(_, s)| s)));
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut i = 0;
        while i < running.len() {
            let status = running[i]
                .1
                .try_wait()
                .map_err(|e| format!("run.sh: {e}"))?;
            let Some(status) = status else {
                i += 1;
                continue;
            };
            // Dropping the slice's own server stops it.
            let (index, _, _) = running.swap_remove(i);
            let slice = &slices[index];
            let out = report_dir(&target, slice);
            let label = format!("/{} {}", slice.route, slice.cases);
            if !status.success() {
                failures.push(format!("{label}: run.sh exited with {status}"));
            } else {
                match check_report(&out) {
                    Ok(n) => *counts.entry(slice.route).or_default() += n,
                    Err(unexpected) => failures.push(format!("{label}: {unexpected}")),
                }
            }
        }
        let own_died = running
            .iter_mut()
            .any(|(_, _, s)| s.as_mut().is_some_and(|s| !s.alive()));
        if !server.alive() || own_died {
            failures.push("a bench server died during the run".into());
            break;
        }
    }
    for (_, mut child, _) in running {
        let _ = child.kill();
        let _ = child.wait();
    }
    server.stop();
    for &route in &routes {
        let expected = if mode.on(route) {
            CASES_WITH_COMPRESSION
        } else {
            CASES_WITHOUT_COMPRESSION
        };
        let n = counts.get(route).copied().unwrap_or(0);
        eprintln!("xtask autobahn: /{route}: {n} cases OK or accepted");
        if failures.is_empty() && n != expected {
            failures.push(format!(
                "/{route}: {n} cases in the reports, {expected} expected"
            ));
        }
    }
    eprintln!(
        "xtask autobahn: {} slices, {jobs} at a time, {:.0} s",
        slices.len(),
        started.elapsed().as_secs_f64()
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("autobahn: {}", failures.join("; ")))
    }
}

/// `target/autobahn/<route>` for sections 1–10, `target/autobahn/<route>-<group>` for a
/// compression group.
fn report_dir(target: &Path, slice: &Slice) -> PathBuf {
    let dir = if slice.name == "base" {
        slice.route.to_owned()
    } else {
        format!("{}-{}", slice.route, slice.name)
    };
    target.join("autobahn").join(dir)
}

/// Behaviours other than OK that we accept, case by case, each explained in
/// `docs/conformance.md`. Anything else that is not OK fails the run.
const ACCEPTED: [(&str, &str); 3] = [
    ("7.1.6", "INFORMATIONAL"),
    ("7.13.1", "INFORMATIONAL"),
    ("7.13.2", "INFORMATIONAL"),
];

/// Reads `index.json`, lists every case whose behaviour is neither OK nor accepted, and
/// else returns how many cases it holds.
fn check_report(dir: &Path) -> Result<usize, String> {
    let path = dir.join("index.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let index: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut unexpected = Vec::new();
    let mut count = 0;
    let agents = index.as_object().into_iter().flat_map(|a| a.values());
    for cases in agents.filter_map(|c| c.as_object()) {
        for (id, result) in cases {
            count += 1;
            let behavior = result["behavior"].as_str().unwrap_or("?");
            let accepted = behavior == "OK" || ACCEPTED.contains(&(id.as_str(), behavior));
            if !accepted {
                unexpected.push(format!("{id}={behavior}"));
            }
        }
    }
    if unexpected.is_empty() {
        Ok(count)
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
    /// With `compression`, the server offers permessage-deflate (`COMPRESSION=shared`).
    pub(crate) fn start(bin: &Path, port: u16, compression: bool) -> Result<Server, String> {
        let mut cmd = Command::new(bin);
        if compression {
            cmd.env("COMPRESSION", "shared");
        }
        let child = cmd
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
