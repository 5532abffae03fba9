//! Resident memory per idle WebSocket connection, measured across two processes.
//!
//! `cargo run --release -p armature-ws --example idle_rss -- 9000`
//!
//! Starts itself again as an echo server (a child process on a current-thread runtime),
//! reads the server's `VmRSS`, opens N WebSocket connections to it (raw handshakes, nothing
//! sent afterwards), waits for the server to settle, reads `VmRSS` again and prints
//! `(after - before) / N`. N defaults to 9,000: this machine's limit of 20,000 open files
//! per process leaves room for that in the client process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use armature_ws::{Hub, WebSocket, WebSocketConfig, WebSocketUpgrade, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("server") {
        return server();
    }
    let n: usize = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(9000);
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg("server")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let addr: std::net::SocketAddr = line.trim().parse()?;
    let pid = child.id();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(measure(addr, pid, n));
    child.kill()?;
    child.wait()?;
    result
}

/// The echo server, printing its address on the first line of stdout.
fn server() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("{}", listener.local_addr()?);
        let hub = Hub::new(WebSocketConfig::default());
        serve(
            listener,
            hub,
            |mut req| async move {
                match WebSocketUpgrade::from_request(&mut req) {
                    Ok(upgrade) => upgrade.on_upgrade(echo),
                    Err(rejection) => {
                        rejection.into_response::<http_body_util::Full<bytes::Bytes>>()
                    }
                }
            },
            std::future::pending(),
        )
        .await
    })?;
    Ok(())
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
            return;
        }
    }
}

fn rss_kib(pid: u32) -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
}

async fn measure(
    addr: std::net::SocketAddr,
    pid: u32,
    n: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(pid)?;
    let request = format!(
        "GET /echo HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut head = [0u8; 256];
        let read = stream.read(&mut head).await?;
        if !head[..read].starts_with(b"HTTP/1.1 101") {
            return Err("upgrade refused".into());
        }
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    let per = (after.saturating_sub(before)) as f64 / n as f64;
    println!(
        "{n} idle connections: server VmRSS {before} KiB -> {after} KiB, {per:.2} KiB per connection"
    );
    Ok(())
}
