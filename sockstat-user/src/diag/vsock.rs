//! VSOCK_DIAG (include/uapi/linux/vm_sockets_diag.h): the request ss's `vsock_show` sends
//! and the decoding of `struct vsock_diag_msg`. This kernel has no vsock_diag module (the
//! dump answers ENOENT and shows nothing, as ss shows nothing); the code serves kernels
//! that have it.
//!
//! Above the framing only: imports `nlmsg`, `error` and `model`, no other family.

use super::error::MalformedKind;
use super::nlmsg::{dump_request, head, ne_u32};
use crate::model::socket::VsockSocket;

const AF_VSOCK: u8 = 40;
/// `sizeof(struct vsock_diag_msg)`: family, type, state, shutdown (u8 each), src_cid @4,
/// src_port @8, dst_cid @12, dst_port @16, ino @20, cookie[2] @24.
const MSG_LEN: usize = 32;

/// `struct vsock_diag_req`: family, protocol, pad, `vdiag_states`, `vdiag_ino`,
/// `vdiag_show`, `vdiag_cookie[2]` (24 bytes).
pub(crate) fn request(seq: u32, states: u32) -> Vec<u8> {
    let mut body = vec![AF_VSOCK, 0, 0, 0];
    body.extend_from_slice(&states.to_ne_bytes());
    body.extend_from_slice(&[0; 16]);
    dump_request(seq, &body)
}

pub(crate) fn parse(payload: &[u8]) -> Result<VsockSocket, MalformedKind> {
    let msg = head::<MSG_LEN>(payload, "vsock_diag_msg")?;
    if msg[0] != AF_VSOCK {
        return Err(MalformedKind::WrongFamily { expected: AF_VSOCK, got: msg[0] });
    }
    Ok(VsockSocket {
        kind: msg[1],
        state: msg[2],
        src_cid: ne_u32(msg, 4),
        src_port: ne_u32(msg, 8),
        dst_cid: ne_u32(msg, 12),
        dst_port: ne_u32(msg, 16),
        inode: ne_u32(msg, 20),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_checks_length() {
        let mut p = vec![40, 1, 10, 0];
        for v in [u32::MAX, 1234, 2, u32::MAX, 9, 0, 0] {
            p.extend_from_slice(&v.to_ne_bytes());
        }
        let s = parse(&p).expect("valid");
        assert_eq!(
            (s.kind, s.state, s.src_cid, s.src_port, s.dst_cid, s.dst_port, s.inode),
            (1, 10, u32::MAX, 1234, 2, u32::MAX, 9)
        );
        assert!(matches!(parse(&p[..31]), Err(MalformedKind::TruncatedPayload { needed: 32, available: 31, .. })));
        assert_eq!(request(1, 0xfff).len(), 40);
    }
}
