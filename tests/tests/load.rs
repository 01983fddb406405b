//! The load drill (docs/reliability.md), run by `cargo xtask drill load`: 32 client
//! processes query the agent in a loop (`-tan`, `-tanp`, a filtered query, `status`)
//! while `cargo xtask loadgen churn` opens and closes connections as fast as it can, for
//! `SOCKSTAT_DRILL_SECONDS` (60 by default). Asserted: every query succeeds with a right
//! answer, no event is lost, the agent's resident memory stays under [`RSS_BOUND_MIB`],
//! and afterwards its table equals ss. The figures are printed (`--nocapture`).

use std::{
    collections::BTreeSet,
    net::{TcpListener, TcpStream},
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use sockstat_tests::{Agent, NetNs, header_and_sorted_rows, sockstat_bin, xtask_bin};

/// Client processes at any time (`SOCKSTAT_DRILL_CLIENTS` changes it, to find where
/// losses begin).
fn clients() -> usize {
    std::env::var("SOCKSTAT_DRILL_CLIENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(32)
}

/// The agent's resident memory may not exceed this during the drill: ten times an idle
/// agent's (25 MiB). Churn alone keeps it near 50 MiB; what queries add is the answers
/// in flight, each held whole until its client has read it.
const RSS_BOUND_MIB: u64 = 256;

/// The port of the sockets every filtered query must find, all of them.
const FIXED_PORT: u16 = 7700;
/// Established connections to [`FIXED_PORT`], held through the drill.
const FIXED_CONNECTIONS: usize = 3;

fn drill_seconds() -> u64 {
    std::env::var("SOCKSTAT_DRILL_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[derive(Default)]
struct Tally {
    queries: [AtomicU64; 4],
    failures: AtomicU64,
    first_failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut f = self.first_failures.lock().unwrap();
        if f.len() < 5 {
            f.push(what);
        }
    }
}

/// Checks one answer; `Err` says what is wrong with it.
fn check(kind: usize, out: &str) -> Result<(), String> {
    let fixed = format!("127.0.0.1:{FIXED_PORT}");
    match kind {
        0 | 1 => {
            if !out.starts_with("State") {
                return Err("no header".into());
            }
            let mine: Vec<&str> = out.lines().filter(|l| l.contains(&fixed)).collect();
            if mine.len() != 1 + 2 * FIXED_CONNECTIONS {
                return Err(format!("{} rows of the held sockets, not {}", mine.len(), 1 + 2 * FIXED_CONNECTIONS));
            }
            if kind == 1 && !mine.iter().all(|l| l.contains("users:((")) {
                return Err(format!("a held socket without its owner: {mine:?}"));
            }
        }
        2 => {
            let rows: Vec<&str> = out.lines().skip(1).collect();
            if rows.len() != 1 + 2 * FIXED_CONNECTIONS || !rows.iter().all(|l| l.contains(&fixed)) {
                return Err(format!("filtered answer: {rows:?}"));
            }
        }
        _ => {
            // Losses are asserted once, at the end, from the agent's counters.
            let v: serde_json::Value = serde_json::from_str(out).map_err(|e| format!("status JSON: {e}"))?;
            if !v["events_received"].is_u64() {
                return Err(format!("status without its counters: {v}"));
            }
        }
    }
    Ok(())
}

/// A drill of a minute and more, run by `cargo xtask drill load` (which prints its
/// figures), not by `cargo xtask test`: see docs/reliability.md for why and what it found.
#[test]
#[ignore = "a 60 s drill: run it with `cargo xtask drill load`"]
fn thirty_two_clients_query_the_agent_during_churn() {
    let seconds = drill_seconds();
    let n_clients = clients();
    let ns = NetNs::new("load");
    let xtask = xtask_bin();
    let _fixed = ns.enter(|| {
        let l = TcpListener::bind(("127.0.0.1", FIXED_PORT)).unwrap();
        let mut socks = Vec::new();
        for _ in 0..FIXED_CONNECTIONS {
            let c = TcpStream::connect(("127.0.0.1", FIXED_PORT)).unwrap();
            let (a, _) = l.accept().unwrap();
            socks.push((c, a));
        }
        (l, socks)
    });
    let agent = Agent::start(&ns, &[]);
    let lock = format!("{}.lock", agent.socket.display());
    let pid: u32 = std::fs::read_to_string(&lock).expect("agent lock file").trim().parse().expect("pid");
    let rss_start = rss_kib(pid).expect("agent RSS");

    let churn = ns
        .command(&xtask)
        .args(["loadgen", "churn", "--max-connections", "1000000000", "--seconds", &seconds.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("xtask loadgen churn");
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tally = Arc::new(Tally::default());
    let done = Arc::new(AtomicBool::new(false));
    let socket = agent.socket_arg().to_string();

    // The agent's RSS, every 250 ms.
    let sampler = {
        let done = done.clone();
        thread::spawn(move || {
            let mut samples = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    samples.push(kib);
                }
                thread::sleep(Duration::from_millis(250));
            }
            samples
        })
    };
    // The clients: threads in the namespace, each running one sockstat process after
    // another (`n_clients` client processes at any time).
    let filter = format!("sport = :{FIXED_PORT} or dport = :{FIXED_PORT}");
    let clients = {
        let (tally, socket, filter) = (tally.clone(), socket.clone(), filter.clone());
        ns.enter(move || {
            (0..n_clients)
                .map(|i| {
                    let (tally, socket, filter) = (tally.clone(), socket.clone(), filter.clone());
                    thread::spawn(move || {
                        let mut n = i;
                        while Instant::now() < deadline {
                            let kind = n % 4;
                            n += 1;
                            let mut cmd = Command::new(sockstat_bin());
                            match kind {
                                0 => cmd.args(["--source", "agent", "--socket", &socket, "-tan"]),
                                1 => cmd.args(["--source", "agent", "--socket", &socket, "-tanp"]),
                                2 => cmd.args(["--source", "agent", "--socket", &socket, "-tan", &filter]),
                                _ => cmd.args(["status", "--json", "--socket", &socket]),
                            };
                            let out = match cmd.output() {
                                Ok(o) => o,
                                Err(e) => {
                                    tally.fail(format!("spawning sockstat: {e}"));
                                    continue;
                                }
                            };
                            tally.queries[kind].fetch_add(1, Ordering::Relaxed);
                            if !out.status.success() {
                                tally.fail(format!(
                                    "query {kind} failed ({}): {}",
                                    out.status,
                                    String::from_utf8_lossy(&out.stderr)
                                ));
                            } else if let Err(e) = check(kind, &String::from_utf8_lossy(&out.stdout)) {
                                tally.fail(format!("query {kind}: {e}"));
                            }
                        }
                    })
                })
                .collect::<Vec<_>>()
        })
    };
    for c in clients {
        c.join().expect("client thread");
    }
    let churned = churn.wait_with_output().expect("churn");
    done.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let churn_line = String::from_utf8_lossy(&churned.stdout).trim().to_string();
    assert!(churned.status.success(), "loadgen churn failed: {churn_line}");

    // Quiet: the last closes land, the agent drains its ring.
    thread::sleep(Duration::from_secs(1));
    let status = agent.status(&ns);
    let rss_end = rss_kib(pid).expect("agent RSS");
    let rss_peak = samples.iter().copied().max().unwrap_or(0).max(rss_end);
    let queries: Vec<u64> = tally.queries.iter().map(|q| q.load(Ordering::Relaxed)).collect();
    eprintln!(
        "load drill: {seconds} s, {n_clients} clients; queries -tan {} -tanp {} filtered {} status {} (total {}); \
         failures {}; churn: {churn_line}; agent: events received {}, lost {} (kernel) + {} (malformed), \
         resyncs {}, timeline rows {} committed / {} dropped, table {} sockets; RSS start {} MiB, peak {} MiB, end {} MiB \
         ({} samples); events queued at most {}; kernel-skipped runs {} ({} rescued by the second transition program), \
         overflowed {}, closes unreported {}",
        queries[0],
        queries[1],
        queries[2],
        queries[3],
        queries.iter().sum::<u64>(),
        tally.failures.load(Ordering::Relaxed),
        status["events_received"],
        status["events_lost_kernel"],
        status["events_malformed"],
        status["resyncs"],
        status["timeline_committed"],
        status["timeline_dropped"],
        status["table_size"],
        rss_start / 1024,
        rss_peak / 1024,
        rss_end / 1024,
        samples.len(),
        status["events_queued_peak"],
        status["events_missed"],
        status["events_rescued"],
        status["events_overflowed"],
        status["closes_unreported"],
    );
    let failures = tally.first_failures.lock().unwrap().clone();
    assert_eq!(tally.failures.load(Ordering::Relaxed), 0, "queries failed: {failures:#?}");
    assert!(queries.iter().all(|&q| q > 0), "a kind of query never ran: {queries:?}");
    assert!(churn_line.contains("connections="), "no churn summary: {churn_line}");
    for key in ["events_lost_kernel", "events_malformed", "resyncs", "timeline_dropped"] {
        assert_eq!(status[key].as_u64(), Some(0), "{key}: {status}");
    }
    assert!(
        rss_peak / 1024 <= RSS_BOUND_MIB,
        "agent RSS peaked at {} MiB (bound {RSS_BOUND_MIB} MiB)",
        rss_peak / 1024
    );

    // Afterwards the table equals ss. TIME-WAIT sockets of the churn's first seconds
    // expire meanwhile: ss before, the agent, ss after; every row but those is the same,
    // and the agent's TIME-WAIT rows lie between ss's two lists.
    let before = header_and_sorted_rows(&ns.ss(&["-tan"]));
    let ours = header_and_sorted_rows(&ns.sockstat_ok(&["--source", "agent", "--socket", &socket, "-tan"]));
    let after = header_and_sorted_rows(&ns.ss(&["-tan"]));
    let split = |rows: &[String]| -> (BTreeSet<String>, BTreeSet<String>) {
        rows.iter().cloned().partition(|r| !r.starts_with("TIME-WAIT"))
    };
    let ((b_live, b_tw), (o_live, o_tw), (a_live, a_tw)) = (split(&before.1), split(&ours.1), split(&after.1));
    assert_eq!(ours.0, before.0, "header");
    assert!(o_live == b_live || o_live == a_live, "the agent's table differs from ss after the drill");
    assert!(
        o_tw.is_subset(&b_tw) && a_tw.is_subset(&o_tw),
        "TIME-WAIT rows: agent {} vs ss {}..{}",
        o_tw.len(),
        b_tw.len(),
        a_tw.len()
    );
}
