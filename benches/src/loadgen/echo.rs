//! Echo: `connections` WebSockets on `/echo`, each keeping `in_flight` messages outstanding
//! for `duration`; round trips per second and round-trip latency.
//!
//! Each connection writes its replacements in one `write` per batch of echoes read, so the
//! generator spends one system call per batch, not per message.

use std::io;
use std::time::{Duration, Instant};

use super::common::{Meter, Report, Target, open_many, per_cpu_second};
use super::payload::{self, Clock, Stamp};
use super::stats::Samples;
use super::wire::{OP_BINARY, OP_CLOSE, OP_TEXT};
use super::ws_client::WsConn;

/// Echo parameters.
#[derive(Debug, Clone)]
pub struct EchoConfig {
    /// Connections (PROTOCOL.md: 64).
    pub connections: usize,
    /// Messages outstanding per connection (PROTOCOL.md: 16).
    pub in_flight: usize,
    /// Payload size in bytes (PROTOCOL.md: 32).
    pub payload_len: usize,
    /// How long the measured phase lasts.
    pub duration: Duration,
}

/// What one connection counted.
#[derive(Debug, Default)]
struct ConnTally {
    round_trips: u64,
    samples: Samples,
    out_of_order: u64,
    bad_payloads: u64,
    error: Option<String>,
}

/// Runs the echo scenario.
pub async fn run(target: &Target, cfg: &EchoConfig) -> io::Result<Report> {
    let mut report = Report::new("echo");
    report.param("connections", cfg.connections as f64);
    report.param("in_flight", cfg.in_flight as f64);
    report.param("payload_bytes", cfg.payload_len as f64);
    report.param("duration_s", cfg.duration.as_secs_f64());
    let server = target.server;
    let opened = open_many(
        target,
        cfg.connections,
        64,
        cfg.connections,
        Duration::from_secs(10),
        Instant::now() + Duration::from_secs(30),
        |i, src| WsConn::connect(src, server, "/echo", i as u32 + 1),
    )
    .await;
    if opened.conns.len() < cfg.connections {
        return Err(io::Error::other(format!(
            "opened {} of {} echo connections: {}",
            opened.conns.len(),
            cfg.connections,
            opened.first_error.unwrap_or_default()
        )));
    }
    let clock = Clock::new();
    let meter = Meter::start(target.server_pid);
    let start = Instant::now();
    let end = start + cfg.duration;
    let tasks: Vec<_> = opened
        .conns
        .into_iter()
        .map(|conn| tokio::spawn(drive(conn, clock, cfg.clone(), end)))
        .collect();
    let mut total = ConnTally::default();
    for task in tasks {
        let tally = task.await.map_err(io::Error::other)?;
        total.round_trips += tally.round_trips;
        total.samples.merge(tally.samples);
        total.out_of_order += tally.out_of_order;
        total.bad_payloads += tally.bad_payloads;
        if let Some(e) = tally.error {
            report.notes.push(e);
        }
    }
    let server_cpu = meter.finish(&mut report);
    report.metric(
        "round_trips_per_s",
        total.round_trips as f64 / cfg.duration.as_secs_f64(),
    );
    if let Some(r) = per_cpu_second(total.round_trips as f64, server_cpu) {
        report.metric("round_trips_per_cpu_s", r);
    }
    report.metric("round_trips", total.round_trips as f64);
    report.metric("errors", (total.out_of_order + total.bad_payloads) as f64);
    if let Some(s) = total.samples.summary() {
        report.metric("p50_us", s.p50_us);
        report.metric("p99_us", s.p99_us);
        report.metric("max_us", s.max_us);
    }
    report.notes.dedup();
    Ok(report)
}

/// One connection's loop: keep `in_flight` outstanding until `end`, then drain.
async fn drive(mut conn: WsConn, clock: Clock, cfg: EchoConfig, end: Instant) -> ConnTally {
    let mut tally = ConnTally {
        samples: Samples::with_capacity(cfg.in_flight * 1024),
        ..ConnTally::default()
    };
    let mut next_seq = 0u64;
    let mut expect_seq = 0u64;
    let mut scratch = Vec::with_capacity(cfg.payload_len);
    let mut send = |conn: &mut WsConn, count: usize, next_seq: &mut u64| {
        for _ in 0..count {
            scratch.clear();
            let stamp = Stamp {
                seq: *next_seq,
                sent_nanos: clock.now_nanos(),
            };
            payload::encode_into(&mut scratch, stamp, cfg.payload_len);
            conn.queue(OP_TEXT, &scratch);
            *next_seq += 1;
        }
    };
    send(&mut conn, cfg.in_flight, &mut next_seq);
    let mut outstanding = cfg.in_flight;
    let drain_until = end + Duration::from_secs(10);
    if let Err(e) = conn.flush().await {
        tally.error = Some(format!("echo write: {e}"));
        return tally;
    }
    while outstanding > 0 {
        let mut got = 0usize;
        let mut closed = false;
        let read = conn.read_frames(|frame| {
            if frame.opcode == OP_CLOSE {
                closed = true;
                return;
            }
            if frame.opcode != OP_TEXT && frame.opcode != OP_BINARY {
                return;
            }
            got += 1;
            let now = Instant::now();
            match payload::parse(frame.payload) {
                Ok(stamp) if frame.payload.len() == cfg.payload_len => {
                    if stamp.seq != expect_seq {
                        tally.out_of_order += 1;
                    }
                    expect_seq = stamp.seq + 1;
                    if now <= end {
                        tally.round_trips += 1;
                        tally
                            .samples
                            .push(clock.nanos_at(now).saturating_sub(stamp.sent_nanos));
                    }
                }
                _ => tally.bad_payloads += 1,
            }
        });
        match tokio::time::timeout_at(drain_until.into(), read).await {
            Ok(Ok(0)) => {
                tally.error = Some("server closed an echo connection".into());
                return tally;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tally.error = Some(format!("echo read: {e}"));
                return tally;
            }
            Err(_) => {
                tally.error = Some(format!(
                    "{outstanding} echoes still outstanding 10 s after the end"
                ));
                return tally;
            }
        }
        if closed {
            tally.error = Some("server sent close on an echo connection".into());
            return tally;
        }
        outstanding = outstanding.saturating_sub(got);
        if Instant::now() < end && got > 0 {
            send(&mut conn, got, &mut next_seq);
            outstanding += got;
            if let Err(e) = conn.flush().await {
                tally.error = Some(format!("echo write: {e}"));
                return tally;
            }
        }
    }
    conn.close().await;
    tally
}
