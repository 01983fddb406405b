//! Address, port and queue text as ss writes it: glibc's `inet_ntop`, ss's
//! `inet_addr_print()` (with `-r` names), `"%-6d"` queues, numeric ports, without the
//! formatting machinery where a query prints it on every row. May import `names`.

use std::net::{IpAddr, Ipv6Addr};

use crate::names::system::Names;

/// glibc's `inet_ntop(AF_INET6)`, which ss uses: like RFC 5952, except that an address
/// whose first 96 bits are zero (other than `::` and `::1`-like ones) is written with a
/// dotted quad (`::1.2.3.4`), which Rust's `Display` does not do.
#[must_use]
pub fn inet6_ntop(addr: &Ipv6Addr) -> String {
    use std::fmt::Write as _;
    let words = addr.segments();
    // The longest run of zero words (the first of equal runs), if at least two long.
    let mut best: Option<(usize, usize)> = None;
    let mut cur: Option<(usize, usize)> = None;
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            cur = Some(cur.map_or((i, 1), |(b, l)| (b, l + 1)));
        } else if let Some(run) = cur.take()
            && best.is_none_or(|(_, l)| run.1 > l)
        {
            best = Some(run);
        }
    }
    if let Some(run) = cur
        && best.is_none_or(|(_, l)| run.1 > l)
    {
        best = Some(run);
    }
    let best = best.filter(|&(_, l)| l >= 2);

    let mut s = String::with_capacity(39);
    for (i, &w) in words.iter().enumerate() {
        if let Some((base, len)) = best
            && (base..base + len).contains(&i)
        {
            if i == base {
                s.push(':');
            }
            continue;
        }
        if i != 0 {
            s.push(':');
        }
        if i == 6 && best.is_some_and(|(base, len)| base == 0 && (len == 6 || (len == 5 && words[5] == 0xffff))) {
            let o = addr.octets();
            let _ = write!(s, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
            return s;
        }
        let _ = write!(s, "{w:x}");
    }
    if best.is_some_and(|(base, len)| base + len == 8) {
        s.push(':');
    }
    s
}

/// ss's `inet_addr_print()` address text (without `%dev` and `:`).
///
/// The unspecified IPv6 address prints as `*` unless the socket is v6-only: a dual-stack
/// `[::]` listener accepts IPv4 too, and ss says so.
#[must_use]
pub fn addr_text(addr: &IpAddr, v6only: bool) -> String {
    let mut s = String::with_capacity(15);
    push_addr(&mut s, addr, v6only);
    s
}

/// Appends [`addr_text`].
pub(super) fn push_addr(out: &mut String, addr: &IpAddr, v6only: bool) {
    match addr {
        IpAddr::V4(a) => push_ipv4(out, *a),
        IpAddr::V6(a) if a.is_unspecified() && !v6only => out.push('*'),
        IpAddr::V6(a) => {
            out.push('[');
            out.push_str(&inet6_ntop(a));
            out.push(']');
        }
    }
}

/// Dotted-quad text of an IPv4 address, as `Ipv4Addr`'s `Display` and inet_ntop write
/// it, without the formatting machinery: a query prints two per row, 100k rows and more.
#[cfg(test)]
pub(super) fn ipv4_text(a: std::net::Ipv4Addr) -> String {
    let mut s = String::with_capacity(15);
    push_ipv4(&mut s, a);
    s
}

/// Appends [`ipv4_text`].
pub(crate) fn push_ipv4(s: &mut String, a: std::net::Ipv4Addr) {
    // SAFETY: only bytes of OCTETS, which are ASCII, are written.
    unsafe {
        push_ascii_with(s, |buf: &mut [u8; 16]| {
            // Each octet's digits and a dot, four bytes at a time; the last dot is dropped.
            let mut len = 0;
            for octet in a.octets() {
                let (digits, n) = OCTETS[usize::from(octet)];
                buf[len..len + 4].copy_from_slice(&digits);
                len += usize::from(n);
            }
            len - 1
        });
    }
}

/// Each byte value's decimal digits followed by a dot (padded to 4 bytes), and their
/// count with the dot.
const OCTETS: [([u8; 4], u8); 256] = {
    let mut table = [([0u8; 4], 0u8); 256];
    let mut v = 0;
    while v < 256 {
        // Lossless: v < 256.
        let (h, t, o) = ((v / 100) as u8, (v / 10 % 10) as u8, (v % 10) as u8);
        table[v] = match v {
            0..10 => ([b'0' + o, b'.', 0, 0], 2),
            10..100 => ([b'0' + t, b'0' + o, b'.', 0], 3),
            _ => ([b'0' + h, b'0' + t, b'0' + o, b'.'], 4),
        };
        v += 1;
    }
    table
};

/// Appends `n` in decimal (the digits `n.to_string()` would give).
pub(crate) fn push_decimal(s: &mut String, n: u64) {
    push_decimal_padded(s, n, 0);
}

/// Appends `n` in decimal, then spaces up to `width` bytes (at most 24).
pub(crate) fn push_decimal_padded(s: &mut String, n: u64, width: usize) {
    // At most 20 digits (u64::MAX).
    let count = n.checked_ilog10().map_or(1, |l| l as usize + 1);
    // SAFETY: only digits are written, over the spaces push_ascii_with starts with.
    unsafe {
        push_ascii_with(s, |buf: &mut [u8; 24]| {
            // Two digits a step, from the end: half the divisions (a 19-digit timestamp
            // of a trace line took ten).
            let (mut n, mut end) = (n, count);
            while end >= 2 {
                let pair = 2 * (n % 100) as usize;
                buf[end - 2..end].copy_from_slice(&PAIRS[pair..pair + 2]);
                n /= 100;
                end -= 2;
            }
            if end == 1 {
                buf[0] = b'0' + (n % 10) as u8;
            }
            count.max(width)
        });
    }
}

/// "00" to "99": each pair of decimal digits, in order.
const PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        // Lossless: i < 100.
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// Appends to `s` the first bytes of `N` that `fill` writes, as many as it returns (at
/// most `N`), the `N` bytes starting as spaces. Written in place: short text built on the
/// stack and then copied was read back before its bytes were stored (a stall that cost
/// more than the digits), a variable-length copy is a `memcpy` call, and a UTF-8 check
/// of digits is work for nothing.
///
/// # Safety
/// `fill` must write only ASCII bytes (so that `s` stays UTF-8).
#[inline]
unsafe fn push_ascii_with<const N: usize>(s: &mut String, fill: impl FnOnce(&mut [u8; N]) -> usize) {
    // SAFETY: the bytes added are spaces and what `fill` wrote, ASCII by the contract.
    let v = unsafe { s.as_mut_vec() };
    v.reserve(N);
    let at = v.len();
    let spare = &mut v.spare_capacity_mut()[..N];
    for b in spare.iter_mut() {
        b.write(b' ');
    }
    // SAFETY: the `N` bytes were all initialised just above.
    let buf = unsafe { &mut *spare.as_mut_ptr().cast::<[u8; N]>() };
    let len = fill(buf).min(N);
    // SAFETY: the `len <= N` bytes after `at` are initialised and within the capacity.
    unsafe { v.set_len(at + len) };
}

/// ss's `"%-6d"` for a queue size held in an `int`.
pub(super) fn queue_text(q: u32) -> String {
    let mut s = String::with_capacity(8);
    push_queue(&mut s, q);
    s
}

/// Appends [`queue_text`].
pub(super) fn push_queue(s: &mut String, q: u32) {
    let v = q.cast_signed();
    if v < 0 {
        s.push('-');
    }
    push_decimal_padded(s, u64::from(v.unsigned_abs()), if v < 0 { 5 } else { 6 });
}

/// [`addr_text`] with `-r`: ss 6.1's `inet_addr_print()` passes every IPv4 address
/// (0.0.0.0 included) and every IPv6 address but a dual-stack `::` to `format_host()`,
/// which prints the host name if there is one, and brackets the text only if it holds a
/// `:` (a numeric IPv6 address; a name never does).
pub(super) fn resolved_addr_text(addr: &IpAddr, v6only: bool, names: &Names) -> String {
    if matches!(addr, IpAddr::V6(a) if a.is_unspecified() && !v6only) {
        return "*".to_owned();
    }
    match names.hosts.name(*addr) {
        Some(name) if name.contains(':') => format!("[{name}]"),
        Some(name) => name,
        None => addr_text(addr, v6only),
    }
}

#[cfg(test)]
pub(super) fn port_numeric(port: u16) -> String {
    let mut s = String::with_capacity(5);
    push_port_numeric(&mut s, port);
    s
}

/// Appends [`port_numeric`].
pub(super) fn push_port_numeric(s: &mut String, port: u16) {
    if port == 0 {
        s.push('*');
    } else {
        push_decimal(s, u64::from(port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_match_display_at_every_length() {
        let mut n = 0u64;
        let mut cases = vec![u64::MAX, u64::MAX - 1];
        for _ in 0..20 {
            cases.extend([n, n.saturating_sub(1), n + 1, n.wrapping_mul(7) / 3]);
            n = if n == 0 { 1 } else { n.saturating_mul(10) };
        }
        for v in cases {
            let mut s = String::from("x");
            push_decimal(&mut s, v);
            assert_eq!(s, format!("x{v}"));
            let mut padded = String::new();
            push_decimal_padded(&mut padded, v, 22);
            assert_eq!(padded, format!("{v:<22}"));
        }
    }

    #[test]
    fn fast_number_and_address_text_match_display() {
        for v in [0u32, 7, 10, 99, 100, 65535, 1 << 20, 123_456_789, 1 << 31, u32::MAX - 99_999, u32::MAX] {
            assert_eq!(queue_text(v), format!("{:<6}", v.cast_signed()));
        }
        for p in [1u16, 9, 10, 80, 443, 8080, 65535] {
            assert_eq!(port_numeric(p), p.to_string());
        }
        for a in ["0.0.0.0", "127.0.0.1", "10.254.0.1", "255.255.255.255", "1.20.100.9"] {
            let ip: std::net::Ipv4Addr = a.parse().expect("literal");
            assert_eq!(ipv4_text(ip), a);
        }
    }

    #[test]
    fn ipv6_text_matches_glibc_inet_ntop() {
        // Right-hand sides from python3's socket.inet_ntop (glibc) on the same machine.
        let cases: &[(&str, &str)] = &[
            ("::", "::"),
            ("::1", "::1"),
            ("::2", "::2"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::ffff:0:1.2.3.4", "::ffff:0:102:304"),
            ("1::", "1::"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("2001:db8::1", "2001:db8::1"),
            ("0:0:1::", "0:0:1::"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
            ("fe80::1:0:0:1", "fe80::1:0:0:1"),
            ("0:0:0:0:0:1:1.2.3.4", "::1:102:304"),
            ("::ffff:0.0.0.0", "::ffff:0.0.0.0"),
        ];
        for &(input, want) in cases {
            let a: Ipv6Addr = input.parse().expect("test address");
            assert_eq!(inet6_ntop(&a), want, "{input}");
        }
    }
}
