//! [`WebSocket`]: the server side of one connection, as handler code sees it (the
//! design is explained on the type).

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use armature_ws_core::{CloseCode, CloseFrame, Utf8Bytes, WebSocketMessage, encode_message};
use bytes::Bytes;
use futures_util::Stream;
use futures_util::future::Either;
use serde::Serialize;

use crate::config::WebSocketConfig;
use crate::connection::WebSocketConnection;
use crate::driver::Conn;
use crate::hub::{Hub, Permit};
use crate::io::{Io, RawStream};
use crate::queue::CloseRequest;
use crate::{Error, Result};

/// The server side of one WebSocket connection: a [`Stream`] of incoming messages, and
/// sending. Made by [`WebSocketUpgrade::on_upgrade`](crate::WebSocketUpgrade::on_upgrade).
///
/// Pings are answered with pongs by the socket itself (and still yielded, like pongs); a
/// close frame from the client is answered, yielded as [`WebSocketMessage::Close`], and the
/// stream then ends. A protocol error is yielded once as [`Error::Protocol`] after the socket
/// sent the close code ws-core gives (1002, 1007 or 1009); the stream then ends.
///
/// # One task per connection
///
/// The socket is both the stream of incoming messages and the writer of the connection's
/// send queue: every poll of [`WebSocket::recv`] (or of the `Stream`) first writes what other
/// tasks queued through [`WebSocketConnection`] handles (a room broadcast wakes the socket's
/// task through its waker), then reads. So the usual handler — a loop over incoming
/// messages that broadcasts to rooms — is the connection's only task: no reader task plus
/// writer task, no channel between them, no per-connection timer (the heartbeat is a
/// shared sweeper, see [`Hub`](crate::Hub)). An idle connection is that one small task, a
/// socket registration and the shared queue state; its read buffer exists only while bytes
/// are being decoded.
///
/// The price of that choice: queued frames go out while the handler awaits the socket (or
/// [`WebSocket::flush`]). A handler that awaits something slow between reads delays its
/// client's outgoing messages meanwhile; it should hand that work to another task, or
/// read in a `select!` with it.
///
/// Pongs to a client's pings wait behind what is already being written, at most 8 KiB of
/// them per connection: a client that floods pings without reading the pongs gets only the
/// pong to its latest ping once that bound is reached (RFC 6455 §5.5.3), so it cannot grow
/// the server's memory. Queued messages obey [`Backpressure`](crate::Backpressure).
///
/// When the handler returns (the socket is dropped) without a close handshake, a short task
/// finishes it: queued frames are written, a close frame 1000 goes out, and the TCP
/// connection is closed once the client answers or the close timeout passes.
///
/// ```no_run
/// use armature_ws::{WebSocket, WebSocketManager, WebSocketMessage};
///
/// async fn chat(mut socket: WebSocket, manager: &WebSocketManager) {
///     let room = manager.get_or_create_room("lobby").await;
///     let _ = room.add_connection(socket.id(), socket.connection()).await;
///     while let Some(Ok(message)) = socket.recv().await {
///         if let WebSocketMessage::Text(text) = message {
///             let _ = room.broadcast_text(text).await; // also written by this very loop
///         }
///     }
///     // Dropping the socket leaves every room.
/// }
/// ```
pub struct WebSocket {
    /// Boxed: the socket moves into handler futures (whose async-fn arguments and
    /// rebindings can keep more than one copy of it); a pointer keeps every copy small.
    conn: Option<Box<Conn>>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.conn {
            Some(conn) => f
                .debug_struct("WebSocket")
                .field("id", &conn.shared.id)
                .field("io", &conn.io)
                .field("close", &conn.close_state())
                .finish(),
            None => f.write_str("WebSocket(dropped)"),
        }
    }
}

impl WebSocket {
    pub(crate) fn start(
        io: Io,
        read_buf: Bytes,
        config: &WebSocketConfig,
        hub: &Hub,
        permit: Permit,
        protocol: Option<Box<str>>,
    ) -> Self {
        WebSocket {
            conn: Some(Box::new(Conn::new(
                io, read_buf, config, hub, permit, protocol,
            ))),
        }
    }

    /// Runs the WebSocket protocol on an already upgraded byte stream (for servers that do
    /// the HTTP handshake themselves). `read_buf` holds bytes already read past the
    /// handshake. Fails with `503` ([`Error::Http`]) past the hub's `max_connections`.
    pub fn from_stream(stream: impl RawStream, read_buf: Bytes, hub: &Hub) -> Result<Self> {
        let permit = hub.try_acquire().ok_or_else(too_many)?;
        Ok(Self::start(
            Io::Other(Box::new(stream)),
            read_buf,
            hub.config(),
            hub,
            permit,
            None,
        ))
    }

    /// [`WebSocket::from_stream`] for a plain TCP stream, on the lean path.
    pub fn from_tcp(stream: tokio::net::TcpStream, read_buf: Bytes, hub: &Hub) -> Result<Self> {
        let permit = hub.try_acquire().ok_or_else(too_many)?;
        Ok(Self::start(
            Io::Tcp(stream),
            read_buf,
            hub.config(),
            hub,
            permit,
            None,
        ))
    }

    fn conn(&mut self) -> Result<&mut Conn> {
        self.conn.as_deref_mut().ok_or(Error::Closed)
    }

    /// This connection's id.
    pub fn id(&self) -> &str {
        self.conn.as_ref().map_or("", |c| &c.shared.id)
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.conn.as_ref().and_then(|c| c.protocol.as_deref())
    }

    /// A handle other tasks can use to send to this client (cheap to clone).
    pub fn connection(&self) -> WebSocketConnection {
        match &self.conn {
            Some(conn) => WebSocketConnection::from_shared(conn.shared.clone()),
            None => {
                let (connection, receiver) = WebSocketConnection::new(String::new());
                drop(receiver);
                connection
            }
        }
    }

    /// The next message from the client; `None` once the connection has ended. Writes
    /// what is queued for the client while it waits.
    ///
    /// Cancel-safe: a message is only taken from the connection when it is returned, so
    /// `recv` can sit in a `tokio::select!` beside other work without losing one.
    pub async fn recv(&mut self) -> Option<Result<WebSocketMessage>> {
        poll_fn(|cx| match self.conn.as_mut() {
            Some(conn) => conn.poll_next(cx),
            None => Poll::Ready(None),
        })
        .await
    }

    /// Sends a message: it is queued behind what is already queued, and written at once
    /// unless more client messages are already buffered (then it goes out together with the
    /// replies to those, on the next [`recv`](WebSocket::recv)). Waits only while the
    /// client's queue is past its bound. A [`WebSocketMessage::Close`] starts the close
    /// handshake.
    ///
    /// (A plain function returning a small future rather than an `async fn`: the future
    /// lives inside every connection's task, so its size counts per connection.)
    pub fn send(
        &mut self,
        message: WebSocketMessage,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        match message {
            WebSocketMessage::Close(frame) => {
                let frame = frame.unwrap_or_else(|| CloseFrame::new(CloseCode::Normal, ""));
                Either::Left(self.close_with(frame))
            }
            other => Either::Right(self.send_frame(encode_message(&other))),
        }
    }

    /// Sends a text message (see [`WebSocket::send`]).
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<()> {
        self.send(WebSocketMessage::Text(text.into())).await
    }

    /// Sends a binary message (see [`WebSocket::send`]).
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<()> {
        self.send(WebSocketMessage::Binary(data.into())).await
    }

    /// Serialises `value` to JSON and sends it as text (see [`WebSocket::send`]).
    pub async fn send_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let json = serde_json::to_string(value)?;
        self.send(WebSocketMessage::Text(json.into())).await
    }

    /// Sends an already encoded frame (see [`WebSocket::send`]).
    pub fn send_frame(&mut self, frame: Bytes) -> impl Future<Output = Result<()>> + Send + '_ {
        let mut frame = Some(frame);
        poll_fn(move |cx| {
            let Some(conn) = self.conn.as_deref_mut() else {
                return Poll::Ready(Err(Error::Closed));
            };
            match conn.poll_room(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Ready(Ok(())) => {}
            }
            let Some(frame) = frame.take() else {
                return Poll::Ready(Ok(()));
            };
            if !conn.shared.push_control(frame) {
                return Poll::Ready(Err(Error::Closed));
            }
            if !conn.more_input_buffered() {
                // One non-blocking attempt; what does not fit goes out on the next poll.
                if let Poll::Ready(Err(err)) = conn.poll_flush_out(cx) {
                    return Poll::Ready(Err(err));
                }
            }
            Poll::Ready(Ok(()))
        })
    }

    /// Writes everything queued for the client.
    pub async fn flush(&mut self) -> Result<()> {
        let conn = self.conn()?;
        poll_fn(|cx| conn.poll_flush_out(cx)).await
    }

    /// Starts the close handshake: what is queued is written, then a close frame with
    /// `code` and `reason`. Keep reading: [`recv`](WebSocket::recv) yields the client's
    /// close (or the end) when the handshake is over.
    pub async fn close(
        &mut self,
        code: impl Into<CloseCode>,
        reason: impl Into<Utf8Bytes>,
    ) -> Result<()> {
        self.close_with(CloseFrame::new(code, reason)).await
    }

    fn close_with(&mut self, frame: CloseFrame) -> impl Future<Output = Result<()>> + Send + '_ {
        let mut frame = Some(frame);
        poll_fn(move |cx| {
            let Some(conn) = self.conn.as_deref_mut() else {
                return Poll::Ready(Err(Error::Closed));
            };
            if let Some(frame) = frame.take() {
                if !conn.shared.request_close(CloseRequest::Graceful(frame)) {
                    return Poll::Ready(Err(Error::Closed));
                }
            }
            conn.poll_flush_out(cx)
        })
    }
}

fn too_many() -> Error {
    Error::Http {
        status: 503,
        reason: "too many connections".to_owned(),
    }
}

impl Stream for WebSocket {
    type Item = Result<WebSocketMessage>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().conn.as_mut() {
            Some(conn) => conn.poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.finish_in_background();
        }
    }
}
