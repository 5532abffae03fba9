//! Turning messages into frames: one message, one frame, as [`Bytes`].
//!
//! Server frames are not masked, so the bytes of one encoded message can be written to every
//! recipient of a broadcast. Client frames must be masked with a fresh key per frame
//! (RFC 6455 §5.3); [`Encoder`] in the client role does that, and the `*_masked` functions
//! take the key from the caller (for tests).
//!
//! ```
//! use armature_ws_core::{encode_message, encode_text, WebSocketMessage};
//!
//! // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
//! let frame = encode_text("Hello");
//! assert_eq!(&frame[..], [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
//! assert_eq!(encode_message(&WebSocketMessage::text("Hello")), frame);
//! ```

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use bytes::{BufMut, Bytes, BytesMut};

use crate::close::CloseFrame;
use crate::compression::{Compressor, with_shared_compressor};
use crate::config::Role;
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, apply_mask};
use crate::message::WebSocketMessage;
use crate::opcode::OpCode;

/// Appends one frame to `dst`: header, then `payload`, masked with `mask` if given.
///
/// This writes exactly what it is given: a control frame's payload should be at most 125
/// bytes and a control frame should have `fin` set (RFC 6455 §5.5); tests use this to build
/// frames that break those rules.
///
/// ```
/// use armature_ws_core::{encode_frame_into, OpCode};
/// use bytes::BytesMut;
///
/// let mut dst = BytesMut::new();
/// encode_frame_into(OpCode::Text, false, b"Hel", None, &mut dst);
/// encode_frame_into(OpCode::Continuation, true, b"lo", None, &mut dst);
/// assert_eq!(&dst[..], b"\x01\x03Hel\x80\x02lo");
/// ```
pub fn encode_frame_into(
    opcode: OpCode,
    fin: bool,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    dst: &mut BytesMut,
) {
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.fin = fin;
    header.mask = mask;
    dst.reserve(header.len() + payload.len());
    header.encode(dst);
    let start = dst.len();
    dst.put_slice(payload);
    if let Some(mask) = mask {
        apply_mask(&mut dst[start..], mask);
    }
}

/// The encoded size of `msg` as one frame, without a mask.
pub fn encoded_len(msg: &WebSocketMessage) -> usize {
    let len = payload_len(msg);
    FrameHeader::new(msg.opcode(), len as u64).len() + len
}

/// The payload length as sent: ping and pong payloads are cut to 125 bytes; a bare close
/// carries nothing (see [`encode_close`] for one with a code).
fn payload_len(msg: &WebSocketMessage) -> usize {
    match msg {
        WebSocketMessage::Text(text) => text.len(),
        WebSocketMessage::Binary(data) => data.len(),
        WebSocketMessage::Ping(data) | WebSocketMessage::Pong(data) => {
            data.len().min(MAX_CONTROL_PAYLOAD)
        }
        WebSocketMessage::Close => 0,
    }
}

fn encode_with(msg: &WebSocketMessage, mask: Option<[u8; 4]>, dst: &mut BytesMut) {
    match msg {
        WebSocketMessage::Text(text) => {
            encode_frame_into(OpCode::Text, true, text.as_bytes(), mask, dst);
        }
        WebSocketMessage::Binary(data) => encode_frame_into(OpCode::Binary, true, data, mask, dst),
        WebSocketMessage::Ping(data) => {
            let len = data.len().min(MAX_CONTROL_PAYLOAD);
            encode_frame_into(OpCode::Ping, true, &data[..len], mask, dst);
        }
        WebSocketMessage::Pong(data) => {
            let len = data.len().min(MAX_CONTROL_PAYLOAD);
            encode_frame_into(OpCode::Pong, true, &data[..len], mask, dst);
        }
        WebSocketMessage::Close => encode_close_into(None, mask, dst),
    }
}

/// A close frame with the code and reason of `close`, if given and sendable.
fn encode_close_into(close: Option<&CloseFrame>, mask: Option<[u8; 4]>, dst: &mut BytesMut) {
    let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
    let mut len = 0;
    if let Some(close) = close.filter(|c| c.code.is_allowed()) {
        let reason = close.wire_reason().as_bytes();
        payload[..2].copy_from_slice(&u16::from(close.code).to_be_bytes());
        payload[2..2 + reason.len()].copy_from_slice(reason);
        len = 2 + reason.len();
    }
    encode_frame_into(OpCode::Close, true, &payload[..len], mask, dst);
}

/// Appends `msg` as one unmasked frame (the server's way) to `dst`.
///
/// Ping and pong payloads longer than 125 bytes are cut to 125; a close reason is cut to 123
/// bytes at a character boundary; a close whose code may not be sent (1005, 1006, 1015, …)
/// goes out without a code.
pub fn encode_message_into(msg: &WebSocketMessage, dst: &mut BytesMut) {
    encode_with(msg, None, dst);
}

/// `msg` as one unmasked frame (the server's way): encode a broadcast once, clone the
/// [`Bytes`] per recipient. See [`encode_message_into`] for how control payloads are cut.
pub fn encode_message(msg: &WebSocketMessage) -> Bytes {
    let mut dst = BytesMut::with_capacity(encoded_len(msg));
    encode_with(msg, None, &mut dst);
    dst.freeze()
}

/// Appends `msg` as one frame masked with `mask` (the client's way) to `dst`.
pub fn encode_message_masked_into(msg: &WebSocketMessage, mask: [u8; 4], dst: &mut BytesMut) {
    encode_with(msg, Some(mask), dst);
}

/// `msg` as one frame masked with `mask` (the client's way).
pub fn encode_message_masked(msg: &WebSocketMessage, mask: [u8; 4]) -> Bytes {
    let mut dst = BytesMut::with_capacity(encoded_len(msg) + 4);
    encode_with(msg, Some(mask), &mut dst);
    dst.freeze()
}

/// A text message as one unmasked frame.
pub fn encode_text(text: &str) -> Bytes {
    let mut dst = BytesMut::with_capacity(text.len() + 10);
    encode_frame_into(OpCode::Text, true, text.as_bytes(), None, &mut dst);
    dst.freeze()
}

/// A binary message as one unmasked frame.
pub fn encode_binary(data: &[u8]) -> Bytes {
    let mut dst = BytesMut::with_capacity(data.len() + 10);
    encode_frame_into(OpCode::Binary, true, data, None, &mut dst);
    dst.freeze()
}

/// A close frame, unmasked: with the code and reason if given (see [`encode_message_into`]).
///
/// ```
/// use armature_ws_core::{encode_close, CloseCode, CloseFrame};
///
/// let frame = encode_close(Some(&CloseFrame::new(CloseCode::Normal, "bye")));
/// assert_eq!(&frame[..], b"\x88\x05\x03\xe8bye");
/// assert_eq!(&encode_close(None)[..], b"\x88\x00");
/// ```
pub fn encode_close(close: Option<&CloseFrame>) -> Bytes {
    let mut dst = BytesMut::with_capacity(2 + MAX_CONTROL_PAYLOAD);
    encode_close_into(close, None, &mut dst);
    dst.freeze()
}

/// A close frame masked with `mask` (the client's way), with the code and reason if given.
pub fn encode_close_masked(close: Option<&CloseFrame>, mask: [u8; 4]) -> Bytes {
    let mut dst = BytesMut::with_capacity(6 + MAX_CONTROL_PAYLOAD);
    encode_close_into(close, Some(mask), &mut dst);
    dst.freeze()
}

/// A data message as one frame compressed with permessage-deflate (RSV1 set, RFC 7692 §6),
/// masked with `mask` if given; `None` for a control message, which is never compressed
/// (send it with [`encode_message`]).
fn deflate_with(
    msg: &WebSocketMessage,
    mask: Option<[u8; 4]>,
    compress: impl FnOnce(&[u8], &mut Vec<u8>),
) -> Option<Bytes> {
    let (opcode, payload) = match msg {
        WebSocketMessage::Text(text) => (OpCode::Text, text.as_bytes()),
        WebSocketMessage::Binary(data) => (OpCode::Binary, &data[..]),
        _ => return None,
    };
    deflate_payload(opcode, payload, mask, compress)
}

/// The payload and opcode of an unmasked, unfragmented, uncompressed data frame: what
/// [`deflate_frame`] can compress.
fn plain_data_frame(frame: &[u8]) -> Option<(OpCode, &[u8])> {
    let (header, header_len) = FrameHeader::parse(frame).ok()??;
    let plain = header.fin && !header.rsv1 && header.mask.is_none();
    let whole = frame.len() as u64 == header_len as u64 + header.payload_len;
    match header.opcode {
        OpCode::Text | OpCode::Binary if plain && whole => {
            Some((header.opcode, frame.get(header_len..)?))
        }
        _ => None,
    }
}

/// An encoded unmasked frame (as [`encode_message`] makes it) compressed by `compressor`,
/// or `None` when it is not a whole uncompressed data frame (control frames are never
/// compressed). This lets a frame encoded once be compressed for the recipients that
/// negotiated permessage-deflate.
///
/// ```
/// use armature_ws_core::compression::Compressor;
/// use armature_ws_core::{deflate_frame, encode_text};
///
/// let mut compressor = Compressor::new(15, 6, true);
/// let frame = deflate_frame(&encode_text("Hello"), &mut compressor).unwrap();
/// assert_eq!(&frame[..], [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
/// assert_eq!(deflate_frame(b"\x89\x00", &mut compressor), None);
/// ```
pub fn deflate_frame(frame: &[u8], compressor: &mut Compressor) -> Option<Bytes> {
    let (opcode, payload) = plain_data_frame(frame)?;
    deflate_payload(opcode, payload, None, |p, out| compressor.compress(p, out))
}

/// Like [`deflate_frame`], with this thread's shared compressor for `window_bits` and
/// `level` (no context takeover; see [`encode_message_shared`]).
pub fn deflate_frame_shared(frame: &[u8], window_bits: u8, level: u32) -> Option<Bytes> {
    let (opcode, payload) = plain_data_frame(frame)?;
    with_shared_compressor(window_bits, level, |compressor| {
        deflate_payload(opcode, payload, None, |p, out| compressor.compress(p, out))
    })
}

fn deflate_payload(
    opcode: OpCode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
    compress: impl FnOnce(&[u8], &mut Vec<u8>),
) -> Option<Bytes> {
    // Compress behind room for the longest header, then write the header right before the
    // payload: the frame is one allocation and the payload is never copied.
    let mut buf = Vec::with_capacity(MAX_HEADER_LEN + payload.len() / 2 + 64);
    buf.resize(MAX_HEADER_LEN, 0);
    compress(payload, &mut buf);
    let len = buf.len() - MAX_HEADER_LEN;
    let mut header = FrameHeader::new(opcode, len as u64);
    header.rsv1 = true;
    header.mask = mask;
    let start = MAX_HEADER_LEN - header.len();
    let mut head = BytesMut::with_capacity(MAX_HEADER_LEN);
    header.encode(&mut head);
    buf.get_mut(start..MAX_HEADER_LEN)?.copy_from_slice(&head);
    if let (Some(mask), Some(body)) = (mask, buf.get_mut(MAX_HEADER_LEN..)) {
        apply_mask(body, mask);
    }
    // A message that compressed well would keep its input-sized buffer alive while queued.
    Some(if buf.capacity() > 2 * buf.len() + 64 {
        Bytes::copy_from_slice(buf.get(start..)?)
    } else {
        Bytes::from(buf).slice(start..)
    })
}

/// `msg` as one unmasked frame compressed by `compressor` (permessage-deflate, RSV1 set), or
/// `None` for a control message (never compressed). With context takeover the compressor
/// remembers the message, so frames from one compressor must reach one peer in order.
///
/// ```
/// use armature_ws_core::compression::Compressor;
/// use armature_ws_core::{encode_message_deflated, WebSocketMessage};
///
/// // RFC 7692 §7.2.3.1: "Hello" in one compressed frame.
/// let mut compressor = Compressor::new(15, 6, true);
/// let frame = encode_message_deflated(&WebSocketMessage::text("Hello"), &mut compressor);
/// assert_eq!(&frame.unwrap()[..], [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
/// assert_eq!(encode_message_deflated(&WebSocketMessage::ping("x"), &mut compressor), None);
/// ```
pub fn encode_message_deflated(
    msg: &WebSocketMessage,
    compressor: &mut Compressor,
) -> Option<Bytes> {
    deflate_with(msg, None, |payload, out| compressor.compress(payload, out))
}

/// `msg` as one unmasked compressed frame made by this thread's shared compressor for
/// `window_bits` and `level` (no context takeover), or `None` for a control message. This is
/// how a broadcast is compressed once for every recipient that negotiated no context
/// takeover with a window of at least `window_bits`.
///
/// ```
/// use armature_ws_core::{encode_message_shared, WebSocketMessage};
///
/// let frame = encode_message_shared(&WebSocketMessage::text("Hello"), 15, 6).unwrap();
/// assert_eq!(&frame[..], [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
/// ```
pub fn encode_message_shared(msg: &WebSocketMessage, window_bits: u8, level: u32) -> Option<Bytes> {
    if msg.is_control() {
        return None;
    }
    with_shared_compressor(window_bits, level, |compressor| {
        deflate_with(msg, None, |payload, out| compressor.compress(payload, out))
    })
}

/// Encodes messages for one role: unmasked for a server, masked with a new key per frame for a
/// client.
///
/// Client keys come from the standard library's randomly seeded SipHash over a counter, so
/// they cannot be predicted from earlier frames.
///
/// ```
/// use armature_ws_core::{Config, Decoder, Encoder, Role, WebSocketMessage};
/// use bytes::BytesMut;
///
/// let mut client = Encoder::new(Role::Client);
/// let mut wire = BytesMut::new();
/// client.encode(&WebSocketMessage::text("hi"), &mut wire);
/// assert_eq!(wire[1] & 0x80, 0x80, "masked");
///
/// let mut server = Decoder::new(Config::server());
/// assert_eq!(server.decode(&mut wire).unwrap(), Some(WebSocketMessage::text("hi")));
/// ```
#[derive(Debug, Clone)]
pub struct Encoder {
    role: Role,
    keys: RandomState,
    counter: u64,
}

impl Encoder {
    /// An encoder for `role`.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            keys: RandomState::new(),
            counter: 0,
        }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// A fresh masking key.
    pub fn next_mask(&mut self) -> [u8; 4] {
        self.counter = self.counter.wrapping_add(1);
        (self.keys.hash_one(self.counter) as u32).to_ne_bytes()
    }

    /// Appends `msg` as one frame to `dst`, masked in the client role.
    pub fn encode(&mut self, msg: &WebSocketMessage, dst: &mut BytesMut) {
        match self.role {
            Role::Server => encode_with(msg, None, dst),
            Role::Client => {
                let mask = self.next_mask();
                encode_with(msg, Some(mask), dst);
            }
        }
    }

    /// `msg` as one compressed frame (permessage-deflate, RSV1 set), masked in the client
    /// role; `None` for a control message, which is never compressed.
    pub fn encode_deflated(
        &mut self,
        msg: &WebSocketMessage,
        compressor: &mut Compressor,
    ) -> Option<Bytes> {
        let mask = match self.role {
            Role::Server => None,
            Role::Client => Some(self.next_mask()),
        };
        deflate_with(msg, mask, |payload, out| compressor.compress(payload, out))
    }

    /// Appends one frame to `dst` (see [`encode_frame_into`]), masked in the client role.
    pub fn encode_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8], dst: &mut BytesMut) {
        let mask = match self.role {
            Role::Server => None,
            Role::Client => Some(self.next_mask()),
        };
        encode_frame_into(opcode, fin, payload, mask, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close::CloseCode;

    /// RFC 6455 §5.7 examples, produced byte for byte.
    #[test]
    fn rfc6455_5_7_examples() {
        assert_eq!(&encode_text("Hello")[..], b"\x81\x05Hello");
        let masked =
            encode_message_masked(&WebSocketMessage::text("Hello"), [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(
            &masked[..],
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        assert_eq!(
            &encode_message(&WebSocketMessage::ping(&b"Hello"[..]))[..],
            b"\x89\x05Hello"
        );
        assert_eq!(
            &encode_message_masked(
                &WebSocketMessage::pong(&b"Hello"[..]),
                [0x37, 0xfa, 0x21, 0x3d]
            )[..],
            [
                0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        let big = vec![0xAB; 256];
        let frame = encode_binary(&big);
        assert_eq!(&frame[..4], [0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(&frame[4..], &big[..]);
        let big = vec![0xCD; 65536];
        let frame = encode_binary(&big);
        assert_eq!(&frame[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        assert_eq!(frame.len(), 65546);
    }

    /// RFC 6455 §5.5: control payloads are at most 125 bytes; §5.5.1: code then reason.
    #[test]
    fn rfc6455_5_5_control_payloads_are_cut() {
        let ping = encode_message(&WebSocketMessage::ping(vec![7u8; 300]));
        assert_eq!(ping.len(), 2 + 125);
        assert_eq!(ping[1], 125);
        let close = encode_close(Some(&CloseFrame::new(CloseCode::Normal, "x".repeat(200))));
        assert_eq!(close.len(), 2 + 125);
        assert_eq!(&close[2..4], b"\x03\xe8");
        let no_code = encode_close(Some(&CloseFrame::new(CloseCode::Abnormal, "gone")));
        assert_eq!(&no_code[..], b"\x88\x00");
        assert_eq!(&encode_message(&WebSocketMessage::Close)[..], b"\x88\x00");
        let masked = encode_close_masked(Some(&CloseFrame::new(CloseCode::Away, "")), [0; 4]);
        assert_eq!(&masked[..], b"\x88\x82\0\0\0\0\x03\xe9");
    }

    #[test]
    fn encoded_len_is_exact() {
        for msg in [
            WebSocketMessage::text("a".repeat(125)),
            WebSocketMessage::text("a".repeat(126)),
            WebSocketMessage::binary(vec![0; 70_000]),
            WebSocketMessage::ping(vec![0; 200]),
            WebSocketMessage::Close,
        ] {
            assert_eq!(encode_message(&msg).len(), encoded_len(&msg));
        }
    }

    #[test]
    fn client_encoder_masks_with_changing_keys() {
        let mut enc = Encoder::new(Role::Client);
        let (a, b) = (enc.next_mask(), enc.next_mask());
        assert_ne!(a, b);
        let mut dst = BytesMut::new();
        enc.encode(&WebSocketMessage::binary(vec![0u8; 4]), &mut dst);
        assert_eq!(dst[1], 0x84);
        // Zero payload XOR key = key: the payload on the wire is the key itself.
        assert_eq!(dst[2..6], dst[6..10]);

        let mut server = Encoder::new(Role::Server);
        let mut dst = BytesMut::new();
        server.encode(&WebSocketMessage::text("hi"), &mut dst);
        assert_eq!(&dst[..], b"\x81\x02hi");
    }
}
