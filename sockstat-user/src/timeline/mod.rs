//! The forensic timeline: every transition, every finished connection, every loss (as a
//! gap marker) and every table snapshot, in one SQLite file that `sqlite3` opens. The
//! agent hands records to a writer thread in batches, so disk I/O stays off the event
//! loop; each batch is one transaction (WAL journal), so a crash loses at most the batch
//! in flight and never leaves a torn one. Readers (`--at`, `history`) open the file
//! read-only while the agent writes.
//!
//! Owns the schema (`schema`), the writer with its batching and retention (`writer`),
//! the readers for `history` (`reader`) and `--at` (`replay`), and connection lifetimes
//! (`lifetime`); here, the types they share. Imports `model` and `bpf` (the stream's
//! [`Transition`] is what the writer stores and the readers give back).

pub mod lifetime;
pub mod reader;
pub mod replay;
pub mod schema;
pub mod writer;

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub use crate::model::tcp::TIME_WAIT_NS;
use crate::{bpf::stream::Transition, model::socket::InetSocket, timeline::lifetime::Lifetime};
pub use reader::{Reader, StoredLifetime, StoredTransition};
pub use replay::AtState;
pub use schema::SCHEMA_VERSION;
pub use writer::{Writer, WriterConfig};

pub const DEFAULT_PATH: &str = "/var/lib/sockstat/timeline.db";

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
        Writer::start(
            WriterConfig { path: path.to_path_buf(), retain_age: Duration::from_secs(3600), retain_bytes: 1 << 30 },
            1,
        )
        .unwrap()
    }
}
