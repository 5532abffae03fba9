//! The broadcaster without HTTP: shared bytes, cleanup, slow clients, resume, keep-alive,
//! the transport seam.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use armature_sse::{
    EncodedEvent, Error, RESET_DATA, RESET_EVENT, ReceiverStream, ServerSentEvent,
    SlowClientPolicy, SseBroadcaster, SseConfig, SseTransport,
};
use bytes::Bytes;
use futures_util::StreamExt;

/// Everything queued for `stream` right now, without waiting.
fn drain(stream: &mut ReceiverStream<Result<String, Error>>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(Some(item)) = stream.next().now_or_never_item() {
        out.push(item.unwrap());
    }
    out
}

trait NowOrNever {
    type Out;
    fn now_or_never_item(self) -> Option<Self::Out>;
}

impl<F: std::future::Future> NowOrNever for F {
    type Out = F::Output;
    fn now_or_never_item(self) -> Option<F::Output> {
        futures_util::FutureExt::now_or_never(self)
    }
}

#[tokio::test]
async fn a_broadcast_is_encoded_once_and_shared() {
    let b = SseBroadcaster::new();
    let mut clients: Vec<ReceiverStream<Result<Bytes, Error>>> = Vec::new();
    for _ in 0..3 {
        clients.push(b.register().await.into_bytes());
    }
    b.broadcast_message("x".repeat(100)).await.unwrap();
    let mut got = Vec::new();
    for c in &mut clients {
        got.push(c.next().await.unwrap().unwrap());
    }
    assert_eq!(got[0].len(), "data: \n\n".len() + 100);
    // The same allocation, not three copies.
    assert!(got.iter().all(|b| b.as_ptr() == got[0].as_ptr()));
}

#[tokio::test]
async fn http_bodies_carry_the_shared_bytes_without_a_copy() {
    use http_body_util::BodyExt;
    let b = SseBroadcaster::new();
    let mut one = b.register().await;
    let mut two = b.register().await.into_bytes();
    b.broadcast_message("shared".into()).await.unwrap();
    let f1 = one.frame().await.unwrap().unwrap().into_data().unwrap();
    let f2 = two.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&f1[..], b"data: shared\n\n");
    assert_eq!(f1.as_ptr(), f2.as_ptr());
}

#[tokio::test]
async fn dropped_clients_leave_at_once() {
    let b = SseBroadcaster::new();
    let s1 = b.register().await;
    let s2 = b.register().await;
    let s3 = b.register().await;
    assert_eq!(b.client_count().await, 3);
    drop(s2);
    assert_eq!(b.client_count().await, 2);
    // Converting a stream keeps its registration.
    let s1 = s1.into_bytes();
    assert_eq!(b.client_count().await, 2);
    drop(s1);
    drop(s3);
    assert_eq!(b.client_count().await, 0);
    assert_eq!(b.stats().disconnects, 3);
}

#[tokio::test]
async fn slow_client_is_dropped_and_the_others_keep_receiving() {
    let b = SseBroadcaster::with_config(SseConfig::default().max_queued_events(4));
    let mut fast = b.register().await;
    let mut slow = b.register().await;
    for i in 0..10 {
        b.broadcast_message(format!("m{i}")).await.unwrap();
        // The fast client reads everything as it comes.
        assert_eq!(
            fast.next().await.unwrap().unwrap(),
            format!("data: m{i}\n\n")
        );
    }
    let stats = b.stats();
    assert_eq!(stats.slow_clients_dropped, 1);
    assert_eq!(stats.clients, 1);
    assert_eq!(b.client_count().await, 1);
    // The slow client's queue was emptied: it learns why, then its stream ends.
    assert!(slow.is_closed());
    assert!(slow.next().await.unwrap().unwrap_err().is_queue_full());
    assert!(slow.next().await.is_none());
}

#[tokio::test]
async fn queue_bound_in_bytes() {
    let b = SseBroadcaster::with_config(SseConfig::default().max_queued_bytes(100));
    let slow = b.register().await;
    b.broadcast_message("a".repeat(50)).await.unwrap();
    assert_eq!(slow.queued(), 1);
    b.broadcast_message("a".repeat(50)).await.unwrap();
    assert_eq!(b.stats().slow_clients_dropped, 1);
    assert_eq!(b.client_count().await, 0);
}

#[tokio::test]
async fn skip_event_policy_keeps_the_client() {
    let b = SseBroadcaster::with_config(
        SseConfig::default()
            .max_queued_events(2)
            .slow_client_policy(SlowClientPolicy::SkipEvent),
    );
    let mut s = b.register().await;
    for i in 0..5 {
        b.broadcast_message(i.to_string()).await.unwrap();
    }
    assert_eq!(b.stats().events_skipped, 3);
    assert_eq!(drain(&mut s), ["data: 0\n\n", "data: 1\n\n"]);
    b.broadcast_message("5".into()).await.unwrap();
    assert_eq!(drain(&mut s), ["data: 5\n\n"]);
    assert_eq!(b.client_count().await, 1);
}

#[tokio::test]
async fn invalid_event_is_refused_and_nothing_is_sent() {
    let b = SseBroadcaster::new();
    let mut s = b.register().await;
    let err = b
        .broadcast(ServerSentEvent::with_event("a\nb".into(), "x".into()))
        .await
        .unwrap_err();
    assert!(err.is_validation());
    assert!(drain(&mut s).is_empty());
    assert_eq!(b.stats().events, 0);
}

#[tokio::test]
async fn dropping_the_broadcaster_ends_the_streams_after_what_is_queued() {
    let b = SseBroadcaster::new();
    let mut s = b.register().await;
    b.broadcast_message("last".into()).await.unwrap();
    drop(b);
    assert_eq!(s.next().await.unwrap().unwrap(), "data: last\n\n");
    assert!(s.next().await.is_none());
}

fn resumable() -> SseBroadcaster {
    SseBroadcaster::with_config(SseConfig::default().history_len(100).auto_ids(true))
}

#[tokio::test]
async fn auto_ids_count_up() {
    let b = resumable();
    let mut s = b.register().await;
    b.broadcast_message("a".into()).await.unwrap();
    b.broadcast(ServerSentEvent::new("own".into()).id("x"))
        .await
        .unwrap();
    b.broadcast_message("b".into()).await.unwrap();
    assert_eq!(
        drain(&mut s),
        [
            "id: 1\ndata: a\n\n",
            "id: x\ndata: own\n\n",
            "id: 2\ndata: b\n\n"
        ]
    );
}

#[tokio::test]
async fn auto_id_prefix_keeps_ids_apart_and_resumes() {
    let b = SseBroadcaster::with_config(SseConfig::default().history_len(10).auto_id_prefix("a-"));
    b.broadcast_message("x".into()).await.unwrap();
    b.broadcast_message("y".into()).await.unwrap();
    let mut s = b.register_from(Some("a-1"));
    assert_eq!(drain(&mut s), ["id: a-2\ndata: y\n\n"]);
    // A bare number from another process's sequence is not ours.
    let mut s = b.register_from(Some("1"));
    assert!(drain(&mut s)[0].contains("event: reset"));
}

#[tokio::test]
async fn resume_replays_what_was_missed_then_live() {
    let b = resumable();
    let mut first = b.register().await;
    for i in 1..=3 {
        b.broadcast_message(format!("m{i}")).await.unwrap();
    }
    // The client saw event 1, then lost its connection.
    assert_eq!(first.next().await.unwrap().unwrap(), "id: 1\ndata: m1\n\n");
    drop(first);
    b.broadcast_message("m4".into()).await.unwrap();

    let mut again = b.register_from(Some("1"));
    b.broadcast_message("m5".into()).await.unwrap();
    assert_eq!(
        drain(&mut again),
        [
            "id: 2\ndata: m2\n\n",
            "id: 3\ndata: m3\n\n",
            "id: 4\ndata: m4\n\n",
            "id: 5\ndata: m5\n\n"
        ]
    );
    // Resuming from the newest event replays nothing.
    let mut current = b.register_from(Some("5"));
    assert!(drain(&mut current).is_empty());
}

#[tokio::test]
async fn unknown_or_too_old_id_gets_a_reset_event_then_live() {
    let b = SseBroadcaster::with_config(SseConfig::default().history_len(2).auto_ids(true));
    for i in 1..=3 {
        b.broadcast_message(format!("m{i}")).await.unwrap();
    }
    let expected_reset = format!("id: 3\nevent: {RESET_EVENT}\ndata: {RESET_DATA}\n\n");
    for id in ["1", "nonsense", "99"] {
        // "1" was pushed out of a history of two.
        let mut s = b.register_from(Some(id));
        assert_eq!(drain(&mut s), vec![expected_reset.clone()], "{id}");
    }
    let mut s = b.register_from(Some("2"));
    b.broadcast_message("m4".into()).await.unwrap();
    assert_eq!(
        drain(&mut s),
        ["id: 3\ndata: m3\n\n", "id: 4\ndata: m4\n\n"]
    );
}

#[tokio::test]
async fn without_history_a_resume_gets_a_reset_without_id() {
    let b = SseBroadcaster::new();
    let mut s = b.register_from(Some("7"));
    assert_eq!(
        drain(&mut s),
        [format!("event: {RESET_EVENT}\ndata: {RESET_DATA}\n\n")]
    );
}

#[tokio::test(start_paused = true)]
async fn history_forgets_old_events() {
    let b = SseBroadcaster::with_config(
        SseConfig::default()
            .history_len(100)
            .history_max_age(Duration::from_secs(60))
            .auto_ids(true),
    );
    b.broadcast_message("old".into()).await.unwrap();
    tokio::time::advance(Duration::from_secs(45)).await;
    b.broadcast_message("newer".into()).await.unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    // Event 1 is 75 s old: gone. Event 2 is 30 s old: kept.
    let mut s = b.register_from(Some("1"));
    assert!(drain(&mut s)[0].contains("event: reset"));
    let mut s = b.register_from(Some("2"));
    assert!(drain(&mut s).is_empty());
    assert_eq!(b.stats().history_len, 1);
}

#[tokio::test]
async fn replayed_history_does_not_count_against_the_queue_bound() {
    let b = SseBroadcaster::with_config(
        SseConfig::default()
            .history_len(50)
            .auto_ids(true)
            .max_queued_events(4),
    );
    for i in 0..30 {
        b.broadcast_message(i.to_string()).await.unwrap();
    }
    let mut s = b.register_from(Some("1"));
    for i in 30..34 {
        b.broadcast_message(i.to_string()).await.unwrap();
    }
    assert_eq!(b.stats().slow_clients_dropped, 0);
    assert_eq!(drain(&mut s).len(), 29 + 4);
}

/// Resume while broadcasts run on other threads: every client sees each id exactly once
/// and in order, whatever moment it registered at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_during_concurrent_broadcasts_has_no_gap_and_no_duplicate() {
    const EVENTS: u64 = 2000;
    let b = Arc::new(SseBroadcaster::with_config(
        SseConfig::default()
            .history_len(EVENTS as usize)
            .auto_ids(true)
            .max_queued_events(EVENTS as usize),
    ));
    let mut first = b.register().await.into_bytes();
    let producer = {
        let b = b.clone();
        tokio::spawn(async move {
            for i in 0..EVENTS {
                b.broadcast_message(i.to_string()).await.unwrap();
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut checked = 0;
    let mut last_seen = 0u64;
    while last_seen < EVENTS {
        // Read a few events, then "reconnect" from the last id seen.
        for _ in 0..7 {
            let Some(item) = first.next().await else {
                break;
            };
            let text = String::from_utf8(item.unwrap().to_vec()).unwrap();
            let id: u64 = text
                .strip_prefix("id: ")
                .and_then(|t| t.split('\n').next())
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(id, last_seen + 1, "gap or duplicate");
            last_seen = id;
            checked += 1;
            if last_seen == EVENTS {
                break;
            }
        }
        first = b.register_from(Some(&last_seen.to_string())).into_bytes();
    }
    producer.await.unwrap();
    assert_eq!(checked, EVENTS);
}

#[tokio::test(start_paused = true)]
async fn keep_alive_ticks_and_stops_when_the_broadcaster_is_dropped() {
    let b = Arc::new(SseBroadcaster::new());
    let mut s = b.register().await;
    let task = b.clone().start_keep_alive(Duration::from_secs(10));
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(drain(&mut s), [": keep-alive\n\n", ": keep-alive\n\n"]);
    assert_eq!(b.stats().keep_alives, 2);
    assert!(!task.is_finished());
    drop(b);
    // It stops at once, not at its next tick.
    tokio::time::timeout(Duration::from_millis(1), task)
        .await
        .expect("keep-alive task still running")
        .unwrap();
    // The stream ends: nothing keeps it alive any more.
    assert!(s.next().await.is_none());
}

#[derive(Debug, Default)]
struct Recording {
    published: parking_lot::Mutex<Vec<(Option<String>, Bytes)>>,
    calls: AtomicUsize,
}

impl SseTransport for Recording {
    fn publish(&self, broadcaster: &SseBroadcaster, event: EncodedEvent) -> Result<(), Error> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.published
            .lock()
            .push((event.id().map(str::to_owned), event.bytes().clone()));
        broadcaster.deliver_local(&event);
        Ok(())
    }
}

#[tokio::test]
async fn every_broadcast_goes_through_the_transport() {
    let transport = Arc::new(Recording::default());
    let origin = SseBroadcaster::with_config(SseConfig::default().auto_ids(true))
        .with_transport(transport.clone());
    let mut local = origin.register().await;
    origin.broadcast_message("hello".into()).await.unwrap();
    origin.send_keep_alive();
    assert_eq!(
        transport.calls.load(Ordering::Relaxed),
        1,
        "keep-alives stay local"
    );
    assert_eq!(
        drain(&mut local),
        ["id: 1\ndata: hello\n\n", ": keep-alive\n\n"]
    );

    // What the transport carried rebuilds on "another process", history included.
    let other = SseBroadcaster::with_config(SseConfig::default().history_len(10));
    let mut far = other.register().await;
    let (id, bytes) = transport.published.lock()[0].clone();
    other.deliver_local(&EncodedEvent::from_parts(id, bytes).unwrap());
    assert_eq!(drain(&mut far), ["id: 1\ndata: hello\n\n"]);
    assert_eq!(other.stats().history_len, 1);

    // A corrupt payload is refused.
    assert!(
        EncodedEvent::from_parts(None, Bytes::from_static(b"data: x\n"))
            .unwrap_err()
            .is_validation()
    );
}
