//! Two server nodes sharing one private Redis, with real WebSocket and SSE clients.

mod support;

use std::time::Duration;

use armature_realtime_redis::{RedisConfig, RedisEvent};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use support::{Node, RedisServer, WAIT, assert_silent, eventually, recv_text, send};

async fn two_nodes(redis: &RedisServer) -> (Node, Node) {
    let a = Node::start(RedisConfig::new(redis.url()).node_id("node-a-")).await;
    let b = Node::start(RedisConfig::new(redis.url()).node_id("node-b-")).await;
    (a, b)
}

/// Reads `n` messages and checks that the ones starting with each of `prefixes` are
/// numbered 0, 1, 2, … in order: every publisher's order kept, nothing twice or missing.
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
async fn room_broadcast_reaches_every_member_on_every_node_once_and_in_order() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_nodes(&redis).await;
    let (mut a1, _) = a.client("chat").await;
    let (mut a2, _) = a.client("chat").await;
    let (mut b1, _) = b.client("chat").await;
    let (mut b2, _) = b.client("chat").await;
    a.synced().await;
    b.synced().await;

    const N: usize = 300;
    let room_a = a.manager.room("chat");
    let room_b = b.manager.room("chat");
    let pa = tokio::spawn(async move {
        for i in 0..N {
            room_a.broadcast_text(format!("a:{i}")).await.unwrap();
        }
    });
    let pb = tokio::spawn(async move {
        for i in 0..N {
            room_b.broadcast_text(format!("b:{i}")).await.unwrap();
        }
    });
    pa.await.unwrap();
    pb.await.unwrap();
    for ws in [&mut a1, &mut a2, &mut b1, &mut b2] {
        recv_ordered(ws, 2 * N, &["a", "b"]).await;
    }
    // Exactly once: nothing more arrives (an echo from Redis would be a second copy).
    for ws in [&mut a1, &mut a2, &mut b1, &mut b2] {
        assert_silent(ws, Duration::from_millis(300)).await;
    }
    // Each origin saw its own messages come back from Redis and ignored them.
    eventually("own echoes ignored", || {
        a.redis.stats().own_ignored == N as u64 && b.redis.stats().own_ignored == N as u64
    })
    .await;
    let sa = a.redis.stats();
    assert_eq!(sa.received, N as u64);
    assert_eq!(sa.delivered, N as u64);
    assert_eq!((sa.gaps, sa.duplicates_dropped, sa.malformed), (0, 0, 0));
    assert_eq!(redis.shard_subscribers("armature:ws:chat"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_except_sender_and_targeted_send_work_across_nodes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_nodes(&redis).await;
    let (mut a1, a1_id) = a.client("chat").await;
    let (mut a2, _) = a.client("chat").await;
    let (mut b1, b1_id) = b.client("chat").await;
    let (mut b2, _) = b.client("chat").await;
    assert!(a1_id.starts_with("node-a-") && b1_id.starts_with("node-b-"));
    a.synced().await;
    b.synced().await;

    // Everyone but the sender, on both nodes.
    send(&mut a1, "others:hello").await;
    for ws in [&mut a2, &mut b1, &mut b2] {
        assert_eq!(recv_text(ws).await, "hello");
    }
    // The sender's next message is the marker: it never got "hello".
    send(&mut b1, "all:marker-1").await;
    for ws in [&mut a1, &mut a2, &mut b1, &mut b2] {
        assert_eq!(recv_text(ws).await, "marker-1");
    }

    // Except-sender from node B: its own local peer and node A's members get it.
    send(&mut b2, "others:from-b2").await;
    for ws in [&mut a1, &mut a2, &mut b1] {
        assert_eq!(recv_text(ws).await, "from-b2");
    }

    // To one connection on the other node, and back.
    send(&mut a1, &format!("to:{b1_id}:secret")).await;
    assert_eq!(recv_text(&mut b1).await, "secret");
    send(&mut b1, &format!("to:{a1_id}:reply")).await;
    assert_eq!(recv_text(&mut a1).await, "reply");
    // Nobody else got either: their next message is the marker.
    send(&mut a2, "all:marker-2").await;
    for ws in [&mut a1, &mut a2, &mut b1] {
        assert_eq!(recv_text(ws).await, "marker-2");
    }
    assert_eq!(recv_text(&mut b2).await, "marker-2");

    // An id on a node that has no such connection is unroutable there, counted.
    let before = b.redis.stats().unroutable;
    a.redis
        .send_to_connection(
            "node-b-999999",
            armature_ws::WebSocketMessage::text("nobody"),
        )
        .unwrap();
    eventually("unroutable counted", || {
        b.redis.stats().unroutable == before + 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_broadcasts_cross_nodes_and_resume_on_another_node_has_no_duplicates() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_nodes(&redis).await;
    a.synced().await;
    b.synced().await;

    // A real EventSource-style client on node B, over HTTP.
    let addr = b.addr;
    let get = |last: Option<&'static str>| support::sse_get(addr, last);
    let response = get(None).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = response.into_body().into_data_stream().eventsource();
    eventually("sse client registered", || b.news.stats().clients == 1).await;

    for i in 1..=5 {
        let event = armature_sse::ServerSentEvent::new(format!("update {i}")).id(format!("a-{i}"));
        a.news.broadcast(event).await.unwrap();
    }
    for i in 1..=5 {
        let event = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.id, format!("a-{i}"));
        assert_eq!(event.data, format!("update {i}"));
    }
    // Node B's history holds node A's events: a client that saw a-2 on node A and
    // reconnects to node B gets a-3.. once each, then live events.
    let resumed = get(Some("a-2")).await;
    let mut resumed = resumed.into_body().into_data_stream().eventsource();
    b.news
        .broadcast(armature_sse::ServerSentEvent::new("live".to_owned()).id("b-1".to_owned()))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let event = tokio::time::timeout(WAIT, resumed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        ids.push(event.id);
    }
    assert_eq!(ids, ["a-3", "a-4", "a-5", "b-1"]);
    // B's own event reached A (whose history now ends with it), and nothing echoed back.
    eventually("b-1 reached node a", || a.news.stats().events == 6).await;
    assert_eq!(b.news.stats().events, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_stream_recovers_and_reports_the_gap() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let config = |id: &str| {
        RedisConfig::new(redis.url())
            .node_id(id)
            .outbox_messages(3)
            .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(300))
    };
    let a = Node::start(config("node-a-")).await;
    let b = Node::start(config("node-b-")).await;
    let mut b_events = b.redis.events();
    let (mut a1, _) = a.client("chat").await;
    let (mut b1, _) = b.client("chat").await;
    a.synced().await;
    b.synced().await;

    let room = a.manager.room("chat");
    let mut sent = 0;
    // One at a time: the outbox holds only 3.
    for _ in 0..20 {
        room.broadcast_text(format!("a:{sent}")).await.unwrap();
        assert_eq!(recv_text(&mut b1).await, format!("a:{sent}"));
        sent += 1;
    }

    redis.kill();
    eventually("both nodes see the link down", || {
        !a.redis.stats().connected && !b.redis.stats().connected
    })
    .await;
    // Local delivery goes on while Redis is away; the outbox holds 3 and drops the rest.
    for _ in 0..10 {
        room.broadcast_text(format!("a:{sent}")).await.unwrap();
        sent += 1;
    }
    recv_ordered(&mut a1, 30, &["a"]).await;
    assert!(a.redis.stats().publish_dropped >= 7);

    redis.restart();
    a.synced().await;
    b.synced().await;
    assert!(a.redis.stats().reconnects >= 1 && b.redis.stats().reconnects >= 1);

    // Broadcasts flow again: publish until B's client hears one.
    let mut heard = None;
    for _ in 0..200 {
        room.broadcast_text(format!("a:{sent}")).await.unwrap();
        sent += 1;
        if let Ok(text) = tokio::time::timeout(Duration::from_millis(100), recv_text(&mut b1)).await
        {
            heard = Some(text);
            break;
        }
    }
    let first: usize = heard.expect("no broadcast reached node b after the restart")[2..]
        .parse()
        .unwrap();
    assert!(first >= 20, "message {first} after the restart");
    // Once the outbox has drained, a last message; everything up to it arrives in order,
    // without duplicates (what waited in the outbox may come first).
    eventually("outbox drained", || a.redis.stats().outbox_len == 0).await;
    room.broadcast_text(format!("a:{sent}")).await.unwrap();
    let mut last = first;
    while last < sent {
        let text = recv_text(&mut b1).await;
        let n: usize = text[2..].parse().unwrap();
        assert!(n > last, "{n} after {last}");
        last = n;
    }
    // The outbox kept 3 of the 10 sent while Redis was away, so at least 7 were missed;
    // the gap was counted and reported, with its size.
    let stats = b.redis.stats();
    assert!(stats.gaps >= 1, "{stats:?}");
    assert!(stats.messages_missed >= 7, "{stats:?}");
    assert_eq!(stats.malformed, 0, "{stats:?}");
    let (mut reported, mut disconnected, mut reconnected) = (0, false, false);
    while let Ok(event) = b_events.try_recv() {
        match event {
            RedisEvent::Gap {
                channel,
                origin,
                missed,
            } => {
                assert_eq!(
                    (channel.as_str(), origin.as_str()),
                    ("armature:ws:chat", "node-a-")
                );
                reported += missed;
            }
            RedisEvent::Disconnected { .. } => disconnected = true,
            RedisEvent::Connected { reconnect } => reconnected |= reconnect,
            _ => {}
        }
    }
    assert!(disconnected && reconnected);
    assert_eq!(reported, stats.messages_missed);
    assert_silent(&mut b1, Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_listens_to_a_room_only_while_it_has_members_there() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_nodes(&redis).await;
    let channel = "armature:ws:quiet";
    assert_eq!(redis.shard_subscribers(channel), 0);

    let (mut b1, _) = b.client("quiet").await;
    let (mut b2, _) = b.client("quiet").await;
    b.synced().await;
    assert_eq!(redis.shard_subscribers(channel), 1);

    let room = a.manager.room("quiet");
    room.broadcast_text("one").await.unwrap();
    assert_eq!(recv_text(&mut b1).await, "one");
    assert_eq!(recv_text(&mut b2).await, "one");

    // One member leaves: still subscribed.
    send(&mut b1, "leave").await;
    assert_eq!(recv_text(&mut b1).await, "left");
    b.synced().await;
    assert_eq!(redis.shard_subscribers(channel), 1);
    // The last one disconnects: unsubscribed.
    drop(b2);
    eventually("unsubscribed", || redis.shard_subscribers(channel) == 0).await;
    b.synced().await;

    let received = b.redis.stats().received;
    for i in 0..20 {
        room.broadcast_text(format!("nobody-{i}")).await.unwrap();
    }
    eventually("published", || a.redis.stats().published >= 21).await;
    // Another room's traffic still flows, so B is live: the quiet room's did not reach it.
    let (mut b3, _) = b.client("other").await;
    b.synced().await;
    a.manager.room("other").broadcast_text("hi").await.unwrap();
    assert_eq!(recv_text(&mut b3).await, "hi");
    assert_eq!(b.redis.stats().received, received + 1);
    assert_silent(&mut b1, Duration::from_millis(200)).await;
    // Node channel, SSE channel, "other", and the test node's two durable channels (a
    // durable room or broadcaster is listened to for as long as it is declared).
    assert_eq!(b.redis.stats().subscriptions, 5);
}

#[tokio::test]
async fn unreachable_redis_at_start_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RedisConfig::new(format!("redis://user:hunter2@127.0.0.1:{port}"))
        .connect_timeout(Duration::from_secs(2));
    let err = armature_realtime_redis::RedisRealtime::connect(config)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("cannot reach redis at 127.0.0.1:{port}")),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert!(matches!(err, armature_realtime_redis::Error::Io(_)));

    let err = armature_realtime_redis::RedisRealtime::connect(
        RedisConfig::new("redis://127.0.0.1:1").node_id("node7"),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("must not end in a digit"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_pubsub_mode_carries_rooms_too() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let classic = |id: &str| {
        RedisConfig::new(redis.url())
            .node_id(id)
            .mode(armature_realtime_redis::PubSubMode::Classic)
            .channel_prefix("app2:")
    };
    let a = Node::start(classic("node-a-")).await;
    let b = Node::start(classic("node-b-")).await;
    let (mut a1, _) = a.client("chat").await;
    let (mut b1, b1_id) = b.client("chat").await;
    a.synced().await;
    b.synced().await;
    let reply: Vec<redis::Value> =
        redis.query(redis::cmd("PUBSUB").arg("NUMSUB").arg("app2:ws:chat"));
    assert_eq!(reply.get(1), Some(&redis::Value::Int(2)));
    assert_eq!(redis.shard_subscribers("app2:ws:chat"), 0);

    send(&mut a1, "all:classic").await;
    assert_eq!(recv_text(&mut a1).await, "classic");
    assert_eq!(recv_text(&mut b1).await, "classic");
    send(&mut a1, &format!("to:{b1_id}:direct")).await;
    assert_eq!(recv_text(&mut b1).await, "direct");
    assert_silent(&mut a1, Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_closes_the_link() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let clients = || {
        let info: String = redis.query(redis::cmd("INFO").arg("clients"));
        info.lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .unwrap()
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    // The query's own connection counts as one.
    assert_eq!(clients(), 1);
    let node = armature_realtime_redis::RedisRealtime::connect(RedisConfig::new(redis.url()))
        .await
        .unwrap();
    let manager = node.websocket_manager();
    let room = manager.room("r");
    assert_eq!(clients(), 2);
    drop(node);
    // The manager's rooms still hold the node: the link stays.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(clients(), 2);
    drop((room, manager));
    eventually("link closed", || clients() == 1).await;
}

/// An envelope written by hand from `docs/redis.md`, as another implementation would.
fn hand_made_envelope(origin: &str, seq: u64, frame: &[u8]) -> Vec<u8> {
    let mut e = b"AR\x01\x01".to_vec();
    e.push(origin.len() as u8);
    e.extend_from_slice(origin.as_bytes());
    e.extend_from_slice(&42u64.to_be_bytes());
    e.extend_from_slice(&seq.to_be_bytes());
    e.extend_from_slice(&0xFFFFu16.to_be_bytes());
    e.extend_from_slice(frame);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_envelope_is_what_travels_and_garbage_is_dropped() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (_a, b) = two_nodes(&redis).await;
    let (mut b1, _) = b.client("chat").await;
    b.synced().await;
    let spublish = |payload: &[u8]| -> i64 {
        redis.query(redis::cmd("SPUBLISH").arg("armature:ws:chat").arg(payload))
    };
    // A foreign publisher following the documented layout: delivered.
    assert_eq!(
        spublish(&hand_made_envelope("other-", 1, b"\x81\x05hello")),
        1
    );
    assert_eq!(recv_text(&mut b1).await, "hello");
    // Not an envelope; a masked frame; a frame with trailing bytes; an unknown version.
    spublish(b"hello world");
    spublish(&hand_made_envelope("other-", 2, b"\x81\x85\0\0\0\0hello"));
    spublish(&hand_made_envelope("other-", 3, b"\x81\x01hi"));
    let mut v2 = hand_made_envelope("other-", 4, b"\x81\x01h");
    v2[2] = 2;
    spublish(&v2);
    // Then a good one: numbers 2-4 never arrived as valid messages, so it is a gap of 3.
    spublish(&hand_made_envelope("other-", 5, b"\x81\x04next"));
    assert_eq!(recv_text(&mut b1).await, "next");
    let stats = b.redis.stats();
    assert_eq!(stats.malformed, 4, "{stats:?}");
    assert_eq!((stats.gaps, stats.messages_missed), (1, 3), "{stats:?}");
    assert_silent(&mut b1, Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_join_returns_the_next_remote_broadcast_arrives() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_nodes(&redis).await;
    // The test server joins with `RedisRealtime::join` and says the id only after it
    // returned; no `synced()` here: the first broadcast from the other node right after
    // must arrive. Fresh rooms each time, so every join is a first subscription.
    for i in 0..20 {
        let room = format!("fresh-{i}");
        let (mut b1, _) = b.client(&room).await;
        a.manager
            .room(&room)
            .broadcast_text(format!("first-{i}"))
            .await
            .unwrap();
        assert_eq!(recv_text(&mut b1).await, format!("first-{i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_add_connection_returns_the_next_remote_broadcast_arrives() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_nodes(&redis).await;
    // The guide's path: `room.add_connection(..).await` on a plain room of the node's
    // manager (no `RedisRealtime::join`, no `synced()`), then at once a broadcast from the
    // other node. Fresh rooms each time, so every join is a first subscription.
    for i in 0..50 {
        let name = format!("plain-{i}");
        let room = b.manager.get_or_create_room(&name).await;
        let (conn, mut rx) = armature_ws::WebSocketConnection::new(format!("c{i}"));
        room.add_connection(format!("c{i}"), conn).await.unwrap();
        a.manager
            .room(&name)
            .broadcast_text(format!("first-{i}"))
            .await
            .unwrap();
        let got = tokio::time::timeout(WAIT, rx.recv()).await;
        assert_eq!(
            got.ok().flatten(),
            Some(armature_ws::WebSocketMessage::text(format!("first-{i}"))),
            "join {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graphql_topic_subscription_gets_the_next_remote_broadcast() {
    use futures_util::StreamExt;
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = two_nodes(&redis).await;
    // `topic::room(..).await` (what a GraphQL resolver returns) joins with
    // `add_connection(..).await`: once it returns, a broadcast from the other node reaches
    // the stream. Fresh rooms each time, so every join is a first subscription.
    for i in 0..50 {
        let name = format!("graphql-{i}");
        let room = b.manager.get_or_create_room(&name).await;
        let mut events = Box::pin(armature_realtime_graphql::topic::room::<String>(&room).await);
        a.manager
            .room(&name)
            .broadcast_json(&format!("first-{i}"))
            .await
            .unwrap();
        let got = tokio::time::timeout(WAIT, events.next()).await;
        assert_eq!(got.ok().flatten(), Some(format!("first-{i}")), "join {i}");
    }
}
