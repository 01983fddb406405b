//! Every socket family and table in kernel mode against the real `ss` (iproute2 6.1), byte
//! for byte: UDP (bound, connected, v4/v6/v6-only), UNIX (stream/dgram/seqpacket; path,
//! abstract, unnamed, connected pairs), packet (raw with an attached classic BPF filter,
//! dgram bound to lo), netlink (bound, multicast, connected), raw (/proc fallback), the
//! tables this kernel has no diag module for (dccp, sctp, vsock, tipc, xdp) and an empty
//! mptcp table (MPTCP sockets: `mptcp.rs`), `-s`
//! and `-b`, each in a fresh network namespace.
//!
//! What is excluded from the comparison, and why:
//! - The netlink socket of the querying process itself: ss's shows as `tcpdiag:ss/PID`,
//!   sockstat's as `tcpdiag:sockstat/PID` (with `-n`: `4:PID`), a different process by
//!   nature. That one line is removed from both outputs. It cannot change the column
//!   widths: the fixture's UNIX paths are wider than `tcpdiag:`, and its own netlink
//!   sockets (`<test binary name, 15 chars>/PID`) are wider than `sockstat/PID`.
//! - `-s`'s `Total:` counts every socket of the namespace, including ones the kernel frees
//!   a little after their process exits (netlink sockets are freed after an RCU grace
//!   period), so each run waits a moment and the comparison is retried until two ss runs
//!   around sockstat's agree.
//! - `-s`'s `TCP:` total and `closed` come from `alloc` in /proc/net/sockstat, which is
//!   the kernel's global count of TCP sockets (all namespaces): another process opening or
//!   closing TCP sockets anywhere on the machine changes it between two runs. The test
//!   first asks for an exact match between two equal ss runs; when the machine is too busy
//!   for that, it compares with those two numbers masked.
//! - stderr: on this kernel ss prints "RTNETLINK answers: Invalid argument" for the DCCP
//!   table (its fallback request fails); sockstat prints nothing there (and, with `-s`,
//!   notes on stderr which diag modules are missing). Only stdout and the exit status are
//!   compared.
//!
//! Nothing else is excluded: every namespace-local socket, UNIX inode numbers, ephemeral
//! ports and queue sizes are the kernel's and the same for both tools.

use std::{
    net::UdpSocket,
    os::fd::OwnedFd,
    os::unix::net::{SocketAddr as UnixAddr, UnixDatagram, UnixListener, UnixStream},
    thread,
    time::Duration,
};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use sockstat_tests::{NetNs, netlink_socket as netlink, packet_socket as packet, without_self};

/// Everything the fixture opened; dropping it closes the sockets.
struct Fixture {
    _sockets: Vec<Socket>,
    _fds: Vec<OwnedFd>,
    _unix: Vec<Box<dyn Send>>,
    dir: std::path::PathBuf,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `tcpdump -dd -s 128 udp`: the program tcpdump attaches to its packet socket.
const UDP_FILTER: &[(u16, u8, u8, u32)] = &[
    (0x28, 0, 0, 0x0c),
    (0x15, 0, 2, 0x800),
    (0x30, 0, 0, 0x17),
    (0x15, 6, 7, 0x11),
    (0x15, 0, 6, 0x86dd),
    (0x30, 0, 0, 0x14),
    (0x15, 3, 0, 0x11),
    (0x15, 0, 3, 0x2c),
    (0x30, 0, 0, 0x36),
    (0x15, 0, 1, 0x11),
    (0x06, 0, 0, 128),
    (0x06, 0, 0, 0),
];

fn populate(ns: &NetNs) -> Fixture {
    // Long enough that the UNIX names are the widest Local Address (see the module doc).
    let dir = std::env::temp_dir().join(format!("sockstat-families-{}-unix-sockets", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("socket dir");
    let d = dir.clone();
    let (sockets, fds, unix) = ns.enter(move || {
        let mut sockets: Vec<Socket> = Vec::new();
        let mut fds: Vec<OwnedFd> = Vec::new();
        let mut unix: Vec<Box<dyn Send>> = Vec::new();

        // UDP: bound v4 (one with a queued datagram), connected v4, v6 bound, dual-stack
        // and v6-only any, connected v6.
        let dns = UdpSocket::bind("127.0.0.1:5353").expect("udp bind");
        let any = UdpSocket::bind("0.0.0.0:9999").expect("udp any");
        let c4 = UdpSocket::bind("127.0.0.1:0").expect("udp client");
        c4.connect("127.0.0.1:5353").expect("udp connect");
        c4.send(b"hello").expect("udp send");
        let l6 = UdpSocket::bind("[::1]:53").expect("udp6 bind");
        let dual = Socket::new(Domain::IPV6, Type::DGRAM, None).expect("udp6");
        dual.set_only_v6(false).expect("dual");
        dual.bind(&"[::]:7777".parse::<std::net::SocketAddr>().expect("addr").into()).expect("bind dual");
        let only6 = Socket::new(Domain::IPV6, Type::DGRAM, None).expect("udp6");
        only6.set_only_v6(true).expect("v6only");
        only6.bind(&"[::]:7778".parse::<std::net::SocketAddr>().expect("addr").into()).expect("bind v6only");
        let c6 = UdpSocket::bind("[::1]:0").expect("udp6 client");
        c6.connect("[::1]:53").expect("udp6 connect");
        for s in [dns, any, c4, l6, c6] {
            sockets.push(s.into());
        }
        sockets.push(dual);
        sockets.push(only6);

        // UNIX stream and seqpacket listeners with a connection each, a datagram socket
        // with a connected client (and a queued datagram), abstract names (one with an
        // embedded NUL), unnamed socket pairs, an unnamed unbound datagram socket.
        let st = UnixListener::bind(d.join("stream.sock")).expect("unix stream");
        let stc = UnixStream::connect(d.join("stream.sock")).expect("connect stream");
        let sta = st.accept().expect("accept").0;
        let dg = UnixDatagram::bind(d.join("dgram.sock")).expect("unix dgram");
        let dgc = UnixDatagram::unbound().expect("dgram client");
        dgc.connect(d.join("dgram.sock")).expect("connect dgram");
        dgc.send(b"xyz").expect("send dgram");
        let sq = Socket::new(Domain::UNIX, Type::SEQPACKET, None).expect("seqpacket");
        sq.bind(&SockAddr::unix(d.join("seqpacket.sock")).expect("path")).expect("bind seqpacket");
        sq.listen(16).expect("listen seqpacket");
        let sqc = Socket::new(Domain::UNIX, Type::SEQPACKET, None).expect("seqpacket client");
        sqc.connect(&SockAddr::unix(d.join("seqpacket.sock")).expect("path")).expect("connect seqpacket");
        let sqa = sq.accept().expect("accept seqpacket").0;
        use std::os::linux::net::SocketAddrExt;
        let abs =
            UnixListener::bind_addr(&UnixAddr::from_abstract_name(b"sockstat-families-abstract").expect("abstract"))
                .expect("abstract listener");
        let abs2 = UnixDatagram::bind_addr(&UnixAddr::from_abstract_name(b"sockstat\0embedded").expect("abstract"))
            .expect("abstract dgram");
        let (p1, p2) = UnixStream::pair().expect("stream pair");
        let (q1, q2) = UnixDatagram::pair().expect("dgram pair");
        let lone = UnixDatagram::unbound().expect("unbound");
        unix.push(Box::new((st, stc, sta, dg, dgc, abs, abs2, p1, p2, q1, q2, lone)));
        sockets.extend([sq, sqc, sqa]);

        // Packet: ETH_P_ALL raw with tcpdump's `udp` filter, ETH_P_IP dgram bound to lo
        // (ifindex 1 in a fresh namespace), IPv6 raw, an unnamed protocol number.
        fds.push(packet(libc::SOCK_RAW, 0x0003, 0, Some(UDP_FILTER)));
        fds.push(packet(libc::SOCK_DGRAM, 0x0800, 1, None));
        fds.push(packet(libc::SOCK_RAW, 0x86dd, 0, None));
        fds.push(packet(libc::SOCK_RAW, 0x1234, 0, Some(&[(0x06, 0, 0, 0xffff)])));

        // Netlink: rtnl bound (port = our pid), a second rtnl connected to the kernel
        // (autobound to a negative port), uevent with a multicast group, generic.
        fds.push(netlink(libc::NETLINK_ROUTE, 0, false));
        fds.push(netlink(libc::NETLINK_ROUTE, 0, true));
        fds.push(netlink(libc::NETLINK_KOBJECT_UEVENT, 1, false));
        fds.push(netlink(libc::NETLINK_GENERIC, 0, false));

        // Raw (read from /proc/net/raw*): ICMP, ICMPv6, a connected unnamed protocol.
        sockets.push(Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).expect("raw icmp"));
        sockets.push(Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).expect("raw icmp6"));
        let r = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(253))).expect("raw 253");
        r.connect(&"127.0.0.1:0".parse::<std::net::SocketAddr>().expect("addr").into()).expect("connect raw");
        sockets.push(r);

        // TCP, so the default and `-a` listings have every inet table.
        let l = std::net::TcpListener::bind("127.0.0.1:8080").expect("tcp listen");
        let c = std::net::TcpStream::connect("127.0.0.1:8080").expect("tcp connect");
        let a = l.accept().expect("tcp accept").0;
        sockets.extend([l.into(), c.into(), a.into()]);
        (sockets, fds, unix)
    });
    thread::sleep(Duration::from_millis(100));
    Fixture { _sockets: sockets, _fds: fds, _unix: unix, dir }
}

fn compare(ns: &NetNs, q: &[&str]) {
    let mut args = vec!["--source", "kernel"];
    args.extend_from_slice(q);
    let ours = without_self(&ns.sockstat_ok(&args));
    let theirs = without_self(&ns.ss(q));
    assert_eq!(ours, theirs, "sockstat {q:?} differs from ss {q:?}\n--- ours\n{ours}--- ss\n{theirs}");
}

const QUERIES: &[&[&str]] = &[
    &[],
    &["-n"],
    &["-a"],
    &["-an"],
    &["-l"],
    &["-Ha"],
    &["-uan"],
    &["-ua"],
    &["-u"],
    &["-ul"],
    &["-4", "-u"],
    &["-6", "-ua"],
    &["-u", "-4", "-6", "-a"],
    &["-u", "-6", "-4", "-a"],
    &["-xa"],
    &["-x"],
    &["-xl"],
    &["-A", "unix_dgram"],
    &["-A", "u_str,u_seq", "-a"],
    &["-A", "unix_stream", "-l"],
    &["-x", "-6", "-u", "-a"],
    &["-0"],
    &["-0a"],
    &["-0n"],
    &["-A", "p_raw", "-a"],
    &["-A", "packet_dgram"],
    &["-f", "link", "-a"],
    &["-b"],
    &["-0b"],
    &["-ab"],
    &["-A", "netlink"],
    &["-A", "netlink", "-a"],
    &["-f", "netlink", "-an"],
    &["-f", "netlink"],
    &["-f", "inet"],
    &["-f", "inet6", "-a"],
    &["-f", "unix", "-a"],
    &["-w"],
    &["-wa"],
    &["-wn"],
    &["-A", "raw,udp", "-a"],
    &["-A", "inet", "-a"],
    &["-A", "all"],
    &["-A", "all", "-a"],
    &["-d"],
    &["-S"],
    &["-M"],
    &["--vsock"],
    &["-A", "vsock", "-a"],
    &["--tipc"],
    &["--xdp"],
    &["-a", "-o"],
    &["-ua", "sport", "=", ":53"],
];

#[test]
fn every_table_is_byte_identical_to_ss() {
    let ns = NetNs::new("fam");
    let _fixture = populate(&ns);
    // The fixture is really there.
    let all = ns.ss(&["-a"]);
    for needle in [
        "u_seq",
        "u_dgr",
        "@sockstat-families-abstract",
        "@sockstat@embedded",
        "p_raw",
        "p_dgr",
        "ip:lo",
        "ipv6:*",
        "[4660]:*",
        "nl ",
        "uevent:",
        "raw ",
        "ipproto-253",
        "udp ",
        "[::]:7778",
        "*:7777",
        "tcp ",
    ] {
        assert!(all.contains(needle), "fixture lacks {needle}:\n{all}");
    }
    assert!(ns.ss(&["-0b"]).contains("bpf filter (12):  0x28 0 0 12,"), "no filter shown by ss -b");
    // --json carries the filter -b prints: the same instructions, typed.
    let json = ns.sockstat_ok(&["-0b", "--json"]);
    let with_filter: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .filter(|o| o.get("bpf_filter").is_some())
        .collect();
    assert!(
        with_filter.iter().any(|o| o["bpf_filter"]
            .as_array()
            .is_some_and(|f| f.len() == 12 && f[0] == serde_json::json!({"code": 0x28, "jt": 0, "jf": 0, "k": 12}))),
        "{json}"
    );
    for q in QUERIES {
        compare(&ns, q);
    }
}

/// The `TCP:` line with its two `alloc`-derived numbers (global, see the module doc) masked.
fn mask_tcp_alloc(text: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix("TCP:   ") {
            Some(rest) => {
                let estab = rest.split_once(" (").map_or("", |(_, r)| r);
                let estab = estab.split(", closed").next().unwrap_or_default();
                let tail = rest.split_once(", orphaned").map_or("", |(_, r)| r);
                format!("TCP:   N ({estab}, closed N, orphaned{tail}\n")
            }
            None => format!("{l}\n"),
        })
        .collect()
}

#[test]
fn summary_is_byte_identical_to_ss() {
    let ns = NetNs::new("fams");
    let _fixture = populate(&ns);
    for q in [&["-s"][..], &["-s", "-u"], &["-s", "-x", "-a"]] {
        let mut args = vec!["--source", "kernel"];
        args.extend_from_slice(q);
        let mut runs = Vec::new();
        for _ in 0..10 {
            // Each run waits for the previous one's sockets to be freed (see the doc).
            let settle = || thread::sleep(Duration::from_millis(250));
            settle();
            let before = without_self(&ns.ss(q));
            settle();
            let ours = without_self(&ns.sockstat_ok(&args));
            settle();
            let after = without_self(&ns.ss(q));
            runs.push((before, ours, after));
        }
        let exact = runs.iter().any(|(b, o, a)| b == a && o == b);
        let masked = runs.iter().any(|(b, o, a)| {
            let b = mask_tcp_alloc(b);
            b == mask_tcp_alloc(a) && mask_tcp_alloc(o) == b
        });
        let (b, o, _) = &runs[runs.len() - 1];
        assert!(exact || masked, "sockstat {q:?} never matched a stable ss {q:?}:\n--- ours\n{o}--- ss\n{b}");
        assert!(b.starts_with("Total: ") && b.contains("Transport Total     IP        IPv6\n"), "{b}");
    }
}

#[test]
fn summary_mask_keeps_everything_but_alloc() {
    assert_eq!(
        mask_tcp_alloc("Total: 3\nTCP:   100032 (estab 2, closed 100029, orphaned 0, timewait 0)\n"),
        "Total: 3\nTCP:   N (estab 2, closed N, orphaned 0, timewait 0)\n"
    );
}

#[test]
fn bpf_disasm_adds_tcpdump_style_lines() {
    let ns = NetNs::new("famb");
    let _fixture = populate(&ns);
    let ours = ns.sockstat_ok(&["--source", "kernel", "-0", "--bpf-disasm"]);
    // The raw numbers, as `-b` prints them, then the disassembly `tcpdump -d -s 128 udp`
    // prints, one instruction per line.
    assert!(ours.contains("\tbpf filter (12):  0x28 0 0 12, 0x15 0 2 2048,"), "{ours}");
    for line in [
        "\t(000) ldh      [12]\n",
        "\t(001) jeq      #0x800           jt 2\tjf 4\n",
        "\t(010) ret      #128\n",
        "\t(011) ret      #0",
    ] {
        assert!(ours.contains(line), "no {line:?} in:\n{ours}");
    }
}

#[test]
fn options_ss_rejects_are_rejected() {
    let ns = NetNs::new("famx");
    // ss 6.1 has no --netlink (use -A netlink or -f netlink): both exit 255.
    let ss = ns.command("ss").arg("--netlink").output().expect("run ss");
    let ours = ns.sockstat(&["--netlink"]);
    assert_eq!(ss.status.code(), Some(255));
    assert_eq!(ours.status.code(), ss.status.code());
    assert!(ours.stdout.is_empty() && ss.stdout.is_empty());
}
