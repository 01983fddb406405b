//! The timeline's SQLite schema: creating it in a new file, and checking the version of
//! an existing one (there is one version so far, so no migration yet: a file of another
//! version is refused, by the writer and the readers alike).
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

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use crate::timeline::{TimelineError, sql};

pub const SCHEMA_VERSION: i64 = 1;

/// Creates the schema if missing; checks the version otherwise.
pub(super) fn prepare(conn: &Connection, path: &Path, netns: u32) -> Result<(), TimelineError> {
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

/// Checks that the file holds a timeline of this sockstat's schema version.
pub(super) fn check(conn: &Connection, path: &Path) -> Result<(), TimelineError> {
    let version: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .optional()
        .map_err(sql(path))?;
    match version.and_then(|v| v.parse::<i64>().ok()) {
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
}
