//! The attributes after an `inet_diag_msg` that `ss -e -m -i` print
//! (include/uapi/linux/inet_diag.h), decoded into [`InetDetails`], and `struct tcp_info`
//! (include/uapi/linux/tcp.h), whose size grows with kernel versions: every read is
//! length-checked, fields past what the kernel sent are 0 (ss zero-fills the same way),
//! and bytes past what sockstat knows are ignored. No I/O here.
//!
//! Sits between the framing (`nlmsg`, whose attribute walk it uses; `mptcp`, whose
//! `mptcp_info` an MPTCP socket's `INET_DIAG_INFO` holds) and the inet decoder (`inet`),
//! which calls it; it never imports `inet`.

use super::error::MalformedKind;
use super::mptcp::parse_mptcp_info;
use super::nlmsg::{Attr, attributes, meminfo_words};
use crate::model::socket::{InetDetails, SkStorageValue, TcpInfo};

/// `enum { INET_DIAG_NONE, INET_DIAG_MEMINFO, ... }` (include/uapi/linux/inet_diag.h).
pub(crate) const INET_DIAG_MEMINFO: u16 = 1;
pub(crate) const INET_DIAG_INFO: u16 = 2;
pub(crate) const INET_DIAG_VEGASINFO: u16 = 3;
pub(crate) const INET_DIAG_CONG: u16 = 4;
const INET_DIAG_TOS: u16 = 5;
const INET_DIAG_TCLASS: u16 = 6;
pub(crate) const INET_DIAG_SKMEMINFO: u16 = 7;
const INET_DIAG_SHUTDOWN: u16 = 8;
const INET_DIAG_DCTCPINFO: u16 = 9;
const INET_DIAG_SKV6ONLY: u16 = 11;
const INET_DIAG_MARK: u16 = 15;
const INET_DIAG_BBRINFO: u16 = 16;
const INET_DIAG_CLASS_ID: u16 = 17;
const INET_DIAG_CGROUP_ID: u16 = 21;
const INET_DIAG_SOCKOPT: u16 = 22;
const INET_DIAG_ULP_INFO: u16 = 19;
const INET_DIAG_MD5SIG: u16 = 18;
pub(crate) const INET_DIAG_SK_BPF_STORAGES: u16 = 20;
/// `SK_DIAG_BPF_STORAGE` and its nested `SK_DIAG_BPF_STORAGE_MAP_ID`, `_MAP_VALUE`
/// (include/uapi/linux/sock_diag.h).
const SK_DIAG_BPF_STORAGE: u16 = 1;
const SK_DIAG_BPF_STORAGE_MAP_ID: u16 = 2;
const SK_DIAG_BPF_STORAGE_MAP_VALUE: u16 = 3;
/// `sizeof(struct tcp_diag_md5sig)`: family, prefixlen, keylen (u16), addr[4] (u32), key[80].
const MD5SIG_LEN: usize = 100;

/// The `idiag_ext` bits ss sets for `-m` (MEMINFO, SKMEMINFO) and `-i` (INFO, VEGASINFO,
/// CONG): bit `n - 1` asks for attribute `n` (ss.c `sockdiag_send`).
#[must_use]
pub fn extension_bits(mem: bool, info: bool) -> u8 {
    let bit = |a: u16| 1u8 << (a - 1);
    let mut ext = 0;
    if mem {
        ext |= bit(INET_DIAG_MEMINFO) | bit(INET_DIAG_SKMEMINFO);
    }
    if info {
        ext |= bit(INET_DIAG_INFO) | bit(INET_DIAG_VEGASINFO) | bit(INET_DIAG_CONG);
    }
    ext
}

/// The `idiag_ext` bits ss sets for `--tos` (TOS, TCLASS). The kernel answers TCLASS only
/// for AF_INET6 sockets and sends CLASS_ID along with TCLASS.
#[must_use]
pub fn tos_extension_bits() -> u8 {
    (1u8 << (INET_DIAG_TOS - 1)) | (1u8 << (INET_DIAG_TCLASS - 1))
}

/// The TCP decoding of [`parse_details_of`], for the tests.
#[cfg(test)]
pub(crate) fn parse_details(attrs: &[u8], base: usize) -> Result<InetDetails, MalformedKind> {
    parse_details_of(attrs, base, false, 0)
}

/// Decodes the attributes that follow the fixed `inet_diag_msg` (`base` is their offset in
/// the message payload, for error messages). `mptcp`: the socket is an MPTCP one, whose
/// `INET_DIAG_INFO` is a `struct mptcp_info` (net/mptcp/mptcp_diag.c), not a `tcp_info`.
/// `datagram_at`: the message payload's offset in its datagram (0 when unknown).
///
/// # Errors
/// A malformed attribute, or one of a fixed-size type that is too short.
pub(crate) fn parse_details_of(
    attrs: &[u8],
    base: usize,
    mptcp: bool,
    datagram_at: usize,
) -> Result<InetDetails, MalformedKind> {
    let mut d = InetDetails::default();
    for a in attributes(attrs, base)? {
        match a.kind {
            INET_DIAG_MARK => d.mark = a.u32("INET_DIAG_MARK")?,
            INET_DIAG_CGROUP_ID => d.cgroup_id = u64::from_ne_bytes(a.array::<8>("INET_DIAG_CGROUP_ID")?),
            INET_DIAG_TOS => d.tos = Some(a.array::<1>("INET_DIAG_TOS")?[0]),
            INET_DIAG_TCLASS => d.tclass = Some(a.array::<1>("INET_DIAG_TCLASS")?[0]),
            INET_DIAG_CLASS_ID => d.class_id = Some(a.u32("INET_DIAG_CLASS_ID")?),
            // struct inet_diag_sockopt: two bytes of bitfields (ss ignores a shorter one).
            INET_DIAG_SOCKOPT => {
                let b = a.array::<2>("INET_DIAG_SOCKOPT")?;
                d.sockopt = Some(u16::from_le_bytes(b));
            }
            INET_DIAG_SHUTDOWN => d.shutdown = Some(a.array::<1>("INET_DIAG_SHUTDOWN")?[0]),
            INET_DIAG_SKV6ONLY => d.v6only = Some(a.array::<1>("INET_DIAG_SKV6ONLY")?[0]),
            INET_DIAG_SKMEMINFO => d.skmem = Some(meminfo_words(&a, "INET_DIAG_SKMEMINFO")?),
            INET_DIAG_MEMINFO => d.meminfo = Some(fixed_words::<4>(&a, "INET_DIAG_MEMINFO")?),
            INET_DIAG_INFO if mptcp => d.mptcp_info = Some(Box::new(parse_mptcp_info(a.data))),
            INET_DIAG_INFO => {
                d.tcp_info = Some(parse_tcp_info(a.data));
                d.tcp_info_len = u32::try_from(a.data.len()).unwrap_or(u32::MAX);
            }
            // A NUL-terminated name; ss copies at most 15 bytes of it.
            INET_DIAG_CONG => {
                let name = a.data.split(|&b| b == 0).next().unwrap_or_default();
                let name = name.get(..15).unwrap_or(name);
                d.cong = Some(String::from_utf8_lossy(name).into_owned());
            }
            INET_DIAG_VEGASINFO => d.vegas = Some(fixed_words::<4>(&a, "INET_DIAG_VEGASINFO")?),
            INET_DIAG_DCTCPINFO => {
                // struct tcp_dctcp_info: __u16 enabled, __u16 ce_state, __u32 alpha,
                // ab_ecn, ab_tot (16 bytes).
                let b = a.array::<16>("INET_DIAG_DCTCPINFO")?;
                let u16_at = |o: usize| u32::from(u16::from_ne_bytes([b[o], b[o + 1]]));
                let u32_at = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
                d.dctcp = Some([u16_at(0), u16_at(2), u32_at(4), u32_at(8), u32_at(12)]);
            }
            INET_DIAG_ULP_INFO => d.ulp = Some(Box::new(parse_ulp(&a)?)),
            INET_DIAG_MD5SIG => d.md5 = Some(parse_md5(&a)?),
            INET_DIAG_SK_BPF_STORAGES => d.bpf_storages = parse_bpf_storages(&a, datagram_at)?,
            INET_DIAG_BBRINFO => {
                // ss copies min(payload, sizeof(struct tcp_bbr_info)) into a zeroed struct.
                let mut w = [0u32; 5];
                for (i, c) in a.data.chunks_exact(4).take(5).enumerate() {
                    w[i] = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
                }
                d.bbr = Some(w);
            }
            _ => {}
        }
    }
    Ok(d)
}

/// `INET_DIAG_SK_BPF_STORAGES`: each `SK_DIAG_BPF_STORAGE` nest with a map id, as ss's
/// `show_sk_bpf_storages` reads them (a nest without a map id is skipped, as there; one
/// without a value, which ss would dereference, is an error).
fn parse_bpf_storages(a: &Attr<'_>, datagram_at: usize) -> Result<Vec<SkStorageValue>, MalformedKind> {
    let mut out = Vec::new();
    for stg in attributes(a.data, a.at)? {
        if stg.kind != SK_DIAG_BPF_STORAGE {
            continue;
        }
        let mut id = None;
        let mut value = None;
        for f in attributes(stg.data, stg.at)? {
            match f.kind {
                SK_DIAG_BPF_STORAGE_MAP_ID => id = Some(f.u32("SK_DIAG_BPF_STORAGE_MAP_ID")?),
                // `f.at` counts from the message payload, which starts `datagram_at` into
                // the datagram.
                SK_DIAG_BPF_STORAGE_MAP_VALUE => value = Some((f.data.to_vec(), ((datagram_at + f.at) % 8) as u8)),
                _ => {}
            }
        }
        if let Some(map_id) = id {
            let (value, misalign) =
                value.ok_or(MalformedKind::MissingAttribute { what: "SK_DIAG_BPF_STORAGE_MAP_VALUE" })?;
            out.push(SkStorageValue { map_id, value, misalign });
        }
    }
    Ok(out)
}

/// `INET_DIAG_MD5SIG`: whole `struct tcp_diag_md5sig`s (a partial one is an error).
fn parse_md5(a: &Attr<'_>) -> Result<Vec<crate::model::socket::Md5Key>, MalformedKind> {
    if a.data.is_empty() || !a.data.len().is_multiple_of(MD5SIG_LEN) {
        let needed = a.data.len().div_ceil(MD5SIG_LEN).max(1) * MD5SIG_LEN;
        return Err(MalformedKind::ShortAttribute {
            what: "INET_DIAG_MD5SIG",
            at: a.at,
            needed,
            available: a.data.len(),
        });
    }
    Ok(a.data
        .chunks_exact(MD5SIG_LEN)
        .map(|c| {
            let keylen = usize::from(u16::from_ne_bytes([c[2], c[3]])).min(80);
            let mut addr = [0u8; 16];
            addr.copy_from_slice(&c[4..20]);
            crate::model::socket::Md5Key { family: c[0], prefixlen: c[1], addr, key: c[20..20 + keylen].to_vec() }
        })
        .collect())
}

/// `INET_DIAG_ULP_INFO`: `INET_ULP_INFO_NAME` (1, a string), `INET_ULP_INFO_TLS` (2) and
/// `INET_ULP_INFO_MPTCP` (3), both nested.
fn parse_ulp(a: &Attr<'_>) -> Result<crate::model::socket::UlpInfo, MalformedKind> {
    use crate::model::socket::{MptcpSubflow, TlsInfo, UlpInfo};
    let mut u = UlpInfo::default();
    for inner in attributes(a.data, a.at)? {
        match inner.kind {
            1 => {
                let name = inner.data.split(|&b| b == 0).next().unwrap_or_default();
                u.name = Some(String::from_utf8_lossy(name).into_owned());
            }
            2 => {
                let mut t = TlsInfo::default();
                for f in attributes(inner.data, inner.at)? {
                    let v = || f.array::<2>("TLS_INFO").map(u16::from_ne_bytes);
                    match f.kind {
                        1 => t.version = Some(v()?),
                        2 => t.cipher = Some(v()?),
                        3 => t.txconf = Some(v()?),
                        4 => t.rxconf = Some(v()?),
                        // TLS_INFO_ZC_RO_TX, TLS_INFO_RX_NO_PAD: flag attributes.
                        5 => t.zc_ro_tx = true,
                        6 => t.rx_no_pad = true,
                        _ => {}
                    }
                }
                u.tls = Some(t);
            }
            3 => {
                let mut m = MptcpSubflow::default();
                for f in attributes(inner.data, inner.at)? {
                    let what = "MPTCP_SUBFLOW_ATTR";
                    match f.kind {
                        1 => m.token_rem = Some(f.u32(what)?),
                        2 => m.token_loc = Some(f.u32(what)?),
                        4 => m.map_seq = Some(u64::from_ne_bytes(f.array::<8>(what)?)),
                        5 => m.map_sfseq = Some(f.u32(what)?),
                        6 => m.ssn_offset = Some(f.u32(what)?),
                        7 => m.map_datalen = Some(f.array::<2>(what).map(u16::from_ne_bytes).map(u32::from)?),
                        8 => m.flags = Some(f.u32(what)?),
                        9 => m.id_rem = Some(f.array::<1>(what)?[0]),
                        10 => m.id_loc = Some(f.array::<1>(what)?[0]),
                        _ => {}
                    }
                }
                u.mptcp = Some(m);
            }
            _ => {}
        }
    }
    Ok(u)
}

/// An array of u32 of at least `min` words (a trailing partial word is ignored).
fn words(a: &Attr<'_>, min: usize, what: &'static str) -> Result<Vec<u32>, MalformedKind> {
    if a.data.len() < min * 4 {
        return Err(MalformedKind::ShortAttribute { what, at: a.at, needed: min * 4, available: a.data.len() });
    }
    Ok(a.data.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect())
}

fn fixed_words<const N: usize>(a: &Attr<'_>, what: &'static str) -> Result<[u32; N], MalformedKind> {
    let v = words(a, N, what)?;
    let mut out = [0u32; N];
    out.copy_from_slice(&v[..N]);
    Ok(out)
}

/// Decodes `struct tcp_info` of any length: the kernel sends `sizeof(struct tcp_info)` of
/// its own version, which may be shorter (older kernels) or longer (newer) than the layout
/// below. Offsets are those of include/uapi/linux/tcp.h; bitfields are as laid out on a
/// little-endian machine by GCC (low bits first), which is what this tool targets.
#[must_use]
pub fn parse_tcp_info(data: &[u8]) -> TcpInfo {
    let u8_at = |o: usize| data.get(o).copied().unwrap_or(0);
    let u32_at = |o: usize| data.get(o..o + 4).map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |o: usize| data.get(o..o + 8).and_then(|b| b.first_chunk::<8>()).map_or(0, |b| u64::from_ne_bytes(*b));
    let wscale = u8_at(6);
    TcpInfo {
        state: u8_at(0),
        ca_state: u8_at(1),
        retransmits: u8_at(2),
        probes: u8_at(3),
        backoff: u8_at(4),
        options: u8_at(5),
        snd_wscale: wscale & 0x0f,
        rcv_wscale: wscale >> 4,
        delivery_rate_app_limited: u8_at(7) & 1 != 0,
        rto: u32_at(8),
        ato: u32_at(12),
        snd_mss: u32_at(16),
        rcv_mss: u32_at(20),
        unacked: u32_at(24),
        sacked: u32_at(28),
        lost: u32_at(32),
        retrans: u32_at(36),
        fackets: u32_at(40),
        last_data_sent: u32_at(44),
        last_ack_sent: u32_at(48),
        last_data_recv: u32_at(52),
        last_ack_recv: u32_at(56),
        pmtu: u32_at(60),
        rcv_ssthresh: u32_at(64),
        rtt: u32_at(68),
        rttvar: u32_at(72),
        snd_ssthresh: u32_at(76),
        snd_cwnd: u32_at(80),
        advmss: u32_at(84),
        reordering: u32_at(88),
        rcv_rtt: u32_at(92),
        rcv_space: u32_at(96),
        total_retrans: u32_at(100),
        pacing_rate: u64_at(104),
        max_pacing_rate: u64_at(112),
        bytes_acked: u64_at(120),
        bytes_received: u64_at(128),
        segs_out: u32_at(136),
        segs_in: u32_at(140),
        notsent_bytes: u32_at(144),
        min_rtt: u32_at(148),
        data_segs_in: u32_at(152),
        data_segs_out: u32_at(156),
        delivery_rate: u64_at(160),
        busy_time: u64_at(168),
        rwnd_limited: u64_at(176),
        sndbuf_limited: u64_at(184),
        delivered: u32_at(192),
        delivered_ce: u32_at(196),
        bytes_sent: u64_at(200),
        bytes_retrans: u64_at(208),
        dsack_dups: u32_at(216),
        reord_seen: u32_at(220),
        rcv_ooopack: u32_at(224),
        snd_wnd: u32_at(228),
        rcv_wnd: u32_at(232),
        rehash: u32_at(236),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::nlmsg::test_rtattr as attr;

    /// A tcp_info of `len` bytes whose every u32 slot holds its offset (so a field read at
    /// the wrong offset shows), with the byte fields set apart.
    fn info(len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        for o in (8..len.saturating_sub(3)).step_by(4) {
            b[o..o + 4].copy_from_slice(&u32::try_from(o).expect("small").to_ne_bytes());
        }
        for (i, v) in [1u8, 2, 3, 4, 5, 0x07, 0x97, 1].iter().enumerate().take(len) {
            b[i] = *v;
        }
        b
    }

    #[test]
    fn md5_keys_whole_or_an_error() {
        let mut rec = vec![0u8; 100];
        rec[0] = 2;
        rec[1] = 32;
        rec[2..4].copy_from_slice(&3u16.to_ne_bytes());
        rec[4..8].copy_from_slice(&[10, 1, 0, 0]);
        rec[20..23].copy_from_slice(b"abc");
        let two = [rec.clone(), rec.clone()].concat();
        let d = parse_details(&attr(INET_DIAG_MD5SIG, &two), 0).expect("two keys");
        let keys = d.md5.expect("keys");
        assert_eq!(keys.len(), 2);
        assert_eq!(
            (keys[0].family, keys[0].prefixlen, &keys[0].addr[..4], &keys[0].key[..]),
            (2, 32, &[10, 1, 0, 0][..], &b"abc"[..])
        );
        let err = parse_details(&attr(INET_DIAG_MD5SIG, &two[..150]), 0).unwrap_err();
        assert!(
            matches!(err, MalformedKind::ShortAttribute { what: "INET_DIAG_MD5SIG", needed: 200, available: 150, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn ulp_info_of_ktls_and_an_mptcp_subflow() {
        use crate::model::socket::{MptcpSubflow, TlsInfo, UlpInfo};
        let tls = [
            attr(1, &0x0303u16.to_ne_bytes()),
            attr(2, &51u16.to_ne_bytes()),
            attr(3, &2u16.to_ne_bytes()),
            attr(4, &1u16.to_ne_bytes()),
            attr(6, &[]),
        ]
        .concat();
        let ulp = [attr(1, b"tls\0"), attr(2, &tls)].concat();
        let d = parse_details(&attr(INET_DIAG_ULP_INFO, &ulp), 0).expect("well formed");
        let want = TlsInfo {
            version: Some(0x0303),
            cipher: Some(51),
            txconf: Some(2),
            rxconf: Some(1),
            zc_ro_tx: false,
            rx_no_pad: true,
        };
        assert_eq!(d.ulp, Some(Box::new(UlpInfo { name: Some("tls".into()), tls: Some(want), mptcp: None })));
        let sf = [
            attr(8, &0xc3u32.to_ne_bytes()),
            attr(1, &0u32.to_ne_bytes()),
            attr(2, &0x1a20_b94au32.to_ne_bytes()),
            attr(9, &[0]),
            attr(10, &[2]),
            attr(4, &0xea76_6b8b_1837_e988u64.to_ne_bytes()),
            attr(5, &1u32.to_ne_bytes()),
            attr(6, &0x15d8_235eu32.to_ne_bytes()),
            attr(7, &5u16.to_ne_bytes()),
        ]
        .concat();
        let ulp = [attr(1, b"mptcp\0"), attr(3, &sf)].concat();
        let d = parse_details(&attr(INET_DIAG_ULP_INFO, &ulp), 0).expect("well formed");
        let m = d.ulp.and_then(|u| u.mptcp).expect("subflow");
        assert_eq!(
            m,
            MptcpSubflow {
                flags: Some(0xc3),
                token_rem: Some(0),
                token_loc: Some(0x1a20_b94a),
                id_rem: Some(0),
                id_loc: Some(2),
                map_seq: Some(0xea76_6b8b_1837_e988),
                map_sfseq: Some(1),
                ssn_offset: Some(0x15d8_235e),
                map_datalen: Some(5),
            }
        );
        // A short subflow attribute is an error naming it, not a panic.
        let bad = [attr(1, b"mptcp\0"), attr(3, &attr(2, &[1, 2]))].concat();
        assert!(parse_details(&attr(INET_DIAG_ULP_INFO, &bad), 0).is_err());
    }

    #[test]
    fn tcp_info_of_every_length() {
        // 104: kernel 3.x; 232: ss 6.1's struct (ends at snd_wnd); 248: kernel 6.18.
        for len in [0usize, 7, 8, 104, 160, 231, 232, 248, 300] {
            let t = parse_tcp_info(&info(len));
            if len >= 8 {
                assert_eq!((t.snd_wscale, t.rcv_wscale, t.options), (7, 9, 7), "{len}");
                assert!(t.delivery_rate_app_limited);
            }
            assert_eq!(t.rto, if len >= 12 { 8 } else { 0 }, "{len}");
            assert_eq!(t.rtt, if len >= 72 { 68 } else { 0 }, "{len}");
            assert_eq!(t.total_retrans, if len >= 104 { 100 } else { 0 }, "{len}");
            // A u64 slot: two u32 offsets, low word first on little-endian.
            let want = if len >= 168 { 160 | 164u64 << 32 } else { 0 };
            assert_eq!(t.delivery_rate, want, "{len}");
            // A field cut in the middle by the kernel's length is 0, never partial.
            assert_eq!(t.snd_wnd, if len >= 232 { 228 } else { 0 }, "{len}");
        }
    }

    #[test]
    fn details_decoded_and_short_attributes_rejected() {
        let mut a = attr(INET_DIAG_SHUTDOWN, &[2]);
        a.extend(attr(INET_DIAG_SKV6ONLY, &[1]));
        a.extend(attr(INET_DIAG_MARK, &7u32.to_ne_bytes()));
        a.extend(attr(INET_DIAG_CGROUP_ID, &0x1234u64.to_ne_bytes()));
        let skmem: Vec<u8> = (0u32..9).flat_map(u32::to_ne_bytes).collect();
        a.extend(attr(INET_DIAG_SKMEMINFO, &skmem));
        a.extend(attr(INET_DIAG_CONG, b"cubic\0"));
        a.extend(attr(INET_DIAG_INFO, &info(104)));
        a.extend(attr(INET_DIAG_BBRINFO, &[1, 0, 0, 0, 2, 0, 0, 0]));
        let d = parse_details(&a, 72).expect("valid");
        assert_eq!((d.shutdown, d.v6only, d.mark, d.cgroup_id), (Some(2), Some(1), 7, 0x1234));
        assert_eq!(d.skmem.as_deref(), Some(&[0, 1, 2, 3, 4, 5, 6, 7, 8][..]));
        assert_eq!(d.cong.as_deref(), Some("cubic"));
        assert_eq!(d.tcp_info_len, 104);
        assert_eq!(d.bbr, Some([1, 2, 0, 0, 0]), "a short BBRINFO is zero-filled, as ss does");

        // SKMEMINFO with 6 words: ss would read past it; sockstat names it.
        let bad = attr(INET_DIAG_SKMEMINFO, &[0; 24]);
        assert_eq!(
            parse_details(&bad, 72),
            Err(MalformedKind::ShortAttribute { what: "INET_DIAG_SKMEMINFO", at: 76, needed: 28, available: 24 })
        );
        let bad = attr(INET_DIAG_CGROUP_ID, &[0; 4]);
        assert!(matches!(
            parse_details(&bad, 72),
            Err(MalformedKind::ShortAttribute { what: "INET_DIAG_CGROUP_ID", .. })
        ));
        // An attribute header claiming more than remains.
        let mut cut = attr(INET_DIAG_INFO, &info(104));
        cut.truncate(50);
        assert!(matches!(
            parse_details(&cut, 72),
            Err(MalformedKind::BadAttribute { at: 72, len: 108, available: 50 })
        ));
    }

    #[test]
    fn tos_and_sockopt_decoded_and_length_checked() {
        let mut a = attr(INET_DIAG_TOS, &[0x28]);
        a.extend(attr(INET_DIAG_TCLASS, &[0xb8]));
        a.extend(attr(INET_DIAG_CLASS_ID, &3u32.to_ne_bytes()));
        a.extend(attr(INET_DIAG_SOCKOPT, &[0x52, 0x01]));
        let d = parse_details(&a, 72).expect("valid");
        assert_eq!((d.tos, d.tclass, d.class_id, d.sockopt), (Some(0x28), Some(0xb8), Some(3), Some(0x0152)));
        assert_eq!(parse_details(&[], 72).expect("empty").tos, None);
        let bad = attr(INET_DIAG_SOCKOPT, &[0x52]);
        assert_eq!(
            parse_details(&bad, 72),
            Err(MalformedKind::ShortAttribute { what: "INET_DIAG_SOCKOPT", at: 76, needed: 2, available: 1 })
        );
        let bad = attr(INET_DIAG_CLASS_ID, &[0; 2]);
        assert!(matches!(
            parse_details(&bad, 72),
            Err(MalformedKind::ShortAttribute { what: "INET_DIAG_CLASS_ID", .. })
        ));
        let bad = attr(INET_DIAG_TOS, &[]);
        assert!(matches!(
            parse_details(&bad, 72),
            Err(MalformedKind::ShortAttribute { what: "INET_DIAG_TOS", at: 76, .. })
        ));
        // 1 << (TOS - 1) | 1 << (TCLASS - 1), as ss sets for --tos.
        assert_eq!(tos_extension_bits(), 0x10 | 0x20);
    }

    #[test]
    fn bpf_storages_decoded_in_order_and_checked() {
        let storage = |id: Option<u32>, value: Option<&[u8]>| {
            let mut inner = Vec::new();
            if let Some(id) = id {
                inner.extend(attr(SK_DIAG_BPF_STORAGE_MAP_ID, &id.to_ne_bytes()));
            }
            if let Some(v) = value {
                inner.extend(attr(SK_DIAG_BPF_STORAGE_MAP_VALUE, v));
            }
            attr(SK_DIAG_BPF_STORAGE | 0x8000, &inner)
        };
        let mut nest = storage(Some(9), Some(&[1, 2, 3]));
        nest.extend(storage(None, Some(&[4])));
        nest.extend(storage(Some(4), Some(&[5; 8])));
        let a = attr(INET_DIAG_SK_BPF_STORAGES | 0x8000, &nest);
        let d = parse_details(&a, 72).expect("valid");
        assert_eq!(
            d.bpf_storages,
            [
                SkStorageValue { map_id: 9, value: vec![1, 2, 3], misalign: 4 },
                SkStorageValue { map_id: 4, value: vec![5; 8], misalign: 4 }
            ]
        );
        // Each value's address modulo 8 counts the payload's offset in its datagram.
        let shifted = parse_details_of(&a, 72, false, 4).expect("valid");
        assert_eq!(shifted.bpf_storages[1].misalign, 0);
        let a = attr(INET_DIAG_SK_BPF_STORAGES, &storage(Some(9), None));
        assert_eq!(
            parse_details(&a, 72),
            Err(MalformedKind::MissingAttribute { what: "SK_DIAG_BPF_STORAGE_MAP_VALUE" })
        );
        let a = attr(INET_DIAG_SK_BPF_STORAGES, &attr(SK_DIAG_BPF_STORAGE, &attr(SK_DIAG_BPF_STORAGE_MAP_ID, &[1])));
        assert!(matches!(
            parse_details(&a, 72),
            Err(MalformedKind::ShortAttribute { what: "SK_DIAG_BPF_STORAGE_MAP_ID", .. })
        ));
        // A nest whose length runs past its parent.
        let mut a = attr(INET_DIAG_SK_BPF_STORAGES, &storage(Some(9), Some(&[1])));
        a[4] = 0xff;
        assert!(matches!(parse_details(&a, 72), Err(MalformedKind::BadAttribute { .. })));
    }

    #[test]
    fn extension_bits_match_ss() {
        assert_eq!(extension_bits(false, false), 0);
        // (1<<(MEMINFO-1)) | (1<<(SKMEMINFO-1))
        assert_eq!(extension_bits(true, false), 0x01 | 0x40);
        // INFO, VEGASINFO, CONG
        assert_eq!(extension_bits(false, true), 0x02 | 0x04 | 0x08);
    }
}
