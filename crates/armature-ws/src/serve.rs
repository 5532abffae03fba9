//! [`serve`]: a small HTTP/1.1 accept loop for WebSocket servers, with graceful shutdown
//! that also covers upgraded connections.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::hub::Hub;
use crate::lean::{self, HeadError, LeanResponse, LeanRoutes, Rewind};

/// The address of the client at the other end of the TCP connection a request came on.
///
/// [`serve`] puts it in every request's extensions, so handlers, guards and rate limits can
/// read it (`request.extensions().get::<PeerAddr>()`). Behind a reverse proxy this is the
/// proxy's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// Serves HTTP/1.1 on `listener` with upgrades enabled, calling `service` for every request,
/// until `shutdown` completes; then shuts down gracefully and returns.
///
/// Every request carries `hub` and the client's [`PeerAddr`] in its extensions, so
/// [`WebSocketUpgrade::from_request`](crate::WebSocketUpgrade::from_request) tracks its
/// connection there (ids, `max_connections` → `503`, heartbeat).
///
/// Graceful shutdown, once `shutdown` completes: the listener closes; HTTP connections
/// finish the request in flight and close; every WebSocket of the hub gets a close frame
/// with code 1001 behind what is already queued for it; serve waits up to the hub's
/// `shutdown_timeout` for the close handshakes, drops what is left, and returns.
///
/// Hostile HTTP clients get the hub config's answers: a request head not complete within
/// [`header_read_timeout`](crate::WebSocketConfig::header_read_timeout) (30 s by default)
/// closes the connection; one larger than
/// [`max_request_head_bytes`](crate::WebSocketConfig::max_request_head_bytes) (64 KiB) is
/// answered `431`.
///
/// This is the one accept loop of the workspace: the facade's `App` server runs on it too,
/// with the same limits.
///
/// `TCP_NODELAY` is set on accepted sockets. Errors accepting a connection (such as running
/// out of file descriptors) are retried after a short pause; the only error returned is from
/// reading the listener's address.
pub async fn serve<S, Fut, B>(
    listener: TcpListener,
    hub: Hub,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    S: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    serve_with(listener, hub, service, (), shutdown).await
}

/// [`serve`], with the requests `lean` claims (long-lived event streams) answered without
/// hyper: see [`LeanRoutes`]. The first request head of every connection is read by the
/// accept loop with `httparse` (the hostile-client answers above are the same); what
/// `lean` does not claim goes to hyper with the bytes already read.
///
/// Graceful shutdown ends a lean response: what is queued goes out, then the last chunk.
pub async fn serve_with<S, Fut, B, L>(
    listener: TcpListener,
    hub: Hub,
    service: S,
    lean: L,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    S: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    L: LeanRoutes,
    <L::Body as Body>::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    listener.local_addr()?;
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(hub.config().header_read_timeout)
        .max_buf_size(hub.config().max_request_head_bytes);
    let (stop_tx, stop_rx) = watch::channel(false);
    let accept = async {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(pair) => pair,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(connection(
                stream,
                peer,
                hub.clone(),
                service.clone(),
                lean.clone(),
                stop_rx.clone(),
                http.clone(),
            ));
        }
    };
    tokio::select! {
        () = accept => {}
        () = shutdown => {}
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    let deadline = hub.config().get_shutdown_timeout();
    let http_done = async {
        let _ = tokio::time::timeout(deadline, stop_tx.closed()).await;
    };
    let ws_done = hub.shutdown_within(deadline);
    let ((), _) = tokio::join!(http_done, ws_done);
    Ok(())
}

/// One accepted connection: its first request head, then the lean path or hyper.
async fn connection<S, Fut, B, L>(
    stream: TcpStream,
    peer: SocketAddr,
    hub: Hub,
    service: S,
    lean: L,
    mut stop: watch::Receiver<bool>,
    http: http1::Builder,
) where
    S: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    L: LeanRoutes,
    <L::Body as Body>::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    // The head is read in a boxed future: its timer and buffer are not part of the task a
    // long-lived lean response keeps.
    let first = Box::pin(first_head(&stream, &hub)).await;
    let (buf, head_len) = match first {
        Ok(pair) => pair,
        Err(Some(error)) => {
            if let Some(answer) = error.response() {
                lean::refuse(stream, answer).await;
            }
            return;
        }
        Err(None) => return,
    };
    let head = buf.get(..head_len).unwrap_or_default();
    if let Some(candidate) = lean::lean_candidate(head)
        && lean.is_lean(candidate.method(), candidate.path())
    {
        let Some(mut request) = lean::to_request(head, candidate) else {
            if let Some(answer) = HeadError::Bad.response() {
                lean::refuse(stream, answer).await;
            }
            return;
        };
        drop(buf);
        request.extensions_mut().insert(hub);
        request.extensions_mut().insert(PeerAddr(peer));
        let respond = lean.respond(request);
        let response = tokio::select! {
            response = respond => response,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        // A task of its own: this one (the hyper builder, the service, the request's
        // future) ends here, and a long-lived stream keeps only what it needs.
        tokio::spawn(lean::run(LeanResponse::new(stream, response), stop));
        return;
    }
    // Boxed: hyper's connection state is not part of a lean response's task.
    Box::pin(hyper_connection(
        Rewind::new(buf.freeze(), stream),
        peer,
        hub,
        service,
        lean,
        stop,
        http,
    ))
    .await;
}

/// Reads the first request head within the header timeout. `Err(None)`: the timeout
/// passed (the connection is closed without an answer, as hyper does).
async fn first_head(stream: &TcpStream, hub: &Hub) -> Result<(BytesMut, usize), Option<HeadError>> {
    let config = hub.config();
    let mut buf = BytesMut::new();
    let read = lean::read_head(stream, &mut buf, config.max_request_head_bytes);
    let n = match config.header_read_timeout {
        Some(timeout) => tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| None)?
            .map_err(Some)?,
        None => read.await.map_err(Some)?,
    };
    Ok((buf, n))
}

/// Serves a connection with hyper, the bytes already read first; each poll of it runs
/// inside [`LeanRoutes::around_poll`].
async fn hyper_connection<S, Fut, B, L>(
    io: Rewind,
    peer: SocketAddr,
    hub: Hub,
    service: S,
    lean: L,
    mut stop: watch::Receiver<bool>,
    http: http1::Builder,
) where
    S: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
    L: LeanRoutes,
{
    let svc = service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(hub.clone());
        req.extensions_mut().insert(PeerAddr(peer));
        let fut = service(req);
        async move { Ok::<_, Infallible>(fut.await) }
    });
    let conn = http.serve_connection(TokioIo::new(io), svc).with_upgrades();
    tokio::pin!(conn);
    let stopped = tokio::select! {
        _ = std::future::poll_fn(|cx| lean.around_poll(|| conn.as_mut().poll(cx))) => false,
        stop = stop.wait_for(|stop| *stop) => stop.is_ok(),
    };
    if stopped {
        conn.as_mut().graceful_shutdown();
        let _ = std::future::poll_fn(|cx| lean.around_poll(|| conn.as_mut().poll(cx))).await;
    }
}
