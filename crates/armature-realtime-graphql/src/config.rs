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
}

impl Default for GraphQLConfig {
    fn default() -> Self {
        GraphQLConfig {
            connection_init_timeout: Duration::from_secs(3),
            max_operations: 100,
            keep_alive: None,
            max_body_bytes: 1 << 20,
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

    /// [`GraphQLConfig::max_operations`].
    pub fn get_max_operations(&self) -> usize {
        self.max_operations
    }
}
