//! `cargo xtask bench`: sockstat against ss (snapshots) and bpftrace (event capture), in
//! one run, on the same sockets, in a private network namespace on loopback.
//!
//! Sections, in the order they run (the order matters: churn leaves TIME-WAIT sockets that
//! would pollute the snapshot measurements, so it comes last):
//! 1. snapshot latency at growing socket counts held by `loadgen hold`, whole command;
//! 3. agent memory and seed time at the 100k level (a fresh agent, seeded there);
//! 4. event-to-visible latency, measured with the CLI only;
//! 2. event capture under `loadgen churn`: untraced, with the agent (its programs' kernel
//!    cost and its timeline's size on disk too), with bpftrace, with `sockstat trace`.
//!
//! The markdown table goes to stdout and to xtask/bench/RESULTS.md, the plot to
//! xtask/bench/snapshot-latency.svg. Nothing here is asserted: a missed target is reported.
//!
//! This file holds the arguments and the order of the run. Below it: one file per section
//! (`snapshot`, `churn`, `memory`, `visibility`), which build on `harness` (processes and
//! timing), `programs` (kernel BPF statistics) and `stats`; `report` and `plot` turn what
//! the sections measured into the
//! results. The sections never import this file or each other, except for the snapshot
//! levels, at which the others measure.

mod churn;
mod harness;
mod memory;
mod plot;
mod programs;
mod report;
mod snapshot;
mod stats;
mod visibility;

use std::{
    fs,
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use clap::Args;
use sockstat_tests::NetNs;

use self::{
    churn::{churn_args, churn_section},
    harness::{Agent, Hold, JsonExt, Log, RemoveDir, Timing, require_tool},
    memory::memory,
    report::{Report, environment, loadavg, write_file},
    snapshot::{FULL_LEVELS, MARKER_PORT, QUICK_LEVELS, snapshot_level},
    visibility::{PROBE_PORT, visibility},
};
use crate::loadgen;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Benchmark this sockstat binary instead of building target/release/sockstat.
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
}

/// Hold generator i of the snapshot levels listens on HOLD_PORT_BASE + 100 i + worker.
const HOLD_PORT_BASE: u16 = 20000;
/// How long the first agent idles before its memory is read.
const IDLE_SETTLE: Duration = Duration::from_secs(1);

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
    // Our own copy: other engineers may rebuild target/release/sockstat during the run.
    let work = std::env::temp_dir().join(format!("sockstat-bench-{}", std::process::id()));
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let _work_guard = RemoveDir(work.clone());
    let bin = work.join("sockstat");
    fs::copy(&built, &bin).with_context(|| format!("copying {} to {}", built.display(), bin.display()))?;
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
    let mut report = Report { env, quick: args.quick, ..Report::default() };

    let agent_socket = work.join("agent.sock");
    let agent = Agent::start(&bin, &agent_socket, &work.join("agent.log"))?;
    // Idle: an empty table in a fresh namespace, once whatever start-up left behind settled.
    thread::sleep(IDLE_SETTLE);
    report.idle = agent.rss()?;
    report.empty_rss_kb = report.idle.total_kb;
    report.empty_seed_ms = agent.status()?.u64("seed_ms")?;
    log.say(&format!(
        "agent ready (pid {}, RSS {} kB on an empty table: {} kB anonymous, {} kB file)",
        agent.pid(),
        report.idle.total_kb,
        report.idle.anon_kb,
        report.idle.file_kb
    ));

    // One connection to MARKER_PORT: the filtered query selects it among all the others.
    let marker = TcpListener::bind((Ipv4Addr::LOCALHOST, MARKER_PORT)).context("binding the marker listener")?;
    let marker_conn = TcpStream::connect((Ipv4Addr::LOCALHOST, MARKER_PORT))?;
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
        report.snapshot.push(snapshot_level(&log, &bin, &agent, level, &timing)?);

        if level.key {
            let top = levels.iter().rfind(|l| l.key).is_some_and(|l| l.label == level.label);
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
    log.say("stopping the held connections");
    drop(holds);
    drop((marker_conn, marker_peer, marker, probe));
    agent.wait_table_at_most(16, Duration::from_secs(60))?;
    report.hold_resyncs = agent.status()?.u64("resyncs")?;
    agent.stop()?;

    // Section 2.
    let rounds = if args.quick { 1 } else { args.churn_rounds.max(1) };
    let seconds = args.churn_seconds.unwrap_or(if args.quick { 2.0 } else { 5.0 });
    report.churn = Some(churn_section(&log, &bin, &work, &churn_args(seconds, args.churn_workers), rounds)?);

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
