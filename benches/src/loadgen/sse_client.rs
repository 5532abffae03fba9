//! Server-Sent Events subscribers (`GET /sse`) over a plain socket, and the publisher
//! (`POST /publish`) over hyper's HTTP/1.1 client.
//!
//! A subscriber is the cheapest client that still checks the protocol: the request written
//! by hand, the response head parsed with `httparse` (status `200`, `text/event-stream`),
//! the body de-chunked and split into events by the WHATWG rules (`data` lines joined,
//! comments and other fields skipped, an event per blank line) in the subscriber's own task
//! — no hyper connection task and no per-event stream adapters, so a thousand of them do
//! not make the generator the bottleneck of the SSE scenarios.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::{Buf, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::system::connect_from;

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Where the body decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Not chunked: the body runs until the server closes.
    Raw,
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, this many bytes left.
    Data(usize),
    /// The CRLF after a chunk's data.
    Crlf,
    /// The last chunk arrived.
    Done,
}

/// An open `GET /sse` stream.
#[derive(Debug)]
pub struct SseConn {
    stream: TcpStream,
    /// Bytes read, not yet de-chunked.
    raw: BytesMut,
    /// De-chunked body bytes, not yet split into events.
    body: BytesMut,
    framing: Framing,
    /// The `data` of the event being read.
    data: Vec<u8>,
    has_data: bool,
    eof: bool,
}

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

impl SseConn {
    /// Connects from `source` and opens `GET /sse`; returns once the response head (200,
    /// `text/event-stream`) has arrived.
    pub async fn connect(source: Ipv4Addr, server: SocketAddr) -> io::Result<Self> {
        let mut stream = connect_from(source, server).await?;
        let request =
            format!("GET /sse HTTP/1.1\r\nHost: {server}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = BytesMut::with_capacity(1024);
        let (head_len, chunked) = loop {
            if stream.read_buf(&mut raw).await? == 0 {
                return Err(other("GET /sse: closed before the response head"));
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut res = httparse::Response::new(&mut headers);
            match res.parse(&raw).map_err(other)? {
                httparse::Status::Partial if raw.len() > MAX_HEAD => {
                    return Err(other("GET /sse: response head too large"));
                }
                httparse::Status::Partial => continue,
                httparse::Status::Complete(n) => {
                    if res.code != Some(200) {
                        return Err(other(format!("GET /sse: status {:?}", res.code)));
                    }
                    let header = |name: &str| {
                        res.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| h.value)
                    };
                    if !header("content-type").is_some_and(|v| v.starts_with(b"text/event-stream"))
                    {
                        return Err(other("GET /sse: not text/event-stream"));
                    }
                    let chunked = header("transfer-encoding")
                        .is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"));
                    break (n, chunked);
                }
            }
        };
        raw.advance(head_len);
        Ok(Self {
            stream,
            raw,
            body: BytesMut::new(),
            framing: if chunked { Framing::Size } else { Framing::Raw },
            data: Vec::new(),
            has_data: false,
            eof: false,
        })
    }

    /// Moves what `raw` holds of the body into `body`.
    fn dechunk(&mut self) -> io::Result<()> {
        loop {
            match self.framing {
                Framing::Raw => {
                    let all = self.raw.split();
                    self.body.extend_from_slice(&all);
                    return Ok(());
                }
                Framing::Done => {
                    self.raw.clear();
                    return Ok(());
                }
                Framing::Size => {
                    let Some(end) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                        if self.raw.len() > 64 {
                            return Err(other("SSE: bad chunk size line"));
                        }
                        return Ok(());
                    };
                    let line = std::str::from_utf8(&self.raw[..end]).map_err(other)?;
                    let digits = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(digits, 16)
                        .map_err(|_| other(format!("SSE: bad chunk size {line:?}")))?;
                    self.raw.advance(end + 2);
                    self.framing = if size == 0 {
                        Framing::Done
                    } else {
                        Framing::Data(size)
                    };
                }
                Framing::Data(left) => {
                    if self.raw.is_empty() {
                        return Ok(());
                    }
                    let take = left.min(self.raw.len());
                    let part = self.raw.split_to(take);
                    self.body.extend_from_slice(&part);
                    self.framing = if take == left {
                        Framing::Crlf
                    } else {
                        Framing::Data(left - take)
                    };
                }
                Framing::Crlf => {
                    if self.raw.len() < 2 {
                        return Ok(());
                    }
                    if &self.raw[..2] != b"\r\n" {
                        return Err(other("SSE: chunk not followed by CRLF"));
                    }
                    self.raw.advance(2);
                    self.framing = Framing::Size;
                }
            }
        }
    }

    /// Hands the data of every complete event in `body` to `on_event`, in order, and drops
    /// what it read; an unfinished event stays. One pass over the bytes: a lone `data` line
    /// followed by its blank line (what the servers send) is handed over in place, no copy.
    fn take_events(&mut self, on_event: &mut impl FnMut(&[u8])) {
        let Self {
            body,
            data,
            has_data,
            ..
        } = self;
        let bytes = &body[..];
        let mut at = 0;
        while let Some(nl) = memchr::memchr(b'\n', &bytes[at..]) {
            let line_end = at + nl;
            let mut line = &bytes[at..line_end];
            at = line_end + 1;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.is_empty() {
                if *has_data {
                    *has_data = false;
                    on_event(data);
                    data.clear();
                }
                continue;
            }
            let (field, value) = match memchr::memchr(b':', line) {
                Some(0) => continue, // a comment
                Some(i) => {
                    let value = &line[i + 1..];
                    (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &b""[..]),
            };
            if field != b"data" {
                continue;
            }
            if !*has_data {
                // The common event: one data line, then the blank line.
                let rest = &bytes[at..];
                let blank = if rest.starts_with(b"\n") {
                    Some(1)
                } else if rest.starts_with(b"\r\n") {
                    Some(2)
                } else {
                    None
                };
                if let Some(blank) = blank {
                    on_event(value);
                    at += blank;
                    continue;
                }
            } else {
                data.push(b'\n');
            }
            data.extend_from_slice(value);
            *has_data = true;
        }
        body.advance(at);
    }

    /// Hands the data of every event already buffered to `on_event`, then waits for the
    /// next bytes from the server and hands over the events they complete. `Ok(false)` once
    /// the stream ended (after its last events). Cancel-safe: the only wait is the read, and
    /// nothing is taken from the buffers before it.
    pub async fn read_events(&mut self, mut on_event: impl FnMut(&[u8])) -> io::Result<bool> {
        self.dechunk()?;
        self.take_events(&mut on_event);
        if self.eof || self.framing == Framing::Done {
            return Ok(false);
        }
        if self.raw.capacity() - self.raw.len() < 1024 {
            self.raw.reserve(8 * 1024);
        }
        if self.stream.read_buf(&mut self.raw).await? == 0 {
            self.eof = true;
        }
        self.dechunk()?;
        self.take_events(&mut on_event);
        Ok(!(self.eof || self.framing == Framing::Done))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to a decoder a few bytes at a time; returns the events' data.
    async fn decode(wire: &[u8], chunked: bool, step: usize) -> Vec<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(TcpStream::connect(addr));
        let (server_side, _) = listener.accept().await.unwrap();
        let stream = client.await.unwrap().unwrap();
        let mut conn = SseConn {
            stream,
            raw: BytesMut::new(),
            body: BytesMut::new(),
            framing: if chunked { Framing::Size } else { Framing::Raw },
            data: Vec::new(),
            has_data: false,
            eof: false,
        };
        let mut out = Vec::new();
        let mut server_side = server_side;
        for piece in wire.chunks(step) {
            server_side.write_all(piece).await.unwrap();
            server_side.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        drop(server_side);
        while conn
            .read_events(|data| out.push(String::from_utf8_lossy(data).into_owned()))
            .await
            .unwrap()
        {}
        out
    }

    #[tokio::test]
    async fn chunked_events_split_anywhere() {
        let body: &[u8] =
            b"data: a\n\n: keep\nid: 7\ndata: b\r\n\r\ndata: x\ndata\r\n: y\n\ndata: z\n\n";
        let mut wire = Vec::new();
        for part in body.chunks(13) {
            wire.extend_from_slice(format!("{:X}\r\n", part.len()).as_bytes());
            wire.extend_from_slice(part);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        for step in [1, 2, 3, 7, 1000] {
            assert_eq!(
                decode(&wire, true, step).await,
                ["a", "b", "x\n", "z"],
                "step {step}"
            );
        }
    }

    #[tokio::test]
    async fn unchunked_body_runs_to_close() {
        assert_eq!(
            decode(b"data: one\n\ndata: two\n\n", false, 5).await,
            ["one", "two"]
        );
    }
}

/// A keep-alive connection that sends `POST /publish`.
#[derive(Debug)]
pub struct Publisher {
    sender: SendRequest<Full<Bytes>>,
    server: SocketAddr,
    driver: JoinHandle<()>,
}

impl Publisher {
    /// Connects from `source` to `server`.
    pub async fn connect(source: Ipv4Addr, server: SocketAddr) -> io::Result<Self> {
        let tcp = connect_from(source, server).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(other)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender,
            server,
            driver,
        })
    }

    /// Publishes one payload and waits for the `204`.
    pub async fn publish(&mut self, payload: Vec<u8>) -> io::Result<()> {
        self.sender.ready().await.map_err(other)?;
        let req = http::Request::post("/publish")
            .header(http::header::HOST, self.server.to_string())
            .body(Full::new(Bytes::from(payload)))
            .map_err(other)?;
        let res = self.sender.send_request(req).await.map_err(other)?;
        let status = res.status();
        // drain the (empty) body so the connection can be reused
        let _ = res.into_body().collect().await;
        if status == http::StatusCode::NO_CONTENT {
            Ok(())
        } else {
            Err(other(format!("POST /publish: status {status}")))
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// `POST /publish` on a plain keep-alive socket, pipelined: a batch of requests goes out in
/// one `write` and their `204`s are read back in order (heads parsed with `httparse`).
///
/// What the WebSocket publisher does with a batch of frames in one write, for SSE: the
/// server reads the requests together and can queue several events for a client before
/// that client's next write, as it can queue several WebSocket frames. One request per
/// event, each a real HTTP request. The SSE fan-out publishes with this one.
#[derive(Debug)]
pub struct PipelinedPublisher {
    stream: TcpStream,
    host: String,
    /// Requests of the batch being written.
    out: Vec<u8>,
    /// Response bytes read, not yet parsed.
    read: BytesMut,
}

impl PipelinedPublisher {
    /// Connects from `source` to `server`.
    pub async fn connect(source: Ipv4Addr, server: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            stream: connect_from(source, server).await?,
            host: server.to_string(),
            out: Vec::new(),
            read: BytesMut::with_capacity(4096),
        })
    }

    /// Publishes every payload of `payloads` (requests in one write) and waits for all
    /// their `204`s; any other status is an error.
    pub async fn publish_all(&mut self, payloads: &[Vec<u8>]) -> io::Result<()> {
        self.out.clear();
        for p in payloads {
            self.out
                .extend_from_slice(b"POST /publish HTTP/1.1\r\nhost: ");
            self.out.extend_from_slice(self.host.as_bytes());
            self.out.extend_from_slice(b"\r\ncontent-length: ");
            self.out.extend_from_slice(p.len().to_string().as_bytes());
            self.out.extend_from_slice(b"\r\n\r\n");
            self.out.extend_from_slice(p);
        }
        self.stream.write_all(&self.out).await?;
        let mut left = payloads.len();
        while left > 0 {
            left -= take_responses(&mut self.read, left)?;
            if left == 0 {
                break;
            }
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }
}

/// Takes up to `want` complete `204` responses from the front of `buf`; returns how many.
fn take_responses(buf: &mut BytesMut, want: usize) -> io::Result<usize> {
    let mut taken = 0;
    while taken < want {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        match res.parse(buf).map_err(other)? {
            httparse::Status::Complete(n) => {
                if res.code != Some(204) {
                    return Err(other(format!("POST /publish: status {:?}", res.code)));
                }
                // A 204 has no body.
                buf.advance(n);
                taken += 1;
            }
            httparse::Status::Partial => break,
        }
    }
    Ok(taken)
}

#[cfg(test)]
mod publisher_tests {
    use super::*;

    #[test]
    fn pipelined_responses_are_taken_in_order_even_when_split() {
        let one = b"HTTP/1.1 204 No Content\r\ndate: x\r\n\r\n";
        let mut all = Vec::new();
        for _ in 0..3 {
            all.extend_from_slice(one);
        }
        for cut in 0..all.len() {
            let mut buf = BytesMut::from(&all[..cut]);
            let mut got = take_responses(&mut buf, 3).unwrap();
            buf.extend_from_slice(&all[cut..]);
            got += take_responses(&mut buf, 3 - got).unwrap();
            assert_eq!(got, 3, "cut at {cut}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn another_status_is_an_error() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n"[..]);
        assert!(take_responses(&mut buf, 1).is_err());
    }
}
