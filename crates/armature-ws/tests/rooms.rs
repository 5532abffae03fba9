//! Rooms over real sockets: broadcast to many, except the sender, leaving on disconnect.

mod common;

use common::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use armature_ws::{WebSocketConfig, WebSocketMessage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_get_every_broadcast_once_and_in_order() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut clients = Vec::new();
    for _ in 0..200 {
        let mut client = server.connect("/room/big").await;
        joined(&mut client).await;
        clients.push(client);
    }
    let room = server.manager.get_room("big").await.unwrap();
    assert_eq!(room.connection_count().await, 200);

    // 100 messages from one client, broadcast by the server's read loop to all 200
    // (the sender included), then one broadcast from the server side.
    let mut sender = clients.remove(0);
    for i in 0..100 {
        sender.feed(Message::text(format!("c{i}"))).await.unwrap();
    }
    sender.flush().await.unwrap();
    clients.push(sender);
    let mut readers = Vec::new();
    for mut client in clients {
        readers.push(tokio::spawn(async move {
            for i in 0..100 {
                assert_eq!(next_data(&mut client).await, Message::text(format!("c{i}")));
            }
            client
        }));
    }
    let mut clients = Vec::new();
    for reader in readers {
        clients.push(tokio::time::timeout(WAIT, reader).await.unwrap().unwrap());
    }
    // No duplicate is pending: the next message each client sees is this one.
    room.broadcast_text("final").await.unwrap();
    for client in &mut clients {
        assert_eq!(next_data(client).await, Message::text("final"));
    }
}

#[tokio::test]
async fn broadcast_except_skips_the_sender() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut a = server.connect("/except/x").await;
    joined(&mut a).await;
    let mut b = server.connect("/except/x").await;
    joined(&mut b).await;
    let mut c = server.connect("/except/x").await;
    joined(&mut c).await;
    send_text(&mut a, "from a").await;
    assert_eq!(next_data(&mut b).await, Message::text("from a"));
    assert_eq!(next_data(&mut c).await, Message::text("from a"));
    send_text(&mut b, "from b").await;
    assert_eq!(next_data(&mut a).await, Message::text("from b"));
    assert_eq!(next_data(&mut c).await, Message::text("from b"));
    // a got nothing of its own: the next thing it sees is b's message, checked above.
}

#[tokio::test]
async fn disconnect_leaves_every_room() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut stays = server.connect("/join/r1,r2").await;
    let stays_id = joined(&mut stays).await;
    let mut goes = server.connect("/join/r1,r2,r3").await;
    let goes_id = joined(&mut goes).await;
    let (r1, r2) = (server.manager.room("r1"), server.manager.room("r2"));
    assert!(r1.contains(&goes_id) && r2.contains(&goes_id));
    assert!(
        server
            .manager
            .get_room("r3")
            .await
            .unwrap()
            .contains(&goes_id)
    );

    drop(goes); // abrupt: no close handshake
    eventually("left r1 and r2", || {
        !r1.contains(&goes_id) && !r2.contains(&goes_id)
    })
    .await;
    assert!(r1.contains(&stays_id) && r2.contains(&stays_id));
    // r3 lost its last member and the manager is set to remove empty rooms.
    eventually("r3 removed", || {
        !server.manager.room_names().contains(&"r3".to_owned())
    })
    .await;
    assert_eq!(r1.len(), 1);

    stays.close(None).await.unwrap();
    eventually("r1 and r2 removed", || server.manager.room_count() == 0).await;
}

#[tokio::test]
async fn server_side_send_to_one_id_and_broadcast_reach_live_sockets() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut a = server.connect("/join/lobby").await;
    let a_id = joined(&mut a).await;
    let mut b = server.connect("/join/lobby").await;
    joined(&mut b).await;
    let lobby = server.manager.get_room("lobby").await.unwrap();
    lobby
        .send_to(&a_id, WebSocketMessage::text("just you"))
        .await
        .unwrap();
    lobby
        .broadcast_json(&serde_json::json!({"to": "all"}))
        .await
        .unwrap();
    assert_eq!(next_data(&mut a).await, Message::text("just you"));
    assert_eq!(next_data(&mut a).await, Message::text(r#"{"to":"all"}"#));
    assert_eq!(next_data(&mut b).await, Message::text(r#"{"to":"all"}"#));
    assert!(
        lobby
            .send_to("nobody", WebSocketMessage::text("x"))
            .await
            .unwrap_err()
            .is_closed()
    );
}

#[tokio::test]
async fn one_connection_in_many_rooms_gets_each_rooms_broadcasts() {
    let server = TestServer::start(WebSocketConfig::default()).await;
    let mut both = server.connect("/join/m1,m2").await;
    joined(&mut both).await;
    let mut only_m2 = server.connect("/join/m2").await;
    joined(&mut only_m2).await;
    server
        .manager
        .room("m1")
        .broadcast_text("to m1")
        .await
        .unwrap();
    server
        .manager
        .room("m2")
        .broadcast_text("to m2")
        .await
        .unwrap();
    assert_eq!(next_data(&mut both).await, Message::text("to m1"));
    assert_eq!(next_data(&mut both).await, Message::text("to m2"));
    assert_eq!(next_data(&mut only_m2).await, Message::text("to m2"));
}
