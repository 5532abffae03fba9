//! Test support: a private `redis-server` per test, and a server node (WebSocket rooms and
//! an SSE broadcaster on a loopback port) switched to Redis.

#![allow(dead_code, unreachable_pub)]

pub mod cluster;

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use armature_realtime_redis::{Durability, Offset, RedisConfig, RedisRealtime};
use armature_sse::{SseBroadcaster, SseConfig};
use armature_ws::{Hub, WebSocketConfig, WebSocketManager, WebSocketMessage, WebSocketUpgrade};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous: the machine is shared and loaded.
pub const WAIT: Duration = Duration::from_secs(30);

/// A `redis-server` of this test's own, on a free port, killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one. `None` (after a loud notice) when `redis-server` is not installed and
    /// this is not CI; under `CI=true` a server that cannot start fails the test.
    pub fn start() -> Option<RedisServer> {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut server = RedisServer { port, child: None };
        match server.spawn() {
            Ok(()) => Some(server),
            Err(e) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("CI=true and redis-server cannot start: {e}");
                }
                eprintln!(
                    "\n!!!!!!!! SKIPPED: redis-server cannot start ({e}); install it \
                     (apt-get install redis-server) to run this test !!!!!!!!\n"
                );
                None
            }
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if redis::Client::open(self.url())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("did not answer PING".to_owned())
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to the clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + WAIT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => panic!("redis restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// A plain command on a fresh connection.
    pub fn query<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        cmd.query(&mut conn).unwrap()
    }

    /// Closes every connection the node `node_id` has to this server (`CLIENT KILL`).
    pub fn kill_links_of(&self, node_id: &str) -> usize {
        let list: String = self.query(redis::cmd("CLIENT").arg("LIST"));
        let name = format!("name=armature-{node_id} ");
        let mut killed = 0;
        for line in list.lines().filter(|l| l.contains(&name)) {
            let Some(id) = line.split_whitespace().find_map(|f| f.strip_prefix("id=")) else {
                continue;
            };
            let n: i64 = self.query(redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id));
            killed += n as usize;
        }
        killed
    }

    /// `PUBSUB SHARDNUMSUB channel`: how many connections listen to it.
    pub fn shard_subscribers(&self, channel: &str) -> i64 {
        let reply: Vec<redis::Value> =
            self.query(redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel));
        match reply.get(1) {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("SHARDNUMSUB reply {other:?}"),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// One server process of the cluster: a Redis node, a hub, rooms, an SSE broadcaster
/// "news", served on a loopback port.
pub struct Node {
    pub redis: RedisRealtime,
    pub hub: Hub,
    pub manager: Arc<WebSocketManager>,
    pub news: Arc<SseBroadcaster>,
    /// A durable broadcaster, at `/feed`.
    pub feed: Arc<SseBroadcaster>,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.redis.shutdown();
    }
}

impl Node {
    pub async fn start(config: RedisConfig) -> Node {
        let redis = RedisRealtime::connect(config).await.unwrap();
        let hub = redis.hub(WebSocketConfig::default());
        let manager = Arc::new(redis.websocket_manager().remove_empty_rooms(true));
        let news = redis.sse_broadcaster("news", SseConfig::default().history_len(100));
        // Durable: the room "log" (at /dws/log) and the broadcaster "feed" (at /feed).
        redis.durable_room("log", Durability::new()).await.unwrap();
        let feed = redis
            .attach_durable_sse(
                "feed",
                SseBroadcaster::with_config(SseConfig::default().history_len(1000)),
                Durability::new(),
            )
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (m, r, n, f) = (manager.clone(), redis.clone(), news.clone(), feed.clone());
        tokio::spawn(armature_ws::serve(
            listener,
            hub.clone(),
            move |mut req| {
                let (manager, redis, news, feed) = (m.clone(), r.clone(), n.clone(), f.clone());
                async move {
                    let path = req.uri().path().to_owned();
                    if path == "/sse" {
                        return news.response_for(req.headers()).map(|b| b.boxed_unsync());
                    }
                    if path == "/feed" {
                        return feed.response_for(req.headers()).map(|b| b.boxed_unsync());
                    }
                    let durable = path.starts_with("/dws/");
                    let room = path
                        .trim_start_matches("/ws/")
                        .trim_start_matches("/dws/")
                        .to_owned();
                    let response: http::Response<Full<Bytes>> =
                        match WebSocketUpgrade::from_request(&mut req) {
                            Ok(upgrade) => upgrade.on_upgrade(move |socket| {
                                chat(socket, manager, redis, room, durable)
                            }),
                            Err(rejection) => rejection.into_response(),
                        };
                    response.map(|b| b.boxed_unsync())
                }
            },
            async move {
                let _ = stopped.await;
            },
        ));
        Node {
            redis,
            hub,
            manager,
            news,
            feed,
            addr,
            stop: Some(stop),
        }
    }

    /// A WebSocket client in the durable `room`, joined from `from` (`None`: from now),
    /// and its connection id.
    pub async fn durable_client(&self, room: &str, from: Option<&str>) -> (Client, String) {
        let url = format!("ws://{}/dws/{room}", self.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let hello = recv_text(&mut ws).await;
        let id = hello.strip_prefix("id:").unwrap().to_owned();
        match from {
            None => send(&mut ws, "@join").await,
            Some(offset) => send(&mut ws, &format!("@resume {offset} {room}")).await,
        }
        (ws, id)
    }

    /// A WebSocket client in `room`, and its connection id.
    pub async fn client(&self, room: &str) -> (Client, String) {
        let url = format!("ws://{}/ws/{room}", self.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let hello = recv_text(&mut ws).await;
        let id = hello.strip_prefix("id:").unwrap().to_owned();
        (ws, id)
    }

    pub async fn synced(&self) {
        assert!(
            self.redis.wait_synced(WAIT).await,
            "node {} did not sync its subscriptions",
            self.redis.node_id()
        );
    }
}

/// The test server's handler: joins `room`, says its id, then obeys commands:
/// `all:<text>` broadcast to the room, `others:<text>` to all but the sender,
/// `to:<id>:<text>` to one connection on any node, `leave` the room.
async fn chat(
    mut socket: armature_ws::WebSocket,
    manager: Arc<WebSocketManager>,
    redis: RedisRealtime,
    room_name: String,
    durable: bool,
) {
    let id = socket.id().to_owned();
    let room = manager.room(&room_name);
    if durable {
        // The durable resume protocol: say the id, then `@join` or `@resume <offset> <room>`.
        if socket.send_text(format!("id:{id}")).await.is_err() {
            return;
        }
        let Some(Ok(WebSocketMessage::Text(first))) = socket.recv().await else {
            return;
        };
        let from = first
            .strip_prefix("@resume ")
            .and_then(|rest| rest.split_once(' '))
            .map(|(offset, _room)| offset.parse::<Offset>().unwrap());
        redis
            .join_durable(&room, id.clone(), socket.connection(), from)
            .await
            .unwrap();
    } else {
        if redis
            .join(&room, id.clone(), socket.connection())
            .await
            .is_err()
        {
            return;
        }
        if socket.send_text(format!("id:{id}")).await.is_err() {
            return;
        }
    }
    while let Some(Ok(message)) = socket.recv().await {
        let WebSocketMessage::Text(text) = message else {
            continue;
        };
        let text: &str = &text;
        if let Some(rest) = text.strip_prefix("all:") {
            room.broadcast_text(rest.to_owned()).await.unwrap();
        } else if let Some(rest) = text.strip_prefix("others:") {
            room.broadcast_except(&id, WebSocketMessage::text(rest.to_owned()))
                .await
                .unwrap();
        } else if let Some(rest) = text.strip_prefix("to:") {
            let (target, body) = rest.split_once(':').unwrap();
            redis
                .send_to_connection(target, WebSocketMessage::text(body.to_owned()))
                .unwrap();
        } else if text == "leave" {
            room.leave(&id);
            let _ = socket.send_text("left").await;
        }
    }
}

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The next text message, within [`WAIT`].
pub async fn recv_text(ws: &mut Client) -> String {
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("timed out waiting for a message")
            .expect("stream ended")
            .expect("websocket error");
        match next {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Nothing but pings arrives within `quiet`.
pub async fn assert_silent(ws: &mut Client, quiet: Duration) {
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => panic!("expected silence, got {other:?}"),
        }
    }
}

pub async fn send(ws: &mut Client, text: &str) {
    ws.send(Message::text(text.to_owned())).await.unwrap();
}

/// Polls `f` until it is true, within [`WAIT`].
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET /sse` on `addr` (with `Last-Event-ID: last`) over a fresh HTTP/1 connection.
pub async fn sse_get(
    addr: SocketAddr,
    last: Option<&str>,
) -> http::Response<hyper::body::Incoming> {
    sse_get_path(addr, "/sse", last).await
}

/// `GET path` as [`sse_get`].
pub async fn sse_get_path(
    addr: SocketAddr,
    path: &str,
    last: Option<&str>,
) -> http::Response<hyper::body::Incoming> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::get(path).header("host", addr.to_string());
    if let Some(last) = last {
        req = req.header("last-event-id", last);
    }
    sender
        .send_request(req.body(http_body_util::Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap()
}
