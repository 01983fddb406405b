//! The forensic timeline: every transition, every finished connection, every loss (as a
//! gap marker) and every table snapshot, in one SQLite file that `sqlite3` opens. The
//! agent hands records to a writer thread in batches, so disk I/O stays off the event
//! loop; each batch is one transaction (WAL journal), so a crash loses at most the batch
//! in flight and never leaves a torn one. Readers (`--at`, `history`) open the file
//! read-only while the agent writes.
//!
//! Schema (version 1); times are UTC nanoseconds since the Unix epoch, states are kernel
//! TCP state numbers (include/net/tcp_states.h), addresses are text:
//!
//! - `meta(key, value)`: `schema_version`, `netns` (the agent's network namespace).
//! - `batches(id, committed_ns, rows, first_transition, last_transition, min_ts_ns,
//!   max_ts_ns)`: one row per committed batch, with the id range and time range of its
//!   transitions. Transitions are found by time through this table (an id range, then a
//!   rowid scan) rather than through an index on `transitions.ts_ns`, which would halve
//!   the rate the writer keeps up with.
//! - `transitions(id, batch, ts_ns, mono_ns, cookie, netns, pid, tid, comm, family, src,
//!   sport, dst, dport, old_state, new_state, rqueue, wqueue, bytes_acked,
//!   bytes_received, v6only, ifindex, accept)`: `accept` = 1 marks an accept() notice
//!   (owner information; states are 0).
//! - `lifetimes(id, batch, cookie, netns, family, src, sport, dst, dport, start_ns,
//!   end_ns, duration_ns, pid, comm, owner, active, bytes_sent, bytes_received, path)`:
//!   `start_ns`/`duration_ns` NULL when the connection began before the agent did.
//! - `gaps(id, batch, start_ns, end_ns, lost_kernel, lost_userspace, reason)`: events
//!   were lost between `start_ns` and `end_ns`; a snapshot follows (the resync).
//! - `snapshots(id, batch, ts_ns, kind)` and `snapshot_sockets(snapshot, cookie, family,
//!   state, src, sport, dst, dport, rqueue, wqueue, v6only, ifindex, uid, inode,
//!   expires_ms, timer)`: the kernel's TCP sockets at seed (`seed`), after a loss (`resync`)
//!   and periodically (`checkpoint`), mini-sockets (TIME-WAIT) included.

pub mod lifetime;

use std::{
    collections::HashMap,
    fmt::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    thread::JoinHandle,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use sockstat_ebpf::TcpState;

use crate::{
    bpf::stream::Transition,
    model::socket::InetSocket,
    timeline::lifetime::{Lifetime, OwnerSource},
};

pub const SCHEMA_VERSION: i64 = 1;
pub const DEFAULT_PATH: &str = "/var/lib/sockstat/timeline.db";
/// How long a timewait socket lives (TCP_TIMEWAIT_LEN, include/net/tcp.h).
pub const TIME_WAIT_NS: i64 = 60_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("timeline database {path}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("creating {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} has timeline schema version {found}; this sockstat reads version {SCHEMA_VERSION}")]
    Version { path: PathBuf, found: i64 },
    #[error("the timeline in {path} has no snapshot at or before {at}: it starts at {first}")]
    BeforeStart { path: PathBuf, at: String, first: String },
    #[error("the timeline in {path} is empty (has an agent with --timeline run yet?)")]
    Empty { path: PathBuf },
    #[error("starting the timeline writer thread")]
    Thread(#[source] std::io::Error),
}

/// Wall-clock ns since the epoch.
pub fn unix_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

pub fn format_ns(ns: i64) -> String {
    let t = if ns >= 0 { UNIX_EPOCH + Duration::from_nanos(ns.unsigned_abs()) } else { UNIX_EPOCH };
    humantime::format_rfc3339_nanos(t).to_string()
}

/// Events were lost between `start_ns` and `end_ns` (wall clock, ns since the epoch).
#[derive(Clone, Debug)]
pub struct Gap {
    pub start_ns: i64,
    pub end_ns: i64,
    pub lost_kernel: u64,
    pub lost_userspace: u64,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub enum Record {
    Transition(Transition),
    Lifetime(Lifetime),
    Gap(Gap),
    /// `mono_ns`: CLOCK_MONOTONIC when the dump was made.
    Snapshot {
        mono_ns: u64,
        kind: &'static str,
        sockets: Vec<InetSocket>,
    },
}

#[derive(Clone, Debug)]
pub struct WriterConfig {
    pub path: PathBuf,
    /// Rows older than this are deleted (keeping the snapshot they need).
    pub retain_age: Duration,
    /// When the file grows past this, the oldest rows go first.
    pub retain_bytes: u64,
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> TimelineError + '_ {
    move |source| TimelineError::Sqlite { path: path.to_path_buf(), source }
}

/// Creates the schema if missing; checks the version otherwise.
fn prepare(conn: &Connection, path: &Path, netns: u32) -> Result<(), TimelineError> {
    let e = sql(path);
    // WAL: readers do not block the writer; synchronous=NORMAL: a committed transaction
    // survives a crash of the process (not necessarily of the machine).
    // auto_vacuum first: it only takes on a file without tables, and not after the
    // journal mode is WAL.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(&e)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(&e)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(&e)?;
    // 64 MiB of page cache: the writer appends to a few B-trees; fewer misses, less CPU.
    conn.pragma_update(None, "cache_size", -65_536).map_err(&e)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS batches (
             id INTEGER PRIMARY KEY, committed_ns INTEGER NOT NULL, rows INTEGER NOT NULL,
             first_transition INTEGER, last_transition INTEGER, min_ts_ns INTEGER, max_ts_ns INTEGER);
         CREATE INDEX IF NOT EXISTS batches_max_ts ON batches(max_ts_ns);
         CREATE TABLE IF NOT EXISTS transitions (
             id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, ts_ns INTEGER NOT NULL, mono_ns INTEGER NOT NULL,
             cookie INTEGER NOT NULL, netns INTEGER NOT NULL, pid INTEGER NOT NULL, tid INTEGER NOT NULL,
             comm TEXT NOT NULL, family INTEGER NOT NULL, src TEXT NOT NULL, sport INTEGER NOT NULL,
             dst TEXT NOT NULL, dport INTEGER NOT NULL, old_state INTEGER NOT NULL, new_state INTEGER NOT NULL,
             rqueue INTEGER NOT NULL, wqueue INTEGER NOT NULL, bytes_acked INTEGER NOT NULL,
             bytes_received INTEGER NOT NULL, v6only INTEGER NOT NULL, ifindex INTEGER NOT NULL,
             accept INTEGER NOT NULL);
         CREATE TABLE IF NOT EXISTS lifetimes (
             id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, cookie INTEGER NOT NULL, netns INTEGER NOT NULL,
             family INTEGER NOT NULL, src TEXT NOT NULL, sport INTEGER NOT NULL, dst TEXT NOT NULL,
             dport INTEGER NOT NULL, start_ns INTEGER, end_ns INTEGER NOT NULL, duration_ns INTEGER,
             pid INTEGER NOT NULL, comm TEXT NOT NULL, owner TEXT NOT NULL, active INTEGER,
             bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL, path TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS lifetimes_end ON lifetimes(end_ns);
         CREATE TABLE IF NOT EXISTS gaps (
             id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
             lost_kernel INTEGER NOT NULL, lost_userspace INTEGER NOT NULL, reason TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS snapshots (
             id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, ts_ns INTEGER NOT NULL, kind TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS snapshots_ts ON snapshots(ts_ns);
         CREATE TABLE IF NOT EXISTS snapshot_sockets (
             snapshot INTEGER NOT NULL, cookie INTEGER NOT NULL, family INTEGER NOT NULL, state INTEGER NOT NULL,
             src TEXT NOT NULL, sport INTEGER NOT NULL, dst TEXT NOT NULL, dport INTEGER NOT NULL,
             rqueue INTEGER NOT NULL, wqueue INTEGER NOT NULL, v6only INTEGER NOT NULL, ifindex INTEGER NOT NULL,
             uid INTEGER NOT NULL, inode INTEGER NOT NULL, expires_ms INTEGER NOT NULL, timer INTEGER NOT NULL);
         CREATE INDEX IF NOT EXISTS snapshot_sockets_snapshot ON snapshot_sockets(snapshot);",
    )
    .map_err(&e)?;
    let found: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .optional()
        .map_err(&e)?;
    match found {
        None => {
            conn.execute("INSERT INTO meta VALUES ('schema_version', ?1)", [SCHEMA_VERSION.to_string()]).map_err(&e)?;
        }
        Some(v) if v.parse::<i64>().ok() == Some(SCHEMA_VERSION) => {}
        Some(v) => return Err(TimelineError::Version { path: path.to_path_buf(), found: v.parse().unwrap_or(-1) }),
    }
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('netns', ?1)", [netns.to_string()]).map_err(&e)?;
    Ok(())
}

/// The agent's side: buffers records and hands full batches to the writer thread.
pub struct Writer {
    pending: Vec<Record>,
    tx: Option<SyncSender<Vec<Record>>>,
    thread: Option<JoinHandle<()>>,
    /// Rows committed so far (shared with the writer thread).
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

/// Nice value of the writer thread (see `write_loop`).
const WRITER_NICE: i32 = -5;

/// Batches queued for the writer before the agent starts dropping (and marking a gap).
const QUEUE_BATCHES: usize = 256;

impl Writer {
    /// Wall-clock ns for a CLOCK_MONOTONIC timestamp, as this writer stores it.
    pub fn wall_ns(&self, mono_ns: u64) -> i64 {
        i64::try_from(mono_ns).unwrap_or(i64::MAX).saturating_add(self.offset_ns)
    }

    pub fn start(cfg: WriterConfig, netns: u32) -> Result<Writer, TimelineError> {
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| TimelineError::Dir { path: dir.to_path_buf(), source })?;
        }
        let conn = Connection::open(&cfg.path).map_err(sql(&cfg.path))?;
        prepare(&conn, &cfg.path, netns)?;
        let previous_end_ns: Option<i64> = conn
            .query_row("SELECT MAX(COALESCE(max_ts_ns, committed_ns)) FROM batches", [], |r| r.get(0))
            .map_err(sql(&cfg.path))?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_BATCHES);
        let committed = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let (c, f, d) = (committed.clone(), failed.clone(), dropped.clone());
        let offset_ns = crate::bpf::stream::realtime_offset_ns();
        let thread = std::thread::Builder::new()
            .name("sockstat-timeline".into())
            .spawn(move || write_loop(conn, cfg, rx, c, f, d, offset_ns))
            .map_err(TimelineError::Thread)?;
        Ok(Writer {
            pending: Vec::new(),
            tx: Some(tx),
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

    /// Hands the buffered records to the writer as one batch. Never blocks: if the
    /// writer is that far behind, the batch is dropped and counted, and the caller
    /// records a gap.
    pub fn flush(&mut self) -> Result<(), u64> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
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
        // Closing the channel ends the thread once it has written what it holds.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(
    mut conn: Connection,
    cfg: WriterConfig,
    rx: Receiver<Vec<Record>>,
    committed: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    offset_ns: i64,
) {
    // Under a connection storm the traced processes compete for every core; a writer
    // with only its fair share falls behind and records are dropped (as gaps). Losing
    // the record costs more than the CPU, so the writer runs at a higher priority.
    // SAFETY: gettid has no preconditions; setpriority on our own thread id. Without
    // CAP_SYS_NICE it fails and the default priority stays.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid().cast_unsigned(), WRITER_NICE) } != 0 {
        tracing::debug!("timeline writer keeps the default priority");
    }
    let mut last_retention = std::time::Instant::now();
    while let Ok(batch) = rx.recv() {
        match write_batch(&mut conn, &batch, offset_ns) {
            Ok(rows) => {
                committed.fetch_add(rows, Ordering::Relaxed);
            }
            Err(e) => {
                failed.fetch_add(1, Ordering::Relaxed);
                // Lost records: counted like a full queue, so the agent marks a gap.
                dropped.fetch_add(batch.len() as u64, Ordering::Relaxed);
                tracing::error!(error = %e, path = %cfg.path.display(), "timeline batch not written");
            }
        }
        if last_retention.elapsed() > Duration::from_secs(10) {
            last_retention = std::time::Instant::now();
            if let Err(e) = retain(&conn, &cfg) {
                tracing::warn!(error = %e, "timeline retention failed");
            }
        }
    }
}

fn write_batch(conn: &mut Connection, batch: &[Record], offset_ns: i64) -> rusqlite::Result<u64> {
    let wall = |mono: u64| i64::try_from(mono).unwrap_or(i64::MAX).saturating_add(offset_ns);
    let tx = conn.transaction()?;
    tx.execute("INSERT INTO batches (committed_ns, rows) VALUES (?1, 0)", [unix_ns(SystemTime::now())])?;
    let b = tx.last_insert_rowid();
    let mut rows = 0u64;
    // (first id, last id, min ts, max ts) of this batch's transitions.
    let mut span: Option<(i64, i64, i64, i64)> = None;
    let (mut src, mut dst) = (String::with_capacity(48), String::with_capacity(48));
    {
        let mut ins_t = tx.prepare_cached(
            "INSERT INTO transitions (batch, ts_ns, mono_ns, cookie, netns, pid, tid, comm, family, src, sport, dst, dport,
             old_state, new_state, rqueue, wqueue, bytes_acked, bytes_received, v6only, ifindex, accept)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
        )?;
        let mut ins_l = tx.prepare_cached(
            "INSERT INTO lifetimes (batch, cookie, netns, family, src, sport, dst, dport, start_ns, end_ns, duration_ns,
             pid, comm, owner, active, bytes_sent, bytes_received, path)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        )?;
        let mut ins_s = tx.prepare_cached(
            "INSERT INTO snapshot_sockets (snapshot, cookie, family, state, src, sport, dst, dport, rqueue, wqueue,
             v6only, ifindex, uid, inode, expires_ms, timer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        for r in batch {
            match r {
                Record::Transition(t) => {
                    let ts = wall(t.ts_ns);
                    // Reused buffers: two fewer allocations per row on the writer's hot path.
                    src.clear();
                    dst.clear();
                    let _ = write!(src, "{}", t.src);
                    let _ = write!(dst, "{}", t.dst);
                    ins_t.execute(params![
                        b,
                        ts,
                        t.ts_ns as i64,
                        t.cookie as i64,
                        t.netns,
                        t.pid,
                        t.tid,
                        t.comm,
                        t.family,
                        src,
                        t.sport,
                        dst,
                        t.dport,
                        t.old,
                        t.new,
                        t.rqueue,
                        t.wqueue,
                        t.bytes_acked as i64,
                        t.bytes_received as i64,
                        t.v6only,
                        t.ifindex,
                        t.accept,
                    ])?;
                    let id = tx.last_insert_rowid();
                    span = Some(match span {
                        None => (id, id, ts, ts),
                        Some((first, _, lo, hi)) => (first, id, lo.min(ts), hi.max(ts)),
                    });
                }
                Record::Lifetime(l) => {
                    ins_l.execute(params![
                        b,
                        l.cookie as i64,
                        l.netns,
                        l.family,
                        l.src.to_string(),
                        l.sport,
                        l.dst.to_string(),
                        l.dport,
                        l.start_ns.map(wall),
                        wall(l.end_ns),
                        l.duration_ns().map(|d| d as i64),
                        l.pid,
                        l.comm,
                        owner_text(l.owner),
                        l.active,
                        l.bytes_sent as i64,
                        l.bytes_received as i64,
                        l.path_text(),
                    ])?;
                }
                Record::Gap(g) => {
                    tx.execute(
                        "INSERT INTO gaps (batch, start_ns, end_ns, lost_kernel, lost_userspace, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![b, g.start_ns, g.end_ns, g.lost_kernel as i64, g.lost_userspace as i64, g.reason],
                    )?;
                }
                Record::Snapshot { mono_ns, kind, sockets } => {
                    tx.execute(
                        "INSERT INTO snapshots (batch, ts_ns, kind) VALUES (?1, ?2, ?3)",
                        params![b, wall(*mono_ns), kind],
                    )?;
                    let id = tx.last_insert_rowid();
                    for s in sockets {
                        ins_s.execute(params![
                            id,
                            s.cookie as i64,
                            s.family,
                            s.state,
                            s.src.to_string(),
                            s.sport,
                            s.dst.to_string(),
                            s.dport,
                            s.rqueue,
                            s.wqueue,
                            s.v6only,
                            s.ifindex,
                            s.uid,
                            s.inode,
                            s.expires_ms,
                            s.timer,
                        ])?;
                    }
                }
            }
            rows += 1;
        }
    }
    let (first, last, lo, hi) =
        span.map_or((None, None, None, None), |(f, l, lo, hi)| (Some(f), Some(l), Some(lo), Some(hi)));
    tx.execute(
        "UPDATE batches SET rows = ?1, first_transition = ?2, last_transition = ?3, min_ts_ns = ?4, max_ts_ns = ?5 WHERE id = ?6",
        params![rows as i64, first, last, lo, hi, b],
    )?;
    tx.commit()?;
    Ok(rows)
}

fn owner_text(o: OwnerSource) -> &'static str {
    match o {
        OwnerSource::Connect => "connect",
        OwnerSource::Accept => "accept",
        OwnerSource::Listener => "listener",
        OwnerSource::Unknown => "unknown",
    }
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
        // Drop the older half of what remains, by time (from the batches' ranges: the
        // transitions table has no time index).
        let (lo, hi): (Option<i64>, Option<i64>) =
            conn.query_row("SELECT MIN(min_ts_ns), MAX(max_ts_ns) FROM batches", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
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

/// Deletes rows older than `cut`, keeping the newest snapshot at or before it and every
/// row after that snapshot. Returns whether anything was deleted.
fn cut_before(conn: &Connection, cut: i64) -> rusqlite::Result<bool> {
    let keep: Option<i64> =
        conn.query_row("SELECT MAX(ts_ns) FROM snapshots WHERE ts_ns <= ?1", [cut], |r| r.get(0)).optional()?.flatten();
    let Some(keep) = keep else { return Ok(false) };
    let mut n = 0;
    // Transitions by id: every batch that ended before `keep` goes whole.
    n += conn.execute(
        "DELETE FROM transitions WHERE id <= (SELECT MAX(last_transition) FROM batches WHERE max_ts_ns < ?1)",
        [keep],
    )?;
    // Batches without transitions (a snapshot, a gap) have no time range: by commit time.
    conn.execute("DELETE FROM batches WHERE COALESCE(max_ts_ns, committed_ns) < ?1", [keep])?;
    n += conn.execute("DELETE FROM lifetimes WHERE end_ns < ?1", [keep])?;
    n += conn.execute("DELETE FROM gaps WHERE end_ns < ?1", [keep])?;
    n += conn.execute(
        "DELETE FROM snapshot_sockets WHERE snapshot IN (SELECT id FROM snapshots WHERE ts_ns < ?1)",
        [keep],
    )?;
    n += conn.execute("DELETE FROM snapshots WHERE ts_ns < ?1", [keep])?;
    Ok(n > 0)
}

/// Read-only access for `--at` and `history`.
pub struct Reader {
    conn: Connection,
    path: PathBuf,
}

/// The table as it was at a moment, and how sure the answer is.
#[derive(Debug)]
pub struct AtState {
    pub sockets: Vec<InetSocket>,
    /// Gaps between the snapshot used and the moment: the answer may be incomplete.
    pub gaps: Vec<Gap>,
    pub snapshot_ns: i64,
}

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, TimelineError> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(sql(path))?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
            .optional()
            .map_err(sql(path))?;
        match version.and_then(|v| v.parse::<i64>().ok()) {
            Some(SCHEMA_VERSION) => Ok(Reader { conn, path: path.to_path_buf() }),
            Some(found) => Err(TimelineError::Version { path: path.to_path_buf(), found }),
            None => Err(TimelineError::Empty { path: path.to_path_buf() }),
        }
    }

    /// The network namespace the timeline records (`meta.netns`: the agent's, as of the
    /// last agent that wrote the file); `None` if the file does not say.
    ///
    /// # Errors
    /// The query's.
    pub fn netns(&self) -> Result<Option<u32>, TimelineError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'netns'", [], |r| r.get(0))
            .optional()
            .map_err(sql(&self.path))?;
        Ok(v.and_then(|v| v.parse().ok()))
    }

    /// The id range holding every transition with a time in `[from, to]`: from the
    /// first batch that ends at or after `from` to the last that starts at or before `to`.
    fn transition_ids(&self, from: i64, to: i64) -> Result<(i64, i64), TimelineError> {
        let e = sql(&self.path);
        let lo: Option<i64> = self
            .conn
            .query_row("SELECT MIN(first_transition) FROM batches WHERE max_ts_ns >= ?1", [from], |r| r.get(0))
            .map_err(&e)?;
        let hi: Option<i64> = self
            .conn
            .query_row("SELECT MAX(last_transition) FROM batches WHERE min_ts_ns <= ?1", [to], |r| r.get(0))
            .map_err(&e)?;
        Ok((lo.unwrap_or(i64::MAX), hi.unwrap_or(i64::MIN)))
    }

    fn gaps_between(&self, from: i64, to: i64) -> Result<Vec<Gap>, TimelineError> {
        let mut st = self
            .conn
            .prepare("SELECT start_ns, end_ns, lost_kernel, lost_userspace, reason FROM gaps WHERE end_ns >= ?1 AND start_ns <= ?2 ORDER BY start_ns")
            .map_err(sql(&self.path))?;
        st.query_map([from, to], |r| {
            Ok(Gap {
                start_ns: r.get(0)?,
                end_ns: r.get(1)?,
                lost_kernel: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                lost_userspace: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                reason: r.get(4)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(sql(&self.path))
    }

    /// Rebuilds the TCP table at `at_ns`: the newest snapshot at or before it, then every
    /// transition up to it, in order. TIME-WAIT sockets come from the snapshot (with the
    /// expiry sock_diag gave) and from FIN-WAIT-2/CLOSING -> CLOSE transitions, which hand
    /// the tuple to a timewait socket that lives TCP_TIMEWAIT_LEN (60 s) unless reused.
    pub fn state_at(&self, at_ns: i64) -> Result<AtState, TimelineError> {
        let e = sql(&self.path);
        let snap: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT id, ts_ns FROM snapshots WHERE ts_ns <= ?1 ORDER BY ts_ns DESC, id DESC LIMIT 1",
                [at_ns],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(&e)?;
        let Some((snap_id, snap_ns)) = snap else {
            let first: Option<i64> =
                self.conn.query_row("SELECT MIN(ts_ns) FROM snapshots", [], |r| r.get(0)).map_err(&e)?;
            return Err(match first {
                Some(first) => TimelineError::BeforeStart {
                    path: self.path.clone(),
                    at: format_ns(at_ns),
                    first: format_ns(first),
                },
                None => TimelineError::Empty { path: self.path.clone() },
            });
        };
        let mut model = Model::default();
        let mut st = self
            .conn
            .prepare(
                "SELECT cookie, family, state, src, sport, dst, dport, rqueue, wqueue, v6only, ifindex, uid, inode, expires_ms, timer
                 FROM snapshot_sockets WHERE snapshot = ?1",
            )
            .map_err(&e)?;
        let rows = st
            .query_map([snap_id], |r| {
                Ok((
                    InetSocket {
                        v6only: r.get(9)?,
                        ifindex: r.get(10)?,
                        rqueue: r.get(7)?,
                        wqueue: r.get(8)?,
                        uid: r.get(11)?,
                        inode: r.get(12)?,
                        timer: r.get(14)?,
                        ..InetSocket::tcp(
                            r.get(1)?,
                            r.get(2)?,
                            (addr(&r.get::<_, String>(3)?), r.get(4)?),
                            (addr(&r.get::<_, String>(5)?), r.get(6)?),
                            r.get::<_, i64>(0)? as u64,
                        )
                    },
                    r.get::<_, i64>(13)?,
                ))
            })
            .map_err(&e)?;
        for row in rows {
            let (sock, expires_ms) = row.map_err(&e)?;
            model.seed(sock, snap_ns + expires_ms * 1_000_000);
        }
        let ids = self.transition_ids(snap_ns, at_ns)?;
        let mut st = self
            .conn
            .prepare(
                "SELECT ts_ns, cookie, family, src, sport, dst, dport, old_state, new_state, rqueue, wqueue, v6only, ifindex
                 FROM transitions WHERE id BETWEEN ?3 AND ?4 AND ts_ns > ?1 AND ts_ns <= ?2 AND accept = 0 ORDER BY id",
            )
            .map_err(&e)?;
        let rows = st
            .query_map([snap_ns, at_ns, ids.0, ids.1], |r| {
                Ok(Step {
                    ts_ns: r.get(0)?,
                    cookie: r.get::<_, i64>(1)? as u64,
                    family: r.get(2)?,
                    src: addr(&r.get::<_, String>(3)?),
                    sport: r.get(4)?,
                    dst: addr(&r.get::<_, String>(5)?),
                    dport: r.get(6)?,
                    old: r.get(7)?,
                    new: r.get(8)?,
                    rqueue: r.get(9)?,
                    wqueue: r.get(10)?,
                    v6only: r.get(11)?,
                    ifindex: r.get(12)?,
                })
            })
            .map_err(&e)?;
        for row in rows {
            model.apply(&row.map_err(&e)?);
        }
        // A SYN-SENT socket's only transition so far came before connect() picked its
        // port; a later transition of the same socket (same cookie) has it. It follows
        // soon after, so a forward rowid walk from the moment finds it quickly; the
        // writer keeps no cookie index, one B-tree less per row.
        let mut later = self
            .conn
            .prepare(
                "SELECT src, sport FROM transitions WHERE id > ?1 AND cookie = ?2 AND sport != 0 ORDER BY id LIMIT 1",
            )
            .map_err(&e)?;
        for s in model.full.values_mut().filter(|s| s.sport == 0) {
            if let Some((src, sport)) = later
                .query_row([ids.1, s.cookie as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u16>(1)?)))
                .optional()
                .map_err(&e)?
            {
                s.src = addr(&src);
                s.sport = sport;
            }
        }
        Ok(AtState { sockets: model.sockets_at(at_ns), gaps: self.gaps_between(snap_ns, at_ns)?, snapshot_ns: snap_ns })
    }

    pub fn lifetimes(&self, since: i64, until: i64) -> Result<Vec<StoredLifetime>, TimelineError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT start_ns, end_ns, duration_ns, pid, comm, owner, active, family, src, sport, dst, dport,
                 bytes_sent, bytes_received, path, cookie FROM lifetimes WHERE end_ns >= ?1 AND COALESCE(start_ns, end_ns) <= ?2
                 ORDER BY end_ns, id",
            )
            .map_err(sql(&self.path))?;
        st.query_map([since, until], |r| {
            Ok(StoredLifetime {
                start_ns: r.get(0)?,
                end_ns: r.get(1)?,
                duration_ns: r.get(2)?,
                pid: r.get(3)?,
                comm: r.get(4)?,
                owner: r.get(5)?,
                active: r.get(6)?,
                family: r.get(7)?,
                src: addr(&r.get::<_, String>(8)?),
                sport: r.get(9)?,
                dst: addr(&r.get::<_, String>(10)?),
                dport: r.get(11)?,
                bytes_sent: r.get(12)?,
                bytes_received: r.get(13)?,
                path: r.get(14)?,
                cookie: r.get::<_, i64>(15)? as u64,
            })
        })
        .and_then(Iterator::collect)
        .map_err(sql(&self.path))
    }

    pub fn transitions(&self, since: i64, until: i64) -> Result<Vec<StoredTransition>, TimelineError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT ts_ns, pid, comm, family, src, sport, dst, dport, old_state, new_state, cookie, netns
                 FROM transitions WHERE id BETWEEN ?3 AND ?4 AND ts_ns >= ?1 AND ts_ns <= ?2 AND accept = 0 ORDER BY id",
            )
            .map_err(sql(&self.path))?;
        let (lo, hi) = self.transition_ids(since, until)?;
        st.query_map([since, until, lo, hi], |r| {
            Ok(StoredTransition {
                ts_ns: r.get(0)?,
                pid: r.get(1)?,
                comm: r.get(2)?,
                family: r.get(3)?,
                src: addr(&r.get::<_, String>(4)?),
                sport: r.get(5)?,
                dst: addr(&r.get::<_, String>(6)?),
                dport: r.get(7)?,
                old: r.get(8)?,
                new: r.get(9)?,
                cookie: r.get::<_, i64>(10)? as u64,
                netns: r.get(11)?,
            })
        })
        .and_then(Iterator::collect)
        .map_err(sql(&self.path))
    }

    pub fn gaps(&self, since: i64, until: i64) -> Result<Vec<Gap>, TimelineError> {
        self.gaps_between(since, until)
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct StoredLifetime {
    pub start_ns: Option<i64>,
    pub end_ns: i64,
    pub duration_ns: Option<i64>,
    pub pid: u32,
    pub comm: String,
    pub owner: String,
    pub active: Option<bool>,
    pub family: u16,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub bytes_sent: i64,
    pub bytes_received: i64,
    pub path: String,
    pub cookie: u64,
}

impl StoredLifetime {
    pub fn as_socket(&self) -> InetSocket {
        InetSocket::tcp(self.family, TcpState::Close as u8, (self.src, self.sport), (self.dst, self.dport), self.cookie)
    }

    /// The state numbers of `path`.
    pub fn states(&self) -> Vec<u8> {
        self.path.split('>').filter_map(crate::bpf::stream::kernel_state_number).collect()
    }
}

impl StoredTransition {
    pub fn as_socket(&self) -> InetSocket {
        InetSocket::tcp(self.family, self.new, (self.src, self.sport), (self.dst, self.dport), self.cookie)
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct StoredTransition {
    pub ts_ns: i64,
    pub pid: u32,
    pub comm: String,
    pub family: u16,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub old: u8,
    pub new: u8,
    pub cookie: u64,
    pub netns: u32,
}

#[derive(Clone, Debug)]
struct Step {
    ts_ns: i64,
    cookie: u64,
    family: u16,
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    old: u8,
    new: u8,
    rqueue: u32,
    wqueue: u32,
    v6only: bool,
    ifindex: u32,
}

type Tuple = (u16, IpAddr, u16, IpAddr, u16);

/// The replay model behind `state_at`: full sockets by cookie, timewait sockets by tuple.
#[derive(Default)]
struct Model {
    full: HashMap<u64, InetSocket>,
    /// Tuple -> (the socket as a TIME-WAIT row, expiry ns).
    timewait: HashMap<Tuple, (InetSocket, i64)>,
}

fn tuple(s: &InetSocket) -> Tuple {
    (s.family, s.src, s.sport, s.dst, s.dport)
}

impl Model {
    fn seed(&mut self, sock: InetSocket, expires_ns: i64) {
        // Mini-sockets get no events: they live until their timer (or a new connection
        // on their tuple) ends them.
        if sock.is_mini() {
            self.timewait.insert(tuple(&sock), (sock, expires_ns));
        } else {
            self.full.insert(sock.cookie, sock);
        }
    }

    fn apply(&mut self, t: &Step) {
        if t.new == TcpState::Close as u8 {
            if let Some(mut gone) = self.full.remove(&t.cookie)
                && (t.old == TcpState::FinWait2 as u8 || t.old == TcpState::Closing as u8)
            {
                gone.state = TcpState::TimeWait as u8;
                (gone.rqueue, gone.wqueue) = (0, 0);
                self.timewait.insert(tuple(&gone), (gone, t.ts_ns + TIME_WAIT_NS));
            }
            return;
        }
        let prev = self.full.get(&t.cookie);
        // Keep the last complete tuple when this transition's is partial (see `lifetime`).
        let (src, sport, dst, dport) = match prev {
            Some(p) if t.sport == 0 || t.dport == 0 => (p.src, p.sport, p.dst, p.dport),
            _ => (t.src, t.sport, t.dst, t.dport),
        };
        let (uid, inode) = prev.map_or((0, 0), |p| (p.uid, p.inode));
        let sock = InetSocket {
            v6only: t.v6only,
            ifindex: t.ifindex,
            rqueue: t.rqueue,
            wqueue: t.wqueue,
            uid,
            inode,
            ..InetSocket::tcp(t.family, t.new, (src, sport), (dst, dport), t.cookie)
        };
        // A new connection on a timewait tuple replaces the timewait socket.
        self.timewait.remove(&tuple(&sock));
        self.full.insert(t.cookie, sock);
    }

    fn sockets_at(&self, at_ns: i64) -> Vec<InetSocket> {
        let mut out: Vec<InetSocket> = self.full.values().cloned().collect();
        for (sock, expires) in self.timewait.values() {
            if *expires <= at_ns {
                continue;
            }
            let mut s = sock.clone();
            // An orphaned socket closed in FIN-WAIT-2 hands over in the timewait
            // FIN-WAIT-2 substate, which ss shows as FIN-WAIT-2, until the peer's FIN
            // arrives. With the peer in this namespace, its CLOSE-WAIT says it has not
            // sent it yet.
            let peer_open = self.full.values().any(|p| {
                p.state == TcpState::CloseWait as u8
                    && p.src == s.dst
                    && p.sport == s.dport
                    && p.dst == s.src
                    && p.dport == s.sport
            });
            if s.state == TcpState::TimeWait as u8 && peer_open {
                s.state = TcpState::FinWait2 as u8;
            }
            out.push(s);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(id: u64, ts: u64, old: TcpState, new: TcpState, sport: u16, dport: u16) -> Transition {
        Transition {
            netns: 1,
            pid: 10,
            tid: 10,
            comm: "t".into(),
            ..Transition::fixture(id, ts, old, new, (sport, dport))
        }
    }

    fn temp_db(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("sockstat-timeline-{name}-{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
        p
    }

    fn writer(path: &Path) -> Writer {
        Writer::start(
            WriterConfig { path: path.to_path_buf(), retain_age: Duration::from_secs(3600), retain_bytes: 1 << 30 },
            1,
        )
        .unwrap()
    }

    #[test]
    fn replays_snapshot_and_transitions_to_a_moment() {
        use TcpState::*;
        let path = temp_db("replay");
        let now = crate::bpf::stream::monotonic_now().as_nanos() as u64;
        let offset;
        {
            let mut w = writer(&path);
            offset = w.offset_ns;
            w.push(Record::Snapshot { mono_ns: now, kind: "seed", sockets: Vec::new() });
            for t in [
                tr(1, now + 10, Close, Listen, 80, 0),
                tr(2, now + 20, Close, SynSent, 0, 80),
                tr(2, now + 30, SynSent, Established, 5000, 80),
                tr(3, now + 31, SynRecv, Established, 80, 5000),
                tr(2, now + 40, Established, FinWait1, 5000, 80),
                tr(3, now + 41, Established, CloseWait, 80, 5000),
                tr(2, now + 42, FinWait1, FinWait2, 5000, 80),
                tr(3, now + 43, CloseWait, LastAck, 80, 5000),
                tr(2, now + 44, FinWait2, Close, 0, 80),
                tr(3, now + 45, LastAck, Close, 0, 5000),
            ] {
                w.push(Record::Transition(t));
            }
            w.flush().unwrap();
        }
        let wall = |mono: u64| mono as i64 + offset;
        let r = Reader::open(&path).unwrap();
        let states = |at: u64| -> Vec<(u16, u16, u8)> {
            let mut v: Vec<_> =
                r.state_at(wall(at)).unwrap().sockets.iter().map(|s| (s.sport, s.dport, s.state)).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(
            states(now + 35),
            vec![(80, 0, Listen as u8), (80, 5000, Established as u8), (5000, 80, Established as u8)]
        );
        // The client handed its tuple (port from the earlier transition) to TIME-WAIT.
        assert_eq!(states(now + 50), vec![(80, 0, Listen as u8), (5000, 80, TimeWait as u8)]);
        // ... which lives 60 s.
        assert_eq!(states(now + 50 + TIME_WAIT_NS as u64), vec![(80, 0, Listen as u8)]);
        let err = r.state_at(wall(now) - 1_000_000_000).unwrap_err();
        assert!(matches!(err, TimelineError::BeforeStart { .. }), "{err}");
    }

    #[test]
    fn batches_are_whole_and_counted() {
        let path = temp_db("batches");
        let mut w = writer(&path);
        for i in 0..10 {
            w.push(Record::Transition(tr(i, 1_000 + i, TcpState::Close, TcpState::SynSent, 0, 1)));
        }
        w.flush().unwrap();
        w.push(Record::Gap(Gap { start_ns: 1, end_ns: 2, lost_kernel: 3, lost_userspace: 0, reason: "test".into() }));
        drop(w);
        let conn = Connection::open(&path).unwrap();
        let (batches, rows): (i64, i64) =
            conn.query_row("SELECT COUNT(*), SUM(rows) FROM batches", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((batches, rows), (2, 11));
        let gaps: i64 = conn.query_row("SELECT COUNT(*) FROM gaps", [], |r| r.get(0)).unwrap();
        assert_eq!(gaps, 1);
    }

    #[test]
    fn retention_cuts_at_a_snapshot_and_keeps_what_it_needs() {
        let path = temp_db("retain");
        let now = crate::bpf::stream::monotonic_now().as_nanos() as u64;
        // Time since boot, in quarters: the test's "hours" (the machine may be young).
        let hour = now / 4;
        {
            let mut w = writer(&path);
            // An old snapshot, old transitions, a newer snapshot, recent transitions, each
            // era its own batch (retention removes whole batches of transitions).
            w.push(Record::Snapshot { mono_ns: now - 3 * hour, kind: "seed", sockets: Vec::new() });
            w.push(Record::Transition(tr(1, now - 3 * hour + 1, TcpState::Close, TcpState::Listen, 80, 0)));
            w.flush().unwrap();
            w.push(Record::Snapshot { mono_ns: now - 2 * hour, kind: "checkpoint", sockets: Vec::new() });
            w.push(Record::Transition(tr(2, now - 2 * hour + 1, TcpState::Close, TcpState::Listen, 81, 0)));
            w.flush().unwrap();
            w.push(Record::Transition(tr(3, now - 1, TcpState::Close, TcpState::Listen, 82, 0)));
        }
        let conn = Connection::open(&path).unwrap();
        let cfg =
            WriterConfig { path: path.clone(), retain_age: Duration::from_nanos(hour * 3 / 2), retain_bytes: 1 << 30 };
        retain(&conn, &cfg).unwrap();
        let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        // The cut (1.5 "hours" ago) falls after the checkpoint of 2 "hours" ago: everything before
        // that checkpoint goes, the checkpoint and what follows it stay.
        assert_eq!(count("SELECT COUNT(*) FROM snapshots"), 1);
        assert_eq!(count("SELECT COUNT(*) FROM snapshots WHERE kind = 'checkpoint'"), 1);
        assert_eq!(count("SELECT COUNT(*) FROM transitions"), 2);
        // Over the size limit: the older half of what remains goes, but never the only
        // snapshot `--at` needs.
        let tiny = WriterConfig { retain_bytes: 1, ..cfg };
        retain(&conn, &tiny).unwrap();
        assert_eq!(count("SELECT COUNT(*) FROM snapshots"), 1);
        assert!(count("SELECT COUNT(*) FROM transitions") >= 1);
    }

    #[test]
    fn new_files_vacuum_incrementally() {
        let path = temp_db("vacuum");
        drop(writer(&path));
        let conn = Connection::open(&path).unwrap();
        let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, 2, "INCREMENTAL, so retention can give pages back");
        let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(journal, "wal");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let path = temp_db("version");
        drop(writer(&path));
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'", [])
            .unwrap();
        assert!(matches!(Reader::open(&path), Err(TimelineError::Version { found: 99, .. })));
    }

    #[test]
    fn the_recorded_namespace_is_read_back() {
        let path = temp_db("netns");
        drop(writer(&path));
        assert_eq!(Reader::open(&path).unwrap().netns().unwrap(), Some(1));
    }
}
