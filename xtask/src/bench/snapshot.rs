//! Section 1: snapshot latency, whole `sockstat` and `ss` commands timed side by side at
//! each socket-count level. The levels themselves live here too: the other sections
//! measure at the key ones.

use std::path::Path;

use anyhow::Result;

use super::harness::{Agent, Log, Measure, Timing, time_pair};

/// Port of the listener whose single connection the filtered query looks for.
pub(super) const MARKER_PORT: u16 = 9999;

/// A socket-count level of the snapshot section.
pub(super) struct Level {
    /// Established connections held in all at this level (sockets = 2x).
    pub(super) connections: u32,
    /// Label used in the tables (e.g. "100k"): the nominal socket count.
    pub(super) label: &'static str,
    /// Detailed rows (-tanp, -tani, filter, memory, visibility) are measured here.
    pub(super) key: bool,
}

pub(super) const FULL_LEVELS: &[Level] = &[
    Level { connections: 500, label: "1k", key: false },
    Level { connections: 5_000, label: "10k", key: true },
    Level { connections: 25_000, label: "50k", key: false },
    Level { connections: 50_000, label: "100k", key: true },
    Level { connections: 100_000, label: "200k", key: false },
];

pub(super) const QUICK_LEVELS: &[Level] =
    &[Level { connections: 500, label: "1k", key: true }, Level { connections: 2_000, label: "4k", key: true }];

/// One query compared at one level.
pub(super) struct Compared {
    pub(super) query: String,
    pub(super) sockstat: Measure,
    pub(super) ss: Measure,
}

impl Compared {
    pub(super) fn ratio(&self) -> Option<f64> {
        Some(self.ss.median()?.as_secs_f64() / self.sockstat.median()?.as_secs_f64())
    }
}

pub(super) struct SnapshotLevel {
    pub(super) label: &'static str,
    /// TCP sockets in the namespace, counted from ss -tan's output.
    pub(super) sockets: usize,
    /// sockstat --source kernel -tan: the fallback path, for context.
    pub(super) kernel: Measure,
    pub(super) rows: Vec<Compared>,
}

pub(super) fn snapshot_level(log: &Log, bin: &Path, agent: &Agent, level: &Level, t: &Timing) -> Result<SnapshotLevel> {
    let socket = agent.socket.to_string_lossy().into_owned();
    let agent_args = |extra: &[&str]| -> Vec<String> {
        // The default source with an agent up (`auto`): the agent answers plain queries;
        // -p through its owners iterator; -i, which it cannot answer fresh, goes to the
        // kernel, as users get.
        let mut v: Vec<String> = ["--source", "auto", "--socket", &socket].iter().map(|s| (*s).to_string()).collect();
        v.extend(extra.iter().map(|s| (*s).to_string()));
        v
    };
    let ss = Path::new("ss");
    let marker = format!(":{MARKER_PORT}");
    let mut queries: Vec<Vec<&str>> = vec![vec!["-tan"]];
    if level.key {
        queries.push(vec!["-tanp"]);
        queries.push(vec!["-tani"]);
        queries.push(vec!["-tan", "dport", "=", &marker]);
        // Only states the agent's table answers for: no sock_diag dump at query time, so
        // the difference to -tan shows what that dump costs.
        queries.push(vec!["-tn", "state", "established"]);
    }
    let mut rows = Vec::new();
    for q in &queries {
        let a = agent_args(q);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        log.say(&format!("level {}: sockstat and ss {}", level.label, q.join(" ")));
        let (sockstat, ssm) = time_pair((bin, &a), (ss, q), t)?;
        rows.push(Compared { query: q.join(" "), sockstat, ss: ssm });
    }
    log.say(&format!("level {}: sockstat --source kernel -tan", level.label));
    let (kernel, _) =
        time_pair((bin, &["--source", "kernel", "-tan"]), (ss, &["-tan"]), &Timing { max_runs: t.min_runs, ..*t })?;
    let sockets = rows[0].ss.lines().map_or(0, |l| l.saturating_sub(1));
    let level = SnapshotLevel { label: level.label, sockets, kernel, rows };
    for r in &level.rows {
        log.say(&format!("  {:24} sockstat {:>14}  ss {:>12}", r.query, r.sockstat.cell(), r.ss.cell()));
    }
    Ok(level)
}
