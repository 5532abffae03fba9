//! Measures resident memory per idle SSE client: server process and client process, VmRSS
//! after minus before, divided by the number of clients.
//!
//! ```text
//! ulimit -n 20000
//! cargo run --release -p armature-sse --example sse_idle_memory -- 9000 hyper
//! ```
//!
//! The second argument picks the server:
//!
//! - `hyper`: hyper 1 HTTP/1 with its defaults, the response body an armature-sse
//!   `ReceiverStream` registered with an `SseBroadcaster` (what a user of this crate runs);
//! - `hyper-flatten`: the same with `writev(false)` (hyper flattens writes into its head
//!   buffer instead of queueing the `Bytes`);
//! - `hyper-minbuf`: the same with `max_buf_size(8192)`, the smallest hyper accepts;
//! - `hyper-gzip`: `hyper` with the response gzip-encoded (`armature_sse::gzip_response`; the
//!   clients send `Accept-Encoding: gzip`);
//! - `floor`: no HTTP at all: one tokio task per accepted socket holding a registered client
//!   and writing its events to the socket. Not a server (it never reads a request); it shows
//!   what the socket, the task and our client queue cost without hyper.
//!
//! The driver (this process) spawns the server as a child, connects N clients with plain
//! blocking sockets, sends each an HTTP request and reads the response head (not for
//! `floor`), measures, then has the server broadcast one event, reads it on every client,
//! and measures again.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use armature_sse::SseBroadcaster;
use http_body_util::Either;
use hyper::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        serve(args.get(2).cloned().unwrap_or_else(|| "hyper".into()));
        return;
    }
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5000);
    let variant = args.get(2).cloned().unwrap_or_else(|| "hyper".into());
    drive(n, &variant);
}

/// VmRSS of `pid` ("self" for this process), in KiB.
fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn drive(n: usize, variant: &str) {
    let exe = std::env::current_exe().unwrap();
    // SERVER_WRAP=heaptrack runs the server under a heap profiler (its RSS is then the
    // profiler's, not the server's: use it for the allocation breakdown only).
    let mut command = match std::env::var("SERVER_WRAP") {
        Ok(wrap) => {
            let mut c = Command::new(wrap);
            c.arg(exe);
            c
        }
        Err(_) => Command::new(exe),
    };
    let mut child = command
        .args(["serve", variant])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port: u16 = loop {
        if let Some(port) = line.trim().strip_prefix("PORT ") {
            break port.parse().unwrap();
        }
        line.clear();
        out.read_line(&mut line).unwrap();
    };
    let mut stdin = child.stdin.take().unwrap();

    std::thread::sleep(Duration::from_millis(500));
    let server_before = rss_kib(&pid);
    let client_before = rss_kib("self");

    let http = variant != "floor";
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        if http {
            s.write_all(
                b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\
                  Accept-Encoding: gzip\r\n\r\n",
            )
            .unwrap();
            read_until(&mut s, b"\r\n\r\n");
        }
        clients.push(s);
    }
    std::thread::sleep(Duration::from_secs(2));
    let server_idle = rss_kib(&pid);
    let client_idle = rss_kib("self");

    // One event to everyone, read by everyone.
    stdin.write_all(b"broadcast\n").unwrap();
    stdin.flush().unwrap();
    // A gzip event ends with a full flush's empty stored block, then the chunk's CRLF.
    let event_end: &[u8] = if variant == "hyper-gzip" {
        b"\x00\x00\xff\xff\r\n"
    } else {
        b"\n\n"
    };
    for s in &mut clients {
        read_until(s, event_end);
    }
    std::thread::sleep(Duration::from_secs(2));
    let server_after_event = rss_kib(&pid);

    let per = |after: u64, before: u64| (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!("variant={variant} clients={n}");
    println!(
        "server: before {server_before} KiB, idle {server_idle} KiB, after one event {server_after_event} KiB"
    );
    println!(
        "server bytes/client: idle {:.0}, after one event {:.0}",
        per(server_idle, server_before),
        per(server_after_event, server_before)
    );
    println!(
        "client process bytes/client: {:.0}",
        per(client_idle, client_before)
    );
    drop(clients);
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads until `end` has been seen (the bytes are thrown away).
fn read_until(s: &mut TcpStream, end: &[u8]) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !seen.windows(end.len()).any(|w| w == end) {
        let k = s.read(&mut buf).unwrap();
        assert!(k > 0, "server closed the connection");
        seen.extend_from_slice(&buf[..k]);
    }
}

static SIZE_SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn serve(variant: String) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let broadcaster = Arc::new(SseBroadcaster::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("PORT {}", listener.local_addr().unwrap().port());

        let b = broadcaster.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin());
            let mut line = String::new();
            while tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line)
                .await
                .unwrap()
                > 0
            {
                b.broadcast_message("ping".into()).await.unwrap();
                line.clear();
            }
        });

        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let broadcaster = broadcaster.clone();
            if variant == "floor" {
                tokio::spawn(floor_client(tcp, broadcaster));
                continue;
            }
            let mut builder = hyper::server::conn::http1::Builder::new();
            match variant.as_str() {
                "hyper-flatten" => {
                    builder.writev(false);
                }
                "hyper-minbuf" => {
                    builder.max_buf_size(8192);
                }
                _ => {}
            }
            let gzip = variant == "hyper-gzip";
            let service = service_fn(move |req: Request<Incoming>| {
                let broadcaster = broadcaster.clone();
                async move {
                    let response = broadcaster.response_for(req.headers());
                    Ok::<_, Infallible>(if gzip {
                        armature_sse::gzip_response(response).map(Either::Right)
                    } else {
                        response.map(Either::Left)
                    })
                }
            });
            let connection = builder.serve_connection(TokioIo::new(tcp), service);
            if !SIZE_SHOWN.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!(
                    "hyper connection future: {} bytes (lives in the task cell)",
                    std::mem::size_of_val(&connection)
                );
            }
            tokio::spawn(connection);
        }
    });
}

/// A registered client writing its events straight to the socket: no HTTP.
async fn floor_client(mut tcp: tokio::net::TcpStream, broadcaster: Arc<SseBroadcaster>) {
    use futures_util::StreamExt;
    let mut events = broadcaster.register().await.into_bytes();
    while let Some(Ok(bytes)) = events.next().await {
        if tcp.write_all(&bytes).await.is_err() {
            break;
        }
    }
}
