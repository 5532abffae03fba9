//! `Content-Encoding: gzip` for event streams, with no event held back in a compressor and
//! no compressor per client.
//!
//! A gzip body usually keeps one deflate state per response (a few hundred KiB) and holds
//! bytes back until it is flushed. [`GzipBody`] does neither: each event is deflated on its
//! own from a fresh state and ends with a full flush, so its compressed bytes stand alone,
//! are complete on the wire at once, and are the same for every client. They are made once
//! per event per thread (a small per-thread cache keyed by the event's shared `Bytes`, so a
//! broadcast to 10,000 clients on 4 threads is deflated at most 4 times) and each client only
//! keeps the running CRC-32 and length for the gzip trailer: 24 bytes of state.
//!
//! The stream is: a 10-byte gzip header as the first frame, one frame per event (deflate
//! blocks ending byte-aligned), and at the end an empty final block and the trailer. Any
//! gzip decoder (browsers, curl, `zcat`) reads it, event by event as they arrive.
//!
//! ```
//! use armature_sse::gzip::{GzipBody, accepts_gzip};
//! use bytes::Bytes;
//! use http_body_util::BodyExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut headers = http::HeaderMap::new();
//! headers.insert("accept-encoding", "gzip, deflate, br".parse().unwrap());
//! assert!(accepts_gzip(&headers));
//!
//! let events = http_body_util::Full::new(Bytes::from_static(b"data: hello\n\n"));
//! let gzipped = GzipBody::new(events).collect().await.unwrap().to_bytes();
//! let mut text = String::new();
//! std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut text).unwrap();
//! assert_eq!(text, "data: hello\n\n");
//! # }
//! ```

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Crc, FlushCompress};
use http::HeaderMap;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, HeaderValue, VARY};
use http_body::{Body, Frame, SizeHint};

/// The gzip header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff];

/// An empty final fixed-Huffman block: ends the deflate stream.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Events remembered per thread with their compressed form.
const CACHE_LEN: usize = 16;

/// The deflate level used for events (fast; SSE events are short).
const LEVEL: u32 = 6;

/// Whether `headers` (a request's) accept `gzip` in `Accept-Encoding` (RFC 9110 §12.5.3):
/// listed, or covered by `*`, with a q-value above 0.
///
/// ```
/// use armature_sse::gzip::accepts_gzip;
///
/// let with = |v: &str| {
///     let mut h = http::HeaderMap::new();
///     h.insert("accept-encoding", v.parse().unwrap());
///     accepts_gzip(&h)
/// };
/// assert!(with("gzip"));
/// assert!(with("br;q=1.0, GZIP;q=0.5"));
/// assert!(with("*"));
/// assert!(!with("gzip;q=0"));
/// assert!(!with("*, gzip;q=0.000"));
/// assert!(!with("identity"));
/// assert!(!accepts_gzip(&http::HeaderMap::new()));
/// ```
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
                .next()
                .unwrap_or(1.0);
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(q > 0.0);
            } else if coding == "*" {
                any = Some(q > 0.0);
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Makes `response` (an event stream) gzip-encoded: sets `Content-Encoding: gzip` and
/// `Vary: Accept-Encoding`, drops any `Content-Length` and wraps the body in [`GzipBody`].
/// Call it only when [`accepts_gzip`] said yes for the request.
pub fn gzip_response<B>(response: http::Response<B>) -> http::Response<GzipBody<B>> {
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .append(VARY, HeaderValue::from_static("accept-encoding"));
    parts.headers.remove(CONTENT_LENGTH);
    http::Response::from_parts(parts, GzipBody::new(body))
}

/// An event-stream body, gzip-encoded frame by frame: every frame of the inner body comes
/// out as soon as it went in, compressed (see the [module docs](self)).
pub struct GzipBody<B> {
    inner: B,
    state: State,
    crc: Crc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The header is not sent yet.
    Start,
    Streaming,
    /// The trailer is sent.
    Done,
}

impl<B> GzipBody<B> {
    /// Wraps `inner`.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            state: State::Start,
            crc: Crc::new(),
        }
    }
}

impl<B> std::fmt::Debug for GzipBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzipBody")
            .field("state", &self.state)
            .field("bytes_in", &self.crc.amount())
            .finish_non_exhaustive()
    }
}

impl<B> Body for GzipBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        match this.state {
            State::Done => return Poll::Ready(None),
            State::Start => {
                // The header goes out at once, so a client sees a valid gzip stream start
                // before the first event.
                this.state = State::Streaming;
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&GZIP_HEADER)))));
            }
            State::Streaming => {}
        }
        loop {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => {
                        let compressed = compress_event(&data, &mut this.crc);
                        return Poll::Ready(Some(Ok(Frame::data(compressed))));
                    }
                    // Trailers cannot follow a gzip body's end reliably; drop them.
                    Err(_) => continue,
                },
                Some(Err(err)) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(err)));
                }
                None => {
                    this.state = State::Done;
                    let mut end = BytesMut::with_capacity(10);
                    end.extend_from_slice(&FINAL_BLOCK);
                    end.extend_from_slice(&this.crc.sum().to_le_bytes());
                    end.extend_from_slice(&this.crc.amount().to_le_bytes());
                    return Poll::Ready(Some(Ok(Frame::data(end.freeze()))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// This thread's compressor and its recently compressed events.
struct Cache {
    compress: Compress,
    /// (event, its compressed blocks, its CRC): the event is kept so its address cannot be
    /// reused by another event while the entry lives.
    recent: VecDeque<(Bytes, Bytes, Crc)>,
    /// Events deflated on this thread (for tests and statistics).
    deflated: u64,
}

thread_local! {
    static CACHE: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

/// How many events were deflated on this thread so far (each distinct event once per thread,
/// while it stays among the last few).
pub fn events_deflated() -> u64 {
    CACHE.with(|cache| cache.borrow().as_ref().map_or(0, |c| c.deflated))
}

/// `event` as standalone deflate blocks (fresh state, full flush: byte-aligned, no reference
/// to anything before), from this thread's cache when the same `Bytes` was compressed
/// lately; its CRC-32 is combined into `crc`.
fn compress_event(event: &Bytes, crc: &mut Crc) -> Bytes {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let cache = cache.get_or_insert_with(|| Cache {
            compress: Compress::new(Compression::new(LEVEL), false),
            recent: VecDeque::with_capacity(CACHE_LEN),
            deflated: 0,
        });
        let same = |(seen, _, _): &&(Bytes, Bytes, Crc)| {
            seen.as_ptr() == event.as_ptr() && seen.len() == event.len()
        };
        if let Some((_, compressed, event_crc)) = cache.recent.iter().find(same) {
            crc.combine(event_crc);
            return compressed.clone();
        }
        let compressed = deflate_alone(&mut cache.compress, event);
        let mut event_crc = Crc::new();
        event_crc.update(event);
        crc.combine(&event_crc);
        if cache.recent.len() == CACHE_LEN {
            cache.recent.pop_front();
        }
        cache
            .recent
            .push_back((event.clone(), compressed.clone(), event_crc));
        cache.deflated += 1;
        compressed
    })
}

fn deflate_alone(compress: &mut Compress, data: &[u8]) -> Bytes {
    compress.reset();
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let mut input = data;
    loop {
        let before = compress.total_in();
        let status = compress.compress_vec(input, &mut out, FlushCompress::Full);
        input = input
            .get((compress.total_in() - before) as usize..)
            .unwrap_or_default();
        match status {
            Ok(_) if input.is_empty() && out.len() < out.capacity() => break,
            Ok(_) => out.reserve(input.len() + 64),
            // Compressing memory into memory does not fail; send stored blocks if it did.
            Err(_) => {
                compress.reset();
                return stored(data);
            }
        }
    }
    compress.reset();
    Bytes::from(out)
}

/// `data` as stored (uncompressed) non-final deflate blocks.
fn stored(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 5 * (data.len() / 0xFFFF + 1));
    for chunk in data.chunks(0xFFFF) {
        let len = chunk.len() as u16;
        out.extend_from_slice(&[0]);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn gunzip(bytes: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    fn body_of(events: Vec<Bytes>) -> impl Body<Data = Bytes, Error = std::convert::Infallible> {
        StreamBody::new(futures_util::stream::iter(
            events.into_iter().map(|e| Ok(Frame::data(e))),
        ))
    }

    #[tokio::test]
    async fn a_stream_of_events_gunzips_to_the_events() {
        let events: Vec<Bytes> = (0..50)
            .map(|i| {
                Bytes::from(format!(
                    "id: {i}\ndata: {{\"n\":{i},\"text\":\"hello hello\"}}\n\n"
                ))
            })
            .collect();
        let expected: String = events
            .iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect();
        let gz = GzipBody::new(body_of(events))
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&gz[..10], GZIP_HEADER);
        assert_eq!(gunzip(&gz), expected);
    }

    /// Each event is complete on the wire: the bytes sent so far decode to every event sent
    /// so far, with nothing held back.
    #[tokio::test]
    async fn every_event_is_flushed() {
        let events: Vec<Bytes> = ["data: one\n\n", "data: two\n\n", "event: x\ndata: 3\n\n"]
            .into_iter()
            .map(|s| Bytes::from_static(s.as_bytes()))
            .collect();
        let mut body = std::pin::pin!(GzipBody::new(body_of(events.clone())));
        let mut wire = Vec::new();
        let mut so_far = String::new();
        wire.extend_from_slice(&body.frame().await.unwrap().unwrap().into_data().unwrap());
        for event in &events {
            wire.extend_from_slice(&body.frame().await.unwrap().unwrap().into_data().unwrap());
            so_far.push_str(std::str::from_utf8(event).unwrap());
            // Decode a truncated stream as far as it goes.
            let mut d = flate2::Decompress::new(false);
            let mut out = Vec::with_capacity(1 << 16);
            d.decompress_vec(&wire[10..], &mut out, flate2::FlushDecompress::Sync)
                .unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), so_far);
        }
        let trailer = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(trailer.len(), 10);
        assert!(body.is_end_stream());
        wire.extend_from_slice(&trailer);
        assert_eq!(gunzip(&wire), so_far);
    }

    #[test]
    fn a_shared_event_is_deflated_once_per_thread() {
        let event = Bytes::from("data: the same event for everyone\n\n".repeat(3));
        let before = events_deflated();
        let mut crc = Crc::new();
        let a = compress_event(&event, &mut crc);
        for _ in 0..1000 {
            let b = compress_event(&event.clone(), &mut Crc::new());
            assert_eq!(a, b);
        }
        assert_eq!(events_deflated(), before + 1);
        // A different event with the same text is compressed again (it is not the same Bytes).
        let copy = Bytes::copy_from_slice(&event);
        let c = compress_event(&copy, &mut Crc::new());
        assert_eq!(a, c);
        assert_eq!(events_deflated(), before + 2);
    }

    #[test]
    fn the_response_says_gzip() {
        let response = crate::sse_response(http_body_util::Empty::<Bytes>::new());
        let response = gzip_response(response);
        assert_eq!(response.headers()["content-encoding"], "gzip");
        assert_eq!(response.headers()["vary"], "accept-encoding");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
    }

    #[test]
    fn per_client_state_is_small() {
        // The body's own state beside the inner body: the state tag and a CRC.
        assert!(
            std::mem::size_of::<GzipBody<()>>() <= 24,
            "{}",
            std::mem::size_of::<GzipBody<()>>()
        );
    }
}
