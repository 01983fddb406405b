//! The `-i` and `-m` text: ss's `tcp_show_info()` (`tcp_stats_print()`, MD5 keys, ULP),
//! `mptcp_show_info()`, `print_skmeminfo()`, and the printf-compatible number text they
//! need (`sprint_bw()`, `%g`). May import `model`, `names` and the rest of `render`.

use std::net::IpAddr;

use crate::names::system::Names;
use crate::render::addr::{inet6_ntop, push_decimal};
use crate::render::style::Style;
use sockstat_ebpf::TcpState;

/// ss's `mptcp_show_info()`: the memory, as for TCP, then `mptcp_stats_print()` on the
/// `struct mptcp_info`: each field only when it is not 0.
/// ss 7.1 prints the sequence numbers in decimal (6.1: hexadecimal) and the fields the
/// kernel added after `rcv_nxt`.
pub(super) fn mptcp_show_info(d: &crate::model::socket::InetDetails, v7: bool) -> String {
    let mut out = String::new();
    if let Some(m) = &d.skmem {
        out.push_str(&skmem_text(m));
    } else if let Some([r, w, f, t]) = d.meminfo {
        out.push_str(&format!(" mem:(r{r},w{w},f{f},t{t})"));
    }
    let Some(i) = &d.mptcp_info else { return out };
    for (v, name) in [
        (i.subflows, "subflows"),
        (i.add_addr_signal, "add_addr_signal"),
        (i.add_addr_accepted, "add_addr_accepted"),
        (i.subflows_max, "subflows_max"),
        (i.add_addr_signal_max, "add_addr_signal_max"),
        (i.add_addr_accepted_max, "add_addr_accepted_max"),
    ] {
        if v != 0 {
            out.push_str(&format!(" {name}:{v}"));
        }
    }
    // MPTCP_INFO_FLAG_FALLBACK, MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED.
    if i.flags & 1 != 0 {
        out.push_str(" fallback");
    }
    if i.flags & 2 != 0 {
        out.push_str(" remote_key");
    }
    if i.token != 0 {
        out.push_str(&format!(" token:{:x}", i.token));
    }
    for (v, name) in [(i.write_seq, "write_seq"), (i.snd_una, "snd_una"), (i.rcv_nxt, "rcv_nxt")] {
        if v != 0 {
            out.push_str(&if v7 { format!(" {name}:{v}") } else { format!(" {name}:{v:x}") });
        }
    }
    if v7 {
        let e = &i.ext;
        for (v, name) in [
            (u64::from(e.local_addr_used), "local_addr_used"),
            (u64::from(e.local_addr_max), "local_addr_max"),
            (u64::from(e.csum_enabled), "csum_enabled"),
            (u64::from(e.retransmits), "retransmits"),
            (e.bytes_retrans, "bytes_retrans"),
            (e.bytes_sent, "bytes_sent"),
            (e.bytes_received, "bytes_received"),
            (e.bytes_acked, "bytes_acked"),
            (u64::from(e.subflows_total), "subflows_total"),
            (u64::from(e.endp_laminar_max), "endp_laminar_max"),
            (u64::from(e.last_data_sent), "last_data_sent"),
            (u64::from(e.last_data_recv), "last_data_recv"),
            (u64::from(e.last_ack_recv), "last_ack_recv"),
        ] {
            if v != 0 {
                out.push_str(&format!(" {name}:{v}"));
            }
        }
    }
    out
}

/// ss's `print_skmeminfo()`: `skmem:(...)` from an `SK_MEMINFO_*` array.
pub(super) fn skmem_text(m: &[u32]) -> String {
    let w = |i: usize| m.get(i).copied().unwrap_or(0);
    let mut out = format!(" skmem:(r{},rb{},t{},tb{},f{},w{},o{}", w(0), w(1), w(2), w(3), w(4), w(5), w(6));
    if m.len() > 7 {
        out.push_str(&format!(",bl{}", w(7)));
    }
    if m.len() > 8 {
        out.push_str(&format!(",d{}", w(8)));
    }
    out.push(')');
    out
}

/// ss's `tcp_show_info()` (the part after the line break): `tcp_stats_print()`, then the
/// MD5 keys and the ULP information.
pub(super) fn push_tcp_info(
    out: &mut String,
    opts: &Style,
    state: u8,
    d: &crate::model::socket::InetDetails,
    names: &Names,
) {
    push_tcp_stats(out, opts, state, d);
    if let Some(keys) = d.md5.as_deref().filter(|k| !k.is_empty()) {
        out.push_str(" md5keys:");
        for (n, k) in keys.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(&md5_key_text(k, opts.resolve_hosts.then_some(names)));
        }
    }
    if let Some(u) = &d.ulp {
        out.push_str(&ulp_text(u, opts.compat.v7()));
    }
}

/// ss's `print_md5sig()`: `ADDR/PREFIXLEN=KEY`, the key's bytes as they are but for those
/// not printable and `\`, space and comma, written `\ooo` (iproute2's `print_escape_buf`).
/// ss writes the key with printf, around its column buffer, so its key bytes land at the
/// top of the output; sockstat writes them here, in the row (see README).
pub(super) fn md5_key_text(k: &crate::model::socket::Md5Key, names: Option<&Names>) -> String {
    use std::fmt::Write as _;
    let addr: IpAddr =
        if k.family == 10 { IpAddr::from(k.addr) } else { IpAddr::from([k.addr[0], k.addr[1], k.addr[2], k.addr[3]]) };
    let host = names.and_then(|n| n.hosts.name(addr)).unwrap_or_else(|| match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => inet6_ntop(&a),
    });
    let mut out = format!("{host}/{}=", k.prefixlen);
    for &b in &k.key {
        if (0x20..0x7f).contains(&b) && !matches!(b, b'\\' | b' ' | b',') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\{b:03o}");
        }
    }
    out
}

/// ss's `tcp_stats_print()` for `-i` (and the memory `-m` prints before it).
pub(super) fn push_tcp_stats(out: &mut String, opts: &Style, state: u8, d: &crate::model::socket::InetDetails) {
    if let Some(m) = &d.skmem {
        out.push_str(&skmem_text(m));
    } else if let Some([r, w, f, t]) = d.meminfo {
        out.push_str(&format!(" mem:(r{r},w{w},f{f},t{t})"));
    }
    let Some(i) = &d.tcp_info else { return };
    // Each field is written straight into the row's text: `-tani` writes some twenty a
    // socket.
    use std::fmt::Write as _;
    let has = |bit: u8| i.options & bit != 0;
    if opts.show_options {
        // TCPI_OPT_TIMESTAMPS, USEC_TS (ss 7.1 only), SACK, ECN, ECN_SEEN, SYN_DATA.
        let usec_ts = if opts.compat.v7() { 64 } else { 0 };
        for (bit, name) in
            [(1, " ts"), (usec_ts, " usec_ts"), (2, " sack"), (8, " ecn"), (16, " ecnseen"), (32, " fastopen")]
        {
            if has(bit) {
                out.push_str(name);
            }
        }
    }
    if let Some(c) = d.cong.as_deref().filter(|c| !c.is_empty()) {
        out.push(' ');
        out.push_str(c);
    }
    if has(4) {
        push_field(out, "wscale", u64::from(i.snd_wscale));
        out.push(',');
        push_decimal(out, u64::from(i.rcv_wscale));
    }
    if i.rto != 0 && i.rto != 3_000_000 {
        out.push_str(" rto:");
        push_ms(out, i.rto);
    }
    if i.backoff != 0 {
        push_field(out, "backoff", u64::from(i.backoff));
    }
    if i.rtt != 0 {
        out.push_str(" rtt:");
        push_ms(out, i.rtt);
        out.push('/');
        push_ms(out, i.rttvar);
    }
    if i.ato != 0 {
        out.push_str(" ato:");
        push_ms(out, i.ato);
    }
    for (v, name) in
        [(i.snd_mss, "mss"), (i.pmtu, "pmtu"), (i.rcv_mss, "rcvmss"), (i.advmss, "advmss"), (i.snd_cwnd, "cwnd")]
    {
        if v != 0 {
            push_field(out, name, u64::from(v));
        }
    }
    if i.snd_ssthresh < 0xffff && i.snd_ssthresh != 0 {
        push_field(out, "ssthresh", u64::from(i.snd_ssthresh));
    }
    for (v, name) in [
        (i.bytes_sent, "bytes_sent"),
        (i.bytes_retrans, "bytes_retrans"),
        (i.bytes_acked, "bytes_acked"),
        (i.bytes_received, "bytes_received"),
    ] {
        if v != 0 {
            push_field(out, name, v);
        }
    }
    for (v, name) in [
        (i.segs_out, "segs_out"),
        (i.segs_in, "segs_in"),
        (i.data_segs_out, "data_segs_out"),
        (i.data_segs_in, "data_segs_in"),
    ] {
        if v != 0 {
            push_field(out, name, u64::from(v));
        }
    }
    if let Some([enabled, ce_state, alpha, ab_ecn, ab_tot]) = d.dctcp {
        if enabled != 0 {
            let _ = write!(out, " dctcp:(ce_state:{ce_state},alpha:{alpha},ab_ecn:{ab_ecn},ab_tot:{ab_tot})");
        } else {
            out.push_str(" dctcp:fallback_mode");
        }
    }
    if let Some([lo, hi, min_rtt, pacing_gain, cwnd_gain]) = d.bbr {
        let bw = u64::from(hi) << 32 | u64::from(lo);
        out.push_str(" bbr:(bw:");
        push_bw(out, opts.numeric, bw as f64 * 8.0);
        out.push_str("bps,mrtt:");
        push_ms(out, min_rtt);
        if pacing_gain != 0 {
            out.push_str(",pacing_gain:");
            push_g(out, f64::from(pacing_gain) / 256.0, 6);
        }
        if cwnd_gain != 0 {
            out.push_str(",cwnd_gain:");
            push_g(out, f64::from(cwnd_gain) / 256.0, 6);
        }
        out.push(')');
    }
    // The send rate uses Vegas's RTT sample when Vegas has a valid one.
    let mut rtt = f64::from(i.rtt);
    if let Some([enabled, _, vrtt, _]) = d.vegas
        && enabled != 0
        && vrtt != 0
        && vrtt != 0x7fff_ffff
    {
        rtt = f64::from(vrtt);
    }
    if rtt > 0.0 && i.snd_mss != 0 && i.snd_cwnd != 0 {
        let bps = f64::from(i.snd_cwnd) * f64::from(i.snd_mss) * 8_000_000.0 / rtt;
        out.push_str(" send ");
        push_bw(out, opts.numeric, bps);
        out.push_str("bps");
    }
    for (v, name) in [(i.last_data_sent, "lastsnd"), (i.last_data_recv, "lastrcv"), (i.last_ack_recv, "lastack")] {
        if v != 0 {
            push_field(out, name, u64::from(v));
        }
    }
    if i.pacing_rate != 0 && i.pacing_rate != u64::MAX {
        out.push_str(" pacing_rate ");
        push_bw(out, opts.numeric, i.pacing_rate as f64 * 8.0);
        out.push_str("bps");
        if i.max_pacing_rate != 0 && i.max_pacing_rate != u64::MAX {
            out.push('/');
            push_bw(out, opts.numeric, i.max_pacing_rate as f64 * 8.0);
            out.push_str("bps");
        }
    }
    if i.delivery_rate != 0 {
        out.push_str(" delivery_rate ");
        push_bw(out, opts.numeric, i.delivery_rate as f64 * 8.0);
        out.push_str("bps");
    }
    if i.delivered != 0 {
        push_field(out, "delivered", u64::from(i.delivered));
    }
    if i.delivered_ce != 0 {
        push_field(out, "delivered_ce", u64::from(i.delivered_ce));
    }
    if i.delivery_rate_app_limited {
        out.push_str(" app_limited");
    }
    if i.busy_time != 0 {
        let _ = write!(out, " busy:{}ms", i.busy_time / 1000);
        if i.rwnd_limited != 0 {
            let _ = write!(
                out,
                " rwnd_limited:{}ms({:.1}%)",
                i.rwnd_limited / 1000,
                100.0 * i.rwnd_limited as f64 / i.busy_time as f64
            );
        }
        if i.sndbuf_limited != 0 {
            let _ = write!(
                out,
                " sndbuf_limited:{}ms({:.1}%)",
                i.sndbuf_limited / 1000,
                100.0 * i.sndbuf_limited as f64 / i.busy_time as f64
            );
        }
    }
    if i.unacked != 0 {
        push_field(out, "unacked", u64::from(i.unacked));
    }
    if i.retrans != 0 || i.total_retrans != 0 {
        push_field(out, "retrans", u64::from(i.retrans));
        out.push('/');
        push_decimal(out, u64::from(i.total_retrans));
    }
    if i.lost != 0 {
        push_field(out, "lost", u64::from(i.lost));
    }
    if i.sacked != 0 && state != TcpState::Listen as u8 {
        push_field(out, "sacked", u64::from(i.sacked));
    }
    if i.dsack_dups != 0 {
        push_field(out, "dsack_dups", u64::from(i.dsack_dups));
    }
    if i.fackets != 0 {
        push_field(out, "fackets", u64::from(i.fackets));
    }
    if i.reordering != 3 {
        push_signed_field(out, "reordering", i64::from(i.reordering.cast_signed()));
    }
    if i.reord_seen != 0 {
        push_signed_field(out, "reord_seen", i64::from(i.reord_seen.cast_signed()));
    }
    if i.rcv_rtt != 0 {
        out.push_str(" rcv_rtt:");
        push_ms(out, i.rcv_rtt);
    }
    if i.rcv_space != 0 {
        push_signed_field(out, "rcv_space", i64::from(i.rcv_space.cast_signed()));
    }
    if i.rcv_ssthresh != 0 {
        push_field(out, "rcv_ssthresh", u64::from(i.rcv_ssthresh));
    }
    if i.notsent_bytes != 0 {
        push_field(out, "notsent", u64::from(i.notsent_bytes));
    }
    if i.min_rtt != 0 && i.min_rtt != u32::MAX {
        out.push_str(" minrtt:");
        push_ms(out, i.min_rtt);
    }
    if i.rcv_ooopack != 0 {
        push_field(out, "rcv_ooopack", u64::from(i.rcv_ooopack));
    }
    if i.snd_wnd != 0 {
        push_field(out, "snd_wnd", u64::from(i.snd_wnd));
    }
    if opts.compat.v7() {
        if i.rcv_wnd != 0 {
            push_field(out, "rcv_wnd", u64::from(i.rcv_wnd));
        }
        if i.rehash != 0 {
            push_field(out, "rehash", u64::from(i.rehash));
        }
    }
}

/// ss's `INET_DIAG_ULP_INFO` text at the end of `tcp_show_info()`: ` tcp-ulp-NAME`, then
/// kTLS's version, cipher, configurations and flags (`no_pad_rx` from ss 7.1 on), or an
/// MPTCP subflow's flags, tokens and mapping (`mptcp_subflow_info()`: hexadecimal in 6.1,
/// decimal in 7.1).
pub(super) fn ulp_text(u: &crate::model::socket::UlpInfo, v7: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if let Some(name) = &u.name {
        let _ = write!(out, " tcp-ulp-{name}");
    }
    if let Some(t) = &u.tls {
        match t.version {
            Some(0x0303) => out.push_str(" version: 1.2"),
            Some(0x0304) => out.push_str(" version: 1.3"),
            Some(v) => {
                let _ = write!(out, " version: unknown({v})");
            }
            None => {}
        }
        match t.cipher {
            Some(51) => out.push_str(" cipher: aes-gcm-128"),
            Some(52) => out.push_str(" cipher: aes-gcm-256"),
            _ => {}
        }
        for (name, conf) in [("rxconf", t.rxconf), ("txconf", t.txconf)] {
            let Some(c) = conf else { continue };
            let _ = match c {
                1 => write!(out, " {name}: none"),
                2 => write!(out, " {name}: sw"),
                3 => write!(out, " {name}: hw"),
                4 => write!(out, " {name}: hw-record"),
                v => write!(out, " {name}: unknown({v})"),
            };
        }
        if t.zc_ro_tx {
            out.push_str(" zc_ro_tx");
        }
        if v7 && t.rx_no_pad {
            out.push_str(" no_pad_rx");
        }
    }
    if let Some(m) = &u.mptcp {
        if let Some(flags) = m.flags.filter(|&f| f != 0) {
            let caps: String = ['M', 'm', 'J', 'j', 'B', 'b', 'e', 'c', 'v']
                .iter()
                .enumerate()
                .filter(|&(bit, _)| flags & (1 << bit) != 0)
                .map(|(_, &c)| c)
                .collect();
            let _ = write!(out, " flags:{caps}");
        }
        if let (Some(tr), Some(tl), Some(ir), Some(il)) = (m.token_rem, m.token_loc, m.id_rem, m.id_loc) {
            let _ = write!(out, " token:{tr:04x}(id:{ir})/{tl:04x}(id:{il})");
        }
        let num = |out: &mut String, name: &str, v: u64| {
            let _ = if v7 { write!(out, " {name}:{v}") } else { write!(out, " {name}:{v:x}") };
        };
        if let Some(v) = m.map_seq {
            num(&mut out, "seq", v);
        }
        if let Some(v) = m.map_sfseq {
            num(&mut out, "sfseq", v.into());
        }
        if let Some(v) = m.ssn_offset {
            num(&mut out, "ssnoff", v.into());
        }
        if let Some(v) = m.map_datalen {
            num(&mut out, "maplen", v.into());
        }
    }
    out
}

/// ` NAME:V`, V in decimal.
fn push_field(out: &mut String, name: &str, v: u64) {
    out.push(' ');
    out.push_str(name);
    out.push(':');
    push_decimal(out, v);
}

/// ` NAME:V` for a signed V (ss prints these fields with `%d`).
fn push_signed_field(out: &mut String, name: &str, v: i64) {
    out.push(' ');
    out.push_str(name);
    out.push(':');
    if v < 0 {
        out.push('-');
    }
    push_decimal(out, v.unsigned_abs());
}

/// ss's `sprint_bw()`, appended to `out`: bits per second with a k/M/G/T suffix (`%.3g`),
/// or `%.0f` with `-n`.
fn push_bw(out: &mut String, numeric: bool, bw: f64) {
    if numeric {
        push_f0(out, bw);
        return;
    }
    let (v, prec, unit) = if bw >= 1e12 {
        (bw / 1e12, 3, "T")
    } else if bw >= 1e9 {
        (bw / 1e9, 3, "G")
    } else if bw >= 1e6 {
        (bw / 1e6, 3, "M")
    } else if bw >= 1e3 {
        (bw / 1e3, 3, "k")
    } else {
        (bw, 6, "")
    };
    push_g(out, v, prec);
    out.push_str(unit);
}

/// `printf("%.0f", v)`, appended to `out`.
fn push_f0(out: &mut String, v: f64) {
    use std::fmt::Write as _;
    // Below 2^53 a double's integer and fractional parts are exact, and so is the
    // rounding (to nearest, ties to even) done on them; beyond, the general formatter.
    if (0.0..9.0e15).contains(&v) {
        let int = v.trunc();
        let frac = v - int;
        // In range: `int` is a whole number below 2^53.
        let mut n = int as u64;
        if frac > 0.5 || (frac == 0.5 && n % 2 == 1) {
            n += 1;
        }
        push_decimal(out, n);
    } else {
        let _ = write!(out, "{v:.0}");
    }
}

/// `printf("%g", us / 1000.0)`: a time in microseconds printed in milliseconds, as ss
/// prints rto, rtt, ato and the like. Below 1000 ms the value has at most six significant
/// digits (three after the point), which %g prints as they are: written from the
/// integer, without formatting a float (`-tani` prints several per socket).
fn push_ms(out: &mut String, us: u32) {
    if us >= 1_000_000 {
        push_g(out, f64::from(us) / 1000.0, 6);
        return;
    }
    let (int, frac) = (us / 1000, us % 1000);
    push_decimal(out, u64::from(int));
    if frac != 0 {
        let digits = [b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8];
        let used = if frac % 100 == 0 {
            1
        } else if frac % 10 == 0 {
            2
        } else {
            3
        };
        out.push('.');
        out.push_str(std::str::from_utf8(&digits[..used]).unwrap_or("0"));
    }
}

/// C's `printf("%.*g", prec, v)` for finite values: `prec` significant digits, trailing
/// zeros removed, exponent form when the exponent is below -4 or at least `prec`.
#[must_use]
pub fn c_g(v: f64, prec: usize) -> String {
    let mut out = String::new();
    push_g(&mut out, v, prec);
    out
}

/// Room for `{:.*e}` of a double to 17 significant digits (`-d.dddddddddddddddde-308`).
const SCI_MAX: usize = 32;

/// A stack buffer for one number's text.
struct SciBuf {
    bytes: [u8; SCI_MAX],
    len: usize,
}

impl std::fmt::Write for SciBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dest = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// [`c_g`], appended to `out`, without allocating. `prec` is taken within 1..=24 (ss asks
/// for 3 and 6; a double has 17 significant digits).
pub fn push_g(out: &mut String, v: f64, prec: usize) {
    use std::fmt::Write as _;
    let prec = prec.clamp(1, 24);
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    if !v.is_finite() {
        out.push_str(if v.is_nan() {
            "nan"
        } else if v > 0.0 {
            "inf"
        } else {
            "-inf"
        });
        return;
    }
    let negative = v < 0.0;
    // The `prec` significant digits, as printf rounds them (to nearest, ties to even on
    // the exact binary value), and the decimal exponent of the first (%g's X).
    let mut digits = [0u8; SCI_MAX];
    let x = if let Some((mut n, x)) = significant_digits(v.abs(), prec) {
        for d in digits[..prec].iter_mut().rev() {
            // A digit: below 10.
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        x
    } else {
        // Rust's `{:e}` rounds exactly as printf does, so its exponent is X.
        // At most 24 digits: `d.` then 23, `e` and the exponent fit the buffer.
        let mut buf = SciBuf { bytes: [0; SCI_MAX], len: 0 };
        let _ = write!(buf, "{:.*e}", prec - 1, v.abs());
        let sci = std::str::from_utf8(&buf.bytes[..buf.len]).unwrap_or("0e0");
        let (mant, exp) = sci.split_once('e').unwrap_or((sci, "0"));
        for (d, b) in digits.iter_mut().zip(mant.bytes().filter(u8::is_ascii_digit)) {
            *d = b;
        }
        exp.parse().unwrap_or(0)
    };
    let digits = std::str::from_utf8(&digits[..prec]).unwrap_or("0");
    if negative {
        out.push('-');
    }
    // The mantissa's digits: one, then the rest after the point.
    let (lead, rest) = digits.split_at(1);
    let p = i32::try_from(prec).unwrap_or(i32::MAX);
    if x < -4 || x >= p {
        out.push_str(lead);
        let rest = rest.trim_end_matches('0');
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs());
        return;
    }
    // The same `prec` significant digits, placed by the exponent: printf rounds once, so
    // they are the digits of the fixed form too (no second, slower formatting).
    match usize::try_from(x) {
        Ok(int) => {
            // `int` < prec: the integer part is the lead digit and `int` more.
            out.push_str(lead);
            out.push_str(&rest[..int]);
            let frac = rest[int..].trim_end_matches('0');
            if !frac.is_empty() {
                out.push('.');
                out.push_str(frac);
            }
        }
        Err(_) => {
            out.push_str("0.");
            for _ in 1..x.unsigned_abs() {
                out.push('0');
            }
            out.push_str(lead);
            out.push_str(rest.trim_end_matches('0'));
        }
    }
}

/// `10^k` for `k` in 0..=22: every one exact in an f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// `v` (positive, finite) rounded to `prec` significant digits as printf rounds it, as the
/// integer of those digits and the decimal exponent of the first; `None` when that cannot
/// be told for sure in floating point (the general formatter decides then).
///
/// `v` is scaled by an exact power of ten in one rounded operation, so the scaled value is
/// within 2^-53 of its own size of the exact one: below 10^6 (six digits at most), within
/// 1.2e-10. Rounding it is then exact unless it lies that close to a half, which is left
/// to the formatter (a tie on the exact value rounds to even there).
fn significant_digits(v: f64, prec: usize) -> Option<(u64, i32)> {
    if prec == 0 || prec > 6 || !(1e-4..1e15).contains(&v) {
        return None;
    }
    let p = i32::try_from(prec).ok()?;
    let (lo, hi) = (POW10[prec - 1], POW10[prec]);
    // log10 may be one off at a power of ten: the range check below corrects it.
    #[expect(clippy::cast_possible_truncation, reason = "v is within 1e-4..1e15: the log is within -4..15")]
    let mut x = v.log10().floor() as i32;
    for _ in 0..3 {
        let k = p - 1 - x;
        let scale = POW10.get(usize::try_from(k.unsigned_abs()).ok()?)?;
        let scaled = if k >= 0 { v * scale } else { v / scale };
        if scaled < lo {
            x -= 1;
            continue;
        }
        if scaled >= hi {
            x += 1;
            continue;
        }
        let int = scaled.trunc();
        let frac = scaled - int;
        if (frac - 0.5).abs() < 1e-9 {
            return None;
        }
        // Below 10^6: exact in a u64.
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "int is within 1..1e6")]
        let mut n = int as u64 + u64::from(frac > 0.5);
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "hi is 10^prec, prec <= 6")]
        if n == hi as u64 {
            n /= 10;
            x += 1;
        }
        return Some((n, x));
    }
    None
}

#[cfg(test)]
mod tests {
    //! `-e -m -i` text, checked against what ss 6.1 printed for the same values.
    use super::*;
    use crate::model::socket::{InetDetails, TcpInfo};
    use crate::render::inet::{shutdown_text, sockopt_text};

    /// libc's `printf(fmt, prec, v)` for a format taking an int and a double.
    fn libc_printf(fmt: &std::ffi::CStr, prec: usize, v: f64) -> String {
        let mut buf = [0u8; 400];
        // SAFETY: the buffer's size is passed; the formats used take an int and a double.
        let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), prec as libc::c_int, v) };
        String::from_utf8(buf[..usize::try_from(n).unwrap()].to_vec()).unwrap()
    }

    fn sprint_bw(numeric: bool, bw: f64) -> String {
        let mut out = String::new();
        push_bw(&mut out, numeric, bw);
        out
    }

    #[test]
    fn milliseconds_and_whole_numbers_match_libc_printf() {
        let ms = |us: u32| {
            let mut out = String::new();
            push_ms(&mut out, us);
            out
        };
        let f0 = |v: f64| {
            let mut out = String::new();
            push_f0(&mut out, v);
            out
        };
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut us = vec![0, 1, 5, 10, 50, 100, 999, 1000, 1001, 1010, 1100, 999_999, 1_000_000, 1_234_567, u32::MAX];
        for _ in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            // Every magnitude: shift a random word right by 0..32 bits.
            us.push(u32::try_from((x >> 32) >> ((x >> 3) % 32)).unwrap());
        }
        for u in us {
            assert_eq!(ms(u), libc_printf(c"%.*g", 6, f64::from(u) / 1000.0), "{u} us");
            let rate = f64::from(u) * 8_000_000.0 / 1234.0;
            assert_eq!(f0(rate), libc_printf(c"%.*f", 0, rate), "{rate}");
            assert_eq!(f0(f64::from(u) + 0.5), libc_printf(c"%.*f", 0, f64::from(u) + 0.5), "{u}.5");
        }
        for v in [0.0, 0.5, 1.5, 2.5, 8.9e15, 9.1e15, 1e300] {
            assert_eq!(f0(v), libc_printf(c"%.*f", 0, v), "{v}");
        }
    }

    #[test]
    fn c_g_matches_libc_printf_on_many_values() {
        let libc_g = |v: f64, prec: usize| libc_printf(c"%.*g", prec, v);
        // A fixed pseudo-random sequence over many magnitudes, and values that round up
        // to the next power of ten.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let mantissa = (x >> 11) as f64 / (1u64 << 53) as f64;
            let exp = i32::try_from((x >> 3) % 24).unwrap() - 8;
            let v = (mantissa * 10f64.powi(exp)) * if i % 7 == 0 { -1.0 } else { 1.0 };
            let prec = 1 + (i % 8);
            assert_eq!(c_g(v, prec), libc_g(v, prec), "{v:e} %.{prec}g");
        }
        // Halves and near-halves at every scale the fast path takes (ties on the exact
        // binary value round to even; those a hair off do not), and rates as ss prints them.
        for n in 0..3_000u32 {
            for scale in [1e-4, 1e-3, 0.1, 1.0, 10.0, 1e3, 1e6, 1e9, 1e12] {
                let v = (f64::from(n) + 0.5) * scale;
                for prec in [1, 2, 3, 4, 6] {
                    assert_eq!(c_g(v, prec), libc_g(v, prec), "{v:e} %.{prec}g");
                }
            }
            let rate = f64::from(n) * 1_448.0 * 8_000_000.0 / 1_234.0;
            for div in [1e3, 1e6, 1e9] {
                assert_eq!(c_g(rate / div, 3), libc_g(rate / div, 3), "{rate} / {div} %.3g");
            }
        }
        for v in [9.9995, 0.000_099_999_5, 99_999.5, 1e-5, 0.0001, 123_456.0, 999_999.5] {
            for prec in 1..=7 {
                assert_eq!(c_g(v, prec), libc_g(v, prec), "{v:e} %.{prec}g");
            }
        }
    }

    #[test]
    fn md5_keys_as_ss_prints_them() {
        use crate::model::socket::Md5Key;
        let mut v4 = [0u8; 16];
        v4[..4].copy_from_slice(&[127, 0, 0, 1]);
        // Captured from ss 6.1 (its key bytes, which it prints at the top of its output).
        let k = Md5Key { family: 2, prefixlen: 32, addr: v4, key: b"se cr,et\x01\\".to_vec() };
        assert_eq!(md5_key_text(&k, None), "127.0.0.1/32=se\\040cr\\054et\\001\\134");
        let k6 = Md5Key {
            family: 10,
            prefixlen: 64,
            addr: "2001:db8::".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            key: b"abc".to_vec(),
        };
        assert_eq!(md5_key_text(&k6, None), "2001:db8::/64=abc");
    }

    #[test]
    fn ulp_text_as_ss_prints_it() {
        use crate::model::socket::{MptcpSubflow, TlsInfo, UlpInfo};
        // Captured from ss 6.1 -tni on an MPTCP subflow.
        let sf = MptcpSubflow {
            flags: Some(0xc3),
            token_rem: Some(0),
            token_loc: Some(0x1a20_b94a),
            id_rem: Some(0),
            id_loc: Some(0),
            map_seq: Some(0xea76_6b8b_1837_e988),
            map_sfseq: Some(1),
            ssn_offset: Some(0x15d8_235e),
            map_datalen: Some(0),
        };
        let u = UlpInfo { name: Some("mptcp".into()), tls: None, mptcp: Some(sf) };
        assert_eq!(
            ulp_text(&u, false),
            " tcp-ulp-mptcp flags:Mmec token:0000(id:0)/1a20b94a(id:0) seq:ea766b8b1837e988 sfseq:1 ssnoff:15d8235e maplen:0"
        );
        // ss 7.1 prints the mapping in decimal.
        assert_eq!(
            ulp_text(&u, true),
            " tcp-ulp-mptcp flags:Mmec token:0000(id:0)/1a20b94a(id:0) seq:16894809297277938056 sfseq:1 ssnoff:366486366 maplen:0"
        );
        let tls = TlsInfo {
            version: Some(0x0304),
            cipher: Some(52),
            txconf: Some(3),
            rxconf: Some(9),
            zc_ro_tx: true,
            rx_no_pad: true,
        };
        let u = UlpInfo { name: Some("tls".into()), tls: Some(tls), mptcp: None };
        assert_eq!(
            ulp_text(&u, false),
            " tcp-ulp-tls version: 1.3 cipher: aes-gcm-256 rxconf: unknown(9) txconf: hw zc_ro_tx"
        );
        assert_eq!(
            ulp_text(&u, true),
            " tcp-ulp-tls version: 1.3 cipher: aes-gcm-256 rxconf: unknown(9) txconf: hw zc_ro_tx no_pad_rx"
        );
    }

    #[test]
    fn c_g_matches_printf() {
        let cases: &[(f64, usize, &str)] = &[
            (0.0, 6, "0"),
            (5.162, 6, "5.162"),
            (0.008, 6, "0.008"),
            (208.0, 6, "208"),
            (2.886_718_75, 6, "2.88672"),
            (123_456_789.0, 6, "1.23457e+08"),
            (0.000_012_3, 6, "1.23e-05"),
            (35.328, 3, "35.3"),
            (999.9, 3, "1e+03"),
            (6.872_48, 3, "6.87"),
        ];
        for &(v, p, want) in cases {
            assert_eq!(c_g(v, p), want, "{v} %.{p}g");
        }
        assert_eq!(sprint_bw(false, 35_328_000_000.0), "35.3G");
        assert_eq!(sprint_bw(false, 657_010_461.0), "657M");
        assert_eq!(sprint_bw(true, 657_010_461.4), "657010461");
        assert_eq!(sprint_bw(false, 512.0), "512");
    }

    #[test]
    fn tcp_info_line_as_ss_prints_it() {
        // The FIN-WAIT-2 client of a netns fixture, as `ss -tnemi` printed it.
        let info = TcpInfo {
            options: 1 | 2 | 4,
            snd_wscale: 10,
            rcv_wscale: 10,
            rto: 208_000,
            rtt: 5162,
            rttvar: 10_285,
            snd_mss: 35_328,
            pmtu: 65_535,
            rcv_mss: 536,
            advmss: 65_483,
            snd_cwnd: 12,
            snd_ssthresh: u32::MAX,
            bytes_sent: 1000,
            bytes_acked: 1002,
            segs_out: 4,
            segs_in: 3,
            data_segs_out: 1,
            last_data_sent: 1504,
            last_data_recv: 1504,
            last_ack_recv: 1460,
            pacing_rate: 34_655_150_893,
            max_pacing_rate: u64::MAX,
            delivery_rate: 859_060,
            delivered: 3,
            busy_time: 44_000,
            rcv_space: 65_495,
            rcv_ssthresh: 65_495,
            min_rtt: 8,
            snd_wnd: 70_656,
            reordering: 3,
            ..TcpInfo::default()
        };
        let d = InetDetails {
            skmem: Some(vec![0, 131_072, 0, 3_939_840, 0, 0, 0, 0, 0]),
            tcp_info: Some(info),
            cong: Some("bbr".into()),
            bbr: Some([121_032_704, 1, 8, 739, 739]),
            ..InetDetails::default()
        };
        let opts = crate::cli::parse_ss_args(["-tnemi"].map(std::ffi::OsString::from)).expect("options");
        let mut text = String::new();
        push_tcp_info(&mut text, &opts.style, TcpState::FinWait2 as u8, &d, &Names::fixed(None, (32768, 60999), &[]));
        assert_eq!(
            text,
            " skmem:(r0,rb131072,t0,tb3939840,f0,w0,o0,bl0,d0) ts sack bbr wscale:10,10 rto:208 \
             rtt:5.162/10.285 mss:35328 pmtu:65535 rcvmss:536 advmss:65483 cwnd:12 bytes_sent:1000 \
             bytes_acked:1002 segs_out:4 segs_in:3 data_segs_out:1 bbr:(bw:35328000000bps,mrtt:0.008,\
             pacing_gain:2.88672,cwnd_gain:2.88672) send 657010461bps lastsnd:1504 lastrcv:1504 \
             lastack:1460 pacing_rate 277241207144bps delivery_rate 6872480bps delivered:3 busy:44ms \
             rcv_space:65495 rcv_ssthresh:65495 minrtt:0.008 snd_wnd:70656"
        );
        assert_eq!(shutdown_text(2), " <--");
        assert_eq!(shutdown_text(0), " <->");
        // struct inet_diag_sockopt, low byte first: what ss 6.1 prints for a TCP v4
        // socket, then every flag in ss's order.
        assert_eq!(sockopt_text(0x52), " is_icsk mc_loop mc_all");
        assert_eq!(
            sockopt_text(0x07ff),
            " recverr is_icsk freebind hdrincl mc_loop transparent mc_all nodefrag bind_addr_no_port \
             recverr_rfc4884 defer_connect"
        );
        assert_eq!(sockopt_text(0xf800), "");
    }
}
