//! Tests of the STATE-FILTER words and [`Filter`]'s constants, and the fixtures the tests of
//! every file of the filter share: a deterministic [`Resolver`] and helpers to build words,
//! contexts and conditions.

use std::net::{IpAddr, Ipv6Addr};

use super::*;
use TcpState::*;

const fn b(s: TcpState) -> u32 {
    bit(s)
}

// ---- STATE-FILTER --------------------------------------------------------------

#[test]
fn constants_match_ss() {
    // Values computed by hand from ss.c's enum: SS_ALL = 0xfff, SS_CONN drops
    // LISTEN(10), CLOSE(7), TIME_WAIT(6), SYN_RECV(3).
    assert_eq!(SS_ALL, 0xfff);
    assert_eq!(SS_CONN, 0xfff & !(1 << 10 | 1 << 7 | 1 << 6 | 1 << 3));
    assert_eq!(SS_LISTENING, 1 << 10 | 1 << 7);
}

#[test]
fn every_identifier_scans_as_ss_does() {
    let cases: &[(&str, u32)] = &[
        ("established", b(Established)),
        ("syn-sent", b(SynSent)),
        ("syn-recv", b(SynRecv)),
        ("syn-rcv", b(SynRecv)),
        ("fin-wait-1", b(FinWait1)),
        ("fin-wait-2", b(FinWait2)),
        ("time-wait", b(TimeWait)),
        ("closed", b(Close)),
        ("close", b(Close)),
        ("unconnected", b(Close)),
        ("close-wait", b(CloseWait)),
        ("last-ack", b(LastAck)),
        ("listening", b(Listen)),
        ("closing", b(Closing)),
        ("unknown", 1),
        ("all", 0xfff),
        ("connected", 0xfff & !(b(Close) | b(Listen))),
        ("synchronized", 0xfff & !(b(Close) | b(Listen) | b(SynSent))),
        ("bucket", b(SynRecv) | b(TimeWait)),
        ("big", 0xfff & !(b(SynRecv) | b(TimeWait))),
        ("ESTABLISHED", b(Established)),
        ("Time-Wait", b(TimeWait)),
    ];
    for &(name, mask) in cases {
        assert_eq!(scan_state(name), Some(mask), "{name}");
    }
    for bad in ["listen", "estab", "", "syn_sent", "fin-wait", "new-syn-recv", "bogus"] {
        assert_eq!(scan_state(bad), None, "{bad:?}");
    }
}

#[test]
fn state_words_combine_as_ss_does() {
    let a = SS_ALL;
    let l = SS_LISTENING;
    let cases: &[(&[&str], u32, u32)] = &[
        (&[], 0, 0),
        (&[], a, a),
        (&[], l, l),
        (&["state", "established"], 0, b(Established)),
        // The first `state` discards -a / -l.
        (&["state", "established"], a, b(Established)),
        (&["state", "time-wait"], l, b(TimeWait)),
        (&["state", "established", "state", "listening"], 0, b(Established) | b(Listen)),
        // The first `exclude` starts from SS_ALL, whatever -l said.
        (&["exclude", "listening"], l, a & !b(Listen)),
        (&["excl", "established"], 0, a & !b(Established)),
        (&["state", "connected", "exclude", "time-wait"], 0, a & !(b(Close) | b(Listen) | b(TimeWait))),
        (&["exclude", "all"], a, 0),
        (&["exclude", "bucket", "state", "syn-recv"], 0, a & !b(TimeWait)),
    ];
    for &(words, initial, want) in cases {
        let f = parse_with(words, initial, &ctx()).unwrap_or_else(|e| panic!("{words:?}: {e}"));
        assert_eq!(f.state_filter, want, "{words:?} from {initial:#x}");
        assert_eq!(f.saw_states, !words.is_empty(), "{words:?}");
        assert_eq!(f.expr, None);
    }
    // The expression follows the state words.
    let f = parse_with(&["state", "listening", "sport", "=", ":22"], 0, &ctx()).expect("valid");
    assert_eq!(f.state_filter, b(Listen));
    assert_eq!(f.expr, Some(Expr::Src(port_cond(22))));
}

#[test]
fn malformed_state_words_match_ss_text() {
    let cases: &[(&[&str], FilterError, &str)] = &[
        (
            &["state", "bogus"],
            FilterError::WrongStateName { name: "bogus".into(), position: 2 },
            "sockstat: wrong state name: bogus\n",
        ),
        (
            &["state", "established", "exclude", "listen"],
            FilterError::WrongStateName { name: "listen".into(), position: 4 },
            "sockstat: wrong state name: listen\n",
        ),
        (
            &["state"],
            FilterError::MissingStateName { keyword: "state".into(), position: 1 },
            "Command line is not complete. Try option \"help\"\n",
        ),
        (
            &["state", "all", "excl"],
            FilterError::MissingStateName { keyword: "excl".into(), position: 3 },
            "Command line is not complete. Try option \"help\"\n",
        ),
    ];
    for (words, want, text) in cases {
        let err = parse_with(words, 0, &ctx()).expect_err("must fail");
        assert_eq!(&err, want, "{words:?}");
        assert_eq!(err.ss_message("sockstat"), *text, "{words:?}");
        assert_eq!(err.exit_code(), 255);
    }
}

// ---- a deterministic resolver ----------------------------------------------------

pub(super) struct Fake;

impl Resolver for Fake {
    fn service_port(&self, name: &str, proto: &str) -> Option<u16> {
        match (name, proto) {
            ("ssh", _) => Some(22),
            ("http", _) => Some(80),
            ("amb", "tcp") => Some(1),
            ("amb", "udp") => Some(2),
            _ => None,
        }
    }
    fn host_addrs(&self, name: &str, family: u16) -> Vec<IpAddr> {
        match (name, family) {
            ("localhost", AF_INET) => vec![[127, 0, 0, 1].into()],
            ("localhost", AF_INET6) => vec![Ipv6Addr::LOCALHOST.into()],
            ("six", AF_INET6) => vec!["2001:db8::6".parse().expect("literal")],
            _ => Vec::new(),
        }
    }
    fn ifindex(&self, name: &str) -> Option<u32> {
        match name {
            "lo" => Some(1),
            "eth0" => Some(2),
            _ => None,
        }
    }
    fn cgroup_id(&self, path: &str) -> Option<u64> {
        matches!(path, "/system.slice" | "system.slice").then_some(42)
    }
    fn ephemeral_ports(&self) -> Option<(i32, i32)> {
        Some((32768, 60999))
    }
    fn netlink_protocol(&self, name: &str) -> Option<u8> {
        match name {
            "rtnl" => Some(0),
            "tcpdiag" => Some(4),
            "genl" => Some(16),
            _ => None,
        }
    }
}

pub(super) fn ctx() -> ParseContext<'static> {
    ParseContext { preferred_family: AF_UNSPEC, tcp: true, udp: false, resolver: &Fake, ss_all: super::SS_ALL }
}

pub(super) fn words(text: &str) -> Vec<&str> {
    text.split(' ').filter(|w| !w.is_empty()).collect()
}

pub(super) fn port_cond(port: i32) -> HostCond {
    HostCond { port, addr: HostAddr::Inet { first: Prefix::ANY, more: vec![] } }
}
