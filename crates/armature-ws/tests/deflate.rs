//! permessage-deflate with real clients: Python `websockets` (compression on by default)
//! echoes through shared and dedicated modes, and a room broadcast to compressing and
//! plain members compresses once (counted) and reaches each in its encoding.
//!
//! The interpreter is `$ARMATURE_PYTHON` (set by `cargo xtask test`), else `python3` if it
//! can import `websockets`. Without one the tests fail when `CI=true` and are skipped loudly
//! otherwise.

mod common;

use std::process::Stdio;

use armature_ws::WebSocketConfig;
use armature_ws::permessage_deflate::DeflateConfig;
use armature_ws_core::compression::shared_compressions;
use common::*;
use tokio::io::{AsyncBufReadExt, BufReader};

fn script(name: &str) -> String {
    format!("{}/tests/interop/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn echo_with_python(config: DeflateConfig) -> String {
    let Some(python) = python_with_websockets("permessage-deflate interop test").await else {
        return String::new();
    };
    let server = TestServer::start(WebSocketConfig::default().compression(config)).await;
    let output = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(&python)
            .arg(script("websockets_deflate_client.py"))
            .arg(server.url("/echo"))
            .output(),
    )
    .await
    .expect("python client timed out")
    .expect("python client did not start");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.trim_end().ends_with("deflate ok"), "{stdout}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_shared_mode() {
    let stdout = echo_with_python(DeflateConfig::shared()).await;
    if !stdout.is_empty() {
        // websockets offers server_max_window_bits=12; client_max_window_bits=12.
        assert!(
            stdout.contains("server_no_context_takeover; client_no_context_takeover"),
            "{stdout}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_dedicated_mode() {
    let stdout = echo_with_python(DeflateConfig::dedicated(12)).await;
    if !stdout.is_empty() {
        assert!(!stdout.contains("server_no_context_takeover"), "{stdout}");
    }
}

/// Three shared-mode members, two plain ones and two whose route is in dedicated mode
/// (context takeover, per-route override): one broadcast is deflated once for the shared
/// members (the per-thread counter of shared compressions moves by one on the broadcasting
/// thread; the dedicated members compress with their own compressors) and every member
/// reads the same text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_broadcast_is_compressed_once_for_all_shared_members() {
    let Some(python) = python_with_websockets("permessage-deflate interop test").await else {
        return;
    };
    let server =
        TestServer::start(WebSocketConfig::default().compression(DeflateConfig::shared())).await;
    let mut child = tokio::process::Command::new(&python)
        .arg(script("room_clients.py"))
        .arg(server.url("/room/once"))
        .args(["3", "2", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python did not start");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready.as_deref(), Some("ready"));
    let room = server.manager.get_room("once").await.expect("room exists");
    assert_eq!(room.len(), 7);
    let text = format!(
        "{{\"event\":\"tick\",\"payload\":\"{}\"}}",
        "abc".repeat(100)
    );
    // The broadcast runs on this thread: the counter is this thread's.
    let before = shared_compressions();
    room.broadcast_text(text.clone()).await.unwrap();
    assert_eq!(
        shared_compressions() - before,
        1,
        "deflated once for three shared members"
    );
    let mut got = Vec::new();
    while let Some(line) = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
    {
        if line == "done" {
            break;
        }
        got.push(line);
    }
    got.sort();
    let prefix = &text[..20];
    let expected: Vec<String> = [
        "dedicated",
        "dedicated",
        "deflate",
        "deflate",
        "deflate",
        "plain",
        "plain",
    ]
    .iter()
    .map(|kind| format!("{kind} {} {prefix}", text.len()))
    .collect();
    assert_eq!(got, expected);
    let _ = child.wait().await;
}
