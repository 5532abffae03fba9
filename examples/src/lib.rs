//! Helpers shared by the examples (`cargo run -p examples --example NAME`) and their tests.

pub mod typed_chat;

/// Prints the runtime's logs (`tracing`) on stderr, filtered by `RUST_LOG` (env-filter
/// syntax, such as `RUST_LOG=armature_ws=debug,info`); `info` when it is unset or invalid.
/// Calling it twice is harmless.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The tokio runtime a bench server runs on, from the `WORKERS` variable of
/// `../shared/bench/PROTOCOL.md`: unset or 1 gives a current-thread runtime, N > 1 a
/// multi-thread runtime with N workers.
pub fn runtime_from_env() -> std::io::Result<tokio::runtime::Runtime> {
    let workers: usize = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
}

/// The port an example listens on: the first argument, else `PORT`, else `default`.
pub fn port_from_env(default: u16) -> u16 {
    std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}

/// Clients for the examples' tests: tokio-tungstenite for WebSockets, a raw HTTP/1.1 reader
/// for SSE. Timeouts are generous: the test machines are shared and loaded.
pub mod testing {
    use std::net::SocketAddr;
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::Message;

    /// How long a test waits for anything before failing.
    pub const TIMEOUT: Duration = Duration::from_secs(20);

    /// A WebSocket client.
    pub type Client =
        tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

    /// Connects to `url` and checks the `101`.
    pub async fn ws_connect(url: &str) -> Client {
        let (ws, response) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connected in time")
            .expect("upgrade accepted");
        assert_eq!(response.status(), 101);
        ws
    }

    /// The next text message (other messages are skipped).
    pub async fn next_text(ws: &mut Client) -> String {
        loop {
            let message = tokio::time::timeout(TIMEOUT, ws.next())
                .await
                .expect("message in time")
                .expect("connection open")
                .expect("valid message");
            if let Message::Text(text) = message {
                return text.to_string();
            }
        }
    }

    /// Sends `marker` and reads until it comes back: the client is then in its room (for
    /// handlers that broadcast to the room, sender included).
    pub async fn joined(ws: &mut Client, marker: &str) {
        ws.send(Message::text(marker)).await.expect("sent");
        loop {
            if next_text(ws).await.contains(marker) {
                return;
            }
        }
    }

    /// An open SSE response being read: the head, then events as they arrive. The body is
    /// decoded from HTTP/1.1 chunked transfer coding as it comes.
    pub struct SseClient {
        stream: TcpStream,
        raw: Vec<u8>,
        body: Vec<u8>,
        /// The response status.
        pub status: u16,
        /// The response head (status line and headers) as text.
        pub head: String,
    }

    impl SseClient {
        /// `GET path` with `Accept: text/event-stream` and extra headers.
        pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Self {
            let mut stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
                .await
                .expect("connected in time")
                .expect("connected");
            let mut request =
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
            for (name, value) in headers {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
            request.push_str("\r\n");
            stream
                .write_all(request.as_bytes())
                .await
                .expect("request sent");
            let mut client = SseClient {
                stream,
                raw: Vec::new(),
                body: Vec::new(),
                status: 0,
                head: String::new(),
            };
            let end = loop {
                if let Some(i) = find(&client.raw, b"\r\n\r\n") {
                    break i + 4;
                }
                client.read_more().await;
            };
            let head: Vec<u8> = client.raw.drain(..end).collect();
            client.head = String::from_utf8_lossy(&head).into_owned();
            client.status = client
                .head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            client
        }

        async fn read_more(&mut self) {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(TIMEOUT, self.stream.read(&mut chunk))
                .await
                .expect("data in time")
                .expect("read");
            assert!(n > 0, "the stream ended while waiting for data");
            self.raw.extend_from_slice(&chunk[..n]);
        }

        /// Moves every complete chunk from `raw` to `body`.
        fn decode_chunks(&mut self) {
            while let Some(line_end) = find(&self.raw, b"\r\n") {
                let size_text = String::from_utf8_lossy(&self.raw[..line_end]).into_owned();
                let size_text = size_text.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_text, 16).expect("chunk size");
                let start = line_end + 2;
                if self.raw.len() < start + size + 2 {
                    return;
                }
                self.body.extend_from_slice(&self.raw[start..start + size]);
                self.raw.drain(..start + size + 2);
            }
        }

        /// The next event's lines (without the blank line that ends it), comment-only
        /// blocks (keep-alives) skipped.
        pub async fn next_event(&mut self) -> String {
            loop {
                self.decode_chunks();
                if let Some(i) = find(&self.body, b"\n\n") {
                    let block: Vec<u8> = self.body.drain(..i + 2).collect();
                    let text = String::from_utf8_lossy(&block).into_owned();
                    let lines: Vec<&str> = text
                        .lines()
                        .filter(|l| !l.is_empty() && !l.starts_with(':'))
                        .collect();
                    if !lines.is_empty() {
                        return lines.join("\n");
                    }
                    continue;
                }
                self.read_more().await;
            }
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }
}
