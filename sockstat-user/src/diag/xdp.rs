//! XDP_DIAG (include/uapi/linux/xdp_diag.h, answered by net/xdp/xsk_diag.c when the kernel
//! has `CONFIG_XDP_SOCKETS_DIAG`): the request ss's `xdp_show` sends and the decoding of
//! `struct xdp_diag_msg` with every attribute ss's `xdp_show_sock` reads.
//!
//! Above the framing only: imports `nlmsg`, `error` and `model`, no other family.

use super::error::MalformedKind;
use super::nlmsg::{attributes, dump_request, head, meminfo_words, ne_u32};
use crate::model::socket::{XdpSocket, XdpUmem};

const AF_XDP: u8 = 44;
/// `XDP_SHOW_INFO | RING_CFG | UMEM | MEMINFO | STATS`: ss asks for all of them whatever
/// its options.
const SHOW: u32 = 0x01 | 0x02 | 0x04 | 0x08 | 0x10;
/// `sizeof(struct xdp_diag_msg)`: family, type (u8), pad (u16), `__u32 xdiag_ino` @4,
/// `__u32 xdiag_cookie[2]` @8.
const MSG_LEN: usize = 16;
const XDP_DIAG_INFO: u16 = 1;
const XDP_DIAG_UID: u16 = 2;
const XDP_DIAG_RX_RING: u16 = 3;
const XDP_DIAG_TX_RING: u16 = 4;
const XDP_DIAG_UMEM: u16 = 5;
const XDP_DIAG_UMEM_FILL_RING: u16 = 6;
const XDP_DIAG_UMEM_COMPLETION_RING: u16 = 7;
const XDP_DIAG_MEMINFO: u16 = 8;
const XDP_DIAG_STATS: u16 = 9;
/// `sizeof(struct xdp_diag_umem)`: `__u64 size`, then id, num_pages, chunk_size,
/// headroom, ifindex, queue_id, flags, refs (`__u32` each).
const UMEM_LEN: usize = 40;
/// `sizeof(struct xdp_diag_stats)`: six `__u64` counters.
const STATS_LEN: usize = 48;

/// `struct xdp_diag_req`: family, protocol (0), pad, `xdiag_ino`, `xdiag_show`,
/// `xdiag_cookie[2]` (20 bytes).
pub(crate) fn request(seq: u32) -> Vec<u8> {
    let mut body = vec![AF_XDP, 0, 0, 0];
    body.extend_from_slice(&0u32.to_ne_bytes());
    body.extend_from_slice(&SHOW.to_ne_bytes());
    body.extend_from_slice(&[0; 8]);
    dump_request(seq, &body)
}

fn ne_u64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8).and_then(|s| <[u8; 8]>::try_from(s).ok()).map_or(0, u64::from_ne_bytes)
}

pub(crate) fn parse(payload: &[u8]) -> Result<XdpSocket, MalformedKind> {
    let msg = head::<MSG_LEN>(payload, "xdp_diag_msg")?;
    if msg[0] != AF_XDP {
        return Err(MalformedKind::WrongFamily { expected: AF_XDP, got: msg[0] });
    }
    let mut s = XdpSocket {
        kind: msg[1],
        inode: ne_u32(msg, 4),
        // ss's cookie_sk_get(): cookie[0] | cookie[1] << 32.
        cookie: u64::from(ne_u32(msg, 8)) | u64::from(ne_u32(msg, 12)) << 32,
        ..XdpSocket::default()
    };
    for a in attributes(&payload[MSG_LEN..], MSG_LEN)? {
        match a.kind {
            // struct xdp_diag_info: ifindex, queue_id.
            XDP_DIAG_INFO => {
                s.ifindex = a.u32_index(0, "XDP_DIAG_INFO")?;
                s.queue_id = a.u32_index(1, "XDP_DIAG_INFO")?;
            }
            XDP_DIAG_UID => s.uid = a.u32("XDP_DIAG_UID")?,
            // struct xdp_diag_ring: entries.
            XDP_DIAG_RX_RING => s.rx_ring = Some(a.u32("XDP_DIAG_RX_RING")?),
            XDP_DIAG_TX_RING => s.tx_ring = Some(a.u32("XDP_DIAG_TX_RING")?),
            XDP_DIAG_UMEM_FILL_RING => s.fill_ring = Some(a.u32("XDP_DIAG_UMEM_FILL_RING")?),
            XDP_DIAG_UMEM_COMPLETION_RING => s.completion_ring = Some(a.u32("XDP_DIAG_UMEM_COMPLETION_RING")?),
            XDP_DIAG_UMEM => {
                let u = a.array::<UMEM_LEN>("XDP_DIAG_UMEM")?;
                let w = |i: usize| ne_u32(&u, 8 + 4 * i);
                s.umem = Some(XdpUmem {
                    size: ne_u64(&u, 0),
                    id: w(0),
                    num_pages: w(1),
                    chunk_size: w(2),
                    headroom: w(3),
                    ifindex: w(4),
                    queue_id: w(5),
                    flags: w(6),
                    refs: w(7),
                });
            }
            // SK_MEMINFO_RMEM_ALLOC is index 0 of the sk_meminfo array.
            XDP_DIAG_MEMINFO => {
                s.rqueue = a.u32_index(0, "XDP_DIAG_MEMINFO")?;
                // Only `-m` needs the whole array; a short one leaves Recv-Q readable.
                s.skmem = meminfo_words(&a, "XDP_DIAG_MEMINFO").ok();
            }
            XDP_DIAG_STATS => {
                let b = a.array::<STATS_LEN>("XDP_DIAG_STATS")?;
                s.stats = Some(std::array::from_fn(|i| ne_u64(&b, 8 * i)));
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

    fn msg(inode: u32, cookie: [u32; 2]) -> Vec<u8> {
        let mut p = vec![44, 3, 0, 0];
        p.extend_from_slice(&inode.to_ne_bytes());
        p.extend_from_slice(&cookie[0].to_ne_bytes());
        p.extend_from_slice(&cookie[1].to_ne_bytes());
        p
    }

    fn words(w: &[u32]) -> Vec<u8> {
        w.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    #[test]
    fn request_is_ss_xdp_diag_req() {
        let r = request(7);
        // nlmsghdr (16) + struct xdp_diag_req (20).
        assert_eq!(r.len(), 36);
        assert_eq!(&r[16..20], &[44, 0, 0, 0]);
        assert_eq!(&r[20..24], &0u32.to_ne_bytes());
        assert_eq!(&r[24..28], &0x1fu32.to_ne_bytes());
        assert_eq!(&r[28..36], &[0; 8]);
    }

    #[test]
    fn decodes_every_attribute() {
        let mut p = msg(4242, [0x10, 0x2]);
        p.extend(attr(XDP_DIAG_INFO, &words(&[3, 5])));
        p.extend(attr(XDP_DIAG_UID, &words(&[1000])));
        p.extend(attr(XDP_DIAG_RX_RING, &words(&[2048])));
        p.extend(attr(XDP_DIAG_TX_RING, &words(&[1024])));
        let mut umem = (1u64 << 33).to_ne_bytes().to_vec();
        umem.extend(words(&[9, 2_097_152, 4096, 0, 3, 5, 1, 2]));
        p.extend(attr(XDP_DIAG_UMEM, &umem));
        p.extend(attr(XDP_DIAG_UMEM_FILL_RING, &words(&[512])));
        p.extend(attr(XDP_DIAG_UMEM_COMPLETION_RING, &words(&[256])));
        p.extend(attr(XDP_DIAG_MEMINFO, &words(&[640, 212_992, 0, 212_992, 0, 0, 0, 0, 0])));
        let stats: Vec<u8> = [1u64, 2, 3, 4, 5, u64::MAX].iter().flat_map(|v| v.to_ne_bytes()).collect();
        p.extend(attr(XDP_DIAG_STATS, &stats));
        let s = parse(&p).expect("valid");
        assert_eq!((s.kind, s.inode, s.cookie), (3, 4242, 0x2_0000_0010));
        assert_eq!((s.ifindex, s.queue_id, s.uid, s.rqueue), (3, 5, 1000, 640));
        assert_eq!(
            (s.rx_ring, s.tx_ring, s.fill_ring, s.completion_ring),
            (Some(2048), Some(1024), Some(512), Some(256))
        );
        assert_eq!(
            s.umem,
            Some(XdpUmem {
                size: 1 << 33,
                id: 9,
                num_pages: 2_097_152,
                chunk_size: 4096,
                headroom: 0,
                ifindex: 3,
                queue_id: 5,
                flags: 1,
                refs: 2
            })
        );
        assert_eq!(s.stats, Some([1, 2, 3, 4, 5, u64::MAX]));
        assert_eq!(s.skmem.as_ref().map(Vec::len), Some(9));
    }

    #[test]
    fn unbound_socket_has_no_interface() {
        // An unbound socket: INFO with ifindex 0 (xsk_diag_put_info), no rings, no umem.
        let mut p = msg(77, [1, 0]);
        p.extend(attr(XDP_DIAG_INFO, &words(&[0, 0])));
        let s = parse(&p).expect("valid");
        assert_eq!((s.ifindex, s.queue_id, s.umem, s.rx_ring), (0, 0, None, None));
    }

    #[test]
    fn truncated_replies_are_errors_naming_the_offset() {
        assert!(matches!(
            parse(&[44, 3, 0]),
            Err(MalformedKind::TruncatedPayload { what: "xdp_diag_msg", needed: 16, available: 3 })
        ));
        let mut wrong = msg(1, [0, 0]);
        wrong[0] = 17;
        assert!(matches!(parse(&wrong), Err(MalformedKind::WrongFamily { expected: 44, got: 17 })));
        // An INFO attribute with only the ifindex: the queue id is missing.
        let mut p = msg(1, [0, 0]);
        p.extend(attr(XDP_DIAG_INFO, &words(&[3])));
        assert!(matches!(
            parse(&p),
            Err(MalformedKind::ShortAttribute { what: "XDP_DIAG_INFO", at: 20, needed: 8, available: 4 })
        ));
        // A umem one word short, after a complete ring attribute.
        let mut p = msg(1, [0, 0]);
        p.extend(attr(XDP_DIAG_RX_RING, &words(&[8])));
        p.extend(attr(XDP_DIAG_UMEM, &[0; 36]));
        assert!(matches!(
            parse(&p),
            Err(MalformedKind::ShortAttribute { what: "XDP_DIAG_UMEM", at: 28, needed: 40, available: 36 })
        ));
        let mut p = msg(1, [0, 0]);
        p.extend(attr(XDP_DIAG_STATS, &[0; 40]));
        assert!(matches!(parse(&p), Err(MalformedKind::ShortAttribute { what: "XDP_DIAG_STATS", needed: 48, .. })));
        let mut p = msg(1, [0, 0]);
        p.extend(attr(XDP_DIAG_RX_RING, &[1, 2]));
        assert!(matches!(parse(&p), Err(MalformedKind::ShortAttribute { what: "XDP_DIAG_RX_RING", at: 20, .. })));
        // An attribute whose length runs past the message.
        let mut p = msg(1, [0, 0]);
        p.extend_from_slice(&12u16.to_ne_bytes());
        p.extend_from_slice(&XDP_DIAG_UID.to_ne_bytes());
        p.extend_from_slice(&[0; 4]);
        assert!(matches!(parse(&p), Err(MalformedKind::BadAttribute { at: 16, len: 12, available: 8 })));
    }
}
