//! Counters ([`RedisStats`]) and the events a node reports ([`RedisEvent`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::broadcast;

/// Counters of one node, from [`RedisRealtime::stats`](crate::RedisRealtime::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisStats {
    /// True while the link to Redis is up.
    pub connected: bool,
    /// Messages handed to Redis (acknowledged by it).
    pub published: u64,
    /// Messages never handed to Redis because the outbox was full (delivered locally only).
    pub publish_dropped: u64,
    /// Messages waiting in the outbox now.
    pub outbox_len: u64,
    /// Messages received from Redis that came from another node.
    pub received: u64,
    /// Received messages delivered to local rooms, connections or broadcasters.
    pub delivered: u64,
    /// This node's own messages coming back from Redis, ignored (the origin delivered them
    /// locally already).
    pub own_ignored: u64,
    /// Received messages dropped because their sequence number was already seen.
    pub duplicates_dropped: u64,
    /// Times a gap in an origin's sequence numbers was found.
    pub gaps: u64,
    /// Messages known to be missed: the sum of the gaps' sizes.
    pub messages_missed: u64,
    /// Received messages that were not envelopes this build reads (dropped).
    pub malformed: u64,
    /// Received messages for a room, connection or broadcaster this node no longer has.
    pub unroutable: u64,
    /// Links made after the first (each after a lost link).
    pub reconnects: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Channels subscribed now.
    pub subscriptions: u64,
    /// Durable-stream messages this node read back from a stream (after a cut link, a
    /// failover, a late subscription) and delivered in order.
    pub recovered: u64,
    /// WebSocket members resumed from an offset (`RedisRealtime::join_durable`).
    pub resumes: u64,
    /// Channels this node keeps a publishing sequence counter for (pruned: idle ones go
    /// after 5 minutes, and at most 65,536).
    pub sequence_channels: u64,
    /// (channel, origin) pairs whose last sequence number this node remembers (pruned: quiet
    /// origins go after 5 minutes, and at most 1,024 per channel).
    pub sequence_origins: u64,
}

/// Something a node wants its operator to know, from
/// [`RedisRealtime::events`](crate::RedisRealtime::events).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisEvent {
    /// The link to Redis is up (again) and every active channel is subscribed.
    Connected {
        /// True after a lost link, false for the first one.
        reconnect: bool,
    },
    /// The link to Redis was lost; local delivery goes on, remote traffic pauses.
    Disconnected {
        /// Why, as the client library said it.
        reason: String,
    },
    /// Messages from `origin` on `channel` never arrived (numbers were skipped).
    Gap {
        /// The Redis channel.
        channel: String,
        /// The publishing node.
        origin: String,
        /// How many messages were missed.
        missed: u64,
    },
    /// Messages of a durable stream this node had missed were read back from the stream and
    /// delivered, in order, before anything later.
    Recovered {
        /// The Redis channel.
        channel: String,
        /// How many.
        messages: u64,
    },
    /// A durable stream was recreated (its keys expired or were lost): its offsets start
    /// again under a new epoch; clients resuming from the old one get a reset.
    StreamReset {
        /// The Redis channel.
        channel: String,
    },
}

#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) connected: AtomicBool,
    pub(crate) published: AtomicU64,
    pub(crate) publish_dropped: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) own_ignored: AtomicU64,
    pub(crate) duplicates_dropped: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) messages_missed: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) unroutable: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) subscriptions: AtomicU64,
    pub(crate) recovered: AtomicU64,
    pub(crate) resumes: AtomicU64,
    events: broadcast::Sender<RedisEvent>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            connected: AtomicBool::new(false),
            published: AtomicU64::new(0),
            publish_dropped: AtomicU64::new(0),
            received: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            own_ignored: AtomicU64::new(0),
            duplicates_dropped: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            messages_missed: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            unroutable: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
            events: broadcast::Sender::new(EVENT_BACKLOG),
        }
    }
}

/// Events kept for a slow [`RedisRealtime::events`](crate::RedisRealtime::events) reader
/// before it starts losing the oldest.
pub const EVENT_BACKLOG: usize = 256;

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn emit(&self, event: RedisEvent) {
        // No receiver is fine: the counters still tell.
        let _ = self.events.send(event);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<RedisEvent> {
        self.events.subscribe()
    }

    pub(crate) fn snapshot(
        &self,
        outbox_len: usize,
        sequence_channels: usize,
        sequence_origins: usize,
    ) -> RedisStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RedisStats {
            connected: self.connected.load(Ordering::Acquire),
            published: get(&self.published),
            publish_dropped: get(&self.publish_dropped),
            outbox_len: outbox_len as u64,
            received: get(&self.received),
            delivered: get(&self.delivered),
            own_ignored: get(&self.own_ignored),
            duplicates_dropped: get(&self.duplicates_dropped),
            gaps: get(&self.gaps),
            messages_missed: get(&self.messages_missed),
            malformed: get(&self.malformed),
            unroutable: get(&self.unroutable),
            reconnects: get(&self.reconnects),
            connect_failures: get(&self.connect_failures),
            subscriptions: get(&self.subscriptions),
            recovered: get(&self.recovered),
            resumes: get(&self.resumes),
            sequence_channels: sequence_channels as u64,
            sequence_origins: sequence_origins as u64,
        }
    }
}

/// A random-enough `u64` (process id, time, a counter, mixed): for epochs, node ids and
/// back-off jitter, not for secrets.
pub(crate) fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64 finaliser
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
