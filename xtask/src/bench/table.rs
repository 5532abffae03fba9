//! The markdown report: scenarios × servers, with our ratio against each peer.

use std::fmt::Write as _;

use super::catalog::{self, Better, Row};
use super::results::{Cell, Results};

/// Our server's id: ratios are taken against it.
pub(crate) const OURS: &str = "armature";

/// A figure in a few significant digits: `1.23 M`, `456 k`, `12.3`, `0.61`.
pub(crate) fn figure(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0} k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A whole count with thousands separators: `19,964`.
pub(crate) fn count(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Ours against a peer, oriented so that above 1 means ours is better; `None` when either
/// is missing, zero where it would divide, or the row has no ratio.
pub(crate) fn ratio(better: Better, ours: Option<f64>, peer: Option<f64>) -> Option<f64> {
    let (o, p) = (ours?, peer?);
    match better {
        Better::Higher if p > 0.0 => Some(o / p),
        Better::Lower if o > 0.0 => Some(p / o),
        _ => None,
    }
}

/// What a table cell shows for `row` of `cell` (or why there is no figure).
fn cell_text(results: &Results, server: &str, cell: Option<&Cell>, row: &Row) -> String {
    if results.status(server).is_some_and(|s| s.skipped.is_some()) {
        return "skipped".into();
    }
    let Some(cell) = cell else {
        return "—".into();
    };
    if cell.failure().is_some() {
        return "failed".into();
    }
    let Some(v) = cell.median.get(row.metric) else {
        return "—".into();
    };
    let mut text = figure(*v);
    if row.metric == "kib_per_conn" {
        let opened = cell.median.get("opened").copied().unwrap_or(0.0);
        let wanted = cell.params.get("connections").copied().unwrap_or(0.0);
        if opened < wanted {
            let _ = write!(text, " ({} of {} opened)", count(opened), count(wanted));
        }
    }
    text
}

/// The markdown report.
pub(crate) fn markdown(results: &Results) -> String {
    let servers: Vec<_> = results.servers.iter().collect();
    let ours_present = servers.iter().any(|s| s.id == OURS && s.skipped.is_none());
    let peers: Vec<_> = servers.iter().filter(|s| s.id != OURS).collect();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Generated {} · {} mode · median of {} run(s) per cell · {}\n",
        results.generated_at, results.mode, results.runs_per_scenario, results.pinning
    );
    md.push_str("| scenario | metric |");
    for s in &servers {
        let _ = write!(md, " {} |", s.label);
    }
    if ours_present {
        for p in &peers {
            let _ = write!(md, " ours ÷ {} |", p.label);
        }
    }
    md.push_str("\n| --- | --- |");
    let columns = servers.len() + if ours_present { peers.len() } else { 0 };
    md.push_str(&" ---: |".repeat(columns));
    md.push('\n');
    for id in &results.scenarios {
        let Some(sc) = catalog::scenario(id) else {
            continue;
        };
        for row in sc.rows {
            let arrow = match row.better {
                Better::Higher => " (↑)",
                Better::Lower => " (↓)",
                Better::Zero => " (must be 0)",
            };
            let _ = write!(md, "| {} | {}{} |", sc.label, row.label, arrow);
            for s in &servers {
                let _ = write!(
                    md,
                    " {} |",
                    cell_text(results, &s.id, results.cell(&s.id, id), row)
                );
            }
            if ours_present {
                let value = |server: &str| {
                    let cell = results.cell(server, id)?;
                    if cell.failure().is_some() {
                        return None;
                    }
                    cell.median.get(row.metric).copied()
                };
                for p in &peers {
                    match ratio(row.better, value(OURS), value(&p.id)) {
                        Some(r) => {
                            let _ = write!(md, " {r:.2}× |");
                        }
                        None => md.push_str(" — |"),
                    }
                }
            }
            md.push('\n');
        }
    }
    md.push_str("\n↑ higher is better, ↓ lower is better; a ratio above 1 means ours is better.\n");
    let skipped: Vec<_> = servers
        .iter()
        .filter_map(|s| s.skipped.as_ref().map(|r| (&s.label, r)))
        .collect();
    if !skipped.is_empty() {
        md.push_str("\nSkipped servers:\n");
        for (label, reason) in skipped {
            let _ = writeln!(md, "- {label}: {reason}");
        }
    }
    let mut remarks = String::new();
    for cell in &results.cells {
        for r in cell.remarks() {
            let label = catalog::server(&cell.server).map_or(cell.server.as_str(), |s| s.label);
            let _ = writeln!(remarks, "- {label} · {}: {r}", cell.scenario);
        }
    }
    if !remarks.is_empty() {
        md.push_str("\nRemarks from the runs:\n");
        md.push_str(&remarks);
    }
    let mut load = String::new();
    for cell in &results.cells {
        if let (Some(g), Some(s)) = (
            cell.median.get("loadgen_cpu_share"),
            cell.median.get("server_cpu_share"),
        ) {
            let _ = write!(
                load,
                " {}·{} {:.0}%/{:.0}%;",
                cell.server,
                cell.scenario,
                g * 100.0,
                s * 100.0
            );
        }
    }
    if !load.is_empty() {
        let _ = writeln!(
            md,
            "\nCPU share during the measured phase (generator/server, 100% = one core):{load}"
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::super::results::{Run, RunReport, ServerStatus};
    use super::*;

    #[test]
    fn figures_keep_a_few_digits() {
        assert_eq!(figure(1_234_567.0), "1.23 M");
        assert_eq!(figure(123_456.0), "123 k");
        assert_eq!(figure(1_234.0), "1.2 k");
        assert_eq!(figure(0.0), "0");
        assert_eq!(figure(134.7), "135");
        assert_eq!(figure(12.34), "12.3");
        assert_eq!(figure(0.614), "0.61");
        assert_eq!(count(19_964.0), "19,964");
        assert_eq!(count(50_000.0), "50,000");
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1_000_000.0), "1,000,000");
    }

    #[test]
    fn ratios_read_above_one_as_ours_better() {
        assert_eq!(ratio(Better::Higher, Some(200.0), Some(100.0)), Some(2.0));
        assert_eq!(ratio(Better::Lower, Some(0.5), Some(1.0)), Some(2.0));
        assert_eq!(ratio(Better::Zero, Some(0.0), Some(0.0)), None);
        assert_eq!(ratio(Better::Higher, None, Some(1.0)), None);
        assert_eq!(ratio(Better::Higher, Some(1.0), Some(0.0)), None);
    }

    fn done(metrics: &[(&str, f64)], params: &[(&str, f64)]) -> Run {
        Run::Done(RunReport {
            metrics: metrics.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            params: params.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            notes: vec![],
        })
    }

    #[test]
    fn table_has_ratios_skips_and_failures() {
        let mut echo_ours = Cell::new("armature", "echo");
        echo_ours.push(done(&[("round_trips_per_s", 2e6), ("p99_us", 100.0)], &[]));
        let mut echo_axum = Cell::new("axum", "echo");
        echo_axum.push(done(&[("round_trips_per_s", 1e6), ("p99_us", 400.0)], &[]));
        let mut idle_ours = Cell::new("armature", "idle-ws");
        idle_ours.push(done(
            &[("kib_per_conn", 0.5), ("opened", 9_000.0)],
            &[("connections", 10_000.0)],
        ));
        let mut idle_axum = Cell::new("axum", "idle-ws");
        idle_axum.push(Run::Failed {
            error: "refused".into(),
        });
        let results = Results {
            generated_at: "now".into(),
            mode: "full".into(),
            runs_per_scenario: 1,
            pinning: "pinned".into(),
            servers: vec![
                ServerStatus {
                    id: "armature".into(),
                    label: "armature (ours)".into(),
                    skipped: None,
                },
                ServerStatus {
                    id: "axum".into(),
                    label: "axum".into(),
                    skipped: None,
                },
                ServerStatus {
                    id: "uws".into(),
                    label: "uWebSockets (Node)".into(),
                    skipped: Some("no node".into()),
                },
            ],
            scenarios: vec!["echo".into(), "idle-ws".into()],
            cells: vec![echo_ours, echo_axum, idle_ours, idle_axum],
        };
        let md = markdown(&results);
        // what --render reads back renders the same table
        let json = serde_json::to_string(&results).unwrap();
        let back: Results = serde_json::from_str(&json).unwrap();
        assert_eq!(markdown(&back), md);
        assert!(
            md.contains("| round trips/s (↑) | 2.00 M | 1.00 M | skipped | 2.00× | — |"),
            "{md}"
        );
        assert!(
            md.contains("| p99 latency µs (↓) | 100 | 400 | skipped | 4.00× | — |"),
            "{md}"
        );
        assert!(
            md.contains("| 0.50 (9,000 of 10,000 opened) | failed | skipped | — | — |"),
            "{md}"
        );
        assert!(md.contains("- uWebSockets (Node): no node"), "{md}");
        assert!(md.contains("- axum · idle-ws: run failed: refused"), "{md}");
    }
}
