//! The test schema and server shared by the integration tests: a real `armature_ws::serve`
//! on a free port with a `GraphQL` endpoint at `/graphql`.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use armature_realtime_graphql::{Accepted, GraphQL, GraphQLConfig, Rejected, topic};
use armature_ws::{Hub, WebSocketConfig, WebSocketManager, serve};
use async_graphql::{Context, Object, Result, Schema, Subscription};
use futures_util::Stream;
use tokio::sync::oneshot;

/// Counts live resolver streams: incremented when a stream starts, decremented when it is
/// dropped, so a test sees "the resolver's stream stopped".
#[derive(Default)]
pub struct Live(pub AtomicUsize);

struct LiveGuard(Arc<Live>);
impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Who the on-connect hook let in.
pub struct User(pub String);

pub struct Query;

#[Object]
impl Query {
    async fn hello(&self) -> &str {
        "world"
    }
    async fn fails(&self) -> Result<i32> {
        Err("this field always fails".into())
    }
    async fn whoami(&self, ctx: &Context<'_>) -> Option<String> {
        ctx.data_opt::<User>().map(|u| u.0.clone())
    }
    async fn value(&self, ctx: &Context<'_>) -> i64 {
        ctx.data_unchecked::<Arc<AtomicI64>>()
            .load(Ordering::SeqCst)
    }
    async fn slow(&self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    async fn add(&self, ctx: &Context<'_>, by: i64) -> i64 {
        ctx.data_unchecked::<Arc<AtomicI64>>()
            .fetch_add(by, Ordering::SeqCst)
            + by
    }
}

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// 0, 1, … `to - 1`, then the stream ends.
    async fn count(&self, to: i32) -> impl Stream<Item = i32> {
        futures_util::stream::iter(0..to)
    }
    /// A number every `ms` milliseconds, for ever; counted in `Live` while it runs.
    async fn ticks(&self, ctx: &Context<'_>, ms: u64) -> impl Stream<Item = u64> + use<> {
        let live = Arc::clone(ctx.data_unchecked::<Arc<Live>>());
        live.0.fetch_add(1, Ordering::SeqCst);
        let guard = LiveGuard(live);
        futures_util::stream::unfold((0u64, guard), move |(n, guard)| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Some((n, (n + 1, guard)))
        })
    }
    /// No arguments: greetings, then the end.
    async fn greetings(&self) -> impl Stream<Item = &'static str> {
        futures_util::stream::iter(["Hi", "Bonjour", "Hola"])
    }
    /// Yields one value, then an error result.
    async fn flaky(&self) -> impl Stream<Item = Result<i32>> {
        futures_util::stream::iter([Ok(1), Err("kaboom".into())])
    }
    /// Panics in the resolver.
    async fn panics(&self) -> impl Stream<Item = i32> {
        futures_util::stream::once(async { panic!("resolver panicked on purpose") })
    }
    /// What is broadcast to the room `chat`, typed.
    async fn chat(&self, ctx: &Context<'_>) -> impl Stream<Item = String> + use<> {
        let rooms = ctx.data_unchecked::<Arc<WebSocketManager>>();
        topic::room::<String>(&rooms.room("chat")).await
    }
}

pub type TestSchema = Schema<Query, Mutation, Subscription>;

pub struct TestServer {
    pub addr: SocketAddr,
    pub live: Arc<Live>,
    pub rooms: Arc<WebSocketManager>,
    pub value: Arc<AtomicI64>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

pub fn schema(live: Arc<Live>, rooms: Arc<WebSocketManager>, value: Arc<AtomicI64>) -> TestSchema {
    Schema::build(Query, Mutation, Subscription)
        .data(live)
        .data(rooms)
        .data(value)
        .finish()
}

/// The test endpoint: `token` in the init payload must not be `"bad"`; a token `"slow"`
/// makes the hook take 600 ms; the user's name comes from `user`.
pub fn endpoint(schema: TestSchema, config: GraphQLConfig) -> GraphQL<TestSchema> {
    GraphQL::new(schema)
        .config(config)
        .on_connect(|init| async move {
            let token = init
                .payload()
                .and_then(|p| p.get("token"))
                .and_then(|t| t.as_str())
                .map(str::to_owned);
            match token.as_deref() {
                Some("bad") => Err(Rejected::new("bad token")),
                Some("slow") => {
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    Ok(Accepted::new())
                }
                _ => {
                    let mut accepted = Accepted::new();
                    if let Some(user) = init
                        .payload()
                        .and_then(|p| p.get("user"))
                        .and_then(|u| u.as_str())
                    {
                        accepted = accepted.data(User(user.to_owned()));
                    }
                    if init.payload().is_some_and(|p| p.contains_key("ackMe")) {
                        let mut ack = serde_json::Map::new();
                        ack.insert("welcome".into(), true.into());
                        accepted = accepted.ack_payload(ack);
                    }
                    Ok(accepted)
                }
            }
        })
}

impl TestServer {
    pub async fn start(config: GraphQLConfig) -> Self {
        Self::start_on("127.0.0.1:0", config).await
    }

    pub async fn start_on(addr: &str, config: GraphQLConfig) -> Self {
        let live = Arc::new(Live::default());
        let rooms = Arc::new(WebSocketManager::new());
        let value = Arc::new(AtomicI64::new(0));
        let graphql = endpoint(
            schema(Arc::clone(&live), Arc::clone(&rooms), Arc::clone(&value)),
            config,
        );
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(
            listener,
            Hub::new(WebSocketConfig::default()),
            move |req| {
                let graphql = graphql.clone();
                async move { graphql.handle(req).await }
            },
            async {
                let _ = stopped.await;
            },
        ));
        TestServer {
            addr,
            live,
            rooms,
            value,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    pub fn http_url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    pub fn live_streams(&self) -> usize {
        self.live.0.load(Ordering::SeqCst)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Waits until `cond` holds, up to 5 s.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}
