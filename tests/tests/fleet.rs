//! `sockstat agent --nats URL` and `history --nats URL`: the fleet export to a real
//! NATS JetStream server (Debian's `nats-server`, run by the test in its namespace with
//! `-js` and a store directory of its own). Each test makes real loopback connections
//! through one listener and checks that the stream holds every one of their lifetimes
//! exactly once (each socket's cookie once, the set of client ports the test made), as
//! `history --nats` lists them with their host: across a server stopped and restarted
//! mid-stream (the timeline holds the records meanwhile), across agent restarts (the
//! cursor in the timeline), and with a server that is not there at first. Where the
//! agent reports lost events (a gap in its timeline: the kernel refused ring space, or
//! skipped a program run), the stream must hold exactly what its timeline holds.

use std::{
    collections::BTreeMap,
    io::Read,
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use sockstat_tests::{Agent, NetNs, path_str, wait_for};

/// A nats-server with JetStream in the test's namespace; killed on drop, its store
/// removed.
struct NatsServer {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
}

impl NatsServer {
    fn start(ns: &NetNs, dir: &Path, port: u16) -> NatsServer {
        std::fs::create_dir_all(dir.join("store")).expect("nats store dir");
        let mut s = NatsServer { child: None, dir: dir.to_path_buf(), port };
        s.restart(ns);
        s
    }

    /// Starts the server (again) on the same port and store.
    fn restart(&mut self, ns: &NetNs) {
        assert!(self.child.is_none(), "nats-server is running already");
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("nats.log")).expect("nats log");
        let child = ns
            .command("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(self.dir.join("store"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run nats-server: {e} (install it with `cargo xtask setup` or `apt-get install nats-server`)"
                )
            });
        self.child = Some(child);
        let port = self.port;
        let up = wait_for(Duration::from_secs(20), || {
            ns.enter(move || TcpStream::connect(("127.0.0.1", port)).is_ok()).then_some(())
        });
        assert!(up.is_some(), "nats-server did not listen on :{port} within 20 s: {}", self.log());
    }

    /// SIGKILL: no clean shutdown.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("nats-server running");
        // `ip netns exec` execs nats-server: the child is the server.
        let _ = child.kill();
        let _ = child.wait();
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("nats.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

thread_local! {
    /// When the test's NATS server started (RFC 3339): the start of every window asked.
    static SINCE: std::cell::RefCell<String> = std::cell::RefCell::new(String::from("-1h"));
}

/// A free port on the namespace's loopback.
fn free_port(ns: &NetNs) -> u16 {
    ns.enter(|| TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("bound").port())
}

/// A listener in `ns` that accepts and then closes after the client did; returns its
/// port. The thread ends when the test's namespace goes.
fn listener(ns: &NetNs) -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = ns.path();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).expect("netns handle");
        nix::sched::setns(std::os::fd::AsFd::as_fd(&f), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        tx.send(l.local_addr().expect("bound").port()).expect("port");
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                // Read to the client's FIN, then close: both ends end in CLOSE.
                let mut buf = [0u8; 64];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    rx.recv().expect("listener port")
}

/// `n` connections to `port`, one after the other, `pause` apart; returns the client
/// ports.
fn connect(ns: &NetNs, port: u16, n: usize, pause: Duration) -> Vec<u16> {
    ns.enter(move || {
        (0..n)
            .map(|_| {
                let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                let local = c.local_addr().expect("local").port();
                drop(c);
                std::thread::sleep(pause);
                local
            })
            .collect()
    })
}

/// The lifetimes `history --nats --json` lists for connections to `port` in `ns`:
/// cookie -> (host, client port) per client end; also every server end's cookie.
struct Listed {
    clients: BTreeMap<u64, Vec<(String, u16)>>,
    servers: BTreeMap<u64, usize>,
}

fn listed(ns: &NetNs, url: &str, port: u16, extra: &[&str]) -> Listed {
    // The agent exports every namespace's connections, other tests' too: the window
    // starts with the test's server, so the answer reads only what was stored since.
    let since = SINCE.with(|s| s.borrow().clone());
    let mut args = vec!["history", "--nats", url, "--netns", &ns.name, "--json", "--since", &since];
    args.extend_from_slice(extra);
    let out = ns.sockstat(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    // A server the agent has not reached yet has no stream.
    if !out.status.success() && err.contains("has no JetStream stream") {
        return Listed { clients: BTreeMap::new(), servers: BTreeMap::new() };
    }
    assert!(out.status.success(), "sockstat {args:?}: {err}");
    parse_listed(&String::from_utf8_lossy(&out.stdout), port)
}

fn parse_listed(out: &str, port: u16) -> Listed {
    let mut l = Listed { clients: BTreeMap::new(), servers: BTreeMap::new() };
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["type"] != "lifetime" {
            continue;
        }
        let host = v["host"].as_str().map(str::to_string).unwrap_or_default();
        let cookie = v["cookie"].as_u64().expect("cookie");
        if v["dport"] == port {
            l.clients.entry(cookie).or_default().push((host, u16::try_from(v["sport"].as_u64().unwrap()).unwrap()));
        } else if v["sport"] == port {
            *l.servers.entry(cookie).or_default() += 1;
        }
    }
    l
}

/// What the agent's own timeline holds for connections to `port` (no host: the local
/// records carry none), and the events it says it lost since the test began (its gaps;
/// the time no agent ran is a gap that lost none).
fn local(ns: &NetNs, agent: &Agent, port: u16) -> (Listed, u64) {
    let since = SINCE.with(|s| s.borrow().clone());
    let args = ["history", "--json", "--netns", &ns.name, "--timeline", path_str(&agent.timeline), "--since", &since];
    let out = ns.sockstat(&args);
    assert!(out.status.success(), "sockstat {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let out = String::from_utf8_lossy(&out.stdout);
    let mut lost = 0;
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["type"] == "gap" {
            lost +=
                v["lost_kernel"].as_u64().expect("lost_kernel") + v["lost_userspace"].as_u64().expect("lost_userspace");
        }
    }
    (parse_listed(&out, port), lost)
}

/// Waits until the stream lists `made` client ports (and as many server ends), then
/// checks that each socket is there exactly once, with `host`.
fn check_exactly_once(ns: &NetNs, url: &str, port: u16, made: &[u16], host: &str, agent: &Agent, nats: &NatsServer) {
    // Loopback reuses ports in TIME-WAIT (tcp_tw_reuse): a port may be made twice.
    let mut want = made.to_vec();
    want.sort_unstable();
    // The stream holds every connection made; or, where the agent says it lost events
    // (kernel ring, skipped program runs: a gap in its timeline), those may have taken
    // lifetimes with them, and the stream holds exactly what the timeline holds (twice
    // in a row, a second apart: nothing more is coming).
    let mut before: Option<Listed> = None;
    let got = wait_for(Duration::from_secs(90), || {
        let l = listed(ns, url, port, &[]);
        if l.clients.len() >= made.len() && l.servers.len() >= made.len() {
            return Some(l);
        }
        let (local, lost) = local(ns, agent, port);
        if lost == 0 {
            return None;
        }
        let same =
            |a: &Listed, b: &Listed| a.clients.keys().eq(b.clients.keys()) && a.servers.keys().eq(b.servers.keys());
        let settled = same(&l, &local) && before.as_ref().is_some_and(|b| same(b, &local));
        if settled {
            eprintln!(
                "the agent lost {lost} events: the stream is checked against its timeline ({} of {} client ends)",
                l.clients.len(),
                made.len()
            );
            return Some(l);
        }
        before = same(&l, &local).then_some(local);
        std::thread::sleep(Duration::from_secs(1));
        None
    });
    let l = got.unwrap_or_else(|| {
        let l = listed(ns, url, port, &[]);
        // Whether the timeline itself has them (else the loss is the timeline's: see
        // its gaps), or the export fell behind.
        let (local, lost) = local(ns, agent, port);
        panic!(
            "the stream lists {} client and {} server ends of the {} connections made after 90 s (the local timeline: {} client ends, {lost} events lost)\nagent log:\n{}\nnats log:\n{}",
            l.clients.len(),
            l.servers.len(),
            made.len(),
            local.clients.len(),
            agent.log_text(),
            nats.log()
        )
    });
    for (cookie, seen) in &l.clients {
        assert_eq!(seen.len(), 1, "socket {cookie} is in the stream {} times: {seen:?}", seen.len());
        assert_eq!(seen[0].0, host, "socket {cookie} has host {:?}", seen[0].0);
    }
    for (cookie, n) in &l.servers {
        assert_eq!(*n, 1, "server socket {cookie} is in the stream {n} times");
    }
    let mut ports: Vec<u16> = l.clients.values().map(|s| s[0].1).collect();
    ports.sort_unstable();
    if ports.len() == want.len() {
        assert_eq!(ports, want, "the client ports in the stream are not those the test made");
        assert_eq!(l.servers.len(), made.len(), "server ends in the stream");
    } else {
        // After a loss: only ports the test made.
        let mut left = want.clone();
        for p in &ports {
            let i = left
                .iter()
                .position(|w| w == p)
                .unwrap_or_else(|| panic!("port {p} in the stream: not made by the test"));
            left.remove(i);
        }
    }
}

fn setup(tag: &str) -> (NetNs, NatsServer) {
    SINCE.with(|s| *s.borrow_mut() = humantime::format_rfc3339(std::time::SystemTime::now()).to_string());
    let ns = NetNs::new(tag);
    let port = free_port(&ns);
    let dir = std::env::temp_dir().join(format!("{}-nats", ns.name));
    let _ = std::fs::remove_dir_all(&dir);
    let nats = NatsServer::start(&ns, &dir, port);
    (ns, nats)
}

#[test]
fn every_lifetime_arrives_once_across_a_server_restart() {
    let (ns, mut nats) = setup("fleet");
    let url = nats.url();
    let host = "sst-fleet-a";
    let agent = Agent::start(&ns, &["--nats", &url, "--nats-host", host]);
    let port = listener(&ns);

    let mut made = connect(&ns, port, 40, Duration::ZERO);
    check_exactly_once(&ns, &url, port, &made, host, &agent, &nats);

    // The text answer: a HOST column, every row with the host.
    let since = SINCE.with(|s| s.borrow().clone());
    let text = ns.sockstat_ok(&["history", "--nats", &url, "--netns", &ns.name, "--host", host, "--since", &since]);
    // Less the `# DATE (UTC)` lines.
    let mut lines = text.lines().filter(|l| !l.starts_with("# "));
    assert!(lines.next().is_some_and(|h| h.starts_with("HOST ")), "no HOST column: {text}");
    assert!(lines.clone().count() >= 2 * made.len(), "{text}");
    assert!(lines.all(|l| l.starts_with(host)), "a row without the host: {text}");
    // Another host's name lists none of them.
    let other = listed(&ns, &url, port, &["--host", "no-such-host"]);
    assert!(other.clients.is_empty(), "--host no-such-host listed {:?}", other.clients);

    // The server goes away while connections keep closing, then comes back on the
    // same store: what closed meanwhile waited in the timeline.
    let pause = Duration::from_millis(20);
    let first = connect(&ns, port, 20, pause);
    nats.kill();
    let during = connect(&ns, port, 40, pause);
    wait_for(Duration::from_secs(20), || agent.log_text().contains("NATS unavailable").then_some(()))
        .unwrap_or_else(|| panic!("the agent did not log the lost server: {}", agent.log_text()));
    std::thread::sleep(Duration::from_secs(1));
    nats.restart(&ns);
    let after = connect(&ns, port, 20, pause);
    made.extend(first);
    made.extend(during);
    made.extend(after);
    check_exactly_once(&ns, &url, port, &made, host, &agent, &nats);
    assert!(agent.log_text().contains("fleet export connected"), "{}", agent.log_text());
}

#[test]
fn an_agent_restart_resumes_from_the_cursor() {
    let (ns, nats) = setup("fleetcur");
    let url = nats.url();
    let host = "sst-fleet-b";
    let port = listener(&ns);
    // The timeline lives outside the agent's directory, which goes with each agent.
    let kept = std::env::temp_dir().join(format!("{}-kept", ns.name));
    let _ = std::fs::remove_dir_all(&kept);
    std::fs::create_dir_all(&kept).expect("dir");
    let timeline = kept.join("timeline.db");
    let mut agent = Agent::start_on(&ns, &timeline, &["--nats", &url, "--nats-host", host]);

    let mut made = connect(&ns, port, 30, Duration::ZERO);
    check_exactly_once(&ns, &url, port, &made, host, &agent, &nats);
    assert!(agent.stop().success(), "agent exit: {}", agent.log_text());
    drop(agent);
    let cursor = Command::new("sqlite3")
        .arg(&timeline)
        .arg("SELECT batch, kind, pos_id FROM fleet_cursor")
        .output()
        .expect("sqlite3 (`cargo xtask setup` installs it)");
    let cursor = String::from_utf8_lossy(&cursor.stdout).trim().to_string();
    assert!(!cursor.is_empty(), "no cursor saved in the timeline");

    // Restarted on the same timeline: it says where it resumes and sends nothing twice.
    let mut agent = Agent::start_on(&ns, &timeline, &["--nats", &url, "--nats-host", host]);
    made.extend(connect(&ns, port, 30, Duration::ZERO));
    check_exactly_once(&ns, &url, port, &made, host, &agent, &nats);
    let want = format!("cursor=Some(\"{}\")", cursor.replace('|', "."));
    assert!(agent.log_text().contains(&want), "the restarted agent did not resume at {want}: {}", agent.log_text());

    // Killed without a chance to save its cursor: the stream's last position is read
    // back, and still nothing is sent twice.
    made.extend(connect(&ns, port, 30, Duration::from_millis(10)));
    // Once the timeline holds them (a kill loses the batch in flight, before the
    // export could see it): the publishing may be anywhere. After a loss the timeline
    // reports, once it stops growing.
    let mut before = usize::MAX;
    wait_for(Duration::from_secs(20), || {
        let (l, lost) = local(&ns, &agent, port);
        let n = l.clients.len();
        let done = n >= made.len() || (lost > 0 && n == before);
        before = n;
        if !done && lost > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        done.then_some(())
    })
    .unwrap_or_else(|| panic!("the timeline did not record the {} connections within 20 s", made.len()));
    agent.kill9();
    drop(agent);
    let agent = Agent::start_on(&ns, &timeline, &["--nats", &url, "--nats-host", host]);
    made.extend(connect(&ns, port, 10, Duration::ZERO));
    check_exactly_once(&ns, &url, port, &made, host, &agent, &nats);
    drop(agent);
    let _ = std::fs::remove_dir_all(&kept);
}

#[test]
fn an_unreachable_server_is_an_error_for_history_and_a_retry_for_the_agent() {
    let ns = NetNs::new("fleetbad");
    let port = free_port(&ns);
    let url = format!("nats://127.0.0.1:{port}");

    let out = ns.sockstat(&["history", "--nats", &url]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "history against no server succeeded");
    assert!(err.contains(&format!("cannot connect to the NATS server at {url}")), "{err}");
    let out = ns.sockstat(&["history", "--nats", "nats://no port here:x"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("bad NATS server address"), "{err}");

    // An address that cannot parse: the agent runs all the same, and says why nothing
    // goes out.
    let bad = Agent::start(&ns, &["--nats", "nats://no port here:x"]);
    wait_for(Duration::from_secs(20), || bad.log_text().contains("bad NATS server address").then_some(()))
        .unwrap_or_else(|| panic!("no log line for the bad address: {}", bad.log_text()));
    assert!(bad.status(&ns).is_object(), "the agent stopped answering");
    drop(bad);

    // The agent runs on without its server, logs it, and publishes once it is there.
    let host = "sst-fleet-c";
    let agent = Agent::start(&ns, &["--nats", &url, "--nats-host", host]);
    let lport = listener(&ns);
    let made = connect(&ns, lport, 10, Duration::ZERO);
    wait_for(Duration::from_secs(20), || agent.log_text().contains("NATS unavailable").then_some(()))
        .unwrap_or_else(|| panic!("no log line for the missing server: {}", agent.log_text()));
    assert!(agent.status(&ns).is_object(), "the agent stopped answering");
    let dir = std::env::temp_dir().join(format!("{}-nats", ns.name));
    let _ = std::fs::remove_dir_all(&dir);
    let nats = NatsServer::start(&ns, &dir, port);
    check_exactly_once(&ns, &url, lport, &made, host, &agent, &nats);

    drop(agent);

    // A server that never had an agent: no stream, said so.
    let dir = std::env::temp_dir().join(format!("{}-nats2", ns.name));
    let _ = std::fs::remove_dir_all(&dir);
    let empty = NatsServer::start(&ns, &dir, free_port(&ns));
    let out = ns.sockstat(&["history", "--nats", &empty.url()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("has no JetStream stream SOCKSTAT"), "{err}");
}

#[test]
fn transitions_are_published_when_asked() {
    let (ns, nats) = setup("fleettr");
    let url = nats.url();
    let host = "sst-fleet-d";
    let agent = Agent::start(&ns, &["--nats", &url, "--nats-host", host, "--nats-transitions"]);
    let port = listener(&ns);
    let made = connect(&ns, port, 5, Duration::ZERO);
    check_exactly_once(&ns, &url, port, &made, host, &agent, &nats);
    // Each client end's path, transition by transition, as the local timeline tells it.
    let args = ["history", "--transitions", "--json", "--netns", &ns.name];
    let timeline = agent.timeline.to_str().expect("UTF-8 path");
    let local = ns.sockstat_ok(&[&args[..], &["--timeline", timeline]].concat());
    let fleet = ns.sockstat_ok(&[&args[..], &["--nats", &url, "--host", host]].concat());
    let of_clients = |text: &str, with_host: bool| -> Vec<String> {
        let mut v: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
            .filter(|v| v["type"] == "transition" && v["dport"] == port)
            .map(|mut v| {
                if with_host {
                    assert_eq!(v["host"], host, "{v}");
                    v.as_object_mut().expect("object").remove("host");
                }
                v.to_string()
            })
            .collect();
        v.sort();
        v
    };
    let (local, fleet) = (of_clients(&local, false), of_clients(&fleet, true));
    assert!(local.len() >= 3 * made.len(), "the local timeline has {} client transitions", local.len());
    assert_eq!(fleet, local, "the stream's transitions (less the host) are the local timeline's");
}
