// The guide's SSE service and controller, adding only decorators and imports.
use armature_realtime::prelude::*;

#[derive(serde::Serialize)]
struct StockPrice {
    symbol: String,
    price: f64,
}

#[injectable]
#[derive(Clone)]
struct StockTickerService {
    broadcaster: Arc<SseBroadcaster>,
}

impl Default for StockTickerService {
    fn default() -> Self {
        let broadcaster = Arc::new(SseBroadcaster::new());
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
        broadcaster.clone().start_keep_alive(Duration::from_secs(15));
        Self { broadcaster }
    }
}

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

fn main() {
    let _app = App::new().module::<AppModule>();
}
