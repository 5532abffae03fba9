//! The GraphQL scenario's two servers, one schema: `subscription { fanout }` streams every
//! body `POST /publish` receives (PROTOCOL.md's publish, one line of text).
//!
//! - [`serve_ours`]: `armature-realtime-graphql` on `armature_ws::serve`; the subscription
//!   is fed by a `WebSocketRoom` through `topic::room`, and `fanout` is a shared
//!   subscription (`GraphQLConfig::shared_subscriptions`): the identical subscriptions of
//!   the 1,000 clients execute once, each event is serialised once and its frame shared.
//!   `GRAPHQL_SHARED=0` turns sharing off (one execution per subscription, as before).
//! - [`serve_async_graphql`]: async-graphql's own integration on axum
//!   (`async_graphql_axum::GraphQLSubscription`, the `graphql-transport-ws` route its
//!   documentation shows), fed by a `tokio::sync::broadcast` channel as in its examples.

use std::io;
use std::sync::Arc;

use armature_realtime_graphql::{GraphQL, GraphQLConfig, topic};
use armature_ws::{Hub, WebSocketConfig, WebSocketRoom};
use async_graphql::{Context, EmptyMutation, Object, Schema, Subscription};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::serve::ListenerExt as _;
use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use super::{BROADCAST_CAPACITY, MAX_PUBLISH_BODY};

/// The query root (GraphQL needs one).
pub struct Query;

#[Object]
impl Query {
    /// A constant, so the schema has a query.
    async fn ok(&self) -> bool {
        true
    }
}

/// Where published bodies go.
#[derive(Clone)]
enum Feed {
    Room(Arc<WebSocketRoom>),
    Broadcast(broadcast::Sender<Arc<str>>),
}

/// The subscription root: `fanout` streams the published bodies.
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Every published body, in order.
    async fn fanout(&self, ctx: &Context<'_>) -> impl Stream<Item = String> + use<> {
        match ctx.data_unchecked::<Feed>() {
            Feed::Room(room) => topic::room::<String>(room).await.left_stream(),
            Feed::Broadcast(sender) => BroadcastStream::new(sender.subscribe())
                .filter_map(|item| async move { item.ok().map(|s: Arc<str>| s.to_string()) })
                .right_stream(),
        }
    }
}

type BenchSchema = Schema<Query, EmptyMutation, Subscription>;

fn schema(feed: Feed) -> BenchSchema {
    Schema::build(Query, EmptyMutation, Subscription)
        .data(feed)
        .finish()
}

/// Our server: `/graphql` (every GraphQL transport) and `POST /publish`.
pub async fn serve_ours(listener: TcpListener) -> io::Result<()> {
    let room = Arc::new(WebSocketRoom::new("fanout".into()));
    let shared: &[&str] = match std::env::var("GRAPHQL_SHARED").as_deref() {
        Ok("0") => &[],
        _ => &["fanout"],
    };
    let graphql = GraphQL::new(schema(Feed::Room(Arc::clone(&room))))
        .config(GraphQLConfig::default().shared_subscriptions(shared.iter().copied()));
    let hub = Hub::new(WebSocketConfig::default());
    armature_ws::serve(
        listener,
        hub,
        move |req: hyper::Request<hyper::body::Incoming>| {
            let graphql = graphql.clone();
            let room = Arc::clone(&room);
            async move {
                if req.uri().path() == "/publish" {
                    return publish_to_room(req, &room).await;
                }
                graphql.handle(req).await
            }
        },
        std::future::pending::<()>(),
    )
    .await
}

async fn publish_to_room(
    req: hyper::Request<hyper::body::Incoming>,
    room: &WebSocketRoom,
) -> hyper::Response<armature_realtime_graphql::Body> {
    let status = match http_body_util::Limited::new(req.into_body(), MAX_PUBLISH_BODY)
        .collect()
        .await
    {
        Ok(body) => match String::from_utf8(body.to_bytes().to_vec()) {
            // One JSON encoding for every subscription.
            Ok(text) if room.broadcast_json(&text).await.is_ok() => StatusCode::NO_CONTENT,
            _ => StatusCode::BAD_REQUEST,
        },
        Err(_) => StatusCode::PAYLOAD_TOO_LARGE,
    };
    let mut response = hyper::Response::new(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

/// The peer: async-graphql-axum's `GraphQLSubscription` at `/graphql`, `POST /publish`.
pub async fn serve_async_graphql(listener: TcpListener) -> io::Result<()> {
    let sender = broadcast::channel::<Arc<str>>(BROADCAST_CAPACITY).0;
    let schema = schema(Feed::Broadcast(sender.clone()));
    let app = axum::Router::new()
        .route_service(
            "/graphql",
            async_graphql_axum::GraphQLSubscription::new(schema),
        )
        .route("/publish", post(publish_to_channel))
        .with_state(sender);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

async fn publish_to_channel(
    State(sender): State<broadcast::Sender<Arc<str>>>,
    body: String,
) -> impl IntoResponse {
    let _ = sender.send(body.into());
    StatusCode::NO_CONTENT
}
