//! [`MessageRate`]: a limit on the messages one client may send (a token bucket per
//! connection, `governor`'s GCRA), and what happens past it ([`OnExcess`]).

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

/// What a connection does with a message past its [`MessageRate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnExcess {
    /// Close the connection with 1008 (policy violation, reason `"message rate
    /// exceeded"`); the message and every later one are dropped, unseen by the handler.
    /// The default.
    #[default]
    Close,
    /// Drop the message (the handler never sees it) and keep the connection; counted in
    /// [`StatsSnapshot::messages_rate_limited`](crate::StatsSnapshot::messages_rate_limited).
    Drop,
}

/// A limit on the text and binary messages one connection may send: `burst` messages at
/// once, refilled at `count` per `period` (a token bucket; control frames do not count).
/// Per server with [`WebSocketConfig::message_rate`](crate::WebSocketConfig::message_rate),
/// per route with [`WebSocketUpgrade::message_rate`](crate::WebSocketUpgrade::message_rate);
/// `#[rate_limit(messages = ..)]` in the facade.
///
/// Only a connection with a limit carries its state (one small allocation); the others pay
/// one `None` check per message.
///
/// ```
/// use std::time::Duration;
/// use armature_ws::{MessageRate, OnExcess};
///
/// // 10 messages a second, bursts of 20, excess dropped rather than closing.
/// let rate = MessageRate::new(10, Duration::from_secs(1)).burst(20).on_excess(OnExcess::Drop);
/// assert_eq!(rate.get_burst(), 20);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MessageRate {
    count: NonZeroU32,
    period: Duration,
    burst: NonZeroU32,
    on_excess: OnExcess,
}

impl fmt::Debug for MessageRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageRate")
            .field("count", &self.count)
            .field("period", &self.period)
            .field("burst", &self.burst)
            .field("on_excess", &self.on_excess)
            .finish()
    }
}

impl MessageRate {
    /// `count` messages per `period` (at least 1 per 1 ns), with bursts of `count`.
    pub fn new(count: u32, period: Duration) -> Self {
        let count = NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN);
        MessageRate {
            count,
            period: period.max(Duration::from_nanos(1)),
            burst: count,
            on_excess: OnExcess::Close,
        }
    }

    /// `count` messages per second.
    pub fn per_second(count: u32) -> Self {
        Self::new(count, Duration::from_secs(1))
    }

    /// How many messages may come at once (default: `count`; at least 1).
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        self
    }

    /// What happens past the limit (default [`OnExcess::Close`]).
    pub fn on_excess(mut self, on_excess: OnExcess) -> Self {
        self.on_excess = on_excess;
        self
    }

    /// The messages per period.
    pub fn get_count(&self) -> u32 {
        self.count.get()
    }

    /// The period.
    pub fn get_period(&self) -> Duration {
        self.period
    }

    /// The burst size.
    pub fn get_burst(&self) -> u32 {
        self.burst.get()
    }

    /// What happens past the limit.
    pub fn get_on_excess(&self) -> OnExcess {
        self.on_excess
    }

    pub(crate) fn quota(&self) -> Quota {
        let every = self.period / self.count.get();
        Quota::with_period(every.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(self.count))
            .allow_burst(self.burst)
    }
}

/// One connection's bucket.
pub(crate) struct MessageLimiter {
    limiter: DefaultDirectRateLimiter,
    on_excess: OnExcess,
    /// The limit closed the connection: later messages are dropped too.
    tripped: AtomicBool,
}

/// What to do with one received data message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Deliver,
    Drop,
    /// Drop it and close with 1008 (the first message past the limit).
    Close,
}

impl MessageLimiter {
    pub(crate) fn new(rate: &MessageRate) -> Self {
        MessageLimiter {
            limiter: RateLimiter::direct(rate.quota()),
            on_excess: rate.on_excess,
            tripped: AtomicBool::new(false),
        }
    }

    pub(crate) fn check(&self) -> Verdict {
        if self.tripped.load(Ordering::Relaxed) {
            return Verdict::Drop;
        }
        if self.limiter.check().is_ok() {
            return Verdict::Deliver;
        }
        match self.on_excess {
            OnExcess::Drop => Verdict::Drop,
            OnExcess::Close => {
                self.tripped.store(true, Ordering::Relaxed);
                Verdict::Close
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_excess_closes_once_then_drops() {
        let limiter = MessageLimiter::new(&MessageRate::new(1, Duration::from_secs(3600)).burst(3));
        let verdicts: Vec<_> = (0..6).map(|_| limiter.check()).collect();
        use Verdict::*;
        assert_eq!(verdicts, [Deliver, Deliver, Deliver, Close, Drop, Drop]);
    }

    #[test]
    fn drop_mode_keeps_dropping_and_refills() {
        let rate = MessageRate::new(1000, Duration::from_secs(1))
            .burst(2)
            .on_excess(OnExcess::Drop);
        let limiter = MessageLimiter::new(&rate);
        assert_eq!(limiter.check(), Verdict::Deliver);
        assert_eq!(limiter.check(), Verdict::Deliver);
        assert_eq!(limiter.check(), Verdict::Drop);
        std::thread::sleep(Duration::from_millis(5)); // 1 ms per token
        assert_eq!(limiter.check(), Verdict::Deliver);
    }

    #[test]
    fn zero_values_are_raised_to_one() {
        let rate = MessageRate::new(0, Duration::ZERO).burst(0);
        assert_eq!((rate.get_count(), rate.get_burst()), (1, 1));
        let _ = rate.quota();
    }
}
