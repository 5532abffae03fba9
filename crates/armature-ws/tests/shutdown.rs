//! Graceful shutdown covers upgraded connections: queued frames, then 1001, then return.

mod common;

use common::*;
use tokio_tungstenite::tungstenite::Message;

use armature_ws::WebSocketConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_queues_sends_1001_to_all_and_returns() {
    let mut server = TestServer::start(WebSocketConfig::default()).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        let mut client = server.connect("/join/s").await;
        joined(&mut client).await;
        clients.push(client);
    }
    let room = server.manager.room("s");
    for i in 0..100 {
        room.broadcast_text(format!("last words {i}"))
            .await
            .unwrap();
    }
    server.begin_shutdown();
    for client in &mut clients {
        for i in 0..100 {
            assert_eq!(
                next_data(client).await,
                Message::text(format!("last words {i}"))
            );
        }
        assert_eq!(close_code(client).await, Some(1001));
    }
    server.join().await; // serve returned
    assert_eq!(server.hub.stats().connections_active, 0);
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn shutdown_drops_clients_that_never_answer_after_the_deadline() {
    let config = WebSocketConfig::default().shutdown_timeout(std::time::Duration::from_millis(300));
    let mut server = TestServer::start(config).await;
    // A raw client that never reads nor answers the close.
    let (mut stuck, mut pending) = raw_connect(server.addr, "/echo", &[]).await;
    server.begin_shutdown();
    server.join().await;
    assert_eq!(raw_close_code(&mut stuck, &mut pending).await, Some(1001));
    assert_eq!(
        read_server_frame(&mut stuck, &mut pending).await,
        None,
        "dropped"
    );
}
