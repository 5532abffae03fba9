//! Fuzzes the server-role decoder: no panic, and the same result for any read split.
#![no_main]

use armature_ws_core::Config;
use libfuzzer_sys::fuzz_target;

#[path = "decoder_common.rs"]
mod decoder_common;

fuzz_target!(|data: &[u8]| {
    decoder_common::check(Config::server(), data);
});
