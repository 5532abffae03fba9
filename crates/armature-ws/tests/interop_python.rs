//! Interop with a client that is neither ours nor Rust: the Python `websockets` package
//! exchanges text, binary, fragments, ping and close with our server.
//!
//! The interpreter is `$ARMATURE_PYTHON` (set by `cargo xtask test`, a venv with
//! `websockets==15.0.1`), else `python3` if it can import `websockets`. Without one the test
//! fails when `CI=true` and is skipped loudly otherwise.

mod common;

use common::*;

use armature_ws::WebSocketConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_client_talks_to_our_server() {
    let Some(python) = python_with_websockets("python interop test").await else {
        return;
    };
    let server = TestServer::start(WebSocketConfig::default()).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/websockets_client.py"
    );
    let output = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(&python)
            .arg(script)
            .arg(server.url("/echo"))
            .output(),
    )
    .await
    .expect("python client timed out")
    .expect("python client did not start");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "python client failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("close code echoed by the server"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("interop ok"), "{stdout}");
    eventually("both connections ended", || {
        server.hub.connection_count() == 0
    })
    .await;
    assert_eq!(server.hub.stats().connections_opened, 2);
}
