//! What the decorators' generated code names. Not a public API: it may change in any
//! release.

pub use std::boxed::Box;
pub use std::default::Default;
pub use std::option::Option::{self, None, Some};
pub use std::result::Result::{self, Err, Ok};
pub use std::sync::Arc;
pub use std::vec;
pub use std::vec::Vec;

pub use http::{Method, Response};

pub use crate::Error;
pub use crate::body::Body;
pub use crate::di::{Container, Injectable};
pub use crate::guard::{Refusal, run_guard};
pub use crate::module::{
    BoxFuture, Controller, ControllerRoutes, Module, ModuleBuilder, Route, RouteKind,
};
pub use crate::rate_limit::ConnectionLimit;
pub use crate::request::RequestHead;
pub use crate::shutdown::ShutdownSignal;
pub use crate::sse_route::EventStream;
pub use crate::typed::{DescribeMessages, FromSocket};
pub use crate::ws_route::{HandlerOutcome, websocket};

/// The `403` of a WebSocket route whose `Origin` the app's policy refuses.
pub fn origin_refusal(head: &RequestHead) -> Option<Response<Body>> {
    crate::ws_route::origin_refusal(head)
}

/// The answer to a guard's refusal: its status, or on a WebSocket route with
/// [`Refusal::Close`](crate::guard::Refusal::Close) an upgrade closed at once.
pub async fn refuse(
    head: RequestHead,
    refusal: crate::guard::Refusal,
    websocket: bool,
) -> Response<Body> {
    crate::ws_route::refuse(head, refusal, websocket).await
}

/// The connection limits of the app and the route (`#[rate_limit(connections = ..)]`):
/// `Err` with the `429` refusal; on admission the permits wait in the head's extensions.
///
/// # Errors
/// The `429` refusal.
pub fn connection_limits(head: &mut RequestHead) -> Result<(), crate::guard::Refusal> {
    crate::rate_limit::check(head)
}

/// The message limit of a `#[websocket]` route (`#[rate_limit(messages = ..)]`), read by
/// the upgrade.
pub fn set_message_rate(head: &mut RequestHead, rate: crate::ws::MessageRate) {
    head.extensions_mut().insert(rate);
}

pub use crate::ws::{MessageRate, OnExcess};
pub use std::time::Duration;

/// An `#[sse]` response holding the connection permits of its request until the stream
/// ends.
pub fn hold_permits(head: &mut RequestHead, response: Response<Body>) -> Response<Body> {
    match head.extensions_mut().remove::<crate::rate_limit::Permits>() {
        Some(permits) => crate::body::hold(response, permits),
        None => response,
    }
}

/// A `FromRequestHead` argument, or the error that refuses the request.
///
/// # Errors
/// The extractor's error.
pub fn extract<T: crate::guard::FromRequestHead>(head: &RequestHead) -> Result<T, Error> {
    T::from_request_head(head)
}

pub use crate::body::error_response;
use crate::request::{FromParam, ParamError};

/// Picks a controller's routes at compile time: those of its `#[controller] impl` block
/// when it has one ([`WithRoutes`], found first by method resolution), else none
/// ([`WithoutRoutes`], one auto-reference further). `#[module]` calls
/// `(&RoutesOf::<C>::new()).routes_fn()` with both traits in scope.
pub struct RoutesOf<C>(std::marker::PhantomData<fn() -> C>);

impl<C> RoutesOf<C> {
    /// The probe for controller `C`.
    pub fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<C> Default for RoutesOf<C> {
    fn default() -> Self {
        Self::new()
    }
}

/// The routes of a controller with a `#[controller] impl` block.
pub trait WithRoutes<C> {
    /// `C::routes`.
    fn routes_fn(&self) -> fn(&Arc<C>) -> Vec<Route>;
}

impl<C: ControllerRoutes> WithRoutes<C> for RoutesOf<C> {
    fn routes_fn(&self) -> fn(&Arc<C>) -> Vec<Route> {
        C::routes
    }
}

/// No routes, for a controller struct without a `#[controller] impl` block.
pub trait WithoutRoutes<C> {
    /// A function returning no route.
    fn routes_fn(&self) -> fn(&Arc<C>) -> Vec<Route>;
}

impl<C: Controller> WithoutRoutes<C> for &RoutesOf<C> {
    fn routes_fn(&self) -> fn(&Arc<C>) -> Vec<Route> {
        |_| Vec::new()
    }
}

/// Resolves a service field from the container.
///
/// # Errors
/// See [`Container::resolve`].
pub fn resolve<T: Injectable>(container: &Container) -> Result<T, Error> {
    container.resolve::<T>()
}

fn bad_request(what: &str, name: &str, err: ParamError) -> Error {
    Error::Http {
        status: 400,
        reason: format!("{what} `{name}` is {err}"),
    }
}

/// A path parameter as an argument, or the `400` error.
///
/// # Errors
/// [`Error::Http`] with status `400` naming the argument.
pub fn path_param<T: FromParam>(head: &RequestHead, name: &str) -> Result<T, Error> {
    T::from_param(head.param(name)).map_err(|e| bad_request("path parameter", name, e))
}

/// A query parameter as an argument, or the `400` error.
///
/// # Errors
/// [`Error::Http`] with status `400` naming the argument.
pub fn query_param<T: FromParam>(head: &RequestHead, name: &str) -> Result<T, Error> {
    T::from_param(head.query(name)).map_err(|e| bad_request("query parameter", name, e))
}

/// A header as an argument, or the `400` error.
///
/// # Errors
/// [`Error::Http`] with status `400` naming the argument.
pub fn header_param<T: FromParam>(head: &RequestHead, name: &str) -> Result<T, Error> {
    T::from_param(head.header(name)).map_err(|e| bad_request("header", name, e))
}

/// The shutdown signal of the server serving this request (or one that never fires).
pub fn shutdown_signal(head: &RequestHead) -> ShutdownSignal {
    head.extensions()
        .get::<ShutdownSignal>()
        .cloned()
        .unwrap_or_else(ShutdownSignal::never)
}

/// The response of an `#[sse]` handler.
pub fn sse_response<T: crate::sse_route::IntoSse>(
    signal: ShutdownSignal,
    value: T,
) -> Response<Body> {
    crate::sse_route::sse_response_until(signal, value)
}
