//! The benchmark server: speaks `../shared/bench/PROTOCOL.md` (`/echo`, `/fanout` on
//! armature-ws; `/sse`, `/publish` on armature-sse), for the load generator and the Autobahn
//! suite. `curl -N http://127.0.0.1:9001/sse` follows the event stream.
//!
//! `cargo run --release -p examples --example bench_server -- 9001`
//! (port from the first argument or `PORT`, default 9001; `WORKERS` runtime threads, default
//! 1, which runs a current-thread runtime). It runs on jemalloc unless built with
//! `--no-default-features` (see `ALLOCATOR`).
//!
//! Routing is one `match` in [`route`]: add a route there (e.g. `/sse`, `/publish`).
//! `GET /sse` is answered on the accept loop's lean path ([`LeanSse`], no hyper connection
//! per client); `route_all` serves it through hyper only for requests the lean path leaves
//! to hyper (HTTP/1.0, say).

use std::sync::Arc;

use armature_realtime::sse::{ReceiverStream, SseBroadcaster};
use armature_ws::{
    Hub, LeanRoutes, WebSocket, WebSocketConfig, WebSocketManager, WebSocketRoom, WebSocketUpgrade,
    serve_with,
};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;

type Body = Full<Bytes>;

/// jemalloc, the bench server's choice of allocator (an application's choice, not the
/// library's): an idle WebSocket costs ~0.2 KiB less resident memory than on glibc's
/// malloc, which pays for the 128-byte alignment of tokio's task cells and I/O
/// registrations (memalign leaves the slack around each) and a header per chunk
/// (docs/benchmarks.md, "Idle WebSocket memory"). `--no-default-features` builds the
/// server on the system allocator.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// State shared by every request.
struct App {
    fanout: Arc<WebSocketRoom>,
    /// Every `/sse` client, fed by `POST /publish`.
    sse: Arc<SseBroadcaster>,
}

fn main() -> std::io::Result<()> {
    let port = examples::port_from_env(9001);
    let runtime = examples::runtime_from_env()?;
    runtime.block_on(run(port))
}

async fn run(port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let manager = WebSocketManager::new();
    let app = Arc::new(App {
        fanout: manager.get_or_create_room("fanout").await,
        sse: Arc::new(SseBroadcaster::new()),
    });
    // COMPRESSION=shared|dedicated turns permessage-deflate on (the Autobahn run and the
    // compressed bench scenarios use it); unset or anything else leaves it off.
    let compression = match std::env::var("COMPRESSION").as_deref() {
        Ok("shared") => Some(armature_ws::permessage_deflate::DeflateConfig::shared()),
        Ok("dedicated") => Some(armature_ws::permessage_deflate::DeflateConfig::dedicated(
            15,
        )),
        _ => None,
    };
    let hub = Hub::new(
        WebSocketConfig::default()
            .max_connections(1_000_000)
            .compression(compression),
    );
    eprintln!("bench_server listening on {}", listener.local_addr()?);
    let lean = LeanSse(app.sse.clone());
    serve_with(
        listener,
        hub,
        move |req| route_all(app.clone(), req),
        lean,
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await
}

/// `GET /sse` on the accept loop's lean path: no hyper connection per client.
#[derive(Clone)]
struct LeanSse(Arc<SseBroadcaster>);

impl LeanRoutes for LeanSse {
    type Body = ReceiverStream;
    type Future = std::future::Ready<Response<ReceiverStream>>;

    fn is_lean(&self, method: &Method, path: &str) -> bool {
        method == Method::GET && path == "/sse"
    }

    fn respond(&self, request: Request<()>) -> Self::Future {
        std::future::ready(self.0.response_for(request.headers()))
    }

    /// The events the `POST /publish` requests of one poll broadcast reach each client as
    /// one run (see `armature_realtime::sse::in_turn`).
    fn around_poll<R>(&self, poll: impl FnOnce() -> R) -> R {
        armature_realtime::sse::in_turn(poll)
    }
}

/// Largest `POST /publish` body accepted.
const MAX_PUBLISH: usize = 64 * 1024;

/// `/sse` and `/publish` (armature-sse), then the WebSocket routes of [`route`].
async fn route_all(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Response<Either<Body, ReceiverStream>> {
    match (req.method(), req.uri().path()) {
        // Every published payload `P` arrives as `data: P` and a blank line.
        (&Method::GET, "/sse") => app.sse.response_for(req.headers()).map(Either::Right),
        (&Method::POST, "/publish") => {
            let status = match Limited::new(req.into_body(), MAX_PUBLISH).collect().await {
                Ok(body) => {
                    let payload = String::from_utf8_lossy(&body.to_bytes()).into_owned();
                    // 204 once the event is queued for every client.
                    match app.sse.broadcast_message(payload).await {
                        Ok(()) => StatusCode::NO_CONTENT,
                        Err(_) => StatusCode::BAD_REQUEST,
                    }
                }
                Err(_) => StatusCode::PAYLOAD_TOO_LARGE,
            };
            let mut response = Response::new(Either::Left(Body::default()));
            *response.status_mut() = status;
            response
        }
        _ => route(app, req).await.map(Either::Left),
    }
}

/// Every route of the protocol.
async fn route(app: Arc<App>, mut req: Request<Incoming>) -> Response<Body> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/echo") => upgrade(&mut req, echo),
        (&Method::GET, "/fanout") => {
            let room = app.fanout.clone();
            upgrade(&mut req, move |socket| fanout(socket, room))
        }
        _ => {
            let mut response = Response::new(Body::from("not found"));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

fn upgrade<F, Fut>(req: &mut Request<Incoming>, handler: F) -> Response<Body>
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    match WebSocketUpgrade::from_request(req) {
        Ok(upgrade) => upgrade.on_upgrade(handler),
        Err(rejection) => rejection.into_response(),
    }
}

/// `/echo`: every text or binary message back, same opcode.
async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
            return;
        }
    }
}

/// `/fanout`: join the room; every text or binary message goes to everyone in it, the
/// sender included (encoded once, queued to each member).
async fn fanout(mut socket: WebSocket, room: Arc<WebSocketRoom>) {
    if room
        .join(socket.id().to_owned(), socket.connection())
        .is_err()
    {
        return;
    }
    while let Some(Ok(message)) = socket.recv().await {
        if message.is_text() || message.is_binary() {
            let _ = room.broadcast(message).await;
        }
    }
}
