//! The results: the markdown of RESULTS.md (targets, one table per section, notes), the
//! plot's series, the environment line, and writing the files. Reads what the sections
//! measured; measures nothing itself.

use std::{fmt::Write as _, fs, path::Path, process::Command, thread, time::Duration};

use anyhow::{Context, Result};

use super::{
    churn::{AgentRun, Churn, TRACE_MODES, TraceMode, TraceRun},
    harness::Rss,
    memory::Memory,
    plot,
    profile::Profile,
    programs::ProgramCost,
    scenes::{profile_md, query_targets, time_wait_md},
    snapshot::SnapshotLevel,
    stats::{fmt_ms, median_f, percentile},
    timewait::TimeWaitScene,
    visibility::Visibility,
};
use crate::loadgen::ChurnResult;

/// What the run measured, section by section, filled in as the run goes.
#[derive(Default)]
pub(super) struct Report {
    pub(super) env: String,
    pub(super) quick: bool,
    /// Only the snapshot scenes ran (`--snapshot-only`).
    pub(super) snapshot_only: bool,
    /// The first agent, idle: empty table, fresh namespace.
    pub(super) idle: Rss,
    pub(super) empty_rss_kb: u64,
    /// CPU (user+sys) of the idle agent over [`super::IDLE_CPU_WINDOW`], in seconds.
    pub(super) idle_cpu_s: f64,
    pub(super) empty_seed_ms: u64,
    pub(super) snapshot: Vec<SnapshotLevel>,
    /// `-tan` with the client's profile line, at the top key level.
    pub(super) profile: Option<Profile>,
    pub(super) time_wait: Option<TimeWaitScene>,
    pub(super) memory: Option<Memory>,
    pub(super) visibility: Vec<Visibility>,
    pub(super) hold_resyncs: u64,
    pub(super) churn: Option<Churn>,
    pub(super) end_load: String,
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn fmt_rate(r: f64) -> String {
    if r.is_nan() { "n/a".into() } else { format!("{:.0}", r) }
}

/// The program cost targets, in ns per run.
const PROGRAM_NS_TARGET: f64 = 300.0;
/// The idle agent's RSS target.
const IDLE_RSS_TARGET_KB: u64 = 32 * 1024;
/// The timeline's target on disk per finished connection, and the retention it must give.
const DISK_PER_CONNECTION_TARGET: f64 = 64.0;
const RETENTION_RATE: f64 = 1000.0;
const RETENTION_TARGET_HOURS: f64 = 24.0;

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

/// Per-round costs of one program: the median ns per run, and the runs of every round.
fn program_costs(c: &Churn, pick: impl Fn(&AgentRun) -> Option<ProgramCost>) -> Option<(f64, u64, usize)> {
    let costs: Vec<ProgramCost> = c.agent_stats.iter().filter_map(pick).collect();
    if costs.is_empty() || costs.iter().all(|p| p.runs == 0) {
        return None;
    }
    let ns = median_f(costs.iter().filter(|p| p.runs > 0).map(ProgramCost::ns_per_run));
    Some((ns, costs.iter().map(|p| p.runs).sum(), costs.len()))
}

/// Median bytes on disk per connection over the agent runs.
fn disk_per_connection(c: &Churn) -> Option<f64> {
    let v: Vec<f64> = c.agent.iter().filter_map(AgentRun::timeline_bytes_per_connection).collect();
    (!v.is_empty()).then(|| median_f(v))
}

/// Hours of `RETENTION_RATE` connections/s that `retain_bytes` holds at `per_connection`.
fn retention_hours(retain_bytes: u64, per_connection: f64) -> f64 {
    retain_bytes as f64 / (per_connection * RETENTION_RATE * 3600.0)
}

fn trace_runs(c: &Churn, mode: TraceMode) -> Vec<&TraceRun> {
    c.trace.iter().filter(|t| t.mode == Some(mode)).collect()
}

/// A mode's losses over all its runs: events lost (None if trace said so in words the
/// bench could not read), malformed, and runs that did not exit cleanly.
fn trace_losses(runs: &[&TraceRun]) -> (Option<u64>, u64, usize) {
    let lost = runs.iter().try_fold(0u64, |acc, t| t.lost.map(|n| acc + n));
    let malformed = runs.iter().map(|t| t.malformed).sum();
    let failed = runs.iter().filter(|t| t.said.iter().any(|l| l.starts_with("exited with"))).count();
    (lost, malformed, failed)
}

fn fmt_lost(lost: Option<u64>) -> String {
    lost.map_or_else(|| "? (see below)".into(), |n| n.to_string())
}

impl Report {
    /// The largest key level (100k in a full run).
    fn top_key(&self) -> Option<&SnapshotLevel> {
        self.snapshot.iter().rfind(|l| l.rows.len() > 1)
    }

    fn targets(&self, s: &mut String) {
        let _ = writeln!(s, "## Targets\n");
        let _ = writeln!(s, "| target | measured | verdict |");
        let _ = writeln!(s, "| --- | --- | --- |");
        query_targets(s, self.top_key(), self.time_wait.as_ref());
        if let Some(c) = &self.churn {
            let untraced = median_f(c.untraced.iter().map(ChurnResult::rate));
            let ratio = median_f(c.agent.iter().map(|a| a.churn.rate())) / untraced;
            let _ = writeln!(
                s,
                "| churn rate with the agent >= 90% of untraced | {:.1}% | {} |",
                ratio * 100.0,
                verdict(ratio >= 0.9)
            );
            let core = median_f(c.agent.iter().map(|a| a.cpu_s / a.wall_s));
            let _ = writeln!(
                s,
                "| agent at most 25% of one core at that rate (user+sys of its process) | {:.1}% of one core | {} |",
                core * 100.0,
                verdict(core <= 0.25)
            );
            for (what, name, unit, pick) in [
                (
                    "transition programs",
                    "sockstat_set_state` + `sockstat_nested",
                    "transition",
                    (|a: &AgentRun| a.set_state) as fn(&AgentRun) -> Option<ProgramCost>,
                ),
                ("accept hook", sockstat_ebpf::ACCEPT_PROGRAM, "run", |a: &AgentRun| a.accept),
            ] {
                let (m, v) = match program_costs(c, pick) {
                    Some((ns, runs, rounds)) => (
                        format!("{ns:.0} ns per {unit} (median of {rounds} runs; {runs} {unit}s in all)"),
                        verdict(ns <= PROGRAM_NS_TARGET).to_string(),
                    ),
                    None => (format!("no runs of a program named `{name}` among the agent's"), "not measured".into()),
                };
                let _ = writeln!(
                    s,
                    "| {what} (`{name}`) at most {PROGRAM_NS_TARGET:.0} ns per {unit} (kernel BPF statistics) | {m} | {v} |"
                );
            }
            let all = || c.agent_runs();
            let lost: u64 = all().map(|a| a.lost() + a.malformed).sum();
            let dropped: u64 = all().map(|a| a.timeline_dropped).sum();
            let resyncs: u64 = all().map(|a| a.resyncs).sum();
            let _ = writeln!(
                s,
                "| zero lost events at the highest churn rate (agent) | {lost} lost, {resyncs} resyncs, {dropped} timeline records dropped over {} runs | {} |",
                all().count(),
                verdict(lost == 0 && dropped == 0)
            );
            for mode in TRACE_MODES {
                let runs = trace_runs(c, mode);
                if runs.is_empty() {
                    continue;
                }
                let (lost, malformed, failed) = trace_losses(&runs);
                let ratio = median_f(runs.iter().map(|t| t.churn.rate())) / untraced;
                let failed_note = if failed > 0 { format!("; {failed} runs failed") } else { String::new() };
                let _ = writeln!(
                    s,
                    "| `{}` to {}: 0 lost, churn >= 90% of untraced | {} lost, {malformed} malformed over {} runs{failed_note}; churn {:.1}% | {} |",
                    mode.command(),
                    mode.sink(),
                    fmt_lost(lost),
                    runs.len(),
                    ratio * 100.0,
                    verdict(lost == Some(0) && malformed == 0 && failed == 0 && ratio >= 0.9)
                );
            }
        }
        if self.idle.total_kb > 0 {
            let i = &self.idle;
            let _ = writeln!(
                s,
                "| idle agent (empty table, default configuration) at most {} RSS | {} ({} anonymous, {} file pages) | {} |",
                mib(IDLE_RSS_TARGET_KB),
                mib(i.total_kb),
                mib(i.anon_kb),
                mib(i.file_kb),
                verdict(i.total_kb <= IDLE_RSS_TARGET_KB)
            );
        }
        if let Some(m) = &self.memory {
            let b = m.bytes_per_socket();
            let _ = writeln!(
                s,
                "| at most 256 bytes of agent memory per tracked socket | {b:.0} B (fresh agent at {}, settled, ready answer, a port index and kept owners included: {} sockets) | {} |",
                m.label,
                m.tracked,
                verdict(b <= 256.0)
            );
        }
        if let Some(c) = &self.churn {
            match disk_per_connection(c) {
                Some(b) => {
                    let _ = writeln!(
                        s,
                        "| at most {DISK_PER_CONNECTION_TARGET:.0} bytes on disk per finished connection (timeline) | {b:.0} B (file and WAL after the agent stopped, over the connections of its churn run; median of {} runs) | {} |",
                        c.agent.len(),
                        verdict(b <= DISK_PER_CONNECTION_TARGET)
                    );
                    if let Some(retain) = c.retain_bytes {
                        let h = retention_hours(retain, b);
                        let age = c.retain_age.as_deref().map_or_else(String::new, |a| format!(", `--retain-age` {a}"));
                        let _ = writeln!(
                            s,
                            "| the default retention holds at least a day of 1k connections/s | {h:.1} h at {b:.0} B per connection (`--retain-bytes` {retain}{age}) | {} |",
                            verdict(h >= RETENTION_TARGET_HOURS)
                        );
                    }
                }
                None => {
                    let _ = writeln!(
                        s,
                        "| at most {DISK_PER_CONNECTION_TARGET:.0} bytes on disk per finished connection (timeline) | the agent keeps no timeline | not measured |"
                    );
                }
            }
        }
        s.push('\n');
    }

    pub(super) fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# sockstat benchmarks\n");
        let _ = writeln!(
            s,
            "Generated by `cargo xtask bench`{}{}; nothing in this file is edited by hand.\n",
            if self.quick { " --quick (smoke run: small loads)" } else { "" },
            if self.snapshot_only { " --snapshot-only (the snapshot scenes only)" } else { "" }
        );
        let _ = writeln!(s, "Measured: {}; load average at the end {}.\n", self.env, self.end_load);
        let _ = writeln!(
            s,
            "Everything ran in one run, in a private network namespace, on loopback: `loadgen hold` keeps \
             established connections open (both ends counted as sockets), `loadgen churn` opens, exchanges \
             8 bytes and closes connections as fast as it can. Times are whole-command wall-clock medians \
             (process start to exit, stdout to /dev/null), sockstat and ss runs alternating; the ratio is ss's \
             median over sockstat's. A level is measured once it holds still: after its connections opened, \
             untimed `sockstat -tan` queries until one makes the agent check nothing new with the kernel (its \
             first queries confirm the new connections' handshakes and rebuild its answer).\n"
        );
        self.targets(&mut s);

        let _ = writeln!(s, "## 1. Snapshot latency\n");
        let _ = writeln!(
            s,
            "sockstat runs with the agent up, in its default `--source auto`: the agent answers plain queries and `-p` (its table, and the owners it keeps between queries: after the first `-p`, only processes that changed are walked again), and queries with `-i` (details the agent cannot give fresh) are answered from the kernel; ss dumps sock_diag and walks /proc.\n"
        );
        let _ = writeln!(
            s,
            "| query | sockets | sockstat (agent up) | ss | ss / sockstat | runs (sockstat/ss) | output lines (sockstat/ss) |"
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for l in &self.snapshot {
            for r in &l.rows {
                let ratio = r.ratio().map_or_else(|| "n/a".into(), |x| format!("{x:.1}x"));
                let lines = format!(
                    "{}/{}",
                    r.sockstat.lines().map_or_else(|| "-".into(), |n| n.to_string()),
                    r.ss.lines().map_or_else(|| "-".into(), |n| n.to_string())
                );
                let _ = writeln!(
                    s,
                    "| `{}` | {} ({}) | {} | {} | {ratio} | {}/{} | {lines} |",
                    r.query,
                    l.label,
                    l.sockets,
                    r.sockstat.cell(),
                    r.ss.cell(),
                    r.sockstat.runs(),
                    r.ss.runs()
                );
            }
        }
        let _ = writeln!(
            s,
            "\nFor context, sockstat without the agent (`--source kernel -tan`, its own sock_diag dump):\n"
        );
        let _ = writeln!(s, "| sockets | `sockstat --source kernel -tan` | `ss -tan` | ss / sockstat |");
        let _ = writeln!(s, "| ---: | ---: | ---: | ---: |");
        for l in &self.snapshot {
            let ss = &l.rows[0].ss;
            let ratio = match (ss.median(), l.kernel.median()) {
                (Some(a), Some(b)) => format!("{:.1}x", a.as_secs_f64() / b.as_secs_f64()),
                _ => "n/a".into(),
            };
            let _ = writeln!(s, "| {} ({}) | {} | {} | {ratio} |", l.label, l.sockets, l.kernel.cell(), ss.cell());
        }
        let _ = writeln!(s, "\n![snapshot latency against socket count](snapshot-latency.svg)\n");
        if self.hold_resyncs > 0 {
            let _ = writeln!(
                s,
                "The agent resynced {} times while the held connections were opened (ring buffer overflow).\n",
                self.hold_resyncs
            );
        }
        time_wait_md(&mut s, self.time_wait.as_ref());
        let mut profiles = Vec::new();
        if let (Some(p), Some(top)) = (&self.profile, self.top_key()) {
            profiles.push((format!("{} ({} sockets)", top.label, top.sockets), p));
        }
        if let Some(tw) = &self.time_wait {
            let counted = tw.sets.first().map_or(0, |s| s.counted);
            profiles.push((format!("{} + {counted} TIME-WAIT", tw.label), &tw.profile));
        }
        profile_md(&mut s, &profiles);

        self.churn_md(&mut s);

        let _ = writeln!(s, "## 3. Agent memory and start-up\n");
        let _ = writeln!(s, "| | value |");
        let _ = writeln!(s, "| --- | ---: |");
        let _ = writeln!(s, "| agent RSS on an empty table (fresh agent, no load) | {} kB |", self.empty_rss_kb);
        let _ = writeln!(s, "| of which anonymous (`RssAnon`: heap, stacks, ring buffer) | {} kB |", self.idle.anon_kb);
        let _ = writeln!(s, "| of which file pages (`RssFile`: the binary, libraries) | {} kB |", self.idle.file_kb);
        let _ = writeln!(s, "| seed time on an empty table | {} ms |", self.empty_seed_ms);
        let _ = writeln!(
            s,
            "| CPU of the agent on an empty table (user+sys over {} s; other namespaces' traffic counts) | {:.2}% of one core |",
            super::IDLE_CPU_WINDOW.as_secs(),
            self.idle_cpu_s / super::IDLE_CPU_WINDOW.as_secs_f64() * 100.0
        );
        if let Some(m) = &self.memory {
            let _ = writeln!(s, "| fresh agent seeded at {}: sockets tracked | {} |", m.label, m.tracked);
            let _ = writeln!(
                s,
                "| fresh agent seeded at {}: RSS when it said it was ready (the seed dump and its snapshot still in memory) | {} kB |",
                m.label, m.ready_rss_kb
            );
            let _ = writeln!(
                s,
                "| fresh agent seeded at {}: RSS settled (snapshot written, a `-tan`, a `dport` and a `-tanp` query answered: its ready answer, a port index and the owners held, heap trimmed) | {} kB |",
                m.label, m.fresh_rss_kb
            );
            let _ = writeln!(
                s,
                "| **memory per tracked socket** (settled RSS delta / sockets) | **{:.0} B** |",
                m.bytes_per_socket()
            );
            let _ = writeln!(
                s,
                "| **seed time at {}** (`seed_ms`: sock_diag dump into the table) | **{} ms** |",
                m.label, m.seed_ms
            );
            let _ = writeln!(
                s,
                "| long-running agent at {} (grown by events, after serving the queries above): RSS, per socket | {} kB, {:.0} B |",
                m.label,
                m.running_rss_kb,
                m.running_bytes_per_socket()
            );
        }
        s.push('\n');

        let _ = writeln!(s, "## 4. Event-to-visible latency\n");
        let _ = writeln!(
            s,
            "Time from `connect()` (the client and server become ESTABLISHED) until a `sockstat --source agent -tan` \
             run shows both ends, and from an abortive close until a run shows neither; each sample polls with whole \
             CLI runs, so the numbers include one query's latency (section 1).\n"
        );
        let _ = writeln!(
            s,
            "| sockets | samples | appear p50 | appear p99 | disappear p50 | disappear p99 | queries that missed the change |"
        );
        let _ = writeln!(s, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        if self.visibility.is_empty() {
            let _ = writeln!(s, "| not run | | | | | | |");
        }
        for v in &self.visibility {
            let _ = writeln!(
                s,
                "| {} ({}) | {} | {} | {} | {} | {} | {} |",
                v.label,
                v.sockets,
                v.samples,
                fmt_ms(percentile(&v.appear, 50.0)),
                fmt_ms(percentile(&v.appear, 99.0)),
                fmt_ms(percentile(&v.gone, 50.0)),
                fmt_ms(percentile(&v.gone, 99.0)),
                v.extra_polls
            );
        }
        s.push('\n');
        let _ = writeln!(s, "## Notes\n");
        let _ = writeln!(
            s,
            "- Rows marked n/a carry sockstat's own error message: the option is not implemented yet, so there is \
               nothing to compare; ss was still measured.\n\
             - The agent's CPU is its own process only (utime+stime from /proc); the eBPF program runs in the \
               context of the processes that change socket state and shows up as a lower churn rate instead.\n\
             - Agents run in their default configuration; one with a timeline writes it to its own SQLite file in \
               a temporary directory.\n\
             - bpftrace counts every namespace (the agent's `events_seen` does too); other traffic on the machine \
               adds to both.\n\
             - Memory per socket is the RSS of an agent seeded at that level minus the RSS of a fresh agent on an \
               empty table, divided by the sockets it tracks.\n\
             - Program costs are the kernel's BPF statistics (`kernel.bpf_stats_enabled`, on during the agent's \
               churn runs only, its old value restored after): `run_time_ns / run_cnt` of the programs the agent \
               holds, found by name. The statistics add two clock reads to every run, so they weigh on that \
               churn rate too. Both programs run for every namespace of the machine.\n\
             - The timeline records every namespace of the machine: other traffic during a churn run adds to its \
               size on disk, which is divided by the bench's connections only."
        );
        s
    }

    fn churn_md(&self, s: &mut String) {
        let _ = writeln!(s, "## 2. Event capture at the highest churn rate\n");
        let Some(c) = &self.churn else {
            let _ = writeln!(s, "Not run.\n");
            return;
        };
        let _ = writeln!(
            s,
            "`loadgen churn` with {} worker processes, {} s per run, {} rounds of (untraced, agent, agent with \
             BPF statistics on, bpftrace, `sockstat trace` four ways); medians over rounds. The agent column is \
             the agent in its default configuration; its programs' costs come from the runs with BPF \
             statistics on (`kernel.bpf_stats_enabled=1` costs each program run two clock reads, a few \
             points of churn), and its losses are those of both. bpftrace runs \
             `tracepoint:sock:inet_sock_set_state {{ @c = count(); }}`.\n",
            c.workers,
            c.seconds,
            c.untraced.len()
        );
        let untraced = median_f(c.untraced.iter().map(ChurnResult::rate));
        let with_agent = median_f(c.agent.iter().map(|a| a.churn.rate()));
        let with_bt = median_f(c.bpftrace.iter().map(|b| b.churn.rate()));
        let bt_cell = |v: String| {
            if c.bpftrace.is_empty() {
                match &c.bpftrace_missing {
                    Some(why) => format!("n/a: {why}"),
                    None if !c.bpftrace_failed.is_empty() => "n/a: no run gave a count (see below)".into(),
                    None => "n/a: not run".into(),
                }
            } else {
                v
            }
        };
        let _ = writeln!(s, "| | untraced | sockstat agent | bpftrace |");
        let _ = writeln!(s, "| --- | ---: | ---: | ---: |");
        let _ = writeln!(
            s,
            "| connections/s | {} | {} | {} |",
            fmt_rate(untraced),
            fmt_rate(with_agent),
            bt_cell(fmt_rate(with_bt))
        );
        let _ = writeln!(
            s,
            "| churn rate relative to untraced | 100% | {:.1}% | {} |",
            with_agent / untraced * 100.0,
            bt_cell(format!("{:.1}%", with_bt / untraced * 100.0))
        );
        let agent_tps = median_f(c.agent.iter().map(|a| a.seen as f64 / a.churn.seconds));
        let bt_tps = median_f(c.bpftrace.iter().map(|b| b.count as f64 / b.churn.seconds));
        let _ = writeln!(
            s,
            "| transitions/s (agent: kernel `events_seen`; bpftrace: `@c`) | - | {} | {} |",
            fmt_rate(agent_tps),
            bt_cell(fmt_rate(bt_tps))
        );
        let per_conn_a = median_f(c.agent.iter().map(|a| a.seen as f64 / a.churn.connections.max(1) as f64));
        let per_conn_b = median_f(c.bpftrace.iter().map(|b| b.count as f64 / b.churn.connections.max(1) as f64));
        let _ = writeln!(
            s,
            "| transitions per connection | - | {per_conn_a:.2} | {} |",
            bt_cell(format!("{per_conn_b:.2}"))
        );
        let all = || c.agent_runs();
        let ring_full: u64 = all().map(|a| a.ring_full).sum();
        let missed: u64 = all().map(|a| a.missed).sum();
        let overflowed: u64 = all().map(|a| a.overflowed).sum();
        let malformed: u64 = all().map(|a| a.malformed).sum();
        let dropped: u64 = all().map(|a| a.timeline_dropped).sum();
        let resyncs: u64 = all().map(|a| a.resyncs).sum();
        let seen: u64 = all().map(|a| a.seen).sum();
        let received: u64 = all().map(|a| a.received).sum();
        let _ = writeln!(
            s,
            "| events lost (all runs) | - | {ring_full} lost with the ring full, {missed} transitions the kernel ran no program for, {overflowed} dropped by the agent's reader (queue full), {malformed} malformed, {resyncs} resyncs; {received} of {seen} seen were received; {dropped} timeline records dropped (writer behind) | {} |",
            bt_cell("counts in a kernel map, cannot lose".into())
        );
        let cpu_per_100k = median_f(c.agent.iter().map(|a| a.cpu_s / a.received.max(1) as f64 * 1e5));
        let core = median_f(c.agent.iter().map(|a| a.cpu_s / a.wall_s));
        let bt_core = median_f(c.bpftrace.iter().map(|b| b.cpu_s / b.churn.seconds));
        let _ = writeln!(
            s,
            "| tracer CPU, user+sys | - | {:.0} ms per 100k events; {:.1}% of one core | {} |",
            cpu_per_100k * 1e3,
            core * 100.0,
            bt_cell(format!("{:.1}% of one core (user space only; counting is in the kernel)", bt_core * 100.0))
        );
        for (what, pick) in [
            ("transition programs (both)", (|a: &AgentRun| a.set_state) as fn(&AgentRun) -> Option<ProgramCost>),
            ("accept hook", |a: &AgentRun| a.accept),
            ("sock_ops program (no target)", |a: &AgentRun| a.sock_ops),
            ("owners' change notes (no target)", |a: &AgentRun| a.owner_notes),
        ] {
            let cell = program_costs(c, pick).map_or_else(
                || "not measured".into(),
                |(ns, runs, rounds)| {
                    format!("{ns:.0} ns per run; {:.0} runs/s", runs as f64 / rounds as f64 / c.seconds)
                },
            );
            let _ = writeln!(
                s,
                "| {what}, kernel time per run (BPF statistics, in the runs with them on) | - | {cell} | - |"
            );
        }
        let disk = match disk_per_connection(c) {
            Some(b) => {
                let bytes = median_f(c.agent.iter().filter_map(|a| a.timeline_bytes.map(|x| x as f64)));
                format!("{:.1} MB per run; {b:.0} B per connection", bytes / 1e6)
            }
            None => "no timeline".into(),
        };
        let _ = writeln!(s, "| timeline on disk after the agent stopped (file + WAL) | - | {disk} | - |");
        let errors: u64 = c
            .untraced
            .iter()
            .chain(c.agent_runs().map(|a| &a.churn))
            .chain(c.bpftrace.iter().map(|b| &b.churn))
            .chain(c.trace.iter().map(|t| &t.churn))
            .map(|r| r.errors)
            .sum();
        if errors > 0 {
            let _ = writeln!(s, "\nThe churn saw {errors} failed connects in all (counted, not in the rates).");
        }
        let said: Vec<&String> = c.agent_runs().flat_map(|a| &a.loss_said).collect();
        if !said.is_empty() {
            let _ = writeln!(s, "\nWhat the agent logged about its losses, run by run:\n");
            for line in said {
                let _ = writeln!(s, "    {line}");
            }
        }
        if !c.bpftrace_failed.is_empty() {
            let _ = writeln!(
                s,
                "\nbpftrace gave no count in {} of {} rounds (its column is the median of the others): {}.",
                c.bpftrace_failed.len(),
                c.untraced.len(),
                c.bpftrace_failed.join("; ")
            );
        }
        s.push('\n');
        self.trace_md(s, c, untraced);
    }

    fn trace_md(&self, s: &mut String, c: &Churn, untraced: f64) {
        let modes: Vec<(TraceMode, Vec<&TraceRun>)> =
            TRACE_MODES.iter().map(|&m| (m, trace_runs(c, m))).filter(|(_, r)| !r.is_empty()).collect();
        if modes.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "`sockstat trace` under the same churn, its stdout to a file in the bench's temporary directory or to \
             a pipe read by `wc -l` (which counts the records). trace shows the bench's namespace (its default); \
             it reports its losses on stderr when it stops. Its CPU is over the churn and until its output stopped \
             growing.\n"
        );
        let head: Vec<String> = modes.iter().map(|(m, _)| format!("`{}` to {}", m.command(), m.sink())).collect();
        let _ = writeln!(s, "| | {} |", head.join(" | "));
        let _ = writeln!(s, "| --- |{}", " ---: |".repeat(modes.len()));
        let row = |s: &mut String, what: &str, cell: &dyn Fn(&[&TraceRun]) -> String| {
            let cells: Vec<String> = modes.iter().map(|(_, r)| cell(r)).collect();
            let _ = writeln!(s, "| {what} | {} |", cells.join(" | "));
        };
        row(s, "connections/s", &|r| fmt_rate(median_f(r.iter().map(|t| t.churn.rate()))));
        row(s, "churn rate relative to untraced", &|r| {
            format!("{:.1}%", median_f(r.iter().map(|t| t.churn.rate())) / untraced * 100.0)
        });
        row(s, "records written per connection", &|r| {
            format!("{:.2}", median_f(r.iter().map(|t| t.records as f64 / t.churn.connections.max(1) as f64)))
        });
        row(s, "events lost (all runs)", &|r| {
            let (lost, malformed, failed) = trace_losses(r);
            let failed = if failed > 0 { format!(", {failed} runs failed") } else { String::new() };
            format!("{} lost, {malformed} malformed{failed}", fmt_lost(lost))
        });
        row(s, "trace CPU, user+sys", &|r| {
            format!("{:.1}% of one core", median_f(r.iter().map(|t| t.cpu_s / t.wall_s)) * 100.0)
        });
        let mut said: Vec<String> = c.trace.iter().flat_map(|t| t.said.iter().cloned()).collect();
        said.sort();
        said.dedup();
        if !said.is_empty() {
            let _ = writeln!(s, "\ntrace said on stderr (besides its start-up line):\n");
            for l in said.iter().take(12) {
                let _ = writeln!(s, "- `{}`", l.replace('`', "'"));
            }
        }
        s.push('\n');
    }

    pub(super) fn svg(&self) -> Option<String> {
        let pick = |f: &dyn Fn(&SnapshotLevel) -> Option<Duration>| -> Vec<(f64, f64)> {
            self.snapshot.iter().filter_map(|l| f(l).map(|d| (l.sockets as f64, d.as_secs_f64() * 1e3))).collect()
        };
        let series = vec![
            plot::Series {
                label: "sockstat -tan (agent)".into(),
                color: "#1f77b4",
                points: pick(&|l| l.rows[0].sockstat.median()),
            },
            plot::Series {
                label: "sockstat -tan (kernel)".into(),
                color: "#2ca02c",
                points: pick(&|l| l.kernel.median()),
            },
            plot::Series { label: "ss -tan".into(), color: "#d62728", points: pick(&|l| l.rows[0].ss.median()) },
        ];
        plot::svg("Snapshot latency (whole command, median)", "TCP sockets", "milliseconds", &series)
    }
}

pub(super) fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

/// What the results were measured on, for the header of the results.
pub(super) fn environment(root: &Path) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cores = thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let rev = Command::new("git")
        .current_dir(root)
        .args(["describe", "--always", "--dirty"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into());
    format!(
        "{} UTC; kernel {}; {cores} cores ({cpu}); load average at start {}; {}; sockstat at {rev}",
        command_output("date", &["-u", "+%Y-%m-%d %H:%M"]),
        command_output("uname", &["-r"]),
        loadavg(),
        command_output("ss", &["-V"]),
    )
}

/// The 1-minute load average: the machine may be shared, and the numbers mean less if
/// something else was running.
pub(super) fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
