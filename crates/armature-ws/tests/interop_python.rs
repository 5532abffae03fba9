//! Interop with a client that is neither ours nor Rust: the Python `websockets` package
//! exchanges text, binary, fragments, ping and close with our server.
//!
//! The interpreter is `$ARMATURE_PYTHON` (set by `cargo xtask test`, a venv with
//! `websockets==15.0.1`), else `python3` if it can import `websockets`. Without one the test
//! fails when `CI=true` and is skipped loudly otherwise.

mod common;

use std::process::Stdio;

use common::*;

use armature_ws::WebSocketConfig;

async fn python_with_websockets() -> Option<String> {
    let candidates = match std::env::var("ARMATURE_PYTHON") {
        Ok(python) => vec![python],
        Err(_) => vec!["python3".to_owned()],
    };
    for python in candidates {
        let ok = tokio::process::Command::new(&python)
            .args(["-c", "import websockets"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|status| status.success());
        if ok {
            return Some(python);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_websockets_client_talks_to_our_server() {
    let Some(python) = python_with_websockets().await else {
        let message = "no Python with the `websockets` package: set ARMATURE_PYTHON or run \
                       `cargo xtask test`";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{message}");
        }
        eprintln!("\n!!!!!!!! SKIPPED python interop test: {message} !!!!!!!!\n");
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
