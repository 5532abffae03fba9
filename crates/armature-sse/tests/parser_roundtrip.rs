//! Our encoder's output, read back by an independent spec-following parser
//! (`eventsource-stream`), gives exactly the events we encoded.

use std::time::Duration;

use armature_sse::ServerSentEvent;
use bytes::Bytes;
use eventsource_stream::{Event, Eventsource};
use futures_util::{FutureExt, TryStreamExt};
use proptest::prelude::*;

fn text(special: &'static [char], max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => any::<char>(),
            2 => prop::char::range('a', 'z'),
            2 => prop::sample::select(special),
        ],
        0..max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn single_line(extra: &'static [char]) -> impl Strategy<Value = String> {
    text(extra, 8).prop_map(|s| s.replace(['\r', '\n', '\0'], "_"))
}

fn event() -> impl Strategy<Value = ServerSentEvent> {
    (
        prop::option::of(single_line(&[' ', ':', '\u{feff}'])),
        prop::option::of(single_line(&[' ', ':'])),
        text(&['\r', '\n', ' ', ':', '\0', '\u{feff}'], 24),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(id, event, data, retry)| ServerSentEvent {
            id,
            event,
            data,
            retry,
        })
}

/// What a spec-following client sees for `events`, in order.
fn expected(events: &[ServerSentEvent]) -> Vec<Event> {
    let mut last_id = String::new();
    let mut out = Vec::new();
    for e in events {
        if let Some(id) = &e.id {
            last_id = id.clone();
        }
        let control_only =
            e.data.is_empty() && e.event.is_none() && (e.id.is_some() || e.retry.is_some());
        if control_only {
            continue; // sets the id and/or reconnection time; nothing is dispatched
        }
        out.push(Event {
            event: match e.event.as_deref() {
                None | Some("") => "message".to_string(),
                Some(t) => t.to_string(),
            },
            // Every line break arrives as LF.
            data: e.data.replace("\r\n", "\n").replace('\r', "\n"),
            id: last_id.clone(),
            retry: e.retry.map(Duration::from_millis),
        });
    }
    out
}

fn parse(chunks: Vec<Bytes>) -> Vec<Event> {
    futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::convert::Infallible>))
        .eventsource()
        .try_collect::<Vec<_>>()
        .now_or_never()
        .expect("all chunks are ready")
        .expect("the parser accepted the stream")
}

/// Cuts `wire` at the given fractions, so events (and UTF-8 characters, and CR LF pairs)
/// arrive split across reads.
fn split(wire: &[u8], cuts: &[f64]) -> Vec<Bytes> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|f| (f * wire.len() as f64) as usize)
        .collect();
    at.push(0);
    at.push(wire.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2)
        .map(|w| Bytes::copy_from_slice(&wire[w[0]..w[1]]))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encoded_events_parse_back_exactly(
        events in prop::collection::vec(event(), 1..6),
        cuts in prop::collection::vec(0.0f64..1.0, 0..6),
    ) {
        let mut wire = Vec::new();
        for e in &events {
            wire.extend_from_slice(&e.encode().unwrap());
        }
        prop_assert_eq!(parse(split(&wire, &cuts)), expected(&events));
    }

    #[test]
    fn comments_are_invisible(
        comment in text(&['\r', '\n', ':'], 16),
        data in text(&['\r', '\n'], 16),
    ) {
        let mut wire = armature_sse::encode_comment(&comment).to_vec();
        wire.extend_from_slice(armature_sse::KEEP_ALIVE);
        wire.extend_from_slice(&ServerSentEvent::new(data.clone()).encode().unwrap());
        let got = parse(vec![Bytes::from(wire)]);
        prop_assert_eq!(got.len(), 1);
        prop_assert_eq!(&got[0].data, &data.replace("\r\n", "\n").replace('\r', "\n"));
    }
}

#[test]
fn hand_picked_cases_parse_back() {
    let events = [
        ServerSentEvent::new("line1\r\nline2\rline3\n".into()),
        ServerSentEvent::new(" leading space".into()),
        ServerSentEvent::new(String::new()),
        ServerSentEvent::with_event("typed".into(), "\n\n".into()),
        ServerSentEvent::full("9".into(), "n".into(), "日本語 🎉".into(), 1500),
        ServerSentEvent {
            retry: Some(10),
            ..Default::default()
        },
    ];
    let wire: Vec<u8> = events.iter().flat_map(|e| e.encode().unwrap()).collect();
    let got = parse(vec![Bytes::from(wire)]);
    assert_eq!(got, expected(&events));
    assert_eq!(got[0].data, "line1\nline2\nline3\n");
    assert_eq!(got[1].data, " leading space");
    assert_eq!(got[2].data, "");
    assert_eq!(got[3].data, "\n\n");
    assert_eq!(got[4].data, "日本語 🎉");
    assert_eq!(got.len(), 5);
}
