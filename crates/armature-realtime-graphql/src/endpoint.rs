//! [`GraphQL`]: one endpoint serving a schema over WebSocket (both subprotocols), SSE and
//! plain HTTP on the same path.

use std::future::Future;
use std::sync::Arc;

use armature_ws::{WebSocket, WebSocketUpgrade};
use async_graphql::Executor;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, header};
use http_body_util::{BodyExt, Full};

use crate::Body;
use crate::config::GraphQLConfig;
use crate::connect::{Accepted, ConnectionInit, OnConnect, Rejected};
use crate::http::{BoxError, accepts, error_response, json_response, read_request};
use crate::protocol::{GRAPHQL_TRANSPORT_WS, GRAPHQL_WS};
use crate::request_data::{self, Hook, RequestData};
use crate::session::{self, SessionParts};
use crate::shared::SharedSubscriptions;

/// The subprotocols a GraphQL WebSocket endpoint speaks, in the server's order of
/// preference (the client's order decides when it offers both).
pub const PROTOCOLS: [&str; 2] = [GRAPHQL_TRANSPORT_WS, GRAPHQL_WS];

/// A GraphQL endpoint: an async-graphql [`Executor`] (a `Schema`) served over
///
/// - WebSocket, `graphql-transport-ws` or the legacy `graphql-ws` as the client's
///   `Sec-WebSocket-Protocol` asks (neither: closed with 4406);
/// - Server-Sent Events (graphql-sse, distinct connections) for a request accepting
///   `text/event-stream`;
/// - plain GraphQL over HTTP (`GET`/`POST`, JSON) otherwise.
///
/// Cheap to clone. Mount it with [`GraphQL::handle`] in any hyper server, as a tower
/// `Service` (feature `tower`), in an armature `App` (facade feature `graphql`), or hand it
/// accepted sockets with [`GraphQL::serve_socket`].
///
/// ```no_run
/// use armature_realtime_graphql::{Accepted, GraphQL, Rejected};
/// use async_graphql::{EmptyMutation, Object, Schema, Subscription};
/// use futures_util::Stream;
///
/// struct Query;
/// #[Object]
/// impl Query {
///     async fn hello(&self) -> &str { "world" }
/// }
/// struct Sub;
/// #[Subscription]
/// impl Sub {
///     async fn count(&self) -> impl Stream<Item = i32> { futures_util::stream::iter(0..3) }
/// }
///
/// let schema = Schema::new(Query, EmptyMutation, Sub);
/// let graphql = GraphQL::new(schema).on_connect(|init| async move {
///     match init.payload().and_then(|p| p.get("token")) {
///         Some(token) if token == "secret" => Ok(Accepted::new()),
///         _ => Err(Rejected::new("bad token")),
///     }
/// });
/// # let _ = graphql;
/// ```
pub struct GraphQL<E> {
    executor: E,
    config: Arc<GraphQLConfig>,
    on_connect: Option<OnConnect>,
    request_data: Arc<[Hook]>,
    shared: Arc<SharedSubscriptions>,
}

impl<E: Clone> Clone for GraphQL<E> {
    fn clone(&self) -> Self {
        GraphQL {
            executor: self.executor.clone(),
            config: Arc::clone(&self.config),
            on_connect: self.on_connect.clone(),
            request_data: Arc::clone(&self.request_data),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<E> std::fmt::Debug for GraphQL<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphQL")
            .field("config", &self.config)
            .field("on_connect", &self.on_connect.is_some())
            .field("request_data", &self.request_data.len())
            .finish_non_exhaustive()
    }
}

impl<E: Executor> GraphQL<E> {
    /// An endpoint for `executor` with the default [`GraphQLConfig`] and no on-connect
    /// hook (every `connection_init` is acknowledged).
    pub fn new(executor: E) -> Self {
        GraphQL {
            executor,
            config: Arc::new(GraphQLConfig::default()),
            on_connect: None,
            request_data: Arc::new([]),
            shared: Arc::default(),
        }
    }

    /// Uses `config`.
    pub fn config(mut self, config: GraphQLConfig) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// The hook that sees each WebSocket's `connection_init` and accepts (with connection
    /// data for the resolvers) or refuses it (4403). While it runs the connection keeps
    /// answering pings; operations sent meanwhile are refused as the protocol says.
    pub fn on_connect<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(ConnectionInit) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Accepted, Rejected>> + Send + 'static,
    {
        self.on_connect = Some(Arc::new(move |init| Box::pin(hook(init))));
        self
    }

    /// A hook that reads the HTTP request of an operation (the WebSocket upgrade, the SSE
    /// or the HTTP request: its headers and extensions) and adds values to the context of
    /// every operation that request runs. Hooks run in the order added; a value the
    /// on-connect hook gave ([`Accepted::data`]) is seen only where no hook added one of
    /// the same type (an operation's own data comes first in async-graphql's lookup).
    ///
    /// ```
    /// use armature_realtime_graphql::GraphQL;
    /// use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
    ///
    /// struct Caller(String);
    /// struct Query;
    /// #[Object]
    /// impl Query {
    ///     async fn agent(&self, ctx: &async_graphql::Context<'_>) -> Option<String> {
    ///         ctx.data_opt::<Caller>().map(|c| c.0.clone())
    ///     }
    /// }
    /// let graphql = GraphQL::new(Schema::new(Query, EmptyMutation, EmptySubscription))
    ///     .request_data(|request, data| {
    ///         if let Some(agent) = request.headers.get("user-agent").and_then(|v| v.to_str().ok()) {
    ///             data.insert(Caller(agent.to_owned()));
    ///         }
    ///     });
    /// # let _ = graphql;
    /// ```
    pub fn request_data<F>(mut self, hook: F) -> Self
    where
        F: Fn(&http::request::Parts, &mut async_graphql::Data) + Send + Sync + 'static,
    {
        self.push_hook(Arc::new(hook));
        self
    }

    /// Copies the request extension `T`, when the request carries one, into the context of
    /// every operation of that request: what a guard or a tower middleware put there (the
    /// facade's `Auth<Claims>` or `UserId`, an axum auth layer's user) is read in a
    /// resolver with `ctx.data::<T>()`.
    pub fn request_extension<T: Clone + Send + Sync + 'static>(mut self) -> Self {
        self.push_hook(request_data::extension::<T>());
        self
    }

    fn push_hook(&mut self, hook: Hook) {
        let mut hooks = self.request_data.to_vec();
        hooks.push(hook);
        self.request_data = hooks.into();
    }

    /// The executor (schema).
    pub fn executor(&self) -> &E {
        &self.executor
    }

    /// The configuration.
    pub fn get_config(&self) -> &GraphQLConfig {
        &self.config
    }

    /// Serves GraphQL on an accepted socket until it closes. The socket should have been
    /// accepted with [`PROTOCOLS`]; one whose agreed subprotocol is neither is closed with
    /// 4406. `headers` (of the upgrade request) are shown to the on-connect hook.
    pub fn serve_socket(
        &self,
        socket: WebSocket,
        headers: HeaderMap,
    ) -> impl Future<Output = ()> + Send + 'static + use<E> {
        let request = RequestData::from_headers(headers, Arc::clone(&self.request_data));
        self.serve(socket, request)
    }

    /// [`GraphQL::serve_socket`] for a socket accepted from the request `parts` (without
    /// its body): the request-data hooks ([`GraphQL::request_data`]) see its extensions
    /// too, as in [`GraphQL::handle`].
    pub fn serve_upgraded(
        &self,
        socket: WebSocket,
        parts: http::request::Parts,
    ) -> impl Future<Output = ()> + Send + 'static + use<E> {
        let request = RequestData {
            parts: Arc::new(parts),
            hooks: Arc::clone(&self.request_data),
        };
        self.serve(socket, request)
    }

    fn serve(
        &self,
        socket: WebSocket,
        request: RequestData,
    ) -> impl Future<Output = ()> + Send + 'static + use<E> {
        session::run(
            socket,
            SessionParts {
                executor: self.executor.clone(),
                config: Arc::clone(&self.config),
                on_connect: self.on_connect.clone(),
                request,
                shared: Arc::clone(&self.shared),
            },
        )
    }

    /// Accepts a WebSocket upgrade with [`PROTOCOLS`] and serves GraphQL on it.
    pub fn upgrade<B>(&self, upgrade: WebSocketUpgrade, headers: HeaderMap) -> Response<B>
    where
        B: Default + From<String>,
    {
        let this = self.clone();
        upgrade
            .protocols(PROTOCOLS)
            .on_upgrade(move |socket| this.serve_socket(socket, headers))
    }

    fn upgrade_request<B>(
        &self,
        upgrade: WebSocketUpgrade,
        parts: http::request::Parts,
    ) -> Response<B>
    where
        B: Default + From<String>,
    {
        let this = self.clone();
        upgrade
            .protocols(PROTOCOLS)
            .on_upgrade(move |socket| this.serve_upgraded(socket, parts))
    }

    /// Answers one HTTP request: a WebSocket upgrade, an SSE operation, or a GraphQL over
    /// HTTP query. The request's extensions must carry hyper's upgrade handle for a
    /// WebSocket (any hyper-based server puts it there).
    pub async fn handle<B>(&self, mut req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if is_websocket(req.headers()) {
            return match WebSocketUpgrade::from_request(&mut req) {
                Ok(upgrade) => self
                    .upgrade_request::<Full<Bytes>>(upgrade, req.into_parts().0)
                    .map(|body| body.map_err(|never| match never {}).boxed_unsync()),
                Err(rejection) => rejection
                    .into_response::<Full<Bytes>>()
                    .map(|body| body.map_err(|never| match never {}).boxed_unsync()),
            };
        }
        let (parts, body) = req.into_parts();
        let request = read_request(
            &parts.method,
            &parts.uri,
            &parts.headers,
            body,
            self.config.max_body_bytes,
        )
        .await
        .map(|mut request| {
            for hook in self.request_data.iter() {
                hook(&parts, &mut request.data);
            }
            request
        });
        if accepts(&parts.headers, "text/event-stream") {
            let request = match request {
                Ok(request) => crate::operation::request_checked(request),
                Err(err) => return error_response(&err),
            };
            return armature_sse::sse_response(crate::sse::body(&self.executor, request, None));
        }
        match request {
            Ok(request) => {
                let response = self.executor.execute(request).await;
                json_response(&response, &parts.headers)
            }
            Err(err) => error_response(&err),
        }
    }
}

fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}
