//! The app server over real sockets: routing, params, query, headers, static files,
//! controllers from modules, graceful shutdown.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use armature_realtime::body::{Body, text_response};
use armature_realtime::module::BoxFuture;
use armature_realtime::{
    App, Container, Controller, ControllerRoutes, Error, Injectable, Module, ModuleBuilder,
    RequestHead, Route, RouteKind,
};
use bytes::Bytes;
use common::{TIMEOUT, get, get_with, send};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, StreamBody};

#[tokio::test]
async fn routes_params_query_and_headers() {
    let app = App::new()
        .get("/hello/:name", |head: RequestHead| async move {
            let text = format!(
                "hello {} from {} (lang={})",
                head.param("name").unwrap_or("?"),
                head.header("x-from").unwrap_or("nobody"),
                head.query("lang").unwrap_or("none"),
            );
            text_response(StatusCode::OK, text)
        })
        .get("/hello/admin", |_| async {
            text_response(StatusCode::OK, "the admin")
        });
    let server = app.bind("127.0.0.1:0").await.unwrap().spawn();
    let addr = server.local_addr();

    let (status, body) = get_with(addr, "/hello/Ada%20L?lang=fr+CA", &[("X-From", "test")]).await;
    assert_eq!(status, 200);
    assert_eq!(body, "hello Ada L from test (lang=fr CA)");
    assert_eq!(get(addr, "/hello/admin").await, (200, "the admin".into()));
    assert_eq!(get(addr, "/nothing").await.0, 404);

    let req = Request::post("/hello/x").body(Empty::new()).unwrap();
    assert_eq!(send(addr, req).await.status(), 405);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn allow_origin_is_added_to_every_response() {
    let server = App::new()
        .page("/", "hi")
        .allow_origin("*")
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = server.local_addr();
    let req = Request::get("/").body(Empty::new()).unwrap();
    let res = send(addr, req).await;
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let req = Request::get("/missing").body(Empty::new()).unwrap();
    assert_eq!(
        send(addr, req).await.headers()["access-control-allow-origin"],
        "*"
    );
    server.shutdown().await.unwrap();
    let err = App::new().allow_origin("bad\norigin").build().unwrap_err();
    assert!(err.is_validation(), "{err}");
}

#[tokio::test]
async fn static_files_and_pages() {
    let dir = std::env::temp_dir().join(format!("armature-app-static-{}", std::process::id()));
    tokio::fs::create_dir_all(&dir).await.unwrap();
    tokio::fs::write(dir.join("app.js"), "console.log(1)")
        .await
        .unwrap();
    let server = App::new()
        .page("/", "<h1>demo</h1>")
        .static_dir("/static", &dir)
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = server.local_addr();
    assert_eq!(get(addr, "/").await, (200, "<h1>demo</h1>".into()));
    assert_eq!(
        get(addr, "/static/app.js").await,
        (200, "console.log(1)".into())
    );
    assert_eq!(get(addr, "/static/..%2F..%2Fetc%2Fpasswd").await.0, 404);
    assert_eq!(get(addr, "/static/missing.js").await.0, 404);
    server.shutdown().await.unwrap();
    tokio::fs::remove_dir_all(&dir).await.unwrap();
}

// A hand-written service, controller and module: what the decorators generate.

static CREATED: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone)]
struct Hits(Arc<AtomicUsize>);

impl Injectable for Hits {
    fn create(_: &Container) -> Result<Self, Error> {
        CREATED.fetch_add(1, Ordering::SeqCst);
        Ok(Hits(Arc::new(AtomicUsize::new(0))))
    }
}

struct CountController {
    hits: Hits,
}

impl Controller for CountController {
    fn prefix() -> &'static str {
        "/count"
    }
    fn construct(c: &Container) -> Result<Self, Error> {
        Ok(Self { hits: c.resolve()? })
    }
}

impl CountController {
    fn bump(this: Arc<Self>, _head: RequestHead) -> BoxFuture<Response<Body>> {
        Box::pin(async move {
            let n = this.hits.0.fetch_add(1, Ordering::SeqCst) + 1;
            text_response(StatusCode::OK, n.to_string())
        })
    }
}

impl ControllerRoutes for CountController {
    fn routes(this: &Arc<Self>) -> Vec<Route> {
        vec![Route::for_controller(
            Method::GET,
            "/bump",
            RouteKind::Http,
            this,
            Self::bump,
        )]
    }
}

struct PeekController {
    hits: Hits,
}

impl Controller for PeekController {
    fn prefix() -> &'static str {
        "/peek"
    }
    fn construct(c: &Container) -> Result<Self, Error> {
        Ok(Self { hits: c.resolve()? })
    }
}

impl ControllerRoutes for PeekController {
    fn routes(this: &Arc<Self>) -> Vec<Route> {
        let this = Arc::clone(this);
        vec![Route::new(Method::GET, "/", RouteKind::Http, move |_| {
            let n = this.hits.0.load(Ordering::SeqCst);
            async move { text_response(StatusCode::OK, n.to_string()) }
        })]
    }
}

struct AppModule;
impl Module for AppModule {
    fn configure(b: &mut ModuleBuilder) {
        b.provider::<Hits>()
            .controller::<CountController>()
            .controller::<PeekController>();
    }
}

struct Broken;
impl Module for Broken {
    fn configure(b: &mut ModuleBuilder) {
        b.controller::<CountController>();
    }
}

#[tokio::test]
async fn controllers_share_one_service_instance() {
    let before = CREATED.load(Ordering::SeqCst);
    let server = App::new()
        .module::<AppModule>()
        .module::<AppModule>()
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = server.local_addr();
    assert_eq!(CREATED.load(Ordering::SeqCst) - before, 1);
    assert_eq!(get(addr, "/count/bump").await, (200, "1".into()));
    assert_eq!(get(addr, "/count/bump").await, (200, "2".into()));
    // The other controller sees the same counter: the same instance.
    assert_eq!(get(addr, "/peek").await, (200, "2".into()));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn missing_provider_and_duplicate_routes_fail_at_build() {
    let err = App::new().module::<Broken>().build().unwrap_err();
    assert!(err.to_string().contains("not registered"), "{err}");

    let err = App::new()
        .module::<AppModule>()
        .get("/count/bump", |_| async {
            text_response(StatusCode::OK, "x")
        })
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("duplicate route"), "{err}");
}

#[tokio::test]
async fn graceful_shutdown_ends_streams_and_returns() {
    let app = App::new().get("/stream", |head: RequestHead| async move {
        // An endless stream that ends when the server shuts down, as SSE bodies do.
        let stop = head
            .extensions()
            .get::<armature_realtime::shutdown::ShutdownSignal>()
            .cloned()
            .unwrap();
        let stream = futures_util::stream::unfold((0u32, stop), |(n, stop)| async move {
            if n > 0 {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    () = stop.wait() => return None,
                }
            }
            let frame = http_body::Frame::data(Bytes::from(format!("tick {n}\n")));
            Some((Ok::<_, Error>(frame), (n + 1, stop)))
        });
        Response::new(armature_realtime::body::boxed(StreamBody::new(stream)))
    });
    let server = app
        .shutdown_timeout(Duration::from_secs(15))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = server.local_addr();
    let res = send(addr, Request::get("/stream").body(Empty::new()).unwrap()).await;
    let mut body = res.into_body();
    let first = tokio::time::timeout(TIMEOUT, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "tick 0\n");

    tokio::time::timeout(TIMEOUT, server.shutdown())
        .await
        .expect("shutdown in time")
        .unwrap();
    // The stream ended cleanly (no error), and nothing listens any more.
    let rest = tokio::time::timeout(TIMEOUT, body.collect()).await.unwrap();
    assert!(rest.is_ok());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Writes `request` on a fresh connection and reads until the server closes it.
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = std::time::Instant::now();
    stream.write_all(request).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(TIMEOUT, stream.read(&mut chunk))
            .await
            .expect("the server closed the connection in time")
        {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

// The App runs on armature-ws's accept loop, so its WebSocketConfig's HTTP limits hold.
#[tokio::test]
async fn a_stalled_request_head_is_closed_after_the_header_timeout() {
    use armature_realtime::ws::WebSocketConfig;
    let timeout = Duration::from_millis(600);
    let server = App::new()
        .page("/", "hi")
        .websocket_config(WebSocketConfig::default().header_read_timeout(Some(timeout)))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = server.local_addr();
    // Half a request head, then silence.
    let (response, elapsed) = raw_exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow:").await;
    assert!(
        response.is_empty(),
        "no response to a stalled head: {response:?}"
    );
    assert!(
        elapsed >= timeout - Duration::from_millis(100),
        "closed after {elapsed:?}, before the {timeout:?} header timeout"
    );
    assert!(elapsed < timeout * 10, "closed only after {elapsed:?}");
    // The server still serves others.
    assert_eq!(get(addr, "/").await, (200, "hi".into()));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    use armature_realtime::ws::WebSocketConfig;
    let server = App::new()
        .page("/", "hi")
        .websocket_config(WebSocketConfig::default().max_request_head_bytes(16 * 1024))
        .bind("127.0.0.1:0")
        .await
        .unwrap()
        .spawn();
    let addr = server.local_addr();
    let big = "a".repeat(20 * 1024);
    let request = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let (response, _) = raw_exchange(addr, request.as_bytes()).await;
    assert!(
        response.starts_with("HTTP/1.1 431"),
        "expected 431, got {:?}",
        response.lines().next()
    );
    // A head under the bound is served.
    let fits = "b".repeat(8 * 1024);
    assert_eq!(get_with(addr, "/", &[("x-big", &fits)]).await.0, 200);
    server.shutdown().await.unwrap();
}
