//! [`GraphQLConfig`]: the limits and timers of a GraphQL endpoint, every default documented
//! beside its field.

use std::time::Duration;

/// Limits and timers of a [`GraphQL`](crate::GraphQL) endpoint.
///
/// ```
/// use std::time::Duration;
/// use armature_realtime_graphql::GraphQLConfig;
///
/// let config = GraphQLConfig::default()
///     .connection_init_timeout(Duration::from_secs(5))
///     .max_operations(20);
/// assert_eq!(config.get_max_operations(), 20);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GraphQLConfig {
    /// How long a WebSocket may stay open without `connection_init` before it is closed
    /// with 4408. Default 3 s (the graphql-ws reference server's default).
    pub connection_init_timeout: Duration,
    /// Operations one WebSocket may run at once; a `subscribe` past it gets an `error`
    /// message for its id and the connection stays. Default 100.
    pub max_operations: usize,
    /// Interval of the server's own keep-alive: a `ping` message on `graphql-transport-ws`,
    /// `ka` on the legacy protocol. Default `None`: the WebSocket layer's heartbeat (one
    /// shared sweeper) already finds dead peers, and no per-connection timer runs.
    pub keep_alive: Option<Duration>,
    /// Largest request body (GraphQL over HTTP and SSE `POST`) read, in bytes; larger
    /// bodies get `413`. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Root subscription fields that are live topics (every subscriber sees the same
    /// events from the moment it subscribes, whoever it is): identical WebSocket
    /// subscriptions to them (same document, operation name, variables) are executed
    /// once per endpoint and each result is serialised once for all their subscribers.
    /// Such a field's resolver sees the schema's data only, not a connection's or a
    /// request's; a subscriber joining a running execution gets the results from then on.
    /// Default: none (every subscription executes on its own).
    pub shared_subscriptions: Vec<String>,
}

impl Default for GraphQLConfig {
    fn default() -> Self {
        GraphQLConfig {
            connection_init_timeout: Duration::from_secs(3),
            max_operations: 100,
            keep_alive: None,
            max_body_bytes: 1 << 20,
            shared_subscriptions: Vec::new(),
        }
    }
}

impl GraphQLConfig {
    /// Sets [`GraphQLConfig::connection_init_timeout`].
    pub fn connection_init_timeout(mut self, timeout: Duration) -> Self {
        self.connection_init_timeout = timeout;
        self
    }

    /// Sets [`GraphQLConfig::max_operations`] (at least 1).
    pub fn max_operations(mut self, max: usize) -> Self {
        self.max_operations = max.max(1);
        self
    }

    /// Sets [`GraphQLConfig::keep_alive`].
    pub fn keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive = interval;
        self
    }

    /// Sets [`GraphQLConfig::max_body_bytes`].
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets [`GraphQLConfig::shared_subscriptions`]: the root subscription fields that are
    /// live topics, executed once for all identical subscriptions.
    ///
    /// ```
    /// use armature_realtime_graphql::GraphQLConfig;
    ///
    /// let config = GraphQLConfig::default().shared_subscriptions(["ticker", "chat"]);
    /// assert_eq!(config.shared_subscriptions, ["ticker", "chat"]);
    /// ```
    pub fn shared_subscriptions<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.shared_subscriptions = fields.into_iter().map(Into::into).collect();
        self
    }

    /// [`GraphQLConfig::max_operations`].
    pub fn get_max_operations(&self) -> usize {
        self.max_operations
    }
}
