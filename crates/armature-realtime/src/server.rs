//! [`Server`]: accepts TCP connections and serves an [`AppService`] on each with hyper 1's
//! HTTP/1 connection (upgrades enabled), and shuts down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::Error;
use crate::app::AppService;

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
    /// WebSocket handlers see it), lets open HTTP connections finish their current response
    /// and waits for them up to the shutdown timeout.
    ///
    /// # Errors
    /// None at present; the accept loop survives transient errors (such as running out of
    /// file descriptors) by pausing briefly.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), Error> {
        let Server {
            listener, service, ..
        } = self;
        // Every connection task holds a clone of `alive`; when all are gone, `recv` ends.
        let (alive, mut all_done) = mpsc::channel::<()>(1);
        let mut signal = std::pin::pin!(signal);
        loop {
            let (stream, _peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(_) => {
                        // EMFILE and friends: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                },
                () = &mut signal => break,
            };
            let _ = stream.set_nodelay(true);
            let svc = service.clone();
            // With a timer, hyper enforces its 30-second limit on reading a request head
            // (a client that trickles its headers is dropped).
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(
                    TokioIo::new(stream),
                    service_fn(move |req| {
                        let svc = svc.clone();
                        async move { Ok::<_, std::convert::Infallible>(svc.call(req).await) }
                    }),
                )
                .with_upgrades();
            let alive = alive.clone();
            let stop = service.shutdown_signal();
            tokio::spawn(async move {
                let mut conn = std::pin::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = stop.wait() => {
                        // Finish the response in flight, then close; an SSE body ends on the
                        // same signal.
                        conn.as_mut().graceful_shutdown();
                        let _ = conn.await;
                    }
                }
                drop(alive);
            });
        }
        drop(listener);
        drop(alive);
        let deadline = service.shutdown_timeout();
        let http = async {
            let _ = tokio::time::timeout(deadline, all_done.recv()).await;
        };
        tokio::join!(service.shutdown_realtime(), http);
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
