//! The demo's typed chat: its checked-in AsyncAPI document and client are current, the
//! document validates (@asyncapi/parser), the TypeScript client compiles with
//! `tsc --strict` (and wrong events or types do not), the JavaScript client parses, and the
//! chat round-trips typed messages through `TestClient`.
//!
//! The npm tools live in `tests/node` (`cargo xtask test` runs `npm ci` there). Without
//! them the node checks are skipped with a message, except under `CI=true`, where they
//! fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use armature_realtime::App;
use armature_realtime::testing::TestClient;
use armature_realtime::typed::MessageErrorKind;
use examples::typed_chat::{Message, TypedChatModule, generated_files};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_checked_in_asyncapi_document_and_clients_are_current() {
    let dir = root().join("static/generated");
    for (name, expected) in generated_files().unwrap() {
        let path = dir.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            current == expected,
            "{} is stale: run `cargo xtask asyncapi` and commit the result",
            path.display()
        );
    }
}

/// The node tools, or `None` (skip) outside CI when they are not installed.
fn node_tools() -> Option<PathBuf> {
    let dir = root().join("tests/node");
    let ready = dir.join("node_modules/@asyncapi/parser").exists()
        && dir.join("node_modules/typescript").exists()
        && Command::new("node").arg("--version").output().is_ok();
    if ready {
        return Some(dir);
    }
    let how = "needs node and `npm ci --prefix examples/tests/node` (cargo xtask test does it)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{how}");
    }
    eprintln!("SKIPPED: {how}");
    None
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the command starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

#[test]
fn the_asyncapi_document_validates() {
    let Some(node) = node_tools() else { return };
    let doc = root().join("static/generated/asyncapi.json");
    let out = run(Command::new("node")
        .arg(node.join("validate.cjs"))
        .arg(&doc));
    assert!(out.contains("VALID: asyncapi 3.0.0"), "{out}");
    assert!(out.contains("chat") && out.contains("beats"), "{out}");
}

#[test]
fn a_broken_document_does_not_validate() {
    // The validator is not a rubber stamp: an operation pointing at a missing channel fails.
    let Some(node) = node_tools() else { return };
    let mut doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("static/generated/asyncapi.json")).unwrap(),
    )
    .unwrap();
    let op = doc["operations"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    op["channel"]["$ref"] = "#/channels/nowhere".into();
    let path = std::env::temp_dir().join(format!("broken-asyncapi-{}.json", std::process::id()));
    std::fs::write(&path, doc.to_string()).unwrap();
    let out = Command::new("node")
        .arg(node.join("validate.cjs"))
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_typescript_client_compiles_strict_and_rejects_wrong_types() {
    let Some(node) = node_tools() else { return };
    let tsc = node.join("node_modules/typescript/bin/tsc");
    let strict = |files: &[&Path]| {
        let mut cmd = Command::new("node");
        cmd.arg(&tsc)
            .args([
                "--strict",
                "--noEmit",
                "--target",
                "es2022",
                "--lib",
                "es2022,dom",
                "--module",
                "esnext",
                "--moduleResolution",
                "bundler",
            ])
            .args(files);
        cmd
    };
    let client = root().join("static/generated/client.ts");
    run(&mut strict(&[&client]));
    // usage.ts holds `@ts-expect-error` lines: each must be an error for it to compile.
    run(&mut strict(&[&node.join("usage.ts")]));
    // And without those markers the same lines do not compile.
    let usage = std::fs::read_to_string(node.join("usage.ts")).unwrap();
    let unmarked = usage.replace("// @ts-expect-error", "//");
    let path = node.join(format!("unmarked-{}.ts", std::process::id()));
    std::fs::write(&path, unmarked).unwrap();
    let out = strict(&[&path]).output().unwrap();
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "wrong types compiled");
    assert!(text.matches("error TS").count() >= 5, "{text}");
}

#[test]
fn the_javascript_client_parses_as_a_module() {
    let Some(_) = node_tools() else { return };
    let js = std::fs::read_to_string(root().join("static/generated/client.js")).unwrap();
    let path = std::env::temp_dir().join(format!("typed-client-{}.mjs", std::process::id()));
    std::fs::write(&path, js).unwrap();
    let out = Command::new("node")
        .arg("--check")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_typed_chat_round_trips_typed_messages() {
    let client = TestClient::new(App::new().module::<TypedChatModule>()).unwrap();
    let mut ann = client
        .websocket("/typed/chat/lobby?name=ann")
        .await
        .unwrap();
    let members: serde_json::Value = ann.expect_event("chat:members").await.unwrap();
    assert_eq!(members["count"], 1);
    let mut bob = client
        .websocket("/typed/chat/lobby?name=bob")
        .await
        .unwrap();
    assert_eq!(
        bob.expect_event::<serde_json::Value>("chat:members")
            .await
            .unwrap()["count"],
        2
    );
    assert_eq!(
        ann.expect_event::<serde_json::Value>("chat:members")
            .await
            .unwrap()["count"],
        2
    );

    bob.send_event("chat:send", &serde_json::json!({"text": "hi ann"}), Some(1))
        .await
        .unwrap();
    let line: Message = ann.expect_event("chat:message").await.unwrap();
    assert_eq!((line.name.as_str(), line.text.as_str()), ("bob", "hi ann"));
    // Bob gets his own line, then the reply to his ack.
    assert_eq!(
        bob.expect_event::<Message>("chat:message").await.unwrap(),
        line
    );
    let sent = bob.recv_envelope().await.unwrap();
    assert_eq!(sent.event, "chat:sent");
    assert_eq!(sent.ack.map(|a| a.0), Some(1));
    assert_eq!(sent.data["id"], line.id);

    // Too long for the validator: a typed error, and Bob stays connected.
    let long = "x".repeat(501);
    bob.send_event("chat:send", &serde_json::json!({ "text": long }), None)
        .await
        .unwrap();
    assert_eq!(
        bob.expect_error().await.unwrap().kind,
        MessageErrorKind::ValidationFailed
    );
    bob.send_text("{oops").await.unwrap();
    assert_eq!(
        bob.expect_error().await.unwrap().kind,
        MessageErrorKind::InvalidEnvelope
    );
    bob.send_event(
        "chat:send",
        &serde_json::json!({"text": "still here"}),
        None,
    )
    .await
    .unwrap();
    let line: Message = ann.expect_event("chat:message").await.unwrap();
    assert_eq!(line.text, "still here");

    bob.close(1000, "bye").await.unwrap();
    assert_eq!(bob.expect_close().await.unwrap(), Some(1000));
    // Bob's leaving is announced, with nothing else in between.
    assert_eq!(
        ann.expect_event::<serde_json::Value>("chat:members")
            .await
            .unwrap()["count"],
        1
    );
}

#[tokio::test]
async fn the_beats_stream_sends_typed_events() {
    let client = TestClient::new(App::new().module::<TypedChatModule>()).unwrap();
    let mut events = client.sse("/typed/beats/3").await.unwrap();
    for n in 1..=3 {
        let beat: serde_json::Value = events.expect_event("beat").await.unwrap();
        assert_eq!(beat["n"], n);
    }
    let done = events.next_event().await.unwrap().unwrap();
    assert_eq!(done.event.as_deref(), Some("done"));
}
