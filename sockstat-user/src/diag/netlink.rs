//! NETLINK_DIAG (include/uapi/linux/netlink_diag.h): the request ss's
//! `netlink_show_netlink` sends and the decoding of `struct netlink_diag_msg`.
//!
//! Above the framing only: imports `nlmsg`, `error` and `model`, no other family.

use super::error::MalformedKind;
use super::nlmsg::{attributes, dump_request, head, meminfo_words, ne_u32};
use crate::model::socket::NetlinkSocket;

const AF_NETLINK: u8 = 16;
/// `NDIAG_PROTO_ALL`.
const PROTO_ALL: u8 = 0xff;
/// `NDIAG_SHOW_GROUPS | NDIAG_SHOW_MEMINFO`, as ss asks.
const SHOW: u32 = 0x02 | 0x01;
/// `sizeof(struct netlink_diag_msg)`: family, type, protocol, state (u8 each),
/// `ndiag_portid` @4, `ndiag_dst_portid` @8, `ndiag_dst_group` @12, `ndiag_ino` @16,
/// `ndiag_cookie[2]` @20.
const MSG_LEN: usize = 28;
const NETLINK_DIAG_MEMINFO: u16 = 0;
const NETLINK_DIAG_GROUPS: u16 = 1;

/// `struct netlink_diag_req`: family, protocol, pad, `ndiag_ino`, `ndiag_show`,
/// `ndiag_cookie[2]` (20 bytes).
pub(crate) fn request(seq: u32) -> Vec<u8> {
    let mut body = vec![AF_NETLINK, PROTO_ALL, 0, 0];
    body.extend_from_slice(&0u32.to_ne_bytes());
    body.extend_from_slice(&SHOW.to_ne_bytes());
    body.extend_from_slice(&[0; 8]);
    dump_request(seq, &body)
}

pub(crate) fn parse(payload: &[u8]) -> Result<NetlinkSocket, MalformedKind> {
    let msg = head::<MSG_LEN>(payload, "netlink_diag_msg")?;
    if msg[0] != AF_NETLINK {
        return Err(MalformedKind::WrongFamily { expected: AF_NETLINK, got: msg[0] });
    }
    let mut s = NetlinkSocket {
        protocol: msg[2],
        state: msg[3],
        // ss keeps port ids in an int and prints them signed.
        portid: ne_u32(msg, 4).cast_signed(),
        dst_portid: ne_u32(msg, 8).cast_signed(),
        dst_group: ne_u32(msg, 12),
        rqueue: 0,
        wqueue: 0,
        inode: ne_u32(msg, 16),
        cookie: u64::from(ne_u32(msg, 20)) | u64::from(ne_u32(msg, 24)) << 32,
        groups: 0,
        skmem: None,
    };
    for a in attributes(&payload[MSG_LEN..], MSG_LEN)? {
        match a.kind {
            // sk_meminfo: RMEM_ALLOC is index 0, WMEM_ALLOC index 2.
            NETLINK_DIAG_MEMINFO => {
                s.rqueue = a.u32_index(0, "NETLINK_DIAG_MEMINFO")?;
                s.wqueue = a.u32_index(2, "NETLINK_DIAG_MEMINFO")?;
                // Only `-m` needs the whole array; a short one leaves rq/wq readable.
                s.skmem = meminfo_words(&a, "NETLINK_DIAG_MEMINFO").ok();
            }
            NETLINK_DIAG_GROUPS if !a.data.is_empty() => {
                // An array of unsigned long; ss reads the first one.
                s.groups = match a.data.first_chunk::<8>() {
                    Some(b) => u64::from_ne_bytes(*b),
                    None => u64::from(a.u32("NETLINK_DIAG_GROUPS")?),
                };
            }
            _ => {}
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_connected_socket_with_meminfo() {
        let mut p = vec![16, 3, 0, 1];
        for v in [(-5i32).cast_unsigned(), 0, 0, 42, 1, 0] {
            p.extend_from_slice(&v.to_ne_bytes());
        }
        p.extend_from_slice(&(4u16 + 16).to_ne_bytes());
        p.extend_from_slice(&NETLINK_DIAG_MEMINFO.to_ne_bytes());
        for v in [832u32, 0, 64, 0] {
            p.extend_from_slice(&v.to_ne_bytes());
        }
        let s = parse(&p).expect("valid");
        assert_eq!((s.protocol, s.state, s.portid, s.inode, s.cookie), (0, 1, -5, 42, 1));
        assert_eq!((s.rqueue, s.wqueue), (832, 64));
        let short = &p[..20];
        assert!(matches!(parse(short), Err(MalformedKind::TruncatedPayload { needed: 28, available: 20, .. })));
    }
}
