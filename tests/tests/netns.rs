//! One agent, every network namespace: an agent started in one namespace answers for
//! sockets of others (made before it started and after, and in a namespace created
//! after it started), through `-N NAME` and from inside the namespace, exactly as `ss`
//! run there; and forgets a namespace once it is gone.

use std::{
    io::Read,
    net::{TcpListener, TcpStream},
    os::unix::fs::MetadataExt,
    process::Command,
    thread,
    time::Duration,
};

use socket2::Socket;
use sockstat_tests::{Agent, NetNs, header_and_sorted_rows, sockstat_bin, wait_for};

/// A listener, a client and the accepted end, kept open by the caller.
fn pair(listen: &str) -> Vec<Socket> {
    let l = TcpListener::bind(listen).unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (a, _) = l.accept().unwrap();
    vec![l.into(), c.into(), a.into()]
}

/// A connection closed by its client first: its tuple lingers in TIME-WAIT, a
/// mini-socket only a dump in that namespace lists.
fn time_wait(listen: &str) {
    let l = TcpListener::bind(listen).unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut a, _) = l.accept().unwrap();
    drop(c);
    let mut buf = [0u8; 8];
    assert_eq!(a.read(&mut buf).unwrap(), 0);
}

fn inode(ns: &NetNs) -> u64 {
    std::fs::metadata(format!("/run/netns/{}", ns.name)).expect("the test namespace exists").ino()
}

/// `sockstat --source agent -N NAME ARGS`, run from the test's own namespace.
fn with_dash_n(agent: &Agent, ns: &NetNs, q: &[&str]) -> String {
    let out = Command::new(sockstat_bin())
        .args(["--source", "agent", "--socket", agent.socket_arg(), "-N", &ns.name])
        .args(q)
        .output()
        .expect("run sockstat");
    assert!(out.status.success(), "sockstat -N {} {q:?}: {}", ns.name, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// `ip netns exec NAME sockstat --source agent ARGS`.
fn from_inside(agent: &Agent, ns: &NetNs, q: &[&str]) -> String {
    let mut args = vec!["--source", "agent", "--socket", agent.socket_arg()];
    args.extend_from_slice(q);
    ns.sockstat_ok(&args)
}

/// Both ways of asking the agent about `ns` equal `ss` run in `ns` (header, and rows
/// sorted: the agent's row order is documented to differ). Returns the rows.
fn assert_agent_equals_ss(agent: &Agent, ns: &NetNs, q: &[&str]) -> Vec<String> {
    let theirs = header_and_sorted_rows(&ns.ss(q));
    assert_eq!(header_and_sorted_rows(&with_dash_n(agent, ns, q)), theirs, "-N {}: {q:?}", ns.name);
    assert_eq!(header_and_sorted_rows(&from_inside(agent, ns, q)), theirs, "inside {}: {q:?}", ns.name);
    theirs.1
}

fn namespace_sockets(agent: &Agent, where_: &NetNs, netns: u64) -> Option<u64> {
    let status = agent.status(where_);
    status["namespaces"].as_array()?.iter().find(|n| n["netns"].as_u64() == Some(netns))?["sockets"].as_u64()
}

#[test]
fn agent_answers_for_every_namespace_like_ss_there() {
    let home = NetNs::new("nshome");
    let b = NetNs::new("nsb");
    let c = NetNs::new("nsc");
    let blackhole = c.blackhole();
    let _home = home.enter(|| pair("127.0.0.1:7600"));
    // Before the agent: seeded from a dump of each namespace.
    let _b_before = b.enter(|| pair("127.0.0.1:7601"));
    let _c_before = c.enter(|| pair("[::1]:7602"));
    let agent = Agent::start(&home, &[]);
    // After: streamed, each into its namespace's part of the table.
    let _b_after = b.enter(|| pair("[::1]:7611"));
    let _c_after = c.enter(|| pair("127.0.0.1:7612"));
    // A namespace created after the agent started: seeded when its first event arrives.
    let d = NetNs::new("nsd");
    let d_socks = d.enter(|| pair("127.0.0.1:7613"));
    let d_ino = inode(&d);
    let tracked = wait_for(Duration::from_secs(10), || (namespace_sockets(&agent, &home, d_ino)? == 3).then_some(()));
    assert!(tracked.is_some(), "namespace {d_ino} not tracked with its 3 sockets: {}", agent.status(&home));
    // Mini-sockets, dumped at query time in the namespace asked about: TIME-WAIT in b,
    // SYN-SENT in c.
    b.enter(|| time_wait("127.0.0.1:7620"));
    let _syn_sent = c.enter(move || {
        let s = Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&blackhole.into());
        s
    });
    thread::sleep(Duration::from_millis(100));

    let ports = ["7600", "7601", "7602", "7611", "7612", "7613", "7620"];
    for (ns, mine) in [(&b, &["7601", "7611", "7620"][..]), (&c, &["7602", "7612"]), (&d, &["7613"])] {
        for q in [&["-tan"][..], &["-tln"], &["-tan", "state", "established"], &["-tan", "sport", "=", ":7611"]] {
            assert_agent_equals_ss(&agent, ns, q);
        }
        let rows = assert_agent_equals_ss(&agent, ns, &["-tan"]);
        for port in ports {
            // ss 7.1 does not pad the peer port at the end of a line.
            let shown = rows.iter().any(|r| r.contains(&format!(":{port} ")) || r.ends_with(&format!(":{port}")));
            assert_eq!(shown, mine.contains(&port), "{}: port {port} in {rows:?}", ns.name);
        }
    }
    let b_rows = assert_agent_equals_ss(&agent, &b, &["-tan"]);
    assert!(b_rows.iter().any(|r| r.starts_with("TIME-WAIT")), "{b_rows:?}");
    let c_rows = assert_agent_equals_ss(&agent, &c, &["-tan"]);
    assert!(c_rows.iter().any(|r| r.starts_with("SYN-SENT")), "{c_rows:?}");
    // The agent's own namespace still gets its own sockets only.
    assert_agent_equals_ss(&agent, &home, &["-tan"]);

    let status = agent.status(&home);
    // c also holds its SYN-SENT socket (in the table, listed from the kernel).
    for (ns, sockets) in [(&b, 6), (&c, 7), (&d, 3), (&home, 3)] {
        assert_eq!(namespace_sockets(&agent, &home, inode(ns)), Some(sockets), "{}: {status}", ns.name);
    }
    let names: Vec<&str> = status["namespaces"].as_array().unwrap().iter().filter_map(|n| n["name"].as_str()).collect();
    assert!(names.contains(&b.name.as_str()), "{status}");

    // A namespace whose sockets are closed and whose name is deleted is gone: forgotten.
    drop(d_socks);
    drop(d);
    let gone = wait_for(Duration::from_secs(15), || namespace_sockets(&agent, &home, d_ino).is_none().then_some(()));
    assert!(gone.is_some(), "namespace {d_ino} still tracked after it was deleted: {}", agent.status(&home));
}

/// `auto` uses the agent for other namespaces too, and says nothing different from ss;
/// so does `--at`, from the timeline, which records every namespace.
#[test]
fn auto_from_another_namespace_equals_ss_and_so_does_at() {
    let home = NetNs::new("nsauto");
    let other = NetNs::new("nsauto2");
    let agent = Agent::start(&home, &[]);
    let _socks = other.enter(|| pair("127.0.0.1:7630"));
    let ours = other.sockstat_ok(&["--socket", agent.socket_arg(), "-tan"]);
    assert_eq!(header_and_sorted_rows(&ours), header_and_sorted_rows(&other.ss(&["-tan"])));
    assert!(ours.contains(":7630"), "{ours}");
    // The timeline records every namespace: --at elsewhere answers for that namespace
    // (its own sockets, not the agent's), once the writer has committed them.
    let timeline = agent.timeline.to_str().unwrap();
    let want = header_and_sorted_rows(&other.ss(&["-tan"]));
    let at = wait_for(Duration::from_secs(5), || {
        let past = header_and_sorted_rows(&other.sockstat_ok(&["--at", "now", "--timeline", timeline, "-tan"]));
        (past == want).then_some(past)
    });
    assert!(at.is_some(), "--at now in {} never matched ss: {want:?}", other.name);
    let home_now = home.sockstat_ok(&["--at", "now", "--timeline", timeline, "-tan"]);
    assert!(!home_now.contains(":7630"), "{home_now}");
}
