//! Section 2: event capture under `loadgen churn`: untraced, with a fresh sockstat agent,
//! with bpftrace counting the same tracepoint; rounds of the three in turn.

use std::{
    fs,
    io::{BufRead, BufReader},
    net::Ipv4Addr,
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::Value;

use super::harness::{Agent, JsonExt, KillOnDrop, Log, cpu_seconds, run_ok};
use crate::loadgen::{self, ChurnArgs, ChurnResult};

const CHURN_PORT_BASE: u16 = 21000;
const CHURN_MAX_CONNECTIONS: u64 = 50_000_000;

#[derive(Default)]
pub(super) struct AgentRun {
    pub(super) churn: ChurnResult,
    /// Deltas over the run (and the drain after it).
    pub(super) seen: u64,
    pub(super) received: u64,
    pub(super) lost: u64,
    pub(super) malformed: u64,
    /// Timeline records the agent dropped because its writer fell behind (userspace
    /// losses: the live table is unaffected, the timeline has a gap).
    pub(super) timeline_dropped: u64,
    pub(super) resyncs: u64,
    pub(super) cpu_s: f64,
    /// Wall time from the start of the churn to the agent having drained.
    pub(super) wall_s: f64,
}

#[derive(Default)]
pub(super) struct BpftraceRun {
    pub(super) churn: ChurnResult,
    pub(super) count: u64,
    pub(super) cpu_s: f64,
}

#[derive(Default)]
pub(super) struct Churn {
    pub(super) workers: u16,
    pub(super) seconds: f64,
    pub(super) untraced: Vec<ChurnResult>,
    pub(super) agent: Vec<AgentRun>,
    pub(super) bpftrace: Vec<BpftraceRun>,
    /// Why there are no bpftrace runs, if there are none.
    pub(super) bpftrace_missing: Option<String>,
}

pub(super) fn churn_args(seconds: f64, workers: u16) -> ChurnArgs {
    ChurnArgs {
        max_connections: CHURN_MAX_CONNECTIONS,
        seconds,
        workers,
        port_base: CHURN_PORT_BASE,
        addr: Ipv4Addr::LOCALHOST,
    }
}

/// Mounts tracefs if it is not: bpftrace attaches classic tracepoints through it.
fn ensure_tracefs() -> Result<()> {
    let dir = Path::new("/sys/kernel/tracing");
    let mounted = fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if !mounted {
        run_ok(Command::new("mount").args(["-t", "tracefs", "tracefs"]).arg(dir))
            .context("mounting tracefs for bpftrace")?;
    }
    Ok(())
}

pub(super) fn churn_section(log: &Log, bin: &Path, work: &Path, ca: &ChurnArgs, rounds: u32) -> Result<Churn> {
    let mut c = Churn { workers: ca.workers, seconds: ca.seconds, ..Churn::default() };
    let have_bpftrace = Command::new("bpftrace").arg("--version").output().is_ok_and(|o| o.status.success());
    if have_bpftrace {
        ensure_tracefs()?;
    } else {
        c.bpftrace_missing = Some("bpftrace is not installed (`apt-get install -y bpftrace`)".into());
    }
    // Warm-up: the first churn in a fresh namespace pays for port and TIME-WAIT tables.
    log.say("churn: warm-up run (not reported)");
    loadgen::churn(&ChurnArgs { seconds: 1.0, ..ca.clone() })?;
    for round in 1..=rounds {
        log.say(&format!("churn round {round}/{rounds}: untraced"));
        c.untraced.push(loadgen::churn(ca)?);

        log.say(&format!("churn round {round}/{rounds}: with the sockstat agent"));
        c.agent.push(churn_with_agent(bin, work, ca)?);

        if have_bpftrace {
            log.say(&format!("churn round {round}/{rounds}: with bpftrace counting the tracepoint"));
            c.bpftrace.push(churn_with_bpftrace(ca)?);
        }
    }
    Ok(c)
}

fn churn_with_agent(bin: &Path, work: &Path, ca: &ChurnArgs) -> Result<AgentRun> {
    let agent = Agent::start(bin, &work.join("agent-churn.sock"), &work.join("agent-churn.log"))?;
    let s0 = agent.status()?;
    let cpu0 = agent.cpu_seconds()?;
    let t0 = Instant::now();
    let churn = loadgen::churn(ca)?;
    let s1 = agent.wait_drained(Duration::from_secs(30))?;
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu1 = agent.cpu_seconds()?;
    let d = |k: &str| -> Result<u64> { Ok(s1.u64(k)?.saturating_sub(s0.u64(k)?)) };
    let run = AgentRun {
        churn,
        seen: d("events_seen")?,
        received: d("events_received")?,
        lost: d("events_lost_kernel")?,
        malformed: d("events_malformed")?,
        // null when the agent keeps no timeline.
        timeline_dropped: s1
            .get("timeline_dropped")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .saturating_sub(s0.get("timeline_dropped").and_then(Value::as_u64).unwrap_or(0)),
        resyncs: d("resyncs")?,
        cpu_s: cpu1 - cpu0,
        wall_s,
    };
    agent.stop()?;
    Ok(run)
}

fn churn_with_bpftrace(ca: &ChurnArgs) -> Result<BpftraceRun> {
    let mut child = Command::new("bpftrace")
        .args(["-e", "tracepoint:sock:inet_sock_set_state { @c = count(); }"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting bpftrace")?;
    let guard = KillOnDrop(&mut child);
    let out = guard.0.stdout.take().context("bpftrace stdout")?;
    let (tx, rx) = mpsc::channel::<String>();
    let reader = thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // bpftrace prints "Attaching 1 probe..." once the probe is attached.
    let attached = rx.recv_timeout(Duration::from_secs(60)).context("bpftrace did not attach within 60 s")?;
    if !attached.starts_with("Attaching") {
        bail!("bpftrace said {attached:?} instead of attaching");
    }
    let pid = guard.0.id();
    let cpu0 = cpu_seconds(pid)?;
    let churn = loadgen::churn(ca)?;
    let cpu1 = cpu_seconds(pid)?;
    kill(Pid::from_raw(i32::try_from(pid)?), Signal::SIGINT).context("SIGINT to bpftrace")?;
    let mut count = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        if let Some(n) = line.trim().strip_prefix("@c: ") {
            count = Some(n.trim().parse::<u64>().context("parsing bpftrace's count")?);
        }
    }
    let _ = reader.join();
    let status = guard.0.wait()?;
    drop(guard);
    let count = count.with_context(|| format!("bpftrace printed no @c count (exit {status})"))?;
    Ok(BpftraceRun { churn, count, cpu_s: cpu1 - cpu0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn churn_summary_round_trips() {
        let r = ChurnResult::parse("connections=12 errors=1 seconds=2.000 rate=6").expect("parses");
        assert_eq!((r.connections, r.errors), (12, 1));
        assert!((r.rate() - 6.0).abs() < 1e-9);
    }
}
