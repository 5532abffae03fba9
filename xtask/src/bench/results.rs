//! The results of a bench: every run's figures as the generator reported them, medians per
//! server and scenario, and the JSON written to `results.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What `loadgen` prints for one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct RunReport {
    /// Parameters the generator ran with.
    #[serde(default)]
    pub(crate) params: BTreeMap<String, f64>,
    /// What it measured.
    #[serde(default)]
    pub(crate) metrics: BTreeMap<String, f64>,
    /// Remarks (errors seen, stalls, short counts).
    #[serde(default)]
    pub(crate) notes: Vec<String>,
}

/// One run: its report, or why it failed.
///
/// `Failed` comes first so that reading JSON tries it first: a report has no `error` key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub(crate) enum Run {
    /// The server or the generator failed.
    Failed {
        /// What went wrong.
        error: String,
    },
    /// The generator finished and reported.
    Done(RunReport),
}

/// All runs of one scenario on one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Cell {
    pub(crate) server: String,
    pub(crate) scenario: String,
    pub(crate) runs: Vec<Run>,
    /// Median of each metric over the runs that finished.
    pub(crate) median: BTreeMap<String, f64>,
    /// The parameters of the first finished run.
    pub(crate) params: BTreeMap<String, f64>,
}

impl Cell {
    pub(crate) fn new(server: &str, scenario: &str) -> Self {
        Self {
            server: server.to_owned(),
            scenario: scenario.to_owned(),
            runs: Vec::new(),
            median: BTreeMap::new(),
            params: BTreeMap::new(),
        }
    }

    /// Adds a run and recomputes the medians.
    pub(crate) fn push(&mut self, run: Run) {
        self.runs.push(run);
        let done: Vec<&RunReport> = self
            .runs
            .iter()
            .filter_map(|r| match r {
                Run::Done(d) => Some(d),
                Run::Failed { .. } => None,
            })
            .collect();
        self.median = medians(&done);
        self.params = done.first().map(|d| d.params.clone()).unwrap_or_default();
    }

    /// The first failure, if no run finished.
    pub(crate) fn failure(&self) -> Option<&str> {
        if self.runs.iter().any(|r| matches!(r, Run::Done(_))) {
            return None;
        }
        self.runs.iter().find_map(|r| match r {
            Run::Failed { error } => Some(error.as_str()),
            Run::Done(_) => None,
        })
    }

    /// Notes of every finished run and errors of failed ones, without repeats. Notes that
    /// differ only in their figures ("opened 19,981 of …", "opened 19,984 of …") are kept
    /// once: the table shows the median.
    pub(crate) fn remarks(&self) -> Vec<String> {
        let shape = |s: &str| s.replace(|c: char| c.is_ascii_digit(), "#");
        let mut out: Vec<String> = Vec::new();
        for r in &self.runs {
            let items: Vec<String> = match r {
                Run::Done(d) => d.notes.clone(),
                Run::Failed { error } => vec![format!("run failed: {error}")],
            };
            for i in items {
                if !out.iter().any(|o| shape(o) == shape(&i)) {
                    out.push(i);
                }
            }
        }
        out
    }
}

/// The median of every metric that appears in any report.
pub(crate) fn medians(reports: &[&RunReport]) -> BTreeMap<String, f64> {
    let mut by_name: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in reports {
        for (k, v) in &r.metrics {
            by_name.entry(k.clone()).or_default().push(*v);
        }
    }
    by_name
        .into_iter()
        .filter_map(|(k, v)| median(&v).map(|m| (k, m)))
        .collect()
}

/// The median (mean of the middle two for an even count), ignoring NaN.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Whether a server ran or was skipped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ServerStatus {
    pub(crate) id: String,
    pub(crate) label: String,
    /// `None` when it ran; the reason when it was skipped.
    pub(crate) skipped: Option<String>,
}

/// Everything `results.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Results {
    pub(crate) generated_at: String,
    pub(crate) mode: String,
    pub(crate) runs_per_scenario: usize,
    pub(crate) pinning: String,
    pub(crate) servers: Vec<ServerStatus>,
    pub(crate) scenarios: Vec<String>,
    pub(crate) cells: Vec<Cell>,
}

impl Results {
    /// The cell of `server` × `scenario`, if it ran.
    pub(crate) fn cell(&self, server: &str, scenario: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.server == server && c.scenario == scenario)
    }

    /// The status of `server`.
    pub(crate) fn status(&self, server: &str) -> Option<&ServerStatus> {
        self.servers.iter().find(|s| s.id == server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(pairs: &[(&str, f64)]) -> RunReport {
        RunReport {
            metrics: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            ..RunReport::default()
        }
    }

    #[test]
    fn medians_per_metric_over_finished_runs() {
        let mut cell = Cell::new("axum", "echo");
        cell.push(Run::Done(report(&[("rate", 10.0), ("p99_us", 5.0)])));
        cell.push(Run::Failed {
            error: "boom".into(),
        });
        cell.push(Run::Done(report(&[("rate", 30.0)])));
        cell.push(Run::Done(report(&[("rate", 20.0), ("p99_us", 7.0)])));
        assert_eq!(cell.median["rate"], 20.0);
        assert_eq!(cell.median["p99_us"], 6.0);
        assert_eq!(cell.failure(), None);
        assert_eq!(cell.remarks(), ["run failed: boom"]);
        let mut idle = Cell::new("uws", "idle-ws-max");
        for (n, note) in [
            (1.0, "opened 19926 of 50000"),
            (2.0, "opened 19975 of 50000"),
        ] {
            let mut r = report(&[("opened", n)]);
            r.notes.push(note.into());
            idle.push(Run::Done(r));
        }
        idle.push(Run::Failed {
            error: "killed after 400 s".into(),
        });
        assert_eq!(
            idle.remarks(),
            ["opened 19926 of 50000", "run failed: killed after 400 s"]
        );
    }

    #[test]
    fn a_cell_with_no_finished_run_reports_its_failure() {
        let mut cell = Cell::new("uws", "sse-1k");
        cell.push(Run::Failed {
            error: "404".into(),
        });
        assert_eq!(cell.failure(), Some("404"));
        assert!(cell.median.is_empty());
    }

    #[test]
    fn reads_what_loadgen_prints() {
        let json = r#"{"scenario":"echo","params":{"connections":64.0},
            "metrics":{"round_trips_per_s":1000.5},"notes":["x"]}"#;
        let r: RunReport = serde_json::from_str(json).unwrap();
        assert_eq!(r.params["connections"], 64.0);
        assert_eq!(r.metrics["round_trips_per_s"], 1000.5);
        assert_eq!(r.notes, ["x"]);
    }

    #[test]
    fn median_of_odd_even_and_nothing() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }
}
