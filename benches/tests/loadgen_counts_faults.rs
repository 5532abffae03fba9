//! The generator against a deliberately faulty fan-out server over real sockets: it drops
//! every message whose sequence number ends in 0 and sends those ending in 5 twice. The
//! report must count exactly those missing and duplicated deliveries, not hide them in a
//! rate.

use std::net::SocketAddr;
use std::time::Duration;

use benches::loadgen::common::Target;
use benches::loadgen::fanout::{self, FanoutConfig, Transport};
use benches::loadgen::payload::{self, WARMUP_BASE};
use benches::loadgen::system::SourceAddrs;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

/// How many copies of a message the faulty server sends.
fn copies(msg: &Message) -> usize {
    let Ok(stamp) = payload::parse(&msg.clone().into_data()) else {
        return 1;
    };
    match stamp.seq {
        s if s >= WARMUP_BASE => 1,
        s if s % 10 == 0 => 0,
        s if s % 10 == 5 => 2,
        _ => 1,
    }
}

async fn faulty_fanout_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let room = broadcast::channel::<Message>(1024).0;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let room = room.clone();
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let (mut write, mut read) = ws.split();
                let mut rx = room.subscribe();
                let send = tokio::spawn(async move {
                    while let Ok(msg) = rx.recv().await {
                        for _ in 0..copies(&msg) {
                            if write.send(msg.clone()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
                while let Some(Ok(msg)) = read.next().await {
                    if msg.is_text() || msg.is_binary() {
                        let _ = room.send(msg);
                    }
                }
                send.abort();
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_duplicated_deliveries_are_counted_exactly() {
    let server = faulty_fanout_server().await;
    let target = Target {
        server,
        server_pid: None,
        sources: SourceAddrs::new(2),
    };
    let cfg = FanoutConfig {
        transport: Transport::WebSocket,
        subscribers: 5,
        messages: 20,
        payload_len: 64,
        window: 4,
        stall_timeout: Duration::from_secs(2),
        max_duration: Duration::from_secs(60),
    };
    let report = fanout::run(&target, &cfg).await.unwrap();
    let m = |k: &str| report.metrics[k];
    // sequence numbers 0 and 10 never arrive; 5 and 15 arrive twice; 5 subscribers each
    assert_eq!(m("messages_sent"), 20.0, "{report:?}");
    assert_eq!(m("missing"), 10.0, "{report:?}");
    assert_eq!(m("duplicates"), 10.0, "{report:?}");
    assert_eq!(m("deliveries"), 90.0, "{report:?}");
    assert_eq!(m("unexpected"), 0.0, "{report:?}");
    assert!(!report.metrics.contains_key("server_cpu_share"));
}
