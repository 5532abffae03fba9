//! What a route handler sees of a request: method, URI, headers, the `:param` captures of
//! its route and the query string, plus [`FromParam`], which turns those strings into the
//! typed arguments of a decorated method.

use std::fmt;

use http::{HeaderMap, Method, Uri, request::Parts};

use crate::router::Params;

/// The head of a request (no body) with its route's path parameters and its decoded query.
///
/// Realtime routes (WebSocket upgrades and SSE subscriptions) never read a request body, so
/// this is all a handler needs; the hyper upgrade handle stays in the extensions.
#[derive(Debug)]
pub struct RequestHead {
    parts: Parts,
    params: Params,
    query: Vec<(String, String)>,
}

impl RequestHead {
    /// Builds a head from request parts and the route's captures; the query is decoded from
    /// the URI (`application/x-www-form-urlencoded` rules: `+` is a space, `%XX` escapes).
    pub fn new(parts: Parts, params: Params) -> Self {
        let query = parts
            .uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            parts,
            params,
            query,
        }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.parts.method
    }

    /// The request URI.
    pub fn uri(&self) -> &Uri {
        &self.parts.uri
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The value of header `name` (case-insensitive) when present and valid visible ASCII.
    /// With several values, the first one.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The path parameter `name` (`:name` in the route), percent-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    /// All path parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The first value of query parameter `name`, decoded.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All query pairs in order, decoded.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// The request's extensions (hyper keeps the connection's upgrade handle here).
    pub fn extensions(&self) -> &http::Extensions {
        &self.parts.extensions
    }

    /// The request's extensions, mutably: a guard leaves what it found here
    /// ([`Auth`](crate::guard::Auth), [`UserId`](crate::guard::UserId)).
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.parts.extensions
    }

    /// The address of the client (the TCP peer; behind a proxy, the proxy), when the
    /// request came through the app's server.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.parts
            .extensions
            .get::<armature_ws::PeerAddr>()
            .map(|p| p.0)
    }

    /// The request parts, mutably (to take the upgrade handle, for instance).
    pub fn parts_mut(&mut self) -> &mut Parts {
        &mut self.parts
    }

    /// Gives back the request parts.
    pub fn into_parts(self) -> Parts {
        self.parts
    }
}

/// Why a request string could not become an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// The request does not carry the value.
    Missing,
    /// The value is there but does not parse; the text says why.
    Invalid(String),
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::Missing => f.write_str("missing"),
            ParamError::Invalid(why) => write!(f, "invalid: {why}"),
        }
    }
}

/// A type a path parameter, query parameter or header can be turned into when it reaches a
/// decorated method as an argument. `Option<T>` accepts a missing value.
///
/// ```
/// use armature_realtime::request::{FromParam, ParamError};
///
/// assert_eq!(u32::from_param(Some("42")), Ok(42));
/// assert_eq!(Option::<u32>::from_param(None), Ok(None));
/// assert_eq!(String::from_param(None), Err(ParamError::Missing));
/// assert!(matches!(u8::from_param(Some("300")), Err(ParamError::Invalid(_))));
/// ```
pub trait FromParam: Sized {
    /// Converts the raw value (`None` when the request does not carry it).
    ///
    /// # Errors
    /// [`ParamError`] when the value is missing and required, or does not parse.
    fn from_param(raw: Option<&str>) -> Result<Self, ParamError>;
}

impl<T: FromParam> FromParam for Option<T> {
    fn from_param(raw: Option<&str>) -> Result<Self, ParamError> {
        match raw {
            None => Ok(None),
            Some(raw) => T::from_param(Some(raw)).map(Some),
        }
    }
}

macro_rules! from_param_via_from_str {
    ($($ty:ty),* $(,)?) => {$(
        impl FromParam for $ty {
            fn from_param(raw: Option<&str>) -> Result<Self, ParamError> {
                let raw = raw.ok_or(ParamError::Missing)?;
                raw.parse::<$ty>().map_err(|e| ParamError::Invalid(e.to_string()))
            }
        }
    )*};
}

from_param_via_from_str!(
    String,
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    std::net::IpAddr,
    std::net::SocketAddr,
);

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn head(uri: &str) -> RequestHead {
        let (parts, ()) = Request::get(uri)
            .header("Authorization", "Bearer t")
            .body(())
            .unwrap()
            .into_parts();
        RequestHead::new(parts, Params::default())
    }

    #[test]
    fn query_is_decoded() {
        let h = head("/x?name=Ada+Lovelace&room=r%C3%A9&name=second&flag");
        assert_eq!(h.query("name"), Some("Ada Lovelace"));
        assert_eq!(h.query("room"), Some("ré"));
        assert_eq!(h.query("flag"), Some(""));
        assert_eq!(h.query("nope"), None);
        assert_eq!(h.query_pairs().len(), 4);
    }

    #[test]
    fn headers_are_case_insensitive() {
        let h = head("/x");
        assert_eq!(h.header("authorization"), Some("Bearer t"));
        assert_eq!(h.header("AUTHORIZATION"), Some("Bearer t"));
        assert_eq!(h.header("x-none"), None);
    }

    #[test]
    fn from_param_conversions() {
        assert_eq!(bool::from_param(Some("true")), Ok(true));
        assert_eq!(
            Option::<String>::from_param(Some("a")),
            Ok(Some("a".into()))
        );
        assert!(matches!(
            Option::<u8>::from_param(Some("x")),
            Err(ParamError::Invalid(_))
        ));
        assert_eq!(i64::from_param(None), Err(ParamError::Missing));
    }
}

/// The boxed error of a [`RequestBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of a request, kept in its extensions by
/// [`AppService::call`](crate::AppService::call) for routes that read one; taken once.
#[derive(Clone)]
pub struct RequestBody(
    std::sync::Arc<
        parking_lot::Mutex<
            Option<http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>>,
        >,
    >,
);

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestBody")
    }
}

impl RequestBody {
    pub(crate) fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        use http_body_util::BodyExt;
        RequestBody(std::sync::Arc::new(parking_lot::Mutex::new(Some(
            body.map_err(Into::into).boxed_unsync(),
        ))))
    }

    /// Takes the body (`None` when already taken).
    pub fn take(
        &self,
    ) -> Option<http_body_util::combinators::UnsyncBoxBody<bytes::Bytes, BoxError>> {
        self.0.lock().take()
    }
}
