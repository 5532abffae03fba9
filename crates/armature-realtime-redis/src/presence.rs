//! Presence across nodes: who is in a room, cluster-wide. Each node refreshes its members of
//! every occupied room in one sorted set per room (score: the Redis server's time of the last
//! refresh); a reader counts the entries refreshed within the TTL. A crashed node stops
//! refreshing, so its members drop out within the TTL; a member that leaves is removed at the
//! next refresh.

/// One sorted set per room: KEYS[1]. ARGV: TTL in ms, then member ids to refresh, then
/// `"\0"`, then member ids to remove. Uses the server's clock, so nodes' clocks do not matter.
pub(crate) const REFRESH_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local removing = false
for i = 2, #ARGV do
  local id = ARGV[i]
  if id == '\0' then
    removing = true
  elseif removing then
    redis.call('ZREM', KEYS[1], id)
  else
    redis.call('ZADD', KEYS[1], now, id)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ttl * 2) end
return 1
";

/// KEYS[1]: the room's set; ARGV[1]: TTL in ms; ARGV[2]: `"ids"` for the member ids, else
/// the count only.
pub(crate) const READ_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local from = now - tonumber(ARGV[1])
if ARGV[2] == 'ids' then
  return redis.call('ZRANGEBYSCORE', KEYS[1], from, '+inf')
end
return redis.call('ZCOUNT', KEYS[1], from, '+inf')
";

/// Who is in a room across the cluster, from
/// [`RedisRealtime::presence`](crate::RedisRealtime::presence).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Presence {
    /// The connection ids of the members on every node (sorted).
    pub members: Vec<String>,
}

impl Presence {
    /// How many members.
    pub fn count(&self) -> usize {
        self.members.len()
    }
}

use std::collections::{HashMap, HashSet};
use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::future::join_all;

use crate::routes::Node;

/// The key of a room's presence set (a hash tag of its own: one slot per room).
pub(crate) fn key(node: &Node, room: &str) -> String {
    format!("{}{{pres:{room}}}", node.config.channel_prefix)
}

/// Refreshes this node's members of every occupied room until the node goes; removes them
/// on the way out.
pub(crate) async fn run(node: Weak<Node>, ttl: Duration) {
    let mut sent: HashMap<String, HashSet<String>> = HashMap::new();
    let interval = ttl / 3;
    loop {
        let Some(n) = node.upgrade() else { return };
        let stopping = n.shutdown.load(Ordering::Acquire);
        let mut now: HashMap<String, HashSet<String>> = HashMap::new();
        if !stopping {
            for rooms in n.routes.read().occupied_rooms() {
                for room in rooms {
                    now.entry(room.name().to_owned())
                        .or_default()
                        .extend(room.connection_ids());
                }
            }
        }
        let conn = n.conn.read().clone();
        if let Some(conn) = conn {
            let names: HashSet<&String> = now.keys().chain(sent.keys()).collect();
            let calls = names.into_iter().map(|name| {
                let empty = HashSet::new();
                let current = now.get(name).unwrap_or(&empty);
                let before = sent.get(name).unwrap_or(&empty);
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(REFRESH_SCRIPT)
                    .arg(1)
                    .arg(key(&n, name))
                    .arg(ttl.as_millis() as u64);
                for id in current {
                    cmd.arg(id);
                }
                cmd.arg("\0");
                for id in before.difference(current) {
                    cmd.arg(id);
                }
                let mut conn = conn.clone();
                async move { cmd.query_async::<redis::Value>(&mut conn).await.is_ok() }
            });
            let ok = join_all(calls).await.into_iter().all(|ok| ok);
            if ok {
                sent = now;
                n.presence_passes.send_modify(|p| *p += 1);
            }
        }
        if stopping {
            return;
        }
        let wake = n.presence_wake.clone();
        drop(n);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = wake.notified() => {}
        }
    }
}
