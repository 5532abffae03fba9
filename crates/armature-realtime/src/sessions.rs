//! [`Sessions`]: the live WebSocket connections of each authenticated user on this node, so
//! that one call closes them all (logout, a revoked account).

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::ws::WebSocketConnection;

/// The close code and reason a logout sends.
pub const LOGOUT_CLOSE: (u16, &str) = (1008, "logged out");

/// Live connections by user id (the auth guard's [`UserId`](crate::guard::UserId)).
///
/// Entries of closed connections are dropped whenever that user connects again or is
/// closed, so the map holds at most the live connections plus those closed since.
#[derive(Debug, Default)]
pub struct Sessions {
    users: Mutex<HashMap<String, Vec<WebSocketConnection>>>,
}

impl Sessions {
    /// Registers `connection` as one of `user`'s.
    pub fn insert(&self, user: &str, connection: WebSocketConnection) {
        let mut users = self.users.lock();
        users.retain(|_, conns| {
            conns.retain(|c| !c.is_closed());
            !conns.is_empty()
        });
        users.entry(user.to_owned()).or_default().push(connection);
    }

    /// The number of live connections of `user`.
    pub fn count(&self, user: &str) -> usize {
        self.users
            .lock()
            .get(user)
            .map_or(0, |conns| conns.iter().filter(|c| !c.is_closed()).count())
    }

    /// Closes every connection of `user` with `code` and `reason`; returns how many.
    pub fn close_user(&self, user: &str, code: u16, reason: &str) -> usize {
        let conns = self.users.lock().remove(user).unwrap_or_default();
        let mut closed = 0;
        for conn in conns {
            if !conn.is_closed() {
                closed += 1;
                let reason = reason.to_owned();
                tokio::spawn(async move {
                    let _ = conn.close(code, reason).await;
                });
            }
        }
        tracing::info!(user, closed, code, "closed every connection of a user");
        closed
    }
}
