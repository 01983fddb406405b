//! Helpers shared by the root integration tests: network namespaces made and removed by
//! the test, the real `ss` and `sockstat` run inside them, an agent per namespace.
//! Every prerequisite that is missing fails the test with what to run.
//! `cargo xtask bench` makes its namespace with [`NetNs`] too, through the calls that
//! return errors instead of panicking ([`NetNs::create`], [`NetNs::enter_current_thread`]).

pub mod sk_storage;

use std::{
    ffi::OsStr,
    fs::File,
    os::fd::{AsFd, AsRawFd, OwnedFd},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use nix::sys::socket::NetlinkAddr;
use socket2::{Domain, Protocol, SockFilter, Socket, Type};

/// Path of the sockstat binary under test (set by `cargo xtask test`).
pub fn sockstat_bin() -> PathBuf {
    match std::env::var_os("SOCKSTAT_BIN") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "SOCKSTAT_BIN is not set: run the integration tests with `cargo xtask test`, which builds \
             target/dist/sockstat with its eBPF program and points the tests at it"
        ),
    }
}

/// The xtask binary, whose `loadgen` makes loads (`XTASK_BIN`, set by `cargo xtask test`;
/// `SOCKSTAT_XTASK`, set by `cargo xtask drill`; otherwise the one `cargo xtask` last built).
pub fn xtask_bin() -> PathBuf {
    let p = std::env::var_os("XTASK_BIN")
        .or_else(|| std::env::var_os("SOCKSTAT_XTASK"))
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/xtask"), PathBuf::from);
    assert!(p.exists(), "{} is missing: run the tests with `cargo xtask test` (it builds xtask)", p.display());
    p
}

/// Runs `xtask loadgen churn ARGS` in `ns`; the connections it made, and its summary
/// line (for messages).
pub fn churn(ns: &NetNs, args: &[&str]) -> (u64, String) {
    let out = ns.command(xtask_bin()).args(["loadgen", "churn"]).args(args).output().expect("xtask loadgen churn");
    let summary = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(out.status.success(), "loadgen churn: {summary} {}", String::from_utf8_lossy(&out.stderr));
    let connections = summary
        .split_whitespace()
        .find_map(|w| w.strip_prefix("connections="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no connection count in {summary:?}"));
    (connections, summary)
}

/// Whose ss the comparisons of this run are made with: `6.1` (the system's `ss`), or
/// `7.1` in the second pass of `cargo xtask test`, which puts ss 7.1 first on `PATH` (so
/// every `ss` the tests run, in any namespace, is 7.1's) and sets `SOCKSTAT_SS_COMPAT=7.1`
/// (so every sockstat they run reproduces it). Tests that expect something of one version
/// only ask this.
pub fn reference() -> &'static str {
    match std::env::var("SOCKSTAT_SS_COMPAT").as_deref() {
        Ok("7.1") => "7.1",
        _ => "6.1",
    }
}

/// The ss 7.1 binary (`SS_7_1`), which the 7.1 comparisons need.
pub fn ss71_bin() -> PathBuf {
    match std::env::var_os("SS_7_1").filter(|v| !v.is_empty()) {
        Some(p) if Path::new(&p).is_file() => PathBuf::from(p),
        Some(p) => {
            panic!("SS_7_1={} is not a file: build it with ../shared/oracles/build-ss.sh", Path::new(&p).display())
        }
        None => panic!(
            "SS_7_1 is not set: these tests compare with iproute2 7.1's ss; run `cargo xtask test` (it builds \
             the binary from ../shared/oracles) or `SS_7_1=$(../shared/oracles/build-ss.sh) cargo test ...`"
        ),
    }
}

pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!("these tests load BPF programs and create network namespaces: run `cargo xtask test` as root");
    }
}

fn try_run(cmd: &mut Command) -> anyhow::Result<Output> {
    cmd.output().map_err(|e| anyhow!("cannot run {cmd:?}: {e} (is iproute2 installed? `apt-get install iproute2`)"))
}

fn try_run_ok(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = try_run(cmd)?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(out)
}

fn run(cmd: &mut Command) -> Output {
    try_run(cmd).unwrap_or_else(|e| panic!("{e}"))
}

fn run_ok(cmd: &mut Command) -> Output {
    try_run_ok(cmd).unwrap_or_else(|e| panic!("{e}"))
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace with loopback up, deleted on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    /// A namespace of its own for one test: the name carries the tag, the process and a
    /// counter, so that tests and concurrent runs never share one.
    pub fn new(tag: &str) -> NetNs {
        require_root();
        let name = format!("sst-{tag}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        NetNs::create(&name).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A namespace of exactly this name, or why it could not be made: for callers that
    /// report errors rather than panic (the bench).
    pub fn create(name: &str) -> anyhow::Result<NetNs> {
        try_run_ok(Command::new("ip").args(["netns", "add", name]))?;
        // From here on, dropping `ns` removes the namespace again.
        let ns = NetNs { name: name.to_string() };
        try_run_ok(Command::new("ip").arg("-n").arg(name).args(["link", "set", "lo", "up"]))?;
        Ok(ns)
    }

    /// The namespace's bind mount, made by `ip netns add`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// `ip -n NS ARGS`.
    pub fn ip(&self, args: &[&str]) {
        run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args));
    }

    /// Sets a sysctl of the namespace (they are per namespace: the host's stay as they are).
    pub fn sysctl(&self, key: &str, value: &str) {
        let out = self.command("sysctl").args(["-q", "-w", &format!("{key}={value}")]).output().expect("run sysctl");
        assert!(out.status.success(), "sysctl {key}={value}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// The real ss (the first on PATH: see [`reference`]), in the namespace.
    pub fn ss(&self, args: &[&str]) -> String {
        self.ss_bin(Path::new("ss"), args)
    }

    /// The ss at `bin`, in the namespace.
    pub fn ss_bin(&self, bin: &Path, args: &[&str]) -> String {
        let out = run_ok(self.command(bin).args(args));
        String::from_utf8(out.stdout).expect("ss prints UTF-8")
    }

    /// sockstat, in the namespace; the full output (the caller checks the status).
    pub fn sockstat(&self, args: &[&str]) -> Output {
        run(self.command(sockstat_bin()).args(args))
    }

    /// sockstat reproducing ss `compat` (`6.1`, `7.1`).
    pub fn sockstat_as(&self, compat: &str, args: &[&str]) -> Output {
        run(self.command(sockstat_bin()).env("SOCKSTAT_SS_COMPAT", compat).args(args))
    }

    /// sockstat's stdout, asserting success.
    pub fn sockstat_ok(&self, args: &[&str]) -> String {
        let out = self.sockstat(args);
        assert!(
            out.status.success(),
            "sockstat {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("sockstat prints UTF-8")
    }

    /// Runs `f` on a thread that has entered the namespace: sockets it creates live there
    /// (and stay open after it returns if it hands them back).
    pub fn enter<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = self.path();
        thread::spawn(move || {
            setns_net(&path).unwrap_or_else(|e| panic!("{e:#}"));
            f()
        })
        .join()
        .expect("namespace thread panicked")
    }

    /// Moves the calling thread into the namespace for good: every process it starts
    /// afterwards starts there too, with no `ip netns exec` in between.
    pub fn enter_current_thread(&self) -> anyhow::Result<()> {
        setns_net(&self.path())
    }

    /// A black-holed address: 10.254.0.2 sits behind a veth whose peer drops every frame
    /// (a permanent neighbour entry with a MAC nobody owns, so no ARP failure and no
    /// ICMP either). A connect() to it stays in SYN-SENT for minutes.
    pub fn blackhole(&self) -> std::net::SocketAddr {
        self.ip(&["link", "add", "bh0", "type", "veth", "peer", "name", "bh1"]);
        self.ip(&["addr", "add", "10.254.0.1/24", "dev", "bh0"]);
        self.ip(&["link", "set", "bh0", "up"]);
        self.ip(&["link", "set", "bh1", "up"]);
        self.ip(&["neigh", "add", "10.254.0.2", "lladdr", "02:00:00:00:00:99", "dev", "bh0", "nud", "permanent"]);
        "10.254.0.2:9".parse().expect("literal address")
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Moves the calling thread into the network namespace bound at `path`.
fn setns_net(path: &Path) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("setns into {} (needs CAP_SYS_ADMIN)", path.display()))
}

/// A `sockstat agent` running in a namespace; SIGTERM on drop.
pub struct Agent {
    child: Option<Child>,
    pub socket: PathBuf,
    pub log: PathBuf,
    /// The agent's timeline database (in the test's temporary directory).
    pub timeline: PathBuf,
}

impl Agent {
    /// An agent with a fresh timeline in the test's temporary directory.
    pub fn start(ns: &NetNs, extra: &[&str]) -> Agent {
        let dir = std::env::temp_dir().join(format!("{}-agent", ns.name));
        let timeline = dir.join("timeline.db");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", timeline.display()));
        }
        Agent::start_on(ns, &timeline, extra)
    }

    /// An agent that records into `timeline`, keeping what the file already holds.
    pub fn start_on(ns: &NetNs, timeline: &Path, extra: &[&str]) -> Agent {
        let dir = std::env::temp_dir().join(format!("{}-agent", ns.name));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let socket = dir.join("agent.sock");
        let log = dir.join("agent.log");
        let timeline = timeline.to_path_buf();
        let child = ns
            .command(sockstat_bin())
            .arg("agent")
            .arg("--socket")
            .arg(&socket)
            .arg("--timeline")
            .arg(&timeline)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("agent log"))
            .spawn()
            .expect("spawn sockstat agent");
        let mut agent = Agent { child: Some(child), socket, log, timeline };
        agent.wait_ready(ns);
        agent
    }

    fn wait_ready(&mut self, ns: &NetNs) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("agent exited early ({status}): {}", self.log_text());
            }
            if self.socket.exists()
                && ns.sockstat(&["status", "--socket", self.socket.to_str().unwrap()]).status.success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "agent not ready after 30 s: {}", self.log_text());
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn socket_arg(&self) -> &str {
        self.socket.to_str().expect("UTF-8 temp path")
    }

    /// `sockstat status --json` as a JSON value.
    pub fn status(&self, ns: &NetNs) -> serde_json::Value {
        let out = ns.sockstat_ok(&["status", "--json", "--socket", self.socket_arg()]);
        serde_json::from_str(&out).expect("status --json is JSON")
    }

    /// SIGSTOP: the agent drains nothing until `thaw`, so the kernel side fills up
    /// exactly as it would behind a starved reader.
    pub fn freeze(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }

    /// SIGCONT after `freeze`.
    pub fn thaw(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("agent still running");
        // `ip netns exec` execs the agent, so the child pid is the agent's.
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
        nix::sys::signal::kill(pid, sig).unwrap_or_else(|e| panic!("{sig} to the agent: {e}"));
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("agent still running");
        child.kill().expect("SIGKILL the agent");
        let _ = child.wait();
    }

    /// Sends SIGTERM and waits; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("agent still running");
        // `ip netns exec` execs the agent, so the child pid is the agent's.
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("wait agent") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("agent did not exit within 10 s of SIGTERM: {}", self.log_text());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
        // The socket, its lock, the log and the timeline live in the test's directory.
        if let Some(dir) = self.socket.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(25));
    }
}

/// Header line and the body lines sorted: the agent lists rows in a documented order
/// that differs from the kernel's hash-bucket order (README, compatibility table).
/// Output without a header (`-H`) gives an empty header.
pub fn header_and_sorted_rows(text: &str) -> (String, Vec<String>) {
    let mut lines = text.lines().peekable();
    let is_header =
        lines.peek().is_some_and(|l| l.starts_with("State") || l.starts_with("Netid") || l.starts_with("Recv-Q"));
    let header = if is_header { lines.next().unwrap_or_default().to_string() } else { String::new() };
    let mut rows: Vec<String> = lines.map(str::to_string).collect();
    rows.sort();
    (header, rows)
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Runs ss, sockstat, ss with `args` in `ns`; Ok if sockstat printed what either ss run
/// printed, after `mask` (values that move between runs, such as timers).
pub fn matches_ss(ns: &NetNs, args: &[&str], mask: fn(&str) -> String) -> Result<(), String> {
    let before = mask(&ns.ss(args));
    let ours = mask(&ns.sockstat_ok(args));
    let after = mask(&ns.ss(args));
    if ours == before || ours == after {
        Ok(())
    } else {
        Err(format!("{args:?}\n--- ss:\n{before}\n--- sockstat:\n{ours}"))
    }
}

/// [`matches_ss`] for every case, each tried up to four times (timers and idle times
/// move), failing with every case that never matched.
pub fn compare_all(ns: &NetNs, cases: &[&[&str]], mask: fn(&str) -> String) {
    let mut failures = Vec::new();
    for args in cases {
        let mut last = Ok(());
        for _ in 0..4 {
            last = matches_ss(ns, args, mask);
            if last.is_ok() {
                break;
            }
            thread::sleep(Duration::from_millis(150));
        }
        if let Err(e) = last {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A program run in `ns` with piped stdin and stdout, once it printed `ready` (a Python
/// fixture that made its sockets and now waits for stdin to close).
pub fn spawn_ready(ns: &NetNs, program: &str, args: &[&str]) -> Child {
    let mut child = spawn_piped(ns, program, args);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("piped stdout")), &mut line)
        .expect("read the fixture's first line");
    assert_eq!(line.trim(), "ready", "{program} did not get ready");
    child
}

/// A program run in `ns` with piped stdin and stdout.
pub fn spawn_piped(ns: &NetNs, program: &str, args: &[&str]) -> Child {
    ns.command(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e} (apt-get install {program})"))
}

/// Removes the querying process's own sock_diag socket from a netlink listing: ss lists
/// its own (`tcpdiag:ss/PID`), sockstat its own or the agent's, with different pids
/// (`sockstat-preloa`: the dynamically linked `sockstat-preload`'s 15-byte name).
pub fn without_self(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !l.split_whitespace().any(|w| {
                w.starts_with("tcpdiag:ss/")
                    || w.starts_with("tcpdiag:sockstat/")
                    || w.starts_with("tcpdiag:sockstat-preloa/")
                    || w.strip_prefix("4:").is_some_and(|pid| pid != "0" && pid.parse::<u32>().is_ok())
            })
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Masks the values (not the names) of the `-i` fields that count milliseconds since the
/// last packet (`lastsnd:`, `lastrcv:`, `lastack:`, and ss 7.1's MPTCP `last_data_sent:`,
/// `last_data_recv:`, `last_ack_recv:`), which grow between two runs.
pub fn mask_idle(text: &str) -> String {
    const IDLE: [&str; 6] =
        ["lastsnd:", "lastrcv:", "lastack:", "last_data_sent:", "last_data_recv:", "last_ack_recv:"];
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive([' ', '\n']) {
        match IDLE.iter().find(|p| word.starts_with(**p)) {
            Some(p) => {
                out.push_str(p);
                out.push('#');
                if word.ends_with(['\n', ' ']) {
                    out.push_str(&word[word.len() - 1..]);
                }
            }
            None => out.push_str(word),
        }
    }
    out
}

fn check_rc(rc: libc::c_int, what: &str) -> libc::c_int {
    assert!(rc >= 0, "{what}: {}", std::io::Error::last_os_error());
    rc
}

/// socket(2) with any protocol number (nix takes only the protocols it names); close-on-exec.
fn raw_socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> Socket {
    Socket::new(Domain::from(domain), Type::from(ty), Some(Protocol::from(proto)))
        .unwrap_or_else(|e| panic!("socket: {e}"))
}

/// A netlink socket bound (port id: the process's pid for the first, a negative
/// kernel-chosen one after), optionally connected to the kernel.
pub fn netlink_socket(proto: libc::c_int, groups: u32, connect: bool) -> OwnedFd {
    let fd = OwnedFd::from(raw_socket(libc::AF_NETLINK, libc::SOCK_RAW, proto));
    nix::sys::socket::bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))
        .unwrap_or_else(|e| panic!("bind netlink: {e}"));
    if connect {
        // Port 0 is the kernel.
        nix::sys::socket::connect(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))
            .unwrap_or_else(|e| panic!("connect netlink: {e}"));
    }
    fd
}

/// A packet socket of `proto` (host order), bound to `ifindex` unless 0, with a classic
/// BPF program attached if given (as tcpdump attaches one).
pub fn packet_socket(ty: libc::c_int, proto: u16, ifindex: i32, filter: Option<&[(u16, u8, u8, u32)]>) -> OwnedFd {
    let sock = raw_socket(libc::AF_PACKET, ty, i32::from(proto.to_be()));
    if ifindex != 0 {
        // nix can read a sockaddr_ll (LinkAddr) but not build one: this bind stays raw.
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = proto.to_be();
        sa.sll_ifindex = ifindex;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: sa is a valid sockaddr_ll of `len` bytes.
        check_rc(unsafe { libc::bind(sock.as_raw_fd(), (&raw const sa).cast(), len) }, "bind packet");
    }
    if let Some(prog) = filter {
        let insns: Vec<SockFilter> = prog.iter().map(|&(code, jt, jf, k)| SockFilter::new(code, jt, jf, k)).collect();
        sock.attach_filter(&insns).unwrap_or_else(|e| panic!("SO_ATTACH_FILTER: {e}"));
    }
    OwnedFd::from(sock)
}

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// Kernel BPF statistics on for the test: `kernel.bpf_stats_enabled` set to 1 (what
/// `status` reports) and put back on drop, plus a BPF_ENABLE_STATS descriptor that keeps
/// the kernel counting even if something else sets the sysctl back to 0 meanwhile.
pub struct StatsOn {
    previous: String,
    _counting: std::os::fd::OwnedFd,
}

impl StatsOn {
    #[must_use]
    pub fn enable() -> StatsOn {
        let previous = std::fs::read_to_string(STATS_SYSCTL)
            .unwrap_or_else(|e| panic!("reading {STATS_SYSCTL}: {e} (the kernel needs CONFIG_BPF_SYSCALL)"));
        std::fs::write(STATS_SYSCTL, "1").unwrap_or_else(|e| panic!("`sysctl kernel.bpf_stats_enabled=1`: {e}"));
        let counting =
            aya::sys::enable_stats(aya::sys::Stats::RunTime).unwrap_or_else(|e| panic!("BPF_ENABLE_STATS: {e}"));
        StatsOn { previous, _counting: counting }
    }
}

impl Drop for StatsOn {
    fn drop(&mut self) {
        let _ = std::fs::write(STATS_SYSCTL, self.previous.trim());
    }
}
