//! `sockstat agent`: loads and attaches the eBPF program, starts the event stream, seeds
//! the table from a sock_diag dump, then applies events in ring order (those that arrived
//! during the dump included) and answers queries on its unix socket.
//!
//! One thread, one event loop: the ring buffer, the query channel, a loss check and the
//! signals are all `select!`ed here, so the table needs no lock. Connection tasks only
//! read requests and write responses.

use std::{
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
    diag::{DiagError, SockDiag},
    filter::Filter,
    ebpf::{EbpfError, KernelCounters, LoadOptions, Tracer},
    protocol::{self, MAX_REQUEST, Request, Response, Status},
    server::{self, AgentSocket, ServerError},
    socket::InetSocket,
    stream::{EventStream, StreamError},
    lifetime::Tracker,
    table::{self, KERNEL_STATES, Table},
    timeline::{Gap, Record, TimelineError, Writer, WriterConfig},
};

fn monotonic_ns() -> u64 {
    u64::try_from(crate::stream::monotonic_now().as_nanos()).unwrap_or(u64::MAX)
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

pub fn run(cfg: AgentConfig) -> Result<(), AgentError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AgentError::Io("starting the event loop", e))?;
    rt.block_on(serve(cfg))
}

/// Inode of this process's network namespace: events carry the same number.
pub fn own_netns() -> Result<u32, AgentError> {
    crate::socket::own_netns().map_err(|e| AgentError::Io("reading /proc/self/ns/net", e))
}

type Query = (Request, oneshot::Sender<Response>);

struct State {
    table: Table,
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
    let mut st = State {
        table: Table::new(Some(netns)),
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
        w.push(Record::Gap(Gap { start_ns: prev, end_ns: end, lost_kernel: 0, lost_userspace: 0, reason: "agent not running".into() }));
    }
    st.seed(dump, dump_ns, Some("seed"));
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
        seeded = st.table.len(),
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
            Some((req, reply)) = query_rx.recv() => {
                // Apply everything already in the ring first: a socket created before
                // the query was sent is visible in its answer.
                st.drain_all();
                let _ = reply.send(st.answer(req));
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
        let State { table, stream, timeline, lifetimes, netns, .. } = self;
        let n = stream.drain(|t| {
            if t.netns != *netns {
                return;
            }
            table.apply(&t);
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
        n
    }

    /// Applies everything the ring holds now.
    fn drain_all(&mut self) {
        while self.drain() >= crate::stream::DRAIN_MAX {}
    }

    /// Replaces the table with a dump; records the dump in the timeline when `kind` is
    /// given.
    fn seed(&mut self, dump: Vec<InetSocket>, mono_ns: u64, kind: Option<&'static str>) {
        if let (Some(w), Some(kind)) = (self.timeline.as_mut(), kind) {
            w.push(Record::Snapshot { mono_ns, kind, sockets: dump.clone() });
            self.last_checkpoint = Instant::now();
            self.snapshot_owed = false;
        }
        self.table.seed(dump);
        // Connections whose close was lost would stay open in the tracker forever.
        let table = &self.table;
        self.lifetimes.retain(|cookie| table.get(cookie).is_some());
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

    fn answer(&mut self, req: Request) -> Response {
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
                    table_size: self.table.len() as u64,
                    seed_ms: self.seed_ms,
                    timeline_committed: self.timeline.as_ref().map(|w| w.committed.load(std::sync::atomic::Ordering::Relaxed)),
                    timeline_dropped: self.timeline.as_ref().map(|w| w.dropped.load(std::sync::atomic::Ordering::Relaxed)),
                    accept_hook: self.tracer.accept_hook,
                    owners_iter: self.tracer.owners_iter,
                })
            }
            Request::Owners => match self.tracer.owners() {
                Ok(records) => Response::Owners(records.iter().map(owner_entry).collect()),
                Err(e) => Response::Error(format!("{e}: {}", error_chain(&e))),
            },
            Request::Tcp { netns, .. } if netns != self.netns => Response::OtherNamespace { agent: self.netns, client: netns },
            Request::Tcp { families, states, filter, .. } => match self.tcp(&families, states, filter.as_ref()) {
                Ok(s) => Response::Sockets(s),
                Err(e) => Response::Error(format!("{e}: {}", error_chain(&e))),
            },
        }
    }

    fn tcp(&mut self, families: &[u16], states: u32, filter: Option<&Filter>) -> Result<Vec<InetSocket>, DiagError> {
        let wanted = |s: &InetSocket| filter.is_none_or(|f| f.matches(s));
        let mut out = Vec::new();
        for &family in families {
            let mut part = self.table.snapshot_where(family, states, wanted);
            // Mini-sockets and sockets whose identity events cannot give: from the kernel.
            let mask = states & (KERNEL_STATES | table::TIMEWAIT_SUBSTATES);
            if mask != 0 {
                let dumped = self.diag.dump_inet(IPPROTO_TCP, family, mask)?;
                // Full FIN-WAIT-2 sockets are the table's; timewait ones in that sub-state
                // are not.
                part.extend(dumped.into_iter().filter(|s| (s.state != TcpState::FinWait2 as u8 || s.is_mini()) && wanted(s)));
                table::sort_like_dump(&mut part);
            }
            out.extend(part);
        }
        Ok(out)
    }
}

fn owner_entry(r: &sockstat_ebpf::OwnerRecord) -> protocol::OwnerEntry {
    // comm is NUL-padded; /proc/PID/stat shows it up to the first NUL.
    let len = r.comm.iter().position(|&b| b == 0).unwrap_or(r.comm.len());
    protocol::OwnerEntry {
        pid: r.pid,
        fd: r.fd,
        comm: String::from_utf8_lossy(&r.comm[..len]).into_owned(),
        inode: r.inode,
        cookie: r.cookie,
    }
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
            let _ = write(&mut stream, &Response::Error("permission denied: only root and the agent's user may query it".into())).await;
            return;
        }
        Err(e) => {
            warn!(error = %e, "SO_PEERCRED failed; dropping connection");
            return;
        }
    }
    let req = match tokio::time::timeout(Duration::from_secs(5), read_request(&mut stream)).await {
        Ok(Ok(req)) => req,
        Ok(Err(e)) => {
            let _ = write(&mut stream, &Response::Error(format!("bad request: {e}"))).await;
            return;
        }
        Err(_) => return,
    };
    let (tx, rx) = oneshot::channel();
    if queries.send((req, tx)).await.is_err() {
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
    Ok(postcard::from_bytes(&body)?)
}

async fn write(stream: &mut UnixStream, resp: &Response) -> Result<(), protocol::ProtocolError> {
    let bytes = protocol::encode(resp)?;
    stream.write_all(&bytes).await?;
    stream.shutdown().await?;
    Ok(())
}
