//! The detail options against the real `ss` (iproute2 6.1), each in a fresh namespace:
//! `-o`, `-e`, `-m`, `-i`, `-p`, `-T`, `--cgroup`, `--tos`, `--inet-sockopt`, `--json`,
//! `-D` with `TCPDIAG_FILE`, `-K`, `-N`, `-F`, `-Z`/`-z`.
//!
//! What is compared, exactly:
//! - `-o`, `-e`, `-m`, `-p`, `-T`, `--cgroup`, `--tos`, `--inet-sockopt` (TCP, UDP,
//!   UNIX): byte for byte. Timers count down (a TIME-WAIT's `timewait,59sec`, a
//!   keepalive's `4min59sec`), so each comparison runs ss, sockstat, ss and passes if
//!   sockstat equals either ss run.
//! - `-i`: byte for byte after masking the values (not the names) of `lastsnd:`,
//!   `lastrcv:` and `lastack:`, the milliseconds since the last packet, which grow
//!   between two runs. Every other field (names, order and values: rtt, rto, cwnd, bytes,
//!   segs, bbr, pacing and delivery rates, minrtt, windows) is compared as is: the
//!   sockets are quiescent, so the kernel's values do not move.
//! - `--json`: one object per row of `ss -tan`, with the same values, typed.
//! - `-D`: `ss -D` read back by sockstat, `sockstat -D` read back by ss and by sockstat:
//!   the same output as a live `ss` (an IPv4-only selection). A dual-stack recording read
//!   as ss reads it (first dump, FILTER only) and, with `--tcpdiag-all`, whole and
//!   selected like a live dump. A truncated file is an error naming the byte offset.
//! - `-i` over 10k sockets (the dump split between threads): the same rows as ss, each
//!   family's listeners first, then share by share, each share in ss's (the kernel's)
//!   order; with `--source kernel`, byte for byte.
//! - `-K`: the lines printed by ss and sockstat killing the same kind of connection on
//!   two ports, with the port masked; and the refusal without CAP_NET_ADMIN.

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket},
    os::unix::net::{UnixListener, UnixStream},
    process::Command,
    thread,
    time::Duration,
};

use socket2::{Domain, Socket, Type};
use sockstat_tests::{NetNs, compare_all, mask_idle, sockstat_bin};

/// Everything the fixture opened; dropping it closes the sockets.
struct Fixture {
    _keep: Vec<Box<dyn Send>>,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A listener with a queued connection, an established pair with unread data and a
/// keepalive timer, a half-closed pair, a TIME-WAIT, a v6-only listener, UDP (bound and
/// connected), UNIX (a path listener with a pending connection, a connected pair).
fn populate(ns: &NetNs) -> Fixture {
    let dir = std::env::temp_dir().join(format!("sockstat-details-{}-{}", std::process::id(), ns.name));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("socket dir");
    let d = dir.clone();
    let keep = ns.enter(move || {
        let mut keep: Vec<Box<dyn Send>> = Vec::new();
        let l = TcpListener::bind("127.0.0.1:8080").expect("listen");
        let mut c = TcpStream::connect("127.0.0.1:8080").expect("connect");
        let (a, _) = l.accept().expect("accept");
        c.write_all(&[7; 3000]).expect("send");
        let ka = Socket::from(c.try_clone().expect("clone"));
        ka.set_keepalive(true).expect("keepalive");
        ka.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(Duration::from_secs(300))).expect("keepidle");
        // Half-closed: the client shuts down writing (FIN-WAIT-2 / CLOSE-WAIT).
        let h = TcpStream::connect("127.0.0.1:8080").expect("connect");
        let (ha, _) = l.accept().expect("accept");
        h.shutdown(Shutdown::Write).expect("shutdown");
        // TIME-WAIT on the client side.
        let t = TcpStream::connect("127.0.0.1:8080").expect("connect");
        let (mut ta, _) = l.accept().expect("accept");
        drop(t);
        let _ = ta.read(&mut [0; 8]);
        drop(ta);
        // Left in the accept queue.
        let q = TcpStream::connect("127.0.0.1:8080").expect("connect");
        let l6 = Socket::new(Domain::IPV6, Type::STREAM, None).expect("socket");
        l6.set_only_v6(true).expect("v6only");
        l6.bind(&"[::1]:9090".parse::<SocketAddr>().expect("addr").into()).expect("bind");
        l6.listen(4).expect("listen");
        let u = UdpSocket::bind("127.0.0.1:5353").expect("udp");
        let uc = UdpSocket::bind("127.0.0.1:0").expect("udp");
        uc.connect("127.0.0.1:5353").expect("udp connect");
        uc.send(b"hello").expect("udp send");
        let ul = UnixListener::bind(d.join("listener.sock")).expect("unix listen");
        let uq = UnixStream::connect(d.join("listener.sock")).expect("unix connect");
        let (p1, p2) = UnixStream::pair().expect("pair");
        keep.push(Box::new((l, c, a, h, ha, q, l6, u, uc)));
        keep.push(Box::new((ul, uq, p1, p2)));
        keep
    });
    // Let the TIME-WAIT and the delayed ACKs settle: -i values must be quiescent.
    thread::sleep(Duration::from_millis(300));
    Fixture { _keep: keep, dir }
}

/// The text as printed, except a timer in its last second (`7.276ms`): the fixture's
/// TIME-WAIT socket reaches it when the cases outlast its 60 s (a slow machine), and then
/// no two runs print the same milliseconds.
fn same(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("timer:(") {
        let (head, tail) = rest.split_at(i + "timer:(".len());
        out.push_str(head);
        let end = tail.find(')').unwrap_or(tail.len());
        let fields: Vec<&str> = tail[..end].split(',').collect();
        if let [name, value, retrans] = fields[..]
            && value.ends_with("ms")
            && !value.contains("sec")
        {
            out.push_str(&format!("{name},<1s,{retrans}"));
        } else {
            out.push_str(&tail[..end]);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn extended_memory_timers_and_processes_are_byte_identical() {
    let ns = NetNs::new("details");
    let _f = populate(&ns);
    compare_all(
        &ns,
        &[
            &["-tano"],
            &["-tanoe"],
            &["-tane"],
            &["-tanm"],
            &["-tanem"],
            &["-tanemO"],
            &["-tanep"],
            &["-tanp"],
            &["-tanp6"],
            &["-uae"],
            &["-uaem"],
            &["-uanp"],
            &["-xa"],
            &["-xae"],
            &["-xam"],
            &["-xaemp"],
            &["-tuxaepm"],
            &["-te", "state", "established"],
            &["-tae", "dport", "=", ":8080"],
        ],
        same,
    );
}

/// `-T` (owners per thread: `tid=`, each task's own `comm`) and `--cgroup` (the cgroup
/// path after the `-e` details), byte for byte. A named thread of the test process
/// (threads share the descriptor table, so it holds every fixture socket) lives through
/// the comparisons: its `comm` is not the process's.
#[test]
fn threads_and_cgroup_are_byte_identical() {
    let ns = NetNs::new("threads");
    let _f = populate(&ns);
    let (stop, parked) = std::sync::mpsc::channel::<()>();
    let worker = thread::Builder::new()
        .name("sst-owner".into())
        .spawn(move || {
            let _ = parked.recv();
        })
        .expect("spawn the named thread");
    // With -p: ss 7.1 shows no owners for -T alone (its Process column needs -p).
    let text = ns.sockstat_ok(&["-tanpT"]);
    assert!(text.contains("(\"sst-owner\",pid=") && text.contains(",tid="), "{text}");
    assert!(ns.sockstat_ok(&["-tan", "--cgroup"]).contains(" cgroup:"));
    compare_all(
        &ns,
        &[
            &["-tanT"],
            &["-tanpT"],
            &["-tanT", "-p", "-e"],
            &["-uanT"],
            &["-xaT"],
            &["-tuxaT"],
            &["-tuxa", "--threads"],
            &["-tan", "--cgroup"],
            &["-tane", "--cgroup"],
            &["-tanem", "--cgroup"],
            &["-tanO", "--cgroup"],
            &["-uan", "--cgroup"],
            &["-tuxa", "--cgroup"],
            &["-tanpT", "--cgroup", "-o"],
            &["-tan6", "--cgr"],
        ],
        same,
    );
    compare_all(&ns, &[&["-tani", "--cgroup"], &["-tanmiT", "--cgroup"]], mask_idle);
    drop(stop);
    worker.join().expect("named thread");
}

/// Sets an integer socket option with setsockopt(2).
fn set_int_opt(fd: std::os::fd::RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: `value` outlives the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt({level}, {name}, {value}): {}", std::io::Error::last_os_error());
}

/// Sockets with non-default TOS, TCLASS, priority and inet flags: a v4 TCP listener with
/// IP_TOS 0x10 (its accepted socket inherits it) and a client with IP_TOS 0x28 and
/// SO_PRIORITY 3 (class_id falls back to the priority), a v6 TCP pair with IPV6_TCLASS
/// 0x20 and IP_FREEBIND, a v6 UDP socket with IPV6_TCLASS 0xb8, a v4 UDP socket with
/// IP_TRANSPARENT, IP_RECVERR, IP_BIND_ADDRESS_NO_PORT and IP_MULTICAST_ALL off.
fn populate_tos(ns: &NetNs) -> Box<dyn Send> {
    use std::os::fd::AsRawFd;
    ns.enter(|| {
        let l = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        set_int_opt(l.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TOS, 0x10);
        l.bind(&"127.0.0.1:8181".parse::<SocketAddr>().expect("addr").into()).expect("bind");
        l.listen(4).expect("listen");
        let c = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        set_int_opt(c.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TOS, 0x28);
        set_int_opt(c.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PRIORITY, 3);
        c.connect(&"127.0.0.1:8181".parse::<SocketAddr>().expect("addr").into()).expect("connect");
        let (a, _) = l.accept().expect("accept");
        let l6 = Socket::new(Domain::IPV6, Type::STREAM, None).expect("socket");
        set_int_opt(l6.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_TCLASS, 0x20);
        set_int_opt(l6.as_raw_fd(), libc::IPPROTO_IP, libc::IP_FREEBIND, 1);
        l6.bind(&"[::1]:9191".parse::<SocketAddr>().expect("addr").into()).expect("bind");
        l6.listen(4).expect("listen");
        let c6 = TcpStream::connect("[::1]:9191").expect("connect");
        let (a6, _) = l6.accept().expect("accept");
        let u6 = Socket::new(Domain::IPV6, Type::DGRAM, None).expect("socket");
        set_int_opt(u6.as_raw_fd(), libc::IPPROTO_IPV6, libc::IPV6_TCLASS, 0xb8);
        u6.bind(&"[::1]:5454".parse::<SocketAddr>().expect("addr").into()).expect("bind");
        let u4 = Socket::new(Domain::IPV4, Type::DGRAM, None).expect("socket");
        set_int_opt(u4.as_raw_fd(), libc::IPPROTO_IP, libc::IP_TRANSPARENT, 1);
        set_int_opt(u4.as_raw_fd(), libc::IPPROTO_IP, libc::IP_RECVERR, 1);
        set_int_opt(u4.as_raw_fd(), libc::IPPROTO_IP, libc::IP_BIND_ADDRESS_NO_PORT, 1);
        set_int_opt(u4.as_raw_fd(), libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, 0);
        u4.bind(&"127.0.0.1:5455".parse::<SocketAddr>().expect("addr").into()).expect("bind");
        Box::new((l, c, a, l6, c6, a6, u6, u4)) as Box<dyn Send>
    })
}

/// `--tos` (`tos:`, `tclass:`, `class_id:` after the `-e` details) and `--inet-sockopt`
/// (`inet-sockopt: (...)` on its own line, or on the line with `-O`), byte for byte, on
/// TCP v4 and v6 and UDP, alone, together and with `-e -m -o -p -O --cgroup`, with
/// non-zero values set by the fixture; `-i` with idle times masked.
#[test]
fn tos_and_inet_sockopt_are_byte_identical() {
    let ns = NetNs::new("tos");
    let _f = populate(&ns);
    let _t = populate_tos(&ns);
    let text = ns.sockstat_ok(&["-tan", "--tos"]);
    for want in [" tos:0x28 class_id:0x3", " tos:0x10 class_id:0", " tclass:0x20 class_id:0"] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
    assert!(ns.sockstat_ok(&["-uan", "--tos"]).contains(" tclass:0xb8 "));
    let text = ns.sockstat_ok(&["-tuan", "--inet-sockopt"]);
    for want in [
        "\n\tinet-sockopt: ( is_icsk mc_loop mc_all)",
        "( is_icsk freebind mc_loop)",
        "( recverr mc_loop transparent bind_addr_no_port)",
    ] {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }
    compare_all(
        &ns,
        &[
            &["-tan", "--tos"],
            &["-ta", "--tos"],
            &["-tan4", "--tos"],
            &["-tan6", "--tos"],
            &["-tane", "--tos"],
            &["-taneO", "--tos"],
            &["-tanem", "--tos"],
            &["-tanop", "--tos"],
            &["-tane", "--tos", "--cgroup"],
            &["-uan", "--tos"],
            &["-uane", "--tos"],
            &["-uaem", "--tos"],
            &["-tuan", "--tos"],
            &["-xa", "--tos"],
            &["-tan", "--inet-sockopt"],
            &["-tanO", "--inet-sockopt"],
            &["-tan6", "--inet-sockopt"],
            &["-tane", "--inet-sockopt"],
            &["-tanem", "--inet-sockopt"],
            &["-tanemO", "--inet-sockopt"],
            &["-tanp", "--inet-sockopt", "--cgroup"],
            &["-uan", "--inet-sockopt"],
            &["-uane", "--inet-sockopt"],
            &["-uanemO", "--inet-sockopt"],
            &["-tuxa", "--inet-sockopt"],
            &["-tan", "--tos", "--inet-sockopt"],
            &["-tuaneO", "--tos", "--inet-sockopt"],
            &["-tuanem", "--tos", "--inet-sockopt"],
            &["-te", "--tos", "--inet-sockopt", "state", "established"],
            &["-tan", "--tos", "--inet-sockopt", "sport", "=", ":8181"],
        ],
        same,
    );
    compare_all(
        &ns,
        &[
            &["-tani", "--tos"],
            &["-tani", "--inet-sockopt"],
            &["-tanmi", "--tos", "--inet-sockopt"],
            &["-tanmiO", "--tos", "--inet-sockopt"],
            &["-uani", "--tos", "--inet-sockopt"],
        ],
        mask_idle,
    );
    // Like the other detail options: auto asks the kernel, agent refuses.
    for opt in ["--tos", "--inet-sockopt"] {
        let out = ns.sockstat(&["--source", "agent", "--socket", "/nonexistent/agent.sock", "-tan", opt]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(opt) && err.contains("--source agent"), "{opt}: {err}");
        let auto = ns.sockstat_ok(&["--source", "auto", "--socket", "/nonexistent/agent.sock", "-tan", opt]);
        assert!(auto.contains(if opt == "--tos" { " tos:0x28" } else { "inet-sockopt: (" }), "{auto}");
    }
}

#[test]
fn tcp_info_matches_ss_but_for_idle_times() {
    let ns = NetNs::new("tcpinfo");
    let _f = populate(&ns);
    compare_all(&ns, &[&["-tani"], &["-tai"], &["-tanemi"], &["-tanmiO"], &["-tanoi6"], &["-uani"]], mask_idle);
    // The masking keeps every field name: `-i` really printed them.
    let text = ns.sockstat_ok(&["-tani"]);
    for field in ["rto:", "rtt:", "mss:", "cwnd:", "bytes_acked:", "segs_out:", "lastsnd:", "rcv_space:", "minrtt:"] {
        assert!(text.contains(field), "{field} missing from\n{text}");
    }
}

/// One socket's lines of `-tani` output (its row, then its detail lines), masked.
fn records(text: &str) -> (String, Vec<String>) {
    let text = mask_idle(text);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().to_owned();
    let mut records: Vec<String> = Vec::new();
    for line in lines {
        match records.last_mut() {
            Some(last) if line.starts_with('\t') => {
                last.push('\n');
                last.push_str(line);
            }
            _ => records.push(line.to_owned()),
        }
    }
    (header, records)
}

/// The local and remote port of a record's row.
fn ports(record: &str) -> (u16, u16) {
    let cols: Vec<&str> = record.split_whitespace().collect();
    let port = |c: &str| c.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (port(cols[3]), port(cols[4]))
}

#[test]
fn a_large_detailed_dump_is_split_between_threads_and_keeps_every_row() {
    // Over 10k TCP sockets (the threshold of the split), IPv4 and IPv6, the client ends
    // bound to ports spread over the whole ephemeral range so that every share has some.
    let ns = NetNs::new("split");
    let (v4, v6) = (5_200u16, 200u16);
    let _keep = ns.enter(move || {
        let mut keep: Vec<Box<dyn Send>> = Vec::new();
        // Ports 32800 and up, over 27000 of the default range (32768-60999).
        for (addr, n) in [("127.0.0.1", v4), ("::1", v6)] {
            let step = 27_000 / n;
            let ip: std::net::IpAddr = addr.parse().expect("address");
            let l = TcpListener::bind(SocketAddr::new(ip, 7000)).expect("listen");
            for i in 0..n {
                let c = Socket::new(if ip.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 }, Type::STREAM, None)
                    .expect("socket");
                c.bind(&SocketAddr::new(ip, 32_800 + i * step).into()).expect("bind the client");
                c.connect(&SocketAddr::new(ip, 7000).into()).expect("connect");
                keep.push(Box::new(c));
                keep.push(Box::new(l.accept().expect("accept").0));
            }
            keep.push(Box::new(l));
        }
        keep
    });
    thread::sleep(Duration::from_millis(300));
    let (lo, hi) = {
        let range = ns.command("cat").arg("/proc/sys/net/ipv4/ip_local_port_range").output().expect("cat");
        let text = String::from_utf8_lossy(&range.stdout).into_owned();
        let mut it = text.split_whitespace().map(|p| p.parse::<u32>().expect("port"));
        (it.next().expect("low"), it.next().expect("high"))
    };
    let parts = thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, 4) as u32;
    assert!(parts > 1, "this test needs two cores: the split needs them");
    // The share of a row: its client-side port (the local one when ephemeral, else the
    // remote one) in `parts` equal pieces of the ephemeral range.
    let share = |record: &str| {
        let (local, remote) = ports(record);
        let key = if (lo..=hi).contains(&u32::from(local)) { u32::from(local) } else { u32::from(remote) };
        (key.saturating_sub(lo) / ((hi - lo + 1) / parts)).min(parts - 1)
    };
    let mut last = String::new();
    for _ in 0..4 {
        let before = ns.ss(&["-tani"]);
        let ours = ns.sockstat_ok(&["-tani"]);
        let (ss_header, ss_records) = records(&before);
        let (header, got) = records(&ours);
        let mut sorted = (ss_records.clone(), got.clone());
        sorted.0.sort();
        sorted.1.sort();
        if header != ss_header || sorted.0 != sorted.1 {
            last = format!("not the same rows: {} from ss, {} from sockstat", ss_records.len(), got.len());
            thread::sleep(Duration::from_millis(150));
            continue;
        }
        assert_eq!(got.len(), 2 * usize::from(v4 + v6) + 2, "{header}");
        // Family by family (IPv4 first, as ss), listeners first; then the other rows
        // share by share, each share in the kernel's order (the order ss printed them).
        let v6_at = got.iter().position(|r| r.contains("[::1]")).expect("IPv6 rows");
        assert!(got[v6_at..].iter().all(|r| r.contains("[::1]")), "IPv4 after IPv6");
        for family in [&got[..v6_at], &got[v6_at..]] {
            assert!(family[0].starts_with("LISTEN"), "{}", family[0]);
            let rest = &family[1..];
            assert!(rest.iter().all(|r| !r.starts_with("LISTEN")));
            let shares: Vec<u32> = rest.iter().map(|r| share(r)).collect();
            assert!(shares.windows(2).all(|w| w[0] <= w[1]), "rows not share by share");
            assert!(shares.first() != shares.last(), "every row in one share: the dump was not split");
            for s in 0..parts {
                let ours: Vec<&String> = rest.iter().filter(|r| share(r) == s).collect();
                let theirs: Vec<&String> = ss_records.iter().filter(|r| ours.contains(r)).collect();
                assert_eq!(ours, theirs, "share {s} is not in the kernel's order");
            }
        }
        // `--source kernel`: one dump, the kernel's order, byte for byte. The idle times
        // are masked, but their digits still set the column widths: a dump on each side of
        // a power of ten (the sockets are about a second old) pads differently, so try
        // again, as for the rows above.
        let kernel = mask_idle(&ns.sockstat_ok(&["--source", "kernel", "-tani"]));
        let after = mask_idle(&ns.ss(&["-tani"]));
        if kernel != mask_idle(&before) && kernel != after {
            last = "--source kernel -tani differs from ss -tani before and after it".into();
            thread::sleep(Duration::from_millis(150));
            continue;
        }
        return;
    }
    panic!("{last}");
}

#[test]
fn json_has_every_column_typed() {
    let ns = NetNs::new("json");
    let _f = populate(&ns);
    let text = ns.ss(&["-tanH"]);
    let json = ns.sockstat_ok(&["-tan", "--json"]);
    let rows: Vec<&str> = text.lines().collect();
    let objs: Vec<serde_json::Value> =
        json.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(rows.len(), objs.len(), "{text}\n{json}");
    for (row, o) in rows.iter().zip(&objs) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(o["state"], cols[0], "{row} / {o}");
        assert_eq!(o["recv_q"].as_i64().map(|v| v.to_string()).as_deref(), Some(cols[1]));
        assert_eq!(o["send_q"].as_i64().map(|v| v.to_string()).as_deref(), Some(cols[2]));
        let port = |p: &serde_json::Value| match p.as_u64() {
            Some(0) => "*".to_owned(),
            Some(n) => n.to_string(),
            None => panic!("port is a number: {o}"),
        };
        assert!(cols[3].ends_with(&format!(":{}", port(&o["local_port"]))), "{row} / {o}");
        assert!(cols[4].ends_with(&format!(":{}", port(&o["peer_port"]))), "{row} / {o}");
    }
    // Options add their typed fields.
    let json = ns.sockstat_ok(&["-tanoemip", "--json"]);
    let est = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        // The accepted server side, with the client's 3000 unread bytes.
        .find(|o| o["state"] == "ESTAB" && o["recv_q"] == 3000)
        .expect("an established socket");
    assert!(est["inode"].as_u64().is_some_and(|i| i > 0) && est["cookie"].is_u64(), "{est}");
    assert!(est["skmem"]["rb"].is_u64() && est["tcp_info"]["rtt"].is_u64(), "{est}");
    assert!(est["users"][0]["pid"].as_u64() == Some(u64::from(std::process::id())), "{est}");
}

#[test]
fn diag_dump_round_trips_with_ss() {
    let ns = NetNs::new("dump");
    let _f = populate(&ns);
    let dir = std::env::temp_dir().join(format!("sockstat-dump-{}", ns.name));
    std::fs::create_dir_all(&dir).expect("dir");
    let ss_file = dir.join("ss.dump");
    let our_file = dir.join("sockstat.dump");
    let sel = ["-t4a"];
    let live = ns.ss(&["-t4an"]);
    assert!(ns.ss(&[&sel[..], &["-D", ss_file.to_str().expect("utf-8")]].concat()).is_empty());
    assert!(ns.sockstat_ok(&[&sel[..], &["-D", our_file.to_str().expect("utf-8")]].concat()).is_empty());
    for file in [&ss_file, &our_file] {
        for tool in ["ss".into(), sockstat_bin()] {
            let out = Command::new(&tool).args(["-t4an"]).env("TCPDIAG_FILE", file).output().expect("run");
            assert!(out.status.success(), "{tool:?} {file:?}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout), live, "{tool:?} reading {file:?}");
        }
    }
    // As ss reads a recording: its first dump only (the IPv4 half of a `-ta` recording),
    // every record of it through the FILTER expression, whatever the state options say.
    let both = dir.join("both.dump");
    assert!(ns.ss(&["-ta", "-D", both.to_str().expect("utf-8")]).is_empty());
    let read = |tool: &std::path::Path, args: &[&str]| {
        let out = Command::new(tool).args(args).env("TCPDIAG_FILE", &both).output().expect("run");
        assert!(out.status.success(), "{tool:?} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let ss = std::path::Path::new("ss");
    for args in [&["-tn"][..], &["-tln"], &["-tn", "dport", "=", ":8080"], &["-tn", "sport", "=", ":9090"]] {
        assert_eq!(read(&sockstat_bin(), args), read(ss, args), "{args:?} from a recording");
    }
    assert!(!read(ss, &["-tn"]).contains("[::1]"), "ss reads the IPv4 dump only");
    // --tcpdiag-all: every dump, selected as a live dump is (the IPv6 listener included).
    assert_eq!(read(&sockstat_bin(), &["-tln", "--tcpdiag-all"]), ns.ss(&["-tln"]));
    assert_eq!(
        read(&sockstat_bin(), &["-tn", "--tcpdiag-all", "dport", "=", ":8080"]),
        ns.ss(&["-tn", "dport", "=", ":8080"])
    );
    // Truncated: an error naming the byte offset, never a panic.
    let bytes = std::fs::read(&ss_file).expect("dump");
    let cut = dir.join("cut.dump");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).expect("write");
    let out = Command::new(sockstat_bin()).args(["-tan"]).env("TCPDIAG_FILE", &cut).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("byte ") && err.contains("TCPDIAG_FILE"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One established pair to port `port`, kept open by the returned sockets.
fn pair(ns: &NetNs, port: u16) -> Box<dyn Send> {
    ns.enter(move || {
        let l = TcpListener::bind(("127.0.0.1", port)).expect("listen");
        let c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (a, _) = l.accept().expect("accept");
        Box::new((l, c, a)) as Box<dyn Send>
    })
}

#[test]
fn kill_closes_what_ss_would_and_needs_cap_net_admin() {
    let ns = NetNs::new("kill");
    let _a = pair(&ns, 7001);
    let _b = pair(&ns, 7002);
    let ss_out = ns.ss(&["-tnK", "dport", "=", ":7001"]);
    let ours = ns.sockstat_ok(&["-tnK", "dport", "=", ":7002"]);
    let norm = |t: &str, p: &str| {
        // Ephemeral client ports differ between the two pairs: keep the shape only.
        t.replace(p, "PORT").split_whitespace().take(5).collect::<Vec<_>>().join(" ")
    };
    assert_eq!(ss_out.lines().count(), 2, "{ss_out}");
    assert_eq!(norm(&ss_out, "7001"), norm(&ours, "7002"));
    assert!(ns.ss(&["-tn", "dport", "=", ":7002"]).lines().count() == 1, "killed: only the header is left");

    // Without CAP_NET_ADMIN: refused before any dump, naming the capability.
    let out = ns
        .command("setpriv")
        .args(["--bounding-set", "-net_admin", "--inh-caps", "-net_admin"])
        .arg(sockstat_bin())
        .args(["-tK"])
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("CAP_NET_ADMIN"), "{err}");
}

#[test]
fn netns_filter_file_and_selinux_options_match_ss() {
    let ns = NetNs::new("opts");
    let _f = populate(&ns);
    let run = |prog: &std::path::Path, args: &[&str]| {
        let out = Command::new(prog).args(args).output().expect("run");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).replace("sockstat:", "ss:"),
        )
    };
    let ss = std::path::Path::new("ss");
    let ours = sockstat_bin();
    // -N from the host namespace: stdout and status (ss also warns "Failed to find cgroup2
    // mount" on stderr for each cgroup it cannot name, sockstat does not).
    for args in
        [&["-N", ns.name.as_str(), "-tan"][..], &["-N", ns.name.as_str(), "-tanoe"], &["-N", ns.name.as_str(), "-xap"]]
    {
        // Timers count down: retry when a second boundary passed between the two runs.
        let same_once = || {
            let (a, b) = (run(&ours, args), run(ss, args));
            if (&a.0, &a.1) == (&b.0, &b.1) { Ok(()) } else { Err(format!("{a:?}\n{b:?}")) }
        };
        let r = same_once().or_else(|_| same_once()).or_else(|_| same_once());
        assert!(r.is_ok(), "{args:?}: {r:?}");
    }
    assert_eq!(run(&ours, &["-N", "sockstat-no-such-ns", "-t"]), run(ss, &["-N", "sockstat-no-such-ns", "-t"]));
    // -F FILE: the expression read from a file (comments skipped).
    let file = std::env::temp_dir().join(format!("{}-filter", ns.name));
    std::fs::write(&file, "# the listener's peers\ndport = :8080 or sport = :8080\n").expect("filter file");
    let f = file.to_str().expect("utf-8");
    compare_all(&ns, &[&["-tan", "-F", f]], same);
    assert_eq!(run(&ours, &["-t", "-F", "/nonexistent"]), run(ss, &["-t", "-F", "/nonexistent"]));
    let _ = std::fs::remove_file(&file);
    // -Z / -z without SELinux: ss's message and status.
    for opt in ["-Z", "-z"] {
        assert_eq!(run(&ours, &["-t", opt]), run(ss, &["-t", opt]), "{opt}");
    }
}

/// The cgroup2 mount point, from /proc/self/mountinfo.
fn cgroup2_mount() -> std::path::PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read /proc/self/mountinfo");
    info.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next() == Some("cgroup2"))
                .then(|| left.split_whitespace().nth(4).map(Into::into))?
        })
        .expect("no cgroup2 mount: mount one (mount -t cgroup2 none /sys/fs/cgroup/unified)")
}

/// `PROGRAM ARGS` run in the namespace with nsenter, which (unlike `ip netns exec`) keeps
/// this mount namespace and so the cgroup2 mount that `cgroup` conditions resolve paths
/// under (without one, ss and sockstat both refuse the path).
fn in_netns_keeping_mounts(ns: &NetNs, program: &std::ffi::OsStr, args: &[&str]) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", ns.name))
        .arg(program)
        .args(args)
        .output()
        .expect("nsenter (apt-get install util-linux)");
    assert!(out.status.success(), "{program:?} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// [`compare_all`] through [`in_netns_keeping_mounts`].
fn compare_keeping_mounts(ns: &NetNs, cases: &[&[&str]]) {
    let ss = std::ffi::OsStr::new("ss");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|args| {
            let theirs = in_netns_keeping_mounts(ns, ss, args);
            let ours = in_netns_keeping_mounts(ns, sockstat_bin().as_os_str(), args);
            (ours != theirs).then(|| format!("{args:?}\n--- ss:\n{theirs}\n--- sockstat:\n{ours}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `fwmark` and `cgroup` conditions select what ss selects: sockets with SO_MARK set and
/// sockets created by a process in a cgroup of the test's own, TCP, UDP and UNIX (where
/// ss's mark and cgroup id are 0), with and without an agent running (whose table has
/// neither value: `auto` asks the kernel, `--source agent` refuses).
#[test]
fn fwmark_and_cgroup_conditions_select_what_ss_selects() {
    let ns = NetNs::new("mark");
    let mount = cgroup2_mount();
    let name = format!("sockstat-test-{}", std::process::id());
    let cg = mount.join(&name);
    let _ = std::fs::remove_dir(&cg);
    std::fs::create_dir(&cg).unwrap_or_else(|e| panic!("create cgroup {}: {e}", cg.display()));
    // The owner joins the cgroup before it makes a socket: a socket's cgroup is its
    // creator's at creation. (`ip netns exec` mounts its own /sys, so the test moves it.)
    let code = "import socket,sys\n\
        sys.stdin.readline()\n\
        l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_MARK,0x17); l.bind(('127.0.0.1',9100)); l.listen()\n\
        c=socket.socket(); c.setsockopt(socket.SOL_SOCKET,socket.SO_MARK,0x1f0); c.connect(('127.0.0.1',9100))\n\
        a,_=l.accept()\n\
        u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.setsockopt(socket.SOL_SOCKET,socket.SO_MARK,0x17); u.bind(('127.0.0.1',9101))\n\
        x=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); x.bind('\\0sockstat-mark')\n\
        print('ready',flush=True)\n\
        sys.stdin.read()\n";
    let mut owner = sockstat_tests::spawn_piped(&ns, "python3", &["-c", code]);
    // `ip netns exec` execs python3: the child's pid is the owner's.
    std::fs::write(cg.join("cgroup.procs"), owner.id().to_string()).expect("move the owner into the test cgroup");
    owner.stdin.as_mut().unwrap().write_all(b"go\n").expect("start the owner");
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(owner.stdout.take().unwrap()), &mut ready).unwrap();
    assert_eq!(ready.trim(), "ready", "the socket owner did not start");
    // Sockets of the test process, in its own cgroup, without marks.
    let _f = populate(&ns);
    let path = format!("/{name}");
    let cases: Vec<Vec<&str>> = vec![
        vec!["-tan", "fwmark", "=", "0x17"],
        vec!["-tan", "fwmark", "!=", "0x17"],
        vec!["-tan", "fwmark", "0x10/0xf0"],
        vec!["-tan", "fwmark", "0"],
        vec!["-tan", "not", "fwmark", "0/0xffff"],
        vec!["-tan", "cgroup", "=", &path],
        vec!["-tan", "cgroup", "!=", &path],
        vec!["-tan", "cgroup", &path, "or", "sport", "=", ":8080"],
        vec!["-tan", "(", "cgroup", &path, ")", "and", "fwmark", "0x17"],
        vec!["-uan", "fwmark", "0x17"],
        vec!["-uan", "cgroup", &path],
        vec!["-xa", "fwmark", "0"],
        vec!["-xa", "cgroup", &path],
        vec!["-tuxan", "fwmark", "!=", "0x17"],
    ];
    let cases: Vec<&[&str]> = cases.iter().map(Vec::as_slice).collect();
    // The conditions select something, and not everything: the comparison means something.
    let marked = in_netns_keeping_mounts(&ns, sockstat_bin().as_os_str(), cases[0]);
    assert_eq!(marked.lines().count(), 3, "the listener with mark 0x17 and the socket it accepted:\n{marked}");
    let grouped = in_netns_keeping_mounts(&ns, sockstat_bin().as_os_str(), cases[5]);
    assert_eq!(grouped.lines().count(), 4, "the owner's listener and its connection's two ends:\n{grouped}");
    compare_keeping_mounts(&ns, &cases);
    {
        let agent = sockstat_tests::Agent::start(&ns, &[]);
        compare_keeping_mounts(&ns, &cases);
        let refused = ns.sockstat(&["--source", "agent", "--socket", agent.socket_arg(), "-tan", "fwmark", "0x17"]);
        assert!(!refused.status.success());
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("fwmark or cgroup condition") && err.contains("--source agent"), "{err}");
    }
    drop(owner.stdin.take());
    let _ = owner.wait();
    std::fs::remove_dir(&cg).unwrap_or_else(|e| panic!("remove cgroup {}: {e}", cg.display()));
}

/// `-i` on a socket with TCP-MD5 keys: ` md5keys:ADDR/PREFIX=KEY,...` as ss prints it, but
/// for where the key bytes go: ss writes them with printf around its column buffer, so
/// they come out before everything else; sockstat keeps them in the row. Everything else
/// is byte for byte: ss 6.1's output is sockstat's with the keys moved to the top; ss 7.1
/// prints them in the row, as sockstat does.
#[test]
fn md5_keys_are_printed_in_the_row() {
    let ns = NetNs::new("md5");
    let code = "import socket,struct,sys\n\
        l=socket.socket(); l.bind(('127.0.0.1',7300)); l.listen()\n\
        def key(ip,k):\n    a=struct.pack('<H',socket.AF_INET)+struct.pack('>H',0)+socket.inet_aton(ip)\n    a+=b'\\0'*(128-len(a))\n    l.setsockopt(socket.IPPROTO_TCP,14,a+struct.pack('<BBHi',0,0,len(k),0)+k+b'\\0'*(80-len(k)))\n\
        key('127.0.0.1',b'se cr,et\\x01\\\\')\n\
        key('10.1.0.0',b'abc')\n\
        print('ready',flush=True)\n\
        sys.stdin.read()\n";
    let mut owner = sockstat_tests::spawn_ready(&ns, "python3", &["-c", code]);
    for args in [&["-tlni"][..], &["-tlniO"], &["-tlnie"]] {
        let ours = ns.sockstat_ok(args);
        let keys = ["abc", "se\\040cr\\054et\\001\\134"];
        assert!(
            ours.contains(&format!(" md5keys:10.1.0.0/32={},127.0.0.1/32={}", keys[0], keys[1])),
            "{args:?}:\n{ours}"
        );
        if sockstat_tests::reference() == "7.1" {
            // ss 7.1 writes the keys into the row too.
            assert_eq!(ours, ns.ss(args), "{args:?}");
        } else {
            let moved = format!("{}{}", keys.concat(), ours.replacen(keys[0], "", 1).replacen(keys[1], "", 1));
            assert_eq!(moved, ns.ss(args), "{args:?}");
        }
    }
    drop(owner.stdin.take());
    let _ = owner.wait();
}
