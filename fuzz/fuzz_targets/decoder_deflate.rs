//! Fuzzes the server-role decoder with permessage-deflate negotiated (RFC 7692).
//!
//! The first byte picks the window (9–15), context takeover, the fragment size and the read
//! split; the rest is used three ways:
//! 1. as raw bytes on the wire (RSV1 frames, compressed control frames, fragments…): no
//!    panic, and the same result for any read split;
//! 2. as the *compressed* payload of one masked RSV1 text/binary message, fragmented: arbitrary
//!    deflate data reaches the inflater, which must fail cleanly (1002/1007/1009) or yield
//!    a message within the limit, the same for any split;
//! 3. as a message compressed by our `Compressor`, framed and decoded: it must come back
//!    byte for byte (and then the same decoder takes a second one, for context takeover).

#![no_main]

use armature_ws_core::bytes::BytesMut;
use armature_ws_core::compression::Compressor;
use armature_ws_core::permessage_deflate::DirectionParams;
use armature_ws_core::{Config, Decoder, Error, FrameHeader, OpCode, WebSocketMessage, apply_mask};
use libfuzzer_sys::fuzz_target;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const MAX_MESSAGE: usize = 1 << 17;

fn config() -> Config {
    Config::server()
        .max_frame_size(1 << 16)
        .max_message_size(MAX_MESSAGE)
}

/// Every message the decoder yields for `data` read `read` bytes at a time, and its error.
fn decode(
    params: DirectionParams,
    data: &[u8],
    read: usize,
) -> (Vec<WebSocketMessage>, Option<Error>) {
    let mut decoder = Decoder::new(config()).with_deflate(params);
    let mut src = BytesMut::new();
    let mut out = Vec::new();
    for chunk in data.chunks(read.max(1)) {
        src.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut src) {
                Ok(Some(msg)) => out.push(msg),
                Ok(None) => break,
                Err(err) => return (out, Some(err)),
            }
        }
    }
    (out, None)
}

/// One masked client frame.
fn frame(out: &mut Vec<u8>, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) {
    let mut header = FrameHeader::new(opcode, payload.len() as u64);
    header.fin = fin;
    header.rsv1 = rsv1;
    header.mask = Some(MASK);
    let mut dst = BytesMut::new();
    header.encode(&mut dst);
    let start = dst.len();
    dst.extend_from_slice(payload);
    apply_mask(&mut dst[start..], MASK);
    out.extend_from_slice(&dst);
}

/// `payload` as one compressed message (RSV1 on the first frame only), in fragments of
/// `fragment` bytes.
fn message(out: &mut Vec<u8>, text: bool, payload: &[u8], fragment: usize) {
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![&[][..]]
    } else {
        payload.chunks(fragment.max(1)).collect()
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = match (i, text) {
            (0, true) => OpCode::Text,
            (0, false) => OpCode::Binary,
            _ => OpCode::Continuation,
        };
        frame(out, opcode, i == last, i == 0, chunk);
    }
}

fn same_for_any_split(
    params: DirectionParams,
    wire: &[u8],
    read: usize,
) -> (Vec<WebSocketMessage>, Option<Error>) {
    let whole = decode(params, wire, wire.len());
    let split = decode(params, wire, read);
    assert_eq!(whole, split, "result depends on the read split");
    for msg in &whole.0 {
        assert!(
            msg.len() <= MAX_MESSAGE,
            "a message over the limit was inflated"
        );
    }
    whole
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let params = DirectionParams {
        window_bits: 9 + first % 7,
        no_context_takeover: first & 0x08 != 0,
    };
    let read = usize::from(first >> 4) + 1;
    let fragment = usize::from(first >> 5) * 37 + 1;

    // 1. raw wire bytes
    same_for_any_split(params, rest, read);

    // 2. arbitrary compressed payloads
    let mut wire = Vec::new();
    message(&mut wire, first & 0x80 != 0, rest, fragment);
    let (messages, error) = same_for_any_split(params, &wire, read);
    assert!(
        messages.len() + usize::from(error.is_some()) == 1,
        "one message or one error"
    );

    // 3. our compressor's output comes back byte for byte, twice on one decoder
    let mut compressor = Compressor::new(params.window_bits, 6, params.no_context_takeover);
    let mut wire = Vec::new();
    for _ in 0..2 {
        let mut packed = Vec::new();
        compressor.compress(rest, &mut packed);
        message(&mut wire, false, &packed, fragment);
    }
    let (messages, error) = same_for_any_split(params, &wire, read);
    if rest.len() <= MAX_MESSAGE {
        assert_eq!(error, None, "our own compressed message was refused");
        assert_eq!(messages.len(), 2);
        for msg in messages {
            assert_eq!(msg, WebSocketMessage::Binary(rest.to_vec().into()));
        }
    }
});
