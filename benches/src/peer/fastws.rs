//! The fastwebsockets peer, written like that crate's `echo_server` example: hyper serves
//! HTTP and `fastwebsockets::upgrade` answers the upgrade; echo reads through a
//! `FragmentCollector` and writes each frame back; fan-out splits the socket
//! (`echo_server_split` example) around a `tokio::sync::broadcast` room; SSE is
//! [`hyper_sse`](super::hyper_sse).

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use fastwebsockets::{
    FragmentCollector, FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError, upgrade,
};
use http::{Request, Response};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::service::service_fn;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

use super::hyper_sse::{PeerBody, SseHub, not_found, status};
use super::{BROADCAST_CAPACITY, serve_hyper};

/// One fan-out message: opcode and payload, copied once from the sender's frame.
type RoomMessage = (OpCode, Bytes);

/// Serves PROTOCOL.md on `listener` until the process ends.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let room = broadcast::channel::<RoomMessage>(BROADCAST_CAPACITY).0;
    let hub = SseHub::new();
    serve_hyper(
        listener,
        service_fn(move |req| {
            let (room, hub) = (room.clone(), hub.clone());
            async move { Ok::<_, Infallible>(route(req, room, hub).await) }
        }),
    )
    .await
}

async fn route(
    mut req: Request<Incoming>,
    room: broadcast::Sender<RoomMessage>,
    hub: SseHub,
) -> Response<PeerBody> {
    let path = req.uri().path().to_owned();
    if path != "/echo" && path != "/fanout" {
        return hub.handle(req).await.unwrap_or_else(|_| not_found());
    }
    let (response, fut) = match upgrade::upgrade(&mut req) {
        Ok(pair) => pair,
        Err(_) => return status(http::StatusCode::BAD_REQUEST),
    };
    tokio::spawn(async move {
        let result = if path == "/echo" {
            echo(fut).await
        } else {
            fanout(fut, room).await
        };
        if let Err(e) = result {
            if !matches!(
                e,
                WebSocketError::ConnectionClosed | WebSocketError::UnexpectedEOF
            ) {
                eprintln!("websocket: {e}");
            }
        }
    });
    response.map(|body| body.map_err(|never| match never {}).boxed())
}

async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = FragmentCollector::new(fut.await?);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn fanout(
    fut: upgrade::UpgradeFut,
    room: broadcast::Sender<RoomMessage>,
) -> Result<(), WebSocketError> {
    let ws = fut.await?;
    let (read, mut write) = ws.split(tokio::io::split);
    let mut read = FragmentCollectorRead::new(read);
    let mut rx = room.subscribe();
    let mut send_task = tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok((opcode, payload)) => {
                    let frame = Frame::new(true, opcode, None, Payload::Borrowed(&payload));
                    if write.write_frame(frame).await.is_err() {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let mut recv_task = tokio::spawn(async move {
        // The write half belongs to the sending task, so replies the protocol obliges
        // (pong, close) are dropped: the generator sends neither ping nor close mid-run.
        let mut no_obligated_send = |_| async { Ok::<_, WebSocketError>(()) };
        loop {
            let frame = read.read_frame(&mut no_obligated_send).await?;
            match frame.opcode {
                OpCode::Close => break,
                OpCode::Text | OpCode::Binary => {
                    let _ = room.send((frame.opcode, Bytes::copy_from_slice(&frame.payload)));
                }
                _ => {}
            }
        }
        Ok::<_, WebSocketError>(())
    });
    tokio::select! {
        _ = &mut send_task => recv_task.abort(),
        _ = &mut recv_task => send_task.abort(),
    }
    Ok(())
}
