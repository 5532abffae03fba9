//! The peer servers `cargo xtask bench` compares us with, each speaking PROTOCOL.md
//! (`../shared/bench/PROTOCOL.md`) the way its library's own documentation shows.
//!
//! | module | WebSocket | SSE |
//! | --- | --- | --- |
//! | [`tungstenite`] | tokio-tungstenite over hyper's upgrade, `tokio::sync::broadcast` | hyper ([`hyper_sse`]) |
//! | [`axum_peer`] | `axum::extract::ws`, `tokio::sync::broadcast` | `axum::response::sse` |
//! | [`fastws`] | fastwebsockets with hyper's upgrade, `tokio::sync::broadcast` | hyper ([`hyper_sse`]) |
//!
//! The uWebSockets peer is Node code in `benches/peers/uws/`. The GraphQL scenario has its
//! own pair ([`graphql`]): our `armature-realtime-graphql` endpoint and async-graphql's
//! own WebSocket integration on axum.

pub mod axum_peer;
pub mod fastws;
pub mod graphql;
pub mod hyper_sse;
pub mod tungstenite;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Capacity of every peer's `tokio::sync::broadcast` channel: messages a slow receiver may
/// fall behind before it lags (and loses messages, which the generator reports).
pub const BROADCAST_CAPACITY: usize = 1024;

/// Largest `/publish` body a peer accepts.
pub const MAX_PUBLISH_BODY: usize = 64 * 1024;

/// The port from the first argument or `PORT` (PROTOCOL.md).
pub fn port_from_args() -> io::Result<u16> {
    let arg = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok());
    let text = arg.ok_or_else(|| io::Error::other("usage: PEER PORT (or set PORT)"))?;
    text.parse()
        .map_err(|_| io::Error::other(format!("not a port: {text}")))
}

/// Worker threads from `WORKERS` (default 1).
pub fn workers_from_env() -> usize {
    std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .filter(|&w| w > 0)
        .unwrap_or(1)
}

/// A tokio runtime with `workers` threads: the current-thread runtime for one.
pub fn runtime(workers: usize) -> io::Result<tokio::runtime::Runtime> {
    if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
}

/// Runs a peer: reads PORT and WORKERS, builds the runtime, binds `127.0.0.1:PORT` and
/// runs `serve` on the listener.
pub fn main_with<F, Fut>(name: &str, serve: F) -> io::Result<()>
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = io::Result<()>>,
{
    let port = port_from_args()?;
    let workers = workers_from_env();
    runtime(workers)?.block_on(async move {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        eprintln!("{name}: listening on 127.0.0.1:{port} with {workers} worker(s)");
        serve(listener).await
    })
}

/// Accepts connections forever and serves each with hyper's HTTP/1.1 server (upgrades
/// enabled) and a clone of `service`. Accept errors (such as running out of file
/// descriptors) pause the loop briefly instead of ending it.
pub async fn serve_hyper<S, B>(listener: TcpListener, service: S) -> io::Result<()>
where
    S: Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let _ = conn.await;
        });
    }
}
