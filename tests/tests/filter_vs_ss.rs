//! The filter evaluator against the real `ss` (iproute2 6.1), on the same sockets: real
//! TCP listeners and connections (v4, v6, v4-mapped) in a throwaway network namespace,
//! dumped once with sock_diag and filtered by `sockstat::filter`, while `ss -tanH FILTER`
//! filters them in the kernel and in its own user space. Needs root (a network namespace,
//! setns); fails with what to run otherwise.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};

use sockstat::diag::SockDiag;
use sockstat::filter;
use sockstat::model::socket::InetSocket;
use sockstat_tests::NetNs;

/// Sockets kept open for the test: listeners, both ends of connections.
struct Sockets {
    _listeners: Vec<TcpListener>,
    _clients: Vec<TcpStream>,
}

fn make_sockets() -> Sockets {
    let listen = |a: &str| TcpListener::bind(a).unwrap_or_else(|e| panic!("bind {a}: {e}"));
    let listeners = vec![
        listen("127.0.0.1:80"),
        listen("0.0.0.0:22"),
        listen("127.0.0.2:8443"),
        // Dual-stack (net.ipv6.bindv6only is 0 in a new namespace): v4 clients arrive
        // v4-mapped.
        listen("[::]:8080"),
        listen("[::1]:443"),
    ];
    let connect = |a: &str| TcpStream::connect(a).unwrap_or_else(|e| panic!("connect {a}: {e}"));
    let clients = vec![
        connect("127.0.0.1:80"),
        connect("127.0.0.1:22"),
        connect("127.0.0.2:22"),
        connect("127.0.0.2:8443"),
        connect("[::ffff:127.0.0.1]:8080"),
        connect("[::1]:8080"),
        connect("[::1]:443"),
    ];
    Sockets { _listeners: listeners, _clients: clients }
}

/// "LOCALPORT>PEERPORT" counts, the shape both sides are compared in.
fn key(local: &str, peer: &str) -> String {
    format!("{local}>{peer}")
}

fn port_of(col: &str) -> &str {
    let p = col.rsplit(':').next().unwrap_or(col);
    if p == "*" { "0" } else { p }
}

fn ss_ports(ns: &NetNs, words: &[&str]) -> Result<BTreeMap<String, usize>, String> {
    let out = ns.command("ss").arg("-tanH").args(words).output().map_err(|e| format!("cannot run ss: {e}"))?;
    if !out.status.success() {
        return Err(format!("ss exit {:?}: {}", out.status.code(), String::from_utf8_lossy(&out.stderr)));
    }
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() >= 5 {
            *m.entry(key(port_of(cols[3]), port_of(cols[4]))).or_default() += 1;
        }
    }
    Ok(m)
}

fn our_ports(socks: &[InetSocket], f: &filter::Filter) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in socks {
        if f.family_override.is_some_and(|af| af != s.family) || !f.matches(s) {
            continue;
        }
        *m.entry(key(&s.sport.to_string(), &s.dport.to_string())).or_default() += 1;
    }
    m
}

const FILTERS: &[&str] = &[
    "sport = :80",
    "dport = :22",
    "dport :22",
    "dport eq 22",
    "dport 22",
    "sport == :ssh",
    "src 127.0.0.1",
    "src 127.0.0.2",
    "src 127.0.0.0/8",
    "src 127.0.0.0/255.0.0.0",
    "src [::ffff:127.0.0.1]",
    "dst [::ffff:127.0.0.1/128]",
    "dst ::ffff:127.0.0.0/104",
    "src [::1]",
    "dst [::1]:8080",
    "src [::]",
    "src 0.0.0.0/8",
    "not src 0.0.0.0/8",
    "src 0.0.0.0/0",
    "src any",
    "dst localhost",
    "src *:8080",
    "src 127.0.0.1:*",
    "src 127.0.0.2:8443",
    "src inet:127.0.0.1",
    "src inet6:[::1]",
    "sport = :80 or sport = :22 sport = :8080",
    "sport = :80 or sport = :22 and dport = :22",
    "sport = :80 and sport = :22 or dport = :22",
    "sport = :80 || sport = :22",
    "( sport = :80 or sport = :22 ) and not src 0.0.0.0",
    "! ( sport = :22 or sport = :80 )",
    "not not sport = :443",
    "dport > :80 and dport < :40000",
    "sport >= 443 and sport <= 8080",
    "sport gt 1024",
    "dport lt 1024",
    "sport ne 22",
    "sport <= 99999",
    "dport geq 65616",
    "sport = 0x50",
    "dport = 0x1f90",
    "autobound",
    "not autobound",
    "dev = lo",
    "dev != lo",
    "dev 0 and sport = :22",
    "dst 127.0.0.2 or src 127.0.0.2",
    "src 127.1",
    "src 127.0.0.1/8:22",
];

#[test]
fn filters_select_what_ss_selects() {
    let ns = NetNs::new("filter-match");
    let (sockets, dumped, parsed) = ns.enter(|| {
        let sockets = make_sockets();
        let dumped =
            SockDiag::open().and_then(|mut d| d.dump_tcp(&[2, 10], 0xfff)).expect("sock_diag dump in the namespace");
        // Parse here too: `autobound` reads this namespace's ip_local_port_range.
        let parsed: Vec<_> = FILTERS.iter().map(|f| filter::parse(&f.split(' ').collect::<Vec<_>>(), 0)).collect();
        (sockets, dumped, parsed)
    });
    assert!(dumped.len() >= 19, "expected the test's sockets, got {dumped:#?}");

    let mut failures = Vec::new();
    for (text, parsed) in FILTERS.iter().zip(parsed) {
        let words: Vec<&str> = text.split(' ').collect();
        let want = ss_ports(&ns, &words);
        let got = parsed.map(|f| our_ports(&dumped, &f)).map_err(|e| e.to_string());
        match (&want, &got) {
            (Ok(w), Ok(g)) if w == g => {}
            _ => failures.push(format!("{text:?}:\n  ss:       {want:?}\n  sockstat: {got:?}")),
        }
    }
    drop(sockets);
    assert!(failures.is_empty(), "{} of {} filters differ:\n{}", failures.len(), FILTERS.len(), failures.join("\n"));
}

/// Filters ss rejects: sockstat rejects them too, with ss's exit status.
#[test]
fn rejected_filters_fail_with_ss_status() {
    let ns = NetNs::new("filter-reject");
    for text in [
        "frob",
        "src 1.2.3.4 frob",
        "dst",
        "( dport = :80",
        "dport = :80 )",
        "src != 127.0.0.1",
        "dev = nosuch",
        "fwmark = 5/",
        "dport = :nosuchsvc",
        "src [::1",
        "1.2.3.4",
        "src [::]/0",
    ] {
        let words: Vec<&str> = text.split(' ').collect();
        let out = ns.command("ss").arg("-tanH").args(&words).output().expect("run ss");
        let ours = ns.enter(move || filter::parse(&text.split(' ').collect::<Vec<_>>(), 0).map(|_| ()));
        let code = ours.as_ref().err().map(filter::FilterError::exit_code);
        assert_eq!(
            code.map(i32::from),
            out.status.code(),
            "{text:?}: ss says {:?}, sockstat {ours:?}",
            out.status.code()
        );
    }
}
