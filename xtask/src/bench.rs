//! `cargo xtask bench`: sockstat against ss (snapshots) and bpftrace (event capture), in
//! one run, on the same sockets, in a private network namespace on loopback.
//!
//! Sections, in the order they run (the order matters: churn leaves TIME-WAIT sockets that
//! would pollute the snapshot measurements, so it comes last):
//! 1. snapshot latency at growing socket counts held by `loadgen hold`, whole command;
//! 3. agent memory and seed time at the 100k level (a fresh agent, seeded there);
//! 4. event-to-visible latency, measured with the CLI only;
//! 2. event capture under `loadgen churn`: untraced, with the agent, with bpftrace.
//!
//! The markdown table goes to stdout and to xtask/bench/RESULTS.md, the plot to
//! xtask/bench/snapshot-latency.svg. Nothing here is asserted: a missed target is reported.

use std::{
    fmt::Write as _,
    fs::{self, File},
    io::{BufRead, BufReader},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::Args;
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::Value;

use crate::{
    loadgen::{self, ChurnArgs, ChurnResult},
    plot,
};

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
    /// Seconds per churn run.
    #[arg(long, default_value_t = 5.0)]
    churn_seconds: f64,
    /// Rounds of (untraced, agent, bpftrace) churn runs; medians are reported.
    #[arg(long, default_value_t = 3)]
    churn_rounds: u32,
    /// Churn worker processes.
    #[arg(long, default_value_t = loadgen::default_churn_workers())]
    churn_workers: u16,
}

/// Port of the listener whose single connection the filtered query looks for.
const MARKER_PORT: u16 = 9999;
/// Port of the listener used by the event-to-visible measurement.
const PROBE_PORT: u16 = 9998;
/// Hold generator i of the snapshot levels listens on HOLD_PORT_BASE + 100 i + worker.
const HOLD_PORT_BASE: u16 = 20000;
const CHURN_PORT_BASE: u16 = 21000;
/// Upper bound on any hold generator's life: the bench kills them long before.
const HOLD_SECONDS: u64 = 1200;
const CHURN_MAX_CONNECTIONS: u64 = 50_000_000;

/// A socket-count level of the snapshot section.
struct Level {
    /// Established connections held in all at this level (sockets = 2x).
    connections: u32,
    /// Label used in the tables (e.g. "100k"): the nominal socket count.
    label: &'static str,
    /// Detailed rows (-tanp, -tani, filter, memory, visibility) are measured here.
    key: bool,
}

const FULL_LEVELS: &[Level] = &[
    Level { connections: 500, label: "1k", key: false },
    Level { connections: 5_000, label: "10k", key: true },
    Level { connections: 25_000, label: "50k", key: false },
    Level { connections: 50_000, label: "100k", key: true },
    Level { connections: 100_000, label: "200k", key: false },
];

const QUICK_LEVELS: &[Level] =
    &[Level { connections: 500, label: "1k", key: true }, Level { connections: 2_000, label: "4k", key: true }];

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
    let env = environment(root);

    // Every process of the bench (agent, generators, ss, sockstat) inherits this namespace:
    // our sockets only, and no `ip netns exec` start-up cost in the timed commands.
    let ns = NetNs::create(&format!("sst-bench-{}", std::process::id()))?;
    ns.enter()?;
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
    report.empty_rss_kb = agent.rss_kb()?;
    report.empty_seed_ms = agent.status()?.u64("seed_ms")?;
    log.say(&format!("agent ready (pid {}, RSS {} kB on an empty table)", agent.pid(), report.empty_rss_kb));

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
    report.churn = Some(churn_section(&log, &bin, &work, args)?);

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

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Progress on stderr, stamped with the time since the start.
#[derive(Clone, Copy)]
struct Log(Instant);

impl Log {
    fn say(&self, msg: &str) {
        eprintln!("[bench {:6.1}s] {msg}", self.0.elapsed().as_secs_f64());
    }
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn require_tool(tool: &str, args: &[&str], install: &str) -> Result<()> {
    let ok =
        Command::new(tool).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        bail!("`{tool}` is needed by the bench: run `{install}`");
    }
    Ok(())
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
fn environment(root: &Path) -> String {
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
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------------------
// Processes: namespace, agent, hold generators.

/// A network namespace created for the bench and deleted on drop (processes still in it
/// are gone by then: every generator dies with its parent or at its deadline).
struct NetNs {
    name: String,
}

impl NetNs {
    fn create(name: &str) -> Result<NetNs> {
        run_ok(Command::new("ip").args(["netns", "add", name]))?;
        let ns = NetNs { name: name.to_string() };
        run_ok(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// Moves this thread, and so every process it starts later, into the namespace.
    fn enter(&self) -> Result<()> {
        let path = Path::new("/run/netns").join(&self.name);
        let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
            .context("setns into the bench namespace (needs CAP_SYS_ADMIN)")?;
        Ok(())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf takes an integer and touches no memory.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the parenthesised comm start at field 3 (state); utime and stime are
    // fields 14 and 15 (proc(5)).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed /proc/PID/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).context("no utime")?.parse::<u64>()? + f.get(12).context("no stime")?.parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks())
}

fn rss_kb(pid: u32) -> Result<u64> {
    let status =
        fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("reading /proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS in /proc/PID/status")?;
    Ok(line.split_whitespace().nth(1).context("malformed VmRSS")?.parse()?)
}

trait JsonExt {
    fn u64(&self, key: &str) -> Result<u64>;
    /// Sockets in the agent's own namespace's table (the bench's namespace): the table
    /// also covers every other namespace of the machine, whose sockets are not ours.
    fn own_sockets(&self) -> Result<u64>;
}

impl JsonExt for Value {
    fn u64(&self, key: &str) -> Result<u64> {
        self.get(key)
            .and_then(Value::as_u64)
            .with_context(|| format!("`sockstat status --json` has no integer {key:?}"))
    }

    fn own_sockets(&self) -> Result<u64> {
        self.get("namespaces")
            .and_then(Value::as_array)
            .and_then(|v| v.iter().find(|n| n.get("own").and_then(Value::as_bool) == Some(true)))
            .and_then(|n| n.get("sockets").and_then(Value::as_u64))
            .context("`sockstat status --json` lists no own namespace with its socket count")
    }
}

/// A `sockstat agent` we started; stopped (SIGTERM, then SIGKILL) on drop.
struct Agent {
    child: Child,
    bin: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

impl Agent {
    fn start(bin: &Path, socket: &Path, log: &Path) -> Result<Agent> {
        let err = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.arg("agent").arg("--socket").arg(socket);
        // Agents that keep a timeline keep it (the default configuration is what is
        // measured), but each in its own file: two agents run at once here.
        let help = Command::new(bin).args(["agent", "--help"]).output().context("running sockstat agent --help")?;
        if String::from_utf8_lossy(&help.stdout).contains("--timeline") {
            cmd.arg("--timeline").arg(socket.with_extension("timeline.db"));
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {} agent", bin.display()))?;
        let mut a = Agent { child, bin: bin.to_path_buf(), socket: socket.to_path_buf(), log: log.to_path_buf() };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(st) = a.child.try_wait()? {
                bail!("the agent exited ({st}) before it was ready: {}", a.log_tail());
            }
            if a.socket.exists() && a.status().is_ok() {
                return Ok(a);
            }
            if Instant::now() > deadline {
                bail!("the agent was not ready after 120 s: {}", a.log_tail());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        s.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn status(&self) -> Result<Value> {
        let out = Command::new(&self.bin).arg("status").arg("--json").arg("--socket").arg(&self.socket).output()?;
        if !out.status.success() {
            bail!("sockstat status failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        serde_json::from_slice(&out.stdout).context("parsing `sockstat status --json`")
    }

    fn rss_kb(&self) -> Result<u64> {
        rss_kb(self.pid())
    }

    fn cpu_seconds(&self) -> Result<f64> {
        cpu_seconds(self.pid())
    }

    fn wait_table(&self, done: impl Fn(u64) -> bool, what: &str, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.status()?.own_sockets()?;
            if done(n) {
                return Ok(n);
            }
            if Instant::now() > deadline {
                bail!("the agent's table has {n} sockets after {timeout:?}; expected {what}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_table_at_least(&self, n: u64, timeout: Duration) -> Result<u64> {
        self.wait_table(|t| t >= n, &format!("at least {n}"), timeout)
    }

    fn wait_table_at_most(&self, n: u64, timeout: Duration) -> Result<u64> {
        self.wait_table(|t| t <= n, &format!("at most {n}"), timeout)
    }

    /// Waits until the agent has taken every event the kernel counted, or until its
    /// received count stops moving (events of other namespaces are received too, so
    /// `seen` may keep growing from outside traffic).
    fn wait_drained(&self, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut last = self.status()?;
        loop {
            thread::sleep(Duration::from_millis(200));
            let now = self.status()?;
            let (seen, recv) = (now.u64("events_seen")?, now.u64("events_received")?);
            let lost = now.u64("events_lost_kernel")?;
            if recv + lost >= seen || recv == last.u64("events_received")? || Instant::now() > deadline {
                return Ok(now);
            }
            last = now;
        }
    }

    fn stop(mut self) -> Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        kill(Pid::from_raw(i32::try_from(self.child.id())?), Signal::SIGTERM).context("SIGTERM to the agent")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the agent ignored SIGTERM for 10 s; killed it");
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.terminate().is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `loadgen hold` child holding connections until dropped (its workers die with it).
struct Hold(Child);

impl Hold {
    fn start(connections: u32, port_base: u16) -> Result<Hold> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["loadgen", "hold", "--connections", &connections.to_string()])
            .args(["--seconds", &HOLD_SECONDS.to_string(), "--port-base", &port_base.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting loadgen hold")?;
        let out = child.stdout.take().context("loadgen stdout")?;
        let hold = Hold(child);
        let line = read_line_timeout(out, Duration::from_secs(300))?;
        if !line.starts_with("ready ") {
            bail!("loadgen hold failed (said {line:?})");
        }
        Ok(hold)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read_line_timeout(r: impl std::io::Read + Send + 'static, timeout: Duration) -> Result<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(r).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(timeout).context("timed out waiting for a child's output")
}

// ---------------------------------------------------------------------------------------
// Timing.

#[derive(Clone, Copy)]
struct Timing {
    min_runs: usize,
    max_runs: usize,
    /// Stop adding runs past min_runs once this much time went into one command.
    budget: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing { min_runs: 3, max_runs: 11, budget: Duration::from_secs(8) }
    }
}

/// A whole-command measurement, or why there is none.
#[derive(Clone, Debug)]
enum Measure {
    Timed {
        runs: Vec<Duration>,
        /// Output lines (header included) of the warm-up run.
        lines: usize,
    },
    /// The tool refused the request: e.g. "not supported yet".
    Unsupported(String),
    Failed(String),
}

impl Measure {
    fn median(&self) -> Option<Duration> {
        match self {
            Measure::Timed { runs, .. } => Some(median(runs)),
            _ => None,
        }
    }

    fn lines(&self) -> Option<usize> {
        match self {
            Measure::Timed { lines, .. } => Some(*lines),
            _ => None,
        }
    }

    fn cell(&self) -> String {
        match self {
            Measure::Timed { runs, .. } => fmt_ms(median(runs)),
            Measure::Unsupported(why) => format!("n/a: {why}"),
            Measure::Failed(why) => format!("failed: {why}"),
        }
    }

    fn runs(&self) -> usize {
        match self {
            Measure::Timed { runs, .. } => runs.len(),
            _ => 0,
        }
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    match s.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2,
    }
}

/// Nearest-rank percentile.
fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    if s.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}

fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// Runs `program args` once untimed: checks that it works and counts its output lines.
/// `Err` carries the measurement to report instead (unsupported or failed).
fn warm_up(program: &Path, args: &[&str]) -> Result<Result<usize, Measure>> {
    let warm = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    if !warm.status.success() {
        let err = String::from_utf8_lossy(&warm.stderr);
        let first = err.lines().next().unwrap_or("").trim();
        let msg = first.strip_prefix("sockstat: ").unwrap_or(first).to_string();
        return Ok(Err(if msg.contains("not supported") {
            Measure::Unsupported(msg)
        } else {
            Measure::Failed(format!("{msg} ({})", warm.status))
        }));
    }
    Ok(Ok(warm.stdout.iter().filter(|&&b| b == b'\n').count()))
}

/// One timed whole-command run, stdout to /dev/null.
fn timed_run(program: &Path, args: &[&str]) -> Result<Duration> {
    let t0 = Instant::now();
    let st = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("running {}", program.display()))?;
    let dt = t0.elapsed();
    if !st.success() {
        bail!("{} {args:?} failed on a timed run ({st})", program.display());
    }
    Ok(dt)
}

/// Times two commands side by side, alternating runs, so that anything else loading the
/// (shared) machine weighs on both alike. A command that cannot run is reported as such
/// and the other is timed alone.
fn time_pair(a: (&Path, &[&str]), b: (&Path, &[&str]), t: &Timing) -> Result<(Measure, Measure)> {
    let wa = warm_up(a.0, a.1)?;
    let wb = warm_up(b.0, b.1)?;
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut n = 0;
    while n < t.max_runs && (n < t.min_runs || start.elapsed() < t.budget) {
        if wa.is_ok() {
            ra.push(timed_run(a.0, a.1)?);
        }
        if wb.is_ok() {
            rb.push(timed_run(b.0, b.1)?);
        }
        n += 1;
    }
    let done = |w: Result<usize, Measure>, runs| match w {
        Ok(lines) => Measure::Timed { runs, lines },
        Err(m) => m,
    };
    Ok((done(wa, ra), done(wb, rb)))
}

// ---------------------------------------------------------------------------------------
// Section 1: snapshot latency.

/// One query compared at one level.
struct Compared {
    query: String,
    sockstat: Measure,
    ss: Measure,
}

impl Compared {
    fn ratio(&self) -> Option<f64> {
        Some(self.ss.median()?.as_secs_f64() / self.sockstat.median()?.as_secs_f64())
    }
}

struct SnapshotLevel {
    label: &'static str,
    /// TCP sockets in the namespace, counted from ss -tan's output.
    sockets: usize,
    /// sockstat --source kernel -tan: the fallback path, for context.
    kernel: Measure,
    rows: Vec<Compared>,
}

fn snapshot_level(log: &Log, bin: &Path, agent: &Agent, level: &Level, t: &Timing) -> Result<SnapshotLevel> {
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

// ---------------------------------------------------------------------------------------
// Section 3: memory and seed time.

struct Memory {
    label: &'static str,
    /// Sockets of the bench's namespace in the fresh agent's table after its seed.
    tracked: u64,
    fresh_rss_kb: u64,
    empty_rss_kb: u64,
    seed_ms: u64,
    /// The long-running agent at the same level: grown by events, after queries.
    running_rss_kb: u64,
    running_tracked: u64,
}

impl Memory {
    fn bytes_per_socket(&self) -> f64 {
        (self.fresh_rss_kb.saturating_sub(self.empty_rss_kb) * 1024) as f64 / self.tracked.max(1) as f64
    }

    fn running_bytes_per_socket(&self) -> f64 {
        (self.running_rss_kb.saturating_sub(self.empty_rss_kb) * 1024) as f64 / self.running_tracked.max(1) as f64
    }
}

fn memory(log: &Log, bin: &Path, work: &Path, running: &Agent, empty_rss_kb: u64, level: &Level) -> Result<Memory> {
    log.say(&format!("level {}: seeding a second, fresh agent", level.label));
    let fresh = Agent::start(bin, &work.join("agent2.sock"), &work.join("agent2.log"))?;
    let st = fresh.status()?;
    let m = Memory {
        label: level.label,
        tracked: st.own_sockets()?,
        fresh_rss_kb: fresh.rss_kb()?,
        empty_rss_kb,
        seed_ms: st.u64("seed_ms")?,
        running_rss_kb: running.rss_kb()?,
        running_tracked: running.status()?.own_sockets()?,
    };
    fresh.stop()?;
    log.say(&format!(
        "  fresh agent: {} sockets, RSS {} kB ({:.0} B/socket over the empty {} kB), seed {} ms",
        m.tracked,
        m.fresh_rss_kb,
        m.bytes_per_socket(),
        m.empty_rss_kb,
        m.seed_ms
    ));
    Ok(m)
}

// ---------------------------------------------------------------------------------------
// Section 4: event-to-visible latency, with the CLI only.

struct Visibility {
    label: &'static str,
    sockets: u64,
    samples: usize,
    appear: Vec<Duration>,
    gone: Vec<Duration>,
    /// Queries that ran before the one that showed the change (should be 0: the agent
    /// drains its ring before answering).
    extra_polls: usize,
}

/// Whether both ends of the connection from local port `port` to PROBE_PORT are listed.
fn shows_connection(out: &str, port: u16) -> (bool, bool) {
    let (client, server) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{PROBE_PORT}"));
    let mut found = (false, false);
    // The cheap substring test first: this runs over 100k-line outputs in an unoptimised
    // xtask build.
    for l in out.lines().filter(|l| l.contains(&server)) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 5 && f[0] == "ESTAB" {
            found.0 |= f[3] == client && f[4] == server;
            found.1 |= f[3] == server && f[4] == client;
        }
    }
    found
}

fn visibility(
    log: &Log,
    bin: &Path,
    socket: &Path,
    probe: &TcpListener,
    level: &Level,
    samples: usize,
) -> Result<Visibility> {
    log.say(&format!("level {}: event-to-visible latency, {samples} samples", level.label));
    // Returns the output and when the command finished: the search through the output
    // afterwards is the bench's cost, not sockstat's.
    let query = || -> Result<(String, Instant)> {
        let out = Command::new(bin).args(["--source", "agent", "--socket"]).arg(socket).arg("-tan").output()?;
        let done = Instant::now();
        if !out.status.success() {
            bail!("sockstat -tan failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok((String::from_utf8_lossy(&out.stdout).into_owned(), done))
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, PROBE_PORT));
    let mut v =
        Visibility { label: level.label, sockets: 0, samples, appear: Vec::new(), gone: Vec::new(), extra_polls: 0 };
    for _ in 0..samples {
        // The state change: connect() returns once the client is ESTABLISHED; the
        // server side is established by then too (the final ACK is processed in the
        // same loopback softirq).
        let t0 = Instant::now();
        let c = TcpStream::connect(addr)?;
        let (s, _) = probe.accept()?;
        let port = c.local_addr()?.port();
        loop {
            let (out, done) = query()?;
            if shows_connection(&out, port) == (true, true) {
                v.appear.push(done - t0);
                v.sockets = v.sockets.max(out.lines().count().saturating_sub(1) as u64);
                break;
            }
            v.extra_polls += 1;
            if t0.elapsed() > Duration::from_secs(10) {
                bail!("connection from port {port} not visible after 10 s");
            }
        }
        // And the way back: an abortive close (no TIME-WAIT) removes both ends.
        for sock in [&c, &s] {
            nix::sys::socket::setsockopt(
                sock,
                nix::sys::socket::sockopt::Linger,
                &libc::linger { l_onoff: 1, l_linger: 0 },
            )?;
        }
        let t1 = Instant::now();
        drop((c, s));
        loop {
            let (out, done) = query()?;
            if shows_connection(&out, port) == (false, false) {
                v.gone.push(done - t1);
                break;
            }
            v.extra_polls += 1;
            if t1.elapsed() > Duration::from_secs(10) {
                bail!("closed connection from port {port} still listed after 10 s");
            }
        }
    }
    log.say(&format!(
        "  appear p50 {} p99 {}, disappear p50 {} p99 {}, extra polls {}",
        fmt_ms(percentile(&v.appear, 50.0)),
        fmt_ms(percentile(&v.appear, 99.0)),
        fmt_ms(percentile(&v.gone, 50.0)),
        fmt_ms(percentile(&v.gone, 99.0)),
        v.extra_polls
    ));
    Ok(v)
}

// ---------------------------------------------------------------------------------------
// Section 2: event capture under churn.

#[derive(Default)]
struct AgentRun {
    churn: ChurnResult,
    /// Deltas over the run (and the drain after it).
    seen: u64,
    received: u64,
    lost: u64,
    malformed: u64,
    /// Timeline records the agent dropped because its writer fell behind (userspace
    /// losses: the live table is unaffected, the timeline has a gap).
    timeline_dropped: u64,
    resyncs: u64,
    cpu_s: f64,
    /// Wall time from the start of the churn to the agent having drained.
    wall_s: f64,
}

#[derive(Default)]
struct BpftraceRun {
    churn: ChurnResult,
    count: u64,
    cpu_s: f64,
}

#[derive(Default)]
struct Churn {
    workers: u16,
    seconds: f64,
    untraced: Vec<ChurnResult>,
    agent: Vec<AgentRun>,
    bpftrace: Vec<BpftraceRun>,
    /// Why there are no bpftrace runs, if there are none.
    bpftrace_missing: Option<String>,
}

fn churn_args(args: &BenchArgs) -> ChurnArgs {
    ChurnArgs {
        max_connections: CHURN_MAX_CONNECTIONS,
        seconds: args.churn_seconds,
        workers: args.churn_workers,
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

fn churn_section(log: &Log, bin: &Path, work: &Path, args: &BenchArgs) -> Result<Churn> {
    let ca = churn_args(args);
    let mut c = Churn { workers: ca.workers, seconds: ca.seconds, ..Churn::default() };
    let have_bpftrace = Command::new("bpftrace").arg("--version").output().is_ok_and(|o| o.status.success());
    if have_bpftrace {
        ensure_tracefs()?;
    } else {
        c.bpftrace_missing = Some("bpftrace is not installed (`apt-get install -y bpftrace`)".into());
    }
    let rounds = if args.quick { 1 } else { args.churn_rounds.max(1) };
    // Warm-up: the first churn in a fresh namespace pays for port and TIME-WAIT tables.
    log.say("churn: warm-up run (not reported)");
    loadgen::churn(&ChurnArgs { seconds: 1.0, ..ca.clone() })?;
    for round in 1..=rounds {
        log.say(&format!("churn round {round}/{rounds}: untraced"));
        c.untraced.push(loadgen::churn(&ca)?);

        log.say(&format!("churn round {round}/{rounds}: with the sockstat agent"));
        c.agent.push(churn_with_agent(bin, work, &ca)?);

        if have_bpftrace {
            log.say(&format!("churn round {round}/{rounds}: with bpftrace counting the tracepoint"));
            c.bpftrace.push(churn_with_bpftrace(&ca)?);
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

struct KillOnDrop<'a>(&'a mut Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn median_f(v: impl IntoIterator<Item = f64>) -> f64 {
    let mut s: Vec<f64> = v.into_iter().collect();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => f64::midpoint(s[n / 2 - 1], s[n / 2]),
    }
}

// ---------------------------------------------------------------------------------------
// The report.

#[derive(Default)]
struct Report {
    env: String,
    quick: bool,
    empty_rss_kb: u64,
    empty_seed_ms: u64,
    snapshot: Vec<SnapshotLevel>,
    memory: Option<Memory>,
    visibility: Vec<Visibility>,
    hold_resyncs: u64,
    churn: Option<Churn>,
    end_load: String,
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn fmt_rate(r: f64) -> String {
    if r.is_nan() { "n/a".into() } else { format!("{:.0}", r) }
}

impl Report {
    /// The largest key level (100k in a full run).
    fn top_key(&self) -> Option<&SnapshotLevel> {
        self.snapshot.iter().rfind(|l| l.rows.len() > 1)
    }

    fn row<'a>(level: &'a SnapshotLevel, query: &str) -> Option<&'a Compared> {
        level.rows.iter().find(|r| r.query == query)
    }

    fn targets(&self, s: &mut String) {
        let _ = writeln!(s, "## Targets\n");
        let _ = writeln!(s, "| target | measured | verdict |");
        let _ = writeln!(s, "| --- | --- | --- |");
        if let Some(top) = self.top_key() {
            let l = top.label;
            let ratio_target = |s: &mut String, q: &str, want: f64| {
                if let Some(r) = Self::row(top, q) {
                    let (measured, v) = match (r.ratio(), &r.sockstat) {
                        (Some(x), _) => (
                            format!("{x:.1}x ({} vs ss {})", r.sockstat.cell(), r.ss.cell()),
                            verdict(x >= want).to_string(),
                        ),
                        (None, m) => (m.cell(), "not measurable".into()),
                    };
                    let _ = writeln!(
                        s,
                        "| `sockstat {q}` at {l} sockets at least {want}x faster than `ss {q}` | {measured} | {v} |"
                    );
                }
            };
            ratio_target(s, "-tan", 10.0);
            ratio_target(s, "-tanp", 50.0);
            if let Some(r) = top.rows.iter().find(|r| r.query.contains("dport")) {
                let (m, v) = match r.sockstat.median() {
                    Some(d) => (r.sockstat.cell(), verdict(d < Duration::from_millis(5)).to_string()),
                    None => (r.sockstat.cell(), "not measurable".into()),
                };
                let _ = writeln!(s, "| filtered query (`{}`) at {l} sockets under 5 ms | {m} | {v} |", r.query);
            }
        }
        if let Some(c) = &self.churn {
            let lost: u64 = c.agent.iter().map(|a| a.lost + a.malformed).sum();
            let dropped: u64 = c.agent.iter().map(|a| a.timeline_dropped).sum();
            let resyncs: u64 = c.agent.iter().map(|a| a.resyncs).sum();
            let _ = writeln!(
                s,
                "| zero lost events at the highest churn rate | {lost} lost, {resyncs} resyncs, {dropped} timeline records dropped over {} runs | {} |",
                c.agent.len(),
                verdict(lost == 0 && dropped == 0)
            );
            let core = median_f(c.agent.iter().map(|a| a.cpu_s / a.wall_s));
            let _ = writeln!(
                s,
                "| agent under a quarter of one core at that rate | {:.1}% of one core | {} |",
                core * 100.0,
                verdict(core < 0.25)
            );
            let ratio =
                median_f(c.agent.iter().map(|a| a.churn.rate())) / median_f(c.untraced.iter().map(ChurnResult::rate));
            let _ = writeln!(
                s,
                "| churn rate with the agent >= 90% of untraced | {:.1}% | {} |",
                ratio * 100.0,
                verdict(ratio >= 0.9)
            );
        }
        if let Some(m) = &self.memory {
            let b = m.bytes_per_socket();
            let _ = writeln!(
                s,
                "| at most 256 bytes of agent memory per tracked socket | {b:.0} B (fresh agent at {}: {} sockets) | {} |",
                m.label,
                m.tracked,
                verdict(b <= 256.0)
            );
        }
        s.push('\n');
    }

    fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# sockstat benchmarks\n");
        let _ = writeln!(
            s,
            "Generated by `cargo xtask bench`{}; nothing in this file is edited by hand.\n",
            if self.quick { " --quick (smoke run: small loads)" } else { "" }
        );
        let _ = writeln!(s, "Measured: {}; load average at the end {}.\n", self.env, self.end_load);
        let _ = writeln!(
            s,
            "Everything ran in one run, in a private network namespace, on loopback: `loadgen hold` keeps \
             established connections open (both ends counted as sockets), `loadgen churn` opens, exchanges \
             8 bytes and closes connections as fast as it can. Times are whole-command wall-clock medians \
             (process start to exit, stdout to /dev/null), sockstat and ss runs alternating; the ratio is ss's \
             median over sockstat's.\n"
        );
        self.targets(&mut s);

        let _ = writeln!(s, "## 1. Snapshot latency\n");
        let _ = writeln!(
            s,
            "sockstat runs with the agent up, in its default `--source auto`: the agent answers plain queries and `-p` (its table, and owners from its owners iterator), and queries with `-i` (details the agent cannot give fresh) are answered from the kernel; ss dumps sock_diag and walks /proc.\n"
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

        self.churn_md(&mut s);

        let _ = writeln!(s, "## 3. Agent memory and start-up\n");
        let _ = writeln!(s, "| | value |");
        let _ = writeln!(s, "| --- | ---: |");
        let _ = writeln!(s, "| agent RSS on an empty table (fresh agent, no load) | {} kB |", self.empty_rss_kb);
        let _ = writeln!(s, "| seed time on an empty table | {} ms |", self.empty_seed_ms);
        if let Some(m) = &self.memory {
            let _ = writeln!(s, "| fresh agent seeded at {}: sockets tracked | {} |", m.label, m.tracked);
            let _ = writeln!(s, "| fresh agent seeded at {}: RSS | {} kB |", m.label, m.fresh_rss_kb);
            let _ = writeln!(
                s,
                "| **memory per tracked socket** (RSS delta / sockets) | **{:.0} B** |",
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
               empty table, divided by the sockets it tracks."
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
            "`loadgen churn` with {} worker processes, {} s per run, {} rounds of (untraced, agent, bpftrace); medians \
             over rounds. bpftrace runs `tracepoint:sock:inet_sock_set_state {{ @c = count(); }}`.\n",
            c.workers,
            c.seconds,
            c.untraced.len()
        );
        let untraced = median_f(c.untraced.iter().map(ChurnResult::rate));
        let with_agent = median_f(c.agent.iter().map(|a| a.churn.rate()));
        let with_bt = median_f(c.bpftrace.iter().map(|b| b.churn.rate()));
        let bt_cell = |v: String| {
            if c.bpftrace.is_empty() {
                format!("n/a: {}", c.bpftrace_missing.as_deref().unwrap_or("not run"))
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
        let lost: u64 = c.agent.iter().map(|a| a.lost).sum();
        let malformed: u64 = c.agent.iter().map(|a| a.malformed).sum();
        let dropped: u64 = c.agent.iter().map(|a| a.timeline_dropped).sum();
        let resyncs: u64 = c.agent.iter().map(|a| a.resyncs).sum();
        let seen: u64 = c.agent.iter().map(|a| a.seen).sum();
        let received: u64 = c.agent.iter().map(|a| a.received).sum();
        let _ = writeln!(
            s,
            "| events lost (all runs) | - | {lost} lost in the kernel, {malformed} malformed, {resyncs} resyncs; {received} of {seen} seen were received; {dropped} timeline records dropped (writer behind) | {} |",
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
        let errors: u64 = c
            .untraced
            .iter()
            .chain(c.agent.iter().map(|a| &a.churn))
            .chain(c.bpftrace.iter().map(|b| &b.churn))
            .map(|r| r.errors)
            .sum();
        if errors > 0 {
            let _ = writeln!(s, "\nThe churn saw {errors} failed connects in all (counted, not in the rates).");
        }
        s.push('\n');
    }

    fn svg(&self) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>();
        assert_eq!(median(&ms(&[3, 1, 2])), Duration::from_millis(2));
        assert_eq!(median(&ms(&[4, 1, 2, 3])), Duration::from_micros(2500));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&ms(&hundred), 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&ms(&hundred), 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&ms(&[7]), 99.0), Duration::from_millis(7));
    }

    #[test]
    fn finds_both_ends_of_a_connection() {
        let out = "State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n\
                   ESTAB  0      0          127.0.0.1:40001    127.0.0.1:9998\n\
                   ESTAB  0      0          127.0.0.1:9998     127.0.0.1:40001\n\
                   ESTAB  0      0          127.0.0.1:4000     127.0.0.1:9998\n";
        assert_eq!(shows_connection(out, 40001), (true, true));
        assert_eq!(shows_connection(out, 4000), (true, false));
        assert_eq!(shows_connection(out, 400), (false, false));
    }

    #[test]
    fn churn_summary_round_trips() {
        let r = ChurnResult::parse("connections=12 errors=1 seconds=2.000 rate=6").expect("parses");
        assert_eq!((r.connections, r.errors), (12, 1));
        assert!((r.rate() - 6.0).abs() < 1e-9);
    }
}
