//! [`Server`]: accepts TCP connections and serves an [`AppService`] on each with hyper 1's
//! HTTP/1 connection (upgrades enabled), and shuts down gracefully.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Error;
use crate::app::AppService;
use crate::ws::{LeanRoutes, serve_with};

/// A bound listener and the app it serves.
///
/// ```
/// use armature_realtime::App;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), armature_realtime::Error> {
/// let server = App::new().page("/", "hi").bind("127.0.0.1:0").await?;
/// let running = server.spawn();
/// println!("listening on {}", running.local_addr());
/// running.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    service: AppService,
    local_addr: SocketAddr,
}

impl Server {
    /// Binds `addr` for `service`.
    ///
    /// # Errors
    /// [`Error::Io`] when the address cannot be bound.
    pub async fn bind(
        service: AppService,
        addr: impl tokio::net::ToSocketAddrs,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            service,
            local_addr,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The app this server serves.
    pub fn service(&self) -> &AppService {
        &self.service
    }

    /// Serves until `signal` completes, then shuts down gracefully: stops accepting, raises
    /// the app's [`ShutdownSignal`](crate::shutdown::ShutdownSignal) (SSE streams end,
    /// WebSocket handlers see it), closes every WebSocket with 1001, lets open HTTP
    /// connections finish their current response and waits for them up to the shutdown
    /// timeout.
    ///
    /// SSE routes are answered on the accept loop's lean path
    /// ([`armature_ws::serve_with`](crate::ws::serve_with)): guards, `Origin` checks and
    /// gzip run as for any route, then the event stream is written without a hyper
    /// connection (an idle client holds its socket, its task and its queue), with
    /// `Connection: close`. Every other request is served by hyper.
    ///
    /// The accept loop is [`armature_ws::serve`](crate::ws::serve)'s, so an `App` enforces
    /// the same limits on hostile HTTP clients as `armature-ws` alone, from its
    /// [`WebSocketConfig`](crate::ws::WebSocketConfig): a request head not complete within
    /// `header_read_timeout` (30 s by default) closes the connection, one larger than
    /// `max_request_head_bytes` (64 KiB) is answered `431`. Every request carries the
    /// client's [`PeerAddr`](crate::ws::PeerAddr) in its extensions.
    ///
    /// # Errors
    /// [`Error::Io`] when the listener's address cannot be read; the accept loop survives
    /// transient errors (such as running out of file descriptors) by pausing briefly.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), Error> {
        let Server {
            listener, service, ..
        } = self;
        let hub = service.websocket_hub().clone();
        let trigger = service.clone();
        let shutdown = async move {
            signal.await;
            // SSE bodies end on this signal; serve then closes the WebSockets with 1001.
            trigger.raise_shutdown();
        };
        let lean = service.clone();
        serve_with(
            listener,
            hub,
            move |req| {
                let svc = service.clone();
                async move { svc.call(req).await }
            },
            lean,
            shutdown,
        )
        .await?;
        Ok(())
    }

    /// Runs the server on a task; the returned handle knows the address and stops it.
    pub fn spawn(self) -> RunningServer {
        let local_addr = self.local_addr;
        let service = self.service.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(self.run_until(async move {
            let _ = rx.await;
        }));
        RunningServer {
            local_addr,
            service,
            stop: Some(tx),
            task,
        }
    }
}

/// A server running on a task (see [`Server::spawn`]).
#[derive(Debug)]
pub struct RunningServer {
    local_addr: SocketAddr,
    service: AppService,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The app the server serves.
    pub fn service(&self) -> &AppService {
        &self.service
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    ///
    /// # Errors
    /// [`Error::Internal`] when the server task panicked.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| Error::Internal(format!("server task failed: {e}")))?
    }
}

/// The SSE routes of an app, answered without hyper (see [`Server::run_until`]).
impl LeanRoutes for AppService {
    type Body = crate::body::Body;
    type Future = std::pin::Pin<Box<dyn Future<Output = http::Response<Self::Body>> + Send>>;

    fn is_lean(&self, method: &http::Method, path: &str) -> bool {
        self.is_sse_route(method, path)
    }

    fn respond(&self, request: http::Request<()>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            use futures_util::FutureExt;
            let request = request.map(|()| http_body_util::Empty::<bytes::Bytes>::new());
            let path = request.uri().path().to_owned();
            // A handler that panics before its stream starts gets a 500, as a refusal would.
            match std::panic::AssertUnwindSafe(service.call(request))
                .catch_unwind()
                .await
            {
                Ok(response) => response,
                Err(_) => {
                    tracing::error!(path, "SSE handler panicked");
                    crate::body::text_response(
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        "handler panicked",
                    )
                }
            }
        })
    }
    /// What the handlers of one poll of a connection broadcast over SSE reaches each client
    /// as one run (see [`armature_sse::in_turn`]): pipelined publishes cost one queue push
    /// and one wake per client, not one per event.
    fn around_poll<R>(&self, poll: impl FnOnce() -> R) -> R {
        armature_sse::in_turn(poll)
    }
}
