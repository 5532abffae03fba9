//! [`Hub`]: the live connections of one server — ids, the connection limit, the shared
//! heartbeat sweeper, counters and graceful shutdown.
//!
//! Heartbeat and timeouts cost no timer per connection: one sweeper task per hub wakes a
//! few times per ping interval, scans every connection's last-activity stamps (atomics the
//! connection task updates when bytes arrive), queues pings, and closes silent or idle
//! peers. It runs only while the hub has connections.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use armature_ws_core::CloseCode;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::clock::{ms, now_ms};
use crate::config::WebSocketConfig;
use crate::connection::WebSocketConnection;
use crate::queue::{CloseRequest, Shared, close_frame};
use crate::stats::{Stats, StatsSnapshot};

/// The registry of one server's live WebSocket connections. Cheap to clone (an `Arc`).
///
/// A hub owns the [`WebSocketConfig`] used for its connections, hands out unique
/// connection ids (`<node_id><n>`), enforces `max_connections`, runs the heartbeat sweeper,
/// keeps the [`Stats`], and closes every connection on [`Hub::shutdown`].
/// [`serve`](crate::serve) puts its hub into each request's extensions, where
/// [`WebSocketUpgrade::from_request`](crate::WebSocketUpgrade::from_request) finds it; an
/// upgrade outside `serve` uses [`Hub::global`] unless given one.
///
/// ```
/// use armature_ws::{Hub, WebSocketConfig};
///
/// let hub = Hub::new(WebSocketConfig::default().node_id("eu-1-"));
/// assert_eq!(hub.stats().connections_active, 0);
/// assert!(hub.next_id().starts_with("eu-1-"));
/// ```
#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<HubInner>,
}

pub(crate) struct HubInner {
    pub(crate) config: WebSocketConfig,
    prefix: String,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Shared>>>,
    pub(crate) stats: Arc<Stats>,
    sweeper_running: AtomicBool,
    shutting_down: AtomicBool,
    idle: Notify,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("prefix", &self.inner.prefix)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(WebSocketConfig::default())
    }
}

/// The right to one live connection, counted in `connections_active` until dropped.
pub(crate) struct Permit {
    hub: Arc<HubInner>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let left = self
            .hub
            .stats
            .connections_active
            .fetch_sub(1, Ordering::AcqRel);
        if left == 1 {
            self.hub.idle.notify_waiters();
        }
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Permit")
    }
}

/// A connection's entry in the hub; removing it on drop.
#[derive(Debug)]
pub(crate) struct Registration {
    _permit: Permit,
    key: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self._permit.hub.conns.lock().remove(&self.key);
    }
}

impl Hub {
    /// A hub for connections configured by `config`.
    pub fn new(config: WebSocketConfig) -> Self {
        let prefix = config.node_id.clone().unwrap_or_else(default_prefix);
        Hub {
            inner: Arc::new(HubInner {
                config,
                prefix,
                next_id: AtomicU64::new(1),
                conns: Mutex::new(HashMap::new()),
                stats: Arc::new(Stats::default()),
                sweeper_running: AtomicBool::new(false),
                shutting_down: AtomicBool::new(false),
                idle: Notify::new(),
            }),
        }
    }

    /// The process-wide hub with the default config, used by upgrades given no other.
    pub fn global() -> &'static Hub {
        static GLOBAL: OnceLock<Hub> = OnceLock::new();
        GLOBAL.get_or_init(Hub::default)
    }

    /// The node id: the prefix of every connection id this hub hands out (the config's
    /// [`WebSocketConfig::node_id`], or a random one).
    pub fn node_id(&self) -> &str {
        &self.inner.prefix
    }

    /// The config of this hub's connections.
    pub fn config(&self) -> &WebSocketConfig {
        &self.inner.config
    }

    /// A fresh connection id: the node prefix and a counter (live connections get theirs
    /// from the same counter).
    pub fn next_id(&self) -> String {
        let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}{n}", self.inner.prefix)
    }

    /// The current counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// The live counters, shared with the connections.
    pub fn stats_handle(&self) -> Arc<Stats> {
        self.inner.stats.clone()
    }

    /// Live connections now.
    pub fn connection_count(&self) -> usize {
        self.inner.conns.lock().len()
    }

    /// True once [`Hub::shutdown`] started; new upgrades are refused with `503`.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Takes a connection slot, or `None` past `max_connections` or during shutdown
    /// (counted in `connections_rejected`).
    pub(crate) fn try_acquire(&self) -> Option<Permit> {
        let max = self.inner.config.max_connections as u64;
        let active = &self.inner.stats.connections_active;
        let mut current = active.load(Ordering::Acquire);
        loop {
            if current >= max || self.is_shutting_down() {
                Stats::bump(&self.inner.stats.connections_rejected);
                return None;
            }
            match active.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(Permit {
                        hub: self.inner.clone(),
                    });
                }
                Err(now) => current = now,
            }
        }
    }

    /// Records a new connection, whose shared state `make` builds from its id, and makes
    /// sure the sweeper runs.
    pub(crate) fn register(
        &self,
        permit: Permit,
        make: impl FnOnce(Arc<str>) -> Arc<Shared>,
    ) -> (Arc<Shared>, Registration) {
        Stats::bump(&self.inner.stats.connections_opened);
        let key = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = make(Arc::from(format!("{}{key}", self.inner.prefix)));
        let shutting_down = self.is_shutting_down();
        if shutting_down {
            shared.request_close(CloseRequest::Graceful(close_frame(
                CloseCode::Away,
                "server shutting down",
            )));
        }
        self.inner.conns.lock().insert(key, shared.clone());
        if self.needs_sweeper() && !self.inner.sweeper_running.swap(true, Ordering::AcqRel) {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(sweep(Arc::downgrade(&self.inner)));
            } else {
                self.inner.sweeper_running.store(false, Ordering::Release);
            }
        }
        (
            shared,
            Registration {
                _permit: permit,
                key,
            },
        )
    }

    /// The handle of the live connection with this id, if it is one of this hub's: how to
    /// reach one client by id from anywhere in the server.
    pub fn connection(&self, id: &str) -> Option<WebSocketConnection> {
        let key: u64 = id.strip_prefix(self.inner.prefix.as_str())?.parse().ok()?;
        let shared = self.inner.conns.lock().get(&key).cloned()?;
        Some(WebSocketConnection::from_shared(shared))
    }

    fn needs_sweeper(&self) -> bool {
        let c = &self.inner.config;
        c.ping_interval.is_some() || c.idle_timeout.is_some() || c.close_timeout > Duration::ZERO
    }

    /// Graceful shutdown of every WebSocket connection of this hub: refuses new upgrades,
    /// queues a close frame with code 1001 behind what each connection has queued, waits
    /// up to the config's `shutdown_timeout` for the close handshakes to complete, then
    /// drops the connections still open. Returns how many had to be dropped.
    pub async fn shutdown(&self) -> usize {
        self.shutdown_within(self.inner.config.shutdown_timeout)
            .await
    }

    /// [`Hub::shutdown`] with an explicit deadline.
    pub async fn shutdown_within(&self, deadline: Duration) -> usize {
        self.inner.shutting_down.store(true, Ordering::Release);
        let conns: Vec<Arc<Shared>> = self.inner.conns.lock().values().cloned().collect();
        for shared in &conns {
            shared.request_close(CloseRequest::Graceful(close_frame(
                CloseCode::Away,
                "server shutting down",
            )));
        }
        drop(conns);
        let all_gone = async {
            loop {
                let notified = self.inner.idle.notified();
                if self.inner.stats.connections_active.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(deadline, all_gone).await.is_ok() {
            return 0;
        }
        let conns: Vec<Arc<Shared>> = self.inner.conns.lock().values().cloned().collect();
        for shared in &conns {
            shared.force_abort();
        }
        conns.len()
    }
}

fn default_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mixed = (std::process::id() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ nanos as u64;
    format!("{:06x}-", mixed & 0xff_ffff)
}

/// Clears the running flag if the sweeper is dropped unexpectedly (its runtime shut down).
struct SweeperGuard {
    hub: Weak<HubInner>,
    armed: bool,
}

impl Drop for SweeperGuard {
    fn drop(&mut self) {
        if self.armed {
            if let Some(hub) = self.hub.upgrade() {
                hub.sweeper_running.store(false, Ordering::Release);
            }
        }
    }
}

/// The heartbeat sweeper: one task per hub, scanning every connection each tick.
async fn sweep(hub: Weak<HubInner>) {
    let mut guard = SweeperGuard {
        hub: hub.clone(),
        armed: true,
    };
    let tick = match hub.upgrade() {
        Some(hub) => sweep_tick(&hub.config),
        None => return,
    };
    loop {
        tokio::time::sleep(tick).await;
        let Some(hub) = hub.upgrade() else { return };
        let conns: Vec<Arc<Shared>> = hub.conns.lock().values().cloned().collect();
        if conns.is_empty() {
            // Stop while there is nothing to watch; `register` starts a new sweeper. A
            // connection registered between the check and the flag is caught here.
            hub.sweeper_running.store(false, Ordering::Release);
            guard.armed = false;
            if hub.conns.lock().is_empty() || hub.sweeper_running.swap(true, Ordering::AcqRel) {
                return;
            }
            guard.armed = true;
            continue;
        }
        let now = now_ms();
        for shared in &conns {
            check(&hub, shared, now);
        }
    }
}

fn sweep_tick(config: &WebSocketConfig) -> Duration {
    let mut shortest = config.close_timeout;
    for d in [
        config.ping_interval,
        Some(config.pong_timeout),
        config.idle_timeout,
    ]
    .into_iter()
    .flatten()
    {
        shortest = shortest.min(d);
    }
    (shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
}

/// One connection's heartbeat, idle and close-timeout checks.
///
/// The ping's time is the time the connection task wrote it (`ping_sent`); a ping asked
/// for and not written within the pong timeout (the socket does not take our bytes) counts
/// as a timeout too. While the connection's reading is paused (its handler's inbox is
/// full) nothing is checked: the peer's pongs wait unread behind the messages the handler
/// has not taken.
fn check(hub: &HubInner, shared: &Shared, now: u64) {
    let config = &hub.config;
    let close_sent = shared.close_sent.load(Ordering::Acquire);
    if close_sent != 0 {
        if now.saturating_sub(close_sent) >= ms(config.close_timeout) {
            tracing::debug!(id = %shared.id, "websocket close timeout; dropping the connection");
            shared.force_abort();
        }
        return;
    }
    if shared.paused.load(Ordering::Acquire) {
        return;
    }
    if config.ping_interval.is_some() {
        let last_rx = shared.last_rx.load(Ordering::Acquire);
        let ping_sent = shared.ping_sent.load(Ordering::Acquire);
        let ping_requested = shared.ping_requested.load(Ordering::Acquire);
        let waiting_since = if ping_sent != 0 && last_rx < ping_sent {
            Some(ping_sent)
        } else if ping_requested != 0 {
            Some(ping_requested)
        } else {
            None
        };
        match (waiting_since, config.ping_interval) {
            (Some(since), _) => {
                if now.saturating_sub(since) >= ms(config.pong_timeout) {
                    Stats::bump(&hub.stats.ping_timeouts);
                    tracing::debug!(id = %shared.id, "websocket pong timeout");
                    shared.request_close(CloseRequest::Abort(close_frame(
                        CloseCode::Error,
                        "pong timeout",
                    )));
                }
            }
            (None, Some(interval)) => {
                if now.saturating_sub(last_rx) >= ms(interval) && !shared.is_closing() {
                    shared.ping_sent.store(0, Ordering::Release);
                    shared.ping_requested.store(now, Ordering::Release);
                    shared.wake_driver_now();
                }
            }
            (None, None) => {}
        }
    }
    if let Some(idle) = config.idle_timeout {
        let last_msg = shared.last_msg.load(Ordering::Acquire);
        if now.saturating_sub(last_msg) >= ms(idle)
            && shared.request_close(CloseRequest::Graceful(close_frame(
                CloseCode::Away,
                "idle timeout",
            )))
        {
            Stats::bump(&hub.stats.idle_closed);
        }
    }
}
