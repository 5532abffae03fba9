//! A client that never reads, with real sockets: the policy applies to it alone.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use tokio_tungstenite::tungstenite::Message;

use armature_ws::{Backpressure, WebSocketConfig};

const GOOD: usize = 50;
const MESSAGE: usize = 20 * 1024;
const BATCH: usize = 20;
const BATCHES: usize = 25; // 500 messages of 20 KiB: 10 MB, more than socket buffers hold

async fn run(policy: Backpressure) -> (TestServer, Vec<(usize, Client)>, Client, String) {
    let config = WebSocketConfig::default()
        .max_queue_bytes(1 << 20)
        .backpressure(policy);
    let server = TestServer::start(config).await;
    let mut slow = server.connect("/join/feed").await;
    let slow_id = joined(&mut slow).await;
    let received = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..GOOD {
        let mut client = server.connect("/join/feed").await;
        joined(&mut client).await;
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            let mut got = 0;
            for i in 0..BATCH * BATCHES {
                match next_data(&mut client).await {
                    Message::Binary(data) => {
                        assert_eq!(data.len(), MESSAGE);
                        assert_eq!(
                            &data[..4],
                            &(i as u32).to_be_bytes(),
                            "in order, none missing"
                        );
                    }
                    other => panic!("unexpected {other:?}"),
                }
                got += 1;
                received.fetch_add(1, Ordering::Relaxed);
            }
            (got, client)
        }));
    }
    let room = server.manager.get_room("feed").await.unwrap();
    for batch in 0..BATCHES {
        for j in 0..BATCH {
            let i = (batch * BATCH + j) as u32;
            let mut payload = vec![7u8; MESSAGE];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            room.broadcast_frame(armature_ws_core::encode_binary(&payload))
                .unwrap();
        }
        // Pace the sender to the readers that do read: only the slow one falls behind.
        let target = GOOD * BATCH * (batch + 1);
        eventually("good readers keep up", || {
            received.load(Ordering::Relaxed) >= target
        })
        .await;
    }
    let mut counts = Vec::new();
    for reader in readers {
        counts.push(tokio::time::timeout(WAIT, reader).await.unwrap().unwrap());
    }
    (server, counts, slow, slow_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_reading_client_is_closed_while_fifty_others_get_everything() {
    let (server, counts, mut slow, slow_id) = run(Backpressure::Close).await;
    assert!(counts.iter().all(|(n, _)| *n == BATCH * BATCHES));
    let stats = server.hub.stats();
    assert_eq!(stats.slow_clients_closed, 1, "{stats:?}");
    assert_eq!(stats.messages_dropped, 0);
    let room = server.manager.get_room("feed").await.unwrap();
    eventually("the slow client left the room", || !room.contains(&slow_id)).await;
    assert_eq!(room.len(), GOOD);
    // The slow client finds its connection ended once it reads what was delivered.
    let code = close_code(&mut slow).await;
    assert!(matches!(code, None | Some(1008)), "{code:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_newest_keeps_the_slow_client_and_counts_drops() {
    let (server, counts, _slow, slow_id) = run(Backpressure::DropNewest).await;
    assert!(counts.iter().all(|(n, _)| *n == BATCH * BATCHES));
    let stats = server.hub.stats();
    assert_eq!(stats.slow_clients_closed, 0);
    assert!(stats.messages_dropped > 0, "{stats:?}");
    assert!(server.manager.room("feed").contains(&slow_id));
}
