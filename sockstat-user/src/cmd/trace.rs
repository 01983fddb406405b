//! `sockstat trace`: every TCP state transition, live, one line each (or one JSON object
//! per line). Loads its own instance of the program, so it works with or without an agent.
//! By default only transitions of the network namespace it runs in are shown, matching
//! what `ss` run in the same place would list; `--all-netns` shows every namespace.

use std::{
    io::{self, Write},
    net::IpAddr,
    time::Duration,
};

use serde::Serialize;
use sockstat_ebpf::AF_INET;
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    bpf::loader::{EbpfError, LoadOptions, Tracer},
    bpf::stream::{EventStream, StreamError, Transition, kernel_state_name},
    live::agent::own_netns,
    model::clock::monotonic_to_system,
    model::socket::endpoint,
    query::EventFilter,
    timeline::lifetime::{Lifetime, Tracker},
};

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("{0}")]
    Io(&'static str, #[source] io::Error),
    #[error(transparent)]
    Agent(#[from] crate::live::error::AgentError),
}

#[derive(Clone, Debug, Default)]
pub struct TraceOptions {
    pub json: bool,
    pub all_netns: bool,
    /// Stop after this many records (0: until SIGINT/SIGTERM).
    pub count: u64,
    /// One record per finished connection instead of one per transition.
    pub lifetimes: bool,
    /// The ss FILTER (expression and STATE-FILTER) records must pass.
    pub filter: EventFilter,
}

#[derive(Serialize)]
struct JsonTransition<'a> {
    time: String,
    ts_ns: u64,
    pid: u32,
    tid: u32,
    comm: &'a str,
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
}

/// Writes one transition. Time is UTC, RFC 3339 with nanoseconds in JSON and
/// HH:MM:SS.micro in text.
pub fn write_transition(out: &mut impl Write, t: &Transition, json: bool) -> io::Result<()> {
    let time = humantime::format_rfc3339_nanos(monotonic_to_system(t.ts_ns)).to_string();
    if json {
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
        };
        serde_json::to_writer(&mut *out, &j).map_err(io::Error::other)?;
        writeln!(out)
    } else {
        // "2026-11-25T12:03:05.123456789Z" -> "12:03:05.123456"
        let clock = time.get(11..26).unwrap_or(&time);
        writeln!(
            out,
            "{clock} {}",
            transition_columns(t.pid, &t.comm, (t.src, t.sport), (t.dst, t.dport), t.old, t.new)
        )
    }
}

/// The columns of a transition line after its time (`trace` and `history --transitions`):
/// `PID COMM LOCAL PEER OLD -> NEW`.
#[must_use]
pub fn transition_columns(pid: u32, comm: &str, local: (IpAddr, u16), peer: (IpAddr, u16), old: u8, new: u8) -> String {
    format!(
        "{pid:<7} {comm:<16} {:<47} {:<47} {} -> {}",
        endpoint(local.0, local.1),
        endpoint(peer.0, peer.1),
        kernel_state_name(old),
        kernel_state_name(new)
    )
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
    start: Option<String>,
    end: String,
    duration_ns: Option<u64>,
    path_names: String,
}

/// Writes one finished connection. Start and duration are `-` for a connection that
/// began before tracing did.
pub fn write_lifetime(out: &mut impl Write, l: &Lifetime, json: bool) -> io::Result<()> {
    let rfc = |ns| humantime::format_rfc3339_nanos(monotonic_to_system(ns)).to_string();
    let start = l.start_ns.map(rfc);
    if json {
        let j = JsonLifetime {
            life: l,
            start,
            end: rfc(l.end_ns),
            duration_ns: l.duration_ns(),
            path_names: l.path_text(),
        };
        serde_json::to_writer(&mut *out, &j).map_err(io::Error::other)?;
        return writeln!(out);
    }
    let clock = start.as_deref().and_then(|s| s.get(11..26)).unwrap_or("-");
    let duration = l.duration_ns().map_or_else(|| "-".to_string(), |d| format!("{:.3}", d as f64 / 1e6));
    let columns = lifetime_columns(
        l.pid,
        &l.comm,
        (l.src, l.sport),
        (l.dst, l.dport),
        (l.bytes_sent, l.bytes_received),
        &duration,
        &l.path_text(),
    );
    writeln!(out, "{clock:<15} {columns}")
}

/// The columns of a lifetime line after its start time (`trace --lifetimes` and
/// `history`): `PID COMM LOCAL PEER TX_BYTES RX_BYTES DURATION_MS PATH`.
#[must_use]
pub fn lifetime_columns(
    pid: u32,
    comm: &str,
    local: (IpAddr, u16),
    peer: (IpAddr, u16),
    (sent, received): (impl std::fmt::Display, impl std::fmt::Display),
    duration_ms: &str,
    path: &str,
) -> String {
    format!(
        "{pid:<7} {comm:<16} {:<47} {:<47} {sent:>10} {received:>10} {duration_ms:>12} {path}",
        endpoint(local.0, local.1),
        endpoint(peer.0, peer.1),
    )
}

/// Last complete tuple of each live socket, by cookie. tcp_set_state() releases the
/// local port before the CLOSE transition fires (net/ipv4/tcp.c: inet_put_port, then
/// inet_sk_state_store), so a CLOSE event carries port 0; the socket is the same (same
/// cookie), so its tuple is the one it had at its previous transition.
#[derive(Default)]
pub struct Tuples {
    live: std::collections::HashMap<u64, (IpAddr, u16, IpAddr, u16)>,
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
    let netns = if opts.all_netns { None } else { Some(own_netns()?) };
    let mut tracer = Tracer::load(LoadOptions::default())?;
    let ring = tracer.take_events().ok_or(EbpfError::MissingMap(sockstat_ebpf::EVENTS_MAP))?;
    let mut stream = EventStream::new(ring)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| TraceError::Io("installing SIGINT handler", e))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| TraceError::Io("installing SIGTERM handler", e))?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if !opts.json {
        if opts.lifetimes { write_lifetime_header(&mut out) } else { write_header(&mut out) }
            .map_err(|e| TraceError::Io("writing to stdout", e))?;
        out.flush().map_err(|e| TraceError::Io("writing to stdout", e))?;
    }
    eprintln!("sockstat trace: attached to sock:inet_sock_set_state; Ctrl-C to stop");
    let mut printed = 0u64;
    let mut tuples = Tuples::default();
    let mut lifetimes = Tracker::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut drain_tick = tokio::time::interval(Duration::from_millis(sockstat_ebpf::DRAIN_INTERVAL_MS));
    drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Returns whether to stop, and whether the ring may hold more than one drain took.
    let mut emit = |stream: &mut EventStream,
                    out: &mut io::BufWriter<io::StdoutLock<'_>>|
     -> Result<(bool, bool), TraceError> {
        let mut result = Ok(());
        let taken = stream.drain(|mut t| {
            if result.is_err() || netns.is_some_and(|ns| ns != t.netns) || (opts.count > 0 && printed >= opts.count) {
                return;
            }
            if opts.lifetimes {
                if let Some(l) = lifetimes.observe(&t)
                    && opts.filter.accepts(&l.as_socket(), &l.path)
                {
                    printed += 1;
                    result = write_lifetime(out, &l, opts.json);
                }
                return;
            }
            if t.accept {
                return;
            }
            tuples.complete(&mut t);
            if !opts.filter.accepts(&t.as_socket(), &[t.new]) {
                return;
            }
            printed += 1;
            result = write_transition(out, &t, opts.json);
        });
        let more = taken >= crate::bpf::stream::DRAIN_MAX;
        match result.and_then(|()| out.flush()) {
            Ok(()) => Ok((opts.count > 0 && printed >= opts.count, more)),
            // The reader went away (`| head`): stop quietly.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok((true, false)),
            Err(e) => Err(TraceError::Io("writing to stdout", e)),
        }
    };
    loop {
        tokio::select! {
            r = stream.readable() => {
                r?;
                if emit(&mut stream, &mut out)?.0 {
                    break;
                }
            }
            // The program wakes us only when the ring fills up: drain on a short timer.
            _ = drain_tick.tick() => {
                if emit(&mut stream, &mut out)?.0 {
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
    loop {
        let (stop, more) = emit(&mut stream, &mut out)?;
        if stop || !more {
            break;
        }
    }
    let lost = tracer.counters()?.lost;
    if lost > 0 || stream.malformed > 0 {
        eprintln!("sockstat trace: {lost} events lost in the kernel ring buffer, {} malformed", stream.malformed);
    }
    Ok(())
}
