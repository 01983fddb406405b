//! The renderer end to end: ss 6.1's output for recorded sockets, byte for byte, in every
//! column layout, on a terminal and not, and row by row for `-E`.

use super::*;
use crate::render::addr::*;
use crate::render::events::*;
use crate::render::grid::*;
use crate::render::inet::*;
use std::net::IpAddr;

use crate::cli::parse_ss_args;
use crate::model::socket::{NetlinkSocket, Source, UnixSocket};
use crate::query::{check_supported, select};
use sockstat_ebpf::{AF_INET, TcpState};
use std::ffi::OsString;

/// A stand-in for /etc/services: the real names for the fixture's ports, plus
/// entries that ss must not use (a second name, a UDP-only port, an ephemeral port).
const SERVICES: &str = "# Network services
ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
ssh2\t\t22/tcp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
https\t\t443/tcp
http-alt\t8080/tcp\twebcache
tproxy\t\t8081/tcp
udponly\t\t7070/udp
ephem\t\t40000/tcp
";

fn names(numeric: bool) -> Names {
    Names::fixed((!numeric).then_some(SERVICES), (32768, 60999), &[(1, "lo")])
}

fn opts(args: &str) -> crate::cli::Options {
    let o = parse_ss_args(args.split_whitespace().map(OsString::from)).unwrap_or_else(|e| panic!("{args}: {e}"));
    assert_eq!(check_supported(&o.selection, &o.unsupported, o.follow_events), Ok(()), "{args}");
    o
}

#[expect(clippy::too_many_arguments, reason = "one fixture row per call reads as a table")]
fn sock(state: TcpState, src: &str, sport: u16, dst: &str, dport: u16, rq: u32, wq: u32, ifindex: u32) -> InetSocket {
    let src: IpAddr = src.parse().expect("fixture address");
    let dst: IpAddr = dst.parse().expect("fixture address");
    // What the kernel reports: binding to a specific, non-v4-mapped IPv6 address sets
    // sk_ipv6only (net/ipv6/af_inet6.c, __inet6_bind); the fixture's `[::]`
    // listeners are dual-stack.
    let v6only = matches!(src, IpAddr::V6(a) if !a.is_unspecified() && a.to_ipv4_mapped().is_none());
    let family = if src.is_ipv4() { AF_INET } else { sockstat_ebpf::AF_INET6 };
    InetSocket {
        v6only,
        ifindex,
        rqueue: rq,
        wqueue: wq,
        source: Source::Kernel,
        ..InetSocket::tcp(family, state as u8, (src, sport), (dst, dport), 0)
    }
}

const LONG: &str = "2001:db8:1234:5678:9abc:def0:1234:5678";

/// The sockets made in a netns with python3 for the snapshots, in the order ss
/// printed them (AF_INET then AF_INET6, kernel hash order within each).
fn fixture() -> Vec<InetSocket> {
    use TcpState::*;
    vec![
        sock(Listen, "127.0.0.1", 9090, "0.0.0.0", 0, 0, 128, 1),
        sock(Listen, "127.0.0.1", 8080, "0.0.0.0", 0, 0, 128, 0),
        sock(Listen, "127.0.0.1", 7070, "0.0.0.0", 0, 0, 128, 0),
        sock(Listen, "0.0.0.0", 22, "0.0.0.0", 0, 0, 128, 0),
        sock(Listen, "0.0.0.0", 80, "0.0.0.0", 0, 0, 5, 0),
        sock(Established, "127.0.0.1", 40001, "127.0.0.1", 8083, 0, 0, 0),
        sock(Established, "127.0.0.1", 40000, "127.0.0.1", 8080, 0, 0, 0),
        sock(TimeWait, "127.0.0.1", 40003, "127.0.0.1", 7070, 0, 0, 0),
        sock(Established, "127.0.0.1", 8080, "127.0.0.1", 40000, 100, 0, 0),
        sock(SynSent, "10.1.0.1", 40004, "10.1.0.2", 5000, 0, 1, 0),
        sock(Listen, LONG, 443, "::", 0, 0, 128, 0),
        // Dual-stack (IPV6_V6ONLY off): ss prints `*`.
        sock(Listen, "::", 8083, "::", 0, 0, 128, 0),
        sock(Listen, "::1", 8081, "::", 0, 0, 128, 0),
        sock(Established, "::ffff:127.0.0.1", 8083, "::ffff:127.0.0.1", 40001, 0, 0, 0),
        sock(Established, LONG, 443, LONG, 40002, 0, 0, 0),
        sock(Established, LONG, 40002, LONG, 443, 0, 0, 0),
    ]
}

/// The fixture's order in the run that captured TTY_SNAPSHOTS (hash order differs).
const TTY_ORDER: [usize; 16] = [0, 1, 2, 3, 4, 6, 5, 7, 8, 9, 12, 11, 10, 14, 13, 15];

fn render(o: &crate::cli::Options, sockets: Vec<InetSocket>) -> String {
    let selected = select(&o.selection, sockets);
    let mut out = Vec::new();
    render_inet_with(&o.style, &selected, &names(o.style.numeric), &mut out).expect("writing to a Vec");
    String::from_utf8(out).expect("ss output is ASCII here")
}

fn expected(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn byte_identical_with_ss_when_not_a_tty() {
    for &(args, lines) in SNAPSHOTS {
        assert_eq!(render(&opts(args), fixture()), expected(lines), "ss {args}");
    }
}

#[test]
fn byte_identical_with_ss_on_a_terminal() {
    let all = fixture();
    for &(width, args, lines) in TTY_SNAPSHOTS {
        let mut o = opts(args);
        o.style.screen_width = Some(width);
        let sockets = TTY_ORDER.iter().map(|&i| all[i].clone()).collect();
        assert_eq!(render(&o, sockets), expected(lines), "ss {args} at {width} columns");
    }
}

/// XDP rows as ss 6.1 prints them: captured from the real ss answering an XDP dump of
/// these three sockets (lo queue 0 with RX and TX rings; interface 2 queue 3, a user's,
/// TX only, zero-copy, a umem over 4 GiB; interface 99, which has no device, queue
/// `u32::MAX`) through `tests/fixtures/fake_xsk_diag.c`, this kernel having no xsk_diag.
#[test]
fn xdp_rows_as_ss_prints_them() {
    use crate::model::socket::{XdpSocket, XdpUmem};
    let mem = |r: u32, w: &[u32]| {
        let mut m = vec![r, 212_992, 0, 212_992, 0, 0, 0, 0, 0];
        for (i, &v) in w.iter().enumerate() {
            m[2 + i] = v;
        }
        Some(m)
    };
    let xdp = vec![
        XdpSocket {
            kind: 3,
            inode: 40001,
            cookie: 0x1234,
            ifindex: 1,
            queue_id: 0,
            rx_ring: Some(128),
            tx_ring: Some(256),
            umem: Some(XdpUmem {
                size: 65536,
                id: 0,
                num_pages: 16,
                chunk_size: 4096,
                headroom: 0,
                ifindex: 1,
                queue_id: 0,
                flags: 0,
                refs: 1,
            }),
            fill_ring: Some(64),
            completion_ring: Some(32),
            stats: Some([0; 6]),
            skmem: mem(0, &[]),
            ..XdpSocket::default()
        },
        XdpSocket {
            kind: 3,
            inode: 40002,
            cookie: 0xffff_0000_0000_0001,
            ifindex: 2,
            queue_id: 3,
            uid: 1000,
            rqueue: 2304,
            tx_ring: Some(2048),
            umem: Some(XdpUmem {
                size: 1 << 33,
                id: 7,
                num_pages: 2_097_152,
                chunk_size: 4096,
                headroom: 256,
                ifindex: 2,
                queue_id: 3,
                flags: 3,
                refs: 2,
            }),
            fill_ring: Some(4096),
            completion_ring: Some(4096),
            stats: Some([1, 2, 3, 4, 5, u64::MAX]),
            skmem: Some(vec![2304, 212_992, 768, 212_992, 4096, 1, 0, 0, 2]),
            ..XdpSocket::default()
        },
        XdpSocket { kind: 3, inode: 40004, ifindex: 99, queue_id: u32::MAX, rx_ring: Some(8), ..XdpSocket::default() },
    ];
    let snap = Snapshot { xdp, ..Snapshot::default() };
    let names = Names::fixed(None, (32768, 60999), &[(1, "lo"), (2, "ifb0")]);
    for (args, want) in [
        (
            "--xdp",
            "Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n0      0                 lo:q0               *           \n2304   0               ifb0:q3               *           \n0      0               if99:q-1              *           \n",
        ),
        (
            "--xdp -e -m",
            "Recv-Q Send-Q Local Address:Port Peer Address:PortProcess                                                                                                                                                                                                                                                                                                                                                                            \n0      0                 lo:q0               *     ino:40001 sk:1234\n\trx(entries:128)\n\ttx(entries:256)\n\tumem(id:0,size:65536,num_pages:16,chunk_size:4096,headroom:0,ifindex:1,qid:0,zc:0,refs:1)\n\tfr(entries:64)\n\tcr(entries:32)\n\tstats(rx dropped:0,rx invalid:0,rx queue full:0,rx fill ring empty:0,tx invalid:0,tx ring empty:0) skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d0)                                                \n2304   0               ifb0:q3               *     uid:1000 ino:40002 sk:ffff000000000001\n\ttx(entries:2048)\n\tumem(id:7,size:8589934592,num_pages:2097152,chunk_size:4096,headroom:256,ifindex:2,qid:3,zc:1,refs:2)\n\tfr(entries:4096)\n\tcr(entries:4096)\n\tstats(rx dropped:1,rx invalid:2,rx queue full:3,rx fill ring empty:4,tx invalid:5,tx ring empty:18446744073709551615) skmem:(r2304,rb212992,t768,tb212992,f4096,w1,o0,bl0,d2)\n0      0               if99:q-1              *     ino:40004 sk:0\n\trx(entries:8)                                                                                                                                                                                                                                                                                                                                                     \n",
        ),
        (
            "--xdp -e -O",
            "Recv-Q Send-Q Local Address:Port Peer Address:PortProcess                                                                                                                                                                                                                                                                                                                \n0      0                 lo:q0               *     ino:40001 sk:1234 rx(entries:128) tx(entries:256) tumem(id:0,size:65536,num_pages:16,chunk_size:4096,headroom:0,ifindex:1,qid:0,zc:0,refs:1) fr(entries:64) cr(entries:32) stats(rx dropped:0,rx invalid:0,rx queue full:0,rx fill ring empty:0,tx invalid:0,tx ring empty:0)                                         \n2304   0               ifb0:q3               *     uid:1000 ino:40002 sk:ffff000000000001 tx(entries:2048) tumem(id:7,size:8589934592,num_pages:2097152,chunk_size:4096,headroom:256,ifindex:2,qid:3,zc:1,refs:2) fr(entries:4096) cr(entries:4096) stats(rx dropped:1,rx invalid:2,rx queue full:3,rx fill ring empty:4,tx invalid:5,tx ring empty:18446744073709551615)\n0      0               if99:q-1              *     ino:40004 sk:0 rx(entries:8)                                                                                                                                                                                                                                                                                          \n",
        ),
    ] {
        let mut out = Vec::new();
        render_with(&opts(args).style, &snap, &names, &mut out).expect("writing to a Vec");
        assert_eq!(String::from_utf8(out).expect("ASCII"), want, "ss {args}");
    }
}

#[test]
fn header_only_and_nothing_at_all() {
    // Captured from ss 6.1 with no matching socket: the header still ends in "Process".
    let cases: &[(&str, &str)] = &[
        ("-tn", "State Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"),
        ("-t4n state listening", "Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"),
        ("-tnH", ""),
    ];
    for &(args, want) in cases {
        assert_eq!(render(&opts(args), Vec::new()), want, "ss {args}");
    }
}

#[test]
fn netid_column_when_several_tables() {
    // Not reachable through query yet (only TCP is supported), but the column model
    // must place Netid as ss does. Expected text: `ss -tuna` (ss 6.1) in a netns
    // holding one loopback connection and its listener, and no UDP socket.
    let mut o = opts("-tan");
    o.selection.tables |= crate::query::selection::Table::Udp.bit();
    o.style.show_netid = true;
    let s = vec![
        sock(TcpState::Listen, "127.0.0.1", 8080, "0.0.0.0", 0, 0, 128, 0),
        sock(TcpState::Established, "127.0.0.1", 8080, "127.0.0.1", 40000, 0, 0, 0),
        sock(TcpState::Established, "127.0.0.1", 40000, "127.0.0.1", 8080, 0, 0, 0),
    ];
    let mut out = Vec::new();
    render_inet_with(&o.style, &s, &names(true), &mut out).expect("writing to a Vec");
    assert_eq!(
        String::from_utf8_lossy(&out),
        expected(&[
            "Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process",
            "tcp   LISTEN 0      128        127.0.0.1:8080       0.0.0.0:*           ",
            "tcp   ESTAB  0      0          127.0.0.1:8080     127.0.0.1:40000       ",
            "tcp   ESTAB  0      0          127.0.0.1:40000    127.0.0.1:8080        ",
        ])
    );
}

#[test]
fn resolved_hosts_as_ss_prints_them() {
    let ip = |s: &str| -> IpAddr { s.parse().expect("test address") };
    let names = names(false).with_hosts(&[(ip("127.0.0.1"), "localhost")]);
    let lo = sock(TcpState::Established, "127.0.0.1", 22, "127.0.0.1", 40000, 0, 0, 0);
    let mapped = sock(TcpState::Established, "::ffff:127.0.0.1", 22, "::1", 40000, 0, 0, 0);
    let o = opts("-tr");
    let rows: Vec<_> = [lo, mapped].iter().map(|s| inet_row(&o.style, s, &names, "tcp", PortKind::Tcp)).collect();
    assert_eq!((rows[0][COL_ADDR].as_str(), rows[0][COL_RADDR].as_str()), ("localhost:", "localhost:"));
    // v4-mapped is looked up as IPv4; a v6 address without a name keeps its brackets.
    assert_eq!((rows[1][COL_ADDR].as_str(), rows[1][COL_RADDR].as_str()), ("localhost:", "[::1]:"));
    assert_eq!(resolved_addr_text(&ip("::"), false, &names), "*");
    assert_eq!(resolved_addr_text(&ip("::"), true, &names), "[::]");
    assert_eq!(resolved_addr_text(&ip("0.0.0.0"), false, &names), "0.0.0.0");
}

#[test]
fn any_address_depends_on_v6only() {
    let any: IpAddr = "::".parse().expect("test address");
    assert_eq!(addr_text(&any, false), "*");
    // ss 6.1 for a `[::]` listener with IPV6_V6ONLY set: "[::]:8082" / "[::]:*".
    assert_eq!(addr_text(&any, true), "[::]");
    assert_eq!(addr_text(&"0.0.0.0".parse().expect("test address"), false), "0.0.0.0");
    let mapped = sock(TcpState::Listen, "::ffff:127.0.0.1", 1, "::", 0, 0, 0, 0);
    assert!(!v6only(&mapped));
    assert!(v6only(&sock(TcpState::Listen, "::1", 1, "::", 0, 0, 0, 0)));
    assert!(!v6only(&sock(TcpState::Listen, "::", 1, "::", 0, 0, 0, 0)));
}

#[test]
fn ports_resolve_like_getservbyport() {
    let n = names(false);
    let cases: &[(u16, &str)] =
        &[(0, "*"), (22, "ssh"), (80, "http"), (7070, "7070"), (40000, "40000"), (8081, "tproxy"), (9, "9")];
    for &(port, want) in cases {
        assert_eq!(n.port(port), want, "{port}");
    }
    assert_eq!(names(true).port(22), "22");
    // -E: no protocol (getservbyport(port, NULL)), the first entry of any protocol.
    assert_eq!((n.port_of(PortKind::Any, 7070), n.port_of(PortKind::Tcp, 7070)), ("udponly".into(), "7070".into()));
    assert_eq!((n.port_of(PortKind::Any, 22), n.port_of(PortKind::Any, 40000)), ("ssh".into(), "40000".into()));
    assert_eq!(names(true).port_of(PortKind::Any, 7070), "7070");
    assert_eq!(n.ifname(1), "lo");
    assert_eq!(n.ifname(7), "if7");
    assert_eq!(crate::names::system::parse_port_range("32768\t60999\n"), Some((32768, 60999)));
    assert_eq!(crate::names::system::parse_port_range("garbage"), None);
}

/// What `ss -E` printed (iproute2 6.1, kernel 6.18) in a namespace where a python3
/// script closed a loopback connection and its listener, a connected UDP socket, an
/// unconnected UDP6 socket and a TCP6 listener, in that order.
fn destroyed() -> Vec<InetSocket> {
    use TcpState::{Close, Established};
    let udp = |s: InetSocket| InetSocket { protocol: 17, wqueue: u32::MAX, ..s };
    vec![
        sock(Close, "127.0.0.1", 44607, "127.0.0.1", 40922, 1, 0, 0),
        sock(Close, "127.0.0.1", 40922, "127.0.0.1", 44607, 1, 0, 0),
        sock(Close, "127.0.0.1", 44607, "0.0.0.0", 0, 0, 0, 0),
        udp(sock(Established, "127.0.0.1", 46475, "127.0.0.1", 53, 0, 0, 0)),
        udp(sock(Close, "::1", 42378, "::", 0, 0, 0, 0)),
        sock(Close, "::1", 35779, "::", 0, 0, 0, 0),
    ]
    .into_iter()
    // Notifications carry no INET_DIAG_SKV6ONLY: `::` prints as `*`.
    .map(|s| InetSocket { v6only: false, ..s })
    .collect()
}

/// Feeds `events` to an [`EventRenderer`] one at a time (`None`: not shown).
fn follow(o: &crate::cli::Options, events: &[Option<&InetSocket>]) -> String {
    let names = Names::fixed(Some("domain\t\t53/tcp\ndomain\t\t53/udp\n"), (32768, 60999), &[]);
    let mut r = EventRenderer::new(&o.style);
    let mut out = Vec::new();
    for e in events {
        r.event(&o.style, *e, &names, &mut out).expect("write to a Vec");
    }
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn events_render_one_at_a_time_with_growing_widths_like_ss() {
    let d = destroyed();
    let all: Vec<Option<&InetSocket>> = d.iter().map(Some).collect();
    // `ss -E -tu` into a pipe: the header waits for the first notification and is
    // measured with it; each later line is measured with what came before.
    assert_eq!(
        follow(&opts("-tu"), &all),
        expected(&[
            "Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process",
            "tcp   UNCONN 1      0          127.0.0.1:44607    127.0.0.1:40922       ",
            "tcp   UNCONN 1      0          127.0.0.1:40922    127.0.0.1:44607       ",
            "tcp   UNCONN 0      0          127.0.0.1:44607      0.0.0.0:*           ",
            "udp   ESTAB  0      -1         127.0.0.1:46475    127.0.0.1:domain       ",
            "udp   UNCONN 0      -1             [::1]:42378            *:*            ",
            "tcp   UNCONN 0      0              [::1]:35779            *:*            ",
        ])
    );
    // -H: the widths start from the first line and only grow (compare the peer port
    // column of the last two lines with the first).
    let tcp: Vec<Option<&InetSocket>> = d.iter().filter(|s| s.protocol == 6).map(Some).collect();
    assert_eq!(
        follow(&opts("-H -t"), &tcp),
        expected(&[
            "UNCONN 1      0      127.0.0.1:44607 127.0.0.1:40922",
            "UNCONN 1      0      127.0.0.1:40922 127.0.0.1:44607",
            "UNCONN 0      0      127.0.0.1:44607   0.0.0.0:*    ",
            "UNCONN 0      0          [::1]:35779         *:*    ",
        ])
    );
    // One table and one state: no Netid, no State; the first line widens Port.
    let udp: Vec<Option<&InetSocket>> = d.iter().filter(|s| s.protocol == 17).map(Some).collect();
    assert_eq!(
        follow(&opts("-u"), &udp),
        expected(&[
            "Recv-Q Send-Q Local Address:Port  Peer Address:Port  Process",
            "0      -1         127.0.0.1:46475    127.0.0.1:domain       ",
            "0      -1             [::1]:42378            *:*            ",
        ])
    );
}

#[test]
fn a_notification_not_shown_still_prints_the_pending_header() {
    let d = destroyed();
    // `ss -E -t dport = :53`: the first notification is filtered out, yet renders the
    // buffered header alone, with the header's own widths; later ones print nothing.
    assert_eq!(
        follow(&opts("-t dport = :53"), &[None, None]),
        expected(&["State Recv-Q Send-Q Local Address:Port Peer Address:PortProcess"])
    );
    assert_eq!(follow(&opts("-t -H"), &[None]), "");
    // Then a shown socket is measured against the header printed long before.
    assert_eq!(
        follow(&opts("-t -n"), &[None, Some(&d[0])]),
        expected(&[
            "State Recv-Q Send-Q Local Address:Port Peer Address:PortProcess",
            "UNCONN 1      0          127.0.0.1:44607    127.0.0.1:40922       ",
        ])
    );
}

#[test]
fn events_on_a_terminal_spread_each_render_over_its_width() {
    let d = destroyed();
    let all: Vec<Option<&InetSocket>> = d.iter().map(Some).collect();
    // `ss -E -tu` on a 100-column terminal.
    let mut o = opts("-tu");
    o.style.screen_width = Some(100);
    assert_eq!(
        follow(&o, &all),
        expected(&[
            "Netid    State     Recv-Q    Send-Q       Local Address:Port        Peer Address:Port    Process    ",
            "tcp      UNCONN    1         0                127.0.0.1:44607          127.0.0.1:40922              ",
            "tcp      UNCONN    1         0                127.0.0.1:40922          127.0.0.1:44607              ",
            "tcp      UNCONN    0         0                127.0.0.1:44607            0.0.0.0:*                  ",
            "udp      ESTAB     0         -1               127.0.0.1:46475          127.0.0.1:domain             ",
            "udp      UNCONN    0         -1                   [::1]:42378                  *:*                  ",
            "tcp      UNCONN    0         0                    [::1]:35779                  *:*                  ",
        ])
    );
}

#[test]
fn state_names_are_ss_names() {
    let names: Vec<&str> = (0..=14).map(state_name).collect();
    assert_eq!(
        names,
        [
            "UNKNOWN",
            "ESTAB",
            "SYN-SENT",
            "SYN-RECV",
            "FIN-WAIT-1",
            "FIN-WAIT-2",
            "TIME-WAIT",
            "UNCONN",
            "CLOSE-WAIT",
            "LAST-ACK",
            "LISTEN",
            "CLOSING",
            "SYN-RECV",
            "UNKNOWN",
            "UNKNOWN"
        ]
    );
}

#[test]
fn write_errors_are_returned() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let o = opts("-tan");
    let err = render_inet_with(&o.style, &fixture(), &names(true), &mut Broken).expect_err("broken pipe");
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}

/// (ss arguments, ss 6.1's output for the fixture sockets, captured in a netns.)
const SNAPSHOTS: &[(&str, &[&str])] = &[
    (
        "-tan",
        &[
            "State     Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
            "LISTEN    0      128                                127.0.0.1%lo:9090                                   0.0.0.0:*           ",
            "LISTEN    0      128                                   127.0.0.1:8080                                   0.0.0.0:*           ",
            "LISTEN    0      128                                   127.0.0.1:7070                                   0.0.0.0:*           ",
            "LISTEN    0      128                                     0.0.0.0:22                                     0.0.0.0:*           ",
            "LISTEN    0      5                                       0.0.0.0:80                                     0.0.0.0:*           ",
            "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
            "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
            "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070        ",
            "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
            "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
            "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*           ",
            "LISTEN    0      128                                           *:8083                                         *:*           ",
            "LISTEN    0      128                                       [::1]:8081                                      [::]:*           ",
            "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
        ],
    ),
    (
        "-ta",
        &[
            "State     Recv-Q Send-Q                            Local Address:Port                                 Peer Address:Port    Process",
            "LISTEN    0      128                                127.0.0.1%lo:9090                                      0.0.0.0:*              ",
            "LISTEN    0      128                                   127.0.0.1:http-alt                                  0.0.0.0:*              ",
            "LISTEN    0      128                                   127.0.0.1:7070                                      0.0.0.0:*              ",
            "LISTEN    0      128                                     0.0.0.0:ssh                                       0.0.0.0:*              ",
            "LISTEN    0      5                                       0.0.0.0:http                                      0.0.0.0:*              ",
            "ESTAB     0      0                                     127.0.0.1:40001                                   127.0.0.1:8083           ",
            "ESTAB     0      0                                     127.0.0.1:40000                                   127.0.0.1:http-alt       ",
            "TIME-WAIT 0      0                                     127.0.0.1:40003                                   127.0.0.1:7070           ",
            "ESTAB     100    0                                     127.0.0.1:http-alt                                127.0.0.1:40000          ",
            "SYN-SENT  0      1                                      10.1.0.1:40004                                    10.1.0.2:5000           ",
            "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:https                                        [::]:*              ",
            "LISTEN    0      128                                           *:8083                                            *:*              ",
            "LISTEN    0      128                                       [::1]:tproxy                                       [::]:*              ",
            "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                           [::ffff:127.0.0.1]:40001          ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:https    [2001:db8:1234:5678:9abc:def0:1234:5678]:40002          ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002    [2001:db8:1234:5678:9abc:def0:1234:5678]:https          ",
        ],
    ),
    (
        "-tln",
        &[
            "State  Recv-Q Send-Q                            Local Address:Port Peer Address:PortProcess",
            "LISTEN 0      128                                127.0.0.1%lo:9090      0.0.0.0:*          ",
            "LISTEN 0      128                                   127.0.0.1:8080      0.0.0.0:*          ",
            "LISTEN 0      128                                   127.0.0.1:7070      0.0.0.0:*          ",
            "LISTEN 0      128                                     0.0.0.0:22        0.0.0.0:*          ",
            "LISTEN 0      5                                       0.0.0.0:80        0.0.0.0:*          ",
            "LISTEN 0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443          [::]:*          ",
            "LISTEN 0      128                                           *:8083            *:*          ",
            "LISTEN 0      128                                       [::1]:8081         [::]:*          ",
        ],
    ),
    (
        "-tl",
        &[
            "State  Recv-Q Send-Q                            Local Address:Port     Peer Address:PortProcess",
            "LISTEN 0      128                                127.0.0.1%lo:9090          0.0.0.0:*          ",
            "LISTEN 0      128                                   127.0.0.1:http-alt      0.0.0.0:*          ",
            "LISTEN 0      128                                   127.0.0.1:7070          0.0.0.0:*          ",
            "LISTEN 0      128                                     0.0.0.0:ssh           0.0.0.0:*          ",
            "LISTEN 0      5                                       0.0.0.0:http          0.0.0.0:*          ",
            "LISTEN 0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:https            [::]:*          ",
            "LISTEN 0      128                                           *:8083                *:*          ",
            "LISTEN 0      128                                       [::1]:tproxy           [::]:*          ",
        ],
    ),
    (
        "-tanH",
        &[
            "LISTEN    0      128                                127.0.0.1%lo:9090                                   0.0.0.0:*    ",
            "LISTEN    0      128                                   127.0.0.1:8080                                   0.0.0.0:*    ",
            "LISTEN    0      128                                   127.0.0.1:7070                                   0.0.0.0:*    ",
            "LISTEN    0      128                                     0.0.0.0:22                                     0.0.0.0:*    ",
            "LISTEN    0      5                                       0.0.0.0:80                                     0.0.0.0:*    ",
            "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083 ",
            "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080 ",
            "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070 ",
            "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000",
            "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000 ",
            "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*    ",
            "LISTEN    0      128                                           *:8083                                         *:*    ",
            "LISTEN    0      128                                       [::1]:8081                                      [::]:*    ",
            "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443  ",
        ],
    ),
    (
        "-tan4",
        &[
            "State     Recv-Q Send-Q Local Address:Port  Peer Address:Port Process",
            "LISTEN    0      128     127.0.0.1%lo:9090       0.0.0.0:*           ",
            "LISTEN    0      128        127.0.0.1:8080       0.0.0.0:*           ",
            "LISTEN    0      128        127.0.0.1:7070       0.0.0.0:*           ",
            "LISTEN    0      128          0.0.0.0:22         0.0.0.0:*           ",
            "LISTEN    0      5            0.0.0.0:80         0.0.0.0:*           ",
            "ESTAB     0      0          127.0.0.1:40001    127.0.0.1:8083        ",
            "ESTAB     0      0          127.0.0.1:40000    127.0.0.1:8080        ",
            "TIME-WAIT 0      0          127.0.0.1:40003    127.0.0.1:7070        ",
            "ESTAB     100    0          127.0.0.1:8080     127.0.0.1:40000       ",
            "SYN-SENT  0      1           10.1.0.1:40004     10.1.0.2:5000        ",
        ],
    ),
    (
        "-tan6",
        &[
            "State  Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
            "LISTEN 0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*           ",
            "LISTEN 0      128                                           *:8083                                         *:*           ",
            "LISTEN 0      128                                       [::1]:8081                                      [::]:*           ",
            "ESTAB  0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
            "ESTAB  0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
            "ESTAB  0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
        ],
    ),
    (
        "-tn state syn-sent",
        &[
            "Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess",
            "0      1           10.1.0.1:40004     10.1.0.2:5000       ",
        ],
    ),
    (
        "-tn state time-wait",
        &[
            "Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess",
            "0      0          127.0.0.1:40003    127.0.0.1:7070       ",
        ],
    ),
    (
        "-tlH",
        &[
            "LISTEN 0      128                                127.0.0.1%lo:9090     0.0.0.0:*",
            "LISTEN 0      128                                   127.0.0.1:http-alt 0.0.0.0:*",
            "LISTEN 0      128                                   127.0.0.1:7070     0.0.0.0:*",
            "LISTEN 0      128                                     0.0.0.0:ssh      0.0.0.0:*",
            "LISTEN 0      5                                       0.0.0.0:http     0.0.0.0:*",
            "LISTEN 0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:https       [::]:*",
            "LISTEN 0      128                                           *:8083           *:*",
            "LISTEN 0      128                                       [::1]:tproxy      [::]:*",
        ],
    ),
    (
        "-tn exclude listening",
        &[
            "State     Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
            "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
            "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
            "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070        ",
            "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
            "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
            "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
        ],
    ),
    (
        "-t4n state listening",
        &[
            "Recv-Q Send-Q Local Address:Port Peer Address:PortProcess",
            "0      128     127.0.0.1%lo:9090      0.0.0.0:*          ",
            "0      128        127.0.0.1:8080      0.0.0.0:*          ",
            "0      128        127.0.0.1:7070      0.0.0.0:*          ",
            "0      128          0.0.0.0:22        0.0.0.0:*          ",
            "0      5            0.0.0.0:80        0.0.0.0:*          ",
        ],
    ),
    (
        "-tn",
        &[
            "State    Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
            "ESTAB    0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
            "ESTAB    0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
            "ESTAB    100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
            "SYN-SENT 0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
            "ESTAB    0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
            "ESTAB    0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
            "ESTAB    0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
        ],
    ),
    (
        "-tan state bucket",
        &[
            "State     Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess",
            "TIME-WAIT 0      0          127.0.0.1:40003    127.0.0.1:7070       ",
        ],
    ),
    (
        "-tan state connected",
        &[
            "State     Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
            "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
            "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
            "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070        ",
            "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
            "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
            "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
        ],
    ),
    (
        "-tn state established state listening",
        &[
            "State  Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
            "LISTEN 0      128                                127.0.0.1%lo:9090                                   0.0.0.0:*           ",
            "LISTEN 0      128                                   127.0.0.1:8080                                   0.0.0.0:*           ",
            "LISTEN 0      128                                   127.0.0.1:7070                                   0.0.0.0:*           ",
            "LISTEN 0      128                                     0.0.0.0:22                                     0.0.0.0:*           ",
            "LISTEN 0      5                                       0.0.0.0:80                                     0.0.0.0:*           ",
            "ESTAB  0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
            "ESTAB  0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
            "ESTAB  100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
            "LISTEN 0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*           ",
            "LISTEN 0      128                                           *:8083                                         *:*           ",
            "LISTEN 0      128                                       [::1]:8081                                      [::]:*           ",
            "ESTAB  0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
            "ESTAB  0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
            "ESTAB  0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
        ],
    ),
    (
        "-tan exclude all",
        &[
            "State    Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
            "ESTAB    0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
            "ESTAB    0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
            "ESTAB    100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
            "SYN-SENT 0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
            "ESTAB    0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
            "ESTAB    0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
            "ESTAB    0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
        ],
    ),
    (
        "-tn excl established",
        &[
            "State     Recv-Q Send-Q                            Local Address:Port  Peer Address:PortProcess",
            "LISTEN    0      128                                127.0.0.1%lo:9090       0.0.0.0:*          ",
            "LISTEN    0      128                                   127.0.0.1:8080       0.0.0.0:*          ",
            "LISTEN    0      128                                   127.0.0.1:7070       0.0.0.0:*          ",
            "LISTEN    0      128                                     0.0.0.0:22         0.0.0.0:*          ",
            "LISTEN    0      5                                       0.0.0.0:80         0.0.0.0:*          ",
            "TIME-WAIT 0      0                                     127.0.0.1:40003    127.0.0.1:7070       ",
            "SYN-SENT  0      1                                      10.1.0.1:40004     10.1.0.2:5000       ",
            "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443           [::]:*          ",
            "LISTEN    0      128                                           *:8083             *:*          ",
            "LISTEN    0      128                                       [::1]:8081          [::]:*          ",
        ],
    ),
    (
        "-tn state all",
        &[
            "State     Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
            "LISTEN    0      128                                127.0.0.1%lo:9090                                   0.0.0.0:*           ",
            "LISTEN    0      128                                   127.0.0.1:8080                                   0.0.0.0:*           ",
            "LISTEN    0      128                                   127.0.0.1:7070                                   0.0.0.0:*           ",
            "LISTEN    0      128                                     0.0.0.0:22                                     0.0.0.0:*           ",
            "LISTEN    0      5                                       0.0.0.0:80                                     0.0.0.0:*           ",
            "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
            "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
            "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070        ",
            "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
            "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
            "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*           ",
            "LISTEN    0      128                                           *:8083                                         *:*           ",
            "LISTEN    0      128                                       [::1]:8081                                      [::]:*           ",
            "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
        ],
    ),
    (
        "-tnl state all",
        &[
            "State     Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
            "LISTEN    0      128                                127.0.0.1%lo:9090                                   0.0.0.0:*           ",
            "LISTEN    0      128                                   127.0.0.1:8080                                   0.0.0.0:*           ",
            "LISTEN    0      128                                   127.0.0.1:7070                                   0.0.0.0:*           ",
            "LISTEN    0      128                                     0.0.0.0:22                                     0.0.0.0:*           ",
            "LISTEN    0      5                                       0.0.0.0:80                                     0.0.0.0:*           ",
            "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
            "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
            "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070        ",
            "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
            "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
            "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*           ",
            "LISTEN    0      128                                           *:8083                                         *:*           ",
            "LISTEN    0      128                                       [::1]:8081                                      [::]:*           ",
            "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
            "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
        ],
    ),
    (
        "-tn4H state established",
        &[
            "0      0      127.0.0.1:40001 127.0.0.1:8083 ",
            "0      0      127.0.0.1:40000 127.0.0.1:8080 ",
            "100    0      127.0.0.1:8080  127.0.0.1:40000",
        ],
    ),
];

/// (screen width, ss arguments, output on a terminal that wide), fixture in TTY_ORDER.
const TTY_SNAPSHOTS: &[(usize, &str, &[&str])] = &[
    (
        60,
        "-tan",
        &[
            "State                 Recv-Q             Send-Q                                               Local Address:Port                                       Peer Address:Port   Process  ",
            "LISTEN                0                  128                                                   127.0.0.1%lo:9090                                            0.0.0.0:*               ",
            "LISTEN                0                  128                                                      127.0.0.1:8080                                            0.0.0.0:*               ",
            "LISTEN                0                  128                                                      127.0.0.1:7070                                            0.0.0.0:*               ",
            "LISTEN                0                  128                                                        0.0.0.0:22                                              0.0.0.0:*               ",
            "LISTEN                0                  5                                                          0.0.0.0:80                                              0.0.0.0:*               ",
            "ESTAB                 0                  0                                                        127.0.0.1:40000                                         127.0.0.1:8080            ",
            "ESTAB                 0                  0                                                        127.0.0.1:40001                                         127.0.0.1:8083            ",
            "TIME-WAIT             0                  0                                                        127.0.0.1:40003                                         127.0.0.1:7070            ",
            "ESTAB                 100                0                                                        127.0.0.1:8080                                          127.0.0.1:40000           ",
            "SYN-SENT              0                  1                                                         10.1.0.1:40004                                          10.1.0.2:5000            ",
            "LISTEN                0                  128                                                          [::1]:8081                                               [::]:*               ",
            "LISTEN                0                  128                                                              *:8083                                                  *:*               ",
            "LISTEN                0                  128                       [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                                [::]:*               ",
            "ESTAB                 0                  0                         [2001:db8:1234:5678:9abc:def0:1234:5678]:443            [2001:db8:1234:5678:9abc:def0:1234:5678]:40002           ",
            "ESTAB                 0                  0                                               [::ffff:127.0.0.1]:8083                                 [::ffff:127.0.0.1]:40001           ",
            "ESTAB                 0                  0                         [2001:db8:1234:5678:9abc:def0:1234:5678]:40002          [2001:db8:1234:5678:9abc:def0:1234:5678]:443             ",
        ],
    ),
    (
        60,
        "-tln",
        &[
            "State               Recv-Q              Send-Q                                          Local Address:Port Peer Address:Port                        Process                         ",
            "LISTEN              0                   128                                              127.0.0.1%lo:9090      0.0.0.0:*                                                           ",
            "LISTEN              0                   128                                                 127.0.0.1:8080      0.0.0.0:*                                                           ",
            "LISTEN              0                   128                                                 127.0.0.1:7070      0.0.0.0:*                                                           ",
            "LISTEN              0                   128                                                   0.0.0.0:22        0.0.0.0:*                                                           ",
            "LISTEN              0                   5                                                     0.0.0.0:80        0.0.0.0:*                                                           ",
            "LISTEN              0                   128                                                     [::1]:8081         [::]:*                                                           ",
            "LISTEN              0                   128                                                         *:8083            *:*                                                           ",
            "LISTEN              0                   128                  [2001:db8:1234:5678:9abc:def0:1234:5678]:443          [::]:*                                                           ",
        ],
    ),
    (
        100,
        "-tan",
        &[
            "State           Recv-Q       Send-Q                                        Local Address:Port                                                   Peer Address:Port                Process                ",
            "LISTEN          0            128                                            127.0.0.1%lo:9090                                                        0.0.0.0:*                                          ",
            "LISTEN          0            128                                               127.0.0.1:8080                                                        0.0.0.0:*                                          ",
            "LISTEN          0            128                                               127.0.0.1:7070                                                        0.0.0.0:*                                          ",
            "LISTEN          0            128                                                 0.0.0.0:22                                                          0.0.0.0:*                                          ",
            "LISTEN          0            5                                                   0.0.0.0:80                                                          0.0.0.0:*                                          ",
            "ESTAB           0            0                                                 127.0.0.1:40000                                                     127.0.0.1:8080                                       ",
            "ESTAB           0            0                                                 127.0.0.1:40001                                                     127.0.0.1:8083                                       ",
            "TIME-WAIT       0            0                                                 127.0.0.1:40003                                                     127.0.0.1:7070                                       ",
            "ESTAB           100          0                                                 127.0.0.1:8080                                                      127.0.0.1:40000                                      ",
            "SYN-SENT        0            1                                                  10.1.0.1:40004                                                      10.1.0.2:5000                                       ",
            "LISTEN          0            128                                                   [::1]:8081                                                           [::]:*                                          ",
            "LISTEN          0            128                                                       *:8083                                                              *:*                                          ",
            "LISTEN          0            128                [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                                            [::]:*                                          ",
            "ESTAB           0            0                  [2001:db8:1234:5678:9abc:def0:1234:5678]:443                        [2001:db8:1234:5678:9abc:def0:1234:5678]:40002                                      ",
            "ESTAB           0            0                                        [::ffff:127.0.0.1]:8083                                             [::ffff:127.0.0.1]:40001                                      ",
            "ESTAB           0            0                  [2001:db8:1234:5678:9abc:def0:1234:5678]:40002                      [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                        ",
        ],
    ),
    (
        100,
        "-tln",
        &[
            "State   Recv-Q  Send-Q                              Local Address:Port   Peer Address:Port Process  ",
            "LISTEN  0       128                                  127.0.0.1%lo:9090        0.0.0.0:*             ",
            "LISTEN  0       128                                     127.0.0.1:8080        0.0.0.0:*             ",
            "LISTEN  0       128                                     127.0.0.1:7070        0.0.0.0:*             ",
            "LISTEN  0       128                                       0.0.0.0:22          0.0.0.0:*             ",
            "LISTEN  0       5                                         0.0.0.0:80          0.0.0.0:*             ",
            "LISTEN  0       128                                         [::1]:8081           [::]:*             ",
            "LISTEN  0       128                                             *:8083              *:*             ",
            "LISTEN  0       128      [2001:db8:1234:5678:9abc:def0:1234:5678]:443            [::]:*             ",
        ],
    ),
    (
        200,
        "-tan",
        &[
            "State              Recv-Q          Send-Q                                              Local Address:Port                                                  Peer Address:Port           Process          ",
            "LISTEN             0               128                                                  127.0.0.1%lo:9090                                                       0.0.0.0:*                               ",
            "LISTEN             0               128                                                     127.0.0.1:8080                                                       0.0.0.0:*                               ",
            "LISTEN             0               128                                                     127.0.0.1:7070                                                       0.0.0.0:*                               ",
            "LISTEN             0               128                                                       0.0.0.0:22                                                         0.0.0.0:*                               ",
            "LISTEN             0               5                                                         0.0.0.0:80                                                         0.0.0.0:*                               ",
            "ESTAB              0               0                                                       127.0.0.1:40000                                                    127.0.0.1:8080                            ",
            "ESTAB              0               0                                                       127.0.0.1:40001                                                    127.0.0.1:8083                            ",
            "TIME-WAIT          0               0                                                       127.0.0.1:40003                                                    127.0.0.1:7070                            ",
            "ESTAB              100             0                                                       127.0.0.1:8080                                                     127.0.0.1:40000                           ",
            "SYN-SENT           0               1                                                        10.1.0.1:40004                                                     10.1.0.2:5000                            ",
            "LISTEN             0               128                                                         [::1]:8081                                                          [::]:*                               ",
            "LISTEN             0               128                                                             *:8083                                                             *:*                               ",
            "LISTEN             0               128                      [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                                           [::]:*                               ",
            "ESTAB              0               0                        [2001:db8:1234:5678:9abc:def0:1234:5678]:443                       [2001:db8:1234:5678:9abc:def0:1234:5678]:40002                           ",
            "ESTAB              0               0                                              [::ffff:127.0.0.1]:8083                                            [::ffff:127.0.0.1]:40001                           ",
            "ESTAB              0               0                        [2001:db8:1234:5678:9abc:def0:1234:5678]:40002                     [2001:db8:1234:5678:9abc:def0:1234:5678]:443                             ",
        ],
    ),
    (
        200,
        "-tln",
        &[
            "State               Recv-Q              Send-Q                                                       Local Address:Port                             Peer Address:Port              Process              ",
            "LISTEN              0                   128                                                           127.0.0.1%lo:9090                                  0.0.0.0:*                                      ",
            "LISTEN              0                   128                                                              127.0.0.1:8080                                  0.0.0.0:*                                      ",
            "LISTEN              0                   128                                                              127.0.0.1:7070                                  0.0.0.0:*                                      ",
            "LISTEN              0                   128                                                                0.0.0.0:22                                    0.0.0.0:*                                      ",
            "LISTEN              0                   5                                                                  0.0.0.0:80                                    0.0.0.0:*                                      ",
            "LISTEN              0                   128                                                                  [::1]:8081                                     [::]:*                                      ",
            "LISTEN              0                   128                                                                      *:8083                                        *:*                                      ",
            "LISTEN              0                   128                               [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                      [::]:*                                      ",
        ],
    ),
];

/// ss 7.1's rules on three sockets, its output of `-tan` and `-tano` into a pipe for
/// them: no Process header without `-p`, the peer port unpadded, the details in the last
/// column padded to the width measured over every row but the last.
#[test]
fn ss_7_1_columns_timers_and_names() {
    let rows = || {
        let tw = |port| {
            let mut s = sock(TcpState::TimeWait, "192.0.2.2", port, "203.0.113.80", 80, 0, 0, 0);
            s.timer = 3;
            s.expires_ms = if port == 59902 { 31_000 } else { 32_000 };
            s
        };
        vec![sock(TcpState::Listen, "0.0.0.0", 2024, "0.0.0.0", 0, 0, 128, 0), tw(59902), tw(59912)]
    };
    let render7 = |args: &str| render(&opts(&format!("{args} --ss-compat 7.1")), rows());
    assert_eq!(
        render7("-tan"),
        expected(&[
            "State     Recv-Q Send-Q Local Address:Port  Peer Address:Port",
            "LISTEN    0      128          0.0.0.0:2024       0.0.0.0:*",
            "TIME-WAIT 0      0          192.0.2.2:59902 203.0.113.80:80",
            "TIME-WAIT 0      0          192.0.2.2:59912 203.0.113.80:80",
        ])
    );
    assert_eq!(
        render7("-tano"),
        expected(&[
            "State     Recv-Q Send-Q Local Address:Port  Peer Address:Port                         ",
            "LISTEN    0      128          0.0.0.0:2024       0.0.0.0:*                         ",
            "TIME-WAIT 0      0          192.0.2.2:59902 203.0.113.80:80 timer:(timewait,31sec,0)",
            "TIME-WAIT 0      0          192.0.2.2:59912 203.0.113.80:80 timer:(timewait,32sec,0)",
        ])
    );
    // ss 6.1 for the same: the Process header, every column padded.
    assert_eq!(
        render(&opts("-tan"), rows()),
        expected(&[
            "State     Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess",
            "LISTEN    0      128          0.0.0.0:2024       0.0.0.0:*          ",
            "TIME-WAIT 0      0          192.0.2.2:59902 203.0.113.80:80         ",
            "TIME-WAIT 0      0          192.0.2.2:59912 203.0.113.80:80         ",
        ])
    );
    // print_ms_timer(): 7.1 ends a time of 1-9 s with milliseconds in "sec".
    for (ms, v6, v7) in [
        (4876, "4.876ms", "4.876sec"),
        (876, "876ms", "876ms"),
        (31_000, "31sec", "31sec"),
        (61_500, "1min1sec", "1min1sec"),
    ] {
        assert_eq!((ms_timer(ms, false).as_str(), ms_timer(ms, true).as_str()), (v6, v7), "{ms}");
    }
    let mut delack = rows().remove(1);
    delack.timer = 5;
    assert!(timer_text(&delack, false).starts_with(" timer:(unknown,"));
    assert!(timer_text(&delack, true).starts_with(" timer:(delack,"));
    delack.timer = 6;
    assert!(timer_text(&delack, true).starts_with(" timer:(unknown,"));
    // escape_str() in the C locale.
    assert_eq!(escaped_comm("sst\tn\u{e9}\u{7f}"), "sst.n??.");
}

/// A big answer (more than [`PARALLEL_ROWS`] rows, so printed on two threads): netlink and
/// UNIX rows ahead of the TCP ones, IPv4 and IPv6, owners for some, and a last row whose
/// details are the longest (ss never measures them) while the row ending the first half
/// has the longest owners (measured: it is not the last row).
fn big_snapshot() -> (Snapshot, Names) {
    let rows = PARALLEL_ROWS + 5_001;
    let netlink = (0..3)
        .map(|i| NetlinkSocket {
            protocol: [0, 4, 9][i],
            portid: i32::try_from(i).expect("small") * 1000,
            groups: 1 << i,
            ..NetlinkSocket::default()
        })
        .collect();
    let unix = (0..5)
        .map(|i| UnixSocket {
            kind: if i % 2 == 0 { 1 } else { 2 },
            state: 10,
            inode: 900_000 + i,
            peer: 0,
            name: (i % 3 == 0).then(|| format!("/run/sock{i}").into_bytes()),
            rqueue: 0,
            wqueue: 0,
            ext: None,
        })
        .collect();
    let n_tcp = rows - 8;
    let tcp: Vec<InetSocket> = (0..n_tcp)
        .map(|i| {
            let n = u32::try_from(i).expect("small");
            let port = u16::try_from(1024 + i % 60_000).expect("small");
            let mut s = if i % 7 == 0 {
                sock(TcpState::Established, "2001:db8::1", port, "2001:db8::2:1", 443, 0, 0, 0)
            } else {
                let a = format!("10.{}.{}.{}", i % 256, (i / 256) % 256, i % 200);
                sock(TcpState::Established, &a, port, "127.0.0.1", 80, n % 3000, n % 11, 0)
            };
            s.inode = 1_000_000 + n;
            s.uid = if i % 5 == 0 { 1000 } else { 0 };
            s.cookie = u64::from(n) * 0x1_0001;
            if i % 13 == 0 {
                s.timer = 2;
                s.expires_ms = 1000 + n;
            }
            s
        })
        .collect();
    let boundary = (rows / 2 - 1) - 8;
    let last = n_tcp - 1;
    let mut owners: rustc_hash::FxHashMap<u32, String> = (0..n_tcp)
        .filter(|i| i % 3 == 0)
        .map(|i| (tcp[i].inode, format!("(\"app\",pid={},fd={})", 100 + i, i % 50)))
        .collect();
    owners.insert(tcp[boundary].inode, format!("(\"{}\",pid=1,fd=3)", "b".repeat(60)));
    owners.insert(tcp[last].inode, format!("(\"{}\",pid=1,fd=3)", "l".repeat(120)));
    let mut tcp = tcp;
    tcp[last].uid = 4_000_000_000;
    tcp[last].timer = 2;
    tcp[last].expires_ms = 7_200_000;
    let snap = Snapshot { netlink, unix, tcp, ..Snapshot::default() };
    let names = Names::fixed(None, (32768, 60999), &[(1, "lo")]).with_owners(owners);
    (snap, names)
}

#[test]
fn a_big_answer_prints_the_same_on_one_thread_or_several() {
    let (snap, names) = big_snapshot();
    let render_parts = |o: &crate::cli::Options, parts: usize| {
        let mut out = Vec::new();
        render_in_parts(&o.style, &snap, &names, parts, &mut out).expect("writing to a Vec");
        String::from_utf8(out).expect("ASCII")
    };
    let mut exercised_last_row_rule = false;
    for args in [
        "-tan",
        "-tane",
        "-tanop",
        "-anep",
        "-tanH",
        "-tan --ss-compat 7.1",
        "-tanep --ss-compat 7.1",
        "-anop --ss-compat 7.1",
    ] {
        for width in [None, Some(100), Some(250)] {
            let mut o = opts(args);
            o.style.screen_width = width;
            let one = render_parts(&o, 1);
            assert_eq!(one.lines().count(), snap.tcp.len() + 8 + usize::from(o.style.show_header), "{args}");
            for parts in [2, 3] {
                // Not assert_eq: a mismatch would print megabytes.
                let many = render_parts(&o, parts);
                let diff = one.lines().zip(many.lines()).position(|(a, b)| a != b);
                assert!(one == many, "{args} at {width:?} in {parts} parts: first differing line {diff:?}");
            }
            // render_with takes the two-thread path for this many rows.
            let mut out = Vec::new();
            render_with(&o.style, &snap, &names, &mut out).expect("writing to a Vec");
            assert!(out == one.as_bytes(), "{args} at {width:?} through render_with");
            // The last row's unmeasured field overflows its column; the row ending the
            // first half sets the width of its own.
            let lines: Vec<&str> = one.lines().collect();
            let longest_other = lines[..lines.len() - 1].iter().map(|l| l.len()).max().unwrap_or(0);
            if width.is_none() && lines[lines.len() - 1].len() > longest_other {
                exercised_last_row_rule = true;
            }
        }
    }
    assert!(exercised_last_row_rule, "the fixture must make ss's unmeasured last field matter");
    // ss 6.1 -tanp: the Process column is as wide as the row ending the first half needs.
    let one = render_parts(&opts("-tanp"), 2);
    // After the header: the last row of the first part, rows / 2 - 1.
    let boundary_line = one.lines().nth((snap.tcp.len() + 8) / 2).unwrap_or_default();
    assert!(boundary_line.contains("bbbb"), "{boundary_line}");
    assert!(one.lines().next().is_some_and(|header| header.len() == boundary_line.len()), "{boundary_line}");
}

/// TCP rows printed as they are read ([`render_tcp_rows`]: measured from their lengths,
/// built and printed block by block) print as a snapshot of them does, at every size
/// around the block and thread boundaries, in every layout.
#[test]
fn tcp_rows_read_one_by_one_print_as_a_snapshot_of_them() {
    let (snap, _) = big_snapshot();
    let mut tcp = snap.tcp;
    // Rows whose lengths are not plain numbers: an interface, a negative queue, port 0,
    // named ports, any addresses either way, a long IPv6 address.
    let mut odd = vec![
        sock(TcpState::Listen, "0.0.0.0", 22, "0.0.0.0", 0, 0, 128, 0),
        sock(TcpState::Listen, "::", 80, "::", 0, 0, 4096, 0),
        sock(TcpState::Established, "192.168.1.10", 443, "10.0.0.1", 8080, u32::MAX, 7, 1),
        sock(TcpState::SynSent, LONG, 40000, "2001:db8::1", 8081, 0, 1, 0),
        sock(TcpState::TimeWait, "127.0.0.1", 1, "127.0.0.1", 65535, 0, 0, 0),
    ];
    odd[1].v6only = true;
    for (i, s) in odd.iter_mut().enumerate() {
        s.inode = 1_000_000 + u32::try_from(i).expect("small") * 3;
    }
    tcp.splice(0..0, odd);
    // Owners for some rows, the longest for a row in the middle and for the last one.
    let owners = |tcp: &[InetSocket]| -> rustc_hash::FxHashMap<u32, String> {
        let mut o: rustc_hash::FxHashMap<u32, String> = tcp
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == 0)
            .map(|(i, s)| (s.inode, format!("(\"app\",pid={},fd={})", 100 + i, i % 50)))
            .collect();
        o.insert(tcp[tcp.len() / 2].inode, format!("(\"{}\",pid=1,fd=3)", "b".repeat(60)));
        o.insert(tcp[tcp.len() - 1].inode, format!("(\"{}\",pid=1,fd=3)", "l".repeat(120)));
        o
    };
    for numeric in [true, false] {
        let names = names(numeric).with_owners(owners(&tcp));
        for n in [0, 1, 5, STREAMED_BLOCK - 1, STREAMED_BLOCK, STREAMED_BLOCK + 1, 2 * STREAMED_BLOCK + 3, tcp.len()] {
            let rows = &tcp[..n];
            let snap = Snapshot { tcp: rows.to_vec(), ..Snapshot::default() };
            for args in ["-tan", "-tanH", "-tanop", "-tane", "-tanp --ss-compat 7.1", "-tanoe --ss-compat 7.1", "-ta"] {
                let args = if numeric { args.to_owned() } else { args.replace("-ta", "-t -a").replace(" -an", " -a") };
                for width in [None, Some(100), Some(250)] {
                    let mut o = opts(&args);
                    o.style.screen_width = width;
                    let mut want = Vec::new();
                    render_with(&o.style, &snap, &names, &mut want).expect("writing to a Vec");
                    let mut got = Vec::new();
                    render_tcp_rows(&o.style, &snap.tcp, &names, &mut got).expect("writing to a Vec");
                    // Not assert_eq: a mismatch would print megabytes.
                    let (want, got) = (String::from_utf8_lossy(&want), String::from_utf8_lossy(&got));
                    let diff = want.lines().zip(got.lines()).position(|(a, b)| a != b);
                    assert!(want == got, "{args} at {width:?}, {n} rows: first differing line {diff:?}");
                }
            }
        }
    }
}

/// Not a check: the time to print 100k loopback rows as `-tan` (run with
/// `cargo test --release -p sockstat --lib print_speed -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement"]
fn print_speed() {
    let tcp: Vec<InetSocket> = (0..100_000u32)
        .map(|i| {
            let port = u16::try_from(30_000 + i % 6).expect("small");
            let eph = u16::try_from(32_768 + i % 28_000).expect("small");
            sock(TcpState::Established, "127.0.0.1", eph, "127.0.0.1", port, 0, 0, 0)
        })
        .collect();
    let snap = Snapshot { tcp, ..Snapshot::default() };
    let names = Names::fixed(None, (32768, 60999), &[]);
    let o = opts("-tan");
    for parts in [1, 2] {
        let mut best = std::time::Duration::MAX;
        for _ in 0..30 {
            let started = std::time::Instant::now();
            let mut sink = io::sink();
            render_in_parts(&o.style, &snap, &names, parts, &mut sink).expect("writing to a sink");
            best = best.min(started.elapsed());
        }
        eprintln!("{parts} part(s): {best:?}");
    }
}

/// A write error part way through a big answer stops the printing on both threads and is
/// returned, whichever thread printed the block being written.
#[test]
fn a_big_answer_returns_a_write_error_part_way() {
    /// Takes `left` bytes, then fails.
    struct FailsAfter {
        left: usize,
    }
    impl Write for FailsAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.left {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            self.left -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let (snap, names) = big_snapshot();
    let o = opts("-tan");
    let mut whole = Vec::new();
    render_in_parts(&o.style, &snap, &names, 2, &mut whole).expect("writing to a Vec");
    for left in [0, 100, whole.len() / 3, whole.len() / 2, whole.len() - 1] {
        let err = render_in_parts(&o.style, &snap, &names, 2, &mut FailsAfter { left }).expect_err("broken pipe");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "after {left} bytes");
    }
}
