//! Broadcaster settings: per-client queue bounds, the slow-client policy, history for resume.

use std::time::Duration;

/// What a broadcaster does with a client whose queue is full (it is not reading as fast as
/// events are broadcast).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowClientPolicy {
    /// Drop the client (the default): its queue is emptied at once, its stream ends (a
    /// consumer polling `Result<String, Error>` items sees one `Err(Error::QueueFull)` first),
    /// it is removed from the broadcaster and counted in
    /// [`SseStats::slow_clients_dropped`](crate::SseStats::slow_clients_dropped). A browser
    /// reconnects by itself and, with history on, resumes with `Last-Event-ID` from where
    /// it stopped.
    #[default]
    Disconnect,
    /// Keep the client but skip this event for it, counted in
    /// [`SseStats::events_skipped`](crate::SseStats::events_skipped). The client silently
    /// misses events; use only where that is acceptable.
    SkipEvent,
}

/// Settings of an [`SseBroadcaster`](crate::SseBroadcaster).
///
/// ```
/// use std::time::Duration;
/// use armature_sse::{SseBroadcaster, SseConfig};
///
/// let broadcaster = SseBroadcaster::with_config(
///     SseConfig::default()
///         .history_len(1000)
///         .history_max_age(Duration::from_secs(300))
///         .auto_ids(true)
///         .max_queued_events(64),
/// );
/// # drop(broadcaster);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SseConfig {
    /// Most events (and comments) queued for one client; one more applies
    /// [`slow_client_policy`](Self::slow_client_policy). Default: 256.
    pub max_queued_events: usize,
    /// Most encoded bytes queued for one client (the bytes are shared between clients, so
    /// this bounds what one client pins). Default: 1 MiB.
    pub max_queued_bytes: usize,
    /// What happens to a client whose queue is full. Default: [`SlowClientPolicy::Disconnect`].
    pub slow_client_policy: SlowClientPolicy,
    /// How many of the latest events to keep for `Last-Event-ID` resume; 0 turns history
    /// (and so resume) off. Default: 0.
    pub history_len: usize,
    /// How long an event stays in the history (within `history_len`); `None` keeps events
    /// until newer ones push them out. Default: `None`.
    pub history_max_age: Option<Duration>,
    /// Number events that have no id of their own `1, 2, 3, ...` (in broadcast order), so a
    /// client can resume. Default: `false`.
    pub auto_ids: bool,
    /// Written before each automatic id (`"node-a-"` gives `node-a-1`, `node-a-2`, ...).
    /// The numbers count per broadcaster, so when a multi-process
    /// [`SseTransport`](crate::SseTransport) shares events between processes, give each
    /// process its own prefix: ids then stay unique and a client can resume on any process
    /// that has the event in its history. Default: none. Must not contain a line break or NUL
    /// (such a prefix is ignored).
    pub auto_id_prefix: Option<String>,
}

impl Default for SseConfig {
    fn default() -> Self {
        SseConfig {
            max_queued_events: 256,
            max_queued_bytes: 1 << 20,
            slow_client_policy: SlowClientPolicy::Disconnect,
            history_len: 0,
            history_max_age: None,
            auto_ids: false,
            auto_id_prefix: None,
        }
    }
}

impl SseConfig {
    /// Sets [`max_queued_events`](Self::max_queued_events) (at least 1).
    pub fn max_queued_events(mut self, n: usize) -> Self {
        self.max_queued_events = n.max(1);
        self
    }

    /// Sets [`max_queued_bytes`](Self::max_queued_bytes) (at least 1).
    pub fn max_queued_bytes(mut self, n: usize) -> Self {
        self.max_queued_bytes = n.max(1);
        self
    }

    /// Sets [`slow_client_policy`](Self::slow_client_policy).
    pub fn slow_client_policy(mut self, policy: SlowClientPolicy) -> Self {
        self.slow_client_policy = policy;
        self
    }

    /// Sets [`history_len`](Self::history_len).
    pub fn history_len(mut self, n: usize) -> Self {
        self.history_len = n;
        self
    }

    /// Sets [`history_max_age`](Self::history_max_age).
    pub fn history_max_age(mut self, age: Duration) -> Self {
        self.history_max_age = Some(age);
        self
    }

    /// Sets [`auto_ids`](Self::auto_ids).
    pub fn auto_ids(mut self, on: bool) -> Self {
        self.auto_ids = on;
        self
    }

    /// Turns [`auto_ids`](Self::auto_ids) on with the [`auto_id_prefix`](Self::auto_id_prefix)
    /// `prefix`.
    pub fn auto_id_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.auto_ids = true;
        self.auto_id_prefix = Some(prefix.into());
        self
    }
}
