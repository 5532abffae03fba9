//! Per-connection settings: limits, heartbeat, back-pressure.

use std::time::Duration;

use armature_ws_core::OriginPolicy;
use armature_ws_core::permessage_deflate::DeflateConfig;

use crate::rate::MessageRate;

/// What happens when a message is queued for a client whose send queue is full (the client
/// is not reading as fast as the server sends).
///
/// Whatever the policy, the queue never grows past
/// [`WebSocketConfig::max_queue_bytes`], and every decision is counted in
/// [`Stats`](crate::Stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backpressure {
    /// Close the slow client: its queue is freed at once, a close frame with code 1008
    /// (policy violation, reason `"send queue full"`) is written if the socket takes it, and
    /// the TCP connection is dropped. The default: one slow client never holds server memory
    /// and never delays the others.
    #[default]
    Close,
    /// Keep the client and drop the message that does not fit (counted in
    /// [`Stats::messages_dropped`](crate::StatsSnapshot::messages_dropped)). The client
    /// misses messages; use this only where that is acceptable (e.g. price ticks).
    DropNewest,
}

/// Settings of WebSocket connections: frame and message limits, send queue bound and
/// back-pressure policy, heartbeat and idle timeout, connection limit, shutdown deadline.
///
/// Every default is documented on its setter. Setters chain:
///
/// ```
/// use std::time::Duration;
/// use armature_ws::{Backpressure, WebSocketConfig};
///
/// let config = WebSocketConfig::default()
///     .max_message_size(1 << 20)
///     .max_queue_bytes(256 * 1024)
///     .backpressure(Backpressure::DropNewest)
///     .ping_interval(Some(Duration::from_secs(20)))
///     .max_connections(50_000);
/// assert_eq!(config.get_max_message_size(), 1 << 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebSocketConfig {
    pub(crate) max_frame_size: usize,
    pub(crate) max_message_size: usize,
    pub(crate) max_queue_bytes: usize,
    pub(crate) backpressure: Backpressure,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) read_chunk: usize,
    pub(crate) node_id: Option<String>,
    pub(crate) header_read_timeout: Option<Duration>,
    pub(crate) max_request_head_bytes: usize,
    pub(crate) origin_policy: OriginPolicy,
    pub(crate) inbox_messages: usize,
    pub(crate) inbox_bytes: usize,
    pub(crate) compression: Option<DeflateConfig>,
    pub(crate) message_rate: Option<MessageRate>,
}

/// The smallest request-head bound hyper accepts (its minimum read buffer).
const MIN_REQUEST_HEAD_BYTES: usize = 8192;

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            max_frame_size: 16 << 20,
            max_message_size: 64 << 20,
            max_queue_bytes: 1 << 20,
            backpressure: Backpressure::Close,
            ping_interval: Some(Duration::from_secs(30)),
            pong_timeout: Duration::from_secs(10),
            idle_timeout: None,
            close_timeout: Duration::from_secs(5),
            max_connections: 100_000,
            shutdown_timeout: Duration::from_secs(10),
            read_chunk: 4096,
            node_id: None,
            header_read_timeout: Some(Duration::from_secs(30)),
            max_request_head_bytes: 64 * 1024,
            origin_policy: OriginPolicy::default(),
            inbox_messages: 16,
            inbox_bytes: 64 * 1024,
            compression: None,
            message_rate: None,
        }
    }
}

impl WebSocketConfig {
    /// Largest frame payload accepted from a client; a bigger frame closes the connection
    /// with 1009. Default: 16 MiB.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Largest message (all fragments together) accepted from a client; a bigger one closes
    /// the connection with 1009. Default: 64 MiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Bound of each connection's send queue, in bytes of encoded frames waiting to be
    /// written. Past it the [`Backpressure`] policy applies. Default: 1 MiB.
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// What to do with a client whose send queue is full. Default: [`Backpressure::Close`].
    pub fn backpressure(mut self, policy: Backpressure) -> Self {
        self.backpressure = policy;
        self
    }

    /// How long a connection may stay silent before the server sends it a ping; `None`
    /// turns the heartbeat off. Default: 30 seconds.
    pub fn ping_interval(mut self, interval: Option<Duration>) -> Self {
        self.ping_interval = interval;
        self
    }

    /// How long the server waits for any frame after its ping before it closes the
    /// connection (code 1011, the peer has left its rooms). Default: 10 seconds.
    pub fn pong_timeout(mut self, timeout: Duration) -> Self {
        self.pong_timeout = timeout;
        self
    }

    /// Close a connection (code 1001, reason `"idle timeout"`) that has not received a text
    /// or binary message for this long; pings and pongs do not count. `None` (the default)
    /// never closes an idle connection that still answers pings.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// After the server sent its close frame, how long it waits for the client's close frame
    /// before it drops the TCP connection. Default: 5 seconds.
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Largest number of live WebSocket connections; an upgrade past it is answered `503`.
    /// Default: 100,000.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// On graceful shutdown, how long live connections get to flush their queues and
    /// complete the close handshake before the server stops waiting. Default: 10 seconds.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Size of the read buffer allocated when a socket becomes readable (it is released
    /// again once every byte is decoded, so an idle connection holds none). Default: 4 KiB.
    pub fn read_chunk(mut self, bytes: usize) -> Self {
        self.read_chunk = bytes.max(64);
        self
    }

    /// Prefix of every connection id made by this server, so that ids stay unique across
    /// server processes (e.g. behind a Redis broadcast transport). Default: a prefix made
    /// from the process id and start time, such as `"5e1a2f-"`.
    pub fn node_id(mut self, prefix: impl Into<String>) -> Self {
        self.node_id = Some(prefix.into());
        self
    }

    /// How long [`serve`](crate::serve) waits for a complete HTTP request head (request line
    /// and headers) on a new or kept-alive connection; a client that has not finished by then
    /// is disconnected without a response. A client that trickles a valid upgrade request
    /// and finishes in time is served. `None` waits forever (not recommended on a public
    /// port). Default: 30 seconds.
    pub fn header_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Largest HTTP request head (request line and headers) [`serve`](crate::serve) reads; a
    /// bigger one, or one with more than 100 headers, is answered
    /// `431 Request Header Fields Too Large` and the connection is closed. Values under
    /// 8 KiB (hyper's minimum) count as 8 KiB. Default: 64 KiB.
    pub fn max_request_head_bytes(mut self, bytes: usize) -> Self {
        self.max_request_head_bytes = bytes.max(MIN_REQUEST_HEAD_BYTES);
        self
    }

    /// Which pages may open a WebSocket (the `Origin` check, against cross-site WebSocket
    /// hijacking): a refused upgrade is answered `403` before anything else is looked at.
    /// Default: [`OriginPolicy::default`], the server's own origin only (same host and port
    /// as `Host`), requests without `Origin` (non-browser clients) allowed.
    pub fn origin_policy(mut self, policy: OriginPolicy) -> Self {
        self.origin_policy = policy;
        self
    }

    /// The `Origin` rules.
    pub fn get_origin_policy(&self) -> &OriginPolicy {
        &self.origin_policy
    }

    /// Bound of each connection's inbox: the messages received and not yet taken by the
    /// handler, at most `messages` of them and at most `bytes` of payload (one larger
    /// message still fits an empty inbox). When it is full the connection stops reading
    /// until the handler takes a message; see [`WebSocket`](crate::WebSocket) for what
    /// happens to control frames meanwhile. Default: 16 messages, 64 KiB.
    pub fn inbox_capacity(mut self, messages: usize, bytes: usize) -> Self {
        self.inbox_messages = messages.max(1);
        self.inbox_bytes = bytes.max(1);
        self
    }

    /// The inbox bound: (messages, payload bytes).
    pub fn get_inbox_capacity(&self) -> (usize, usize) {
        (self.inbox_messages, self.inbox_bytes)
    }

    /// The request-head read timeout of [`serve`](crate::serve).
    pub fn get_header_read_timeout(&self) -> Option<Duration> {
        self.header_read_timeout
    }

    /// The request-head size bound of [`serve`](crate::serve).
    pub fn get_max_request_head_bytes(&self) -> usize {
        self.max_request_head_bytes
    }

    /// The maximum frame size.
    pub fn get_max_frame_size(&self) -> usize {
        self.max_frame_size
    }

    /// The maximum message size.
    pub fn get_max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The send queue bound in bytes.
    pub fn get_max_queue_bytes(&self) -> usize {
        self.max_queue_bytes
    }

    /// The back-pressure policy.
    pub fn get_backpressure(&self) -> Backpressure {
        self.backpressure
    }

    /// The maximum number of live connections.
    pub fn get_max_connections(&self) -> usize {
        self.max_connections
    }

    /// The graceful shutdown deadline.
    pub fn get_shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout
    }

    /// permessage-deflate (RFC 7692), accepted when the client offers it (every browser
    /// does); `None` declines it. Default: `None`.
    ///
    /// - [`DeflateConfig::shared()`]: no context takeover on either side. One compressor
    ///   per worker thread serves every connection, a broadcast is compressed once for all
    ///   such members, and an idle connection holds no compression state.
    /// - [`DeflateConfig::dedicated(bits)`](DeflateConfig::dedicated): context takeover
    ///   with windows of `bits`: better ratios on streams of similar messages, for a
    ///   compressor and a decompressor per connection (see `docs/benchmarks.md`).
    ///
    /// Messages under [`DeflateConfig::min_size`] go uncompressed.
    ///
    /// ```
    /// use armature_ws::WebSocketConfig;
    /// use armature_ws::permessage_deflate::DeflateConfig;
    ///
    /// let config = WebSocketConfig::default().compression(DeflateConfig::shared().min_size(128));
    /// assert!(config.get_compression().is_some());
    /// ```
    pub fn compression(mut self, deflate: impl Into<Option<DeflateConfig>>) -> Self {
        self.compression = deflate.into();
        self
    }

    /// A limit on the text and binary messages each client may send (a token bucket per
    /// connection; past it the connection is closed with 1008 or the message dropped, see
    /// [`MessageRate`]). Default: none. A route can set its own with
    /// [`WebSocketUpgrade::message_rate`](crate::WebSocketUpgrade::message_rate).
    ///
    /// ```
    /// use armature_ws::{MessageRate, WebSocketConfig};
    ///
    /// let config = WebSocketConfig::default().message_rate(MessageRate::per_second(20).burst(40));
    /// assert_eq!(config.get_message_rate().map(|r| r.get_burst()), Some(40));
    /// ```
    pub fn message_rate(mut self, rate: impl Into<Option<MessageRate>>) -> Self {
        self.message_rate = rate.into();
        self
    }

    /// The per-connection message limit, if any.
    pub fn get_message_rate(&self) -> Option<&MessageRate> {
        self.message_rate.as_ref()
    }

    /// The permessage-deflate settings, if compression is on.
    pub fn get_compression(&self) -> Option<&DeflateConfig> {
        self.compression.as_ref()
    }

    pub(crate) fn core_config(&self) -> armature_ws_core::Config {
        armature_ws_core::Config::server()
            .max_frame_size(self.max_frame_size)
            .max_message_size(self.max_message_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = WebSocketConfig::default();
        assert_eq!(c.max_frame_size, 16 << 20);
        assert_eq!(c.max_message_size, 64 << 20);
        assert_eq!(c.max_queue_bytes, 1 << 20);
        assert_eq!(c.backpressure, Backpressure::Close);
        assert_eq!(c.ping_interval, Some(Duration::from_secs(30)));
        assert_eq!(c.pong_timeout, Duration::from_secs(10));
        assert_eq!(c.idle_timeout, None);
        assert_eq!(c.max_connections, 100_000);
        assert_eq!(c.header_read_timeout, Some(Duration::from_secs(30)));
        assert_eq!(c.max_request_head_bytes, 64 * 1024);
        assert_eq!(c.get_inbox_capacity(), (16, 64 * 1024));
    }

    #[test]
    fn setters_chain() {
        let c = WebSocketConfig::default()
            .max_queue_bytes(10)
            .read_chunk(1)
            .max_request_head_bytes(100)
            .header_read_timeout(None);
        assert_eq!(c.get_max_queue_bytes(), 10);
        assert_eq!(c.get_max_request_head_bytes(), 8192);
        assert_eq!(c.get_header_read_timeout(), None);
        assert_eq!(c.read_chunk, 64);
    }
}
