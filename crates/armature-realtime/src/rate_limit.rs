//! Rate limits: how many messages a WebSocket client may send, and how many connections a
//! client address may open.
//!
//! - **Messages per connection**: `#[rate_limit(messages = 20, per = "1s", burst = 40)]` on
//!   a `#[websocket]` handler (or [`WebSocketConfig::message_rate`](crate::ws::WebSocketConfig::message_rate)
//!   for every connection). A token bucket per connection
//!   ([`MessageRate`](crate::ws::MessageRate)); past it the connection is closed with 1008
//!   `"message rate exceeded"` (the default, `on_excess = "close"`) or the message dropped
//!   and counted (`on_excess = "drop"`). Excess messages never reach the handler. Counted
//!   in the hub's stats (`messages_rate_limited`, `rate_limit_closes`).
//! - **Connections per client IP**: `#[rate_limit(connections = 10, per = "1m", concurrent =
//!   5)]` on a `#[websocket]` or `#[sse]` handler, or [`App::rate_limit`](crate::App::rate_limit)
//!   for every decorated realtime route, every hand-written
//!   [`ws_route::websocket`](crate::ws_route::websocket) route and every
//!   [`App::graphql`](crate::App::graphql) path (its WebSocket, SSE and HTTP requests). New connections beyond the bucket and connections
//!   beyond `concurrent` open at once are answered `429 Too Many Requests` with
//!   `Retry-After`, before any upgrade and before any guard (after the `Origin` check). The
//!   app's limit is checked first, then the route's. Counted in
//!   [`AppService::rate_limit_stats`](crate::AppService::rate_limit_stats).
//!
//! The client address is the TCP peer ([`RequestHead::peer_addr`]); IPv6 addresses are
//! keyed by their /64 prefix (one host usually owns a whole /64). Behind a reverse proxy
//! every client has the proxy's address: limit there, or not at all. A request without a
//! peer address (an app mounted in another server that does not record one) is not
//! limited.
//!
//! Memory: the bucket of an address is dropped once it is full again (governor's
//! `retain_recent`, run at most every [`PRUNE_EVERY`] by the checks themselves), the
//! concurrent count once its last connection closes; so the state holds the addresses seen
//! within one refill time plus one prune period, and the addresses with open connections.
//!
//! ```
//! use std::time::Duration;
//! use armature_realtime::App;
//! use armature_realtime::rate_limit::ConnectionLimit;
//!
//! let app = App::new().rate_limit(
//!     ConnectionLimit::per_ip(30, Duration::from_secs(60)).burst(10).concurrent(20),
//! );
//! # let _ = app;
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use parking_lot::Mutex;

use crate::guard::Refusal;
use crate::request::RequestHead;

/// How often the keyed state is pruned, at most (by the checks themselves).
pub const PRUNE_EVERY: Duration = Duration::from_secs(5);

/// A limit on the connections one client address may open; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimit {
    /// New connections: count per period, burst.
    rate: Option<(NonZeroU32, Duration, NonZeroU32)>,
    /// Connections open at once.
    concurrent: Option<u32>,
}

impl ConnectionLimit {
    /// At most `count` new connections per `period` from one address, in bursts of
    /// `count` (see [`burst`](Self::burst)).
    pub fn per_ip(count: u32, period: Duration) -> Self {
        let count = NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN);
        ConnectionLimit {
            rate: Some((count, period.max(Duration::from_nanos(1)), count)),
            concurrent: None,
        }
    }

    /// Only a bound on the connections open at once from one address.
    pub fn concurrent_per_ip(max: u32) -> Self {
        ConnectionLimit {
            rate: None,
            concurrent: Some(max),
        }
    }

    /// How many new connections may come at once (default: `count`; at least 1).
    pub fn burst(mut self, burst: u32) -> Self {
        if let Some((_, _, b)) = &mut self.rate {
            *b = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        }
        self
    }

    /// At most `max` connections open at once from one address (WebSockets until they
    /// close, SSE streams until they end).
    pub fn concurrent(mut self, max: u32) -> Self {
        self.concurrent = Some(max);
        self
    }

    /// The new-connection rate: `(count, period, burst)`.
    pub fn get_rate(&self) -> Option<(u32, Duration, u32)> {
        self.rate.map(|(c, p, b)| (c.get(), p, b.get()))
    }

    /// The bound on connections open at once.
    pub fn get_concurrent(&self) -> Option<u32> {
        self.concurrent
    }

    fn quota(&self) -> Option<Quota> {
        let (count, period, burst) = self.rate?;
        let every = (period / count.get()).max(Duration::from_nanos(1));
        Some(
            Quota::with_period(every)
                .unwrap_or_else(|| Quota::per_second(count))
                .allow_burst(burst),
        )
    }
}

/// A client address as the limits key it: IPv4 whole, IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    }
}

/// Counters of a [`ConnectionLimiter`] (or the sum of an app's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitStats {
    /// Connections refused `429` because their address opened too many too fast.
    pub refused_rate: u64,
    /// Connections refused `429` because their address had too many open.
    pub refused_concurrent: u64,
    /// Addresses whose bucket is held now (pruned when full again).
    pub tracked_addresses: usize,
    /// Addresses with connections open now.
    pub open_addresses: usize,
}

impl std::ops::Add for RateLimitStats {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        RateLimitStats {
            refused_rate: self.refused_rate + o.refused_rate,
            refused_concurrent: self.refused_concurrent + o.refused_concurrent,
            tracked_addresses: self.tracked_addresses + o.tracked_addresses,
            open_addresses: self.open_addresses + o.open_addresses,
        }
    }
}

/// The state of one [`ConnectionLimit`]: a keyed token bucket and the open connections per
/// address. One per app and one per limited route.
pub struct ConnectionLimiter {
    limit: ConnectionLimit,
    buckets: Option<DefaultKeyedRateLimiter<IpAddr>>,
    open: Mutex<HashMap<IpAddr, u32>>,
    last_prune: Mutex<Instant>,
    refused_rate: AtomicU64,
    refused_concurrent: AtomicU64,
}

impl std::fmt::Debug for ConnectionLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionLimiter")
            .field("limit", &self.limit)
            .field("stats", &self.stats())
            .finish()
    }
}

impl ConnectionLimiter {
    /// Fresh state for `limit`.
    pub fn new(limit: ConnectionLimit) -> Self {
        ConnectionLimiter {
            limit,
            buckets: limit.quota().map(RateLimiter::keyed),
            open: Mutex::new(HashMap::new()),
            last_prune: Mutex::new(Instant::now()),
            refused_rate: AtomicU64::new(0),
            refused_concurrent: AtomicU64::new(0),
        }
    }

    /// The limit this state enforces.
    pub fn limit(&self) -> &ConnectionLimit {
        &self.limit
    }

    /// The counters now.
    pub fn stats(&self) -> RateLimitStats {
        RateLimitStats {
            refused_rate: self.refused_rate.load(Relaxed),
            refused_concurrent: self.refused_concurrent.load(Relaxed),
            tracked_addresses: self.buckets.as_ref().map_or(0, |b| b.len()),
            open_addresses: self.open.lock().len(),
        }
    }

    /// Admits one connection from `ip` (a permit to hold while it is open), or refuses it
    /// with `429` and `Retry-After`.
    ///
    /// # Errors
    /// The `429` refusal.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, Refusal> {
        let ip = key(ip);
        self.prune_if_due();
        if let Some(max) = self.limit.concurrent {
            if self.open.lock().get(&ip).copied().unwrap_or(0) >= max {
                self.refused_concurrent.fetch_add(1, Relaxed);
                tracing::info!(%ip, max, "connection refused: too many open from this address");
                return Err(Refusal::too_many_requests(Duration::from_secs(1)));
            }
        }
        if let Some(buckets) = &self.buckets {
            if let Err(not_until) = buckets.check_key(&ip) {
                self.refused_rate.fetch_add(1, Relaxed);
                let wait = not_until.wait_time_from(buckets.clock().now());
                tracing::info!(%ip, ?wait, "connection refused: too many new from this address");
                return Err(Refusal::too_many_requests(wait));
            }
        }
        if self.limit.concurrent.is_some() {
            *self.open.lock().entry(ip).or_insert(0) += 1;
        }
        Ok(ConnectionPermit {
            limiter: Arc::clone(self),
            ip,
        })
    }

    /// Drops the buckets that are full again, at most every [`PRUNE_EVERY`].
    pub fn prune_if_due(&self) {
        let Some(buckets) = &self.buckets else {
            return;
        };
        let Some(mut last) = self.last_prune.try_lock() else {
            return; // another check is pruning
        };
        if last.elapsed() < PRUNE_EVERY {
            return;
        }
        *last = Instant::now();
        drop(last);
        buckets.retain_recent();
        buckets.shrink_to_fit();
    }

    /// Drops every bucket that is full again, now.
    pub fn prune(&self) {
        if let Some(buckets) = &self.buckets {
            buckets.retain_recent();
            buckets.shrink_to_fit();
        }
    }
}

/// One admitted connection: counts towards its address's `concurrent` bound until dropped.
#[derive(Debug)]
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        if self.limiter.limit.concurrent.is_none() {
            return;
        }
        let mut open = self.limiter.open.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// The app's limiter, in a request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct AppLimiter(pub(crate) Arc<ConnectionLimiter>);

/// A route's limiter, in a request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct RouteLimiter(pub(crate) Arc<ConnectionLimiter>);

/// The permits of an admitted request, in its extensions until the connection takes them.
#[derive(Debug, Clone)]
pub(crate) struct Permits {
    _held: Arc<Vec<ConnectionPermit>>,
}

/// Checks the app's then the route's connection limit for this request; on admission the
/// permits go into the head's extensions (a WebSocket holds them until it closes, an SSE
/// stream until it ends).
pub(crate) fn check(head: &mut RequestHead) -> Result<(), Refusal> {
    let app = head.extensions().get::<AppLimiter>().map(|l| l.0.clone());
    let route = head.extensions().get::<RouteLimiter>().map(|l| l.0.clone());
    if app.is_none() && route.is_none() {
        return Ok(());
    }
    let Some(peer) = head.peer_addr() else {
        return Ok(());
    };
    let mut permits = Vec::with_capacity(2);
    for limiter in app.iter().chain(route.iter()) {
        permits.push(limiter.admit(peer.ip())?);
    }
    head.extensions_mut().insert(Permits {
        _held: Arc::new(permits),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_is_keyed_by_its_64_prefix_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(key(a), key(b));
        assert_ne!(key(a), key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_burst_passes_then_429_with_retry_after() {
        let limiter = Arc::new(ConnectionLimiter::new(ConnectionLimit::per_ip(
            3,
            Duration::from_secs(30),
        )));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let permits: Vec<_> = (0..3).map(|_| limiter.admit(ip).unwrap()).collect();
        match limiter.admit(ip) {
            Err(Refusal::Status {
                status,
                retry_after: Some(after),
                ..
            }) => {
                assert_eq!(status, 429);
                assert!(after > Duration::from_secs(5) && after <= Duration::from_secs(10));
            }
            other => panic!("expected 429, got {other:?}"),
        }
        // Another address has its own bucket.
        assert!(limiter.admit("10.0.0.2".parse().unwrap()).is_ok());
        assert_eq!(limiter.stats().refused_rate, 1);
        drop(permits);
    }

    #[test]
    fn concurrent_connections_are_counted_until_their_permit_drops() {
        let limiter = Arc::new(ConnectionLimiter::new(ConnectionLimit::concurrent_per_ip(
            2,
        )));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = limiter.admit(ip).unwrap();
        let _b = limiter.admit(ip).unwrap();
        assert!(limiter.admit(ip).is_err());
        drop(a);
        let _c = limiter.admit(ip).unwrap();
        assert_eq!(limiter.stats().refused_concurrent, 1);
        assert_eq!(limiter.stats().open_addresses, 1);
    }

    #[test]
    fn pruning_drops_the_buckets_that_refilled() {
        let limiter = Arc::new(ConnectionLimiter::new(ConnectionLimit::per_ip(
            1000,
            Duration::from_secs(1),
        )));
        for i in 0..200u32 {
            drop(limiter.admit(IpAddr::from(i.to_be_bytes())).unwrap());
        }
        assert_eq!(limiter.stats().tracked_addresses, 200);
        std::thread::sleep(Duration::from_millis(20)); // 1 ms refills one token
        limiter.prune();
        assert_eq!(limiter.stats().tracked_addresses, 0);
        assert_eq!(limiter.stats().open_addresses, 0);
    }
}
