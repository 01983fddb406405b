//! Fault drills for the timeline (docs/reliability.md): a file system that fills up under
//! the agent, and a timeline file corrupted while no agent ran. The ring-buffer overflow
//! drill is `timeline.rs::overflow_makes_a_gap_and_a_resync_and_the_table_matches_ss`;
//! a kernel BTF without a field the program reads is `bpf::btf::tests::a_missing_field_is_named`.

use std::{
    io::{Read, Seek, SeekFrom, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use sockstat_tests::{Agent, NetNs, header_and_sorted_rows, sockstat_bin, wait_for};

/// A tmpfs of `size` mounted on a new directory; unmounted and removed on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(tag: &str, size: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("sockstat-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("mount (apt-get install mount)");
        assert!(out.status.success(), "mount tmpfs on {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
        Tmpfs { dir }
    }

    fn resize(&self, size: &str) {
        let out =
            Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.dir).output().expect("mount");
        assert!(out.status.success(), "remount: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `n` loopback connections to `port` in `ns`, each opened, answered and closed.
fn connections(ns: &NetNs, port: u16, n: usize) {
    ns.enter(move || {
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let server = thread::spawn(move || {
            for conn in l.incoming().take(n) {
                let mut s = conn.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).unwrap();
                s.write_all(b"pong").unwrap();
            }
        });
        for _ in 0..n {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(b"ping").unwrap();
            let mut buf = [0u8; 4];
            c.read_exact(&mut buf).unwrap();
        }
        server.join().unwrap();
    });
}

fn history_json(ns: &NetNs, timeline: &Path) -> Vec<serde_json::Value> {
    let out = ns.sockstat_ok(&["history", "--json", "--timeline", timeline.to_str().unwrap()]);
    out.lines().map(|l| serde_json::from_str(l).expect("history --json is NDJSON")).collect()
}

fn count(status: &serde_json::Value, key: &str) -> u64 {
    status[key].as_u64().unwrap_or_else(|| panic!("status has no {key}: {status}"))
}

/// The timeline on a 2 MiB file system, filled by churn: the writer's batches fail, but
/// the agent keeps running, its table stays exact (it equals ss) with no event lost, a
/// trace run meanwhile sees every transition; once there is room again the writer goes
/// on, and every record it could not write is counted in a gap that says why.
#[test]
fn a_full_file_system_costs_timeline_rows_only_and_leaves_a_gap() {
    let ns = NetNs::new("full");
    let fs = Tmpfs::mount("full", "2m");
    let timeline = fs.dir.join("timeline.db");
    let agent = Agent::start_on(&ns, &timeline, &[]);

    // Churn until a batch fails (the log says so and `status` counts dropped records).
    let started = Instant::now();
    let mut port = 7650;
    while count(&agent.status(&ns), "timeline_dropped") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the 2 MiB file system never filled: {}",
            agent.log_text()
        );
        connections(&ns, port, 500);
        port += 1;
        thread::sleep(Duration::from_millis(200));
    }
    assert!(agent.log_text().contains("timeline batch not written"), "no log line: {}", agent.log_text());
    // A rolled-back batch leaves its space to the next, small ones (a gap marker fits):
    // something else takes the rest, so that nothing fits until room is made.
    let filler = fs.dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    let filled = loop {
        if let Err(e) = f.write_all(&chunk) {
            break e;
        }
    };
    assert_eq!(filled.raw_os_error(), Some(libc::ENOSPC), "filling the file system: {filled}");
    drop(f);
    // More churn while nothing fits: more batches fail.
    let dropped = count(&agent.status(&ns), "timeline_dropped");
    for p in 7670..7674 {
        connections(&ns, p, 500);
    }
    thread::sleep(Duration::from_millis(300));
    assert!(count(&agent.status(&ns), "timeline_dropped") > dropped, "batches were written on a full file system");

    // While full: a trace sees every transition of 20 connections...
    let mut trace = ns
        .command(sockstat_bin())
        .args(["trace", "--json", "sport = :7640 or dport = :7640"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockstat trace");
    let mut trace_out = trace.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut s = String::new();
        trace_out.read_to_string(&mut s).unwrap();
        s
    });
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(trace.stderr.take().unwrap()), &mut line).unwrap();
    assert!(line.contains("attached"), "sockstat trace did not attach: {line}");
    connections(&ns, 7640, 20);
    thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(trace.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let events = reader.join().unwrap();
    assert!(trace.wait().unwrap().success());
    let closes = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("NDJSON"))
        .filter(|e| e["new"] == "CLOSE" && e["old"] != "LISTEN" && (e["dport"] == 7640 || e["sport"] == 7640))
        .count();
    // Both ends of each: FIN_WAIT2 -> CLOSE (client), LAST_ACK -> CLOSE (server); the
    // listener's own close is left out.
    assert_eq!(closes, 40, "the trace missed closes while the disk was full:\n{events}");

    // ... and the agent's table is exact, nothing lost by the stream.
    thread::sleep(Duration::from_millis(500));
    let ours = ns.sockstat_ok(&["--source", "agent", "--socket", agent.socket_arg(), "-tan"]);
    assert_eq!(header_and_sorted_rows(&ours), header_and_sorted_rows(&ns.ss(&["-tan"])), "table while full");
    let status = agent.status(&ns);
    assert_eq!(count(&status, "events_lost_kernel") + count(&status, "events_malformed"), 0, "{status}");
    assert_eq!(count(&status, "resyncs"), 0, "a full disk must not cost the table a resync: {status}");

    // Room again: the writer goes on by itself, and the next batch carries the gap.
    let committed = count(&status, "timeline_committed");
    std::fs::remove_file(&filler).unwrap();
    fs.resize("64m");
    let resumed =
        wait_for(Duration::from_secs(30), || agent.log_text().contains("timeline batches written again").then_some(()));
    assert!(resumed.is_some(), "the writer did not resume: {}", agent.log_text());
    connections(&ns, 7641, 10);
    let after = wait_for(Duration::from_secs(10), || {
        let s = agent.status(&ns);
        (count(&s, "timeline_committed") > committed).then_some(s)
    });
    assert!(after.is_some(), "nothing committed after the room came back: {}", agent.log_text());

    // Every record dropped is counted in a gap, and the gaps say why.
    let dropped = count(&agent.status(&ns), "timeline_dropped");
    let in_gaps = |rows: &[serde_json::Value]| -> u64 {
        rows.iter().filter(|r| r["type"] == "gap").map(|r| r["lost_userspace"].as_u64().unwrap()).sum()
    };
    // (The batch the writer resumed with may commit before the one with the connections
    // made after: wait for both.)
    let rows = wait_for(Duration::from_secs(10), || {
        let rows = history_json(&ns, &timeline);
        (in_gaps(&rows) == dropped && rows.iter().any(|r| r["dport"] == 7641)).then_some(rows)
    })
    .unwrap_or_else(|| {
        let rows = history_json(&ns, &timeline);
        panic!(
            "{dropped} records dropped, {} in gaps: {:?}",
            in_gaps(&rows),
            rows.iter().filter(|r| r["type"] == "gap").collect::<Vec<_>>()
        )
    });
    let full = rows
        .iter()
        .filter(|r| r["type"] == "gap" && r["reason"].as_str().is_some_and(|s| s.contains("database or disk is full")))
        .count();
    assert!(full > 0, "no gap says the disk was full: {rows:?}");
    let gaps: Vec<&serde_json::Value> = rows.iter().filter(|r| r["type"] == "gap").collect();
    eprintln!(
        "full file system: {dropped} records dropped, all in {} gaps ({full} saying the disk was full): {gaps:?}",
        gaps.len()
    );
    // Connections after the room came back are recorded.
    assert!(rows.iter().any(|r| r["dport"] == 7641), "no row for a connection made after the room came back");
    // The text says the answer over that window may be incomplete.
    let text = ns.sockstat(&["history", "--timeline", timeline.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&text.stderr).contains("may be incomplete"));
    // The agent never stopped.
    assert!(count(&agent.status(&ns), "table_size") > 0);
    drop(agent);
}

/// A timeline damaged while no agent ran (cut short; pages overwritten): the next agent
/// finds it at start, moves it aside as `timeline.db.corrupt-TIME` (kept as it was), says
/// so in its log, and records into a new file.
#[test]
fn a_corrupt_timeline_is_moved_aside_and_a_new_one_started() {
    let ns = NetNs::new("corrupt");
    for damage in ["truncated", "garbage"] {
        let mut agent = Agent::start(&ns, &[]);
        let timeline = agent.timeline.clone();
        connections(&ns, 7660, 2000);
        thread::sleep(Duration::from_millis(300));
        assert!(agent.stop().success());
        let len = std::fs::metadata(&timeline).unwrap().len();
        assert!(len > 64 * 1024, "the timeline is too small to damage: {len} bytes");
        let mut f = std::fs::OpenOptions::new().write(true).open(&timeline).unwrap();
        match damage {
            "truncated" => f.set_len(len / 2).unwrap(),
            _ => {
                // Pages 2..9: table roots and their first pages.
                f.seek(SeekFrom::Start(4096)).unwrap();
                let garbage: Vec<u8> = (0..8 * 4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
                f.write_all(&garbage).unwrap();
            }
        }
        drop(f);
        let damaged_len = std::fs::metadata(&timeline).unwrap().len();

        let agent = Agent::start_on(&ns, &timeline, &[]);
        let log = agent.log_text();
        assert!(log.contains("timeline is corrupt: moved aside"), "{damage}: no log line: {log}");
        let dir = timeline.parent().unwrap();
        let aside: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("timeline.db.corrupt-"))
            .filter(|p| !p.to_str().unwrap().ends_with("-wal") && !p.to_str().unwrap().ends_with("-shm"))
            .collect();
        assert_eq!(aside.len(), 1, "{damage}: {aside:?}");
        assert_eq!(std::fs::metadata(&aside[0]).unwrap().len(), damaged_len, "{damage}: the damaged file was changed");
        assert!(log.contains(aside[0].to_str().unwrap()), "{damage}: the log does not say where it went: {log}");
        // The new file records.
        connections(&ns, 7661, 5);
        let recorded = wait_for(Duration::from_secs(5), || {
            history_json(&ns, &timeline).iter().any(|r| r["dport"] == 7661).then_some(())
        });
        assert!(recorded.is_some(), "{damage}: the new timeline does not record");
        drop(agent);
    }
}
