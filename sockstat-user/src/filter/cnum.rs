//! Values: iproute2's lib/utils.c number and address rules (C's `strtoul`/`strtol`/`%i`,
//! `get_integer`, `get_addr`, `get_prefix`, netmasks) and the value parsers of ss.c built on
//! them (`find_port`, vsock host conditions, `parse_devcond`, `parse_markmask`). Pure
//! functions; interface names are asked of a [`Resolver`].

use std::net::{IpAddr, Ipv6Addr};

use sockstat_ebpf::{AF_INET, AF_INET6};

use super::ast::{HostAddr, HostCond, Prefix};
use super::error::ValueError;
use super::resolver::Resolver;
use super::{AF_UNSPEC, AF_VSOCK};

/// The result of C's `strtoul`/`strtol` on a prefix of a string.
pub(super) struct CNumber {
    /// Magnitude, saturated at `u64::MAX`.
    pub(super) magnitude: u64,
    pub(super) negative: bool,
    /// Bytes consumed; 0 when there are no digits (C sets `endptr` to the start).
    pub(super) consumed: usize,
}

/// C's number scanning for `strtoul`/`strtol` with `base` 0 (auto) or 10: leading
/// `isspace`, optional sign, `0x` hex / `0` octal prefixes for base 0.
pub(super) fn c_scan(s: &str, base: u32) -> CNumber {
    let b = s.as_bytes();
    let mut i = 0;
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')) {
        i += 1;
    }
    let mut negative = false;
    if let Some(&c @ (b'+' | b'-')) = b.get(i) {
        negative = c == b'-';
        i += 1;
    }
    let mut radix = base;
    if base == 0 {
        radix = 10;
        if b.get(i) == Some(&b'0') {
            radix = 8;
            // "0x" counts as a prefix only when a hex digit follows; "0xg" is 0, then "xg".
            if matches!(b.get(i + 1), Some(b'x' | b'X')) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
                radix = 16;
                i += 2;
            }
        }
    }
    let start = i;
    let mut magnitude: u64 = 0;
    while let Some(d) = b.get(i).and_then(|&c| char::from(c).to_digit(radix)) {
        magnitude =
            magnitude.checked_mul(u64::from(radix)).and_then(|m| m.checked_add(u64::from(d))).unwrap_or(u64::MAX);
        i += 1;
    }
    CNumber { magnitude, negative, consumed: if i == start { 0 } else { i } }
}

/// `strtoul(s, &end, base)`: the value (negation wraps, as in C; overflow saturates) and
/// whether it overflowed (ERANGE).
pub(super) fn c_strtoul(n: &CNumber) -> (u64, bool) {
    if n.magnitude == u64::MAX {
        return (u64::MAX, true);
    }
    if n.negative { (n.magnitude.wrapping_neg(), false) } else { (n.magnitude, false) }
}

/// `strtol(s, &end, base)`: the value (saturated) and whether it overflowed.
fn c_strtol(n: &CNumber) -> (i64, bool) {
    let limit = if n.negative { 1u64 << 63 } else { (1u64 << 63) - 1 };
    if n.magnitude > limit {
        return (if n.negative { i64::MIN } else { i64::MAX }, true);
    }
    let v = i128::from(n.magnitude);
    let v = if n.negative { -v } else { v };
    (i64::try_from(v).unwrap_or(i64::MAX), false)
}

/// iproute2 `get_integer(&val, s, 0)`: the whole string, within `int`.
pub(super) fn get_integer(s: &str) -> Option<i32> {
    let n = c_scan(s, 0);
    if n.consumed == 0 || n.consumed != s.len() {
        return None;
    }
    let (v, overflow) = c_strtol(&n);
    if overflow {
        return None;
    }
    i32::try_from(v).ok()
}

/// iproute2 `get_unsigned(&val, s, 0)`: the whole string, within `unsigned int`.
pub(super) fn get_unsigned(s: &str) -> Option<u32> {
    let n = c_scan(s, 0);
    if n.consumed == 0 || n.consumed != s.len() {
        return None;
    }
    let (v, overflow) = c_strtoul(&n);
    if overflow {
        return None;
    }
    u32::try_from(v).ok()
}

/// iproute2 `get_addr_ipv4()`: one to four `strtoul` numbers (base 0, each <= 255)
/// separated by dots; missing trailing bytes are 0 (`127.1` is 127.1.0.0).
fn get_addr_ipv4(s: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut rest = s;
    for (i, byte) in out.iter_mut().enumerate() {
        let n = c_scan(rest, 0);
        let (v, _) = c_strtoul(&n);
        if n.consumed == 0 {
            return None;
        }
        *byte = u8::try_from(v).ok()?;
        let tail = &rest[n.consumed..];
        if tail.is_empty() {
            break;
        }
        if i == 3 || !tail.starts_with('.') {
            return None;
        }
        rest = &tail[1..];
    }
    Some(out)
}

/// iproute2 `get_addr_1()` for the families a filter can name. Returns the address and
/// whether it was one of the "any" spellings (iproute2's `bitlen == -2`).
fn get_addr_1(s: &str, fam: u16) -> Option<(Prefix, bool)> {
    if matches!(s, "default" | "all" | "any") {
        // The family is the caller's, AF_UNSPEC included: `src any` matches every family.
        let p = Prefix { family: fam, bytes: [0; 16], bitlen: 0 };
        return Some((p, true));
    }
    if s.contains(':') {
        if fam != AF_UNSPEC && fam != AF_INET6 {
            return None;
        }
        let ip: Ipv6Addr = s.parse().ok()?;
        return Some((Prefix::host(IpAddr::V6(ip)), false));
    }
    if fam != AF_UNSPEC && fam != AF_INET {
        return None;
    }
    let v4 = get_addr_ipv4(s)?;
    Some((Prefix::host(IpAddr::V4(v4.into())), false))
}

/// iproute2 `get_netmask()`: a number, or a dotted mask with contiguous ones.
fn get_netmask(s: &str) -> Option<u32> {
    if let Some(n) = get_unsigned(s) {
        return Some(n);
    }
    let (p, _) = get_addr_1(s, AF_INET)?;
    if p.family != AF_INET {
        return None;
    }
    let mask = u32::from_be_bytes([p.bytes[0], p.bytes[1], p.bytes[2], p.bytes[3]]);
    let host = !mask;
    // A valid mask is ones then zeros: its complement is 2^n - 1.
    (host & host.wrapping_add(1) == 0).then(|| mask.leading_ones())
}

/// iproute2 `get_prefix_1()`: `ADDR[/PLEN]`, PLEN a number or a dotted mask.
pub(super) fn get_prefix_1(s: &str, fam: u16) -> Option<Prefix> {
    let (addr, plen) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let (mut p, any) = get_addr_1(addr, fam)?;
    let max: u32 = match p.family {
        AF_INET => 32,
        AF_INET6 => 128,
        _ => 0,
    };
    match plen {
        Some(m) => {
            if any {
                return None;
            }
            let bits = get_netmask(m)?;
            if bits > max {
                return None;
            }
            p.bitlen = u8::try_from(bits).ok()?;
        }
        None => p.bitlen = if any { 0 } else { u8::try_from(max).unwrap_or(0) },
    }
    Some(p)
}

/// iproute2's `ll_name_to_index()`: the kernel's table, then the `ifN` spelling; `None`
/// for 0 (no such interface).
pub(super) fn ll_name_to_index(s: &str, resolver: &dyn Resolver) -> Option<u32> {
    resolver
        .ifindex(s)
        .or_else(|| {
            // ll_idx_a2n(): sscanf(name, "if%u").
            let rest = s.strip_prefix("if")?;
            let n = c_scan(rest, 10);
            // %u stores the strtoul result in an unsigned int: truncation is C's.
            (n.consumed != 0).then(|| c_strtoul(&n).0 as u32)
        })
        .filter(|&i| i != 0)
}

/// ss.c `find_port()`: for `sport`/`dport` the whole token is the port (a leading `:`
/// dropped); otherwise the text before the first `:` is the address and the text after
/// it the port (`None` without a `:`).
pub(super) fn find_port(text: &str, is_port: bool) -> (&str, Option<&str>) {
    if is_port {
        // ss cuts the ':' off in place, which also leaves the address empty.
        return match text.strip_prefix(':') {
            Some(port) => ("", Some(port)),
            None => (text, Some(text)),
        };
    }
    match text.split_once(':') {
        Some((addr, port)) => (addr, Some(port)),
        None => (text, None),
    }
}

/// An `inet_prefix` of a non-inet family holding `value` as ss stores it
/// (`a.addr.data[0] = value`).
pub(super) fn data_prefix(family: u16, value: u32, bitlen: u8) -> Prefix {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&value.to_ne_bytes());
    Prefix { family, bytes, bitlen }
}

/// The AF_VSOCK part of ss.c `parse_hostcond()`: `[CID][:PORT]`, each a `get_u32` number
/// or `*`; a missing cid is any (ss still stores cid -1 in the prefix, with no length).
/// Unlike the packet and netlink forms, an empty port (`vsock:3:`) is an error.
pub(super) fn parse_vsock_hostcond(text: &str, is_port: bool) -> Result<HostCond, ValueError> {
    let (addr, port) = find_port(text, is_port);
    let mut cond_port = -1;
    if let Some(port) = port.filter(|&p| p != "*") {
        // get_u32 into an int: the wrap is ss's (port 4294967295 is -1, "any").
        cond_port = get_unsigned(port).ok_or_else(|| ValueError::VsockPort(port.to_owned()))?.cast_signed();
    }
    let mut cid = u32::MAX;
    let mut bitlen = 0;
    if !is_port && !addr.is_empty() && addr != "*" {
        cid = get_unsigned(addr).ok_or_else(|| ValueError::VsockCid(addr.to_owned()))?;
        bitlen = 32;
    }
    Ok(HostCond { port: cond_port, addr: HostAddr::Other(data_prefix(AF_VSOCK, cid, bitlen)) })
}

/// ss.c `parse_devcond()`: an interface name (iproute2's `ll_name_to_index`: the kernel's
/// table, then the `ifN` spelling), else a whole `strtoul` number within `unsigned int`.
pub(super) fn parse_devcond(s: &str, resolver: &dyn Resolver) -> Result<u32, ValueError> {
    if let Some(i) = ll_name_to_index(s, resolver) {
        return Ok(i);
    }
    let n = c_scan(s, 0);
    let (v, _) = c_strtoul(&n);
    if n.consumed == 0 || n.consumed != s.len() {
        return Err(ValueError::Device(s.to_owned()));
    }
    u32::try_from(v).map_err(|_| ValueError::Device(s.to_owned()))
}

/// `sscanf("%i")`: leading space, sign, base prefix; the `long` result truncated to
/// `int`. Returns the value's bits and the rest of the string.
fn scan_c_int(s: &str) -> Option<(u32, &str)> {
    let n = c_scan(s, 0);
    if n.consumed == 0 {
        return None;
    }
    let (v, _) = c_strtol(&n);
    // Truncation to C `int`, then reinterpretation as the u32 ss stores: C's.
    Some((v as u32, &s[n.consumed..]))
}

/// ss.c `parse_markmask()`: `MARK` (mask 0xffffffff) or `MARK/MASK`, each `%i`; text after
/// the number(s) is ignored, as sscanf does.
pub(super) fn parse_markmask(s: &str) -> Result<(u32, u32), ValueError> {
    let err = || ValueError::Mark(s.to_owned());
    if s.contains('/') {
        let (mark, rest) = scan_c_int(s).ok_or_else(err)?;
        let rest = rest.strip_prefix('/').ok_or_else(err)?;
        let (mask, _) = scan_c_int(rest).ok_or_else(err)?;
        Ok((mark, mask))
    } else {
        let (mark, _) = scan_c_int(s).ok_or_else(err)?;
        Ok((mark, u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_number_rules() {
        assert_eq!(get_integer("0x50"), Some(80));
        assert_eq!(get_integer("010"), Some(8));
        assert_eq!(get_integer("-1"), Some(-1));
        assert_eq!(get_integer("08"), None);
        assert_eq!(get_integer("2147483648"), None);
        assert_eq!(get_integer("0x"), None);
        assert_eq!(get_integer(""), None);
        assert_eq!(get_unsigned("4294967295"), Some(u32::MAX));
        assert_eq!(get_unsigned("4294967296"), None);
        assert_eq!(get_unsigned("-1"), None);
        assert_eq!(get_unsigned("-0"), Some(0));
        assert_eq!(get_addr_ipv4("10"), Some([10, 0, 0, 0]));
        assert_eq!(get_addr_ipv4("0x7f.0.0.01"), Some([127, 0, 0, 1]));
        assert_eq!(get_addr_ipv4("1.2.3."), None);
        assert_eq!(get_addr_ipv4("-1"), None);
        assert_eq!(get_netmask("255.255.0.0"), Some(16));
        assert_eq!(get_netmask("0.255.0.0"), None);
        assert_eq!(get_netmask("any"), Some(0));
        // %i stores strtol's long in an int: the low 32 bits, or -1 after saturation.
        assert_eq!(parse_markmask("99999999999"), Ok((1_215_752_191, u32::MAX)));
        assert_eq!(parse_markmask("99999999999999999999/1"), Ok((u32::MAX, 1)));
    }
}
