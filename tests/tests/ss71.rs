//! sockstat `--ss-compat 7.1` against iproute2 7.1's ss (`SS_7_1`, built by `cargo xtask
//! test` from ../shared/oracles), on what only 7.1 prints or has: the Process column only
//! with `-p`, no padding of the last column, `$COLUMNS`, timers of a few seconds in
//! seconds, escaped process names, bound-but-inactive sockets (`-B`, and in `SS_CONN`),
//! `-Q`, the `-i` fields 7.1 added, the `cfm` packet protocol; and the default: the installed ss's version, found
//! once and cached.
//!
//! Compared byte for byte, each case as ss, sockstat, ss (sockstat must equal one of the
//! two), after masking what moves between runs: the idle times of `-i` and the digits of
//! running timers (their units stay: `4.876sec` becomes `#.###sec`).

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::{Child, Stdio},
    thread,
    time::Duration,
};

use socket2::{Domain, Socket, Type};
use sockstat_tests::{NetNs, mask_idle, sockstat_bin, spawn_ready, ss71_bin, without_self};

/// The sockets every case looks at, kept open by the fixture.
struct Fixture {
    _keep: Vec<Box<dyn Send>>,
    child: Child,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Closing stdin ends the child (it waits on it).
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A listener with an established pair, a pair whose client keeps a keepalive timer of a
/// few seconds, bound-but-inactive TCP sockets (v4 and v6), a UDP socket, and a process
/// whose name has a control character and non-ASCII bytes, holding a listener of its own.
fn populate(ns: &NetNs) -> Fixture {
    let keep = ns.enter(|| {
        let mut keep: Vec<Box<dyn Send>> = Vec::new();
        let l = TcpListener::bind("127.0.0.1:7100").expect("listen");
        let c = TcpStream::connect("127.0.0.1:7100").expect("connect");
        let (a, _) = l.accept().expect("accept");
        let ka = Socket::from(c.try_clone().expect("clone"));
        ka.set_keepalive(true).expect("keepalive");
        // A keepalive timer that stays between 1 and 9 seconds for a while: 9 s idle,
        // then probes every 9 s.
        ka.set_tcp_keepalive(
            &socket2::TcpKeepalive::new().with_time(Duration::from_secs(9)).with_interval(Duration::from_secs(9)),
        )
        .expect("keepidle");
        keep.push(Box::new((l, c, a)));
        for addr in ["127.0.0.1:7101", "[::1]:7102"] {
            let addr: SocketAddr = addr.parse().expect("addr");
            let b = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
            b.bind(&addr.into()).expect("bind");
            keep.push(Box::new(b));
        }
        keep.push(Box::new(std::net::UdpSocket::bind("127.0.0.1:7103").expect("udp")));
        // ETH_P_CFM, which ss 7.1 names `cfm`.
        keep.push(Box::new(sockstat_tests::packet_socket(libc::SOCK_DGRAM, 0x8902, 0, None)));
        keep
    });
    // prctl(PR_SET_NAME) with a tab and "é": ss 7.1 prints "sst.n??".
    let script = r#"
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, b"sst\tn\xc3\xa9", 0, 0, 0)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 7104)); s.listen()
print("ready", flush=True)
sys.stdin.read()
"#;
    let child = spawn_ready(ns, "python3", &["-c", script]);
    Fixture { _keep: keep, child }
}

/// Digits of running timers masked, units kept; `-i`'s idle times masked.
fn mask(text: &str) -> String {
    let text = mask_idle(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("timer:(") {
        let (head, tail) = rest.split_at(at);
        out.push_str(head);
        let end = tail.find(')').map_or(tail.len(), |e| e + 1);
        let (timer, after) = tail.split_at(end);
        // timer:(NAME,VALUE,RETRANS): only VALUE moves.
        let mut parts: Vec<String> = timer.splitn(3, ',').map(str::to_owned).collect();
        if let Some(v) = parts.get_mut(1) {
            *v = v.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).collect();
        }
        out.push_str(&parts.join(","));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// ss 7.1 and `sockstat --ss-compat 7.1` (through the environment variable) with `args`
/// and `env`, ss / sockstat / ss; the mismatching cases.
fn compare(ns: &NetNs, cases: &[&[&str]], env: &[(&str, &str)]) -> Vec<String> {
    let ss = ss71_bin();
    let run_ss = |args: &[&str]| {
        let out = ns.command(&ss).args(args).envs(env.iter().copied()).output().expect("run ss 7.1");
        assert!(out.status.success(), "ss 7.1 {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        mask(&without_self(&String::from_utf8(out.stdout).expect("UTF-8")))
    };
    let mut failures = Vec::new();
    for args in cases {
        let mut last = String::new();
        let mut matched = false;
        for _ in 0..4 {
            let before = run_ss(args);
            let out = ns
                .command(sockstat_bin())
                .args(*args)
                .env("SOCKSTAT_SS_COMPAT", "7.1")
                .envs(env.iter().copied())
                .output()
                .expect("run sockstat");
            assert!(out.status.success(), "sockstat {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            let ours = mask(&without_self(&String::from_utf8(out.stdout).expect("UTF-8")));
            let after = run_ss(args);
            if ours == before || ours == after {
                matched = true;
                break;
            }
            last = format!("{args:?} {env:?}\n--- ss 7.1:\n{before}\n--- sockstat:\n{ours}");
            thread::sleep(Duration::from_millis(150));
        }
        if !matched {
            failures.push(last);
        }
    }
    failures
}

#[test]
fn output_matches_ss_7_1() {
    let ns = NetNs::new("ss71");
    let _f = populate(&ns);
    // Let the keepalive timer leave its first second, so it prints in seconds.
    thread::sleep(Duration::from_millis(1200));
    let cases: &[&[&str]] = &[
        &["-tan"],
        &["-ta"],
        &["-t"],
        &["-tn"],
        &["-tln"],
        &["-tB"],
        &["-tBn"],
        &["-Bn"],
        &["-tn", "state", "bound-inactive"],
        &["-tan", "exclude", "bound-inactive"],
        &["-tan", "state", "connected"],
        &["-tanQ"],
        &["-tQn"],
        &["-uanQ"],
        &["-tanp"],
        &["-tanpQ"],
        &["-tanT"],
        &["-tanpT"],
        &["-tano"],
        &["-tanoe"],
        &["-tanop"],
        &["-tanm"],
        &["-tani"],
        &["-taniO"],
        &["-tanHQ"],
        &["-xan"],
        &["-xanp"],
        &["-xane"],
        &["-uan"],
        &["-uanp"],
        &["-an"],
        &["-anp"],
        &["-A", "netlink", "-a", "-en"],
        &["-A", "netlink", "-a", "-enp"],
        &["-A", "netlink", "-a", "-mn"],
        &["-0an"],
        &["-0a"],
    ];
    let mut failures = compare(&ns, cases, &[]);
    // ss 7.1 takes the width from $COLUMNS when stdout is not a terminal.
    failures.extend(compare(&ns, &[&["-tan"], &["-tanp"], &["-tano"], &["-an"]], &[("COLUMNS", "132")]));
    failures.extend(compare(&ns, &[&["-tanp"]], &[("COLUMNS", "60")]));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn seven_one_output_differs_where_ss_does() {
    // The differences the comparison above relies on are really there: the same sockets
    // printed for 6.1 and for 7.1 differ as the two ss do.
    let ns = NetNs::new("ss71d");
    let _f = populate(&ns);
    let v61 = String::from_utf8(ns.sockstat_as("6.1", &["-tanp"]).stdout).expect("UTF-8");
    let v71 = String::from_utf8(ns.sockstat_as("7.1", &["-tanp"]).stdout).expect("UTF-8");
    assert!(v61.contains("users:((\"sst\tn\u{e9}\""), "{v61}");
    assert!(v71.contains("users:((\"sst.n??\""), "{v71}");
    let head61 = String::from_utf8(ns.sockstat_as("6.1", &["-tn"]).stdout).expect("UTF-8");
    let head71 = String::from_utf8(ns.sockstat_as("7.1", &["-tn"]).stdout).expect("UTF-8");
    assert!(head61.lines().next().is_some_and(|h| h.ends_with("Process")), "{head61}");
    assert!(head71.lines().next().is_some_and(|h| h.ends_with("Port")), "{head71}");
    let packet61 = String::from_utf8(ns.sockstat_as("6.1", &["-0a"]).stdout).expect("UTF-8");
    let packet71 = String::from_utf8(ns.sockstat_as("7.1", &["-0a"]).stdout).expect("UTF-8");
    assert!(packet61.contains("[35074]:") && packet71.contains("cfm:"), "{packet61}\n{packet71}");
    // Bound but inactive sockets: in ss 7.1's SS_CONN, not in 6.1's.
    assert!(head71.contains("127.0.0.1:7101") && !head61.contains("127.0.0.1:7101"), "{head61}\n{head71}");
}

/// `-p` for ss 7.1, through an agent's owners iterator and through a walk of /proc: a
/// process name that is not UTF-8 (a 0xff byte) and one with non-ASCII letters escape
/// byte by byte as ss 7.1 escapes them (`x?y??`), not from a replacement character.
#[test]
fn owners_escape_as_ss_7_1() {
    let ns = NetNs::new("ss71a");
    let agent = sockstat_tests::Agent::start(&ns, &[]);
    let script = r#"
import ctypes, socket, sys
ctypes.CDLL(None).prctl(15, b"x\xffy\xc3\xa9", 0, 0, 0)
s = socket.socket(); s.bind(("127.0.0.1", 7105)); s.listen()
print("ready", flush=True)
sys.stdin.read()
"#;
    let mut child = spawn_ready(&ns, "python3", &["-c", script]);
    let args = ["-tlnp", "sport", "=", ":7105"];
    let ss = ns.command(ss71_bin()).args(args).output().expect("run ss 7.1");
    let ours = ns
        .command(sockstat_bin())
        .args(["--source", "agent", "--socket", agent.socket_arg()])
        .args(args)
        .env("SOCKSTAT_SS_COMPAT", "7.1")
        .output()
        .expect("run sockstat");
    assert!(ours.status.success(), "{}", String::from_utf8_lossy(&ours.stderr));
    assert!(String::from_utf8_lossy(&ss.stdout).contains("(\"x?y??\",pid="), "{}", String::from_utf8_lossy(&ss.stdout));
    assert_eq!(String::from_utf8_lossy(&ours.stdout), String::from_utf8_lossy(&ss.stdout), "through the agent");
    let walked = ns
        .command(sockstat_bin())
        .args(["--source", "kernel"])
        .args(args)
        .env("SOCKSTAT_SS_COMPAT", "7.1")
        .output()
        .expect("run sockstat");
    assert!(walked.status.success(), "{}", String::from_utf8_lossy(&walked.stderr));
    assert_eq!(String::from_utf8_lossy(&walked.stdout), String::from_utf8_lossy(&ss.stdout), "through /proc");
    drop(child.stdin.take());
    let _ = child.wait();
}

#[test]
fn default_is_the_installed_ss_version_cached() {
    let ns = NetNs::new("ss71v");
    let _f = populate(&ns);
    // A PATH whose ss is 7.1's, then one whose ss is the system's 6.1.
    let dir = std::env::temp_dir().join(format!("sockstat-ssver-{}", ns.name));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::os::unix::fs::symlink(ss71_bin(), dir.join("ss")).expect("symlink");
    let runtime = dir.join("runtime");
    std::fs::create_dir_all(&runtime).expect("runtime dir");
    let run = |path: &str, tool: &Path| {
        let out = ns
            .command(tool)
            .arg("-tn")
            .env_remove("SOCKSTAT_SS_COMPAT")
            .env("PATH", path)
            .env("XDG_RUNTIME_DIR", &runtime)
            .stderr(Stdio::piped())
            .output()
            .expect("run");
        assert!(out.status.success(), "{tool:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let system_path = std::env::var("PATH").unwrap_or_default();
    let with71 = format!("{}:{system_path}", dir.display());
    let ours = run(&with71, &sockstat_bin());
    assert_eq!(ours, run(&with71, &ss71_bin()), "with ss 7.1 installed");
    let head = ours.lines().next().unwrap_or_default();
    assert!(head.ends_with("Port"), "7.1's header: {head}");
    // The system's ss (6.1 on these machines) once 7.1's is off the PATH.
    let without: Vec<_> = std::env::split_paths(&system_path)
        .filter(|p| !p.starts_with(std::env::temp_dir()) && !p.ends_with("ss71-path"))
        .collect();
    let without = std::env::join_paths(without).expect("PATH").into_string().expect("UTF-8 PATH");
    let sys_ss = run(&without, Path::new("ss"));
    assert_eq!(run(&without, &sockstat_bin()), sys_ss, "with the system's ss");
    // The version is asked once per ss binary: the cache names each, with its version.
    let cache = ["/run/sockstat/ss-version", &format!("{}/sockstat/ss-version", runtime.display())]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .expect("the version cache is written");
    assert!(cache.lines().count() == 1 && cache.contains("\t"), "{cache}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The BTF of the two socket-local storage maps of [`bpf_maps_match_ss_7_1`]:
/// `struct sock_val { __u32 a; unsigned long long b; char name[8]; int arr[3]; enum color
/// c; struct { unsigned short x; char y; } in; unsigned int f:3, g:5; }` (48 bytes), and
/// `struct pair { long long n; union { int i; unsigned char b[4]; } u; float f; }` (16).
/// Returns the blob, the `int` key's id and the two value ids.
fn storage_btf() -> (Vec<u8>, u32, u32, u32) {
    use sockstat::model::btf::{BtfBuilder, INT_SIGNED};
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, INT_SIGNED);
    let uint = b.int("unsigned int", 4, 0);
    let ull = b.int("long long unsigned int", 8, 0);
    let ch = b.int("char", 1, INT_SIGNED);
    let ush = b.int("short unsigned int", 2, 0);
    let u32t = b.typedef("__u32", uint);
    let name = b.array(ch, int, 8);
    let arr = b.array(int, int, 3);
    let color = b.enumeration("color", 4, false, &[("RED", 0), ("GREEN", 1), ("BLUE", 2)]);
    let inner = b.composite(false, "", 4, &[("x", ush, 0, 0), ("y", ch, 16, 0)]);
    let val = b.composite(
        false,
        "sock_val",
        48,
        &[
            ("a", u32t, 0, 0),
            ("b", ull, 64, 0),
            ("name", name, 128, 0),
            ("arr", arr, 192, 0),
            ("c", color, 288, 0),
            ("in", inner, 320, 0),
            ("f", uint, 352, 3),
            ("g", uint, 355, 5),
        ],
    );
    let ll = b.int("long long int", 8, INT_SIGNED);
    let uch = b.int("unsigned char", 1, 0);
    let bytes = b.array(uch, int, 4);
    let u = b.composite(true, "", 4, &[("i", int, 0, 0), ("b", bytes, 0, 0)]);
    let float = b.raw("float", sockstat::model::btf::kind::FLOAT, false, 0, 4, &[]);
    let pair = b.composite(false, "pair", 16, &[("n", ll, 0, 0), ("u", u, 64, 0), ("f", float, 96, 0)]);
    (b.build(), int, val, pair)
}

/// The BTF of a third value, of the kinds `struct sock_val` lacks: `struct more { int
/// m[2][3]; unsigned __int128 big; _Bool flag; signed char sc; const volatile unsigned
/// short cv; enum big_e e; struct dup d1; struct dup d2 /* another `dup` */; dup_t td;
/// enum sign e3:3; double dbl; }` (88 bytes). Returns the blob, the key's id, the value's.
fn more_btf() -> (Vec<u8>, u32, u32) {
    use sockstat::model::btf::{BtfBuilder, INT_BOOL, INT_SIGNED, kind};
    let mut b = BtfBuilder::new();
    let int = b.int("int", 4, INT_SIGNED);
    let row = b.array(int, int, 3);
    let m = b.array(row, int, 2);
    let big = b.int("unsigned __int128", 16, 0);
    let flag = b.int("_Bool", 1, INT_BOOL);
    let sc = b.int("signed char", 1, INT_SIGNED);
    let us = b.int("short unsigned int", 2, 0);
    let c = b.raw("", kind::CONST, false, 0, us, &[]);
    let cv = b.raw("", kind::VOLATILE, false, 0, c, &[]);
    let (huge, small) = (b.string("HUGE"), b.string("SMALL"));
    let e = b.raw("big_e", kind::ENUM64, false, 2, 8, &[huge, 0, 1 << 8, small, 1, 0]);
    let d1 = b.composite(false, "dup", 4, &[("x", int, 0, 0)]);
    let d2 = b.composite(false, "dup", 4, &[("y", int, 0, 0)]);
    let td = b.typedef("dup_t", d1);
    let sign = b.enumeration("sign", 4, true, &[("NEG", -1), ("ONE", 1)]);
    let dbl = b.raw("double", kind::FLOAT, false, 0, 8, &[]);
    let more = b.composite(
        false,
        "more",
        88,
        &[
            ("m", m, 0, 0),
            ("big", big, 256, 0),
            ("flag", flag, 384, 0),
            ("sc", sc, 392, 0),
            ("cv", cv, 400, 0),
            ("e", e, 448, 0),
            ("d1", d1, 512, 0),
            ("d2", d2, 544, 0),
            ("td", td, 576, 0),
            ("e3", sign, 608, 3),
            ("dbl", dbl, 640, 0),
        ],
    );
    (b.build(), int, more)
}

/// A `struct more` (see [`more_btf`]).
fn more(big: u128, flag: u8, e: u64, e3: u8, dbl: f64) -> Vec<u8> {
    let mut v = vec![0u8; 88];
    for (i, n) in [1i32, 2, 3, 4, 5, -6].iter().enumerate() {
        v[4 * i..4 * i + 4].copy_from_slice(&n.to_le_bytes());
    }
    v[32..48].copy_from_slice(&big.to_le_bytes());
    v[48] = flag;
    v[49] = 0xfd;
    v[50..52].copy_from_slice(&u16::MAX.to_le_bytes());
    v[56..64].copy_from_slice(&e.to_le_bytes());
    v[64..68].copy_from_slice(&9i32.to_le_bytes());
    v[68..72].copy_from_slice(&(-9i32).to_le_bytes());
    v[72..76].copy_from_slice(&11i32.to_le_bytes());
    v[76] = e3;
    v[80..88].copy_from_slice(&dbl.to_le_bytes());
    v
}

/// A `struct sock_val`: `a`, `b`, `name` (NUL-padded), `arr`, `c`, `in.x`, `in.y`, `f`, `g`.
#[expect(clippy::too_many_arguments, reason = "one argument per member")]
fn sock_val(a: u32, b: u64, name: &[u8], arr: [i32; 3], c: u32, x: u16, y: u8, fg: u8) -> Vec<u8> {
    let mut v = vec![0u8; 48];
    v[0..4].copy_from_slice(&a.to_le_bytes());
    v[8..16].copy_from_slice(&b.to_le_bytes());
    v[16..16 + name.len()].copy_from_slice(name);
    for (i, n) in arr.iter().enumerate() {
        v[24 + 4 * i..28 + 4 * i].copy_from_slice(&n.to_le_bytes());
    }
    v[36..40].copy_from_slice(&c.to_le_bytes());
    v[40..42].copy_from_slice(&x.to_le_bytes());
    v[42] = y;
    v[44] = fg;
    v
}

fn pair(n: i64, u: [u8; 4], f: f32) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(&u);
    v.extend_from_slice(&f.to_le_bytes());
    v
}

/// `--bpf-maps` and `--bpf-map-id`: socket-local storage values set on TCP and UDP
/// sockets, printed from the maps' BTF as ss 7.1 prints them through libbpf's btf_dump,
/// byte for byte; the errors for a map that does not exist or is not sk_storage; and the
/// values in `--json`.
#[test]
fn bpf_maps_match_ss_7_1() {
    use sockstat_tests::sk_storage;
    use std::os::fd::AsRawFd;
    sockstat_tests::require_root();
    let ns = NetNs::new("ss71bpf");
    let (blob, key, val, pair_id) = storage_btf();
    let a = sk_storage::sk_storage_map(&blob, key, val, 48, "sst_val").expect("sk_storage map");
    let b = sk_storage::sk_storage_map(&blob, key, pair_id, 16, "sst_pair").expect("sk_storage map");
    let array = sk_storage::array_map("sst_array").expect("array map");
    let (more_blob, more_key, more_id) = more_btf();
    let mo = sk_storage::sk_storage_map(&more_blob, more_key, more_id, 88, "sst_more").expect("sk_storage map");
    let socks = ns.enter(|| {
        let l = TcpListener::bind("127.0.0.1:7200").expect("listen");
        let c = TcpStream::connect("127.0.0.1:7200").expect("connect");
        let (acc, _) = l.accept().expect("accept");
        let u = std::net::UdpSocket::bind("127.0.0.1:7201").expect("udp");
        let l6 = TcpListener::bind("[::1]:7202").expect("listen v6");
        (l, c, acc, u, l6)
    });
    let (l, c, _acc, u, l6) = &socks;
    // A non-printable name byte, a full name with no NUL, negative numbers, an enum
    // value with no name, and a char after the char array, which libbpf prints as a char.
    let set = |m: &sk_storage::Map, fd: i32, v: &[u8]| sk_storage::set(m, fd, v).expect("set storage");
    set(&a, l.as_raw_fd(), &sock_val(7, 1 << 40, b"listen", [1, -2, 3], 1, 300, b'z', 0b1010_1101));
    set(&a, c.as_raw_fd(), &sock_val(u32::MAX, u64::MAX, b"cl\x01ent!!", [-1, 0, i32::MIN], 7, 0, 0, 0xff));
    set(&b, c.as_raw_fd(), &pair(-5, *b"AB\0\x7f", 1.5));
    set(&b, u.as_raw_fd(), &pair(i64::MAX, [0xff, 0, 0, 0], -0.25));
    set(&a, l6.as_raw_fd(), &sock_val(0, 0, b"", [0; 3], 2, 1, 1, 0));
    set(&mo, l6.as_raw_fd(), &more((1 << 64) + 5, 1, 1 << 40, 5, 2.5e10));
    set(&mo, l.as_raw_fd(), &more(0, 0, 3, 7, -0.0));
    let (ida, idb) = (format!("--bpf-map-id={}", a.id), format!("--bpf-map-id={}", b.id));
    let idm = format!("--bpf-map-id={:#x}", mo.id);
    let cases: Vec<Vec<&str>> = vec![
        vec!["-tan", "--bpf-maps"],
        vec!["-tanO", "--bpf-maps"],
        vec!["-tn", "--bpf-maps"],
        vec!["-tan", &ida],
        vec!["-tan", &idb, &ida],
        vec!["-tanO", &idb],
        vec!["-tan", &idm],
        vec!["-tanO", &idm, &ida],
        vec!["-uan", "--bpf-maps"],
        vec!["-tuane", "--bpf-maps"],
        vec!["-tanm", "--bpf-maps"],
        vec!["-tani", "--bpf-maps"],
        vec!["-taniO", "--bpf-maps"],
        vec!["-tanp", "--bpf-maps"],
        vec!["-an", "--bpf-maps"],
        vec!["-tan", "--bpf-maps", "sport", "=", ":7200"],
    ];
    let cases: Vec<&[&str]> = cases.iter().map(Vec::as_slice).collect();
    let failures = compare(&ns, &cases, &[]);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // A map that does not exist, and one that is not sk_storage: ss's messages and status.
    let wrong = format!("--bpf-map-id={}", array.id);
    for args in [vec!["-tan", "--bpf-map-id=4000000000"], vec!["-tan", wrong.as_str()], vec!["-tan", &ida, &wrong]] {
        let ss = ns.command(ss71_bin()).args(&args).output().expect("ss 7.1");
        let ours = ns.sockstat_as("7.1", &args);
        assert_eq!(ours.status.code(), ss.status.code(), "{args:?} exit status");
        assert_eq!(
            String::from_utf8_lossy(&ours.stderr),
            String::from_utf8_lossy(&ss.stderr).replace("ss: ", "sockstat: "),
            "{args:?} stderr"
        );
        assert_eq!(ours.stdout, ss.stdout, "{args:?} stdout");
    }

    // A dump recorded with the values (-D): read back by ss and by sockstat, which print
    // them with or without the options.
    let file = std::env::temp_dir().join(format!("sockstat-bpf-maps-{}.diag", std::process::id()));
    let recorded = ns.command(ss71_bin()).args(["-tan", "--bpf-maps", "-D"]).arg(&file).output().expect("ss -D");
    assert!(recorded.status.success(), "ss -D: {}", String::from_utf8_lossy(&recorded.stderr));
    let env = [("TCPDIAG_FILE", file.to_str().expect("UTF-8 path"))];
    let failures = compare(&ns, &[&["-tan"], &["-tanO", "--bpf-maps"]], &env);
    let _ = std::fs::remove_file(&file);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // Without privileges: a given id fails as in ss; --bpf-maps names the capability
    // (ss falls back to /proc/net/tcp there and prints no values).
    let unprivileged = |bin: &Path, args: &[&str]| {
        let mut c = ns.command("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(bin).args(args);
        c.env("SOCKSTAT_SS_COMPAT", "7.1").output().expect("setpriv (util-linux)")
    };
    let (ss, ours) = (unprivileged(&ss71_bin(), &["-tan", &ida]), unprivileged(&sockstat_bin(), &["-tan", &ida]));
    assert_eq!((ours.status.code(), ss.status.code()), (Some(1), Some(1)));
    assert_eq!(
        String::from_utf8_lossy(&ours.stderr),
        String::from_utf8_lossy(&ss.stderr).replace("ss: ", "sockstat: ")
    );
    let ours = unprivileged(&sockstat_bin(), &["-tan", "--bpf-maps"]);
    assert!(
        ours.status.code() == Some(1) && String::from_utf8_lossy(&ours.stderr).contains("CAP_BPF or CAP_SYS_ADMIN"),
        "{ours:?}"
    );

    // --json carries each value typed, and btf_dump's text as -O prints it.
    let json = String::from_utf8(ns.sockstat_as("7.1", &["-tan", "--json", "--bpf-maps"]).stdout).expect("UTF-8");
    let rows: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let client = rows
        .iter()
        .find(|r| r["peer_port"] == 7200 && r["local_address"] == "127.0.0.1")
        .unwrap_or_else(|| panic!("no client row in {json}"));
    let maps = client["bpf_maps"].as_array().unwrap_or_else(|| panic!("no bpf_maps in {client}"));
    let by_id = |id: u32| maps.iter().find(|m| m["map_id"] == id).unwrap_or_else(|| panic!("map {id} in {client}"));
    let va = &by_id(a.id)["value"];
    assert_eq!(
        (va["a"].as_u64(), va["b"].as_u64(), va["arr"].clone(), va["c"].as_u64()),
        (Some(u64::from(u32::MAX)), Some(u64::MAX), serde_json::json!([-1, 0, i32::MIN]), Some(7)),
        "{va}"
    );
    assert_eq!(by_id(b.id)["value"], serde_json::json!({"n": -5, "u": {"i": 2_130_723_393, "b": "AB"}, "f": 1.5}));
    let oneline = mask(&ns.ss_bin(&ss71_bin(), &["-tanO", "--bpf-maps", "dport", "=", ":7200"]));
    for m in maps {
        let text = format!(" map_id:{}{}", m["map_id"], m["text"].as_str().expect("text"));
        assert!(oneline.contains(&text), "{text:?} not in ss 7.1's -O line:\n{oneline}");
    }
    // The accepted socket has no storage: no key.
    let accepted = rows.iter().find(|r| r["local_port"] == 7200 && r["peer_port"] != 0).expect("accepted row");
    assert!(accepted.get("bpf_maps").is_none(), "{accepted}");

    // Under --ss-compat 6.1 the options work too (ss 6.1 has none): the same values.
    let v61 = String::from_utf8(ns.sockstat_as("6.1", &["-tanO", &ida]).stdout).expect("UTF-8");
    let v71 = mask(&ns.ss_bin(&ss71_bin(), &["-tanO", &ida]));
    for line in v71.lines().filter(|l| l.contains("map_id:")) {
        let tail = &line[line.find(" map_id:").expect("map_id")..];
        assert!(v61.contains(tail), "{tail:?} not in sockstat 6.1's:\n{v61}");
    }
    drop(socks);
}
