//! Guards and extractors: what runs before a WebSocket upgrade or an SSE response.
//!
//! A [`Guard`] sees the request head (and through it the client's address,
//! [`RequestHead::peer_addr`]) and either admits the request — possibly leaving a value for
//! the handler in the head's extensions, such as [`Auth<Claims>`](Auth) — or refuses it with
//! a [`Refusal`]: `401` / `403` / `429` with `Retry-After`, never an upgrade; or, because
//! browsers hide the status of a refused handshake, "accept, then close" with a 4xxx code
//! (4401, 4403, 4429, as graphql-ws does).
//!
//! `#[use_guards(A, B)]` on a `#[controller]` impl block (every route) or on a handler
//! method runs them in order, after the `Origin` check and before anything else. A guard
//! type is resolved from the app's container: a registered provider (`App::provide`, for a
//! guard with configuration such as [`JwtAuth`](crate::jwt::JwtAuth)), else created with
//! its [`Injectable`] impl (an `#[injectable]` guard needs no registration).
//!
//! Handler arguments of a [`FromRequestHead`] type are read from the head after the guards:
//! `user: Auth<Claims>`, or your own type marked `#[extract]`.
//!
//! ```
//! use armature_realtime::prelude::*;
//! use armature_realtime::guard::{Guard, Refusal};
//!
//! /// Admits requests that carry `X-Api-Key: let-me-in`, as the user `"api"`.
//! #[injectable]
//! #[derive(Clone, Default)]
//! struct ApiKey;
//!
//! impl Guard for ApiKey {
//!     async fn check(&self, head: &mut RequestHead) -> Result<(), Refusal> {
//!         if head.header("x-api-key") != Some("let-me-in") {
//!             return Err(Refusal::unauthorized("missing or bad api key"));
//!         }
//!         head.extensions_mut().insert(Auth("api".to_string()));
//!         Ok(())
//!     }
//! }
//!
//! #[controller("/ws")]
//! struct Feed;
//!
//! #[controller]
//! #[use_guards(ApiKey)]
//! impl Feed {
//!     #[websocket("/feed")]
//!     async fn feed(&self, user: Auth<String>, mut socket: WebSocket) -> Result<(), Error> {
//!         socket.send_text(format!("hello {}", user.0)).await
//!     }
//! }
//! # fn main() {}
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Response, StatusCode, header};

use crate::Error;
use crate::body::{Body, text_response};
use crate::di::{Container, Injectable};
use crate::request::RequestHead;

/// Runs before a route's handler; see the [module docs](self).
pub trait Guard: Injectable {
    /// Admits the request (`Ok`, after putting what the handler needs into
    /// `head.extensions_mut()`) or refuses it.
    fn check(&self, head: &mut RequestHead) -> impl Future<Output = Result<(), Refusal>> + Send;
}

/// Why a guard refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Answer with this status (and `Retry-After` when set); no upgrade happens.
    Status {
        /// `401`, `403`, `429`, …
        status: StatusCode,
        /// The response body.
        reason: String,
        /// `Retry-After`, for `429`.
        retry_after: Option<Duration>,
    },
    /// WebSocket routes: accept the upgrade, then close at once with this code (4401, 4403,
    /// 4429) and reason, which a browser's `WebSocket` can see. On an SSE route it is
    /// answered with the status of the same number (4401 → 401).
    Close {
        /// The close code, 4000–4999.
        code: u16,
        /// The close reason (cut to 123 bytes).
        reason: String,
    },
}

impl Refusal {
    /// `401 Unauthorized`.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::status(StatusCode::UNAUTHORIZED, reason)
    }

    /// `403 Forbidden`.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::status(StatusCode::FORBIDDEN, reason)
    }

    /// `429 Too Many Requests` with `Retry-After` (whole seconds, rounded up).
    pub fn too_many_requests(retry_after: Duration) -> Self {
        Refusal::Status {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: "too many requests".into(),
            retry_after: Some(retry_after),
        }
    }

    /// Any status.
    pub fn status(status: StatusCode, reason: impl Into<String>) -> Self {
        Refusal::Status {
            status,
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// Accept, then close with `code` (4000–4999) and `reason`.
    pub fn close(code: u16, reason: impl Into<String>) -> Self {
        Refusal::Close {
            code,
            reason: reason.into(),
        }
    }

    /// The same refusal as a close with `4000 + status` (401 → 4401), for browser clients.
    pub fn as_close(self) -> Self {
        match self {
            Refusal::Status { status, reason, .. } => {
                Refusal::close(4000 + status.as_u16(), reason)
            }
            close => close,
        }
    }

    /// The HTTP response for this refusal (a `Close` becomes the status `code - 4000`).
    pub fn into_response(self) -> Response<Body> {
        match self {
            Refusal::Status {
                status,
                reason,
                retry_after,
            } => {
                let mut res = text_response(status, reason);
                if let Some(after) = retry_after {
                    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                    if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
                        res.headers_mut().insert(header::RETRY_AFTER, value);
                    }
                }
                res
            }
            Refusal::Close { code, reason } => {
                let status = code
                    .checked_sub(4000)
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .filter(|s| s.is_client_error())
                    .unwrap_or(StatusCode::FORBIDDEN);
                text_response(status, reason)
            }
        }
    }
}

/// What a guard admitted the request as: the handler takes `user: Auth<Claims>`.
///
/// A guard puts it in the head's extensions (`head.extensions_mut().insert(Auth(claims))`);
/// the handler's argument clones it out. A handler asking for an `Auth<T>` no guard of its
/// route produced is answered `500` (a wiring mistake, logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth<T>(pub T);

impl<T> std::ops::Deref for Auth<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The user id of an authenticated request (JWT `sub`), put there by the auth guard; the
/// connection it upgrades to is registered under it, so that
/// [`AppService::close_user`](crate::AppService::close_user) reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(pub String);

/// When the credentials of the request stop being valid (JWT `exp`): the WebSocket it
/// upgrades to is closed with 1008 at that instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiresAt(pub std::time::SystemTime);

/// A handler argument read from the request head (after the guards ran). Implement it for
/// your own types and mark the argument `#[extract]`; [`Auth<T>`] needs no mark.
pub trait FromRequestHead: Sized {
    /// Reads the value.
    ///
    /// # Errors
    /// An [`Error`] whose status refuses the request ([`Error::Http`] for a chosen one).
    fn from_request_head(head: &RequestHead) -> Result<Self, Error>;
}

impl<T: Clone + Send + Sync + 'static> FromRequestHead for Auth<T> {
    fn from_request_head(head: &RequestHead) -> Result<Self, Error> {
        head.extensions().get::<Auth<T>>().cloned().ok_or_else(|| {
            tracing::error!(
                r#type = std::any::type_name::<T>(),
                "a handler takes Auth<T> but no guard of its route produced one"
            );
            Error::Internal(format!(
                "no guard produced `Auth<{}>`",
                std::any::type_name::<T>()
            ))
        })
    }
}

impl FromRequestHead for UserId {
    fn from_request_head(head: &RequestHead) -> Result<Self, Error> {
        head.extensions()
            .get::<UserId>()
            .cloned()
            .ok_or_else(|| Error::Http {
                status: 401,
                reason: "not authenticated".into(),
            })
    }
}

/// Resolves guard `G` from the app's container (registered, else created) and runs it.
///
/// # Errors
/// The guard's refusal; a guard that cannot be built refuses with `500` (logged).
pub async fn run_guard<G: Guard>(head: &mut RequestHead) -> Result<(), Refusal> {
    let guard = match head.extensions().get::<Arc<Container>>() {
        Some(container) => container.resolve_or_create::<G>(),
        None => G::create(&Container::default()),
    };
    let guard = guard.map_err(|err| {
        tracing::error!(guard = std::any::type_name::<G>(), error = %err, "guard cannot be built");
        Refusal::status(StatusCode::INTERNAL_SERVER_ERROR, "guard cannot be built")
    })?;
    let result = guard.check(head).await;
    if let Err(refusal) = &result {
        tracing::info!(
            guard = std::any::type_name::<G>(),
            path = head.uri().path(),
            peer = ?head.peer_addr(),
            refusal = ?refusal,
            "request refused by a guard"
        );
    }
    result
}
