//! `sockstat agent`: loads and attaches the eBPF program, starts the event stream, seeds
//! the table from a sock_diag dump, then applies events in ring order (those that arrived
//! during the dump included) and answers queries on its unix socket.
//!
//! Every network namespace: the program sees the transitions of all of them and each
//! event names its namespace, so the table is partitioned by namespace
//! ([`Namespaces`]). At start the agent seeds its own namespace and every namespace it
//! finds a handle to (/run/netns/*, /proc/*/ns/net); a namespace first seen through an
//! event is dumped then, its events held meanwhile and replayed over the dump. A dump in
//! another namespace runs on a short-lived thread that `setns`'d into it (the agent
//! holds no handle and no socket there, so it keeps no namespace alive). A query names
//! the client's namespace and is answered from that namespace's table, with its
//! SYN-SENT/SYN-RECV/TIME-WAIT rows dumped in that namespace; a namespace queried but
//! not tracked yet is seeded first (the client's /proc/PID/ns/net is a handle to it). A
//! namespace without a handle and without sockets is gone and forgotten. The timeline
//! and lifetimes record the agent's own namespace only.
//!
//! One thread, one event loop: the ring buffer, the query channel, a loss check and the
//! signals are all `select!`ed here, so the table needs no lock. Connection tasks only
//! read requests and write responses.

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use sockstat_ebpf::{AF_INET, AF_INET6, IPPROTO_TCP, TcpState};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
    signal::unix::{SignalKind, signal},
    sync::{mpsc, oneshot},
};
use tracing::{info, warn};

use crate::{
    bpf::loader::{EbpfError, KernelCounters, LoadOptions, Tracer},
    bpf::stream::{EventStream, StreamError},
    diag::{DiagError, SockDiag},
    filter::Filter,
    live::server::{self, AgentSocket, ServerError},
    live::table::{self, KERNEL_STATES, Namespaces},
    model::socket::InetSocket,
    sys::netns::{self, HandleError},
    timeline::lifetime::Tracker,
    timeline::{Gap, Record, TimelineError, Writer, WriterConfig},
    wire::protocol::NamespaceStatus,
    wire::protocol::{self, MAX_REQUEST, Request, Response, Status},
};

fn monotonic_ns() -> u64 {
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

/// A kernel snapshot goes into the timeline this often, so `--at` needs to replay at
/// most this much and retention can cut at a snapshot.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(600);
/// After a loss the timeline gets a fresh snapshot, but not more often than this: under
/// a sustained storm, writing one per loss would feed the overload that caused it. Until
/// then the gap stays open, and answers over it say they may be incomplete.
const SNAPSHOT_AFTER_LOSS_EVERY: Duration = Duration::from_secs(10);

/// A batch goes to the timeline writer when this many records are pending (or at the
/// next 100 ms tick).
const BATCH_ROWS: usize = 4096;

/// A namespace the agent could not dump is not asked again for this long (its events
/// are dropped meanwhile; a query from it tries again at once).
const UNREACHABLE_FOR: Duration = Duration::from_secs(5);
/// How often tracked namespaces without sockets are checked for a handle (one without
/// is gone, and forgotten).
const LIVENESS_EVERY: Duration = Duration::from_secs(2);

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

/// What a request gets: an answer now, or work to run off the event loop that makes it.
enum Answer {
    /// Boxed: a Response is large, a job is a pointer.
    Now(Box<Response>),
    Later(Box<dyn FnOnce() -> Response + Send>),
}

impl Answer {
    fn now(r: Response) -> Answer {
        Answer::Now(Box::new(r))
    }
}

/// A request, the pid of the process that sent it (SO_PEERCRED; a handle to its
/// namespace), the inode of the agent's end of the connection it came on, and where the
/// answer goes.
type Query = (Request, Option<u32>, u64, oneshot::Sender<Response>);

struct State {
    /// Inode of the agent's listening socket: its query connections are left out of the
    /// UNIX rows it dumps for a query.
    listener_inode: u64,
    /// Inode of the agent's pid namespace (`/proc/self/ns/pid`).
    pidns: u64,
    /// The live tables, one per network namespace.
    spaces: Namespaces,
    /// Last known handle (an nsfs path) of each namespace, checked again before use.
    handles: HashMap<u32, PathBuf>,
    last_liveness: Instant,
    /// sock_diag in the agent's own namespace.
    diag: SockDiag,
    stream: EventStream,
    tracer: Tracer,
    netns: u32,
    started: Instant,
    seed_ms: u64,
    resyncs: u64,
    /// Loss counters as of the last (re)seed: an increase means the table missed events.
    seen_lost: (u64, u64),
    timeline: Option<Writer>,
    lifetimes: Tracker,
    /// Timeline records dropped as of the last (re)seed.
    seen_dropped: u64,
    /// CLOCK_MONOTONIC ns of the last loss check that found nothing lost: a loss found
    /// later happened after it, so a gap starts there.
    clean_until_ns: u64,
    last_checkpoint: Instant,
    /// A loss happened since the last snapshot the timeline got.
    snapshot_owed: bool,
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
        listener_inode,
        pidns: crate::sys::netns::own_pidns().unwrap_or(0),
        spaces: Namespaces::new(netns),
        handles: HashMap::new(),
        last_liveness: Instant::now(),
        diag,
        stream,
        tracer,
        netns,
        started,
        seed_ms,
        resyncs: 0,
        seen_lost: (0, 0),
        timeline,
        lifetimes: Tracker::new(),
        seen_dropped: 0,
        clean_until_ns: dump_ns,
        last_checkpoint: Instant::now(),
        snapshot_owed: false,
    };
    // The time the timeline's file went unwritten (no agent ran) is a gap too: what
    // happened then is unknown, and answers about it must say so.
    if let Some(w) = st.timeline.as_mut()
        && let Some(prev) = w.previous_end_ns
    {
        let end = w.wall_ns(dump_ns);
        w.push(Record::Gap(Gap {
            start_ns: prev,
            end_ns: end,
            lost_kernel: 0,
            lost_userspace: 0,
            reason: "agent not running".into(),
        }));
    }
    st.seed(dump, dump_ns, Some("seed"));
    // Every other namespace there is a handle to, each from its own dump; their events
    // wait in the ring meanwhile, like the own namespace's.
    st.seed_others();
    // Loss counters start at zero with the program; a loss during the dump above is a
    // loss like any other (the first check resyncs).
    st.seen_lost = (0, 0);
    // Replay what arrived during the dump, in ring order, over the seed.
    st.drain_all();
    info!(
        socket = %sock.path().display(),
        netns,
        ringbuf_bytes = cfg.ringbuf_bytes,
        timeline = ?cfg.timeline.as_ref().map(|t| t.path.display().to_string()),
        accept_hook = st.tracer.accept_hook,
        seeded = st.spaces.len(),
        namespaces = st.spaces.counts().len(),
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
            r = st.stream.readable() => {
                r?;
                st.drain();
            }
            conn = sock.listener.accept() => match conn {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, query_tx.clone()));
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
                st.tracer.flush_log();
                st.flush_timeline();
                // A failed dump (netlink hiccup, ENOMEM) must not end a long-running
                // agent: log it, and the next tick tries again.
                if let Err(e) = st.check_loss() {
                    warn!(error = %e, "loss check failed; retrying at the next tick");
                }
                if let Err(e) = st.checkpoint() {
                    warn!(error = %e, "timeline checkpoint failed; retrying at the next tick");
                }
                st.forget_gone();
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
    fn drain(&mut self) -> usize {
        let State { spaces, stream, timeline, lifetimes, netns, .. } = self;
        let now = monotonic_ns();
        let n = stream.drain(|t| {
            spaces.apply(&t, now);
            // Lifetimes and the timeline are the agent's own namespace's.
            if t.netns != *netns {
                return;
            }
            let done = lifetimes.observe(&t);
            if let Some(w) = timeline.as_mut() {
                w.push(Record::Transition(t));
                if let Some(l) = done {
                    w.push(Record::Lifetime(l));
                }
            }
        });
        if self.timeline.as_ref().is_some_and(|w| w.pending() >= BATCH_ROWS) {
            self.flush_timeline();
        }
        self.seed_waiting();
        n
    }

    /// Seeds the namespaces first seen in the last drain: a dump of each, then the
    /// events held for it replayed over the dump (later ones are still in the ring).
    fn seed_waiting(&mut self) {
        for (ns, held) in self.spaces.take_waiting() {
            match self.in_namespace(ns, None, |d| d.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)) {
                Ok(dump) => {
                    info!(netns = ns, sockets = dump.len(), handle = ?self.handles.get(&ns), "tracking a network namespace first seen in an event");
                    self.spaces.seed(ns, dump, &held);
                }
                Err(e) => {
                    info!(netns = ns, error = %error_text(&e), "cannot dump a network namespace seen in an event; not tracking it (queries from it fall back to the kernel)");
                    self.spaces.mark_unreachable(ns, monotonic_ns() + duration_ns(UNREACHABLE_FOR));
                }
            }
        }
    }

    /// Seeds every namespace with a handle other than the agent's own (at start).
    fn seed_others(&mut self) {
        self.handles = netns::discover().into_iter().collect();
        let mut found: Vec<u32> = self.handles.keys().copied().filter(|&ns| ns != self.netns).collect();
        found.sort_unstable();
        for ns in found {
            match self.in_namespace(ns, None, |d| d.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)) {
                Ok(dump) => {
                    info!(netns = ns, sockets = dump.len(), handle = ?self.handles.get(&ns), "tracking a network namespace");
                    self.spaces.seed(ns, dump, &[]);
                }
                // It may have gone since it was found; its next event tries again.
                Err(e) => {
                    info!(netns = ns, error = %error_text(&e), "cannot dump a network namespace; not tracking it")
                }
            }
        }
    }

    /// A handle to namespace `ns`: the querying process's (`peer`), the last one known,
    /// or a fresh search of /run/netns and /proc.
    fn handle(&mut self, ns: u32, peer: Option<u32>) -> Result<(PathBuf, std::fs::File), HandleError> {
        if let Some(pid) = peer {
            let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
            if let Ok(f) = netns::open_checked(&path, ns) {
                self.handles.insert(ns, path.clone());
                return Ok((path, f));
            }
        }
        if let Some(path) = self.handles.get(&ns)
            && let Ok(f) = netns::open_checked(path, ns)
        {
            return Ok((path.clone(), f));
        }
        self.handles = netns::discover().into_iter().collect();
        let path = self.handles.get(&ns).ok_or(HandleError::NotFound(ns))?;
        let f = netns::open_checked(path, ns).map_err(|_| HandleError::NotFound(ns))?;
        Ok((path.clone(), f))
    }

    /// Runs `f` on a sock_diag socket of namespace `ns`: the agent's own, or a fresh one
    /// opened (and closed) by a thread that entered `ns`.
    fn in_namespace<T: Send>(
        &mut self,
        ns: u32,
        peer: Option<u32>,
        f: impl FnOnce(&mut SockDiag) -> Result<T, DiagError> + Send,
    ) -> Result<T, AgentError> {
        if ns == self.netns {
            return Ok(f(&mut self.diag)?);
        }
        let (path, file) = self.handle(ns, peer)?;
        Ok(netns::run_in(ns, (&path, &file), || SockDiag::open().and_then(|mut d| f(&mut d)))??)
    }

    /// Every LIVENESS_EVERY: a tracked namespace without sockets and without a handle is
    /// gone (a socket holds its namespace alive, so one with sockets is not): forget it,
    /// before its inode number is reused.
    fn forget_gone(&mut self) {
        if self.last_liveness.elapsed() < LIVENESS_EVERY {
            return;
        }
        self.last_liveness = Instant::now();
        self.spaces.expire_marks(monotonic_ns());
        let empty: Vec<u32> =
            self.spaces.counts().into_iter().filter(|&(ns, n)| n == 0 && ns != self.netns).map(|(ns, _)| ns).collect();
        let mut rescanned = false;
        for ns in empty {
            let known = self.handles.get(&ns).is_some_and(|p| netns::open_checked(p, ns).is_ok());
            if !known && !rescanned {
                self.handles = netns::discover().into_iter().collect();
                rescanned = true;
            }
            if !known && !self.handles.contains_key(&ns) && self.spaces.forget(ns) {
                info!(netns = ns, "network namespace gone (no handle, no sockets); no longer tracked");
            }
        }
    }

    /// Applies everything the ring holds now.
    fn drain_all(&mut self) {
        while self.drain() >= crate::bpf::stream::DRAIN_MAX {}
    }

    /// Replaces the table with a dump; records the dump in the timeline when `kind` is
    /// given.
    fn seed(&mut self, dump: Vec<InetSocket>, mono_ns: u64, kind: Option<&'static str>) {
        if let (Some(w), Some(kind)) = (self.timeline.as_mut(), kind) {
            w.push(Record::Snapshot { mono_ns, kind, sockets: dump.clone() });
            self.last_checkpoint = Instant::now();
            self.snapshot_owed = false;
        }
        let own = self.netns;
        self.spaces.seed(own, dump, &[]);
        // Connections whose close was lost would stay open in the tracker forever.
        if let Some(table) = self.spaces.get(own) {
            self.lifetimes.retain(|cookie| table.get(cookie).is_some());
        }
        self.flush_timeline();
    }

    fn flush_timeline(&mut self) {
        if let Some(w) = self.timeline.as_mut()
            && let Err(n) = w.flush()
        {
            warn!(records = n, "timeline writer is behind; records dropped (a gap and a resync follow)");
        }
    }

    /// A kernel snapshot in the timeline every CHECKPOINT_EVERY (not applied to the
    /// table, which is current).
    fn checkpoint(&mut self) -> Result<(), AgentError> {
        let due = if self.snapshot_owed { SNAPSHOT_AFTER_LOSS_EVERY } else { CHECKPOINT_EVERY };
        if self.timeline.is_none() || self.last_checkpoint.elapsed() < due {
            return Ok(());
        }
        let kind = if self.snapshot_owed { "resync" } else { "checkpoint" };
        self.snapshot_owed = false;
        self.last_checkpoint = Instant::now();
        let mono_ns = monotonic_ns();
        let dump = self.diag.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)?;
        if let Some(w) = self.timeline.as_mut() {
            w.push(Record::Snapshot { mono_ns, kind, sockets: dump });
        }
        self.flush_timeline();
        Ok(())
    }

    fn counters(&self) -> KernelCounters {
        self.tracer.counters().unwrap_or_default()
    }

    /// (kernel ring-buffer losses, undecodable records).
    fn losses(&self) -> Result<(u64, u64), AgentError> {
        Ok((self.tracer.counters()?.lost, self.stream.malformed))
    }

    /// After a loss the table (or the timeline) may be wrong in ways no later event
    /// repairs: mark the gap, re-dump, and record the dump.
    fn check_loss(&mut self) -> Result<(), AgentError> {
        let now = self.losses()?;
        let dropped = self.timeline.as_ref().map_or(0, |w| w.dropped.load(std::sync::atomic::Ordering::Relaxed));
        if now == self.seen_lost && dropped == self.seen_dropped {
            self.clean_until_ns = monotonic_ns();
            return Ok(());
        }
        // Events still in the ring from before the loss belong before the new dump:
        // applied after it, a lost close would let them bring a closed socket back.
        self.drain_all();
        let (lost_kernel, malformed) = (now.0 - self.seen_lost.0, now.1 - self.seen_lost.1);
        let lost_timeline = dropped - self.seen_dropped;
        let gap_end = monotonic_ns();
        if let Some(w) = self.timeline.as_mut() {
            let gap = Gap {
                start_ns: w.wall_ns(self.clean_until_ns),
                end_ns: w.wall_ns(gap_end),
                lost_kernel,
                lost_userspace: malformed + lost_timeline,
                reason: if lost_kernel > 0 { "kernel ring buffer full".into() } else { "userspace".into() },
            };
            w.push(Record::Gap(gap));
        }
        // The timeline gets a snapshot now unless it got one lately (then it is owed,
        // and `checkpoint` writes it when due).
        let snapshot_now = self.last_checkpoint.elapsed() >= SNAPSHOT_AFTER_LOSS_EVERY;
        let kind = snapshot_now.then_some("resync");
        self.snapshot_owed = !snapshot_now;
        if now != self.seen_lost {
            warn!(lost_kernel, malformed, lost_timeline, "events lost; resyncing the table from sock_diag");
            // Events still in the ring are newer than the loss; they are applied after
            // the new seed, in order, exactly as at start-up.
            let dump = self.diag.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)?;
            self.seed(dump, gap_end, kind);
            self.reseed_others();
            self.resyncs += 1;
        } else {
            // Only timeline records were dropped: the table is right; the timeline has a
            // gap, closed by the next snapshot.
            warn!(lost_timeline, "timeline writer behind; records dropped, gap marked");
            if snapshot_now {
                let dump = self.diag.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)?;
                if let Some(w) = self.timeline.as_mut() {
                    w.push(Record::Snapshot { mono_ns: gap_end, kind: "resync", sockets: dump });
                }
                self.last_checkpoint = Instant::now();
            }
        }
        self.seen_lost = now;
        self.seen_dropped = dropped;
        self.clean_until_ns = gap_end;
        self.drain_all();
        Ok(())
    }

    /// After a loss every namespace is dumped again; one that cannot be is no longer
    /// tracked (its table may be wrong, and nothing would repair it).
    fn reseed_others(&mut self) {
        for ns in self.spaces.others() {
            match self.in_namespace(ns, None, |d| d.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)) {
                Ok(dump) => self.spaces.seed(ns, dump, &[]),
                Err(e) => {
                    info!(netns = ns, error = %error_text(&e), "cannot resync a network namespace; no longer tracked");
                    self.spaces.mark_unreachable(ns, monotonic_ns() + duration_ns(UNREACHABLE_FOR));
                }
            }
        }
    }

    fn status_namespaces(&self) -> Vec<NamespaceStatus> {
        let mut names = netns::names();
        self.spaces
            .counts()
            .into_iter()
            .map(|(ns, n)| NamespaceStatus {
                netns: ns,
                name: names.remove(&ns),
                own: ns == self.netns,
                sockets: n as u64,
            })
            .collect()
    }

    fn answer(&mut self, req: Request, peer: Option<u32>, conn: u64) -> Answer {
        match req {
            Request::Dump { netns, spec } => {
                let listener = self.listener_inode;
                // One socket of the agent's in the namespace dumped (besides its own
                // long-lived one at home), as ss has one of its own there.
                let dump = move || crate::query::fetch::dump_tables(&mut crate::query::fetch::open_for(&spec)?, &spec);
                let finish = move |dumped: Result<crate::model::socket::Snapshot, AgentError>| match dumped {
                    Ok(mut snap) => {
                        without_query_connections(&mut snap.unix, listener, conn);
                        Response::Dump(snap)
                    }
                    Err(e @ AgentError::Namespace(_)) => Response::NotTracked { netns, reason: error_text(&e) },
                    Err(e) => Response::Error(error_text(&e)),
                };
                if netns == self.netns {
                    return Answer::Later(Box::new(move || finish(dump().map_err(AgentError::from))));
                }
                match self.handle(netns, peer) {
                    Ok((path, file)) => Answer::Later(Box::new(move || {
                        finish(
                            netns::run_in(netns, (&path, &file), dump)
                                .map_err(AgentError::from)
                                .and_then(|r| r.map_err(AgentError::from)),
                        )
                    })),
                    Err(e) => Answer::now(finish(Err(e.into()))),
                }
            }
            // The records carry pids of the initial pid namespace, as seen by an agent
            // that walks every task: a client that sees other pids walks /proc itself.
            Request::Owners { pidns } if pidns != self.pidns => Answer::now(Response::Unavailable {
                reason: format!("the client's pid namespace ({pidns}) is not the agent's ({})", self.pidns),
            }),
            Request::Owners { .. } => match self.tracer.owners_reader() {
                Ok(reader) => Answer::Later(Box::new(move || match crate::bpf::loader::read_owners(reader) {
                    Ok(records) => Response::Owners(records.iter().map(owner_entry).collect()),
                    Err(e) => Response::Unavailable { reason: error_text(&e) },
                })),
                Err(e) => Answer::now(Response::Unavailable { reason: error_text(&e) }),
            },
            other => Answer::now(self.answer_now(other, peer)),
        }
    }

    /// The requests answered from the table, on the event loop.
    fn answer_now(&mut self, req: Request, peer: Option<u32>) -> Response {
        match req {
            Request::Status => {
                let c = self.counters();
                Response::Status(Status {
                    pid: std::process::id(),
                    netns: self.netns,
                    uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    events_seen: c.seen,
                    events_received: self.stream.received,
                    events_lost_kernel: c.lost,
                    events_malformed: self.stream.malformed,
                    read_errors: c.read_errors,
                    resyncs: self.resyncs,
                    table_size: self.spaces.len() as u64,
                    namespaces: self.status_namespaces(),
                    seed_ms: self.seed_ms,
                    timeline_committed: self
                        .timeline
                        .as_ref()
                        .map(|w| w.committed.load(std::sync::atomic::Ordering::Relaxed)),
                    timeline_dropped: self
                        .timeline
                        .as_ref()
                        .map(|w| w.dropped.load(std::sync::atomic::Ordering::Relaxed)),
                    accept_hook: self.tracer.accept_hook,
                    owners_iter: self.tracer.owners_iter,
                })
            }
            Request::Tcp { netns, families, states, filter } => {
                // First query from a namespace not tracked (yet): track it from now on.
                if !self.spaces.is_tracked(netns) {
                    match self.in_namespace(netns, peer, |d| d.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)) {
                        Ok(dump) => {
                            info!(netns, sockets = dump.len(), handle = ?self.handles.get(&netns), "tracking a network namespace first seen in a query");
                            self.spaces.seed(netns, dump, &[]);
                            // What happened during the dump is in the ring: apply it.
                            self.drain_all();
                        }
                        Err(e) => return Response::NotTracked { netns, reason: error_text(&e) },
                    }
                }
                match self.tcp(netns, peer, &families, states, filter.as_ref()) {
                    Ok(s) => Response::Sockets(s),
                    // No way into the namespace for its mini-sockets: the client asks the
                    // kernel itself (auto) or reports why (agent).
                    Err(e @ AgentError::Namespace(_)) => Response::NotTracked { netns, reason: error_text(&e) },
                    Err(e) => Response::Error(error_text(&e)),
                }
            }
            Request::Owners { .. } | Request::Dump { .. } => {
                Response::Error("internal: answered off the event loop".into())
            }
        }
    }

    /// The TCP sockets of namespace `ns` (tracked) for a query: the table's, plus the
    /// states only a dump of that namespace lists, made there.
    fn tcp(
        &mut self,
        ns: u32,
        peer: Option<u32>,
        families: &[u16],
        states: u32,
        filter: Option<&Filter>,
    ) -> Result<Vec<InetSocket>, AgentError> {
        let wanted = |s: &InetSocket| filter.is_none_or(|f| f.matches(s));
        // Mini-sockets and sockets whose identity events cannot give: from the kernel.
        let mask = states & (KERNEL_STATES | table::TIMEWAIT_SUBSTATES);
        let walk_start = monotonic_ns();
        let mut dumped = if mask == 0 {
            Vec::new()
        } else {
            let fams = families.to_vec();
            self.in_namespace(ns, peer, move |d| {
                if fams.len() < 2 {
                    return fams.iter().map(|&family| d.dump_inet(IPPROTO_TCP, family, mask)).collect();
                }
                // Each family's dump walks the whole established hash in the kernel (it
                // is shared by both families): walk it for both at once, one thread
                // and one sock_diag socket each. Threads start in their creator's
                // namespace, which is the one asked about.
                std::thread::scope(|scope| {
                    let walks: Vec<_> = fams
                        .iter()
                        .map(|&family| scope.spawn(move || SockDiag::open()?.dump_inet(IPPROTO_TCP, family, mask)))
                        .collect();
                    walks
                        .into_iter()
                        .map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                        .collect()
                })
            })?
        }
        .into_iter();
        let Some(table) = self.spaces.get_mut(ns) else { return Err(HandleError::NotFound(ns).into()) };
        let mut out = Vec::new();
        for &family in families {
            let mut part = table.snapshot_where(family, states, wanted);
            if mask != 0 {
                // Full FIN-WAIT-2 sockets are the table's; timewait ones in that sub-state
                // are not.
                let kernel: Vec<InetSocket> = dumped
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| (s.state != TcpState::FinWait2 as u8 || s.is_mini()) && wanted(s))
                    .collect();
                merge_dumped(&mut part, kernel, |s| table.get(s.cookie).is_some_and(|e| e.since_ns >= walk_start));
                table::sort_like_dump(&mut part);
            }
            out.extend(part);
        }
        Ok(out)
    }
}

/// Adds the query-time dump's sockets to the table's. A tuple in both (a full socket in
/// the table, a mini socket in the dump) was moved by the kernel between the drain before
/// the query and the walk (a close handing it to a timewait socket, a connect
/// completing): the newer wins, the table's row if `after_walk_began` says its last
/// transition came after the walk began, else the dump's, so no socket shows twice.
fn merge_dumped(
    table_rows: &mut Vec<InetSocket>,
    dumped: Vec<InetSocket>,
    after_walk_began: impl Fn(&InetSocket) -> bool,
) {
    let tuple = |s: &InetSocket| (s.src, s.sport, s.dst, s.dport);
    let newer: std::collections::HashSet<_> = table_rows.iter().filter(|s| after_walk_began(s)).map(tuple).collect();
    let dumped_tuples: std::collections::HashSet<_> = dumped.iter().map(tuple).collect();
    table_rows.retain(|s| !dumped_tuples.contains(&tuple(s)) || newer.contains(&tuple(s)));
    table_rows.extend(dumped.into_iter().filter(|s| !newer.contains(&tuple(s))));
}

/// Leaves out the agent's query connections: the one this query came on (the agent's
/// end, inode `conn`, and the client's, its peer), and any other accepted on the agent's
/// socket (`listener`: an accepted end carries its listener's name), such as the
/// agent's end of a query that just finished and is being closed. They exist only
/// because questions are being asked; ss, which asks the kernel directly, has none.
fn without_query_connections(unix: &mut Vec<crate::model::socket::UnixSocket>, listener: u64, conn: u64) {
    let name = unix.iter().find(|s| listener != 0 && u64::from(s.inode) == listener).and_then(|s| s.name.clone());
    let accepted: std::collections::HashSet<u32> = unix
        .iter()
        .filter(|s| u64::from(s.inode) == conn || (u64::from(s.inode) != listener && name.is_some() && s.name == name))
        .map(|s| s.inode)
        .collect();
    unix.retain(|s| !accepted.contains(&s.inode) && !accepted.contains(&s.peer) && u64::from(s.peer) != conn);
}

fn owner_entry(r: &sockstat_ebpf::OwnerRecord) -> crate::model::owner::OwnerEntry {
    // comm is NUL-padded; /proc/PID/stat shows it up to the first NUL, and ss reads it
    // from there with `%[^)]`: up to the first `)`, nothing if it starts with one.
    let len = r.comm.iter().position(|&b| b == 0 || b == b')').unwrap_or(r.comm.len());
    crate::model::owner::OwnerEntry {
        pid: r.pid,
        fd: r.fd,
        comm: String::from_utf8_lossy(&r.comm[..len]).into_owned(),
        inode: r.inode,
        cookie: r.cookie,
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// An error and its sources, on one line.
fn error_text(e: &dyn std::error::Error) -> String {
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

/// Reads one request, forwards it to the event loop, writes the answer.
async fn connection(mut stream: UnixStream, queries: mpsc::Sender<Query>) {
    match server::peer_allowed(&stream) {
        Ok(true) => {}
        Ok(false) => {
            let _ = write(
                &mut stream,
                &Response::Error("permission denied: only root and the agent's user may query it".into()),
            )
            .await;
            return;
        }
        Err(e) => {
            warn!(error = %e, "SO_PEERCRED failed; dropping connection");
            return;
        }
    }
    let req = match tokio::time::timeout(Duration::from_secs(5), read_request(&mut stream)).await {
        Ok(Ok(req)) => req,
        // A client of another build: it treats this as "no agent" and works alone.
        Ok(Err(e @ protocol::ProtocolError::Version { .. })) => {
            let _ = write(
                &mut stream,
                &Response::Unavailable { reason: format!("{e}; restart the agent with the same sockstat") },
            )
            .await;
            return;
        }
        Ok(Err(e)) => {
            let _ = write(&mut stream, &Response::Error(format!("bad request: {e}"))).await;
            return;
        }
        Err(_) => return,
    };
    // The sender's pid, as a handle to the namespace it asks about.
    let peer = stream.peer_cred().ok().and_then(|c| c.pid()).and_then(|p| u32::try_from(p).ok()).filter(|&p| p > 0);
    let (tx, rx) = oneshot::channel();
    // The inode of this end of the connection: a dump the query asks for leaves the
    // query's own connection out.
    let conn = nix::sys::stat::fstat(&stream).map(|st| st.st_ino).unwrap_or(0);
    if queries.send((req, peer, conn, tx)).await.is_err() {
        return;
    }
    if let Ok(resp) = rx.await {
        let _ = write(&mut stream, &resp).await;
    }
}

async fn read_request(stream: &mut UnixStream) -> Result<Request, protocol::ProtocolError> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let mut body = vec![0u8; protocol::frame_len(header, MAX_REQUEST)?];
    stream.read_exact(&mut body).await?;
    protocol::decode(&body)
}

async fn write(stream: &mut UnixStream, resp: &Response) -> Result<(), protocol::ProtocolError> {
    let bytes = protocol::encode(resp)?;
    stream.write_all(&bytes).await?;
    stream.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::socket::UnixSocket;

    fn unix(inode: u32, peer: u32, name: Option<&str>, state: u8) -> UnixSocket {
        UnixSocket {
            kind: 1,
            state,
            inode,
            peer,
            name: name.map(|n| n.as_bytes().to_vec()),
            rqueue: 0,
            wqueue: 0,
            ext: None,
        }
    }

    #[test]
    fn a_tuple_moved_during_the_walk_shows_once() {
        let lo = "127.0.0.1".parse().unwrap();
        let sock = |cookie: u64, state: TcpState, sport: u16| InetSocket {
            cookie,
            ..InetSocket::tcp(2, state as u8, (lo, sport), (lo, 7004), 0)
        };
        // The table still has the full socket in FIN-WAIT-1 (its close is not drained
        // yet); the walk found the timewait socket that took its tuple over.
        let mut rows = vec![sock(1, TcpState::FinWait1, 57432), sock(2, TcpState::Established, 50000)];
        merge_dumped(&mut rows, vec![sock(9, TcpState::FinWait2, 57432)], |_| false);
        assert_eq!(
            rows.iter().map(|s| (s.cookie, s.state)).collect::<Vec<_>>(),
            [(2, TcpState::Established as u8), (9, TcpState::FinWait2 as u8)]
        );
        // A new connection on a timewait's tuple, seen after the walk: the table's wins.
        let mut rows = vec![sock(3, TcpState::Established, 57432)];
        merge_dumped(&mut rows, vec![sock(9, TcpState::TimeWait, 57432), sock(8, TcpState::TimeWait, 1)], |s| {
            s.cookie == 3
        });
        assert_eq!(rows.iter().map(|s| s.cookie).collect::<Vec<_>>(), [3, 8]);
    }

    #[test]
    fn owner_names_read_as_ss_reads_them() {
        let name = |comm: &[u8]| {
            let mut c = [0u8; 16];
            c[..comm.len()].copy_from_slice(comm);
            owner_entry(&sockstat_ebpf::OwnerRecord { pid: 1, fd: 3, inode: 7, cookie: 9, comm: c }).comm
        };
        assert_eq!(name(b"nginx"), "nginx");
        // /proc/PID/stat reads `1 ((sd-pam)) S`: ss's `%[^)]` stops at the first `)`.
        assert_eq!(name(b"(sd-pam)"), "(sd-pam");
        assert_eq!(name(b")x"), "");
        assert_eq!(name(b"exactly16bytes!!"), "exactly16bytes!!");
    }

    #[test]
    fn query_connections_are_left_out_and_nothing_else() {
        let (listen, estab) = (TcpState::Listen as u8, TcpState::Established as u8);
        let mut socks = vec![
            unix(10, 0, Some("/run/a.sock"), listen),
            // This query's connection: the agent's end and the client's.
            unix(11, 12, Some("/run/a.sock"), estab),
            unix(12, 11, None, estab),
            // The agent's end of a finished query, its client gone.
            unix(13, 0, Some("/run/a.sock"), estab),
            // Everything else stays, a connection to another listener included.
            unix(20, 0, Some("/run/b.sock"), listen),
            unix(21, 22, Some("/run/b.sock"), estab),
            unix(22, 21, None, estab),
        ];
        without_query_connections(&mut socks, 10, 11);
        assert_eq!(socks.iter().map(|s| s.inode).collect::<Vec<_>>(), [10, 20, 21, 22]);
        // Without a known listener, only this query's connection goes.
        let mut socks = vec![
            unix(11, 12, Some("/run/a.sock"), estab),
            unix(12, 11, None, estab),
            unix(13, 0, Some("/run/a.sock"), estab),
        ];
        without_query_connections(&mut socks, 0, 11);
        assert_eq!(socks.iter().map(|s| s.inode).collect::<Vec<_>>(), [13]);
    }
}
