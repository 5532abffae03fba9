//! [`RedisConfig`]: where Redis is, who this node is, and every limit.

use std::time::Duration;

/// Which Redis pub/sub commands carry the traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PubSubMode {
    /// Redis 7 sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`): in a Redis Cluster a channel's
    /// traffic stays on the shard that owns it instead of being copied to every node of the
    /// cluster. Works on a standalone Redis 7 as well. The default.
    #[default]
    Sharded,
    /// Classic pub/sub (`PUBLISH`/`SUBSCRIBE`), for Redis 6 (the node speaks RESP3, so
    /// Redis 6 or later is needed either way).
    Classic,
}

/// How a durable room or SSE broadcaster keeps its messages: a Redis Stream per room capped
/// at about `max_len` entries (`XADD … MAXLEN ~`), its keys expiring `ttl` after the last
/// message.
///
/// ```
/// use std::time::Duration;
/// use armature_realtime_redis::Durability;
///
/// let d = Durability::new().max_len(50_000).ttl(Some(Duration::from_secs(3600)));
/// assert_eq!(d.get_max_len(), 50_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Durability {
    pub(crate) max_len: usize,
    pub(crate) ttl: Option<Duration>,
}

impl Default for Durability {
    fn default() -> Self {
        Durability::new()
    }
}

impl Durability {
    /// At most about 10,000 messages, kept 24 hours after the last one.
    pub fn new() -> Self {
        Durability {
            max_len: 10_000,
            ttl: Some(Duration::from_secs(24 * 3600)),
        }
    }

    /// About how many messages the stream keeps (Redis trims whole nodes of the stream,
    /// so slightly more may stay). At least 1. Default: 10,000.
    pub fn max_len(mut self, n: usize) -> Self {
        self.max_len = n.max(1);
        self
    }

    /// How long the stream's keys live after its last message (`None`: until deleted).
    /// Default: 24 hours.
    pub fn ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// The cap.
    pub fn get_max_len(&self) -> usize {
        self.max_len
    }
}

/// Settings of a [`RedisRealtime`](crate::RedisRealtime) node.
///
/// ```
/// use std::time::Duration;
/// use armature_realtime_redis::{PubSubMode, RedisConfig};
///
/// let config = RedisConfig::new("redis://127.0.0.1:6379")
///     .node_id("eu-1-")
///     .channel_prefix("chat:")
///     .mode(PubSubMode::Sharded)
///     .outbox_messages(4096)
///     .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(2));
/// assert_eq!(config.get_node_id(), Some("eu-1-"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    pub(crate) url: String,
    /// Seed nodes of a Redis Cluster; empty for one server.
    pub(crate) cluster: Vec<String>,
    /// Default: none, a random id like `3fa9c2-` is made at connect.
    pub(crate) node_id: Option<String>,
    /// Default: `"armature:"`.
    pub(crate) channel_prefix: String,
    /// Default: [`PubSubMode::Sharded`].
    pub(crate) mode: PubSubMode,
    /// Default: 10,000 messages.
    pub(crate) outbox_messages: usize,
    /// Default: 64 MiB.
    pub(crate) outbox_bytes: usize,
    /// Default: 512 messages.
    pub(crate) batch_messages: usize,
    /// Default: 3 s.
    pub(crate) connect_timeout: Duration,
    /// Default: 5 s.
    pub(crate) response_timeout: Duration,
    /// Default: 1 s.
    pub(crate) health_interval: Duration,
    /// Default: 50 ms.
    pub(crate) backoff_min: Duration,
    /// Default: 5 s.
    pub(crate) backoff_max: Duration,
    /// Default: none (presence off).
    pub(crate) presence_ttl: Option<Duration>,
}

impl RedisConfig {
    /// Settings for the Redis at `url` (`redis://host:port/db`, with user and password if
    /// needed), every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            cluster: Vec::new(),
            node_id: None,
            channel_prefix: "armature:".to_owned(),
            mode: PubSubMode::Sharded,
            outbox_messages: 10_000,
            outbox_bytes: 64 << 20,
            batch_messages: 512,
            connect_timeout: Duration::from_secs(3),
            response_timeout: Duration::from_secs(5),
            health_interval: Duration::from_secs(1),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            presence_ttl: None,
        }
    }

    /// Settings for a Redis Cluster reached through any of `nodes` (`redis://host:port`
    /// URLs; one reachable node is enough, the others are found from it). Channels live on
    /// the shard that owns their slot ([`PubSubMode::Sharded`]); the node follows slot moves
    /// and failovers (the redis crate's cluster support routes, follows `MOVED`/`ASK` and
    /// refreshes the slot map; the link subscribes again what a resharding unsubscribed).
    ///
    /// ```
    /// use armature_realtime_redis::RedisConfig;
    ///
    /// let config = RedisConfig::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]);
    /// assert!(config.is_cluster());
    /// assert_eq!(config.get_url(), "redis://10.0.0.1:7000");
    /// ```
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let cluster: Vec<String> = nodes.into_iter().map(Into::into).collect();
        let mut config = RedisConfig::new(cluster.first().cloned().unwrap_or_default());
        config.cluster = cluster;
        config
    }

    /// True for a [`RedisConfig::cluster`] configuration.
    pub fn is_cluster(&self) -> bool {
        !self.cluster.is_empty()
    }

    /// This node's id: the origin of what it publishes, and the channel its connections
    /// are reached on. Use the same string as the WebSocket hub's
    /// [`WebSocketConfig::node_id`](armature_ws::WebSocketConfig::node_id) so connection ids
    /// name their node. 1–255 bytes, unique in the cluster, and not ending in a digit
    /// (connection ids are the node id followed by a number). Default: a random id.
    pub fn node_id(mut self, id: impl Into<String>) -> Self {
        self.node_id = Some(id.into());
        self
    }

    /// Prepended to every channel name, so several applications can share one Redis.
    /// Default: `"armature:"`.
    pub fn channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.channel_prefix = prefix.into();
        self
    }

    /// Sharded (Redis 7+) or classic pub/sub. Default: [`PubSubMode::Sharded`].
    pub fn mode(mut self, mode: PubSubMode) -> Self {
        self.mode = mode;
        self
    }

    /// Most messages waiting to be published (while Redis is slow or away). Past it, new
    /// messages are dropped for Redis (still delivered locally) and counted in
    /// [`RedisStats::publish_dropped`](crate::RedisStats::publish_dropped); other nodes see
    /// the gap. Default: 10,000.
    pub fn outbox_messages(mut self, max: usize) -> Self {
        self.outbox_messages = max.max(1);
        self
    }

    /// Most bytes waiting to be published; as [`RedisConfig::outbox_messages`]. Default:
    /// 64 MiB.
    pub fn outbox_bytes(mut self, max: usize) -> Self {
        self.outbox_bytes = max.max(1);
        self
    }

    /// Most messages sent to Redis in one pipeline. Default: 512.
    pub fn batch_messages(mut self, max: usize) -> Self {
        self.batch_messages = max.max(1);
        self
    }

    /// How long one connection attempt may take. Default: 3 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long Redis may take to answer a command before the link is dropped and made
    /// again. Default: 5 s.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How often an idle link is checked with `PING`. Default: 1 s.
    pub fn health_interval(mut self, interval: Duration) -> Self {
        self.health_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Reconnect delays: the first after `min`, doubling up to `max` (each with up to 25%
    /// jitter), back to `min` once connected. Default: 50 ms to 5 s.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.backoff_min = min.max(Duration::from_millis(1));
        self.backoff_max = max.max(self.backoff_min);
        self
    }

    /// Shares who is in each room with every node: the node refreshes its members of every
    /// occupied room every `ttl / 3`, and [`RedisRealtime::presence`](crate::RedisRealtime::presence)
    /// counts the members refreshed within `ttl` on any node. A node that crashes stops
    /// refreshing: its members leave the count within `ttl`. A member that joins or leaves
    /// shows within `ttl / 3`. At least 300 ms. Default: off.
    pub fn presence(mut self, ttl: Duration) -> Self {
        self.presence_ttl = Some(ttl.max(Duration::from_millis(300)));
        self
    }

    /// The Redis URL (for a cluster, its first seed node).
    pub fn get_url(&self) -> &str {
        &self.url
    }

    /// The node id, if set.
    pub fn get_node_id(&self) -> Option<&str> {
        self.node_id.as_deref()
    }

    /// The channel prefix.
    pub fn get_channel_prefix(&self) -> &str {
        &self.channel_prefix
    }

    /// The pub/sub mode.
    pub fn get_mode(&self) -> PubSubMode {
        self.mode
    }
}

/// Checks a node id: 1–255 bytes, no line break, not ending in a digit.
pub(crate) fn validate_node_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 255 {
        return Err(format!("node id must be 1-255 bytes, got {}", id.len()));
    }
    if id.ends_with(|c: char| c.is_ascii_digit()) {
        return Err(format!(
            "node id {id:?} must not end in a digit (connection ids are the node id and a number)"
        ));
    }
    if id.contains(['\r', '\n', '\0']) {
        return Err("node id must not contain a line break or NUL".to_owned());
    }
    Ok(())
}

/// The node id of a connection id: the id without its trailing number.
pub(crate) fn node_of(connection_id: &str) -> &str {
    connection_id.trim_end_matches(|c: char| c.is_ascii_digit())
}

/// A random node id like `3fa9c2-`.
pub(crate) fn random_node_id() -> String {
    format!("{:06x}-", crate::stats::random_u64() & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids() {
        assert!(validate_node_id("eu-1-").is_ok());
        assert!(validate_node_id("a").is_ok());
        assert!(validate_node_id("").is_err());
        assert!(validate_node_id("node1").is_err());
        assert!(validate_node_id("a\nb-").is_err());
        assert!(validate_node_id(&"x".repeat(256)).is_err());
        assert!(validate_node_id(&random_node_id()).is_ok());
        assert_eq!(node_of("eu-1-17"), "eu-1-");
        assert_eq!(node_of("abc"), "abc");
    }
}
