//! `cargo xtask bench [--quick] [--servers a,b] [--scenarios x,y] [--runs N]`.

use super::catalog::{SCENARIOS, SERVERS};

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    /// Short runs with small counts (a smoke run for CI).
    pub(crate) quick: bool,
    /// Server ids, in catalog order.
    pub(crate) servers: Vec<&'static str>,
    /// Scenario ids, in catalog order.
    pub(crate) scenarios: Vec<&'static str>,
    /// Runs of each scenario on each server (the report shows medians).
    pub(crate) runs: usize,
    /// Run nothing: re-render report.md and chart.svg from the last results.json.
    pub(crate) render_only: bool,
    /// Run the two-node Redis step too (by default, or when `--scenarios` names `redis`).
    pub(crate) redis: bool,
}

pub(crate) const USAGE: &str = "\
usage: cargo xtask bench [--quick] [--servers a,b] [--scenarios x,y] [--runs N]
  --quick      small counts and short runs (a 1-2 minute smoke run); 1 run unless --runs
  --servers    any of: armature, tokio-tungstenite, axum, fastwebsockets, uws (default: all)
  --scenarios  any of: echo, fanout-1k, fanout-10k, sse-1k, idle-ws, idle-sse,
               idle-ws-max, graphql-1k, echo-deflate, fanout-1k-deflate,
               fanout-10k-deflate, idle-ws-deflate, redis (the two-node Redis step)
               (default: all; the -deflate ones run with permessage-deflate on ours and
               uws only)
  --runs N     runs per scenario and server, medians reported (default 3)
  --render     run nothing; rewrite report.md and chart.svg from results.json
writes target/bench-report/{results.json, report.md, chart.svg}";

/// Parses the arguments after `bench`.
pub(crate) fn parse(args: &[String]) -> Result<Options, String> {
    let mut quick = false;
    let mut servers: Option<Vec<&'static str>> = None;
    let mut scenarios: Option<Vec<&'static str>> = None;
    let mut runs: Option<usize> = None;
    let mut render_only = false;
    let mut redis = true;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag {
            "--quick" => quick = true,
            "--render" => render_only = true,
            "--servers" => servers = Some(pick(&value()?, SERVERS.iter().map(|s| s.id), "server")?),
            "--scenarios" => {
                let list = value()?;
                let (with_redis, rest): (Vec<&str>, Vec<&str>) =
                    list.split(',').partition(|s| s.trim() == "redis");
                redis = !with_redis.is_empty();
                scenarios = Some(if rest.is_empty() {
                    Vec::new()
                } else {
                    pick(&rest.join(","), SCENARIOS.iter().map(|s| s.id), "scenario")?
                });
            }
            "--runs" => {
                let v = value()?;
                let n: usize = v
                    .parse()
                    .map_err(|_| format!("--runs: not a number: {v}"))?;
                if n == 0 || n > 50 {
                    return Err("--runs must be between 1 and 50".into());
                }
                runs = Some(n);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(Options {
        quick,
        servers: servers.unwrap_or_else(|| SERVERS.iter().map(|s| s.id).collect()),
        scenarios: scenarios.unwrap_or_else(|| SCENARIOS.iter().map(|s| s.id).collect()),
        runs: runs.unwrap_or(if quick { 1 } else { 3 }),
        render_only,
        redis,
    })
}

/// The known ids named in a comma-separated list, in catalog order, without repeats.
fn pick(
    list: &str,
    known: impl Iterator<Item = &'static str> + Clone,
    what: &str,
) -> Result<Vec<&'static str>, String> {
    let wanted: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for w in &wanted {
        if !known.clone().any(|k| k == *w) {
            let all: Vec<_> = known.clone().collect();
            return Err(format!("unknown {what} {w:?} (known: {})", all.join(", ")));
        }
    }
    let chosen: Vec<_> = known.filter(|k| wanted.contains(k)).collect();
    if chosen.is_empty() {
        return Err(format!("no {what} chosen"));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn defaults_are_everything_three_times() {
        let o = parse(&[]).unwrap();
        assert!(!o.quick);
        assert_eq!(o.runs, 3);
        assert_eq!(o.servers.len(), SERVERS.len());
        assert_eq!(o.scenarios.len(), SCENARIOS.len());
        assert_eq!(parse(&args("--quick")).unwrap().runs, 1);
        assert!(!o.render_only);
        assert!(parse(&args("--render")).unwrap().render_only);
    }

    #[test]
    fn lists_keep_catalog_order_and_drop_repeats() {
        let o = parse(&args(
            "--servers uws,axum,uws --scenarios=echo --runs 5 --quick",
        ))
        .unwrap();
        assert_eq!(o.servers, ["axum", "uws"]);
        assert_eq!(o.scenarios, ["echo"]);
        assert_eq!(o.runs, 5);
        assert!(o.quick);
    }

    #[test]
    fn the_redis_step_runs_by_default_or_when_named() {
        assert!(parse(&[]).unwrap().redis);
        assert!(!parse(&args("--scenarios echo")).unwrap().redis);
        let o = parse(&args("--scenarios echo,redis")).unwrap();
        assert!(o.redis);
        assert_eq!(o.scenarios, ["echo"]);
        let o = parse(&args("--scenarios redis")).unwrap();
        assert!(o.redis && o.scenarios.is_empty());
    }

    #[test]
    fn rejects_unknown_names_and_bad_counts() {
        assert!(
            parse(&args("--servers nginx"))
                .unwrap_err()
                .contains("unknown server")
        );
        assert!(
            parse(&args("--scenarios ,"))
                .unwrap_err()
                .contains("no scenario")
        );
        assert!(parse(&args("--runs 0")).is_err());
        assert!(
            parse(&args("--runs"))
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(
            parse(&args("--fast"))
                .unwrap_err()
                .contains("unknown option")
        );
    }
}
