//! `cargo xtask bench`: end-to-end benchmarks of our bench server against the peers, over
//! `../shared/bench/PROTOCOL.md` (see `docs/benchmarks.md`).
//!
//! Builds the release binaries, then runs the generator `--runs` times against each server
//! in each scenario, round by round (every server in a scenario side by side, so a drift of
//! the host's speed reaches them alike); every run starts a fresh server pinned to core 0
//! (`taskset -c 0`) and the generator pinned to core 1. Prints progress as it goes, then a
//! markdown table of medians with our ratio against each peer, and writes
//! `target/bench-report/{results.json, report.md, chart.svg}`. A server that cannot be
//! built or started is reported as skipped, with the reason.

mod catalog;
mod chart;
mod options;
mod process;
mod redis;
mod results;
mod table;

use std::process::Command;
use std::time::{Duration, Instant};

use catalog::{Scenario, Server};
use process::{Paths, Pinning};
use results::{Cell, Results, Run, RunReport, ServerStatus};

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let opts = options::parse(args)?;
    let paths = Paths::discover();
    if opts.render_only {
        return render_only(&paths);
    }
    let logs = paths.report.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    let pinning = Pinning::detect();
    let mode = if opts.quick { "quick" } else { "full" };
    eprintln!("bench: building release binaries (loadgen and the Rust peers)…");
    process::build_benches(&paths)?;

    let mut statuses = Vec::new();
    let mut servers: Vec<&Server> = Vec::new();
    for id in &opts.servers {
        let Some(server) = catalog::server(id) else {
            continue;
        };
        eprintln!("bench: preparing {}…", server.label);
        let skipped = process::prepare(&paths, server).err();
        match &skipped {
            Some(reason) => eprintln!("bench: skipping {}: {reason}", server.label),
            None => servers.push(server),
        }
        statuses.push(ServerStatus {
            id: server.id.to_owned(),
            label: server.label.to_owned(),
            skipped,
        });
    }
    if !pinning.enabled {
        eprintln!(
            "bench: taskset or a second core is missing; server and generator are not pinned"
        );
    }

    let scenarios: Vec<&Scenario> = opts
        .scenarios
        .iter()
        .filter_map(|id| catalog::scenario(id))
        .collect();
    let total = servers
        .iter()
        .map(|server| {
            scenarios
                .iter()
                .filter(|sc| catalog::runs(server.id, sc.id))
                .count()
        })
        .sum::<usize>()
        * opts.runs;
    let timeout = Duration::from_secs(if opts.quick { 90 } else { 400 });
    let started = Instant::now();
    let mut done = 0usize;
    // Every (server, scenario) pair, in the report's order; the runs go round by round, and
    // within a round scenario by scenario with the servers side by side, so a drift of the
    // (shared, noisy) host's speed during the bench reaches every server alike instead of
    // whichever one's runs it happened to overlap.
    let pairs: Vec<(&Server, &Scenario)> = servers
        .iter()
        .flat_map(|server| {
            scenarios
                .iter()
                .filter(|sc| catalog::runs(server.id, sc.id))
                .map(move |sc| (*server, *sc))
        })
        .collect();
    let mut cells: Vec<Cell> = pairs
        .iter()
        .map(|(server, sc)| Cell::new(server.id, sc.id))
        .collect();
    for i in 1..=opts.runs {
        for sc in &scenarios {
            for (k, (server, _)) in pairs
                .iter()
                .enumerate()
                .filter(|(_, (_, pair_sc))| pair_sc.id == sc.id)
            {
                eprintln!(
                    "[{:>3}/{total}] {} · {} · run {i}/{} · {} left{}",
                    done + 1,
                    server.label,
                    sc.id,
                    opts.runs,
                    total - done - 1,
                    eta(started.elapsed(), done, total),
                );
                let log = logs.join(format!("{}.log", server.id));
                let args = if opts.quick { sc.quick } else { sc.full };
                let run = match process::start_server(&paths, pinning, server, &log, sc.compressed)
                {
                    Err(e) => Run::Failed { error: e },
                    Ok(running) => {
                        match process::run_loadgen(&paths, pinning, &running, args, timeout) {
                            Err(e) => Run::Failed { error: e },
                            Ok(out) => match serde_json::from_str::<RunReport>(out.trim()) {
                                Ok(report) => Run::Done(report),
                                Err(e) => Run::Failed {
                                    error: format!("unreadable loadgen output ({e})"),
                                },
                            },
                        }
                    }
                };
                eprintln!("          {}", headline(sc, &run));
                cells[k].push(run);
                done += 1;
            }
        }
    }

    let pinning_text = if pinning.enabled {
        "server on core 0, generator on core 1 (taskset)".to_owned()
    } else {
        "not pinned (no taskset or one core)".to_owned()
    };
    let results = Results {
        generated_at: utc_now(),
        mode: mode.to_owned(),
        runs_per_scenario: opts.runs,
        pinning: pinning_text,
        servers: statuses,
        scenarios: opts.scenarios.iter().map(|s| (*s).to_owned()).collect(),
        cells,
    };
    let md = table::markdown(&results);
    println!("\n{md}");
    if opts.redis {
        eprintln!("bench: two-node Redis fan-out (one server, then a 3-primary cluster)…");
        match redis::run(&paths, opts.quick) {
            Ok(report) => println!("\n## Two nodes through Redis\n\n```text\n{report}```"),
            Err(reason) => eprintln!("bench: skipping the Redis scenario: {reason}"),
        }
    }
    write_report(&paths, &results, &md)?;
    eprintln!(
        "bench: {} run(s) in {:.0} s; wrote {}/{{results.json, report.md, chart.svg}}",
        done,
        started.elapsed().as_secs_f64(),
        paths.report.display()
    );
    let failed: Vec<String> = results
        .cells
        .iter()
        .filter(|c| c.failure().is_some())
        .map(|c| format!("{}·{}", c.server, c.scenario))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "no run finished for {} (see report.md)",
            failed.join(", ")
        ))
    }
}

/// `--render`: rewrites report.md and chart.svg from the last results.json.
fn render_only(paths: &Paths) -> Result<(), String> {
    let path = paths.report.join("results.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let results: Results = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a bench result: {e}", path.display()))?;
    let md = table::markdown(&results);
    println!("{md}");
    write_report(paths, &results, &md)
}

fn write_report(paths: &Paths, results: &Results, md: &str) -> Result<(), String> {
    let write = |name: &str, text: &str| {
        let path = paths.report.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let json = serde_json::to_string_pretty(results).map_err(|e| e.to_string())?;
    write("results.json", &json)?;
    let mut params =
        String::from("\nParameters (from the generator's first finished run of each):\n");
    for id in &results.scenarios {
        if let Some(cell) = results
            .cells
            .iter()
            .find(|c| c.scenario == *id && !c.params.is_empty())
        {
            let p: Vec<String> = cell
                .params
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            params.push_str(&format!("- {id}: {}\n", p.join(", ")));
        }
    }
    write(
        "report.md",
        &format!(
            "# End-to-end benchmark (`cargo xtask bench`)\n\n{md}{params}\n![chart](chart.svg)\n"
        ),
    )?;
    chart::draw(results, &paths.report.join("chart.svg"))
}

/// A one-line summary of a run for the progress output.
fn headline(sc: &Scenario, run: &Run) -> String {
    match run {
        Run::Failed { error } => format!("✗ {error}"),
        Run::Done(r) => {
            let mut parts = Vec::new();
            for row in sc.rows {
                if let Some(v) = r.metrics.get(row.metric) {
                    parts.push(format!("{} {}", row.label, table::figure(*v)));
                }
            }
            if let Some(opened) = r.metrics.get("opened") {
                parts.push(format!("opened {}", table::count(*opened)));
            }
            if !r.notes.is_empty() {
                parts.push(format!("notes: {}", r.notes.join("; ")));
            }
            format!("→ {}", parts.join(", "))
        }
    }
}

/// ` · about N s to go`, once a run has finished.
fn eta(elapsed: Duration, done: usize, total: usize) -> String {
    if done == 0 {
        return String::new();
    }
    let left = elapsed.as_secs_f64() / done as f64 * (total - done) as f64;
    if left >= 90.0 {
        format!(" · about {:.0} min to go", left / 60.0)
    } else {
        format!(" · about {left:.0} s to go")
    }
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "(unknown time)".into())
}
