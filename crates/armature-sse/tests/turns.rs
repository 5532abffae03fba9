//! Broadcasts inside a turn (`in_turn`, `coalesced`): each client gets them as one run, in
//! order, exactly once, under the slow-client policy, and in order with what other threads
//! and other paths do meanwhile.

use std::sync::Arc;
use std::time::Duration;

use armature_sse::{
    Error, KEEP_ALIVE, MAX_HELD_EVENTS, ReceiverStream, ServerSentEvent, SlowClientPolicy,
    SseBroadcaster, SseConfig, coalesced, in_turn,
};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};

fn msg(data: &str) -> ServerSentEvent {
    ServerSentEvent::new(data.to_owned())
}

/// Everything queued for `stream` now, without waiting.
fn drain<T>(stream: &mut ReceiverStream<Result<T, Error>>) -> Vec<Result<T, Error>>
where
    ReceiverStream<Result<T, Error>>: futures_util::Stream<Item = Result<T, Error>> + Unpin,
{
    let mut out = Vec::new();
    while let Some(Some(item)) = stream.next().now_or_never() {
        out.push(item);
    }
    out
}

fn texts(stream: &mut ReceiverStream<Result<String, Error>>) -> Vec<String> {
    drain(stream).into_iter().map(Result::unwrap).collect()
}

#[tokio::test]
async fn a_turn_reaches_each_client_as_one_shared_run_split_into_events() {
    let b = SseBroadcaster::new();
    let mut clients: Vec<ReceiverStream<Result<Bytes, Error>>> = Vec::new();
    for _ in 0..3 {
        clients.push(b.register().await.into_bytes());
    }
    in_turn(|| {
        for data in ["a", "b", "c"] {
            b.broadcast_now(&msg(data)).unwrap();
        }
        // Held until the turn ends.
        assert!(drain(&mut clients[0]).is_empty());
    });
    let mut firsts = Vec::new();
    for c in &mut clients {
        let got: Vec<Bytes> = drain(c).into_iter().map(Result::unwrap).collect();
        let got_text: Vec<&[u8]> = got.iter().map(|b| &b[..]).collect();
        assert_eq!(
            got_text,
            [&b"data: a\n\n"[..], b"data: b\n\n", b"data: c\n\n"]
        );
        firsts.push(got[0].as_ptr());
    }
    // One buffer for the run, shared by every client.
    assert!(firsts.iter().all(|p| *p == firsts[0]));
    let stats = b.stats();
    assert_eq!((stats.events, stats.deliveries), (3, 9));
}

#[tokio::test]
async fn held_events_keep_their_order_with_a_broadcast_from_another_thread() {
    let b = Arc::new(SseBroadcaster::new());
    let mut client = b.register().await;
    in_turn(|| {
        b.broadcast_now(&msg("first")).unwrap();
        // Another thread, not in a turn, broadcasts after this one did: its event comes
        // second although this turn has not ended.
        let other = Arc::clone(&b);
        std::thread::spawn(move || other.broadcast_now(&msg("second")).unwrap())
            .join()
            .unwrap();
        b.broadcast_now(&msg("third")).unwrap();
    });
    assert_eq!(
        texts(&mut client),
        ["data: first\n\n", "data: second\n\n", "data: third\n\n"]
    );
}

#[tokio::test]
async fn keep_alives_new_clients_and_retain_see_held_events_first() {
    let b = SseBroadcaster::new();
    let mut old = b.register().await;
    let mut new = None;
    in_turn(|| {
        b.broadcast_now(&msg("a")).unwrap();
        b.send_keep_alive();
        b.broadcast_now(&msg("b")).unwrap();
        // "b" was broadcast before this client came: it does not get it.
        new = Some(b.register_from(None));
        b.broadcast_now(&msg("c")).unwrap();
    });
    let keep_alive = String::from_utf8(KEEP_ALIVE.to_vec()).unwrap();
    assert_eq!(
        texts(&mut old),
        [
            "data: a\n\n".to_owned(),
            keep_alive,
            "data: b\n\n".to_owned(),
            "data: c\n\n".to_owned()
        ]
    );
    let mut new = new.unwrap();
    assert_eq!(texts(&mut new), ["data: c\n\n"]);

    // A client removed by `retain` still gets what was broadcast before.
    b.broadcast_now(&msg("last")).unwrap();
    let mut write = b.clients.write().await;
    in_turn(|| {
        b.broadcast_now(&msg("held")).unwrap();
        write.retain(|_| false);
    });
    assert_eq!(texts(&mut old), ["data: last\n\n", "data: held\n\n"]);
    assert!(old.next().await.is_none());
}

#[tokio::test]
async fn a_turn_keeps_the_history_for_last_event_id() {
    let b = SseBroadcaster::with_config(SseConfig::default().auto_ids(true).history_len(10));
    in_turn(|| {
        for data in ["1", "2", "3"] {
            b.broadcast_now(&msg(data)).unwrap();
        }
    });
    let mut resumed = b.register_from(Some("1"));
    assert_eq!(
        texts(&mut resumed),
        ["id: 2\ndata: 2\n\n", "id: 3\ndata: 3\n\n"]
    );
    assert_eq!(b.stats().history_len, 3);
}

#[tokio::test]
async fn a_run_that_does_not_fit_is_offered_event_by_event_skip() {
    let b = SseBroadcaster::with_config(
        SseConfig::default()
            .max_queued_events(2)
            .slow_client_policy(SlowClientPolicy::SkipEvent),
    );
    let mut c = b.register().await;
    b.broadcast_message("0".into()).await.unwrap();
    in_turn(|| {
        for data in ["a", "b", "c"] {
            b.broadcast_now(&msg(data)).unwrap();
        }
    });
    // One slot was free: "a" took it, "b" and "c" were skipped.
    assert_eq!(texts(&mut c), ["data: 0\n\n", "data: a\n\n"]);
    let stats = b.stats();
    assert_eq!((stats.events_skipped, stats.clients), (2, 1));
    // The client keeps receiving.
    b.broadcast_message("d".into()).await.unwrap();
    assert_eq!(texts(&mut c), ["data: d\n\n"]);
}

#[tokio::test]
async fn a_run_that_does_not_fit_is_offered_event_by_event_disconnect() {
    let b = SseBroadcaster::with_config(SseConfig::default().max_queued_events(3));
    let mut slow = b.register().await;
    let mut fast = b.register().await;
    b.broadcast_message("0".into()).await.unwrap();
    assert_eq!(texts(&mut fast), ["data: 0\n\n"]);
    in_turn(|| {
        for data in ["a", "b", "c"] {
            b.broadcast_now(&msg(data)).unwrap();
        }
    });
    // The slow client had one event queued: "a" and "b" fit, "c" did not, and the policy
    // dropped it; the fast one took the run whole.
    let stats = b.stats();
    assert_eq!((stats.slow_clients_dropped, stats.clients), (1, 1));
    assert_eq!(stats.deliveries, 2 + 2 + 3);
    assert!(slow.next().await.unwrap().unwrap_err().is_queue_full());
    assert!(slow.next().await.is_none());
    assert_eq!(
        texts(&mut fast),
        ["data: a\n\n", "data: b\n\n", "data: c\n\n"]
    );
}

#[tokio::test]
async fn a_turn_that_holds_too_much_queues_early() {
    let b =
        SseBroadcaster::with_config(SseConfig::default().max_queued_events(2 * MAX_HELD_EVENTS));
    let mut c = b.register().await.into_bytes();
    in_turn(|| {
        for i in 0..MAX_HELD_EVENTS {
            b.broadcast_now(&msg(&i.to_string())).unwrap();
        }
        // The bound was reached: queued already, before the turn ends.
        assert_eq!(c.queued(), MAX_HELD_EVENTS);
        b.broadcast_now(&msg("one more")).unwrap();
        assert_eq!(c.queued(), MAX_HELD_EVENTS);
    });
    assert_eq!(c.queued(), MAX_HELD_EVENTS + 1);
    let got = drain(&mut c);
    assert_eq!(got.len(), MAX_HELD_EVENTS + 1);
}

#[tokio::test]
async fn a_coalesced_future_releases_at_the_end_of_each_poll_not_at_its_end() {
    let b = Arc::new(SseBroadcaster::new());
    let mut c = b.register().await;
    let publisher = Arc::clone(&b);
    let (go_on, wait) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(coalesced(async move {
        publisher.broadcast_now(&msg("before")).unwrap();
        publisher.broadcast_now(&msg("await")).unwrap();
        // Held across no await: both reach the client while this future waits.
        let _ = wait.await;
        publisher.broadcast_now(&msg("after")).unwrap();
    }));
    assert_eq!(c.next().await.unwrap().unwrap(), "data: before\n\n");
    assert_eq!(c.next().await.unwrap().unwrap(), "data: await\n\n");
    assert!(
        tokio::time::timeout(Duration::from_millis(50), c.next())
            .await
            .is_err()
    );
    go_on.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(c.next().await.unwrap().unwrap(), "data: after\n\n");
}

#[tokio::test]
async fn a_panicking_turn_still_queues_what_it_broadcast() {
    let b = SseBroadcaster::new();
    let mut c = b.register().await;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        in_turn(|| {
            b.broadcast_now(&msg("kept")).unwrap();
            panic!("handler bug");
        })
    }));
    assert!(caught.is_err());
    assert_eq!(texts(&mut c), ["data: kept\n\n"]);
}
