//! The agent's table against the real `ss`: sockets from before it started (seeded),
//! sockets opened while it runs (streamed), closed ones gone; churn; lifecycle errors.

use std::{
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    thread,
    time::Duration,
};

use socket2::Socket;
use sockstat_tests::{Agent, NetNs, header_and_sorted_rows, sockstat_bin};

fn agent_view(ns: &NetNs, agent: &Agent, q: &[&str]) -> (String, Vec<String>) {
    let mut args = vec!["--source", "agent", "--socket", agent.socket_arg()];
    args.extend_from_slice(q);
    header_and_sorted_rows(&ns.sockstat_ok(&args))
}

fn assert_matches_ss(ns: &NetNs, agent: &Agent, q: &[&str], what: &str) {
    let ours = agent_view(ns, agent, q);
    let theirs = header_and_sorted_rows(&ns.ss(q));
    assert_eq!(ours, theirs, "{what}: agent answer for {q:?} differs from ss");
}

/// `ours()` equals `theirs()`, allowing a few tries: the agent's end of a query that just
/// finished can still be closing when ss dumps UNIX sockets, and ss would list it.
fn eventually_equal<T: PartialEq + std::fmt::Debug>(what: &str, ours: impl Fn() -> T, theirs: impl Fn() -> T) {
    let mut last = None;
    for _ in 0..5 {
        let (a, b) = (ours(), theirs());
        if a == b {
            return;
        }
        last = Some((a, b));
        thread::sleep(Duration::from_millis(200));
    }
    let (a, b) = last.expect("compared at least once");
    assert_eq!(a, b, "{what}");
}

/// `n` established loopback connections to a listener on `listen` in `ns`: both ends
/// and the listener.
fn connections(ns: &NetNs, listen: &'static str, n: usize) -> Vec<Socket> {
    ns.enter(move || {
        let l = TcpListener::bind(listen).unwrap();
        let mut all = Vec::new();
        for _ in 0..n {
            let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (a, _) = l.accept().unwrap();
            all.push(Socket::from(c));
            all.push(Socket::from(a));
        }
        all.push(l.into());
        all
    })
}

fn pair(listen: &str) -> Vec<Socket> {
    let l = TcpListener::bind(listen).unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (a, _) = l.accept().unwrap();
    vec![l.into(), c.into(), a.into()]
}

#[test]
fn seeded_streamed_and_closed_sockets() {
    let ns = NetNs::new("life");
    let before = ns.enter(|| pair("127.0.0.1:7001"));
    let agent = Agent::start(&ns, &[]);
    assert_matches_ss(&ns, &agent, &["-tan"], "seeded");
    let seeded = agent_view(&ns, &agent, &["-tan"]).1;
    assert!(seeded.iter().any(|r| r.contains("127.0.0.1:7001")), "seeded listener missing: {seeded:?}");

    // Opened after the agent started: only the event stream can know them, the bound
    // device (printed as %lo) included.
    let after = ns.enter(|| {
        let mut socks = pair("[::1]:7002");
        let bound = Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        bound.bind_device(Some(b"lo")).unwrap();
        bound.bind(&"127.0.0.1:7003".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
        bound.listen(8).unwrap();
        socks.push(bound);
        socks
    });
    let rows = agent_view(&ns, &agent, &["-tan"]).1;
    assert!(
        rows.iter().any(|r| r.contains("[::1]:7002") && r.starts_with("LISTEN")),
        "streamed listener missing: {rows:?}"
    );
    assert!(rows.iter().any(|r| r.contains("127.0.0.1%lo:7003")), "bound device missing: {rows:?}");
    // Closed while the peer still holds its end: the tuple passes to a timewait socket
    // in the FIN-WAIT-2 sub-state, which only the kernel can list.
    let orphan_peer = ns.enter(|| {
        let l = TcpListener::bind("127.0.0.1:7004").unwrap();
        let c = TcpStream::connect("127.0.0.1:7004").unwrap();
        let (a, _) = l.accept().unwrap();
        drop(c);
        thread::sleep(Duration::from_millis(50));
        (l, a)
    });
    let rows = agent_view(&ns, &agent, &["-tan"]).1;
    assert!(
        rows.iter().any(|r| r.starts_with("FIN-WAIT-2") && r.contains(":7004")),
        "orphaned FIN-WAIT-2 missing: {rows:?}"
    );
    assert!(rows.iter().any(|r| r.starts_with("CLOSE-WAIT") && r.contains(":7004")), "{rows:?}");
    assert_matches_ss(&ns, &agent, &["-tan"], "orphaned FIN-WAIT-2");
    drop(orphan_peer);
    assert_eq!(rows.iter().filter(|r| r.starts_with("ESTAB")).count(), 4, "{rows:?}");
    assert_matches_ss(&ns, &agent, &["-tan"], "streamed");

    // Close everything from before; the client side closes first and lingers in
    // TIME-WAIT, which ss shows and so must we.
    let mut before = before.into_iter();
    let (l, c, a) = (before.next().unwrap(), before.next().unwrap(), before.next().unwrap());
    drop(l);
    c.shutdown(Shutdown::Both).unwrap();
    drop(c);
    let mut a: TcpStream = a.into();
    let mut buf = [0u8; 8];
    assert_eq!(a.read(&mut buf).unwrap(), 0);
    drop(a);
    thread::sleep(Duration::from_millis(200));
    let rows = agent_view(&ns, &agent, &["-tan"]).1;
    assert!(
        !rows.iter().any(|r| r.starts_with("LISTEN") && r.contains(":7001")),
        "closed listener still listed: {rows:?}"
    );
    assert!(rows.iter().any(|r| r.starts_with("TIME-WAIT")), "TIME-WAIT missing: {rows:?}");
    assert_matches_ss(&ns, &agent, &["-tan"], "closed");

    let status = agent.status(&ns);
    assert!(status["events_received"].as_u64().unwrap() >= 10, "{status}");
    assert_eq!(status["events_lost_kernel"], 0, "{status}");
    drop(after);
}

/// At least 20,000 loopback connections opened and closed while the agent runs, then a
/// quiet period: the agent's answer equals ss's, and nothing was lost (or it resynced).
#[test]
fn churn_then_agent_equals_ss() {
    const CONNECTIONS: usize = 20_000;
    const THREADS: usize = 4;
    let ns = NetNs::new("churn");
    let agent = Agent::start(&ns, &[]);
    let served = ns.enter(|| {
        let l = TcpListener::bind("127.0.0.1:7100").unwrap();
        let server = thread::spawn(move || {
            let mut n = 0;
            for conn in l.incoming().take(CONNECTIONS) {
                let mut s = conn.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).unwrap();
                s.write_all(b"pong").unwrap();
                n += 1;
            }
            n
        });
        let clients: Vec<_> = (0..THREADS)
            .map(|_| {
                thread::spawn(|| {
                    for _ in 0..CONNECTIONS / THREADS {
                        let mut c = TcpStream::connect("127.0.0.1:7100").unwrap();
                        c.write_all(b"ping").unwrap();
                        let mut buf = [0u8; 4];
                        c.read_exact(&mut buf).unwrap();
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        server.join().unwrap()
    });
    assert_eq!(served, CONNECTIONS);
    // Quiet period: the last FIN/ACKs land and the agent drains its ring.
    thread::sleep(Duration::from_millis(500));
    let status = agent.status(&ns);
    let lost = status["events_lost_kernel"].as_u64().unwrap() + status["events_malformed"].as_u64().unwrap();
    let resyncs = status["resyncs"].as_u64().unwrap();
    assert!(lost == 0 || resyncs > 0, "events lost without a resync: {status}");
    // 20k connections make at least 10 transitions each.
    assert!(status["events_received"].as_u64().unwrap() >= (CONNECTIONS * 10) as u64, "{status}");
    for q in [&["-tan"][..], &["-tan", "state", "established"], &["-tln"]] {
        assert_matches_ss(&ns, &agent, q, "after churn");
    }
    // The churn left its trace: thousands of TIME-WAIT sockets (the namespace's
    // tcp_max_tw_buckets caps how many), all listed as ss lists them (checked above).
    let rows = agent_view(&ns, &agent, &["-tan"]).1;
    let tw = rows.iter().filter(|r| r.starts_with("TIME-WAIT")).count();
    assert!(tw > 1000, "expected the churn's TIME-WAIT sockets, got {tw}");
}

#[test]
fn agent_stops_cleanly_and_a_second_agent_is_refused() {
    let ns = NetNs::new("twice");
    let before = sockstat_program_ids();
    let mut agent = Agent::start(&ns, &[]);
    // This agent's programs: the sockstat programs that appeared when it started.
    let mine: Vec<u32> = sockstat_program_ids().into_iter().filter(|id| !before.contains(id)).collect();
    assert!(!mine.is_empty(), "the agent loaded no program named sockstat_*");
    let second = ns.sockstat(&["agent", "--socket", agent.socket_arg()]);
    assert!(!second.status.success(), "a second agent on the same socket started");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already serving"), "unclear refusal: {err}");
    // The first one is unharmed by the attempt.
    assert!(agent.status(&ns)["table_size"].is_u64());

    let status = agent.stop();
    assert!(status.success(), "agent exit on SIGTERM: {status}: {}", agent.log_text());
    assert!(!agent.socket.exists(), "socket file left behind");
    // Detached and unloaded: none of its programs is left in the kernel, which frees a
    // program after an RCU grace period once its last fd closes.
    let unloaded = sockstat_tests::wait_for(Duration::from_secs(5), || {
        let now = sockstat_program_ids();
        mine.iter().all(|id| !now.contains(id)).then_some(())
    });
    assert!(unloaded.is_some(), "the agent's programs {mine:?} are still loaded 5 s after it exited");
    let out = ns.sockstat(&["--source", "agent", "--socket", agent.socket_arg(), "-tan"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no sockstat agent is running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sockstat_hands_the_agent_to_its_glibc_build() {
    // `cargo xtask build` puts the musl build (`sockstat`, for queries) and the glibc one
    // beside it; `sockstat agent` replaces itself with the second (same process).
    let ns = NetNs::new("glibc");
    let agent = Agent::start(&ns, &[]);
    let pid = agent.status(&ns)["pid"].as_u64().expect("the agent's pid");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("the agent's executable");
    let sibling = sockstat::cmd::long_runs::sibling_of(&sockstat_bin());
    assert_eq!(exe, sibling.canonicalize().expect("sockstat-glibc beside sockstat"), "{}", agent.log_text());
    assert!(!agent.log_text().contains("runs in this build"), "{}", agent.log_text());
    // The build queries run in is the other one: musl, which starts faster. glibc's static
    // builds carry its ABI note section and its banner; musl's carry neither.
    let glibc = |bytes: &[u8]| {
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        has(b".note.ABI-tag") || has(b"GNU C Library")
    };
    assert!(!glibc(&std::fs::read(sockstat_bin()).expect("sockstat")), "sockstat is a glibc build");
    assert!(glibc(&std::fs::read(&sibling).expect("sockstat-glibc")), "sockstat-glibc is not a glibc build");
}

/// Ids of the loaded programs whose name starts with `sockstat_` (the kernel keeps the
/// first 15 bytes of a name).
fn sockstat_program_ids() -> Vec<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| p.name_as_str().is_some_and(|n| n.starts_with("sockstat_")))
        .map(|p| p.id())
        .collect()
}

#[test]
fn agent_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let ns = NetNs::new("perm");
    let agent = Agent::start(&ns, &[]);
    let mode = std::fs::metadata(&agent.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Another user cannot even connect; `auto` then falls back to the kernel.
    let out = ns
        .command("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(sockstat_bin())
        .args(["--source", "agent", "--socket", agent.socket_arg(), "-tan"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The agent's socket path is reachable from every namespace and its table covers every
/// namespace: a query from another namespace gets that namespace's sockets, never the
/// agent's own (more in `netns.rs`).
#[test]
fn agent_answers_another_namespace_with_its_own_sockets() {
    let ns_agent = NetNs::new("nsa");
    let ns_query = NetNs::new("nsq");
    let _mine = ns_agent.enter(|| pair("127.0.0.1:7301"));
    let _theirs = ns_query.enter(|| pair("127.0.0.1:7302"));
    let agent = Agent::start(&ns_agent, &[]);
    for source in [&["--source", "agent"][..], &[]] {
        let mut args = source.to_vec();
        args.extend(["--socket", agent.socket_arg(), "-tan"]);
        let out = ns_query.sockstat_ok(&args);
        assert_eq!(header_and_sorted_rows(&out), header_and_sorted_rows(&ns_query.ss(&["-tan"])), "{args:?}");
        assert!(out.contains(":7302") && !out.contains(":7301"), "{out}");
    }
}

/// `-p` with an agent: owners come from its owners iterator (a BPF iterator over every
/// task's files), TCP rows from its table (inodes of sockets opened after the seed filled
/// in by cookie), and the result equals `ss -p` row for row: sockets from before and after
/// the agent started, a socket shared by a process and its forked child (two owners, in
/// ss's order), UDP and UNIX sockets.
#[test]
fn process_owners_through_the_agent_equal_ss() {
    let ns = NetNs::new("owners");
    let before = ns.enter(|| pair("127.0.0.1:7101"));
    let agent = Agent::start(&ns, &[]);
    assert_eq!(agent.status(&ns)["owners_iter"], true, "the owners iterator did not load: {}", agent.log_text());
    let after = ns.enter(|| {
        let mut socks = pair("[::1]:7102");
        socks.push(std::net::UdpSocket::bind("127.0.0.1:7103").unwrap().into());
        socks
    });
    // A parent and its forked child both hold a listener and a connection; the listener
    // at even and odd descriptors (the owners iterator's two walks, merged in ss's order).
    let code = "import os,socket,sys,time\n\
        l=socket.socket(); l.bind(('127.0.0.1',7104)); l.listen(); os.dup2(l.fileno(),41); os.dup2(l.fileno(),42)\n\
        c=socket.create_connection(('127.0.0.1',7104)); a,_=l.accept()\n\
        u=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM); u.bind('\\0sockstat-owners'); u.listen()\n\
        pid=os.fork()\n\
        if pid==0:\n    time.sleep(60); os._exit(0)\n\
        print('ready',flush=True)\n\
        sys.stdin.read()\n\
        os.kill(pid,9)\n";
    let mut shared = sockstat_tests::spawn_ready(&ns, "python3", &["-c", code]);

    let rows = agent_view(&ns, &agent, &["-tanp"]).1;
    let forked = rows.iter().find(|r| r.starts_with("LISTEN") && r.contains(":7104")).expect("the shared listener");
    assert_eq!(forked.matches("(\"python3\",pid=").count(), 6, "parent and child own it thrice: {forked}");
    assert!(
        rows.iter().any(|r| r.contains("[::1]:7102") && r.contains("users:((")),
        "a socket opened after the seed has its owner: {rows:?}"
    );
    for q in [&["-tanp"][..], &["-tanp", "sport", "=", ":7104"], &["-tnp", "state", "established"]] {
        assert_matches_ss(&ns, &agent, q, "owners");
    }
    // Every table, in auto mode: UDP and UNIX rows come from the kernel, owners from the
    // agent all the same.
    for q in [&["-tuxanp"][..], &["-uanp"], &["-xanp"]] {
        eventually_equal(
            &format!("{q:?}"),
            || header_and_sorted_rows(&ns.sockstat_ok(&[&["--socket", agent.socket_arg()][..], q].concat())),
            || header_and_sorted_rows(&ns.ss(q)),
        );
    }
    drop(shared.stdin.take());
    let _ = shared.wait();
    drop((before, after));
}

/// The owners the agent keeps between `-p` queries follow every way a process gains or
/// loses a socket descriptor, or changes its name: after each step below, the agent's
/// `-tanp` equals ss's (which walks /proc afresh), and the answers came from what was
/// kept (walks of single processes), not from whole walks.
#[test]
fn kept_owners_follow_every_descriptor_change() {
    use std::io::BufRead;
    let ns = NetNs::new("keptown");
    let agent = Agent::start(&ns, &[]);
    let status = agent.status(&ns);
    assert_eq!(status["owners_kept"], true, "owners are not kept between queries: {}", agent.log_text());
    // One command per line on stdin, `ok` on stdout once done. Sockets: c0..c2 connected
    // ends, s0..s2 accepted ends, all to port 7111.
    let code = r#"
import ctypes, os, socket, sys, threading, time
l = socket.socket(); l.bind(("127.0.0.1", 7111)); l.listen()
c, s = [], []
for _ in range(3):
    c.append(socket.create_connection(("127.0.0.1", 7111))); s.append(l.accept()[0])
kids = []
def child(fn):
    pid = os.fork()
    if pid == 0:
        try: fn()
        finally: os._exit(0)
    kids.append(pid)
def reap():
    for pid in kids: os.kill(pid, 9); os.waitpid(pid, 0)
    kids.clear()
def scm():
    a, b = socket.socketpair()
    def receive():
        a.close(); socket.recv_fds(b, 1, 4); time.sleep(60)
    child(receive); b.close()
    socket.send_fds(a, [b"x"], [c[2].fileno()]); a.close()
def exec_keeping():
    def run():
        os.set_inheritable(s[1].fileno(), True); os.execvp("sleep", ["sleep", "60"])
    child(run)
steps = {
    "dup": lambda: globals().__setitem__("d", os.dup(c[0].fileno())),
    "dup2": lambda: os.dup2(s[0].fileno(), 50),
    "fcntl": lambda: globals().__setitem__("f", __import__("fcntl").fcntl(c[1].fileno(), __import__("fcntl").F_DUPFD, 70)),
    "close": lambda: os.close(d),
    "rename": lambda: ctypes.CDLL(None).prctl(15, b"kept-owners", 0, 0, 0),
    "fork": lambda: child(lambda: time.sleep(60)),
    "reap": reap,
    "scm": scm,
    "exec": exec_keeping,
    "thread-close": lambda: [t := threading.Thread(target=os.close, args=(50,)), t.start(), t.join()],
    "close-socket": lambda: s[2].close(),
    "new-connection": lambda: (c.append(socket.create_connection(("127.0.0.1", 7111))), s.append(l.accept()[0])),
}
print("ready", flush=True)
for line in sys.stdin:
    steps[line.strip()]()
    time.sleep(0.3 if line.strip() in ("scm", "exec", "close-socket") else 0)
    print("ok", flush=True)
reap()
"#;
    let mut fixture = sockstat_tests::spawn_piped(&ns, "python3", &["-c", code]);
    let mut stdin = fixture.stdin.take().expect("stdin");
    let mut stdout = std::io::BufReader::new(fixture.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the fixture's first line");
    assert_eq!(line.trim(), "ready");
    let q: &[&str] = &["-tanp", "sport = :7111 or dport = :7111"];
    // The first query walks every process; every later one starts from what was kept.
    assert_matches_ss(&ns, &agent, q, "owners at the start");
    let steps = [
        "dup",
        "dup2",
        "fcntl",
        "close",
        "rename",
        "fork",
        "reap",
        "scm",
        "reap",
        "exec",
        "reap",
        "thread-close",
        "close-socket",
        "new-connection",
    ];
    for step in steps {
        writeln!(stdin, "{step}").expect("write a step");
        line.clear();
        stdout.read_line(&mut line).expect("the step's answer");
        assert_eq!(line.trim(), "ok", "step {step}");
        // Queries made before the step by this test and by ss were processes too: what
        // changed is the fixture's table, its name, its children.
        assert_matches_ss(&ns, &agent, q, &format!("owners after {step}"));
    }
    let after = agent.status(&ns);
    let kept = after["owner_answers_kept"].as_u64().expect("owner_answers_kept");
    let whole = after["owner_walks_whole"].as_u64().expect("owner_walks_whole");
    assert!(kept >= steps.len() as u64, "answers from kept owners: {kept} of {} queries: {after}", steps.len() + 1);
    assert!(whole <= 2, "whole walks: {whole} (expected the first query's only): {after}");
    assert!(after["owner_walks_process"].as_u64().unwrap_or(0) > 0, "no process was walked again: {after}");
    drop(stdin);
    let _ = fixture.wait();
}

/// UDP, UNIX and MPTCP tables through the agent: it dumps them at query time in the namespace
/// asked about (its own, or another one through `-N`), leaving out the query's own
/// connection to it, and the answer equals ss's byte for byte.
#[test]
fn other_tables_are_dumped_by_the_agent() {
    let ns = NetNs::new("tables");
    let other = NetNs::new("tables-other");
    let dir = std::env::temp_dir().join(format!("sst-tables-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("srv.sock");
    let keep = ns.enter(move || {
        let u = std::net::UdpSocket::bind("127.0.0.1:7201").unwrap();
        let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect("127.0.0.1:7201").unwrap();
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let s = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let (a, _) = l.accept().unwrap();
        let m = Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::from(262)))
            .expect("an MPTCP socket");
        m.bind(&"127.0.0.1:7203".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
        m.listen(8).unwrap();
        (u, c, l, s, a, m)
    });
    let keep_other = other.enter(|| std::net::UdpSocket::bind("127.0.0.1:7202").unwrap());
    // Without an agent, `--source agent` cannot answer for UDP.
    let missing = ns.sockstat(&["--source", "agent", "--socket", "/nonexistent/agent.sock", "-uan"]);
    assert!(!missing.status.success(), "UDP answered without an agent");
    let agent = Agent::start(&ns, &[]);
    let with_agent =
        |q: &[&str]| ns.sockstat_ok(&[&["--source", "agent", "--socket", agent.socket_arg()][..], q].concat());
    for q in [
        &["-uan"][..],
        &["-uane"],
        &["-xa"],
        &["-xae"],
        &["-xam"],
        &["-uxan"],
        &["-xa", "src", "/tmp/*"],
        &["-Man"],
        &["-uMan", "sport", "=", ":7203"],
    ] {
        // The agent's own unix listener is in both answers; the query's connection is not.
        eventually_equal(&format!("{q:?}"), || with_agent(q), || ns.ss(q));
    }
    assert!(with_agent(&["-xa"]).contains("srv.sock"), "the test's unix sockets are listed");
    assert!(with_agent(&["-Man"]).contains("127.0.0.1:7203"), "the MPTCP listener is listed");
    // Another namespace, through -N.
    let theirs = other.ss(&["-uan"]);
    assert!(theirs.contains("127.0.0.1:7202"));
    let ours = ns.sockstat_ok(&["--source", "agent", "--socket", agent.socket_arg(), "-N", &other.name, "-uan"]);
    assert_eq!(ours, theirs, "-N through the agent");
    drop((keep, keep_other));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Clients that connect and then send nothing (or never read) hold a place among the
/// agent's concurrent clients only until their timeout: meanwhile a further client is told
/// the agent is busy and `--source auto` answers from the kernel; afterwards the agent
/// answers again. The event loop is never blocked by them.
#[test]
fn stalled_clients_are_limited_and_dropped() {
    let ns = NetNs::new("stall");
    let _socks = ns.enter(|| pair("127.0.0.1:7101"));
    let agent = Agent::start(&ns, &[]);
    // 64 is the agent's limit (live::server::MAX_CLIENTS).
    let stalled: Vec<std::os::unix::net::UnixStream> = (0..64)
        .map(|_| std::os::unix::net::UnixStream::connect(&agent.socket).expect("connect to the agent"))
        .collect();
    // The agent accepts the stalled connections from its event loop: wait until it has.
    let busy = sockstat_tests::wait_for(Duration::from_secs(5), || {
        let out = ns.sockstat(&["--source", "agent", "--socket", agent.socket_arg(), "-tan"]);
        (!out.status.success()).then_some(out)
    })
    .expect("a 65th client was served while 64 were stalled");
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(err.contains("busy"), "the refusal does not say the agent is busy: {err}");
    // auto falls back to the kernel and still prints the same rows as ss.
    let auto = ns.sockstat_ok(&["--socket", agent.socket_arg(), "-tan"]);
    assert_eq!(header_and_sorted_rows(&auto), header_and_sorted_rows(&ns.ss(&["-tan"])));
    // The stalled clients never sent a request: dropped after the request timeout (5 s).
    thread::sleep(Duration::from_secs(6));
    assert_matches_ss(&ns, &agent, &["-tan"], "after the stalled clients were dropped");
    drop(stalled);
}

/// Clients that send a request whose answer is larger than their socket's buffer and then
/// never read it hold only their own answer, until the agent's client timeout: queries of
/// other clients meanwhile are answered (more of the stalled ones than the agent makes
/// answers at once, `live::server::ANSWERS_AT_ONCE`, so their turns are not held either).
#[test]
fn clients_that_never_read_their_answer_hold_no_one_up() {
    use sockstat::wire::protocol::{MAX_RESPONSE, Request, Response, read_frame, write_frame};
    let ns = NetNs::new("noread");
    // About 10000 rows: an answer of several hundred KiB, more than a socket's send
    // buffer holds, so the agent's write of it waits for a reader.
    let socks = connections(&ns, "127.0.0.1:7102", 5000);
    let agent = Agent::start(&ns, &[]);
    let netns = ns
        .enter(|| std::fs::metadata("/proc/thread-self/ns/net").map(|m| std::os::unix::fs::MetadataExt::ino(&m)))
        .expect("netns inode") as u32;
    let stalled: Vec<std::os::unix::net::UnixStream> = (0..4)
        .map(|_| {
            let mut s = std::os::unix::net::UnixStream::connect(&agent.socket).expect("connect to the agent");
            let req = Request::Tcp { netns, families: vec![2, 10], states: 0xfff, filter: None };
            write_frame(&mut s, &req).expect("send the request");
            s
        })
        .collect();
    // Each of the stalled clients' answers is made and waiting to be written; every other
    // query still gets its answer, and it is right.
    thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        assert_matches_ss(&ns, &agent, &["-tan"], "while four clients did not read their answers");
    }
    // Had those queries waited for the stalled clients' turns, the agent would have
    // dropped the stalled clients by now (its client timeout): their answers are still
    // there, whole.
    for mut s in stalled {
        match read_frame::<Response>(&mut s, MAX_RESPONSE) {
            Ok(Response::Rows(rows)) => {
                let rows = sockstat::wire::rows::decode(&rows.0).expect("the rows decode");
                assert!(rows.len() >= 10_000, "{} rows", rows.len());
            }
            Ok(other) => panic!("a stalled client got {other:?}"),
            Err(e) => panic!("a stalled client's answer was dropped before the others were served: {e}"),
        }
    }
    drop(socks);
}

/// Large answers (rows, owner records) come in shared memory: the client maps a memory
/// file the agent hands over, read-only, and the agent writes its next answers into the
/// same files once each client closed its connection. The answers equal ss's.
#[test]
fn large_answers_come_in_a_read_only_shared_file() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use sockstat::wire::protocol::{MAX_RESPONSE, Request, Response, decode, write_frame};
    let ns = NetNs::new("shared");
    // 4000 connections: 8000 rows, an answer of about 400 KiB (shared from 256 KiB on).
    let socks = connections(&ns, "127.0.0.1:7105", 4000);
    let agent = Agent::start(&ns, &[]);
    assert_eq!(agent.status(&ns)["answers_shared"], 0);
    for q in [&["-tan"][..], &["-tanp"], &["-tn", "state", "established"], &["-tan"]] {
        assert_matches_ss(&ns, &agent, q, "answers in shared memory");
    }
    // -tan twice, -tanp (rows and owners), the state query.
    let shared = agent.status(&ns)["answers_shared"].as_u64().expect("answers_shared");
    assert_eq!(shared, 5, "answers sent in shared memory");
    // A small answer comes over the socket.
    assert_matches_ss(&ns, &agent, &["-tan", "sport", "=", ":7105", "and", "dport", "=", ":1"], "a small answer");
    assert_eq!(agent.status(&ns)["answers_shared"], shared);

    // What a client receives: a note with a descriptor of a read-only file holding the
    // answer's body.
    let netns = ns
        .enter(|| std::fs::metadata("/proc/thread-self/ns/net").map(|m| std::os::unix::fs::MetadataExt::ino(&m)))
        .expect("netns inode") as u32;
    let mut s = std::os::unix::net::UnixStream::connect(&agent.socket).expect("connect to the agent");
    let req = Request::Tcp { netns, families: vec![2, 10], states: 0xfff, filter: None };
    write_frame(&mut s, &Request::Shared(Box::new(req))).expect("send the request");
    let mut header = [0u8; 4];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let (got, fd) = {
        let mut iov = [std::io::IoSliceMut::new(&mut header)];
        let msg = nix::sys::socket::recvmsg::<()>(
            s.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            nix::sys::socket::MsgFlags::empty(),
        )
        .expect("recvmsg");
        let fd = msg.cmsgs().expect("cmsgs").find_map(|c| match c {
            nix::sys::socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
        (msg.bytes, fd)
    };
    s.read_exact(&mut header[got..]).expect("the rest of the header");
    // SAFETY: the descriptor the kernel installed for this process with the message.
    let file = unsafe { OwnedFd::from_raw_fd(fd.expect("a descriptor with the answer")) };
    let mut note = vec![0u8; usize::try_from(u32::from_le_bytes(header)).unwrap()];
    s.read_exact(&mut note).expect("the note");
    let len = match decode::<Response>(&note).expect("the note decodes") {
        Response::Shared { len } => len,
        other => panic!("expected a shared answer, got {other:?}"),
    };
    assert!(len > 256 << 10 && len < u64::from(MAX_RESPONSE), "{len} bytes");
    let mut f = std::fs::File::from(file);
    let mut body = Vec::new();
    f.read_to_end(&mut body).expect("reading the shared file");
    assert_eq!(body.len() as u64, len, "the file holds the answer's body exactly");
    let rows = sockstat::wire::protocol::rows_in(&body).expect("the body is rows");
    assert!(sockstat::wire::rows::decode(rows).expect("rows decode").len() >= 8000);
    // The client cannot change the agent's file.
    assert!(f.write_all(b"x").is_err(), "the shared file is writable by the client");
    assert!(nix::unistd::ftruncate(&f, 0).is_err(), "the shared file can be resized by the client");
    drop((f, s));
    // The files are used again: answers after this one still equal ss's.
    thread::sleep(Duration::from_millis(100));
    assert_matches_ss(&ns, &agent, &["-tanp"], "after a raw shared answer");
    drop(socks);
}
