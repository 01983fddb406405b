//! /proc/net/raw and /proc/net/raw6, read the way ss's `dgram_show_line` reads them. This
//! kernel has no RAW_DIAG, so ss's netlink request for raw sockets fails and it falls back
//! to these files; sockstat does the same. Parsing is pure (text in, records out) and every
//! field is checked: a malformed line is an error naming its line and byte offset.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::socket::{InetSocket, PROTO_RAW_TABLE, Source};

/// What was wrong with a /proc/net line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} (byte {offset}): {what}")]
pub struct ProcNetError {
    /// 1-based line number (the header is line 1).
    pub line: usize,
    /// Byte offset of the line's start in the file.
    pub offset: usize,
    pub what: String,
}

/// Parses a whole /proc/net/raw (`family` = 2) or raw6 (`family` = 10) text, keeping the
/// sockets whose state bit is in `states`, in file order.
///
/// # Errors
/// [`ProcNetError`] for a line that does not have the kernel's layout
/// (net/ipv4/raw.c `raw_sock_seq_show`, net/ipv6/datagram.c `__ip6_dgram_sock_seq_show`).
pub fn parse_raw(text: &str, family: u16, states: u32) -> Result<Vec<InetSocket>, ProcNetError> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        // The first line is the header, as ss's generic_record_read skips it.
        if i == 0 || line.trim().is_empty() {
            continue;
        }
        let err = |what: &str| ProcNetError { line: i + 1, offset: start, what: what.to_owned() };
        let s = parse_line(line.trim_end_matches('\n'), family).map_err(|w| err(&w))?;
        if u32::from(s.state) < u32::BITS && states & (1 << s.state) != 0 {
            out.push(s);
        }
    }
    Ok(out)
}

/// `   1: 0100007F:00FD 0100007F:0000 01 00000000:00000000 00:00000000 00000000     0        0 12345 2 0000000000000000 0`
fn parse_line(line: &str, family: u16) -> Result<InetSocket, String> {
    let mut f = line.split_whitespace();
    let mut next = |what: &str| f.next().ok_or_else(|| format!("missing {what}"));
    let _slot = next("slot")?;
    let local = next("local address")?;
    let remote = next("remote address")?;
    let state = hex_u32(next("state")?, "state")?;
    let (tx, rx) = next("queues")?.split_once(':').ok_or("queues are not tx:rx")?;
    let _timer = next("timer")?;
    let _retrnsmt = next("retrnsmt")?;
    let uid = next("uid")?.parse::<u32>().map_err(|e| format!("uid: {e}"))?;
    let _timeout = next("timeout")?;
    let inode = next("inode")?.parse::<u32>().map_err(|e| format!("inode: {e}"))?;
    let _ref = next("ref")?;
    let _pointer = next("pointer")?;
    // ss's `%[^\n]` after the pointer: the rest of the line (the drop count), which
    // `ss -e` prints as `opt:"..."`.
    let opt = f.collect::<Vec<_>>().join(" ");
    let (src, sport) = endpoint(local, family)?;
    let (dst, dport) = endpoint(remote, family)?;
    let state = u8::try_from(state).map_err(|_| format!("state {state:#x} out of range"))?;
    Ok(InetSocket {
        protocol: PROTO_RAW_TABLE,
        rqueue: hex_u32(rx, "rx_queue")?,
        wqueue: hex_u32(tx, "tx_queue")?,
        uid,
        inode,
        source: Source::Kernel,
        ext: Some(Box::new(crate::model::socket::InetDetails { proc_opt: Some(opt), ..Default::default() })),
        ..InetSocket::tcp(family, state, (src, sport), (dst, dport), 0)
    })
}

fn hex_u32(s: &str, what: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 16).map_err(|e| format!("{what} {s:?}: {e}"))
}

/// `ADDR:PORT` in hex. The kernel prints each 32-bit word of the address with `%08X` of
/// its in-memory (network-order) value read as a host integer, so the word's native bytes
/// are the address bytes.
fn endpoint(s: &str, family: u16) -> Result<(IpAddr, u16), String> {
    let (addr, port) = s.rsplit_once(':').ok_or_else(|| format!("no port in {s:?}"))?;
    let port = u16::from_str_radix(port, 16).map_err(|e| format!("port {port:?}: {e}"))?;
    let words = match (family, addr.len()) {
        (2, 8) | (10, 32) => addr.len() / 8,
        _ => return Err(format!("address {addr:?} has the wrong length for family {family}")),
    };
    let mut bytes = [0u8; 16];
    for w in 0..words {
        let word = hex_u32(addr.get(w * 8..w * 8 + 8).unwrap_or_default(), "address")?;
        bytes[w * 4..w * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    let ip = if words == 1 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(bytes))
    };
    Ok((ip, port))
}

/// The count after `field` on the line of /proc/net/sockstat (or sockstat6) that starts
/// with `protocol` and a colon.
///
/// # Errors
/// [`ProcNetError`] when there is no such line, or no such field with a count.
pub fn parse_sockstat_count(text: &str, protocol: &str, field: &str) -> Result<u64, ProcNetError> {
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        let Some(rest) = line.strip_prefix(protocol).and_then(|l| l.strip_prefix(':')) else { continue };
        let mut words = rest.split_whitespace();
        while let Some(w) = words.next() {
            if w == field {
                return words.next().and_then(|n| n.parse().ok()).ok_or_else(|| ProcNetError {
                    line: i + 1,
                    offset: start,
                    what: format!("`{field}` is not followed by a count"),
                });
            }
        }
        return Err(ProcNetError {
            line: i + 1,
            offset: start,
            what: format!("the {protocol} line has no `{field}` field"),
        });
    }
    Err(ProcNetError { line: 0, offset: 0, what: format!("no `{protocol}:` line") })
}

/// TCP sockets the kernel holds in the calling thread's network namespace: in use (IPv4
/// from /proc/net/sockstat, IPv6 from sockstat6) and timewait.
///
/// # Errors
/// Reading either file, or a text [`parse_sockstat_count`] refuses.
pub fn tcp_socket_count() -> std::io::Result<u64> {
    Ok(sockstat_sum("/proc/thread-self/net/sockstat", "TCP", &["inuse", "tw"])?
        + sockstat_sum("/proc/thread-self/net/sockstat6", "TCP6", &["inuse"])?)
}

/// The sum of `fields` on `protocol`'s line of the sockstat file at `path`.
fn sockstat_sum(path: &str, protocol: &str, fields: &[&str]) -> std::io::Result<u64> {
    let text = std::fs::read_to_string(path)?;
    fields.iter().try_fold(0, |sum, field| {
        parse_sockstat_count(&text, protocol, field)
            .map(|n| sum + n)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{path}: {e}")))
    })
}

/// How many timewait sockets the kernel holds in the calling thread's network namespace:
/// the `tw` count of /proc/net/sockstat's `TCP:` line (`tcp_death_row.tw_refcount - 1`,
/// net/ipv4/proc.c), IPv4 and IPv6 together.
///
/// # Errors
/// Reading /proc/thread-self/net/sockstat, or a text [`parse_sockstat_count`] refuses.
pub fn timewait_count() -> std::io::Result<u64> {
    sockstat_sum("/proc/thread-self/net/sockstat", "TCP", &["tw"])
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
   1: 00000000:0001 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 291480 2 0000000000000000 0
 253: 0100007F:00FD 0100007F:0000 01 00000000:00000010 00:00000000 00000000  1000        0 291482 2 0000000000000000 0
";

    #[test]
    fn v4_lines_and_state_filter() {
        let all = parse_raw(RAW, 2, u32::MAX).expect("valid");
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].src, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!((all[0].sport, all[0].state, all[0].inode), (1, 7, 291_480));
        assert_eq!(all[1].src, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!((all[1].sport, all[1].rqueue, all[1].uid), (253, 16, 1000));
        let estab = parse_raw(RAW, 2, 1 << 1).expect("valid");
        assert_eq!(estab.len(), 1);
        assert_eq!(estab[0].protocol, PROTO_RAW_TABLE);
    }

    #[test]
    fn v6_line() {
        let text = "header\n  58: 00000000000000000000000001000000:003A 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 5 2 0000000000000000 0\n";
        let s = parse_raw(text, 10, u32::MAX).expect("valid");
        assert_eq!(s[0].src, "::1".parse::<IpAddr>().expect("literal"));
        assert_eq!(s[0].sport, 58);
    }

    #[test]
    fn malformed_line_names_line_and_offset() {
        let text = "header\n   1: 0000:0001 00000000:0000 07\n";
        let e = parse_raw(text, 2, u32::MAX).expect_err("short address");
        assert_eq!((e.line, e.offset), (2, 7));
        let text = "header\n   1: 00000000:0001\n";
        assert!(parse_raw(text, 2, u32::MAX).is_err());
    }

    #[test]
    fn timewait_count_from_sockstat() {
        let text = "sockets: used 36\nTCP: inuse 1 orphan 0 tw 1234 alloc 1 mem 345\nUDP: inuse 0 mem 0\n";
        assert_eq!(parse_sockstat_count(text, "TCP", "tw"), Ok(1234));
        assert_eq!(parse_sockstat_count("sockets: used 1\nTCP: inuse 1 tw\n", "TCP", "tw").unwrap_err().line, 2);
        assert!(parse_sockstat_count("UDP: inuse 0\n", "TCP", "tw").is_err());
    }

    #[test]
    fn counts_of_either_file() {
        let v4 = "sockets: used 36\nTCP: inuse 17 orphan 0 tw 3 alloc 1 mem 345\n";
        let v6 = "TCP6: inuse 5\nUDP6: inuse 0\n";
        assert_eq!(parse_sockstat_count(v4, "TCP", "inuse"), Ok(17));
        assert_eq!(parse_sockstat_count(v6, "TCP6", "inuse"), Ok(5));
        // `TCP6:` is not the `TCP:` line, nor the other way round.
        assert_eq!(parse_sockstat_count(v6, "TCP", "inuse").unwrap_err().what, "no `TCP:` line");
        let e = parse_sockstat_count(v4, "TCP", "memory").unwrap_err();
        assert_eq!((e.line, e.offset, e.what.as_str()), (2, 17, "the TCP line has no `memory` field"));
    }
}
