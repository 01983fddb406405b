//! `sockstat status` and the programs whose cost it reports: the kernel's statistics of
//! each program while stats are on, and the accept hook's events, which must carry the
//! same content whichever way the programs read the kernel's structures (through
//! `bpf_rdonly_cast`, or through helper calls on kernels without it).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::fs::MetadataExt,
    time::Duration,
};

use sockstat::bpf::{
    loader::{LoadOptions, StateEvent, Tracer},
    stream::{Transition, kernel_state_name},
};
use sockstat_tests::{Agent, NetNs, StatsOn, wait_for};

/// `n` loopback connections accepted in `ns`, each carrying a few bytes each way.
fn connections(ns: &NetNs, n: usize) {
    ns.enter(move || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        for _ in 0..n {
            let mut client = TcpStream::connect(listener.local_addr().expect("bound")).expect("connect");
            let (mut server, _) = listener.accept().expect("accept");
            client.write_all(b"ping").expect("write");
            let mut buf = [0u8; 4];
            server.read_exact(&mut buf).expect("read");
            server.write_all(&buf).expect("echo");
            client.read_exact(&mut buf).expect("read echo");
        }
    });
}

fn program<'a>(status: &'a serde_json::Value, role: &str) -> Option<&'a serde_json::Value> {
    status["programs"].as_array()?.iter().find(|p| p["role"] == role)
}

#[test]
fn status_reports_each_programs_cost_while_stats_are_on() {
    let ns = NetNs::new("status");
    let agent = Agent::start(&ns, &[]);
    let stats = StatsOn::enable();
    connections(&ns, 20);
    let status = wait_for(Duration::from_secs(10), || {
        let s = agent.status(&ns);
        let counted = ["transition", "accept hook"]
            .iter()
            .all(|role| program(&s, role).and_then(|p| p["run_count"].as_u64()).is_some_and(|n| n > 0));
        counted.then_some(s)
    })
    .unwrap_or_else(|| panic!("no runs counted for the transition program and the accept hook: {}", agent.status(&ns)));
    assert_eq!(status["bpf_stats"], true, "{status}");
    let transition = program(&status, "transition").expect("checked above");
    assert_eq!(transition["name"], "sockstat_set_state", "{transition}");
    assert!(transition["id"].as_u64().is_some_and(|id| id > 0), "{transition}");
    // 20 connections make at least 4 transitions each (both ends' SYN and ESTABLISHED).
    assert!(transition["run_count"].as_u64().is_some_and(|n| n >= 80), "{transition}");
    assert!(transition["ns_per_run"].as_u64().is_some_and(|ns| ns > 0), "{transition}");
    assert!(transition["run_time_ns"].as_u64().is_some_and(|t| t > 0), "{transition}");
    let accept = program(&status, "accept hook").expect("checked above");
    assert!(accept["run_count"].as_u64().is_some_and(|n| n >= 20), "{accept}");
    assert!(accept["ns_per_run"].as_u64().is_some_and(|ns| ns > 0), "{accept}");
    let text = ns.sockstat_ok(&["status", "--socket", agent.socket_arg()]);
    assert!(text.contains("program cost:     stats on"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("  transition:") && l.contains(" ns per run, ") && l.contains(" runs/s")),
        "{text}"
    );
    drop(stats);
}

/// What a process that accepted a connection knows of it, to compare with the event.
struct Accepted {
    listen: SocketAddr,
    client: SocketAddr,
    tid: u32,
    comm: String,
    /// Kept open until the events are read.
    _sockets: (TcpListener, TcpStream, TcpStream),
}

/// A connection accepted in `ns` after its client sent 5 bytes, which nobody reads.
fn accept_one(ns: &NetNs) -> Accepted {
    ns.enter(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("bound")).expect("connect");
        client.write_all(b"hello").expect("write");
        // The bytes are queued at the server's end before accept() returns it.
        std::thread::sleep(Duration::from_millis(50));
        let (server, _) = listener.accept().expect("accept");
        let comm = std::fs::read_to_string("/proc/thread-self/comm").expect("comm");
        Accepted {
            listen: listener.local_addr().expect("bound"),
            client: client.local_addr().expect("connected"),
            tid: u32::try_from(nix::unistd::gettid().as_raw()).expect("tid"),
            comm: comm.trim_end().to_string(),
            _sockets: (listener, client, server),
        }
    })
}

/// The accept event and the server end's transitions for one connection, read from a
/// tracer loaded with or without casts.
fn events_of_one_connection(ns: &NetNs, casts: bool) -> (Accepted, StateEvent, Vec<Transition>) {
    let mut tracer = Tracer::load_with_casts(LoadOptions::default(), casts)
        .unwrap_or_else(|e| panic!("loading the programs (casts: {casts}): {e:?}"));
    assert_eq!(tracer.casts(), casts);
    assert!(tracer.accept_hook, "the accept hook did not attach (casts: {casts})");
    let mut events = tracer.take_events().expect("ring buffers");
    let conn = accept_one(ns);
    let mut transitions = Vec::new();
    let accept = wait_for(Duration::from_secs(10), || {
        let mut found = None;
        // Each CPU writes to a ring of its own: every ring, then time order.
        for ring in &mut events.rings {
            while let Some(item) = ring.next() {
                let ev = StateEvent::from_bytes(&item).expect("whole events");
                let t = Transition::from_event(&ev);
                // The server's end: local port the listener's, peer the client's.
                if t.sport != conn.listen.port() || t.dport != conn.client.port() {
                    continue;
                }
                if t.accept {
                    found = Some(ev);
                } else {
                    transitions.push(t);
                }
            }
        }
        found
    })
    .unwrap_or_else(|| panic!("no accept event for {:?} (casts: {casts})", conn.client));
    transitions.sort_by_key(|t| t.ts_ns);
    (conn, accept, transitions)
}

#[test]
fn accept_events_are_the_same_with_and_without_casts() {
    let ns = NetNs::new("casts");
    let netns = u32::try_from(std::fs::metadata(ns.path()).expect("netns").ino()).expect("inode");
    let lo: std::net::IpAddr = "127.0.0.1".parse().expect("literal");
    for casts in [true, false] {
        let (conn, ev, transitions) = events_of_one_connection(&ns, casts);
        let t = Transition::from_event(&ev);
        let what = format!("casts: {casts}, {t:?}");
        assert!(t.accept && (t.old, t.new) == (0, 0), "{what}");
        assert_eq!((t.family, t.src, t.dst, t.v6only, t.ifindex), (2, lo, lo, false, 0), "{what}");
        assert_eq!((ev.protocol, &ev.saddr[4..], &ev.daddr[4..]), (6, &[0; 12][..], &[0; 12][..]), "{what}");
        assert_eq!(t.netns, netns, "{what}");
        // The accepting thread, as bpf_get_current_pid_tgid and _comm would give it.
        assert_eq!((t.pid, t.tid, &*t.comm.text()), (std::process::id(), conn.tid, conn.comm.as_str()), "{what}");
        assert!(ev.comm[t.comm.bytes().len()..].iter().all(|&b| b == 0), "comm NUL-padded: {what}");
        // The 5 bytes wait in the receive queue; nothing was sent back.
        assert_eq!((t.rqueue, t.wqueue, t.bytes_received, t.bytes_acked), (5, 0, 5, 0), "{what}");
        // An accept notice carries no close-time fields and no cgroup (its transitions do).
        assert_eq!(
            (ev.ack_backlog, ev.max_ack_backlog, ev._pad, ev.error, ev.retrans, ev.srtt_us),
            (0, 0, 0, 0, 0, 0),
            "{what}"
        );
        // The cookie is the one the server end's transitions carry.
        let established = transitions
            .iter()
            .find(|t| kernel_state_name(t.new) == "ESTABLISHED")
            .unwrap_or_else(|| panic!("no ESTABLISHED transition of the server end: {transitions:?}"));
        assert!(t.cookie != 0 && t.cookie == established.cookie, "{what} / {established:?}");
        assert_eq!((established.netns, established.src, established.dst), (netns, lo, lo), "{established:?}");
    }
}

/// A transition in a softirq that interrupts the transition program on its CPU (a timer
/// or an interrupt ending in the network's softirq, which loopback traffic keeps busy) is
/// one the kernel does not run that program for. The second program runs it: nothing is
/// lost, the table needs no resync, and the status counts it as rescued.
#[test]
fn transitions_that_interrupt_the_program_are_run_by_its_second() {
    const ROUNDS: u16 = 10;
    const CONNECTIONS: &str = "20000";
    let ns = NetNs::new("nested");
    // Client ports from a range the listeners are not in, and no reuse of a timewait
    // port: each round makes its TIME-WAIT sockets anew.
    ns.sysctl("net.ipv4.ip_local_port_range", "32768 60999");
    ns.sysctl("net.ipv4.tcp_tw_reuse", "0");
    let agent = Agent::start(&ns, &[]);
    let status = agent.status(&ns);
    assert!(
        program(&status, "transition, nested").is_some(),
        "the second transition program is not attached: {status}"
    );
    let mut rounds = 0;
    let rescued = loop {
        rounds += 1;
        let base = (20_000 + rounds * 10).to_string();
        let out = ns
            .command(sockstat_tests::xtask_bin())
            .args(["loadgen", "time-wait", "--connections", CONNECTIONS, "--ports", "4", "--port-base", &base])
            .args(["--seconds", "30"])
            .output()
            .expect("xtask loadgen time-wait");
        assert!(out.status.success(), "loadgen time-wait: {}", String::from_utf8_lossy(&out.stderr));
        let rescued = agent.status(&ns)["events_rescued"].as_u64().expect("status has events_rescued");
        if rescued > 0 || rounds == ROUNDS {
            break rescued;
        }
    };
    assert!(
        rescued > 0,
        "no transition interrupted the transition program in {rounds} rounds of {CONNECTIONS} connections: \
         the second program was not put to work, and this test checks nothing"
    );
    let caught_up = wait_for(Duration::from_secs(20), || {
        let s = agent.status(&ns);
        let n = |k: &str| s[k].as_u64().unwrap_or(0);
        (n("events_received") + n("events_lost_kernel") >= n("events_seen")).then_some(s)
    })
    .unwrap_or_else(|| panic!("agent did not catch up: {}", agent.log_text()));
    assert_eq!(caught_up["events_missed"], 0, "transitions lost after {rescued} rescued: {caught_up}");
    // A few in a thousand at most: the second program runs only what the first did not
    // (run first, it would run everything again).
    let seen = caught_up["events_seen"].as_u64().expect("status has events_seen");
    assert!(rescued * 100 < seen, "{rescued} of {seen} transitions run by the second program: {caught_up}");
    assert_eq!(caught_up["events_lost_kernel"], 0, "{caught_up}");
    assert_eq!(caught_up["resyncs"], 0, "{caught_up}");
}
