//! The decoder with permessage-deflate (RFC 7692 §6, §7.2): RSV1 rules, compressed
//! fragments, limits while inflating, context takeover, with literal bytes.

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::close::CloseCode;
use crate::compression::Compressor;
use crate::encoder::Encoder;
use crate::frame::FrameHeader;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// RFC 7692 §7.2.3.1: "Hello" compressed.
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

fn nct() -> DirectionParams {
    DirectionParams {
        window_bits: 15,
        no_context_takeover: true,
    }
}

fn takeover() -> DirectionParams {
    DirectionParams {
        window_bits: 15,
        no_context_takeover: false,
    }
}

/// One client frame, masked with `MASK`, with the RSV bits given.
fn frame(opcode: u8, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mut header = FrameHeader::new(OpCode::from(opcode), payload.len() as u64);
    header.fin = fin;
    header.rsv1 = rsv1;
    header.mask = Some(MASK);
    let mut dst = BytesMut::new();
    header.encode(&mut dst);
    let start = dst.len();
    dst.extend_from_slice(payload);
    crate::frame::apply_mask(&mut dst[start..], MASK);
    dst.to_vec()
}

fn server(params: DirectionParams) -> Decoder {
    Decoder::new(Config::server()).with_deflate(params)
}

fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Result<Vec<WebSocketMessage>> {
    let mut src = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(msg) = decoder.decode(&mut src)? {
        out.push(msg);
    }
    Ok(out)
}

/// §7.2.3.1, as the client role receives it: `c1 07 f2 48 cd c9 c9 07 00`, whole and in
/// two fragments (`41 03 f2 48 cd`, `80 04 c9 c9 07 00`).
#[test]
fn rfc7692_7_2_3_1_unmasked_frames_byte_for_byte() {
    let mut client = Decoder::new(Config::client()).with_deflate(nct());
    let whole = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(
        decode_all(&mut client, &whole),
        Ok(vec![WebSocketMessage::text("Hello")])
    );
    let fragments = [
        0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
    ];
    assert_eq!(
        decode_all(&mut client, &fragments),
        Ok(vec![WebSocketMessage::text("Hello")])
    );
}

/// §7.2.3.2: the second message refers to the first's window.
#[test]
fn rfc7692_7_2_3_2_context_takeover_across_messages() {
    let mut d = server(takeover());
    let mut bytes = frame(0x1, true, true, &HELLO);
    bytes.extend(frame(0x1, true, true, &[0xf2, 0x00, 0x11, 0x00, 0x00]));
    assert_eq!(
        decode_all(&mut d, &bytes),
        Ok(vec![
            WebSocketMessage::text("Hello"),
            WebSocketMessage::text("Hello")
        ])
    );
    assert!(d.holds_decompressor(), "context takeover keeps the window");
    // Without context takeover the reference has nothing to point at.
    let mut d = server(nct());
    let err = decode_all(&mut d, &bytes).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::InvalidCompressedData));
}

/// §7.2.3.3–§7.2.3.6 through the decoder: stored block, BFINAL, two blocks, empty.
#[test]
fn rfc7692_7_2_3_other_payloads() {
    let mut d = server(nct());
    for payload in [
        &[
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ][..],
        &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
        &[
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ],
    ] {
        assert_eq!(
            decode_all(&mut d, &frame(0x1, true, true, payload)),
            Ok(vec![WebSocketMessage::text("Hello")])
        );
    }
    for empty in [&[0x00][..], &[0x02, 0x00], &[]] {
        assert_eq!(
            decode_all(&mut d, &frame(0x2, true, true, empty)),
            Ok(vec![WebSocketMessage::binary(Vec::new())])
        );
    }
}

/// RFC 6455 §5.2 / RFC 7692 §6: RSV1 means "compressed" only once negotiated.
#[test]
fn rsv1_without_negotiation_is_1002() {
    let err = decode_all(
        &mut Decoder::new(Config::server()),
        &frame(0x1, true, true, &HELLO),
    )
    .unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::RsvWithoutExtension));
    assert_eq!(err.close_code(), CloseCode::Protocol);
}

/// RFC 7692 §6.1: control frames are never compressed.
#[test]
fn compressed_control_frames_are_refused() {
    for opcode in [0x8, 0x9, 0xA] {
        let err = decode_all(&mut server(nct()), &frame(opcode, true, true, b"")).unwrap_err();
        assert_eq!(err, Error::Protocol(ProtocolError::CompressedControl));
        assert_eq!(err.close_code(), CloseCode::Protocol);
    }
}

/// RFC 7692 §6.1: RSV1 is set on the first frame only.
#[test]
fn rsv1_on_a_continuation_is_refused() {
    let mut bytes = frame(0x1, false, true, &HELLO[..3]);
    bytes.extend(frame(0x0, true, true, &HELLO[3..]));
    let err = decode_all(&mut server(nct()), &bytes).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::CompressedContinuation));
    // RSV2 and RSV3 stay reserved.
    let mut bad = frame(0x1, true, false, b"x");
    bad[0] |= 0x20;
    let err = decode_all(&mut server(nct()), &bad).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::RsvWithoutExtension));
}

/// Control frames between the fragments of a compressed message, and an uncompressed
/// message after it, on the same connection.
#[test]
fn fragments_with_control_frames_between() {
    let mut d = server(nct());
    let mut bytes = frame(0x1, false, true, &HELLO[..2]);
    bytes.extend(frame(0x9, true, false, b"p"));
    bytes.extend(frame(0x0, false, false, &HELLO[2..5]));
    bytes.extend(frame(0x0, true, false, &HELLO[5..]));
    bytes.extend(frame(0x1, true, false, b"plain"));
    assert_eq!(
        decode_all(&mut d, &bytes),
        Ok(vec![
            WebSocketMessage::ping(&b"p"[..]),
            WebSocketMessage::text("Hello"),
            WebSocketMessage::text("plain"),
        ])
    );
    assert!(
        !d.holds_decompressor(),
        "back in the pool after the message"
    );
}

#[test]
fn a_new_message_inside_a_compressed_one_is_refused() {
    let mut bytes = frame(0x1, false, true, &HELLO[..2]);
    bytes.extend(frame(0x1, true, true, &HELLO));
    let err = decode_all(&mut server(nct()), &bytes).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::ExpectedContinuation));
}

#[test]
fn compressed_invalid_utf8_is_1007() {
    let mut payload = Vec::new();
    Compressor::new(15, 6, true).compress(b"ok \xff\xfe", &mut payload);
    let err = decode_all(&mut server(nct()), &frame(0x1, true, true, &payload)).unwrap_err();
    assert_eq!(err, Error::InvalidUtf8);
    assert_eq!(err.close_code(), CloseCode::Invalid);
}

#[test]
fn corrupt_compressed_data_is_1002() {
    let err = decode_all(&mut server(nct()), &frame(0x2, true, true, &[0xff; 8])).unwrap_err();
    assert_eq!(err, Error::Protocol(ProtocolError::InvalidCompressedData));
    assert_eq!(err.close_code(), CloseCode::Protocol);
}

/// A bomb: a few KiB of compressed zeros, inflating to 16 MiB, against a 64 KiB limit:
/// 1009, having inflated at most one byte past the limit.
#[test]
fn a_bomb_is_1009_before_it_is_inflated() {
    let mut bomb = Vec::new();
    Compressor::new(15, 9, true).compress(&vec![0u8; 16 << 20], &mut bomb);
    let max = 64 << 10;
    let config = Config::server().max_message_size(max);
    for fragmented in [false, true] {
        let mut d = Decoder::new(config).with_deflate(nct());
        let bytes = if fragmented {
            let (a, b) = bomb.split_at(bomb.len() / 2);
            let mut bytes = frame(0x2, false, true, a);
            bytes.extend(frame(0x0, true, false, b));
            bytes
        } else {
            frame(0x2, true, true, &bomb)
        };
        let err = decode_all(&mut d, &bytes).unwrap_err();
        assert_eq!(
            err,
            Error::Capacity(CapacityError::MessageTooBig {
                size: max as u64 + 1,
                max
            })
        );
        assert_eq!(err.close_code(), CloseCode::Size);
        assert!(!d.holds_decompressor());
    }
}

/// The compressed frame's size is not the message's: a message that inflates to exactly
/// the limit passes even when its compressed frame is bigger than the plain one would be.
#[test]
fn limit_applies_to_the_inflated_size() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let mut payload = Vec::new();
    Compressor::new(15, 6, true).compress(&data, &mut payload);
    assert!(payload.len() > data.len(), "random data grows");
    let mut d = Decoder::new(Config::server().max_message_size(data.len())).with_deflate(nct());
    assert_eq!(
        decode_all(&mut d, &frame(0x2, true, true, &payload)),
        Ok(vec![WebSocketMessage::binary(data.clone())])
    );
    let mut d = Decoder::new(Config::server().max_message_size(data.len() - 1)).with_deflate(nct());
    assert!(
        decode_all(&mut d, &frame(0x2, true, true, &payload))
            .unwrap_err()
            .is_capacity()
    );
}

#[test]
fn an_idle_shared_mode_decoder_holds_nothing() {
    let mut d = server(nct());
    assert!(!d.holds_decompressor());
    decode_all(&mut d, &frame(0x1, true, true, &HELLO)).unwrap();
    assert!(!d.holds_decompressor());
    assert!(
        std::mem::size_of::<Decoder>() <= 56,
        "{}",
        std::mem::size_of::<Decoder>()
    );
}

proptest! {
    /// Whatever the client's compressor does and however the bytes are split, the server
    /// decodes the messages sent, with and without context takeover.
    #[test]
    fn round_trip_split_anywhere(
        messages in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(0u8..4, 0..3000)),
            1..6,
        ),
        takeover_mode in any::<bool>(),
        fragment_at in 1usize..200,
        split_at in 1usize..64,
    ) {
        let params = if takeover_mode { takeover() } else { nct() };
        let mut compressor = Compressor::new(15, 6, params.no_context_takeover);
        let mut encoder = Encoder::new(Role::Client);
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        for (text, bytes) in &messages {
            // Text from a small alphabet, so it compresses; binary as it is.
            let msg = if *text {
                WebSocketMessage::text(bytes.iter().map(|b| char::from(b'a' + b)).collect::<String>())
            } else {
                WebSocketMessage::binary(bytes.clone())
            };
            let frame = encoder.encode_deflated(&msg, &mut compressor).unwrap();
            // Re-cut long compressed frames into fragments.
            let (header, header_len) = FrameHeader::parse(&frame).unwrap().unwrap();
            let mut payload = frame[header_len..].to_vec();
            if let Some(mask) = header.mask {
                crate::frame::apply_mask(&mut payload, mask);
            }
            let pieces: Vec<&[u8]> = payload.chunks(fragment_at).collect();
            if pieces.len() <= 1 {
                wire.extend_from_slice(&frame);
            } else {
                for (i, piece) in pieces.iter().enumerate() {
                    let opcode = if i == 0 { header.opcode } else { OpCode::Continuation };
                    let mut h = FrameHeader::new(opcode, piece.len() as u64);
                    h.fin = i + 1 == pieces.len();
                    h.rsv1 = i == 0;
                    h.mask = Some(MASK);
                    h.encode(&mut wire);
                    let start = wire.len();
                    wire.extend_from_slice(piece);
                    crate::frame::apply_mask(&mut wire[start..], MASK);
                }
            }
            expected.push(msg);
        }
        let mut decoder = server(params);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for chunk in wire.chunks(split_at) {
            buf.extend_from_slice(chunk);
            while let Some(msg) = decoder.decode(&mut buf).unwrap() {
                got.push(msg);
            }
        }
        prop_assert_eq!(got, expected);
    }
}
