//! `/sse` and `/publish` of `../shared/bench/PROTOCOL.md` on plain hyper 1 with
//! armature-sse, for the load generator (`loadgen sse`) and `curl -N`:
//!
//! ```text
//! cargo run --release -p armature-sse --example sse_bench_server -- 9002
//! curl -N http://127.0.0.1:9002/sse
//! curl -d 'hello' http://127.0.0.1:9002/publish
//! ```
//!
//! Port from the first argument or `PORT` (default 9002); `WORKERS` runtime threads
//! (default 1: a current-thread runtime).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use armature_sse::{ReceiverStream, SseBroadcaster};
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Empty, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// Largest `/publish` body accepted.
const MAX_PUBLISH: usize = 64 * 1024;

type Body = Either<ReceiverStream, Empty<Bytes>>;

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(9002);
    let workers: usize = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    let runtime = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?
    };
    runtime.block_on(run(port))
}

async fn run(port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("sse_bench_server listening on {}", listener.local_addr()?);
    let broadcaster = Arc::new(SseBroadcaster::new());
    broadcaster
        .clone()
        .start_keep_alive(Duration::from_secs(15));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let broadcaster = broadcaster.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| route(broadcaster.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

async fn route(
    broadcaster: Arc<SseBroadcaster>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/sse") => broadcaster.response_for(req.headers()).map(Either::Left),
        (&Method::POST, "/publish") => {
            match Limited::new(req.into_body(), MAX_PUBLISH).collect().await {
                Ok(body) => {
                    let payload = String::from_utf8_lossy(&body.to_bytes()).into_owned();
                    match broadcaster.broadcast_message(payload).await {
                        Ok(()) => status(StatusCode::NO_CONTENT),
                        Err(_) => status(StatusCode::BAD_REQUEST),
                    }
                }
                Err(_) => status(StatusCode::PAYLOAD_TOO_LARGE),
            }
        }
        _ => status(StatusCode::NOT_FOUND),
    })
}

fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(Either::Right(Empty::new()));
    *response.status_mut() = code;
    response
}
