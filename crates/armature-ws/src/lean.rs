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
//!   chunks, what is ready copied into one write buffer per loop turn (one system call, as
//!   the WebSocket writer coalesces small frames), on a task of its own. Such a connection
//!   holds its socket, a small task and the body — no hyper connection, none of hyper's
//!   8 KiB read and write buffers, no buffer at all while idle. A client that goes away is
//!   noticed by read readiness and a 64-byte read on the stack, no read buffer.
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

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HeaderName, HeaderValue, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use tokio::sync::watch;

use crate::writer::BATCH_MAX;

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
    /// The body of a lean response. `Unpin`, so a response keeps it in place rather than
    /// in a box of its own (`Pin<Box<B>>` is a body that is `Unpin`, for one that is not).
    type Body: Body<Data = Bytes> + Unpin + Send + 'static;
    /// The future of a lean response.
    type Future: Future<Output = Response<Self::Body>> + Send + 'static;

    /// True when `method path` is answered on the lean path.
    fn is_lean(&self, method: &Method, path: &str) -> bool;

    /// The response to `request`.
    fn respond(&self, request: Request<()>) -> Self::Future;

    /// Runs `poll`: one poll of a connection hyper serves (every request the lean path does
    /// not take), inside whatever scope the server wants around it. An SSE server holds its
    /// broadcasts there (`armature_sse::in_turn`), so what the pipelined `POST /publish`
    /// requests hyper answers in one poll broadcast reaches each client as one run. The
    /// default runs `poll` as it is.
    fn around_poll<R>(&self, poll: impl FnOnce() -> R) -> R {
        poll()
    }
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
fn encode_head<B: Body>(response: &Response<B>) -> (BytesMut, bool) {
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
    (out, chunked)
}

const CRLF: &[u8] = b"\r\n";
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends `n` in upper-case hexadecimal, no leading zeros (a chunk-size line).
fn put_hex(buf: &mut BytesMut, n: usize) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let nibbles = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for i in (0..nibbles).rev() {
        let digit = (n >> (i * 4)) & 0xF;
        buf.put_u8(DIGITS.get(digit).copied().unwrap_or(b'0'));
    }
}

/// First reservation of a response's write buffer when something is to be written: enough
/// for a run of small events (it grows up to about [`BATCH_MAX`]).
const WRITE_CHUNK: usize = 512;

/// One lean response in flight.
///
/// What the body has ready is copied, each event framed as its own chunk (size line, the
/// event's bytes, CRLF), into one write buffer and written with one system call per loop
/// turn: a client that is sent ten events between two of its polls costs one `write`, not
/// thirty small buffers. The buffer exists only while something is unwritten, so an idle
/// client holds its socket, its body and a few flags, no buffer.
pub(crate) struct LeanResponse<B> {
    tcp: TcpStream,
    body: Option<B>,
    /// What is not written yet; empty (no allocation) once everything is out. The body is
    /// not polled while it holds [`BATCH_MAX`] bytes or more, so a client whose socket is
    /// full leaves its events in its bounded queue, where its slow-client policy applies.
    buf: BytesMut,
    chunked: bool,
    /// The peer closed its side (or reset): stop.
    gone: bool,
    /// Shutting down: end once the body has nothing ready.
    ending: bool,
    /// Events arrived and the write was put off to the next turn of the scheduler (see
    /// [`poll_drive`](Self::poll_drive)).
    corked: bool,
}

impl<B> LeanResponse<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    pub(crate) fn new(tcp: TcpStream, response: Response<B>) -> Self {
        let (head, chunked) = encode_head(&response);
        let no_body = matches!(
            response.status(),
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        );
        let body = (!no_body).then(|| response.into_body());
        LeanResponse {
            tcp,
            body,
            buf: head,
            chunked,
            gone: false,
            ending: false,
            corked: false,
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
            self.buf.extend_from_slice(LAST_CHUNK);
        }
    }

    /// Copies `data` into the write buffer, framed as a chunk when the body is chunked.
    fn push_data(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let framing = if self.chunked { 16 + 2 * CRLF.len() } else { 0 };
        let need = data.len() + framing;
        if self.buf.capacity() - self.buf.len() < need {
            self.buf.reserve(need.max(WRITE_CHUNK));
        }
        if self.chunked {
            put_hex(&mut self.buf, data.len());
            self.buf.extend_from_slice(CRLF);
            self.buf.extend_from_slice(data);
            self.buf.extend_from_slice(CRLF);
        } else {
            self.buf.extend_from_slice(data);
        }
    }

    /// Writes the buffer until it is empty (`Ready(Ok)`, the buffer freed) or the socket is
    /// full (`Pending`).
    fn poll_write_buf(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.buf.is_empty() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.buf))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.buf.advance(n);
        }
        self.buf = BytesMut::new();
        Poll::Ready(Ok(()))
    }

    /// Best-effort: sends FIN so the client sees the end before the socket is dropped.
    fn shutdown_now(&mut self) {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let _ = Pin::new(&mut self.tcp).poll_shutdown(&mut cx);
    }

    /// Notices a client that went away: its socket is readable and a read returns the end
    /// (or fails). Bytes it sends are read into a small stack buffer and dropped.
    fn poll_peer(&mut self, cx: &mut Context<'_>) {
        let mut sink = [0u8; 64];
        for _ in 0..16 {
            match self.tcp.poll_read_ready(cx) {
                Poll::Pending => return,
                Poll::Ready(Err(_)) => {
                    self.gone = true;
                    return;
                }
                Poll::Ready(Ok(())) => {}
            }
            match self.tcp.try_read(&mut sink) {
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
    ///
    /// Events that find nothing waiting to be written are not written at once: the task
    /// wakes itself and writes on its next poll, after the tasks already scheduled ran (a
    /// broadcast's publisher among them), so what they queue for this client meanwhile
    /// goes out in the same write — what uWebSockets calls corking until the end of the
    /// event-loop turn. One extra poll per write, never a timer; a full socket or shutdown
    /// writes as before.
    pub(crate) fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            let idle_before = self.buf.is_empty();
            // Take what the body has ready, up to a batch.
            let mut full = false;
            while let Some(body) = self.body.as_mut() {
                if self.buf.len() >= BATCH_MAX {
                    full = true;
                    break;
                }
                match Pin::new(body).poll_frame(cx) {
                    Poll::Pending => {
                        if self.ending {
                            self.end_body();
                        }
                        break;
                    }
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Ok(data) = frame.into_data() {
                            self.push_data(&data);
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
            if idle_before && !self.buf.is_empty() && !self.corked && !self.ending && !full {
                self.corked = true;
                cx.waker().wake_by_ref();
                self.poll_peer(cx);
                if self.gone {
                    return Poll::Ready(());
                }
                return Poll::Pending;
            }
            self.corked = false;
            let mut written = true;
            if !self.buf.is_empty() {
                match self.poll_write_buf(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => return Poll::Ready(()),
                    Poll::Pending => written = false,
                }
            }
            if self.body.is_none() && self.buf.is_empty() {
                self.shutdown_now();
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

/// The task of one lean response, spawned on its own once the response is known, so that
/// what the connection needed before (the request, the hyper builder, the service, the
/// head buffer's future) is not part of what a long-lived stream keeps: its socket, its
/// body, its write buffer (empty when idle) and the shutdown signal. At shutdown, what is
/// ready still goes out, then the last chunk.
///
/// A plain function returning an `async move` block (not an `async fn`): the block keeps
/// each captured value once, where an `async fn` also keeps a copy of its arguments.
#[allow(clippy::manual_async_fn)] // see above
pub(crate) fn run<B>(
    mut response: LeanResponse<B>,
    mut stop: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static
where
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    async move {
        // `stop` only ever turns `true`, so a change is the signal (`wait_for` would keep
        // a larger future in every idle client's task); `Err`: the server is gone.
        let stopped = tokio::select! {
            () = std::future::poll_fn(|cx| response.poll_drive(cx)) => false,
            changed = stop.changed() => changed.is_ok(),
        };
        if stopped {
            response.finish();
            std::future::poll_fn(|cx| response.poll_drive(cx)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A body the size of the bench server's `ReceiverStream` (an `Arc`, a `Weak` and a key).
    struct Idle(#[allow(dead_code)] [usize; 3]);

    impl Body for Idle {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    async fn socket() -> TcpStream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, _) = tokio::join!(TcpStream::connect(addr), listener.accept());
        client.unwrap()
    }

    /// An idle lean response's task: tokio keeps it in one 128-byte-aligned cell (about 96
    /// bytes of its own plus the future, rounded up), so at or under 288 bytes of future it
    /// takes 384 bytes, not 512 (the connection's task before, with the hyper builder, the
    /// service and the head's future in it, took 1 KiB).
    #[tokio::test]
    async fn an_idle_lean_response_task_is_small() {
        let response = Response::new(Idle([0; 3]));
        let lean = LeanResponse::new(socket().await, response);
        assert!(!lean.buf.is_empty(), "the head waits to be written");
        let (_tx, rx) = watch::channel(false);
        let state = size_of::<LeanResponse<Idle>>();
        // 32 (socket) + 32 (write buffer) + 32 (this body: no niche, so `Option` adds a word)
        // + flags; the bench's `ReceiverStream` has a niche (96 bytes in all).
        // What counts is the release build; debug builds add a word to tokio's socket.
        let slack = if cfg!(debug_assertions) { 64 } else { 0 };
        assert!(state <= 104 + slack, "lean response state is {state} bytes");
        let task = run(lean, rx);
        let size = size_of_val(&task);
        assert!(
            size <= 288 + slack,
            "lean response task future is {size} bytes (state {state})"
        );
    }

    /// A body fed by the test.
    #[derive(Clone, Default)]
    struct Fed(std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Bytes>>>);

    impl Body for Fed {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            match self.0.lock().unwrap().pop_front() {
                Some(b) => Poll::Ready(Some(Ok(http_body::Frame::data(b)))),
                None => Poll::Pending,
            }
        }
    }

    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// An event that finds nothing unwritten waits one scheduler turn (the task wakes
    /// itself), and what arrives meanwhile goes out in the same write.
    #[tokio::test]
    async fn events_wait_one_turn_and_go_out_together() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let mut client = client.unwrap();
        let body = Fed::default();
        let mut lean = LeanResponse::new(accepted.unwrap().0, Response::new(body.clone()));
        let count = std::sync::Arc::new(Count::default());
        let waker = std::task::Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        // The head goes out at once.
        assert!(lean.poll_drive(&mut cx).is_pending());
        assert!(lean.buf.is_empty());
        let woken = count.0.load(std::sync::atomic::Ordering::SeqCst);
        body.0
            .lock()
            .unwrap()
            .push_back(Bytes::from_static(b"data: 1\n\n"));
        assert!(lean.poll_drive(&mut cx).is_pending());
        assert!(!lean.buf.is_empty(), "the first event waits a turn");
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), woken + 1);
        body.0
            .lock()
            .unwrap()
            .push_back(Bytes::from_static(b"data: 2\n\n"));
        assert!(lean.poll_drive(&mut cx).is_pending());
        assert!(lean.buf.is_empty(), "both went out");
        drop(lean);
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let got = String::from_utf8(got).unwrap();
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(
            got.ends_with("\r\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n"),
            "{got}"
        );
    }

    #[test]
    fn chunk_sizes_are_hex_without_leading_zeros() {
        for (n, text) in [
            (0, "0"),
            (9, "9"),
            (10, "A"),
            (255, "FF"),
            (0x10000, "10000"),
        ] {
            let mut buf = BytesMut::new();
            put_hex(&mut buf, n);
            assert_eq!(&buf[..], text.as_bytes());
        }
        let mut buf = BytesMut::new();
        put_hex(&mut buf, usize::MAX);
        assert_eq!(&buf[..], format!("{:X}", usize::MAX).as_bytes());
    }

    #[test]
    fn events_are_framed_as_chunks_in_one_buffer() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut lean = LeanResponse::new(socket().await, Response::new(Idle([0; 3])));
            assert!(lean.chunked);
            lean.buf = BytesMut::new();
            lean.push_data(b"data: a\n\n");
            lean.push_data(b"");
            lean.push_data(&[b'x'; 300]);
            lean.push_data(&[b'y'; 16]);
            let mut want = b"9\r\ndata: a\n\n\r\n12C\r\n".to_vec();
            want.extend_from_slice(&[b'x'; 300]);
            want.extend_from_slice(b"\r\n10\r\n");
            want.extend_from_slice(&[b'y'; 16]);
            want.extend_from_slice(b"\r\n");
            assert_eq!(&lean.buf[..], &want[..]);
            lean.end_body();
            assert!(lean.buf.ends_with(b"\r\n0\r\n\r\n"));
        });
    }
}
