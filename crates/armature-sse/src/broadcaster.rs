//! [`SseBroadcaster`]: one event, encoded once, to every registered client.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::clients::{Clients, SseClient};
use crate::config::{SlowClientPolicy, SseConfig};
use crate::event::KEEP_ALIVE;
use crate::history::{History, Resume};
use crate::hold::{self, HeldEvent, MAX_HELD_BYTES, MAX_HELD_EVENTS, Release};
use crate::queue::{ClientQueue, Closed, Push};
use crate::transport::{EncodedEvent, LocalSseTransport, SseTransport};
use crate::{Error, ReceiverStream, ServerSentEvent};

/// The event type a resuming client receives when its `Last-Event-ID` is not in the history.
pub const RESET_EVENT: &str = "reset";

/// The data of the [`RESET_EVENT`].
pub const RESET_DATA: &str = "last-event-id not in history";

/// Broadcasts Server-Sent Events to many clients, as the guide shows it.
///
/// - [`broadcast`](Self::broadcast) encodes the event once into `Bytes`; every client's queue
///   gets a reference-counted handle to the same bytes.
/// - Each client's queue is bounded ([`SseConfig::max_queued_events`],
///   [`SseConfig::max_queued_bytes`]); a client that does not keep up is handled by
///   [`SseConfig::slow_client_policy`] (by default it is dropped and counted in
///   [`SseStats::slow_clients_dropped`]) and never slows the others or grows memory.
/// - A client is removed as soon as its [`ReceiverStream`] is dropped (for an HTTP client:
///   when hyper drops the response body because the connection closed), so
///   [`client_count`](Self::client_count) is right straight after a disconnect.
/// - With history on ([`SseConfig::history_len`]), [`register_from`](Self::register_from)
///   resumes a client from its `Last-Event-ID`: the missed events in order, then live events,
///   no duplicate and no gap. If the id is not in the history (unknown, pushed out, expired,
///   or history off), the client first gets one [`RESET_EVENT`] event (data [`RESET_DATA`],
///   id the newest id in the history if any), then live events.
/// - Every lock is a short `parking_lot` section; nothing is locked across an `.await`.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use armature_sse::{Error, SseBroadcaster};
/// use futures_util::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// let broadcaster = Arc::new(SseBroadcaster::new());
///
/// // Register clients
/// let mut stream1 = broadcaster.register().await;
/// let stream2 = broadcaster.register().await;
///
/// // Broadcast to all
/// broadcaster.broadcast_message("Update".to_string()).await?;
/// broadcaster.broadcast_json(&serde_json::json!({ "price": 150.0 })).await?;
///
/// // Get client count
/// assert_eq!(broadcaster.client_count().await, 2);
/// drop(stream2);
/// assert_eq!(broadcaster.client_count().await, 1);
///
/// // Auto keep-alive
/// broadcaster.clone().start_keep_alive(Duration::from_secs(30));
///
/// assert_eq!(stream1.next().await.unwrap()?, "data: Update\n\n");
/// assert_eq!(stream1.next().await.unwrap()?, "data: {\"price\":150.0}\n\n");
/// # Ok(())
/// # }
/// ```
pub struct SseBroadcaster {
    /// The registered clients, as the guide's cleanup snippet reaches them
    /// (`broadcaster.clients.write().await.retain(..)`). Cleanup is automatic; see [`Clients`].
    pub clients: Clients,
    transport: Arc<dyn SseTransport>,
}

/// The client registry of one broadcaster: what the clients' registrations point at.
/// (The WebSocket side's `armature_ws::Hub` is the only `Hub` of the workspace.)
pub(crate) struct Registry {
    config: SseConfig,
    pub(crate) state: Mutex<RegistryState>,
    counters: Counters,
    /// The last automatic id; held while an auto-numbered event is published so ids reach
    /// clients in increasing order.
    last_auto_id: Mutex<u64>,
    /// Dropped with the registry, which ends the keep-alive tasks.
    alive: watch::Sender<()>,
}

pub(crate) struct RegistryState {
    pub(crate) clients: HashMap<u64, SseClient>,
    next_client: u64,
    history: History,
    /// Events broadcast inside a turn ([`crate::coalesced`]) and not queued yet, in order;
    /// queued before anything else touches the clients.
    held: Vec<HeldEvent>,
    held_bytes: usize,
}

#[derive(Default)]
struct Counters {
    events: AtomicU64,
    deliveries: AtomicU64,
    slow_clients_dropped: AtomicU64,
    events_skipped: AtomicU64,
    disconnects: AtomicU64,
    keep_alives: AtomicU64,
}

/// Counters of a broadcaster, from [`SseBroadcaster::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SseStats {
    /// Clients registered now.
    pub clients: usize,
    /// Events broadcast (local and remote), not counting keep-alives.
    pub events: u64,
    /// Events and keep-alives queued for a client, summed over clients.
    pub deliveries: u64,
    /// Clients dropped by [`SlowClientPolicy::Disconnect`].
    pub slow_clients_dropped: u64,
    /// Events not queued for a client under [`SlowClientPolicy::SkipEvent`].
    pub events_skipped: u64,
    /// Clients that went away by themselves (their stream was dropped).
    pub disconnects: u64,
    /// Keep-alive comments broadcast.
    pub keep_alives: u64,
    /// Events held in the history.
    pub history_len: usize,
}

/// A client's place in a registry; removes the client when the receiver is dropped.
pub(crate) struct Registration {
    registry: Weak<Registry>,
    key: u64,
}

impl Registration {
    pub(crate) fn unregister(self) {
        if let Some(registry) = self.registry.upgrade() {
            let removed = registry.state.lock().clients.remove(&self.key);
            if removed.is_some() {
                registry
                    .counters
                    .disconnects
                    .fetch_add(1, Ordering::Relaxed);
                tracing::debug!(client = self.key, "sse client disconnected");
            }
        }
    }
}

impl Default for SseBroadcaster {
    fn default() -> Self {
        SseBroadcaster::new()
    }
}

impl fmt::Debug for SseBroadcaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBroadcaster")
            .field("config", &self.registry().config)
            .field("stats", &self.stats())
            .field("transport", &self.transport)
            .finish()
    }
}

impl SseBroadcaster {
    fn registry(&self) -> &Arc<Registry> {
        &self.clients.registry
    }

    /// A broadcaster with the default [`SseConfig`]: bounded queues, slow clients dropped,
    /// no history.
    pub fn new() -> Self {
        SseBroadcaster::with_config(SseConfig::default())
    }

    /// A broadcaster with `config`.
    pub fn with_config(config: SseConfig) -> Self {
        let history = History::new(config.history_len, config.history_max_age);
        SseBroadcaster {
            clients: Clients {
                registry: Arc::new(Registry {
                    config,
                    state: Mutex::new(RegistryState {
                        clients: HashMap::new(),
                        next_client: 0,
                        history,
                        held: Vec::new(),
                        held_bytes: 0,
                    }),
                    counters: Counters::default(),
                    last_auto_id: Mutex::new(0),
                    alive: watch::Sender::new(()),
                }),
            },
            transport: Arc::new(LocalSseTransport),
        }
    }

    /// Replaces the [`SseTransport`] every broadcast goes through (by default
    /// [`LocalSseTransport`]), e.g. with one that carries events to other processes.
    pub fn with_transport(mut self, transport: Arc<dyn SseTransport>) -> Self {
        self.transport = transport;
        self
    }

    /// The settings this broadcaster runs with.
    pub fn config(&self) -> &SseConfig {
        &self.registry().config
    }

    /// Registers a new client that receives live events from now on.
    pub async fn register(&self) -> ReceiverStream<Result<String, Error>> {
        self.register_from(None)
    }

    /// Registers a client resuming after `last_event_id` (the `Last-Event-ID` header; see
    /// [`last_event_id`](crate::last_event_id)): the events it missed, then live ones. `None`
    /// is a fresh client. See the type docs for an id that is not in the history.
    pub fn register_from(
        &self,
        last_event_id: Option<&str>,
    ) -> ReceiverStream<Result<String, Error>> {
        let config = &self.registry().config;
        let mut st = self.registry().state.lock();
        // Held events were broadcast before this client came.
        self.registry().flush_held(&mut st);
        let initial = match last_event_id {
            None => VecDeque::new(),
            Some(id) => match st.history.since(id, Instant::now()) {
                Resume::Replay(events) => events,
                Resume::Unknown => VecDeque::from([reset_event(st.history.newest_id())]),
            },
        };
        let queue = Arc::new(ClientQueue::new(
            config.max_queued_events,
            config.max_queued_bytes,
            initial,
        ));
        let key = st.next_client;
        st.next_client += 1;
        st.clients.insert(
            key,
            SseClient {
                queue: Arc::clone(&queue),
            },
        );
        drop(st);
        ReceiverStream::new(
            queue,
            Some(Registration {
                registry: Arc::downgrade(self.registry()),
                key,
            }),
        )
    }

    /// Broadcasts `event` to every client: encodes it once (numbering it first with
    /// [`SseConfig::auto_ids`]) and hands it to the transport. Never waits.
    ///
    /// # Errors
    /// [`Error::Validation`] for a bad `event` or `id` field (nothing is sent); the
    /// transport's error. A full or closed client queue is not an error: the slow-client
    /// policy handles it and [`stats`](Self::stats) counts it.
    pub async fn broadcast(&self, event: ServerSentEvent) -> Result<(), Error> {
        self.broadcast_now(&event)
    }

    /// [`broadcast`](Self::broadcast) for code that is not async.
    ///
    /// # Errors
    /// As [`broadcast`](Self::broadcast).
    pub fn broadcast_now(&self, event: &ServerSentEvent) -> Result<(), Error> {
        if self.registry().config.auto_ids && event.id.is_none() {
            let mut last = self.registry().last_auto_id.lock();
            let n = *last + 1;
            let id: Arc<str> = match &self.registry().config.auto_id_prefix {
                Some(prefix) if !prefix.contains(['\r', '\n', '\0']) => {
                    Arc::from(format!("{prefix}{n}"))
                }
                _ => Arc::from(n.to_string()),
            };
            let bytes = event.encode_with_id(Some(&id))?;
            *last = n;
            self.transport
                .publish(self, EncodedEvent::new(Some(id), bytes))
        } else {
            self.transport
                .publish(self, EncodedEvent::from_event(event)?)
        }
    }

    /// Broadcasts a plain `message` event with `data`.
    ///
    /// # Errors
    /// As [`broadcast`](Self::broadcast).
    pub async fn broadcast_message(&self, data: String) -> Result<(), Error> {
        self.broadcast(ServerSentEvent::new(data)).await
    }

    /// Broadcasts an event of type `event` with `data`.
    ///
    /// # Errors
    /// As [`broadcast`](Self::broadcast).
    pub async fn broadcast_event(&self, event: String, data: String) -> Result<(), Error> {
        self.broadcast(ServerSentEvent::with_event(event, data))
            .await
    }

    /// Broadcasts `value` as JSON in a plain `message` event.
    ///
    /// # Errors
    /// [`Error::Serialization`] when `value` cannot be written as JSON; otherwise as
    /// [`broadcast`](Self::broadcast).
    pub async fn broadcast_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<(), Error> {
        self.broadcast(ServerSentEvent::json(value)?).await
    }

    /// Delivers an encoded event to the clients registered in this process (and to the
    /// history); what [`LocalSseTransport`] does, and what a multi-process transport calls
    /// when an event arrives from its bus.
    ///
    /// Inside [`coalesced`](crate::coalesced) (or [`in_turn`](crate::in_turn)) the event is
    /// held to the end of the turn and queued then, with the turn's other events, as one run.
    pub fn deliver_local(&self, event: &EncodedEvent) {
        let registry = self.registry();
        let mut st = registry.state.lock();
        if hold::holding() {
            if st.held.is_empty() {
                let weak: Weak<Registry> = Arc::downgrade(registry);
                hold::note(weak);
            }
            st.held_bytes += event.bytes().len();
            st.held.push(HeldEvent {
                id: event.shared_id(),
                bytes: event.bytes().clone(),
            });
            if st.held.len() >= MAX_HELD_EVENTS || st.held_bytes >= MAX_HELD_BYTES {
                registry.flush_held(&mut st);
            }
            return;
        }
        registry.flush_held(&mut st);
        registry.deliver(&mut st, event.bytes(), event.id(), true);
    }

    /// Sends one keep-alive comment to every client now (not kept in history, not published
    /// through the transport: each process keeps its own clients alive).
    pub fn send_keep_alive(&self) {
        let mut st = self.registry().state.lock();
        self.registry().flush_held(&mut st);
        self.registry()
            .deliver(&mut st, &Bytes::from_static(KEEP_ALIVE), None, false);
        drop(st);
        self.registry()
            .counters
            .keep_alives
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Starts a task that sends a keep-alive comment to every client every `interval`
    /// (the first one `interval` from now). The task holds only a weak reference: it ends
    /// as soon as the broadcaster is dropped. Needs a tokio runtime.
    pub fn start_keep_alive(self: Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let weak = Arc::downgrade(&self);
        let mut alive = self.registry().alive.subscribe();
        drop(self);
        tokio::spawn(async move {
            let period = interval.max(Duration::from_millis(1));
            let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    // Err: the registry (so the broadcaster) is gone.
                    _ = alive.changed() => break,
                }
                match weak.upgrade() {
                    Some(broadcaster) => broadcaster.send_keep_alive(),
                    None => break,
                }
            }
        })
    }

    /// The number of clients registered now. Disconnected clients are already gone.
    pub async fn client_count(&self) -> usize {
        self.registry().client_count()
    }

    /// The broadcaster's counters.
    pub fn stats(&self) -> SseStats {
        let (clients, history_len) = {
            let mut st = self.registry().state.lock();
            self.registry().flush_held(&mut st);
            (st.clients.len(), st.history.len())
        };
        let c = &self.registry().counters;
        SseStats {
            clients,
            events: c.events.load(Ordering::Relaxed),
            deliveries: c.deliveries.load(Ordering::Relaxed),
            slow_clients_dropped: c.slow_clients_dropped.load(Ordering::Relaxed),
            events_skipped: c.events_skipped.load(Ordering::Relaxed),
            disconnects: c.disconnects.load(Ordering::Relaxed),
            keep_alives: c.keep_alives.load(Ordering::Relaxed),
            history_len,
        }
    }
}

impl Registry {
    pub(crate) fn client_count(&self) -> usize {
        self.state.lock().clients.len()
    }

    /// Queues `bytes` for every client (and the history when `remember`), applying the
    /// slow-client policy. Called with the state locked: a client registers either before
    /// (it gets the event live) or after (it finds it in the history), never both or neither.
    fn deliver(&self, st: &mut RegistryState, bytes: &Bytes, id: Option<&str>, remember: bool) {
        if remember {
            st.history.push(id, bytes.clone(), Instant::now());
            self.counters.events.fetch_add(1, Ordering::Relaxed);
        }
        self.offer(st, bytes, 1, std::slice::from_ref(bytes));
    }

    /// Queues `run` (the `events.len()` events of `events`, joined) for every client whose
    /// queue takes it whole, and the events one by one to a client whose queue does not, so
    /// the slow-client policy sees each event as it would have without the run.
    fn offer(&self, st: &mut RegistryState, run: &Bytes, n: u32, events: &[Bytes]) {
        let mut delivered = 0u64;
        let mut skipped = 0u64;
        let mut slow: Vec<u64> = Vec::new();
        let mut gone: Vec<u64> = Vec::new();
        for (key, client) in &st.clients {
            match client.queue.push_run(run.clone(), n) {
                Push::Queued => delivered += u64::from(n),
                Push::Full => {
                    for bytes in events {
                        match client.queue.push(bytes.clone()) {
                            Push::Queued => delivered += 1,
                            Push::Full => match self.config.slow_client_policy {
                                SlowClientPolicy::Disconnect => {
                                    slow.push(*key);
                                    break;
                                }
                                SlowClientPolicy::SkipEvent => skipped += 1,
                            },
                            Push::Closed => {
                                gone.push(*key);
                                break;
                            }
                        }
                    }
                }
                // Its receiver is being dropped right now; its guard will find it gone.
                Push::Closed => gone.push(*key),
            }
        }
        for key in &slow {
            if let Some(client) = st.clients.remove(key) {
                client.queue.close(Closed::Overflow);
                tracing::debug!(client = key, "sse client dropped: its queue is full");
            }
        }
        if !slow.is_empty() {
            tracing::warn!(
                dropped = slow.len(),
                remaining = st.clients.len(),
                "slow sse clients dropped (queue full, SlowClientPolicy::Disconnect)"
            );
        }
        for key in &gone {
            if st.clients.remove(key).is_some() {
                self.counters.disconnects.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(client = key, "sse client disconnected");
            }
        }
        let c = &self.counters;
        c.deliveries.fetch_add(delivered, Ordering::Relaxed);
        c.events_skipped.fetch_add(skipped, Ordering::Relaxed);
        c.slow_clients_dropped
            .fetch_add(slow.len() as u64, Ordering::Relaxed);
    }
}

impl Registry {
    /// Queues the events held for a turn ([`crate::coalesced`]), if any: into the history one
    /// by one, to the clients as one run.
    pub(crate) fn flush_held(&self, st: &mut RegistryState) {
        if st.held.is_empty() {
            return;
        }
        let events = std::mem::take(&mut st.held);
        st.held_bytes = 0;
        if let [one] = &events[..] {
            self.deliver(st, &one.bytes, one.id.as_deref(), true);
            return;
        }
        let now = Instant::now();
        let total: usize = events.iter().map(|e| e.bytes.len()).sum();
        let mut run = BytesMut::with_capacity(total);
        let mut singles = Vec::with_capacity(events.len());
        for event in &events {
            st.history
                .push(event.id.as_deref(), event.bytes.clone(), now);
            run.extend_from_slice(&event.bytes);
            singles.push(event.bytes.clone());
        }
        self.counters
            .events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        let n = u32::try_from(events.len()).unwrap_or(u32::MAX);
        self.offer(st, &run.freeze(), n, &singles);
    }
}

impl Release for Registry {
    fn release(&self) {
        let mut st = self.state.lock();
        self.flush_held(&mut st);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // The broadcaster is gone: let every client drain what it has, then end.
        let mut st = self.state.lock();
        self.flush_held(&mut st);
        for client in st.clients.values() {
            client.queue.close(Closed::Finished);
        }
    }
}

fn reset_event(newest_id: Option<&str>) -> Bytes {
    let event = ServerSentEvent {
        id: newest_id.map(str::to_owned),
        event: Some(RESET_EVENT.to_owned()),
        data: RESET_DATA.to_owned(),
        retry: None,
    };
    // The id came from the history, so it was valid when it was encoded.
    event.encode().unwrap_or_else(|_| {
        Bytes::from_static(b"event: reset\ndata: last-event-id not in history\n\n")
    })
}
