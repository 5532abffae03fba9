//! Durable rooms and broadcasters: nothing lost across a cut link, and one resume protocol
//! (WebSocket `@resume`, SSE `Last-Event-ID`) that gives exactly the missed messages on any
//! node, with several concurrent publishers.

mod support;

use std::time::Duration;

use armature_realtime_redis::{Offset, RedisConfig, RedisEvent};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use support::{Node, RedisServer, WAIT, assert_silent, eventually, recv_text, sse_get_path};

fn config(redis: &RedisServer, id: &str) -> RedisConfig {
    RedisConfig::new(redis.url())
        .node_id(id)
        .reconnect_backoff(Duration::from_millis(100), Duration::from_millis(300))
}

/// The next durable room message: its `@offset` marker, then the message.
async fn recv_durable(ws: &mut support::Client, room: &str) -> (Offset, String) {
    let marker = recv_text(ws).await;
    let rest = marker
        .strip_prefix("@offset ")
        .unwrap_or_else(|| panic!("expected an @offset marker, got {marker:?}"));
    let (offset, r) = rest.split_once(' ').unwrap();
    assert_eq!(r, room);
    (offset.parse().unwrap(), recv_text(ws).await)
}

/// The `@offset` a fresh member is told on joining.
async fn joined_at(ws: &mut support::Client) -> Offset {
    let text = recv_text(ws).await;
    let rest = text.strip_prefix("@offset ").unwrap();
    rest.split_once(' ').unwrap().0.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_loses_nothing_in_a_durable_room() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(config(&redis, "node-a-")).await;
    let b = Node::start(config(&redis, "node-b-")).await;
    let mut b_events = b.redis.events();
    let (mut on_a, _) = a.durable_client("log", None).await;
    let (mut on_b, _) = b.durable_client("log", None).await;
    let start_a = joined_at(&mut on_a).await;
    let start_b = joined_at(&mut on_b).await;
    assert_eq!(start_a, start_b, "one position, the same on every node");

    const N: usize = 500;
    let room = a.manager.room("log");
    let publisher = tokio::spawn(async move {
        for i in 0..N {
            room.broadcast_text(format!("a:{i}")).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    // Node b's link is cut at least three times mid-stream. It reconnects at once, so an
    // outage can fall between two publishes (one every 2 ms) and miss nothing: cut again
    // (up to 20 times, well inside the ~1 s of publishing) until b has recovered something
    // from the stream, so the recovery path is exercised on a quiet machine too.
    let mut cuts = 0;
    while cuts < 3 || (b.redis.stats().recovered == 0 && cuts < 20) {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let before = b.redis.stats().reconnects;
        assert!(redis.kill_links_of("node-b-") >= 1);
        eventually("b reconnects after its link was cut", || {
            b.redis.stats().reconnects > before
        })
        .await;
        cuts += 1;
    }
    publisher.await.unwrap();
    for ws in [&mut on_a, &mut on_b] {
        for i in 0..N {
            let (offset, text) = recv_durable(ws, "log").await;
            assert_eq!(text, format!("a:{i}"));
            assert_eq!(offset.epoch, start_a.epoch);
            assert_eq!(offset.offset, start_a.offset + 1 + i as u64, "{text}");
        }
        assert_silent(ws, Duration::from_millis(200)).await;
    }
    let stats = b.redis.stats();
    assert!(stats.reconnects >= 3, "{stats:?}");
    assert!(stats.recovered > 0, "{stats:?}");
    assert_eq!((stats.gaps, stats.messages_missed), (0, 0), "{stats:?}");
    let mut recovered = 0;
    while let Ok(event) = b_events.try_recv() {
        if let RedisEvent::Recovered { channel, messages } = event {
            assert_eq!(channel, "armature:{dws:log}");
            recovered += messages;
        }
    }
    assert_eq!(recovered, stats.recovered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_and_sse_clients_resume_on_the_other_node_with_two_publishers() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(config(&redis, "node-a-")).await;
    let b = Node::start(config(&redis, "node-b-")).await;
    // Witnesses on b that stay: the order every member sees.
    let (mut witness, _) = b.durable_client("log", None).await;
    joined_at(&mut witness).await;
    let witness_sse = sse_get_path(b.addr, "/feed", None).await;
    let mut witness_sse = witness_sse.into_body().into_data_stream().eventsource();
    // The clients that will move from a to b.
    let (mut mover, _) = a.durable_client("log", None).await;
    joined_at(&mut mover).await;
    let mover_sse = sse_get_path(a.addr, "/feed", None).await;
    let mut mover_sse = mover_sse.into_body().into_data_stream().eventsource();

    const N: usize = 100;
    let mut publishers = Vec::new();
    for (node, prefix) in [(&a, "a"), (&b, "b")] {
        let room = node.manager.room("log");
        let feed = node.feed.clone();
        publishers.push(tokio::spawn(async move {
            for i in 0..N {
                room.broadcast_text(format!("{prefix}:{i}")).await.unwrap();
                feed.broadcast_message(format!("{prefix}:{i}"))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
    }
    // The movers read part of the stream, then go away.
    const SEEN: usize = 60;
    let mut last_ws = None;
    for _ in 0..SEEN {
        last_ws = Some(recv_durable(&mut mover, "log").await.0);
    }
    drop(mover);
    let mut last_sse = String::new();
    for _ in 0..SEEN {
        let event = tokio::time::timeout(WAIT, mover_sse.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        last_sse = event.id;
    }
    drop(mover_sse);
    for p in publishers {
        p.await.unwrap();
    }
    let mut all_ws = Vec::new();
    for _ in 0..2 * N {
        all_ws.push(recv_durable(&mut witness, "log").await);
    }
    let mut all_sse = Vec::new();
    for _ in 0..2 * N {
        let event = tokio::time::timeout(WAIT, witness_sse.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        all_sse.push((event.id, event.data));
    }

    // WebSocket: resume on b from the last offset seen on a.
    let last_ws = last_ws.unwrap();
    let (mut resumed, _) = b.durable_client("log", Some(&last_ws.to_string())).await;
    let expected: Vec<_> = all_ws
        .iter()
        .filter(|(o, _)| o.offset > last_ws.offset)
        .cloned()
        .collect();
    assert_eq!(expected.len(), 2 * N - SEEN);
    for want in &expected {
        assert_eq!(&recv_durable(&mut resumed, "log").await, want);
    }
    assert_silent(&mut resumed, Duration::from_millis(200)).await;
    // And live traffic follows without a seam.
    a.manager.room("log").broadcast_text("after").await.unwrap();
    assert_eq!(recv_durable(&mut resumed, "log").await.1, "after");

    // SSE: resume on b with Last-Event-ID from a.
    let at = all_sse.iter().position(|(id, _)| *id == last_sse).unwrap();
    assert_eq!(
        at,
        SEEN - 1,
        "both histories hold the same events in the same order"
    );
    let response = sse_get_path(b.addr, "/feed", Some(&last_sse)).await;
    let mut events = response.into_body().into_data_stream().eventsource();
    for want in &all_sse[at + 1..] {
        let event = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(&(event.id, event.data), want);
    }
    let nothing_more = tokio::time::timeout(Duration::from_millis(200), events.next()).await;
    assert!(nothing_more.is_err(), "{nothing_more:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_offset_gets_one_reset() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(config(&redis, "node-a-")).await;
    a.manager.room("log").broadcast_text("a:0").await.unwrap();
    let (mut ws, _) = a.durable_client("log", Some("00000000000000ff-1")).await;
    let text = recv_text(&mut ws).await;
    let rest = text.strip_prefix("@reset ").unwrap();
    let (offset, room) = rest.split_once(' ').unwrap();
    assert_eq!(room, "log");
    let offset: Offset = offset.parse().unwrap();
    assert_ne!(offset.epoch, 0xff);
    a.manager.room("log").broadcast_text("a:1").await.unwrap();
    // From the reset position on, every message once, numbered on (a:0 may still have been
    // on its way back from Redis when the reset position was taken).
    let mut expect = offset.offset + 1;
    loop {
        let (next, text) = recv_durable(&mut ws, "log").await;
        assert_eq!(next.offset, expect, "{text}");
        expect += 1;
        if text == "a:1" {
            break;
        }
        assert_eq!(text, "a:0");
    }
    assert_silent(&mut ws, Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publishers_link_cut_mid_pipeline_appends_each_message_once() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = Node::start(config(&redis, "node-a-")).await;
    let b = Node::start(config(&redis, "node-b-")).await;
    let (mut on_a, _) = a.durable_client("log", None).await;
    let (mut on_b, _) = b.durable_client("log", None).await;
    let start = joined_at(&mut on_a).await;
    assert_eq!(joined_at(&mut on_b).await, start);

    // Bursts of 100 go out as long pipelines of the stream's script; the publisher's own
    // link is cut while they are in flight, so a pipeline Redis ran in part is sent again.
    const N: usize = 600;
    let room = a.manager.room("log");
    let publisher = tokio::spawn(async move {
        for i in 0..N {
            room.broadcast_text(format!("a:{i}")).await.unwrap();
            if i % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        }
    });
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let before = a.redis.stats().reconnects;
        assert!(redis.kill_links_of("node-a-") >= 1);
        eventually("a reconnects after its link was cut", || {
            a.redis.stats().reconnects > before
        })
        .await;
    }
    publisher.await.unwrap();
    for ws in [&mut on_a, &mut on_b] {
        for i in 0..N {
            let (offset, text) = recv_durable(ws, "log").await;
            assert_eq!(text, format!("a:{i}"), "no duplicate, no gap");
            assert_eq!(offset.offset, start.offset + 1 + i as u64, "{text}");
        }
        assert_silent(ws, Duration::from_millis(300)).await;
    }
    assert!(a.redis.stats().reconnects >= 4);
}
