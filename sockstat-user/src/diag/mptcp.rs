//! MPTCP (IPPROTO_MPTCP = 262) over inet_diag, as iproute2 6.1's ss asks for it: the
//! protocol byte and the attribute its request carries, and the decoding of
//! `struct mptcp_info`. No I/O here.
//!
//! The protocol does not fit `inet_diag_req_v2.sdiag_protocol` (a u8), so ss's
//! `sockdiag_send` appends an `INET_DIAG_REQ_PROTOCOL` attribute holding 262 as a u32
//! (include/uapi/linux/inet_diag.h); the kernel prefers that attribute to the byte
//! (net/ipv4/inet_diag.c, `inet_diag_get_protocol`). ss assigns 262 to the byte too, which
//! truncates it to 6; the request here carries the same 6. Replies are ordinary
//! `inet_diag_msg`s (net/mptcp/mptcp_diag.c fills them with `inet_sk_diag_fill`), except
//! that their `INET_DIAG_INFO` is a `struct mptcp_info` rather than a `tcp_info`.
//!
//! Sits just above the framing (`nlmsg`), below the inet decoder: `inet_ext` decodes an
//! MPTCP socket's `INET_DIAG_INFO` with [`parse_mptcp_info`], and `inet::mptcp_request`
//! builds the whole request from the `inet_diag_req_v2` and [`add_protocol_attr`].

use super::nlmsg::push_attr;
use crate::model::socket::MptcpInfo;

/// IPPROTO_MPTCP (include/uapi/linux/in.h).
pub(crate) const IPPROTO_MPTCP: u32 = 262;

/// `INET_DIAG_REQ_PROTOCOL` (include/uapi/linux/inet_diag.h: `INET_DIAG_REQ_NONE`,
/// `_BYTECODE`, `_SK_BPF_STORAGES`, `_PROTOCOL`).
const INET_DIAG_REQ_PROTOCOL: u16 = 3;

/// What ss stores in `sdiag_protocol` for MPTCP: `(__u8)IPPROTO_MPTCP`.
pub(crate) const REQUEST_PROTOCOL_BYTE: u8 = (IPPROTO_MPTCP & 0xff) as u8;

/// Appends the `INET_DIAG_REQ_PROTOCOL` attribute to a whole `inet_diag_req_v2` dump
/// request (header included) and fixes `nlmsg_len`, as ss's `sockdiag_send` does for a
/// protocol above 255.
pub(crate) fn add_protocol_attr(request: &mut Vec<u8>) {
    // A u32 payload: rta_len 8, no padding.
    push_attr(request, INET_DIAG_REQ_PROTOCOL, &IPPROTO_MPTCP.to_ne_bytes());
}

/// Decodes `struct mptcp_info` of any length (include/uapi/linux/mptcp.h):
/// `__u8 subflows` @0, `add_addr_signal` @1, `add_addr_accepted` @2, `subflows_max` @3,
/// `add_addr_signal_max` @4, `add_addr_accepted_max` @5, (2 bytes padding),
/// `__u32 flags` @8, `token` @12, `__u64 write_seq` @16, `snd_una` @24, `rcv_nxt` @32;
/// then (printed by ss 7.1 only) `__u8 local_addr_used` @40, `local_addr_max` @41,
/// `csum_enabled` @42, `__u32 retransmits` @44, `__u64 bytes_retrans` @48, `bytes_sent` @56,
/// `bytes_received` @64, `bytes_acked` @72, `__u8 subflows_total` @80, `endp_laminar_max`
/// @81, `__u32 last_data_sent` @84, `last_data_recv` @88, `last_ack_recv` @92. As ss does
/// for a shorter attribute (older kernels), a field the kernel did not send whole is 0.
#[must_use]
pub fn parse_mptcp_info(data: &[u8]) -> MptcpInfo {
    let u8_at = |o: usize| data.get(o).copied().unwrap_or(0);
    let u32_at = |o: usize| data.get(o..).and_then(<[u8]>::first_chunk::<4>).map_or(0, |b| u32::from_ne_bytes(*b));
    let u64_at = |o: usize| data.get(o..).and_then(<[u8]>::first_chunk::<8>).map_or(0, |b| u64::from_ne_bytes(*b));
    MptcpInfo {
        subflows: u8_at(0),
        add_addr_signal: u8_at(1),
        add_addr_accepted: u8_at(2),
        subflows_max: u8_at(3),
        add_addr_signal_max: u8_at(4),
        add_addr_accepted_max: u8_at(5),
        flags: u32_at(8),
        token: u32_at(12),
        write_seq: u64_at(16),
        snd_una: u64_at(24),
        rcv_nxt: u64_at(32),
        ext: crate::model::socket::MptcpInfoExt {
            local_addr_used: u8_at(40),
            local_addr_max: u8_at(41),
            csum_enabled: u8_at(42),
            retransmits: u32_at(44),
            bytes_retrans: u64_at(48),
            bytes_sent: u64_at(56),
            bytes_received: u64_at(64),
            bytes_acked: u64_at(72),
            subflows_total: u8_at(80),
            endp_laminar_max: u8_at(81),
            last_data_sent: u32_at(84),
            last_data_recv: u32_at(88),
            last_ack_recv: u32_at(92),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 6.18-sized mptcp_info (96 bytes; ss 6.1 read 40 of them).
    fn info() -> Vec<u8> {
        let mut b = vec![2u8, 1, 3, 8, 4, 5, 0xee, 0xee];
        b.extend_from_slice(&0b11u32.to_ne_bytes());
        b.extend_from_slice(&0xdead_beefu32.to_ne_bytes());
        b.extend_from_slice(&0x1122_3344_5566_7788u64.to_ne_bytes());
        b.extend_from_slice(&0x10u64.to_ne_bytes());
        b.extend_from_slice(&0x0102_0304_0506_0708u64.to_ne_bytes());
        // local_addr_used, local_addr_max, csum_enabled, a hole; retransmits.
        b.extend_from_slice(&[1, 2, 1, 0xee]);
        b.extend_from_slice(&3u32.to_ne_bytes());
        // bytes_retrans, bytes_sent, bytes_received, bytes_acked.
        for v in [4u64, 5, 6, 7] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        // subflows_total, endp_laminar_max, endp_fullmesh_max, reserved; the last times.
        b.extend_from_slice(&[2, 1, 0xee, 0xee]);
        for v in [8u32, 9, 10] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b
    }

    #[test]
    fn mptcp_info_decoded() {
        let i = parse_mptcp_info(&info());
        assert_eq!(
            i,
            MptcpInfo {
                subflows: 2,
                add_addr_signal: 1,
                add_addr_accepted: 3,
                subflows_max: 8,
                add_addr_signal_max: 4,
                add_addr_accepted_max: 5,
                flags: 3,
                token: 0xdead_beef,
                write_seq: 0x1122_3344_5566_7788,
                snd_una: 0x10,
                rcv_nxt: 0x0102_0304_0506_0708,
                ext: crate::model::socket::MptcpInfoExt {
                    local_addr_used: 1,
                    local_addr_max: 2,
                    csum_enabled: 1,
                    retransmits: 3,
                    bytes_retrans: 4,
                    bytes_sent: 5,
                    bytes_received: 6,
                    bytes_acked: 7,
                    subflows_total: 2,
                    endp_laminar_max: 1,
                    last_data_sent: 8,
                    last_data_recv: 9,
                    last_ack_recv: 10,
                },
            }
        );
    }

    #[test]
    fn short_mptcp_info_is_zero_filled() {
        let full = info();
        assert_eq!(parse_mptcp_info(&[]), MptcpInfo::default());
        // Cut inside token: the byte fields and flags are there, token is not.
        let i = parse_mptcp_info(&full[..14]);
        assert_eq!((i.subflows, i.add_addr_accepted_max, i.flags, i.token, i.write_seq), (2, 5, 3, 0, 0));
        // Cut inside rcv_nxt: 0, never a partial value.
        let i = parse_mptcp_info(&full[..36]);
        assert_eq!((i.snd_una, i.rcv_nxt), (0x10, 0));
        assert_eq!(parse_mptcp_info(&full[..40]).rcv_nxt, 0x0102_0304_0506_0708);
    }

    #[test]
    fn protocol_attribute_appended_as_ss_sends_it() {
        let mut req = vec![0u8; 72];
        req[0..4].copy_from_slice(&72u32.to_ne_bytes());
        add_protocol_attr(&mut req);
        assert_eq!(req.len(), 80);
        assert_eq!(u32::from_ne_bytes(req[0..4].try_into().expect("4")), 80, "nlmsg_len covers the attribute");
        assert_eq!(u16::from_ne_bytes(req[72..74].try_into().expect("2")), 8, "rta_len");
        assert_eq!(u16::from_ne_bytes(req[74..76].try_into().expect("2")), 3, "INET_DIAG_REQ_PROTOCOL");
        assert_eq!(u32::from_ne_bytes(req[76..80].try_into().expect("4")), 262);
        assert_eq!(REQUEST_PROTOCOL_BYTE, 6, "ss's (__u8)262");
    }
}
