//! The forensic timeline: every socket's transitions, folded into one row per socket
//! (both ends, owner, times, bytes, the state path), every loss (as a gap marker) and
//! every table snapshot, in one SQLite file that `sqlite3` opens; one row per
//! transition too when asked. The agent hands records to the writer's threads in chunks,
//! so disk I/O stays off the event loop; the writer commits what it has every 100 ms as
//! one transaction (WAL journal), so a crash loses at most the batches in flight and
//! never leaves a torn one. Readers (`--at`, `history`) open the file read-only while
//! the agent writes.
//!
//! Owns the schema (`schema`) and the packed columns (`codec`), the start-up check that
//! moves a corrupt file aside (`integrity`), the writer with its batching and retention
//! (`writer`) with its dictionaries (`dictionary`) and the folding of transitions into rows
//! (`assemble`), the readers for `history` (`reader`) and `--at` (`replay`), and
//! connection lifetimes (`lifetime`, shared with `trace --lifetimes`), the fleet export's
//! reads and cursor (`outbox`); here, the types
//! they share. Imports `model` and `bpf` (the stream's [`Transition`] is what the writer
//! takes in).

pub mod assemble;
pub mod codec;
mod dictionary;
pub mod integrity;
pub mod lifetime;
pub mod outbox;
pub mod reader;
pub mod replay;
pub mod schema;
pub mod writer;

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub use crate::model::tcp::TIME_WAIT_NS;
use crate::{bpf::stream::Transition, model::socket::InetSocket};
pub use reader::{Committed, Reader, StoredLifetime, StoredTransition};
pub use replay::AtState;
pub use schema::SCHEMA_VERSION;
pub use writer::{Writer, WriterConfig};

pub const DEFAULT_PATH: &str = "/var/lib/sockstat/timeline.db";

/// The default `--retain-bytes`: 8 GiB.
pub const DEFAULT_RETAIN_BYTES: u64 = 8 << 30;

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
    #[error(
        "cannot read the timeline {path}: it records every connection with its process, so it is \
         readable by root only (mode 0600); run this as root (e.g. `sudo sockstat ...`)"
    )]
    NoAccess {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("moving the timeline {path} aside to {to}")]
    MoveAside {
        path: PathBuf,
        to: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("restricting the permissions of {path}")]
    Mode {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} has timeline schema version {found}; this sockstat reads and writes version {SCHEMA_VERSION} only: \
         read it with the sockstat that wrote it (the agent moves a file of an older version aside and starts a new one; \
         one of a newer version it leaves alone: move the file away, or delete it, to start a new timeline there)"
    )]
    Version { path: PathBuf, found: i64 },
    #[error("the timeline in {path} has no snapshot at or before {at}: it starts at {first}")]
    BeforeStart { path: PathBuf, at: String, first: String },
    #[error("the timeline in {path} is empty (has an agent with --timeline run yet?)")]
    Empty { path: PathBuf },
    #[error("timeline {path}: connection rows of batch {first}")]
    Block {
        path: PathBuf,
        first: i64,
        #[source]
        source: codec::BlockError,
    },
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
    Gap(Gap),
    /// The sockets with these cookies are gone though no close was seen (a resync found
    /// them missing): their rows end where they are.
    Forget(Vec<u64>),
    /// `mono_ns`: CLOCK_MONOTONIC when the dumps were made (one after the other, from
    /// then); `spaces`: each network namespace's dump, by inode.
    Snapshot {
        mono_ns: u64,
        kind: &'static str,
        spaces: Vec<(u32, Vec<InetSocket>)>,
    },
    /// The start of a periodic checkpoint spread over its interval: the dumps made now
    /// (`spaces`, by inode), and the namespaces (`deferred`) whose dumps follow one at a
    /// time, each as a [`Record::CheckpointPart`]. Every other namespace had no socket.
    Checkpoint {
        mono_ns: u64,
        spaces: Vec<(u32, Vec<InetSocket>)>,
        deferred: Vec<u32>,
    },
    /// The dump of namespace `netns`, deferred by the last [`Record::Checkpoint`], made at
    /// `mono_ns`.
    CheckpointPart {
        mono_ns: u64,
        netns: u32,
        sockets: Vec<InetSocket>,
    },
}

/// What the timeline's dictionaries say besides the numbers the event stream carries: a
/// network namespace's name (`/run/netns`) and a cgroup's path. Asked once per namespace
/// or cgroup the writer meets (from its SQL thread), so an answer may take a walk of the
/// cgroup tree. The agent provides it (this layer reads neither /run/netns nor the
/// cgroup2 mount).
pub trait Labels: Send + Sync {
    fn netns_name(&self, inode: u32) -> Option<String>;
    /// The cgroup's path under the cgroup2 mount (`/system.slice/nginx.service`).
    fn cgroup_path(&self, id: u64) -> Option<String>;
}

/// A shared [`Labels`], or none (names and paths stay NULL).
#[derive(Clone, Default)]
pub struct LabelSource(pub Option<std::sync::Arc<dyn Labels>>);

impl std::fmt::Debug for LabelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "LabelSource(some)" } else { "LabelSource(none)" })
    }
}

/// The agent's own state directory (the default timeline's): made 0700, and tightened to
/// 0700 when found looser. A directory named by `--timeline` elsewhere (`/tmp`, a
/// shared directory) is not ours to change; the files in it are 0600 all the same.
pub const STATE_DIR: &str = "/var/lib/sockstat";

/// Makes the timeline's directory (0700 when it is created here or is [`STATE_DIR`])
/// and the file itself 0600 before SQLite opens it: SQLite creates its database 0644 and
/// gives the write-ahead log and shared-memory files the database's mode. Files (or the
/// state directory) found looser are tightened, with a log line.
///
/// # Errors
/// Creating the directory or the file, or changing a mode.
pub(crate) fn restrict(path: &Path) -> Result<(), TimelineError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let tighten = |p: &Path, mode: u32| -> Result<(), TimelineError> {
        let mode_err = |source| TimelineError::Mode { path: p.to_path_buf(), source };
        let Ok(meta) = std::fs::metadata(p) else { return Ok(()) };
        let old = meta.permissions().mode() & 0o7777;
        if old & 0o077 != 0 {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(mode_err)?;
            tracing::warn!(path = %p.display(), old = format!("{old:o}"), new = format!("{mode:o}"), "timeline permissions were too open; restricted");
        }
        Ok(())
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if dir.exists() {
            if dir == Path::new(STATE_DIR) {
                tighten(dir, 0o700)?;
            }
        } else {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| TimelineError::Dir { path: dir.to_path_buf(), source })?;
        }
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| TimelineError::Dir { path: path.to_path_buf(), source })?;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        tighten(Path::new(&p), 0o600)?;
    }
    Ok(())
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> TimelineError + '_ {
    move |source| TimelineError::Sqlite { path: path.to_path_buf(), source }
}

#[cfg(test)]
mod fixtures {
    use std::{
        path::{Path, PathBuf},
        time::Duration,
    };

    use sockstat_ebpf::TcpState;

    use super::{Transition, Writer, WriterConfig};

    pub(super) fn tr(id: u64, ts: u64, old: TcpState, new: TcpState, sport: u16, dport: u16) -> Transition {
        Transition {
            netns: 1,
            pid: 10,
            tid: 10,
            comm: "t".into(),
            ..Transition::fixture(id, ts, old, new, (sport, dport))
        }
    }

    pub(super) fn temp_db(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("sockstat-timeline-{name}-{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
        p
    }

    pub(super) fn writer(path: &Path) -> Writer {
        // Every flush its own batch, so tests know where batches end.
        let cfg = WriterConfig {
            commit_every: Duration::ZERO,
            ..WriterConfig::new(path.to_path_buf(), Duration::from_secs(3600), 1 << 30, false)
        };
        Writer::start(cfg, 1).unwrap()
    }
}
