//! The timeline's writer, in three stages so that the disk never holds up the event
//! loop: the agent's side buffers records and hands them, in chunks, to the aggregator
//! thread, which folds each socket's transitions into its one row (`assemble`) in memory
//! and, every [`COMMIT_EVERY`], hands what it has as one batch to the SQL thread, which
//! writes each batch as one SQLite transaction (the connections that closed, the ones
//! still open that changed, gap markers, snapshots, and, when asked, one row per
//! transition), checkpoints the write-ahead log between batches and applies the
//! retention limits. A batch is a few bytes per connection where the chunks it comes
//! from held a few records each: behind a disk that stalls for seconds, the batches
//! queue where the chunks would have overflowed.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use rusqlite::{Connection, OptionalExtension, Statement, params};
use rustc_hash::FxHashMap;
use sockstat_ebpf::TcpState;

use crate::{
    bpf::stream::Transition,
    model::socket::InetSocket,
    timeline::{
        Gap, LabelSource, Record, TimelineError,
        assemble::{Assembler, Sock, Task},
        codec::{self, ConnRow},
        dictionary::{cgroup_id, netns_id, process_id},
        schema, sql, unix_ns,
    },
};

#[derive(Clone, Debug)]
pub struct WriterConfig {
    pub path: PathBuf,
    /// Rows older than this are deleted (keeping the snapshot they need).
    pub retain_age: Duration,
    /// When the file grows past this, the oldest rows go first.
    pub retain_bytes: u64,
    /// Also one row per transition (and accept notice), besides the one per connection.
    pub transitions: bool,
    /// How long the writer gathers records into one transaction ([`COMMIT_EVERY`]).
    pub commit_every: Duration,
    /// Names of namespaces and paths of cgroups, for the dictionaries.
    pub labels: LabelSource,
}

impl WriterConfig {
    /// The agent's configuration: one transaction every [`COMMIT_EVERY`].
    pub fn new(path: PathBuf, retain_age: Duration, retain_bytes: u64, transitions: bool) -> WriterConfig {
        WriterConfig {
            path,
            retain_age,
            retain_bytes,
            transitions,
            commit_every: COMMIT_EVERY,
            labels: LabelSource(None),
        }
    }
}

/// Records per chunk the agent hands the writer thread.
pub const CHUNK_RECORDS: usize = 4096;

/// Emptied chunks the writer thread hands back to be filled again (a fresh one is about
/// 600 KiB the kernel must fault in and zero after each heap trim).
const SPARE_CHUNKS: usize = 2;

/// The agent's side: buffers records and hands full chunks to the writer thread.
pub struct Writer {
    pending: Vec<Record>,
    tx: Option<SyncSender<Vec<Record>>>,
    /// Chunks the writer thread emptied.
    spare: Receiver<Vec<Record>>,
    thread: Option<JoinHandle<()>>,
    /// Rows committed so far (shared with the writer thread): finished connections,
    /// transitions, gaps and snapshots, as `batches.rows` counts them.
    pub committed: Arc<AtomicU64>,
    /// Records dropped because the writer fell behind (counted as userspace losses).
    pub dropped: Arc<AtomicU64>,
    /// Batches that failed to commit (the error is logged by the thread).
    pub failed: Arc<AtomicU64>,
    /// Wall clock = CLOCK_MONOTONIC + this, for every record of this agent.
    pub offset_ns: i64,
    /// When the file was last written to by an earlier agent (the end of its last
    /// batch); the agent marks the time since as a gap (nothing was recorded).
    pub previous_end_ns: Option<i64>,
}

/// Nice value of the writer's threads (see `aggregate`).
const WRITER_NICE: i32 = -5;

/// Chunks queued for the aggregator before the agent starts dropping (and marking a
/// gap): it does no I/O, so it falls behind only if it lacks CPU.
const QUEUE_CHUNKS: usize = 256;

/// Batches queued for the SQL thread before the aggregator starts dropping them (and the
/// agent marks a gap): a minute of batches, enough for a disk that stalls for a while,
/// and at most [`QUEUE_ROWS`] rows in them (about 250 bytes each in memory: 10 s of the
/// highest churn these 2 cores make, as much memory as the agent's chunk queue).
const QUEUE_BATCHES: usize = 600;
const QUEUE_ROWS: u64 = 500_000;

/// Pages of write-ahead log after which the SQL thread copies it into the database, at
/// the end of a batch (SQLite's default is 1000: 4 MiB, an fsync every few batches
/// under churn).
const CHECKPOINT_PAGES: i64 = 8_192;

/// How long the writer gathers records into one transaction. A crash loses at most
/// this much (and what is queued); a connection that opens and closes within it costs
/// one row, written once.
pub const COMMIT_EVERY: Duration = Duration::from_millis(100);

impl Writer {
    /// Wall-clock ns for a CLOCK_MONOTONIC timestamp, as this writer stores it.
    pub fn wall_ns(&self, mono_ns: u64) -> i64 {
        wall(mono_ns, self.offset_ns)
    }

    pub fn start(cfg: WriterConfig, netns: u32) -> Result<Writer, TimelineError> {
        super::restrict(&cfg.path)?;
        // A corrupt file would fail every batch (or every read) later: found now, it is
        // moved aside and a new one made in its place.
        if super::integrity::move_aside_if_corrupt(&cfg.path)?.is_some() {
            super::restrict(&cfg.path)?;
        }
        let path = cfg.path.clone();
        let e = sql(&path);
        let mut conn = Connection::open(&path).map_err(&e)?;
        // A file of an older schema: its rows are laid out otherwise, and are not
        // converted (the sockstat that wrote it reads it); moved aside, as a corrupt one.
        if let Some(found) = schema::version(&conn, &path)?.filter(|v| *v < schema::SCHEMA_VERSION) {
            drop(conn);
            let to = super::integrity::move_aside(&path, &format!("v{found}"))?;
            tracing::warn!(
                path = %path.display(),
                moved_to = %to.display(),
                found,
                version = schema::SCHEMA_VERSION,
                "timeline of an older schema version: moved aside, starting a new one"
            );
            super::restrict(&path)?;
            conn = Connection::open(&path).map_err(&e)?;
        }
        schema::prepare(&conn, &path, netns)?;
        conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES).map_err(&e)?;
        let previous_end_ns: Option<i64> = conn
            .query_row("SELECT MAX(COALESCE(max_ts_ns, committed_ns)) FROM batches", [], |r| r.get(0))
            .map_err(&e)?;
        let offset_ns = crate::bpf::stream::realtime_offset_ns();
        let mut store = Store::new(conn, offset_ns, cfg.labels.clone());
        store.adopt_open().map_err(&e)?;
        let next_conn = next_rowid(&store.conn).map_err(&e)?;
        let next_snapshot: i64 =
            store.conn.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM snapshots", [], |r| r.get(0)).map_err(&e)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_CHUNKS);
        let (spare_tx, spare) = mpsc::sync_channel(SPARE_CHUNKS);
        let committed = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let counters = Counters {
            committed: committed.clone(),
            failed: failed.clone(),
            dropped: dropped.clone(),
            queued: Arc::new(AtomicU64::new(0)),
        };
        let mut agg = Aggregator::new(cfg.transitions, offset_ns, next_conn, next_snapshot);
        agg.spare = Some(spare_tx);
        let thread = std::thread::Builder::new()
            .name("sockstat-timeline".into())
            .spawn(move || aggregate(agg, store, &cfg, &rx, &counters))
            .map_err(TimelineError::Thread)?;
        Ok(Writer {
            pending: Vec::new(),
            tx: Some(tx),
            spare,
            thread: Some(thread),
            committed,
            dropped,
            failed,
            offset_ns,
            previous_end_ns,
        })
    }

    pub fn push(&mut self, r: Record) {
        self.pending.push(r);
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Hands the buffered records to the writer. Never blocks: if the writer is that far
    /// behind, the chunk is dropped and counted, and the caller records a gap.
    pub fn flush(&mut self) -> Result<(), u64> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK_RECORDS));
        let batch = std::mem::replace(&mut self.pending, next);
        let n = batch.len() as u64;
        match self.tx.as_ref().map(|tx| tx.try_send(batch)) {
            Some(Ok(())) => Ok(()),
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => {
                self.dropped.fetch_add(n, Ordering::Relaxed);
                Err(n)
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.flush();
        // Closing the channel ends the aggregator once it has handed on what it holds,
        // and the SQL thread once it has written that.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn wall(mono_ns: u64, offset_ns: i64) -> i64 {
    i64::try_from(mono_ns).unwrap_or(i64::MAX).saturating_add(offset_ns)
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn monotonic_ns() -> u64 {
    u64::try_from(crate::model::clock::monotonic_now().as_nanos()).unwrap_or(u64::MAX)
}

fn nice_thread() {
    // Under a connection storm the traced processes compete for every core; a writer
    // with only its fair share falls behind and records are dropped (as gaps). Losing
    // the record costs more than the CPU, so the writer runs at a higher priority.
    // SAFETY: gettid has no preconditions; setpriority on our own thread id. Without
    // CAP_SYS_NICE it fails and the default priority stays.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid().cast_unsigned(), WRITER_NICE) } != 0 {
        tracing::debug!("timeline writer keeps the default priority");
    }
}

#[derive(Clone)]
struct Counters {
    committed: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    /// Rows (and snapshot sockets) in batches handed to the SQL thread, not yet written.
    queued: Arc<AtomicU64>,
}

/// What a batch writes, in order.
enum Op {
    /// A socket that closed (or was given up), with the rowid it gets.
    Row(Box<Sock>, i64),
    /// A socket still open that changed: its `open_connections` row.
    Store(Box<Sock>),
    Gap(Gap),
    Snapshot {
        id: i64,
        mono_ns: u64,
        kind: &'static str,
        first_conn: i64,
        timewait: bool,
        /// (network namespace inode, socket), in cookie order.
        sockets: Vec<(u32, InetSocket)>,
        scope: Scope,
    },
    Transition(Box<Transition>),
}

/// What namespaces a snapshot stands for.
enum Scope {
    /// Every one but those deferred to parts of their own (inodes).
    All(Vec<u32>),
    /// Only `netns` (inode), deferred by the checkpoint with id `round`.
    Part { netns: u32, round: Option<i64> },
}

/// One transaction's worth, from the aggregator to the SQL thread.
#[derive(Default)]
struct Batch {
    ops: Vec<Op>,
    /// Rows it writes, snapshot sockets included.
    rows: u64,
    /// Records it came from (counted as dropped if it is not written).
    records: u64,
    /// Time range of the events it took in (wall ns).
    events: Option<(i64, i64)>,
}

fn widen(range: &mut Option<(i64, i64)>, v: i64) {
    *range = Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
}

/// How far back a checkpoint needs every close recorded to leave its TIME-WAIT sockets
/// out: their lifetime (TCP_TIMEWAIT_LEN), and a second.
const TIMEWAIT_REBUILT_FROM_NS: u64 = crate::model::tcp::TIME_WAIT_NS as u64 + 1_000_000_000;

/// The aggregator's state: the sockets in progress and the batch being gathered. It
/// assigns the rowids and snapshot ids the SQL thread writes, so a batch holds all a
/// replay needs (which rows come before a snapshot, which cross it) before it is written.
struct Aggregator {
    asm: Assembler,
    transitions: bool,
    offset_ns: i64,
    next_conn: i64,
    next_snapshot: i64,
    batch: Batch,
    /// CLOCK_MONOTONIC ns of the first snapshot taken (the seed's).
    seeded_ns: Option<u64>,
    /// CLOCK_MONOTONIC ns of the last trouble: a gap, a batch not written, a chunk
    /// dropped.
    trouble_ns: u64,
    /// The id of the checkpoint whose deferred namespaces' parts are coming.
    round: Option<i64>,
    /// Where emptied chunks go back to the agent.
    spare: Option<SyncSender<Vec<Record>>>,
}

impl Aggregator {
    fn new(transitions: bool, offset_ns: i64, next_conn: i64, next_snapshot: i64) -> Aggregator {
        Aggregator {
            asm: Assembler::default(),
            transitions,
            offset_ns,
            next_conn,
            next_snapshot,
            batch: Batch::default(),
            seeded_ns: None,
            trouble_ns: 0,
            round: None,
            spare: None,
        }
    }

    /// Something went missing now: checkpoints keep their TIME-WAIT sockets for a while.
    fn trouble(&mut self) {
        self.trouble_ns = self.trouble_ns.max(monotonic_ns());
    }

    /// Whether a checkpoint dumped at `mono_ns` may leave its TIME-WAIT sockets out: the
    /// timeline holds every close of the TIME-WAIT lifetime before it (a snapshot was
    /// taken that long ago and no trouble came since), and a replay rebuilds them from
    /// those closes.
    fn timewait_recorded(&self, mono_ns: u64) -> bool {
        let since = mono_ns.saturating_sub(TIMEWAIT_REBUILT_FROM_NS);
        self.seeded_ns.is_some_and(|s| s <= since) && self.trouble_ns <= since
    }

    /// Takes records in; returns whether there was one other than a transition.
    fn take(&mut self, mut records: Vec<Record>) -> bool {
        self.batch.records += records.len() as u64;
        let mut other = false;
        for r in records.drain(..) {
            match r {
                Record::Transition(t) => {
                    widen(&mut self.batch.events, wall(t.ts_ns, self.offset_ns));
                    self.asm.observe(&t);
                    if self.transitions {
                        self.batch.ops.push(Op::Transition(Box::new(t)));
                    }
                    continue;
                }
                Record::Gap(g) => {
                    self.trouble();
                    self.batch.ops.push(Op::Gap(g));
                }
                Record::Snapshot { mono_ns, kind, spaces } => {
                    self.round = None;
                    self.snapshot(mono_ns, kind, spaces, Scope::All(Vec::new()));
                }
                Record::Checkpoint { mono_ns, spaces, deferred } => {
                    let id = self.snapshot(mono_ns, "checkpoint", spaces, Scope::All(deferred));
                    self.round = Some(id);
                }
                Record::CheckpointPart { mono_ns, netns, sockets } => {
                    let scope = Scope::Part { netns, round: self.round };
                    self.snapshot(mono_ns, "checkpoint", vec![(netns, sockets)], scope);
                }
                Record::Forget(cookies) => self.asm.forget(&cookies),
            }
            other = true;
        }
        if let Some(spare) = &self.spare {
            // Full: the agent has spares enough, and this one is freed.
            let _ = spare.try_send(records);
        }
        other
    }

    /// Takes a snapshot in; returns its id.
    fn snapshot(&mut self, mono_ns: u64, kind: &'static str, spaces: Vec<(u32, Vec<InetSocket>)>, scope: Scope) -> i64 {
        // Rows of the sockets that closed before the dump come before the snapshot's
        // `first_conn`; every open one crosses it.
        self.take_done();
        // TIME-WAIT sockets are most of a dump under churn; a periodic one leaves them
        // to the replay when the timeline has the closes that made them.
        let timewait = kind != "checkpoint" || !self.timewait_recorded(mono_ns);
        self.seeded_ns.get_or_insert(mono_ns);
        let mut sockets: Vec<(u32, InetSocket)> = spaces
            .into_iter()
            .flat_map(|(ns, socks)| socks.into_iter().map(move |s| (ns, s)))
            .filter(|(_, s)| timewait || !(s.timer == 3 || s.state == TcpState::TimeWait as u8))
            .collect();
        // In key order: appended, the B-tree's pages fill up.
        sockets.sort_unstable_by_key(|(_, s)| s.cookie);
        let id = self.next_snapshot;
        self.next_snapshot += 1;
        self.batch.rows += sockets.len() as u64 + 1;
        self.batch.ops.push(Op::Snapshot { id, mono_ns, kind, first_conn: self.next_conn, timewait, sockets, scope });
        self.asm.snapshot_taken(id, mono_ns);
        id
    }

    /// Moves the sockets that closed (or were given up) into the batch, with rowids.
    fn take_done(&mut self) {
        for s in self.asm.take_done() {
            self.batch.ops.push(Op::Row(Box::new(s), self.next_conn));
            self.next_conn += 1;
        }
    }

    /// The batch gathered: the closed sockets, then the open ones that changed.
    fn finish(&mut self) -> Batch {
        self.take_done();
        let ops = &mut self.batch.ops;
        let _ = self.asm.store_dirty(|s| {
            ops.push(Op::Store(Box::new(s.clone())));
            Ok::<(), ()>(())
        });
        let mut b = std::mem::take(&mut self.batch);
        b.rows += b.ops.len() as u64;
        b
    }
}

/// The aggregator thread: gathers chunks into batches, [`COMMIT_EVERY`] (a gap, a
/// snapshot or a forgotten socket at once: they mark what answers must say), and hands
/// them to the SQL thread it runs.
fn aggregate(mut agg: Aggregator, store: Store, cfg: &WriterConfig, rx: &Receiver<Vec<Record>>, counters: &Counters) {
    nice_thread();
    let (btx, brx) = mpsc::sync_channel::<Batch>(QUEUE_BATCHES);
    let sql_cfg = cfg.clone();
    let sql_counters = counters.clone();
    let writer = match std::thread::Builder::new()
        .name("sockstat-tl-sql".into())
        .spawn(move || write_batches(store, &sql_cfg, &brx, &sql_counters))
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "timeline SQL thread not started: nothing is recorded");
            return;
        }
    };
    let (mut dropped, mut failed) = (0, 0);
    let mut open = true;
    while open {
        let Ok(first) = rx.recv() else { break };
        let started = Instant::now();
        // Chunks dropped or batches not written since: records are missing (the agent's
        // gap marker follows), and open rows may be stale.
        let (now_dropped, now_failed) =
            (counters.dropped.load(Ordering::Relaxed), counters.failed.load(Ordering::Relaxed));
        if (now_dropped, now_failed) != (dropped, failed) {
            if now_failed != failed {
                agg.asm.restore_all();
            }
            (dropped, failed) = (now_dropped, now_failed);
            agg.trouble();
        }
        let mut other = agg.take(first);
        while !other {
            let Some(left) = cfg.commit_every.checked_sub(started.elapsed()) else { break };
            match rx.recv_timeout(left) {
                Ok(more) => other = agg.take(more),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let batch = agg.finish();
        let rows = batch.rows;
        let sent = if counters.queued.load(Ordering::Relaxed) + rows > QUEUE_ROWS {
            Err(batch)
        } else {
            counters.queued.fetch_add(rows, Ordering::Relaxed);
            btx.try_send(batch).map_err(|e| {
                counters.queued.fetch_sub(rows, Ordering::Relaxed);
                match e {
                    TrySendError::Full(b) | TrySendError::Disconnected(b) => b,
                }
            })
        };
        if let Err(b) = sent {
            counters.dropped.fetch_add(b.records, Ordering::Relaxed);
            dropped = counters.dropped.load(Ordering::Relaxed);
            agg.asm.restore_all();
            agg.trouble();
        }
    }
    drop(btx);
    let _ = writer.join();
}

/// The SQL thread: one transaction per batch; retention every 10 s.
fn write_batches(mut store: Store, cfg: &WriterConfig, rx: &Receiver<Batch>, counters: &Counters) {
    nice_thread();
    let mut last_retention = Instant::now();
    // The gap markers of batches that failed (merged into one): written with the next
    // batch that can be, so that every record lost is in a gap once there is room.
    let mut unwritten: Option<Gap> = None;
    // Records of failed batches that no gap written since counts (the agent's gap
    // markers come later than the failures they count), and why the last one failed:
    // the gaps that count them say so.
    let mut unexplained = 0u64;
    let mut last_error = String::new();
    // Batches failed in a row.
    let mut failing = 0u64;
    while let Ok(mut batch) = rx.recv() {
        let (records, rows) = (batch.records, batch.rows);
        if let Some(g) = unwritten.take() {
            batch.ops.insert(0, Op::Gap(g));
        }
        let mut gaps = Vec::new();
        for op in &mut batch.ops {
            if let Op::Gap(g) = op {
                if unexplained > 0 && !g.reason.contains(NOT_WRITTEN) {
                    g.reason = format!("{}; {NOT_WRITTEN}: {last_error}", g.reason);
                }
                gaps.push(g.clone());
            }
        }
        let result = store.write(batch);
        counters.queued.fetch_sub(rows, Ordering::Relaxed);
        match result {
            Ok(rows) => {
                counters.committed.fetch_add(rows, Ordering::Relaxed);
                unexplained = unexplained.saturating_sub(gaps.iter().map(|g| g.lost_userspace).sum());
                if failing > 0 {
                    tracing::warn!(failed = failing, "timeline batches written again; what was lost is a gap");
                    failing = 0;
                }
            }
            Err(e) => {
                store.abort();
                counters.failed.fetch_add(1, Ordering::Relaxed);
                // Lost records: counted like a full queue, so the agent marks a gap.
                counters.dropped.fetch_add(records, Ordering::Relaxed);
                unwritten = merge_gaps(gaps);
                // A full disk fails every batch (ten a second) until it has room again:
                // the first failure is logged, the rest are counted (`status`).
                if failing == 0 {
                    tracing::error!(error = %e, path = %cfg.path.display(), "timeline batch not written");
                }
                failing += 1;
                unexplained += records;
                last_error = e.to_string();
            }
        }
        if last_retention.elapsed() > Duration::from_secs(10) {
            last_retention = Instant::now();
            if let Err(e) = retain(&store.conn, cfg) {
                tracing::warn!(error = %e, "timeline retention failed");
            }
        }
    }
}

/// How a gap's reason says that records were lost because a batch failed.
const NOT_WRITTEN: &str = "timeline not written";

/// One gap over `gaps` (the markers of a batch that was not written), with the counts of
/// all and the first one's reason.
fn merge_gaps(gaps: Vec<Gap>) -> Option<Gap> {
    gaps.into_iter().reduce(|a, b| Gap {
        start_ns: a.start_ns.min(b.start_ns),
        end_ns: a.end_ns.max(b.end_ns),
        lost_kernel: a.lost_kernel + b.lost_kernel,
        lost_userspace: a.lost_userspace + b.lost_userspace,
        reason: a.reason,
    })
}

/// The batch row being written.
#[derive(Default)]
struct BatchRow {
    id: i64,
    rows: u64,
    base_ns: Option<i64>,
    cookie_base: Option<i64>,
    conns: Option<(i64, i64)>,
    max_end_ns: Option<i64>,
    transitions: Option<(i64, i64)>,
}

/// The SQL thread's state: the file and the dictionaries.
struct Store {
    conn: Connection,
    offset_ns: i64,
    processes: FxHashMap<Task, i64>,
    netns: FxHashMap<u32, i64>,
    cgroups: FxHashMap<u64, i64>,
    labels: LabelSource,
    batch: BatchRow,
    /// The connection rows of the batch being written, packed (`codec`).
    block: Option<codec::BlockWriter>,
}

const STORE_OPEN: &str = "INSERT OR REPLACE INTO open_connections (cookie, src, sport, dst, dport, end_ns, duration_ns,
    path, steps, process, owner, bytes_sent, bytes_received, netns, cgroup, error, retrans, srtt_us, crossing)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";

/// Dictionary ids of a row: `processes.id`, `netns.id`, `cgroups.id`.
type Ids = (Option<i64>, Option<i64>, Option<i64>);

/// Binds the columns `connections` and `open_connections` share, as ?1..?18; `cookie`
/// and `end` as the table keeps them (offsets, or absolute).
fn bind_sock(st: &mut Statement<'_>, s: &Sock, (cookie, end): (i64, i64), ids: Ids) -> rusqlite::Result<()> {
    let (src, dst) = (codec::addr_bytes(&s.src), codec::addr_bytes(&s.dst));
    st.raw_bind_parameter(1, cookie)?;
    st.raw_bind_parameter(2, src.as_ref())?;
    st.raw_bind_parameter(3, s.sport)?;
    st.raw_bind_parameter(4, dst.as_ref())?;
    st.raw_bind_parameter(5, s.dport)?;
    st.raw_bind_parameter(6, end)?;
    st.raw_bind_parameter(7, int(s.last_ns.saturating_sub(s.first_ns)))?;
    st.raw_bind_parameter(8, s.path.to_i64())?;
    st.raw_bind_parameter(9, s.steps_blob())?;
    st.raw_bind_parameter(10, ids.0)?;
    st.raw_bind_parameter(11, s.owner_code())?;
    st.raw_bind_parameter(12, int(s.bytes_sent))?;
    st.raw_bind_parameter(13, int(s.bytes_received))?;
    st.raw_bind_parameter(14, ids.1)?;
    st.raw_bind_parameter(15, ids.2)?;
    let (error, retrans, srtt_us) = s.health();
    st.raw_bind_parameter(16, error)?;
    st.raw_bind_parameter(17, retrans)?;
    st.raw_bind_parameter(18, srtt_us)
}

impl Store {
    fn new(conn: Connection, offset_ns: i64, labels: LabelSource) -> Store {
        Store {
            conn,
            offset_ns,
            processes: FxHashMap::default(),
            netns: FxHashMap::default(),
            cgroups: FxHashMap::default(),
            labels,
            batch: BatchRow::default(),
            block: None,
        }
    }

    /// The dictionary ids of `s`'s owner, namespace and cgroup, added if new.
    fn ids(&mut self, s: &Sock) -> rusqlite::Result<Ids> {
        Ok((
            process_id(&self.conn, &mut self.processes, &s.owner)?,
            netns_id(&self.conn, &mut self.netns, &self.labels, s.netns)?,
            cgroup_id(&self.conn, &mut self.cgroups, &self.labels, s.cgroup_id)?,
        ))
    }

    /// Moves what an earlier agent left in `open_connections` to `connections`, as rows
    /// not seen to close, in one batch of their own.
    fn adopt_open(&mut self) -> rusqlite::Result<()> {
        let open: Vec<(ConnRow, Option<i64>)> = self
            .conn
            .prepare(
                "SELECT cookie, end_ns, duration_ns, src, sport, dst, dport, path, steps, process, bytes_sent,
                    bytes_received, netns, cgroup, error, retrans, srtt_us, crossing
                 FROM open_connections ORDER BY end_ns, cookie",
            )?
            .query_map([], |r| {
                let (src, dst): (Vec<u8>, Vec<u8>) = (r.get(3)?, r.get(5)?);
                let row = ConnRow {
                    cookie: r.get::<_, i64>(0)?.cast_unsigned(),
                    end_ns: r.get(1)?,
                    duration_ns: r.get::<_, i64>(2)?.max(0).cast_unsigned(),
                    src: codec::addr_from(&src),
                    sport: r.get(4)?,
                    dst: codec::addr_from(&dst),
                    dport: r.get(6)?,
                    path: codec::Path::from_i64(r.get(7)?),
                    steps: r.get(8)?,
                    process: r.get(9)?,
                    // Not seen to close.
                    owner: None,
                    bytes_sent: r.get::<_, i64>(10)?.max(0).cast_unsigned(),
                    bytes_received: r.get::<_, i64>(11)?.max(0).cast_unsigned(),
                    netns: r.get(12)?,
                    cgroup: r.get(13)?,
                    error: r.get(14)?,
                    retrans: r.get(15)?,
                    srtt_us: r.get(16)?,
                };
                Ok((row, r.get(17)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(first_row) = open.first() else { return Ok(()) };
        let (base, cookie_base) = (first_row.0.end_ns, first_row.0.cookie);
        self.begin()?;
        let first = next_rowid(&self.conn)?;
        let mut block = codec::BlockWriter::new(cookie_base, base);
        for (i, (row, crossing)) in (0i64..).zip(&open) {
            block.push(row);
            // Each was open at every snapshot from its first transition on.
            let start = row.end_ns.saturating_sub(i64::try_from(row.duration_ns).unwrap_or(i64::MAX));
            let snapshot: Option<i64> = match crossing {
                Some(s) => Some(*s),
                None => {
                    self.conn.query_row("SELECT MIN(id) FROM snapshots WHERE ts_ns >= ?1", [start], |r| r.get(0))?
                }
            };
            if let Some(snapshot) = snapshot {
                self.conn.execute("INSERT INTO crossings (conn, snapshot) VALUES (?1, ?2)", [first + i, snapshot])?;
            }
        }
        self.conn.execute("DELETE FROM open_connections", [])?;
        self.batch.base_ns = Some(base);
        self.batch.cookie_base = Some(cookie_base.cast_signed());
        self.batch.conns = Some((first, first + i64::try_from(open.len()).unwrap_or(i64::MAX) - 1));
        self.batch.max_end_ns = open.iter().map(|(r, _)| r.end_ns).max();
        self.block = Some(block);
        self.commit(None).map(drop)
    }

    fn begin(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("BEGIN")?;
        self.conn.execute("INSERT INTO batches (committed_ns, rows) VALUES (?1, 0)", [unix_ns(SystemTime::now())])?;
        self.batch = BatchRow { id: self.conn.last_insert_rowid(), ..BatchRow::default() };
        Ok(())
    }

    /// Writes one batch as one transaction; returns the rows committed (`batches.rows`).
    fn write(&mut self, batch: Batch) -> rusqlite::Result<u64> {
        self.begin()?;
        for op in batch.ops {
            match op {
                Op::Row(s, rowid) => self.row(&s, rowid)?,
                Op::Store(s) => self.store_open(&s)?,
                Op::Gap(g) => self.gap(&g)?,
                Op::Snapshot { id, mono_ns, kind, first_conn, timewait, sockets, scope } => {
                    self.snapshot(id, (mono_ns, kind, first_conn, timewait), &sockets, &scope)?;
                }
                Op::Transition(t) => self.transition_row(&t)?,
            }
        }
        self.commit(batch.events)
    }

    fn commit(&mut self, events: Option<(i64, i64)>) -> rusqlite::Result<u64> {
        if let (Some(block), Some((first, _))) = (self.block.take(), self.batch.conns) {
            self.conn
                .prepare_cached("INSERT INTO connections (first, data) VALUES (?1, ?2)")?
                .execute(params![first, block.finish()])?;
        }
        let b = &self.batch;
        self.conn.execute(
            "UPDATE batches SET rows = ?1, base_ns = ?2, cookie_base = ?11, first_conn = ?3, last_conn = ?4,
                max_end_ns = ?5, min_ts_ns = ?6, max_ts_ns = ?7, first_transition = ?8, last_transition = ?9
             WHERE id = ?10",
            params![
                int(b.rows),
                b.base_ns,
                b.conns.map(|c| c.0),
                b.conns.map(|c| c.1),
                b.max_end_ns,
                events.map(|e| e.0),
                events.map(|e| e.1),
                b.transitions.map(|t| t.0),
                b.transitions.map(|t| t.1),
                b.id,
                b.cookie_base,
            ],
        )?;
        self.conn.execute_batch("COMMIT")?;
        Ok(b.rows)
    }

    /// After a failed batch: roll back, and forget what the rollback took back.
    fn abort(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.processes.clear();
        self.netns.clear();
        self.cgroups.clear();
        self.block = None;
    }

    /// A socket that closed (or was given up), as row `rowid` (the rows of a batch have
    /// consecutive rowids, in the order they come).
    fn row(&mut self, s: &Sock, rowid: i64) -> rusqlite::Result<()> {
        let end = wall(s.last_ns, self.offset_ns);
        let base = *self.batch.base_ns.get_or_insert(end);
        let cookie_base = *self.batch.cookie_base.get_or_insert(s.cookie.cast_signed());
        let ids = self.ids(s)?;
        let (error, retrans, srtt_us) = s.health();
        let row = ConnRow {
            cookie: s.cookie,
            end_ns: end,
            duration_ns: s.last_ns.saturating_sub(s.first_ns),
            src: s.src,
            sport: s.sport,
            dst: s.dst,
            dport: s.dport,
            path: s.path,
            steps: s.steps_blob(),
            process: ids.0,
            owner: s.owner_code(),
            netns: ids.1,
            cgroup: ids.2,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            error,
            retrans,
            srtt_us,
        };
        let block = self.block.get_or_insert_with(|| codec::BlockWriter::new(cookie_base.cast_unsigned(), base));
        debug_assert_eq!(
            self.batch.conns.map_or(rowid, |c| c.0 + i64::try_from(block.len()).unwrap_or(0)),
            rowid,
            "rows of a batch are numbered in order"
        );
        block.push(&row);
        widen(&mut self.batch.conns, rowid);
        self.batch.max_end_ns = Some(self.batch.max_end_ns.map_or(end, |m| m.max(end)));
        if let Some(snapshot) = s.crossing {
            self.conn
                .prepare_cached("INSERT INTO crossings (conn, snapshot) VALUES (?1, ?2)")?
                .execute(params![rowid, snapshot])?;
        }
        if s.stored {
            self.conn.prepare_cached("DELETE FROM open_connections WHERE cookie = ?1")?.execute([int(s.cookie)])?;
        }
        if s.owner_code().is_some() {
            self.batch.rows += 1;
        }
        Ok(())
    }

    fn store_open(&mut self, s: &Sock) -> rusqlite::Result<()> {
        let ids = self.ids(s)?;
        let mut st = self.conn.prepare_cached(STORE_OPEN)?;
        bind_sock(&mut st, s, (int(s.cookie), wall(s.last_ns, self.offset_ns)), ids)?;
        st.raw_bind_parameter(19, s.crossing)?;
        st.raw_execute().map(drop)
    }

    fn transition_row(&mut self, t: &Transition) -> rusqlite::Result<()> {
        let task = Task { pid: t.pid, comm: task_comm(&t.comm.text()) };
        let process = process_id(&self.conn, &mut self.processes, &task)?;
        let netns = netns_id(&self.conn, &mut self.netns, &self.labels, t.netns)?;
        let (src, dst) = (codec::addr_bytes(&t.src), codec::addr_bytes(&t.dst));
        let mut st = self.conn.prepare_cached(
            "INSERT INTO transitions (batch, ts_ns, cookie, netns, process, tid, src, sport, dst, dport, old_state,
                new_state, rqueue, wqueue, bytes_acked, bytes_received, accept)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )?;
        st.execute(params![
            self.batch.id,
            wall(t.ts_ns, self.offset_ns),
            int(t.cookie),
            netns,
            process,
            t.tid,
            src.as_ref(),
            t.sport,
            dst.as_ref(),
            t.dport,
            t.old,
            t.new,
            t.rqueue,
            t.wqueue,
            int(t.bytes_acked),
            int(t.bytes_received),
            t.accept,
        ])?;
        widen(&mut self.batch.transitions, self.conn.last_insert_rowid());
        self.batch.rows += 1;
        Ok(())
    }

    fn gap(&mut self, g: &Gap) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO gaps (batch, start_ns, end_ns, lost_kernel, lost_userspace, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![self.batch.id, g.start_ns, g.end_ns, int(g.lost_kernel), int(g.lost_userspace), g.reason],
        )?;
        self.batch.rows += 1;
        Ok(())
    }

    /// Snapshot `id`: (dump time, kind, first rowid after it, TIME-WAIT kept) and its
    /// sockets, in key order.
    fn snapshot(
        &mut self,
        id: i64,
        (mono_ns, kind, first_conn, timewait): (u64, &str, i64, bool),
        sockets: &[(u32, InetSocket)],
        scope: &Scope,
    ) -> rusqlite::Result<()> {
        let (part, round) = match scope {
            Scope::Part { netns, round } => (netns_id(&self.conn, &mut self.netns, &self.labels, *netns)?, *round),
            Scope::All(_) => (None, None),
        };
        self.conn.execute(
            "INSERT INTO snapshots (id, batch, ts_ns, kind, first_conn, timewait, netns, round)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, self.batch.id, wall(mono_ns, self.offset_ns), kind, first_conn, timewait, part, round],
        )?;
        if let Scope::All(deferred) = scope {
            for ns in deferred {
                let netns = netns_id(&self.conn, &mut self.netns, &self.labels, *ns)?;
                self.conn
                    .prepare_cached("INSERT OR IGNORE INTO snapshot_deferred (snapshot, netns) VALUES (?1, ?2)")?
                    .execute(params![id, netns])?;
            }
        }
        // One packed row per namespace, its sockets in cookie order.
        let mut by_ns: Vec<(u32, Vec<&InetSocket>)> = Vec::new();
        for (ns, sock) in sockets {
            match by_ns.iter_mut().find(|(n, _)| n == ns) {
                Some((_, v)) => v.push(sock),
                None => by_ns.push((*ns, vec![sock])),
            }
        }
        for (ns, socks) in by_ns {
            let netns = netns_id(&self.conn, &mut self.netns, &self.labels, ns)?;
            self.conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO snapshot_sockets (snapshot, netns, count, data) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![id, netns, socks.len() as i64, codec::snapshot_blob(&socks)])?;
        }
        self.batch.rows += 1;
        Ok(())
    }
}

/// The row number the next connection row gets: after the last of every batch (rows of
/// a failed batch leave their numbers unused).
fn next_rowid(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COALESCE(MAX(last_conn), 0) + 1 FROM batches", [], |r| r.get(0))
}

fn task_comm(comm: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = comm.len().min(16);
    out[..n].copy_from_slice(&comm.as_bytes()[..n]);
    out
}

/// Deletes what is older than the age limit, then the oldest rows while the file is over
/// the size limit. The newest snapshot at or before the cut is kept, with everything
/// after it, so `--at` still works for every moment that remains.
fn retain(conn: &Connection, cfg: &WriterConfig) -> rusqlite::Result<()> {
    let now = unix_ns(SystemTime::now());
    let age_cut = now - i64::try_from(cfg.retain_age.as_nanos()).unwrap_or(i64::MAX);
    cut_before(conn, age_cut)?;
    for _ in 0..8 {
        if used_bytes(conn, &cfg.path)? <= cfg.retain_bytes {
            break;
        }
        // Drop the older half of what remains, by time.
        let (lo, hi): (Option<i64>, Option<i64>) = conn.query_row(
            "SELECT MIN(COALESCE(min_ts_ns, committed_ns)), MAX(COALESCE(max_ts_ns, committed_ns)) FROM batches",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (Some(lo), Some(hi)) = (lo, hi) else { break };
        if !cut_before(conn, lo + (hi - lo) / 2)? {
            break;
        }
    }
    // Give freed pages back to the file system: one row per page freed, all of them read.
    conn.prepare("PRAGMA incremental_vacuum")?.query_map([], |_| Ok(()))?.for_each(drop);
    Ok(())
}

/// Bytes the timeline holds: live pages of the database plus the write-ahead log.
fn used_bytes(conn: &Connection, path: &Path) -> rusqlite::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let wal = std::fs::metadata(format!("{}-wal", path.display())).map_or(0, |m| m.len());
    Ok(u64::try_from((pages - free) * size).unwrap_or(0) + wal)
}

/// Deletes whole batches older than the batch of the newest snapshot at or before
/// `cut`: a replay from that snapshot needs only rows written after it, the rows that
/// cross later snapshots (written later still) and the open ones, and, if it left its
/// TIME-WAIT sockets out, the rows of the closes that made them. Returns whether
/// anything was deleted.
pub(super) fn cut_before(conn: &Connection, cut: i64) -> rusqlite::Result<bool> {
    // A snapshot that stands for every namespace; if it deferred some to parts of their
    // own, those namespaces start from the one before it until their part.
    // (id, batch, ts_ns, timewait, deferred some).
    type Full = (i64, i64, i64, bool, bool);
    let full = |before: i64| -> rusqlite::Result<Option<Full>> {
        conn.query_row(
            "SELECT id, batch, ts_ns, timewait, EXISTS (SELECT 1 FROM snapshot_deferred d WHERE d.snapshot = s.id)
             FROM snapshots s WHERE ts_ns <= ?1 AND netns IS NULL ORDER BY ts_ns DESC, id DESC LIMIT 1",
            [before],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
    };
    let Some(mut found) = full(cut)? else { return Ok(false) };
    if found.4
        && let Some(earlier) = full(found.2 - 1)?
    {
        found = earlier;
    }
    let (_, mut keep, ts, timewait, _) = found;
    if !timewait {
        // Its TIME-WAIT sockets are rebuilt from the closes of the minute before it.
        let from = ts - i64::try_from(TIMEWAIT_REBUILT_FROM_NS).unwrap_or(i64::MAX);
        let first: Option<i64> =
            conn.query_row("SELECT MIN(id) FROM batches WHERE max_end_ns >= ?1", [from], |r| r.get(0))?;
        keep = keep.min(first.unwrap_or(keep));
    }
    let conn_cut: Option<i64> =
        conn.query_row("SELECT MAX(last_conn) FROM batches WHERE id < ?1", [keep], |r| r.get(0))?;
    let transition_cut: Option<i64> =
        conn.query_row("SELECT MAX(last_transition) FROM batches WHERE id < ?1", [keep], |r| r.get(0))?;
    let mut n = 0;
    if let Some(c) = conn_cut {
        n += conn.execute("DELETE FROM connections WHERE first <= ?1", [c])?;
        conn.execute("DELETE FROM crossings WHERE conn <= ?1", [c])?;
    }
    if let Some(t) = transition_cut {
        n += conn.execute("DELETE FROM transitions WHERE id <= ?1", [t])?;
    }
    n += conn.execute("DELETE FROM gaps WHERE batch < ?1", [keep])?;
    n += conn.execute(
        "DELETE FROM snapshot_sockets WHERE snapshot IN (SELECT id FROM snapshots WHERE batch < ?1)",
        [keep],
    )?;
    conn.execute(
        "DELETE FROM snapshot_deferred WHERE snapshot IN (SELECT id FROM snapshots WHERE batch < ?1)",
        [keep],
    )?;
    n += conn.execute("DELETE FROM snapshots WHERE batch < ?1", [keep])?;
    n += conn.execute("DELETE FROM batches WHERE id < ?1", [keep])?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use sockstat_ebpf::TcpState;

    use super::*;
    use crate::timeline::{
        Gap,
        fixtures::{temp_db, tr, writer},
    };

    /// Every `connections` row of the file, unpacked, in order.
    fn stored_rows(path: &Path) -> Vec<crate::timeline::reader::Row> {
        let r = crate::timeline::Reader::open(path).unwrap();
        let mut out = Vec::new();
        r.rows_between(1, i64::MAX, &mut |row| out.push(row)).unwrap();
        out
    }

    /// A connection opened at `ts` and closed 10 ns later: one finished row.
    fn connection(w: &mut Writer, cookie: u64, ts: u64) {
        w.push(Record::Transition(tr(cookie, ts, TcpState::Close, TcpState::SynSent, 0, 80)));
        w.push(Record::Transition(tr(cookie, ts + 5, TcpState::SynSent, TcpState::Established, 4000, 80)));
        w.push(Record::Transition(tr(cookie, ts + 10, TcpState::Established, TcpState::Close, 4000, 80)));
    }

    #[test]
    fn batches_are_whole_and_counted() {
        let path = temp_db("batches");
        let mut w = writer(&path);
        for i in 0..10 {
            connection(&mut w, i, 1_000 + 100 * i);
        }
        // Still open at the end of its batch: stored as open, not counted.
        w.push(Record::Transition(tr(99, 5_000, TcpState::Close, TcpState::SynSent, 0, 81)));
        w.flush().unwrap();
        w.push(Record::Gap(Gap { start_ns: 1, end_ns: 2, lost_kernel: 3, lost_userspace: 0, reason: "test".into() }));
        drop(w);
        let conn = Connection::open(&path).unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(count("SELECT COUNT(*) FROM batches"), 2);
        assert_eq!(count("SELECT SUM(rows) FROM batches"), 11);
        assert_eq!(count("SELECT COUNT(*) FROM gaps"), 1);
        assert_eq!(stored_rows(&path).len(), 10);
        assert_eq!(count("SELECT COUNT(*) FROM connections"), 1, "one block for the batch");
        assert_eq!(count("SELECT COUNT(*) FROM open_connections"), 1);
        // What `rows` counts, batch by batch, is what the batch holds.
        let rows = stored_rows(&path);
        let mut st = conn.prepare("SELECT id, rows, first_conn, last_conn FROM batches").unwrap();
        let batches: Vec<(i64, i64, Option<i64>, Option<i64>)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (id, n, first, last) in batches {
            let finished = rows
                .iter()
                .filter(|r| r.owner.is_some() && first.is_some_and(|f| r.rowid >= Some(f)) && r.rowid <= last)
                .count();
            let gaps: i64 = conn.query_row("SELECT COUNT(*) FROM gaps WHERE batch = ?1", [id], |r| r.get(0)).unwrap();
            assert_eq!(n, finished as i64 + gaps, "batch {id}");
        }
        // The next agent takes the open one over as a row not seen to close.
        drop(writer(&path));
        assert_eq!(count("SELECT COUNT(*) FROM open_connections"), 0);
        let rows = stored_rows(&path);
        assert_eq!(rows.iter().filter(|r| r.owner.is_none()).count(), 1);
        assert_eq!(rows.iter().find(|r| r.owner.is_none()).map(|r| (r.cookie, r.dport)), Some((99, 81)));
        assert_eq!(crate::timeline::Reader::open(&path).unwrap().lifetimes(i64::MIN, i64::MAX).unwrap().len(), 10);
    }

    /// The target on disk: the file and its write-ahead log once the writer stopped,
    /// over the finished connections (two sockets each on loopback).
    const BYTES_PER_CONNECTION: f64 = 64.0;

    /// Loopback churn as `xtask loadgen churn` makes it: 8 worker processes, each with a
    /// listener and a client, 30k connections a second, 8 bytes each way; both sockets
    /// of every connection recorded, batches of 100 ms.
    #[test]
    fn a_loopback_connection_takes_at_most_64_bytes_on_disk() {
        use TcpState::*;
        const N: u64 = 60_000;
        let path = temp_db("size");
        let mut w = writer(&path);
        let worker = |i: u64| (1000 + (i % 8) as u32, 21_000 + (i % 8) as u16);
        for p in 0..8 {
            let (pid, port) = worker(p);
            let l = Transition { pid, comm: "xtask".into(), wqueue: 4096, ..tr(1 + p, 1_000, Close, Listen, port, 0) };
            w.push(Record::Transition(l));
        }
        let mut cookie = 100;
        for i in 0..N {
            let t0 = 1_000_000 + i * 33_333;
            let (pid, port) = worker(i);
            let eph = 32_768 + (i * 7 % 28_000) as u16;
            let (c, s) = (cookie, cookie + 1);
            cookie += 2 + i % 3;
            let side = |cookie, ts, old, new, ports: (u16, u16)| Transition {
                pid,
                comm: "xtask".into(),
                bytes_acked: 8,
                bytes_received: 8,
                srtt_us: 25 + (i % 20) as u32,
                ..tr(cookie, ts, old, new, ports.0, ports.1)
            };
            let (cp, sp) = ((eph, port), (port, eph));
            for t in [
                side(c, t0, Close, SynSent, (0, port)),
                side(c, t0 + 21_000, SynSent, Established, cp),
                side(s, t0 + 23_000, Listen, SynRecv, sp),
                side(s, t0 + 27_000, SynRecv, Established, sp),
                side(c, t0 + 61_000, Established, FinWait1, cp),
                side(s, t0 + 64_000, Established, CloseWait, sp),
                side(c, t0 + 66_000, FinWait1, FinWait2, cp),
                side(s, t0 + 71_000, CloseWait, LastAck, sp),
                side(c, t0 + 75_000, FinWait2, Close, cp),
                side(s, t0 + 79_000, LastAck, Close, sp),
            ] {
                w.push(Record::Transition(t));
            }
            if i % 3_000 == 2_999 {
                w.flush().unwrap();
            }
        }
        drop(w);
        let size = |suffix: &str| std::fs::metadata(format!("{}{suffix}", path.display())).map_or(0, |m| m.len());
        let per_connection = (size("") + size("-wal")) as f64 / N as f64;
        let lives = crate::timeline::Reader::open(&path).unwrap().lifetimes(i64::MIN, i64::MAX).unwrap();
        assert_eq!(lives.len() as u64, 2 * N, "both sockets of every connection recorded");
        assert!(
            per_connection <= BYTES_PER_CONNECTION,
            "{per_connection:.1} bytes on disk per connection (at most {BYTES_PER_CONNECTION})"
        );
        eprintln!("{per_connection:.1} bytes on disk per connection");
    }

    #[test]
    fn transitions_are_rows_only_when_asked() {
        let path = temp_db("transitions");
        let cfg = WriterConfig {
            commit_every: Duration::ZERO,
            ..WriterConfig::new(path.clone(), Duration::from_secs(3600), 1 << 30, true)
        };
        let mut w = Writer::start(cfg, 1).unwrap();
        connection(&mut w, 1, 1_000);
        drop(w);
        let conn = Connection::open(&path).unwrap();
        let (t, rows): (i64, i64) = conn
            .query_row("SELECT (SELECT COUNT(*) FROM transitions), SUM(rows) FROM batches", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((t, rows), (3, 4), "three transitions and one finished connection");
    }

    #[test]
    fn retention_cuts_at_a_snapshot_and_keeps_what_it_needs() {
        let path = temp_db("retain");
        let now = crate::model::clock::monotonic_now().as_nanos() as u64;
        // Time since boot, in quarters: the test's "hours" (the machine may be young).
        let hour = now / 4;
        {
            let mut w = writer(&path);
            // An old snapshot, an old connection, a newer snapshot, recent connections,
            // each era its own batch (retention removes whole batches).
            w.push(Record::Snapshot { mono_ns: now - 3 * hour, kind: "seed", spaces: Vec::new() });
            connection(&mut w, 1, now - 3 * hour + 1);
            w.flush().unwrap();
            w.push(Record::Snapshot { mono_ns: now - 2 * hour, kind: "checkpoint", spaces: Vec::new() });
            connection(&mut w, 2, now - 2 * hour + 1);
            w.flush().unwrap();
            connection(&mut w, 3, now - 100);
        }
        let conn = Connection::open(&path).unwrap();
        let cfg = WriterConfig::new(path.clone(), Duration::from_nanos(hour * 3 / 2), 1 << 30, false);
        retain(&conn, &cfg).unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        // The cut (1.5 "hours" ago) falls after the checkpoint of 2 "hours" ago: everything before
        // that checkpoint goes, the checkpoint and what follows it stay.
        assert_eq!(count("SELECT COUNT(*) FROM snapshots"), 1);
        assert_eq!(count("SELECT COUNT(*) FROM snapshots WHERE kind = 'checkpoint'"), 1);
        assert_eq!(stored_rows(&path).len(), 2, "each row still finds its batch");
        // Over the size limit: the older half of what remains goes, but never the only
        // snapshot `--at` needs.
        let tiny = WriterConfig { retain_bytes: 1, ..cfg };
        retain(&conn, &tiny).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM snapshots"), 1);
        assert!(!stored_rows(&path).is_empty());
    }
}
