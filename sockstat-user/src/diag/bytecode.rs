//! `INET_DIAG_REQ_BYTECODE` programs (include/uapi/linux/inet_diag.h) that split one inet
//! dump into several disjoint ones, each filled by the kernel in its own thread.
//!
//! A dump with `-i` costs the kernel about a microsecond a socket (`tcp_get_info` and the
//! attributes), one thread at a time per request; the walk itself, with a program
//! rejecting the socket, is about a tenth of that. So N dumps, each keeping 1/N of the
//! sockets, take about 1/N of the time on N cores. The key that splits them is the port of
//! the connection's client side, which is spread over the ephemeral range: the local port
//! when it is ephemeral (an outgoing connection), the remote one otherwise (an incoming
//! connection, a listener: remote port 0). Every socket has exactly one key, so the
//! shares of a partition of the key space are disjoint and together hold every socket.
//!
//! The kernel runs a program as `inet_diag_bc_run` does (net/ipv4/inet_diag.c): each
//! `struct inet_diag_bc_op { u8 code; u8 yes; u16 no; }` jumps `yes` bytes forward when its
//! condition holds and `no` bytes otherwise; the socket is kept when the jumps end exactly
//! at the program's end, dropped when they end 4 bytes past it. A port comparison is two
//! ops, the second holding the port in `no`. `inet_diag_bc_audit` requires every `no`
//! target to be an op boundary reached by following `yes` jumps, which a program laid out
//! as ss lays out its own (terms one after the other, `yes` always to the next op, a `JMP`
//! between the terms of an OR) satisfies.

use std::ops::RangeInclusive;

/// `INET_DIAG_BC_JMP`: always takes its `no` jump.
const JMP: u8 = 1;
/// `INET_DIAG_BC_S_GE`, `_S_LE`, `_D_GE`, `_D_LE`: local / remote port `>=` / `<=`.
const S_GE: u8 = 2;
const S_LE: u8 = 3;
const D_GE: u8 = 4;
const D_LE: u8 = 5;

/// One port comparison: two ops.
const CMP_LEN: usize = 8;
/// The `JMP` between two terms of an OR.
const JMP_LEN: usize = 4;

/// The program keeping the sockets whose client-side port (see the module's header) is in
/// `share`, given the ephemeral range `ephemeral` (`net.ipv4.ip_local_port_range`).
#[must_use]
pub fn client_port_share(ephemeral: RangeInclusive<u16>, share: RangeInclusive<u16>) -> Vec<u8> {
    let (lo, hi) = (*ephemeral.start(), *ephemeral.end());
    let (a, b) = (*share.start(), *share.end());
    // Ephemeral local port: the key is the local port.
    let mut terms = vec![vec![(S_GE, lo), (S_LE, hi), (S_GE, a), (S_LE, b)]];
    // Any other local port: the key is the remote one.
    if lo > 0 {
        terms.push(vec![(S_LE, lo - 1), (D_GE, a), (D_LE, b)]);
    }
    if hi < u16::MAX {
        terms.push(vec![(S_GE, hi + 1), (D_GE, a), (D_LE, b)]);
    }
    any_of_all(&terms)
}

/// The program for an OR of ANDs of port comparisons.
fn any_of_all(terms: &[Vec<(u8, u16)>]) -> Vec<u8> {
    let starts: Vec<usize> = terms
        .iter()
        .scan(0, |at, t| {
            let start = *at;
            *at += t.len() * CMP_LEN + JMP_LEN;
            Some(start)
        })
        .collect();
    // No JMP after the last term.
    let len = starts.last().map_or(0, |s| s + terms.last().map_or(0, Vec::len) * CMP_LEN);
    let reject = len + 4;
    let mut code = Vec::with_capacity(len);
    for (i, term) in terms.iter().enumerate() {
        // A failed comparison tries the next term, or drops the socket after the last.
        let fail = starts.get(i + 1).copied().unwrap_or(reject);
        for &(op, port) in term {
            let at = code.len();
            push_op(&mut code, op, CMP_LEN, fail - at);
            push_op(&mut code, 0, 0, usize::from(port));
        }
        if i + 1 < terms.len() {
            // Every comparison held: jump to the end, keeping the socket.
            let at = code.len();
            push_op(&mut code, JMP, JMP_LEN, len - at);
        }
    }
    code
}

fn push_op(code: &mut Vec<u8>, op: u8, yes: usize, no: usize) {
    // Programs here are a few dozen bytes: every jump fits.
    code.push(op);
    code.push(u8::try_from(yes).unwrap_or(u8::MAX));
    code.extend_from_slice(&u16::try_from(no).unwrap_or(u16::MAX).to_ne_bytes());
}

/// `parts` shares of the client-side port space, in order: the ephemeral range cut into
/// equal pieces, the first also holding the ports below it and the last those above.
#[must_use]
pub fn shares(ephemeral: RangeInclusive<u16>, parts: usize) -> Vec<RangeInclusive<u16>> {
    let (lo, hi) = (u32::from(*ephemeral.start()), u32::from(*ephemeral.end()));
    let parts = u32::try_from(parts.max(1)).unwrap_or(1).min(hi.saturating_sub(lo) + 1);
    let width = (hi - lo + 1) / parts;
    (0..parts)
        .map(|i| {
            let start = if i == 0 { 0 } else { lo + i * width };
            let end = if i + 1 == parts { u32::from(u16::MAX) } else { lo + (i + 1) * width - 1 };
            // Both within 0..=65535 by construction.
            u16::try_from(start).unwrap_or(u16::MAX)..=u16::try_from(end).unwrap_or(u16::MAX)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `inet_diag_bc_run`, as the kernel runs it: kept when the jumps end at the end.
    fn run(code: &[u8], sport: u16, dport: u16) -> bool {
        let mut len = i64::try_from(code.len()).unwrap();
        let mut at = 0usize;
        while len > 0 {
            let (op, yes, no) = (code[at], code[at + 1], u16::from_ne_bytes([code[at + 2], code[at + 3]]));
            let port = || u16::from_ne_bytes([code[at + 6], code[at + 7]]);
            let holds = match op {
                JMP => false,
                S_GE => sport >= port(),
                S_LE => sport <= port(),
                D_GE => dport >= port(),
                D_LE => dport <= port(),
                other => panic!("op {other}"),
            };
            let step = if holds { usize::from(yes) } else { usize::from(no) };
            len -= i64::try_from(step).unwrap();
            at += step;
        }
        len == 0
    }

    /// `inet_diag_bc_audit`'s checks: `yes` and `no` in bounds and aligned, every `no`
    /// inside the program landing on the chain of `yes` jumps, the chain ending at the end.
    fn audit(code: &[u8]) -> bool {
        let total = code.len();
        let mut chain = vec![0usize];
        let mut at = 0;
        while at < total {
            at += usize::from(code[at + 1]);
            chain.push(at);
        }
        if at != total {
            return false;
        }
        let mut at = 0;
        while at < total {
            let (op, yes, no) =
                (code[at], usize::from(code[at + 1]), usize::from(u16::from_ne_bytes([code[at + 2], code[at + 3]])));
            let min = if op == JMP { 4 } else { 8 };
            let len = total - at;
            let ok_no = no >= min && no <= len + 4 && no % 4 == 0 && (no >= len || chain.contains(&(at + no)));
            if !ok_no || yes < min || yes > len + 4 || yes % 4 != 0 {
                return false;
            }
            at += yes;
        }
        true
    }

    #[test]
    fn shares_cover_every_socket_once_and_pass_the_audit() {
        for (ephemeral, parts) in [(32768..=60999, 2), (32768..=60999, 3), (1024..=65535, 4), (1..=1, 2)] {
            let shares = shares(ephemeral.clone(), parts);
            assert_eq!(*shares[0].start(), 0);
            assert_eq!(*shares.last().unwrap().end(), u16::MAX);
            let programs: Vec<Vec<u8>> =
                shares.iter().map(|s| client_port_share(ephemeral.clone(), s.clone())).collect();
            assert!(programs.iter().all(|p| audit(p)), "{ephemeral:?}");
            // Ports at every boundary and a spread of others, on both sides.
            let mut ports: Vec<u16> = vec![0, 1, 9999, 20000, 32767, 32768, 46883, 46884, 60999, 61000, 65535];
            ports.extend(
                shares
                    .iter()
                    .flat_map(|s| [*s.start(), *s.end(), s.start().saturating_sub(1), s.end().saturating_add(1)]),
            );
            for &sport in &ports {
                for &dport in &ports {
                    let kept = programs.iter().filter(|p| run(p, sport, dport)).count();
                    assert_eq!(kept, 1, "sport {sport} dport {dport}, ephemeral {ephemeral:?}, {parts} parts");
                }
            }
        }
    }

    #[test]
    fn the_key_is_the_client_side_port() {
        let both = shares(32768..=60999, 2);
        let first = client_port_share(32768..=60999, both[0].clone());
        // Outgoing: the local ephemeral port decides; incoming and listening: the remote.
        assert!(run(&first, 40000, 9999));
        assert!(!run(&first, 50000, 9999));
        assert!(run(&first, 9999, 40000));
        assert!(!run(&first, 9999, 50000));
        assert!(run(&first, 22, 0));
    }
}
