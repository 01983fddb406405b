//! The timeline's SQLite schema: creating it in a new file, and checking the version of
//! an existing one. A file of another version is refused, by the writer and the readers
//! alike, with what to do about it (there is no migration: version 1 kept one row per
//! transition, and rebuilding rows per connection from it is `history`'s job for that
//! sockstat, not this one's).
//!
//! Schema (version 2). Times are UTC nanoseconds since the Unix epoch; states are kernel
//! TCP state numbers (include/net/tcp_states.h); addresses are blobs of 4 bytes (IPv4)
//! or 16 (IPv6), which give the family. The packed columns (`path`, `steps`) are
//! described in `codec`.
//!
//! - `meta(key, value)`: `schema_version`, `netns` (the agent's network namespace);
//!   `netns_before`, in a file first written before snapshots named their namespaces:
//!   the namespace of the snapshot sockets whose `netns` is NULL.
//! - `batches(id, committed_ns, rows, base_ns, cookie_base, first_conn, last_conn,
//!   max_end_ns, min_ts_ns, max_ts_ns, first_transition, last_transition)`: one row per
//!   committed transaction. `rows` counts its transitions, finished connections, gaps
//!   and snapshots; `first_conn..last_conn` is the rowid range of the `connections` rows
//!   it wrote, whose `end_offset_ns` count from `base_ns` and `cookie_offset` from
//!   `cookie_base`, and `max_end_ns` is their latest end; `min_ts_ns..max_ts_ns` is the
//!   time range of the events it took in;
//!   `first_transition..last_transition` the ids of its `transitions` rows, if the agent
//!   records them. Indexes on `first_conn` and `max_end_ns`.
//! - `connections(cookie_offset, src, sport, dst, dport, end_offset_ns, duration_ns,
//!   path, steps, process, owner, bytes_sent, bytes_received, netns, cgroup, error,
//!   retrans, srtt_us)`: one row per socket, written once, when it closes, so rowids
//!   follow the order of the closes. Its socket cookie is the batch's `cookie_base +
//!   cookie_offset`; its last transition is at the batch's `base_ns + end_offset_ns`,
//!   the first `duration_ns` before it (offsets keep both small: a cookie past 2^31
//!   takes 6 bytes, a time 8). `owner`: how `process` came to
//!   own it (0 connect, 1 accept, 2 its listener's owner, not accepted, 3 unknown) for a
//!   finished connection; NULL for a listening socket, and for a socket not seen to
//!   close (the agent stopped or lost its close first; a socket going through more than
//!   15 states continues in another row). `process`: `processes.id`, NULL when unknown.
//!   `bytes_sent`/`bytes_received`: `tcp_sock.bytes_acked`/`bytes_received` at the last
//!   transition. `netns`: `netns.id`. `cgroup`: `cgroups.id` (NULL: unknown). For a
//!   connection seen to close, from its CLOSE transition: `error`, the errno the
//!   kernel left on the socket (`sk_err`: 111 ECONNREFUSED, 110 ETIMEDOUT, 104
//!   ECONNRESET; NULL: none), `retrans` (`tcp_sock.total_retrans`) and `srtt_us` (the
//!   smoothed RTT; NULL if never measured); all three NULL for a socket not seen to
//!   close and for a listener.
//! - `open_connections(cookie, ..., end_ns, ..., crossing)`: the sockets open at the end
//!   of the agent's last batch, as far as they got: the columns of `connections`, with
//!   the cookie and `end_ns` (the time of the last transition so far) absolute. A socket moves to `connections`
//!   when it closes; what an agent leaves here moves there when the next one starts.
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
//!   were lost between `start_ns` and `end_ns`; a snapshot follows (the resync).
//! - `snapshots(id, batch, ts_ns, kind, first_conn, timewait)` and
//!   `snapshot_sockets(snapshot, cookie, state, src, sport, dst, dport, rqueue, wqueue,
//!   v6only, ifindex, uid, inode, expires_ms, timer, netns)`: the kernel's TCP sockets of
//!   every tracked network namespace with sockets (`netns`: `netns.id`) at seed
//!   (`seed`), after a loss (`resync`) and periodically (`checkpoint`); `first_conn` is
//!   the rowid the next `connections` row got. `timewait` = 0: the TIME-WAIT sockets were
//!   left out (a checkpoint with every close of the minute before it recorded: a replay
//!   rebuilds them from those closes), else they are in.
//! - the view `lifetimes(id, batch, cookie, netns, family, src, sport, dst, dport,
//!   start_ns, end_ns, duration_ns, pid, comm, owner, active, bytes_sent,
//!   bytes_received, path, cgroup, error, retrans, srtt_us)`: the finished connections
//!   with every column readable (addresses and the path as text, times absolute),
//!   `start_ns`/`duration_ns` NULL when the connection began before the agent did.
//! - `fleet_cursor`: made by `outbox` (not here) in a file an agent with `--nats` wrote;
//!   the fleet export's cursor.

use std::{fmt::Write as _, path::Path};

use rusqlite::{Connection, OptionalExtension};

use crate::timeline::{TimelineError, sql};

pub const SCHEMA_VERSION: i64 = 2;

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
CREATE TABLE IF NOT EXISTS connections (
    cookie_offset INTEGER NOT NULL, src BLOB NOT NULL, sport INTEGER NOT NULL, dst BLOB NOT NULL,
    dport INTEGER NOT NULL, end_offset_ns INTEGER NOT NULL, duration_ns INTEGER NOT NULL,
    path INTEGER NOT NULL, steps BLOB, process INTEGER, owner INTEGER,
    bytes_sent INTEGER NOT NULL, bytes_received INTEGER NOT NULL, netns INTEGER, cgroup INTEGER,
    error INTEGER, retrans INTEGER, srtt_us INTEGER);
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
    first_conn INTEGER NOT NULL, timewait INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS snapshots_ts ON snapshots(ts_ns);
CREATE TABLE IF NOT EXISTS snapshot_sockets (
    snapshot INTEGER NOT NULL, cookie INTEGER NOT NULL, state INTEGER NOT NULL, src BLOB NOT NULL,
    sport INTEGER NOT NULL, dst BLOB NOT NULL, dport INTEGER NOT NULL, rqueue INTEGER NOT NULL,
    wqueue INTEGER NOT NULL, v6only INTEGER NOT NULL, ifindex INTEGER NOT NULL, uid INTEGER NOT NULL,
    inode INTEGER NOT NULL, expires_ms INTEGER NOT NULL, timer INTEGER NOT NULL, netns INTEGER,
    PRIMARY KEY (snapshot, cookie)) WITHOUT ROWID;
";

/// Whether `snapshot_sockets` has its `netns` column (files written before the
/// timeline recorded every namespace lack it: their snapshots are `meta.netns`'s).
pub(super) fn snapshot_netns(conn: &Connection) -> rusqlite::Result<bool> {
    let n: i64 =
        conn.query_row("SELECT COUNT(*) FROM pragma_table_info('snapshot_sockets') WHERE name = 'netns'", [], |r| {
            r.get(0)
        })?;
    Ok(n > 0)
}

/// SQL for the value of byte `i` (1-based) of blob `col`, through its hex digits.
fn byte_sql(col: &str, i: usize) -> String {
    let digit = |k: usize| format!("(instr('0123456789ABCDEF', substr(hex({col}), {k}, 1)) - 1)");
    format!("({} * 16 + {})", digit(2 * i - 1), digit(2 * i))
}

/// SQL for an address blob as text: dotted IPv4, or IPv6 as eight groups of hex digits
/// (not shortened).
fn addr_sql(col: &str) -> String {
    let v4 = (1..=4).map(|i| byte_sql(col, i)).collect::<Vec<_>>().join(" || '.' || ");
    let v6 =
        (0..8).map(|g| format!("substr(lower(hex({col})), {}, 4)", 4 * g + 1)).collect::<Vec<_>>().join(" || ':' || ");
    format!("CASE length({col}) WHEN 4 THEN {v4} ELSE {v6} END")
}

/// SQL for a packed path as `SYN_SENT>ESTABLISHED>...` (the states entered; the first,
/// the old state of the first transition, is left out as in `trace --lifetimes`).
fn path_sql(col: &str) -> String {
    const WIDTH: usize = 14;
    let names: String = (0u8..16)
        .map(|s| {
            let n = if s == 0 { "" } else { crate::bpf::stream::kernel_state_name(s) };
            format!("{n:<WIDTH$}")
        })
        .collect();
    let mut out = String::from("(''");
    for i in 1..crate::timeline::codec::MAX_STATES {
        let nib = format!("(({col} >> {}) & 15)", 4 * i);
        let sep = if i > 1 { "'>' || " } else { "" };
        let _ = write!(
            out,
            " || CASE {nib} WHEN 0 THEN '' ELSE {sep}rtrim(substr('{names}', {nib} * {WIDTH} + 1, {WIDTH})) END"
        );
    }
    out.push(')');
    out
}

/// The `lifetimes` view: finished connections, every column readable.
fn lifetimes_view() -> String {
    // Opened by connect() (CLOSE -> SYN_SENT) or from a listener: the start is known.
    let opened = "((c.path & 15) = 10 OR ((c.path & 255) = 39))";
    format!(
        "CREATE VIEW IF NOT EXISTS lifetimes AS SELECT
            c.rowid AS id, b.id AS batch, b.cookie_base + c.cookie_offset AS cookie, n.inode AS netns,
            CASE length(c.src) WHEN 16 THEN 10 ELSE 2 END AS family,
            {src} AS src, c.sport, {dst} AS dst, c.dport,
            CASE WHEN {opened} THEN b.base_ns + c.end_offset_ns - c.duration_ns END AS start_ns,
            b.base_ns + c.end_offset_ns AS end_ns,
            CASE WHEN {opened} THEN c.duration_ns END AS duration_ns,
            COALESCE(p.pid, 0) AS pid, COALESCE(p.comm, '') AS comm,
            CASE c.owner WHEN 0 THEN 'connect' WHEN 1 THEN 'accept' WHEN 2 THEN 'listener' ELSE 'unknown' END AS owner,
            CASE WHEN (c.path & 15) = 10 THEN 0 WHEN (c.path & 255) = 39 THEN 1 END AS active,
            c.bytes_sent, c.bytes_received, {path} AS path,
            g.path AS cgroup, c.error, c.retrans, c.srtt_us
         FROM batches b JOIN connections c ON c.rowid BETWEEN b.first_conn AND b.last_conn
         LEFT JOIN processes p ON p.id = c.process
         LEFT JOIN netns n ON n.id = c.netns
         LEFT JOIN cgroups g ON g.id = c.cgroup
         WHERE c.owner IS NOT NULL;",
        src = addr_sql("c.src"),
        dst = addr_sql("c.dst"),
        path = path_sql("c.path"),
    )
}

fn version(conn: &Connection, path: &Path) -> Result<Option<i64>, TimelineError> {
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
    // A file of this version written before snapshots named their namespace: its
    // sockets (NULL there) are the namespace `meta.netns` named then, kept as
    // `netns_before` (the line below replaces `netns`).
    if !snapshot_netns(conn).map_err(&e)? {
        conn.execute_batch("ALTER TABLE snapshot_sockets ADD COLUMN netns INTEGER").map_err(&e)?;
        conn.execute("INSERT OR IGNORE INTO meta SELECT 'netns_before', value FROM meta WHERE key = 'netns'", [])
            .map_err(&e)?;
    }
    conn.execute_batch(&lifetimes_view()).map_err(&e)?;
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
    fn a_version_1_file_is_refused_with_what_to_do() {
        let path = temp_db("v1");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO meta VALUES ('schema_version', '1');
             CREATE TABLE transitions (id INTEGER PRIMARY KEY, batch INTEGER NOT NULL);",
        )
        .unwrap();
        drop(conn);
        let cfg = crate::timeline::WriterConfig::new(path.clone(), std::time::Duration::from_secs(60), 1 << 30, false);
        let Err(e) = crate::timeline::Writer::start(cfg, 1) else { panic!("a version 1 file was taken") };
        assert!(matches!(e, TimelineError::Version { found: 1, .. }), "{e}");
        assert!(e.to_string().contains("move the file away"), "{e}");
        assert!(matches!(Reader::open(&path), Err(TimelineError::Version { found: 1, .. })));
        // Untouched: no table of version 2 was added.
        let n: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'connections'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
