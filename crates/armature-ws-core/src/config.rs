//! The endpoint's role and its limits.

/// Which end of the connection this endpoint is (RFC 6455 §5.1).
///
/// A server receives masked frames and sends unmasked ones; a client does the opposite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// The accepting end: incoming frames must be masked, outgoing frames are not.
    #[default]
    Server,
    /// The connecting end: incoming frames must not be masked, outgoing frames are.
    Client,
}

/// Role and limits of a [`Decoder`](crate::Decoder).
///
/// ```
/// use armature_ws_core::{Config, Role};
///
/// let config = Config::server().max_message_size(1 << 20).max_frame_size(64 * 1024);
/// assert_eq!(config.role, Role::Server);
/// assert_eq!(config.max_message_size, 1 << 20);
/// assert!(!config.accept_unmasked_frames);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Which end of the connection we are. Default: [`Role::Server`].
    pub role: Role,
    /// The largest frame payload accepted, in bytes; a bigger frame is refused from its header
    /// alone with close code 1009. Default: 16 MiB (`16 << 20`).
    pub max_frame_size: usize,
    /// The largest message accepted (all fragments together), in bytes; checked as each
    /// fragment's header arrives, close code 1009. Default: 64 MiB (`64 << 20`).
    pub max_message_size: usize,
    /// In the server role, accept frames that the client did not mask (RFC 6455 §5.1 says a
    /// server must refuse them). Only for tests and peers known to be broken. Default: `false`.
    pub accept_unmasked_frames: bool,
}

/// Default of [`Config::max_frame_size`]: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 << 20;
/// Default of [`Config::max_message_size`]: 64 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 << 20;

impl Default for Config {
    fn default() -> Self {
        Self {
            role: Role::Server,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            accept_unmasked_frames: false,
        }
    }
}

impl Config {
    /// The default configuration for the server role.
    pub fn server() -> Self {
        Self::default()
    }

    /// The default configuration for the client role.
    pub fn client() -> Self {
        Self::default().role(Role::Client)
    }

    /// Sets [`Config::role`].
    #[must_use]
    pub fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// Sets [`Config::max_frame_size`].
    #[must_use]
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`Config::max_message_size`].
    #[must_use]
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`Config::accept_unmasked_frames`].
    #[must_use]
    pub fn accept_unmasked_frames(mut self, accept: bool) -> Self {
        self.accept_unmasked_frames = accept;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::default();
        assert_eq!(c.role, Role::Server);
        assert_eq!(c.max_frame_size, 16 * 1024 * 1024);
        assert_eq!(c.max_message_size, 64 * 1024 * 1024);
        assert!(!c.accept_unmasked_frames);
        assert_eq!(Config::client().role, Role::Client);
        assert_eq!(Config::server(), c);
    }

    #[test]
    fn setters_chain() {
        let c = Config::client()
            .max_frame_size(10)
            .max_message_size(20)
            .accept_unmasked_frames(true)
            .role(Role::Server);
        assert_eq!((c.max_frame_size, c.max_message_size), (10, 20));
        assert!(c.accept_unmasked_frames);
        assert_eq!(c.role, Role::Server);
    }
}
