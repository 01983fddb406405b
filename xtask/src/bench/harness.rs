//! The bench's processes and clocks: progress log, the `sockstat agent` it talks to,
//! `loadgen hold` children, /proc readings (CPU, RSS), and whole-command timing with two
//! commands alternating. Imports only `stats`; the sections build on this.

use std::{
    fs::{self, File},
    io::{BufRead, BufReader},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use nix::{
    sys::{
        signal::{Signal, kill},
        socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket},
    },
    unistd::Pid,
};
use serde_json::Value;

use super::stats::{fmt_ms, median};

/// Upper bound on any hold generator's life: the bench kills them long before.
pub(super) const HOLD_SECONDS: u64 = 1200;

/// Progress on stderr, stamped with the time since the start.
#[derive(Clone, Copy)]
pub(super) struct Log(pub(super) Instant);

impl Log {
    pub(super) fn say(&self, msg: &str) {
        eprintln!("[bench {:6.1}s] {msg}", self.0.elapsed().as_secs_f64());
    }
}

pub(super) struct RemoveDir(pub(super) PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) fn require_tool(tool: &str, args: &[&str], install: &str) -> Result<()> {
    let ok =
        Command::new(tool).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        bail!("`{tool}` is needed by the bench: run `{install}`");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Processes: commands, /proc readings, the agent, hold generators.

pub(super) fn run_ok(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn clock_ticks() -> f64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// utime + stime of a process, in seconds.
pub(super) fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the parenthesised comm start at field 3 (state); utime and stime are
    // fields 14 and 15 (proc(5)).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("malformed /proc/PID/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).context("no utime")?.parse::<u64>()? + f.get(12).context("no stime")?.parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks())
}

/// Resident memory of a process (/proc/PID/status), in kB.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Rss {
    /// VmRSS.
    pub(super) total_kb: u64,
    /// RssAnon: heap, stacks, anonymous mappings (the ring buffer's pages included).
    pub(super) anon_kb: u64,
    /// RssFile: pages of mapped files, the binary's own first.
    pub(super) file_kb: u64,
}

pub(super) fn rss(pid: u32) -> Result<Rss> {
    let status =
        fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        Ok(line.split_whitespace().next().with_context(|| format!("malformed {name}"))?.parse()?)
    };
    Ok(Rss { total_kb: field("VmRSS")?, anon_kb: field("RssAnon")?, file_kb: field("RssFile")? })
}

pub(super) fn rss_kb(pid: u32) -> Result<u64> {
    Ok(rss(pid)?.total_kb)
}

pub(super) trait JsonExt {
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
pub(super) struct Agent {
    child: Child,
    bin: PathBuf,
    pub(super) socket: PathBuf,
    log: PathBuf,
    /// Its timeline file, if this sockstat keeps one.
    timeline: Option<PathBuf>,
}

impl Agent {
    pub(super) fn start(bin: &Path, socket: &Path, log: &Path) -> Result<Agent> {
        let err = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(bin);
        cmd.arg("agent").arg("--socket").arg(socket);
        // Agents that keep a timeline keep it (the default configuration is what is
        // measured), but each in its own file: two agents run at once here. Every agent
        // of the bench starts fresh, on a new file.
        let help = Command::new(bin).args(["agent", "--help"]).output().context("running sockstat agent --help")?;
        let timeline =
            String::from_utf8_lossy(&help.stdout).contains("--timeline").then(|| socket.with_extension("timeline.db"));
        if let Some(t) = &timeline {
            remove_sqlite_files(t)?;
            cmd.arg("--timeline").arg(t);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {} agent", bin.display()))?;
        let mut a =
            Agent { child, bin: bin.to_path_buf(), socket: socket.to_path_buf(), log: log.to_path_buf(), timeline };
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

    /// The agent's log lines that contain `needle`.
    pub(super) fn log_lines_with(&self, needle: &str) -> Vec<String> {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        s.lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn status(&self) -> Result<Value> {
        let out = Command::new(&self.bin).arg("status").arg("--json").arg("--socket").arg(&self.socket).output()?;
        if !out.status.success() {
            bail!("sockstat status failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        serde_json::from_slice(&out.stdout).context("parsing `sockstat status --json`")
    }

    pub(super) fn rss_kb(&self) -> Result<u64> {
        rss_kb(self.pid())
    }

    pub(super) fn rss(&self) -> Result<Rss> {
        rss(self.pid())
    }

    pub(super) fn timeline(&self) -> Option<&Path> {
        self.timeline.as_deref()
    }

    pub(super) fn cpu_seconds(&self) -> Result<f64> {
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

    /// Queries the agent (`-tan`, untimed) until a query makes it check nothing new with
    /// the kernel: right after thousands of connections open, its first queries confirm
    /// their handshakes (mini sockets looked up or dumped) and rebuild their answer. A
    /// scene is measured once it holds still. Returns the queries it took (at most 20).
    pub(super) fn settle(&self) -> Result<u32> {
        let checks = |s: &Value| -> Result<u64> { Ok(s.u64("mini_lookups")? + s.u64("mini_dumps")?) };
        let mut before = checks(&self.status()?)?;
        for n in 1..=20 {
            let out = Command::new(&self.bin)
                .args(["--source", "agent", "--socket"])
                .arg(&self.socket)
                .arg("-tan")
                .stdout(Stdio::null())
                .output()
                .context("running sockstat -tan to settle the scene")?;
            if !out.status.success() {
                bail!("sockstat -tan failed while settling the scene: {}", String::from_utf8_lossy(&out.stderr));
            }
            let now = checks(&self.status()?)?;
            if now == before {
                return Ok(n);
            }
            before = now;
        }
        Ok(20)
    }

    pub(super) fn wait_table_at_least(&self, n: u64, timeout: Duration) -> Result<u64> {
        self.wait_table(|t| t >= n, &format!("at least {n}"), timeout)
    }

    pub(super) fn wait_table_at_most(&self, n: u64, timeout: Duration) -> Result<u64> {
        self.wait_table(|t| t <= n, &format!("at most {n}"), timeout)
    }

    /// Waits until the agent has taken every event the kernel counted, or until its
    /// received count stops moving (events of other namespaces are received too, so
    /// `seen` may keep growing from outside traffic).
    pub(super) fn wait_drained(&self, timeout: Duration) -> Result<Value> {
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

    pub(super) fn stop(mut self) -> Result<()> {
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

/// A SQLite database and its write-ahead log and shared-memory index, if present.
pub(super) fn sqlite_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

pub(super) fn remove_sqlite_files(db: &Path) -> Result<()> {
    for f in sqlite_files(db) {
        match fs::remove_file(&f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", f.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A `loadgen hold` child holding connections until dropped (its workers die with it).
pub(super) struct Hold(Child);

impl Hold {
    pub(super) fn start(connections: u32, port_base: u16) -> Result<Hold> {
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

/// A connection to `to` from the address `from` (port chosen by the kernel).
pub(super) fn connect_from(from: Ipv4Addr, to: SocketAddr) -> Result<std::net::TcpStream> {
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).context("socket")?;
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(from, 0))).with_context(|| format!("binding {from}"))?;
    let SocketAddr::V4(to4) = to else { bail!("{to} is not IPv4") };
    connect(fd.as_raw_fd(), &SockaddrIn::from(to4)).with_context(|| format!("connecting to {to}"))?;
    Ok(TcpStream::from(fd))
}

// ---------------------------------------------------------------------------------------
// Timing.

#[derive(Clone, Copy)]
pub(super) struct Timing {
    pub(super) min_runs: usize,
    pub(super) max_runs: usize,
    /// Stop adding runs past min_runs once this much time went into one command.
    pub(super) budget: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing { min_runs: 3, max_runs: 11, budget: Duration::from_secs(8) }
    }
}

/// A whole-command measurement, or why there is none.
#[derive(Clone, Debug)]
pub(super) enum Measure {
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
    pub(super) fn median(&self) -> Option<Duration> {
        match self {
            Measure::Timed { runs, .. } => Some(median(runs)),
            _ => None,
        }
    }

    pub(super) fn lines(&self) -> Option<usize> {
        match self {
            Measure::Timed { lines, .. } => Some(*lines),
            _ => None,
        }
    }

    pub(super) fn cell(&self) -> String {
        match self {
            Measure::Timed { runs, .. } => fmt_ms(median(runs)),
            Measure::Unsupported(why) => format!("n/a: {why}"),
            Measure::Failed(why) => format!("failed: {why}"),
        }
    }

    pub(super) fn runs(&self) -> usize {
        match self {
            Measure::Timed { runs, .. } => runs.len(),
            _ => 0,
        }
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
pub(super) fn time_pair(a: (&Path, &[&str]), b: (&Path, &[&str]), t: &Timing) -> Result<(Measure, Measure)> {
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

pub(super) struct KillOnDrop<'a>(pub(super) &'a mut Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Kills a child's process group (SIGKILL: the child must have been started as a group
/// leader) and reaps the child when dropped.
pub(super) struct KillGroupOnDrop<'a>(pub(super) &'a mut Child);

impl Drop for KillGroupOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.0.wait();
    }
}
