//! The timeline's SQLite schema: creating it in a new file, and checking the version of
//! an existing one. A file of another version is refused, by the writer and the readers
//! alike, with what to do about it; the writer moves a file of an older version aside
//! (`integrity::move_aside`) and starts a new one. There is no migration: version 1 kept
//! one row per transition, version 2 one SQLite row per socket, and reading them is the
//! job of the sockstat that wrote them.
//!
//! Schema (version 3; docs/timeline.md has it in full). Times are UTC nanoseconds
//! since the Unix epoch; states are kernel TCP state numbers
//! (include/net/tcp_states.h); addresses are blobs of 4 bytes (IPv4) or 16 (IPv6),
//! which give the family. The packed columns (`path`, `steps`, and the connection
//! blocks) are described in `codec`.
//!
//! - `meta(key, value)`: `schema_version`, `netns` (the agent's network namespace).
//! - `batches(id, committed_ns, rows, base_ns, cookie_base, first_conn, last_conn,
//!   max_end_ns, min_ts_ns, max_ts_ns, first_transition, last_transition)`: one row per
//!   committed transaction. `rows` counts its transitions, finished connections, gaps
//!   and snapshots; `first_conn..last_conn` numbers the connection rows it wrote (its
//!   block), whose times count from `base_ns` and cookies from `cookie_base`, and
//!   `max_end_ns` is their latest end; `min_ts_ns..max_ts_ns` is the time range of the
//!   events it took in; `first_transition..last_transition` the ids of its
//!   `transitions` rows, if the agent records them. Indexes on `first_conn` and
//!   `max_end_ns`.
//! - `connections(first, data)`: the rows of the sockets one batch wrote, in the order
//!   they closed (row `first + i` is the i-th), packed in one blob (`codec::BlockWriter`):
//!   SQLite's own cost of a row (about 15 bytes) was more than half of a socket's. A
//!   row: cookie, time of the last transition, duration, both ends, the state path and
//!   the times between (`steps`), `process` (`processes.id`, none when unknown), `owner`
//!   (how `process` came to own it: 0 connect, 1 accept, 2 its listener's owner, 3
//!   unknown, for a finished connection; none for a listening socket and for a socket
//!   not seen to close: the agent stopped or lost its close first; a socket going
//!   through more than 15 states continues in another row), `bytes_sent`/
//!   `bytes_received` (`tcp_sock.bytes_acked`/`bytes_received` at the last transition),
//!   `netns` (`netns.id`), `cgroup` (`cgroups.id`), and for a connection seen to close,
//!   from its CLOSE transition, `error` (the errno the kernel left on the socket,
//!   `sk_err`), `retrans` (`tcp_sock.total_retrans`) and `srtt_us` (none if never
//!   measured).
//! - `open_connections(cookie, ..., end_ns, ..., crossing)`: the sockets open at the end
//!   of the agent's last batch, as far as they got: the fields of a `connections` row, a
//!   column each, with the cookie and `end_ns` (the time of the last transition so far)
//!   absolute. A socket moves to `connections` when it closes; what an agent leaves here
//!   moves there (as a block of its own) when the next one starts.
//! - `crossings(conn, snapshot)`: `connections` rows of sockets that were open at a
//!   snapshot (`snapshot`: the first such), or in its dump before the agent saw them: a
//!   replay from snapshot S finds the rows it needs among those written after S, those
//!   that cross the next snapshot, and `open_connections`.
//! - `processes(id, pid, comm)`, `netns(id, inode, name)`, `cgroups(id, cgroup_id,
//!   path)`: the dictionaries those columns point into; `name` is the namespace's name
//!   in /run/netns (NULL: none), `path` the cgroup's under the cgroup2 mount (NULL: gone
//!   before the agent met it), both read once, when the agent first met them.
//! - `transitions(id, batch, ts_ns, cookie, netns, process, tid, src, sport, dst, dport,
//!   old_state, new_state, rqueue, wqueue, bytes_acked, bytes_received, accept)`: one
//!   row per event, only when the agent runs with `--timeline-transitions`; `accept` = 1
//!   marks an accept() notice (states 0).
//! - `gaps(id, batch, start_ns, end_ns, lost_kernel, lost_userspace, reason)`: events
//!   were lost between `start_ns` and `end_ns`; a snapshot follows (the resync). The
//!   reason names each way events went (see docs/timeline.md).
//! - `snapshots(id, batch, ts_ns, kind, first_conn, timewait, netns, round)`,
//!   `snapshot_deferred(snapshot, netns)` and
//!   `snapshot_sockets(snapshot, netns, count, data)`: the kernel's TCP sockets of every
//!   tracked network namespace with sockets (`netns`: `netns.id`; `count` sockets packed
//!   in `data`, see `codec::snapshot_blob`: cookie, state, both ends, queues, socket
//!   options, uid, inode, timer and expiry) at seed
//!   (`seed`), after a loss (`resync`) and periodically (`checkpoint`); `first_conn` is
//!   the number the next connection row got. `timewait` = 0: the TIME-WAIT sockets were
//!   left out (a checkpoint with every close of the minute before it recorded: a replay
//!   rebuilds them from those closes), else they are in. A periodic checkpoint with
//!   more than one namespace to dump is spread over its interval: its first snapshot
//!   (`netns` NULL, as every seed and resync) dumps the agent's namespace and lists the
//!   others in `snapshot_deferred`; each of those gets a snapshot of its own later
//!   (`netns`: its `netns.id`; `round`: the first one's id). A snapshot with `netns`
//!   NULL stands for every namespace it does not defer (one absent from it had no
//!   socket); a replay for namespace N starts from the newest that stands for N.
//! - `fleet_cursor(id, origin, batch, kind, pos_id, last_conn, last_gap, end_ns)`: one
//!   row once an agent with `--nats` published something (`outbox`): the position of the
//!   last record the fleet export had acknowledged, and the file's random origin id.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::timeline::{TimelineError, sql};

pub const SCHEMA_VERSION: i64 = 3;

/// The tables and indexes of a new file.
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY, committed_ns INTEGER NOT NULL, rows INTEGER NOT NULL,
    base_ns INTEGER, cookie_base INTEGER, first_conn INTEGER, last_conn INTEGER, max_end_ns INTEGER,
    min_ts_ns INTEGER, max_ts_ns INTEGER, first_transition INTEGER, last_transition INTEGER);
CREATE INDEX IF NOT EXISTS batches_first_conn ON batches(first_conn);
CREATE INDEX IF NOT EXISTS batches_max_end ON batches(max_end_ns);
CREATE TABLE IF NOT EXISTS processes (
    id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, comm TEXT NOT NULL, UNIQUE (pid, comm));
CREATE TABLE IF NOT EXISTS netns (id INTEGER PRIMARY KEY, inode INTEGER NOT NULL UNIQUE, name TEXT);
CREATE TABLE IF NOT EXISTS cgroups (id INTEGER PRIMARY KEY, cgroup_id INTEGER NOT NULL UNIQUE, path TEXT);
CREATE TABLE IF NOT EXISTS connections (first INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS open_connections (
    cookie INTEGER PRIMARY KEY, src BLOB NOT NULL, sport INTEGER NOT NULL, dst BLOB NOT NULL,
    dport INTEGER NOT NULL, end_ns INTEGER NOT NULL, duration_ns INTEGER NOT NULL,
    path INTEGER NOT NULL, steps BLOB, process INTEGER, owner INTEGER,
    bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL, netns INTEGER, cgroup INTEGER,
    error INTEGER, retrans INTEGER, srtt_us INTEGER, crossing INTEGER);
CREATE TABLE IF NOT EXISTS crossings (conn INTEGER PRIMARY KEY, snapshot INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, ts_ns INTEGER NOT NULL, cookie INTEGER NOT NULL,
    netns INTEGER, process INTEGER, tid INTEGER NOT NULL, src BLOB NOT NULL, sport INTEGER NOT NULL,
    dst BLOB NOT NULL, dport INTEGER NOT NULL, old_state INTEGER NOT NULL, new_state INTEGER NOT NULL,
    rqueue INTEGER NOT NULL, wqueue INTEGER NOT NULL, bytes_acked INTEGER NOT NULL,
    bytes_received INTEGER NOT NULL, accept INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
    lost_kernel INTEGER NOT NULL, lost_userspace INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, ts_ns INTEGER NOT NULL, kind TEXT NOT NULL,
    first_conn INTEGER NOT NULL, timewait INTEGER NOT NULL, netns INTEGER, round INTEGER);
CREATE TABLE IF NOT EXISTS snapshot_deferred (
    snapshot INTEGER NOT NULL, netns INTEGER NOT NULL, PRIMARY KEY (snapshot, netns)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS snapshots_ts ON snapshots(ts_ns);
CREATE TABLE IF NOT EXISTS snapshot_sockets (
    snapshot INTEGER NOT NULL, netns INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (snapshot, netns)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleet_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1), origin TEXT NOT NULL, batch INTEGER NOT NULL, kind INTEGER NOT NULL,
    pos_id INTEGER NOT NULL, last_conn INTEGER NOT NULL, last_gap INTEGER NOT NULL, end_ns INTEGER NOT NULL);
";

pub(super) fn version(conn: &Connection, path: &Path) -> Result<Option<i64>, TimelineError> {
    let e = sql(path);
    let has_meta: Option<String> = conn
        .query_row("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'", [], |r| r.get(0))
        .optional()
        .map_err(&e)?;
    if has_meta.is_none() {
        return Ok(None);
    }
    let v: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .optional()
        .map_err(&e)?;
    Ok(v.map(|v| v.parse::<i64>().unwrap_or(-1)))
}

/// Creates the schema in a new file; checks the version of an existing one.
pub(super) fn prepare(conn: &Connection, path: &Path, netns: u32) -> Result<(), TimelineError> {
    let e = sql(path);
    match version(conn, path)? {
        None | Some(SCHEMA_VERSION) => {}
        Some(found) => return Err(TimelineError::Version { path: path.to_path_buf(), found }),
    }
    // WAL: readers do not block the writer; synchronous=NORMAL: a committed transaction
    // survives a crash of the process (not necessarily of the machine).
    // auto_vacuum first: it only takes on a file without tables, and not after the
    // journal mode is WAL.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(&e)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(&e)?;
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(&e)?;
    // The writer appends to the right edge of a few B-trees: a few MiB of page cache
    // hold every page it touches.
    conn.pragma_update(None, "cache_size", -8_192).map_err(&e)?;
    conn.execute_batch(TABLES).map_err(&e)?;
    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?1)", [SCHEMA_VERSION.to_string()])
        .map_err(&e)?;
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('netns', ?1)", [netns.to_string()]).map_err(&e)?;
    Ok(())
}

/// Checks that the file holds a timeline of this sockstat's schema version.
pub(super) fn check(conn: &Connection, path: &Path) -> Result<(), TimelineError> {
    match version(conn, path)? {
        Some(SCHEMA_VERSION) => Ok(()),
        Some(found) => Err(TimelineError::Version { path: path.to_path_buf(), found }),
        None => Err(TimelineError::Empty { path: path.to_path_buf() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{
        Reader,
        fixtures::{temp_db, writer},
    };

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
    fn an_older_file_is_moved_aside_by_the_writer_and_refused_by_readers() {
        for old in [1, 2] {
            let path = temp_db(&format!("v{old}"));
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&format!(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 INSERT INTO meta VALUES ('schema_version', '{old}');
                 CREATE TABLE transitions (id INTEGER PRIMARY KEY, batch INTEGER NOT NULL);"
            ))
            .unwrap();
            drop(conn);
            let Err(e) = Reader::open(&path) else { panic!("a version {old} file was read") };
            assert!(matches!(e, TimelineError::Version { found, .. } if found == old), "{e}");
            assert!(e.to_string().contains("read it with the sockstat that wrote it"), "{e}");
            drop(writer(&path));
            assert!(Reader::open(&path).is_ok(), "a new file in its place");
            let dir = path.parent().unwrap();
            let prefix = format!("{}.v{old}-", path.file_name().unwrap().to_str().unwrap());
            let aside: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(&prefix))
                .collect();
            assert_eq!(aside.len(), 1, "{aside:?}");
            // Kept as it was: no table of this version was added.
            let v: String = Connection::open(&aside[0])
                .unwrap()
                .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, old.to_string());
            let _ = std::fs::remove_file(&aside[0]);
        }
    }

    #[test]
    fn a_newer_file_is_left_alone_by_the_writer() {
        let path = temp_db("newer");
        drop(writer(&path));
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'", [])
            .unwrap();
        let cfg = crate::timeline::WriterConfig::new(path.clone(), std::time::Duration::from_secs(60), 1 << 30, false);
        let Err(e) = crate::timeline::Writer::start(cfg, 1) else { panic!("a version 99 file was taken") };
        assert!(matches!(e, TimelineError::Version { found: 99, .. }), "{e}");
    }
}
