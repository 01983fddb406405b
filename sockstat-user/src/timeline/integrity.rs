//! The start-up check of an existing timeline file: SQLite's `PRAGMA quick_check` (every
//! page of every b-tree read once, without the index cross-checks of `integrity_check`).
//! A file that fails it (truncated, pages overwritten, not a database at all) is moved
//! aside, with its write-ahead log, as `NAME.corrupt-TIME` (kept for whoever wants to
//! dig in it: `sqlite3` opens what is left), and the writer starts a new file.
//!
//! A file of an older schema version is moved aside the same way (`NAME.vN-TIME`, by the
//! writer, which reads the version): its rows are not converted. Otherwise only corruption
//! moves a file: a file the agent cannot open for another reason
//! (permissions, a lock, a disk error) stays where it is and the error stops the agent.

use std::{
    path::{Path, PathBuf},
    time::{Instant, SystemTime},
};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::timeline::TimelineError;

/// What `quick_check` says about the file at `path`: `Ok(None)` when it is sound (or
/// absent, or empty: SQLite makes a new database there), `Ok(Some(problem))` when it is
/// corrupt.
///
/// # Errors
/// Opening or reading it failed for a reason other than corruption.
pub fn check(path: &Path) -> Result<Option<String>, TimelineError> {
    if std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
        return Ok(None);
    }
    let started = Instant::now();
    let verdict = quick_check(path);
    tracing::debug!(path = %path.display(), ms = started.elapsed().as_millis(), "timeline quick_check");
    match verdict {
        Ok(lines) if lines.len() == 1 && lines[0] == "ok" => Ok(None),
        Ok(lines) => Ok(Some(lines.join("; "))),
        Err(e) if is_corruption(&e) => Ok(Some(e.to_string())),
        Err(source) => Err(TimelineError::Sqlite { path: path.to_path_buf(), source }),
    }
}

fn quick_check(path: &Path) -> rusqlite::Result<Vec<String>> {
    // Read-write: a write-ahead log left by a crash is part of the database, and only a
    // writer may recover it.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    // At most this many problems listed: the log line names the first ones.
    let mut st = conn.prepare("PRAGMA quick_check(10)")?;
    let lines = st.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(lines)
}

fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase))
}

/// Checks the timeline at `path`; if it is corrupt, moves it (and its `-wal`, `-shm`
/// files) to `PATH.corrupt-TIME[-wal|-shm]` with a log line, and returns where it went.
///
/// # Errors
/// The check's (other than corruption), or a rename that failed.
pub fn move_aside_if_corrupt(path: &Path) -> Result<Option<PathBuf>, TimelineError> {
    let Some(problem) = check(path)? else { return Ok(None) };
    let target = move_aside(path, "corrupt")?;
    tracing::warn!(
        path = %path.display(),
        moved_to = %target.display(),
        problem = %problem,
        "timeline is corrupt: moved aside, starting a new one"
    );
    Ok(Some(target))
}

/// Moves the timeline at `path` (and its `-wal`, `-shm` files) to
/// `PATH.TAG-TIME[-wal|-shm]`, kept as it was; returns where it went.
///
/// # Errors
/// A rename that failed.
pub fn move_aside(path: &Path, tag: &str) -> Result<PathBuf, TimelineError> {
    let stamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut target = PathBuf::from(format!("{}.{tag}-{stamp}", path.display()));
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = PathBuf::from(format!("{}.{tag}-{stamp}.{n}", path.display()));
    }
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if !from.exists() {
            continue;
        }
        let to = PathBuf::from(format!("{}{suffix}", target.display()));
        std::fs::rename(&from, &to).map_err(|source| TimelineError::MoveAside { path: from.clone(), to, source })?;
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;
    use crate::timeline::{
        Record,
        fixtures::{temp_db, tr, writer},
    };
    use sockstat_ebpf::TcpState;

    /// A timeline with a few hundred rows, closed cleanly (no write-ahead log left).
    fn filled(name: &str) -> PathBuf {
        let path = temp_db(name);
        let mut w = writer(&path);
        for i in 0..400u64 {
            w.push(Record::Transition(tr(i, 1_000 + i, TcpState::Close, TcpState::SynSent, 0, 80)));
            w.push(Record::Transition(tr(i, 2_000 + i, TcpState::SynSent, TcpState::Close, 4000, 80)));
            if i % 50 == 0 {
                w.flush().unwrap();
            }
        }
        drop(w);
        path
    }

    fn cleanup(path: &Path, aside: Option<&Path>) {
        for p in [Some(path), aside].into_iter().flatten() {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
            }
        }
    }

    #[test]
    fn a_sound_file_passes_and_stays() {
        let path = filled("sound");
        assert_eq!(check(&path).unwrap(), None);
        assert_eq!(move_aside_if_corrupt(&path).unwrap(), None);
        assert!(path.exists());
        cleanup(&path, None);
    }

    #[test]
    fn garbage_pages_are_found_and_the_file_moved_aside() {
        let path = filled("garbage");
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len >= 8 * 4096, "the fixture is too small to overwrite pages in: {len} bytes");
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        // Pages 2..5 (after the header page): table roots and their first leaves.
        f.seek(SeekFrom::Start(4096)).unwrap();
        f.write_all(&[0xa5; 4 * 4096]).unwrap();
        drop(f);
        let problem = check(&path).unwrap().expect("overwritten pages not detected");
        assert!(!problem.is_empty());
        let aside = move_aside_if_corrupt(&path).unwrap().expect("moved aside");
        assert!(!path.exists(), "the corrupt file is still in place");
        assert!(aside.to_str().unwrap().contains(".corrupt-"), "{}", aside.display());
        assert_eq!(std::fs::metadata(&aside).unwrap().len(), len, "moved, not rewritten");
        // The writer starts a new file there.
        drop(writer(&path));
        assert_eq!(check(&path).unwrap(), None);
        cleanup(&path, Some(&aside));
    }

    #[test]
    fn a_truncated_file_is_found() {
        let path = filled("truncated");
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len / 2 + 100).unwrap();
        drop(f);
        assert!(check(&path).unwrap().is_some(), "a file cut in half passed the check");
        cleanup(&path, None);
    }

    #[test]
    fn not_a_database_is_found_but_a_missing_or_empty_file_is_fine() {
        let path = temp_db("notadb");
        assert_eq!(check(&path).unwrap(), None, "absent");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(check(&path).unwrap(), None, "empty");
        std::fs::write(&path, vec![b'x'; 10_000]).unwrap();
        assert!(check(&path).unwrap().is_some(), "text passed for a database");
        cleanup(&path, None);
    }
}
