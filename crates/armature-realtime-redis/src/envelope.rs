//! The wire envelope (version 1): what one message on a Redis channel carries. Pure bytes in,
//! bytes out; no I/O. `docs/redis.md` describes the layout field by field.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "AR"
//! 2       1     version (1)
//! 3       1     kind: 1 room broadcast, 2 direct (one connection), 3 SSE event,
//!               4 close a user's connections (logout)
//! 4       1     origin length O (1..=255)
//! 5       O     origin node id (UTF-8)
//! 5+O     8     numbering epoch (u64, big-endian): high half random per process start,
//!               low half the channel's numbering on that process
//! 13+O    8     sequence number (u64, big-endian): per origin and channel, from 1
//! 21+O    2     tag length T (u16, big-endian); 0xFFFF = no tag
//! 23+O    T     tag (UTF-8): room: the except id; direct: the target id; SSE: the event id;
//!               close user: the user id
//! 23+O+T  ...   payload: room and direct: one encoded WebSocket frame; SSE: the event bytes;
//!               close user: the close reason (UTF-8, may be empty)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

/// The first two bytes of every envelope.
pub const MAGIC: [u8; 2] = *b"AR";
/// The envelope version this crate writes and reads.
pub const VERSION: u8 = 1;
/// The tag length that means "no tag".
const NO_TAG: u16 = u16::MAX;
/// Bytes before the origin id.
const HEAD: usize = 5;

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A room broadcast: an encoded WebSocket frame for every member (but `except`).
    Room,
    /// A message for one connection, by id: an encoded WebSocket frame.
    Direct,
    /// An SSE event: its wire bytes, and its id.
    Sse,
    /// Close every connection of one user (its id in the tag), on every node: logout.
    CloseUser,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Room => 1,
            Kind::Direct => 2,
            Kind::Sse => 3,
            Kind::CloseUser => 4,
        }
    }

    fn from_code(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::Room),
            2 => Some(Kind::Direct),
            3 => Some(Kind::Sse),
            4 => Some(Kind::CloseUser),
            _ => None,
        }
    }
}

/// A decoded envelope. `payload` shares the received buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// What it carries.
    pub kind: Kind,
    /// The node that published it.
    pub origin: String,
    /// The origin's incarnation (random per process start).
    pub epoch: u64,
    /// Per origin and channel, from 1.
    pub seq: u64,
    /// Except id (room), target id (direct), event id (SSE).
    pub tag: Option<String>,
    /// The frame or event bytes.
    pub payload: Bytes,
}

/// Why bytes are not an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not an envelope (wrong magic).
    Magic,
    /// A version this build does not read.
    Version(u8),
    /// An unknown kind.
    Kind(u8),
    /// Shorter than its fields say.
    Truncated,
    /// The origin or tag is not UTF-8, or the origin is empty.
    Text,
    /// A room or direct payload that is not exactly one unmasked WebSocket frame.
    Frame,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Magic => f.write_str("not an armature envelope"),
            DecodeError::Version(v) => write!(f, "unsupported envelope version {v}"),
            DecodeError::Kind(k) => write!(f, "unknown envelope kind {k}"),
            DecodeError::Truncated => f.write_str("truncated envelope"),
            DecodeError::Text => f.write_str("envelope origin or tag is not valid text"),
            DecodeError::Frame => f.write_str("envelope payload is not one websocket frame"),
        }
    }
}

/// Encodes an envelope. `origin` must be 1..=255 bytes and `tag` under 65,535 bytes (the
/// adapter checks both before it gets here; longer values are cut to fit).
pub fn encode(
    kind: Kind,
    origin: &str,
    epoch: u64,
    seq: u64,
    tag: Option<&str>,
    payload: &[u8],
) -> Bytes {
    let origin = truncate(origin.as_bytes(), u8::MAX as usize);
    let tag = tag.map(|t| truncate(t.as_bytes(), (NO_TAG - 1) as usize));
    let mut out = BytesMut::with_capacity(
        HEAD + origin.len() + 18 + tag.map_or(0, <[u8]>::len) + payload.len(),
    );
    out.put_slice(&MAGIC);
    out.put_u8(VERSION);
    out.put_u8(kind.code());
    out.put_u8(origin.len() as u8);
    out.put_slice(origin);
    out.put_u64(epoch);
    out.put_u64(seq);
    match tag {
        Some(tag) => {
            out.put_u16(tag.len() as u16);
            out.put_slice(tag);
        }
        None => out.put_u16(NO_TAG),
    }
    out.put_slice(payload);
    out.freeze()
}

/// Where the epoch field of an encoded envelope starts (the sequence field follows it).
pub(crate) fn epoch_position(envelope: &[u8]) -> usize {
    HEAD + envelope.get(4).map_or(0, |&o| usize::from(o))
}

fn truncate(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

/// Decodes an envelope; never panics, whatever the bytes.
pub fn decode(bytes: Bytes) -> Result<Envelope, DecodeError> {
    let b = &bytes[..];
    if b.len() < HEAD {
        return Err(if b.len() >= 2 && b[..2] != MAGIC {
            DecodeError::Magic
        } else {
            DecodeError::Truncated
        });
    }
    if b[..2] != MAGIC {
        return Err(DecodeError::Magic);
    }
    if b[2] != VERSION {
        return Err(DecodeError::Version(b[2]));
    }
    let kind = Kind::from_code(b[3]).ok_or(DecodeError::Kind(b[3]))?;
    let origin_len = b[4] as usize;
    let mut at = HEAD;
    let origin = take(b, &mut at, origin_len)?;
    let origin = std::str::from_utf8(origin).map_err(|_| DecodeError::Text)?;
    if origin.is_empty() {
        return Err(DecodeError::Text);
    }
    let epoch = u64::from_be_bytes(array(take(b, &mut at, 8)?));
    let seq = u64::from_be_bytes(array(take(b, &mut at, 8)?));
    let tag_len = u16::from_be_bytes(array(take(b, &mut at, 2)?));
    let tag = if tag_len == NO_TAG {
        None
    } else {
        let tag = take(b, &mut at, tag_len as usize)?;
        Some(
            std::str::from_utf8(tag)
                .map_err(|_| DecodeError::Text)?
                .to_owned(),
        )
    };
    let origin = origin.to_owned();
    let payload = bytes.slice(at..);
    if matches!(kind, Kind::Room | Kind::Direct) && !is_one_server_frame(&payload) {
        return Err(DecodeError::Frame);
    }
    Ok(Envelope {
        kind,
        origin,
        epoch,
        seq,
        tag,
        payload,
    })
}

fn take<'a>(b: &'a [u8], at: &mut usize, n: usize) -> Result<&'a [u8], DecodeError> {
    let end = at.checked_add(n).ok_or(DecodeError::Truncated)?;
    let out = b.get(*at..end).ok_or(DecodeError::Truncated)?;
    *at = end;
    Ok(out)
}

fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[..N]);
    out
}

/// True when `frame` is exactly one complete, unmasked WebSocket frame with FIN set and no
/// reserved bits: what a server may write to its clients. A frame that fails this is not
/// forwarded, so a stray publisher on the channel cannot corrupt client streams.
pub fn is_one_server_frame(frame: &[u8]) -> bool {
    let [b0, b1, rest @ ..] = frame else {
        return false;
    };
    if b0 & 0x80 == 0 || b0 & 0x70 != 0 || b1 & 0x80 != 0 {
        return false;
    }
    let (len, rest) = match b1 & 0x7f {
        126 => match rest {
            [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]) as u64, rest),
            _ => return false,
        },
        127 => match rest.split_first_chunk::<8>() {
            Some((len, rest)) => (u64::from_be_bytes(*len), rest),
            None => return false,
        },
        n => (n as u64, rest),
    };
    rest.len() as u64 == len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_frame(text: &str) -> Vec<u8> {
        let mut f = vec![0x81, text.len() as u8];
        f.extend_from_slice(text.as_bytes());
        f
    }

    #[test]
    fn exact_bytes_of_a_room_broadcast() {
        let frame = text_frame("hi");
        let bytes = encode(Kind::Room, "n1-", 7, 2, Some("n1-5"), &frame);
        let mut want = b"AR\x01\x01\x03n1-".to_vec();
        want.extend_from_slice(&7u64.to_be_bytes());
        want.extend_from_slice(&2u64.to_be_bytes());
        want.extend_from_slice(&[0, 4]);
        want.extend_from_slice(b"n1-5");
        want.extend_from_slice(&[0x81, 2, b'h', b'i']);
        assert_eq!(&bytes[..], &want[..]);
    }

    #[test]
    fn round_trip_every_kind() {
        let frame = text_frame("payload");
        for (kind, tag, payload) in [
            (Kind::Room, None, frame.clone()),
            (Kind::Room, Some("a-1"), frame.clone()),
            (Kind::Direct, Some("b-9"), frame.clone()),
            (Kind::Sse, Some("42"), b"id: 42\ndata: x\n\n".to_vec()),
            (Kind::Sse, None, b"data: \xe2\x82\xac\n\n".to_vec()),
            (Kind::CloseUser, Some("alice"), b"logged out".to_vec()),
            (Kind::CloseUser, Some("bob"), Vec::new()),
        ] {
            let bytes = encode(kind, "node-a-", u64::MAX, 1 << 40, tag, &payload);
            let env = decode(bytes).unwrap();
            assert_eq!(env.kind, kind);
            assert_eq!(env.origin, "node-a-");
            assert_eq!(env.epoch, u64::MAX);
            assert_eq!(env.seq, 1 << 40);
            assert_eq!(env.tag.as_deref(), tag);
            assert_eq!(&env.payload[..], &payload[..]);
        }
    }

    #[test]
    fn binary_payload_with_extended_lengths() {
        let mut frame = vec![0x82, 126, 0x01, 0x00];
        frame.extend((0..256).map(|i| i as u8));
        let env = decode(encode(Kind::Room, "x-", 1, 1, None, &frame)).unwrap();
        assert_eq!(&env.payload[..], &frame[..]);

        let mut big = vec![0x82, 127];
        big.extend_from_slice(&70_000u64.to_be_bytes());
        big.extend(std::iter::repeat_n(0u8, 70_000));
        assert!(is_one_server_frame(&big));
        big.push(0);
        assert!(!is_one_server_frame(&big));
    }

    #[test]
    fn rejects_what_is_not_an_envelope() {
        assert_eq!(decode(Bytes::from_static(b"")), Err(DecodeError::Truncated));
        assert_eq!(
            decode(Bytes::from_static(b"hello world")),
            Err(DecodeError::Magic)
        );
        assert_eq!(
            decode(Bytes::from_static(b"AR\x02\x01\x01a")),
            Err(DecodeError::Version(2))
        );
        assert_eq!(
            decode(Bytes::from_static(b"AR\x01\x09\x01a")),
            Err(DecodeError::Kind(9))
        );
        let good = encode(Kind::Room, "n-", 1, 1, Some("n-1"), &text_frame("x"));
        for cut in 0..good.len() {
            assert!(decode(good.slice(..cut)).is_err(), "cut at {cut}");
        }
        // Origin not UTF-8; empty origin.
        let mut bad = good.to_vec();
        bad[5] = 0xff;
        assert_eq!(decode(Bytes::from(bad)), Err(DecodeError::Text));
        let empty = encode(Kind::Room, "", 1, 1, None, &text_frame("x"));
        assert_eq!(decode(empty), Err(DecodeError::Text));
    }

    #[test]
    fn rejects_payloads_that_are_not_one_server_frame() {
        for frame in [
            vec![],
            vec![0x01, 0x00],             // FIN clear
            vec![0xc1, 0x00],             // RSV1 set
            vec![0x81, 0x81, 0, 0, 0, 0], // masked
            vec![0x81, 0x03, b'a'],       // short
            vec![0x81, 0x00, b'a'],       // trailing bytes
        ] {
            let env = encode(Kind::Room, "n-", 1, 1, None, &frame);
            assert_eq!(decode(env), Err(DecodeError::Frame), "{frame:?}");
        }
        // An SSE payload is not a frame and is not checked here.
        assert!(decode(encode(Kind::Sse, "n-", 1, 1, None, b"data: x\n\n")).is_ok());
    }

    #[test]
    fn decode_never_panics_on_mutations() {
        let good = encode(
            Kind::Direct,
            "node-",
            3,
            4,
            Some("node-7"),
            &text_frame("abc"),
        );
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut m = good.to_vec();
                m[i] = v;
                let _ = decode(Bytes::from(m));
            }
        }
    }
}
