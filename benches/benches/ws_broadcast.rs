//! One room broadcast to 10,000 in-process connections, ready to be written.
//!
//! - `armature_room`: `WebSocketRoom::broadcast_text` encodes the frame once and pushes a
//!   reference-counted `Bytes` into each member's byte-bounded send queue; then every
//!   member's queue is drained (what each connection's writer takes).
//! - `tokio_broadcast_string`: the pattern of the Rust peers (tokio-tungstenite, axum):
//!   `tokio::sync::broadcast` of a `String`; every receiver clones it and frames it for its
//!   own socket (tungstenite's frame encoder, one frame per recipient).
//! - `tokio_broadcast_bytes`: the same channel carrying one pre-encoded `Bytes` frame (the
//!   best a broadcast-channel design can do; no per-recipient encoding).
//!
//! The `_burst32` group: 32 broadcasts in one go, as a handler relaying what it read makes
//! them in one poll (ours inside `armature_ws::coalesced`, which every handler poll gets:
//! one queue entry per member for the 32 frames), then every member takes its 32 frames one
//! by one; against the tokio broadcast channel receiving and framing 32 `String`s per
//! recipient. Throughput is per member and message.
//!
//! Run: `cargo bench -p benches --bench ws_broadcast -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use armature_ws::{WebSocketConnection, WebSocketReceiver, WebSocketRoom, coalesced};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

const MEMBERS: usize = 10_000;
const PAYLOAD: &str = "0123456789012345678901234567890123456789012345678901234567890123";
/// Broadcasts per burst (the load generator's window).
const BURST: usize = 32;

/// The tungstenite frame of `text`, as a Rust peer writes it for one recipient.
fn tungstenite_frame(text: String) -> Vec<u8> {
    let frame = Frame::message(Bytes::from(text), OpCode::Data(Data::Text), true);
    let mut wire = Vec::with_capacity(frame.len());
    frame.format(&mut wire).unwrap();
    wire
}

/// A room of `MEMBERS` in-process connections, and their receiving ends.
fn room_with_members() -> (WebSocketRoom, Vec<WebSocketReceiver>) {
    let room = WebSocketRoom::new("bench".to_owned());
    let receivers = (0..MEMBERS)
        .map(|i| {
            let (connection, receiver) = WebSocketConnection::new(format!("c{i}"));
            room.join(format!("c{i}"), connection).unwrap();
            receiver
        })
        .collect();
    (room, receivers)
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_broadcast_10000");
    group.throughput(Throughput::Elements(MEMBERS as u64));

    let (room, mut receivers) = room_with_members();
    group.bench_function("armature_room", |b| {
        b.iter(|| {
            room.broadcast_text(PAYLOAD)
                .now_or_never()
                .expect("a room broadcast never waits")
                .unwrap();
            for receiver in &mut receivers {
                black_box(receiver.try_recv_frame().unwrap());
            }
        })
    });

    let (tx, _) = tokio::sync::broadcast::channel::<String>(16);
    let mut string_receivers: Vec<_> = (0..MEMBERS).map(|_| tx.subscribe()).collect();
    group.bench_function("tokio_broadcast_string", |b| {
        b.iter(|| {
            tx.send(PAYLOAD.to_owned()).unwrap();
            for rx in &mut string_receivers {
                black_box(tungstenite_frame(rx.try_recv().unwrap()));
            }
        })
    });

    let (tx, _) = tokio::sync::broadcast::channel::<Bytes>(16);
    let mut bytes_receivers: Vec<_> = (0..MEMBERS).map(|_| tx.subscribe()).collect();
    let frame = armature_ws_core::encode_text(PAYLOAD);
    group.bench_function("tokio_broadcast_bytes", |b| {
        b.iter(|| {
            tx.send(frame.clone()).unwrap();
            for rx in &mut bytes_receivers {
                black_box(rx.try_recv().unwrap());
            }
        })
    });
    group.finish();
}

fn fan_out_bursts(c: &mut Criterion) {
    let mut group = c.benchmark_group("ws_broadcast_10000_burst32");
    group.throughput(Throughput::Elements((MEMBERS * BURST) as u64));

    let (room, mut receivers) = room_with_members();
    group.bench_function("armature_room", |b| {
        b.iter(|| {
            coalesced(async {
                for _ in 0..BURST {
                    room.broadcast_text(PAYLOAD).await.unwrap();
                }
            })
            .now_or_never()
            .expect("a room broadcast never waits");
            for receiver in &mut receivers {
                for _ in 0..BURST {
                    black_box(receiver.try_recv_frame().unwrap());
                }
            }
        })
    });

    let (tx, _) = tokio::sync::broadcast::channel::<String>(2 * BURST);
    let mut string_receivers: Vec<_> = (0..MEMBERS).map(|_| tx.subscribe()).collect();
    group.bench_function("tokio_broadcast_string", |b| {
        b.iter(|| {
            for _ in 0..BURST {
                tx.send(PAYLOAD.to_owned()).unwrap();
            }
            for rx in &mut string_receivers {
                for _ in 0..BURST {
                    black_box(tungstenite_frame(rx.try_recv().unwrap()));
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, fan_out, fan_out_bursts);
criterion_main!(benches);
