//! Property tests: round trips under arbitrary fragmentation and read splits, and a decoder
//! that never panics and never depends on how its input was split.

use armature_ws_core::{
    CloseCode, CloseFrame, Config, Decoder, Error, OpCode, WebSocketMessage, encode_close,
    encode_close_masked, encode_frame_into, encode_message, encode_message_masked_into,
};
use bytes::BytesMut;
use proptest::prelude::*;

fn data_message() -> impl Strategy<Value = WebSocketMessage> {
    prop_oneof![
        ".{0,200}".prop_map(WebSocketMessage::text),
        prop::collection::vec(any::<u8>(), 0..700).prop_map(WebSocketMessage::binary),
    ]
}

fn control_message() -> impl Strategy<Value = WebSocketMessage> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(WebSocketMessage::ping),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(WebSocketMessage::pong),
    ]
}

/// A close frame's content: `None` for a close without a code.
fn close_message() -> impl Strategy<Value = Option<CloseFrame>> {
    let code = prop_oneof![(1000u16..=1003), (1007u16..=1014), (3000u16..=4999),];
    prop_oneof![
        Just(None),
        (code, "[a-zé€]{0,40}").prop_map(|(c, r)| Some(CloseFrame::new(c, r))),
    ]
}

/// A data message cut into fragments at `cuts` (byte offsets, sorted, anywhere — also inside
/// a UTF-8 code point), with `controls` sent between the fragments.
#[derive(Debug, Clone)]
struct Plan {
    message: WebSocketMessage,
    cuts: Vec<usize>,
    controls: Vec<WebSocketMessage>,
}

fn plan() -> impl Strategy<Value = Plan> {
    (
        data_message(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        prop::collection::vec(control_message(), 0..3),
    )
        .prop_map(|(message, cut_idx, controls)| {
            let len = message.len();
            let mut cuts: Vec<usize> = cut_idx.iter().map(|i| i.index(len + 1)).collect();
            cuts.sort_unstable();
            Plan {
                message,
                cuts,
                controls,
            }
        })
}

/// Writes the plan as masked client frames; returns the messages a decoder must yield in
/// order (the controls come out before the message they interrupt).
fn write_plan(plan: &Plan, mask: [u8; 4], wire: &mut BytesMut) -> Vec<WebSocketMessage> {
    let payload = plan.message.as_payload();
    let mut bounds = vec![0];
    bounds.extend(&plan.cuts);
    bounds.push(payload.len());
    let pieces: Vec<&[u8]> = bounds.windows(2).map(|w| &payload[w[0]..w[1]]).collect();
    let mut expected = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let opcode = if i == 0 {
            plan.message.opcode()
        } else {
            OpCode::Continuation
        };
        let fin = i == pieces.len() - 1;
        encode_frame_into(opcode, fin, piece, Some(mask), wire);
        if !fin {
            if let Some(control) = plan.controls.get(i) {
                encode_message_masked_into(control, mask, wire);
                expected.push(control.clone());
            }
        }
    }
    expected.push(plan.message.clone());
    expected
}

/// Feeds `wire` to a fresh decoder in reads of the given sizes (cycled), collecting the
/// messages and the error, if any.
fn decode_split(
    config: Config,
    wire: &[u8],
    splits: &[usize],
) -> (Vec<WebSocketMessage>, Option<Error>, Option<CloseFrame>) {
    let mut decoder = Decoder::new(config);
    let mut src = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut split = splits.iter().copied().cycle();
    while pos < wire.len() {
        let n = split
            .next()
            .unwrap_or(wire.len())
            .max(1)
            .min(wire.len() - pos);
        src.extend_from_slice(&wire[pos..pos + n]);
        pos += n;
        loop {
            match decoder.decode(&mut src) {
                Ok(Some(msg)) => out.push(msg),
                Ok(None) => break,
                Err(err) => {
                    // Failed for good: the same error again, whatever follows.
                    src.extend_from_slice(&[0x81, 0x80, 0, 0, 0, 0]);
                    assert_eq!(decoder.decode(&mut src), Err(err));
                    return (out, Some(err), decoder.close_frame().cloned());
                }
            }
        }
    }
    (out, None, decoder.close_frame().cloned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Encode → decode gives back every message, however fragmented and however the bytes
    /// were split into reads (down to one byte).
    #[test]
    fn round_trip_with_fragmentation_and_read_splits(
        plans in prop::collection::vec(plan(), 1..6),
        close in prop::option::of(close_message()),
        mask in prop::array::uniform4(any::<u8>()),
        splits in prop::collection::vec(1usize..64, 1..8),
    ) {
        let mut wire = BytesMut::new();
        let mut expected = Vec::new();
        for plan in &plans {
            expected.extend(write_plan(plan, mask, &mut wire));
        }
        if let Some(close) = &close {
            wire.extend_from_slice(&encode_close_masked(close.as_ref(), mask));
            expected.push(WebSocketMessage::Close);
        }
        let expected_close = close.flatten();
        let (out, err, got_close) = decode_split(Config::server(), &wire, &splits);
        prop_assert_eq!(err, None);
        prop_assert_eq!(&out, &expected);
        prop_assert_eq!(&got_close, &expected_close);
        let (one_by_one, err, got_close) = decode_split(Config::server(), &wire, &[1]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(one_by_one, expected);
        prop_assert_eq!(got_close, expected_close);
    }

    /// Unmasked server frames round-trip through a client-role decoder.
    #[test]
    fn server_frames_round_trip_to_a_client(
        messages in prop::collection::vec(prop_oneof![data_message(), control_message()], 0..8),
        splits in prop::collection::vec(1usize..300, 1..4),
    ) {
        let wire: Vec<u8> = messages.iter().flat_map(|m| encode_message(m).to_vec()).collect();
        let (out, err, _) = decode_split(Config::client(), &wire, &splits);
        prop_assert_eq!(err, None);
        prop_assert_eq!(out, messages);
    }

    /// Arbitrary bytes never panic the decoder, in either role; what it yields does not depend
    /// on how the bytes were split; and everything it yields obeys the protocol's rules.
    #[test]
    fn arbitrary_bytes_never_panic_and_split_does_not_matter(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        splits in prop::collection::vec(1usize..40, 1..6),
        client in any::<bool>(),
    ) {
        let config = if client { Config::client() } else { Config::server() };
        let config = config.max_frame_size(4096).max_message_size(8192);
        let whole = decode_split(config, &bytes, &[bytes.len().max(1)]);
        let split = decode_split(config, &bytes, &splits);
        prop_assert_eq!(&whole, &split);
        for msg in &whole.0 {
            if msg.is_control() {
                prop_assert!(msg.len() <= 125);
            }
            prop_assert!(msg.len() <= 8192);
        }
        if let Some(close) = &whole.2 {
            prop_assert!(close.code.is_allowed());
        }
    }

    /// Mostly valid frames with one byte changed: a richer "never panics" input, same checks.
    #[test]
    fn mutated_valid_streams_decode_the_same_in_any_split(
        plans in prop::collection::vec(plan(), 1..4),
        mask in prop::array::uniform4(any::<u8>()),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        splits in prop::collection::vec(1usize..40, 1..6),
    ) {
        let mut wire = BytesMut::new();
        for plan in &plans {
            write_plan(plan, mask, &mut wire);
        }
        let i = at.index(wire.len());
        wire[i] ^= xor;
        let whole = decode_split(Config::server(), &wire, &[wire.len()]);
        let split = decode_split(Config::server(), &wire, &splits);
        prop_assert_eq!(whole, split);
    }
}

#[test]
fn close_codes_round_trip() {
    for raw in [1000u16, 1001, 1011, 1012, 3000, 4999] {
        let frame = CloseFrame::new(raw, "r");
        let (out, err, close) = decode_split(Config::client(), &encode_close(Some(&frame)), &[1]);
        assert_eq!(err, None);
        assert_eq!(out, vec![WebSocketMessage::Close]);
        assert_eq!(close.map(|c| c.code), Some(CloseCode::from(raw)));
    }
}

/// Mostly-UTF-8 text: arbitrary characters with a few bytes overwritten, often by bytes that
/// matter to UTF-8 (lead bytes, continuation bytes, bytes that never occur).
fn mostly_utf8() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        prop::sample::select(vec![
            0x41u8, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0,
            0xF4, 0xF5, 0xFF,
        ]),
        any::<u8>(),
    ];
    (
        ".{0,60}",
        prop::collection::vec((any::<prop::sample::Index>(), byte), 0..3),
    )
        .prop_map(|(text, edits)| {
            let mut bytes = text.into_bytes();
            if !bytes.is_empty() {
                for (at, value) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = value;
                }
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Text is failed with 1007 by exactly the read after which the text bytes received so far
    /// (whole fragments and the part of the frame still arriving) can no longer start valid
    /// UTF-8 — or, if they all can, by the read that ends the message inside a code point.
    /// A valid text comes out whole.
    #[test]
    fn text_fails_at_the_read_that_makes_it_invalid(
        text in mostly_utf8(),
        cut_idx in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        mask in prop::array::uniform4(any::<u8>()),
        splits in prop::collection::vec(1usize..16, 1..6),
    ) {
        let mut bounds: Vec<usize> = cut_idx.iter().map(|i| i.index(text.len() + 1)).collect();
        bounds.push(0);
        bounds.push(text.len());
        bounds.sort_unstable();
        let mut wire = BytesMut::new();
        // Where each fragment's payload lies on the wire: (start, len).
        let mut payloads = Vec::new();
        for (i, w) in bounds.windows(2).enumerate() {
            let opcode = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            let fin = i == bounds.len() - 2;
            let piece = &text[w[0]..w[1]];
            encode_frame_into(opcode, fin, piece, Some(mask), &mut wire);
            payloads.push((wire.len() - piece.len(), piece.len()));
        }
        let received = |end: usize| -> usize {
            payloads.iter().map(|&(start, len)| end.saturating_sub(start).min(len)).sum()
        };
        let definitely_invalid = |n: usize| {
            matches!(std::str::from_utf8(&text[..n]), Err(e) if e.error_len().is_some())
        };

        let mut decoder = Decoder::new(Config::server());
        let mut src = BytesMut::new();
        let mut out = Vec::new();
        let mut failed_at = None;
        let mut expected_fail = None;
        let (mut pos, mut read) = (0, 0);
        let mut split = splits.iter().copied().cycle();
        while pos < wire.len() && failed_at.is_none() {
            let n = split.next().unwrap_or(1).min(wire.len() - pos);
            src.extend_from_slice(&wire[pos..pos + n]);
            pos += n;
            if expected_fail.is_none()
                && (definitely_invalid(received(pos))
                    || (pos == wire.len() && std::str::from_utf8(&text).is_err()))
            {
                expected_fail = Some(read);
            }
            loop {
                match decoder.decode(&mut src) {
                    Ok(Some(msg)) => out.push(msg),
                    Ok(None) => break,
                    Err(err) => {
                        prop_assert_eq!(err, Error::InvalidUtf8);
                        failed_at = Some(read);
                        break;
                    }
                }
            }
            read += 1;
        }
        prop_assert_eq!(failed_at, expected_fail);
        if let Ok(valid) = std::str::from_utf8(&text) {
            prop_assert_eq!(out, vec![WebSocketMessage::text(valid)]);
        }
    }
}
