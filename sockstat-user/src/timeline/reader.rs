//! The timeline read back for `history` (lifetimes, transitions and gaps in a window)
//! and for a consumer that takes what each batch committed, in order, after a cursor
//! ([`Reader::committed_after`]), from a file opened read-only while the agent writes
//! it. Connection rows are found by number (they follow the order of the closes;
//! `batches` maps times to them, and `crossings` names the rows that reach back past a
//! snapshot) in the blocks that hold them, and unpacked (`codec`) here, only here;
//! rebuilding the table at a moment (`--at`) is `replay`'s, on the same [`Reader`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row as SqlRow};
use rustc_hash::FxHashMap;
use sockstat_ebpf::TcpState;

use crate::{
    bpf::stream::kernel_state_name,
    model::{abi::errno_name, socket::InetSocket},
    timeline::{
        Gap, TimelineError,
        assemble::owner_source,
        codec::{self, ConnRow, Path as StatePath, Step, Trailer},
        lifetime::{Opened, OwnerSource, opened},
        schema, sql,
    },
};

/// Read-only access for `--at` and `history`.
pub struct Reader {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
}

/// The columns [`Row::read`] reads, in its order, from `open_connections` (aliased `c`).
const OPEN_COLUMNS: &str = "c.cookie, c.netns, c.src, c.sport, c.dst, c.dport, c.end_ns, c.duration_ns, c.path, \
     c.steps, c.process, c.owner, c.bytes_sent, c.bytes_received, NULL, c.cgroup, c.error, c.retrans, c.srtt_us";

/// The dictionaries rows point into, read whole (they hold a row per process,
/// namespace and cgroup, not per connection): pid and name by `processes.id`, inode and
/// name by `netns.id`, id and path by `cgroups.id`.
pub(super) struct Names {
    processes: FxHashMap<i64, (u32, String)>,
    netns: FxHashMap<i64, (u32, Option<String>)>,
    cgroups: FxHashMap<i64, (u64, Option<String>)>,
}

impl Names {
    /// Owner pid and name of `row` (0 and empty when unknown).
    pub(super) fn owner(&self, row: &Row) -> (u32, &str) {
        row.process.and_then(|p| self.processes.get(&p)).map_or((0, ""), |(pid, comm)| (*pid, comm.as_str()))
    }

    pub(super) fn netns(&self, row: &Row) -> u32 {
        self.netns_inode(row.netns)
    }

    /// The inode of `netns.id` `id` (0: unknown).
    pub(super) fn netns_inode(&self, id: Option<i64>) -> u32 {
        id.and_then(|n| self.netns.get(&n)).map_or(0, |(inode, _)| *inode)
    }

    pub(super) fn netns_name(&self, row: &Row) -> Option<String> {
        row.netns.and_then(|n| self.netns.get(&n)).and_then(|(_, name)| name.clone())
    }

    /// The cgroup v2 id and path of `row`'s socket, if known.
    pub(super) fn cgroup(&self, row: &Row) -> (Option<u64>, Option<String>) {
        match row.cgroup.and_then(|c| self.cgroups.get(&c)) {
            Some((id, path)) => (Some(*id), path.clone()),
            None => (None, None),
        }
    }
}

/// A socket's row (`connections` or `open_connections`), unpacked.
#[derive(Clone, Debug)]
pub(super) struct Row {
    /// The `connections` rowid; `None` for a socket still open.
    pub rowid: Option<i64>,
    pub cookie: u64,
    /// `netns.id`.
    netns: Option<i64>,
    pub family: u16,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// Wall-clock ns of the first and the last transition.
    pub first_ns: i64,
    pub end_ns: i64,
    pub path: StatePath,
    /// The `steps` column, unpacked only when the transitions are asked for.
    steps: Option<Vec<u8>>,
    /// `processes.id`.
    process: Option<i64>,
    pub owner: Option<u8>,
    pub bytes_sent: i64,
    pub bytes_received: i64,
    /// `cgroups.id`.
    cgroup: Option<i64>,
    error: Option<u32>,
    retrans: Option<u32>,
    srtt_us: Option<u32>,
}

/// One transition of a row, as the row tells it.
#[derive(Clone, Debug)]
pub(super) struct RowTransition {
    pub ts_ns: i64,
    pub old: u8,
    pub new: u8,
    pub queues: (u32, u32),
    pub v6only: bool,
    pub ifindex: u32,
}

impl Row {
    /// Row `rowid` of a block.
    fn from_block(r: ConnRow, rowid: i64) -> Row {
        Row {
            rowid: Some(rowid),
            cookie: r.cookie,
            netns: r.netns,
            family: codec::family_of(codec::addr_bytes(&r.src).as_ref()),
            src: r.src,
            sport: r.sport,
            dst: r.dst,
            dport: r.dport,
            first_ns: r.end_ns.saturating_sub(i64::try_from(r.duration_ns).unwrap_or(i64::MAX)),
            end_ns: r.end_ns,
            path: r.path,
            steps: r.steps,
            process: r.process,
            owner: r.owner,
            bytes_sent: i64::try_from(r.bytes_sent).unwrap_or(i64::MAX),
            bytes_received: i64::try_from(r.bytes_received).unwrap_or(i64::MAX),
            cgroup: r.cgroup,
            error: r.error,
            retrans: r.retrans,
            srtt_us: r.srtt_us,
        }
    }

    fn read(r: &SqlRow<'_>) -> rusqlite::Result<Row> {
        let src: Vec<u8> = r.get(2)?;
        let dst: Vec<u8> = r.get(4)?;
        let end_ns: i64 = r.get(6)?;
        Ok(Row {
            rowid: r.get(14)?,
            cookie: r.get::<_, i64>(0)? as u64,
            netns: r.get(1)?,
            family: codec::family_of(&src),
            src: codec::addr_from(&src),
            sport: r.get(3)?,
            dst: codec::addr_from(&dst),
            dport: r.get(5)?,
            first_ns: end_ns - r.get::<_, i64>(7)?,
            end_ns,
            path: StatePath::from_i64(r.get(8)?),
            steps: r.get(9)?,
            process: r.get(10)?,
            owner: r.get(11)?,
            bytes_sent: r.get(12)?,
            bytes_received: r.get(13)?,
            cgroup: r.get(15)?,
            error: r.get(16)?,
            retrans: r.get(17)?,
            srtt_us: r.get(18)?,
        })
    }

    /// Its transitions, in order: the first at the row's start, the last at its end,
    /// those between from `steps`.
    pub fn transitions(&self) -> Vec<RowTransition> {
        let states: Vec<u8> = self.path.states().collect();
        let n = states.len().saturating_sub(1);
        let (steps, trailer): (Vec<Step>, Trailer) = codec::steps(self.steps.as_deref(), n.saturating_sub(2));
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let (ts_ns, queues) = if i == 0 {
                (self.first_ns, trailer.first_queues)
            } else if i + 1 == n {
                (self.end_ns, trailer.last_queues)
            } else {
                let s = steps.get(i - 1).copied().unwrap_or_default();
                let offset = i64::try_from(s.offset_ns).unwrap_or(i64::MAX);
                (self.first_ns.saturating_add(offset).min(self.end_ns), s.queues)
            };
            let (v6only, ifindex) = (trailer.v6only, trailer.ifindex);
            out.push(RowTransition { ts_ns, old: states[i], new: states[i + 1], queues, v6only, ifindex });
        }
        out
    }

    /// The socket as transition `t` left it.
    pub fn socket(&self, t: &RowTransition) -> InetSocket {
        InetSocket {
            v6only: t.v6only,
            ifindex: t.ifindex,
            rqueue: t.queues.0,
            wqueue: t.queues.1,
            ..InetSocket::tcp(self.family, t.new, (self.src, self.sport), (self.dst, self.dport), self.cookie)
        }
    }

    fn opened(&self) -> Opened {
        opened(self.path.get(0), self.path.get(1))
    }

    /// The finished connection this row records, if it is one.
    pub(super) fn lifetime(&self, names: &Names) -> Option<StoredLifetime> {
        let owner = owner_source(self.owner?);
        let active = match self.opened() {
            Opened::Active => Some(true),
            Opened::Passive => Some(false),
            Opened::Before => None,
        };
        let start_ns = active.map(|_| self.first_ns);
        let (pid, comm) = names.owner(self);
        let (cgroup_id, cgroup) = names.cgroup(self);
        Some(StoredLifetime {
            start_ns,
            end_ns: self.end_ns,
            duration_ns: start_ns.map(|s| self.end_ns - s),
            pid,
            comm: comm.to_string(),
            owner: owner_text(owner).to_string(),
            active,
            family: self.family,
            src: self.src,
            sport: self.sport,
            dst: self.dst,
            dport: self.dport,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
            path: self.path.states().skip(1).map(kernel_state_name).collect::<Vec<_>>().join(">"),
            cookie: self.cookie,
            netns: names.netns(self),
            netns_name: names.netns_name(self),
            cgroup,
            cgroup_id,
            error: self.error.map(errno_name),
            retrans: self.retrans,
            srtt_us: self.srtt_us,
        })
    }
}

fn owner_text(o: OwnerSource) -> &'static str {
    match o {
        OwnerSource::Connect => "connect",
        OwnerSource::Accept => "accept",
        OwnerSource::Listener => "listener",
        OwnerSource::Unknown => "unknown",
    }
}

/// A `connections` block as stored: its first row number, its blob, and its batch's
/// `base_ns` and `cookie_base`.
type StoredBlock = (i64, Vec<u8>, Option<i64>, Option<i64>);

/// A snapshot: (id, wall ns, the rowid the next connection row got).
pub(super) type Snapshot = (i64, i64, i64);

/// What the row fetchers call on each row.
pub(super) type Visit<'a> = &'a mut dyn FnMut(Row);

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, TimelineError> {
        // Say why a user cannot read it before SQLite says "unable to open database file".
        if let Err(source) = std::fs::File::open(path)
            && source.kind() == std::io::ErrorKind::PermissionDenied
        {
            return Err(TimelineError::NoAccess { path: path.to_path_buf(), source });
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(sql(path))?;
        schema::check(&conn, path)?;
        Ok(Reader { conn, path: path.to_path_buf() })
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

    /// The dictionaries, read whole.
    pub(super) fn names(&self) -> Result<Names, TimelineError> {
        let e = sql(&self.path);
        let mut st = self.conn.prepare("SELECT id, pid, comm FROM processes").map_err(&e)?;
        let processes =
            st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))).and_then(Iterator::collect).map_err(&e)?;
        let mut st = self.conn.prepare("SELECT id, inode, name FROM netns").map_err(&e)?;
        let netns =
            st.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?)))).and_then(Iterator::collect).map_err(&e)?;
        let mut st = self.conn.prepare("SELECT id, cgroup_id, path FROM cgroups").map_err(&e)?;
        let cgroups = st
            .query_map([], |r| Ok((r.get(0)?, (r.get::<_, i64>(1)?.cast_unsigned(), r.get(2)?))))
            .and_then(Iterator::collect)
            .map_err(&e)?;
        Ok(Names { processes, netns, cgroups })
    }

    /// The newest snapshot at or before `at_ns` that stands for network namespace
    /// `netns` (its inode): one of every namespace that did not defer it, or its own
    /// part of a checkpoint spread over time.
    pub(super) fn snapshot_for(&self, at_ns: i64, netns: u32) -> Result<Option<Snapshot>, TimelineError> {
        let e = sql(&self.path);
        let id: Option<i64> = self
            .conn
            .query_row("SELECT id FROM netns WHERE inode = ?1", [netns], |r| r.get(0))
            .optional()
            .map_err(&e)?;
        self.conn
            .query_row(
                "SELECT s.id, s.ts_ns, s.first_conn FROM snapshots s WHERE s.ts_ns <= ?1
                   AND ((s.netns IS NULL AND NOT EXISTS
                          (SELECT 1 FROM snapshot_deferred d WHERE d.snapshot = s.id AND d.netns = ?2))
                        OR s.netns = ?2)
                 ORDER BY s.ts_ns DESC, s.id DESC LIMIT 1",
                rusqlite::params![at_ns, id.unwrap_or(-1)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(&e)
    }

    /// The oldest snapshot after `at_ns`.
    pub(super) fn snapshot_after(&self, at_ns: i64) -> Result<Option<Snapshot>, TimelineError> {
        self.conn
            .query_row(
                "SELECT id, ts_ns, first_conn FROM snapshots WHERE ts_ns > ?1 ORDER BY ts_ns, id LIMIT 1",
                [at_ns],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sql(&self.path))
    }

    /// The block holding connection row `conn`, if any: its first row number and its
    /// rows.
    fn block_at(&self, conn: i64) -> Result<Option<(i64, Vec<ConnRow>)>, TimelineError> {
        let e = sql(&self.path);
        let found: Option<StoredBlock> = self
            .conn
            .prepare_cached(
                "SELECT c.first, c.data, b.base_ns, b.cookie_base FROM connections c
                 LEFT JOIN batches b ON b.first_conn = c.first
                 WHERE c.first = (SELECT MAX(first) FROM connections WHERE first <= ?1)",
            )
            .map_err(&e)?
            .query_row([conn], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()
            .map_err(&e)?;
        found.map(|(first, data, base, cookie)| Ok((first, self.decode(first, &data, base, cookie)?))).transpose()
    }

    /// The rows of the block that starts at row `first`, from its blob and its batch's
    /// bases.
    fn decode(
        &self,
        first: i64,
        data: &[u8],
        base_ns: Option<i64>,
        cookie_base: Option<i64>,
    ) -> Result<Vec<ConnRow>, TimelineError> {
        codec::read_block(data, cookie_base.unwrap_or(0).cast_unsigned(), base_ns.unwrap_or(0))
            .map_err(|source| TimelineError::Block { path: self.path.clone(), first, source })
    }

    /// Calls `f` on each `connections` row with a rowid in `lo..=hi`, in rowid order.
    pub(super) fn rows_between(&self, lo: i64, hi: i64, f: Visit<'_>) -> Result<(), TimelineError> {
        let e = sql(&self.path);
        if lo > hi {
            return Ok(());
        }
        // The block holding `lo`, then those after it up to `hi`.
        let from: Option<i64> = self
            .conn
            .query_row("SELECT MAX(first) FROM connections WHERE first <= ?1", [lo], |r| r.get(0))
            .map_err(&e)?;
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT c.first, c.data, b.base_ns, b.cookie_base FROM connections c
                 LEFT JOIN batches b ON b.first_conn = c.first
                 WHERE c.first BETWEEN ?1 AND ?2 ORDER BY c.first",
            )
            .map_err(&e)?;
        let mut rows = st.query([from.unwrap_or(lo), hi]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let first: i64 = r.get(0).map_err(&e)?;
            let data: Vec<u8> = r.get(1).map_err(&e)?;
            let block = self.decode(first, &data, r.get(2).map_err(&e)?, r.get(3).map_err(&e)?)?;
            for (rowid, row) in (first..).zip(block) {
                if (lo..=hi).contains(&rowid) {
                    f(Row::from_block(row, rowid));
                }
            }
        }
        Ok(())
    }

    /// Calls `f` on each `connections` row at or after rowid `from` of a socket that
    /// was open at snapshot `snapshot` or an earlier one.
    fn crossing_rows(&self, from: i64, snapshot: i64, f: Visit<'_>) -> Result<(), TimelineError> {
        let e = sql(&self.path);
        let conns: Vec<i64> = self
            .conn
            .prepare_cached("SELECT conn FROM crossings WHERE conn >= ?1 AND snapshot <= ?2 ORDER BY conn")
            .map_err(&e)?
            .query_map([from, snapshot], |r| r.get(0))
            .and_then(Iterator::collect)
            .map_err(&e)?;
        // Rows of one block come together: it is decoded once.
        let mut block: Option<(i64, Vec<ConnRow>)> = None;
        for conn in conns {
            let held = |b: &(i64, Vec<ConnRow>)| conn >= b.0 && conn - b.0 < i64::try_from(b.1.len()).unwrap_or(0);
            if !block.as_ref().is_some_and(held) {
                block = self.block_at(conn)?;
            }
            if let Some((first, rows)) = &block
                && let Some(row) = usize::try_from(conn - first).ok().and_then(|i| rows.get(i))
            {
                f(Row::from_block(row.clone(), conn));
            }
        }
        Ok(())
    }

    /// Calls `f` on each socket open at the end of the agent's last batch.
    fn open_rows(&self, f: Visit<'_>) -> Result<(), TimelineError> {
        let e = sql(&self.path);
        let mut st = self
            .conn
            .prepare_cached(&format!("SELECT {OPEN_COLUMNS} FROM open_connections c ORDER BY c.end_ns"))
            .map_err(&e)?;
        for row in st.query_map([], Row::read).map_err(&e)? {
            f(row.map_err(&e)?);
        }
        Ok(())
    }

    /// The first rowid of the first batch that wrote a row ending at or after `from`.
    pub(super) fn first_row_ending_from(&self, from: i64) -> Result<Option<i64>, TimelineError> {
        self.conn
            .query_row("SELECT MIN(first_conn) FROM batches WHERE max_end_ns >= ?1", [from], |r| r.get(0))
            .map_err(sql(&self.path))
    }

    /// Calls `f` on every row with a transition in `[from, to]`, and some more: those
    /// written from the first batch that ends at or after `from` up to the first
    /// snapshot after `to`, those crossing that snapshot, and (with `open`) the open
    /// ones.
    pub(super) fn rows_around(&self, from: i64, to: i64, open: bool, f: Visit<'_>) -> Result<(), TimelineError> {
        let next = if to == i64::MAX { None } else { self.snapshot_after(to)? };
        let hi = next.map_or(i64::MAX, |n| n.2 - 1);
        if let Some(lo) = self.first_row_ending_from(from)? {
            self.rows_between(lo, hi, f)?;
        }
        if let Some((id, _, first_conn)) = next {
            self.crossing_rows(first_conn, id, f)?;
        }
        if open {
            self.open_rows(f)?;
        }
        Ok(())
    }

    /// Calls `f` on the rows a replay from snapshot `snap` up to `at_ns` needs: written
    /// after the snapshot up to the next one, crossing that one, and open.
    pub(super) fn rows_for_replay(&self, snap: Snapshot, at_ns: i64, f: Visit<'_>) -> Result<(), TimelineError> {
        let next = self.snapshot_after(at_ns)?;
        let hi = next.map_or(i64::MAX, |n| n.2 - 1);
        self.rows_between(snap.2, hi, f)?;
        if let Some((id, _, first_conn)) = next {
            self.crossing_rows(first_conn, id, f)?;
        }
        self.open_rows(f)
    }

    pub(super) fn gaps_between(&self, from: i64, to: i64) -> Result<Vec<Gap>, TimelineError> {
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

    /// Finished connections that were open at some time in `[since, until]` (begun
    /// before the agent: ended in it), by end time.
    pub fn lifetimes(&self, since: i64, until: i64) -> Result<Vec<StoredLifetime>, TimelineError> {
        let names = self.names()?;
        let mut rows: Vec<(i64, StoredLifetime)> = Vec::new();
        self.rows_around(since, until, false, &mut |r| {
            if let Some(l) = r.lifetime(&names)
                && l.end_ns >= since
                && l.start_ns.unwrap_or(l.end_ns) <= until
            {
                rows.push((r.rowid.unwrap_or(i64::MAX), l));
            }
        })?;
        rows.sort_by_key(|(id, l)| (l.end_ns, *id));
        Ok(rows.into_iter().map(|(_, l)| l).collect())
    }

    /// Transitions in `[since, until]`: the stored ones where the agent kept one row per
    /// transition, else as each socket's row tells them (with its owner, and its last
    /// complete tuple), in time order.
    pub fn transitions(&self, since: i64, until: i64) -> Result<Vec<StoredTransition>, TimelineError> {
        let e = sql(&self.path);
        // Batches that kept one row per transition cover these times.
        let mut st = self
            .conn
            .prepare(
                "SELECT min_ts_ns, max_ts_ns, first_transition, last_transition FROM batches
                 WHERE first_transition IS NOT NULL AND max_ts_ns >= ?1 AND min_ts_ns <= ?2 ORDER BY min_ts_ns",
            )
            .map_err(&e)?;
        let kept: Vec<(i64, i64, i64, i64)> = st
            .query_map([since, until], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .and_then(Iterator::collect)
            .map_err(&e)?;
        let covered = |ts: i64| kept.iter().any(|k| k.0 <= ts && ts <= k.1);
        let mut out: Vec<(i64, u64, StoredTransition)> = Vec::new();
        if let (Some(lo), Some(hi)) = (kept.iter().map(|k| k.2).min(), kept.iter().map(|k| k.3).max()) {
            let mut st = self
                .conn
                .prepare(
                    "SELECT t.ts_ns, p.pid, p.comm, t.src, t.sport, t.dst, t.dport, t.old_state, t.new_state, t.cookie,
                        n.inode, t.id, n.name
                     FROM transitions t LEFT JOIN processes p ON p.id = t.process LEFT JOIN netns n ON n.id = t.netns
                     WHERE t.id BETWEEN ?3 AND ?4 AND t.ts_ns >= ?1 AND t.ts_ns <= ?2 AND t.accept = 0 ORDER BY t.id",
                )
                .map_err(&e)?;
            let rows = st
                .query_map([since, until, lo, hi], |r| {
                    let src: Vec<u8> = r.get(3)?;
                    let dst: Vec<u8> = r.get(5)?;
                    Ok((
                        r.get::<_, i64>(11)?,
                        StoredTransition {
                            ts_ns: r.get(0)?,
                            pid: r.get::<_, Option<u32>>(1)?.unwrap_or(0),
                            comm: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                            family: codec::family_of(&src),
                            src: codec::addr_from(&src),
                            sport: r.get(4)?,
                            dst: codec::addr_from(&dst),
                            dport: r.get(6)?,
                            old: r.get(7)?,
                            new: r.get(8)?,
                            cookie: r.get::<_, i64>(9)? as u64,
                            netns: r.get::<_, Option<u32>>(10)?.unwrap_or(0),
                            netns_name: r.get(12)?,
                            cgroup: None,
                            cgroup_id: None,
                        },
                    ))
                })
                .map_err(&e)?;
            for row in rows {
                let (id, t) = row.map_err(&e)?;
                out.push((t.ts_ns, id.unsigned_abs(), t));
            }
        }
        let names = self.names()?;
        let mut seq = 0u64;
        self.rows_around(since, until, true, &mut |row| {
            if row.end_ns < since || row.first_ns > until {
                return;
            }
            for stored in row_transitions(&row, &names) {
                seq += 1;
                if stored.ts_ns < since || stored.ts_ns > until || covered(stored.ts_ns) {
                    continue;
                }
                out.push((stored.ts_ns, u64::MAX / 2 + seq, stored));
            }
        })?;
        out.sort_by_key(|(ts, seq, _)| (*ts, *seq));
        Ok(out.into_iter().map(|(_, _, t)| t).collect())
    }

    pub fn gaps(&self, since: i64, until: i64) -> Result<Vec<Gap>, TimelineError> {
        self.gaps_between(since, until)
    }

    /// What the batches after batch `after` committed, in commit order, at most `max`
    /// batches: each batch's gaps, then its finished connections in the order they
    /// closed. A consumer that reads the timeline as an outbox keeps the last batch id it
    /// took as its cursor: a batch is one transaction, so it is seen whole or not at all.
    /// Retention may have deleted batches after a stale cursor: the first batch returned
    /// says where reading went on.
    ///
    /// # Errors
    /// The queries', or a connection block that does not decode.
    pub fn committed_after(&self, after: i64, max: u32) -> Result<Vec<Committed>, TimelineError> {
        let names = self.names()?;
        let mut out = Vec::new();
        self.visit_committed(after, max, &mut |batch, record| {
            match record {
                CommittedRow::Gap(id, gap) => out.push(Committed::Gap { batch, id, gap }),
                CommittedRow::Row(row) => {
                    if let (Some(life), Some(row)) = (row.lifetime(&names), row.rowid) {
                        out.push(Committed::Lifetime { batch, row, life: Box::new(life) });
                    }
                }
            }
            true
        })?;
        Ok(out)
    }

    /// Calls `f` with each record the batches after batch `after` committed (at most
    /// `max` batches), in commit order: each batch's gaps by id, then every connection
    /// row it wrote (finished or not) by number. `f` returning false stops the reading
    /// at the end of that batch's block (what `f` is called with after that it may
    /// ignore). Returns the id of the last batch read, if any.
    ///
    /// # Errors
    /// The queries', or a connection block that does not decode.
    pub(super) fn visit_committed(
        &self,
        after: i64,
        max: u32,
        f: &mut dyn FnMut(i64, CommittedRow) -> bool,
    ) -> Result<Option<i64>, TimelineError> {
        let e = sql(&self.path);
        let batches: Vec<(i64, Option<i64>, Option<i64>)> = self
            .conn
            .prepare_cached("SELECT id, first_conn, last_conn FROM batches WHERE id > ?1 ORDER BY id LIMIT ?2")
            .map_err(&e)?
            .query_map([after, i64::from(max)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(&e)?;
        let mut last = None;
        let mut go_on = true;
        for (batch, first, last_conn) in batches {
            if !go_on {
                break;
            }
            last = Some(batch);
            let mut st = self
                .conn
                .prepare_cached(
                    "SELECT id, start_ns, end_ns, lost_kernel, lost_userspace, reason FROM gaps WHERE batch = ?1 ORDER BY id",
                )
                .map_err(&e)?;
            let gaps = st
                .query_map([batch], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        Gap {
                            start_ns: r.get(1)?,
                            end_ns: r.get(2)?,
                            lost_kernel: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                            lost_userspace: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                            reason: r.get(5)?,
                        },
                    ))
                })
                .map_err(&e)?;
            for g in gaps {
                let (id, gap) = g.map_err(&e)?;
                go_on = go_on && f(batch, CommittedRow::Gap(id, gap));
            }
            if let (Some(first), Some(last_conn)) = (first, last_conn)
                && go_on
            {
                self.rows_between(first, last_conn, &mut |row| go_on = go_on && f(batch, CommittedRow::Row(row)))?;
            }
        }
        Ok(last)
    }
}

/// A record of a batch as [`Reader::visit_committed`] reads it: gap marker `id`, or a
/// connection row (its number in `rowid`).
pub(super) enum CommittedRow {
    Gap(i64, Gap),
    Row(Row),
}

/// A record as a batch committed it ([`Reader::committed_after`]).
#[derive(Clone, Debug)]
pub enum Committed {
    /// Events were lost (gap `id`).
    Gap { batch: i64, id: i64, gap: Gap },
    /// A connection finished (connection row `row`).
    Lifetime { batch: i64, row: i64, life: Box<StoredLifetime> },
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
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
    /// The network namespace's inode, and its name in /run/netns when it had one.
    pub netns: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns_name: Option<String>,
    /// The socket's cgroup: its path under the cgroup2 mount, and its v2 id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_id: Option<u64>,
    /// The errno the kernel left on the socket at its close (`ECONNREFUSED`); absent
    /// when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Retransmits and smoothed RTT (microseconds) at its close.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrans: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub srtt_us: Option<u32>,
}

impl StoredLifetime {
    pub fn as_socket(&self) -> InetSocket {
        InetSocket::tcp(self.family, TcpState::Close as u8, (self.src, self.sport), (self.dst, self.dport), self.cookie)
            .with_cgroup(self.cgroup_id)
    }

    /// A connection that failed: it ended with an error, or, seen from its start, never
    /// reached ESTABLISHED (a connect that got no answer, a handshake the peer
    /// abandoned). One begun before the agent may have been established before.
    pub fn failed(&self) -> bool {
        self.error.is_some() || (self.active.is_some() && !self.path.split('>').any(|s| s == "ESTABLISHED"))
    }

    /// The state numbers of `path`.
    pub fn states(&self) -> Vec<u8> {
        self.path.split('>').filter_map(crate::bpf::stream::kernel_state_number).collect()
    }
}

/// A transition as `history` prints it (its JSON fields are this struct's).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_id: Option<u64>,
}

impl StoredTransition {
    pub fn as_socket(&self) -> InetSocket {
        InetSocket::tcp(self.family, self.new, (self.src, self.sport), (self.dst, self.dport), self.cookie)
            .with_cgroup(self.cgroup_id)
    }
}

/// A finished connection's transitions, as its row tells them (`history --transitions` and the fleet export).
pub(super) fn row_transitions(row: &Row, names: &Names) -> Vec<StoredTransition> {
    let (pid, comm) = names.owner(row);
    let (cgroup_id, cgroup) = names.cgroup(row);
    row.transitions()
        .into_iter()
        .map(|t| StoredTransition {
            ts_ns: t.ts_ns,
            pid,
            comm: comm.to_string(),
            family: row.family,
            src: row.src,
            sport: row.sport,
            dst: row.dst,
            dport: row.dport,
            old: t.old,
            new: t.new,
            cookie: row.cookie,
            netns: names.netns(row),
            netns_name: names.netns_name(row),
            cgroup: cgroup.clone(),
            cgroup_id,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::timeline::{
        Record, Writer, WriterConfig,
        fixtures::{temp_db, tr, writer},
    };
    use TcpState::*;

    #[test]
    fn the_recorded_namespace_is_read_back() {
        let path = temp_db("netns");
        drop(writer(&path));
        assert_eq!(Reader::open(&path).unwrap().netns().unwrap(), Some(1));
    }

    /// A client and a server connection over loopback, as the stream reports them
    /// (times between the first and the last of each on whole microseconds).
    fn pair(w: &mut Writer, t0: u64) {
        let mut listen = tr(1, t0, Close, Listen, 80, 0);
        (listen.pid, listen.comm, listen.wqueue) = (100, "server".into(), 128);
        for t in [
            listen,
            tr(2, t0 + 1_007, Close, SynSent, 0, 80),
            tr(2, t0 + 3_007, SynSent, Established, 5000, 80),
            tr(3, t0 + 3_100, Listen, SynRecv, 80, 5000),
            tr(3, t0 + 3_200, SynRecv, Established, 80, 5000),
            tr(2, t0 + 40_007, Established, FinWait1, 5000, 80),
            Transition { rqueue: 1, ..tr(3, t0 + 41_100, Established, CloseWait, 80, 5000) },
            tr(2, t0 + 42_007, FinWait1, FinWait2, 5000, 80),
            tr(3, t0 + 43_100, CloseWait, LastAck, 80, 5000),
            tr(2, t0 + 44_003, FinWait2, Close, 5000, 80),
            tr(3, t0 + 45_000, LastAck, Close, 80, 5000),
        ] {
            w.push(Record::Transition(t));
        }
    }

    use crate::bpf::stream::Transition;

    /// Fixed names and paths, as the agent's labels would give them.
    struct Fixed;

    impl crate::timeline::Labels for Fixed {
        fn netns_name(&self, inode: u32) -> Option<String> {
            (inode == 2).then(|| "blue".to_owned())
        }

        fn cgroup_path(&self, id: u64) -> Option<String> {
            (id == 77).then(|| "/system.slice/nginx.service".to_owned())
        }
    }

    #[test]
    fn namespace_cgroup_error_and_health_come_back_with_their_names() {
        let path = temp_db("health");
        {
            let cfg = WriterConfig {
                commit_every: Duration::ZERO,
                labels: crate::timeline::LabelSource(Some(std::sync::Arc::new(Fixed))),
                ..WriterConfig::new(path.clone(), Duration::from_secs(3600), 1 << 30, false)
            };
            let mut w = Writer::start(cfg, 1).unwrap();
            let ns2 = |t: Transition| Transition { netns: 2, cgroup_id: 77, ..t };
            // A refused connect in namespace 2, in a cgroup.
            w.push(Record::Transition(ns2(tr(5, 1_000, Close, SynSent, 0, 81))));
            w.push(Record::Transition(Transition { error: 111, ..ns2(tr(5, 2_000, SynSent, Close, 0, 81)) }));
            // A connection that worked, in namespace 1, without a cgroup.
            w.push(Record::Transition(tr(6, 3_000, Close, SynSent, 0, 80)));
            w.push(Record::Transition(tr(6, 4_000, SynSent, Established, 5001, 80)));
            w.push(Record::Transition(Transition {
                retrans: 2,
                srtt_us: 350,
                ..tr(6, 5_000, Established, Close, 5001, 80)
            }));
        }
        let r = Reader::open(&path).unwrap();
        let lives = r.lifetimes(i64::MIN, i64::MAX).unwrap();
        let refused = lives.iter().find(|l| l.dport == 81).unwrap();
        assert_eq!((refused.netns, refused.netns_name.as_deref()), (2, Some("blue")));
        assert_eq!((refused.cgroup.as_deref(), refused.cgroup_id), (Some("/system.slice/nginx.service"), Some(77)));
        assert_eq!((refused.error.as_deref(), refused.retrans, refused.srtt_us), (Some("ECONNREFUSED"), Some(0), None));
        assert!(refused.failed());
        let ok = lives.iter().find(|l| l.dport == 80).unwrap();
        assert_eq!((ok.netns, ok.netns_name.as_deref(), ok.cgroup.as_deref()), (1, None, None));
        assert_eq!((ok.error.as_deref(), ok.retrans, ok.srtt_us), (None, Some(2), Some(350)));
        assert!(!ok.failed());
        // Begun before the agent: its path shows no ESTABLISHED, and says nothing of a
        // failure.
        let before = StoredLifetime { active: None, path: "FIN_WAIT1>FIN_WAIT2>CLOSE".into(), ..ok.clone() };
        assert!(!before.failed());
        assert!(StoredLifetime { active: Some(true), path: "SYN_SENT>CLOSE".into(), ..ok.clone() }.failed());
        // JSON: absent, not null, where there is nothing to say.
        let j = serde_json::to_value(ok).unwrap();
        assert!(j.get("error").is_none() && j.get("cgroup").is_none() && j["srtt_us"] == 350, "{j}");
        // The cgroup goes to the filter's subject: `cgroup` conditions select on it.
        assert_eq!(refused.as_socket().ext.map(|e| e.cgroup_id), Some(77));
        let ts = r.transitions(i64::MIN, i64::MAX).unwrap();
        assert!(
            ts.iter().filter(|t| t.cookie == 5).all(|t| t.cgroup.as_deref() == Some("/system.slice/nginx.service"))
        );
    }

    #[test]
    fn lifetimes_and_transitions_come_back_from_the_rows() {
        let path = temp_db("lifetimes");
        let offset;
        {
            let mut w = writer(&path);
            offset = w.offset_ns;
            pair(&mut w, 1_000_000);
        }
        let r = Reader::open(&path).unwrap();
        let lives = r.lifetimes(i64::MIN, i64::MAX).unwrap();
        assert_eq!(lives.len(), 2, "the listener is not a connection");
        let c = &lives[0];
        assert_eq!((c.sport, c.dport, c.pid, c.owner.as_str(), c.active), (5000, 80, 10, "connect", Some(true)));
        assert_eq!(c.path, "SYN_SENT>ESTABLISHED>FIN_WAIT1>FIN_WAIT2>CLOSE");
        assert_eq!((c.start_ns, c.end_ns), (Some(1_001_007 + offset), 1_044_003 + offset), "to the nanosecond");
        let s = &lives[1];
        assert_eq!((s.pid, s.comm.as_str(), s.owner.as_str()), (100, "server", "listener"), "its listener's owner");
        assert_eq!(s.path, "SYN_RECV>ESTABLISHED>CLOSE_WAIT>LAST_ACK>CLOSE");
        // Transitions, from the rows: the listener's too, in time order.
        let ts = r.transitions(i64::MIN, i64::MAX).unwrap();
        let seen: Vec<(u64, u8, u8)> = ts.iter().map(|t| (t.cookie, t.old, t.new)).collect();
        assert_eq!(seen.len(), 11);
        assert_eq!(seen[0], (1, Close as u8, Listen as u8));
        assert_eq!(seen[10], (3, LastAck as u8, Close as u8));
        assert!(ts.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns));
        // The client's SYN_SENT names its port, from the row's complete tuple.
        assert_eq!(ts[1].sport, 5000);
        // A window: only what happened in it.
        let mid = r.transitions(1_040_000 + offset, 1_042_500 + offset).unwrap();
        assert_eq!(mid.iter().map(|t| t.new).collect::<Vec<_>>(), [FinWait1 as u8, CloseWait as u8, FinWait2 as u8]);
        assert_eq!(r.lifetimes(1_044_500 + offset, i64::MAX).unwrap().len(), 1, "only the server ends after");
    }

    #[test]
    fn what_batches_committed_comes_back_in_order_after_a_cursor() {
        let path = temp_db("committed");
        {
            let mut w = writer(&path);
            pair(&mut w, 1_000_000);
            w.flush().unwrap();
            w.push(Record::Gap(Gap { start_ns: 1, end_ns: 2, lost_kernel: 3, lost_userspace: 0, reason: "t".into() }));
            w.flush().unwrap();
            pair(&mut w, 2_000_000);
        }
        let r = Reader::open(&path).unwrap();
        let all = r.committed_after(0, 100).unwrap();
        let kinds: Vec<&str> = all
            .iter()
            .map(|c| match c {
                Committed::Gap { .. } => "gap",
                Committed::Lifetime { .. } => "life",
            })
            .collect();
        assert_eq!(kinds, ["life", "life", "gap", "life", "life"]);
        let batch_of = |c: &Committed| match c {
            Committed::Gap { batch, .. } | Committed::Lifetime { batch, .. } => *batch,
        };
        assert!(all.windows(2).all(|w| batch_of(&w[0]) <= batch_of(&w[1])));
        // From a cursor: only what came after it, one batch at a time.
        let cursor = batch_of(&all[1]);
        let next = r.committed_after(cursor, 1).unwrap();
        assert_eq!(next.len(), 1);
        assert!(matches!(&next[0], Committed::Gap { gap, .. } if gap.lost_kernel == 3));
        let rest = r.committed_after(batch_of(&next[0]), 100).unwrap();
        assert_eq!(rest.len(), 2);
        assert!(r.committed_after(batch_of(&all[4]), 100).unwrap().is_empty());
    }

    #[test]
    fn stored_transitions_are_used_where_the_agent_kept_them() {
        let path = temp_db("kept");
        {
            let cfg = WriterConfig {
                commit_every: Duration::ZERO,
                ..WriterConfig::new(path.clone(), Duration::from_secs(3600), 1 << 30, true)
            };
            let mut w = Writer::start(cfg, 1).unwrap();
            pair(&mut w, 1_000_000);
        }
        let r = Reader::open(&path).unwrap();
        let ts = r.transitions(i64::MIN, i64::MAX).unwrap();
        assert_eq!(ts.len(), 11, "each once");
        // The stored one keeps the tuple the event had.
        assert_eq!(ts.iter().find(|t| t.new == SynSent as u8).unwrap().sport, 0);
    }
}
