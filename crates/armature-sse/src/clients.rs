//! [`Clients`]: the broadcaster's client list, as the guide's cleanup snippet reaches it.

use std::fmt;
use std::sync::Arc;

use crate::broadcaster::Registry;
use crate::queue::{ClientQueue, Closed};

/// The clients registered with an [`SseBroadcaster`](crate::SseBroadcaster), reachable as its
/// `clients` field.
///
/// You do not need it to clean up: a client is removed the moment its stream is dropped, so
/// the guide's periodic cleanup finds nothing left to remove. It still works as written, and
/// [`ClientsWrite::retain`] can remove clients by any rule of your own (their streams end
/// after what is already queued).
///
/// ```
/// use armature_sse::SseBroadcaster;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let broadcaster = SseBroadcaster::new();
/// let _a = broadcaster.register().await;
/// let b = broadcaster.register().await;
/// drop(b); // already removed
///
/// // Remove closed connections periodically
/// let mut clients = broadcaster.clients.write().await;
/// clients.retain(|tx| !tx.is_closed());
/// assert_eq!(clients.len(), 1);
/// # }
/// ```
pub struct Clients {
    pub(crate) registry: Arc<Registry>,
}

impl fmt::Debug for Clients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clients")
            .field("len", &self.registry.client_count())
            .finish()
    }
}

impl Clients {
    /// Access to change the client list. It holds no lock: each call on it locks briefly,
    /// so it is safe to keep across an `.await`.
    pub async fn write(&self) -> ClientsWrite<'_> {
        ClientsWrite {
            registry: &self.registry,
        }
    }

    /// The number of registered clients.
    pub fn len(&self) -> usize {
        self.registry.client_count()
    }

    /// True when no client is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Changes to a broadcaster's client list, from [`Clients::write`].
#[derive(Clone, Copy)]
pub struct ClientsWrite<'a> {
    registry: &'a Registry,
}

impl fmt::Debug for ClientsWrite<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientsWrite")
            .field("len", &self.registry.client_count())
            .finish()
    }
}

impl ClientsWrite<'_> {
    /// Keeps the clients for which `keep` returns true and removes the others; a removed
    /// client's stream ends after what is already queued for it.
    pub fn retain(&mut self, mut keep: impl FnMut(&SseClient) -> bool) {
        let removed: Vec<SseClient> = {
            let mut st = self.registry.state.lock();
            // Held events were broadcast before the client was removed.
            self.registry.flush_held(&mut st);
            let drop_keys: Vec<u64> = st
                .clients
                .iter()
                .filter(|(_, client)| !keep(client))
                .map(|(key, _)| *key)
                .collect();
            drop_keys
                .iter()
                .filter_map(|key| st.clients.remove(key))
                .collect()
        };
        for client in removed {
            client.queue.close(Closed::Finished);
        }
    }

    /// The number of registered clients.
    pub fn len(&self) -> usize {
        self.registry.client_count()
    }

    /// True when no client is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One registered client, as [`ClientsWrite::retain`] shows it.
pub struct SseClient {
    pub(crate) queue: Arc<ClientQueue>,
}

impl fmt::Debug for SseClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseClient")
            .field("queued", &self.queued())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl SseClient {
    /// True once the client's stream was dropped or the client was removed. (Registered
    /// clients are removed as soon as their stream is dropped, so `retain` rarely sees one.)
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }

    /// Events waiting in the client's queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
}
