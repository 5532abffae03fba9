//! WebSocket routes: [`PendingUpgrade`], the upgrade a `#[websocket]` handler may still
//! refuse, and [`websocket`], which runs a handler for a request.
//!
//! The handler starts as soon as the request arrives, polled by the request's future. It may
//! check the request (path, query, headers) and return `Err(Error::Http { status: 401, .. })`
//! before accepting: the client then gets that status and no upgrade happens. Once it calls
//! [`PendingUpgrade::accept`], the `101` goes out and the handler's future moves into the
//! connection's task, which polls it beside the socket for the rest of the connection: the
//! socket's I/O never waits for it, and its outcome sets the close code — `Ok` → 1000,
//! `Err` → 1011 with the error as reason, a panic → 1011 (contained, logged).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use http::{Request, Response, StatusCode};
use tokio::sync::oneshot;

use crate::Error;
use crate::body::{Body, error_response, from_full, text_response};
use crate::guard::{ExpiresAt, Refusal, UserId};
use crate::rate_limit::Permits;
use crate::request::RequestHead;
use crate::sessions::Sessions;
use crate::ws::{
    MessageRate, OriginPolicy, WebSocket, WebSocketConnection, WebSocketUpgrade, check_origin,
};

/// A WebSocket upgrade request that the handler has not accepted yet.
///
/// ```no_run
/// use armature_realtime::prelude::*;
///
/// #[controller("/ws")]
/// struct SecureController;
///
/// #[controller]
/// impl SecureController {
///     #[websocket("/secure")]
///     async fn secure(
///         &self,
///         #[header] authorization: Option<String>,
///         upgrade: PendingUpgrade,
///     ) -> Result<(), Error> {
///         if authorization.as_deref() != Some("Bearer let-me-in") {
///             return Err(Error::Http { status: 401, reason: "missing or bad token".into() });
///         }
///         let mut socket = upgrade.accept().await?;
///         socket.send_text("welcome").await
///     }
/// }
/// ```
#[derive(Debug)]
pub struct PendingUpgrade {
    accept: Option<oneshot::Sender<Accept>>,
    requested_protocols: Vec<String>,
    protocols: Vec<String>,
}

/// What the handler sends when it accepts: where to deliver the socket, and the
/// subprotocols it speaks.
#[derive(Debug)]
struct Accept {
    socket: oneshot::Sender<WebSocket>,
    protocols: Vec<String>,
}

impl PendingUpgrade {
    /// Accepts: the `101 Switching Protocols` response is sent and the socket returned.
    ///
    /// # Errors
    /// [`Error::Http`] with `503` when the server is at its connection limit or shutting
    /// down; [`Error::Closed`] when the client went away during the handshake.
    pub async fn accept(mut self) -> Result<WebSocket, Error> {
        let (socket_tx, socket_rx) = oneshot::channel();
        let Some(accept) = self.accept.take() else {
            return Err(Error::Closed);
        };
        accept
            .send(Accept {
                socket: socket_tx,
                protocols: std::mem::take(&mut self.protocols),
            })
            .map_err(|_| Error::Closed)?;
        socket_rx.await.map_err(|_| Error::Http {
            status: 503,
            reason: "the upgrade did not complete (connection limit, shutdown, or the client left)"
                .into(),
        })
    }

    /// The subprotocols the client asked for (`Sec-WebSocket-Protocol`), in its order.
    pub fn requested_protocols(&self) -> &[String] {
        &self.requested_protocols
    }

    /// The subprotocols this endpoint speaks; on [`accept`](Self::accept) the first of the
    /// client's list found here is agreed (and reported by `WebSocket::protocol`).
    pub fn protocols<I, S>(mut self, supported: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.protocols = supported.into_iter().map(Into::into).collect();
        self
    }
}

/// Turns a handler's result into `Result<(), Error>`: handlers may return `()` or
/// `Result<(), E>` with `E: Into<Error>`.
pub trait HandlerOutcome {
    /// The result as `Result<(), Error>`.
    fn into_outcome(self) -> Result<(), Error>;
}

impl HandlerOutcome for () {
    fn into_outcome(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<E: Into<Error>> HandlerOutcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), Error> {
        self.map_err(Into::into)
    }
}

/// Serves a WebSocket route: checks the upgrade request (`400`/`426` when it is not one),
/// runs `handler` on a task with the [`PendingUpgrade`] and the request head, and answers
/// with the `101` when the handler accepts, or with the handler's error status when it
/// returns before accepting.
///
/// The `Origin` is checked first, against the app's
/// [`origin_policy`](crate::App::origin_policy): `403` when refused.
pub async fn websocket<F, Fut>(head: RequestHead, handler: F) -> Response<Body>
where
    F: FnOnce(PendingUpgrade, RequestHead) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    websocket_with_origins(head, None, handler).await
}

/// [`websocket`] with this route's own `Origin` rules instead of the app's (`None`: the
/// app's).
pub async fn websocket_with_origins<F, Fut>(
    mut head: RequestHead,
    origins: Option<&OriginPolicy>,
    handler: F,
) -> Response<Body>
where
    F: FnOnce(PendingUpgrade, RequestHead) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    // The upgrade takes hyper's upgrade handle out of the request; the rest of the head goes
    // on to the handler.
    let placeholder = Request::new(()).into_parts().0;
    let mut request = Request::from_parts(std::mem::replace(head.parts_mut(), placeholder), ());
    let upgrade = match origins {
        Some(policy) => WebSocketUpgrade::from_request_with_origins(&mut request, policy),
        None => WebSocketUpgrade::from_request(&mut request),
    };
    *head.parts_mut() = request.into_parts().0;
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            tracing::info!(
                path = head.uri().path(),
                origin = head.header("origin"),
                status = rejection.status().as_u16(),
                reason = rejection.reason(),
                "websocket upgrade refused"
            );
            return from_full(rejection.into_response());
        }
    };
    // A hand-written route (`App::get(.., |head| ws_route::websocket(head, ..))`) meets the
    // app's connection limit here, after the Origin check; a decorated route checked it
    // (and its own) before its guards and left the permits in the head.
    if head.extensions().get::<Permits>().is_none() {
        if let Err(refusal) = crate::rate_limit::check(&mut head) {
            return refusal.into_response();
        }
    }
    let (accept_tx, accept_rx) = oneshot::channel();
    // A token carried in Sec-WebSocket-Protocol: the handler does not see it, the marker
    // is agreed if the handler agrees on nothing else.
    let marker = head.extensions().get::<SubprotocolToken>().cloned();
    let requested_protocols = match &marker {
        Some(m) => strip_token(upgrade.requested_protocols(), &m.marker),
        None => upgrade.requested_protocols().to_vec(),
    };
    let user = head.extensions().get::<UserId>().cloned();
    // The connection permits of the rate limits: held until the connection closes.
    let permits = head.extensions_mut().remove::<Permits>();
    let upgrade = match head.extensions().get::<MessageRate>() {
        Some(rate) => upgrade.message_rate(*rate),
        None => upgrade,
    };
    let expires = head.extensions().get::<ExpiresAt>().copied();
    let sessions = head.extensions().get::<Arc<Sessions>>().cloned();
    let pending = PendingUpgrade {
        accept: Some(accept_tx),
        requested_protocols,
        protocols: Vec::new(),
    };
    // The handler is polled here, in the request's future, until it accepts or returns;
    // once it accepts, the same future moves into the connection task, which polls it
    // beside the socket: its `Err` closes with 1011 and a panic is contained there (see
    // `armature_ws::HandlerOutcome`).
    let mut handler = Box::pin(AssertUnwindSafe(handler(pending, head)).catch_unwind());
    tokio::select! {
        accepted = accept_rx => match accepted {
            Ok(Accept { socket: socket_tx, mut protocols }) => {
                if let Some(m) = marker {
                    protocols.push(m.marker);
                }
                from_full(upgrade.protocols(protocols).on_upgrade(move |socket| async move {
                    let _permits = permits;
                    if let (Some(UserId(user)), Some(sessions)) = (&user, &sessions) {
                        sessions.insert(user, socket.connection());
                    }
                    if let Some(ExpiresAt(at)) = expires {
                        close_at_expiry(socket.connection(), at);
                    }
                    if socket_tx.send(socket).is_err() {
                        return Ok(()); // the handler is gone already
                    }
                    match handler.await {
                        Ok(outcome) => outcome,
                        // Resumed so that the connection task's own containment logs it and
                        // closes with 1011, as for a handler given to `on_upgrade` directly.
                        Err(payload) => std::panic::resume_unwind(payload),
                    }
                }))
            }
            // The handler dropped the pending upgrade: it returned (or gave up).
            Err(_) => refused(handler.await),
        },
        finished = &mut handler => refused(finished),
    }
}

fn refused(finished: std::thread::Result<Result<(), Error>>) -> Response<Body> {
    match finished {
        Ok(Err(err)) => error_response(&err),
        Ok(Ok(())) => text_response(
            StatusCode::FORBIDDEN,
            "the handler did not accept the WebSocket",
        ),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&'static str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(non-string panic payload)");
            tracing::error!(panic = %message, "websocket handler panicked before accepting");
            text_response(StatusCode::INTERNAL_SERVER_ERROR, "handler failed")
        }
    }
}

/// Put in a request's extensions by an auth guard that read the token from
/// `Sec-WebSocket-Protocol`: the client offered `marker` followed by the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubprotocolToken {
    /// The protocol name announcing the token (agreed in the `101`, the token never is).
    pub marker: String,
}

/// The client's protocols without the token that follows `marker`.
fn strip_token(protocols: &[String], marker: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(protocols.len());
    let mut skip = false;
    for p in protocols {
        if skip {
            skip = false;
            continue;
        }
        if p == marker {
            skip = true;
        } else {
            out.push(p.clone());
        }
    }
    out
}

/// Closes `connection` with 1008 when its credentials expire.
fn close_at_expiry(connection: WebSocketConnection, at: SystemTime) {
    let left = at.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::spawn(async move {
        // Checked every second at most once a minute: the task ends soon after the
        // connection does.
        let deadline = tokio::time::Instant::now() + left;
        loop {
            if connection.is_closed() {
                return;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep((deadline - now).min(Duration::from_secs(60))).await;
        }
        tracing::info!(id = connection.id(), "token expired: closing with 1008");
        let _ = connection.close(1008u16, "token expired").await;
    });
}

/// The `403` of a WebSocket request whose `Origin` the app's policy refuses.
pub(crate) fn origin_refusal(head: &RequestHead) -> Option<Response<Body>> {
    let hub = head.extensions().get::<crate::ws::Hub>()?;
    let mut request = Request::new(());
    *request.headers_mut() = head.headers().clone();
    *request.uri_mut() = head.uri().clone();
    match check_origin(&request, hub.config().get_origin_policy()) {
        Ok(()) => None,
        Err(rejection) => {
            tracing::info!(
                path = head.uri().path(),
                origin = head.header("origin"),
                "websocket upgrade refused: origin not allowed"
            );
            Some(from_full(rejection.into_response()))
        }
    }
}

/// The answer to a guard's refusal: its status; on a WebSocket route with
/// [`Refusal::Close`], the upgrade is accepted and closed at once with its code.
pub(crate) async fn refuse(
    head: RequestHead,
    refusal: Refusal,
    websocket_route: bool,
) -> Response<Body> {
    match refusal {
        Refusal::Close { code, reason } if websocket_route => {
            websocket(head, move |pending, _| async move {
                let mut socket = pending.accept().await?;
                socket.close(code, reason).await?;
                while let Some(Ok(_)) = socket.recv().await {}
                Ok(())
            })
            .await
        }
        other => other.into_response(),
    }
}
