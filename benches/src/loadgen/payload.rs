//! The payload every scenario sends: a sequence number and a send timestamp in printable
//! ASCII, padded to the requested size, so the same bytes are valid WebSocket text and SSE
//! data (PROTOCOL.md: printable ASCII, no newline).
//!
//! Layout: `SSSSSSSSSS:TTTTTTTTTTTTTTTT:` then `x` up to the length — ten decimal digits of
//! sequence number, a colon, sixteen decimal digits of nanoseconds since the generator's
//! [`Clock`] origin, a colon.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Whether payloads are padded with JSON-like text (`--fill json`) instead of `x`.
static JSON_FILL: AtomicBool = AtomicBool::new(false);

/// The JSON-like padding of `--fill json`: what a chat or dashboard sends, so deflate
/// meets text it compresses about as well as real traffic, not a run of one letter.
const JSON_TEXT: &[u8] = br#"{"type":"message","room":"lobby","user":{"id":4182,"name":"ada"},"text":"the build is green again, merging now","sent":"2026-12-02T03:00:00Z","tags":["ci","deploy"],"reactions":{"+1":3,"tada":1}},"#;

/// Pads every payload from now on with JSON-like text (`true`) or `x` (`false`).
pub fn set_json_fill(on: bool) {
    JSON_FILL.store(on, Ordering::Relaxed);
}

/// Digits of the sequence number.
const SEQ_DIGITS: usize = 10;
/// Digits of the timestamp.
const TS_DIGITS: usize = 16;
/// The shortest payload that holds a stamp: both numbers and their two colons.
pub const MIN_LEN: usize = SEQ_DIGITS + 1 + TS_DIGITS + 1;
/// Sequence numbers at or above this mark warm-up messages, which are not measured.
pub const WARMUP_BASE: u64 = 9_000_000_000;

/// What a payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The message's sequence number (per connection for echo, per run for fan-out).
    pub seq: u64,
    /// Nanoseconds since the [`Clock`] origin when the message was sent.
    pub sent_nanos: u64,
}

impl Stamp {
    /// Whether this is a warm-up message (sent before the measured phase).
    pub fn is_warmup(&self) -> bool {
        self.seq >= WARMUP_BASE
    }
}

/// Why a payload could not be read as a [`Stamp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// Shorter than [`MIN_LEN`].
    TooShort(usize),
    /// A digit or colon was expected at this byte offset.
    BadByte(usize),
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort(n) => write!(f, "payload of {n} bytes is shorter than a stamp"),
            Self::BadByte(at) => write!(f, "payload is not a stamp (byte {at})"),
        }
    }
}

impl std::error::Error for PayloadError {}

/// Appends a payload of exactly `len` bytes (at least [`MIN_LEN`]) to `out`.
///
/// # Panics
/// If `len < MIN_LEN` or a number does not fit its digits; both are the generator's own
/// configuration, never peer data.
pub fn encode_into(out: &mut Vec<u8>, stamp: Stamp, len: usize) {
    assert!(len >= MIN_LEN, "payload length {len} below {MIN_LEN}");
    assert!(
        stamp.seq < 10u64.pow(SEQ_DIGITS as u32),
        "sequence number too large"
    );
    assert!(
        stamp.sent_nanos < 10u64.pow(TS_DIGITS as u32),
        "timestamp too large"
    );
    let start = out.len();
    pad(out, len, JSON_FILL.load(Ordering::Relaxed));
    let buf = &mut out[start..];
    write_digits(&mut buf[..SEQ_DIGITS], stamp.seq);
    buf[SEQ_DIGITS] = b':';
    write_digits(
        &mut buf[SEQ_DIGITS + 1..SEQ_DIGITS + 1 + TS_DIGITS],
        stamp.sent_nanos,
    );
    buf[MIN_LEN - 1] = b':';
}

/// Appends `len` bytes of padding: JSON-like text, or `x`.
fn pad(out: &mut Vec<u8>, len: usize, json: bool) {
    if json {
        out.extend(JSON_TEXT.iter().cycle().take(len));
    } else {
        out.resize(out.len() + len, b'x');
    }
}

/// A payload of exactly `len` bytes for `stamp`.
pub fn encode(stamp: Stamp, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    encode_into(&mut out, stamp, len);
    out
}

/// Reads the stamp at the start of a payload; the padding after it is not checked.
pub fn parse(payload: &[u8]) -> Result<Stamp, PayloadError> {
    if payload.len() < MIN_LEN {
        return Err(PayloadError::TooShort(payload.len()));
    }
    let seq = read_digits(payload, 0, SEQ_DIGITS)?;
    if payload[SEQ_DIGITS] != b':' {
        return Err(PayloadError::BadByte(SEQ_DIGITS));
    }
    let sent_nanos = read_digits(payload, SEQ_DIGITS + 1, TS_DIGITS)?;
    if payload[MIN_LEN - 1] != b':' {
        return Err(PayloadError::BadByte(MIN_LEN - 1));
    }
    Ok(Stamp { seq, sent_nanos })
}

fn write_digits(buf: &mut [u8], mut value: u64) {
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn read_digits(payload: &[u8], start: usize, count: usize) -> Result<u64, PayloadError> {
    let mut value = 0u64;
    for (i, &b) in payload[start..start + count].iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(PayloadError::BadByte(start + i));
        }
        value = value * 10 + u64::from(b - b'0');
    }
    Ok(value)
}

/// The generator's monotonic clock: nanoseconds since it was created. Sender and receiver
/// are the same process, so the stamps need no clock synchronisation.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Nanoseconds since the origin.
    pub fn now_nanos(&self) -> u64 {
        self.nanos_at(Instant::now())
    }

    /// Nanoseconds from the origin to `at` (zero if `at` is earlier).
    pub fn nanos_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_documented_layout() {
        let p = encode(
            Stamp {
                seq: 42,
                sent_nanos: 1_234_567,
            },
            32,
        );
        assert_eq!(p, b"0000000042:0000000001234567:xxxx");
        assert_eq!(p.len(), 32);
    }

    #[test]
    fn round_trips_and_ignores_padding() {
        let stamp = Stamp {
            seq: 9_999_999_999,
            sent_nanos: 9_999_999_999_999_999,
        };
        let p = encode(stamp, 64);
        assert_eq!(p.len(), 64);
        assert!(p.iter().all(|b| b.is_ascii_graphic()));
        assert_eq!(parse(&p), Ok(stamp));
        assert_eq!(parse(&p[..MIN_LEN]), Ok(stamp));
    }

    #[test]
    fn rejects_what_is_not_a_stamp() {
        assert_eq!(parse(b"0000000001:00"), Err(PayloadError::TooShort(13)));
        let mut p = encode(
            Stamp {
                seq: 1,
                sent_nanos: 2,
            },
            32,
        );
        p[3] = b'a';
        assert_eq!(parse(&p), Err(PayloadError::BadByte(3)));
        let mut p = encode(
            Stamp {
                seq: 1,
                sent_nanos: 2,
            },
            32,
        );
        p[10] = b';';
        assert_eq!(parse(&p), Err(PayloadError::BadByte(10)));
        let mut p = encode(
            Stamp {
                seq: 1,
                sent_nanos: 2,
            },
            32,
        );
        p[27] = b'x';
        assert_eq!(parse(&p), Err(PayloadError::BadByte(27)));
    }

    #[test]
    fn json_padding_is_printable_and_parses() {
        let mut p = Vec::new();
        pad(&mut p, 400, true);
        assert_eq!(p.len(), 400);
        assert!(p.iter().all(|b| b.is_ascii_graphic() || *b == b' '));
        assert!(p.starts_with(br#"{"type":"message""#));
    }

    #[test]
    fn warmup_marks_are_told_apart() {
        assert!(
            Stamp {
                seq: WARMUP_BASE,
                sent_nanos: 0
            }
            .is_warmup()
        );
        assert!(
            !Stamp {
                seq: WARMUP_BASE - 1,
                sent_nanos: 0
            }
            .is_warmup()
        );
    }

    #[test]
    fn clock_is_monotonic_from_its_origin() {
        let clock = Clock::new();
        let a = clock.now_nanos();
        let b = clock.now_nanos();
        assert!(b >= a);
        assert_eq!(clock.nanos_at(clock.origin), 0);
    }
}
