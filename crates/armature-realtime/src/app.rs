//! [`App`]: mounts modules, controllers, plain routes and static files into one route table,
//! and [`AppService`], the request → response function built from it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};

use crate::Error;
use crate::body::{Body, bytes_response_static, text_response};
use crate::di::{Container, Injectable};
use crate::module::{Module, ModuleBuilder, Route, RouteKind};
use crate::rate_limit::{
    AppLimiter, ConnectionLimit, ConnectionLimiter, RateLimitStats, RouteLimiter,
};
use crate::request::RequestHead;
use crate::router::{Match, Router, join_paths};
use crate::server::Server;
use crate::sessions::Sessions;
use crate::shutdown::{self, ShutdownSignal, ShutdownTrigger};
use crate::static_files::StaticDir;
use crate::ws::{Hub, OriginPolicy, WebSocketConfig};

/// An application: modules with their providers and controllers, extra routes and static
/// files. Build it with chained calls, then [`bind`](App::bind) or [`serve`](App::serve).
///
/// ```no_run
/// use armature_realtime::App;
///
/// # #[tokio::main] async fn main() -> Result<(), armature_realtime::Error> {
/// App::new()
///     .page("/", "<h1>hello</h1>")
///     .serve("127.0.0.1:3000")
///     .await
/// # }
/// ```
#[derive(Debug, Default)]
pub struct App {
    builder: ModuleBuilder,
    routes: Vec<Route>,
    shutdown_timeout: Option<Duration>,
    websocket_config: Option<WebSocketConfig>,
    allow_origin: Option<HeaderValue>,
    rate_limit: Option<ConnectionLimit>,
}

/// How long [`Server`] waits for open connections after a shutdown signal, by default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

impl App {
    /// An empty application.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers module `M` (its providers, controllers and imports).
    pub fn module<M: Module>(mut self) -> Self {
        self.builder.import::<M>();
        self
    }

    /// Registers a ready-made provider instance, replacing the one `#[injectable]` would
    /// create (useful in tests).
    pub fn provide<T: Injectable>(mut self, value: T) -> Self {
        self.builder.provide(value);
        self
    }

    /// Adds a route.
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Adds a `GET` route served by `handler`.
    pub fn get<F, Fut>(self, path: &str, handler: F) -> Self
    where
        F: Fn(RequestHead) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        self.route(Route::new(Method::GET, path, RouteKind::Http, handler))
    }

    /// Serves a fixed HTML page at `path`.
    pub fn page(self, path: &str, html: &'static str) -> Self {
        self.get(path, move |_| async move {
            bytes_response_static(html.as_bytes(), "text/html; charset=utf-8")
        })
    }

    /// Serves the files under `dir` at `mount` (`"/"` or `"/static"`) through `tower-http`'s
    /// `ServeDir` (see [`StaticDir`](crate::static_files::StaticDir)); a directory serves
    /// its `index.html`. Routes of controllers take precedence over files.
    pub fn static_dir(self, mount: &str, dir: impl Into<PathBuf>) -> Self {
        let files = Arc::new(StaticDir::new(mount, dir));
        let pattern = join_paths(mount, "/*file");
        self.get(&pattern, move |head| {
            let files = Arc::clone(&files);
            async move { files.serve(&head).await }
        })
    }

    /// How long the server waits for open connections to finish after a shutdown signal
    /// before it drops them (default [`DEFAULT_SHUTDOWN_TIMEOUT`]). Overrides the
    /// `shutdown_timeout` of [`App::websocket_config`].
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// The WebSocket settings (limits, heartbeat, back-pressure) for this app's
    /// connections, and the HTTP limits of its server (`header_read_timeout`,
    /// `max_request_head_bytes`); default [`WebSocketConfig::default`].
    pub fn websocket_config(mut self, config: WebSocketConfig) -> Self {
        self.websocket_config = Some(config);
        self
    }

    /// Which pages may open this app's WebSockets (the `Origin` check against cross-site
    /// WebSocket hijacking, on by default): a refused upgrade gets `403` before any guard or
    /// handler runs. Default: the server's own origin only, requests without `Origin`
    /// (non-browser clients) allowed. Shorthand for setting
    /// [`WebSocketConfig::origin_policy`] on [`App::websocket_config`] (set that first).
    ///
    /// ```
    /// use armature_realtime::App;
    /// use armature_realtime::ws::OriginPolicy;
    ///
    /// let app = App::new().origin_policy(OriginPolicy::default().allow("https://app.example.com"));
    /// # let _ = app;
    /// ```
    pub fn origin_policy(mut self, policy: OriginPolicy) -> Self {
        let config = self.websocket_config.take().unwrap_or_default();
        self.websocket_config = Some(config.origin_policy(policy));
        self
    }

    /// Adds `Access-Control-Allow-Origin: origin` to every response, so pages from other
    /// origins can read them: an `EventSource` or `fetch` without credentials (a "simple"
    /// cross-origin request, no preflight). `"*"` allows any origin. WebSocket upgrades are
    /// not subject to CORS: their `Origin` is checked by [`App::origin_policy`].
    ///
    /// # Errors
    /// An `origin` that is not a valid header value is reported by [`App::build`].
    pub fn allow_origin(mut self, origin: &str) -> Self {
        self.allow_origin =
            Some(HeaderValue::from_str(origin).unwrap_or_else(|_| HeaderValue::from_static("")));
        self
    }

    /// Limits the connections one client address may open on every decorated WebSocket
    /// and SSE route (new connections per period, connections open at once): `429` with
    /// `Retry-After` before any upgrade, after the `Origin` check and before the guards.
    /// A route's own `#[rate_limit(connections = ..)]` is checked after this one. See
    /// [`rate_limit`](crate::rate_limit).
    pub fn rate_limit(mut self, limit: ConnectionLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Builds the controllers and the route table.
    ///
    /// # Errors
    /// A provider or controller that cannot be built, a malformed path, or two routes with
    /// the same method and path.
    pub fn build(mut self) -> Result<AppService, Error> {
        if self.allow_origin.as_ref().is_some_and(|v| v.is_empty()) {
            return Err(Error::Validation(
                "allow_origin: not a valid header value".into(),
            ));
        }
        if let Some(bad) = self
            .websocket_config
            .as_ref()
            .and_then(|c| c.get_origin_policy().invalid_entries().next())
        {
            return Err(Error::Validation(format!(
                "origin_policy: `{bad}` is not an origin (write `https://host[:port]`, `https://*.example.com`, `null` or `*`)"
            )));
        }
        let mut router = Router::new();
        let mut table = Vec::new();
        for (prefix, routes) in self.builder.build_controllers()? {
            for route in routes {
                let path = join_paths(&prefix, &route.path);
                table.push((path, route));
            }
        }
        for route in self.routes {
            table.push((route.path.clone(), route));
        }
        let mut route_limiters = Vec::new();
        for (path, mut route) in table {
            if let Some(limit) = route.connection_limit {
                let limiter = Arc::new(ConnectionLimiter::new(limit));
                route_limiters.push(Arc::clone(&limiter));
                let inner = Arc::clone(&route.handler);
                route.handler = Arc::new(move |mut head: RequestHead| {
                    head.extensions_mut()
                        .insert(RouteLimiter(Arc::clone(&limiter)));
                    inner(head)
                });
            }
            router.insert(route.method.clone(), &path, route)?;
        }
        let (trigger, signal) = shutdown::channel();
        let mut config = self.websocket_config.unwrap_or_default();
        if let Some(timeout) = self.shutdown_timeout {
            config = config.shutdown_timeout(timeout);
        }
        Ok(AppService {
            inner: Arc::new(Inner {
                router,
                signal,
                trigger,
                hub: Hub::new(config),
                container: Arc::new(std::mem::take(&mut self.builder.container)),
                sessions: Arc::new(Sessions::default()),
                allow_origin: self.allow_origin,
                app_limiter: self.rate_limit.map(|l| Arc::new(ConnectionLimiter::new(l))),
                route_limiters,
            }),
        })
    }

    /// Builds the app and binds a listener on `addr` (`"127.0.0.1:0"` picks a free port).
    ///
    /// # Errors
    /// See [`App::build`]; [`Error::Io`] when the address cannot be bound.
    pub async fn bind(self, addr: impl tokio::net::ToSocketAddrs) -> Result<Server, Error> {
        let service = self.build()?;
        Server::bind(service, addr).await
    }

    /// Builds, binds and serves until Ctrl-C (or, on Unix, `SIGTERM`), then shuts down
    /// gracefully.
    ///
    /// # Errors
    /// See [`App::bind`].
    pub async fn serve(self, addr: impl tokio::net::ToSocketAddrs) -> Result<(), Error> {
        let server = self.bind(addr).await?;
        server.run_until(stop_signal()).await
    }
}

/// A route's kind with its handler's name and message types, if declared.
pub(crate) type RouteMessagesOf = (RouteKind, Option<(&'static str, crate::typed::DescribeFn)>);

struct Inner {
    router: Router<Route>,
    signal: ShutdownSignal,
    trigger: ShutdownTrigger,
    hub: Hub,
    container: Arc<Container>,
    sessions: Arc<Sessions>,
    allow_origin: Option<HeaderValue>,
    app_limiter: Option<Arc<ConnectionLimiter>>,
    route_limiters: Vec<Arc<ConnectionLimiter>>,
}

/// A built application: answers requests through its route table. Cheap to clone.
#[derive(Clone)]
pub struct AppService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AppService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppService")
            .field("routes", &self.routes())
            .finish()
    }
}

impl AppService {
    /// The mounted routes as `(method, full path, kind)`, in mount order.
    pub fn routes(&self) -> Vec<(Method, String, RouteKind)> {
        self.inner
            .router
            .routes()
            .map(|(m, p, route)| (m.clone(), p.to_string(), route.kind))
            .collect()
    }

    /// The app's container: the one instance of each provider its controllers share.
    pub fn container(&self) -> &Container {
        &self.inner.container
    }

    /// Every mounted route: method, full path, kind, and the handler's name and message
    /// types when it declares them (for [`asyncapi`](crate::asyncapi)).
    pub(crate) fn routes_with_messages(&self) -> Vec<(Method, String, RouteMessagesOf)> {
        self.inner
            .router
            .routes()
            .map(|(m, p, route)| (m.clone(), p.to_string(), (route.kind, route.messages)))
            .collect()
    }

    /// Answers one request. Its body is not read (realtime routes never need one); the
    /// upgrade handle hyper put in its extensions travels on to WebSocket routes.
    ///
    /// The body is kept in the extensions as a [`RequestBody`](crate::request::RequestBody)
    /// for the few routes that read one (GraphQL `POST`s).
    pub async fn call<B>(&self, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<crate::request::BoxError>,
    {
        let (mut parts, body) = req.into_parts();
        parts
            .extensions
            .insert(crate::request::RequestBody::new(body));
        let (handler, params) = match self.inner.router.find(&parts.method, parts.uri.path()) {
            Match::Found(route, params) => (Arc::clone(&route.handler), params),
            Match::MethodNotAllowed => {
                tracing::debug!(method = %parts.method, path = parts.uri.path(), "405: method not allowed");
                return self.finish(text_response(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method not allowed",
                ));
            }
            Match::NotFound => {
                tracing::debug!(method = %parts.method, path = parts.uri.path(), "404: no route");
                return self.finish(text_response(StatusCode::NOT_FOUND, "not found"));
            }
        };
        parts.extensions.insert(self.inner.signal.clone());
        parts.extensions.insert(self.inner.hub.clone());
        parts.extensions.insert(Arc::clone(&self.inner.container));
        parts.extensions.insert(Arc::clone(&self.inner.sessions));
        if let Some(limiter) = &self.inner.app_limiter {
            parts.extensions.insert(AppLimiter(Arc::clone(limiter)));
        }
        let method = parts.method.clone();
        let path = parts.uri.path().to_owned();
        let gzip = crate::sse::accepts_gzip(&parts.headers);
        let response = handler(RequestHead::new(parts, params)).await;
        let status = response.status();
        if status.is_server_error() {
            tracing::warn!(%method, path, status = status.as_u16(), "request failed");
        } else if status.is_client_error() {
            tracing::info!(%method, path, status = status.as_u16(), "request refused");
        }
        self.finish(crate::sse_route::gzip_if_requested(response, gzip))
    }

    fn finish(&self, mut response: Response<Body>) -> Response<Body> {
        if let Some(origin) = &self.inner.allow_origin {
            response
                .headers_mut()
                .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        }
        response
    }

    /// Closes every WebSocket of `user` (the auth guard's [`UserId`](crate::guard::UserId))
    /// on this node with 1008 `"logged out"`; returns how many were open.
    pub fn close_user(&self, user: &str) -> usize {
        let (code, reason) = crate::sessions::LOGOUT_CLOSE;
        self.inner.sessions.close_user(user, code, reason)
    }

    /// The connection limits' counters, summed over the app's limit and every route's
    /// (the per-connection message limits count in
    /// [`websocket_hub`](Self::websocket_hub)`().stats()`).
    pub fn rate_limit_stats(&self) -> RateLimitStats {
        self.inner
            .app_limiter
            .iter()
            .chain(&self.inner.route_limiters)
            .map(|l| l.stats())
            .fold(RateLimitStats::default(), |a, b| a + b)
    }

    /// The live connections of each user on this node.
    pub fn sessions(&self) -> &Sessions {
        &self.inner.sessions
    }

    /// True when `method path` is an SSE route (`#[sse]`, [`RouteKind::Sse`]): the
    /// [`Server`] answers those on its lean path, without a hyper connection.
    pub(crate) fn is_sse_route(&self, method: &Method, path: &str) -> bool {
        matches!(
            self.inner.router.find(method, path),
            Match::Found(route, _) if route.kind == RouteKind::Sse
        )
    }

    /// The signal raised when the server serving this app shuts down.
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.inner.signal.clone()
    }

    /// The hub tracking this app's WebSocket connections (counts, limits, stats).
    pub fn websocket_hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Raises the shutdown signal (SSE streams end, handlers see it); the server closes the
    /// WebSockets.
    pub(crate) fn raise_shutdown(&self) {
        self.inner.trigger.trigger();
    }

    /// Binds a listener and returns the [`Server`] for this app.
    ///
    /// # Errors
    /// [`Error::Io`] when `addr` cannot be bound.
    pub async fn bind(self, addr: impl tokio::net::ToSocketAddrs) -> Result<Server, Error> {
        Server::bind(self, addr).await
    }
}

/// Completes on Ctrl-C (`SIGINT`) or, on Unix, `SIGTERM`.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
