//! The timeline read back for `history`: lifetimes, transitions and gaps in a window,
//! from a file opened read-only while the agent writes it. Rebuilding the table at a
//! moment (`--at`) is `replay`'s, on the same [`Reader`].

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sockstat_ebpf::TcpState;

use crate::{
    bpf::stream::Transition,
    model::socket::InetSocket,
    timeline::{Gap, TimelineError, schema, sql},
};

/// Read-only access for `--at` and `history`.
pub struct Reader {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
}

pub(super) fn addr(text: &str) -> IpAddr {
    text.parse().unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}

/// The `transitions` columns [`transition_row`] reads, in its order.
pub(super) const TRANSITION_COLUMNS: &str = "ts_ns, mono_ns, cookie, netns, pid, tid, comm, family, src, sport, dst, \
     dport, old_state, new_state, rqueue, wqueue, bytes_acked, bytes_received, v6only, ifindex, accept";

/// A stored transition read back ([`TRANSITION_COLUMNS`]): the wall-clock time it was
/// stored under, and the event as the stream gave it (`ts_ns` CLOCK_MONOTONIC, as then).
pub(super) fn transition_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Transition)> {
    Ok((
        r.get(0)?,
        Transition {
            ts_ns: r.get::<_, i64>(1)? as u64,
            cookie: r.get::<_, i64>(2)? as u64,
            netns: r.get(3)?,
            pid: r.get(4)?,
            tid: r.get(5)?,
            comm: r.get(6)?,
            family: r.get(7)?,
            src: addr(&r.get::<_, String>(8)?),
            sport: r.get(9)?,
            dst: addr(&r.get::<_, String>(10)?),
            dport: r.get(11)?,
            old: r.get(12)?,
            new: r.get(13)?,
            rqueue: r.get(14)?,
            wqueue: r.get(15)?,
            bytes_acked: r.get::<_, i64>(16)? as u64,
            bytes_received: r.get::<_, i64>(17)? as u64,
            v6only: r.get(18)?,
            ifindex: r.get(19)?,
            accept: r.get(20)?,
        },
    ))
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, TimelineError> {
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

    /// The id range holding every transition with a time in `[from, to]`: from the
    /// first batch that ends at or after `from` to the last that starts at or before `to`.
    pub(super) fn transition_ids(&self, from: i64, to: i64) -> Result<(i64, i64), TimelineError> {
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
            .prepare(&format!(
                "SELECT {TRANSITION_COLUMNS}
                 FROM transitions WHERE id BETWEEN ?3 AND ?4 AND ts_ns >= ?1 AND ts_ns <= ?2 AND accept = 0 ORDER BY id"
            ))
            .map_err(sql(&self.path))?;
        let (lo, hi) = self.transition_ids(since, until)?;
        st.query_map([since, until, lo, hi], |r| transition_row(r).map(|(ts_ns, t)| StoredTransition::new(ts_ns, t)))
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

/// A transition as `history` prints it (its JSON fields are this struct's): the stored
/// [`Transition`] with its wall-clock time, less what `history` does not show.
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

impl StoredTransition {
    fn new(ts_ns: i64, t: Transition) -> StoredTransition {
        StoredTransition {
            ts_ns,
            pid: t.pid,
            comm: t.comm,
            family: t.family,
            src: t.src,
            sport: t.sport,
            dst: t.dst,
            dport: t.dport,
            old: t.old,
            new: t.new,
            cookie: t.cookie,
            netns: t.netns,
        }
    }

    pub fn as_socket(&self) -> InetSocket {
        InetSocket::tcp(self.family, self.new, (self.src, self.sport), (self.dst, self.dport), self.cookie)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::fixtures::{temp_db, writer};

    #[test]
    fn the_recorded_namespace_is_read_back() {
        let path = temp_db("netns");
        drop(writer(&path));
        assert_eq!(Reader::open(&path).unwrap().netns().unwrap(), Some(1));
    }
}
