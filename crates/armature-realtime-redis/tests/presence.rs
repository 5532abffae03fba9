//! Presence across nodes: member ids and counts per room, cluster-wide, and a node killed
//! with SIGKILL (a child process) leaving the count within the TTL.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use armature_realtime_redis::RedisConfig;
use support::{Node, RedisServer};

const TTL: Duration = Duration::from_millis(1500);
const CHILD_ENV: &str = "ARMATURE_PRESENCE_CHILD_REDIS";

fn config(url: String, id: &str) -> RedisConfig {
    RedisConfig::new(url).node_id(id).presence(TTL)
}

/// The child process: a node with three members in "lobby", until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_killed_node_leaves_the_count_within_the_ttl"]
async fn presence_child_node() {
    let url = std::env::var(CHILD_ENV).expect("run by the presence test");
    let node = Node::start(config(url, "node-c-")).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(node.client("lobby").await);
    }
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_leaves_the_count_within_the_ttl() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(config(redis.url(), "node-a-")).await;
    let (_a1, id1) = a.client("lobby").await;
    let (a2, _) = a.client("lobby").await;
    wait_count(&a, "lobby", 2, "a's members counted").await;

    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "presence_child_node", "--nocapture"])
            .env(CHILD_ENV, redis.url())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_count(&a, "lobby", 5, "the child's members counted").await;
    let presence = a.redis.presence("lobby").await.unwrap();
    assert_eq!(presence.count(), 5);
    assert_eq!(
        presence
            .members
            .iter()
            .filter(|m| m.starts_with("node-c-"))
            .count(),
        3,
        "{presence:?}"
    );

    // SIGKILL: no goodbye. Its members leave the count within the TTL.
    child.0.kill().unwrap();
    let killed = Instant::now();
    let _ = child.0.wait();
    wait_count(&a, "lobby", 2, "the killed node's members gone").await;
    let took = killed.elapsed();
    assert!(took <= TTL + Duration::from_millis(1000), "{took:?}");

    // A member that leaves goes at the next refresh (or one asked for now).
    drop(a2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(a.redis.refresh_presence().await);
    wait_count(&a, "lobby", 1, "a leaving member gone").await;
    assert_eq!(a.redis.presence("lobby").await.unwrap().members, [id1]);
}

/// The child, killed if the test fails before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls the cluster-wide count of `room` until it is `n`.
async fn wait_count(node: &Node, room: &str, n: usize, what: &str) {
    let deadline = Instant::now() + support::WAIT;
    loop {
        if node.redis.presence_count(room).await.ok() == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
