//! Negotiating permessage-deflate (RFC 7692 §5, §7.1): the server's policy, the client's
//! offers, the parameters agreed and the header that says so.
//!
//! The server reads the client's offers in order and accepts the first one it can honour
//! exactly; an offer asking for something this crate cannot do is declined, never silently
//! changed. zlib (and so every deflate backend that follows it) cannot compress with an 8-bit
//! window, so an offer with `server_max_window_bits=8` is declined.
//!
//! ```
//! use armature_ws_core::extensions;
//! use armature_ws_core::permessage_deflate::{negotiate, DeflateConfig};
//!
//! // What Chromium offers.
//! let offers = extensions::parse("permessage-deflate; client_max_window_bits");
//! let agreed = negotiate(&offers, &DeflateConfig::shared()).unwrap();
//! assert_eq!(
//!     agreed.to_header(),
//!     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
//! );
//!
//! // An 8-bit window for the server is declined; the second offer is taken.
//! let offers = extensions::parse(
//!     "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10",
//! );
//! let agreed = negotiate(&offers, &DeflateConfig::shared()).unwrap();
//! assert_eq!(agreed.server_max_window_bits, Some(10));
//! ```

use crate::config::Role;
use crate::extensions::Extension;

/// The extension's name in `Sec-WebSocket-Extensions`.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The smallest window our deflater can compress with (zlib's raw deflate cannot do 8).
pub const MIN_COMPRESS_WINDOW_BITS: u8 = 9;

/// The largest LZ77 window, and the default: 32 KiB.
pub const MAX_WINDOW_BITS: u8 = 15;

/// The server's permessage-deflate policy: what it asks for and how far it follows offers.
///
/// Two presets cover the usual cases:
/// - [`shared`](Self::shared): neither side keeps its LZ77 window between messages, so no
///   per-connection compression state is needed while the connection is idle and one
///   compressor per thread serves every connection (and one deflate serves a whole broadcast).
/// - [`dedicated`](Self::dedicated): both sides keep their window (context takeover), which
///   compresses a stream of similar messages much better, at the price of a compressor and a
///   decompressor per connection.
///
/// ```
/// use armature_ws_core::permessage_deflate::DeflateConfig;
///
/// let config = DeflateConfig::dedicated(12).level(3).min_size(128);
/// assert!(!config.server_no_context_takeover);
/// assert_eq!(config.server_max_window_bits, 12);
/// assert_eq!(config.min_size, 128);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Reset our compressor after every message and say so (`server_no_context_takeover`).
    /// Default: `true`.
    pub server_no_context_takeover: bool,
    /// Ask the client to reset its compressor after every message
    /// (`client_no_context_takeover`), so we need no decompressor between messages.
    /// Default: `true`.
    pub client_no_context_takeover: bool,
    /// Our compressor's window, 9 to 15 (a smaller offer from the client wins). Default: 15.
    pub server_max_window_bits: u8,
    /// The largest window we let the client use, 8 to 15, asked for when the client offers
    /// `client_max_window_bits` (it cannot be limited otherwise). Default: 15.
    pub client_max_window_bits: u8,
    /// The deflate level, 0 (store) to 9 (smallest). Default: 6.
    pub level: u32,
    /// Messages shorter than this many bytes are sent uncompressed. Default: 64.
    pub min_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self::shared()
    }
}

impl DeflateConfig {
    /// No context takeover on either side, 15-bit windows (the default).
    pub const fn shared() -> Self {
        Self {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
            level: 6,
            min_size: 64,
        }
    }

    /// Context takeover on both sides with windows of `window_bits` (clamped to 9–15).
    pub const fn dedicated(window_bits: u8) -> Self {
        let bits = if window_bits < MIN_COMPRESS_WINDOW_BITS {
            MIN_COMPRESS_WINDOW_BITS
        } else if window_bits > MAX_WINDOW_BITS {
            MAX_WINDOW_BITS
        } else {
            window_bits
        };
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: bits,
            client_max_window_bits: bits,
            level: 6,
            min_size: 64,
        }
    }

    /// Sets [`DeflateConfig::level`] (clamped to 0–9).
    #[must_use]
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Sets [`DeflateConfig::min_size`].
    #[must_use]
    pub fn min_size(mut self, bytes: usize) -> Self {
        self.min_size = bytes;
        self
    }

    /// Sets [`DeflateConfig::server_max_window_bits`] (clamped to 9–15).
    #[must_use]
    pub fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits.clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS);
        self
    }

    /// Sets [`DeflateConfig::client_max_window_bits`] (clamped to 8–15).
    #[must_use]
    pub fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = bits.clamp(8, MAX_WINDOW_BITS);
        self
    }
}

/// The parameters of an accepted permessage-deflate (RFC 7692 §7.1), as they appear in the
/// server's response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeflateParams {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message.
    pub client_no_context_takeover: bool,
    /// The server compresses with at most this window (absent: 15).
    pub server_max_window_bits: Option<u8>,
    /// The client compresses with at most this window (absent: 15).
    pub client_max_window_bits: Option<u8>,
}

/// How one direction of a connection is compressed: the window and whether it is reset after
/// every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirectionParams {
    /// The LZ77 window, 9 to 15.
    pub window_bits: u8,
    /// Whether the compressor (and so the decompressor) starts afresh with every message.
    pub no_context_takeover: bool,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value that accepts these parameters.
    pub fn to_header(&self) -> String {
        let mut header = String::from(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            header.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            header.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            header.push_str(&format!("; server_max_window_bits={bits}"));
        }
        if let Some(bits) = self.client_max_window_bits {
            header.push_str(&format!("; client_max_window_bits={bits}"));
        }
        header
    }

    /// How the endpoint in `role` compresses what it sends.
    pub fn outgoing(&self, role: Role) -> DirectionParams {
        match role {
            Role::Server => direction(self.server_max_window_bits, self.server_no_context_takeover),
            Role::Client => direction(self.client_max_window_bits, self.client_no_context_takeover),
        }
    }

    /// How the endpoint in `role` must decompress what it receives.
    pub fn incoming(&self, role: Role) -> DirectionParams {
        match role {
            Role::Server => self.outgoing(Role::Client),
            Role::Client => self.outgoing(Role::Server),
        }
    }
}

/// A window of `bits` (absent: 15), raised to 9: zlib makes an 8-bit window 9 bits when it
/// compresses, so a peer told 8 may use 9, and inflating with 9 reads both.
fn direction(bits: Option<u8>, no_context_takeover: bool) -> DirectionParams {
    DirectionParams {
        window_bits: bits
            .unwrap_or(MAX_WINDOW_BITS)
            .clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS),
        no_context_takeover,
    }
}

/// One permessage-deflate offer, its parameters checked (RFC 7692 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: offered without a value.
    client_max_window_bits: Option<Option<u8>>,
}

impl Offer {
    /// The offer's parameters, or `None` when one is unknown, repeated or has an invalid
    /// value (RFC 7692 §7.1: such an offer must be declined).
    fn parse(extension: &Extension) -> Option<Offer> {
        let mut offer = Offer::default();
        let mut seen = [false; 4];
        for (name, value) in &extension.params {
            let slot = match name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" if value.is_none() => {
                    offer.server_no_context_takeover = true;
                    0
                }
                "client_no_context_takeover" if value.is_none() => {
                    offer.client_no_context_takeover = true;
                    1
                }
                "server_max_window_bits" => {
                    offer.server_max_window_bits = Some(window_bits(value.as_deref()?)?);
                    2
                }
                "client_max_window_bits" => {
                    offer.client_max_window_bits = Some(match value {
                        Some(value) => Some(window_bits(value)?),
                        None => None,
                    });
                    3
                }
                _ => return None,
            };
            if std::mem::replace(&mut seen[slot], true) {
                return None;
            }
        }
        Some(offer)
    }
}

/// RFC 7692 §7.1.2: a decimal integer from 8 to 15 without leading zeroes.
fn window_bits(value: &str) -> Option<u8> {
    match value.as_bytes() {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// The server's answer to the client's offers: the parameters of the first
/// permessage-deflate offer it can honour under `config`, or `None` to decline them all
/// (the connection then goes on uncompressed).
///
/// Per RFC 7692 §7.1: `server_no_context_takeover` offered is echoed; `server_max_window_bits`
/// offered is answered with that value or `config`'s smaller one, and declined below 9 bits;
/// `client_max_window_bits` offered lets us limit the client's window to
/// `config.client_max_window_bits` (or its own smaller value), and is never answered when not
/// offered; `client_no_context_takeover` is always answered when offered, and asked for
/// whenever `config` asks. Unknown, repeated or malformed parameters decline the offer.
pub fn negotiate(offers: &[Extension], config: &DeflateConfig) -> Option<DeflateParams> {
    offers
        .iter()
        .filter(|ext| ext.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
        .filter_map(Offer::parse)
        .find_map(|offer| accept(&offer, config))
}

fn accept(offer: &Offer, config: &DeflateConfig) -> Option<DeflateParams> {
    let our_bits = config
        .server_max_window_bits
        .clamp(MIN_COMPRESS_WINDOW_BITS, MAX_WINDOW_BITS);
    let server_max_window_bits = match offer.server_max_window_bits {
        Some(asked) if asked < MIN_COMPRESS_WINDOW_BITS => return None,
        Some(asked) => Some(asked.min(our_bits)),
        None if our_bits < MAX_WINDOW_BITS => Some(our_bits),
        None => None,
    };
    let client_limit = config.client_max_window_bits.clamp(8, MAX_WINDOW_BITS);
    let client_max_window_bits = match offer.client_max_window_bits {
        Some(own) => {
            let bits = own.map_or(client_limit, |own| own.min(client_limit));
            (bits < MAX_WINDOW_BITS).then_some(bits)
        }
        None => None,
    };
    Some(DeflateParams {
        server_no_context_takeover: offer.server_no_context_takeover
            || config.server_no_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits,
        client_max_window_bits,
    })
}

/// What a client offers: its request header, and the check of the server's answer.
///
/// ```
/// use armature_ws_core::extensions;
/// use armature_ws_core::permessage_deflate::{DeflateOffer, DeflateParams};
///
/// let offer = DeflateOffer::default();
/// assert_eq!(offer.to_header(), "permessage-deflate; client_max_window_bits");
/// let answer = extensions::parse("permessage-deflate; client_max_window_bits=10");
/// let agreed = offer.check_response(&answer).unwrap().unwrap();
/// assert_eq!(agreed.client_max_window_bits, Some(10));
/// assert!(offer.check_response(&extensions::parse("x-other")).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateOffer {
    /// Ask the server to reset its compressor after each message. Default: `false`.
    pub server_no_context_takeover: bool,
    /// Say we reset ours after each message. Default: `false`.
    pub client_no_context_takeover: bool,
    /// Ask the server for at most this window, 9–15. Default: none.
    pub server_max_window_bits: Option<u8>,
    /// Offer `client_max_window_bits` (so the server may limit our window), with this value
    /// if given. Default: offered without a value.
    pub client_max_window_bits: Option<Option<u8>>,
}

impl Default for DeflateOffer {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: Some(None),
        }
    }
}

/// Why a server's `Sec-WebSocket-Extensions` answer cannot be accepted (RFC 7692 §5, §7.1);
/// the client must fail the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeflateResponseError {
    /// The answer names an extension that was not offered, or more than one.
    #[error("server accepted an extension that was not offered")]
    Unrequested,
    /// A parameter is unknown, repeated, malformed or not allowed by the offer.
    #[error("server answered permessage-deflate with parameters the offer does not allow")]
    InvalidParams,
}

impl DeflateOffer {
    /// The offer as a `Sec-WebSocket-Extensions` value.
    pub fn to_header(&self) -> String {
        let mut header = String::from(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            header.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            header.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            header.push_str(&format!("; server_max_window_bits={bits}"));
        }
        match self.client_max_window_bits {
            Some(Some(bits)) => header.push_str(&format!("; client_max_window_bits={bits}")),
            Some(None) => header.push_str("; client_max_window_bits"),
            None => {}
        }
        header
    }

    /// Checks the server's answer (the parsed `Sec-WebSocket-Extensions` of its response):
    /// `Ok(None)` when it declined, the agreed parameters when it accepted within what was
    /// offered, an error otherwise. A `client_max_window_bits` of 8 is refused: zlib cannot
    /// compress with it.
    pub fn check_response(
        &self,
        answer: &[Extension],
    ) -> Result<Option<DeflateParams>, DeflateResponseError> {
        let ext = match answer {
            [] => return Ok(None),
            [ext] if ext.name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) => ext,
            _ => return Err(DeflateResponseError::Unrequested),
        };
        let got = Offer::parse(ext).ok_or(DeflateResponseError::InvalidParams)?;
        let server_bits_ok = match (self.server_max_window_bits, got.server_max_window_bits) {
            (Some(asked), Some(bits)) => bits <= asked,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let client_max_window_bits = match (self.client_max_window_bits, got.client_max_window_bits)
        {
            (_, None) => None,
            (Some(offered), Some(Some(bits)))
                if bits >= MIN_COMPRESS_WINDOW_BITS && offered.is_none_or(|o| bits <= o) =>
            {
                Some(bits)
            }
            _ => return Err(DeflateResponseError::InvalidParams),
        };
        if !server_bits_ok || (self.server_no_context_takeover && !got.server_no_context_takeover) {
            return Err(DeflateResponseError::InvalidParams);
        }
        Ok(Some(DeflateParams {
            server_no_context_takeover: got.server_no_context_takeover,
            client_no_context_takeover: got.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: got.server_max_window_bits,
            client_max_window_bits,
        }))
    }
}

#[cfg(test)]
#[path = "permessage_deflate_tests.rs"]
mod tests;
