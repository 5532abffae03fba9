//! Durable streams: a room or SSE broadcaster whose messages are kept in a capped Redis
//! Stream, numbered by one cluster-wide offset, and delivered on every node in that order.
//!
//! Publishing runs [`PUBLISH_SCRIPT`] on the shard of the stream: it takes the next offset
//! from the stream's meta hash, stamps the offset and the stream's epoch into the envelope,
//! appends it (`XADD … MAXLEN ~ N 0-<offset>`) and publishes it, atomically. A node delivers
//! offset `n` only after `n - 1`; a hole (its link was cut, a shard failed over, it just
//! subscribed) is filled from the stream with `XRANGE` before what came live, or reported as
//! a gap when the stream was trimmed past it. This module holds the order logic ([`Order`],
//! no I/O) and the offset text clients see ([`Offset`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::envelope::Envelope;

/// Runs on the stream's shard. KEYS: meta hash, stream. ARGV: channel, envelope, max
/// length, candidate epoch (8 bytes), byte position of the envelope's epoch field, TTL in
/// ms, publish command, publisher (node id and incarnation), its publish number. Returns the
/// offset, or 0 when this publisher's message with that number (or a later one) was
/// already appended (sent again after a cut pipeline: appended once, not twice).
pub(crate) const PUBLISH_SCRIPT: &str = r"
local fresh = redis.call('HSETNX', KEYS[1], 'epoch', ARGV[4])
if fresh == 1 then redis.call('DEL', KEYS[2]) end
local pk = 'p:' .. ARGV[8]
local pn = tonumber(ARGV[9])
local seen = tonumber(redis.call('HGET', KEYS[1], pk) or '0')
if pn <= seen then return 0 end
redis.call('HSET', KEYS[1], pk, ARGV[9])
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local n = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local p = tonumber(ARGV[5])
local e = ARGV[2]
e = string.sub(e, 1, p) .. epoch .. struct.pack('>I4I4', math.floor(n / 4294967296), n % 4294967296) .. string.sub(e, p + 17)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '0-' .. n, 'e', e)
local ttl = tonumber(ARGV[6])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
redis.call(ARGV[7], ARGV[1], e)
return n
";

/// A position in a durable stream, as clients see it: `<epoch as 16 hex digits>-<offset>`,
/// e.g. `00c0ffee12345678-42`. Offset 0 is "before the first message".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Offset {
    /// The stream's epoch: random, made when the stream is (re)created. Another epoch is
    /// another stream: its offsets say nothing about this one's.
    pub epoch: u64,
    /// The number of the last message seen: 1 for the first message of the stream.
    pub offset: u64,
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{}", self.epoch, self.offset)
    }
}

impl FromStr for Offset {
    type Err = crate::Error;

    /// ```
    /// use armature_realtime_redis::Offset;
    /// let o: Offset = "00000000000000ff-42".parse().unwrap();
    /// assert_eq!((o.epoch, o.offset), (255, 42));
    /// assert_eq!(o.to_string(), "00000000000000ff-42");
    /// assert!("42".parse::<Offset>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || crate::Error::Validation(format!("bad stream offset {s:?}"));
        let (epoch, offset) = s.trim().split_once('-').ok_or_else(bad)?;
        if epoch.len() != 16 {
            return Err(bad());
        }
        Ok(Offset {
            epoch: u64::from_str_radix(epoch, 16).map_err(|_| bad())?,
            offset: offset.parse().map_err(|_| bad())?,
        })
    }
}

/// Most messages held while waiting for a hole to be filled; past it they are dropped and
/// fetched from the stream instead.
pub(crate) const MAX_PENDING: usize = 10_000;
/// Entries read per `XRANGE`.
pub(crate) const FETCH_COUNT: usize = 1000;

/// What the order check says to do.
#[derive(Debug, Default)]
pub(crate) struct Step {
    /// Deliver these, in this order.
    pub(crate) deliver: Vec<(u64, Envelope)>,
    /// Read the stream after this offset (a hole to fill), unless a read is running.
    pub(crate) fetch_after: Option<u64>,
    /// Messages known lost (trimmed from the stream before this node read them).
    pub(crate) missed: u64,
    /// The stream's epoch changed: it was recreated, what the old one held is gone.
    pub(crate) reset: bool,
}

/// The delivery order of one durable stream on this node.
#[derive(Debug, Default)]
pub(crate) struct Order {
    /// `None` until the start position is known.
    pub(crate) epoch: Option<u64>,
    /// The last offset delivered.
    pub(crate) last: u64,
    pending: BTreeMap<u64, Envelope>,
    /// A stream read is running.
    pub(crate) fetching: bool,
}

impl Order {
    /// Starts at `last` of `epoch` (what exists now, minus any preload).
    pub(crate) fn start(&mut self, epoch: u64, last: u64) -> Step {
        self.epoch = Some(epoch);
        self.last = last;
        self.pending.retain(|&n, e| n > last && e.epoch == epoch);
        let mut step = Step::default();
        self.drain(&mut step);
        step
    }

    /// A message arrived live.
    pub(crate) fn offer(&mut self, env: Envelope) -> Step {
        let mut step = Step::default();
        let n = env.seq;
        match self.epoch {
            None => {
                self.hold(n, env);
                return step;
            }
            Some(epoch) if epoch != env.epoch => {
                // The stream was recreated (its keys expired or were lost).
                step.reset = true;
                self.epoch = Some(env.epoch);
                self.last = 0;
                self.pending.clear();
            }
            Some(_) => {}
        }
        if n <= self.last {
            return step;
        }
        self.hold(n, env);
        self.drain(&mut step);
        step
    }

    fn hold(&mut self, n: u64, env: Envelope) {
        if self.pending.len() < MAX_PENDING {
            self.pending.insert(n, env);
        }
    }

    /// What a stream read after `after` returned (`entries` in offset order; `more` when
    /// the read was cut at its count). `first` is the stream's first offset when the read
    /// came back empty, to tell a trimmed stream from one with nothing new.
    pub(crate) fn fetched(
        &mut self,
        after: u64,
        entries: Vec<(u64, Envelope)>,
        more: bool,
    ) -> (Step, usize) {
        let mut step = Step::default();
        let mut recovered = 0;
        if self.last == after {
            for (n, env) in entries {
                if self.epoch.is_some_and(|e| e != env.epoch) || n <= self.last {
                    continue;
                }
                if n > self.last + 1 {
                    step.missed += n - self.last - 1;
                }
                self.last = n;
                self.pending.remove(&n);
                recovered += 1;
                step.deliver.push((n, env));
            }
        }
        if !more && !self.pending.is_empty() {
            // Everything up to the newest held message was in the stream: what is still
            // missing before it was trimmed away.
            if let Some((&first, _)) = self.pending.iter().next()
                && first > self.last + 1
                && self.last == after
            {
                step.missed += first - self.last - 1;
                self.last = first - 1;
            }
        }
        self.drain(&mut step);
        if more {
            step.fetch_after = Some(self.last);
        }
        (step, recovered)
    }

    /// Delivers what is contiguous; asks for a read if a hole stays.
    fn drain(&mut self, step: &mut Step) {
        while let Some(entry) = self.pending.first_entry() {
            let n = *entry.key();
            if n <= self.last {
                entry.remove();
                continue;
            }
            if n != self.last + 1 {
                break;
            }
            self.last = n;
            step.deliver.push((n, entry.remove()));
        }
        if !self.pending.is_empty() && step.fetch_after.is_none() {
            step.fetch_after = Some(self.last);
        }
    }

    /// Held messages.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Kind, decode, encode};

    fn env(epoch: u64, n: u64) -> Envelope {
        decode(encode(Kind::Sse, "o-", epoch, n, None, b"data: x\n\n")).unwrap()
    }

    fn offsets(step: &Step) -> Vec<u64> {
        step.deliver.iter().map(|(n, _)| *n).collect()
    }

    #[test]
    fn in_order_messages_are_delivered_and_repeats_dropped() {
        let mut o = Order::default();
        assert!(o.offer(env(7, 5)).deliver.is_empty(), "held until started");
        let step = o.start(7, 4);
        assert_eq!(offsets(&step), [5]);
        assert_eq!(offsets(&o.offer(env(7, 6))), [6]);
        assert!(o.offer(env(7, 6)).deliver.is_empty());
        assert!(o.offer(env(7, 3)).deliver.is_empty());
    }

    #[test]
    fn a_hole_is_filled_from_the_stream_before_later_messages() {
        let mut o = Order::default();
        o.start(7, 0);
        assert_eq!(offsets(&o.offer(env(7, 1))), [1]);
        let step = o.offer(env(7, 4));
        assert!(step.deliver.is_empty());
        assert_eq!(step.fetch_after, Some(1));
        assert!(o.offer(env(7, 5)).deliver.is_empty());
        let (step, recovered) = o.fetched(1, vec![(2, env(7, 2)), (3, env(7, 3))], false);
        assert_eq!(offsets(&step), [2, 3, 4, 5]);
        assert_eq!((recovered, step.missed, o.held()), (2, 0, 0));
    }

    #[test]
    fn a_trimmed_stream_is_a_reported_gap() {
        let mut o = Order::default();
        o.start(7, 0);
        o.offer(env(7, 1));
        o.offer(env(7, 10));
        let (step, recovered) = o.fetched(1, vec![(8, env(7, 8)), (9, env(7, 9))], false);
        assert_eq!(offsets(&step), [8, 9, 10]);
        assert_eq!((recovered, step.missed), (2, 6));
        // Nothing left in the stream before a held message either.
        o.offer(env(7, 20));
        let (step, _) = o.fetched(10, vec![], false);
        assert_eq!(offsets(&step), [20]);
        assert_eq!(step.missed, 9);
    }

    #[test]
    fn long_reads_continue_and_a_new_epoch_resets() {
        let mut o = Order::default();
        o.start(7, 0);
        o.offer(env(7, 5));
        let (step, _) = o.fetched(0, vec![(1, env(7, 1)), (2, env(7, 2))], true);
        assert_eq!(offsets(&step), [1, 2]);
        assert_eq!(step.fetch_after, Some(2));
        let step = o.offer(env(9, 1));
        assert!(step.reset);
        assert_eq!(offsets(&step), [1]);
        assert_eq!(o.held(), 0);
    }

    #[test]
    fn offsets_parse_and_print() {
        let o = Offset {
            epoch: 0xabc,
            offset: 9,
        };
        assert_eq!(o.to_string(), "0000000000000abc-9");
        assert_eq!("0000000000000abc-9".parse::<Offset>().unwrap(), o);
        for bad in [
            "",
            "abc-9",
            "0000000000000abc",
            "000000000000zzzz-1",
            "0000000000000abc-x",
        ] {
            assert!(bad.parse::<Offset>().is_err(), "{bad}");
        }
    }
}
