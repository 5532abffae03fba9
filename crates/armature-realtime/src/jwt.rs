//! [`JwtAuth`]: the built-in authentication guard — bearer tokens verified as JWTs with
//! `jsonwebtoken` (HS256, RS256, ES256; `exp`, `nbf`, `aud`, `iss`, leeway).
//!
//! Where the token is read, in the order configured (default: `Authorization: Bearer`):
//!
//! - [`from_header`](JwtAuth::from_header): `Authorization: Bearer <token>`;
//! - [`from_cookie`](JwtAuth::from_cookie): a cookie (a browser sends it with the upgrade;
//!   keep the `Origin` check on);
//! - [`from_query`](JwtAuth::from_query): a query parameter — **it leaks**: URLs land in
//!   access logs, proxies and browser history; prefer the subprotocol;
//! - [`from_subprotocol`](JwtAuth::from_subprotocol): `Sec-WebSocket-Protocol`, the one way
//!   a browser `WebSocket` can carry a token: `new WebSocket(url, ["bearer", token])`. The
//!   server agrees on `bearer` (never echoes the token) unless the handler agrees on another
//!   protocol of the client's list, and the handler's `requested_protocols` does not show the
//!   token.
//!
//! On success the handler can take `user: Auth<C>` (the claims), the connection is
//! registered under the `sub` claim ([`UserId`]) so that
//! [`AppService::close_user`](crate::AppService::close_user) reaches it, and a WebSocket is
//! closed with 1008 when `exp` passes. A missing, malformed, badly signed, expired or
//! not-yet-valid token is refused with `401` (or, with
//! [`close_on_failure`](JwtAuth::close_on_failure), accepted and closed with 4401).
//!
//! Provide it to the app with its key, and name it in `#[use_guards(JwtAuth<Claims>)]`:
//!
//! ```
//! use armature_realtime::prelude::*;
//! use armature_realtime::jwt::JwtAuth;
//!
//! #[derive(Clone, serde::Deserialize)]
//! struct Claims { sub: String }
//!
//! #[controller("/ws")]
//! struct Chat;
//!
//! #[controller]
//! impl Chat {
//!     #[websocket("/chat")]
//!     #[use_guards(JwtAuth<Claims>)]
//!     async fn chat(&self, user: Auth<Claims>, mut socket: WebSocket) -> Result<(), Error> {
//!         socket.send_text(format!("hello {}", user.sub)).await
//!     }
//! }
//!
//! #[module(controllers: [Chat])]
//! struct AppModule;
//!
//! let app = App::new()
//!     .provide(JwtAuth::<Claims>::hs256(b"a long random secret").from_subprotocol("bearer"))
//!     .module::<AppModule>();
//! # let _ = app;
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;

use crate::Error;
use crate::di::{Container, Injectable};
use crate::guard::{Auth, ExpiresAt, Guard, Refusal, UserId};
use crate::request::RequestHead;
use crate::ws_route::SubprotocolToken;

/// Where [`JwtAuth`] looks for the token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// `Authorization: Bearer <token>`.
    Header,
    /// The cookie of this name.
    Cookie(String),
    /// The query parameter of this name (leaks into logs).
    Query(String),
    /// `Sec-WebSocket-Protocol`: this marker, then the token.
    Subprotocol(String),
}

struct Inner {
    key: DecodingKey,
    validation: Validation,
    sources: Vec<TokenSource>,
    close_on_failure: bool,
}

/// The JWT authentication guard; see the [module docs](self). `C` is the claims type the
/// handler receives as `Auth<C>`.
pub struct JwtAuth<C> {
    inner: Arc<Inner>,
    claims: PhantomData<fn() -> C>,
}

impl<C> Clone for JwtAuth<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            claims: PhantomData,
        }
    }
}

impl<C> fmt::Debug for JwtAuth<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("algorithms", &self.inner.validation.algorithms)
            .field("sources", &self.inner.sources)
            .finish_non_exhaustive()
    }
}

impl<C> JwtAuth<C> {
    fn with(key: DecodingKey, alg: Algorithm) -> Self {
        let mut validation = Validation::new(alg);
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.leeway = 0;
        Self {
            inner: Arc::new(Inner {
                key,
                validation,
                sources: Vec::new(),
                close_on_failure: false,
            }),
            claims: PhantomData,
        }
    }

    /// Tokens signed with HMAC-SHA256 and `secret`.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// Tokens signed with RSA (RS256); `pem` is the public key.
    ///
    /// # Errors
    /// [`Error::Validation`] when `pem` is not an RSA public key.
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, Error> {
        let key = DecodingKey::from_rsa_pem(pem)
            .map_err(|e| Error::Validation(format!("RS256 public key: {e}")))?;
        Ok(Self::with(key, Algorithm::RS256))
    }

    /// Tokens signed with ECDSA P-256 (ES256); `pem` is the public key.
    ///
    /// # Errors
    /// [`Error::Validation`] when `pem` is not an EC public key.
    pub fn es256_pem(pem: &[u8]) -> Result<Self, Error> {
        let key = DecodingKey::from_ec_pem(pem)
            .map_err(|e| Error::Validation(format!("ES256 public key: {e}")))?;
        Ok(Self::with(key, Algorithm::ES256))
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            f(inner);
        }
        self
    }

    /// Requires `aud` to contain one of `audiences`.
    pub fn audience(self, audiences: &[&str]) -> Self {
        self.edit(|i| {
            i.validation.set_audience(audiences);
            i.validation.validate_aud = true;
        })
    }

    /// Requires `iss` to be one of `issuers`.
    pub fn issuer(self, issuers: &[&str]) -> Self {
        self.edit(|i| i.validation.set_issuer(issuers))
    }

    /// Accepts `exp` and `nbf` this far off (clock skew). Default: none.
    pub fn leeway(self, leeway: Duration) -> Self {
        self.edit(|i| i.validation.leeway = leeway.as_secs())
    }

    /// Reads `Authorization: Bearer <token>` (the default when no source is set).
    pub fn from_header(self) -> Self {
        self.edit(|i| i.sources.push(TokenSource::Header))
    }

    /// Reads the cookie `name`.
    pub fn from_cookie(self, name: &str) -> Self {
        self.edit(|i| i.sources.push(TokenSource::Cookie(name.to_owned())))
    }

    /// Reads the query parameter `name` (it leaks into logs: see the module docs).
    pub fn from_query(self, name: &str) -> Self {
        self.edit(|i| i.sources.push(TokenSource::Query(name.to_owned())))
    }

    /// Reads the protocol after `marker` in `Sec-WebSocket-Protocol`.
    pub fn from_subprotocol(self, marker: &str) -> Self {
        self.edit(|i| i.sources.push(TokenSource::Subprotocol(marker.to_owned())))
    }

    /// On a WebSocket route, refuse by accepting and closing with 4401 (a browser sees the
    /// code; it never sees a `401`). Default: `401` before the upgrade.
    pub fn close_on_failure(self, close: bool) -> Self {
        self.edit(|i| i.close_on_failure = close)
    }

    fn token<'h>(&self, head: &'h RequestHead) -> Option<(&'h str, Option<String>)> {
        let default = [TokenSource::Header];
        let sources = if self.inner.sources.is_empty() {
            &default[..]
        } else {
            &self.inner.sources[..]
        };
        sources.iter().find_map(|source| match source {
            TokenSource::Header => head
                .header("authorization")
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(|t| (t.trim(), None)),
            TokenSource::Cookie(name) => head
                .headers()
                .get_all(http::header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .find_map(|pair| {
                    let (k, v) = pair.trim().split_once('=')?;
                    (k == name).then_some((v, None))
                }),
            TokenSource::Query(name) => head.query(name).map(|t| (t, None)),
            TokenSource::Subprotocol(marker) => {
                let offered = head.header("sec-websocket-protocol")?;
                let mut parts = offered.split(',').map(str::trim);
                parts.find(|p| *p == marker.as_str())?;
                parts.next().map(|t| (t, Some(marker.clone())))
            }
        })
    }

    fn refuse(&self, reason: &str) -> Refusal {
        let refusal = Refusal::unauthorized(reason);
        if self.inner.close_on_failure {
            refusal.as_close()
        } else {
            refusal
        }
    }
}

impl<C: DeserializeOwned + Clone + Send + Sync + 'static> Injectable for JwtAuth<C> {
    fn create(_: &Container) -> Result<Self, Error> {
        Err(Error::Internal(format!(
            "`{}` needs its key: App::new().provide(JwtAuth::hs256(..))",
            std::any::type_name::<Self>()
        )))
    }
}

impl<C: DeserializeOwned + Clone + Send + Sync + 'static> Guard for JwtAuth<C> {
    async fn check(&self, head: &mut RequestHead) -> Result<(), Refusal> {
        let Some((token, marker)) = self.token(head) else {
            return Err(self.refuse("missing token"));
        };
        let token = token.to_owned();
        if let Some(marker) = &marker {
            // Answered even when the token is refused, so that "accept, then close 4401"
            // completes the handshake the browser asked for.
            head.extensions_mut().insert(SubprotocolToken {
                marker: marker.clone(),
            });
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &self.inner.key,
            &self.inner.validation,
        )
        .map_err(|e| {
            self.refuse(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::ImmatureSignature => "token not valid yet",
                ErrorKind::InvalidAudience => "token for another audience",
                ErrorKind::InvalidIssuer => "token from another issuer",
                ErrorKind::InvalidSignature => "bad token signature",
                _ => "invalid token",
            })
        })?;
        let claims = data.claims;
        let sub = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .map(str::to_owned);
        let exp = claims.get("exp").and_then(serde_json::Value::as_u64);
        let typed: C = serde_json::from_value(claims)
            .map_err(|_| self.refuse("token claims do not have the expected shape"))?;
        let extensions = head.extensions_mut();
        extensions.insert(Auth(typed));
        if let Some(sub) = sub {
            extensions.insert(UserId(sub));
        }
        if let Some(exp) = exp {
            let leeway = self.inner.validation.leeway;
            let at = SystemTime::UNIX_EPOCH + Duration::from_secs(exp.saturating_add(leeway));
            extensions.insert(ExpiresAt(at));
        }
        Ok(())
    }
}
