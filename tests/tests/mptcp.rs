//! MPTCP sockets (`-M`, and the MPTCP rows of `-a`) against the real `ss` (iproute2 6.1),
//! byte for byte, in a namespace holding MPTCP listeners and connections (IPv4, IPv6, a
//! dual-stack listener reached over IPv4, one connection half-closed) beside TCP and UDP
//! sockets. MPTCP rows always come from a kernel dump made at query time, so these runs
//! use no agent.
//!
//! What is excluded from the comparison, and why:
//! - The netlink socket of the querying process itself (`-a` lists netlink sockets): ss's
//!   shows as `tcpdiag:ss/PID`, sockstat's as `tcpdiag:sockstat/PID`. That one line is
//!   removed from both outputs, as `families.rs` does (`4:PID` with `-n`). So that it
//!   cannot change the column widths, the fixture holds a UNIX socket whose abstract name
//!   is wider than `tcpdiag:` and a netlink socket of its own (`<test binary name>/PID`,
//!   wider than `sockstat/PID`).
//! - `-i`: ss 6.1 prints no time-varying field of `struct mptcp_info`; ss 7.1 prints its
//!   idle times (`last_data_sent:`, `last_data_recv:`, `last_ack_recv:`), whose values
//!   are masked as `lastsnd:`'s are. The fixture's data is all delivered before the
//!   comparisons. Each case is still retried a few times, as
//!   `details.rs` does, in case a late ACK moves a queue between two runs.

use std::{
    io::Write,
    net::SocketAddr,
    os::linux::net::SocketAddrExt,
    os::unix::net::{SocketAddr as UnixAddr, UnixListener},
    thread,
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};
use sockstat_tests::{NetNs, without_self};

/// IPPROTO_MPTCP (include/uapi/linux/in.h).
const IPPROTO_MPTCP: i32 = 262;

fn addr(s: &str) -> socket2::SockAddr {
    s.parse::<SocketAddr>().expect("literal address").into()
}

fn mptcp(domain: Domain) -> Socket {
    Socket::new(domain, Type::STREAM, Some(Protocol::from(IPPROTO_MPTCP)))
        .expect("an MPTCP socket (needs CONFIG_MPTCP and net.mptcp.enabled=1: `sysctl -w net.mptcp.enabled=1`)")
}

fn listener(domain: Domain, at: &str, v6only: Option<bool>) -> Socket {
    let l = mptcp(domain);
    if let Some(only) = v6only {
        l.set_only_v6(only).expect("IPV6_V6ONLY");
    }
    l.bind(&addr(at)).expect("bind the MPTCP listener");
    l.listen(16).expect("listen");
    l
}

/// A connected pair: the client and the accepted socket.
fn pair(l: &Socket, domain: Domain, to: &str) -> [Socket; 2] {
    let c = mptcp(domain);
    c.connect(&addr(to)).expect("connect over MPTCP");
    let (a, _) = l.accept().expect("accept");
    [c, a]
}

/// A NETLINK_ROUTE socket bound to the process's port id (see the module doc).
fn netlink_route() -> Socket {
    let s = Socket::new(Domain::from(libc::AF_NETLINK), Type::RAW, Some(Protocol::from(libc::NETLINK_ROUTE)))
        .expect("a netlink socket");
    // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = u16::try_from(libc::AF_NETLINK).expect("small");
    let len = u32::try_from(std::mem::size_of::<libc::sockaddr_nl>()).expect("small");
    // SAFETY: `sa` is a valid sockaddr_nl of `len` bytes and outlives the call.
    let rc = unsafe { libc::bind(std::os::fd::AsRawFd::as_raw_fd(&s), (&raw const sa).cast(), len) };
    assert_eq!(rc, 0, "bind the netlink socket: {}", std::io::Error::last_os_error());
    s
}

/// Opens the fixture in the namespace; dropping the sockets closes it.
fn populate(ns: &NetNs) -> Vec<Socket> {
    let sockets = ns.enter(|| {
        let mut keep = Vec::new();
        // IPv4: a listener and a connection whose server side holds 5 unread bytes.
        let l4 = listener(Domain::IPV4, "127.0.0.1:6000", None);
        let [mut c4, a4] = pair(&l4, Domain::IPV4, "127.0.0.1:6000");
        c4.write_all(b"hello").expect("send");
        // IPv6 (v6-only listener).
        let l6 = listener(Domain::IPV6, "[::1]:6001", Some(true));
        let [c6, a6] = pair(&l6, Domain::IPV6, "[::1]:6001");
        // A dual-stack listener reached over IPv4: the accepted socket is AF_INET6 with a
        // v4-mapped address. The client then closes its sending side (`-->` in -e, and a
        // FIN-WAIT-2 / CLOSE-WAIT pair once the DATA_FIN is acknowledged).
        let ld = listener(Domain::IPV6, "[::]:6002", Some(false));
        let [cd, ad] = pair(&ld, Domain::IPV4, "127.0.0.1:6002");
        cd.shutdown(std::net::Shutdown::Write).expect("shutdown");
        keep.extend([l4, c4, a4, l6, c6, a6, ld, cd, ad]);

        // TCP and UDP beside them, so `-a` and the filters see every inet table.
        let l = std::net::TcpListener::bind("127.0.0.1:8080").expect("tcp listen");
        let c = std::net::TcpStream::connect("127.0.0.1:8080").expect("tcp connect");
        let a = l.accept().expect("tcp accept").0;
        let u = std::net::UdpSocket::bind("[::]:5353").expect("udp bind");
        keep.extend([l.into(), c.into(), a.into(), Socket::from(std::os::fd::OwnedFd::from(u))]);
        // Wider than either tool's own netlink socket (see the module doc).
        let name = UnixAddr::from_abstract_name(b"sockstat-mptcp-fixture-wider-than-tcpdiag").expect("abstract name");
        let x = UnixListener::bind_addr(&name).expect("bind the UNIX listener");
        keep.push(Socket::from(std::os::fd::OwnedFd::from(x)));
        keep.push(netlink_route());
        keep
    });
    // Let the DATA_FIN and the delayed ACKs settle.
    thread::sleep(Duration::from_millis(300));
    sockets
}

fn compare_all(ns: &NetNs, cases: &[&[&str]]) {
    // ss 7.1 prints MPTCP's idle times (`last_data_sent:` ...), which move between runs.
    sockstat_tests::compare_all(ns, cases, |t| without_self(&sockstat_tests::mask_idle(t)));
}

#[test]
fn mptcp_sockets_are_byte_identical_to_ss() {
    let ns = NetNs::new("mptcp");
    let _f = populate(&ns);
    // The fixture is really there, and MPTCP details are printed.
    let all = ns.ss(&["-Man"]);
    for needle in ["127.0.0.1:6000", "[::1]:6001", "*:6002", "[::ffff:127.0.0.1]:6002", "LISTEN", "ESTAB"] {
        assert!(all.contains(needle), "fixture lacks {needle}:\n{all}");
    }
    assert!(ns.ss(&["-Mai"]).contains(" token:"), "ss -Mai prints no mptcp_info");
    compare_all(
        &ns,
        &[
            &["-a"],
            &["-an"],
            &["-M"],
            &["-Ma"],
            &["-Man"],
            &["-Mae"],
            &["-Mai"],
            &["-Mam"],
            &["-Mao"],
            &["-Maemio"],
            &["-MaeimoO"],
            &["-Map"],
            &["-Ma4"],
            &["-Ma6"],
            &["-M", "-4", "-6", "-a"],
            &["-MaH"],
            &["-MaO"],
            &["-A", "mptcp,tcp", "-a"],
            &["-f", "inet6", "-Ma"],
            &["-Ma", "sport", "=", ":6000"],
            &["-Ma", "dport", "=", ":6001"],
            &["-Ma", "src", "127.0.0.1"],
            &["-Ma", "dst", "[::1]"],
            &["-Ma", "(", "sport", "=", ":6002", "or", "dport", "=", ":6002", ")"],
            &["-Mn", "state", "established"],
            &["-Mn", "state", "listening"],
            &["-Man", "exclude", "established"],
            &["-Mn", "state", "fin-wait-2"],
            &["-Mn", "state", "close-wait"],
            // Every inet table (netlink sockets take no expression in sockstat yet).
            &["-A", "inet", "-an", "sport", "=", ":6000"],
            // ss names each MPTCP socket to SOCK_DESTROY as TCP, which finds none: the
            // table stays empty and nothing is closed. Last, in case it did close one.
            &["-MaK"],
        ],
    );
    // The sockets survived -K in both tools.
    assert!(ns.ss(&["-Man"]).contains("127.0.0.1:6000"), "-K closed an MPTCP socket");
    // The TCP subflows of the MPTCP connections: `-i` ends with their ULP information.
    assert!(ns.ss(&["-tni"]).contains(" tcp-ulp-mptcp flags:"), "ss -tni prints no subflow information");
    sockstat_tests::compare_all(&ns, &[&["-tni"], &["-tanio"], &["-tniO"]], |t| {
        without_self(&sockstat_tests::mask_idle(t))
    });
}

/// `--json` (sockstat only): MPTCP rows with netid `mptcp` and, with -i, the fields of
/// `struct mptcp_info` ss prints.
#[test]
fn mptcp_json_rows() {
    let ns = NetNs::new("mptcpjson");
    let _f = populate(&ns);
    let text = ns.sockstat_ok(&["-Mai", "--json"]);
    let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(rows.len(), ns.ss(&["-MaH"]).lines().count(), "{text}");
    assert!(rows.iter().all(|r| r["netid"] == "mptcp"), "{text}");
    let estab = rows.iter().find(|r| r["state"] == "ESTAB" && r["local_port"] == 6000).expect("the v4 server side");
    assert_eq!(estab["mptcp_info"]["subflows_max"].as_u64().map(|v| v > 0), Some(true), "{estab}");
    assert!(estab["mptcp_info"]["token"].as_u64().is_some_and(|t| t != 0), "{estab}");
    assert!(estab.get("tcp_info").is_none(), "{estab}");
}
