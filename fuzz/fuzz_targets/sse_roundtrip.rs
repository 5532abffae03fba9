//! Fuzzes SSE encoding against an independent parser: arbitrary events (ids, types, data with
//! any line breaks, retry times) and comments are encoded by `armature-sse`, the bytes are cut
//! into arbitrary reads and parsed back by `eventsource-stream` (which follows the WHATWG
//! rules); the parser must see exactly the events a spec-following client should see.
//! Events whose `id` or `event` field cannot be encoded must be refused with
//! `Error::Validation`, and only those.
#![no_main]

use std::time::Duration;

use armature_sse::{Error, ServerSentEvent, encode_comment};
use bytes::Bytes;
use eventsource_stream::{Event, Eventsource};
use futures_util::{FutureExt, TryStreamExt};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Text biased towards the characters that matter to the format.
fn text(u: &mut Unstructured<'_>, max: usize) -> Result<String> {
    const SPECIAL: [char; 8] = ['\r', '\n', ' ', ':', '\0', '\u{feff}', 'é', '€'];
    let len = u.int_in_range(0..=max)?;
    let mut s = String::with_capacity(len);
    for _ in 0..len {
        let c = match u.int_in_range(0..=3u8)? {
            0 => *u.choose(&SPECIAL)?,
            1 => char::from(u.int_in_range(b'a'..=b'z')?),
            _ => u.arbitrary::<char>()?,
        };
        s.push(c);
    }
    Ok(s)
}

fn optional(u: &mut Unstructured<'_>, max: usize) -> Result<Option<String>> {
    Ok(if u.arbitrary()? {
        Some(text(u, max)?)
    } else {
        None
    })
}

enum Item {
    Event(ServerSentEvent),
    Comment(String),
}

fn items(u: &mut Unstructured<'_>) -> Result<Vec<Item>> {
    let count = u.int_in_range(0..=8)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        if u.ratio(1, 6)? {
            items.push(Item::Comment(text(u, 16)?));
            continue;
        }
        items.push(Item::Event(ServerSentEvent {
            id: optional(u, 8)?,
            event: optional(u, 8)?,
            data: text(u, 40)?,
            retry: if u.arbitrary()? {
                Some(u.arbitrary()?)
            } else {
                None
            },
        }));
    }
    Ok(items)
}

fn encodable(event: &ServerSentEvent) -> bool {
    !event
        .id
        .as_deref()
        .is_some_and(|id| id.contains(['\r', '\n', '\0']))
        && !event
            .event
            .as_deref()
            .is_some_and(|t| t.contains(['\r', '\n']))
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let items = items(u)?;
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    let mut last_id = String::new();
    for item in &items {
        let e = match item {
            Item::Comment(text) => {
                wire.extend_from_slice(&encode_comment(text));
                continue;
            }
            Item::Event(e) => e,
        };
        match e.encode() {
            Ok(bytes) => {
                assert!(
                    encodable(e),
                    "encoded an event that cannot be encoded: {e:?}"
                );
                wire.extend_from_slice(&bytes);
            }
            Err(Error::Validation(_)) => {
                assert!(!encodable(e), "refused an encodable event: {e:?}");
                continue;
            }
            Err(other) => panic!("unexpected error {other:?} for {e:?}"),
        }
        if let Some(id) = &e.id {
            last_id = id.clone();
        }
        let control_only =
            e.data.is_empty() && e.event.is_none() && (e.id.is_some() || e.retry.is_some());
        if control_only {
            continue; // sets the id and/or reconnection time; nothing is dispatched
        }
        expected.push(Event {
            event: match e.event.as_deref() {
                None | Some("") => "message".to_owned(),
                Some(t) => t.to_owned(),
            },
            data: e.data.replace("\r\n", "\n").replace('\r', "\n"),
            id: last_id.clone(),
            retry: e.retry.map(Duration::from_millis),
        });
    }
    // Cut the wire into reads at arbitrary points (inside characters, between CR and LF).
    let mut chunks = Vec::new();
    let mut rest = &wire[..];
    while !rest.is_empty() {
        let at = u.int_in_range(1..=rest.len()).unwrap_or(rest.len());
        let (head, tail) = rest.split_at(at);
        chunks.push(Ok::<_, std::convert::Infallible>(Bytes::copy_from_slice(
            head,
        )));
        rest = tail;
    }
    let parsed: Vec<Event> = futures_util::stream::iter(chunks)
        .eventsource()
        .try_collect()
        .now_or_never()
        .expect("every chunk is ready")
        .expect("the parser accepted our bytes");
    assert_eq!(
        parsed,
        expected,
        "wire: {:?}",
        String::from_utf8_lossy(&wire)
    );
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
