//! The accept loop's first step on every connection, and its lean path for long-lived
//! streaming responses (Server-Sent Events).
//!
//! [`serve_with`](crate::serve_with) reads the first request head itself, with `httparse`
//! (the parser hyper uses), into a buffer reserved only once the socket is readable:
//!
//! - a head that is not HTTP gets `400`, one larger than `max_request_head_bytes` (or with
//!   more than [`MAX_HEADERS`] headers) `431`, one not complete within
//!   `header_read_timeout` a closed connection, as hyper answers them;
//! - a request the [`LeanRoutes`] claim (an SSE route, say: `GET`, no body, no upgrade) is
//!   answered here: the status line and headers from the `http` response, then the body's
//!   chunks through the WebSocket writer (`Outbox`: runs of small writes copied into one
//!   buffer, one system call). Such a connection holds its socket, its task and the body —
//!   no hyper connection, none of hyper's 8 KiB read and write buffers. A client that goes
//!   away is noticed by read readiness and a 64-byte read on the stack, no read buffer.
//!   The response carries `Connection: close`: once the body ends the connection closes;
//! - every other request goes to hyper with the bytes already read in front of the socket
//!   ([`Rewind`]), so hyper parses them again and serves the connection as before (a
//!   WebSocket upgrade gets the plain `TcpStream` back).

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::io::Io;
use crate::writer::{BATCH_MAX, Outbox};

/// Requests the accept loop answers itself instead of handing them to hyper: long-lived
/// streaming responses, where hyper's per-connection buffers would be most of what a
/// client costs.
///
/// [`serve_with`](crate::serve_with) asks [`is_lean`](LeanRoutes::is_lean) about the first
/// request of a connection when it is a `GET` without a body and without `Upgrade`, over
/// HTTP/1.1; when it answers `true`, [`respond`](LeanRoutes::respond) gets the request
/// (with the [`Hub`](crate::Hub) and [`PeerAddr`](crate::PeerAddr) in its extensions, as
/// hyper's requests have) and its response is written without hyper. Any response works
/// (a guard's `401` too); a body without a known length is sent chunked.
///
/// `()` claims nothing (every request goes to hyper).
pub trait LeanRoutes: Clone + Send + Sync + 'static {
    /// The body of a lean response.
    type Body: Body<Data = Bytes> + Send + 'static;
    /// The future of a lean response.
    type Future: Future<Output = Response<Self::Body>> + Send + 'static;

    /// True when `method path` is answered on the lean path.
    fn is_lean(&self, method: &Method, path: &str) -> bool;

    /// The response to `request`.
    fn respond(&self, request: Request<()>) -> Self::Future;
}

impl LeanRoutes for () {
    type Body = http_body_util::Empty<Bytes>;
    type Future = std::future::Ready<Response<Self::Body>>;

    fn is_lean(&self, _: &Method, _: &str) -> bool {
        false
    }

    fn respond(&self, _: Request<()>) -> Self::Future {
        std::future::ready(Response::new(http_body_util::Empty::new()))
    }
}

/// The most headers a request head may have (hyper's default); more is answered `431`.
pub const MAX_HEADERS: usize = 100;

/// First reservation of the head buffer; it grows up to the head bound.
const HEAD_CHUNK: usize = 1024;

/// Why a request head could not be read.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The client closed (or reset) the connection before the head was complete.
    Closed,
    /// Not a valid HTTP/1 request head (`400`).
    Bad,
    /// A version other than HTTP/1.x (`505`).
    Version,
    /// Larger than the bound, or too many headers (`431`).
    TooLarge,
}

impl HeadError {
    /// The response to send before closing, if any.
    pub(crate) fn response(&self) -> Option<&'static [u8]> {
        match self {
            HeadError::Closed => None,
            HeadError::Bad => {
                Some(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            }
            HeadError::Version => Some(
                b"HTTP/1.1 505 HTTP Version Not Supported\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            ),
            HeadError::TooLarge => Some(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            ),
        }
    }
}

/// Reads from `tcp` until `buf` holds a complete request head; returns the head's length.
/// The buffer is reserved only when the socket is readable, so a connection that has sent
/// nothing yet holds none.
pub(crate) async fn read_head(
    tcp: &TcpStream,
    buf: &mut BytesMut,
    max: usize,
) -> Result<usize, HeadError> {
    loop {
        tcp.readable().await.map_err(|_| HeadError::Closed)?;
        if buf.capacity() - buf.len() < HEAD_CHUNK / 4 {
            let grow = buf.len().clamp(HEAD_CHUNK, max.max(HEAD_CHUNK));
            buf.reserve(grow);
        }
        let before = buf.len();
        match tcp.try_read_buf(buf) {
            Ok(0) => return Err(HeadError::Closed),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return Err(HeadError::Closed),
        }
        // A head ends with a line break: parse again only when one arrived (a head sent a
        // byte at a time is not parsed once per byte).
        let fresh = buf.get(before.saturating_sub(1)..).unwrap_or_default();
        if !fresh.contains(&b'\n') {
            if buf.len() > max {
                return Err(HeadError::TooLarge);
            }
            continue;
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) if n <= max => return Ok(n),
            Ok(httparse::Status::Complete(_)) => return Err(HeadError::TooLarge),
            Ok(httparse::Status::Partial) if buf.len() > max => return Err(HeadError::TooLarge),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(httparse::Error::Version) => return Err(HeadError::Version),
            Err(_) => return Err(HeadError::Bad),
        }
    }
}

/// Writes `response` (a fixed error answer) and closes: the write side first, then what the
/// client still sends is read and dropped for a moment, so the answer is not lost to a
/// reset caused by unread bytes.
pub(crate) async fn refuse(mut tcp: TcpStream, response: &[u8]) {
    if tcp.write_all(response).await.is_err() {
        return;
    }
    let _ = tcp.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 256];
        let mut left = 256 * 1024usize;
        while left > 0 {
            if tcp.readable().await.is_err() {
                return;
            }
            match tcp.try_read(&mut sink) {
                Ok(0) => return,
                Ok(n) => left = left.saturating_sub(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// The parsed first request, when the lean path may take it: `GET`, HTTP/1.1, no body, no
/// upgrade, a path that is a URI.
pub(crate) struct LeanHead {
    method: Method,
    uri: Uri,
}

impl LeanHead {
    pub(crate) fn path(&self) -> &str {
        self.uri.path()
    }

    pub(crate) fn method(&self) -> &Method {
        &self.method
    }
}

/// Looks at the head in `head` and says whether the lean path may answer it.
pub(crate) fn lean_candidate(head: &[u8]) -> Option<LeanHead> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    if req.version != Some(1) || req.method != Some("GET") {
        return None;
    }
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"upgrade") || name.eq_ignore_ascii_case(b"transfer-encoding")
        {
            return None;
        }
        if name.eq_ignore_ascii_case(b"content-length") && h.value.iter().any(|&b| b != b'0') {
            return None;
        }
    }
    let uri = Uri::try_from(req.path?).ok()?;
    Some(LeanHead {
        method: Method::GET,
        uri,
    })
}

/// The `http` request of a head that [`lean_candidate`] accepted; `None` when a header is
/// not valid (answered `400`).
pub(crate) fn to_request(head: &[u8], lean: LeanHead) -> Option<Request<()>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        map.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = lean.method;
    *request.uri_mut() = lean.uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = map;
    Some(request)
}

/// The status line and headers of `response`, with the framing of this connection:
/// `Content-Length` when the body's length is known, chunked otherwise, and
/// `Connection: close`. Returns the bytes and whether the body is chunked.
fn encode_head<B: Body>(response: &Response<B>) -> (Bytes, bool) {
    let status = response.status();
    let mut out = BytesMut::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(b" ");
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut has_length = false;
    for (name, value) in response.headers() {
        if name == TRANSFER_ENCODING || name == CONNECTION {
            continue;
        }
        if name == CONTENT_LENGTH {
            has_length = true;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let no_body = status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational();
    let chunked = if has_length || no_body {
        false
    } else if let Some(exact) = response.body().size_hint().exact() {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(exact.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        false
    } else {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        true
    };
    out.extend_from_slice(b"connection: close\r\n\r\n");
    (out.freeze(), chunked)
}

/// The chunk-size line of a chunk of `len` bytes.
fn chunk_head(len: usize) -> Bytes {
    Bytes::from(format!("{len:X}\r\n"))
}

const CRLF: &[u8] = b"\r\n";
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// One lean response in flight: the body's chunks go out through the WebSocket writer.
pub(crate) struct LeanResponse<B> {
    io: Io,
    body: Option<Pin<Box<B>>>,
    out: Outbox,
    /// Bytes handed to `out` since it was last empty (so it never takes more than
    /// about `BATCH_MAX` from the body while the socket is full).
    queued: usize,
    chunked: bool,
    /// The peer closed its side (or reset): stop.
    gone: bool,
    /// Shutting down: end once the body has nothing ready.
    ending: bool,
}

impl<B> LeanResponse<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    pub(crate) fn new(tcp: TcpStream, response: Response<B>) -> Self {
        let (head, chunked) = encode_head(&response);
        let no_body = matches!(
            response.status(),
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        );
        let mut out = Outbox::default();
        out.push(head);
        let body = (!no_body).then(|| Box::pin(response.into_body()));
        LeanResponse {
            io: Io::Tcp(tcp),
            body,
            out,
            queued: 0,
            chunked,
            gone: false,
            ending: false,
        }
    }

    /// Ends the response at shutdown: what the body has ready still goes out (an SSE body
    /// that ends on the app's shutdown signal writes its end, a gzip trailer say), then the
    /// last chunk; the body is not waited for.
    pub(crate) fn finish(&mut self) {
        self.ending = true;
    }

    /// Drops the body and queues the last chunk.
    fn end_body(&mut self) {
        if self.body.take().is_some() && self.chunked {
            self.out.push(Bytes::from_static(LAST_CHUNK));
        }
    }

    fn push_data(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.queued += data.len();
        if self.chunked {
            self.out.push(chunk_head(data.len()));
            self.out.push(data);
            self.out.push(Bytes::from_static(CRLF));
        } else {
            self.out.push(data);
        }
    }

    /// Notices a client that went away: its socket is readable and a read returns the end
    /// (or fails). Bytes it sends are read into a small stack buffer and dropped.
    fn poll_peer(&mut self, cx: &mut Context<'_>) {
        let Io::Tcp(tcp) = &self.io else {
            return;
        };
        let mut sink = [0u8; 64];
        for _ in 0..16 {
            match tcp.poll_read_ready(cx) {
                Poll::Pending => return,
                Poll::Ready(Err(_)) => {
                    self.gone = true;
                    return;
                }
                Poll::Ready(Ok(())) => {}
            }
            match tcp.try_read(&mut sink) {
                // Dropped; a `WouldBlock` cleared the readiness, the next poll registers.
                Ok(1..) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Ok(0) | Err(_) => {
                    self.gone = true;
                    return;
                }
            }
        }
        // A client that keeps sending: come back later rather than spin here.
        cx.waker().wake_by_ref();
    }

    /// Drives the response until it is sent (or the client is gone).
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            // Take what the body has ready, up to a batch.
            let mut full = false;
            while let Some(body) = self.body.as_mut() {
                if self.queued >= BATCH_MAX {
                    full = true;
                    break;
                }
                match body.as_mut().poll_frame(cx) {
                    Poll::Pending => {
                        if self.ending {
                            self.end_body();
                        }
                        break;
                    }
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data() {
                            self.push_data(data);
                        }
                    }
                    Poll::Ready(None) => self.end_body(),
                    Poll::Ready(Some(Err(e))) => {
                        let e: Box<dyn StdError + Send + Sync> = e.into();
                        tracing::debug!(error = %e, "lean response body failed; connection closed");
                        // No last chunk: the client sees an unfinished response.
                        return Poll::Ready(());
                    }
                }
            }
            let mut written = true;
            if !self.out.is_empty() {
                match self.out.poll_write(&mut self.io, cx) {
                    Poll::Ready(Ok(())) => self.queued = 0,
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => written = false,
                }
            }
            if self.body.is_none() && self.out.is_empty() {
                self.io.shutdown_now();
                return Poll::Ready(());
            }
            self.poll_peer(cx);
            if self.gone {
                return Poll::Ready(());
            }
            if full && written {
                // The batch went out; the body may have more ready.
                continue;
            }
            return Poll::Pending;
        }
    }
}

/// A socket with bytes already read from it in front: what hyper reads first are the bytes
/// the accept loop took to look at the request head.
pub(crate) struct Rewind {
    pre: Bytes,
    tcp: TcpStream,
}

impl Rewind {
    pub(crate) fn new(pre: Bytes, tcp: TcpStream) -> Self {
        Rewind { pre, tcp }
    }

    /// The socket and the bytes read ahead that nobody has read yet.
    pub(crate) fn into_parts(self) -> (Bytes, TcpStream) {
        (self.pre, self.tcp)
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.pre.is_empty() {
            let n = this.pre.len().min(buf.remaining());
            if let Some(head) = this.pre.get(..n) {
                buf.put_slice(head);
            }
            this.pre.advance(n);
            if this.pre.is_empty() {
                this.pre = Bytes::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Drives `response` to its end with `poll_drive`, as a future.
pub(crate) async fn drive<B>(response: &mut LeanResponse<B>)
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    std::future::poll_fn(|cx| {
        ready!(response.poll_drive(cx));
        Poll::Ready(())
    })
    .await;
}
