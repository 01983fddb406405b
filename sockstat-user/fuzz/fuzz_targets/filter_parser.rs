//! Arbitrary bytes -> FILTER words -> `filter::parse_with`, then evaluation of what parsed
//! on fixed v4, v6, v4-mapped and unix sockets. Look-ups go to a fixed in-memory resolver:
//! the system one would make DNS queries for every unparsable word.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use sockstat::filter::{self, ParseContext, Resolver, Subject};
use sockstat::model::socket::{InetSocket, Source};

struct Fixed;

impl Resolver for Fixed {
    fn service_port(&self, name: &str, proto: &str) -> Option<u16> {
        match (name, proto) {
            ("ssh", _) => Some(22),
            ("dns", "udp") => Some(53),
            ("dns", "tcp") => Some(54),
            _ => None,
        }
    }
    fn host_addrs(&self, name: &str, family: u16) -> Vec<IpAddr> {
        match (name, family) {
            ("localhost", 2) => vec![[127, 0, 0, 1].into()],
            ("localhost", 10) => vec![std::net::Ipv6Addr::LOCALHOST.into()],
            _ => Vec::new(),
        }
    }
    fn ifindex(&self, name: &str) -> Option<u32> {
        (name == "lo").then_some(1)
    }
    fn cgroup_id(&self, path: &str) -> Option<u64> {
        path.starts_with("/sys").then_some(7)
    }
    fn netlink_protocol(&self, _: &str) -> Option<u8> {
        None
    }

    fn ephemeral_ports(&self) -> Option<(i32, i32)> {
        Some((32768, 60999))
    }
}

fn sock(src: &str, sport: u16, dst: &str, dport: u16, state: u8) -> Option<InetSocket> {
    let src: IpAddr = src.parse().ok()?;
    let dst: IpAddr = dst.parse().ok()?;
    Some(InetSocket {
        ifindex: 1,
        source: Source::Kernel,
        ..InetSocket::tcp(if src.is_ipv4() { 2 } else { 10 }, state, (src, sport), (dst, dport), 0)
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the context (preferred family, tables), the rest is the text;
    // words split at NUL bytes, as argv would split them, so spaces inside a word are
    // exercised too.
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let words: Vec<&str> = text.split('\0').collect();
    let preferred_family = [0u16, 2, 10, 1, 17, 16, 40, 30][usize::from(sel & 7)];
    let ctx = ParseContext {
        preferred_family,
        tcp: sel & 8 == 0 || sel & 16 != 0,
        udp: sel & 16 != 0,
        resolver: &Fixed,
        // Either ss's STATE-FILTER masks (6.1's, or 7.1's with states 12 and 13).
        ss_all: filter::ss_all(sel & 32 != 0),
    };
    let Ok(f) = filter::parse_with(&words, u32::from(sel >> 5), &ctx) else {
        return;
    };
    let socks = [
        sock("127.0.0.1", 80, "127.0.0.1", 45664, 1),
        sock("0.0.0.0", 22, "0.0.0.0", 0, 10),
        sock("::ffff:127.0.0.1", 57144, "::ffff:127.0.0.1", 8080, 1),
        sock("::1", 443, "::", 0, 10),
        sock("2001:db8::1", 65535, "fe80::1", 1, 6),
    ];
    for s in socks.iter().flatten() {
        let _ = f.matches(s);
    }
    let _ = f.matches_subject(&Subject::unix(
        Some("/tmp/.X11-unix/X0"),
        Some("@00a1f"),
        7,
        8,
    ));
    let _ = f.matches_subject(&Subject::unix(None, None, u32::MAX, 0));
});
