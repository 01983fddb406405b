//! `-E`/`--events` against the real `ss -E` (iproute2 6.1): both follow the same fresh
//! namespace, with the same options, while the test closes a known set of TCP and UDP
//! sockets in it; their outputs must be byte-identical.
//!
//! How, exactly:
//! - ss writes through stdio, which buffers a pipe in 4 KiB blocks and loses what is
//!   left when SIGINT kills it; it runs under `stdbuf -oL` so that every line reaches the
//!   pipe. sockstat needs nothing: it flushes every notification.
//! - Each follower has joined its groups when the namespace's `/proc/net/netlink` lists
//!   one more NETLINK_SOCK_DIAG socket with groups: sockets are closed only then.
//! - Sockets are closed one at a time, a little apart: the kernel broadcasts each
//!   notification from a workqueue, and two close together could reach the two followers
//!   in different orders (and column widths depend on the order).
//! - Once both have printed the lines expected for the options (bounded wait), both get
//!   SIGINT and must die by it, as ss does.
//! - One case runs both on a terminal (a pty 100 columns wide): each line spread over it.

use std::{
    ffi::OsString,
    io::Read,
    net::{TcpListener, TcpStream, UdpSocket},
    os::{
        fd::{FromRawFd, OwnedFd},
        unix::process::ExitStatusExt,
    },
    process::{Child, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sockstat_tests::{NetNs, sockstat_bin, wait_for};

/// The TCP listener's port: `sport = :7001` picks the listener and its accepted socket.
const PORT: u16 = 7001;
const ROUNDS: usize = 2;
/// Sockets closed per round, by kind.
const TCP4: usize = 3;
const TCP6: usize = 1;
const UDP4: usize = 1;
const UDP6: usize = 1;

/// A running `ss -E` or `sockstat -E` and what it printed so far.
struct Follower {
    name: &'static str,
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Follower {
    /// Starts `program args` in `ns`, its stdout a pipe, or the pty slave `tty`.
    fn start(
        name: &'static str,
        ns: &NetNs,
        program: &[OsString],
        args: &[&str],
        tty: Option<(OwnedFd, OwnedFd)>,
    ) -> Follower {
        let mut cmd = ns.command(&program[0]);
        cmd.args(&program[1..]).args(args).stderr(Stdio::piped());
        let (mut child, mut source): (Child, Box<dyn Read + Send>) = match tty {
            Some((master, slave)) => {
                cmd.stdout(Stdio::from(slave));
                let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
                // Our copy of the slave went with `cmd`'s Stdio once spawned (dropped below).
                (child, Box::new(std::fs::File::from(master)))
            }
            None => {
                cmd.stdout(Stdio::piped());
                let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
                let stdout = child.stdout.take().expect("piped stdout");
                (child, Box::new(stdout))
            }
        };
        drop(cmd);
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        let reader = thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // A pty master reads EIO once the child (the only slave holder) has exited.
            while let Ok(n) = source.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("output lock").extend_from_slice(&buf[..n]);
            }
        });
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited at once ({status})");
        }
        Follower { name, child, out, reader: Some(reader) }
    }

    fn pid(&self) -> Pid {
        // `ip netns exec` (and stdbuf) exec the program: the child pid is its pid.
        Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits"))
    }

    fn lines(&self) -> usize {
        self.out.lock().expect("output lock").iter().filter(|&&b| b == b'\n').count()
    }

    /// SIGINT, then what it printed; it must die by SIGINT, as ss does.
    fn interrupt(mut self) -> String {
        kill(self.pid(), Signal::SIGINT).unwrap_or_else(|e| panic!("SIGINT to {}: {e}", self.name));
        let status = self.child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert_eq!(
            status.signal(),
            Some(libc::SIGINT),
            "{} did not die by SIGINT ({status}); stderr: {err}",
            self.name
        );
        if let Some(r) = self.reader.take() {
            r.join().expect("reader thread");
        }
        let out = self.out.lock().expect("output lock").clone();
        String::from_utf8(out).expect("UTF-8 output")
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// NETLINK_SOCK_DIAG sockets of the namespace that joined multicast groups, from the
/// `/proc/net/netlink` of a process in it (columns: sk Eth Pid Groups ...).
fn joined(pid: Pid) -> usize {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/netlink")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&"4") && f.get(3).is_some_and(|g| u32::from_str_radix(g, 16).is_ok_and(|g| g != 0))
        })
        .count()
}

fn wait_joined(f: &Follower, count: usize) {
    let found = wait_for(Duration::from_secs(10), || (joined(f.pid()) >= count).then_some(()));
    assert!(found.is_some(), "{} did not join the destroy groups within 10 s", f.name);
}

/// Closes, one at a time: per round a loopback connection (client, accepted socket,
/// listener on PORT), a connected UDP socket (peer port 53, `domain`), an unconnected
/// UDP6 socket and a TCP6 listener.
fn close_sockets(ns: &NetNs) {
    ns.enter(|| {
        let pause = || thread::sleep(Duration::from_millis(25));
        for _ in 0..ROUNDS {
            let l = TcpListener::bind(("127.0.0.1", PORT)).expect("listen");
            let c = TcpStream::connect(("127.0.0.1", PORT)).expect("connect");
            let (a, _) = l.accept().expect("accept");
            pause();
            drop(c);
            pause();
            drop(a);
            pause();
            drop(l);
            pause();
            let u = UdpSocket::bind("127.0.0.1:0").expect("udp");
            u.connect("127.0.0.1:53").expect("udp connect");
            drop(u);
            pause();
            drop(UdpSocket::bind("[::1]:0").expect("udp6"));
            pause();
            drop(TcpListener::bind("[::1]:0").expect("listen6"));
            pause();
        }
    });
}

/// Runs `ss -E args` and `sockstat -E args` side by side around [`close_sockets`] and
/// returns both outputs, after checking each printed `lines` lines.
fn follow_both(tag: &str, args: &[&str], lines: usize, tty_cols: Option<u16>) -> (String, String) {
    let ns = NetNs::new(tag);
    let ss: Vec<OsString> = match tty_cols {
        // On a terminal, stdio is line-buffered already.
        Some(_) => vec!["ss".into()],
        None => vec!["stdbuf".into(), "-oL".into(), "ss".into()],
    };
    let ss = Follower::start("ss", &ns, &ss, args, tty_cols.map(pty));
    wait_joined(&ss, 1);
    let ours = Follower::start("sockstat", &ns, &[sockstat_bin().into()], args, tty_cols.map(pty));
    wait_joined(&ss, 2);
    close_sockets(&ns);
    let done = wait_for(Duration::from_secs(10), || (ss.lines() >= lines && ours.lines() >= lines).then_some(()));
    // Anything late would show up now.
    thread::sleep(Duration::from_millis(200));
    let (n_ss, n_ours) = (ss.lines(), ours.lines());
    let (ss, ours) = (ss.interrupt(), ours.interrupt());
    assert!(
        done.is_some() && n_ss == lines && n_ours == lines,
        "{args:?}: expected {lines} lines, ss printed {n_ss}, sockstat {n_ours}\n--- ss:\n{ss}--- sockstat:\n{ours}"
    );
    (ss, ours)
}

/// A pty of `cols` columns: (master, slave).
fn pty(cols: u16) -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize { ws_row: 50, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: openpty writes two fds through the pointers to live locals; the name and
    // termios pointers may be null; the winsize pointer is to a live local.
    let rc = unsafe {
        libc::openpty(&raw mut master, &raw mut slave, std::ptr::null_mut(), std::ptr::null(), &raw const size)
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty succeeded: both fds are open and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

#[test]
fn events_match_ss_byte_for_byte() {
    let r = ROUNDS;
    let tcp = (TCP4 + TCP6) * r;
    let udp = (UDP4 + UDP6) * r;
    let cases: &[(&[&str], usize)] = &[
        (&["-E"], 1 + tcp + udp),
        (&["-E", "-t"], 1 + tcp),
        (&["-E", "-tn"], 1 + tcp),
        (&["-E", "-u"], 1 + udp),
        (&["-E", "-tu", "-n"], 1 + tcp + udp),
        (&["-E", "-tn", "-e"], 1 + tcp),
        (&["-E", "-H", "-t"], tcp),
        // The client (dport 7001) is not shown; the header still prints with the first
        // notification, whichever it is.
        (&["-E", "-t", "sport", "=", ":7001"], 1 + 2 * r),
        (&["-E", "-4", "-t"], 1 + TCP4 * r),
        (&["-E", "-6", "-un"], 1 + UDP6 * r),
        // No state selection applies to destroyed sockets.
        (&["-E", "-t", "state", "established"], 1 + tcp),
        // tcp_info is in every TCP notification: -m prints it too.
        (&["-E", "-tn", "-i", "-o"], 1 + 2 * tcp),
        (&["-E", "-un", "-m"], 1 + 2 * udp),
        (&["-E", "-tr"], 1 + tcp),
        // -K: each destroyed socket is already gone; only the header prints.
        (&["-E", "-tn", "-K"], 1),
    ];
    let mut failures = Vec::new();
    for (i, &(args, lines)) in cases.iter().enumerate() {
        let (ss, ours) = follow_both(&format!("ev{i}"), args, lines, None);
        if ss != ours {
            failures.push(format!("{args:?}\n--- ss:\n{ss}--- sockstat:\n{ours}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn events_on_a_terminal_match_ss() {
    let lines = 1 + (TCP4 + TCP6 + UDP4 + UDP6) * ROUNDS;
    let (ss, ours) = follow_both("evtty", &["-E", "-tu"], lines, Some(100));
    assert_eq!(ours, ss, "on a 100-column terminal");
    assert!(ss.lines().all(|l| l.trim_end_matches('\r').len() == 100), "spread to the full width:\n{ss}");
}

#[test]
fn events_without_tcp_or_udp_exit_255_like_ss() {
    let ns = NetNs::new("evnone");
    for args in [&["-E", "-x"][..], &["-E", "-w"], &["-E", "-0"]] {
        let ss = ns.command("ss").args(args).output().expect("run ss");
        let ours = ns.sockstat(args);
        assert_eq!((ss.status.code(), ours.status.code()), (Some(255), Some(255)), "{args:?}");
        assert!(ss.stdout.is_empty() && ours.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}
