//! The on-connect hook: what it sees of a connection ([`ConnectionInit`]) and what it
//! answers ([`Accepted`] or [`Rejected`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_graphql::Data;
use http::HeaderMap;
use http::request::Parts;
use serde_json::{Map, Value};

/// What the on-connect hook is given: the `connection_init` payload (the client's
/// `connectionParams`), the headers of the upgrade request and the agreed subprotocol.
#[derive(Debug)]
pub struct ConnectionInit {
    pub(crate) payload: Option<Map<String, Value>>,
    pub(crate) request: Arc<Parts>,
    pub(crate) protocol: &'static str,
}

impl ConnectionInit {
    /// The `connection_init` payload, when the client sent an object.
    pub fn payload(&self) -> Option<&Map<String, Value>> {
        self.payload.as_ref()
    }

    /// Takes the payload.
    pub fn take_payload(&mut self) -> Option<Map<String, Value>> {
        self.payload.take()
    }

    /// The headers of the HTTP upgrade request (cookies, `Authorization`, `Origin`).
    pub fn headers(&self) -> &HeaderMap {
        &self.request.headers
    }

    /// The extensions of the HTTP upgrade request: what a guard or a middleware admitted
    /// it as (empty for a socket given to [`GraphQL::serve_socket`](crate::GraphQL::serve_socket)).
    pub fn extensions(&self) -> &http::Extensions {
        &self.request.extensions
    }

    /// `graphql-transport-ws` or `graphql-ws`.
    pub fn protocol(&self) -> &'static str {
        self.protocol
    }
}

/// The hook accepted the connection: `connection_ack` goes out and every operation of the
/// connection sees [`Accepted::data`] in its context (`ctx.data::<T>()`).
#[derive(Default)]
pub struct Accepted {
    pub(crate) data: Data,
    pub(crate) ack_payload: Option<Map<String, Value>>,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("ack_payload", &self.ack_payload)
            .finish_non_exhaustive()
    }
}

impl Accepted {
    /// Accepts with no connection data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value the connection's resolvers read with `ctx.data::<D>()`.
    pub fn data<D: std::any::Any + Send + Sync>(mut self, data: D) -> Self {
        self.data.insert(data);
        self
    }

    /// The payload of the `connection_ack` message.
    pub fn ack_payload(mut self, payload: Map<String, Value>) -> Self {
        self.ack_payload = Some(payload);
        self
    }
}

/// The hook refused the connection: `graphql-transport-ws` closes with `4403 Forbidden`,
/// the legacy protocol sends `connection_error` with the message and closes.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub(crate) message: String,
}

impl Rejected {
    /// A refusal with a message (shown to legacy clients only).
    pub fn new(message: impl Into<String>) -> Self {
        Rejected {
            message: message.into(),
        }
    }
}

/// The future an on-connect hook returns.
pub type ConnectFuture = Pin<Box<dyn Future<Output = Result<Accepted, Rejected>> + Send>>;

/// A stored on-connect hook.
pub(crate) type OnConnect = Arc<dyn Fn(ConnectionInit) -> ConnectFuture + Send + Sync>;
