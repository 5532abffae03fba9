//! A coarse process clock in milliseconds, cheap to store in an atomic.

use std::sync::OnceLock;
use std::time::Duration;

// tokio's clock, so that `tokio::time::pause` (tests of heartbeats and timeouts) moves the
// heartbeat's stamps with the sweeper's sleeps; without tokio's `test-util` feature it is
// `std::time::Instant` itself.
use tokio::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the first call in this process (never 0, so 0 can mean "unset").
pub(crate) fn now_ms() -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// A duration in whole milliseconds.
pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
