//! `sockstat agent`: loads and attaches the eBPF program, starts the event stream, seeds
//! the table from a sock_diag dump, then applies events in ring order (those that arrived
//! during the dump included) and answers queries on its unix socket.
//!
//! Every network namespace: the program sees the transitions of all of them and each
//! event names its namespace, so the table is partitioned by namespace
//! ([`Namespaces`](crate::live::table::Namespaces)). At start the agent seeds its own
//! namespace and every namespace it finds a handle to (/run/netns/*, /proc/*/ns/net); a
//! namespace first seen through an event is dumped then, its events held meanwhile and
//! replayed over the dump. A dump in another namespace runs on a short-lived thread that
//! `setns`'d into it (the agent holds no handle and no socket there, so it keeps no
//! namespace alive). A query names the client's namespace and is answered from that
//! namespace's table, with its SYN-SENT/SYN-RECV/TIME-WAIT rows dumped in that
//! namespace; a namespace queried but not tracked yet is seeded first (the client's
//! /proc/PID/ns/net is a handle to it). A namespace without a handle and without sockets
//! is gone and forgotten. The timeline and lifetimes record the agent's own namespace
//! only.
//!
//! One thread, one event loop: the ring buffer, the query channel, a loss check and the
//! signals are all `select!`ed here, so the table needs no lock. Connection tasks
//! (`server`) only read requests and write responses.
//!
//! This file: configuration, start-up and the event loop (drain the ring, apply events,
//! timers). The agent's state is split by concern, each piece in its own file with the
//! code that owns it: the tracked namespaces (`namespaces`), the timeline sink
//! (`sink`), loss accounting and resync (`loss`), answering queries (`answer`).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use sockstat_ebpf::{AF_INET, AF_INET6};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};
use tracing::{info, warn};

use crate::{
    bpf::loader::{EbpfError, KernelCounters, LoadOptions, Tracer},
    bpf::stream::{EventStream, StreamError},
    diag::{DiagError, SockDiag},
    live::{
        answer::{AgentInfo, Answer},
        loss::Loss,
        namespaces::NamespaceSet,
        server::{self, AgentSocket, Query, ServerError},
        sink::Sink,
    },
    model::socket::InetSocket,
    sys::netns::HandleError,
    timeline::{TimelineError, Writer, WriterConfig},
};

pub(super) fn monotonic_ns() -> u64 {
    u64::try_from(crate::bpf::stream::monotonic_now().as_nanos()).unwrap_or(u64::MAX)
}

/// Every TCP state, as an inet_diag state mask.
pub const ALL_STATES: u32 = 0xffff_ffff;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("sock_diag dump")]
    Diag(#[from] DiagError),
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    #[error("{0}")]
    Io(&'static str, #[source] std::io::Error),
    #[error(transparent)]
    Namespace(#[from] HandleError),
}

#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub socket: PathBuf,
    pub ringbuf_bytes: u32,
    /// Where to record the timeline; `None`: no timeline.
    pub timeline: Option<WriterConfig>,
}

pub fn run(cfg: AgentConfig) -> Result<(), AgentError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AgentError::Io("starting the event loop", e))?;
    rt.block_on(serve(cfg))
}

/// Inode of this process's network namespace: events carry the same number.
pub fn own_netns() -> Result<u32, AgentError> {
    crate::sys::netns::own_netns().map_err(|e| AgentError::Io("reading /proc/self/ns/net", e))
}

/// An error and its sources, on one line.
pub(super) fn error_text(e: &dyn std::error::Error) -> String {
    let chain = error_chain(e);
    if chain.is_empty() { e.to_string() } else { format!("{e}: {chain}") }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

/// The loaded program and the ring buffer it fills.
pub(super) struct Kernel {
    pub(super) stream: EventStream,
    pub(super) tracer: Tracer,
}

impl Kernel {
    pub(super) fn counters(&self) -> KernelCounters {
        self.tracer.counters().unwrap_or_default()
    }

    /// (kernel ring-buffer losses, undecodable records).
    pub(super) fn losses(&self) -> Result<(u64, u64), AgentError> {
        Ok((self.tracer.counters()?.lost, self.stream.malformed))
    }
}

/// Everything the event loop holds, by concern.
pub(super) struct State {
    /// The tracked namespaces: their tables, handles, and sock_diag at home.
    pub(super) spaces: NamespaceSet,
    pub(super) kernel: Kernel,
    /// Where the own namespace's transitions go besides the table.
    pub(super) sink: Sink,
    pub(super) loss: Loss,
    /// What answers say about the agent itself.
    pub(super) info: AgentInfo,
}

async fn serve(cfg: AgentConfig) -> Result<(), AgentError> {
    // Claim the socket path before touching BPF, so a second agent stops right here.
    let sock = AgentSocket::bind(&cfg.socket)?;
    let netns = own_netns()?;
    let timeline = cfg.timeline.clone().map(|t| Writer::start(t, netns)).transpose()?;
    let mut tracer = Tracer::load(LoadOptions { ringbuf_bytes: cfg.ringbuf_bytes })?;
    let ring = tracer.take_events().ok_or(EbpfError::MissingMap(sockstat_ebpf::EVENTS_MAP))?;
    // The stream is live from here: events queue in the ring while we dump.
    let stream = EventStream::new(ring)?;
    let mut diag = SockDiag::open()?;
    let started = Instant::now();
    let dump_ns = monotonic_ns();
    let dump = diag.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)?;
    let seed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let listener_inode = nix::sys::stat::fstat(&sock.listener).map(|st| st.st_ino).unwrap_or(0);
    let mut st = State {
        spaces: NamespaceSet::new(netns, diag),
        kernel: Kernel { stream, tracer },
        sink: Sink::new(timeline),
        loss: Loss::new(dump_ns),
        info: AgentInfo { listener_inode, pidns: crate::sys::netns::own_pidns().unwrap_or(0), started, seed_ms },
    };
    // The time the timeline's file went unwritten (no agent ran) is a gap too: what
    // happened then is unknown, and answers about it must say so.
    st.sink.mark_downtime(dump_ns);
    st.seed(dump, dump_ns, Some("seed"));
    // Every other namespace there is a handle to, each from its own dump; their events
    // wait in the ring meanwhile, like the own namespace's.
    st.spaces.seed_others();
    // Loss counters start at zero with the program; a loss during the dump above is a
    // loss like any other (the first check resyncs).
    st.loss.counted_from_zero();
    // Replay what arrived during the dump, in ring order, over the seed.
    st.drain_all();
    info!(
        socket = %sock.path().display(),
        netns,
        ringbuf_bytes = cfg.ringbuf_bytes,
        timeline = ?cfg.timeline.as_ref().map(|t| t.path.display().to_string()),
        accept_hook = st.kernel.tracer.accept_hook,
        seeded = st.spaces.tables.len(),
        namespaces = st.spaces.tables.counts().len(),
        seed_ms,
        "sockstat agent ready"
    );

    let (query_tx, mut query_rx) = mpsc::channel::<Query>(64);
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| AgentError::Io("installing SIGINT handler", e))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| AgentError::Io("installing SIGTERM handler", e))?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The program wakes us only when the ring fills up (KernelOffsets::wakeup_bytes).
    let mut drain_tick = tokio::time::interval(Duration::from_millis(sockstat_ebpf::DRAIN_INTERVAL_MS));
    drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            r = st.kernel.stream.readable() => {
                r?;
                st.drain();
            }
            conn = sock.listener.accept() => match conn {
                Ok((stream, _)) => {
                    tokio::spawn(server::connection(stream, query_tx.clone()));
                }
                Err(e) => warn!(error = %e, "accept on the agent socket failed"),
            },
            Some((req, peer, conn, reply)) = query_rx.recv() => {
                // Apply everything already in the ring first: a socket created before
                // the query was sent is visible in its answer.
                st.drain_all();
                match st.answer(req, peer, conn) {
                    Answer::Now(resp) => {
                        let _ = reply.send(*resp);
                    }
                    // Work that does not touch the table (an iterator read, a dump of other
                    // tables) runs off the event loop, which keeps draining the ring.
                    Answer::Later(job) => {
                        tokio::task::spawn_blocking(move || {
                            let _ = reply.send(job());
                        });
                    }
                }
            }
            _ = drain_tick.tick() => {
                st.drain();
            }
            _ = tick.tick() => {
                st.kernel.tracer.flush_log();
                st.sink.flush();
                // A failed dump (netlink hiccup, ENOMEM) must not end a long-running
                // agent: log it, and the next tick tries again.
                if let Err(e) = st.check_loss() {
                    warn!(error = %e, "loss check failed; retrying at the next tick");
                }
                if let Err(e) = st.checkpoint() {
                    warn!(error = %e, "timeline checkpoint failed; retrying at the next tick");
                }
                st.spaces.forget_gone();
            }
            _ = sigint.recv() => { info!("SIGINT: detaching and exiting"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: detaching and exiting"); break; }
        }
    }
    // Dropping `st` detaches the program and closes the maps; `sock` removes the socket.
    drop(st);
    drop(sock);
    Ok(())
}

impl State {
    /// Applies what the ring holds, up to `DRAIN_MAX` events; returns how many.
    pub(super) fn drain(&mut self) -> usize {
        let State { spaces, kernel, sink, .. } = self;
        let own = spaces.own;
        let now = monotonic_ns();
        let n = kernel.stream.drain(|t| {
            spaces.tables.apply(&t, now);
            // Lifetimes and the timeline are the agent's own namespace's.
            if t.netns != own {
                return;
            }
            sink.record(t);
        });
        if self.sink.batch_full() {
            self.sink.flush();
        }
        self.spaces.seed_waiting();
        n
    }

    /// Applies everything the ring holds now.
    pub(super) fn drain_all(&mut self) {
        while self.drain() >= crate::bpf::stream::DRAIN_MAX {}
    }

    /// Replaces the own namespace's table with a dump; records the dump in the timeline
    /// when `kind` is given.
    pub(super) fn seed(&mut self, dump: Vec<InetSocket>, mono_ns: u64, kind: Option<&'static str>) {
        if let Some(kind) = kind {
            self.sink.snapshot_of_seed(mono_ns, kind, &dump);
        }
        let own = self.spaces.own;
        self.spaces.tables.seed(own, dump, &[]);
        // Connections whose close was lost would stay open in the tracker forever.
        if let Some(table) = self.spaces.tables.get(own) {
            self.sink.keep_lifetimes(|cookie| table.get(cookie).is_some());
        }
        self.sink.flush();
    }
}
