//! UNIX_DIAG (include/uapi/linux/unix_diag.h): the request ss's `unix_show_netlink` sends
//! and the decoding of `struct unix_diag_msg` with the attributes ss reads.
//!
//! Above the framing only: imports `nlmsg`, `error` and `model`, no other family.

use super::error::MalformedKind;
use super::nlmsg::{attributes, dump_request, head, meminfo_words, ne_u32};
use crate::model::socket::{UnixDetails, UnixSocket};

const AF_UNIX: u8 = 1;
/// `UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN`: what ss asks for without -e/-m.
const SHOW: u32 = 0x01 | 0x04 | 0x10;
/// `sizeof(struct unix_diag_msg)`: family, type, state, pad (u8 each), `__u32 udiag_ino`
/// @4, `__u32 udiag_cookie[2]` @8.
const MSG_LEN: usize = 16;
/// `UDIAG_SHOW_VFS | UDIAG_SHOW_ICONS`: what ss adds for `-e`.
pub(crate) const SHOW_DETAILS: u32 = 0x02 | 0x08;
/// `UDIAG_SHOW_MEMINFO`: what ss adds for `-m`.
pub(crate) const SHOW_MEMINFO: u32 = 0x20;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_VFS: u16 = 1;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_ICONS: u16 = 3;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_MEMINFO: u16 = 5;
const UNIX_DIAG_SHUTDOWN: u16 = 6;

/// `struct unix_diag_req`: family, protocol, pad, `udiag_states`, `udiag_ino`,
/// `udiag_show`, `udiag_cookie[2]` (24 bytes).
/// `extra` adds [`SHOW_DETAILS`] / [`SHOW_MEMINFO`] to what is always asked.
pub(crate) fn request(seq: u32, states: u32, extra: u32) -> Vec<u8> {
    let mut body = vec![AF_UNIX, 0, 0, 0];
    body.extend_from_slice(&states.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    body.extend_from_slice(&(SHOW | extra).to_ne_bytes());
    body.extend_from_slice(&[0; 8]);
    dump_request(seq, &body)
}

/// Decodes one reply; `details` keeps what `-e`/`-m` print in `ext`.
pub(crate) fn parse(payload: &[u8], details: bool) -> Result<UnixSocket, MalformedKind> {
    let msg = head::<MSG_LEN>(payload, "unix_diag_msg")?;
    if msg[0] != AF_UNIX {
        return Err(MalformedKind::WrongFamily { expected: AF_UNIX, got: msg[0] });
    }
    let mut s = UnixSocket {
        kind: msg[1],
        state: msg[2],
        inode: ne_u32(msg, 4),
        peer: 0,
        name: None,
        rqueue: 0,
        wqueue: 0,
        ext: None,
    };
    let mut d = UnixDetails::default();
    for a in attributes(&payload[MSG_LEN..], MSG_LEN)? {
        match a.kind {
            // ss copies the name into a 128-byte buffer; sun_path is at most 108 bytes.
            UNIX_DIAG_NAME => s.name = Some(a.data.to_vec()),
            UNIX_DIAG_PEER => s.peer = a.u32("UNIX_DIAG_PEER")?,
            UNIX_DIAG_RQLEN => {
                // struct unix_diag_rqlen { __u32 udiag_rqueue; __u32 udiag_wqueue; }
                s.rqueue = a.u32_index(0, "UNIX_DIAG_RQLEN")?;
                s.wqueue = a.u32_index(1, "UNIX_DIAG_RQLEN")?;
            }
            UNIX_DIAG_SHUTDOWN => d.shutdown = Some(a.array::<1>("UNIX_DIAG_SHUTDOWN")?[0]),
            // struct unix_diag_vfs { __u32 udiag_vfs_ino; __u32 udiag_vfs_dev; }
            UNIX_DIAG_VFS => d.vfs = Some((a.u32_index(0, "UNIX_DIAG_VFS")?, a.u32_index(1, "UNIX_DIAG_VFS")?)),
            // An array of u32 inodes; ss prints payload / 4 of them.
            UNIX_DIAG_ICONS => {
                d.icons = Some(a.data.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect());
            }
            UNIX_DIAG_MEMINFO => d.skmem = Some(meminfo_words(&a, "UNIX_DIAG_MEMINFO")?),
            _ => {}
        }
    }
    if details {
        s.ext = Some(Box::new(d));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::nlmsg::test_rtattr as attr;

    #[test]
    fn request_layout() {
        let r = request(1, 0xfff, 0);
        assert_eq!(r.len(), 16 + 24);
        assert_eq!(r[16], 1);
        assert_eq!(u32::from_ne_bytes(r[20..24].try_into().expect("4")), 0xfff);
        assert_eq!(u32::from_ne_bytes(r[28..32].try_into().expect("4")), 0x15);
    }

    #[test]
    fn decodes_name_peer_and_queues() {
        let mut p = vec![1, 1, 10, 0];
        p.extend_from_slice(&77u32.to_ne_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend(attr(UNIX_DIAG_NAME, b"\0abs"));
        p.extend(attr(UNIX_DIAG_PEER, &5u32.to_ne_bytes()));
        let mut q = 3u32.to_ne_bytes().to_vec();
        q.extend_from_slice(&128u32.to_ne_bytes());
        p.extend(attr(UNIX_DIAG_RQLEN, &q));
        let s = parse(&p, false).expect("valid");
        assert_eq!((s.kind, s.state, s.inode, s.peer), (1, 10, 77, 5));
        assert_eq!(s.name.as_deref(), Some(&b"\0abs"[..]));
        assert_eq!((s.rqueue, s.wqueue), (3, 128));
    }

    #[test]
    fn malformed_is_an_error_with_offset() {
        assert!(matches!(parse(&[1, 1], false), Err(MalformedKind::TruncatedPayload { needed: 16, available: 2, .. })));
        let mut p = vec![1, 1, 10, 0];
        p.extend_from_slice(&[0; 12]);
        // A PEER attribute with a 2-byte payload.
        p.extend(attr(UNIX_DIAG_PEER, &[1, 2]));
        assert_eq!(
            parse(&p, false),
            Err(MalformedKind::ShortAttribute { what: "UNIX_DIAG_PEER", at: 20, needed: 4, available: 2 })
        );
        // An attribute claiming more than remains.
        let mut p = vec![1, 1, 10, 0];
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(&[40, 0, 0, 0]);
        assert_eq!(parse(&p, false), Err(MalformedKind::BadAttribute { at: 16, len: 40, available: 4 }));
        let mut p = vec![2, 1, 10, 0];
        p.extend_from_slice(&[0; 12]);
        assert_eq!(parse(&p, false), Err(MalformedKind::WrongFamily { expected: 1, got: 2 }));
    }
}
