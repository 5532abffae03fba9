//! [`WebSocket`]: the server side of one connection, as handler code sees it.
//!
//! # One task per connection
//!
//! The socket is both the stream of incoming messages and the writer of the connection's
//! send queue: every poll of [`WebSocket::recv`] (or of the `Stream`) first writes what other
//! tasks queued through [`WebSocketConnection`] handles (a room broadcast wakes the socket's
//! task through its waker), then reads. So the usual handler — a loop over incoming
//! messages that broadcasts to rooms — is the connection's only task: no reader task plus
//! writer task, no channel between them, no per-connection timer (the heartbeat is a
//! shared sweeper, see [`Hub`](crate::Hub)). An idle connection is that one small task, a
//! socket registration and the shared queue state; its read buffer exists only while bytes
//! are being decoded.
//!
//! The price of that choice: queued frames go out while the handler awaits the socket (or
//! [`WebSocket::flush`]). A handler that awaits something slow between reads delays its
//! client's outgoing messages meanwhile; it should hand that work to another task, or
//! read in a `select!` with it.
//!
//! When the handler returns (the socket is dropped) without a close handshake, a short task
//! finishes it: queued frames are written, a close frame 1000 goes out, and the TCP
//! connection is closed once the client answers or the close timeout passes.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use armature_ws_core::{
    CloseCode, CloseFrame, CloseHandshake, Decoder, Utf8Bytes, WebSocketMessage, encode_close,
    encode_message,
};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use futures_util::future::Either;
use serde::Serialize;

use crate::clock::now_ms;
use crate::config::WebSocketConfig;
use crate::connection::WebSocketConnection;
use crate::hub::{Hub, Permit, Registration};
use crate::io::{Io, RawStream};
use crate::queue::{CloseRequest, Limits, Shared};
use crate::stats::Stats;
use crate::writer::{Outbox, TAKE_BUDGET};
use crate::{Error, Result};

/// The server side of one WebSocket connection: a [`Stream`] of incoming messages, and
/// sending. Made by [`WebSocketUpgrade::on_upgrade`](crate::WebSocketUpgrade::on_upgrade).
///
/// Pings are answered with pongs by the socket itself (and still yielded, like pongs); a
/// close frame from the client is answered, yielded as [`WebSocketMessage::Close`], and the
/// stream then ends. A protocol error is yielded once as [`Error::Protocol`] after the socket
/// sent the close code ws-core gives (1002, 1007 or 1009); the stream then ends.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading and writing.
    Open,
    /// Writing what is left (a close frame), then dropping the connection.
    Finishing,
    /// The connection is gone.
    Done,
}

/// The connection state, owned by whatever polls the socket.
struct Conn {
    io: Io,
    shared: Arc<Shared>,
    decoder: Decoder,
    rbuf: BytesMut,
    out: Outbox,
    /// Allocated when the closing handshake starts: most of a connection's life has none.
    close: Option<Box<CloseHandshake>>,
    registration: Option<Registration>,
    protocol: Option<Box<str>>,
    read_chunk: u32,
    close_timeout_ms: u32,
    phase: Phase,
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
        let limits = Limits {
            max_queue_bytes: config.max_queue_bytes,
            backpressure: config.backpressure,
        };
        let shared = Arc::new(Shared::new(
            Arc::from(hub.next_id()),
            limits,
            hub.stats_handle(),
        ));
        let registration = hub.register(permit, shared.clone());
        let rbuf = if read_buf.is_empty() {
            BytesMut::new()
        } else {
            // Copy: the leftover is a slice of hyper's 8 KiB read buffer, which would stay
            // alive otherwise.
            BytesMut::from(&read_buf[..])
        };
        WebSocket {
            conn: Some(Box::new(Conn {
                io,
                shared,
                decoder: Decoder::new(config.core_config()),
                rbuf,
                out: Outbox::default(),
                close: None,
                registration: Some(registration),
                protocol,
                read_chunk: u32::try_from(config.read_chunk).unwrap_or(u32::MAX),
                close_timeout_ms: u32::try_from(config.close_timeout.as_millis())
                    .unwrap_or(u32::MAX),
                phase: Phase::Open,
            })),
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
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if conn.phase == Phase::Done {
            return;
        }
        if conn.close_state() == armature_ws_core::CloseState::Open {
            conn.shared
                .request_close(CloseRequest::Graceful(CloseFrame::new(
                    CloseCode::Normal,
                    "",
                )));
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return; // `conn` drops here: the connection just ends.
        };
        let deadline = Duration::from_millis(u64::from(conn.close_timeout_ms));
        handle.spawn(async move {
            let drain = poll_fn(|cx| {
                loop {
                    match conn.poll_next(cx) {
                        Poll::Ready(None) => return Poll::Ready(()),
                        Poll::Ready(Some(_)) => continue,
                        Poll::Pending => return Poll::Pending,
                    }
                }
            });
            let _ = tokio::time::timeout(deadline, drain).await;
        });
    }
}

impl Conn {
    fn close_state(&self) -> armature_ws_core::CloseState {
        self.close
            .as_ref()
            .map_or(armature_ws_core::CloseState::Open, |c| c.state())
    }

    fn close_sent(&self) -> bool {
        self.close.as_ref().is_some_and(|c| c.is_close_sent())
    }

    fn close_mut(&mut self) -> &mut CloseHandshake {
        self.close.get_or_insert_with(Box::default)
    }

    /// True when the read buffer may hold another message to decode.
    fn more_input_buffered(&self) -> bool {
        !self.rbuf.is_empty()
    }

    fn release_rbuf_if_empty(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            self.rbuf = BytesMut::new();
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<WebSocketMessage>>> {
        loop {
            if self.phase == Phase::Done {
                return Poll::Ready(None);
            }
            self.shared.register(cx.waker());
            if let Some(abort) = self.shared.take_abort() {
                self.abort(abort, cx);
                return Poll::Ready(None);
            }
            if self.phase == Phase::Open && !self.rbuf.is_empty() {
                match self.decoder.decode(&mut self.rbuf) {
                    Ok(Some(message)) => {
                        self.release_rbuf_if_empty();
                        if let Some(message) = self.on_message(message) {
                            return Poll::Ready(Some(Ok(message)));
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(err) => {
                        Stats::bump(&self.shared.stats.protocol_errors);
                        self.rbuf = BytesMut::new();
                        self.take_queued();
                        self.send_close_frame(CloseFrame::new(err.close_code(), ""));
                        self.phase = Phase::Finishing;
                        return Poll::Ready(Some(Err(Error::Protocol(err.to_string()))));
                    }
                }
            }
            match self.poll_flush_out(cx) {
                Poll::Ready(Err(err)) => {
                    self.end();
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(Ok(())) if self.phase == Phase::Finishing => {
                    self.end();
                    return Poll::Ready(None);
                }
                _ if self.phase == Phase::Finishing => return Poll::Pending,
                _ => {}
            }
            match self
                .io
                .poll_read_into(cx, &mut self.rbuf, self.read_chunk as usize)
            {
                Poll::Ready(Ok(0)) => {
                    self.end();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(_)) => {
                    self.shared.last_rx.store(now_ms(), Ordering::Release);
                }
                Poll::Ready(Err(err)) => {
                    self.end();
                    return Poll::Ready(Some(Err(Error::Io(err))));
                }
                Poll::Pending => {
                    self.release_rbuf_if_empty();
                    return Poll::Pending;
                }
            }
        }
    }

    /// Handles control frames; returns what the handler sees.
    fn on_message(&mut self, message: WebSocketMessage) -> Option<WebSocketMessage> {
        match &message {
            WebSocketMessage::Ping(data) => {
                if !self.close_sent() {
                    self.out
                        .push(encode_message(&WebSocketMessage::Pong(data.clone())));
                }
            }
            WebSocketMessage::Pong(_) => {}
            WebSocketMessage::Text(_) | WebSocketMessage::Binary(_) => {
                self.shared.last_msg.store(now_ms(), Ordering::Release);
            }
            WebSocketMessage::Close(frame) => {
                if let Some(reply) = self.close_mut().on_close_received(frame.clone()) {
                    self.take_queued();
                    self.send_close_frame(reply);
                }
                self.shared.mark_closing();
                self.phase = Phase::Finishing;
            }
        }
        Some(message)
    }

    /// Moves everything queued (messages the handler already sent, frames queued through
    /// handles) behind what is being written, so it goes out before our close frame.
    fn take_queued(&mut self) {
        if !self.close_sent() {
            self.shared.mark_closing();
            let _ = self.shared.take_into(&mut self.out.segs, usize::MAX);
        }
    }

    /// Queues our close frame, unless one was sent already.
    fn send_close_frame(&mut self, frame: CloseFrame) {
        let bytes = encode_close(Some(&frame));
        if self.close_mut().on_close_sent(Some(frame)) {
            self.out.push(bytes);
            self.shared.mark_closing();
            self.shared.close_sent.store(now_ms(), Ordering::Release);
        }
    }

    /// Drops the connection, after one non-blocking attempt to write a close frame.
    fn abort(&mut self, frame: Option<CloseFrame>, cx: &mut Context<'_>) {
        self.out.clear_unstarted();
        if let Some(frame) = frame {
            if !self.out.is_partial() {
                self.send_close_frame(frame);
            }
            let _ = self.out.poll_write(&mut self.io, cx);
        }
        self.end();
    }

    /// Waits until the client's queue (shared and local) is under its bound.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if self.phase != Phase::Open || self.close_sent() {
            return Poll::Ready(Err(Error::Closed));
        }
        let pending = self.shared.queued_bytes() + self.out.bytes();
        if pending <= self.shared.max_queue_bytes() {
            return Poll::Ready(Ok(()));
        }
        self.poll_flush_out(cx)
    }

    /// Writes queued frames until all are out (`Ready(Ok)`) or the socket is full.
    fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            if self.out.is_empty() {
                if self.phase != Phase::Open || self.close_sent() {
                    return Poll::Ready(Ok(()));
                }
                self.shared.register(cx.waker());
                let taken = self.shared.take_into(&mut self.out.segs, TAKE_BUDGET);
                if let Some(CloseRequest::Graceful(frame) | CloseRequest::Abort(frame)) =
                    taken.close
                {
                    self.send_close_frame(frame);
                }
                if self.out.is_empty() {
                    self.out.release();
                    return self.io.poll_flush(cx).map_err(Error::Io);
                }
            }
            match self.out.poll_write(&mut self.io, cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(Error::Io(err))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The connection is over: frees everything, leaves the rooms, releases the slot.
    fn end(&mut self) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        self.io.shutdown_now();
        self.rbuf = BytesMut::new();
        self.out.release();
        self.shared.finish();
        self.registration = None;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.end();
    }
}
