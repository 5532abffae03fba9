//! Decoder tests, grouped by RFC 6455 section, with literal bytes.

use bytes::{Bytes, BytesMut};

use super::*;
use crate::close::CloseCode;
use crate::encoder::encode_frame_into;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One client frame (masked with `MASK`).
fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    encode_frame_into(OpCode::from(opcode), fin, payload, Some(MASK), &mut dst);
    dst.to_vec()
}

fn server() -> Decoder {
    Decoder::new(Config::server())
}

/// Decodes everything in `bytes` at once, collecting the messages until an error.
fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Result<Vec<WebSocketMessage>> {
    let mut src = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(msg) = decoder.decode(&mut src)? {
        out.push(msg);
    }
    Ok(out)
}

fn first_error(bytes: &[u8]) -> Error {
    match decode_all(&mut server(), bytes) {
        Err(err) => err,
        Ok(msgs) => panic!("expected an error, decoded {msgs:?}"),
    }
}

mod rfc6455_5_1_masking {
    use super::*;

    #[test]
    fn server_rejects_unmasked_frames_with_1002() {
        let err = first_error(b"\x81\x05Hello");
        assert_eq!(err, Error::Protocol(ProtocolError::UnmaskedFrame));
        assert_eq!(err.close_code(), CloseCode::Protocol);
    }

    #[test]
    fn server_may_accept_unmasked_frames_when_configured() {
        let mut d = Decoder::new(Config::server().accept_unmasked_frames(true));
        assert_eq!(
            decode_all(&mut d, b"\x81\x05Hello"),
            Ok(vec![WebSocketMessage::text("Hello")])
        );
    }

    #[test]
    fn client_rejects_masked_frames_and_reads_unmasked_ones() {
        let mut d = Decoder::new(Config::client());
        assert_eq!(
            decode_all(&mut d, b"\x81\x05Hello"),
            Ok(vec![WebSocketMessage::text("Hello")])
        );
        let mut d = Decoder::new(Config::client());
        assert_eq!(
            decode_all(&mut d, &frame(0x1, true, b"Hello")),
            Err(Error::Protocol(ProtocolError::MaskedFrame))
        );
    }
}

mod rfc6455_5_2_base_framing {
    use super::*;

    #[test]
    fn reserved_opcodes_are_rejected_with_1002() {
        for op in (0x3..=0x7).chain(0xB..=0xF) {
            let err = first_error(&frame(op, true, b""));
            assert_eq!(err, Error::Protocol(ProtocolError::ReservedOpcode(op)));
            assert_eq!(err.close_code(), CloseCode::Protocol);
        }
    }

    #[test]
    fn rsv_bits_without_extension_are_rejected_with_1002() {
        for rsv in [0x40u8, 0x20, 0x10] {
            let mut bytes = frame(0x1, true, b"x");
            bytes[0] |= rsv;
            assert_eq!(
                first_error(&bytes),
                Error::Protocol(ProtocolError::RsvWithoutExtension)
            );
        }
    }

    #[test]
    fn length_with_top_bit_is_rejected_with_1002() {
        let bytes = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        let err = first_error(&bytes);
        assert_eq!(err, Error::Protocol(ProtocolError::LengthTopBit));
        assert_eq!(err.close_code(), CloseCode::Protocol);
    }

    #[test]
    fn masked_hello_from_the_rfc() {
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(
            decode_all(&mut server(), &bytes),
            Ok(vec![WebSocketMessage::text("Hello")])
        );
    }

    #[test]
    fn extended_lengths() {
        for len in [125usize, 126, 65535, 65536] {
            let payload = vec![0x5A; len];
            let bytes = frame(0x2, true, &payload);
            assert_eq!(
                decode_all(&mut server(), &bytes),
                Ok(vec![WebSocketMessage::binary(payload)]),
                "len {len}"
            );
        }
    }
}

mod rfc6455_5_4_fragmentation {
    use super::*;

    #[test]
    fn fragmented_text_from_the_rfc() {
        let mut bytes = frame(0x1, false, b"Hel");
        bytes.extend(frame(0x0, true, b"lo"));
        let mut d = server();
        assert_eq!(
            decode_all(&mut d, &bytes),
            Ok(vec![WebSocketMessage::text("Hello")])
        );
        assert!(!d.in_fragmented_message());
    }

    #[test]
    fn control_frames_between_fragments_come_out_first() {
        let mut bytes = frame(0x2, false, b"ab");
        bytes.extend(frame(0x9, true, b"p1"));
        bytes.extend(frame(0x0, false, b"cd"));
        bytes.extend(frame(0xA, true, b"p2"));
        bytes.extend(frame(0x0, true, b"ef"));
        assert_eq!(
            decode_all(&mut server(), &bytes),
            Ok(vec![
                WebSocketMessage::ping(&b"p1"[..]),
                WebSocketMessage::pong(&b"p2"[..]),
                WebSocketMessage::binary(&b"abcdef"[..]),
            ])
        );
    }

    #[test]
    fn continuation_with_nothing_to_continue_is_1002() {
        let err = first_error(&frame(0x0, true, b"x"));
        assert_eq!(err, Error::Protocol(ProtocolError::UnexpectedContinuation));
        assert_eq!(err.close_code(), CloseCode::Protocol);
    }

    #[test]
    fn new_data_frame_inside_a_fragmented_message_is_1002() {
        for op in [0x1, 0x2] {
            let mut bytes = frame(0x1, false, b"a");
            bytes.extend(frame(op, true, b"b"));
            assert_eq!(
                first_error(&bytes),
                Error::Protocol(ProtocolError::ExpectedContinuation)
            );
        }
    }

    #[test]
    fn empty_fragments_are_fine() {
        let mut bytes = frame(0x1, false, b"");
        bytes.extend(frame(0x0, false, b""));
        bytes.extend(frame(0x0, true, b""));
        assert_eq!(
            decode_all(&mut server(), &bytes),
            Ok(vec![WebSocketMessage::text("")])
        );
    }
}

mod rfc6455_5_5_control_frames {
    use super::*;

    #[test]
    fn control_payload_over_125_is_1002() {
        let err = first_error(&frame(0x9, true, &[0; 126]));
        assert_eq!(err, Error::Protocol(ProtocolError::ControlFrameTooBig(126)));
        assert_eq!(err.close_code(), CloseCode::Protocol);
        // 125 is fine.
        assert_eq!(
            decode_all(&mut server(), &frame(0xA, true, &[1; 125])),
            Ok(vec![WebSocketMessage::pong(vec![1; 125])])
        );
    }

    #[test]
    fn fragmented_control_frame_is_1002() {
        for op in [0x8, 0x9, 0xA] {
            assert_eq!(
                first_error(&frame(op, false, b"")),
                Error::Protocol(ProtocolError::FragmentedControl)
            );
        }
    }
}

mod rfc6455_5_5_1_close {
    use super::*;

    #[test]
    fn close_with_code_and_reason() {
        let mut d = server();
        assert_eq!(
            decode_all(&mut d, &frame(0x8, true, b"\x03\xe8bye")),
            Ok(vec![WebSocketMessage::Close])
        );
        assert_eq!(
            d.close_frame(),
            Some(&CloseFrame::new(CloseCode::Normal, "bye"))
        );
        assert!(!d.in_fragmented_message());
        let mut d = server();
        assert_eq!(
            decode_all(&mut d, &frame(0x8, true, b"")),
            Ok(vec![WebSocketMessage::Close])
        );
        assert_eq!(d.close_frame(), None);
        assert!(d.is_closed());
    }

    /// A close between the fragments of a message ends the message too.
    #[test]
    fn close_inside_a_fragmented_message() {
        let mut bytes = frame(0x1, false, b"par");
        bytes.extend(frame(0x8, true, b"\x03\xe9"));
        let mut d = server();
        assert_eq!(
            decode_all(&mut d, &bytes),
            Ok(vec![WebSocketMessage::Close])
        );
        assert_eq!(d.close_frame().map(|f| f.code), Some(CloseCode::Away));
        assert!(!d.in_fragmented_message());
    }

    #[test]
    fn one_byte_close_payload_is_1002() {
        assert_eq!(
            first_error(&frame(0x8, true, b"\x03")),
            Error::Protocol(ProtocolError::ClosePayloadOneByte)
        );
    }

    /// RFC 6455 §7.4: codes that may not appear on the wire.
    #[test]
    fn invalid_close_codes_are_1002() {
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let err = first_error(&frame(0x8, true, &code.to_be_bytes()));
            assert_eq!(
                err,
                Error::Protocol(ProtocolError::InvalidCloseCode(code)),
                "{code}"
            );
        }
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            let mut d = server();
            let msgs = decode_all(&mut d, &frame(0x8, true, &code.to_be_bytes()));
            assert_eq!(msgs, Ok(vec![WebSocketMessage::Close]), "{code}");
            assert_eq!(d.close_frame(), Some(&CloseFrame::new(code, "")), "{code}");
        }
    }

    #[test]
    fn non_utf8_close_reason_is_1007() {
        let err = first_error(&frame(
            0x8,
            true,
            b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
        ));
        assert_eq!(err, Error::InvalidUtf8);
        assert_eq!(err.close_code(), CloseCode::Invalid);
    }

    #[test]
    fn nothing_may_follow_a_close() {
        let mut bytes = frame(0x8, true, b"");
        bytes.extend(frame(0x1, true, b"late"));
        let mut d = server();
        let mut src = BytesMut::from(&bytes[..]);
        assert_eq!(d.decode(&mut src), Ok(Some(WebSocketMessage::Close)));
        assert!(d.is_closed());
        assert_eq!(
            d.decode(&mut src),
            Err(Error::Protocol(ProtocolError::FrameAfterClose))
        );
    }
}

mod rfc6455_5_6_text_utf8 {
    use super::*;

    #[test]
    fn invalid_single_frame_text_is_1007() {
        let err = first_error(&frame(
            0x1,
            true,
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
        ));
        assert_eq!(err, Error::InvalidUtf8);
        assert_eq!(err.close_code(), CloseCode::Invalid);
    }

    /// Fragment 1 valid, fragment 2 invalid: the error comes with fragment 2, before the
    /// final fragment exists.
    #[test]
    fn invalid_fragment_fails_before_the_message_ends() {
        let mut d = server();
        let mut src = BytesMut::from(&frame(0x1, false, "κόσμε".as_bytes())[..]);
        assert_eq!(d.decode(&mut src), Ok(None));
        assert!(d.in_fragmented_message());
        src.extend_from_slice(&frame(0x0, false, b"\xf4\x90\x80\x80"));
        assert_eq!(d.decode(&mut src), Err(Error::InvalidUtf8));
        // …and the decoder stays failed, whatever comes next.
        src.extend_from_slice(&frame(0x0, true, b"ok"));
        assert_eq!(d.decode(&mut src), Err(Error::InvalidUtf8));
        assert_eq!(d.error(), Some(Error::InvalidUtf8));
    }

    #[test]
    fn code_points_cut_by_fragment_boundaries_are_fine() {
        // "€" is E2 82 AC, cut across three fragments.
        let mut bytes = frame(0x1, false, b"price: \xe2");
        bytes.extend(frame(0x0, false, b"\x82"));
        bytes.extend(frame(0x0, true, b"\xac5"));
        assert_eq!(
            decode_all(&mut server(), &bytes),
            Ok(vec![WebSocketMessage::text("price: €5")])
        );
    }

    #[test]
    fn text_ending_inside_a_code_point_is_1007() {
        let mut bytes = frame(0x1, false, b"a\xe2\x82");
        bytes.extend(frame(0x0, true, b""));
        assert_eq!(first_error(&bytes), Error::InvalidUtf8);
    }

    #[test]
    fn binary_is_not_checked() {
        let mut bytes = frame(0x2, false, b"\xff");
        bytes.extend(frame(0x0, true, b"\xfe"));
        assert_eq!(
            decode_all(&mut server(), &bytes),
            Ok(vec![WebSocketMessage::binary(&b"\xff\xfe"[..])])
        );
    }
}

/// RFC 6455 §10.4: implementations should limit frame and message sizes.
mod rfc6455_10_4_limits {
    use super::*;

    #[test]
    fn huge_announced_length_is_refused_from_the_header_alone() {
        // 2^63 - 1 bytes announced; only the header is sent.
        let bytes = [
            0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
        ];
        let mut src = BytesMut::from(&bytes[..]);
        let err = server().decode(&mut src).unwrap_err();
        assert_eq!(
            err,
            Error::Capacity(CapacityError::FrameTooBig {
                size: (1 << 63) - 1,
                max: crate::DEFAULT_MAX_FRAME_SIZE
            })
        );
        assert_eq!(err.close_code(), CloseCode::Size);
        assert!(
            src.capacity() < 1024,
            "nothing was reserved for the payload"
        );
    }

    #[test]
    fn frame_over_max_frame_size_is_1009() {
        let mut d = Decoder::new(Config::server().max_frame_size(100));
        assert_eq!(
            decode_all(&mut d, &frame(0x2, true, &[0; 100])).map(|m| m.len()),
            Ok(1)
        );
        let mut d = Decoder::new(Config::server().max_frame_size(100));
        // Header only: the payload has not arrived.
        let err = decode_all(&mut d, &frame(0x2, true, &[0; 101])[..8]).unwrap_err();
        assert_eq!(
            err,
            Error::Capacity(CapacityError::FrameTooBig {
                size: 101,
                max: 100
            })
        );
    }

    #[test]
    fn message_limit_is_checked_per_fragment() {
        let mut d = Decoder::new(Config::server().max_message_size(10));
        let mut src = BytesMut::from(&frame(0x2, false, &[1; 6])[..]);
        assert_eq!(d.decode(&mut src), Ok(None));
        // The second fragment's header alone (6 + 5 > 10) fails it.
        src.extend_from_slice(&frame(0x0, false, &[2; 5])[..6]);
        let err = d.decode(&mut src).unwrap_err();
        assert_eq!(
            err,
            Error::Capacity(CapacityError::MessageTooBig { size: 11, max: 10 })
        );
        assert_eq!(err.close_code(), CloseCode::Size);
    }

    #[test]
    fn single_frame_over_message_limit_is_1009() {
        let mut d = Decoder::new(Config::server().max_message_size(4));
        assert_eq!(
            decode_all(&mut d, &frame(0x1, true, b"hello")),
            Err(Error::Capacity(CapacityError::MessageTooBig {
                size: 5,
                max: 4
            }))
        );
    }

    #[test]
    fn capacity_for_the_awaited_frame_is_reserved() {
        let bytes = frame(0x2, true, &[7; 5000]);
        let mut src = BytesMut::from(&bytes[..8]);
        let mut d = server();
        assert_eq!(d.decode(&mut src), Ok(None));
        assert!(src.capacity() >= 5000 + 8, "capacity {}", src.capacity());
        src.extend_from_slice(&bytes[8..]);
        assert_eq!(
            d.decode(&mut src),
            Ok(Some(WebSocketMessage::binary(vec![7; 5000])))
        );
    }
}

mod streaming {
    use super::*;

    fn sample() -> (Vec<u8>, Vec<WebSocketMessage>) {
        let mut bytes = frame(0x1, true, "héllo".as_bytes());
        bytes.extend(frame(0x2, false, &[1, 2, 3]));
        bytes.extend(frame(0x9, true, b"are you there"));
        bytes.extend(frame(0x0, true, &[4; 300]));
        bytes.extend(frame(0x1, false, b"\xf0\x9f"));
        bytes.extend(frame(0x0, true, b"\x98\x80!"));
        bytes.extend(frame(0x8, true, b"\x03\xe9going away"));
        let mut binary = vec![1, 2, 3];
        binary.extend([4; 300]);
        let expected = vec![
            WebSocketMessage::text("héllo"),
            WebSocketMessage::ping(&b"are you there"[..]),
            WebSocketMessage::binary(binary),
            WebSocketMessage::text("😀!"),
            WebSocketMessage::Close,
        ];
        (bytes, expected)
    }

    #[test]
    fn one_byte_at_a_time() {
        let (bytes, expected) = sample();
        let mut d = server();
        let mut src = BytesMut::new();
        let mut out = Vec::new();
        for b in bytes {
            src.extend_from_slice(&[b]);
            while let Some(msg) = d.decode(&mut src).unwrap() {
                out.push(msg);
            }
        }
        assert_eq!(out, expected);
        assert!(src.is_empty());
    }

    #[test]
    fn all_at_once() {
        let (bytes, expected) = sample();
        assert_eq!(decode_all(&mut server(), &bytes), Ok(expected));
    }

    #[test]
    fn single_frame_payload_is_not_copied() {
        let bytes = frame(0x2, true, &[9; 1000]);
        let mut src = BytesMut::from(&bytes[..]);
        let start = src.as_ptr() as usize;
        let msg = server().decode(&mut src).unwrap();
        let Some(WebSocketMessage::Binary(data)) = msg else {
            panic!("expected binary, got {msg:?}");
        };
        // The payload is the input buffer's memory, unmasked in place.
        assert_eq!(data.as_ptr() as usize, start + 8);
        assert_eq!(data, Bytes::from(vec![9u8; 1000]));
    }

    #[test]
    fn idle_decoder_is_small_and_holds_no_buffer() {
        // 48 bytes of RFC 6455 state (the error boxed), plus the permessage-deflate slot (a pointer, empty
        // while idle without context takeover).
        assert!(
            std::mem::size_of::<Decoder>() <= 56,
            "{}",
            std::mem::size_of::<Decoder>()
        );
        let mut d = server();
        decode_all(&mut d, &frame(0x2, false, b"x")).unwrap();
        assert!(d.in_fragmented_message());
        decode_all(&mut d, &frame(0x0, true, b"y")).unwrap();
        assert!(d.partial.is_none(), "the message buffer is released");
    }
}
