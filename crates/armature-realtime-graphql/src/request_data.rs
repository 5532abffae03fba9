//! Per-request context data: values taken from the HTTP request that opened an operation
//! (the WebSocket upgrade, the SSE or HTTP request) and put into the async-graphql context
//! of every operation it runs, so resolvers read what a guard or a middleware admitted the
//! request as with `ctx.data::<T>()`.

use std::sync::Arc;

use async_graphql::Data;
use http::request::Parts;

/// A stored request-data hook.
pub(crate) type Hook = Arc<dyn Fn(&Parts, &mut Data) + Send + Sync>;

/// The hooks of an endpoint and the request they read.
#[derive(Clone)]
pub(crate) struct RequestData {
    pub(crate) parts: Arc<Parts>,
    pub(crate) hooks: Arc<[Hook]>,
}

impl RequestData {
    /// Request parts with only `headers` (for a socket accepted elsewhere).
    pub(crate) fn from_headers(headers: http::HeaderMap, hooks: Arc<[Hook]>) -> Self {
        let mut parts = http::Request::new(()).into_parts().0;
        parts.headers = headers;
        RequestData {
            parts: Arc::new(parts),
            hooks,
        }
    }

    /// Runs every hook into `data` (an operation's own context data).
    pub(crate) fn apply(&self, data: &mut Data) {
        for hook in self.hooks.iter() {
            hook(&self.parts, data);
        }
    }
}

/// The hook copying the request extension `T`, when present, into the context.
pub(crate) fn extension<T: Clone + Send + Sync + 'static>() -> Hook {
    Arc::new(|parts: &Parts, data: &mut Data| {
        if let Some(value) = parts.extensions.get::<T>() {
            data.insert(value.clone());
        }
    })
}
