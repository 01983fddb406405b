//! sockstat's sock_diag layer (`sockstat::diag`) against the kernel and the real `ss`, each
//! test in its own network namespace: a dump compared field by field with `ss -tanHe`,
//! destroy notifications of the joined groups only, and the time of a 2,000-socket dump.
//! Root: the namespaces fail the test, never skip it, without it.

use std::net::{IpAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use sockstat::diag::{DestroyGroups, DestroyListener, SockDiag};
use sockstat::model::socket::InetSocket;
use sockstat_tests::NetNs;

const AF_INET: u16 = libc::AF_INET as u16;
const AF_INET6: u16 = libc::AF_INET6 as u16;
const IPPROTO_TCP: u8 = libc::IPPROTO_TCP as u8;
const IPPROTO_UDP: u8 = libc::IPPROTO_UDP as u8;
/// ss 6.1's `-a`: every state up to and including NEW_SYN_RECV (SS_MAX = 13).
const SS_ALL: u32 = (1 << 13) - 1;

/// ss's `sstate_name` (misc/ss.c).
fn ss_state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTAB",
        2 => "SYN-SENT",
        3 | 12 => "SYN-RECV",
        4 => "FIN-WAIT-1",
        5 => "FIN-WAIT-2",
        6 => "TIME-WAIT",
        7 => "UNCONN",
        8 => "CLOSE-WAIT",
        9 => "LAST-ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "UNKNOWN",
    }
}

/// `127.0.0.1:80`, `[::1]:80`, `0.0.0.0:*` -> (address, port); `*` as a port is 0.
fn split_endpoint(s: &str) -> anyhow::Result<(IpAddr, u16)> {
    let (host, port) = s.rsplit_once(':').with_context(|| format!("no port in {s}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next().unwrap_or(host);
    let port = if port == "*" { 0 } else { port.parse().with_context(|| format!("port in {s}"))? };
    Ok((host.parse().with_context(|| format!("address in {s}"))?, port))
}

/// One line of `ss -tanHe` checked field by field against our record.
fn check_line(ours: &InetSocket, line: &str) -> anyhow::Result<()> {
    let cols: Vec<&str> = line.split_whitespace().collect();
    let [state, rq, wq, local, peer, details @ ..] = cols.as_slice() else {
        bail!("short ss line: {line}");
    };
    let detail = |key: &str| details.iter().find_map(|d| d.strip_prefix(key));
    ensure!(*state == ss_state_name(ours.state), "state: ss {state}, ours {ours:?}");
    ensure!(rq.parse::<u32>()? == ours.rqueue && wq.parse::<u32>()? == ours.wqueue, "queues: {line} vs {ours:?}");
    ensure!(split_endpoint(local)? == (ours.src, ours.sport), "local: {line} vs {ours:?}");
    ensure!(split_endpoint(peer)? == (ours.dst, ours.dport), "peer: {line} vs {ours:?}");
    ensure!(detail("ino:").context("no ino:")?.parse::<u32>()? == ours.inode, "inode: {line} vs {ours:?}");
    let sk = u64::from_str_radix(detail("sk:").context("no sk:")?, 16)?;
    ensure!(sk == ours.cookie, "cookie: ss sk:{sk:x}, ours {:x}", ours.cookie);
    // ss prints uid only when it is not 0.
    let uid = detail("uid:").map_or(Ok(0), str::parse::<u32>)?;
    ensure!(uid == ours.uid, "uid: {line} vs {ours:?}");
    Ok(())
}

#[test]
fn dump_matches_ss_in_a_network_namespace() -> anyhow::Result<()> {
    let ns = NetNs::new("diag-cmp");
    // The sockets come back from the namespace thread and stay open while ss looks.
    let (ours, held) = ns.enter(|| -> anyhow::Result<_> {
        let l4 = TcpListener::bind("127.0.0.1:0")?;
        let l6 = TcpListener::bind("[::1]:0")?;
        let c4 = TcpStream::connect(l4.local_addr()?)?;
        let a4 = l4.accept()?;
        let c6 = TcpStream::connect(l6.local_addr()?)?;
        let a6 = l6.accept()?;
        let mut diag = SockDiag::open()?;
        let ours = diag.dump_tcp(&[AF_INET, AF_INET6], SS_ALL)?;
        // The socket is reusable: a second dump sees the same sockets.
        let again = diag.dump_tcp(&[AF_INET, AF_INET6], SS_ALL)?;
        ensure!(again == ours, "second dump differs:\n{again:#?}\nfirst:\n{ours:#?}");
        Ok((ours, (c4, a4, c6, a6, l4, l6)))
    })?;
    let ss_out = ns.ss(&["-tanHe"]);
    drop(held);

    let lines: Vec<&str> = ss_out.lines().filter(|l| !l.trim().is_empty()).collect();
    // 2 listeners + 2 connected pairs (4 sockets): a non-empty, non-trivial comparison.
    ensure!(ours.len() == 6, "expected 6 sockets, dumped {}: {ours:#?}", ours.len());
    ensure!(lines.len() == ours.len(), "ss shows {} sockets, we dumped {}:\n{ss_out}", lines.len(), ours.len());
    for (i, (rec, line)) in ours.iter().zip(&lines).enumerate() {
        check_line(rec, line).with_context(|| format!("record {i}"))?;
    }
    let listening = ours.iter().filter(|s| s.state == 10).count();
    ensure!(listening == 2, "two LISTEN sockets expected: {ours:#?}");
    ensure!(ours.iter().all(|s| s.cookie != 0 && s.inode != 0), "cookies and inodes set: {ours:#?}");
    Ok(())
}

#[test]
fn destroy_notifications_of_the_joined_groups_arrive() -> anyhow::Result<()> {
    let ns = NetNs::new("diag-destroy");
    let (got, port) = ns.enter(|| -> anyhow::Result<_> {
        let mut listener = DestroyListener::join(DestroyGroups::INET_TCP.union(DestroyGroups::INET6_UDP))?;
        let l4 = TcpListener::bind("127.0.0.1:0")?;
        let port = l4.local_addr()?.port();
        // Not joined: IPv4 UDP and IPv6 TCP.
        drop(UdpSocket::bind("127.0.0.1:0")?);
        drop(TcpListener::bind("[::1]:0")?);
        drop(UdpSocket::bind("[::1]:4242")?);
        drop(l4);
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < 2 && Instant::now() < deadline {
            if !listener.try_recv(&mut got)? {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // Nothing else was announced.
        std::thread::sleep(Duration::from_millis(100));
        while listener.try_recv(&mut got)? {}
        Ok((got, port))
    })?;
    // The kernel broadcasts from a workqueue: the order is not guaranteed.
    let mut seen: Vec<(u16, u8, u16, u8)> = got.iter().map(|s| (s.family, s.protocol, s.sport, s.state)).collect();
    seen.sort_unstable();
    // The IPv4 TCP listener and the IPv6 UDP socket, both in CLOSE.
    ensure!(seen == [(AF_INET, IPPROTO_TCP, port, 7), (AF_INET6, IPPROTO_UDP, 4242, 7)], "{got:#?}");
    ensure!(got.iter().all(|s| s.cookie != 0 && s.inode == 0), "{got:#?}");
    let tcp_info = |s: &InetSocket| s.ext.as_ref().is_some_and(|d| d.tcp_info.is_some());
    ensure!(got.iter().all(|s| tcp_info(s) == (s.protocol == IPPROTO_TCP)), "only TCP carries tcp_info: {got:#?}");
    Ok(())
}

/// A measurement, printed (run with `--nocapture`); it asserts only that the dump is whole.
#[test]
fn dump_speed_two_thousand_sockets() -> anyhow::Result<()> {
    const PAIRS: usize = 1000;
    let ns = NetNs::new("diag-speed");
    let (times, held) = ns.enter(|| -> anyhow::Result<_> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut held = Vec::with_capacity(2 * PAIRS);
        for _ in 0..PAIRS {
            held.push(TcpStream::connect(addr)?);
            held.push(listener.accept()?.0);
        }
        let mut diag = SockDiag::open()?;
        let mut times = Vec::new();
        for _ in 0..7 {
            let start = Instant::now();
            let n = diag.dump_tcp(&[AF_INET, AF_INET6], SS_ALL)?.len();
            times.push(start.elapsed());
            ensure!(n == 2 * PAIRS + 1, "dumped {n} sockets, expected {}", 2 * PAIRS + 1);
        }
        times.sort();
        Ok((times, (listener, held)))
    })?;
    let start = Instant::now();
    let ss_lines = ns.ss(&["-tanH"]).lines().count();
    let ss_time = start.elapsed();
    drop(held);
    println!(
        "diag: {} sockets: dump_tcp min {:?}, median {:?}; `ip netns exec .. ss -tanH` ({ss_lines} lines, whole process) {:?}",
        2 * PAIRS + 1,
        times[0],
        times[times.len() / 2],
        ss_time,
    );
    Ok(())
}
