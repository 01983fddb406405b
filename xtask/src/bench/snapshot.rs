//! Section 1: snapshot latency, whole `sockstat` and `ss` commands timed side by side at
//! each socket-count level. The levels themselves live here too: the other sections
//! measure at the key ones.

use std::{net::Ipv4Addr, path::Path};

use anyhow::Result;

use super::harness::{Agent, Log, Measure, Timing, time_pair};

/// Port of the listener whose single connection the filtered queries look for.
pub(super) const MARKER_PORT: u16 = 9999;
/// The marker listener's address and its client's: the held connections are all on
/// 127.0.0.1, so address filters on these select the marker's rows only.
pub(super) const MARKER_SERVER: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 2);
pub(super) const MARKER_CLIENT: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 3);
/// The prefix of the `src ADDR/prefix` query: the marker listener, its accepted socket
/// and its client (three rows).
const MARKER_PREFIX: &str = "127.0.1.0/24";

/// A query of the scenes, with the ratio over ss it should reach at the top key level.
pub(super) struct SceneQuery {
    pub(super) args: Vec<String>,
    pub(super) want: f64,
}

/// Whole-table queries at least this much faster than ss; filtered ones, `-p` and `-i`.
const WANT_TABLE: f64 = 10.0;
const WANT_FILTER: f64 = 20.0;
const WANT_PROCESSES: f64 = 50.0;
const WANT_INFO: f64 = 3.0;

/// The queries measured at key levels and in the TIME-WAIT scene (`time_wait` adds the
/// TIME-WAIT state query). `-tan` comes first: the plot and the context table read it there.
pub(super) fn scene_queries(time_wait: bool) -> Vec<SceneQuery> {
    let port = format!(":{MARKER_PORT}");
    let server = MARKER_SERVER.to_string();
    let q = |args: &[&str], want: f64| SceneQuery { args: args.iter().map(|s| (*s).to_string()).collect(), want };
    let mut v =
        vec![q(&["-tan"], WANT_TABLE), q(&["-tln"], WANT_TABLE), q(&["-tan", "state", "established"], WANT_TABLE)];
    if time_wait {
        v.push(q(&["-tan", "state", "time-wait"], WANT_TABLE));
    }
    v.extend([
        // One row: the marker's client.
        q(&["-tan", "dport", "=", &port], WANT_FILTER),
        // Two rows: the marker listener and its accepted socket.
        q(&["-tan", "sport", "=", &port], WANT_FILTER),
        // One row: the marker's client.
        q(&["-tan", "dst", &server], WANT_FILTER),
        q(&["-tan", "src", MARKER_PREFIX], WANT_FILTER),
        q(&["-tanp"], WANT_PROCESSES),
        q(&["-tani"], WANT_INFO),
    ]);
    v
}

/// sockstat's arguments for `query`, in the default source with an agent up (`auto`):
/// the agent answers what it can, and the rest goes to the kernel, as users get.
pub(super) fn agent_args(agent: &Agent, query: &[String]) -> Vec<String> {
    let mut v: Vec<String> = vec!["--source".into(), "auto".into(), "--socket".into()];
    v.push(agent.socket.to_string_lossy().into_owned());
    v.extend(query.iter().cloned());
    v
}

/// Times `sockstat` (through the agent) and `ss` on one query, alternating.
pub(super) fn compare(bin: &Path, agent: &Agent, q: &SceneQuery, t: &Timing) -> Result<Compared> {
    let a = agent_args(agent, &q.args);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let b: Vec<&str> = q.args.iter().map(String::as_str).collect();
    let (sockstat, ss) = time_pair((bin, &a), (Path::new("ss"), &b), t)?;
    Ok(Compared { query: q.args.join(" "), want: Some(q.want), sockstat, ss })
}

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
    /// The ratio over ss this query should reach (targets are read at the top key level).
    pub(super) want: Option<f64>,
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
    let mut queries = scene_queries(false);
    if !level.key {
        queries.truncate(1);
    }
    let mut rows = Vec::new();
    for q in &queries {
        log.say(&format!("level {}: sockstat and ss {}", level.label, q.args.join(" ")));
        rows.push(compare(bin, agent, q, t)?);
    }
    log.say(&format!("level {}: sockstat --source kernel -tan", level.label));
    let ss = Path::new("ss");
    let (kernel, _) =
        time_pair((bin, &["--source", "kernel", "-tan"]), (ss, &["-tan"]), &Timing { max_runs: t.min_runs, ..*t })?;
    let sockets = rows[0].ss.lines().map_or(0, |l| l.saturating_sub(1));
    let level = SnapshotLevel { label: level.label, sockets, kernel, rows };
    for r in &level.rows {
        log.say(&format!("  {:24} sockstat {:>14}  ss {:>12}", r.query, r.sockstat.cell(), r.ss.cell()));
    }
    Ok(level)
}
