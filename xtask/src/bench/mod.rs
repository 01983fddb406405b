//! `cargo xtask bench`: sockstat against ss (snapshots) and bpftrace (event capture), in
//! one run, on the same sockets, in a private network namespace on loopback.
//!
//! Sections, in the order they run, numbered as in the results (the order matters: churn
//! leaves TIME-WAIT sockets that would pollute the snapshot measurements, so it comes last):
//! - 1: snapshot latency at growing socket counts held by `loadgen hold`, whole command;
//!   at the key levels every query of the scenes, and where the time of `-tan` goes (1c);
//! - 3: agent memory and seed time at the 100k level (a fresh agent, seeded there);
//! - 4: event-to-visible latency, measured with the CLI only;
//! - 1b: the TIME-WAIT scene, back at the 100k level, with TIME-WAIT sockets beside the
//!   established ones (destroyed with `ss -K` after it);
//! - 2: event capture under `loadgen churn`: untraced, with the agent (its programs' kernel
//!   cost and its timeline's size on disk too), with bpftrace, with `sockstat trace`.
//!
//! The markdown table goes to stdout and to xtask/bench/RESULTS.md, the plot to
//! xtask/bench/snapshot-latency.svg. Nothing here is asserted: a missed target is reported.
//!
//! This file holds the arguments and the order of the run. Below it: one file per section
//! (`snapshot`, `timewait`, `churn`, `memory`, `visibility`), which build on `harness`
//! (processes and timing), `profile` (the client's profile line), `programs` (kernel BPF
//! statistics) and `stats`; `report`, `scenes` and `plot` turn what the sections measured
//! into the results. The sections never import this file or each other, except for the
//! snapshot levels and queries, at which the others measure.

mod churn;
mod harness;
mod memory;
mod plot;
mod profile;
mod programs;
mod report;
mod scenes;
mod snapshot;
mod stats;
mod timewait;
mod visibility;

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::Args;
use sockstat_tests::NetNs;

use self::{
    churn::{churn_args, churn_section},
    harness::{Agent, Hold, JsonExt, Log, RemoveDir, Timing, connect_from, require_tool},
    memory::memory,
    profile::profile,
    report::{Report, environment, loadavg, write_file},
    snapshot::{FULL_LEVELS, MARKER_CLIENT, MARKER_PORT, MARKER_SERVER, QUICK_LEVELS, agent_args, snapshot_level},
    timewait::{PROFILE_RUNS, clear_time_wait, time_wait_scene},
    visibility::{PROBE_PORT, visibility},
};
use crate::loadgen;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Benchmark this sockstat binary (with its sockstat-glibc sibling, if beside it)
    /// instead of building target/dist/sockstat.
    #[arg(long)]
    sockstat: Option<PathBuf>,
    /// Small loads, few runs: checks that the bench itself works (a minute or so). Writes
    /// its results only where --out/--svg say.
    #[arg(long)]
    quick: bool,
    /// Markdown results [default: xtask/bench/RESULTS.md; none with --quick].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The plot [default: xtask/bench/snapshot-latency.svg; none with --quick].
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Seconds per churn run [default: 5; 2 with --quick].
    #[arg(long)]
    churn_seconds: Option<f64>,
    /// Rounds of (untraced, agent, bpftrace, four `sockstat trace`) churn runs; medians are
    /// reported.
    #[arg(long, default_value_t = 3)]
    churn_rounds: u32,
    /// Churn worker processes.
    #[arg(long, default_value_t = loadgen::default_churn_workers())]
    churn_workers: u16,
    /// TIME-WAIT sockets of the TIME-WAIT scene [default: 48000; 4000 with --quick]; 0 skips
    /// the scene.
    #[arg(long)]
    time_wait: Option<u32>,
    /// Only the snapshot scenes (section 1 and the TIME-WAIT scene, with where the time of
    /// `-tan` goes): no memory, event-to-visible or churn sections. With --quick, a check of
    /// the query scenes in well under a minute.
    #[arg(long)]
    snapshot_only: bool,
}

/// Hold generator i of the snapshot levels listens on HOLD_PORT_BASE + 100 i + worker.
const HOLD_PORT_BASE: u16 = 20000;
/// TIME-WAIT sockets beside the top key level's connections in a full run, and in --quick.
const TIME_WAIT_FULL: u32 = 48_000;
const TIME_WAIT_QUICK: u32 = 4_000;
/// How long the first agent idles before its memory is read.
const IDLE_SETTLE: Duration = Duration::from_secs(1);
/// How long the idle agent's CPU is counted for.
const IDLE_CPU_WINDOW: Duration = Duration::from_secs(5);

pub fn run(root: &Path, args: &BenchArgs) -> Result<()> {
    let started = Instant::now();
    let log = Log(started);
    let built = match &args.sockstat {
        Some(p) => p.clone(),
        None => {
            log.say("building sockstat (cargo xtask build)");
            crate::build(root)?
        }
    };
    // Our own copy (and of the glibc build beside it, which runs the agent): other
    // engineers may rebuild target/dist during the run.
    let work = std::env::temp_dir().join(format!("sockstat-bench-{}", std::process::id()));
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let _work_guard = RemoveDir(work.clone());
    let bin = work.join("sockstat");
    fs::copy(&built, &bin).with_context(|| format!("copying {} to {}", built.display(), bin.display()))?;
    let sibling = sockstat::cmd::long_runs::sibling_of(&built);
    if sibling.is_file() {
        let to = sockstat::cmd::long_runs::sibling_of(&bin);
        fs::copy(&sibling, &to).with_context(|| format!("copying {} to {}", sibling.display(), to.display()))?;
    }
    require_tool("ss", &["-V"], "apt-get install -y iproute2")?;
    let others = programs::loaded_named(sockstat_ebpf::PROGRAM_NAME);
    let env =
        format!("{}; sockstat transition programs of other processes loaded at start: {others}", environment(root));
    if others > 0 {
        log.say(&format!(
            "{others} other sockstat agents or traces are running: they trace the bench's connections too"
        ));
    }

    // Every process of the bench (agent, generators, ss, sockstat) inherits this namespace:
    // our sockets only, and no `ip netns exec` start-up cost in the timed commands.
    let ns = NetNs::create(&format!("sst-bench-{}", std::process::id()))?;
    ns.enter_current_thread().context("entering the bench namespace")?;
    log.say(&format!("in network namespace {}", ns.name));

    let levels = if args.quick { QUICK_LEVELS } else { FULL_LEVELS };
    let timing = if args.quick {
        Timing { min_runs: 3, max_runs: 5, budget: Duration::from_secs(3) }
    } else {
        Timing::default()
    };
    // The TIME-WAIT scene's pairs get a smaller budget: its sockets last 60 s, and all its
    // queries should fit in one set's life (about 35 s at 100k, the set made in about 7).
    let tw_timing =
        Timing { max_runs: timing.max_runs.min(7), budget: timing.budget.min(Duration::from_secs(3)), ..timing };
    let time_wait = args.time_wait.unwrap_or(if args.quick { TIME_WAIT_QUICK } else { TIME_WAIT_FULL });
    let mut report = Report { env, quick: args.quick, snapshot_only: args.snapshot_only, ..Report::default() };

    let agent_socket = work.join("agent.sock");
    let agent = Agent::start(&bin, &agent_socket, &work.join("agent.log"))?;
    // Idle: an empty table in a fresh namespace, once whatever start-up left behind settled.
    thread::sleep(IDLE_SETTLE);
    report.idle = agent.rss()?;
    report.empty_rss_kb = report.idle.total_kb;
    report.empty_seed_ms = agent.status()?.u64("seed_ms")?;
    let cpu0 = agent.cpu_seconds()?;
    thread::sleep(IDLE_CPU_WINDOW);
    report.idle_cpu_s = agent.cpu_seconds()? - cpu0;
    log.say(&format!(
        "agent ready (pid {}, RSS {} kB on an empty table: {} kB anonymous, {} kB file)",
        agent.pid(),
        report.idle.total_kb,
        report.idle.anon_kb,
        report.idle.file_kb
    ));

    // One connection to MARKER_PORT, on addresses of its own: the filtered queries select
    // it among all the others.
    let marker = TcpListener::bind((MARKER_SERVER, MARKER_PORT)).context("binding the marker listener")?;
    let marker_conn = connect_from(MARKER_CLIENT, SocketAddr::from((MARKER_SERVER, MARKER_PORT)))?;
    let (marker_peer, _) = marker.accept()?;
    let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, PROBE_PORT)).context("binding the probe listener")?;

    // Section 1 (with 3 and 4 at the key levels).
    let mut holds: Vec<Hold> = Vec::new();
    let mut held = 0u32;
    for (i, level) in levels.iter().enumerate() {
        let more = level.connections - held;
        let base = HOLD_PORT_BASE + 100 * u16::try_from(i)?;
        log.say(&format!("level {}: opening {more} more connections", level.label));
        holds.push(Hold::start(more, base)?);
        held = level.connections;
        let expect = u64::from(held) * 2;
        agent.wait_table_at_least(expect, Duration::from_secs(60))?;
        let settled = agent.settle()?;
        log.say(&format!("level {}: the agent's answers held still after {settled} untimed -tan", level.label));
        report.snapshot.push(snapshot_level(&log, &bin, &agent, level, &timing)?);

        if level.key {
            let top = levels.iter().rfind(|l| l.key).is_some_and(|l| l.label == level.label);
            if top {
                log.say(&format!("level {}: sockstat -tan {PROFILE_RUNS} times with its profile line", level.label));
                let tan = agent_args(&agent, &["-tan".to_string()]);
                report.profile = Some(profile(&bin, &tan, PROFILE_RUNS)?);
            }
            if args.snapshot_only {
                continue;
            }
            if top {
                report.memory = Some(memory(&log, &bin, &work, &agent, report.empty_rss_kb, level)?);
            }
            let samples = if args.quick {
                20
            } else if top {
                40
            } else {
                150
            };
            report.visibility.push(visibility(&log, &bin, &agent_socket, &probe, level, samples)?);
        }
    }

    // The TIME-WAIT scene, back at the top key level: the levels above it go first (their
    // connections close with RST: no TIME-WAIT of their own).
    let mut time_wait_left = 0;
    if let Some(top) = levels.iter().rposition(|l| l.key).filter(|_| time_wait > 0) {
        let level = &levels[top];
        if holds.len() > top + 1 {
            log.say(&format!("back to level {}: stopping the connections above it", level.label));
            holds.truncate(top + 1);
            agent.wait_table_at_most(u64::from(level.connections) * 2 + 64, Duration::from_secs(60))?;
        }
        report.time_wait = Some(time_wait_scene(&log, &bin, &agent, level, &tw_timing, time_wait)?);
        time_wait_left = clear_time_wait(&log)?;
    }

    log.say("stopping the held connections");
    drop(holds);
    drop((marker_conn, marker_peer, marker, probe));
    // An agent that keeps TIME-WAIT rows until they expire may still list those `ss -K`
    // destroyed.
    agent.wait_table_at_most(16 + time_wait_left as u64, Duration::from_secs(60))?;
    let tw_resyncs = report.time_wait.as_ref().map_or(0, |t| t.resyncs);
    report.hold_resyncs = agent.status()?.u64("resyncs")?.saturating_sub(tw_resyncs);
    agent.stop()?;

    // Section 2.
    if args.snapshot_only {
        return finish(root, args, &log, ns, report);
    }
    let rounds = if args.quick { 1 } else { args.churn_rounds.max(1) };
    let seconds = args.churn_seconds.unwrap_or(if args.quick { 2.0 } else { 5.0 });
    report.churn = Some(churn_section(&log, &bin, &work, &churn_args(seconds, args.churn_workers), rounds)?);
    finish(root, args, &log, ns, report)
}

/// Writes the results once every section ran.
fn finish(root: &Path, args: &BenchArgs, log: &Log, ns: NetNs, mut report: Report) -> Result<()> {
    // Deletes the namespace: processes still in it are gone by then (every generator dies
    // with its parent or at its deadline).
    drop(ns);
    report.end_load = loadavg();
    let md = report.markdown();
    print!("{md}");
    let bench_dir = root.join("xtask").join("bench");
    let out = args.out.clone().or_else(|| (!args.quick).then(|| bench_dir.join("RESULTS.md")));
    let svg_path = args.svg.clone().or_else(|| (!args.quick).then(|| bench_dir.join("snapshot-latency.svg")));
    if let Some(out) = out {
        write_file(&out, &md)?;
        log.say(&format!("wrote {}", out.display()));
    }
    if let Some(p) = svg_path {
        match report.svg() {
            Some(svg) => {
                write_file(&p, &svg)?;
                log.say(&format!("wrote {}", p.display()));
            }
            None => log.say("nothing to plot"),
        }
    }
    log.say("done");
    Ok(())
}
