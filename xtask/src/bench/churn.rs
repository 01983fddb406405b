//! Section 2: event capture under `loadgen churn`: untraced, with a fresh sockstat agent
//! (its timeline's size on disk after it stopped), with another with BPF statistics on
//! (its programs' kernel cost: the statistics cost every program run two clock reads, so
//! the churn rate is the first one's), with bpftrace counting the same tracepoint, and
//! with `sockstat trace` (text and JSON, to a file and to a pipe); rounds of them in turn.

use std::os::unix::process::CommandExt;
use std::{
    fs::{self, File},
    io::{BufRead, BufReader},
    net::Ipv4Addr,
    path::Path,
    process::{Child, Command, Stdio},
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

use super::{
    harness::{
        Agent, JsonExt, KillGroupOnDrop, KillOnDrop, Log, cpu_seconds, remove_sqlite_files, run_ok, sqlite_files,
    },
    programs::{ProgramCost, ProgramCounters, StatsOn, cost, programs_of},
};
use crate::loadgen::{self, ChurnArgs, ChurnResult};

const CHURN_PORT_BASE: u16 = 21000;
const CHURN_MAX_CONNECTIONS: u64 = 50_000_000;

#[derive(Default)]
pub(super) struct AgentRun {
    pub(super) churn: ChurnResult,
    /// Deltas over the run (and the drain after it).
    pub(super) seen: u64,
    pub(super) received: u64,
    /// Ring-buffer reservations the kernel refused (the ring was full).
    pub(super) ring_full: u64,
    /// Transitions the kernel ran neither transition program for.
    pub(super) missed: u64,
    /// Events the agent's reader dropped because its queue was full.
    pub(super) overflowed: u64,
    pub(super) malformed: u64,
    /// What the agent's log said about losses (its `events lost` warnings), if any.
    pub(super) loss_said: Vec<String>,
    /// Timeline records the agent dropped because its writer fell behind (userspace
    /// losses: the live table is unaffected, the timeline has a gap).
    pub(super) timeline_dropped: u64,
    pub(super) resyncs: u64,
    pub(super) cpu_s: f64,
    /// Wall time from the start of the churn to the agent having drained.
    pub(super) wall_s: f64,
    /// Kernel BPF statistics over the churn, in a run with them on: the transition
    /// programs (per transition: see [`transition_cost`]) and the accept hook (None:
    /// statistics were off, or the agent holds no program of that name).
    pub(super) set_state: Option<ProgramCost>,
    pub(super) accept: Option<ProgramCost>,
    /// The sock_ops program (SYN-SENT with its port, request sockets): several runs per
    /// connection, most of them returning at once. Reported, no target.
    pub(super) sock_ops: Option<ProgramCost>,
    /// The owners' change notes (system call exits that may add or remove a socket
    /// descriptor: socket, accept, close...). Reported, no target.
    pub(super) owner_notes: Option<ProgramCost>,
    /// Size of the timeline file and its write-ahead log once the agent stopped (None:
    /// this sockstat keeps no timeline).
    pub(super) timeline_bytes: Option<u64>,
}

impl AgentRun {
    /// Events lost on any of the ways: ring full, not run, dropped by the reader.
    pub(super) fn lost(&self) -> u64 {
        self.ring_full + self.missed + self.overflowed
    }

    pub(super) fn timeline_bytes_per_connection(&self) -> Option<f64> {
        self.timeline_bytes.map(|b| b as f64 / self.churn.connections.max(1) as f64)
    }
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
    /// The agent in its default configuration: churn rate, CPU, losses, timeline size.
    pub(super) agent: Vec<AgentRun>,
    /// The agent with BPF statistics on: its programs' costs (and losses, counted too).
    pub(super) agent_stats: Vec<AgentRun>,
    pub(super) bpftrace: Vec<BpftraceRun>,
    /// Why there are no bpftrace runs, if there are none.
    pub(super) bpftrace_missing: Option<String>,
    /// bpftrace runs that gave no count (round and why); the reference, so the bench goes on.
    pub(super) bpftrace_failed: Vec<String>,
    /// Every `sockstat trace` run, all modes, all rounds.
    pub(super) trace: Vec<TraceRun>,
    /// The agent's defaults, from `sockstat agent --help`.
    pub(super) retain_bytes: Option<u64>,
    pub(super) retain_age: Option<String>,
}

impl Churn {
    /// Every agent run: the default ones, then those with BPF statistics on.
    pub(super) fn agent_runs(&self) -> impl Iterator<Item = &AgentRun> {
        self.agent.iter().chain(&self.agent_stats)
    }
}

/// Where `sockstat trace` writes, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TraceMode {
    pub(super) json: bool,
    /// To a pipe read by the bench (lines counted, then thrown away) instead of a file.
    pub(super) pipe: bool,
}

pub(super) const TRACE_MODES: [TraceMode; 4] = [
    TraceMode { json: false, pipe: false },
    TraceMode { json: false, pipe: true },
    TraceMode { json: true, pipe: false },
    TraceMode { json: true, pipe: true },
];

impl TraceMode {
    pub(super) fn command(self) -> &'static str {
        if self.json { "sockstat trace --json" } else { "sockstat trace" }
    }

    pub(super) fn sink(self) -> &'static str {
        if self.pipe { "a pipe" } else { "a file" }
    }
}

#[derive(Default)]
pub(super) struct TraceRun {
    pub(super) mode: Option<TraceMode>,
    pub(super) churn: ChurnResult,
    /// Events lost in the kernel ring buffer, as trace reports them on stderr (None: it
    /// reported a loss in words the bench could not read; `said` has them).
    pub(super) lost: Option<u64>,
    pub(super) malformed: u64,
    /// Records written (lines, the text header not counted).
    pub(super) records: u64,
    pub(super) cpu_s: f64,
    /// Wall time from the start of the churn to trace having written everything.
    pub(super) wall_s: f64,
    /// What trace printed on stderr besides its start-up line, and how it exited if not 0.
    pub(super) said: Vec<String>,
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

/// The default of `option` as `--help` prints it (`[default: VALUE]`).
fn option_default(help: &str, option: &str) -> Option<String> {
    let mut lines = help.lines().skip_while(|l| !l.trim_start().starts_with(option));
    let first = lines.next()?;
    let block: Vec<&str> =
        std::iter::once(first).chain(lines.take_while(|l| !l.trim_start().starts_with('-'))).collect();
    let block = block.join(" ");
    let v = &block[block.find("[default: ")? + "[default: ".len()..];
    Some(v[..v.find(']')?].to_string())
}

pub(super) fn churn_section(log: &Log, bin: &Path, work: &Path, ca: &ChurnArgs, rounds: u32) -> Result<Churn> {
    let help = run_ok(Command::new(bin).args(["agent", "--help"]))?;
    let mut c = Churn {
        workers: ca.workers,
        seconds: ca.seconds,
        retain_bytes: option_default(&help, "--retain-bytes").and_then(|v| v.parse().ok()),
        retain_age: option_default(&help, "--retain-age"),
        ..Churn::default()
    };
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
        c.agent.push(churn_with_agent(bin, work, ca, false)?);
        log.say(&format!("churn round {round}/{rounds}: with the sockstat agent, BPF statistics on"));
        c.agent_stats.push(churn_with_agent(bin, work, ca, true)?);

        if have_bpftrace {
            log.say(&format!("churn round {round}/{rounds}: with bpftrace counting the tracepoint"));
            match churn_with_bpftrace(ca)? {
                Ok(run) => c.bpftrace.push(run),
                Err(why) => {
                    log.say(&format!("churn round {round}/{rounds}: bpftrace gave no count: {why}"));
                    c.bpftrace_failed.push(format!("round {round}: {why}"));
                }
            }
        }

        for mode in TRACE_MODES {
            log.say(&format!("churn round {round}/{rounds}: with `{}` writing to {}", mode.command(), mode.sink()));
            c.trace.push(churn_with_trace(bin, work, ca, mode)?);
        }
    }
    Ok(c)
}

/// A churn with a fresh agent; `stats`: with BPF statistics on, for its programs' costs.
fn churn_with_agent(bin: &Path, work: &Path, ca: &ChurnArgs, stats: bool) -> Result<AgentRun> {
    let agent = Agent::start(bin, &work.join("agent-churn.sock"), &work.join("agent-churn.log"))?;
    let s0 = agent.status()?;
    // On for the churn only: the statistics cost every program run two clock reads.
    let stats_on = stats.then(StatsOn::enable).transpose()?;
    let p0 = programs_of(agent.pid())?;
    let cpu0 = agent.cpu_seconds()?;
    let t0 = Instant::now();
    let churn = loadgen::churn(ca)?;
    let p1 = programs_of(agent.pid())?;
    drop(stats_on);
    let s1 = agent.wait_drained(Duration::from_secs(30))?;
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu1 = agent.cpu_seconds()?;
    let d = |k: &str| -> Result<u64> { Ok(s1.u64(k)?.saturating_sub(s0.u64(k)?)) };
    let run = AgentRun {
        churn,
        seen: d("events_seen")?,
        received: d("events_received")?,
        ring_full: d("events_lost_kernel")?,
        missed: d("events_missed")?,
        overflowed: d("events_overflowed")?,
        loss_said: agent.log_lines_with("events lost"),
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
        set_state: stats.then(|| transition_cost(&p0, &p1)).flatten(),
        accept: stats.then(|| cost(&p0, &p1, sockstat_ebpf::ACCEPT_PROGRAM)).flatten(),
        sock_ops: stats.then(|| cost(&p0, &p1, sockstat_ebpf::SOCK_OPS_PROGRAM)).flatten(),
        owner_notes: stats.then(|| cost(&p0, &p1, sockstat_ebpf::OWNER_MARK_PROGRAM)).flatten(),
        timeline_bytes: None,
    };
    let timeline = agent.timeline().map(Path::to_path_buf);
    agent.stop()?;
    let Some(db) = timeline else { return Ok(run) };
    // What stays on disk: the database and its write-ahead log (the -shm index is not data).
    let [file, wal, _] = sqlite_files(&db);
    let size = |p: &Path| fs::metadata(p).map_or(0, |m| m.len());
    let bytes = size(&file) + size(&wal);
    remove_sqlite_files(&db)?;
    Ok(AgentRun { timeline_bytes: Some(bytes), ..run })
}

/// A churn with bpftrace counting the tracepoint. The outer error is the churn's (it stops
/// the bench, as in the other runs); the inner one says why bpftrace gave no count (the
/// reference only: the round is reported without it).
fn churn_with_bpftrace(ca: &ChurnArgs) -> Result<Result<BpftraceRun, String>> {
    let spawned = Command::new("bpftrace")
        .args(["-e", "tracepoint:sock:inet_sock_set_state { @c = count(); }"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so that a stuck bpftrace is killed with anything it started
        // that holds its output open.
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return Ok(Err(format!("starting bpftrace: {e}"))),
    };
    let group = KillGroupOnDrop(&mut child);
    let (Some(out), Some(err)) = (group.0.stdout.take(), group.0.stderr.take()) else {
        return Ok(Err("bpftrace's stdout or stderr is not a pipe".into()));
    };
    let (tx, rx) = mpsc::channel::<String>();
    // Neither reader is joined: each ends when the pipe closes, which the group's kill
    // makes sure of.
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let said = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::<String>::new()));
    let keep = said.clone();
    thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            let Ok(mut tail) = keep.lock() else { break };
            if tail.len() == 5 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    });
    let failed = |why: String| -> Result<Result<BpftraceRun, String>> {
        let tail = said.lock().map(|t| t.iter().cloned().collect::<Vec<_>>().join(" / ")).unwrap_or_default();
        Ok(Err(if tail.is_empty() { why } else { format!("{why}; its stderr ended with: {tail}") }))
    };
    // bpftrace prints "Attaching 1 probe..." once the probe is attached.
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) if line.starts_with("Attaching") => {}
        Ok(line) => return failed(format!("bpftrace said {line:?} instead of attaching")),
        Err(_) => return failed("bpftrace did not attach within 60 s".into()),
    }
    let pid = group.0.id();
    let Ok(cpu0) = cpu_seconds(pid) else { return failed("bpftrace exited before the churn".into()) };
    let churn = loadgen::churn(ca)?;
    let Ok(cpu1) = cpu_seconds(pid) else { return failed("bpftrace exited during the churn".into()) };
    if kill(Pid::from_raw(i32::try_from(pid)?), Signal::SIGINT).is_err() {
        return failed("bpftrace was gone before SIGINT".into());
    }
    // bpftrace prints its map when SIGINT stops it; it has been seen to neither print nor
    // exit. Everything after the signal is bounded: 30 s for the count, 10 s more to exit,
    // then SIGKILL to its group.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut count = None;
    while count.is_none() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
        let Ok(line) = rx.recv_timeout(left) else { break };
        if let Some(n) = line.trim().strip_prefix("@c: ") {
            match n.trim().parse::<u64>() {
                Ok(n) => count = Some(n),
                Err(e) => return failed(format!("bpftrace's count {n:?}: {e}")),
            }
        }
    }
    let exit_by = Instant::now() + Duration::from_secs(10);
    let exited = loop {
        match group.0.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < exit_by => thread::sleep(Duration::from_millis(50)),
            _ => break None,
        }
    };
    drop(group);
    match (count, exited) {
        (Some(count), _) => Ok(Ok(BpftraceRun { churn, count, cpu_s: cpu1 - cpu0 })),
        (None, Some(status)) => failed(format!("bpftrace printed no @c count within 30 s of SIGINT (exit {status})")),
        (None, None) => failed("bpftrace printed no @c count and did not exit within 40 s of SIGINT: killed".into()),
    }
}

/// `wc -l`'s count: the first number of its output.
fn wc_count(out: &[u8]) -> Result<u64> {
    let text = String::from_utf8_lossy(out);
    text.split_whitespace().next().and_then(|n| n.parse().ok()).with_context(|| format!("wc -l printed {text:?}"))
}

/// Bytes process `pid` has read so far (`rchar` in /proc/PID/io); 0 once it is gone.
fn bytes_read(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| io.lines().find_map(|l| l.strip_prefix("rchar:").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0)
}

/// The number just before `word` in `line` ("12 events lost" -> 12).
fn number_before(line: &str, word: &str) -> Option<u64> {
    let head = &line[..line.find(word)?];
    head.split_whitespace().last()?.trim_matches(|c: char| !c.is_ascii_digit()).parse().ok()
}

/// Reads trace's stderr: losses (`N events lost ..., M malformed`) and anything else it said.
fn trace_losses(said: &[String]) -> (Option<u64>, u64) {
    let mut lost = Some(0);
    let mut malformed = 0;
    for line in said.iter().filter(|l| l.contains("lost")) {
        let missed = number_before(line, " transitions not traced").unwrap_or(0);
        lost = lost.and_then(|n| number_before(line, " events lost").map(|m| n + m + missed));
        malformed += number_before(line, " malformed").unwrap_or(0);
    }
    (lost, malformed)
}

/// Waits until `size` stops growing (trace has written what the churn made), at most `timeout`.
fn wait_still(size: impl Fn() -> u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut last = size();
    let mut still = 0;
    while still < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
        let now = size();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
}

/// Starts `sockstat trace` and returns once it says it is attached, with a channel of the
/// rest of its stderr.
fn start_trace(bin: &Path, mode: TraceMode, stdout: Stdio) -> Result<(Child, mpsc::Receiver<String>)> {
    let mut cmd = Command::new(bin);
    cmd.arg("trace");
    if mode.json {
        cmd.arg("--json");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", mode.command()))?;
    let err = child.stderr.take().context("trace stderr")?;
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut said = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains("attached") => return Ok((child, rx)),
            Ok(line) => said.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(_) => {
                drop(KillOnDrop(&mut child));
                bail!("{} did not attach within 60 s: {}", mode.command(), said.join(" | "));
            }
        }
    }
}

fn churn_with_trace(bin: &Path, work: &Path, ca: &ChurnArgs, mode: TraceMode) -> Result<TraceRun> {
    let out_path = work.join(if mode.json { "trace.json" } else { "trace.txt" });
    let stdout = if mode.pipe {
        Stdio::piped()
    } else {
        Stdio::from(File::create(&out_path).with_context(|| format!("creating {}", out_path.display()))?)
    };
    let (mut child, stderr) = start_trace(bin, mode, stdout)?;
    let guard = KillOnDrop(&mut child);
    // The reader at the other end of the pipe: `wc -l`, as fast a consumer as any, and it
    // counts the records. It ends when trace does (end of file).
    let counter = match guard.0.stdout.take() {
        Some(out) => Some(
            Command::new("wc")
                .arg("-l")
                .stdin(out)
                .stdout(Stdio::piped())
                .spawn()
                .context("starting wc -l to read trace's output")?,
        ),
        None => None,
    };
    let written = || match &counter {
        Some(wc) => bytes_read(wc.id()),
        None => fs::metadata(&out_path).map_or(0, |m| m.len()),
    };
    let pid = guard.0.id();
    let cpu0 = cpu_seconds(pid)?;
    let t0 = Instant::now();
    let churn = loadgen::churn(ca)?;
    wait_still(written, Duration::from_secs(30));
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = cpu_seconds(pid)? - cpu0;
    kill(Pid::from_raw(i32::try_from(pid)?), Signal::SIGINT).context("SIGINT to trace")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = guard.0.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            bail!("{} did not stop within 30 s of SIGINT", mode.command());
        }
        thread::sleep(Duration::from_millis(20));
    };
    drop(guard);
    let mut said: Vec<String> = stderr.try_iter().collect();
    // The stderr reader ends with trace; what it still had is in the channel by now or soon.
    while let Ok(line) = stderr.recv_timeout(Duration::from_millis(500)) {
        said.push(line);
    }
    if !status.success() {
        said.push(format!("exited with {status}"));
    }
    let lines = match counter {
        Some(wc) => wc_count(&wc.wait_with_output().context("waiting for wc -l")?.stdout)?,
        None => {
            let n = wc_count(run_ok(Command::new("wc").arg("-l").arg(&out_path))?.as_bytes())?;
            fs::remove_file(&out_path).with_context(|| format!("removing {}", out_path.display()))?;
            n
        }
    };
    let (lost, malformed) = trace_losses(&said);
    Ok(TraceRun {
        mode: Some(mode),
        churn,
        lost,
        malformed,
        // The text output starts with a header line.
        records: if mode.json { lines } else { lines.saturating_sub(1) },
        cpu_s,
        wall_s,
        said,
    })
}

/// What a transition costs in the kernel: both transition programs run on each (the
/// second, for most, only to find the first not running), so their times add up, over
/// the transitions (the second's runs: the first skips those that interrupt it).
fn transition_cost(before: &[ProgramCounters], after: &[ProgramCounters]) -> Option<ProgramCost> {
    let first = cost(before, after, sockstat_ebpf::PROGRAM_NAME)?;
    Some(match cost(before, after, sockstat_ebpf::NESTED_PROGRAM) {
        Some(second) => {
            ProgramCost { runs: first.runs.max(second.runs), run_time_ns: first.run_time_ns + second.run_time_ns }
        }
        None => first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transition_costs_both_programs_over_the_transitions() {
        let p = |name: &str, t, n| ProgramCounters { name: name.into(), run_time_ns: t, run_cnt: n };
        let before = [p("sockstat_set_st", 0, 0), p("sockstat_nested", 0, 0)];
        // 1000 transitions: the first ran 990 (10 interrupted it), the second all of them.
        let after = [p("sockstat_set_st", 200_000, 990), p("sockstat_nested", 50_000, 1000)];
        let c = transition_cost(&before, &after).expect("both");
        assert_eq!((c.runs, c.run_time_ns), (1000, 250_000));
        // An agent without the second program: the first alone.
        let c = transition_cost(&before[..1], &after[..1]).expect("first");
        assert_eq!((c.runs, c.run_time_ns), (990, 200_000));
    }

    #[test]
    fn trace_losses_are_read_from_its_stderr() {
        let said = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert_eq!(trace_losses(&said(&[])), (Some(0), 0));
        assert_eq!(
            trace_losses(&said(&["sockstat trace: 29811 events lost in the kernel ring buffer, 2 malformed"])),
            (Some(29811), 2)
        );
        assert_eq!(
            trace_losses(&said(&[
                "sockstat trace: 10 events lost in the kernel ring buffer, 5 transitions not traced (the kernel \
                 skipped the program: nested on a CPU), 0 malformed"
            ])),
            (Some(15), 0)
        );
        assert_eq!(trace_losses(&said(&["sockstat trace: lost some"])), (None, 0));
    }

    #[test]
    fn wc_counts_are_read() {
        assert_eq!(wc_count(b"1234\n").expect("count"), 1234);
        assert_eq!(wc_count(b"  77 /tmp/trace.txt\n").expect("count"), 77);
        assert!(wc_count(b"").is_err());
    }

    #[test]
    fn option_defaults_come_from_help() {
        let help = "Options:\n      --timeline <TIMELINE>    The timeline [default: /var/lib/x.db]\n                          --retain-bytes <RETAIN_BYTES>\n          Delete the oldest rows while the file is larger\n                              [default: 1073741824]\n  -h, --help    Print help\n";
        assert_eq!(option_default(help, "--retain-bytes").as_deref(), Some("1073741824"));
        assert_eq!(option_default(help, "--timeline").as_deref(), Some("/var/lib/x.db"));
        assert_eq!(option_default(help, "--retain-age"), None);
    }

    #[test]
    fn churn_summary_round_trips() {
        let r = ChurnResult::parse("connections=12 errors=1 seconds=2.000 rate=6").expect("parses");
        assert_eq!((r.connections, r.errors), (12, 1));
        assert!((r.rate() - 6.0).abs() < 1e-9);
    }
}
