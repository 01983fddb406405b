//! PACKET_DIAG (include/uapi/linux/packet_diag.h): the request ss's `packet_show_netlink`
//! sends and the decoding of `struct packet_diag_msg` with the attributes ss reads,
//! including the attached classic BPF program (`PACKET_DIAG_FILTER`, for `-b`).
//!
//! Above the framing only: imports `nlmsg`, `error` and `model`, no other family.

use super::error::MalformedKind;
use super::nlmsg::{attributes, dump_request, head, meminfo_words, ne_u16, ne_u32};
use crate::model::socket::{BpfInsn, PacketSocket};

const AF_PACKET: u8 = 17;
/// `PACKET_SHOW_INFO | MEMINFO | FILTER | RING_CFG | FANOUT`, as ss asks.
const SHOW: u32 = 0x01 | 0x10 | 0x20 | 0x04 | 0x08;
/// `sizeof(struct packet_diag_msg)`: family, type (u8), `__u16 pdiag_num` @2,
/// `__u32 pdiag_ino` @4, `__u32 pdiag_cookie[2]` @8.
const MSG_LEN: usize = 16;
const PACKET_DIAG_INFO: u16 = 0;
const PACKET_DIAG_RX_RING: u16 = 2;
const PACKET_DIAG_TX_RING: u16 = 3;
const PACKET_DIAG_FANOUT: u16 = 4;
const PACKET_DIAG_UID: u16 = 5;
const PACKET_DIAG_MEMINFO: u16 = 6;
const PACKET_DIAG_FILTER: u16 = 7;
/// `sizeof(struct sock_filter)`: `__u16 code`, `__u8 jt`, `__u8 jf`, `__u32 k`.
const SOCK_FILTER_LEN: usize = 8;

/// `struct packet_diag_req`: family, protocol, pad, `pdiag_ino`, `pdiag_show`,
/// `pdiag_cookie[2]` (20 bytes).
pub(crate) fn request(seq: u32) -> Vec<u8> {
    let mut body = vec![AF_PACKET, 0, 0, 0];
    body.extend_from_slice(&0u32.to_ne_bytes());
    body.extend_from_slice(&SHOW.to_ne_bytes());
    body.extend_from_slice(&[0; 8]);
    dump_request(seq, &body)
}

pub(crate) fn parse(payload: &[u8]) -> Result<PacketSocket, MalformedKind> {
    let msg = head::<MSG_LEN>(payload, "packet_diag_msg")?;
    if msg[0] != AF_PACKET {
        return Err(MalformedKind::WrongFamily { expected: AF_PACKET, got: msg[0] });
    }
    let mut s = PacketSocket {
        kind: msg[1],
        // The kernel stores ntohs(po->num): host order (net/packet/diag.c).
        protocol: ne_u16(msg, 2),
        inode: ne_u32(msg, 4),
        ifindex: 0,
        rqueue: 0,
        uid: 0,
        cookie: u64::from(ne_u32(msg, 8)) | u64::from(ne_u32(msg, 12)) << 32,
        filter: None,
        info: None,
        rings: [None, None],
        fanout: None,
        skmem: None,
    };
    for a in attributes(&payload[MSG_LEN..], MSG_LEN)? {
        match a.kind {
            // struct packet_diag_info: __u32 pdi_index first.
            // struct packet_diag_info: pdi_index, pdi_version, pdi_reserve,
            // pdi_copy_thresh, pdi_tstamp, pdi_flags (u32 each).
            PACKET_DIAG_INFO => {
                s.ifindex = a.u32("PACKET_DIAG_INFO")?;
                s.info = Some([
                    a.u32_index(1, "PACKET_DIAG_INFO")?,
                    a.u32_index(3, "PACKET_DIAG_INFO")?,
                    a.u32_index(5, "PACKET_DIAG_INFO")?,
                ]);
            }
            // struct packet_diag_ring: block_size, block_nr, frame_size, frame_nr,
            // retire_tmo, sizeof_priv, features (u32 each).
            PACKET_DIAG_RX_RING | PACKET_DIAG_TX_RING => {
                let mut ring = [0u32; 7];
                for (i, w) in ring.iter_mut().enumerate() {
                    *w = a.u32_index(i, "PACKET_DIAG_RING")?;
                }
                s.rings[usize::from(a.kind == PACKET_DIAG_TX_RING)] = Some(ring);
            }
            PACKET_DIAG_FANOUT => s.fanout = Some(a.u32("PACKET_DIAG_FANOUT")?),
            PACKET_DIAG_UID => s.uid = a.u32("PACKET_DIAG_UID")?,
            // SK_MEMINFO_RMEM_ALLOC is index 0 of the sk_meminfo array.
            PACKET_DIAG_MEMINFO => {
                s.rqueue = a.u32_index(0, "PACKET_DIAG_MEMINFO")?;
                // Only `-m` needs the whole array; a short one leaves Recv-Q readable.
                s.skmem = meminfo_words(&a, "PACKET_DIAG_MEMINFO").ok();
            }
            PACKET_DIAG_FILTER => {
                // ss prints payload / sizeof(struct sock_filter) instructions: a partial
                // trailing instruction is dropped the same way.
                let insns = a
                    .data
                    .chunks_exact(SOCK_FILTER_LEN)
                    .map(|c| BpfInsn {
                        code: u16::from_ne_bytes([c[0], c[1]]),
                        jt: c[2],
                        jf: c[3],
                        k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
                    })
                    .collect();
                s.filter = Some(insns);
            }
            _ => {}
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::nlmsg::test_rtattr as attr;

    #[test]
    fn decodes_info_meminfo_and_filter() {
        let mut p = vec![17, 3];
        p.extend_from_slice(&0x0800u16.to_ne_bytes());
        p.extend_from_slice(&99u32.to_ne_bytes());
        p.extend_from_slice(&0x10u32.to_ne_bytes());
        p.extend_from_slice(&0x2u32.to_ne_bytes());
        let mut info = 7u32.to_ne_bytes().to_vec();
        info.extend_from_slice(&[0; 20]);
        p.extend(attr(PACKET_DIAG_INFO, &info));
        let mut mem = 640u32.to_ne_bytes().to_vec();
        mem.extend_from_slice(&[0; 32]);
        p.extend(attr(PACKET_DIAG_MEMINFO, &mem));
        let mut f = Vec::new();
        for (code, jt, jf, k) in [(0x28u16, 0u8, 0u8, 12u32), (0x06, 0, 0, 0xffff)] {
            f.extend_from_slice(&code.to_ne_bytes());
            f.extend_from_slice(&[jt, jf]);
            f.extend_from_slice(&k.to_ne_bytes());
        }
        p.extend(attr(PACKET_DIAG_FILTER, &f));
        let s = parse(&p).expect("valid");
        assert_eq!((s.kind, s.protocol, s.inode, s.ifindex, s.rqueue), (3, 0x800, 99, 7, 640));
        assert_eq!(s.cookie, 0x2_0000_0010);
        assert_eq!(
            s.filter,
            Some(vec![BpfInsn { code: 0x28, jt: 0, jf: 0, k: 12 }, BpfInsn { code: 6, jt: 0, jf: 0, k: 0xffff }])
        );
    }

    #[test]
    fn short_meminfo_is_an_error() {
        let mut p = vec![17, 3, 0, 0];
        p.extend_from_slice(&[0; 12]);
        p.extend(attr(PACKET_DIAG_MEMINFO, &[1, 2]));
        assert!(matches!(parse(&p), Err(MalformedKind::ShortAttribute { what: "PACKET_DIAG_MEMINFO", at: 20, .. })));
        assert!(matches!(parse(&[17]), Err(MalformedKind::TruncatedPayload { .. })));
    }
}
