//! Heap held by permessage-deflate's codec state, per window size: what a dedicated-mode
//! connection (its own compressor and decompressor, context takeover) costs on top of an
//! uncompressed one. A shared-mode connection holds neither (both come from the thread's
//! pool for one message).
//!
//! ```text
//! cargo run --release -p armature-ws-core --example deflate_memory
//! ```

use std::alloc::System;

use armature_ws_core::compression::{Compressor, Decompressor};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn held<T>(make: impl FnOnce() -> T) -> (T, isize) {
    let region = Region::new(GLOBAL);
    let value = make();
    let change = region.change();
    (
        value,
        change.bytes_allocated as isize - change.bytes_deallocated as isize,
    )
}

fn main() {
    println!("| window bits | compressor (level 6) | decompressor, after one message | total |");
    println!("| --- | --- | --- | --- |");
    let message = br#"{"seq":1,"user":"ada","text":"hello hello hello hello"}"#.repeat(8);
    for bits in 9..=15u8 {
        let (mut compressor, c) = held(|| Compressor::new(bits, 6, false));
        let mut payload = Vec::new();
        compressor.compress(&message, &mut payload);
        let (mut decompressor, d0) = held(|| Decompressor::new(bits, false));
        let mut out = Vec::new();
        let ((), d1) = held(|| {
            decompressor
                .decompress(&payload, &mut out, 1 << 20)
                .unwrap();
            decompressor.finish(&mut out, 1 << 20).unwrap();
        });
        // The inflated message itself is the caller's, not the codec's.
        let d = d0 + d1 - out.capacity() as isize;
        println!("| {bits} | {c} B | {d} B | {} B |", c + d);
    }
}
