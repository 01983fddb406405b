//! The timeline's writer: the agent's side buffers records and hands them, in batches,
//! to a thread that writes each batch as one SQLite transaction (transitions, lifetimes,
//! gap markers, snapshots), and that applies the retention limits.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    thread::JoinHandle,
    time::{Duration, SystemTime},
};

use rusqlite::{Connection, OptionalExtension, params};

use crate::timeline::{Record, TimelineError, lifetime::OwnerSource, schema, sql, unix_ns};

#[derive(Clone, Debug)]
pub struct WriterConfig {
    pub path: PathBuf,
    /// Rows older than this are deleted (keeping the snapshot they need).
    pub retain_age: Duration,
    /// When the file grows past this, the oldest rows go first.
    pub retain_bytes: u64,
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
        schema::prepare(&conn, &cfg.path, netns)?;
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

#[cfg(test)]
mod tests {
    use sockstat_ebpf::TcpState;

    use super::*;
    use crate::timeline::{
        Gap,
        fixtures::{temp_db, tr, writer},
    };

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
        let now = crate::model::clock::monotonic_now().as_nanos() as u64;
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
}
