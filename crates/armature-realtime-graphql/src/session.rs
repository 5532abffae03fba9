//! The socket glue: one WebSocket, one protocol machine, the on-connect hook, the init
//! timer and the running operations. The machine decides; this only moves messages.
//!
//! The loop is the connection's one task (the armature-ws model): it reads the socket,
//! and every read also writes what the operation tasks queued through the connection's
//! [`WebSocketConnection`] handle. Each operation runs on its own task, so a slow resolver
//! never holds up reading, pings or other operations; a client `complete` aborts that task,
//! dropping the resolver's stream at once.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use armature_ws::{WebSocket, WebSocketConnection, WebSocketMessage};
use armature_ws_core::encode_text;
use async_graphql::{Data, Executor};
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::GraphQLConfig;
use crate::connect::{ConnectFuture, ConnectionInit, OnConnect};
use crate::operation::{self, Sink};
use crate::protocol::{
    Action, GRAPHQL_TRANSPORT_WS, GRAPHQL_WS, LegacyWs, Outcome, Protocol, Serial, TransportWs,
};
use crate::request_data::RequestData;

impl Sink for WebSocketConnection {
    fn send_text(&self, text: String) -> bool {
        self.send_frame(encode_text(&text)).is_ok()
    }
}

/// Everything a session needs from its endpoint.
pub(crate) struct SessionParts<E> {
    pub(crate) executor: E,
    pub(crate) config: Arc<GraphQLConfig>,
    pub(crate) on_connect: Option<OnConnect>,
    pub(crate) request: RequestData,
    pub(crate) shared: Arc<crate::shared::SharedSubscriptions>,
}

/// Serves GraphQL on `socket` until it closes.
pub(crate) async fn run<E: Executor>(mut socket: WebSocket, parts: SessionParts<E>) {
    let (mut machine, protocol): (Box<dyn Protocol>, &'static str) = match socket.protocol() {
        Some(GRAPHQL_TRANSPORT_WS) => (
            Box::new(TransportWs::new(parts.config.max_operations)),
            GRAPHQL_TRANSPORT_WS,
        ),
        Some(GRAPHQL_WS) => (
            Box::new(LegacyWs::new(
                parts.config.max_operations,
                parts.config.keep_alive.is_some(),
            )),
            GRAPHQL_WS,
        ),
        _ => {
            let _ = socket
                .close(
                    crate::protocol::close_code::SUBPROTOCOL_NOT_ACCEPTABLE,
                    "Subprotocol not acceptable",
                )
                .await;
            return;
        }
    };
    let connection = Arc::new(socket.connection());
    let wire = machine.wire();
    let (done_tx, mut done_rx) = mpsc::channel::<(Serial, Outcome)>(parts.config.max_operations);
    let mut operations: HashMap<Serial, JoinHandle<()>> = HashMap::new();
    let mut connecting: Option<ConnectFuture> = None;
    let mut session = Arc::new(Data::default());
    let init_deadline = tokio::time::sleep(parts.config.connection_init_timeout);
    tokio::pin!(init_deadline);
    let mut keep_alive = parts.config.keep_alive.map(|every| {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });

    'session: loop {
        while let Some(action) = machine.poll_action() {
            match action {
                Action::Send(text) => {
                    if !Sink::send_text(&*connection, text) {
                        break 'session;
                    }
                }
                Action::Close { code, reason } => {
                    for (_, task) in operations.drain() {
                        task.abort();
                    }
                    let _ = socket.close(code, reason).await;
                    // Keep reading until the client answers (or the close timeout).
                    while socket.recv().await.is_some() {}
                    return;
                }
                Action::Connect { payload } => {
                    let init = ConnectionInit {
                        payload,
                        request: Arc::clone(&parts.request.parts),
                        protocol,
                    };
                    connecting = Some(match &parts.on_connect {
                        Some(hook) => hook(init),
                        None => Box::pin(async { Ok(crate::Accepted::new()) }),
                    });
                }
                Action::Execute {
                    id,
                    serial,
                    payload,
                } => {
                    let executor = parts.executor.clone();
                    let session = Arc::clone(&session);
                    let request = parts.request.clone();
                    let sink = Arc::clone(&connection);
                    let done = done_tx.clone();
                    let shared = crate::shared::key(&payload, &parts.config.shared_subscriptions)
                        .map(|key| (Arc::clone(&parts.shared), key));
                    let task = tokio::spawn(async move {
                        let run = async {
                            match shared {
                                Some((registry, key)) => {
                                    crate::shared::run(
                                        registry,
                                        key,
                                        executor,
                                        payload,
                                        wire,
                                        id.clone(),
                                        Arc::clone(&sink),
                                    )
                                    .await
                                }
                                None => {
                                    operation::run(
                                        executor,
                                        payload,
                                        session,
                                        &request,
                                        wire,
                                        id.clone(),
                                        Arc::clone(&sink),
                                    )
                                    .await
                                }
                            }
                        };
                        // A resolver that panics ends its own operation with an error,
                        // not the connection and not its other operations.
                        let outcome = match AssertUnwindSafe(run).catch_unwind().await {
                            Ok(outcome) => outcome,
                            Err(_) => {
                                let errors = crate::protocol::error_json("internal server error");
                                Sink::send_text(&*sink, wire.request_error(&id, &errors));
                                Outcome::RequestError
                            }
                        };
                        let _ = done.send((serial, outcome)).await;
                    });
                    operations.insert(serial, task);
                }
                Action::Cancel { serial } => {
                    if let Some(task) = operations.remove(&serial) {
                        task.abort();
                    }
                }
            }
        }

        tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(WebSocketMessage::Text(text))) => machine.receive_text(&text),
                Some(Ok(WebSocketMessage::Binary(_))) => machine.receive_binary(),
                Some(Ok(WebSocketMessage::Ping(_) | WebSocketMessage::Pong(_))) => {}
                Some(Ok(_)) | Some(Err(_)) | None => break 'session,
            },
            Some((serial, outcome)) = done_rx.recv() => {
                operations.remove(&serial);
                machine.operation_finished(serial, outcome);
            }
            result = async {
                match connecting.as_mut() {
                    Some(hook) => hook.await,
                    None => std::future::pending().await,
                }
            }, if connecting.is_some() => {
                connecting = None;
                match result {
                    Ok(accepted) => {
                        session = Arc::new(accepted.data);
                        machine.connect_accepted(accepted.ack_payload);
                    }
                    Err(rejected) => machine.connect_rejected(&rejected.message),
                }
            }
            () = &mut init_deadline, if machine.awaiting_init() => machine.init_timeout(),
            _ = async {
                match keep_alive.as_mut() {
                    Some(interval) => interval.tick().await,
                    None => std::future::pending().await,
                }
            }, if keep_alive.is_some() => {
                machine.keep_alive();
            }
        }
    }
    for (_, task) in operations.drain() {
        task.abort();
    }
}
