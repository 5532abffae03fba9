//! The shutdown signal a [`Server`](crate::Server) raises when it stops, so that long-lived
//! responses (SSE streams, WebSocket handlers) can end instead of holding the server open.

use tokio::sync::watch;

/// Raises the shutdown signal (held by the server).
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// A cheap handle that tells whether the server is shutting down and waits until it does.
/// Every request carries one in its extensions.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    rx: Option<watch::Receiver<bool>>,
}

/// A new trigger and the signal it raises.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (trigger, signal) = armature_realtime::shutdown::channel();
/// assert!(!signal.is_shutdown());
/// trigger.trigger();
/// signal.wait().await;
/// assert!(signal.is_shutdown());
/// # }
/// ```
pub fn channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, ShutdownSignal { rx: Some(rx) })
}

impl ShutdownTrigger {
    /// Raises the signal; every waiting [`ShutdownSignal::wait`] returns.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Another signal handle.
    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal {
            rx: Some(self.tx.subscribe()),
        }
    }
}

impl ShutdownSignal {
    /// A signal that never fires (for handlers served outside an armature [`Server`](crate::Server)).
    pub fn never() -> Self {
        Self { rx: None }
    }

    /// True once the server is shutting down.
    pub fn is_shutdown(&self) -> bool {
        self.rx.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Waits until the server shuts down (or its trigger is dropped).
    pub async fn wait(&self) {
        let Some(mut rx) = self.rx.clone() else {
            return std::future::pending().await;
        };
        // An error means the trigger is gone, which also means shutdown.
        let _ = rx.wait_for(|down| *down).await;
    }
}
