//! The guide's SSE snippets, as written (the `#[injectable]` and `#[controller]` attributes
//! belong to the facade's macros and are left out here; the code under them is unchanged).

use std::sync::Arc;
use std::time::Duration;

use armature_sse::{Error, ReceiverStream, ServerSentEvent, SseBroadcaster, SseStream};
use futures_util::StreamExt;
use serde::Serialize;

#[derive(Serialize)]
struct StockPrice {
    symbol: String,
    price: f64,
}

#[derive(Clone)]
struct StockTickerService {
    broadcaster: Arc<SseBroadcaster>,
}

impl Default for StockTickerService {
    fn default() -> Self {
        let broadcaster = Arc::new(SseBroadcaster::new());

        // Start broadcasting stock prices
        let broadcaster_clone = broadcaster.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(1));

            loop {
                interval.tick().await;

                let price = StockPrice {
                    symbol: "AAPL".to_string(),
                    price: 150.0,
                };

                let event = ServerSentEvent::with_event(
                    "price".to_string(),
                    serde_json::to_string(&price).unwrap(),
                );

                let _ = broadcaster_clone.broadcast(event).await;
            }
        });

        // Start keep-alive
        broadcaster
            .clone()
            .start_keep_alive(Duration::from_secs(15));

        Self { broadcaster }
    }
}

#[derive(Default, Clone)]
struct EventsController {
    stock_ticker: StockTickerService,
}

impl EventsController {
    async fn subscribe_stocks(&self) -> ReceiverStream<Result<String, Error>> {
        self.stock_ticker.broadcaster.register().await
    }
}

#[tokio::test(start_paused = true)]
async fn stock_ticker_controller_streams_prices_and_keep_alives() {
    let controller = EventsController::default();
    let mut stream = controller.subscribe_stocks().await;
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        first,
        "event: price\ndata: {\"symbol\":\"AAPL\",\"price\":150.0}\n\n"
    );
    // Prices every second, a keep-alive every 15 seconds.
    let mut keep_alives = 0;
    for _ in 0..20 {
        let item = stream.next().await.unwrap().unwrap();
        if item == ": keep-alive\n\n" {
            keep_alives += 1;
        } else {
            assert!(item.starts_with("event: price\n"), "{item:?}");
        }
    }
    assert_eq!(keep_alives, 1);
}

#[tokio::test]
async fn server_sent_event_constructors() {
    // Simple message
    let event = ServerSentEvent::new("Hello".to_string());
    assert_eq!(&event.encode().unwrap()[..], b"data: Hello\n\n");

    // Typed event
    let event = ServerSentEvent::with_event("user_joined".to_string(), "Alice joined".to_string());
    assert_eq!(
        &event.encode().unwrap()[..],
        b"event: user_joined\ndata: Alice joined\n\n"
    );

    // Full event
    let event = ServerSentEvent::full(
        "123".to_string(),           // ID
        "notification".to_string(),  // Event type
        "You have mail".to_string(), // Data
        5000,                        // Retry (ms)
    );
    assert_eq!(
        &event.encode().unwrap()[..],
        b"id: 123\nevent: notification\nretry: 5000\ndata: You have mail\n\n"
    );
}

#[tokio::test]
async fn sse_stream_snippet() -> Result<(), Error> {
    let data = serde_json::json!({ "k": "v" });
    let (stream, receiver) = SseStream::new();

    // Send events
    stream.send_message("Hello".to_string()).await?;
    stream
        .send_event("update".to_string(), "Data".to_string())
        .await?;
    stream.send_json(&data).await?;

    // Keep-alive
    stream.send_keep_alive().await?;

    drop(stream);
    let got: Vec<String> = receiver.map(Result::unwrap).collect().await;
    assert_eq!(
        got,
        [
            "data: Hello\n\n",
            "event: update\ndata: Data\n\n",
            "data: {\"k\":\"v\"}\n\n",
            ": keep-alive\n\n"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn sse_broadcaster_snippet() -> Result<(), Error> {
    let data = serde_json::json!([1, 2]);
    let broadcaster = Arc::new(SseBroadcaster::new());

    // Register clients
    let stream1 = broadcaster.register().await;
    let stream2 = broadcaster.register().await;

    // Broadcast to all
    broadcaster.broadcast_message("Update".to_string()).await?;
    broadcaster.broadcast_json(&data).await?;

    // Get client count
    let count = broadcaster.client_count().await;
    assert_eq!(count, 2);

    // Auto keep-alive
    let task = broadcaster
        .clone()
        .start_keep_alive(Duration::from_secs(30));

    for stream in [stream1, stream2] {
        let got: Vec<String> = stream.take(2).map(Result::unwrap).collect().await;
        assert_eq!(got, ["data: Update\n\n", "data: [1,2]\n\n"]);
    }
    drop(broadcaster);
    task.await.unwrap();
    Ok(())
}

#[tokio::test]
async fn best_practices_snippets() {
    // 1. Keep-alive (the guide calls it on the Arc itself).
    let broadcaster = Arc::new(SseBroadcaster::new());
    let task = broadcaster.start_keep_alive(Duration::from_secs(30));
    // That moved the only Arc into the call: the broadcaster is gone, so is the task.
    task.await.unwrap();

    // 2. Event IDs
    let mut id = 0;
    let mut encoded = Vec::new();
    loop {
        id += 1;
        let event = ServerSentEvent {
            id: Some(id.to_string()),
            event: Some("update".into()),
            data: "...".into(),
            retry: None,
        };
        encoded.push(event.encode().unwrap());
        if id == 2 {
            break;
        }
    }
    assert_eq!(&encoded[1][..], b"id: 2\nevent: update\ndata: ...\n\n");

    // 3. Retry Configuration
    let event = ServerSentEvent {
        retry: Some(5000), // 5 seconds
        ..Default::default()
    };
    assert_eq!(&event.encode().unwrap()[..], b"retry: 5000\n\n");

    // 4. Clean Up Disconnected Clients (the library already did: this finds nothing left)
    let broadcaster = Arc::new(SseBroadcaster::new());
    let kept = broadcaster.register().await;
    let gone = broadcaster.register().await;
    drop(gone);
    assert_eq!(broadcaster.client_count().await, 1);
    {
        // Remove closed connections periodically
        let mut clients = broadcaster.clients.write().await;
        clients.retain(|tx| !tx.is_closed());
    }
    assert_eq!(broadcaster.client_count().await, 1);
    assert!(!kept.is_closed());
}

#[tokio::test]
async fn retain_removes_clients_by_a_rule_of_ones_own() {
    let broadcaster = SseBroadcaster::new();
    let mut backlogged = broadcaster.register().await;
    broadcaster.broadcast_message("one".into()).await.unwrap();
    let mut fresh = broadcaster.register().await;
    broadcaster.broadcast_message("two".into()).await.unwrap();
    // Drop every client with more than one event waiting.
    broadcaster
        .clients
        .write()
        .await
        .retain(|c| c.queued() <= 1);
    assert_eq!(broadcaster.clients.len(), 1);
    broadcaster.broadcast_message("three".into()).await.unwrap();
    // The removed client gets what was queued, then its stream ends.
    assert_eq!(backlogged.next().await.unwrap().unwrap(), "data: one\n\n");
    assert_eq!(backlogged.next().await.unwrap().unwrap(), "data: two\n\n");
    assert!(backlogged.next().await.is_none());
    assert_eq!(fresh.next().await.unwrap().unwrap(), "data: two\n\n");
    assert_eq!(fresh.next().await.unwrap().unwrap(), "data: three\n\n");
}

#[tokio::test]
async fn test_sse_stream() {
    let broadcaster = Arc::new(SseBroadcaster::new());
    let mut stream = broadcaster.register().await;

    // Broadcast message
    broadcaster
        .broadcast_message("Test".to_string())
        .await
        .unwrap();

    // Receive message
    let msg = stream.next().await.unwrap().unwrap();
    assert!(msg.contains("Test"));
}
