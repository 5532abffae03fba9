//! Modules, controllers and routes: what `#[module]`, `#[controller]`, `#[websocket]` and
//! `#[sse]` implement, and what [`App`](crate::App) mounts.
//!
//! A module lists providers (injectable services) and controllers; a controller is a struct
//! whose fields are services resolved from the [`Container`] and whose decorated methods
//! become [`Route`]s under the controller's prefix.

use std::any::{TypeId, type_name};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{Method, Response};

use crate::Error;
use crate::body::Body;
use crate::di::{Container, Injectable};
use crate::request::RequestHead;

/// The future a route handler returns.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A route handler: a request head in, a response out.
pub type Handler = Arc<dyn Fn(RequestHead) -> BoxFuture<Response<Body>> + Send + Sync>;

/// What a route serves; shown in route listings and used by the tower integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteKind {
    /// A WebSocket upgrade (`#[websocket]`).
    WebSocket,
    /// A Server-Sent Events stream (`#[sse]`).
    Sse,
    /// A plain HTTP handler or static content.
    Http,
}

/// One route: method, path (relative to its controller's prefix until mounted), kind and
/// handler.
#[derive(Clone)]
pub struct Route {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) kind: RouteKind,
    pub(crate) handler: Handler,
    pub(crate) connection_limit: Option<crate::rate_limit::ConnectionLimit>,
    /// The handler's name and its message types, for the AsyncAPI document
    /// ([`Route::with_messages`]).
    pub(crate) messages: Option<(&'static str, crate::typed::DescribeFn)>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Route {
    /// A route from a handler function.
    pub fn new<F, Fut>(method: Method, path: impl Into<String>, kind: RouteKind, handler: F) -> Self
    where
        F: Fn(RequestHead) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        Self {
            method,
            path: path.into(),
            kind,
            handler: Arc::new(move |head| Box::pin(handler(head))),
            connection_limit: None,
            messages: None,
        }
    }

    /// A route whose handler is a method of the shared controller instance `this`; this is
    /// what the decorators generate.
    pub fn for_controller<C: Send + Sync + 'static>(
        method: Method,
        path: &str,
        kind: RouteKind,
        this: &Arc<C>,
        call: fn(Arc<C>, RequestHead) -> BoxFuture<Response<Body>>,
    ) -> Self {
        let this = Arc::clone(this);
        Self {
            method,
            path: path.to_owned(),
            kind,
            handler: Arc::new(move |head| call(Arc::clone(&this), head)),
            connection_limit: None,
            messages: None,
        }
    }

    /// Limits the connections one client address may open on this route
    /// (`#[rate_limit(connections = ..)]`): checked by decorated routes after the `Origin`
    /// check, before the guards; see [`rate_limit`](crate::rate_limit).
    pub fn connection_limit(mut self, limit: crate::rate_limit::ConnectionLimit) -> Self {
        self.connection_limit = Some(limit);
        self
    }

    /// Declares the route's message types (what the decorators do for a
    /// [`TypedSocket`](crate::typed::TypedSocket) argument or a
    /// [`TypedEvents`](crate::typed::TypedEvents) return type): `name` is the handler's,
    /// `describe` gives the events each side sends. They appear in the AsyncAPI document.
    pub fn with_messages(mut self, name: &'static str, describe: crate::typed::DescribeFn) -> Self {
        self.messages = Some((name, describe));
        self
    }

    /// The route's method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The route's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The route's kind.
    pub fn kind(&self) -> RouteKind {
        self.kind
    }
}

/// The struct half of a controller: its prefix and how to build it from the container.
/// `#[controller("/prefix")]` on the struct implements it.
pub trait Controller: Send + Sync + Sized + 'static {
    /// The path prefix of every route of this controller.
    fn prefix() -> &'static str;

    /// Builds the controller, resolving its services from `container`.
    ///
    /// # Errors
    /// A service that cannot be resolved.
    fn construct(container: &Container) -> Result<Self, Error>;

    /// Runs the guards of `#[use_guards(..)]` on the controller struct, before those of its
    /// `impl` block and its methods (default: none).
    fn check_guards(
        head: &mut RequestHead,
    ) -> impl Future<Output = Result<(), crate::guard::Refusal>> + Send {
        let _ = head;
        std::future::ready(Ok(()))
    }
}

/// The impl half of a controller: its routes. `#[controller]` on the `impl` block holding
/// `#[websocket]`/`#[sse]` methods implements it.
pub trait ControllerRoutes: Controller {
    /// The routes of the shared instance `this`, with paths relative to the prefix.
    fn routes(this: &Arc<Self>) -> Vec<Route>;
}

/// A set of providers and controllers, possibly importing other modules.
/// `#[module(providers: [..], controllers: [..], imports: [..])]` implements it.
pub trait Module: 'static {
    /// Registers this module's providers, controllers and imports.
    fn configure(builder: &mut ModuleBuilder);
}

type ControllerFactory = Box<dyn FnOnce(&Container) -> Result<(String, Vec<Route>), Error>>;

/// Collects what modules register; [`App`](crate::App) turns it into routes.
#[derive(Default)]
pub struct ModuleBuilder {
    pub(crate) container: Container,
    controllers: Vec<(TypeId, &'static str, ControllerFactory)>,
    modules: Vec<TypeId>,
}

impl fmt::Debug for ModuleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleBuilder")
            .field("container", &self.container)
            .field(
                "controllers",
                &self.controllers.iter().map(|c| c.1).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ModuleBuilder {
    /// Registers a provider.
    pub fn provider<T: Injectable>(&mut self) -> &mut Self {
        self.container.register::<T>();
        self
    }

    /// Registers a ready-made provider instance.
    pub fn provide<T: Injectable>(&mut self, value: T) -> &mut Self {
        self.container.provide(value);
        self
    }

    /// Registers a controller (once, even if several modules list it).
    pub fn controller<C: ControllerRoutes>(&mut self) -> &mut Self {
        self.controller_with_routes::<C>(C::routes)
    }

    /// Registers a controller whose routes `routes` lists. `#[module(controllers: [..])]`
    /// uses it so that a `#[controller("/prefix")]` struct with no `#[controller] impl`
    /// block (no route yet, as in the guide's chat service) can be listed: it serves none.
    pub fn controller_with_routes<C: Controller>(
        &mut self,
        routes: fn(&Arc<C>) -> Vec<Route>,
    ) -> &mut Self {
        let id = TypeId::of::<C>();
        if self.controllers.iter().any(|(t, _, _)| *t == id) {
            return self;
        }
        let factory: ControllerFactory = Box::new(move |container| {
            let this = Arc::new(C::construct(container)?);
            Ok((C::prefix().to_owned(), routes(&this)))
        });
        self.controllers.push((id, type_name::<C>(), factory));
        self
    }

    /// Registers another module's providers and controllers (once per module type).
    pub fn import<M: Module>(&mut self) -> &mut Self {
        let id = TypeId::of::<M>();
        if !self.modules.contains(&id) {
            self.modules.push(id);
            M::configure(self);
        }
        self
    }

    /// The container holding the registered providers.
    pub fn container(&self) -> &Container {
        &self.container
    }

    /// Builds every controller; returns `(prefix, routes)` per controller, in registration
    /// order.
    pub(crate) fn build_controllers(&mut self) -> Result<Vec<(String, Vec<Route>)>, Error> {
        let controllers = std::mem::take(&mut self.controllers);
        controllers
            .into_iter()
            .map(|(_, name, factory)| {
                factory(&self.container)
                    .map_err(|e| Error::Internal(format!("cannot build controller `{name}`: {e}")))
            })
            .collect()
    }
}
