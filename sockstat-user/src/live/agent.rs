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
//! is gone and forgotten. The timeline records every namespace: each connection row
//! names its namespace, and each snapshot holds the dumps of every tracked namespace
//! with sockets.
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
    bpf::loader::{EbpfError, LoadOptions, Tracer},
    bpf::reader::RingReader,
    diag::SockDiag,
    live::{
        answer::Answer,
        error::AgentError,
        exporter::{Exporter, ScrapeRequest},
        loss::Loss,
        metrics::{Connections, Shared, Sources},
        namespaces::NamespaceSet,
        server::{self, AgentSocket, Query},
        sink::Sink,
        state::{AgentInfo, KeptOwners, Kernel, State},
        table::ALL_STATES,
    },
    model::clock::monotonic_ns,
    timeline::{Writer, WriterConfig},
};

#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub socket: PathBuf,
    pub ringbuf_bytes: u32,
    /// Where to record the timeline; `None`: no timeline.
    pub timeline: Option<WriterConfig>,
    /// Where to serve Prometheus metrics (`/metrics`); `None`: nowhere.
    pub metrics: Option<std::net::SocketAddr>,
    /// Where to publish the timeline's records (`--nats`); `None`: nowhere.
    pub nats: Option<crate::fleet::FleetConfig>,
}

pub fn run(cfg: AgentConfig) -> Result<(), AgentError> {
    // Answers are made on blocking threads and freed on the loop's: with an arena per
    // thread, glibc would keep each thread's freed answers as its own reserve. Two
    // arenas, and freed memory handed back on the loop's tick (`trim_heap`).
    // An answer's copy of the rows (5 MiB at 100k sockets) is a mapping of its own,
    // unmapped when freed: kept in an arena, one answer's worth stayed in the agent's
    // memory (the last one is kept on purpose, for the next query, until the next trim:
    // `spare`). Smaller blocks (the tables' hash maps as they grow under churn) reuse the
    // heap rather than fresh pages the kernel zeroes (the threshold, set, no longer
    // follows the sizes freed).
    // glibc's settings: musl's allocator has none (the musl build runs queries only, see
    // `cmd::long_runs`).
    // SAFETY: mallopt only sets allocator parameters, before any other thread exists.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
    // Everything async runs on this thread (`block_on`): the event loop, the query
    // connections and the metrics server, so a query's request, answer and reply take no
    // hop between threads (answers had four: 150 us of the 1.3 ms a filtered query takes,
    // against 55 us). What grows with the table (copying and encoding rows, iterator
    // reads, dumps) runs on blocking threads; the ring is read by its own thread
    // (`bpf::reader`); a reply goes out in non-blocking writes, so a slow client holds
    // nothing but its own connection.
    // The event loop (this thread) ahead of the load it watches: starved of time slices
    // on a busy machine, it would fall behind the reader and events would pile up in
    // memory. Only root may raise it; it runs at the default priority otherwise.
    // SAFETY: setpriority on this thread's own id; no memory is passed.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, LOOP_NICE) };
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

async fn serve(cfg: AgentConfig) -> Result<(), AgentError> {
    // Claim the socket path before touching BPF, so a second agent stops right here.
    let sock = AgentSocket::bind(&cfg.socket)?;
    let netns = own_netns()?;
    let timeline = cfg
        .timeline
        .clone()
        .map(|t| Writer::start(WriterConfig { labels: crate::live::labels::system(), ..t }, netns))
        .transpose()?;
    // The export reads what the writer commits, on a thread of its own; it stops when
    // this returns.
    let _fleet = match (&cfg.nats, &cfg.timeline) {
        (Some(n), Some(t)) => Some(crate::fleet::publish::Publisher::start(n.clone(), t.path.clone())?),
        _ => None,
    };
    // Owners are kept between queries by an agent in the initial pid namespace only (see
    // live::owners): elsewhere the notes would run on system calls for nothing.
    let pidns = crate::sys::netns::own_pidns().unwrap_or(0);
    let mut tracer = Tracer::load(LoadOptions {
        ringbuf_bytes: cfg.ringbuf_bytes,
        owner_notes: pidns == crate::sys::netns::INITIAL_PIDNS,
    })?;
    let rings = tracer.take_events().ok_or(EbpfError::MissingMap(sockstat_ebpf::EVENTS_MAPS[0]))?;
    // The stream is live from here: the reader takes events out of the rings while we
    // dump, and they wait for the loop in memory.
    let stream = RingReader::start(rings, Duration::from_millis(sockstat_ebpf::DRAIN_INTERVAL_MS))?;
    // The metrics server binds before the seed, so a taken port stops the agent here;
    // scrapes wait for the event loop's snapshot, which it answers once it runs.
    let (scrape_tx, mut scrape_rx) = mpsc::channel::<ScrapeRequest>(4);
    let metrics = match cfg.metrics {
        Some(addr) => {
            let shared = Shared::new();
            let sources = Sources {
                shared: shared.clone(),
                ring: stream.fill(),
                timeline: cfg.timeline.as_ref().map(|t| t.path.clone()),
            };
            Some((Exporter::start(addr, scrape_tx.clone(), sources)?, shared))
        }
        None => None,
    };
    let mut diag = SockDiag::open()?;
    let started = Instant::now();
    let dump_ns = monotonic_ns();
    let dump = diag.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)?;
    let seed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let listener_inode = nix::sys::stat::fstat(&sock.listener).map(|st| st.st_ino).unwrap_or(0);
    let owners = KeptOwners::new(&mut tracer, pidns);
    let mut st = State {
        spaces: NamespaceSet::new(netns, diag),
        kernel: Kernel { stream, tracer, owners },
        sink: Sink::new(timeline),
        loss: Loss::new(dump_ns),
        info: AgentInfo { listener_inode, pidns, started, seed_ms, checks: Default::default() },
        conns: metrics.as_ref().map(|(_, shared)| Connections::new(shared.clone())),
    };
    // The time the timeline's file went unwritten (no agent ran) is a gap too: what
    // happened then is unknown, and answers about it must say so.
    st.sink.mark_downtime(dump_ns);
    // Every other namespace there is a handle to, each from its own dump; their events
    // wait in the ring meanwhile, like the own namespace's. The timeline's first
    // snapshot holds them all.
    let others = st.spaces.seed_others();
    st.spaces.tables.seed(netns, dump.clone(), &[]);
    st.seeded(Some(dump), others, dump_ns, Some("seed"));
    // Loss counters start at zero with the program; a loss during the dump above is a
    // loss like any other (the first check resyncs).
    st.loss.counted_from_zero();
    // Replay what arrived during the dump, in ring order, over the seed (some of it may
    // be older than the dump).
    st.replay_held()?;
    // Start-up parsed the kernel's BTF (twice: for the offsets and for the loader) and
    // made the seed dumps: freed now, but glibc keeps freed heap until told otherwise.
    trim_heap();
    info!(
        socket = %sock.path().display(),
        netns,
        ringbuf_bytes = cfg.ringbuf_bytes,
        timeline = ?cfg.timeline.as_ref().map(|t| t.path.display().to_string()),
        accept_hook = st.kernel.tracer.accept_hook,
        seeded = st.spaces.tables.len(),
        namespaces = st.spaces.tables.counts().len(),
        seed_ms,
        metrics = ?metrics.as_ref().map(|(e, _)| format!("http://{}/metrics", e.addr)),
        "sockstat agent ready"
    );
    let query_metrics = metrics.as_ref().map(|(_, shared)| shared.clone());

    let (query_tx, mut query_rx) = mpsc::channel::<Query>(64);
    let clients = std::sync::Arc::new(tokio::sync::Semaphore::new(server::MAX_CLIENTS));
    let answers = std::sync::Arc::new(tokio::sync::Semaphore::new(super::shared::ANSWERS_AT_ONCE));
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| AgentError::Io("installing SIGINT handler", e))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| AgentError::Io("installing SIGTERM handler", e))?;
    let mut last_trim = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            () = st.kernel.stream.readable() => {
                st.drain()?;
            }
            conn = sock.listener.accept() => match conn {
                Ok((stream, _)) => {
                    let permit = clients.clone().try_acquire_owned().ok();
                    tokio::spawn(server::connection(
                        stream,
                        query_tx.clone(),
                        permit,
                        answers.clone(),
                        query_metrics.clone(),
                    ));
                }
                Err(e) => warn!(error = %e, "accept on the agent socket failed"),
            },
            Some((req, peer, conn, reply)) = query_rx.recv() => {
                // Apply everything already in the ring first: a socket created before
                // the query was sent is visible in its answer.
                st.drain_all()?;
                match st.answer(req, peer, conn) {
                    Answer::Now(resp) => {
                        let _ = reply.send(crate::wire::protocol::encode(&*resp));
                    }
                    Answer::Encoded(frame) => {
                        let _ = reply.send(frame);
                    }
                    // Work that does not touch the table (rows copied from the ready answer,
                    // an iterator read, a dump of other tables) and its encoding run off the
                    // event loop.
                    Answer::Later(job) => {
                        tokio::task::spawn_blocking(move || {
                            let _ = reply.send(job());
                        });
                    }
                }
            }
            Some(reply) = scrape_rx.recv() => {
                // As for a status query: what the ring holds is counted first.
                st.drain_all()?;
                let _ = reply.try_send(st.metrics_snapshot());
            }
            _ = tick.tick() => {
                if !st.kernel.stream.alive() {
                    return Err(crate::bpf::reader::ReaderError::Stopped.into());
                }
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
                if last_trim.elapsed() >= TRIM_EVERY {
                    last_trim = Instant::now();
                    trim_heap();
                }
            }
            _ = sigint.recv() => { info!("SIGINT: detaching and exiting"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: detaching and exiting"); break; }
        }
    }
    // Dropping `st` detaches the program and closes the maps; `sock` removes the socket.
    drop(st);
    drop(sock);
    // Stops the metrics server (its scrapes now get 503: the receiver is gone). The
    // loop's sender, kept until here, left the receiver waiting when no server runs.
    drop(scrape_rx);
    drop(metrics);
    drop(scrape_tx);
    Ok(())
}

/// The event loop's nice value (the ring reader's is lower still).
const LOOP_NICE: libc::c_int = -5;

/// How often the loop hands freed heap back to the system.
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// Returns the allocator's free memory to the system: glibc keeps freed heap (answers
/// already sent, the start-up's BTF parse and dumps) until told otherwise.
fn trim_heap() {
    super::spare::release();
    super::shared::release();
    // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the system
    // (glibc's; musl's returns freed memory by itself).
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0)
    };
}
