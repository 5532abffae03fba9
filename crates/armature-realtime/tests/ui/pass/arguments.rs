// Every kind of handler argument and return type the decorators accept.
use armature_realtime::prelude::*;

#[injectable]
#[derive(Clone, Default)]
struct Store {
    hits: Arc<std::sync::atomic::AtomicU64>,
}

#[injectable]
#[derive(Clone, Default)]
struct Audit {
    #[inject]
    store: Store,
    label: String,
}

#[controller("/")]
struct Api(Store, Audit, #[inject(default)] u32);

#[controller]
impl Api {
    #[websocket("/rooms/:room/users/:user")]
    async fn join(
        &self,
        room: String,
        user: u64,
        #[query] lang: Option<String>,
        #[query("v")] version: u8,
        #[header] user_agent: Option<String>,
        #[header("x-token")] token: String,
        upgrade: PendingUpgrade,
    ) -> Result<(), Error> {
        let _ = (room, user, lang, version, user_agent, token, &self.0, &self.1.label, self.2);
        let _socket = upgrade.accept().await?;
        Ok(())
    }

    #[websocket("/plain")]
    async fn plain(&self, _socket: armature_realtime::ws::WebSocket, head: &RequestHead) {
        let _ = head.uri();
    }

    #[sse("/response")]
    async fn response(&self, #[header("last-event-id")] last: Option<String>) -> Result<http::Response<ReceiverStream>, Error> {
        let b = SseBroadcaster::new();
        let mut headers = http::HeaderMap::new();
        if let Some(last) = last {
            headers.insert("last-event-id", last.parse().map_err(|_| Error::Validation("id".into()))?);
        }
        Ok(b.response_for(&headers))
    }

    #[sse("/stream/*rest")]
    async fn stream(&self, rest: String) -> impl futures_util::Stream<Item = Result<ServerSentEvent, Error>> + Send {
        futures_util::stream::iter(vec![Ok(ServerSentEvent::new(rest))])
    }

    // Not a route: left alone.
    #[allow(dead_code)]
    fn helper(&self) -> u32 {
        self.2
    }
}

#[module(providers: [Store, Audit], controllers: [Api])]
struct Inner;

#[module(imports: [Inner])]
struct Outer;

fn main() {
    let _ = App::new().module::<Outer>().build();
}
