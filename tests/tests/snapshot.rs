//! A fixed mix of TCP sockets in a fresh namespace: sockstat's output against the real
//! `ss` in the same namespace, without an agent (byte-identical) and with one (same
//! header and rows; row order is documented as differing).

use std::{
    io::Read,
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    thread,
    time::Duration,
};

use socket2::{Domain, Socket, Type};
use sockstat_tests::{Agent, NetNs, header_and_sorted_rows};

/// Listeners v4/v6/dual-stack, established pairs (v4, v6, v4-mapped), a TIME-WAIT and a
/// SYN-SENT to a black-holed address. Returns every socket so they stay open.
fn mix(ns: &NetNs) -> Vec<Socket> {
    let blackhole = ns.blackhole();
    ns.enter(move || {
        let mut keep: Vec<Socket> = Vec::new();
        let l4 = TcpListener::bind("127.0.0.1:8080").unwrap();
        let l4any = TcpListener::bind("0.0.0.0:8081").unwrap();
        let l6 = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
        l6.set_only_v6(true).unwrap();
        l6.bind(&"[::1]:8082".parse::<SocketAddr>().unwrap().into()).unwrap();
        l6.listen(128).unwrap();
        let l6: TcpListener = l6.into();
        // Dual-stack: IPV6_V6ONLY off, v4 peers appear as [::ffff:a.b.c.d].
        let dual = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
        dual.set_only_v6(false).unwrap();
        dual.bind(&"[::]:8083".parse::<SocketAddr>().unwrap().into()).unwrap();
        dual.listen(4096).unwrap();
        let dual: TcpListener = dual.into();
        // v6-only on the any address (nginx's `ipv6only=on`): ss prints [::], not *.
        let any6 = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
        any6.set_only_v6(true).unwrap();
        any6.bind(&"[::]:8084".parse::<SocketAddr>().unwrap().into()).unwrap();
        any6.listen(16).unwrap();
        keep.push(any6);

        for (listener, target) in [(&l4, "127.0.0.1:8080"), (&l6, "[::1]:8082"), (&dual, "127.0.0.1:8083")] {
            let c = TcpStream::connect(target).unwrap();
            let (a, _) = listener.accept().unwrap();
            keep.push(c.into());
            keep.push(a.into());
        }

        // TIME-WAIT: the client closes first, the server follows after reading EOF.
        let c = TcpStream::connect("127.0.0.1:8081").unwrap();
        let (mut a, _) = l4any.accept().unwrap();
        c.shutdown(Shutdown::Both).unwrap();
        drop(c);
        let mut buf = [0u8; 1];
        assert_eq!(a.read(&mut buf).unwrap(), 0);
        drop(a);

        // An orphaned FIN-WAIT-2: the client closes, the server never does (it stays in
        // CLOSE-WAIT), so the client's tuple lives on as a timewait socket in the
        // FIN-WAIT-2 sub-state, which ss lists as FIN-WAIT-2.
        let c = TcpStream::connect("127.0.0.1:8080").unwrap();
        let (a, _) = l4.accept().unwrap();
        drop(c);
        keep.push(a.into());

        // SYN-SENT: nothing answers on the black-holed address.
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&blackhole.into());
        keep.push(s);

        for l in [l4, l4any, l6, dual] {
            keep.push(l.into());
        }
        // Let the FIN/ACK exchange settle into TIME-WAIT.
        thread::sleep(Duration::from_millis(200));
        keep
    })
}

const QUERIES: &[&[&str]] =
    &[&["-tan"], &["-tln"], &["-ta", "state", "established"], &["-tan", "-4"], &["-tan", "-6"], &["-Htan"]];

#[test]
fn kernel_source_is_byte_identical_to_ss() {
    let ns = NetNs::new("snapk");
    let _sockets = mix(&ns);
    for q in QUERIES {
        let mut args = vec!["--source", "kernel"];
        args.extend_from_slice(q);
        let ours = ns.sockstat_ok(&args);
        let theirs = ns.ss(q);
        assert_eq!(ours, theirs, "sockstat {q:?} differs from ss {q:?}");
    }
    // The mix really has every kind it claims to.
    let all = ns.ss(&["-tan"]);
    for state in [
        "LISTEN",
        "ESTAB",
        "TIME-WAIT",
        "SYN-SENT",
        "FIN-WAIT-2",
        "CLOSE-WAIT",
        "[::ffff:127.0.0.1]",
        "[::1]",
        "*:8083",
        "[::]:8084",
    ] {
        assert!(all.contains(state), "fixture lacks {state}:\n{all}");
    }
}

#[test]
fn agent_source_has_the_same_rows_as_ss() {
    let ns = NetNs::new("snapa");
    let _sockets = mix(&ns);
    let agent = Agent::start(&ns, &[]);
    for q in QUERIES {
        let mut args = vec!["--source", "agent", "--socket", agent.socket_arg()];
        args.extend_from_slice(q);
        let ours = ns.sockstat_ok(&args);
        let theirs = ns.ss(q);
        assert_eq!(
            header_and_sorted_rows(&ours),
            header_and_sorted_rows(&theirs),
            "sockstat {q:?} (agent) differs from ss {q:?}"
        );
    }
}
