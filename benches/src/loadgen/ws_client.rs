//! A WebSocket client connection for the generator: hyper performs the HTTP/1.1 upgrade,
//! then the raw `TcpStream` (with any bytes hyper read past the 101 response) is framed by
//! [`wire`](super::wire).

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf, BytesMut};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::deflate::{self, Inflater};
use super::system::connect_from;
use super::wire::{self, Frame, MaskSource, WireError};

/// The GUID of RFC 6455 §1.3.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Read buffer size; a read takes at most this much.
const READ_CHUNK: usize = 16 * 1024;

/// An open WebSocket client connection.
#[derive(Debug)]
pub struct WsConn {
    reader: WsReader,
    writer: WsWriter,
}

/// The receiving half of a [`WsConn`].
#[derive(Debug)]
pub struct WsReader {
    stream: OwnedReadHalf,
    read_buf: BytesMut,
    /// permessage-deflate, when the server accepted it: the inflating side and the buffer
    /// a compressed message is inflated into.
    inflater: Option<Box<(Inflater, Vec<u8>)>>,
}

/// The sending half of a [`WsConn`].
#[derive(Debug)]
pub struct WsWriter {
    stream: OwnedWriteHalf,
    write_buf: Vec<u8>,
    masks: MaskSource,
    /// permessage-deflate was negotiated: messages go out compressed (RSV1), through this
    /// scratch buffer.
    deflate: Option<Vec<u8>>,
}

/// The value of `Sec-WebSocket-Accept` a server must answer to `key`.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl WsConn {
    /// Connects from `source` to `server` and upgrades `path` to a WebSocket.
    pub async fn connect(
        source: Ipv4Addr,
        server: SocketAddr,
        path: &str,
        seed: u32,
    ) -> io::Result<Self> {
        Self::connect_with(source, server, path, seed, None).await
    }

    /// Opens `/graphql` with the `graphql-transport-ws` subprotocol, waits for
    /// `connection_ack` and subscribes (id `1`) to `query`.
    pub async fn connect_graphql(
        source: Ipv4Addr,
        server: SocketAddr,
        seed: u32,
        query: &str,
    ) -> io::Result<Self> {
        let mut conn = Self::connect_with(
            source,
            server,
            "/graphql",
            seed,
            Some("graphql-transport-ws"),
        )
        .await?;
        conn.queue(wire::OP_TEXT, br#"{"type":"connection_init"}"#);
        conn.flush().await?;
        let mut acked = false;
        while !acked {
            let read = conn
                .read_frames(|frame| {
                    if frame.opcode == wire::OP_TEXT
                        && frame.payload.windows(14).any(|w| w == b"connection_ack")
                    {
                        acked = true;
                    }
                })
                .await?;
            if read == 0 && !acked {
                return Err(other("closed before connection_ack"));
            }
        }
        let subscribe = serde_json::json!({
            "id": "1", "type": "subscribe", "payload": {"query": query}
        });
        conn.queue(wire::OP_TEXT, subscribe.to_string().as_bytes());
        conn.flush().await?;
        Ok(conn)
    }

    /// [`WsConn::connect`] asking for `protocol` (`Sec-WebSocket-Protocol`).
    pub async fn connect_with(
        source: Ipv4Addr,
        server: SocketAddr,
        path: &str,
        seed: u32,
        protocol: Option<&str>,
    ) -> io::Result<Self> {
        let tcp = connect_from(source, server).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(other)?;
        let driver = tokio::spawn(conn.with_upgrades());
        let nonce = seed.wrapping_mul(2_654_435_761).to_le_bytes();
        let key = STANDARD.encode([nonce, nonce, nonce, nonce].concat());
        let req = http::Request::get(path)
            .header(http::header::HOST, server.to_string())
            .header(http::header::UPGRADE, "websocket")
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::SEC_WEBSOCKET_KEY, &key)
            .header(http::header::SEC_WEBSOCKET_VERSION, "13");
        let req = match protocol {
            Some(protocol) => req.header(http::header::SEC_WEBSOCKET_PROTOCOL, protocol),
            None => req,
        };
        let req = if deflate::offered() {
            req.header(http::header::SEC_WEBSOCKET_EXTENSIONS, deflate::OFFER)
        } else {
            req
        }
        .body(Empty::<Bytes>::new())
        .map_err(other)?;
        let res = sender.send_request(req).await.map_err(other)?;
        if res.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            return Err(other(format!("GET {path}: status {}", res.status())));
        }
        let expected = accept_key(&key);
        let got = res.headers().get(http::header::SEC_WEBSOCKET_ACCEPT);
        if got.map(|v| v.as_bytes()) != Some(expected.as_bytes()) {
            return Err(other(format!("GET {path}: wrong Sec-WebSocket-Accept")));
        }
        let extensions = res
            .headers()
            .get(http::header::SEC_WEBSOCKET_EXTENSIONS)
            .map(|v| v.to_str().unwrap_or("?"));
        if extensions.is_some() && !deflate::offered() {
            return Err(other(format!("GET {path}: an extension nobody offered")));
        }
        let inflater =
            deflate::parse_answer(extensions).map_err(|e| other(format!("GET {path}: {e}")))?;
        let compressing = inflater.is_some();
        let upgraded = hyper::upgrade::on(res).await.map_err(other)?;
        let parts = upgraded
            .downcast::<TokioIo<TcpStream>>()
            .map_err(|_| other("upgraded connection is not the TCP stream"))?;
        driver.abort();
        let mut read_buf = BytesMut::with_capacity(READ_CHUNK);
        read_buf.extend_from_slice(&parts.read_buf);
        let (read_half, write_half) = parts.io.into_inner().into_split();
        Ok(Self {
            reader: WsReader {
                stream: read_half,
                read_buf,
                inflater: inflater.map(|i| Box::new((i, Vec::new()))),
            },
            writer: WsWriter {
                stream: write_half,
                write_buf: Vec::with_capacity(256),
                masks: MaskSource::new(seed),
                deflate: compressing.then(Vec::new),
            },
        })
    }

    /// Splits the connection so one task can read while another writes.
    pub fn into_split(self) -> (WsReader, WsWriter) {
        (self.reader, self.writer)
    }

    /// Queues one masked frame; it leaves with the next [`flush`](Self::flush).
    pub fn queue(&mut self, opcode: u8, payload: &[u8]) {
        self.writer.queue(opcode, payload);
    }

    /// Writes every queued frame in one `write_all`.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.writer.flush().await
    }

    /// See [`WsReader::read_frames`].
    pub async fn read_frames(&mut self, on_frame: impl FnMut(Frame<'_>)) -> io::Result<usize> {
        self.reader.read_frames(on_frame).await
    }

    /// Sends a close frame and shuts the write side down, ignoring errors (teardown).
    pub async fn close(self) {
        self.writer.close().await;
    }
}

impl WsWriter {
    /// Queues one masked frame; it leaves with the next [`flush`](Self::flush). With
    /// permessage-deflate a text or binary message goes out compressed.
    pub fn queue(&mut self, opcode: u8, payload: &[u8]) {
        let key = self.masks.next_key();
        let data = opcode == wire::OP_TEXT || opcode == wire::OP_BINARY;
        let compressed = match self.deflate.as_mut().filter(|_| data) {
            Some(scratch) => deflate::deflate(payload, scratch)
                .is_ok()
                .then_some(scratch),
            None => None,
        };
        match compressed {
            Some(packed) => wire::encode_masked_rsv(&mut self.write_buf, opcode, true, packed, key),
            None => wire::encode_masked(&mut self.write_buf, opcode, payload, key),
        }
    }

    /// Whether permessage-deflate was negotiated on this connection.
    pub fn is_compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Writes every queued frame in one `write_all`.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.write_buf.is_empty() {
            self.stream.write_all(&self.write_buf).await?;
            self.write_buf.clear();
        }
        Ok(())
    }

    /// Sends a close frame and shuts the write side down, ignoring errors (teardown).
    pub async fn close(mut self) {
        self.queue(wire::OP_CLOSE, &1000u16.to_be_bytes());
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}

impl WsReader {
    /// Waits for bytes, then hands every complete frame to `on_frame`; returns how many
    /// frames there were (zero means the server closed the connection). Ping and pong
    /// frames are passed on like the rest; the caller decides.
    pub async fn read_frames(&mut self, mut on_frame: impl FnMut(Frame<'_>)) -> io::Result<usize> {
        loop {
            let mut count = 0;
            let mut used = 0;
            loop {
                match wire::decode_ext(&self.read_buf[used..], self.inflater.is_some()) {
                    Ok(Some((frame, n, compressed))) => {
                        match (&mut self.inflater, compressed) {
                            (Some(state), true) => {
                                let (inflater, out) = &mut **state;
                                inflater.inflate(frame.payload, out)?;
                                on_frame(Frame {
                                    opcode: frame.opcode,
                                    payload: out,
                                });
                            }
                            _ => on_frame(frame),
                        }
                        used += n;
                        count += 1;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                }
            }
            self.read_buf.advance(used);
            if count > 0 {
                return Ok(count);
            }
            if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 4 {
                self.read_buf.reserve(READ_CHUNK);
            }
            if self.stream.read_buf(&mut self.read_buf).await? == 0 {
                return Ok(0);
            }
        }
    }
}

/// Whether a decode error is the kind of protocol violation the run should report.
pub fn is_protocol_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<WireError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_example() {
        // RFC 6455 §1.3
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
