//! Differential tests against tungstenite 0.30, in both directions, plus malformed input that
//! both must refuse.

use std::io::{self, Cursor, Read, Write};

use armature_ws_core::{
    CloseCode, CloseFrame, Config, Decoder, Encoder, OpCode, Role, WebSocketMessage, encode_close,
    encode_close_masked, encode_frame_into, encode_message,
};
use bytes::{Bytes, BytesMut};
use tungstenite::protocol::{CloseFrame as TgClose, Role as TgRole, WebSocket};
use tungstenite::{Message as TgMessage, protocol::frame::coding::CloseCode as TgCode};

/// An in-memory socket: reads from `input`, collects writes in `output`.
struct Duplex {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tungstenite(input: Vec<u8>, role: TgRole) -> WebSocket<Duplex> {
    let duplex = Duplex {
        input: Cursor::new(input),
        output: Vec::new(),
    };
    WebSocket::from_raw_socket(duplex, role, None)
}

fn from_tungstenite(msg: TgMessage) -> WebSocketMessage {
    match msg {
        TgMessage::Text(t) => WebSocketMessage::text(t.as_str()),
        TgMessage::Binary(b) => WebSocketMessage::Binary(b),
        TgMessage::Ping(b) => WebSocketMessage::Ping(b),
        TgMessage::Pong(b) => WebSocketMessage::Pong(b),
        TgMessage::Close(_) => WebSocketMessage::Close,
        TgMessage::Frame(f) => panic!("raw frame {f:?}"),
    }
}

fn samples() -> Vec<WebSocketMessage> {
    vec![
        WebSocketMessage::text(""),
        WebSocketMessage::text("hello"),
        WebSocketMessage::text("κόσμε 😀 ".repeat(40)),
        WebSocketMessage::binary(Bytes::new()),
        WebSocketMessage::binary(vec![0xAB; 125]),
        WebSocketMessage::binary(vec![0xCD; 126]),
        WebSocketMessage::binary((0..65535u32).map(|i| i as u8).collect::<Vec<_>>()),
        WebSocketMessage::binary((0..100_000u32).map(|i| (i * 7) as u8).collect::<Vec<_>>()),
        WebSocketMessage::ping(&b"are you there"[..]),
        WebSocketMessage::pong(vec![1u8; 125]),
    ]
}

/// The close every sample stream ends with.
fn sample_close() -> CloseFrame {
    CloseFrame::new(CloseCode::Library(4001), "bye now")
}

/// Reads the close frame tungstenite got, checking its code and reason.
fn read_close(ws: &mut WebSocket<Duplex>, expected: &CloseFrame) {
    match ws.read().expect("tungstenite read") {
        TgMessage::Close(Some(c)) => {
            assert_eq!(u16::from(c.code), u16::from(expected.code));
            assert_eq!(c.reason.as_str(), expected.reason.as_str());
        }
        other => panic!("expected a close, read {other:?}"),
    }
}

/// Reads messages from tungstenite until `n` arrived.
fn read_n(ws: &mut WebSocket<Duplex>, n: usize) -> Vec<WebSocketMessage> {
    (0..n)
        .map(|_| from_tungstenite(ws.read().expect("tungstenite read")))
        .collect()
}

#[test]
fn tungstenite_client_reads_our_server_frames() {
    let messages = samples();
    let mut wire = Vec::new();
    for m in &messages {
        wire.extend_from_slice(&encode_message(m));
    }
    wire.extend_from_slice(&encode_close(Some(&sample_close())));
    let mut ws = tungstenite(wire, TgRole::Client);
    assert_eq!(read_n(&mut ws, messages.len()), messages);
    read_close(&mut ws, &sample_close());
}

#[test]
fn tungstenite_server_reads_our_client_frames() {
    let messages = samples();
    let mut encoder = Encoder::new(Role::Client);
    let mut wire = BytesMut::new();
    for m in &messages {
        encoder.encode(m, &mut wire);
    }
    wire.extend_from_slice(&encode_close_masked(Some(&sample_close()), [3, 1, 4, 1]));
    let mut ws = tungstenite(wire.to_vec(), TgRole::Server);
    assert_eq!(read_n(&mut ws, messages.len()), messages);
    read_close(&mut ws, &sample_close());
}

#[test]
fn tungstenite_reads_our_fragments_with_pings_between() {
    let mut encoder = Encoder::new(Role::Client);
    let mut wire = BytesMut::new();
    encoder.encode_frame(OpCode::Text, false, "frag".as_bytes(), &mut wire);
    encoder.encode(&WebSocketMessage::ping(&b"1"[..]), &mut wire);
    encoder.encode_frame(OpCode::Continuation, false, b"mented \xe2", &mut wire);
    encoder.encode_frame(OpCode::Continuation, true, b"\x82\xac", &mut wire);
    let mut ws = tungstenite(wire.to_vec(), TgRole::Server);
    assert_eq!(
        read_n(&mut ws, 2),
        vec![
            WebSocketMessage::ping(&b"1"[..]),
            WebSocketMessage::text("fragmented €")
        ]
    );
}

/// Decodes everything `bytes` holds with our server-role decoder.
fn our_server_decode(bytes: &[u8]) -> Result<Vec<WebSocketMessage>, armature_ws_core::Error> {
    let mut decoder = Decoder::new(Config::server());
    let mut src = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(msg) = decoder.decode(&mut src)? {
        out.push(msg);
    }
    assert!(src.is_empty(), "{} bytes left over", src.len());
    Ok(out)
}

#[test]
fn we_read_what_a_tungstenite_client_writes() {
    let mut ws = tungstenite(Vec::new(), TgRole::Client);
    let mut expected = Vec::new();
    for m in samples() {
        if m.is_close() {
            continue;
        }
        let tg = match m.clone() {
            WebSocketMessage::Text(t) => TgMessage::text(t.as_str()),
            WebSocketMessage::Binary(b) => TgMessage::Binary(b),
            WebSocketMessage::Ping(b) => TgMessage::Ping(b),
            WebSocketMessage::Pong(b) => TgMessage::Pong(b),
            WebSocketMessage::Close => unreachable!(),
        };
        ws.send(tg).unwrap();
        expected.push(m);
    }
    // A fragmented text with pings between the fragments, cut inside a code point.
    use tungstenite::protocol::frame::Frame;
    use tungstenite::protocol::frame::coding::{Data, OpCode as TgOp};
    ws.send(TgMessage::Frame(Frame::message(
        Bytes::from_static(b"caf\xc3"),
        TgOp::Data(Data::Text),
        false,
    )))
    .unwrap();
    ws.send(TgMessage::Ping(Bytes::from_static(b"mid")))
        .unwrap();
    ws.send(TgMessage::Frame(Frame::message(
        Bytes::from_static(b"\xa9 "),
        TgOp::Data(Data::Continue),
        false,
    )))
    .unwrap();
    ws.send(TgMessage::Frame(Frame::message(
        Bytes::from_static(b"au lait"),
        TgOp::Data(Data::Continue),
        true,
    )))
    .unwrap();
    expected.push(WebSocketMessage::ping(&b"mid"[..]));
    expected.push(WebSocketMessage::text("café au lait"));
    // A fragmented binary.
    for (i, chunk) in [&b"ab"[..], b"", b"cd"].iter().enumerate() {
        let op = if i == 0 { Data::Binary } else { Data::Continue };
        ws.send(TgMessage::Frame(Frame::message(
            Bytes::copy_from_slice(chunk),
            TgOp::Data(op),
            i == 2,
        )))
        .unwrap();
    }
    expected.push(WebSocketMessage::binary(&b"abcd"[..]));
    ws.close(Some(TgClose {
        code: TgCode::Away,
        reason: "shutting down".into(),
    }))
    .unwrap();
    expected.push(WebSocketMessage::Close);

    let wire = std::mem::take(&mut ws.get_mut().output);
    assert_eq!(our_server_decode(&wire), Ok(expected));
    let mut decoder = Decoder::new(Config::server());
    let mut src = BytesMut::from(&wire[..]);
    while let Ok(Some(_)) = decoder.decode(&mut src) {}
    assert_eq!(
        decoder.close_frame(),
        Some(&CloseFrame::new(CloseCode::Away, "shutting down"))
    );
}

/// One masked client frame.
fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut dst = BytesMut::new();
    encode_frame_into(
        OpCode::from(opcode),
        fin,
        payload,
        Some([9, 8, 7, 6]),
        &mut dst,
    );
    dst.to_vec()
}

fn concat(frames: &[Vec<u8>]) -> Vec<u8> {
    frames.concat()
}

/// How tungstenite fails on `bytes` as a server: the first error that is not the end of
/// input, as a close code — or, when it reads a close frame and answers it with 1002, that
/// (tungstenite answers an invalid close code with 1002 instead of returning an error; no
/// input here closes with 1002 itself).
fn tungstenite_verdict(bytes: Vec<u8>) -> Option<u16> {
    let mut ws = tungstenite(bytes, TgRole::Server);
    loop {
        match ws.read() {
            Ok(TgMessage::Close(_)) => {
                let _ = ws.flush();
                let reply = std::mem::take(&mut ws.get_mut().output);
                let mut decoder = Decoder::new(Config::client());
                let mut src = BytesMut::from(&reply[..]);
                let answer = decoder.decode(&mut src).ok().flatten()?;
                if !answer.is_close() {
                    return None;
                }
                let answered = decoder.close_frame().map(|c| u16::from(c.code));
                return answered.filter(|&code| code == 1002);
            }
            Ok(_) => continue,
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ))
            | Err(tungstenite::Error::ConnectionClosed)
            | Err(tungstenite::Error::AlreadyClosed) => return None,
            Err(tungstenite::Error::Protocol(_)) => return Some(1002),
            Err(tungstenite::Error::Utf8(_)) => return Some(1007),
            Err(tungstenite::Error::Capacity(_)) => return Some(1009),
            Err(other) => panic!("unexpected tungstenite error {other:?}"),
        }
    }
}

#[test]
fn malformed_input_is_refused_by_both_with_matching_close_codes() {
    let mut rsv1 = masked(0x1, true, b"x");
    rsv1[0] |= 0x40;
    let mut unmasked = masked(0x1, true, b"");
    unmasked[1] &= 0x7F;
    unmasked.truncate(2);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked client frame", unmasked, 1002),
        ("reserved data opcode", masked(0x3, true, b""), 1002),
        ("reserved control opcode", masked(0xB, true, b""), 1002),
        ("rsv1 without extension", rsv1, 1002),
        ("ping over 125 bytes", masked(0x9, true, &[0; 126]), 1002),
        ("fragmented ping", masked(0x9, false, b""), 1002),
        ("continuation first", masked(0x0, true, b"x"), 1002),
        (
            "text inside fragmented message",
            concat(&[masked(0x1, false, b"a"), masked(0x1, true, b"b")]),
            1002,
        ),
        ("one-byte close", masked(0x8, true, b"\x03"), 1002),
        ("close code 1005", masked(0x8, true, b"\x03\xed"), 1002),
        ("close code 999", masked(0x8, true, b"\x03\xe7"), 1002),
        ("close code 5000", masked(0x8, true, b"\x13\x88"), 1002),
        ("invalid utf-8 text", masked(0x1, true, b"\xff\xfe"), 1007),
        (
            "invalid utf-8 fragmented text",
            concat(&[
                masked(0x1, false, b"ok"),
                masked(0x0, true, b"\xed\xa0\x80"),
            ]),
            1007,
        ),
        (
            "invalid utf-8 close reason",
            masked(0x8, true, b"\x03\xe8\xc0\xaf"),
            1007,
        ),
    ];
    for (name, bytes, code) in cases {
        let ours = our_server_decode(&bytes).expect_err(name);
        assert_eq!(u16::from(ours.close_code()), code, "{name}: {ours}");
        assert_eq!(
            tungstenite_verdict(bytes),
            Some(code),
            "{name}: tungstenite"
        );
    }
}

/// A 64-bit length with its top bit set: both refuse it from the header alone; RFC 6455 §5.2
/// makes it a framing error (1002), tungstenite reports it as too big (1009).
#[test]
fn length_top_bit_is_refused_by_both() {
    let bytes = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    let ours = our_server_decode(&bytes).unwrap_err();
    assert_eq!(ours.close_code(), CloseCode::Protocol);
    assert_eq!(tungstenite_verdict(bytes), Some(1009));
}

#[test]
fn oversized_frames_are_refused_by_both() {
    // 17 MiB announced: over both default frame limits (ours 16 MiB, tungstenite's 16 MiB).
    let mut header = vec![0x82, 0xFF];
    header.extend_from_slice(&(17u64 << 20).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let ours = our_server_decode(&header).unwrap_err();
    assert_eq!(ours.close_code(), CloseCode::Size);
    assert_eq!(tungstenite_verdict(header), Some(1009));
}

/// RFC 6455 §5.2 requires the minimal length encoding; tungstenite tolerates a longer one,
/// we refuse it. Kept as a test so the difference is deliberate.
#[test]
fn non_minimal_length_we_refuse_and_tungstenite_accepts() {
    let bytes = vec![0x82, 0xFE, 0x00, 0x01, 1, 2, 3, 4, 0xAA];
    assert_eq!(
        our_server_decode(&bytes).map_err(|e| e.close_code()),
        Err(CloseCode::Protocol)
    );
    assert_eq!(tungstenite_verdict(bytes), None);
}
