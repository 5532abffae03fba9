//! Two server nodes on a private Redis Cluster (3 primaries, 1 replica each), with real
//! WebSocket clients: rooms on every shard, and a primary killed mid-stream.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use armature_realtime_redis::{Offset, RedisConfig};
use support::cluster::RedisCluster;
use support::{Node, assert_silent, recv_text};

fn config(cluster: &RedisCluster, id: &str) -> RedisConfig {
    RedisConfig::cluster(cluster.urls())
        .node_id(id)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300))
        .response_timeout(Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
}

/// One room name per primary, each on that primary's shard.
fn rooms_on_every_shard(cluster: &RedisCluster) -> Vec<(String, u16)> {
    let primaries = cluster.primaries();
    assert_eq!(primaries.len(), 3);
    let mut rooms: Vec<(String, u16)> = Vec::new();
    for i in 0.. {
        let room = format!("room-{i}");
        let owner = cluster
            .owner(cluster.slot(&format!("armature:ws:{room}")))
            .unwrap();
        if !rooms.iter().any(|(_, o)| *o == owner) {
            rooms.push((room, owner));
        }
        if rooms.len() == primaries.len() {
            return rooms;
        }
    }
    unreachable!()
}

/// Reads `n` messages numbered per prefix 0, 1, 2, … in order.
async fn recv_ordered(ws: &mut support::Client, n: usize, prefixes: &[&str]) {
    let mut next = vec![0usize; prefixes.len()];
    for _ in 0..n {
        let text = recv_text(ws).await;
        let (prefix, number) = text.split_once(':').unwrap();
        let at = prefixes.iter().position(|p| *p == prefix).unwrap();
        assert_eq!(number.parse::<usize>().unwrap(), next[at], "{text}");
        next[at] += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_on_every_shard_deliver_once_in_order_and_traffic_resumes_after_a_failover() {
    let Some(mut cluster) = RedisCluster::start(3, 1) else {
        return;
    };
    let a = Node::start(config(&cluster, "node-a-")).await;
    let b = Node::start(config(&cluster, "node-b-")).await;
    let mut rooms = rooms_on_every_shard(&cluster);
    let mut clients = Vec::new();
    for (room, _) in &rooms {
        let (ca, _) = a.client(room).await;
        let (cb, _) = b.client(room).await;
        clients.push((ca, cb));
    }
    a.synced().await;
    b.synced().await;
    for (room, _) in &rooms {
        // Each node listens on the shard that owns the room's slot.
        assert_eq!(cluster.shard_subscribers(&format!("armature:ws:{room}")), 2);
    }

    const N: usize = 100;
    let mut publishers = Vec::new();
    for (room, _) in &rooms {
        for (node, prefix) in [(&a, "a"), (&b, "b")] {
            let room = node.manager.room(room);
            publishers.push(tokio::spawn(async move {
                for i in 0..N {
                    room.broadcast_text(format!("{prefix}:{i}")).await.unwrap();
                }
            }));
        }
    }
    for p in publishers {
        p.await.unwrap();
    }
    for (ca, cb) in &mut clients {
        recv_ordered(ca, 2 * N, &["a", "b"]).await;
        recv_ordered(cb, 2 * N, &["a", "b"]).await;
    }
    for (ca, cb) in &mut clients {
        assert_silent(ca, Duration::from_millis(200)).await;
        assert_silent(cb, Duration::from_millis(200)).await;
    }
    let sb = b.redis.stats();
    assert_eq!(sb.received, (rooms.len() * N) as u64, "{sb:?}");
    assert_eq!(
        (sb.gaps, sb.duplicates_dropped, sb.malformed),
        (0, 0, 0),
        "{sb:?}"
    );

    let stop_durable = Arc::new(AtomicBool::new(false));
    // Mid-stream, the primary of the durable room's shard dies; its replica takes over. The
    // volatile room on that shard and the durable one carry traffic meanwhile.
    let durable_slot = cluster.slot("armature:{dws:log}");
    let dead = cluster.owner(durable_slot).unwrap();
    let at = rooms.iter().position(|(_, o)| *o == dead).unwrap();
    rooms.swap(0, at);
    clients.swap(0, at);
    let (room0, _) = rooms[0].clone();
    let slot = cluster.slot(&format!("armature:ws:{room0}"));
    let (mut durable_b, _) = b.durable_client("log", None).await;
    let start = recv_text(&mut durable_b).await;
    let start: Offset = start
        .strip_prefix("@offset ")
        .unwrap()
        .split_once(' ')
        .unwrap()
        .0
        .parse()
        .unwrap();
    let durable_sent = Arc::new(AtomicUsize::new(0));
    let durable_publisher = {
        let (room, stop, sent) = (
            a.manager.room("log"),
            stop_durable.clone(),
            durable_sent.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = sent.fetch_add(1, Ordering::Relaxed);
                room.broadcast_text(format!("d:{i}")).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let publisher = {
        let (room, stop, sent) = (a.manager.room(&room0), stop.clone(), sent.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = sent.fetch_add(1, Ordering::Relaxed);
                room.broadcast_text(format!("a:{i}")).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    cluster.kill(dead);
    let promoted = cluster.wait_failover(slot, dead);
    assert_ne!(promoted, dead);
    // B's member hears the stream again after the failover: strictly increasing numbers
    // (what was published while the shard had no primary may be missing: a volatile room),
    // until it hears one sent after the new primary took over.
    let after_failover = sent.load(Ordering::Relaxed);
    let (_, cb) = &mut clients[0];
    let mut last: Option<usize> = None;
    let mut heard = 0u64;
    loop {
        let text = recv_text(cb).await;
        let n: usize = text.strip_prefix("a:").unwrap().parse().unwrap();
        if let Some(l) = last {
            assert!(n > l, "{n} after {l}: out of order or twice");
        }
        last = Some(n);
        heard += 1;
        if n > after_failover + 20 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();
    let total = sent.load(Ordering::Relaxed);
    while last.is_some_and(|l| l + 1 < total) {
        let text = recv_text(cb).await;
        let n: usize = text.strip_prefix("a:").unwrap().parse().unwrap();
        assert!(last.is_some_and(|l| n > l), "{n} after {last:?}");
        last = Some(n);
        heard += 1;
    }
    // What the volatile room's member did not hear (published on the shard while it had no
    // primary, or before b subscribed again on the promoted replica) is exactly what b
    // reports missed: none of it is hidden, and the durable room adds nothing to it.
    let volatile_missed = total as u64 - heard;
    assert_eq!(
        cluster.shard_subscribers(&format!("armature:ws:{room0}")),
        2
    );
    // The durable room lost nothing: every message, once, in order, numbered without a hole.
    stop_durable.store(true, Ordering::Relaxed);
    durable_publisher.await.unwrap();
    let durable_total = durable_sent.load(Ordering::Relaxed);
    for i in 0..durable_total {
        let marker = recv_text(&mut durable_b).await;
        let offset: Offset = marker
            .strip_prefix("@offset ")
            .unwrap()
            .split_once(' ')
            .unwrap()
            .0
            .parse()
            .unwrap();
        assert_eq!(offset.offset, start.offset + 1 + i as u64, "{marker}");
        assert_eq!(recv_text(&mut durable_b).await, format!("d:{i}"));
    }
    assert_silent(&mut durable_b, Duration::from_millis(200)).await;
    let sb = b.redis.stats();
    assert_eq!(sb.messages_missed, volatile_missed, "{sb:?}");
    assert_eq!(sb.gaps > 0, volatile_missed > 0, "{sb:?}");
    // What reached Redis once is not published again when the link is made again (only the
    // failed shard's part of a batch is sent again).
    assert!(sb.duplicates_dropped < 100, "{sb:?}");
    // The other shards carry traffic both ways as before.
    for (i, (room, _)) in rooms.iter().enumerate().skip(1) {
        a.manager.room(room).broadcast_text("a:0").await.unwrap();
        b.manager.room(room).broadcast_text("b:0").await.unwrap();
        let (ca, cb) = &mut clients[i];
        recv_ordered(ca, 2, &["a", "b"]).await;
        recv_ordered(cb, 2, &["a", "b"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_follows_its_slot_when_it_is_migrated_to_another_shard() {
    let Some(cluster) = RedisCluster::start(3, 0) else {
        return;
    };
    let a = Node::start(config(&cluster, "node-a-")).await;
    let b = Node::start(config(&cluster, "node-b-")).await;
    let channel = "armature:ws:moving";
    let slot = cluster.slot(channel);
    let from = cluster.owner(slot).unwrap();
    let to = *cluster.primaries().iter().find(|&&p| p != from).unwrap();
    let (mut on_b, _) = b.client("moving").await;
    let room = a.manager.room("moving");
    room.broadcast_text("a:0").await.unwrap();
    assert_eq!(recv_text(&mut on_b).await, "a:0");
    assert_eq!(cluster.shard_subscribers(channel), 1);

    // Resharding: the server drops the slot's shard-channel subscribers (-SUNSUBSCRIBE);
    // node b subscribes again, on the new owner.
    cluster.migrate_slot(slot, to);
    assert_eq!(cluster.owner(slot), Some(to));
    let mut sent = 1;
    let mut last = 0;
    loop {
        room.broadcast_text(format!("a:{sent}")).await.unwrap();
        sent += 1;
        match tokio::time::timeout(Duration::from_millis(100), recv_text(&mut on_b)).await {
            Ok(text) => {
                let n: usize = text.strip_prefix("a:").unwrap().parse().unwrap();
                assert!(n > last, "{n} after {last}");
                last = n;
                break;
            }
            Err(_) => assert!(sent < 300, "node b never heard the room again"),
        }
    }
    assert_eq!(cluster.shard_subscribers(channel), 1);
    room.broadcast_text("a:last").await.unwrap();
    loop {
        let text = recv_text(&mut on_b).await;
        if text == "a:last" {
            break;
        }
        let n: usize = text.strip_prefix("a:").unwrap().parse().unwrap();
        assert!(n > last, "{n} after {last}");
        last = n;
    }
}
