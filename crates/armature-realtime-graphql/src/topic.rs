//! Subscription sources fed by the broadcast paths: a resolver streams what a
//! [`WebSocketRoom`] or an [`SseBroadcaster`] carries, each message decoded from JSON into
//! the resolver's type.
//!
//! A room source is a member of the room like any client (a queue, no socket), so every
//! broadcast reaches it the way it reaches the room's sockets: encoded once, a shared
//! frame pushed into its bounded queue. Through the Redis adapter a room's broadcasts
//! arrive on every node, so a subscription on node B streams what node A published.
//!
//! ```no_run
//! use armature_realtime_graphql::topic;
//! use armature_ws::WebSocketManager;
//! use async_graphql::{Context, SimpleObject, Subscription};
//! use futures_util::Stream;
//! use serde::Deserialize;
//! use std::sync::Arc;
//!
//! #[derive(Clone, Deserialize, SimpleObject)]
//! struct Tick { symbol: String, price: f64 }
//!
//! struct Subscription;
//! #[Subscription]
//! impl Subscription {
//!     async fn ticker(&self, ctx: &Context<'_>) -> impl Stream<Item = Tick> + use<> {
//!         let rooms = ctx.data_unchecked::<Arc<WebSocketManager>>();
//!         topic::room::<Tick>(&rooms.room("ticker")).await
//!     }
//! }
//! ```
//!
//! [`room`] returns once the source is a member: with a multi-process transport (the
//! Redis adapter) once this node's subscription to the room is confirmed, so a message
//! published on any node after the resolver returned reaches the subscription.
//!
//! A member whose queue overflows (a resolver far slower than the publisher) is dropped by
//! the room's back-pressure policy like a slow socket; its stream then ends, and the
//! operation completes.

use std::sync::atomic::{AtomicU64, Ordering};

use armature_sse::SseBroadcaster;
use armature_ws::{WebSocketConnection, WebSocketMessage, WebSocketRoom};
use futures_util::{Stream, StreamExt, stream};
use serde::de::DeserializeOwned;

static NEXT_MEMBER: AtomicU64 = AtomicU64::new(0);

/// Streams the JSON text messages broadcast to `room` as `T`; messages that are not JSON
/// for `T` (and binary ones) are skipped. Returns once the stream is a member of the room
/// (`room.add_connection(..).await`: with the Redis adapter, once the node's subscription
/// is confirmed; if Redis does not confirm in time the member stays joined and gets the
/// room's traffic once it does). Joining fails only for a full room; the stream is then
/// empty. Dropping the stream leaves the room.
pub async fn room<T>(room: &WebSocketRoom) -> impl Stream<Item = T> + Send + 'static + use<T>
where
    T: DeserializeOwned + Send + 'static,
{
    let id = format!(
        "graphql-topic-{}",
        NEXT_MEMBER.fetch_add(1, Ordering::Relaxed)
    );
    let (connection, receiver) = WebSocketConnection::new(id.clone());
    let joined = match room.add_connection(id.as_str(), connection).await {
        Ok(()) => true,
        // A transport that did not confirm in time: still a member (see above).
        Err(_) => room.contains(&id),
    };
    stream::unfold((receiver, joined), |(mut receiver, joined)| async move {
        if !joined {
            return None;
        }
        let message = receiver.recv().await?;
        Some((message, (receiver, joined)))
    })
    .filter_map(|message| async move {
        match message {
            WebSocketMessage::Text(text) => serde_json::from_str::<T>(&text).ok(),
            _ => None,
        }
    })
}

/// Streams the `data` of the events `broadcaster` sends as `T` (only events named `event`,
/// when given); keep-alive comments and undecodable data are skipped. Dropping the stream
/// unregisters it.
pub async fn broadcaster<T>(
    broadcaster: &SseBroadcaster,
    event: Option<&str>,
) -> impl Stream<Item = T> + Send + 'static + use<T>
where
    T: DeserializeOwned + Send + 'static,
{
    let wanted = event.map(str::to_owned);
    broadcaster.register().await.filter_map(move |encoded| {
        let decoded = encoded
            .ok()
            .and_then(|text| parse_event(&text, wanted.as_deref()))
            .and_then(|data| serde_json::from_str::<T>(&data).ok());
        async move { decoded }
    })
}

/// The joined `data` lines of one encoded SSE event, when its name is `wanted` (or no
/// name is wanted).
fn parse_event(text: &str, wanted: Option<&str>) -> Option<String> {
    let mut name = "message";
    let mut data: Option<String> = None;
    for line in text.lines() {
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => name = value,
            "data" => match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    match wanted {
        Some(wanted) if wanted != name => None,
        _ => data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_are_read_back() {
        assert_eq!(
            parse_event("data: {\"a\":1}\n\n", None).as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(
            parse_event("event: tick\ndata: 1\ndata: 2\n\n", Some("tick")).as_deref(),
            Some("1\n2")
        );
        assert_eq!(parse_event("event: tick\ndata: 1\n\n", Some("chat")), None);
        assert_eq!(parse_event(": keep-alive\n\n", None), None);
    }

    #[tokio::test]
    async fn room_broadcasts_arrive_typed_and_dropping_leaves() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Msg {
            n: u32,
        }
        let chat = WebSocketRoom::new("t".into());
        let mut events = Box::pin(room::<Msg>(&chat).await);
        assert_eq!(chat.len(), 1);
        chat.broadcast_text("not json").await.unwrap();
        chat.broadcast_json(&serde_json::json!({"n": 1}))
            .await
            .unwrap();
        chat.broadcast_json(&serde_json::json!({"n": 2}))
            .await
            .unwrap();
        assert_eq!(events.next().await, Some(Msg { n: 1 }));
        assert_eq!(events.next().await, Some(Msg { n: 2 }));
        drop(events);
        assert_eq!(chat.len(), 0);
    }

    #[tokio::test]
    async fn broadcaster_events_arrive_typed() {
        let sse = SseBroadcaster::new();
        let mut events = Box::pin(broadcaster::<u32>(&sse, Some("n")).await);
        sse.broadcast_event("other".into(), "7".into())
            .await
            .unwrap();
        sse.broadcast_event("n".into(), "8".into()).await.unwrap();
        assert_eq!(events.next().await, Some(8));
    }
}
