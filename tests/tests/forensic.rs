//! The timeline of every namespace and every cgroup: connections made by a process the
//! test puts in a child cgroup, in a namespace other than the agent's, come back from
//! `history` with their namespace, cgroup, error and health, and `--at` answers for that
//! namespace (run there, or from elsewhere with `-N`) what ss printed there.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    thread,
    time::{Duration, SystemTime},
};

use sockstat_tests::{NetNs, header_and_sorted_rows, sockstat_bin, wait_for};

/// The cgroup v2 hierarchy on the test machines (hybrid mode: v1 controllers beside it).
const CGROUP2: &str = "/sys/fs/cgroup/unified";

/// A child cgroup made by the test, removed on drop (its processes moved back to the
/// root first).
struct Cgroup {
    dir: PathBuf,
    /// Its path under the cgroup2 mount, as ss and sockstat print it.
    path: String,
}

impl Cgroup {
    fn new(tag: &str) -> Cgroup {
        let mount = Path::new(CGROUP2);
        assert!(
            mount.join("cgroup.procs").exists(),
            "no cgroup v2 hierarchy at {CGROUP2}: mount one (`mount -t cgroup2 none {CGROUP2}`)"
        );
        let name = format!("sst-{tag}-{}", std::process::id());
        let dir = mount.join(&name);
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating the cgroup {}: {e}", dir.display()));
        Cgroup { dir, path: format!("/{name}") }
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("moving {pid} into {}: {e}", self.dir.display()));
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if let Ok(procs) = std::fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in procs.lines() {
                let _ = std::fs::write(Path::new(CGROUP2).join("cgroup.procs"), pid);
            }
        }
        // The last process may still be exiting: a few tries.
        for _ in 0..40 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The fixture: waits for `go`, then (in its namespace, as whatever cgroup it is in by
/// then) keeps a listener and an established pair open, makes and closes one more
/// connection (TIME-WAIT on the client side), has one more reset by its peer (an abortive
/// close: SO_LINGER 0), and has one connect refused; prints the
/// refusal's errno name, then `ready`. `close` closes what it kept open (`closed`); the
/// next line has one more connect refused (port 7612; its errno name).
const FIXTURE: &str = r"
import socket, sys
sys.stdin.readline()
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('127.0.0.1', 7610)); l.listen(16)
c1 = socket.create_connection(('127.0.0.1', 7610)); a1, _ = l.accept()
c1.sendall(b'hello'); a1.recv(5)
c2 = socket.create_connection(('127.0.0.1', 7610)); a2, _ = l.accept()
c2.sendall(b'x' * 1000); a2.recv(1000); a2.sendall(b'y'); c2.recv(1)
c2.close(); a2.recv(1); a2.close()
import struct
c3 = socket.create_connection(('127.0.0.1', 7610)); a3, _ = l.accept()
a3.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0)); a3.close()
try:
    c3.recv(1)
except ConnectionResetError:
    pass
c3.close()
try:
    socket.create_connection(('127.0.0.1', 7611))
    print('connected', flush=True)
except OSError as e:
    import errno; print(errno.errorcode[e.errno], flush=True)
print('ready', flush=True)
sys.stdin.readline()
c1.close(); a1.close(); l.close()
print('closed', flush=True)
sys.stdin.readline()
try:
    socket.create_connection(('127.0.0.1', 7612))
except OSError as e:
    print(errno.errorcode[e.errno], flush=True)
sys.stdin.readline()
";

struct Fixture {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Fixture {
    fn start(ns: &NetNs) -> Fixture {
        let mut child = ns
            .command("python3")
            .args(["-c", FIXTURE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 (apt-get install python3)");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Fixture { child, stdin, stdout }
    }

    fn say(&mut self, word: &str) {
        writeln!(self.stdin, "{word}").expect("write to the fixture");
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.stdout.read_line(&mut l).expect("read the fixture");
        l.trim().to_owned()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `sockstat agent` in `ns`'s network namespace only (nsenter, not `ip netns exec`,
/// whose fresh /sys has no cgroup2 mount to resolve cgroup paths under), with its own
/// socket and a fresh timeline; SIGTERM on drop.
struct NetAgent {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    timeline: PathBuf,
}

impl NetAgent {
    fn start(ns: &NetNs) -> NetAgent {
        let dir = std::env::temp_dir().join(format!("{}-agent", ns.name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (socket, log, timeline) = (dir.join("agent.sock"), dir.join("agent.log"), dir.join("timeline.db"));
        let child = Command::new("nsenter")
            .arg(format!("--net={}", ns.path().display()))
            .arg(sockstat_bin())
            .args(["agent", "--socket"])
            .arg(&socket)
            .arg("--timeline")
            .arg(&timeline)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("agent log"))
            .spawn()
            .expect("nsenter (apt-get install util-linux)");
        let agent = NetAgent { child, socket, log, timeline };
        let socket = agent.socket.to_str().expect("UTF-8 path").to_owned();
        wait_for(Duration::from_secs(30), || {
            let ok = Command::new(sockstat_bin()).args(["status", "--socket", &socket]).output();
            ok.is_ok_and(|o| o.status.success()).then_some(())
        })
        .unwrap_or_else(|| panic!("agent not ready after 30 s: {}", agent.log_text()));
        agent
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NetAgent {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// `program args` in `ns`'s network namespace only (nsenter): `ip netns exec` mounts a
/// fresh /sys, without the cgroup2 mount that ss and sockstat resolve `cgroup PATH` under.
fn in_net(ns: &NetNs, program: &Path, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.path().display()))
        .arg(program)
        .args(args)
        .output()
        .expect("nsenter (apt-get install util-linux)");
    assert!(out.status.success(), "{program:?} {args:?} in {}: {}", ns.name, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
#[expect(clippy::too_many_lines, reason = "one scenario, checked step by step")]
fn another_namespace_and_a_child_cgroup_are_recorded_with_errors_and_health() {
    let home = NetNs::new("fxhome");
    let there = NetNs::new("fxthere");
    let inode = std::fs::metadata(there.path()).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).expect("netns");
    let cgroup = Cgroup::new("fx");
    // The agent runs in `home`; the traffic is in `there`.
    let agent = NetAgent::start(&home);
    let timeline = agent.timeline.to_str().expect("UTF-8 path").to_owned();

    let mut fx = Fixture::start(&there);
    cgroup.add(fx.child.id());
    fx.say("go");
    assert_eq!(fx.line(), "ECONNREFUSED", "the fixture's connect to a closed port");
    assert_eq!(fx.line(), "ready");
    thread::sleep(Duration::from_millis(200));
    let then = there.ss(&["-tan"]);
    let then_cgroup = in_net(&there, Path::new("ss"), &["-tan", "cgroup", &cgroup.path]);
    let at = humantime::format_rfc3339_nanos(SystemTime::now()).to_string();
    thread::sleep(Duration::from_millis(200));
    let then_after = there.ss(&["-tan"]);
    assert_eq!(header_and_sorted_rows(&then), header_and_sorted_rows(&then_after), "nothing changed around the moment");
    assert!(then.contains("127.0.0.1:7610") && then.contains("ESTAB"), "{then}");
    assert!(then_cgroup.contains("ESTAB") && then_cgroup.contains("LISTEN"), "{then_cgroup}");
    fx.say("close");
    assert_eq!(fx.line(), "closed");

    // history: the namespace's connections, each with its namespace and cgroup.
    let name = there.name.as_str();
    let lives = wait_for(Duration::from_secs(10), || {
        let h = home.sockstat_ok(&["history", "--json", "--netns", name, "--timeline", &timeline]);
        let rows = json_lines(&h);
        let closed = rows.iter().filter(|r| r["type"] == "lifetime" && r["dport"] == 7610).count();
        (closed >= 2 && rows.iter().any(|r| r["dport"] == 7611)).then_some(rows)
    })
    .unwrap_or_else(|| panic!("history never showed the fixture's connections: {}", agent.log_text()));
    let refused: Vec<_> = lives.iter().filter(|r| r["dport"] == 7611).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let r = refused[0];
    assert_eq!(r["error"], "ECONNREFUSED", "{r}");
    assert_eq!(r["path"], "SYN_SENT>CLOSE", "{r}");
    assert_eq!(r["owner"], "connect", "{r}");
    assert_eq!(r["pid"], fx.child.id(), "{r}");
    for l in &lives {
        if l["type"] != "lifetime" {
            continue;
        }
        assert_eq!(l["netns"], inode, "{l}");
        assert_eq!(l["netns_name"], name, "{l}");
        assert_eq!(l["cgroup"].as_str(), Some(cgroup.path.as_str()), "{l}");
        assert!(l["cgroup_id"].as_u64().is_some_and(|id| id > 1), "{l}");
        assert!(l["retrans"].is_u64(), "every finished connection has its retransmits: {l}");
    }
    // The connection that exchanged data has an RTT and no error.
    let data = lives
        .iter()
        .find(|l| l["dport"] == 7610 && l["bytes_sent"].as_u64().is_some_and(|b| b >= 1000))
        .unwrap_or_else(|| panic!("no lifetime of the 1000-byte connection: {lives:?}"));
    assert!(data["srtt_us"].as_u64().is_some_and(|us| us > 0), "{data}");
    assert_eq!(data["retrans"], 0, "{data}");
    assert!(data.get("error").is_none(), "{data}");

    // --failed: the refused connect, not the ones that worked.
    let failed = json_lines(&home.sockstat_ok(&[
        "history",
        "--json",
        "--failed",
        "--netns",
        &inode.to_string(),
        "--timeline",
        &timeline,
    ]));
    let failed: Vec<_> = failed.iter().filter(|r| r["type"] == "lifetime").collect();
    assert_eq!(failed.len(), 2, "the refused connect and the reset one: {failed:?}");
    assert!(failed.iter().any(|r| r["dport"] == 7611 && r["error"] == "ECONNREFUSED"), "{failed:?}");
    let reset = failed.iter().find(|r| r["dport"] == 7610).unwrap_or_else(|| panic!("no reset: {failed:?}"));
    assert_eq!(reset["error"], "ECONNRESET", "{reset}");
    assert!(reset["path"].as_str().is_some_and(|p| p.starts_with("SYN_SENT>ESTABLISHED>")), "{reset}");
    // Text: the short cgroup and the error in the columns.
    let text = home.sockstat_ok(&["history", "--failed", "--netns", name, "--timeline", &timeline]);
    let short = cgroup.path.trim_start_matches('/');
    assert!(text.lines().any(|l| l.contains(":7611") && l.contains("ECONNREFUSED") && l.contains(short)), "{text}");
    // The agent's own namespace has none of them; the cgroup condition selects them.
    let own = home.sockstat_ok(&["history", "--json", "--netns", &home.name, "--timeline", &timeline]);
    assert!(json_lines(&own).iter().all(|r| r["dport"] != 7611 && r["dport"] != 7610), "{own}");
    let by_cgroup = json_lines(&in_net(
        &home,
        &sockstat_bin(),
        &["history", "--json", "--timeline", &timeline, "cgroup", &cgroup.path],
    ));
    let by_cgroup: Vec<_> = by_cgroup.iter().filter(|r| r["type"] == "lifetime").collect();
    assert!(by_cgroup.len() >= 3 && by_cgroup.iter().all(|r| r["netns"] == inode), "{by_cgroup:?}");
    let transitions = json_lines(&home.sockstat_ok(&[
        "history",
        "--transitions",
        "--json",
        "--netns",
        name,
        "--timeline",
        &timeline,
        "dport",
        "=",
        ":7611",
    ]));
    assert!(
        transitions.iter().any(|t| t["new_name"] == "CLOSE" && t["cgroup"].as_str() == Some(cgroup.path.as_str())),
        "{transitions:?}"
    );

    // --at in that namespace: what ss printed there, from there and from home with -N.
    let past = there.sockstat_ok(&["--at", &at, "--timeline", &timeline, "-tan"]);
    assert_eq!(header_and_sorted_rows(&past), header_and_sorted_rows(&then), "--at {at} in {name}");
    let past_n = home.sockstat_ok(&["-N", name, "--at", &at, "--timeline", &timeline, "-tan"]);
    assert_eq!(header_and_sorted_rows(&past_n), header_and_sorted_rows(&then), "-N {name} --at {at}");
    let past_cgroup =
        in_net(&there, &sockstat_bin(), &["--at", &at, "--timeline", &timeline, "-tan", "cgroup", &cgroup.path]);
    assert_eq!(header_and_sorted_rows(&past_cgroup), header_and_sorted_rows(&then_cgroup), "--at {at} cgroup");
    // The agent's namespace at that moment had none of those sockets.
    let home_past = home.sockstat_ok(&["--at", &at, "--timeline", &timeline, "-tan"]);
    assert!(!home_past.contains(":7610"), "{home_past}");

    // trace, from home, of that namespace: the refused connect's transitions, with the
    // namespace, the cgroup, and the error on its CLOSE.
    let mut trace = Command::new("nsenter")
        .arg(format!("--net={}", home.path().display()))
        .arg(sockstat_bin())
        .args(["trace", "--json", "--netns", name, "--count", "2", "dport", "=", ":7612"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nsenter (apt-get install util-linux)");
    let mut attached = String::new();
    BufReader::new(trace.stderr.take().expect("piped stderr")).read_line(&mut attached).expect("trace's stderr");
    assert!(attached.contains("attached"), "{attached}");
    fx.say("refuse");
    assert_eq!(fx.line(), "ECONNREFUSED");
    let out = wait_for(Duration::from_secs(10), || trace.try_wait().ok().flatten().map(|_| ()));
    if out.is_none() {
        let _ = trace.kill();
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut trace.stdout.take().expect("piped stdout"), &mut text).expect("trace output");
    let _ = trace.wait();
    let records = json_lines(&text);
    assert_eq!(records.len(), 2, "{text}");
    assert!(
        records.iter().all(|r| r["netns"] == inode && r["cgroup"].as_str() == Some(cgroup.path.as_str())),
        "{text}"
    );
    let close = records.iter().find(|r| r["new"] == "CLOSE").unwrap_or_else(|| panic!("no CLOSE: {text}"));
    assert_eq!(
        (&close["error"], &close["old"], &close["netns_name"]),
        (&"ECONNREFUSED".into(), &"SYN_SENT".into(), &name.into()),
        "{close}"
    );
    assert!(records.iter().find(|r| r["new"] == "SYN_SENT").is_some_and(|r| r.get("error").is_none()), "{text}");
}
