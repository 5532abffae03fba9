//! The demo in cluster mode: two demo nodes on two ports sharing one private
//! `redis-server`, with real WebSocket clients on each.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use examples::testing::{Client, next_text, ws_connect};
use futures_util::SinkExt;

use super::*;

/// How long `redis-server` gets to answer its first `PING` (the machine is loaded).
const REDIS_START: Duration = Duration::from_secs(30);

/// A `redis-server` of this test's own on a free port, killed on drop.
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    /// Starts one. `None` (after a loud notice) when it cannot start and this is not CI;
    /// under `CI=true` that fails the test instead.
    fn start() -> Option<RedisServer> {
        match Self::spawn() {
            Ok(server) => Some(server),
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("CI=true and redis-server cannot start: {e}")
            }
            Err(e) => {
                eprintln!(
                    "\n!!!!!!!! SKIPPED: redis-server cannot start ({e}); install it \
                     (apt-get install redis-server) to run this test !!!!!!!!\n"
                );
                None
            }
        }
    }

    fn spawn() -> Result<RedisServer, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let server = RedisServer { port, child };
        let deadline = Instant::now() + REDIS_START;
        while Instant::now() < deadline {
            if server.pong() {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("did not answer PING".to_owned())
    }

    /// `PING` on a fresh connection answered `+PONG`.
    fn pong(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running demo node and its Redis link.
struct Node {
    server: armature_realtime::RunningServer,
    redis: RedisRealtime,
}

impl Node {
    async fn start(redis: &RedisServer) -> Node {
        let (server, link) = start_node(super::tests::static_dir(), 0, Some(&redis.url()))
            .await
            .expect("demo node started");
        Node {
            server: server.spawn(),
            redis: link.expect("a Redis link"),
        }
    }

    /// Joins `room` as `name` and returns the client with its first `members` message.
    async fn join(&self, room: &str, name: &str) -> (Client, serde_json::Value) {
        let addr = self.server.local_addr();
        let mut ws = ws_connect(&format!("ws://{addr}/ws/chat/{room}?name={name}")).await;
        let members = next_of(&mut ws, "members").await;
        (ws, members)
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

/// The next event of type `kind` (others skipped: with Redis, cluster-wide `online` counts
/// of earlier joins can arrive at any time).
async fn next_of(ws: &mut Client, kind: &str) -> serde_json::Value {
    loop {
        let event = json(&next_text(ws).await);
        if event["type"] == kind {
            return event;
        }
    }
}

/// The next chat line (member counts are skipped).
async fn next_line(ws: &mut Client) -> serde_json::Value {
    loop {
        let event = json(&next_text(ws).await);
        if event["type"] == "message" {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_a_room_every_line_once_and_in_order() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(&redis).await;
    let b = Node::start(&redis).await;
    let (node_a, node_b) = (a.redis.node_id(), b.redis.node_id());
    assert_ne!(node_a, node_b);

    // Member counts are per node, and say which node they count.
    let (mut ada, members) = a.join("lobby", "Ada").await;
    assert_eq!(
        (members["count"].as_u64(), members["node"].as_str()),
        (Some(1), Some(node_a))
    );
    let (mut bob, members) = b.join("lobby", "Bob").await;
    assert_eq!(
        (members["count"].as_u64(), members["node"].as_str()),
        (Some(1), Some(node_b))
    );
    let (mut cy, members) = a.join("lobby", "Cy").await;
    assert_eq!(members["count"], 2);
    let (mut dee, members) = b.join("lobby", "Dee").await;
    assert_eq!(members["count"], 2);
    let (mut eve, _) = b.join("elsewhere", "Eve").await;

    // Ada (node A) and Bob (node B) talk at the same time.
    const N: usize = 100;
    async fn talk(ws: &mut Client, who: &str) {
        for i in 0..N {
            ws.send(format!("{who} {i}").into()).await.unwrap();
        }
    }
    tokio::join!(talk(&mut ada, "Ada"), talk(&mut bob, "Bob"));

    // Everyone in the lobby, on both nodes, gets all 2N lines: each speaker's in the order
    // spoken, stamped with the node that relayed it.
    for ws in [&mut ada, &mut bob, &mut cy, &mut dee] {
        let mut next = [0usize; 2];
        for _ in 0..2 * N {
            let line = next_line(ws).await;
            let text = line["text"].as_str().unwrap();
            let (who, i) = text.split_once(' ').unwrap();
            let (at, node) = if who == "Ada" {
                (0, node_a)
            } else {
                (1, node_b)
            };
            assert_eq!(line["name"], who);
            assert_eq!(line["node"], node, "{line}");
            assert_eq!(line["room"], "lobby");
            assert_eq!(i.parse::<usize>().unwrap(), next[at], "{text}");
            next[at] += 1;
        }
    }
    // Exactly once: after a last line from each node, nothing else is pending.
    ada.send("end A".into()).await.unwrap();
    for ws in [&mut ada, &mut bob, &mut cy, &mut dee] {
        assert_eq!(next_line(ws).await["text"], "end A");
    }
    dee.send("end B".into()).await.unwrap();
    for ws in [&mut ada, &mut bob, &mut cy, &mut dee] {
        assert_eq!(next_line(ws).await["text"], "end B");
    }
    for stats in [a.redis.stats(), b.redis.stats()] {
        assert_eq!(
            (stats.gaps, stats.duplicates_dropped, stats.malformed),
            (0, 0, 0)
        );
    }
    // Another room saw none of it: Eve's next line is her own.
    eve.send("anyone?".into()).await.unwrap();
    assert_eq!(next_line(&mut eve).await["text"], "anyone?");

    // Leaving is counted on the leaver's node only.
    drop(cy);
    let members = next_of(&mut ada, "members").await;
    assert_eq!(
        (members["type"].as_str(), members["count"].as_u64()),
        (Some("members"), Some(1))
    );
    // "N online" is cluster-wide: after Cy left, Ada (node A) and Dee (node B) hear that
    // the lobby has 3 members on the two nodes.
    for ws in [&mut ada, &mut dee] {
        while next_of(ws, "online").await["count"] != 3 {}
    }
    for node in [&a, &b] {
        assert_eq!(node.redis.presence_count("lobby").await.unwrap(), 3);
    }
    drop((ada, bob, dee, eve));
    a.server.shutdown().await.unwrap();
    b.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_node_that_cannot_reach_redis_does_not_start() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let Err(e) = start_node(super::tests::static_dir(), 0, Some(&url)).await else {
        panic!("started without Redis");
    };
    assert!(matches!(e, Error::Io(_)), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graphql_subscription_on_one_node_sees_a_publish_on_the_other() {
    use super::graphql_tests::{gql_connect, gql_subscribe};
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(&redis).await;
    let b = Node::start(&redis).await;
    // A GraphQL subscription on node B…
    let mut sub = gql_connect(b.server.local_addr()).await;
    gql_subscribe(
        &mut sub,
        "c",
        r#"subscription { chat(room: "graph") { name text node } }"#,
    )
    .await;
    // …(subscribed in Redis once node B answers a query after it)…
    let mut ask = gql_connect(b.server.local_addr()).await;
    loop {
        gql_subscribe(&mut ask, "r", "{ rooms { name members } }").await;
        let result = json(&next_text(&mut ask).await);
        let _complete = next_text(&mut ask).await;
        if result["payload"]["data"]["rooms"][0]["members"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(b.redis.wait_synced(Duration::from_secs(10)).await);
    // …sees a line published on node A, by a mutation and by a WebSocket chat member.
    let mut publisher = gql_connect(a.server.local_addr()).await;
    gql_subscribe(
        &mut publisher,
        "m",
        r#"mutation { sendChat(room: "graph", name: "Ada", text: "across nodes") }"#,
    )
    .await;
    let line = json(&next_text(&mut sub).await);
    assert_eq!(
        line["payload"]["data"]["chat"],
        serde_json::json!({"name": "Ada", "text": "across nodes", "node": a.redis.node_id()})
    );
    let (mut bob, _) = a.join("graph", "Bob").await;
    bob.send("hi from a socket".into()).await.unwrap();
    let line = json(&next_text(&mut sub).await);
    assert_eq!(line["payload"]["data"]["chat"]["text"], "hi from a socket");
    assert_eq!(line["payload"]["data"]["chat"]["node"], a.redis.node_id());
}
