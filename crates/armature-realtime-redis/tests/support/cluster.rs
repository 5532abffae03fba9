//! A private Redis Cluster per test: `redis-server --cluster-enabled yes` on free ports,
//! joined with `redis-cli --cluster create`, killed and its files removed on drop.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::WAIT;

pub struct RedisCluster {
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    dir: PathBuf,
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct ClusterNode {
    pub port: u16,
    pub primary: bool,
    pub failed: bool,
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// `primaries` shards with `replicas` replicas each. `None` (after a loud notice) when
    /// redis-server cannot start and this is not CI; under `CI=true` that fails the test.
    pub fn start(primaries: usize, replicas: usize) -> Option<RedisCluster> {
        match Self::try_start(primaries, replicas) {
            Ok(c) => Some(c),
            Err(e) => {
                if ci() {
                    panic!("CI=true and a redis cluster cannot start: {e}");
                }
                eprintln!(
                    "\n!!!!!!!! SKIPPED: a redis cluster cannot start ({e}); install \
                     redis-server and redis-cli 7 to run this test !!!!!!!!\n"
                );
                None
            }
        }
    }

    fn try_start(primaries: usize, replicas: usize) -> Result<RedisCluster, String> {
        let count = primaries * (1 + replicas);
        let ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
        let dir = std::env::temp_dir().join(format!(
            "armature-redis-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("temp dir: {e}"))?;
        let mut cluster = RedisCluster {
            ports: ports.clone(),
            children: Vec::new(),
            dir,
        };
        for i in 0..count {
            let child = cluster.spawn(i)?;
            cluster.children.push(Some(child));
        }
        for &port in &ports {
            wait_ping(port)?;
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("redis-cli: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "redis-cli --cluster create: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        cluster.wait_healthy(primaries, replicas)?;
        Ok(cluster)
    }

    fn spawn(&self, i: usize) -> Result<Child, String> {
        let port = self.ports[i].to_string();
        Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &format!("nodes-{port}.conf"),
                "--cluster-node-timeout",
                "1000",
                "--cluster-replica-validity-factor",
                "0",
                // Replicas sync at once (the default waits 5 s for more replicas).
                "--repl-diskless-sync-delay",
                "0",
                "--dir",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn redis-server: {e}"))
    }

    /// Every node agrees the cluster is ok, with the expected primaries and replicas.
    fn wait_healthy(&self, primaries: usize, replicas: usize) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let ok = self.live_ports().iter().all(|&port| {
                query::<String>(port, redis::cmd("CLUSTER").arg("INFO"))
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
                    && nodes(port).is_ok_and(|n| {
                        n.iter().filter(|n| n.primary && !n.failed).count() == primaries
                            && n.iter().filter(|n| !n.primary && !n.failed).count()
                                == primaries * replicas
                    })
            });
            // And every replica has its primary's data (its link is up after the first sync).
            let synced = ok
                && self.live_ports().iter().all(|&port| {
                    query::<String>(port, redis::cmd("INFO").arg("replication")).is_ok_and(|info| {
                        info.contains("role:master") || info.contains("master_link_status:up")
                    })
                });
            if synced {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("cluster did not become healthy".to_owned());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    fn live_ports(&self) -> Vec<u16> {
        self.ports
            .iter()
            .zip(&self.children)
            .filter(|(_, c)| c.is_some())
            .map(|(p, _)| *p)
            .collect()
    }

    /// `CLUSTER KEYSLOT`.
    pub fn slot(&self, key: &str) -> u16 {
        query::<u16>(
            self.live_ports()[0],
            redis::cmd("CLUSTER").arg("KEYSLOT").arg(key),
        )
        .unwrap()
    }

    /// The port of the live primary that owns `slot`.
    pub fn owner(&self, slot: u16) -> Option<u16> {
        let port = self.live_ports()[0];
        nodes(port).ok()?.into_iter().find_map(|n| {
            (n.primary && !n.failed && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
                .then_some(n.port)
        })
    }

    /// The ports of the primaries.
    pub fn primaries(&self) -> Vec<u16> {
        nodes(self.live_ports()[0])
            .unwrap()
            .into_iter()
            .filter(|n| n.primary && !n.failed)
            .map(|n| n.port)
            .collect()
    }

    /// Moves empty `slot` (pub/sub channels hold no keys) to the primary on `to`:
    /// `CLUSTER SETSLOT … IMPORTING/MIGRATING`, then `… NODE` on every node.
    pub fn migrate_slot(&self, slot: u16, to: u16) {
        let from = self.owner(slot).unwrap();
        let id = |port: u16| -> String { query(port, redis::cmd("CLUSTER").arg("MYID")).unwrap() };
        let (from_id, to_id) = (id(from), id(to));
        let _: String = query(
            to,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("IMPORTING")
                .arg(&from_id),
        )
        .unwrap();
        let _: String = query(
            from,
            redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("MIGRATING")
                .arg(&to_id),
        )
        .unwrap();
        for port in [to, from].into_iter().chain(self.live_ports()) {
            let _: redis::RedisResult<String> = query(
                port,
                redis::cmd("CLUSTER")
                    .arg("SETSLOT")
                    .arg(slot)
                    .arg("NODE")
                    .arg(&to_id),
            );
        }
        let deadline = Instant::now() + WAIT;
        while self.live_ports().iter().any(|&p| {
            nodes(p).map_or(true, |n| {
                !n.iter()
                    .any(|n| n.port == to && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
            })
        }) {
            assert!(Instant::now() < deadline, "slot {slot} did not move");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL of the server on `port`.
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|&p| p == port).unwrap();
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until another primary owns `slot` (a replica was promoted).
    pub fn wait_failover(&self, slot: u16, dead: u16) -> u16 {
        let deadline = Instant::now() + WAIT;
        loop {
            let owner = self.owner(slot);
            let ok = self.live_ports().iter().all(|&port| {
                query::<String>(port, redis::cmd("CLUSTER").arg("INFO"))
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            });
            if let Some(owner) = owner
                && owner != dead
                && ok
            {
                return owner;
            }
            assert!(Instant::now() < deadline, "no failover of slot {slot}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `PUBSUB SHARDNUMSUB channel` on the owner of its slot.
    pub fn shard_subscribers(&self, channel: &str) -> i64 {
        let owner = self.owner(self.slot(channel)).unwrap();
        let reply: Vec<redis::Value> =
            query(owner, redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel)).unwrap();
        match reply.get(1) {
            Some(redis::Value::Int(n)) => *n,
            other => panic!("SHARDNUMSUB reply {other:?}"),
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn query<T: redis::FromRedisValue>(port: u16, cmd: &mut redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    cmd.query(&mut conn)
}

fn wait_ping(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if query::<String>(port, &mut redis::cmd("PING")).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!("redis-server on {port} did not answer PING"))
}

fn nodes(port: u16) -> redis::RedisResult<Vec<ClusterNode>> {
    let text: String = query(port, redis::cmd("CLUSTER").arg("NODES"))?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let addr = f.get(1)?;
            let port = addr.split('@').next()?.rsplit(':').next()?.parse().ok()?;
            let flags = f.get(2)?;
            let slots = f
                .iter()
                .skip(8)
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => s.parse().ok().map(|n| (n, n)),
                })
                .collect();
            Some(ClusterNode {
                port,
                primary: flags.contains("master"),
                failed: flags.contains("fail"),
                slots,
            })
        })
        .collect())
}
