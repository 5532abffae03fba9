//! Real JavaScript clients against a real server: the npm `graphql-ws` client
//! (graphql-transport-ws), `subscriptions-transport-ws` (the legacy protocol) and
//! `graphql-sse` (SSE, distinct connections). The cases live in `node/clients.cjs`.
//!
//! Needs Node.js and the packages of `node/package.json` (`cargo xtask test` runs
//! `npm install` there). Without them the tests are skipped, except under `CI=true`, where
//! they fail.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use armature_realtime_graphql::GraphQLConfig;
use support::{TestServer, eventually};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn node_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let ready = dir.join("node_modules/graphql-ws").exists()
        && dir.join("node_modules/graphql-sse").exists()
        && dir.join("node_modules/subscriptions-transport-ws").exists();
    if ready {
        return Some(dir);
    }
    let message = "the node clients are not installed: run `cargo xtask test` or \
                   `npm install --prefix crates/armature-realtime-graphql/tests/node`";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("SKIPPED: {message}");
    None
}

fn node(dir: &PathBuf, mode: &str, url: &str) -> Command {
    let mut command = Command::new("node");
    command
        .arg(dir.join("clients.cjs"))
        .arg(mode)
        .arg(url)
        .current_dir(dir)
        .kill_on_drop(true);
    command
}

async fn run_mode(mode: &str, url: &str) -> String {
    let Some(dir) = node_dir() else {
        return String::new();
    };
    let output = tokio::time::timeout(Duration::from_secs(60), node(&dir, mode, url).output())
        .await
        .expect("node finished within 60 s")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{mode} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

#[tokio::test]
async fn graphql_ws_client() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let out = run_mode("graphql-ws", &server.url()).await;
    if out.is_empty() {
        return;
    }
    for case in [
        "subscription: 100 events in order, completed by the server",
        "subscription: completed by the client",
        "query: error result",
        "operation: validation errors through error()",
        "query and mutation over the socket",
        "on-connect: payload reaches resolvers, refusal closes 4403",
    ] {
        assert!(
            out.contains(&format!("OK {case}")),
            "missing {case}:\n{out}"
        );
    }
    // The client-completed subscription's resolver stream is gone.
    assert!(eventually(|| server.live_streams() == 0).await);
}

#[tokio::test]
async fn graphql_ws_client_reconnects_after_a_server_restart() {
    let Some(dir) = node_dir() else {
        return;
    };
    let server = TestServer::start(GraphQLConfig::default()).await;
    let addr = server.addr;
    let mut child = node(&dir, "graphql-ws-reconnect", &server.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut server = Some(server);
    let mut restarted = None;
    let mut log = String::new();
    let result = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.push_str(&line);
            log.push('\n');
            if line.starts_with("EVENT 2") && server.is_some() {
                // Stop (every socket gets 1001) and start again on the same port.
                server.take().unwrap().stop().await;
                restarted =
                    Some(TestServer::start_on(&addr.to_string(), GraphQLConfig::default()).await);
            }
            if line.starts_with("OK reconnect") {
                return true;
            }
        }
        false
    })
    .await;
    let status = child.wait().await.unwrap();
    assert_eq!(result, Ok(true), "log:\n{log}");
    assert!(status.success(), "log:\n{log}");
    assert!(log.contains("CONNECTED 2"), "log:\n{log}");
    assert!(restarted.is_some());
}

#[tokio::test]
async fn subscriptions_transport_ws_client() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let out = run_mode("legacy", &server.url()).await;
    if out.is_empty() {
        return;
    }
    for case in [
        "legacy: subscription, 20 events in order, complete",
        "legacy: query",
        "legacy: stop",
        "legacy: validation errors",
    ] {
        assert!(
            out.contains(&format!("OK {case}")),
            "missing {case}:\n{out}"
        );
    }
    assert!(
        eventually(|| server.live_streams() == 0).await,
        "stop dropped the resolver stream"
    );
}

#[tokio::test]
async fn graphql_sse_client() {
    let server = TestServer::start(GraphQLConfig::default()).await;
    let out = run_mode("sse", &server.http_url()).await;
    if out.is_empty() {
        return;
    }
    for case in [
        "sse: subscription, 30 events in order, complete",
        "sse: subscription without arguments",
        "sse: query and mutation",
        "sse: validation errors as a next event",
        "sse: client abort",
    ] {
        assert!(
            out.contains(&format!("OK {case}")),
            "missing {case}:\n{out}"
        );
    }
    assert!(
        eventually(|| server.live_streams() == 0).await,
        "the abort dropped the resolver stream"
    );
}
