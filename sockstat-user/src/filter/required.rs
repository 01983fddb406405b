//! What every socket a filter accepts must have, when the expression says so: a port or
//! an address of one end. An index of sockets by that field then gives a short list of
//! candidates, each still judged by the whole filter (`Filter::matches`): the condition is
//! necessary, not sufficient.

use super::ast::{Expr, HostAddr, HostCond, Prefix};
use super::{AF_INET, Filter};

/// A condition every match meets (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Required<'a> {
    /// The local (`sport`) or remote (`dport`) port is `port`.
    Port { local: bool, port: u16 },
    /// The local (`src`) or remote (`dst`) address is within one of `prefixes`, as
    /// `run_ssfilter()` compares them (see [`Prefix::range`]).
    Addr { local: bool, prefixes: Vec<&'a Prefix> },
}

fn host(c: &HostCond, local: bool) -> Option<Required<'_>> {
    let HostAddr::Inet { first, more } = &c.addr else { return None };
    // A port condition fails for every other port (ss's user-space check), -1 being any.
    if c.port != -1 {
        // A port no socket has matches nothing, which a scan finds as fast.
        return u16::try_from(c.port).ok().map(|port| Required::Port { local, port });
    }
    let prefixes: Vec<&Prefix> = std::iter::once(first).chain(more).collect();
    // A zero-length prefix matches every address: no help.
    prefixes.iter().all(|p| p.bitlen > 0).then_some(Required::Addr { local, prefixes })
}

fn required(e: &Expr) -> Option<Required<'_>> {
    match e {
        Expr::Src(c) => host(c, true),
        Expr::Dst(c) => host(c, false),
        // Any part of a conjunction is necessary; a port is the most selective.
        Expr::And(v) => {
            let all: Vec<Required> = v.iter().filter_map(required).collect();
            all.iter().find(|r| matches!(r, Required::Port { .. })).or(all.first()).cloned()
        }
        _ => None,
    }
}

impl Filter {
    /// A condition every socket this filter accepts meets, if the expression has one an
    /// index can serve (a `sport`/`dport`/`src`/`dst` condition, alone or in an `and`).
    #[must_use]
    pub fn required(&self) -> Option<Required<'_>> {
        self.expr.as_ref().and_then(required)
    }
}

/// The 16 bytes with the bits after the first `bits` set to `fill`.
fn masked(bytes: &[u8; 16], bits: u8, fill: bool) -> [u8; 16] {
    let mut out = *bytes;
    for (i, b) in out.iter_mut().enumerate() {
        let keep = usize::from(bits).saturating_sub(i * 8).min(8);
        let mask = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        *b = if fill { *b | !mask } else { *b & mask };
    }
    out
}

impl Prefix {
    /// The addresses (as 16 bytes, an IPv4 address in the first four, zeros after) whose
    /// first `bitlen` bits are this prefix's: one range, first and last included.
    #[must_use]
    pub fn range(&self) -> ([u8; 16], [u8; 16]) {
        (masked(&self.bytes, self.bitlen, false), masked(&self.bytes, self.bitlen, true))
    }

    /// For an IPv4 prefix of at most 32 bits: the v4-mapped IPv6 addresses
    /// (`::ffff:a.b.c.d`) whose IPv4 part it matches, which ss also accepts.
    #[must_use]
    pub fn v4_mapped_range(&self) -> Option<([u8; 16], [u8; 16])> {
        if self.family != AF_INET || self.bitlen > 32 {
            return None;
        }
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&self.bytes[..4]);
        Some((masked(&mapped, 96 + self.bitlen, false), masked(&mapped, 96 + self.bitlen, true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_prefix_exactly() {
        let p = Prefix { family: AF_INET, bytes: [127, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], bitlen: 24 };
        let (lo, hi) = p.range();
        assert_eq!(&lo[..5], &[127, 0, 1, 0, 0]);
        assert_eq!(&hi[..5], &[127, 0, 1, 255, 255]);
        let (lo, hi) = p.v4_mapped_range().unwrap();
        assert_eq!(&lo[10..], &[0xff, 0xff, 127, 0, 1, 0]);
        assert_eq!(&hi[10..], &[0xff, 0xff, 127, 0, 1, 255]);
        assert_eq!(lo[..10], [0; 10]);
        let odd = Prefix { bitlen: 12, ..p };
        assert_eq!((odd.range().0[1], odd.range().1[1]), (0, 0x0f));
    }
}
