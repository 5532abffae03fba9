//! Counters a user can read: connections, back-pressure decisions, heartbeat closes.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of one [`Hub`](crate::Hub) (and of every connection it tracks).
///
/// Read them with [`Stats::snapshot`]; they only ever count up, except
/// `connections_active`.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) connections_opened: AtomicU64,
    pub(crate) connections_active: AtomicU64,
    pub(crate) connections_rejected: AtomicU64,
    pub(crate) messages_dropped: AtomicU64,
    pub(crate) slow_clients_closed: AtomicU64,
    pub(crate) ping_timeouts: AtomicU64,
    pub(crate) idle_closed: AtomicU64,
    pub(crate) protocol_errors: AtomicU64,
    pub(crate) reads_paused: AtomicU64,
    pub(crate) handler_errors: AtomicU64,
    pub(crate) handler_panics: AtomicU64,
    pub(crate) messages_rate_limited: AtomicU64,
    pub(crate) rate_limit_closes: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// WebSocket connections established since start.
    pub connections_opened: u64,
    /// WebSocket connections open now.
    pub connections_active: u64,
    /// Upgrades refused because `max_connections` was reached (answered `503`).
    pub connections_rejected: u64,
    /// Messages not queued because the recipient's queue was full
    /// ([`Backpressure::DropNewest`](crate::Backpressure::DropNewest)).
    pub messages_dropped: u64,
    /// Clients closed because their queue was full
    /// ([`Backpressure::Close`](crate::Backpressure::Close)).
    pub slow_clients_closed: u64,
    /// Connections closed because no frame arrived within the pong timeout after a ping.
    pub ping_timeouts: u64,
    /// Connections closed by the idle timeout.
    pub idle_closed: u64,
    /// Connections closed because the client broke the protocol (1002, 1007, 1009).
    pub protocol_errors: u64,
    /// Times a connection stopped reading because its handler's inbox was full (the client
    /// then meets TCP back-pressure until the handler reads).
    pub reads_paused: u64,
    /// Handlers that returned an error (their connection closed with 1011).
    pub handler_errors: u64,
    /// Handlers that panicked (their connection closed with 1011; the server kept serving).
    pub handler_panics: u64,
    /// Messages past their connection's [`MessageRate`](crate::MessageRate), dropped
    /// unseen by the handler (with [`OnExcess::Drop`](crate::OnExcess::Drop), or after the
    /// limit closed the connection).
    pub messages_rate_limited: u64,
    /// Connections closed with 1008 because they sent past their message rate.
    pub rate_limit_closes: u64,
}

impl Stats {
    /// The current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections_opened: self.connections_opened.load(Relaxed),
            connections_active: self.connections_active.load(Relaxed),
            connections_rejected: self.connections_rejected.load(Relaxed),
            messages_dropped: self.messages_dropped.load(Relaxed),
            slow_clients_closed: self.slow_clients_closed.load(Relaxed),
            ping_timeouts: self.ping_timeouts.load(Relaxed),
            idle_closed: self.idle_closed.load(Relaxed),
            protocol_errors: self.protocol_errors.load(Relaxed),
            reads_paused: self.reads_paused.load(Relaxed),
            handler_errors: self.handler_errors.load(Relaxed),
            handler_panics: self.handler_panics.load(Relaxed),
            messages_rate_limited: self.messages_rate_limited.load(Relaxed),
            rate_limit_closes: self.rate_limit_closes.load(Relaxed),
        }
    }

    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }
}
