//! permessage-deflate with the npm `ws` client (`perMessageDeflate`), in shared and
//! dedicated mode: negotiation as `ws` sees it, echoes of JSON, binary, large and small
//! messages, bytes on the wire both ways, and a room broadcast to two compressing members
//! and one plain one. The cases live in `node/deflate_client.cjs`.
//!
//! Needs Node.js and the package of `node/package.json` (`cargo xtask test` runs `npm ci`
//! there). Without them the tests are skipped loudly, except under `CI=true`, where they
//! fail.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use armature_ws::WebSocketConfig;
use armature_ws::permessage_deflate::DeflateConfig;
use common::TestServer;

fn node_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    if dir.join("node_modules/ws").exists() {
        return Some(dir);
    }
    let message = "the npm `ws` client is not installed: run `cargo xtask test` or \
                   `npm ci --prefix crates/armature-ws/tests/node`";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("\n!!!!!!!! SKIPPED node ws permessage-deflate test: {message} !!!!!!!!\n");
    None
}

/// Runs the client against a server with `config`; its stdout, once it passed.
async fn run_client(config: DeflateConfig, mode: &str) -> Option<String> {
    let dir = node_dir()?;
    let server = TestServer::start(WebSocketConfig::default().compression(config)).await;
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("node")
            .arg(dir.join("deflate_client.cjs"))
            .arg(format!("ws://{}", server.addr))
            .arg(mode)
            .current_dir(&dir)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("node finished within 60 s")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "node client failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.trim_end().ends_with("node deflate ok"), "{stdout}");
    Some(stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ws_per_message_deflate_shared_mode() {
    let Some(out) = run_client(DeflateConfig::shared(), "shared").await else {
        return;
    };
    for line in [
        "ok   permessage-deflate negotiated",
        "ok   server_no_context_takeover as the mode says",
        "ok   the server sent it compressed",
        "ok   the client sent it compressed",
        "ok   compressing members read it compressed",
        "ok   the plain member read it plain",
    ] {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ws_per_message_deflate_dedicated_mode() {
    let Some(out) = run_client(DeflateConfig::dedicated(15), "dedicated").await else {
        return;
    };
    assert!(
        !out.contains("extensions: permessage-deflate; server_no_context_takeover"),
        "{out}"
    );
    assert!(out.contains("ok   the server sent it compressed"), "{out}");
}
