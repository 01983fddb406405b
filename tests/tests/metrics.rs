//! `sockstat agent --metrics ADDR:PORT`: the agent's Prometheus metrics, fetched over
//! HTTP in the test's network namespace, checked against the connections and queries
//! the test made and against `sockstat status`, checked by `promtool check metrics`,
//! and scraped by a real Prometheus (Debian's `prometheus`), whose HTTP API must then
//! answer with sockstat's series.

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use sockstat_tests::{Agent, NetNs, StatsOn, wait_for};

/// One scrape: `name{labels}` -> value, as the sample lines print them.
type Samples = HashMap<String, f64>;

fn parse(text: &str) -> Samples {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(s: &Samples, key: &str) -> f64 {
    *s.get(key).unwrap_or_else(|| {
        let mut keys: Vec<&String> = s.keys().collect();
        keys.sort();
        panic!("no sample {key} in the scrape; it has: {keys:?}")
    })
}

/// `GET path` from `port` on the namespace's loopback: (status line, headers, body).
fn get(ns: &NetNs, port: u16, path: &str, accept: &str) -> (String, String, String) {
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n\r\n");
    let raw = ns.enter(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connecting to :{port}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        s.write_all(request.as_bytes()).expect("write request");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("read response");
        raw
    });
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("not an HTTP response: {raw}"));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_owned(), headers.to_owned(), body.to_owned())
}

fn scrape(ns: &NetNs, port: u16) -> (String, Samples) {
    let (status, _, body) = get(ns, port, "/metrics", "text/plain");
    assert!(status.contains(" 200 "), "GET /metrics: {status}: {body}");
    let samples = parse(&body);
    (body, samples)
}

/// The port the agent's metrics server got (it was asked for port 0), from its log.
fn metrics_port(agent: &Agent) -> u16 {
    wait_for(Duration::from_secs(10), || {
        let log = agent.log_text();
        let at = log.find("http://127.0.0.1:")? + "http://127.0.0.1:".len();
        log[at..].split('/').next()?.parse().ok()
    })
    .unwrap_or_else(|| panic!("the agent did not log its metrics address: {}", agent.log_text()))
}

/// `n` connections made in `ns` through one listener, each held `hold` before the
/// client closes, then the server end.
fn connections(ns: &NetNs, n: usize, hold: Duration) {
    ns.enter(move || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let pairs: Vec<(TcpStream, TcpStream)> = (0..n)
            .map(|_| {
                let client = TcpStream::connect(listener.local_addr().expect("bound")).expect("connect");
                let (server, _) = listener.accept().expect("accept");
                (client, server)
            })
            .collect();
        std::thread::sleep(hold);
        for (client, server) in pairs {
            drop(client);
            // The server end reads the client's FIN before closing: a normal close on
            // both sides, each ending in CLOSE.
            let mut server = server;
            let mut buf = [0u8; 1];
            let _ = server.read(&mut buf);
        }
    });
}

/// A Prometheus server run by the test in its namespace; killed on drop, its storage
/// removed.
struct Prometheus {
    child: Child,
    dir: PathBuf,
}

impl Prometheus {
    fn start(ns: &NetNs, dir: &Path, target_port: u16, web_port: u16) -> Prometheus {
        std::fs::create_dir_all(dir.join("data")).expect("prometheus dir");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: sockstat\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .expect("prometheus.yml");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log");
        let child = ns
            .command("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run prometheus: {e} (install it with `cargo xtask setup` or `apt-get install prometheus`)"
                )
            });
        Prometheus { child, dir: dir.to_path_buf() }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // `ip netns exec` execs prometheus: the child is the server.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `q` asked of Prometheus's HTTP API: the JSON answer.
fn prometheus_query(ns: &NetNs, port: u16, q: &str) -> Option<serde_json::Value> {
    let path = format!("/api/v1/query?query={}", q.replace('{', "%7B").replace('}', "%7D").replace('"', "%22"));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let raw = ns.enter(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(request.as_bytes()).ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        Some(raw)
    })?;
    serde_json::from_str(raw.split_once("\r\n\r\n")?.1).ok()
}

#[test]
fn metrics_count_what_the_test_did_and_prometheus_scrapes_them() {
    let ns = NetNs::new("metrics");
    let agent = Agent::start(&ns, &["--metrics", "127.0.0.1:0"]);
    let port = metrics_port(&agent);
    let netns = std::fs::metadata(ns.path()).expect("netns bind mount").ino();

    let (_, before) = scrape(&ns, port);
    let status = agent.status(&ns);
    let (_, after_status) = scrape(&ns, port);
    // Each counter the status reports too comes from the same source: the status taken
    // between two scrapes lies between them.
    for (metric, field) in [
        ("sockstat_events_seen_total", "events_seen"),
        ("sockstat_events_received_total", "events_received"),
        ("sockstat_resyncs_total", "resyncs"),
        ("sockstat_timeline_rows_committed_total", "timeline_committed"),
    ] {
        let s = status[field].as_f64().unwrap_or_else(|| panic!("status has no {field}: {status}"));
        assert!(value(&before, metric) <= s && s <= value(&after_status, metric), "{metric} vs status {field} = {s}");
    }
    assert_eq!(value(&before, "sockstat_ringbuf_size_bytes"), 8_388_608.0);
    assert!(value(&before, "sockstat_ringbuf_used_bytes") <= 8_388_608.0);
    let rss = value(&before, "sockstat_agent_resident_memory_bytes");
    assert!((1e6..4e9).contains(&rss), "RSS {rss}");
    assert!(value(&before, "sockstat_agent_cpu_seconds_total") > 0.0);
    let db = std::fs::metadata(&agent.timeline).expect("timeline file").len() as f64;
    assert!(value(&before, "sockstat_timeline_file_size_bytes") >= db, "the timeline is at least its database file");

    // Connections held ~300 ms: both ends are counted, by direction, and land in the
    // duration bucket (0.1 s, 1 s]. Other namespaces' connections count too (the agent
    // sees every one), so the deltas are at least the test's. Heavy churn elsewhere on
    // the machine can overflow the ring and lose the test's events (counted, and
    // followed by a resync): then the round is made again, a bounded number of times.
    const N: usize = 10;
    let key = |m: &str, d: &str| format!("sockstat_{m}{{direction=\"{d}\"}}");
    let bucket =
        |d: &str, le: &str| format!("sockstat_connection_duration_seconds_bucket{{direction=\"{d}\",le=\"{le}\"}}");
    let lost = "sockstat_events_lost_total";
    let mut round = 0;
    let (before, after) = loop {
        round += 1;
        let (_, before) = scrape(&ns, port);
        connections(&ns, N, Duration::from_millis(300));
        let held_long = |s: &Samples, d: &str| {
            let delta = |k: &str| value(s, k) - value(&before, k);
            delta(&bucket(d, "1")) - delta(&bucket(d, "0.1"))
        };
        let after = wait_for(Duration::from_secs(10), || {
            let (_, s) = scrape(&ns, port);
            ["connect", "accept"].iter().all(|d| held_long(&s, d) >= N as f64).then_some(s)
        });
        let (text, now) = scrape(&ns, port);
        match after {
            Some(after) => break (before, after),
            None if value(&now, lost) > value(&before, lost) && round < 3 => {
                eprintln!("round {round}: events lost to other load on the machine; again");
            }
            None => panic!(
                "the {N} connections of 0.1-1 s are not in the duration histogram (round {round}, {} events lost \
                 meanwhile): {text}",
                value(&now, lost) - value(&before, lost)
            ),
        }
    };
    for d in ["connect", "accept"] {
        let delta = |k: &str| value(&after, k) - value(&before, k);
        assert!(delta(&key("connections_opened_total", d)) >= N as f64, "{d}: opened");
        assert!(delta(&key("connections_closed_total", d)) >= N as f64, "{d}: closed");
        let count = format!("sockstat_connection_duration_seconds_count{{direction=\"{d}\"}}");
        assert!(delta(&count) >= N as f64, "{d}: durations observed");
        assert_eq!(value(&after, &bucket(d, "+Inf")), value(&after, &count), "{d}: +Inf bucket holds every one");
        let sum = format!("sockstat_connection_duration_seconds_sum{{direction=\"{d}\"}}");
        assert!(delta(&sum) >= 0.3 * N as f64, "{d}: the sum holds at least the test's {N} x 0.3 s");
    }

    // Held open now: the namespace's table has this listener and both ends of each
    // connection, besides the metrics server's listener and both ends of the scrape's
    // own connection (established while the agent answers it): 1 + 6 + 1 + 2.
    let held = ns.enter(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let pairs: Vec<(TcpStream, TcpStream)> = (0..3)
            .map(|_| {
                let c = TcpStream::connect(listener.local_addr().expect("bound")).expect("connect");
                (c, listener.accept().expect("accept").0)
            })
            .collect();
        (listener, pairs)
    });
    let tracked = format!("sockstat_tracked_sockets{{netns=\"{netns}\",name=\"{}\"}}", ns.name);
    let s = wait_for(Duration::from_secs(10), || {
        let (_, s) = scrape(&ns, port);
        (s.get(&tracked) == Some(&10.0)).then_some(s)
    })
    .unwrap_or_else(|| panic!("{tracked} is not 10: {}", scrape(&ns, port).0));
    assert!(value(&s, "sockstat_tracked_sockets_by_state{state=\"established\"}") >= 6.0);
    assert!(value(&s, "sockstat_tracked_sockets_by_state{state=\"listen\"}") >= 1.0);
    drop(held);

    // Queries: the agent's socket is the test's alone, so these are exact.
    let queries = "sockstat_query_duration_seconds_count{request=\"tcp\"}";
    let (_, q0) = scrape(&ns, port);
    for _ in 0..3 {
        ns.sockstat_ok(&["--source", "agent", "--socket", agent.socket_arg(), "-tan"]);
    }
    let (text, q1) = scrape(&ns, port);
    assert_eq!(value(&q1, queries) - value(&q0, queries), 3.0, "{text}");

    // The classic text format passes promtool's checks; Prometheus gets OpenMetrics.
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool: {e} (`cargo xtask setup` or `apt-get install prometheus`)"));
    promtool.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("feed promtool");
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (status_line, headers, body) = get(&ns, port, "/metrics", "application/openmetrics-text;version=1.0.0");
    assert!(status_line.contains(" 200 "), "{status_line}");
    assert!(headers.to_ascii_lowercase().contains("content-type: application/openmetrics-text"), "{headers}");
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF: {body}");
    assert!(get(&ns, port, "/nothing", "*/*").0.contains(" 404 "));

    // The programs' cost, present while the kernel counts it.
    {
        let _stats = StatsOn::enable();
        connections(&ns, 2, Duration::ZERO);
        let runs = "sockstat_bpf_program_runs_total{program=\"sockstat_set_state\",role=\"transition\"}";
        let time = "sockstat_bpf_program_run_time_seconds_total{program=\"sockstat_set_state\",role=\"transition\"}";
        let s = wait_for(Duration::from_secs(10), || {
            let (_, s) = scrape(&ns, port);
            s.get(runs).is_some_and(|&v| v > 0.0).then_some(s)
        })
        .unwrap_or_else(|| panic!("no {runs} > 0 with stats on: {}", scrape(&ns, port).0));
        assert_eq!(value(&s, "sockstat_bpf_stats_enabled"), 1.0);
        assert!(value(&s, time) > 0.0, "{time}");
    }

    // A real Prometheus scraping the agent, asked through its HTTP API.
    let dir = std::env::temp_dir().join(format!("{}-prometheus", ns.name));
    let prometheus = Prometheus::start(&ns, &dir, port, 9090);
    let opened = wait_for(Duration::from_secs(60), || {
        let answer = prometheus_query(&ns, 9090, "sockstat_connections_opened_total{direction=\"accept\"}")?;
        let result = answer["data"]["result"].as_array()?.first()?.clone();
        result["value"][1].as_str()?.parse::<f64>().ok()
    })
    .unwrap_or_else(|| panic!("Prometheus has no sockstat series after 60 s: {}", prometheus.log()));
    assert!(opened >= N as f64, "Prometheus saw {opened} accepted connections");
    let up = prometheus_query(&ns, 9090, "up{job=\"sockstat\"}").expect("query up");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
}
