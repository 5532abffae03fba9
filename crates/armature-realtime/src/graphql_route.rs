//! [`App::graphql`] (feature `graphql`): a GraphQL endpoint of
//! [`armature_realtime_graphql`] mounted on a path of the app, for WebSocket
//! (`graphql-transport-ws` and the legacy `graphql-ws`), SSE and plain HTTP at once.
//!
//! ```no_run
//! use armature_realtime::App;
//! use armature_realtime::graphql::GraphQL;
//! use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
//!
//! struct Query;
//! #[Object]
//! impl Query {
//!     async fn hello(&self) -> &str { "world" }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), armature_realtime::Error> {
//! App::new()
//!     .graphql("/graphql", GraphQL::new(Schema::new(Query, EmptyMutation, EmptySubscription)))
//!     .serve("127.0.0.1:3000")
//!     .await
//! # }
//! ```
//!
//! With guards ([`GraphQLRoute::guard`]): they run on every request of the path, after the
//! `Origin` check of a WebSocket upgrade and before the upgrade, the SSE stream or the
//! HTTP answer; what they admit the request as reaches the resolvers
//! ([`GraphQLRoute::context`]):
//!
//! ```no_run
//! use armature_realtime::prelude::*;
//! use armature_realtime::graphql::GraphQL;
//! use armature_realtime::graphql_route::GraphQLRoute;
//! use armature_realtime::jwt::JwtAuth;
//! use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Schema};
//!
//! #[derive(Clone, serde::Deserialize)]
//! struct Claims { sub: String }
//!
//! struct Query;
//! #[Object]
//! impl Query {
//!     async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
//!         Ok(ctx.data::<Auth<Claims>>()?.sub.clone())
//!     }
//! }
//!
//! # #[tokio::main] async fn main() -> Result<(), Error> {
//! let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
//! App::new()
//!     .provide(JwtAuth::<Claims>::hs256(b"a long random secret"))
//!     .graphql(
//!         "/graphql",
//!         GraphQLRoute::new(GraphQL::new(schema))
//!             .guard::<JwtAuth<Claims>>()
//!             .context::<Auth<Claims>>(),
//!     )
//!     .serve("127.0.0.1:3000")
//!     .await
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;

use armature_realtime_graphql::{GraphQL, PROTOCOLS};
use async_graphql::Executor;
use http::{HeaderMap, Method, Request, Response, header};
use http_body_util::{BodyExt, Empty};

use crate::body::Body;
use crate::guard::{Guard, Refusal, UserId, run_guard};
use crate::module::{Route, RouteKind};
use crate::rate_limit::Permits;
use crate::request::{BoxError, RequestBody, RequestHead};
use crate::ws_route::{origin_refusal, websocket};
use crate::{App, Error};

/// A type-erased guard: [`run_guard`] for one guard type.
type GuardFn = for<'a> fn(
    &'a mut RequestHead,
) -> Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'a>>;

fn guard_fn<G: Guard>(
    head: &mut RequestHead,
) -> Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + '_>> {
    Box::pin(run_guard::<G>(head))
}

/// A GraphQL endpoint with the guards of its path, for [`App::graphql`]. A bare
/// [`GraphQL`] converts into one without guards.
///
/// A guard's refusal is its status (`401`, `403`, `429`) before any upgrade; a
/// [`Refusal::Close`] on a WebSocket upgrade accepts (agreeing on the client's GraphQL
/// subprotocol, so the `graphql-ws` client sees the code) and closes with its code, as
/// `graphql-transport-ws` clients expect of `4401`/`4403`.
pub struct GraphQLRoute<E> {
    endpoint: GraphQL<E>,
    guards: Vec<GuardFn>,
}

impl<E: Clone> Clone for GraphQLRoute<E> {
    fn clone(&self) -> Self {
        GraphQLRoute {
            endpoint: self.endpoint.clone(),
            guards: self.guards.clone(),
        }
    }
}

impl<E> std::fmt::Debug for GraphQLRoute<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphQLRoute")
            .field("endpoint", &self.endpoint)
            .field("guards", &self.guards.len())
            .finish()
    }
}

impl<E: Executor> From<GraphQL<E>> for GraphQLRoute<E> {
    fn from(endpoint: GraphQL<E>) -> Self {
        GraphQLRoute::new(endpoint)
    }
}

impl<E: Executor> GraphQLRoute<E> {
    /// `endpoint` without guards. The [`UserId`] an auth guard leaves is always in the
    /// context of the request's operations (`ctx.data::<UserId>()`).
    pub fn new(endpoint: GraphQL<E>) -> Self {
        GraphQLRoute {
            endpoint: endpoint.request_extension::<UserId>(),
            guards: Vec::new(),
        }
    }

    /// Runs guard `G` (resolved from the app's container like `#[use_guards]`) on every
    /// request of the path, after the guards added before it.
    pub fn guard<G: Guard>(mut self) -> Self {
        self.guards.push(guard_fn::<G>);
        self
    }

    /// Puts the value of type `T` a guard left in the request (`Auth<Claims>`, your own
    /// type) into the context of every operation of that request: a resolver reads it
    /// with `ctx.data::<T>()`.
    pub fn context<T: Clone + Send + Sync + 'static>(mut self) -> Self {
        self.endpoint = self.endpoint.request_extension::<T>();
        self
    }

    /// Answers one request of the path.
    async fn serve(self, mut head: RequestHead) -> Response<Body> {
        let upgrade = is_websocket(head.headers());
        if upgrade {
            if let Some(refused) = origin_refusal(&head) {
                return refused;
            }
        }
        // The app's connection limit (`App::rate_limit`): `429` before the guards, as on
        // decorated routes. A WebSocket holds its permit until it closes (the facade's
        // WebSocket path takes it from the head), an SSE or HTTP answer until its body ends.
        if let Err(refusal) = crate::rate_limit::check(&mut head) {
            return refusal.into_response();
        }
        for guard in &self.guards {
            if let Err(refusal) = guard(&mut head).await {
                return refuse(head, refusal, upgrade).await;
            }
        }
        if upgrade {
            let endpoint = self.endpoint;
            // Through the facade's WebSocket path: the connection counts against the hub,
            // is registered under the guard's `UserId` (`close_user`) and closed at the
            // token's expiry.
            return websocket(head, move |pending, head| async move {
                let socket = pending.protocols(PROTOCOLS).accept().await?;
                endpoint.serve_upgraded(socket, head.into_parts()).await;
                Ok(())
            })
            .await;
        }
        let permits = head.extensions_mut().remove::<Permits>();
        let response = self.endpoint.handle(rebuild(head)).await;
        match permits {
            Some(permits) => crate::body::hold(response, permits),
            None => response,
        }
    }
}

/// A guard's refusal on a GraphQL path: a [`Refusal::Close`] on an upgrade is accepted with
/// the GraphQL subprotocol and closed with its code; anything else is its status.
async fn refuse(head: RequestHead, refusal: Refusal, upgrade: bool) -> Response<Body> {
    match refusal {
        Refusal::Close { code, reason } if upgrade => {
            websocket(head, move |pending, _| async move {
                let mut socket = pending.protocols(PROTOCOLS).accept().await?;
                socket.close(code, reason).await?;
                while let Some(Ok(_)) = socket.recv().await {}
                Ok(())
            })
            .await
        }
        other => other.into_response(),
    }
}

impl App {
    /// Serves `endpoint` (a [`GraphQL`] or a [`GraphQLRoute`] with guards) at `path`:
    /// `GET` (WebSocket upgrades, SSE and queries) and `POST` (SSE and GraphQL over HTTP).
    /// WebSockets count against the app's hub like every other socket and close with 1001
    /// on shutdown.
    pub fn graphql<E: Executor>(self, path: &str, endpoint: impl Into<GraphQLRoute<E>>) -> Self {
        let route: GraphQLRoute<E> = endpoint.into();
        let get = route.clone();
        self.route(Route::new(
            Method::GET,
            path,
            RouteKind::WebSocket,
            move |head| get.clone().serve(head),
        ))
        .route(Route::new(
            Method::POST,
            path,
            RouteKind::Http,
            move |head| route.clone().serve(head),
        ))
    }
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The request again: the head's parts and the body the app kept aside.
fn rebuild(head: RequestHead) -> Request<crate::body::Body> {
    let parts = head.into_parts();
    let body = match parts
        .extensions
        .get::<RequestBody>()
        .and_then(RequestBody::take)
    {
        Some(body) => body
            .map_err(|err: BoxError| Error::Io(std::io::Error::other(err)))
            .boxed_unsync(),
        None => Empty::new()
            .map_err(|never: std::convert::Infallible| match never {})
            .boxed_unsync(),
    };
    Request::from_parts(parts, body)
}
