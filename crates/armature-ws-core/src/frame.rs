//! The frame header (RFC 6455 §5.2): FIN, RSV1–3, opcode, mask and the 7/16/64-bit length.

use bytes::{BufMut, BytesMut};

use crate::error::{ProtocolError, Result};
pub use crate::mask::{apply_mask, apply_mask_offset};
use crate::opcode::OpCode;

/// The longest header: 2 bytes, an 8-byte extended length and a 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A parsed frame header.
///
/// ```
/// use armature_ws_core::{FrameHeader, OpCode};
/// use bytes::BytesMut;
///
/// // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
/// let (header, len) = FrameHeader::parse(&[0x81, 0x05, b'H']).unwrap().unwrap();
/// assert_eq!(len, 2);
/// assert!(header.fin);
/// assert_eq!(header.opcode, OpCode::Text);
/// assert_eq!(header.payload_len, 5);
///
/// let mut out = BytesMut::new();
/// header.encode(&mut out);
/// assert_eq!(&out[..], [0x81, 0x05]);
///
/// assert_eq!(FrameHeader::parse(&[0x81]).unwrap(), None); // need more bytes
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Whether this is the final fragment of a message.
    pub fin: bool,
    /// RSV1; must be clear unless an extension says otherwise.
    pub rsv1: bool,
    /// RSV2; must be clear unless an extension says otherwise.
    pub rsv2: bool,
    /// RSV3; must be clear unless an extension says otherwise.
    pub rsv3: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on frames sent by clients.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// A header with FIN set, no RSV bits and no mask.
    pub fn new(opcode: OpCode, payload_len: u64) -> Self {
        Self {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// Parses a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not hold the whole header yet, else the header and
    /// the number of bytes it took. Fails on a 64-bit length with its top bit set and on a
    /// length not encoded in the fewest bytes (both §5.2). Checks that depend on the role or
    /// the connection's state are the [`Decoder`](crate::Decoder)'s.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut pos) = match b1 & 0x7F {
            126 => {
                let Some(ext) = buf.get(2..4) else {
                    return Ok(None);
                };
                let len = u16::from_be_bytes([ext[0], ext[1]]);
                if len < 126 {
                    return Err(ProtocolError::NonMinimalLength.into());
                }
                (u64::from(len), 4)
            }
            127 => {
                let Some(ext) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(ext);
                let len = u64::from_be_bytes(bytes);
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthTopBit.into());
                }
                if len <= u64::from(u16::MAX) {
                    return Err(ProtocolError::NonMinimalLength.into());
                }
                (len, 10)
            }
            short => (u64::from(short), 2),
        };
        let mask = if masked {
            let Some(key) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode: OpCode::from(b0 & 0x0F),
            mask,
            payload_len,
        };
        Ok(Some((header, pos)))
    }

    /// The encoded length of this header in bytes (2 to 14).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        let ext = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the encoded header to `dst`, with the length in the fewest bytes.
    #[inline]
    pub fn encode(&self, dst: &mut BytesMut) {
        let b0 = (u8::from(self.fin) << 7)
            | (u8::from(self.rsv1) << 6)
            | (u8::from(self.rsv2) << 5)
            | (u8::from(self.rsv3) << 4)
            | u8::from(self.opcode);
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        dst.reserve(self.len());
        dst.put_u8(b0);
        match self.payload_len {
            len @ 0..=125 => dst.put_u8(mask_bit | len as u8),
            len @ 126..=0xFFFF => {
                dst.put_u8(mask_bit | 126);
                dst.put_u16(len as u16);
            }
            len => {
                dst.put_u8(mask_bit | 127);
                dst.put_u64(len);
            }
        }
        if let Some(key) = self.mask {
            dst.put_slice(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn parse(bytes: &[u8]) -> (FrameHeader, usize) {
        FrameHeader::parse(bytes).unwrap().unwrap()
    }

    fn encode(h: &FrameHeader) -> Vec<u8> {
        let mut out = BytesMut::new();
        h.encode(&mut out);
        assert_eq!(out.len(), h.len());
        out.to_vec()
    }

    /// RFC 6455 §5.2: FIN, RSV1-3 and the opcode share the first byte.
    #[test]
    fn rfc6455_5_2_first_byte_bits() {
        let (h, _) = parse(&[0b1111_0010, 0x00]);
        assert!(h.fin && h.rsv1 && h.rsv2 && h.rsv3);
        assert_eq!(h.opcode, OpCode::Binary);
        let (h, _) = parse(&[0b0100_0001, 0x00]);
        assert!(!h.fin && h.rsv1 && !h.rsv2 && !h.rsv3);
        assert_eq!(h.opcode, OpCode::Text);
        assert_eq!(encode(&h), [0b0100_0001, 0x00]);
    }

    /// RFC 6455 §5.7: the examples section, headers byte for byte.
    #[test]
    fn rfc6455_5_7_examples() {
        // Single-frame masked text "Hello".
        let (h, n) = parse(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f]);
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.payload_len, 5);
        assert_eq!(encode(&h), [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d]);
        // Fragmented unmasked text: "Hel" then "lo".
        let (h, _) = parse(&[0x01, 0x03]);
        assert!(!h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        let (h, _) = parse(&[0x80, 0x02]);
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Continuation);
        // 256 bytes binary in a single unmasked frame.
        let (h, n) = parse(&[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!((h.payload_len, n), (256, 4));
        assert_eq!(encode(&h), [0x82, 0x7E, 0x01, 0x00]);
        // 64 KiB binary in a single unmasked frame.
        let bytes = [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
        let (h, n) = parse(&bytes);
        assert_eq!((h.payload_len, n), (65536, 10));
        assert_eq!(encode(&h), bytes);
        // Unmasked ping "Hello".
        let (h, _) = parse(&[0x89, 0x05]);
        assert_eq!(h.opcode, OpCode::Ping);
    }

    /// RFC 6455 §5.2: 7-bit, 16-bit and 64-bit lengths at their boundaries.
    #[test]
    fn rfc6455_5_2_length_boundaries() {
        for (len, expected) in [
            (0u64, vec![0x82, 0]),
            (125, vec![0x82, 125]),
            (126, vec![0x82, 126, 0, 126]),
            (65535, vec![0x82, 126, 0xFF, 0xFF]),
            (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
            (
                (1 << 63) - 1,
                vec![0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            ),
        ] {
            let h = FrameHeader::new(OpCode::Binary, len);
            assert_eq!(encode(&h), expected, "len {len}");
            assert_eq!(parse(&expected), (h, expected.len()));
        }
    }

    /// RFC 6455 §5.2: "the most significant bit MUST be 0".
    #[test]
    fn rfc6455_5_2_length_top_bit_is_an_error() {
        let bytes = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4];
        assert_eq!(
            FrameHeader::parse(&bytes),
            Err(Error::Protocol(ProtocolError::LengthTopBit))
        );
    }

    /// RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
    #[test]
    fn rfc6455_5_2_non_minimal_length_is_an_error() {
        assert_eq!(
            FrameHeader::parse(&[0x82, 126, 0, 125]),
            Err(Error::Protocol(ProtocolError::NonMinimalLength))
        );
        assert_eq!(
            FrameHeader::parse(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]),
            Err(Error::Protocol(ProtocolError::NonMinimalLength))
        );
    }

    #[test]
    fn incomplete_headers_need_more_bytes() {
        let full = [0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        for cut in 0..full.len() {
            assert_eq!(FrameHeader::parse(&full[..cut]), Ok(None), "cut {cut}");
        }
        assert_eq!(parse(&full).1, 14);
    }
}
