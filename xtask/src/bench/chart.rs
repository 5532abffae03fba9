//! `chart.svg`: one bar panel per scenario (its headline figure), one bar per server.

use std::path::Path;

use plotters::prelude::*;

use super::catalog::{self, Better};
use super::results::Results;

/// Bar colours, by server position (ours first).
const COLOURS: [RGBColor; 5] = [
    RGBColor(0xD9, 0x48, 0x1F),
    RGBColor(0x3B, 0x6E, 0xA8),
    RGBColor(0x5B, 0x9B, 0x5B),
    RGBColor(0x8E, 0x6C, 0xB8),
    RGBColor(0x88, 0x88, 0x88),
];

/// Draws the chart into `path`.
pub(crate) fn draw(results: &Results, path: &Path) -> Result<(), String> {
    let panels: Vec<_> = results
        .scenarios
        .iter()
        .filter_map(|id| catalog::scenario(id))
        .collect();
    if panels.is_empty() {
        return Ok(());
    }
    let cols = panels.len().min(3);
    let rows = panels.len().div_ceil(cols);
    let size = (460 * cols as u32, 320 * rows as u32 + 40);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let title = format!(
        "Armature Realtime vs peers ({} mode, median of {} run(s); one core each)",
        results.mode, results.runs_per_scenario
    );
    let root = root
        .titled(&title, ("sans-serif", 18))
        .map_err(|e| e.to_string())?;
    let areas = root.split_evenly((rows, cols));
    let servers: Vec<_> = results.servers.iter().collect();
    for (area, sc) in areas.iter().zip(&panels) {
        let has = |row: &catalog::Row| {
            servers.iter().any(|s| {
                results
                    .cell(&s.id, sc.id)
                    .is_some_and(|c| c.median.contains_key(row.metric))
            })
        };
        let row = match sc.rows.get(sc.chart_row) {
            Some(r) if has(r) => *r,
            _ => sc.rows[0],
        };
        let bars: Vec<(usize, f64)> = servers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let cell = results.cell(&s.id, sc.id)?;
                if cell.failure().is_some() {
                    return None;
                }
                cell.median.get(row.metric).map(|v| (i, *v))
            })
            .collect();
        let top = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9) * 1.15;
        let arrow = if row.better == Better::Lower {
            "lower is better"
        } else {
            "higher is better"
        };
        let caption = format!("{}: {} ({arrow})", sc.label, row.label);
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 13))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..servers.len() as f64, 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(6)
            .x_labels(servers.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - i as f64 - 0.5).abs() < 1e-6 {
                    servers
                        .get(i)
                        .and_then(|s| catalog::server(&s.id))
                        .map(|s| s.short.to_owned())
                        .unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| super::table::figure(*y))
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(|e| e.to_string())?;
        // Servers with no figure (failed or skipped) get a note where their bar would be.
        let absent: Vec<usize> = (0..servers.len())
            .filter(|i| !bars.iter().any(|b| b.0 == *i))
            .collect();
        chart
            .draw_series(absent.iter().map(|&i| {
                let why = if servers[i].skipped.is_some() {
                    "skipped"
                } else {
                    "no figure"
                };
                Text::new(why, (i as f64 + 0.2, top * 0.03), ("sans-serif", 11))
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().map(|&(i, v)| {
                let colour = COLOURS[i % COLOURS.len()];
                Rectangle::new(
                    [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, v)],
                    colour.filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().map(|&(i, v)| {
                Text::new(
                    super::table::figure(v),
                    (i as f64 + 0.2, v + top * 0.02),
                    ("sans-serif", 11),
                )
            }))
            .map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::results::{Cell, Run, RunReport, ServerStatus};
    use super::*;

    #[test]
    fn draws_a_panel_per_scenario_with_per_cpu_figures_and_gaps() {
        let report = |pairs: &[(&str, f64)]| {
            Run::Done(RunReport {
                metrics: pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
                ..RunReport::default()
            })
        };
        let mut ours = Cell::new("armature", "fanout-1k");
        ours.push(report(&[
            ("deliveries_per_s", 1e6),
            ("deliveries_per_cpu_s", 2e6),
        ]));
        let mut axum = Cell::new("axum", "fanout-1k");
        axum.push(Run::Failed { error: "x".into() });
        let mut idle = Cell::new("axum", "idle-ws");
        idle.push(report(&[("kib_per_conn", 131.0)]));
        let status = |id: &str, skipped: Option<&str>| ServerStatus {
            id: id.into(),
            label: id.into(),
            skipped: skipped.map(Into::into),
        };
        let results = Results {
            generated_at: "now".into(),
            mode: "quick".into(),
            runs_per_scenario: 1,
            pinning: "pinned".into(),
            servers: vec![
                status("armature", None),
                status("axum", None),
                status("uws", Some("no node")),
            ],
            scenarios: vec!["fanout-1k".into(), "idle-ws".into()],
            cells: vec![ours, axum, idle],
        };
        let path = std::env::temp_dir().join(format!("xtask-chart-{}.svg", std::process::id()));
        draw(&results, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg"));
        assert!(
            svg.contains("deliveries per server CPU-second"),
            "charted the per-CPU row"
        );
        assert!(svg.contains("KiB per connection"));
        assert!(svg.contains("2.00 M") && svg.contains("131"));
        assert!(svg.contains("no figure") && svg.contains("skipped"));
        assert!(svg.contains("ours") && svg.contains("axum") && svg.contains("uws"));
    }
}
