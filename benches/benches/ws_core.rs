//! `armature-ws-core` against tungstenite 0.30: decoding masked client frames (server role)
//! and encoding server frames, at 16 B, 1 KiB and 64 KiB payloads.
//!
//! Run: `cargo bench -p benches --bench ws_core -- --warm-up-time 1 --measurement-time 3`.
//!
//! Fairness: both sides keep one long-lived decoder/connection and, per iteration, take in the
//! same bytes (a batch of frames) through one copy — ours `extend_from_slice` into its
//! `BytesMut`, tungstenite's `WebSocket` reading from an in-memory `Read` — and return whole,
//! unmasked, validated messages. Encoding writes the same messages into a reused buffer.

use std::hint::black_box;
use std::io::{self, Read, Write};

use armature_ws_core::{Config, Decoder, OpCode, WebSocketMessage, encode_frame_into};
use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode as TgOp};
use tungstenite::protocol::{Role as TgRole, WebSocket};

const SIZES: [(usize, &str); 3] = [(16, "16B"), (1024, "1KiB"), (64 * 1024, "64KiB")];
/// Payload bytes per iteration (a batch of frames).
const BATCH_BYTES: usize = 256 * 1024;

fn batch(size: usize) -> usize {
    (BATCH_BYTES / size).max(4)
}

fn payload(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i * 31 + 7) as u8).collect()
}

/// `count` masked binary frames of `size` bytes, as a client sends them.
fn masked_frames(size: usize, count: usize) -> Vec<u8> {
    let payload = payload(size);
    let mut wire = BytesMut::new();
    for i in 0..count {
        let mask = (i as u32).wrapping_mul(0x9E37_79B9).to_le_bytes();
        encode_frame_into(OpCode::Binary, true, &payload, Some(mask), &mut wire);
    }
    wire.to_vec()
}

/// An endless in-memory stream repeating `data` (whole frames, so the stream stays valid).
struct Repeat {
    data: Vec<u8>,
    pos: usize,
}

impl Read for Repeat {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos = (self.pos + n) % self.data.len();
        Ok(n)
    }
}

impl Write for Repeat {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_masked");
    for (size, name) in SIZES {
        let count = batch(size);
        let wire = masked_frames(size, count);
        group.throughput(Throughput::Bytes((size * count) as u64));

        group.bench_function(BenchmarkId::new("armature", name), |b| {
            let mut decoder = Decoder::new(Config::server());
            let mut src = BytesMut::new();
            b.iter(|| {
                src.extend_from_slice(&wire);
                let mut n = 0;
                while let Some(msg) = decoder.decode(&mut src).unwrap() {
                    n += msg.len();
                    black_box(msg);
                }
                assert_eq!(n, size * count);
            });
        });

        group.bench_function(BenchmarkId::new("tungstenite", name), |b| {
            let stream = Repeat {
                data: wire.clone(),
                pos: 0,
            };
            let mut ws = WebSocket::from_raw_socket(stream, TgRole::Server, None);
            b.iter(|| {
                let mut n = 0;
                for _ in 0..count {
                    let msg = ws.read().unwrap();
                    n += msg.len();
                    black_box(msg);
                }
                assert_eq!(n, size * count);
            });
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (size, name) in SIZES {
        let count = batch(size);
        let data = Bytes::from(payload(size));
        group.throughput(Throughput::Bytes((size * count) as u64));

        group.bench_function(BenchmarkId::new("armature", name), |b| {
            let msg = WebSocketMessage::Binary(data.clone());
            let mut out = BytesMut::new();
            b.iter(|| {
                for _ in 0..count {
                    armature_ws_core::encode_message_into(black_box(&msg), &mut out);
                }
                black_box(&out);
                out.clear();
            });
        });

        group.bench_function(BenchmarkId::new("tungstenite", name), |b| {
            let mut out = Vec::new();
            b.iter(|| {
                for _ in 0..count {
                    let frame =
                        Frame::message(black_box(data.clone()), TgOp::Data(Data::Binary), true);
                    frame.format(&mut out).unwrap();
                }
                black_box(&out);
                out.clear();
            });
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
