//! [`WebSocket`]: the server side of one connection, as handler code sees it, and its
//! halves [`WebSocketSender`] and [`WebSocketReader`] (the design is explained on the
//! type).

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use armature_ws_core::{CloseCode, CloseFrame, Utf8Bytes, WebSocketMessage, encode_message};
use bytes::Bytes;
use futures_util::{Sink, Stream};
use serde::Serialize;

use crate::connection::WebSocketConnection;
use crate::queue::{CloseRequest, Shared};
use crate::{Error, Result};

/// The server side of one WebSocket connection: a [`Stream`] of incoming messages and a
/// [`Sink`] of outgoing ones, with the usual helpers. Made by
/// [`WebSocketUpgrade::on_upgrade`](crate::WebSocketUpgrade::on_upgrade).
///
/// # The connection runs on its own
///
/// The task [`on_upgrade`](crate::WebSocketUpgrade::on_upgrade) spawns drives the socket
/// and polls the handler inside it: queued frames are written, pings answered, pongs read,
/// the heartbeat, idle timeout, close handshake and shutdown deadline honoured, whatever the
/// handler is awaiting (a sleep, a database call, a channel, nothing). A handler that only
/// sends, or awaits something slow between reads, keeps a healthy connection. Still one
/// task per connection, no timer and no read buffer per idle connection (the heartbeat is a
/// shared sweeper, see [`Hub`](crate::Hub)).
///
/// # Reading when the handler does not
///
/// Received messages go to a small inbox ([`WebSocketConfig::inbox_capacity`](crate::WebSocketConfig::inbox_capacity),
/// 16 messages or 64 KiB by default; one larger message always fits). When it is full the
/// connection stops reading the socket, so the client meets TCP back-pressure and cannot
/// grow the server's memory; writing goes on. Reading resumes as soon as the handler takes a
/// message. While reading is paused:
///
/// - control frames the client sends after the message that did not fit stay unread in
///   the TCP stream (pings are answered, pongs and the client's close seen, once reading
///   resumes); the server's own pings, pongs and close frames are still written;
/// - the heartbeat neither pings nor times the connection out, and the idle timeout does
///   not run: a peer that still answers pings is never closed because its handler is slow;
/// - while the inbox is full but reading is not paused (control frames arriving), pings are
///   answered and pongs count for the heartbeat, but they are not added to the inbox.
///
/// Pings are answered with pongs by the connection itself (and still yielded, like pongs,
/// while the inbox has room); a close frame from the client is answered, yielded as
/// [`WebSocketMessage::Close`] (its code and reason: [`WebSocket::close_frame`]), and the
/// stream then ends. A protocol error is yielded once as [`Error::Protocol`] after the
/// connection sent the close code ws-core gives (1002, 1007 or 1009); the stream then ends.
///
/// Pongs to a client's pings wait behind what is already being written, at most 8 KiB of
/// them per connection: a client that floods pings without reading the pongs gets only the
/// pong to its latest ping once that bound is reached (RFC 6455 §5.5.3), so it cannot grow
/// the server's memory. Queued messages obey [`Backpressure`](crate::Backpressure).
///
/// # Closing
///
/// When every `WebSocket` value of the connection (and every half from
/// [`split`](WebSocket::split)) is dropped, the connection finishes on its own: queued
/// frames are written, a close frame 1000 goes out, and the TCP connection is closed once
/// the client answers or the close timeout passes. A handler's outcome can close it first
/// (see [`HandlerOutcome`](crate::HandlerOutcome)).
///
/// ```no_run
/// use armature_ws::{WebSocket, WebSocketManager, WebSocketMessage};
///
/// async fn chat(mut socket: WebSocket, manager: &WebSocketManager) {
///     let room = manager.get_or_create_room("lobby").await;
///     let _ = room.add_connection(socket.id(), socket.connection()).await;
///     while let Some(Ok(message)) = socket.recv().await {
///         match message {
///             WebSocketMessage::Text(text) => {
///                 let _ = room.broadcast_text(text).await;
///             }
///             WebSocketMessage::Close => break,
///             _ => {}
///         }
///     }
///     // Dropping the socket leaves every room.
/// }
/// ```
pub struct WebSocket {
    shared: Arc<Shared>,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let io = if self
            .shared
            .on_tcp
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            "Tcp(..)"
        } else {
            "Other(..)"
        };
        f.debug_struct("WebSocket")
            .field("id", &self.shared.id)
            .field("io", &format_args!("{io}"))
            .field("closing", &self.shared.is_closing())
            .finish()
    }
}

impl WebSocket {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        shared.socket_opened();
        WebSocket { shared }
    }

    /// This connection's id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.shared.protocol()
    }

    /// A handle other tasks can use to send to this client (cheap to clone).
    pub fn connection(&self) -> WebSocketConnection {
        WebSocketConnection::from_shared(self.shared.clone())
    }

    /// The close frame the client sent (code and reason), once it arrived: after
    /// [`recv`](WebSocket::recv) yielded [`WebSocketMessage::Close`]. `None` before, or when
    /// the client's close carried no code.
    pub fn close_frame(&self) -> Option<CloseFrame> {
        self.shared.peer_close()
    }

    /// Messages received and not yet taken with [`recv`](WebSocket::recv): at most the
    /// inbox capacity (plus a close).
    pub fn inbox_len(&self) -> usize {
        self.shared.inbox_len().0
    }

    /// The next message from the client; `None` once the connection has ended.
    ///
    /// Cancel-safe: a message is only taken from the inbox when it is returned, so `recv`
    /// can sit in a `tokio::select!` beside other work without losing one.
    pub fn recv(&mut self) -> impl Future<Output = Option<Result<WebSocketMessage>>> + Send + '_ {
        poll_fn(|cx| self.shared.poll_recv(cx))
    }

    /// Sends a message: it is queued behind what is already queued and written by the
    /// connection at once. Waits only while the client's queue is past its bound. A
    /// [`WebSocketMessage::Close`] starts the close handshake with code 1000 (see
    /// [`WebSocket::close`] for another code).
    ///
    /// (A plain function returning a small future rather than an `async fn`: the future
    /// lives inside every connection's task, so its size counts per connection.)
    pub fn send(
        &mut self,
        message: WebSocketMessage,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        send_message(&self.shared, message)
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
        send_frame(&self.shared, frame)
    }

    /// Waits until everything queued for the client so far has been written to the socket.
    pub async fn flush(&mut self) -> Result<()> {
        poll_fn(|cx| self.shared.poll_flushed(cx)).await
    }

    /// Starts the close handshake: what is queued is written, then a close frame with
    /// `code` and `reason` (cut to 123 bytes); returns once the close frame is written.
    /// Keep reading: [`recv`](WebSocket::recv) yields the client's close (or the end) when
    /// the handshake is over.
    pub async fn close(
        &mut self,
        code: impl Into<CloseCode>,
        reason: impl Into<Utf8Bytes>,
    ) -> Result<()> {
        close_with(&self.shared, CloseFrame::new(code, reason)).await
    }

    /// Splits the socket into a sender and a reader that can be used from different tasks
    /// (like `futures_util::StreamExt::split`, without a lock between them). The connection
    /// stays open until both halves are dropped.
    ///
    /// ```no_run
    /// use armature_ws::{WebSocket, WebSocketMessage};
    /// use futures_util::{SinkExt, StreamExt};
    ///
    /// async fn handler(socket: WebSocket) {
    ///     let (mut sender, mut reader) = socket.split();
    ///     let ticker = tokio::spawn(async move {
    ///         for n in 0.. {
    ///             if sender.send(WebSocketMessage::text(format!("tick {n}"))).await.is_err() {
    ///                 break;
    ///             }
    ///             tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    ///         }
    ///     });
    ///     while let Some(Ok(message)) = reader.next().await {
    ///         println!("got {message:?}");
    ///     }
    ///     ticker.abort();
    /// }
    /// ```
    pub fn split(self) -> (WebSocketSender, WebSocketReader) {
        let sender = WebSocketSender::new(self.shared.clone());
        let reader = WebSocketReader::new(self.shared.clone());
        drop(self);
        (sender, reader)
    }
}

fn send_message(
    shared: &Shared,
    message: WebSocketMessage,
) -> impl Future<Output = Result<()>> + Send + '_ {
    let mut message = Some(message);
    poll_fn(move |cx| {
        if let Some(WebSocketMessage::Close) = &message {
            message = None;
            let frame = CloseFrame::new(CloseCode::Normal, "");
            if !shared.request_close(CloseRequest::Graceful(frame)) {
                return Poll::Ready(Err(Error::Closed));
            }
        }
        if message.is_none() {
            return shared.poll_close_sent(cx).map(Ok);
        }
        match shared.poll_room(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            Poll::Ready(Ok(())) => {}
        }
        let Some(message) = message.take() else {
            return Poll::Ready(Ok(()));
        };
        if shared.push_own(encode_message(&message)) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Ready(Err(Error::Closed))
        }
    })
}

fn send_frame(shared: &Shared, frame: Bytes) -> impl Future<Output = Result<()>> + Send + '_ {
    let mut frame = Some(frame);
    poll_fn(move |cx| {
        match shared.poll_room(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            Poll::Ready(Ok(())) => {}
        }
        let Some(frame) = frame.take() else {
            return Poll::Ready(Ok(()));
        };
        if shared.push_own(frame) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Ready(Err(Error::Closed))
        }
    })
}

async fn close_with(shared: &Shared, frame: CloseFrame) -> Result<()> {
    if !shared.request_close(CloseRequest::Graceful(frame)) {
        return Err(Error::Closed);
    }
    poll_fn(|cx| shared.poll_close_sent(cx)).await;
    Ok(())
}

impl Stream for WebSocket {
    type Item = Result<WebSocketMessage>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.shared.poll_recv(cx)
    }
}

impl Sink<WebSocketMessage> for WebSocket {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared.poll_room(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: WebSocketMessage) -> Result<()> {
        start_send(&self.shared, message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared.poll_flushed(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        poll_sink_close(&self.shared, cx)
    }
}

fn start_send(shared: &Shared, message: WebSocketMessage) -> Result<()> {
    match message {
        WebSocketMessage::Close => {
            let frame = CloseFrame::new(CloseCode::Normal, "");
            if shared.request_close(CloseRequest::Graceful(frame)) {
                Ok(())
            } else {
                Err(Error::Closed)
            }
        }
        other => {
            if shared.push_own(encode_message(&other)) {
                Ok(())
            } else {
                Err(Error::Closed)
            }
        }
    }
}

fn poll_sink_close(shared: &Shared, cx: &mut Context<'_>) -> Poll<Result<()>> {
    let _ = shared.request_close(CloseRequest::Graceful(CloseFrame::new(
        CloseCode::Normal,
        "",
    )));
    shared.poll_close_sent(cx).map(Ok)
}

impl Drop for WebSocket {
    fn drop(&mut self) {
        self.shared.socket_dropped();
    }
}

/// The sending half of a [`WebSocket`] from [`WebSocket::split`]: a
/// [`Sink<WebSocketMessage>`](Sink) plus the socket's send helpers. Sends wait only while
/// the client's queue is past its bound; the connection writes them whatever the other half
/// does.
pub struct WebSocketSender {
    shared: Arc<Shared>,
}

impl fmt::Debug for WebSocketSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketSender")
            .field("id", &self.shared.id)
            .finish()
    }
}

impl WebSocketSender {
    fn new(shared: Arc<Shared>) -> Self {
        shared.socket_opened();
        WebSocketSender { shared }
    }

    /// This connection's id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// A handle other tasks can use to send to this client (cheap to clone).
    pub fn connection(&self) -> WebSocketConnection {
        WebSocketConnection::from_shared(self.shared.clone())
    }

    /// Sends a message (see [`WebSocket::send`]).
    pub fn send(
        &mut self,
        message: WebSocketMessage,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        send_message(&self.shared, message)
    }

    /// Sends a text message (see [`WebSocket::send`]).
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<()> {
        send_message(&self.shared, WebSocketMessage::Text(text.into())).await
    }

    /// Sends a binary message (see [`WebSocket::send`]).
    pub async fn send_binary(&mut self, data: impl Into<Bytes>) -> Result<()> {
        send_message(&self.shared, WebSocketMessage::Binary(data.into())).await
    }

    /// Serialises `value` to JSON and sends it as text (see [`WebSocket::send`]).
    pub async fn send_json<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let json = serde_json::to_string(value)?;
        send_message(&self.shared, WebSocketMessage::Text(json.into())).await
    }

    /// Sends an already encoded frame (see [`WebSocket::send`]).
    pub fn send_frame(&mut self, frame: Bytes) -> impl Future<Output = Result<()>> + Send + '_ {
        send_frame(&self.shared, frame)
    }

    /// Starts the close handshake (see [`WebSocket::close`]).
    pub async fn close(
        &mut self,
        code: impl Into<CloseCode>,
        reason: impl Into<Utf8Bytes>,
    ) -> Result<()> {
        close_with(&self.shared, CloseFrame::new(code, reason)).await
    }
}

impl Sink<WebSocketMessage> for WebSocketSender {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared.poll_room(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: WebSocketMessage) -> Result<()> {
        start_send(&self.shared, message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        self.shared.poll_flushed(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        poll_sink_close(&self.shared, cx)
    }
}

impl Drop for WebSocketSender {
    fn drop(&mut self) {
        self.shared.socket_dropped();
    }
}

/// The receiving half of a [`WebSocket`] from [`WebSocket::split`]: a [`Stream`] of the
/// client's messages (see [`WebSocket::recv`]).
pub struct WebSocketReader {
    shared: Arc<Shared>,
}

impl fmt::Debug for WebSocketReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketReader")
            .field("id", &self.shared.id)
            .finish()
    }
}

impl WebSocketReader {
    fn new(shared: Arc<Shared>) -> Self {
        shared.socket_opened();
        WebSocketReader { shared }
    }

    /// This connection's id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The next message from the client (see [`WebSocket::recv`]).
    pub fn recv(&mut self) -> impl Future<Output = Option<Result<WebSocketMessage>>> + Send + '_ {
        poll_fn(|cx| self.shared.poll_recv(cx))
    }

    /// The close frame the client sent (see [`WebSocket::close_frame`]).
    pub fn close_frame(&self) -> Option<CloseFrame> {
        self.shared.peer_close()
    }
}

impl Stream for WebSocketReader {
    type Item = Result<WebSocketMessage>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.shared.poll_recv(cx)
    }
}

impl Drop for WebSocketReader {
    fn drop(&mut self) {
        self.shared.socket_dropped();
    }
}
