//! [`Body`], the response body of every answer of a [`GraphQL`](crate::GraphQL) endpoint.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};

use crate::Error;

/// A boxed body of [`Bytes`] chunks (the same type as the facade's `Body`): a JSON result,
/// an SSE stream or the empty body of a `101`.
pub type Body = UnsyncBoxBody<Bytes, Error>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}
