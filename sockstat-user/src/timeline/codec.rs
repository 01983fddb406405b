//! The packed columns of a connection row (see `schema` for the table): the state path
//! as one integer, the times and queue sizes of the transitions between the first and
//! the last (and the rarely set socket options) as a blob of varints, and addresses as
//! 4 or 16 bytes. Pure: no SQL, no clock.
//!
//! - `path`: kernel TCP state numbers, 4 bits each, the first in the lowest bits: the
//!   old state of the first transition, then the new state of each. `0x754127` reads,
//!   from the right, CLOSE(7) SYN_SENT(2) ESTABLISHED(1) FIN_WAIT1(4) FIN_WAIT2(5)
//!   CLOSE(7). At most [`MAX_STATES`] states; 0 is no state.
//! - `steps`: LEB128 varints. First, for each transition after the first and before the
//!   last, in order, `delta << 1 | q`: `delta` is its time minus the previous one's, in
//!   [`STEP_UNIT_NS`] units, each time rounded down from the first transition's (so the
//!   rounding never accumulates and never passes the last transition); `q` = 1 when two
//!   more varints follow, its Recv-Q and Send-Q (both 0 otherwise). Then, only when
//!   there is more to say, a trailer: flags (1: IPV6_V6ONLY; 2: an SO_BINDTODEVICE
//!   interface index follows; 4: the first transition's Recv-Q and Send-Q follow; 8:
//!   the last one's follow), then what they announce, in that order. NULL when empty.
//!   The first transition's time is the row's start, the last one's its end, both to
//!   the nanosecond; the number of transitions is the path's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// States one row holds; a socket that goes through more continues in a new row.
pub const MAX_STATES: usize = 15;

/// Unit of the times in `steps`. Microseconds: a loopback transition follows the
/// previous one within tens of microseconds, one byte, where nanoseconds take three.
pub const STEP_UNIT_NS: u64 = 1_000;

/// AF_INET and AF_INET6, as the kernel numbers them.
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// A state path packed 4 bits a state, the first in the lowest bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Path {
    bits: u64,
    len: u8,
}

impl Path {
    /// Appends `state`; false (and nothing appended) when the path is full. A state
    /// outside 1..=15 (none is) is stored as 15, which no kernel state is.
    pub fn push(&mut self, state: u8) -> bool {
        if usize::from(self.len) >= MAX_STATES {
            return false;
        }
        let s = if (1..=15).contains(&state) { state } else { 15 };
        self.bits |= u64::from(s) << (4 * self.len);
        self.len += 1;
        true
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> u8 {
        ((self.bits >> (4 * i)) & 0xf) as u8
    }

    pub fn last(&self) -> Option<u8> {
        self.len.checked_sub(1).map(|i| self.get(usize::from(i)))
    }

    pub fn states(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The column value (at most 60 bits: never negative).
    pub fn to_i64(self) -> i64 {
        self.bits as i64
    }

    /// The path a column value holds: its states up to the first 0 nibble.
    pub fn from_i64(v: i64) -> Path {
        let bits = v as u64;
        let len = (0..MAX_STATES).take_while(|&i| (bits >> (4 * i)) & 0xf != 0).count();
        Path { bits: bits & ((1u64 << (4 * len)) - 1), len: len as u8 }
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a varint at `*at`, advancing it; `None` at the end or on a truncated one.
pub fn get_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Appends one `steps` entry: `units` after the previous entry, with its queues if
/// either is not 0.
pub fn put_step(out: &mut Vec<u8>, units: u64, (rq, wq): (u32, u32)) {
    let q = rq != 0 || wq != 0;
    put_varint(out, units << 1 | u64::from(q));
    if q {
        put_varint(out, u64::from(rq));
        put_varint(out, u64::from(wq));
    }
}

/// One decoded `steps` entry: ns after the first transition, and the queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub offset_ns: u64,
    pub queues: (u32, u32),
}

/// What the `steps` trailer says: the socket options, and the queues of the first and
/// the last transition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trailer {
    pub v6only: bool,
    pub ifindex: u32,
    pub first_queues: (u32, u32),
    pub last_queues: (u32, u32),
}

impl Trailer {
    /// Appends the trailer, if it says anything.
    pub fn put(&self, out: &mut Vec<u8>) {
        let (q0, q1) = (self.first_queues != (0, 0), self.last_queues != (0, 0));
        let flags =
            u64::from(self.v6only) | u64::from(self.ifindex != 0) << 1 | u64::from(q0) << 2 | u64::from(q1) << 3;
        if flags == 0 {
            return;
        }
        put_varint(out, flags);
        if self.ifindex != 0 {
            put_varint(out, u64::from(self.ifindex));
        }
        for (set, (r, w)) in [(q0, self.first_queues), (q1, self.last_queues)] {
            if set {
                put_varint(out, u64::from(r));
                put_varint(out, u64::from(w));
            }
        }
    }

    fn get(buf: &[u8], at: &mut usize) -> Trailer {
        let mut t = Trailer::default();
        let Some(flags) = get_varint(buf, at) else { return t };
        t.v6only = flags & 1 != 0;
        if flags & 2 != 0 {
            t.ifindex = get_varint(buf, at).unwrap_or(0) as u32;
        }
        let mut queues = || (get_varint(buf, at).unwrap_or(0) as u32, get_varint(buf, at).unwrap_or(0) as u32);
        if flags & 4 != 0 {
            t.first_queues = queues();
        }
        if flags & 8 != 0 {
            t.last_queues = queues();
        }
        t
    }
}

/// The `steps` column of a row whose path has `intermediate` + 2 transitions: the
/// entries (as many as it holds, a malformed tail dropped) and the trailer.
pub fn steps(blob: Option<&[u8]>, intermediate: usize) -> (Vec<Step>, Trailer) {
    let Some(buf) = blob else { return (Vec::new(), Trailer::default()) };
    let (mut at, mut units, mut out) = (0, 0u64, Vec::with_capacity(intermediate));
    while out.len() < intermediate && at < buf.len() {
        let Some(v) = get_varint(buf, &mut at) else { break };
        units = units.saturating_add(v >> 1);
        let queues = if v & 1 == 1 {
            match (get_varint(buf, &mut at), get_varint(buf, &mut at)) {
                (Some(r), Some(w)) => (r as u32, w as u32),
                _ => break,
            }
        } else {
            (0, 0)
        };
        out.push(Step { offset_ns: units.saturating_mul(STEP_UNIT_NS), queues });
    }
    let trailer = if out.len() == intermediate { Trailer::get(buf, &mut at) } else { Trailer::default() };
    (out, trailer)
}

/// An address as stored: 4 bytes for IPv4, 16 for IPv6 (the socket's family).
pub fn addr_bytes(a: &IpAddr) -> AddrBytes {
    match a {
        IpAddr::V4(v4) => AddrBytes::V4(v4.octets()),
        IpAddr::V6(v6) => AddrBytes::V6(v6.octets()),
    }
}

pub enum AddrBytes {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl AsRef<[u8]> for AddrBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            AddrBytes::V4(b) => b,
            AddrBytes::V6(b) => b,
        }
    }
}

/// The address a stored blob holds (the unspecified IPv4 address for a malformed one).
pub fn addr_from(blob: &[u8]) -> IpAddr {
    match blob.len() {
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(blob);
            IpAddr::V6(Ipv6Addr::from(b))
        }
        4 => IpAddr::V4(Ipv4Addr::new(blob[0], blob[1], blob[2], blob[3])),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// The family a stored address says: AF_INET6 for 16 bytes, else AF_INET.
pub fn family_of(blob: &[u8]) -> u16 {
    if blob.len() == 16 { AF_INET6 } else { AF_INET }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_packs_into_an_integer_read_from_the_right() {
        let mut p = Path::default();
        for s in [7, 2, 1, 4, 5, 7] {
            assert!(p.push(s));
        }
        assert_eq!(p.to_i64(), 0x75_4127);
        assert_eq!(Path::from_i64(0x75_4127), p);
        assert_eq!(p.states().collect::<Vec<_>>(), [7, 2, 1, 4, 5, 7]);
        assert_eq!(p.last(), Some(7));
        let mut full = Path::default();
        for _ in 0..MAX_STATES {
            assert!(full.push(1));
        }
        assert!(!full.push(7), "a 16th state does not fit");
        assert_eq!(Path::from_i64(full.to_i64()).len(), MAX_STATES);
    }

    #[test]
    fn steps_round_trip_with_queues_only_where_set() {
        let mut b = Vec::new();
        put_step(&mut b, 51, (0, 0));
        put_step(&mut b, 700, (1, 0));
        put_step(&mut b, 36, (0, 0));
        // 51 << 1 is one byte; 700 << 1 | 1 two, then the queues one each.
        assert_eq!(b.len(), 1 + 2 + 2 + 1);
        let (s, trailer) = steps(Some(&b), 3);
        assert_eq!(trailer, Trailer::default());
        assert_eq!(
            s,
            vec![
                Step { offset_ns: 51_000, queues: (0, 0) },
                Step { offset_ns: 751_000, queues: (1, 0) },
                Step { offset_ns: 787_000, queues: (0, 0) },
            ]
        );
        assert!(steps(None, 0).0.is_empty());
        // A truncated blob loses its tail, not the rest.
        assert_eq!(steps(Some(&b[..4]), 3).0.len(), 1);
    }

    #[test]
    fn the_trailer_follows_the_entries_only_when_it_says_something() {
        let mut b = Vec::new();
        Trailer::default().put(&mut b);
        assert!(b.is_empty());
        let t = Trailer { v6only: true, ifindex: 3, first_queues: (0, 128), last_queues: (1, 0) };
        put_step(&mut b, 5, (0, 0));
        t.put(&mut b);
        assert_eq!(steps(Some(&b), 1), (vec![Step { offset_ns: 5_000, queues: (0, 0) }], t));
        // A listener: no transition between the first and the last.
        let mut l = Vec::new();
        Trailer { first_queues: (0, 128), ..Trailer::default() }.put(&mut l);
        assert_eq!(steps(Some(&l), 0).1.first_queues, (0, 128));
    }

    #[test]
    fn addresses_keep_their_family_in_their_length() {
        for a in ["127.0.0.1", "::1", "::ffff:10.0.0.1"] {
            let ip: IpAddr = a.parse().unwrap();
            let b = addr_bytes(&ip);
            assert_eq!(addr_from(b.as_ref()), ip);
            assert_eq!(family_of(b.as_ref()), if ip.is_ipv4() { AF_INET } else { AF_INET6 });
        }
    }
}
