//! Load generators for the benchmarks, loopback only, always bounded in count and time.
//!
//! - `hold`: keeps N established TCP connections (2N sockets, both ends) open. The
//!   per-process open-file limit here is 20000 and cannot be raised, so the connections are
//!   spread over worker processes, each with its own listener port and both ends of at most
//!   `--per-process` connections (2 fds each).
//! - `churn`: opens a connection, exchanges a few bytes, closes it, as fast as it can, in
//!   several worker processes (one listener port each, so the ephemeral port space is per
//!   worker), until a connection count or a time limit is reached.
//! - `time-wait`: opens and closes N connections, the client closing first, so that N
//!   client sockets stay in TIME-WAIT (for the kernel's 60 s) after it exits: the sockets
//!   of a server with short-lived clients.
//!
//! The workers are this same binary re-executed with a hidden subcommand, so no other
//! binary is needed. Each worker asks the kernel to kill it when its parent dies
//! (PR_SET_PDEATHSIG), and stops by itself at its deadline.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    os::fd::AsFd,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

/// Sockets per connection are two (both ends live in the same worker), plus the listener
/// and stdio: 9000 connections is 18004 fds, safely under the 20000 limit.
pub const DEFAULT_PER_PROCESS: u32 = 9000;
/// The highest per-process count the fd limit allows with some headroom.
const MAX_PER_PROCESS: u32 = 9900;
/// Bytes each churn connection sends and receives back.
const CHURN_MESSAGE: &[u8; 8] = b"sockstat";

#[derive(Subcommand)]
pub enum Loadgen {
    /// Hold N established TCP connections on loopback (2N sockets), then exit after SECONDS.
    /// Prints `ready CONNECTIONS` on stdout once all are established.
    Hold(HoldArgs),
    /// Open, exchange a few bytes and close TCP connections on loopback as fast as possible;
    /// stops after MAX connections or SECONDS. Prints a one-line summary on stdout.
    Churn(ChurnArgs),
    /// Open and close N TCP connections on loopback, the client closing first, spread over
    /// PORTS listener ports: N client sockets stay in TIME-WAIT for 60 s after it exits.
    /// Prints `ready N` on stdout once every connection is closed. With the default
    /// net.ipv4.tcp_tw_reuse (2: on for loopback) connect() recycles a few of them: set it
    /// to 0 in the namespace for all N.
    TimeWait(TimeWaitArgs),
    #[command(hide = true)]
    HoldWorker(HoldWorkerArgs),
    #[command(hide = true)]
    ChurnWorker(ChurnWorkerArgs),
}

#[derive(Args, Clone, Debug)]
pub struct HoldArgs {
    /// Established connections to hold (each is two sockets).
    #[arg(long)]
    pub connections: u32,
    /// Lifetime in seconds, set-up included; everything exits after it.
    #[arg(long)]
    pub seconds: u64,
    /// Worker i listens on PORT_BASE + i.
    #[arg(long, default_value_t = 20000)]
    pub port_base: u16,
    /// Loopback address to listen and connect on.
    #[arg(long, default_value = "127.0.0.1")]
    pub addr: Ipv4Addr,
    /// Connections per worker process (2 fds each; the fd limit is 20000).
    #[arg(long, default_value_t = DEFAULT_PER_PROCESS)]
    pub per_process: u32,
}

#[derive(Args, Clone, Debug)]
pub struct ChurnArgs {
    /// Stop after this many connections in all.
    #[arg(long)]
    pub max_connections: u64,
    /// Stop after this many seconds.
    #[arg(long)]
    pub seconds: f64,
    /// Worker processes (each: one client thread, one server thread, its own port).
    #[arg(long, default_value_t = default_churn_workers())]
    pub workers: u16,
    /// Worker i listens on PORT_BASE + i.
    #[arg(long, default_value_t = 21000)]
    pub port_base: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub addr: Ipv4Addr,
}

#[derive(Args, Clone, Debug)]
pub struct TimeWaitArgs {
    /// Connections to open and close (each leaves one TIME-WAIT socket).
    #[arg(long)]
    pub connections: u32,
    /// Listener ports (one thread each): ephemeral ports are unique per destination, so
    /// each port takes at most 12000 connections.
    #[arg(long, default_value_t = 16)]
    pub ports: u16,
    /// Listener i is on PORT_BASE + i.
    #[arg(long, default_value_t = 23000)]
    pub port_base: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub addr: Ipv4Addr,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
}

#[derive(Args, Clone, Debug)]
pub struct HoldWorkerArgs {
    #[arg(long)]
    addr: Ipv4Addr,
    #[arg(long)]
    port: u16,
    #[arg(long)]
    connections: u32,
    #[arg(long)]
    seconds: f64,
}

#[derive(Args, Clone, Debug)]
pub struct ChurnWorkerArgs {
    #[arg(long)]
    addr: Ipv4Addr,
    #[arg(long)]
    port: u16,
    #[arg(long)]
    max_connections: u64,
    #[arg(long)]
    seconds: f64,
}

/// Four workers per core: each alternates between its client and server threads and waits
/// on loopback round trips, so more workers than cores keep the CPUs busy (measured: 8
/// workers beat 4 and 2 on two cores).
pub fn default_churn_workers() -> u16 {
    let cores = thread::available_parallelism().map_or(2, std::num::NonZero::get);
    u16::try_from(cores * 4).unwrap_or(8)
}

/// What a churn run achieved.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChurnResult {
    pub connections: u64,
    pub errors: u64,
    pub seconds: f64,
}

impl ChurnResult {
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 { self.connections as f64 / self.seconds } else { 0.0 }
    }

    fn line(&self) -> String {
        format!(
            "connections={} errors={} seconds={:.3} rate={:.0}",
            self.connections,
            self.errors,
            self.seconds,
            self.rate()
        )
    }

    pub fn parse(line: &str) -> Result<ChurnResult> {
        let mut r = ChurnResult::default();
        for kv in line.split_whitespace() {
            let (k, v) = kv.split_once('=').with_context(|| format!("malformed churn summary {line:?}"))?;
            match k {
                "connections" => r.connections = v.parse()?,
                "errors" => r.errors = v.parse()?,
                "seconds" => r.seconds = v.parse()?,
                _ => {}
            }
        }
        Ok(r)
    }
}

pub fn run(cmd: Loadgen) -> Result<()> {
    match cmd {
        Loadgen::Hold(a) => hold(&a),
        Loadgen::Churn(a) => {
            let r = churn(&a)?;
            println!("{}", r.line());
            Ok(())
        }
        Loadgen::TimeWait(a) => {
            let n = time_wait(&a)?;
            println!("ready {n}");
            std::io::stdout().flush()?;
            Ok(())
        }
        Loadgen::HoldWorker(a) => hold_worker(&a),
        Loadgen::ChurnWorker(a) => churn_worker(&a),
    }
}

fn self_command() -> Result<Command> {
    let exe = std::env::current_exe().context("locating the xtask binary to re-execute")?;
    let mut c = Command::new(exe);
    c.arg("loadgen");
    Ok(c)
}

/// Kills this process when the process that spawned it exits, so an interrupted bench or
/// generator never leaves workers (and their sockets) behind.
fn die_with_parent() -> Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).context("prctl(PR_SET_PDEATHSIG)")?;
    // The parent may have died between fork and prctl.
    if nix::unistd::getppid() == nix::unistd::Pid::from_raw(1) {
        bail!("parent exited before the worker started");
    }
    Ok(())
}

/// Close with RST instead of FIN: held connections then leave no TIME-WAIT sockets behind
/// that would pollute the next measurement for a minute.
fn abortive_close(s: &impl AsFd) -> Result<()> {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    nix::sys::socket::setsockopt(s, nix::sys::socket::sockopt::Linger, &l).context("SO_LINGER")?;
    Ok(())
}

/// Kills and reaps children still running (on an error path, or after the deadline).
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

fn hold(a: &HoldArgs) -> Result<()> {
    if a.per_process == 0 || a.per_process > MAX_PER_PROCESS {
        bail!("--per-process must be 1..={MAX_PER_PROCESS} (2 fds per connection, 20000 fds per process)");
    }
    if !a.addr.is_loopback() {
        bail!("{} is not a loopback address: load goes to loopback only", a.addr);
    }
    let start = Instant::now();
    let deadline = Duration::from_secs(a.seconds);
    let nworkers = a.connections.div_ceil(a.per_process);
    if u32::from(a.port_base) + nworkers > u32::from(u16::MAX) {
        bail!("--port-base {} leaves no room for {nworkers} worker ports", a.port_base);
    }
    let mut workers = Workers(Vec::new());
    let mut left = a.connections;
    for i in 0..nworkers {
        let n = left.min(a.per_process);
        left -= n;
        let port = a.port_base + u16::try_from(i)?;
        let child = self_command()?
            .arg("hold-worker")
            .args(["--addr", &a.addr.to_string(), "--port", &port.to_string()])
            .args(["--connections", &n.to_string(), "--seconds", &a.seconds.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting a hold worker")?;
        workers.0.push(child);
    }
    // Each worker prints one `ready N` line once its connections are established.
    let mut held = 0u64;
    for c in &mut workers.0 {
        let out = c.stdout.take().context("worker stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).context("reading a hold worker's readiness")?;
        let n: u64 = line
            .strip_prefix("ready ")
            .and_then(|n| n.trim().parse().ok())
            .with_context(|| format!("hold worker failed before it was ready (said {line:?})"))?;
        held += n;
    }
    eprintln!(
        "loadgen hold: {held} connections ({} sockets) on {}:{}..{} in {nworkers} processes, established in {:.1}s",
        held * 2,
        a.addr,
        a.port_base,
        u32::from(a.port_base) + nworkers.saturating_sub(1),
        start.elapsed().as_secs_f64()
    );
    println!("ready {held}");
    std::io::stdout().flush()?;
    // The workers exit by themselves at the deadline; wait for them.
    for c in &mut workers.0 {
        c.wait().context("waiting for a hold worker")?;
    }
    if start.elapsed() < deadline {
        eprintln!("loadgen hold: workers exited before the deadline");
    }
    Ok(())
}

fn hold_worker(a: &HoldWorkerArgs) -> Result<()> {
    die_with_parent()?;
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(a.seconds);
    let listener = TcpListener::bind(SocketAddr::from((a.addr, a.port)))
        .with_context(|| format!("binding {}:{}", a.addr, a.port))?;
    let addr = listener.local_addr()?;
    let mut socks = Vec::with_capacity(a.connections as usize * 2);
    // Connect in batches smaller than the accept backlog (std listens with a backlog of
    // 128), so every connect completes on loopback without an accept running concurrently;
    // a full backlog drops the SYN and the connect waits a second for the retransmission.
    let batch = 64;
    let mut done = 0;
    while done < a.connections {
        if start.elapsed() >= deadline {
            bail!("deadline reached after {done} of {} connections", a.connections);
        }
        let n = batch.min(a.connections - done);
        for _ in 0..n {
            let c = TcpStream::connect(addr).with_context(|| format!("connect to {addr} (connection {done})"))?;
            abortive_close(&c)?;
            socks.push(c);
        }
        for _ in 0..n {
            let (s, _) = listener.accept().context("accept")?;
            abortive_close(&s)?;
            socks.push(s);
        }
        done += n;
    }
    println!("ready {done}");
    std::io::stdout().flush()?;
    if let Some(rest) = deadline.checked_sub(start.elapsed()) {
        thread::sleep(rest);
    }
    drop(socks);
    Ok(())
}

/// Connections per port that keep clear of the ephemeral range (32768..60999 by default,
/// 28k ports per destination) with room to spare.
const MAX_TIME_WAIT_PER_PORT: u32 = 12_000;

/// Opens and closes `a.connections` connections, client first; returns how many.
pub fn time_wait(a: &TimeWaitArgs) -> Result<u64> {
    if !a.addr.is_loopback() {
        bail!("{} is not a loopback address: load goes to loopback only", a.addr);
    }
    if a.ports == 0 || a.connections.div_ceil(u32::from(a.ports)) > MAX_TIME_WAIT_PER_PORT {
        bail!("--ports must be at least 1 and give each port at most {MAX_TIME_WAIT_PER_PORT} connections");
    }
    if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        bail!("need 0 < --seconds <= 3600");
    }
    a.port_base.checked_add(a.ports - 1).context("--port-base too high for the number of ports")?;
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(a.seconds);
    let per = a.connections / u32::from(a.ports);
    let extra = a.connections % u32::from(a.ports);
    let threads: Vec<_> = (0..a.ports)
        .map(|i| {
            let n = per + u32::from(u32::from(i) < extra);
            let addr = SocketAddr::from((a.addr, a.port_base + i));
            thread::spawn(move || time_wait_port(addr, n, deadline))
        })
        .collect();
    let mut done = 0u64;
    for t in threads {
        done += u64::from(t.join().map_err(|_| anyhow::anyhow!("a time-wait thread panicked"))??);
    }
    eprintln!(
        "loadgen time-wait: {done} connections closed client first on {}:{}..{} in {:.1}s",
        a.addr,
        a.port_base,
        u32::from(a.port_base) + u32::from(a.ports) - 1,
        start.elapsed().as_secs_f64()
    );
    Ok(done)
}

fn time_wait_port(addr: SocketAddr, n: u32, deadline: Instant) -> Result<u32> {
    let listener = TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    // In batches smaller than the accept backlog, as `hold` does: a full backlog drops the
    // SYN and the connect waits a second for the retransmission.
    let batch = 64;
    let mut done = 0;
    let mut buf = [0u8; 1];
    while done < n {
        if Instant::now() >= deadline {
            bail!("deadline reached after {done} of {n} connections on {addr}");
        }
        let k = batch.min(n - done);
        let clients = (0..k)
            .map(|_| TcpStream::connect(addr).with_context(|| format!("connect to {addr}")))
            .collect::<Result<Vec<_>>>()?;
        let servers =
            (0..k).map(|_| listener.accept().map(|(s, _)| s).context("accept")).collect::<Result<Vec<_>>>()?;
        // The client closes first (FIN-WAIT), the server reads that FIN and closes (its
        // side ends in LAST-ACK, then CLOSED), the client's last ACK leaves it in TIME-WAIT.
        drop(clients);
        for mut s in servers {
            while matches!(s.read(&mut buf), Ok(m) if m > 0) {}
        }
        done += k;
    }
    Ok(done)
}

/// Runs a churn with `a.workers` processes and sums what they did.
pub fn churn(a: &ChurnArgs) -> Result<ChurnResult> {
    if !a.addr.is_loopback() {
        bail!("{} is not a loopback address: load goes to loopback only", a.addr);
    }
    if a.workers == 0 || !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        bail!("need at least one worker and 0 < --seconds <= 3600");
    }
    let per = a.max_connections.div_ceil(u64::from(a.workers));
    let mut workers = Workers(Vec::new());
    for i in 0..a.workers {
        let port = a.port_base.checked_add(i).context("--port-base too high for the number of workers")?;
        let child = self_command()?
            .arg("churn-worker")
            .args(["--addr", &a.addr.to_string(), "--port", &port.to_string()])
            .args(["--max-connections", &per.to_string(), "--seconds", &a.seconds.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting a churn worker")?;
        workers.0.push(child);
    }
    let mut total = ChurnResult::default();
    for c in &mut workers.0 {
        let mut out = String::new();
        c.stdout.take().context("worker stdout")?.read_to_string(&mut out)?;
        let status = c.wait()?;
        if !status.success() {
            bail!("a churn worker failed ({status})");
        }
        let r = ChurnResult::parse(out.trim())?;
        total.connections += r.connections;
        total.errors += r.errors;
        // Workers run concurrently: the run lasts as long as the slowest.
        total.seconds = total.seconds.max(r.seconds);
    }
    eprintln!("loadgen churn: {}", total.line());
    Ok(total)
}

fn churn_worker(a: &ChurnWorkerArgs) -> Result<()> {
    die_with_parent()?;
    let listener = TcpListener::bind(SocketAddr::from((a.addr, a.port)))
        .with_context(|| format!("binding {}:{}", a.addr, a.port))?;
    let addr = listener.local_addr()?;
    // Server: serve connections one at a time; the process exits (ending this thread)
    // when the client loop is done.
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            if s.read_exact(&mut buf[..CHURN_MESSAGE.len()]).is_err() || s.write_all(CHURN_MESSAGE).is_err() {
                continue;
            }
            // Wait for the client's FIN so the server side takes the passive close
            // (CLOSE-WAIT, LAST-ACK) and the client keeps the TIME-WAIT, as for a typical
            // request/response protocol.
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        }
    });
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(a.seconds);
    let mut r = ChurnResult::default();
    let mut buf = [0u8; 8];
    while r.connections < a.max_connections && start.elapsed() < deadline {
        let ok = TcpStream::connect(addr).and_then(|mut c| {
            c.write_all(CHURN_MESSAGE)?;
            c.read_exact(&mut buf)
        });
        match ok {
            Ok(()) => r.connections += 1,
            Err(_) => {
                // e.g. EADDRNOTAVAIL when ephemeral ports run out: count it and back off
                // a little rather than spin.
                r.errors += 1;
                if r.errors > 10_000 {
                    bail!("more than 10000 failed connections; last at {:.1}s", start.elapsed().as_secs_f64());
                }
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
    r.seconds = start.elapsed().as_secs_f64();
    println!("{}", r.line());
    std::io::stdout().flush()?;
    Ok(())
}
