//! Text checked while its frame is still arriving (RFC 6455 §8.1: fail the connection as
//! soon as the byte stream is found not to be UTF-8; Autobahn cases 6.4.x), with literal
//! bytes fed in reads cut at chosen places.

use bytes::BytesMut;

use super::*;
use crate::close::CloseCode;
use crate::encoder::encode_frame_into;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// The header of a masked frame with a payload under 126 bytes.
const HEADER: usize = 6;

fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    encode_frame_into(OpCode::from(opcode), fin, payload, Some(MASK), &mut dst);
    dst.to_vec()
}

/// Feeds `bytes` cut at `cuts` (offsets into `bytes`), one `decode` loop per read, and
/// returns what each read produced: the messages, or the error it failed with.
fn feed_in_reads(
    decoder: &mut Decoder,
    bytes: &[u8],
    cuts: &[usize],
) -> Vec<Result<Vec<WebSocketMessage>>> {
    let mut src = BytesMut::new();
    let mut reads = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain([&bytes.len()]) {
        src.extend_from_slice(&bytes[start..end]);
        start = end;
        let mut out = Vec::new();
        let read = loop {
            match decoder.decode(&mut src) {
                Ok(Some(msg)) => out.push(msg),
                Ok(None) => break Ok(out),
                Err(err) => break Err(err),
            }
        };
        reads.push(read);
    }
    reads
}

/// "κόσμε" as Autobahn 6.4.x sends it before the bad bytes.
const KOSME: &[u8] = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";

/// Autobahn 6.4.3: one text frame in three reads, an invalid code point (above U+10FFFF)
/// whole in the second: the error comes with the second read.
#[test]
fn invalid_code_point_in_read_2_of_3_fails_at_read_2() {
    let mut payload = KOSME.to_vec();
    payload.extend_from_slice(b"\xf4\x90\x80\x80");
    payload.extend_from_slice(b"edited");
    let bytes = frame(0x1, true, &payload);
    let cuts = [HEADER + KOSME.len(), HEADER + KOSME.len() + 4];
    let mut d = Decoder::new(Config::server());
    let reads = feed_in_reads(&mut d, &bytes, &cuts);
    assert_eq!(reads[0], Ok(vec![]));
    assert_eq!(reads[1], Err(Error::InvalidUtf8));
    assert_eq!(
        reads[2],
        Err(Error::InvalidUtf8),
        "the decoder stays failed"
    );
    assert_eq!(d.error().map(|e| e.close_code()), Some(CloseCode::Invalid));
}

/// Autobahn 6.4.4: the bad code point itself is cut by the reads; `F4` alone can still start
/// a code point, `F4 90` cannot, so the read bringing `90` fails.
#[test]
fn invalid_continuation_byte_fails_with_the_read_that_brings_it() {
    let mut payload = KOSME.to_vec();
    payload.extend_from_slice(b"\xf4\x90\x80\x80edited");
    let bytes = frame(0x1, true, &payload);
    let at_f4 = HEADER + KOSME.len();
    let reads = feed_in_reads(
        &mut Decoder::new(Config::server()),
        &bytes,
        &[at_f4 + 1, at_f4 + 2],
    );
    assert_eq!(reads[0], Ok(vec![]));
    assert_eq!(reads[1], Err(Error::InvalidUtf8));
}

/// A valid frame cut into reads of every size from 1 byte up still decodes, to the same
/// message, and the decoder is ready for the next frame.
#[test]
fn valid_text_split_across_many_reads_decodes() {
    let text = "κόσμε € 😀 — a text long enough to need the 16-bit length: ".repeat(3);
    let mut bytes = frame(0x1, true, text.as_bytes());
    bytes.extend(frame(0x1, true, b"next"));
    for step in 1..=bytes.len() {
        let cuts: Vec<usize> = (step..bytes.len()).step_by(step).collect();
        let mut d = Decoder::new(Config::server());
        let reads = feed_in_reads(&mut d, &bytes, &cuts);
        let messages: Vec<WebSocketMessage> = reads
            .into_iter()
            .flat_map(|read| read.unwrap_or_else(|e| panic!("step {step}: {e}")))
            .collect();
        assert_eq!(
            messages,
            [
                WebSocketMessage::text(text.as_str()),
                WebSocketMessage::text("next")
            ],
            "step {step}"
        );
        assert_eq!(d.scanned, 0, "no scan state left once the frame is out");
    }
}

/// A code point cut by a read boundary, at each of its bytes, inside one frame.
#[test]
fn code_point_split_between_reads_is_fine() {
    // "a😀b": F0 9F 98 80 at payload offsets 1..5.
    let bytes = frame(0x1, true, "a😀b".as_bytes());
    for i in 1..=5 {
        for j in i..=5 {
            let reads = feed_in_reads(
                &mut Decoder::new(Config::server()),
                &bytes,
                &[HEADER + i, HEADER + j],
            );
            let last = reads.last().cloned();
            assert!(reads.iter().all(Result::is_ok), "cut at {i},{j}: {reads:?}");
            assert_eq!(last, Some(Ok(vec![WebSocketMessage::text("a😀b")])));
        }
    }
}

/// A prefix that can start no code point (`E0 80`, overlong) fails as soon as both bytes are
/// in, though the frame announces more.
#[test]
fn overlong_prefix_at_the_end_of_a_read_fails_at_once() {
    let bytes = frame(0x1, true, b"ab\xe0\x80\x80cd");
    let reads = feed_in_reads(
        &mut Decoder::new(Config::server()),
        &bytes,
        &[HEADER + 3, HEADER + 4],
    );
    assert_eq!(reads[0], Ok(vec![]));
    assert_eq!(reads[1], Err(Error::InvalidUtf8));
}

/// A continuation frame still arriving is checked too, starting with the code point the
/// previous fragment cut: here its last byte is wrong.
#[test]
fn continuation_frame_is_checked_while_it_arrives() {
    let mut bytes = frame(0x1, false, b"price: \xe2\x82");
    let second = bytes.len();
    bytes.extend(frame(0x0, true, b"\x41 and more text after it"));
    let reads = feed_in_reads(
        &mut Decoder::new(Config::server()),
        &bytes,
        &[second + HEADER + 1, second + HEADER + 5],
    );
    assert_eq!(reads[0], Err(Error::InvalidUtf8));

    // The same cut with the right byte (`AC`, "€") completes, also when the continuation
    // frame arrives a byte at a time.
    let mut bytes = frame(0x1, false, b"price: \xe2\x82");
    let second = bytes.len();
    bytes.extend(frame(0x0, true, b"\xac and 5 more bytes: \xf0\x9f\x98\x80"));
    let cuts: Vec<usize> = (second + 1..bytes.len()).collect();
    let reads = feed_in_reads(&mut Decoder::new(Config::server()), &bytes, &cuts);
    assert!(reads.iter().all(Result::is_ok), "{reads:?}");
    assert_eq!(
        reads.last().cloned(),
        Some(Ok(vec![WebSocketMessage::text(
            "price: € and 5 more bytes: 😀"
        )]))
    );
}

/// Invalid bytes deep in a long continuation frame fail before the frame ends.
#[test]
fn invalid_byte_deep_in_a_streamed_continuation_fails_early() {
    let mut payload = "ok ".repeat(50).into_bytes();
    payload.push(0xff);
    payload.extend_from_slice(&[b'x'; 50]);
    let mut bytes = frame(0x1, false, b"start ");
    let second = bytes.len();
    bytes.extend(frame(0x0, true, &payload));
    // 126..=65535 bytes: 8-byte header (2 + 2 + mask 4).
    let bad = second + 8 + 150;
    let reads = feed_in_reads(
        &mut Decoder::new(Config::server()),
        &bytes,
        &[second + 40, bad, bad + 1],
    );
    assert_eq!(reads[0], Ok(vec![]));
    assert_eq!(reads[1], Ok(vec![]));
    assert_eq!(reads[2], Err(Error::InvalidUtf8));
}

/// The streamed frame comes out as the buffer's own memory, unmasked in place: no copy.
#[test]
fn streamed_text_frame_is_not_copied() {
    let text = "zero copy, ".repeat(20);
    let bytes = frame(0x1, true, text.as_bytes());
    let mut d = Decoder::new(Config::server());
    let mut src = BytesMut::with_capacity(bytes.len());
    let start = src.as_ptr() as usize;
    let mut msg = None;
    for piece in bytes.chunks(7) {
        src.extend_from_slice(piece);
        if let Some(m) = d.decode(&mut src).unwrap() {
            msg = Some(m);
        }
    }
    let Some(WebSocketMessage::Text(data)) = msg else {
        panic!("expected text, got {msg:?}");
    };
    assert_eq!(data, text);
    // 200 bytes: 2 + 2 + 4 header bytes before the payload.
    assert_eq!(data.as_ptr() as usize, start + 8);
}

/// Binary frames are not touched before they are complete.
#[test]
fn binary_frame_still_arriving_is_left_alone() {
    let bytes = frame(0x2, true, b"\xff\xfe raw");
    let mut d = Decoder::new(Config::server());
    let mut src = BytesMut::from(&bytes[..HEADER + 3]);
    assert_eq!(d.decode(&mut src), Ok(None));
    assert_eq!(&src[..], &bytes[..HEADER + 3], "still masked");
    assert_eq!(d.scanned, 0);
    src.extend_from_slice(&bytes[HEADER + 3..]);
    assert_eq!(
        d.decode(&mut src),
        Ok(Some(WebSocketMessage::binary(&b"\xff\xfe raw"[..])))
    );
}
