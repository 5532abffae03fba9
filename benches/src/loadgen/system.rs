//! What the generator asks of the operating system: more open files, sockets bound to
//! several loopback source addresses, its own CPU time, and the server's memory and CPU
//! time from `/proc`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
use nix::sys::socket::{setsockopt, sockopt};
use tokio::net::{TcpSocket, TcpStream};

/// Raises the soft open-file limit to the hard one; returns the new soft limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
    }
    Ok(hard)
}

/// The generator's own CPU time (user + system) so far.
pub fn own_cpu_time() -> io::Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).map_err(io::Error::from)?;
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    Ok(tv(usage.user_time()) + tv(usage.system_time()))
}

/// Source addresses for client sockets: `127.0.0.2`, `127.0.0.3`, … (`count` of them).
/// Each (source, destination) pair has its own ~28,000 ephemeral ports.
#[derive(Debug, Clone)]
pub struct SourceAddrs {
    addrs: Vec<Ipv4Addr>,
}

impl SourceAddrs {
    /// `count` addresses (at least one) starting at `127.0.0.2`.
    pub fn new(count: u8) -> Self {
        let addrs = (0..count.clamp(1, 250))
            .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i))
            .collect();
        Self { addrs }
    }

    /// The address for the `i`-th connection (round robin).
    pub fn pick(&self, i: usize) -> Ipv4Addr {
        self.addrs[i % self.addrs.len()]
    }
}

/// Opens a TCP connection to `server` from `source`, with `IP_BIND_ADDRESS_NO_PORT` so the
/// kernel picks the port at connect time by the whole 4-tuple, and `TCP_NODELAY`.
pub async fn connect_from(source: Ipv4Addr, server: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    setsockopt(&socket.as_fd(), sockopt::IpBindAddressNoPort, &true).map_err(io::Error::from)?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A process's resident memory (`VmRSS`) in bytes, from `/proc/PID/status`.
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| io::Error::other(format!("no VmRSS for pid {pid}")))
}

/// The `VmRSS:` line of a `/proc/PID/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next()? {
        "kB" => Some(value * 1024),
        _ => None,
    }
}

/// A process's CPU time at one moment, to subtract from a later one ([`CpuTime::since`]).
///
/// `/proc/PID/stat` counts in 10 ms ticks, which is 5 % of a 0.2 s phase (a fan-out run's
/// server spends about that), so the scheduler's own nanosecond count of each thread
/// (`/proc/PID/task/TID/schedstat`, first field) is read as well and used whenever it covers
/// the phase: no thread that was there at the start has gone by its end.
#[derive(Debug, Clone)]
pub struct CpuTime {
    ticks: Duration,
    /// `(tid, nanoseconds on a CPU)`, sorted by tid; `None` when unreadable.
    threads: Option<Vec<(u32, u64)>>,
}

impl CpuTime {
    /// The CPU time spent between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTime) -> Duration {
        if let (Some(now), Some(then)) = (&self.threads, &earlier.threads) {
            let at = |list: &[(u32, u64)], tid: u32| {
                list.binary_search_by_key(&tid, |&(t, _)| t)
                    .ok()
                    .map(|i| list[i].1)
            };
            if then.iter().all(|&(tid, _)| at(now, tid).is_some()) {
                let nanos: u64 = now
                    .iter()
                    .map(|&(tid, ns)| ns.saturating_sub(at(then, tid).unwrap_or(0)))
                    .sum();
                return Duration::from_nanos(nanos);
            }
        }
        self.ticks.saturating_sub(earlier.ticks)
    }
}

/// A process's CPU time now: `/proc/PID/stat`'s ticks, and each thread's nanoseconds when
/// `/proc/PID/task/*/schedstat` can be read.
pub fn process_cpu_time(pid: u32) -> io::Result<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_ticks(&stat).ok_or_else(|| io::Error::other("unreadable /proc stat"))?;
    Ok(CpuTime {
        // USER_HZ is 100 on every Linux ABI in use.
        ticks: Duration::from_millis(ticks * 10),
        threads: thread_nanos(pid),
    })
}

fn thread_nanos(pid: u32) -> Option<Vec<(u32, u64)>> {
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let entry = entry.ok()?;
        let tid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let text = std::fs::read_to_string(entry.path().join("schedstat")).ok()?;
        threads.push((tid, parse_schedstat_nanos(&text)?));
    }
    threads.sort_unstable();
    (!threads.is_empty()).then_some(threads)
}

/// The first field of a `schedstat` line: nanoseconds spent on a CPU.
pub fn parse_schedstat_nanos(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line, in clock ticks. The
/// command name (field 2) may hold spaces and parentheses, so fields are counted after the
/// last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11); // field 3 is the first here
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_bytes() {
        let status = "Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n";
        assert_eq!(parse_vm_rss(status), Some(10_485_760));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat = "4242 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 123 45 0 0 20 0 1 0";
        assert_eq!(parse_stat_ticks(stat), Some(168));
        assert_eq!(parse_stat_ticks("1 (x) S 1"), None);
    }

    #[test]
    fn own_process_figures_are_readable() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).unwrap() > 0);
        assert!(process_cpu_time(pid).is_ok());
        assert!(own_cpu_time().is_ok());
    }

    #[test]
    fn reads_schedstat_nanoseconds() {
        assert_eq!(parse_schedstat_nanos("894828 1200 3\n"), Some(894_828));
        assert_eq!(parse_schedstat_nanos(""), None);
    }

    fn snapshot(ticks_ms: u64, threads: Option<Vec<(u32, u64)>>) -> CpuTime {
        CpuTime {
            ticks: Duration::from_millis(ticks_ms),
            threads,
        }
    }

    #[test]
    fn cpu_time_counts_thread_nanoseconds_new_threads_whole() {
        let start = snapshot(100, Some(vec![(10, 1_000), (11, 5_000)]));
        let end = snapshot(110, Some(vec![(10, 4_000), (11, 5_500), (12, 700)]));
        assert_eq!(end.since(&start), Duration::from_nanos(3_000 + 500 + 700));
    }

    #[test]
    fn cpu_time_falls_back_to_ticks_when_a_thread_went_away() {
        let start = snapshot(100, Some(vec![(10, 1_000), (11, 5_000)]));
        let end = snapshot(130, Some(vec![(10, 4_000)]));
        assert_eq!(end.since(&start), Duration::from_millis(30));
        assert_eq!(snapshot(130, None).since(&start), Duration::from_millis(30));
    }

    #[test]
    fn own_thread_nanoseconds_grow_with_work() {
        let pid = std::process::id();
        let start = process_cpu_time(pid).unwrap();
        assert!(start.threads.is_some(), "schedstat unreadable here");
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let spent = process_cpu_time(pid).unwrap().since(&start);
        assert!(spent >= Duration::from_millis(20), "{spent:?}");
    }

    #[test]
    fn source_addresses_rotate() {
        let s = SourceAddrs::new(3);
        assert_eq!(s.pick(0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(s.pick(2), Ipv4Addr::new(127, 0, 0, 4));
        assert_eq!(s.pick(3), Ipv4Addr::new(127, 0, 0, 2));
    }

    #[tokio::test]
    async fn connects_from_a_chosen_source_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        let source = Ipv4Addr::new(127, 0, 0, 7);
        let (client, accepted) = tokio::join!(connect_from(source, server), listener.accept());
        let client = client.unwrap();
        let (_, peer) = accepted.unwrap();
        assert_eq!(peer.ip(), IpAddr::V4(source));
        assert_eq!(client.local_addr().unwrap(), peer);
    }
}
