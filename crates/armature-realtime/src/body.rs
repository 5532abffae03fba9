//! The response body every route of an [`App`](crate::App) answers with, and small helpers
//! that build common responses.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};

use crate::Error;

/// The body of every response an [`App`](crate::App) sends: a boxed [`http_body::Body`] of
/// [`Bytes`] chunks, so a fixed page, an SSE stream and an empty `101` share one type.
pub type Body = UnsyncBoxBody<Bytes, Error>;

/// Boxes any body whose chunks are [`Bytes`] into a [`Body`].
pub fn boxed<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Error>,
{
    body.map_err(Into::into).boxed_unsync()
}

/// A response whose body is a [`Full`] (what many libraries build) as a `Response<Body>`.
pub fn from_full(response: Response<Full<Bytes>>) -> Response<Body> {
    response.map(|b| b.map_err(|never: Infallible| match never {}).boxed_unsync())
}

/// `response` whose body keeps `value` alive until the body is dropped (an SSE stream
/// holding its connection permits).
pub(crate) fn hold<T: Send + Unpin + 'static>(
    response: Response<Body>,
    value: T,
) -> Response<Body> {
    response.map(|body| {
        Holding {
            body,
            _value: value,
        }
        .boxed_unsync()
    })
}

struct Holding<T> {
    body: Body,
    _value: T,
}

impl<T: Unpin> http_body::Body for Holding<T> {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// An empty body.
pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// A body holding `bytes` in one chunk.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// A response with `status`, `Content-Type: text/plain; charset=utf-8` and `text` as body.
///
/// ```
/// use armature_realtime::body::text_response;
/// use http::StatusCode;
///
/// let res = text_response(StatusCode::UNAUTHORIZED, "missing token");
/// assert_eq!(res.status(), 401);
/// ```
pub fn text_response(status: StatusCode, text: impl Into<String>) -> Response<Body> {
    let mut res = Response::new(full(text.into()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// A `200 OK` response with `bytes` as body and `content_type`.
pub fn bytes_response_static(bytes: &'static [u8], content_type: &'static str) -> Response<Body> {
    let mut res = Response::new(full(Bytes::from_static(bytes)));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

/// A `200 OK` response with `Content-Type: application/json` holding `value` as JSON.
///
/// # Errors
/// [`Error::Serialization`] when `value` cannot be turned into JSON.
pub fn json_response<T: serde::Serialize + ?Sized>(value: &T) -> Result<Response<Body>, Error> {
    let bytes = serde_json::to_vec(value)?;
    let mut res = Response::new(full(bytes));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

/// The response for an error that ends a request before any upgrade: the status from
/// [`Error::http_status`] and, as body, the reason for [`Error::Http`] or the error's text.
///
/// The guide's "Room full" error ([`Error::is_room_full`]) is answered with
/// `503 Service Unavailable`: the room may have space again later.
pub fn error_response(err: &Error) -> Response<Body> {
    let status = if err.is_room_full() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    };
    let text = match err {
        Error::Http { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    text_response(status, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(body: Body) -> Bytes {
        body.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn error_response_uses_status_and_reason() {
        let err = Error::Http {
            status: 401,
            reason: "missing token".into(),
        };
        let res = error_response(&err);
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(collect(res.into_body()).await, "missing token");

        let res = error_response(&Error::Validation("bad room".into()));
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            collect(res.into_body()).await,
            "validation failed: bad room"
        );
    }

    #[tokio::test]
    async fn json_response_sets_content_type() {
        let res = json_response(&serde_json::json!({"rooms": 2})).unwrap();
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(collect(res.into_body()).await, r#"{"rooms":2}"#);
    }
}
