//! Fan-out: `subscribers` connections on `/fanout` (WebSocket) or `/sse`, one publisher,
//! `messages` stamped payloads; deliveries per second, delivery latency, and every missing,
//! duplicated or unexpected delivery counted.
//!
//! The publisher keeps at most `window` messages not yet delivered to every subscriber, so
//! the server is always busy but its queues stay bounded; a server that loses messages
//! stalls the window, and the run ends after `stall_timeout` with the loss reported.
//! Before the measured phase, warm-up messages are published until every subscriber has
//! seen one: a server may join a connection to its room after answering the upgrade.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::common::{Meter, Report, Target, open_many, per_cpu_second};
use super::delivery::{Ledger, Recorded, Totals};
use super::payload::{self, Clock, Stamp, WARMUP_BASE};
use super::sse_client::{PipelinedPublisher, Publisher, SseConn};
use super::stats::Samples;
use super::wire::{OP_BINARY, OP_CLOSE, OP_TEXT};
use super::ws_client::{WsConn, WsReader, WsWriter};

/// Which transport the subscribers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// WebSocket `/fanout`; subscriber 0 also publishes.
    WebSocket,
    /// `GET /sse`, published with `POST /publish`.
    Sse,
    /// `/graphql` over `graphql-transport-ws`, `subscription { fanout }`, published with
    /// `POST /publish`; each `next` message carries the payload as the field's string.
    GraphQL,
}

/// Fan-out parameters.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// WebSocket or SSE.
    pub transport: Transport,
    /// Subscribers (every one receives every message).
    pub subscribers: usize,
    /// Messages published in the measured phase.
    pub messages: u64,
    /// Payload size in bytes (PROTOCOL.md: 64).
    pub payload_len: usize,
    /// Messages in flight (published, not yet delivered to everyone).
    pub window: u64,
    /// How long the publisher waits for progress before giving up.
    pub stall_timeout: Duration,
    /// Bound on the whole measured phase.
    pub max_duration: Duration,
}

/// Shared between subscribers and the publisher.
#[derive(Debug)]
struct Progress {
    subscribers: u32,
    per_message: Vec<AtomicU32>,
    fully_delivered: AtomicU64,
    warmed: AtomicUsize,
    wake: Notify,
}

impl Progress {
    fn delivered(&self, seq: u64) {
        let n = self.per_message[seq as usize].fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.subscribers {
            self.fully_delivered.fetch_add(1, Ordering::Release);
            self.wake.notify_one();
        }
    }

    fn warmed_up(&self) {
        if self.warmed.fetch_add(1, Ordering::AcqRel) + 1 == self.subscribers as usize {
            self.wake.notify_one();
        }
    }
}

/// One subscriber's record.
#[derive(Debug)]
struct SubTally {
    ledger: Ledger,
    samples: Samples,
    warmed: bool,
    last: Option<Instant>,
    bad_payloads: u64,
    error: Option<String>,
}

impl SubTally {
    fn new(messages: u64) -> Self {
        Self {
            ledger: Ledger::new(messages),
            samples: Samples::with_capacity(messages as usize),
            warmed: false,
            last: None,
            bad_payloads: 0,
            error: None,
        }
    }

    fn on_payload(&mut self, bytes: &[u8], clock: &Clock, progress: &Progress) {
        let now = Instant::now();
        match payload::parse(bytes) {
            Ok(stamp) if stamp.is_warmup() => {
                if !self.warmed {
                    self.warmed = true;
                    progress.warmed_up();
                }
            }
            Ok(stamp) => {
                if self.ledger.record(stamp.seq) == Recorded::New {
                    self.samples
                        .push(clock.nanos_at(now).saturating_sub(stamp.sent_nanos));
                    self.last = Some(now);
                    progress.delivered(stamp.seq);
                }
            }
            Err(_) => self.bad_payloads += 1,
        }
    }
}

/// Where the publisher sends.
enum PublishVia {
    /// One subscriber's write half; the others' are held so their connections stay open.
    Ws {
        writer: WsWriter,
        _others: Vec<WsWriter>,
    },
    /// `POST /publish`, a batch pipelined in one write (SSE).
    Http(PipelinedPublisher),
    /// `POST /publish` one at a time, holding the GraphQL subscribers' write halves.
    GraphQL {
        publisher: Publisher,
        _writers: Vec<WsWriter>,
    },
}

impl PublishVia {
    async fn publish(&mut self, payloads: &[Vec<u8>]) -> io::Result<()> {
        match self {
            Self::Ws { writer, .. } => {
                for p in payloads {
                    writer.queue(OP_TEXT, p);
                }
                writer.flush().await
            }
            Self::Http(h) => h.publish_all(payloads).await,
            Self::GraphQL { publisher: h, .. } => {
                for p in payloads {
                    h.publish(p.clone()).await?;
                }
                Ok(())
            }
        }
    }
}

/// Runs a fan-out scenario.
pub async fn run(target: &Target, cfg: &FanoutConfig) -> io::Result<Report> {
    let name = match cfg.transport {
        Transport::WebSocket => "fanout",
        Transport::Sse => "sse",
        Transport::GraphQL => "graphql",
    };
    let mut report = Report::new(name);
    report.param("subscribers", cfg.subscribers as f64);
    report.param("messages", cfg.messages as f64);
    report.param("payload_bytes", cfg.payload_len as f64);
    report.param("window", cfg.window as f64);
    let progress = Arc::new(Progress {
        subscribers: u32::try_from(cfg.subscribers).map_err(io::Error::other)?,
        per_message: (0..cfg.messages).map(|_| AtomicU32::new(0)).collect(),
        fully_delivered: AtomicU64::new(0),
        warmed: AtomicUsize::new(0),
        wake: Notify::new(),
    });
    let clock = Clock::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = target.server;
    let connect_deadline = Instant::now() + Duration::from_secs(120);
    let per_attempt = Duration::from_secs(15);
    let (mut publisher, tasks) = match cfg.transport {
        Transport::WebSocket => {
            let opened = open_many(
                target,
                cfg.subscribers,
                128,
                1,
                per_attempt,
                connect_deadline,
                |i, src| WsConn::connect(src, server, "/fanout", i as u32 + 1),
            )
            .await;
            check_opened(opened.conns.len(), cfg.subscribers, opened.first_error)?;
            let mut writers = Vec::with_capacity(cfg.subscribers);
            let mut tasks = Vec::with_capacity(cfg.subscribers);
            for conn in opened.conns {
                let (reader, w) = conn.into_split();
                // Dropping a write half would shut the connection's sending side down.
                writers.push(w);
                let (p, s) = (progress.clone(), stop_rx.clone());
                tasks.push(tokio::spawn(ws_subscriber(
                    reader,
                    cfg.messages,
                    clock,
                    p,
                    s,
                )));
            }
            let writer = writers
                .pop()
                .ok_or_else(|| io::Error::other("no subscriber"))?;
            (
                PublishVia::Ws {
                    writer,
                    _others: writers,
                },
                tasks,
            )
        }
        Transport::GraphQL => {
            let opened = open_many(
                target,
                cfg.subscribers,
                128,
                1,
                per_attempt,
                connect_deadline,
                |i, src| {
                    WsConn::connect_graphql(src, server, i as u32 + 1, "subscription { fanout }")
                },
            )
            .await;
            check_opened(opened.conns.len(), cfg.subscribers, opened.first_error)?;
            let mut writers = Vec::with_capacity(cfg.subscribers);
            let mut tasks = Vec::with_capacity(cfg.subscribers);
            for conn in opened.conns {
                let (reader, w) = conn.into_split();
                writers.push(w);
                let (p, s) = (progress.clone(), stop_rx.clone());
                tasks.push(tokio::spawn(graphql_subscriber(
                    reader,
                    cfg.messages,
                    clock,
                    p,
                    s,
                    writers.len(),
                )));
            }
            // The write halves stay open (dropping one would shut its connection down)
            // until the run ends.
            let publisher = Publisher::connect(target.sources.pick(0), server).await?;
            (
                PublishVia::GraphQL {
                    publisher,
                    _writers: writers,
                },
                tasks,
            )
        }
        Transport::Sse => {
            let opened = open_many(
                target,
                cfg.subscribers,
                128,
                1,
                per_attempt,
                connect_deadline,
                |_, src| SseConn::connect(src, server),
            )
            .await;
            check_opened(opened.conns.len(), cfg.subscribers, opened.first_error)?;
            let tasks = opened
                .conns
                .into_iter()
                .map(|conn| {
                    tokio::spawn(sse_subscriber(
                        conn,
                        cfg.messages,
                        clock,
                        progress.clone(),
                        stop_rx.clone(),
                    ))
                })
                .collect();
            (
                PublishVia::Http(
                    PipelinedPublisher::connect(target.sources.pick(0), server).await?,
                ),
                tasks,
            )
        }
    };

    warm_up(&mut publisher, &progress, cfg, &clock).await?;

    let meter = Meter::start(target.server_pid);
    let start = Instant::now();
    let hard_end = start + cfg.max_duration;
    let mut sent = 0u64;
    let mut batch = Vec::new();
    while sent < cfg.messages {
        let done = progress.fully_delivered.load(Ordering::Acquire);
        let allowed = (done + cfg.window).min(cfg.messages).saturating_sub(sent);
        if allowed > 0 {
            batch.clear();
            for seq in sent..sent + allowed {
                batch.push(payload::encode(
                    Stamp {
                        seq,
                        sent_nanos: clock.now_nanos(),
                    },
                    cfg.payload_len,
                ));
            }
            publisher.publish(&batch).await?;
            sent += allowed;
            continue;
        }
        let wait_until = (Instant::now() + cfg.stall_timeout).min(hard_end);
        if tokio::time::timeout_at(wait_until.into(), progress.wake.notified())
            .await
            .is_err()
        {
            report.notes.push(format!(
                "publisher stalled: {done} of {sent} published messages reached every subscriber"
            ));
            break;
        }
    }
    // Wait for the tail (bounded), then stop every subscriber.
    let drain_until = (Instant::now() + cfg.stall_timeout).min(hard_end + cfg.stall_timeout);
    while progress.fully_delivered.load(Ordering::Acquire) < sent {
        if tokio::time::timeout_at(drain_until.into(), progress.wake.notified())
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = stop_tx.send(true);
    let mut totals = Totals::default();
    let mut samples = Samples::with_capacity((sent as usize).saturating_mul(cfg.subscribers));
    let mut last = start;
    let mut bad_payloads = 0;
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(30), task).await {
            Ok(Ok(tally)) => {
                totals.add(&tally.ledger, sent);
                samples.merge(tally.samples);
                last = last.max(tally.last.unwrap_or(start));
                bad_payloads += tally.bad_payloads;
                if let Some(e) = tally.error {
                    report.notes.push(e);
                }
            }
            _ => totals.add_lost(sent),
        }
    }
    let server_cpu = meter.finish(&mut report);
    if let Some(r) = per_cpu_second(totals.delivered as f64, server_cpu) {
        report.metric("deliveries_per_cpu_s", r);
    }
    let elapsed = last.duration_since(start).as_secs_f64().max(1e-9);
    report.metric("messages_sent", sent as f64);
    report.metric("deliveries", totals.delivered as f64);
    report.metric("deliveries_per_s", totals.delivered as f64 / elapsed);
    report.metric("time_to_last_delivery_s", elapsed);
    report.metric("missing", totals.missing as f64);
    report.metric("duplicates", totals.duplicates as f64);
    report.metric("unexpected", (totals.unexpected + bad_payloads) as f64);
    if let Some(s) = samples.summary() {
        report.metric("p50_us", s.p50_us);
        report.metric("p99_us", s.p99_us);
        report.metric("max_us", s.max_us);
    }
    report.notes.sort();
    report.notes.dedup();
    Ok(report)
}

fn check_opened(opened: usize, wanted: usize, first_error: Option<String>) -> io::Result<()> {
    if opened < wanted {
        return Err(io::Error::other(format!(
            "opened {opened} of {wanted} subscribers: {}",
            first_error.unwrap_or_default()
        )));
    }
    Ok(())
}

/// Publishes warm-up messages until every subscriber has seen one (at most 50 tries,
/// 200 ms apart).
async fn warm_up(
    publisher: &mut PublishVia,
    progress: &Progress,
    cfg: &FanoutConfig,
    clock: &Clock,
) -> io::Result<()> {
    for k in 0..50u64 {
        let warm = payload::encode(
            Stamp {
                seq: WARMUP_BASE + k,
                sent_nanos: clock.now_nanos(),
            },
            cfg.payload_len,
        );
        publisher.publish(&[warm]).await?;
        let until = Instant::now() + Duration::from_millis(200);
        while progress.warmed.load(Ordering::Acquire) < cfg.subscribers {
            if tokio::time::timeout_at(until.into(), progress.wake.notified())
                .await
                .is_err()
            {
                break;
            }
        }
        if progress.warmed.load(Ordering::Acquire) >= cfg.subscribers {
            return Ok(());
        }
    }
    Err(io::Error::other(format!(
        "only {} of {} subscribers received a warm-up message",
        progress.warmed.load(Ordering::Acquire),
        cfg.subscribers
    )))
}

async fn ws_subscriber(
    mut reader: WsReader,
    messages: u64,
    clock: Clock,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) -> SubTally {
    let mut tally = SubTally::new(messages);
    loop {
        let mut closed = false;
        let read = reader.read_frames(|frame| match frame.opcode {
            OP_TEXT | OP_BINARY => tally.on_payload(frame.payload, &clock, &progress),
            OP_CLOSE => closed = true,
            _ => {}
        });
        tokio::select! {
            biased;
            r = read => match r {
                Ok(0) => { tally.error = Some("server closed a fan-out connection".into()); break; }
                Ok(_) if closed => { tally.error = Some("server sent close on a fan-out connection".into()); break; }
                Ok(_) => {}
                Err(e) => { tally.error = Some(format!("fan-out read: {e}")); break; }
            },
            _ = stop.changed() => break,
        }
    }
    // Keep the connection open until the run stops, so closing does not load the server
    // while others are still receiving.
    if !*stop.borrow() {
        let _ = stop.changed().await;
    }
    drop(reader);
    tally
}

/// The payload inside a `next` message: the string value of `"fanout"`.
fn graphql_payload(text: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"fanout\":\"";
    let start = text.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = text.get(start..)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    rest.get(..end)
}

async fn graphql_subscriber(
    mut reader: WsReader,
    messages: u64,
    clock: Clock,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
    _index: usize,
) -> SubTally {
    let mut tally = SubTally::new(messages);
    loop {
        let mut closed = false;
        let read = reader.read_frames(|frame| match frame.opcode {
            OP_TEXT => match graphql_payload(frame.payload) {
                Some(payload) => tally.on_payload(payload, &clock, &progress),
                None => tally.bad_payloads += 1,
            },
            OP_CLOSE => closed = true,
            _ => {}
        });
        tokio::select! {
            biased;
            r = read => match r {
                Ok(0) => { tally.error = Some("server closed a GraphQL connection".into()); break; }
                Ok(_) if closed => { tally.error = Some("server sent close on a GraphQL connection".into()); break; }
                Ok(_) => {}
                Err(e) => { tally.error = Some(format!("GraphQL read: {e}")); break; }
            },
            _ = stop.changed() => break,
        }
    }
    if !*stop.borrow() {
        let _ = stop.changed().await;
    }
    drop(reader);
    tally
}

async fn sse_subscriber(
    mut conn: SseConn,
    messages: u64,
    clock: Clock,
    progress: Arc<Progress>,
    mut stop: watch::Receiver<bool>,
) -> SubTally {
    let mut tally = SubTally::new(messages);
    loop {
        let read = tokio::select! {
            biased;
            r = conn.read_events(|data| tally.on_payload(data, &clock, &progress)) => r,
            _ = stop.changed() => break,
        };
        match read {
            Ok(true) => {}
            Ok(false) => {
                tally.error = Some("server ended an SSE stream".into());
                break;
            }
            Err(e) => {
                tally.error = Some(format!("SSE read: {e}"));
                break;
            }
        }
    }
    if !*stop.borrow() {
        let _ = stop.changed().await;
    }
    drop(conn);
    tally
}
