//! The guide's stock ticker: `StockTickerService` broadcasting a price every second over
//! SSE, and `EventsController` serving `/events/stocks`, as the guide writes them plus the
//! decorators and imports.
//!
//! ```text
//! cargo run -p examples --example stock_ticker
//! curl -N http://localhost:3000/events/stocks
//! ```
//!
//! The guide's JavaScript works unchanged against it, from a page of any origin (the app
//! sends `Access-Control-Allow-Origin: *`):
//! `new EventSource('http://localhost:3000/events/stocks').addEventListener('price', ..)`.

use armature_realtime::prelude::*;
use serde::Serialize;

#[derive(Serialize)]
struct StockPrice {
    symbol: String,
    price: f64,
}

// 1. The SSE service.

#[injectable]
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

// 2. The SSE controller.

#[controller("/events")]
#[derive(Default, Clone)]
struct EventsController {
    stock_ticker: StockTickerService,
}

#[controller]
impl EventsController {
    #[sse("/stocks")]
    async fn subscribe_stocks(&self) -> ReceiverStream<Result<String, Error>> {
        self.stock_ticker.broadcaster.register().await
    }
}

#[module(providers: [StockTickerService], controllers: [EventsController])]
struct AppModule;

#[tokio::main]
async fn main() -> Result<(), Error> {
    examples::init_tracing();
    let port = examples::port_from_env(3000);
    println!("stock ticker: curl -N http://localhost:{port}/events/stocks");
    App::new()
        .module::<AppModule>()
        // The guide's `EventSource` snippet may run on a page from another origin.
        .allow_origin("*")
        .serve(("127.0.0.1", port))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use examples::testing::SseClient;

    #[tokio::test]
    async fn curl_line_receives_price_events() {
        let server = App::new()
            .module::<AppModule>()
            .bind("127.0.0.1:0")
            .await
            .unwrap()
            .spawn();
        let mut client = SseClient::open(server.local_addr(), "/events/stocks", &[]).await;
        assert_eq!(client.status, 200);
        assert!(
            client.head.contains("content-type: text/event-stream"),
            "{}",
            client.head
        );
        for _ in 0..2 {
            assert_eq!(
                client.next_event().await,
                "event: price\ndata: {\"symbol\":\"AAPL\",\"price\":150.0}"
            );
        }
        server.shutdown().await.unwrap();
    }
}
