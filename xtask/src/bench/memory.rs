//! Section 3: agent memory and seed time, from a second agent started fresh at a key level
//! and compared with the long-running one.

use std::path::Path;

use anyhow::Result;

use super::{
    harness::{Agent, JsonExt, Log},
    snapshot::Level,
};

pub(super) struct Memory {
    pub(super) label: &'static str,
    /// Sockets of the bench's namespace in the fresh agent's table after its seed.
    pub(super) tracked: u64,
    /// Its RSS once settled: the seed's snapshot written to the timeline, a `-tan`, a
    /// `dport` and a `-tanp` query answered (its ready answer, a port index and the owners
    /// held), and the freed heap
    /// handed back (the agent trims it every second).
    pub(super) fresh_rss_kb: u64,
    /// Its RSS the moment it said it was ready: the seed dump and the snapshot on its way
    /// to the timeline still in memory.
    pub(super) ready_rss_kb: u64,
    pub(super) empty_rss_kb: u64,
    pub(super) seed_ms: u64,
    /// The long-running agent at the same level: grown by events, after queries.
    pub(super) running_rss_kb: u64,
    pub(super) running_tracked: u64,
}

impl Memory {
    pub(super) fn bytes_per_socket(&self) -> f64 {
        (self.fresh_rss_kb.saturating_sub(self.empty_rss_kb) * 1024) as f64 / self.tracked.max(1) as f64
    }

    pub(super) fn running_bytes_per_socket(&self) -> f64 {
        (self.running_rss_kb.saturating_sub(self.empty_rss_kb) * 1024) as f64 / self.running_tracked.max(1) as f64
    }
}

pub(super) fn memory(
    log: &Log,
    bin: &Path,
    work: &Path,
    running: &Agent,
    empty_rss_kb: u64,
    level: &Level,
) -> Result<Memory> {
    log.say(&format!("level {}: seeding a second, fresh agent", level.label));
    let fresh = Agent::start(bin, &work.join("agent2.sock"), &work.join("agent2.log"))?;
    let st = fresh.status()?;
    let ready_rss_kb = fresh.rss_kb()?;
    // Settled: the timeline's writer has the seed snapshot on disk (its committed rows
    // stop growing), and a trim of the agent's heap has run since.
    let mut committed = fresh.status()?.get("timeline_committed").and_then(serde_json::Value::as_u64);
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let now = fresh.status()?.get("timeline_committed").and_then(serde_json::Value::as_u64);
        if now == committed {
            break;
        }
        committed = now;
    }
    // What queries make it keep counts too: its ready answer (built by the first query),
    // a port index (built by the first filter on a port) and the owners it keeps between
    // `-p` queries.
    for q in [&["-tan"][..], &["-tan", "dport", "=", ":9999"], &["-tanp"]] {
        let out = std::process::Command::new(bin)
            .args(["--source", "agent", "--socket"])
            .arg(&fresh.socket)
            .args(q)
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(out.success(), "sockstat {q:?} against the fresh agent failed ({out})");
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let m = Memory {
        label: level.label,
        tracked: st.own_sockets()?,
        fresh_rss_kb: fresh.rss_kb()?,
        ready_rss_kb,
        empty_rss_kb,
        seed_ms: st.u64("seed_ms")?,
        running_rss_kb: running.rss_kb()?,
        running_tracked: running.status()?.own_sockets()?,
    };
    fresh.stop()?;
    log.say(&format!(
        "  fresh agent: {} sockets, RSS {} kB settled ({} kB when ready; {:.0} B/socket over the empty {} kB), seed {} ms",
        m.tracked,
        m.fresh_rss_kb,
        m.ready_rss_kb,
        m.bytes_per_socket(),
        m.empty_rss_kb,
        m.seed_ms
    ));
    Ok(m)
}
