//! `-r` against the real `ss` (iproute2 6.1), byte for byte, in a namespace holding
//! sockets on 127.0.0.1 (named by /etc/hosts), ::1, ::ffff:127.0.0.1 (looked up as
//! 127.0.0.1), 0.0.0.0, `::` dual-stack and v6-only, and 10.254.0.1, an address on a veth
//! that has no name. The namespace has no route to any DNS server, so lookups that go
//! past /etc/hosts fail at once, for ss and sockstat alike, instead of timing out.
//!
//! The UNIX table is left out on purpose: with `-r` and without `-n`, ss 6.1 opens an
//! rpcbind client socket that it lists among its own UNIX sockets (see docs/compatibility.md).

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};

use socket2::{Domain, Socket, Type};
use sockstat_tests::NetNs;

fn listener(addr: &str, v6only: Option<bool>) -> Socket {
    let addr: SocketAddr = addr.parse().expect("literal address");
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    if let Some(only) = v6only {
        s.set_only_v6(only).expect("IPV6_V6ONLY");
    }
    s.bind(&addr.into()).expect("bind");
    s.listen(8).expect("listen");
    s
}

/// A listener on `addr` and a connection to it (both ends kept).
fn pair(addr: &str, v6only: Option<bool>, socks: &mut Vec<Socket>) {
    let l: TcpListener = listener(addr, v6only).into();
    let c = TcpStream::connect(l.local_addr().expect("local addr")).expect("connect");
    let (a, _) = l.accept().expect("accept");
    socks.extend([l.into(), c.into(), a.into()]);
}

fn fixture(ns: &NetNs) -> Vec<Socket> {
    ns.ip(&["link", "add", "rv0", "type", "veth", "peer", "name", "rv1"]);
    ns.ip(&["addr", "add", "10.254.0.1/24", "dev", "rv0"]);
    ns.ip(&["link", "set", "rv0", "up"]);
    ns.ip(&["link", "set", "rv1", "up"]);
    ns.enter(|| {
        let mut socks = Vec::new();
        pair("127.0.0.1:7001", None, &mut socks);
        pair("[::1]:7002", None, &mut socks);
        pair("[::ffff:127.0.0.1]:7003", Some(false), &mut socks);
        pair("10.254.0.1:7004", None, &mut socks);
        socks.push(listener("0.0.0.0:22", None));
        let dual = listener("[::]:80", Some(false));
        // A v6 client of the dual-stack listener through a v4-mapped address.
        let c = TcpStream::connect("[::ffff:127.0.0.1]:80").expect("connect v4-mapped");
        socks.extend([dual, c.into(), listener("[::]:81", Some(true))]);
        for addr in ["127.0.0.1:5353", "[::1]:53", "0.0.0.0:123", "10.254.0.1:7005"] {
            socks.push(UdpSocket::bind(addr).expect("udp bind").into());
        }
        let any6 = Socket::new(Domain::IPV6, Type::DGRAM, None).expect("udp6");
        any6.set_only_v6(false).expect("IPV6_V6ONLY");
        any6.bind(&"[::]:161".parse::<SocketAddr>().expect("literal").into()).expect("bind [::]:161");
        let connected = UdpSocket::bind("127.0.0.1:7006").expect("udp bind");
        connected.connect("127.0.0.1:5353").expect("udp connect");
        socks.extend([any6, connected.into()]);
        socks
    })
}

#[test]
fn resolved_hosts_match_ss_byte_for_byte() {
    let ns = NetNs::new("resolve");
    let _socks = fixture(&ns);
    // -n with -r: numeric ports, resolved hosts. -4/-6 select ss's default tables of one
    // family (without UNIX, see the module doc).
    for args in [
        &["-tar"][..],
        &["-tlr"],
        &["-uar"],
        &["-tnr"],
        &["-tanr"],
        &["-uanr"],
        &["-r", "-4"],
        &["-r", "-6"],
        &["-ra", "-4"],
        &["-tarH"],
        &["-tar", "dport", "=", ":7001"],
    ] {
        let theirs = ns.ss(args);
        let ours = ns.sockstat_ok(args);
        assert_eq!(ours, theirs, "sockstat {args:?} differs from ss");
    }
    // The fixture exercises both outcomes: a name (127.0.0.1, also v4-mapped) and none.
    let all = ns.ss(&["-tar"]);
    assert!(all.contains("localhost:7001"), "127.0.0.1 has no name here: {all}");
    assert!(all.contains("localhost:7003"), "v4-mapped 127.0.0.1 has no name here: {all}");
    assert!(all.contains("10.254.0.1:7004"), "{all}");
    // Without -r nothing is resolved.
    assert_eq!(ns.sockstat_ok(&["-tan"]), ns.ss(&["-tan"]));
}
