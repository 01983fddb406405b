//! The agent's Prometheus metrics: what the event loop and the query connections count
//! as they go ([`Shared`]: atomics only, no lock), the connection tracker the event loop
//! feeds ([`Connections`]), and the encoding of one scrape ([`encode`]) from those, the
//! event loop's [`Snapshot`] (the counters `sockstat status` prints, and the table per
//! TCP state) and what any thread may read (the ring's fill, the process's CPU and RSS,
//! the timeline's size on disk). Names and types are listed in docs/agent.md.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::{Registry, Unit},
};
use rustc_hash::FxHashMap;
use sockstat_ebpf::TcpState;

use crate::{
    bpf::{
        ringfill::RingFill,
        stream::{Transition, kernel_state_name},
    },
    timeline::lifetime::{Opened, opened},
    wire::protocol::{Request, Status},
};

/// How a connection was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// connect(): CLOSE -> SYN_SENT.
    Connect = 0,
    /// A child of a listener: LISTEN -> SYN_RECV.
    Accept = 1,
}

const DIRECTIONS: [(Direction, &str); 2] = [(Direction::Connect, "connect"), (Direction::Accept, "accept")];

/// Upper bounds of the connection duration buckets, in ns: 100 µs to an hour.
const DURATION_BOUNDS_NS: [u64; 10] = [
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    60_000_000_000,
    600_000_000_000,
    3_600_000_000_000,
    86_400_000_000_000,
];

/// Upper bounds of the query latency buckets, in ns: 100 µs to 5 s.
const QUERY_BOUNDS_NS: [u64; 12] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
    5_000_000_000,
];

/// The request kinds a query's latency is labelled with.
const QUERY_KINDS: [&str; 4] = ["tcp", "owners", "dump", "status"];

/// The index of a request's kind in [`QUERY_KINDS`].
#[must_use]
pub fn query_kind(req: &Request) -> usize {
    match req {
        Request::Tcp { .. } => 0,
        Request::Owners { .. } => 1,
        Request::Dump { .. } => 2,
        Request::Status => 3,
        Request::Shared(inner) => query_kind(inner),
    }
}

/// A histogram of nanosecond values in fixed buckets, updated with atomic adds (no
/// lock, no allocation) and read at scrape time.
#[derive(Debug)]
pub struct Histogram {
    bounds_ns: &'static [u64],
    /// One count per bucket (not cumulative), the last for values above every bound.
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn new(bounds_ns: &'static [u64]) -> Histogram {
        Histogram {
            bounds_ns,
            buckets: (0..=bounds_ns.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe_ns(&self, ns: u64) {
        let i = self.bounds_ns.partition_point(|&b| b < ns);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// (sum in seconds, count, (upper bound in seconds, count) per bucket, +Inf last).
    fn read(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let bounds = self.bounds_ns.iter().map(|&b| b as f64 / 1e9).chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(counts.iter().copied()).collect();
        (self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9, counts.iter().sum(), buckets)
    }
}

/// What the event loop and the query connections count, shared with the exporter.
#[derive(Debug)]
pub struct Shared {
    opened: [AtomicU64; 2],
    closed: [AtomicU64; 2],
    duration: [Histogram; 2],
    queries: [Histogram; 4],
}

impl Shared {
    #[must_use]
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            opened: [AtomicU64::new(0), AtomicU64::new(0)],
            closed: [AtomicU64::new(0), AtomicU64::new(0)],
            duration: [Histogram::new(&DURATION_BOUNDS_NS), Histogram::new(&DURATION_BOUNDS_NS)],
            queries: std::array::from_fn(|_| Histogram::new(&QUERY_BOUNDS_NS)),
        })
    }

    /// A query of `kind` ([`query_kind`]) took `ns` from its request to its answer.
    pub fn query_done(&self, kind: usize, ns: u64) {
        if let Some(h) = self.queries.get(kind) {
            h.observe_ns(ns);
        }
    }
}

/// Connections seen opening, by cookie, until they close: how each was opened and when,
/// for the counters by direction and the duration histogram. The event loop feeds it
/// every transition; only opens and closes touch the map.
pub(super) struct Connections {
    shared: Arc<Shared>,
    /// cookie -> (CLOCK_MONOTONIC ns of the open, network namespace, direction).
    open: FxHashMap<u64, (u64, u32, Direction)>,
}

impl Connections {
    pub(super) fn new(shared: Arc<Shared>) -> Connections {
        Connections { shared, open: FxHashMap::default() }
    }

    pub(super) fn observe(&mut self, t: &Transition) {
        if !t.is_transition() || !t.is_inet() {
            return;
        }
        let close = t.new == TcpState::Close as u8;
        let direction = match opened(t.old, t.new) {
            Opened::Active => Direction::Connect,
            // LISTEN -> CLOSE is the listener closing, not a child.
            Opened::Passive if !close => Direction::Accept,
            _ => {
                if close && let Some((start, _, d)) = self.open.remove(&t.cookie) {
                    self.shared.closed[d as usize].fetch_add(1, Ordering::Relaxed);
                    self.shared.duration[d as usize].observe_ns(t.ts_ns.saturating_sub(start));
                }
                return;
            }
        };
        self.shared.opened[direction as usize].fetch_add(1, Ordering::Relaxed);
        self.open.insert(t.cookie, (t.ts_ns, t.netns, direction));
    }

    /// After a resync: forgets the connections `gone(netns, cookie)` says are no longer
    /// there (their close was lost), so the map cannot grow without bound.
    pub(super) fn forget(&mut self, mut gone: impl FnMut(u32, u64) -> bool) {
        self.open.retain(|&cookie, &mut (_, netns, _)| !gone(netns, cookie));
    }
}

/// What the event loop answers a scrape with: the status `sockstat status` prints and
/// its tables' sockets per TCP state (every tracked namespace).
#[derive(Debug)]
pub struct Snapshot {
    pub status: Status,
    pub by_state: [u64; 16],
}

/// What the exporter reads itself, besides the event loop's [`Snapshot`].
pub struct Sources {
    pub shared: Arc<Shared>,
    pub ring: Arc<RingFill>,
    /// The timeline's database file; `None`: no timeline.
    pub timeline: Option<PathBuf>,
}

/// Encodes one scrape, in the OpenMetrics text format, or in Prometheus's text format
/// 0.0.4 when `openmetrics` is false.
pub fn encode(snap: Snapshot, sources: &Sources, openmetrics: bool) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("sockstat");
    registry.register_collector(Box::new(Scrape {
        snap,
        shared: sources.shared.clone(),
        ring: (sources.ring.used_bytes(), sources.ring.size_bytes()),
        timeline_bytes: sources.timeline.as_deref().map(on_disk),
        process: process_usage(),
    }));
    let mut out = String::new();
    if openmetrics {
        prometheus_client::encoding::text::encode(&mut out, &registry)?;
    } else {
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    }
    Ok(out)
}

/// The timeline's bytes on disk: the database and its write-ahead log.
fn on_disk(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    [db.to_path_buf(), PathBuf::from(wal)].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

/// (CPU seconds, user and system; resident bytes) of this process, from /proc/self.
fn process_usage() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of proc(5); `fields` starts at field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let (hz, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    let (hz, page) = (u64::try_from(hz).ok()?.max(1), u64::try_from(page).ok()?);
    Some((ticks as f64 / hz as f64, resident * page))
}

/// One scrape's values, encoded by prometheus-client.
#[derive(Debug)]
struct Scrape {
    snap: Snapshot,
    shared: Arc<Shared>,
    /// (used, size) bytes of the event ring.
    ring: (u64, u64),
    timeline_bytes: Option<u64>,
    process: Option<(f64, u64)>,
}

/// The TCP states a table can hold: TIME-WAIT and request sockets are the kernel's
/// mini-sockets, and a socket leaves the table on CLOSE.
const TABLE_STATES: [TcpState; 9] = [
    TcpState::Established,
    TcpState::SynSent,
    TcpState::SynRecv,
    TcpState::FinWait1,
    TcpState::FinWait2,
    TcpState::CloseWait,
    TcpState::LastAck,
    TcpState::Listen,
    TcpState::Closing,
];

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, unit, MetricType::Counter)?)
}

fn counter_f64(e: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, v: f64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, unit, MetricType::Counter)?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, unit: Option<&Unit>, v: i64) -> std::fmt::Result {
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, unit, MetricType::Gauge)?)
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = &self.snap.status;
        let e = &mut e;
        counter(e, "events_seen", "TCP state transitions the eBPF program saw", None, s.events_seen)?;
        counter(e, "events_received", "Events the agent read from the ring buffer", None, s.events_received)?;
        counter(e, "events_lost", "Events lost in the kernel: the ring buffer was full", None, s.events_lost_kernel)?;
        counter(e, "events_malformed", "Ring-buffer records of the wrong size, dropped", None, s.events_malformed)?;
        counter(
            e,
            "events_overflowed",
            "Events the agent read but dropped: too many waited for its event loop",
            None,
            s.events_overflowed,
        )?;
        counter(e, "event_read_errors", "Kernel reads the eBPF program could not make", None, s.read_errors)?;
        counter(e, "resyncs", "Re-dumps of the tables from sock_diag after a loss", None, s.resyncs)?;
        gauge(e, "ringbuf_used", "Bytes in the event ring buffer not yet read", Some(&Unit::Bytes), int(self.ring.0))?;
        gauge(e, "ringbuf_size", "Size of the event ring buffer", Some(&Unit::Bytes), int(self.ring.1))?;
        if let (Some(committed), Some(dropped)) = (s.timeline_committed, s.timeline_dropped) {
            counter(e, "timeline_rows_committed", "Rows the timeline writer committed", None, committed)?;
            counter(e, "timeline_records_dropped", "Records dropped: the timeline writer was behind", None, dropped)?;
        }
        if let Some(bytes) = self.timeline_bytes {
            let help = "The timeline's database and write-ahead log on disk";
            gauge(e, "timeline_file_size", help, Some(&Unit::Bytes), int(bytes))?;
        }
        {
            let help = "TCP sockets in the agent's table of each tracked network namespace";
            let mut m = e.encode_descriptor("tracked_sockets", help, None, MetricType::Gauge)?;
            for ns in &s.namespaces {
                let labels = [("netns", ns.netns.to_string()), ("name", ns.name.clone().unwrap_or_default())];
                ConstGauge::new(int(ns.sockets)).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let help = "TCP sockets in the agent's tables (every tracked namespace) by state";
            let mut m = e.encode_descriptor("tracked_sockets_by_state", help, None, MetricType::Gauge)?;
            for state in TABLE_STATES {
                let name = kernel_state_name(state as u8).to_ascii_lowercase();
                let n = self.snap.by_state[state as usize];
                ConstGauge::new(int(n)).encode(m.encode_family(&[("state", name)])?)?;
            }
        }
        for (name, help, values) in [
            ("connections_opened", "TCP connections seen opening, by how", &self.shared.opened),
            (
                "connections_closed",
                "TCP connections seen opening, then closing, by how they opened",
                &self.shared.closed,
            ),
        ] {
            let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (d, label) in DIRECTIONS {
                let v = values[d as usize].load(Ordering::Relaxed);
                ConstCounter::new(v).encode(m.encode_family(&[("direction", label)])?)?;
            }
        }
        {
            let help = "Lifetime of TCP connections from open to close, by how they opened";
            let mut m =
                e.encode_descriptor("connection_duration", help, Some(&Unit::Seconds), MetricType::Histogram)?;
            for (d, label) in DIRECTIONS {
                let (sum, count, buckets) = self.shared.duration[d as usize].read();
                m.encode_family(&[("direction", label)])?.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }
        {
            let help = "Queries answered on the agent's socket, from request to answer written, by request";
            let mut m = e.encode_descriptor("query_duration", help, Some(&Unit::Seconds), MetricType::Histogram)?;
            for (i, kind) in QUERY_KINDS.iter().enumerate() {
                let (sum, count, buckets) = self.shared.queries[i].read();
                m.encode_family(&[("request", *kind)])?.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
            }
        }
        if let Some((cpu, rss)) = self.process {
            counter_f64(e, "agent_cpu", "CPU time of the agent, user and system", Some(&Unit::Seconds), cpu)?;
            gauge(e, "agent_resident_memory", "Resident memory of the agent", Some(&Unit::Bytes), int(rss))?;
        }
        gauge(e, "agent_uptime", "Time since the agent started", Some(&Unit::Seconds), int(s.uptime_ms / 1000))?;
        let stats_on = s.bpf_stats == Some(true);
        gauge(
            e,
            "bpf_stats_enabled",
            "1 while kernel.bpf_stats_enabled counts program runs",
            None,
            i64::from(stats_on),
        )?;
        if stats_on && !s.programs.is_empty() {
            {
                let help = "Runs of each eBPF program, counted while kernel.bpf_stats_enabled is on";
                let mut m = e.encode_descriptor("bpf_program_runs", help, None, MetricType::Counter)?;
                for p in &s.programs {
                    let labels = [("program", p.name.clone()), ("role", p.role.clone())];
                    ConstCounter::new(p.run_count).encode(m.encode_family(&labels)?)?;
                }
            }
            let help = "Time spent in each eBPF program, counted while kernel.bpf_stats_enabled is on";
            let mut m = e.encode_descriptor("bpf_program_run_time", help, Some(&Unit::Seconds), MetricType::Counter)?;
            for p in &s.programs {
                let labels = [("program", p.name.clone()), ("role", p.role.clone())];
                ConstCounter::new(p.run_time_ns as f64 / 1e9).encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcpState::*;

    fn ev(cookie: u64, ts_ms: u64, old: TcpState, new: TcpState) -> Transition {
        Transition::fixture(cookie, ts_ms * 1_000_000, old, new, (40000, 80))
    }

    #[test]
    fn connections_are_counted_by_direction_with_their_duration() {
        let shared = Shared::new();
        let mut c = Connections::new(shared.clone());
        // A client (cookie 1) and the server's child (cookie 2) of one connection that
        // lives 302 ms; a listener (3) that closes; a socket from before (4) that closes.
        for t in [
            ev(3, 0, Close, Listen),
            ev(1, 10, Close, SynSent),
            ev(2, 10, Listen, SynRecv),
            ev(1, 11, SynSent, Established),
            ev(2, 11, SynRecv, Established),
            ev(1, 310, Established, FinWait1),
            ev(2, 310, Established, CloseWait),
            ev(1, 310, FinWait1, FinWait2),
            ev(2, 311, CloseWait, LastAck),
            ev(2, 312, LastAck, Close),
            ev(1, 312, FinWait2, Close),
            ev(3, 400, Listen, Close),
            ev(4, 400, Established, Close),
        ] {
            c.observe(&t);
        }
        let n = |a: &[AtomicU64; 2]| a.iter().map(|x| x.load(Ordering::Relaxed)).collect::<Vec<_>>();
        assert_eq!(n(&shared.opened), [1, 1]);
        assert_eq!(n(&shared.closed), [1, 1]);
        for h in &shared.duration {
            let (sum, count, buckets) = h.read();
            assert_eq!(count, 1);
            assert!((sum - 0.302).abs() < 1e-9, "{sum}");
            // The (0.1 s, 1 s] bucket.
            assert_eq!(buckets.iter().find(|b| b.1 > 0).map(|b| b.0), Some(1.0));
        }
        assert!(c.open.is_empty());
    }

    #[test]
    fn a_resync_forgets_connections_no_longer_in_their_table() {
        let mut c = Connections::new(Shared::new());
        c.observe(&ev(1, 0, Close, SynSent));
        c.observe(&ev(2, 0, Close, SynSent));
        c.forget(|_, cookie| cookie == 1);
        assert_eq!(c.open.keys().copied().collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn histogram_buckets_are_upper_bounds_and_inf_takes_the_rest() {
        let h = Histogram::new(&QUERY_BOUNDS_NS);
        h.observe_ns(100_000);
        h.observe_ns(100_001);
        h.observe_ns(10_000_000_000);
        let (sum, count, buckets) = h.read();
        assert_eq!(count, 3);
        assert!((sum - 10.000_200_001).abs() < 1e-9);
        assert_eq!(buckets[0], (0.0001, 1));
        assert_eq!(buckets[1], (0.00025, 1));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
    }
}
