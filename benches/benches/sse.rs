//! `armature-sse`: encoding events, and one broadcast to 1,000 in-process clients (encode
//! once, queue a shared `Bytes` per client, each client takes it), next to the same fan-out
//! through `tokio::sync::broadcast` (what the axum peer uses).
//!
//! Run: `cargo bench -p benches --bench sse -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use armature_sse::{ReceiverStream, ServerSentEvent, SseBroadcaster};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{FutureExt, StreamExt};

const CLIENTS: usize = 1000;

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_encode");
    let small = ServerSentEvent::new("x".repeat(64));
    group.throughput(Throughput::Elements(1));
    group.bench_function("data_64B", |b| {
        b.iter(|| black_box(&small).encode().unwrap())
    });
    let lines = ServerSentEvent::full(
        "12345".into(),
        "update".into(),
        "a line of text\n".repeat(64),
        5000,
    );
    group.bench_function("full_64_lines", |b| {
        b.iter(|| black_box(&lines).encode().unwrap())
    });
    group.finish();
}

fn fan_out(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_fanout_1000");
    group.throughput(Throughput::Elements(CLIENTS as u64));

    let broadcaster = SseBroadcaster::new();
    let mut clients: Vec<ReceiverStream<Result<Bytes, armature_sse::Error>>> = (0..CLIENTS)
        .map(|_| broadcaster.register_from(None).into_bytes())
        .collect();
    let event = ServerSentEvent::new("x".repeat(64));
    group.bench_function("armature_sse", |b| {
        b.iter(|| {
            broadcaster.broadcast_now(&event).unwrap();
            for client in &mut clients {
                let bytes = client.next().now_or_never().flatten().unwrap().unwrap();
                black_box(bytes);
            }
        })
    });

    let (tx, _) = tokio::sync::broadcast::channel::<Bytes>(16);
    let mut receivers: Vec<_> = (0..CLIENTS).map(|_| tx.subscribe()).collect();
    group.bench_function("tokio_broadcast", |b| {
        b.iter(|| {
            tx.send(event.encode().unwrap()).unwrap();
            for rx in &mut receivers {
                black_box(rx.try_recv().unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, encode, fan_out);
criterion_main!(benches);
