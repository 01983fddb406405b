//! `sockstat trace`: every TCP state transition, live, one line each (or one JSON object
//! per line). Loads its own instance of the program, so it works with or without an agent.
//! By default only transitions of the network namespace it runs in are shown, matching
//! what `ss` run in the same place would list; `--all-netns` shows every namespace,
//! `--netns INODE|NAME` one other.

use std::{
    fmt::Write as _,
    io::{self, Write},
    net::IpAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;
use sockstat_ebpf::AF_INET;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    bpf::loader::{EbpfError, LoadOptions, Tracer},
    bpf::{
        reader::{ReaderError, RingReader},
        stream::{Transition, kernel_state_name},
    },
    live::agent::own_netns,
    model::clock::monotonic_now,
    query::EventFilter,
    timeline::lifetime::{Lifetime, Tracker},
};

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
    #[error(transparent)]
    Reader(#[from] ReaderError),
    #[error("{0}")]
    Io(&'static str, #[source] io::Error),
    #[error(transparent)]
    Agent(#[from] crate::live::error::AgentError),
}

#[derive(Clone, Debug, Default)]
pub struct TraceOptions {
    pub json: bool,
    pub all_netns: bool,
    /// Only this network namespace (`--netns`), instead of the one sockstat runs in.
    pub netns: Option<crate::cli::netns_arg::NetnsArg>,
    /// Stop after this many records (0: until SIGINT/SIGTERM).
    pub count: u64,
    /// One record per finished connection instead of one per transition.
    pub lifetimes: bool,
    /// The ss FILTER (expression and STATE-FILTER) records must pass.
    pub filter: EventFilter,
}

/// UTC text for the program's CLOCK_MONOTONIC stamps. Both clocks are read once per
/// batch of events ([`Stamps::refresh`]), not per event, and the date of the current day
/// is kept as text, so formatting a line allocates nothing.
pub struct Stamps {
    /// Wall-clock nanoseconds minus monotonic nanoseconds at the last refresh.
    offset_ns: i128,
    /// Day number since the epoch and its `YYYY-MM-DDT` text.
    day: (i128, String),
}

impl Default for Stamps {
    fn default() -> Self {
        let mut s = Stamps { offset_ns: 0, day: (i128::MIN, String::new()) };
        s.refresh();
        s
    }
}

impl Stamps {
    /// Reads both clocks: exact unless the wall clock is stepped before the next refresh.
    pub fn refresh(&mut self) {
        let mono = i128::try_from(monotonic_now().as_nanos()).unwrap_or(0);
        let wall =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(0));
        self.offset_ns = wall - mono;
    }

    /// (seconds since the epoch, nanoseconds) of a monotonic stamp.
    fn wall(&self, mono_ns: u64) -> (i128, u32) {
        let ns = (i128::from(mono_ns) + self.offset_ns).max(0);
        (ns / 1_000_000_000, u32::try_from(ns % 1_000_000_000).unwrap_or(0))
    }

    /// `HH:MM:SS.micro` (UTC), truncated as the RFC 3339 text's first 15 characters of
    /// time are.
    pub fn push_clock(&self, out: &mut String, mono_ns: u64) {
        let (secs, sub) = self.wall(mono_ns);
        let sod = secs.rem_euclid(86_400);
        push_hms(out, sod);
        out.push('.');
        push_zero_padded(out, u64::from(sub / 1000), 6);
    }

    /// RFC 3339 with nanoseconds (`2026-11-25T12:03:05.123456789Z`), as
    /// `humantime::format_rfc3339_nanos` prints it.
    pub fn push_rfc3339(&mut self, out: &mut String, mono_ns: u64) {
        let (secs, sub) = self.wall(mono_ns);
        let day = secs.div_euclid(86_400);
        if self.day.0 != day {
            let midnight = UNIX_EPOCH + Duration::from_secs(u64::try_from(day * 86_400).unwrap_or(0));
            let text = humantime::format_rfc3339_seconds(midnight).to_string();
            self.day = (day, text.get(..11).unwrap_or_default().to_owned());
        }
        out.push_str(&self.day.1);
        let sod = secs.rem_euclid(86_400);
        push_hms(out, sod);
        out.push('.');
        push_zero_padded(out, u64::from(sub), 9);
        out.push('Z');
    }
}

/// `value` as one JSON line, written with one call: serde_json writes a record as dozens
/// of small pieces, each a call through `out` (a third of `trace --json`'s time).
fn write_json_line(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    thread_local! {
        static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    LINE.with_borrow_mut(|line| {
        line.clear();
        serde_json::to_writer(&mut *line, value).map_err(io::Error::other)?;
        line.push(b'\n');
        out.write_all(line)
    })
}

/// `HH:MM:SS` of second `sod` of a day.
fn push_hms(out: &mut String, sod: i128) {
    // In range: 0 <= sod < 86400.
    let sod = u64::try_from(sod).unwrap_or(0);
    push_zero_padded(out, sod / 3600, 2);
    out.push(':');
    push_zero_padded(out, sod / 60 % 60, 2);
    out.push(':');
    push_zero_padded(out, sod % 60, 2);
}

/// `n` in decimal with leading zeros to `width` digits (`{n:0width$}`, without the
/// formatter: `trace` writes a line per event, hundreds of thousands a second).
fn push_zero_padded(out: &mut String, mut n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(buf.len().saturating_sub(width));
    out.push_str(std::str::from_utf8(&buf[start..]).unwrap_or("0"));
}

/// A transition's JSON line as serde writes it: what [`push_json_transition`] writes.
#[cfg(test)]
#[derive(Serialize)]
struct JsonTransition<'a> {
    time: &'a str,
    ts_ns: u64,
    pid: u32,
    tid: u32,
    comm: &'a crate::model::comm::Comm,
    netns: u32,
    cookie: u64,
    family: &'static str,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    old: &'static str,
    new: &'static str,
    rqueue: u32,
    wqueue: u32,
    bytes_acked: u64,
    bytes_received: u64,
    #[serde(flatten)]
    context: Context<'a>,
}

/// Names and paths for the numbers events carry, looked up once each: a network
/// namespace's `ip netns` name, a cgroup's path under the cgroup2 mount (a cgroup not
/// met before walks the mount again: it is usually new).
#[derive(Default)]
pub struct Labels {
    netns: rustc_hash::FxHashMap<u32, Option<String>>,
    cgroups: rustc_hash::FxHashMap<u64, Option<String>>,
    tree: std::collections::HashMap<u64, String>,
}

impl Labels {
    pub fn netns_name(&mut self, inode: u32) -> Option<&str> {
        self.netns.entry(inode).or_insert_with(|| crate::sys::netns::names().remove(&inode)).as_deref()
    }

    pub fn cgroup_path(&mut self, id: u64) -> Option<&str> {
        if id == 0 {
            return None;
        }
        let tree = &mut self.tree;
        self.cgroups
            .entry(id)
            .or_insert_with(|| {
                if !tree.contains_key(&id) {
                    *tree = crate::names::system::system_cgroups();
                }
                tree.get(&id).cloned()
            })
            .as_deref()
    }
}

/// What JSON transitions and lifetimes say of where a socket lived and how it ended: its
/// namespace's name and its cgroup (when known), and at its close the errno's name,
/// retransmits, and the smoothed RTT when one was measured.
#[derive(Serialize)]
struct Context<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    netns_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retrans: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    srtt_us: Option<u32>,
}

impl<'a> Context<'a> {
    fn new(
        labels: &'a mut Labels,
        netns_name: Option<&'a str>,
        cgroup_id: u64,
        closing: bool,
        (error, retrans, srtt_us): (u32, u32, u32),
    ) -> Context<'a> {
        Context {
            netns_name,
            cgroup: labels.cgroup_path(cgroup_id),
            cgroup_id: (cgroup_id != 0).then_some(cgroup_id),
            error: (closing && error != 0).then(|| crate::model::abi::errno_name(error)),
            retrans: closing.then_some(retrans),
            srtt_us: (closing && srtt_us != 0).then_some(srtt_us),
        }
    }
}

/// Writes one transition through the reused `line`. Time is UTC, RFC 3339 with
/// nanoseconds in JSON and HH:MM:SS.micro in text.
pub fn write_transition(
    out: &mut impl Write,
    line: &mut String,
    (stamps, labels): (&mut Stamps, &mut Labels),
    t: &Transition,
    json: bool,
) -> io::Result<()> {
    line.clear();
    if json {
        let netns_name = labels.netns_name(t.netns).map(str::to_owned);
        let closing = t.new == sockstat_ebpf::TcpState::Close as u8;
        let ctx = Context::new(labels, netns_name.as_deref(), t.cgroup_id, closing, (t.error, t.retrans, t.srtt_us));
        push_json_transition(line, stamps, t, &ctx);
        line.push('\n');
        return out.write_all(line.as_bytes());
    }
    stamps.push_clock(line, t.ts_ns);
    line.push(' ');
    push_transition_columns(line, t.pid, &t.comm.text(), (t.src, t.sport), (t.dst, t.dport), t.old, t.new);
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// A transition as `serde_json` writes [`JsonTransition`] (the tests compare the two),
/// appended field by field: `trace --json` writes a line per event, and serde's per-field
/// path (every key escaped, every value through a serializer) was most of its time.
fn push_json_transition(line: &mut String, stamps: &mut Stamps, t: &Transition, ctx: &Context) {
    use crate::render::push_decimal;
    let num = |line: &mut String, key: &str, v: u64| {
        line.push_str(key);
        push_decimal(line, v);
    };
    // RFC 3339 text (digits and `-:.TZ`): nothing in it to escape.
    line.push_str("{\"time\":\"");
    stamps.push_rfc3339(line, t.ts_ns);
    line.push('"');
    num(line, ",\"ts_ns\":", t.ts_ns);
    num(line, ",\"pid\":", t.pid.into());
    num(line, ",\"tid\":", t.tid.into());
    line.push_str(",\"comm\":");
    push_json_str(line, &t.comm.text());
    num(line, ",\"netns\":", t.netns.into());
    num(line, ",\"cookie\":", t.cookie);
    line.push_str(if t.family == AF_INET { ",\"family\":\"inet\"" } else { ",\"family\":\"inet6\"" });
    line.push_str(",\"src\":");
    push_json_ip(line, t.src);
    num(line, ",\"sport\":", t.sport.into());
    line.push_str(",\"dst\":");
    push_json_ip(line, t.dst);
    num(line, ",\"dport\":", t.dport.into());
    line.push_str(",\"old\":");
    push_json_str(line, kernel_state_name(t.old));
    line.push_str(",\"new\":");
    push_json_str(line, kernel_state_name(t.new));
    num(line, ",\"rqueue\":", t.rqueue.into());
    num(line, ",\"wqueue\":", t.wqueue.into());
    num(line, ",\"bytes_acked\":", t.bytes_acked);
    num(line, ",\"bytes_received\":", t.bytes_received);
    if let Some(name) = ctx.netns_name {
        line.push_str(",\"netns_name\":");
        push_json_str(line, name);
    }
    if let Some(path) = ctx.cgroup {
        line.push_str(",\"cgroup\":");
        push_json_str(line, path);
    }
    if let Some(id) = ctx.cgroup_id {
        num(line, ",\"cgroup_id\":", id);
    }
    if let Some(e) = &ctx.error {
        line.push_str(",\"error\":");
        push_json_str(line, e);
    }
    if let Some(r) = ctx.retrans {
        num(line, ",\"retrans\":", r.into());
    }
    if let Some(r) = ctx.srtt_us {
        num(line, ",\"srtt_us\":", r.into());
    }
    line.push('}');
}

/// A JSON string: as it is between quotes when nothing in it needs escaping (the usual
/// case), else as serde_json escapes it.
fn push_json_str(line: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        line.push('"');
        line.push_str(s);
        line.push('"');
    } else {
        line.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}

/// An address as a JSON string, as serde writes an `IpAddr`.
fn push_json_ip(line: &mut String, ip: IpAddr) {
    line.push('"');
    match ip {
        IpAddr::V4(a) => crate::render::push_ipv4(line, a),
        IpAddr::V6(a) => {
            let _ = write!(line, "{a}");
        }
    }
    line.push('"');
}

#[cfg(test)]
fn json_transition_by_serde(time: &str, t: &Transition, ctx: Context) -> String {
    let j = JsonTransition {
        time,
        ts_ns: t.ts_ns,
        pid: t.pid,
        tid: t.tid,
        comm: &t.comm,
        netns: t.netns,
        cookie: t.cookie,
        family: if t.family == AF_INET { "inet" } else { "inet6" },
        src: t.src,
        sport: t.sport,
        dst: t.dst,
        dport: t.dport,
        old: kernel_state_name(t.old),
        new: kernel_state_name(t.new),
        rqueue: t.rqueue,
        wqueue: t.wqueue,
        bytes_acked: t.bytes_acked,
        bytes_received: t.bytes_received,
        context: ctx,
    };
    serde_json::to_string(&j).unwrap()
}

/// `ADDR:PORT` (`[ADDR]:PORT` for IPv6) left-aligned in `width` columns.
fn push_endpoint(out: &mut String, (addr, port): (IpAddr, u16), width: usize) {
    let start = out.len();
    match addr {
        IpAddr::V4(a) => {
            crate::render::push_ipv4(out, a);
            out.push(':');
            crate::render::push_decimal(out, u64::from(port));
        }
        IpAddr::V6(a) => {
            let _ = write!(out, "[{a}]:{port}");
        }
    }
    // ASCII only: bytes are columns.
    for _ in out.len() - start..width {
        out.push(' ');
    }
}

/// The columns of a transition line after its time (`trace` and `history --transitions`):
/// `PID COMM LOCAL PEER OLD -> NEW`.
fn push_transition_columns(
    out: &mut String,
    pid: u32,
    comm: &str,
    local: (IpAddr, u16),
    peer: (IpAddr, u16),
    old: u8,
    new: u8,
) {
    crate::render::push_decimal_padded(out, u64::from(pid), 7);
    out.push(' ');
    out.push_str(comm);
    // Padded as `{comm:<16}` pads: by characters.
    for _ in comm.chars().count()..16 {
        out.push(' ');
    }
    out.push(' ');
    push_endpoint(out, local, 47);
    out.push(' ');
    push_endpoint(out, peer, 47);
    out.push(' ');
    out.push_str(kernel_state_name(old));
    out.push_str(" -> ");
    out.push_str(kernel_state_name(new));
}

/// [`push_transition_columns`] as a new string.
#[must_use]
pub fn transition_columns(pid: u32, comm: &str, local: (IpAddr, u16), peer: (IpAddr, u16), old: u8, new: u8) -> String {
    let mut s = String::with_capacity(160);
    push_transition_columns(&mut s, pid, comm, local, peer, old, new);
    s
}

pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{:<15} {:<7} {:<16} {:<47} {:<47} OLD -> NEW", "TIME(UTC)", "PID", "COMM", "LOCAL", "PEER")
}

pub fn write_lifetime_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<15} {:<7} {:<16} {:<47} {:<47} {:>10} {:>10} {:>12} PATH",
        "START(UTC)", "PID", "COMM", "LOCAL", "PEER", "TX_BYTES", "RX_BYTES", "DURATION_MS"
    )
}

#[derive(Serialize)]
struct JsonLifetime<'a> {
    #[serde(flatten)]
    life: &'a Lifetime,
    start: Option<&'a str>,
    end: &'a str,
    duration_ns: Option<u64>,
    path_names: String,
    #[serde(flatten)]
    context: Context<'a>,
}

/// Writes one finished connection through the reused `line`. Start and duration are `-`
/// for a connection that began before tracing did.
pub fn write_lifetime(
    out: &mut impl Write,
    line: &mut String,
    (stamps, labels): (&mut Stamps, &mut Labels),
    l: &Lifetime,
    json: bool,
) -> io::Result<()> {
    line.clear();
    if json {
        // One buffer holds both times: the end, then the start.
        stamps.push_rfc3339(line, l.end_ns);
        let end_len = line.len();
        if let Some(start) = l.start_ns {
            stamps.push_rfc3339(line, start);
        }
        let (end, start) = line.split_at(end_len);
        let netns_name = labels.netns_name(l.netns).map(str::to_owned);
        let j = JsonLifetime {
            life: l,
            start: l.start_ns.map(|_| start),
            end,
            duration_ns: l.duration_ns(),
            path_names: l.path_text(),
            context: Context::new(labels, netns_name.as_deref(), l.cgroup_id, true, (l.error, l.retrans, l.srtt_us)),
        };
        return write_json_line(out, &j);
    }
    match l.start_ns {
        Some(start) => stamps.push_clock(line, start),
        None => line.push('-'),
    }
    for _ in line.len()..15 {
        line.push(' ');
    }
    line.push(' ');
    let duration = l.duration_ns().map_or_else(|| "-".to_string(), |d| format!("{:.3}", d as f64 / 1e6));
    push_lifetime_columns(
        line,
        l.pid,
        &l.comm,
        (l.src, l.sport),
        (l.dst, l.dport),
        (l.bytes_sent, l.bytes_received),
        &duration,
        &l.path_text(),
    );
    line.push('\n');
    out.write_all(line.as_bytes())
}

/// The columns of a lifetime line after its start time (`trace --lifetimes` and
/// `history`): `PID COMM LOCAL PEER TX_BYTES RX_BYTES DURATION_MS PATH`.
#[expect(clippy::too_many_arguments, reason = "one argument per column")]
fn push_lifetime_columns(
    out: &mut String,
    pid: u32,
    comm: &str,
    local: (IpAddr, u16),
    peer: (IpAddr, u16),
    (sent, received): (impl std::fmt::Display, impl std::fmt::Display),
    duration_ms: &str,
    path: &str,
) {
    let _ = write!(out, "{pid:<7} {comm:<16} ");
    push_endpoint(out, local, 47);
    out.push(' ');
    push_endpoint(out, peer, 47);
    let _ = write!(out, " {sent:>10} {received:>10} {duration_ms:>12} {path}");
}

/// [`push_lifetime_columns`] as a new string.
#[must_use]
pub fn lifetime_columns(
    pid: u32,
    comm: &str,
    local: (IpAddr, u16),
    peer: (IpAddr, u16),
    bytes: (impl std::fmt::Display, impl std::fmt::Display),
    duration_ms: &str,
    path: &str,
) -> String {
    let mut s = String::with_capacity(200);
    push_lifetime_columns(&mut s, pid, comm, local, peer, bytes, duration_ms, path);
    s
}

/// Last complete tuple of each live socket, by cookie. tcp_set_state() releases the
/// local port before the CLOSE transition fires (net/ipv4/tcp.c: inet_put_port, then
/// inet_sk_state_store), so a CLOSE event carries port 0; the socket is the same (same
/// cookie), so its tuple is the one it had at its previous transition.
#[derive(Default)]
pub struct Tuples {
    live: rustc_hash::FxHashMap<u64, (IpAddr, u16, IpAddr, u16)>,
}

impl Tuples {
    pub fn complete(&mut self, t: &mut Transition) {
        let closing = t.new == sockstat_ebpf::TcpState::Close as u8;
        if t.sport == 0 && closing {
            if let Some(&(src, sport, dst, dport)) = self.live.get(&t.cookie) {
                (t.src, t.sport, t.dst, t.dport) = (src, sport, dst, dport);
            }
        } else if t.sport != 0 {
            self.live.insert(t.cookie, (t.src, t.sport, t.dst, t.dport));
        }
        if closing {
            self.live.remove(&t.cookie);
        }
    }
}

pub fn run(opts: &TraceOptions) -> Result<(), TraceError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TraceError::Io("starting the event loop", e))?;
    rt.block_on(trace(opts))
}

async fn trace(opts: &TraceOptions) -> Result<(), TraceError> {
    let netns = match &opts.netns {
        Some(arg) => Some(arg.inode().map_err(|e| TraceError::Io("--netns", e))?),
        None if opts.all_netns => None,
        None => Some(own_netns()?),
    };
    let load = LoadOptions::default();
    let mut tracer = Tracer::load(load)?;
    let rings = tracer.take_events().ok_or(EbpfError::MissingMap(sockstat_ebpf::EVENTS_MAPS[0]))?;
    // Read by a thread of its own: formatting (JSON above all) can fall behind in a
    // burst while the rings keep being emptied; the events wait in memory meanwhile.
    let mut stream = RingReader::start(rings, Duration::from_millis(sockstat_ebpf::DRAIN_INTERVAL_MS))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| TraceError::Io("installing SIGINT handler", e))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| TraceError::Io("installing SIGTERM handler", e))?;
    let mut out =
        super::queued_stdout::QueuedStdout::start().map_err(|e| TraceError::Io("starting the stdout writer", e))?;
    if !opts.json {
        if opts.lifetimes { write_lifetime_header(&mut out) } else { write_header(&mut out) }
            .map_err(|e| TraceError::Io("writing to stdout", e))?;
        out.flush().map_err(|e| TraceError::Io("writing to stdout", e))?;
    }
    eprintln!("sockstat trace: attached to sock:inet_sock_set_state; Ctrl-C to stop");
    // Shared by the closure that shows an event and the one that says when to stop.
    let printed = std::cell::Cell::new(0u64);
    let mut line = String::with_capacity(256);
    let mut stamps = Stamps::default();
    let mut labels = Labels::default();
    let mut tuples = Tuples::default();
    let mut lifetimes = Tracker::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    // One event: shown if it passes the namespace, the count and the filter.
    let mut show = |mut t: Transition, out: &mut super::queued_stdout::QueuedStdout| -> io::Result<()> {
        if netns.is_some_and(|ns| ns != t.netns) || (opts.count > 0 && printed.get() >= opts.count) {
            return Ok(());
        }
        // Request sockets are no transition (a full socket's follow if the handshake
        // completes).
        if t.request {
            return Ok(());
        }
        if opts.lifetimes {
            if let Some(l) = lifetimes.observe(&t)
                && opts.filter.accepts(&l.as_socket(), &l.path)
            {
                printed.set(printed.get() + 1);
                return write_lifetime(out, &mut line, (&mut stamps, &mut labels), &l, opts.json);
            }
            return Ok(());
        }
        if t.accept {
            return Ok(());
        }
        tuples.complete(&mut t);
        // The cgroup is a boxed detail: attached only for a filter that asks for it.
        let sock = if opts.filter.needs_details() { t.as_socket() } else { t.as_row() };
        if !opts.filter.accepts(&sock, &[t.new]) {
            return Ok(());
        }
        printed.set(printed.get() + 1);
        write_transition(out, &mut line, (&mut stamps, &mut labels), &t, opts.json)
    };
    // Shows what the reader has taken (`all`: everything the ring holds now); returns
    // whether to stop.
    let mut emit = |stream: &mut RingReader,
                    out: &mut super::queued_stdout::QueuedStdout,
                    all: bool|
     -> Result<bool, TraceError> {
        let mut result = Ok(());
        let mut take = |t: &Transition| {
            if result.is_ok() {
                result = show(t.clone(), out);
            }
        };
        if all {
            stream.flush(&mut take)?;
        } else {
            stream.drain(&mut take)?;
        }
        match result.and_then(|()| out.flush()) {
            Ok(()) => Ok(opts.count > 0 && printed.get() >= opts.count),
            // The reader went away (`| head`): stop quietly.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(true),
            Err(e) => Err(TraceError::Io("writing to stdout", e)),
        }
    };
    loop {
        tokio::select! {
            () = stream.readable() => {
                if emit(&mut stream, &mut out, false)? {
                    break;
                }
            }
            _ = tick.tick() => tracer.flush_log(),
            // Transitions already in the ring when the signal came are still shown.
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
        }
    }
    // What the ring holds when we stop is shown too.
    emit(&mut stream, &mut out, true)?;
    match out.finish() {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(TraceError::Io("writing to stdout", e)),
    }
    let c = tracer.counters()?;
    let (malformed, overflowed) = (stream.malformed(), stream.overflowed());
    if c.lost > 0 || c.missed > 0 || malformed > 0 || overflowed > 0 {
        eprintln!(
            "sockstat trace: {} events lost in the kernel ring buffer, {} transitions not traced (the kernel skipped \
             the program: nested on a CPU), {} malformed, {} dropped (more than {} waited to be shown)",
            c.lost,
            c.missed,
            malformed,
            overflowed,
            crate::bpf::reader::MAX_QUEUED
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_print_what_humantime_prints() {
        // Wall-clock times across days, leap years and the end of a second.
        let walls: [u128; 6] = [
            0,
            1_700_000_000_123_456_789,
            1_764_374_400_000_000_000,
            1_764_460_799_999_999_999,
            951_782_400_000_000_001,
            4_102_444_800_500_000_000,
        ];
        for mono in [0u64, 5_000_000_000, 123_456_789_012] {
            for wall in walls {
                let mut stamps = Stamps {
                    offset_ns: i128::try_from(wall).unwrap() - i128::from(mono),
                    day: (i128::MIN, String::new()),
                };
                let want =
                    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(u64::try_from(wall).unwrap()))
                        .to_string();
                let mut got = String::new();
                stamps.push_rfc3339(&mut got, mono);
                assert_eq!(got, want);
                let mut clock = String::new();
                stamps.push_clock(&mut clock, mono);
                assert_eq!(clock, want[11..26]);
            }
        }
    }

    #[test]
    fn json_lines_are_what_serde_writes() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            x >> 16
        };
        // Names that need no escaping, a quote, a backslash, a control byte, bytes that
        // are not UTF-8; an address of each family.
        let comms: [&[u8]; 5] = [b"curl", b"a\"b", b"back\\slash", b"tab\there\x01", b"\xff\xfeok"];
        let addrs: [IpAddr; 4] = [
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([255, 255, 255, 255]),
            "::1".parse().unwrap(),
            "2001:db8::ffff:10.0.0.1".parse().unwrap(),
        ];
        for i in 0..400usize {
            let mut c = [0u8; 16];
            let name = comms[i % comms.len()];
            c[..name.len()].copy_from_slice(name);
            let t = Transition {
                ts_ns: next(),
                cookie: next(),
                netns: u32::try_from(next() & 0xffff_ffff).unwrap(),
                pid: u32::try_from(next() & 0xffff_ffff).unwrap(),
                tid: u32::try_from(next() & 0xffff).unwrap(),
                comm: crate::model::comm::Comm::from_kernel(&c),
                family: if i % 2 == 0 { AF_INET } else { 10 },
                src: addrs[i % 4],
                sport: u16::try_from(next() & 0xffff).unwrap(),
                dst: addrs[(i / 4) % 4],
                dport: u16::try_from(next() & 0xffff).unwrap(),
                old: u8::try_from(i % 13).unwrap(),
                new: u8::try_from((i / 13) % 13).unwrap(),
                accept: false,
                request: false,
                netns_cookie: 0,
                v6only: false,
                ifindex: 0,
                rqueue: u32::try_from(next() & 0xffff_ffff).unwrap(),
                wqueue: u32::try_from(next() & 0xff).unwrap(),
                bytes_acked: next(),
                bytes_received: next() >> (i % 48),
                cgroup_id: 0,
                error: 0,
                retrans: 0,
                srtt_us: 0,
            };
            let ctx = || Context {
                netns_name: (i % 3 == 0).then_some(if i % 2 == 0 { "churn" } else { "we\"ird" }),
                cgroup: (i % 5 == 0).then_some("/system.slice/x.service"),
                cgroup_id: (i % 4 != 0).then_some(next_of(i)),
                error: (i % 7 == 0).then(|| "ECONNRESET".to_string()),
                retrans: (i % 2 == 1).then_some(u32::try_from(i).unwrap()),
                srtt_us: (i % 6 == 1).then_some(u32::try_from(i * 3).unwrap()),
            };
            let mut stamps = Stamps { offset_ns: 1_764_460_000_000_000_000, day: (i128::MIN, String::new()) };
            let mut time = String::new();
            stamps.push_rfc3339(&mut time, t.ts_ns);
            let mut got = String::new();
            push_json_transition(&mut got, &mut stamps, &t, &ctx());
            assert_eq!(got, json_transition_by_serde(&time, &t, ctx()), "transition {i}");
        }
    }

    fn next_of(i: usize) -> u64 {
        (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn columns_are_padded_as_before() {
        let v4 = (IpAddr::from([127, 0, 0, 1]), 8080);
        let v6 = ("::1".parse::<IpAddr>().unwrap(), 443);
        let want = format!(
            "{:<7} {:<16} {:<47} {:<47} {} -> {}",
            42,
            "curl",
            "127.0.0.1:8080",
            "[::1]:443",
            kernel_state_name(2),
            kernel_state_name(1)
        );
        assert_eq!(transition_columns(42, "curl", v4, v6, 2, 1), want);
        // Wide and narrow values of every column, a name of multi-byte characters.
        for (pid, comm, local, old) in [
            (0, "", (IpAddr::from([0, 0, 0, 0]), 0), 7),
            (4_294_967_295, "sixteen-chars-xx", (IpAddr::from([255, 255, 255, 255]), 65535), 12),
            (1_234_567, "réseau-été", (IpAddr::from([10, 1, 22, 103]), 10), 4),
        ] {
            let want = format!(
                "{pid:<7} {comm:<16} {:<47} {:<47} {} -> {}",
                format!("{}:{}", local.0, local.1),
                "[::1]:443",
                kernel_state_name(old),
                kernel_state_name(1)
            );
            assert_eq!(transition_columns(pid, comm, local, v6, old, 1), want);
        }
        let want = format!(
            "{:<7} {:<16} {:<47} {:<47} {:>10} {:>10} {:>12} {}",
            1, "a", "[::1]:443", "127.0.0.1:8080", 5, 6, "0.125", "SYN_SENT"
        );
        assert_eq!(lifetime_columns(1, "a", v6, v4, (5, 6), "0.125", "SYN_SENT"), want);
    }
}
