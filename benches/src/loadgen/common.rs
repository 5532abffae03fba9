//! What every scenario shares: the server under test, the result record, CPU metering and
//! opening many connections within bounds.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde::Serialize;

use super::system::{CpuTime, SourceAddrs, own_cpu_time, process_cpu_time};

/// The server under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where it listens.
    pub server: SocketAddr,
    /// Its process id, for memory and CPU figures (`None`: not reported).
    pub server_pid: Option<u32>,
    /// Source addresses for client sockets.
    pub sources: SourceAddrs,
}

/// One scenario run's result, printed by `loadgen` as one JSON object.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The scenario's name (`echo`, `fanout`, `sse`, `idle-ws`, `idle-sse`).
    pub scenario: String,
    /// The parameters it ran with (connections, subscribers, messages, …).
    pub params: BTreeMap<String, f64>,
    /// What it measured, by name (`round_trips_per_s`, `deliveries_per_s`, `p99_us`, …).
    pub metrics: BTreeMap<String, f64>,
    /// Anything a reader of the figures should know (errors, stalls, short counts).
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report for `scenario`.
    pub fn new(scenario: &str) -> Self {
        Self {
            scenario: scenario.to_owned(),
            ..Self::default()
        }
    }

    /// Records a parameter.
    pub fn param(&mut self, name: &str, value: impl Into<f64>) {
        self.params.insert(name.to_owned(), value.into());
    }

    /// Records a metric.
    pub fn metric(&mut self, name: &str, value: impl Into<f64>) {
        self.metrics.insert(name.to_owned(), value.into());
    }
}

/// CPU time of the generator and the server over a measured phase.
#[derive(Debug, Clone)]
pub struct Meter {
    started: Instant,
    own_cpu: Duration,
    server_cpu: Option<CpuTime>,
    server_pid: Option<u32>,
}

impl Meter {
    /// Starts metering now.
    pub fn start(server_pid: Option<u32>) -> Self {
        Self {
            started: Instant::now(),
            own_cpu: own_cpu_time().unwrap_or_default(),
            server_cpu: server_pid.and_then(|pid| process_cpu_time(pid).ok()),
            server_pid,
        }
    }

    /// Adds `loadgen_cpu_share` and `server_cpu_share` (CPU seconds ÷ wall seconds since
    /// the start; 1.0 is one core kept busy) and `server_cpu_s` to `report`; returns the
    /// server's CPU seconds when known: the scheduler's nanoseconds per thread, or `/proc`'s
    /// 10 ms ticks when those do not cover the phase ([`CpuTime`]).
    pub fn finish(&self, report: &mut Report) -> Option<f64> {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        if let Ok(now) = own_cpu_time() {
            report.metric(
                "loadgen_cpu_share",
                (now - self.own_cpu).as_secs_f64() / wall,
            );
        }
        report.metric("measured_s", wall);
        let before = self.server_cpu.as_ref()?;
        let now = process_cpu_time(self.server_pid?).ok()?;
        let cpu = now.since(before).as_secs_f64();
        report.metric("server_cpu_share", cpu / wall);
        report.metric("server_cpu_s", cpu);
        Some(cpu)
    }
}

/// `count ÷ cpu_seconds` when at least 0.1 s of CPU was counted, so a rate per CPU-second
/// is never read from a few ticks when [`Meter`] had to fall back to them.
pub fn per_cpu_second(count: f64, cpu_seconds: Option<f64>) -> Option<f64> {
    cpu_seconds.filter(|&c| c >= 0.1).map(|c| count / c)
}

/// What [`open_many`] managed.
#[derive(Debug)]
pub struct Opened<T> {
    /// The open connections, in no particular order.
    pub conns: Vec<T>,
    /// How many attempts failed.
    pub failures: usize,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

/// Opens up to `count` connections with `connect(index, source)`, `concurrency` at a time.
/// Stops early after `max_failures` failures or when `deadline` passes; each attempt is
/// bounded by `per_attempt`.
pub async fn open_many<T, F, Fut>(
    target: &Target,
    count: usize,
    concurrency: usize,
    max_failures: usize,
    per_attempt: Duration,
    deadline: Instant,
    connect: F,
) -> Opened<T>
where
    F: Fn(usize, Ipv4Addr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let mut attempts = futures_util::stream::iter(0..count)
        .map(|i| {
            let fut = connect(i, target.sources.pick(i));
            async move {
                match tokio::time::timeout(per_attempt, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
                }
            }
        })
        .buffer_unordered(concurrency.max(1));
    let mut opened = Opened {
        conns: Vec::with_capacity(count),
        failures: 0,
        first_error: None,
    };
    loop {
        match tokio::time::timeout_at(deadline.into(), attempts.next()).await {
            Ok(Some(Ok(conn))) => opened.conns.push(conn),
            Ok(Some(Err(e))) => {
                opened.failures += 1;
                opened.first_error.get_or_insert_with(|| e.to_string());
                if opened.failures >= max_failures {
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => {
                opened
                    .first_error
                    .get_or_insert_with(|| "deadline passed while connecting".into());
                break;
            }
        }
    }
    opened
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_per_cpu_second_needs_enough_ticks() {
        assert_eq!(per_cpu_second(1_000.0, Some(0.5)), Some(2_000.0));
        assert_eq!(per_cpu_second(1_000.0, Some(0.09)), None);
        assert_eq!(per_cpu_second(1_000.0, None), None);
    }

    #[test]
    fn meter_reports_shares_and_server_cpu() {
        let meter = Meter::start(Some(std::process::id()));
        let mut report = Report::new("x");
        let cpu = meter.finish(&mut report);
        assert!(cpu.is_some());
        for k in [
            "loadgen_cpu_share",
            "server_cpu_share",
            "server_cpu_s",
            "measured_s",
        ] {
            assert!(report.metrics.contains_key(k), "{k}");
        }
        let mut report = Report::new("y");
        assert_eq!(Meter::start(None).finish(&mut report), None);
        assert!(!report.metrics.contains_key("server_cpu_share"));
    }
}
