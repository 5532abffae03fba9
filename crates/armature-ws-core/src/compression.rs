//! The permessage-deflate codec (RFC 7692 §7.2): raw deflate with a sync flush per message,
//! the trailing `00 00 ff ff` taken off when compressing and put back when decompressing.
//!
//! Built on flate2 with its `zlib-rs` backend: raw deflate with a chosen window (9 to 15
//! bits) needs a zlib-compatible backend (flate2's default miniz_oxide backend has no window
//! setting), and zlib-rs is one in Rust, without a C toolchain.
//!
//! Decompression is bounded: output grows in chunks of [`INFLATE_CHUNK`] bytes and stops as
//! soon as it passes the caller's limit, so a small "deflate bomb" never inflates to more than
//! the limit plus one chunk.
//!
//! Connections that negotiated no context takeover need no codec between messages: they
//! borrow one from a per-thread pool ([`with_shared_compressor`], and the decoder's own use of
//! [`Decompressor::pooled`]), so an idle compressing connection holds no compression state.
//!
//! ```
//! use armature_ws_core::compression::{Compressor, Decompressor};
//!
//! // RFC 7692 §7.2.3.1: "Hello" compressed is f2 48 cd c9 c9 07 00.
//! let mut compressor = Compressor::new(15, 6, true);
//! let mut out = Vec::new();
//! compressor.compress(b"Hello", &mut out);
//! assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
//!
//! let mut decompressor = Decompressor::new(15, true);
//! let mut text = Vec::new();
//! decompressor.decompress(&out, &mut text, 1024).unwrap();
//! decompressor.finish(&mut text, 1024).unwrap();
//! assert_eq!(text, b"Hello");
//! ```

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::permessage_deflate::{MAX_WINDOW_BITS, MIN_COMPRESS_WINDOW_BITS};

/// The four bytes a sync flush ends with, which RFC 7692 §7.2.1 removes from the payload.
pub const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Decompressed output first grows in steps of at most this many bytes (then by doubling).
pub const INFLATE_CHUNK: usize = 16 * 1024;

/// At most this many idle compressors and decompressors are kept per thread and window.
const POOL_PER_THREAD: usize = 4;

/// Why a compressed message could not be decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InflateError {
    /// The payload is not a raw deflate stream.
    #[error("compressed payload is not valid deflate data")]
    Corrupt,
    /// The message inflates to more than the limit; decompression stopped there.
    #[error("message inflates past the limit of {max} bytes")]
    TooBig {
        /// The limit given.
        max: usize,
    },
}

/// A raw deflate compressor for one direction of permessage-deflate.
pub struct Compressor {
    inner: Compress,
    window_bits: u8,
    level: u32,
    no_context_takeover: bool,
}

impl std::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compressor")
            .field("window_bits", &self.window_bits)
            .field("level", &self.level)
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// A compressor with a window of `window_bits` (clamped to 9–15) at deflate `level`
    /// (0–9); with `no_context_takeover` it forgets each message once compressed.
    pub fn new(window_bits: u8, level: u32, no_context_takeover: bool) -> Self {
        let window_bits = window_bits.clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS);
        let level = level.min(9);
        Self {
            inner: Compress::new_with_window_bits(Compression::new(level), false, window_bits),
            window_bits,
            level,
            no_context_takeover,
        }
    }

    /// The window, in bits.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Whether each message is compressed on its own.
    pub fn no_context_takeover(&self) -> bool {
        self.no_context_takeover
    }

    /// Appends `payload` compressed as one message to `out`: deflate, sync flush, the final
    /// `00 00 ff ff` removed (RFC 7692 §7.2.1). An empty payload gives the single byte `00`.
    pub fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        // Deflate's worst case is a few bytes per 16 KiB block; the flush adds up to ~10.
        out.reserve(payload.len() + payload.len() / 512 + 64);
        let mut input = payload;
        loop {
            let before = self.inner.total_in();
            let status = self.inner.compress_vec(input, out, FlushCompress::Sync);
            let used = (self.inner.total_in() - before) as usize;
            input = input.get(used..).unwrap_or_default();
            let full = out.len() == out.capacity();
            match status {
                Ok(Status::Ok | Status::BufError) if input.is_empty() && !full => break,
                Ok(_) => out.reserve(input.len() + 64),
                // Compressing memory into memory cannot fail; start afresh if zlib says so.
                Err(_) => {
                    self.inner.reset();
                    out.truncate(start);
                    return self.store(payload, out);
                }
            }
        }
        if out.get(start..).is_some_and(|c| c.ends_with(&DEFLATE_TAIL)) {
            out.truncate(out.len() - DEFLATE_TAIL.len());
        }
        if self.no_context_takeover {
            self.inner.reset();
        }
    }

    /// `payload` as stored (uncompressed) deflate blocks, for the impossible compressor error.
    fn store(&mut self, payload: &[u8], out: &mut Vec<u8>) {
        let mut chunks = payload.chunks(0xFFFF).peekable();
        if chunks.peek().is_none() {
            out.push(0);
            return;
        }
        while let Some(chunk) = chunks.next() {
            let len = chunk.len() as u16;
            out.push(0); // BFINAL=0, BTYPE=00, padding
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(chunk);
            if chunks.peek().is_none() {
                out.push(0);
            }
        }
    }

    /// Starts afresh: the next message references nothing sent before.
    pub fn reset(&mut self) {
        self.inner.reset();
    }
}

/// A raw deflate decompressor for one direction of permessage-deflate.
pub struct Decompressor {
    inner: Decompress,
    window_bits: u8,
    no_context_takeover: bool,
    /// The peer's input so far ended exactly with the end of a deflate stream (a final
    /// block): the removed tail belongs to no stream and is not put back.
    stream_ended: bool,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor")
            .field("window_bits", &self.window_bits)
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl Decompressor {
    /// A decompressor for a peer compressing with at most `window_bits` (clamped to 9–15);
    /// with `no_context_takeover` it forgets each message once finished.
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Self {
        let window_bits = window_bits.clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS);
        Self {
            inner: Decompress::new_with_window_bits(false, window_bits),
            window_bits,
            no_context_takeover,
            stream_ended: false,
        }
    }

    /// A decompressor without context takeover, from this thread's pool if one is idle there.
    /// Hand it back with [`release`](Self::release) when the message is done.
    pub fn pooled(window_bits: u8) -> Box<Self> {
        let window_bits = window_bits.clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS);
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            let slot = pool
                .decompressors
                .iter()
                .position(|d| d.window_bits == window_bits);
            slot.map(|i| pool.decompressors.swap_remove(i))
        })
        .unwrap_or_else(|| Box::new(Self::new(window_bits, true)))
    }

    /// Returns a decompressor without context takeover to this thread's pool (reset), or
    /// drops it when the pool is full. One with context takeover is dropped.
    pub fn release(mut self: Box<Self>) {
        if !self.no_context_takeover {
            return;
        }
        self.reset();
        POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.decompressors.len() < POOL_PER_THREAD * 2 {
                pool.decompressors.push(self);
            }
        });
    }

    /// Whether each message is decompressed on its own.
    pub fn no_context_takeover(&self) -> bool {
        self.no_context_takeover
    }

    /// Starts afresh, forgetting every message decompressed so far.
    pub fn reset(&mut self) {
        self.inner.reset(false);
        self.stream_ended = false;
    }

    /// Decompresses the next piece of a message's payload, appending to `out`, which may not
    /// grow past `max` bytes: [`InflateError::TooBig`] as soon as the output would, before
    /// the rest is inflated.
    pub fn decompress(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), InflateError> {
        let mut input = input;
        loop {
            if !input.is_empty() {
                self.stream_ended = false;
            }
            if out.len() == out.capacity() {
                if out.len() > max {
                    return Err(InflateError::TooBig { max });
                }
                // Grow by doubling from a guess, never past one byte beyond the limit (enough
                // to know it was passed).
                let step = out
                    .len()
                    .max(input.len() * 2 + 64)
                    .min(INFLATE_CHUNK.max(out.len()));
                out.reserve_exact((max + 1 - out.len()).min(step));
            }
            let before = self.inner.total_in();
            let status = self
                .inner
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            let used = (self.inner.total_in() - before) as usize;
            input = input.get(used..).unwrap_or_default();
            if out.len() > max {
                return Err(InflateError::TooBig { max });
            }
            match status {
                // A final block: the peer ended its stream. Start a new one for what follows.
                Status::StreamEnd => {
                    self.inner.reset(false);
                    self.stream_ended = true;
                    if input.is_empty() {
                        return Ok(());
                    }
                }
                // Room left and nothing more it could do: all input taken.
                _ if out.len() < out.capacity() => return Ok(()),
                _ => {}
            }
        }
    }

    /// Ends the message: inflates the `00 00 ff ff` the sender removed, then, without
    /// context takeover, forgets the message.
    pub fn finish(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), InflateError> {
        let result = if std::mem::take(&mut self.stream_ended) {
            Ok(())
        } else {
            self.decompress(&DEFLATE_TAIL, out, max)
        };
        if self.no_context_takeover {
            self.reset();
        }
        result
    }
}

/// This thread's idle codecs.
#[derive(Default)]
struct Pool {
    /// Compressors without context takeover, at most one per (window, level).
    compressors: Vec<Compressor>,
    /// Boxed as the decoder holds them, so lending one out moves no memory.
    #[allow(clippy::vec_box)]
    decompressors: Vec<Box<Decompressor>>,
    /// Messages compressed by [`with_shared_compressor`] on this thread.
    compressed: u64,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// Runs `f` with this thread's compressor for `window_bits` and `level`, without context
/// takeover (created on first use, kept for the thread's life: one per window and level in
/// use, a few hundred KiB each). Every message compressed this way counts in
/// [`shared_compressions`].
///
/// ```
/// use armature_ws_core::compression::{shared_compressions, with_shared_compressor};
///
/// let before = shared_compressions();
/// let mut out = Vec::new();
/// with_shared_compressor(15, 6, |c| c.compress(b"Hello", &mut out));
/// assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
/// assert_eq!(shared_compressions(), before + 1);
/// ```
pub fn with_shared_compressor<R>(
    window_bits: u8,
    level: u32,
    f: impl FnOnce(&mut Compressor) -> R,
) -> R {
    let window_bits = window_bits.clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS);
    let level = level.min(9);
    let taken = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        pool.compressed += 1;
        let slot = pool
            .compressors
            .iter()
            .position(|c| c.window_bits == window_bits && c.level == level);
        slot.map(|i| pool.compressors.swap_remove(i))
    });
    let mut compressor = taken.unwrap_or_else(|| Compressor::new(window_bits, level, true));
    compressor.reset();
    let result = f(&mut compressor);
    compressor.reset();
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.compressors.len() < POOL_PER_THREAD * 4 {
            pool.compressors.push(compressor);
        }
    });
    result
}

/// How many messages [`with_shared_compressor`] compressed on this thread so far (a counter
/// for tests and statistics: a broadcast compressed once adds one).
pub fn shared_compressions() -> u64 {
    POOL.with(|pool| pool.borrow().compressed)
}

#[cfg(test)]
#[path = "compression_tests.rs"]
mod tests;
