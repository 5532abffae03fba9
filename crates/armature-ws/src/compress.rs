//! Outgoing permessage-deflate for one connection: which encoding of a frame it gets, and
//! the per-broadcast cache that compresses a frame once for every member of one kind.
//!
//! Frames are encoded once, uncompressed (`encode_message`); a connection that negotiated
//! compression turns a data frame into its compressed form on the way into its queue:
//! - shared (no context takeover): by this thread's compressor, and for a broadcast once
//!   per (window, level) for all such members ([`FrameCache`]);
//! - dedicated (context takeover): by the connection's own compressor, under its queue lock
//!   so frames reach the peer in the order they were compressed.

use armature_ws_core::bytes::Bytes;
use armature_ws_core::compression::Compressor;
use armature_ws_core::permessage_deflate::{DeflateConfig, DeflateParams};
use armature_ws_core::{Role, deflate_frame, deflate_frame_shared};
use parking_lot::Mutex;

/// How one connection compresses what it sends.
#[derive(Debug)]
pub(crate) struct Outgoing {
    level: u32,
    min_size: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// No context takeover: any compressor for this window will do.
    Shared { window_bits: u8 },
    /// Context takeover: this connection's own compressor.
    Dedicated(Mutex<Compressor>),
}

impl Outgoing {
    /// The outgoing side of what was negotiated under `config`.
    pub(crate) fn new(config: &DeflateConfig, params: &DeflateParams) -> Self {
        let out = params.outgoing(Role::Server);
        let kind = if out.no_context_takeover {
            Kind::Shared {
                window_bits: out.window_bits,
            }
        } else {
            Kind::Dedicated(Mutex::new(Compressor::new(
                out.window_bits,
                config.level,
                false,
            )))
        };
        Outgoing {
            level: config.level,
            min_size: config.min_size,
            kind,
        }
    }

    /// The key of the shared encoding this connection takes, `None` when dedicated.
    fn shared_key(&self) -> Option<(u8, u32)> {
        match self.kind {
            Kind::Shared { window_bits } => Some((window_bits, self.level)),
            Kind::Dedicated(_) => None,
        }
    }

    /// Whether `frame` is worth compressing for this connection (a data frame whose payload
    /// reaches `min_size`; control frames are never compressed).
    fn wants(&self, frame: &Bytes) -> bool {
        let Some(&b0) = frame.first() else {
            return false;
        };
        let opcode = b0 & 0x0F;
        (opcode == 1 || opcode == 2) && frame.len() >= self.min_size + 2
    }

    /// `frame` as this connection sends it. With context takeover it must be queued in the
    /// order this is called (the caller holds the queue lock).
    pub(crate) fn encode(&self, frame: Bytes) -> Bytes {
        if !self.wants(&frame) {
            return frame;
        }
        let compressed = match &self.kind {
            Kind::Shared { window_bits } => deflate_frame_shared(&frame, *window_bits, self.level),
            Kind::Dedicated(compressor) => deflate_frame(&frame, &mut compressor.lock()),
        };
        compressed.unwrap_or(frame)
    }

    /// Whether this connection compresses with its own context (its frames must then be
    /// compressed under its queue lock).
    pub(crate) fn is_dedicated(&self) -> bool {
        matches!(self.kind, Kind::Dedicated(_))
    }
}

/// The encodings of one broadcast frame made so far: the plain frame, and at most one
/// compressed frame per (window, level) of the shared-mode members it reached.
#[derive(Debug)]
pub(crate) struct FrameCache<'a> {
    plain: &'a Bytes,
    shared: Vec<((u8, u32), Option<Bytes>)>,
}

impl<'a> FrameCache<'a> {
    /// The frame as encoded once, uncompressed.
    pub(crate) fn plain(&self) -> &'a Bytes {
        self.plain
    }

    pub(crate) fn new(plain: &'a Bytes) -> Self {
        FrameCache {
            plain,
            shared: Vec::new(),
        }
    }

    /// The frame for a member with `outgoing` (`None`: no compression): the plain frame, the
    /// shared compressed frame (made on first need), or `None` for a dedicated member, which
    /// compresses the plain frame itself.
    pub(crate) fn frame_for(&mut self, outgoing: Option<&Outgoing>) -> Option<Bytes> {
        let Some(outgoing) = outgoing else {
            return Some(self.plain.clone());
        };
        let key = outgoing.shared_key()?;
        if !outgoing.wants(self.plain) {
            return Some(self.plain.clone());
        }
        if let Some((_, frame)) = self.shared.iter().find(|(k, _)| *k == key) {
            return Some(frame.clone().unwrap_or_else(|| self.plain.clone()));
        }
        let frame = deflate_frame_shared(self.plain, key.0, key.1);
        self.shared.push((key, frame.clone()));
        Some(frame.unwrap_or_else(|| self.plain.clone()))
    }
}
