//! The load generator against the Rust peers, in-process over real loopback sockets, with
//! small counts: every scenario completes, counts every delivery, and reports sane figures.
//! No speed is asserted (that is what `cargo xtask bench` is for).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use benches::loadgen::common::{Report, Target};
use benches::loadgen::echo::{self, EchoConfig};
use benches::loadgen::fanout::{self, FanoutConfig, Transport};
use benches::loadgen::idle::{self, IdleConfig};
use benches::loadgen::system::SourceAddrs;
use benches::peer;
use tokio::net::TcpListener;

async fn start<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener));
    addr
}

fn target(server: SocketAddr) -> Target {
    Target {
        server,
        server_pid: Some(std::process::id()),
        sources: SourceAddrs::new(4),
    }
}

fn m(report: &Report, name: &str) -> f64 {
    *report
        .metrics
        .get(name)
        .unwrap_or_else(|| panic!("{} has no {name}: {report:?}", report.scenario))
}

async fn all_scenarios(server: SocketAddr) {
    let t = target(server);
    let e = echo::run(
        &t,
        &EchoConfig {
            connections: 4,
            in_flight: 4,
            payload_len: 32,
            duration: Duration::from_secs(1),
        },
    )
    .await
    .unwrap();
    assert!(m(&e, "round_trips") > 0.0, "{e:?}");
    assert_eq!(m(&e, "errors"), 0.0, "{e:?}");
    assert!(m(&e, "p50_us") <= m(&e, "p99_us"));
    assert!(e.notes.is_empty(), "{:?}", e.notes);

    for transport in [Transport::WebSocket, Transport::Sse] {
        let cfg = FanoutConfig {
            transport,
            subscribers: 20,
            messages: 50,
            payload_len: 64,
            window: 8,
            stall_timeout: Duration::from_secs(20),
            max_duration: Duration::from_secs(60),
        };
        let f = fanout::run(&t, &cfg).await.unwrap();
        assert_eq!(m(&f, "messages_sent"), 50.0, "{f:?}");
        assert_eq!(m(&f, "deliveries"), 1000.0, "{f:?}");
        assert_eq!(m(&f, "missing"), 0.0, "{f:?}");
        assert_eq!(m(&f, "duplicates"), 0.0, "{f:?}");
        assert_eq!(m(&f, "unexpected"), 0.0, "{f:?}");
        assert!(m(&f, "deliveries_per_s") > 0.0);
        assert!(m(&f, "p50_us") <= m(&f, "p99_us"));
    }

    for websocket in [true, false] {
        let cfg = IdleConfig {
            websocket,
            connections: 50,
            settle: Duration::from_millis(100),
        };
        let i = idle::run(&t, &cfg).await.unwrap();
        assert_eq!(m(&i, "opened"), 50.0, "{i:?}");
        assert!(m(&i, "rss_after_kib") > 0.0);
        assert!(m(&i, "kib_per_conn") >= 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_the_tungstenite_peer() {
    all_scenarios(start(peer::tungstenite::serve).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_the_axum_peer() {
    all_scenarios(start(peer::axum_peer::serve).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_the_fastwebsockets_peer() {
    all_scenarios(start(peer::fastws::serve).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_not_there_is_an_error_not_a_figure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let r = echo::run(
        &target(addr),
        &EchoConfig {
            connections: 2,
            in_flight: 1,
            payload_len: 32,
            duration: Duration::from_secs(1),
        },
    )
    .await;
    assert!(r.unwrap_err().to_string().contains("opened 0 of 2"));
}
