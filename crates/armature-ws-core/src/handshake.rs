//! The opening handshake (RFC 6455 §4): validating a client's upgrade request, choosing a
//! subprotocol and building the `101 Switching Protocols` response — plus a client-side
//! request builder and response check for tests and clients.
//!
//! ```
//! use armature_ws_core::handshake::{self, validate_request};
//!
//! // RFC 6455 §1.3's example request.
//! let request = http::Request::get("/chat")
//!     .header("Host", "server.example.com")
//!     .header("Upgrade", "websocket")
//!     .header("Connection", "Upgrade")
//!     .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
//!     .header("Sec-WebSocket-Protocol", "chat, superchat")
//!     .header("Sec-WebSocket-Version", "13")
//!     .body(())
//!     .unwrap();
//! let client = validate_request(&request).unwrap();
//! let protocol = client.select_protocol(&["superchat"]);
//! assert_eq!(protocol, Some("superchat"));
//!
//! let response = handshake::response(&client, protocol);
//! assert_eq!(response.status(), 101);
//! assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
//! assert_eq!(response.headers()["sec-websocket-protocol"], "superchat");
//! ```

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use sha1::{Digest, Sha1};

use crate::extensions::{self, Extension};
use crate::permessage_deflate::{
    DeflateConfig, DeflateOffer, DeflateParams, DeflateResponseError, negotiate,
};

/// The GUID that RFC 6455 §1.3 appends to the key before hashing.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version this crate speaks (RFC 6455 §4.1).
pub const WEBSOCKET_VERSION: &str = "13";

/// Why a request is not a valid WebSocket upgrade (RFC 6455 §4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The method is not `GET`.
    #[error("websocket upgrade must use GET")]
    MethodNotGet,
    /// The HTTP version is older than HTTP/1.1.
    #[error("websocket upgrade needs HTTP/1.1 or later")]
    HttpVersion,
    /// No `Upgrade` header with the token `websocket`.
    #[error("missing `Upgrade: websocket`")]
    NoUpgradeWebSocket,
    /// No `Connection` header with the token `upgrade`.
    #[error("missing `Connection: upgrade`")]
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Version` is missing or not `13` (answered with 426).
    #[error("unsupported websocket version (only 13 is)")]
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key` header, or more than one.
    #[error("missing sec-websocket-key")]
    MissingKey,
    /// `Sec-WebSocket-Key` is not the base64 of 16 bytes.
    #[error("sec-websocket-key is not base64 of 16 bytes")]
    InvalidKey,
}

impl HandshakeError {
    /// The status to answer with: `426 Upgrade Required` for a wrong version, else
    /// `400 Bad Request`.
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::UnsupportedVersion => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A short reason, suitable for the response body.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::MethodNotGet => "websocket upgrade must use GET",
            HandshakeError::HttpVersion => "websocket upgrade needs HTTP/1.1 or later",
            HandshakeError::NoUpgradeWebSocket => "missing `Upgrade: websocket` header",
            HandshakeError::NoConnectionUpgrade => "missing `Connection: upgrade` header",
            HandshakeError::UnsupportedVersion => "unsupported websocket version; use 13",
            HandshakeError::MissingKey => "missing or repeated sec-websocket-key header",
            HandshakeError::InvalidKey => "sec-websocket-key is not base64 of 16 bytes",
        }
    }

    /// The rejection response: [`status`](Self::status), the reason as a plain-text body and,
    /// for 426, `Sec-WebSocket-Version: 13` (RFC 6455 §4.4).
    ///
    /// ```
    /// use armature_ws_core::handshake::HandshakeError;
    ///
    /// let response = HandshakeError::UnsupportedVersion.to_response();
    /// assert_eq!(response.status(), 426);
    /// assert_eq!(response.headers()["sec-websocket-version"], "13");
    /// ```
    pub fn to_response(&self) -> Response<String> {
        let mut response = Response::new(self.reason().to_owned());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if *self == HandshakeError::UnsupportedVersion {
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static(WEBSOCKET_VERSION),
            );
        }
        response
    }
}

/// What a valid upgrade request asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientHandshake {
    /// The `Sec-WebSocket-Key`, as sent (base64 of 16 bytes).
    pub key: String,
    /// The subprotocols offered in `Sec-WebSocket-Protocol`, in the client's order of
    /// preference.
    pub protocols: Vec<String>,
    /// The elements of `Sec-WebSocket-Extensions`, split at commas, in the order offered
    /// ([`offers`](Self::offers) parses them; [`negotiate_deflate`](Self::negotiate_deflate)
    /// answers permessage-deflate).
    pub extensions: Vec<String>,
    /// The `Origin` header, if any (browsers send it; check it against CSRF-style attacks).
    pub origin: Option<String>,
}

impl ClientHandshake {
    /// The `Sec-WebSocket-Accept` value for this request's key.
    pub fn accept_key(&self) -> String {
        derive_accept_key(self.key.as_bytes())
    }

    /// The extension offers, parsed (RFC 6455 §9.1), in the client's order.
    pub fn offers(&self) -> Vec<Extension> {
        extensions::parse(&self.extensions.join(", "))
    }

    /// The permessage-deflate parameters to accept under `config` (the first offer that can
    /// be honoured, RFC 7692 §5), or `None` to go on uncompressed.
    ///
    /// ```
    /// use armature_ws_core::handshake::{self, validate_request};
    /// use armature_ws_core::permessage_deflate::DeflateConfig;
    ///
    /// let request = http::Request::get("/")
    ///     .header("upgrade", "websocket")
    ///     .header("connection", "upgrade")
    ///     .header("sec-websocket-version", "13")
    ///     .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
    ///     .header("sec-websocket-extensions", "permessage-deflate; client_max_window_bits")
    ///     .body(())
    ///     .unwrap();
    /// let client = validate_request(&request).unwrap();
    /// let deflate = client.negotiate_deflate(&DeflateConfig::shared());
    /// let response = handshake::response_with_deflate(&client, None, deflate.as_ref());
    /// assert_eq!(
    ///     response.headers()["sec-websocket-extensions"],
    ///     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    /// );
    /// ```
    pub fn negotiate_deflate(&self, config: &DeflateConfig) -> Option<DeflateParams> {
        if self.extensions.is_empty() {
            return None;
        }
        negotiate(&self.offers(), config)
    }

    /// The first protocol in the client's list that is in `supported`, if any
    /// (compared exactly, as RFC 6455 §4.2.2 treats them as tokens).
    pub fn select_protocol(&self, supported: &[&str]) -> Option<&str> {
        self.protocols
            .iter()
            .map(String::as_str)
            .find(|p| supported.contains(p))
    }
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64 of the SHA-1 of the key
/// followed by [`WEBSOCKET_GUID`] (RFC 6455 §4.2.2).
///
/// ```
/// use armature_ws_core::derive_accept_key;
///
/// assert_eq!(derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn derive_accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}

/// The comma-separated tokens of every `name` header, trimmed, empty ones dropped. Values
/// that are not visible ASCII are skipped.
fn tokens<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token))
}

/// Checks that `request` is a WebSocket upgrade (RFC 6455 §4.2.1): `GET`, HTTP/1.1 or later,
/// `Upgrade: websocket` and `Connection: upgrade` (case-insensitive token lists),
/// `Sec-WebSocket-Version: 13` and a `Sec-WebSocket-Key` that is the base64 of 16 bytes.
pub fn validate_request<B>(request: &Request<B>) -> Result<ClientHandshake, HandshakeError> {
    if request.method() != Method::GET {
        return Err(HandshakeError::MethodNotGet);
    }
    if request.version() < Version::HTTP_11 {
        return Err(HandshakeError::HttpVersion);
    }
    let headers = request.headers();
    if !has_token(headers, &header::UPGRADE, "websocket") {
        return Err(HandshakeError::NoUpgradeWebSocket);
    }
    if !has_token(headers, &header::CONNECTION, "upgrade") {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    let mut versions = headers.get_all(header::SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(v), None) if v.as_bytes().trim_ascii() == WEBSOCKET_VERSION.as_bytes() => {}
        _ => return Err(HandshakeError::UnsupportedVersion),
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key,
        _ => return Err(HandshakeError::MissingKey),
    };
    let key = key.to_str().map_err(|_| HandshakeError::InvalidKey)?.trim();
    match BASE64.decode(key) {
        Ok(raw) if raw.len() == 16 => {}
        _ => return Err(HandshakeError::InvalidKey),
    }
    Ok(ClientHandshake {
        key: key.to_owned(),
        protocols: tokens(headers, &header::SEC_WEBSOCKET_PROTOCOL)
            .map(str::to_owned)
            .collect(),
        extensions: tokens(headers, &header::SEC_WEBSOCKET_EXTENSIONS)
            .map(str::to_owned)
            .collect(),
        origin: headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    })
}

/// The `101 Switching Protocols` response to a valid request, with `Upgrade: websocket`,
/// `Connection: Upgrade`, `Sec-WebSocket-Accept` and, if `protocol` is given (and is a valid
/// header value), `Sec-WebSocket-Protocol`.
pub fn response(client: &ClientHandshake, protocol: Option<&str>) -> Response<()> {
    response_with_deflate(client, protocol, None)
}

/// Like [`response`], accepting permessage-deflate with `deflate` in
/// `Sec-WebSocket-Extensions` when given (see [`ClientHandshake::negotiate_deflate`]).
pub fn response_with_deflate(
    client: &ClientHandshake,
    protocol: Option<&str>,
    deflate: Option<&DeflateParams>,
) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&client.accept_key()) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(Ok(protocol)) = protocol.map(HeaderValue::from_str) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    if let Some(Ok(value)) = deflate.map(|d| HeaderValue::from_str(&d.to_header())) {
        headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    }
    response
}

/// A fresh random `Sec-WebSocket-Key`: base64 of 16 bytes from the standard library's randomly
/// seeded SipHash.
pub fn generate_key() -> String {
    let state = RandomState::new();
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&state.hash_one(1u8).to_ne_bytes());
    raw[8..].copy_from_slice(&state.hash_one(2u8).to_ne_bytes());
    BASE64.encode(raw)
}

/// A client's upgrade request for `uri` (its path and authority are used), and the key it
/// carries (to check the response with [`check_response`]).
///
/// ```
/// use armature_ws_core::handshake::{client_request, validate_request};
///
/// let (request, key) = client_request(&"ws://localhost:3000/ws".parse().unwrap());
/// let client = validate_request(&request).unwrap();
/// assert_eq!(client.key, key);
/// assert_eq!(request.headers()["host"], "localhost:3000");
/// ```
pub fn client_request(uri: &Uri) -> (Request<()>, String) {
    client_request_with_protocols(uri, &[])
}

/// Like [`client_request`], offering `protocols` in `Sec-WebSocket-Protocol`.
///
/// ```
/// use armature_ws_core::handshake::{client_request_with_protocols, validate_request};
///
/// let uri = "ws://localhost:3000/ws".parse().unwrap();
/// let (request, _key) = client_request_with_protocols(&uri, &["chat", "v2"]);
/// assert_eq!(validate_request(&request).unwrap().protocols, ["chat", "v2"]);
/// ```
pub fn client_request_with_protocols(uri: &Uri, protocols: &[&str]) -> (Request<()>, String) {
    client_request_with_deflate(uri, protocols, None)
}

/// Like [`client_request_with_protocols`], offering permessage-deflate as `offer` says.
pub fn client_request_with_deflate(
    uri: &Uri,
    protocols: &[&str],
    offer: Option<&DeflateOffer>,
) -> (Request<()>, String) {
    let key = generate_key();
    let mut request = Request::new(());
    *request.uri_mut() = uri.clone();
    let headers = request.headers_mut();
    if let Some(Ok(host)) = uri.authority().map(|a| HeaderValue::from_str(a.as_str())) {
        headers.insert(header::HOST, host);
    }
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(
        header::SEC_WEBSOCKET_VERSION,
        HeaderValue::from_static(WEBSOCKET_VERSION),
    );
    if let Ok(value) = HeaderValue::from_str(&key) {
        headers.insert(header::SEC_WEBSOCKET_KEY, value);
    }
    if !protocols.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&protocols.join(", ")) {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
        }
    }
    if let Some(Ok(value)) = offer.map(|o| HeaderValue::from_str(&o.to_header())) {
        headers.insert(header::SEC_WEBSOCKET_EXTENSIONS, value);
    }
    (request, key)
}

/// Why a server's handshake response is not an acceptance (RFC 6455 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The status is not `101`.
    #[error("server answered {0} instead of 101")]
    NotSwitchingProtocols(u16),
    /// No `Upgrade: websocket`.
    #[error("missing `Upgrade: websocket` in the response")]
    NoUpgradeWebSocket,
    /// No `Connection: upgrade`.
    #[error("missing `Connection: upgrade` in the response")]
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Accept` is missing or does not match the key.
    #[error("sec-websocket-accept does not match the key")]
    AcceptMismatch,
    /// The server chose a subprotocol the client did not offer.
    #[error("server chose subprotocol {0:?}, which was not offered")]
    UnrequestedProtocol(String),
    /// The server's `Sec-WebSocket-Extensions` is not an acceptance of what was offered.
    #[error("bad sec-websocket-extensions answer: {0}")]
    Extension(#[from] DeflateResponseError),
}

/// The permessage-deflate parameters a server's response agreed to, checked against
/// `offer` (`None`: nothing was offered, so any extension in the answer is an error).
///
/// ```
/// use armature_ws_core::handshake::{
///     check_response_deflate, client_request_with_deflate, response_with_deflate,
///     validate_request,
/// };
/// use armature_ws_core::permessage_deflate::{DeflateConfig, DeflateOffer};
///
/// let offer = DeflateOffer::default();
/// let (request, _key) = client_request_with_deflate(&"ws://h/".parse().unwrap(), &[], Some(&offer));
/// let client = validate_request(&request).unwrap();
/// let agreed = client.negotiate_deflate(&DeflateConfig::shared());
/// let answer = response_with_deflate(&client, None, agreed.as_ref());
/// assert_eq!(check_response_deflate(&answer, Some(&offer)), Ok(agreed));
/// ```
pub fn check_response_deflate<B>(
    response: &Response<B>,
    offer: Option<&DeflateOffer>,
) -> Result<Option<DeflateParams>, ResponseError> {
    let answer: Vec<&str> = response
        .headers()
        .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .map(|v| v.to_str().map_err(|_| DeflateResponseError::InvalidParams))
        .collect::<Result<_, _>>()?;
    let answer = extensions::parse(&answer.join(", "));
    match offer {
        Some(offer) => Ok(offer.check_response(&answer)?),
        None if answer.is_empty() => Ok(None),
        None => Err(DeflateResponseError::Unrequested.into()),
    }
}

/// Checks a server's answer to a request made with `key` and offering `protocols`, returning
/// the subprotocol the server chose, if any.
///
/// ```
/// use armature_ws_core::handshake::{
///     check_response, client_request_with_protocols, response, validate_request,
/// };
///
/// let (request, key) = client_request_with_protocols(&"ws://h/".parse().unwrap(), &["a", "b"]);
/// let client = validate_request(&request).unwrap();
/// let answer = response(&client, client.select_protocol(&["b"]));
/// assert_eq!(check_response(&answer, &key, &["a", "b"]), Ok(Some("b".to_owned())));
/// ```
pub fn check_response<B>(
    response: &Response<B>,
    key: &str,
    protocols: &[&str],
) -> Result<Option<String>, ResponseError> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(ResponseError::NotSwitchingProtocols(
            response.status().as_u16(),
        ));
    }
    let headers = response.headers();
    if !has_token(headers, &header::UPGRADE, "websocket") {
        return Err(ResponseError::NoUpgradeWebSocket);
    }
    if !has_token(headers, &header::CONNECTION, "upgrade") {
        return Err(ResponseError::NoConnectionUpgrade);
    }
    let expected = derive_accept_key(key.as_bytes());
    match headers.get(header::SEC_WEBSOCKET_ACCEPT) {
        Some(accept) if accept.as_bytes() == expected.as_bytes() => {}
        _ => return Err(ResponseError::AcceptMismatch),
    }
    match headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .map(|v| v.to_str().map(str::trim))
    {
        None => Ok(None),
        Some(Ok(chosen)) if protocols.contains(&chosen) => Ok(Some(chosen.to_owned())),
        Some(Ok(chosen)) => Err(ResponseError::UnrequestedProtocol(chosen.to_owned())),
        Some(Err(_)) => Err(ResponseError::UnrequestedProtocol(String::new())),
    }
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
