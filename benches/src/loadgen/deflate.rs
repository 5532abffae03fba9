//! The client side of permessage-deflate (RFC 7692) as the generator needs it, for the
//! compressed scenarios (`--deflate on`).
//!
//! The generator offers `permessage-deflate; client_max_window_bits` (what a browser
//! offers) and takes what the server answers:
//! - what it sends is compressed by one compressor per thread, reset before every message
//!   (always allowed: a message that refers to nothing earlier is valid whether or not the
//!   server keeps its window), so ten thousand subscribers hold no compressor;
//! - what it receives is inflated by one decompressor per thread when the server answered
//!   `server_no_context_takeover` (each message stands alone), else by a decompressor of
//!   the connection's own, made at its first compressed message.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The offer the generator sends.
pub const OFFER: &str = "permessage-deflate; client_max_window_bits";

/// The four bytes RFC 7692 §7.2.1 strips from the end of a compressed message.
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Largest message the generator inflates (its messages are hundreds of bytes).
const MAX_INFLATED: usize = 1 << 20;

/// Whether connections offer permessage-deflate (`--deflate on`), set once at start.
static OFFERED: AtomicBool = AtomicBool::new(false);

/// Makes every WebSocket the generator opens from now on offer permessage-deflate.
pub fn set_offered(on: bool) {
    OFFERED.store(on, Ordering::Relaxed);
}

/// Whether connections offer permessage-deflate.
pub fn offered() -> bool {
    OFFERED.load(Ordering::Relaxed)
}

/// Connections on which the server accepted permessage-deflate.
static NEGOTIATED: AtomicU64 = AtomicU64::new(0);
/// Compressed messages received (inflated).
static INFLATED: AtomicU64 = AtomicU64::new(0);

/// How many connections negotiated permessage-deflate, and how many compressed messages
/// they received, so far: a compressed scenario reports both, so a server that negotiated
/// but sent everything plain shows it.
pub fn counts() -> (u64, u64) {
    (
        NEGOTIATED.load(Ordering::Relaxed),
        INFLATED.load(Ordering::Relaxed),
    )
}

thread_local! {
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::new(6), false));
    static DECOMPRESSOR: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// What the server's `Sec-WebSocket-Extensions` answer means for the generator's side, or
/// `None` when it did not accept permessage-deflate.
pub fn parse_answer(header: Option<&str>) -> Result<Option<Inflater>, String> {
    let Some(header) = header else {
        return Ok(None);
    };
    let mut params = header.split(';').map(str::trim);
    match params.next() {
        Some("permessage-deflate") => {}
        Some(other) => return Err(format!("unexpected extension {other:?}")),
        None => return Ok(None),
    }
    let mut server_no_context_takeover = false;
    for param in params {
        let name = param.split('=').next().unwrap_or("").trim();
        match name {
            "server_no_context_takeover" => server_no_context_takeover = true,
            // Our compressor resets before every message, so these only bound what we send.
            "client_no_context_takeover" | "client_max_window_bits" => {}
            // A smaller server window is still inflated by a 15-bit decompressor.
            "server_max_window_bits" => {}
            other => return Err(format!("unexpected permessage-deflate parameter {other:?}")),
        }
    }
    NEGOTIATED.fetch_add(1, Ordering::Relaxed);
    Ok(Some(Inflater {
        own: None,
        server_no_context_takeover,
    }))
}

/// A connection's inflating side.
#[derive(Debug)]
pub struct Inflater {
    /// The connection's own decompressor, when the server keeps its context.
    own: Option<Box<Decompress>>,
    server_no_context_takeover: bool,
}

impl Inflater {
    /// Inflates one compressed message (its payload as sent, tail stripped) into `out`.
    pub fn inflate(&mut self, payload: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        INFLATED.fetch_add(1, Ordering::Relaxed);
        if self.server_no_context_takeover {
            DECOMPRESSOR.with(|d| {
                let mut d = d.borrow_mut();
                d.reset(false);
                inflate_with(&mut d, payload, out)
            })
        } else {
            let d = self
                .own
                .get_or_insert_with(|| Box::new(Decompress::new(false)));
            inflate_with(d, payload, out)
        }
    }
}

fn inflate_with(d: &mut Decompress, payload: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    for input in [payload, &TAIL[..]] {
        let mut used = 0usize;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.len().max(1024));
            }
            let before = d.total_in();
            let status = d
                .decompress_vec(&input[used..], out, FlushDecompress::Sync)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            used += (d.total_in() - before) as usize;
            if out.len() > MAX_INFLATED {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "inflated message too large",
                ));
            }
            // Done with this input when it is used up and the output had room to spare.
            if status == Status::StreamEnd || (used >= input.len() && out.len() < out.capacity()) {
                break;
            }
        }
    }
    Ok(())
}

/// Compresses one message (no context: the compressor is reset first) into `out`, tail
/// stripped, as its frame carries it.
pub fn deflate(payload: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut used = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(payload.len() / 2 + 64);
            }
            let before = c.total_in();
            c.compress_vec(&payload[used..], out, FlushCompress::Sync)
                .map_err(io::Error::other)?;
            used += (c.total_in() - before) as usize;
            if used >= payload.len() && out.len() < out.capacity() {
                break;
            }
        }
        Ok::<(), io::Error>(())
    })?;
    if out.ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7692_hello_inflates() {
        // RFC 7692 §7.2.3.1: "Hello" compressed, no context takeover.
        let mut inflater = parse_answer(Some("permessage-deflate; server_no_context_takeover"))
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        inflater
            .inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out)
            .unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn round_trip_with_and_without_context() {
        let text = br#"{"type":"message","room":"lobby","user":"ada","text":"hello, hello"}"#;
        let mut packed = Vec::new();
        deflate(text, &mut packed).unwrap();
        assert!(packed.len() < text.len());
        for answer in [
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=12",
        ] {
            let mut inflater = parse_answer(Some(answer)).unwrap().unwrap();
            let mut out = Vec::new();
            for _ in 0..3 {
                inflater.inflate(&packed, &mut out).unwrap();
                assert_eq!(out, text);
            }
        }
    }

    #[test]
    fn answers_that_are_not_deflate() {
        assert!(parse_answer(None).unwrap().is_none());
        assert!(parse_answer(Some("x-webkit-deflate-frame")).is_err());
        assert!(parse_answer(Some("permessage-deflate; nope")).is_err());
        let mut inflater = parse_answer(Some("permessage-deflate")).unwrap().unwrap();
        assert!(
            inflater
                .inflate(&[0xff, 0xff, 0xff], &mut Vec::new())
                .is_err()
        );
    }
}
