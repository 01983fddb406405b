//! `sockstat trace` sees every transition of connections too short-lived for any poller.

use std::{
    io::{BufRead, BufReader, Read},
    net::{TcpListener, TcpStream},
    process::{Child, Stdio},
    thread,
    time::Duration,
};

use sockstat_tests::NetNs;

const CLIENT_PATH: &[(&str, &str)] = &[
    ("CLOSE", "SYN_SENT"),
    ("SYN_SENT", "ESTABLISHED"),
    ("ESTABLISHED", "FIN_WAIT1"),
    ("FIN_WAIT1", "FIN_WAIT2"),
    ("FIN_WAIT2", "CLOSE"),
];
const SERVER_PATH: &[(&str, &str)] = &[
    ("LISTEN", "SYN_RECV"),
    ("SYN_RECV", "ESTABLISHED"),
    ("ESTABLISHED", "CLOSE_WAIT"),
    ("CLOSE_WAIT", "LAST_ACK"),
    ("LAST_ACK", "CLOSE"),
];

/// `sockstat trace ARGS` in `ns`, attached (its first line on stderr says so), its
/// stdout read on a thread (a full pipe would stall the tracer).
fn start_trace(ns: &NetNs, args: &[&str]) -> (Child, thread::JoinHandle<String>) {
    let mut child = ns
        .command(sockstat_tests::sockstat_bin())
        .arg("trace")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockstat trace");
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        out
    });
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("attached"), "sockstat trace did not attach: {line}");
    (child, reader)
}

/// Stops a trace with SIGINT, once what it saw had time to come through; its events.
fn stop_trace((mut child, reader): (Child, thread::JoinHandle<String>)) -> Vec<serde_json::Value> {
    thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let out = reader.join().unwrap();
    assert!(child.wait().unwrap().success());
    out.lines().map(|l| serde_json::from_str(l).expect("NDJSON line")).collect()
}

#[test]
fn every_transition_of_sub_millisecond_connections() {
    const ROUNDS: usize = 20;
    let ns = NetNs::new("trace");
    let trace = start_trace(&ns, &["--json"]);

    // Connections that open and close within a few hundred microseconds on loopback.
    let ports: Vec<u16> = ns.enter(|| {
        let l = TcpListener::bind("127.0.0.1:7200").unwrap();
        (0..ROUNDS)
            .map(|_| {
                let c = TcpStream::connect("127.0.0.1:7200").unwrap();
                let (mut a, _) = l.accept().unwrap();
                let port = c.local_addr().unwrap().port();
                // A plain close (shutdown() and then close() would make the kernel set
                // FIN_WAIT1 twice, and the trace faithfully shows both).
                drop(c);
                let mut b = [0u8; 1];
                assert_eq!(a.read(&mut b).unwrap(), 0);
                drop(a);
                port
            })
            .collect()
    });
    let events = stop_trace(trace);
    let mut shortest = u64::MAX;
    for port in ports {
        let client: Vec<&serde_json::Value> =
            events.iter().filter(|e| e["sport"] == port && e["dport"] == 7200).collect();
        let server_tuple: Vec<&serde_json::Value> =
            events.iter().filter(|e| e["sport"] == 7200 && e["dport"] == port).collect();
        let path = |evs: &[&serde_json::Value]| -> Vec<(String, String)> {
            evs.iter()
                .map(|e| (e["old"].as_str().unwrap().to_string(), e["new"].as_str().unwrap().to_string()))
                .collect()
        };
        let want = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };
        // A connection's first transition fires before the kernel has filled in the
        // tuple (CLOSE->SYN_SENT before connect() picks the port; LISTEN->SYN_RECV while
        // the child still has the listener's), so sockets are followed by cookie.
        let by_cookie = |evs: &[&serde_json::Value], side: &str| -> Vec<&serde_json::Value> {
            let cookie = &evs.first().unwrap_or_else(|| panic!("no {side} events for client port {port}"))["cookie"];
            events.iter().filter(|e| &e["cookie"] == cookie).collect()
        };
        let client_all = by_cookie(&client, "client");
        let server = by_cookie(&server_tuple, "server");
        assert_eq!(path(&client_all), want(CLIENT_PATH), "client {port}");
        assert_eq!(path(&server), want(SERVER_PATH), "server side of {port}");
        let first = client_all.first().unwrap()["ts_ns"].as_u64().unwrap();
        let last = server.last().unwrap()["ts_ns"]
            .as_u64()
            .unwrap()
            .max(client_all.last().unwrap()["ts_ns"].as_u64().unwrap());
        shortest = shortest.min(last - first);
    }
    // The point of the test: connections that lived less than a millisecond.
    assert!(
        shortest < 1_000_000,
        "no connection lived under 1 ms (shortest {shortest} ns); the machine is too loaded to show it"
    );
}

#[test]
fn trace_takes_the_ss_filter_language() {
    let ns = NetNs::new("tfilt");
    let trace = start_trace(&ns, &["--json", "state", "established", "dport", "=", ":7211"]);
    ns.enter(|| {
        for port in [7210u16, 7211] {
            let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
            let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (a, _) = l.accept().unwrap();
            drop((c, a));
        }
    });
    let events = stop_trace(trace);
    assert!(!events.is_empty());
    // The STATE-FILTER applies to the state entered, the expression to the tuple: only
    // the client side of the 7211 connection entering ESTABLISHED passes.
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0]["dport"].as_u64(), events[0]["new"].as_str()), (Some(7211), Some("ESTABLISHED")));

    // A malformed filter is refused with ss's message and status.
    let bad = ns.sockstat(&["trace", "dport", "=", ":80", ")"]);
    assert!(!bad.status.success());
    assert!(!String::from_utf8_lossy(&bad.stderr).is_empty());
}

/// Each CPU writes to a ring of its own, and a connection's events are made on several
/// CPUs (a process's system calls on one, the softirqs its peer's packets raise on
/// another): the trace puts them back in the order they happened. Thousands of
/// connections from `xtask loadgen churn` (client and server threads, spread over the
/// CPUs): every socket's transitions chain (each one leaves the state the one before
/// entered), and every connection shows both ends' whole paths.
#[test]
fn a_sockets_transitions_made_on_several_cpus_come_in_order() {
    let ns = NetNs::new("tcpus");
    let trace = start_trace(&ns, &["--json"]);
    let (connections, summary) =
        sockstat_tests::churn(&ns, &["--max-connections", "5000", "--seconds", "10", "--workers", "4"]);
    let events = stop_trace(trace);
    let mut by_cookie: std::collections::BTreeMap<u64, Vec<(&str, &str)>> = std::collections::BTreeMap::new();
    for e in &events {
        by_cookie
            .entry(e["cookie"].as_u64().expect("cookie"))
            .or_default()
            .push((e["old"].as_str().expect("old"), e["new"].as_str().expect("new")));
    }
    let mut whole = 0;
    for (cookie, path) in &by_cookie {
        for pair in path.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "socket {cookie}: out of order: {path:?}");
        }
        let path: Vec<(&str, &str)> = path.clone();
        if path == CLIENT_PATH || path == SERVER_PATH {
            whole += 1;
        }
    }
    assert!(connections >= 1000, "too few connections: {summary}");
    assert_eq!(
        whole as u64,
        2 * connections,
        "both ends' whole paths of every connection ({} sockets traced)",
        by_cookie.len()
    );
}
