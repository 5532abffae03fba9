//! The client side of WebSocket framing (RFC 6455 §5), as the generator needs it: masked
//! frames out, unmasked server frames in, many per buffer.
//!
//! It owns no socket (bytes in, frames out), so one `read` that returns a hundred frames is
//! decoded without a hundred wake-ups, and a batch of outgoing frames leaves in one `write`.
//! That keeps the generator off the critical path; a general-purpose client would not.

use std::fmt;

/// Opcode of a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Opcode of a close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const OP_PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const OP_PONG: u8 = 0xA;

/// Largest payload the generator accepts from a server (its messages are tens of bytes).
pub const MAX_PAYLOAD: u64 = 1 << 20;

/// One decoded server frame, borrowing its payload from the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The opcode (low four bits of the first byte).
    pub opcode: u8,
    /// The payload.
    pub payload: &'a [u8],
}

/// A server frame the generator will not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// RSV bits set (no extension was negotiated).
    Reserved,
    /// A fragment (FIN clear or a continuation): no peer fragments a 64-byte message.
    Fragmented,
    /// A masked frame from a server (§5.1 forbids it).
    Masked,
    /// A payload above [`MAX_PAYLOAD`].
    TooLarge(u64),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reserved => f.write_str("reserved bits set in a server frame"),
            Self::Fragmented => f.write_str("fragmented server frame"),
            Self::Masked => f.write_str("masked server frame"),
            Self::TooLarge(n) => write!(f, "server frame of {n} bytes is too large"),
        }
    }
}

impl std::error::Error for WireError {}

/// Decodes the frame at the start of `buf`: `Ok(None)` when more bytes are needed, else
/// the frame and how many bytes it took.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, WireError> {
    Ok(decode_ext(buf, false)?.map(|(frame, used, _)| (frame, used)))
}

/// [`decode`] for a connection that negotiated permessage-deflate (`rsv1_ok`): RSV1 is
/// allowed on a data frame and returned as the third value (the payload is compressed).
pub fn decode_ext(
    buf: &[u8],
    rsv1_ok: bool,
) -> Result<Option<(Frame<'_>, usize, bool)>, WireError> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    let rsv1 = b0 & 0x40 != 0;
    if b0 & 0x30 != 0 || (rsv1 && (!rsv1_ok || b0 & 0x08 != 0)) {
        return Err(WireError::Reserved);
    }
    let opcode = b0 & 0x0F;
    if b0 & 0x80 == 0 || opcode == 0 {
        return Err(WireError::Fragmented);
    }
    if b1 & 0x80 != 0 {
        return Err(WireError::Masked);
    }
    let (len, head) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (u64::from_be_bytes(a), 10)
            }
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if len > MAX_PAYLOAD {
        return Err(WireError::TooLarge(len));
    }
    let end = head + len as usize;
    match buf.get(head..end) {
        Some(payload) => Ok(Some((Frame { opcode, payload }, end, rsv1))),
        None => Ok(None),
    }
}

/// Appends one final, masked client frame to `out`.
pub fn encode_masked(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    encode_masked_rsv(out, opcode, false, payload, mask);
}

/// [`encode_masked`] with RSV1 set when `compressed` (a permessage-deflate message).
pub fn encode_masked_rsv(
    out: &mut Vec<u8>,
    opcode: u8,
    compressed: bool,
    payload: &[u8],
    mask: [u8; 4],
) {
    out.push(0x80 | if compressed { 0x40 } else { 0 } | (opcode & 0x0F));
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
}

/// A cheap source of masking keys (xorshift32). Masking guards browsers against cache
/// poisoning; for a load generator on loopback only the format matters.
#[derive(Debug, Clone)]
pub struct MaskSource(u32);

impl MaskSource {
    /// A source seeded with `seed` (zero is replaced by a fixed odd constant).
    pub fn new(seed: u32) -> Self {
        Self(if seed == 0 { 0x9E37_79B9 } else { seed })
    }

    /// The next key.
    pub fn next_key(&mut self) -> [u8; 4] {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x.to_le_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_short_medium_and_long_lengths() {
        assert_eq!(
            decode(&[0x81, 0x02, b'h', b'i']),
            Ok(Some((
                Frame {
                    opcode: 1,
                    payload: b"hi"
                },
                4
            )))
        );
        let mut medium = vec![0x82, 126, 0x01, 0x00];
        medium.extend(std::iter::repeat_n(7u8, 256));
        let (f, used) = decode(&medium).unwrap().unwrap();
        assert_eq!((f.opcode, f.payload.len(), used), (2, 256, 260));
        let mut long = vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0];
        long.extend(std::iter::repeat_n(1u8, 65_536));
        let (f, used) = decode(&long).unwrap().unwrap();
        assert_eq!((f.payload.len(), used), (65_536, 65_546));
    }

    #[test]
    fn asks_for_more_bytes_at_every_cut() {
        let mut two = vec![0x81, 0x03, b'a', b'b', b'c'];
        two.extend_from_slice(&[0x82, 126, 0x00, 0x7E]);
        two.extend(std::iter::repeat_n(0u8, 126));
        for cut in 0..5 {
            assert_eq!(decode(&two[..cut]), Ok(None), "cut at {cut}");
        }
        let (_, used) = decode(&two).unwrap().unwrap();
        assert_eq!(used, 5);
        let rest = &two[used..];
        for cut in 0..rest.len() {
            assert_eq!(decode(&rest[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(decode(rest).unwrap().unwrap().1, rest.len());
    }

    #[test]
    fn rejects_what_a_peer_must_not_send() {
        assert_eq!(decode(&[0x01, 0x00]), Err(WireError::Fragmented));
        assert_eq!(decode(&[0x80, 0x00]), Err(WireError::Fragmented));
        assert_eq!(decode(&[0xC1, 0x00]), Err(WireError::Reserved));
        assert_eq!(
            decode(&[0x81, 0x81, 0, 0, 0, 0, b'a']),
            Err(WireError::Masked)
        );
        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&(MAX_PAYLOAD + 1).to_be_bytes());
        assert_eq!(decode(&huge), Err(WireError::TooLarge(MAX_PAYLOAD + 1)));
    }

    #[test]
    fn rsv1_only_where_deflate_was_negotiated() {
        let compressed = [0xC1, 0x01, 0x00];
        assert_eq!(decode(&compressed), Err(WireError::Reserved));
        let (frame, used, rsv1) = decode_ext(&compressed, true).unwrap().unwrap();
        assert_eq!((frame.opcode, used, rsv1), (OP_TEXT, 3, true));
        assert!(!decode_ext(&[0x81, 0x00], true).unwrap().unwrap().2);
        // never on a control frame, and RSV2/RSV3 stay refused
        assert_eq!(decode_ext(&[0xC9, 0x00], true), Err(WireError::Reserved));
        assert_eq!(decode_ext(&[0xA1, 0x00], true), Err(WireError::Reserved));
        let mut out = Vec::new();
        encode_masked_rsv(&mut out, OP_TEXT, true, b"", [0; 4]);
        assert_eq!(out, [0xC1, 0x80, 0, 0, 0, 0]);
    }

    #[test]
    fn encodes_the_rfc_masked_hello() {
        // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
        let mut out = Vec::new();
        encode_masked(&mut out, OP_TEXT, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(
            out,
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
    }

    #[test]
    fn encodes_extended_lengths() {
        let mut out = Vec::new();
        encode_masked(&mut out, OP_BINARY, &[0u8; 300], [1, 2, 3, 4]);
        assert_eq!(&out[..8], &[0x82, 0xFE, 0x01, 0x2C, 1, 2, 3, 4]);
        assert_eq!(out.len(), 8 + 300);
        // a zero payload XORed with the key repeats the key
        assert_eq!(&out[8..12], &[1, 2, 3, 4]);
        let mut out = Vec::new();
        encode_masked(&mut out, OP_BINARY, &vec![0u8; 70_000], [0; 4]);
        assert_eq!(&out[..10], &[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn mask_keys_change() {
        let mut m = MaskSource::new(0);
        let a = m.next_key();
        let b = m.next_key();
        assert_ne!(a, b);
    }
}
