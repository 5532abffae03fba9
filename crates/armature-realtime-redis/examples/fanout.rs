//! Cross-node fan-out next to single-node fan-out, in the same run.
//!
//! Two nodes (A and B) in this process share one Redis, each on its own tokio runtime (as
//! if two processes); 1,000 real WebSocket clients (tokio-tungstenite, on a third runtime)
//! are connected to node B, each in room "fan" (cluster-wide) and in an in-memory room.
//! Then:
//!
//! - single-node: a burst broadcast on the in-memory room (`LocalTransport`, no Redis);
//! - origin node: the same burst on node B's "fan" room (local delivery, plus the publish);
//! - cross-node: the same burst on node A's "fan" room, reaching B through Redis;
//!
//! - durable cross-node: the same burst on node A's durable room "dfan" (Redis Streams: one
//!   script per message appends and publishes; every node delivers in stream order);
//!
//! each timed until every client has every message (deliveries per second), and then a paced
//! run of each (one message every 5 ms) for the delivery latency, p50 and p99: the
//! difference is what the Redis hop adds.
//!
//! ```text
//! cargo run --release -p armature-realtime-redis --example fanout [-- CLIENTS MESSAGES] [--cluster]
//! ```
//!
//! Uses `REDIS_URL` if set, else starts its own `redis-server` on a free port; with
//! `--cluster`, its own 3-primary Redis Cluster (`redis-server --cluster-enabled yes` ×3 and
//! `redis-cli --cluster create`), the nodes connected with `RedisConfig::cluster`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use armature_realtime_redis::{Durability, RedisConfig, RedisRealtime};
use armature_ws::{
    WebSocketConfig, WebSocketConnection, WebSocketMessage, WebSocketRoom, WebSocketUpgrade,
};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::Full;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

struct Shared {
    start: Instant,
    delivered: AtomicU64,
    target: AtomicU64,
    done: Notify,
    latencies: Mutex<Vec<u64>>,
    probe: Mutex<Vec<u64>>,
    record: std::sync::atomic::AtomicBool,
}

struct KillOnDrop(Vec<Child>, Option<std::path::PathBuf>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.1.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn redis_url() -> (String, KillOnDrop) {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return (url, KillOnDrop(Vec::new(), None));
    }
    let port = free_port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server, or set REDIS_URL)");
    std::thread::sleep(Duration::from_millis(300));
    (
        format!("redis://127.0.0.1:{port}"),
        KillOnDrop(vec![child], None),
    )
}

/// A 3-primary Redis Cluster of our own.
fn redis_cluster() -> (Vec<String>, KillOnDrop) {
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let dir = std::env::temp_dir().join(format!("armature-fanout-cluster-{}", ports[0]));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut guard = KillOnDrop(Vec::new(), Some(dir.clone()));
    for port in &ports {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--cluster-enabled",
                "yes",
            ])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        guard.0.push(child);
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(ports.iter().map(|p| format!("127.0.0.1:{p}")))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(status.success(), "redis-cli --cluster create failed");
    // Until every node agrees the cluster is ok.
    for port in &ports {
        loop {
            let out = Command::new("redis-cli")
                .args(["-p", &port.to_string(), "cluster", "info"])
                .output()
                .expect("redis-cli");
            if String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let urls = ports
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    (urls, guard)
}

fn main() {
    let node_b = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime b");
    node_b.block_on(run());
}

async fn run() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let clients = args.first().copied().unwrap_or(1000);
    let messages = args.get(1).copied().unwrap_or(1000);
    let cluster = std::env::args().any(|a| a == "--cluster");
    let (urls, _servers) = if cluster {
        redis_cluster()
    } else {
        let (url, guard) = redis_url();
        (vec![url], guard)
    };
    let config = |id: &str| {
        if cluster {
            RedisConfig::cluster(urls.clone()).node_id(id)
        } else {
            RedisConfig::new(&urls[0]).node_id(id)
        }
    };

    let node_a = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime a");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime clients");
    let config_a = config("a-");
    let a = node_a
        .spawn(RedisRealtime::connect(config_a))
        .await
        .expect("join")
        .expect("connect a");
    let b = RedisRealtime::connect(config("b-"))
        .await
        .expect("connect b");
    let durable = Durability::new().max_len(100_000);
    let declare = a.clone();
    node_a
        .spawn(async move { declare.durable_room("dfan", durable).await })
        .await
        .expect("join")
        .expect("durable room on a");
    b.durable_room("dfan", durable)
        .await
        .expect("durable room on b");
    let manager_a = a.websocket_manager();
    let manager_b = Arc::new(b.websocket_manager());
    let hub = b.hub(WebSocketConfig::default().max_connections(clients + 10));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let routes = manager_b.clone();
    let local = Arc::new(WebSocketRoom::new("local".to_owned()));
    let local_routes = local.clone();
    tokio::spawn(armature_ws::serve(
        listener,
        hub,
        move |mut req| {
            let manager = routes.clone();
            let local = local_routes.clone();
            async move {
                match WebSocketUpgrade::from_request(&mut req) {
                    Ok(upgrade) => upgrade.on_upgrade(move |mut socket| async move {
                        let room = manager.room("fan");
                        let durable = manager.room("dfan");
                        let id = socket.id().to_owned();
                        if room.join(id.clone(), socket.connection()).is_ok()
                            && durable.join(id.clone(), socket.connection()).is_ok()
                            && local.join(id, socket.connection()).is_ok()
                        {
                            while let Some(Ok(_)) = socket.recv().await {}
                        }
                    }),
                    Err(rejection) => rejection.into_response::<Full<Bytes>>(),
                }
            }
        },
        std::future::pending::<()>(),
    ));

    let shared = Arc::new(Shared {
        start: Instant::now(),
        delivered: AtomicU64::new(0),
        target: AtomicU64::new(u64::MAX),
        done: Notify::new(),
        latencies: Mutex::new(Vec::new()),
        probe: Mutex::new(Vec::new()),
        record: false.into(),
    });
    for _ in 0..clients {
        let url = format!("ws://{addr}/ws");
        let (ws, _) = client_rt
            .spawn(tokio_tungstenite::connect_async(url))
            .await
            .expect("join")
            .expect("client connect");
        let shared = shared.clone();
        client_rt.spawn(async move {
            let (_tx, mut rx) = ws.split();
            while let Some(Ok(message)) = rx.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                if text.starts_with("@offset ") {
                    // A durable room's offset marker: not a delivery of its own.
                    continue;
                }
                if shared.record.load(Ordering::Relaxed) {
                    let now = shared.start.elapsed().as_nanos() as u64;
                    if let Some(sent) = text.split(':').nth(1).and_then(|t| t.parse::<u64>().ok()) {
                        shared.latencies.lock().push(now.saturating_sub(sent));
                    }
                }
                let n = shared.delivered.fetch_add(1, Ordering::AcqRel) + 1;
                if n == shared.target.load(Ordering::Acquire) {
                    shared.done.notify_one();
                }
            }
        });
    }
    while manager_b.room("fan").len() < clients || local.len() < clients {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A probe member on node B not bound to a socket: it gets the frame the moment node B
    // delivers it, so its latency is the Redis hop's without the socket fan-out.
    let (probe, mut probe_rx) = WebSocketConnection::new("probe".to_owned());
    manager_b
        .room("fan")
        .join("probe".to_owned(), probe.clone())
        .expect("probe");
    local.join("probe".to_owned(), probe).expect("probe");
    let probe_shared = shared.clone();
    tokio::spawn(async move {
        while let Some(message) = probe_rx.recv().await {
            let WebSocketMessage::Text(text) = message else {
                continue;
            };
            if text.starts_with("@offset ") {
                continue;
            }
            if probe_shared.record.load(Ordering::Relaxed) {
                let now = probe_shared.start.elapsed().as_nanos() as u64;
                if let Some(sent) = text.split(':').nth(1).and_then(|t| t.parse::<u64>().ok()) {
                    probe_shared.probe.lock().push(now.saturating_sub(sent));
                }
            }
        }
    });
    assert!(b.wait_synced(Duration::from_secs(10)).await, "b subscribed");

    let room_a = manager_a.room("fan");
    let room_b = manager_b.room("fan");
    let durable_a = manager_a.room("dfan");
    println!(
        "{clients} clients on node B, {messages} messages of 64 bytes per burst, Redis: {}",
        if cluster {
            "3-primary cluster"
        } else {
            "one server"
        }
    );
    // Warm-up, then the measured bursts, alternating so all see the same machine state.
    for room in [&*local, &room_b, &room_a, &durable_a] {
        burst(&shared, room, clients, 100).await;
    }
    let (mut single, mut origin, mut cross, mut dcross) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        single.push(burst(&shared, &local, clients, messages).await);
        origin.push(burst(&shared, &room_b, clients, messages).await);
        cross.push(burst(&shared, &room_a, clients, messages).await);
        dcross.push(burst(&shared, &durable_a, clients, messages).await);
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    println!(
        "fan-out, deliveries/s (best of 3): single-node (in-memory) {:.0}; origin node with \
         Redis on {:.0}; cross-node via Redis {:.0} ({:.0}% of single-node)",
        best(&single),
        best(&origin),
        best(&cross),
        100.0 * best(&cross) / best(&single)
    );
    println!(
        "durable cross-node via Redis Streams {:.0} deliveries/s ({:.0}% of volatile cross-node)",
        best(&dcross),
        100.0 * best(&dcross) / best(&cross)
    );
    println!(
        "  all runs: single {single:.0?}, origin {origin:.0?}, cross {cross:.0?}, \
         durable {dcross:.0?}"
    );

    let ((s50, s99), (sp50, sp99)) = paced(&shared, &local, clients, 200).await;
    let ((c50, c99), (cp50, cp99)) = paced(&shared, &room_a, clients, 200).await;
    let ((d50, d99), _) = paced(&shared, &durable_a, clients, 200).await;
    println!("latency, paced 1 message / 5 ms (µs):");
    println!(
        "  to node B's delivery (probe member): single-node p50 {sp50:.0} p99 {sp99:.0}; \
         cross-node p50 {cp50:.0} p99 {cp99:.0}; the Redis hop adds p50 {:.0}, p99 {:.0}",
        cp50 - sp50,
        cp99 - sp99
    );
    println!(
        "  to the clients (every delivery): single-node p50 {s50:.0} p99 {s99:.0}; \
         cross-node p50 {c50:.0} p99 {c99:.0}; difference p50 {:.0}, p99 {:.0}",
        c50 - s50,
        c99 - s99
    );
    println!(
        "  durable cross-node, to the clients: p50 {d50:.0} p99 {d99:.0}; over volatile \
         cross-node p50 +{:.0}, p99 +{:.0}",
        d50 - c50,
        d99 - c99
    );
    println!("node A: {:?}", a.stats());
    println!("node B: {:?}", b.stats());
    client_rt.shutdown_background();
    node_a.shutdown_background();
}

fn payload(shared: &Shared, seq: usize) -> String {
    let now = shared.start.elapsed().as_nanos() as u64;
    format!("{seq:08}:{now:020}:{}", "x".repeat(34))
}

/// Broadcasts `messages` at once on `room`; deliveries per second until all arrived.
async fn burst(shared: &Shared, room: &WebSocketRoom, clients: usize, messages: usize) -> f64 {
    shared.record.store(false, Ordering::Relaxed);
    let base = shared.delivered.load(Ordering::Acquire);
    let target = base + (clients * messages) as u64;
    shared.target.store(target, Ordering::Release);
    let started = Instant::now();
    for seq in 0..messages {
        room.broadcast_text(payload(shared, seq))
            .await
            .expect("broadcast");
        if seq % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    wait_for(shared, target).await;
    (clients * messages) as f64 / started.elapsed().as_secs_f64()
}

type Quantiles = (f64, f64);

/// One message every 5 ms; (p50, p99) in microseconds of the latency to every client
/// delivery, and to the probe.
async fn paced(
    shared: &Shared,
    room: &WebSocketRoom,
    clients: usize,
    messages: usize,
) -> (Quantiles, Quantiles) {
    shared.latencies.lock().clear();
    shared.probe.lock().clear();
    shared.record.store(true, Ordering::Relaxed);
    let target = shared.delivered.load(Ordering::Acquire) + (clients * messages) as u64;
    shared.target.store(target, Ordering::Release);
    for seq in 0..messages {
        room.broadcast_text(payload(shared, seq))
            .await
            .expect("broadcast");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    wait_for(shared, target).await;
    shared.record.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let clients = quantiles(std::mem::take(&mut *shared.latencies.lock()));
    let probe = quantiles(std::mem::take(&mut *shared.probe.lock()));
    (clients, probe)
}

fn quantiles(mut l: Vec<u64>) -> Quantiles {
    if l.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    l.sort_unstable();
    let at = |q: f64| l[((l.len() as f64 * q) as usize).min(l.len() - 1)] as f64 / 1000.0;
    (at(0.50), at(0.99))
}

async fn wait_for(shared: &Shared, target: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while shared.delivered.load(Ordering::Acquire) < target {
        assert!(Instant::now() < deadline, "deliveries missing");
        let _ = tokio::time::timeout(Duration::from_millis(50), shared.done.notified()).await;
    }
}
