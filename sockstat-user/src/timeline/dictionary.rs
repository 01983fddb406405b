//! The timeline's dictionaries, as the writer fills them: `processes` (pid and name),
//! `netns` (inode and `ip netns` name), `cgroups` (v2 id and path). Each id is looked up
//! in a cache, then in the file, and added if new (with what [`LabelSource`] says of it).

use rusqlite::{Connection, OptionalExtension, params};
use rustc_hash::FxHashMap;

use crate::timeline::{LabelSource, assemble::Task};

/// Process dictionary entries the writer keeps in memory (it asks the file beyond).
const PROCESS_CACHE: usize = 65_536;

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The `processes` id of `task`, added if new; `None` for an unknown owner.
pub(super) fn process_id(
    conn: &Connection,
    cache: &mut FxHashMap<Task, i64>,
    task: &Task,
) -> rusqlite::Result<Option<i64>> {
    if task.is_unknown() {
        return Ok(None);
    }
    if let Some(&id) = cache.get(task) {
        return Ok(Some(id));
    }
    let comm = task.comm_str();
    let found: Option<i64> = conn
        .prepare_cached("SELECT id FROM processes WHERE pid = ?1 AND comm = ?2")?
        .query_row(params![task.pid, comm], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => {
            conn.prepare_cached("INSERT INTO processes (pid, comm) VALUES (?1, ?2)")?
                .execute(params![task.pid, comm])?;
            conn.last_insert_rowid()
        }
    };
    if cache.len() >= PROCESS_CACHE {
        cache.clear();
    }
    cache.insert(*task, id);
    Ok(Some(id))
}

/// The `netns` id of namespace `inode`, added (with its name, if it has one) if new.
pub(super) fn netns_id(
    conn: &Connection,
    cache: &mut FxHashMap<u32, i64>,
    labels: &LabelSource,
    inode: u32,
) -> rusqlite::Result<Option<i64>> {
    if let Some(&id) = cache.get(&inode) {
        return Ok(Some(id));
    }
    let found: Option<(i64, Option<String>)> = conn
        .prepare_cached("SELECT id, name FROM netns WHERE inode = ?1")?
        .query_row([inode], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let id = match found {
        Some((id, Some(_))) => id,
        // Named since (`ip netns add` after the namespace's first socket, or by an agent
        // that could not see /run/netns): the name is filled in once.
        Some((id, None)) => {
            if let Some(name) = labels.0.as_ref().and_then(|l| l.netns_name(inode)) {
                conn.prepare_cached("UPDATE netns SET name = ?2 WHERE id = ?1")?.execute(params![id, name])?;
            }
            id
        }
        None => {
            let name = labels.0.as_ref().and_then(|l| l.netns_name(inode));
            conn.prepare_cached("INSERT INTO netns (inode, name) VALUES (?1, ?2)")?.execute(params![inode, name])?;
            conn.last_insert_rowid()
        }
    };
    cache.insert(inode, id);
    Ok(Some(id))
}

/// The `cgroups` id of cgroup `cgroup` (its v2 id; 0: unknown, NULL), added with its
/// path if new. A cgroup gone before it was met keeps a NULL path.
pub(super) fn cgroup_id(
    conn: &Connection,
    cache: &mut FxHashMap<u64, i64>,
    labels: &LabelSource,
    cgroup: u64,
) -> rusqlite::Result<Option<i64>> {
    if cgroup == 0 {
        return Ok(None);
    }
    if let Some(&id) = cache.get(&cgroup) {
        return Ok(Some(id));
    }
    let found: Option<i64> = conn
        .prepare_cached("SELECT id FROM cgroups WHERE cgroup_id = ?1")?
        .query_row([int(cgroup)], |r| r.get(0))
        .optional()?;
    let id = match found {
        Some(id) => id,
        None => {
            let path = labels.0.as_ref().and_then(|l| l.cgroup_path(cgroup));
            conn.prepare_cached("INSERT INTO cgroups (cgroup_id, path) VALUES (?1, ?2)")?
                .execute(params![int(cgroup), path])?;
            conn.last_insert_rowid()
        }
    };
    cache.insert(cgroup, id);
    Ok(Some(id))
}
