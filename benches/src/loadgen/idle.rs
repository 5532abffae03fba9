//! Idle memory: open up to `connections` WebSockets (`/fanout`, so the server holds them
//! in its room as it would in production) or SSE streams, let them settle, and divide the
//! server's resident-memory growth by the number opened.

use std::io;
use std::time::{Duration, Instant};

use super::common::{Report, Target, open_many};
use super::sse_client::SseConn;
use super::system::rss_bytes;
use super::ws_client::WsConn;

/// Idle parameters.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// `true`: WebSocket `/fanout`; `false`: `GET /sse`.
    pub websocket: bool,
    /// How many to open (PROTOCOL.md: 10,000).
    pub connections: usize,
    /// How long to wait after the last one opened before reading memory.
    pub settle: Duration,
}

/// Either kind of idle connection, held open and never read.
enum Held {
    Ws(WsConn),
    Sse(SseConn),
}

/// Runs the idle-memory scenario (needs the server's pid).
pub async fn run(target: &Target, cfg: &IdleConfig) -> io::Result<Report> {
    let mut report = Report::new(if cfg.websocket { "idle-ws" } else { "idle-sse" });
    report.param("connections", cfg.connections as f64);
    let pid = target
        .server_pid
        .ok_or_else(|| io::Error::other("idle scenarios need --server-pid"))?;
    let server = target.server;
    let websocket = cfg.websocket;
    let connect = move |i: usize, src| async move {
        if websocket {
            WsConn::connect(src, server, "/fanout", i as u32 + 1)
                .await
                .map(Held::Ws)
        } else {
            SseConn::connect(src, server).await.map(Held::Sse)
        }
    };
    // One connection first, so lazily built server state is not charged to the others.
    let first = connect(0, target.sources.pick(0)).await?;
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_bytes(pid)?;
    let opened = open_many(
        target,
        cfg.connections,
        64,
        100,
        Duration::from_secs(15),
        Instant::now() + Duration::from_secs(180),
        connect,
    )
    .await;
    tokio::time::sleep(cfg.settle).await;
    let after = rss_bytes(pid)?;
    let n = opened.conns.len();
    report.metric("opened", n as f64);
    report.metric("failures", opened.failures as f64);
    report.metric("rss_before_kib", before as f64 / 1024.0);
    report.metric("rss_after_kib", after as f64 / 1024.0);
    if n > 0 {
        report.metric(
            "kib_per_conn",
            after.saturating_sub(before) as f64 / 1024.0 / n as f64,
        );
    }
    if n < cfg.connections {
        report.notes.push(format!(
            "opened {n} of {} connections; first error: {}",
            cfg.connections,
            opened.first_error.unwrap_or_default()
        ));
    }
    for held in opened.conns {
        match held {
            Held::Ws(ws) => ws.close().await,
            Held::Sse(sse) => drop(sse),
        }
    }
    Ok(report)
}
