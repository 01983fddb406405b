//! What can go wrong talking sock_diag: [`DiagError`] (opening, sending, receiving, and what
//! the kernel answered) and [`MalformedKind`] (what was wrong with bytes that claimed to be
//! a reply stream), and the meaning of an errno for a sock_diag request.
//!
//! The bottom of `diag/`: every other file of the folder may import it; it imports nothing
//! from the folder, so the framing, the decoders and the socket can all return the one
//! error type that `crate::diag` re-exports.

use std::io;

use netlink_packet_sock_diag::{AF_INET, AF_INET6};

/// The capability sock_diag checks (`SOCK_DESTROY`, and the privileged attributes of a
/// dump). A plain inet dump needs none, which the permission error says too.
const CAPABILITY: &str = "CAP_NET_ADMIN";

/// Everything that can go wrong opening, dumping, or decoding sock_diag.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("cannot open a NETLINK_SOCK_DIAG socket")]
    Open(#[source] io::Error),
    #[error(
        "permission denied while {op}: sock_diag needs {capability} for privileged requests \
         (run as root or `setcap cap_net_admin+ep` the binary); a plain dump needs none, so \
         an LSM or seccomp policy may be refusing it"
    )]
    PermissionDenied {
        op: &'static str,
        capability: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("sending the sock_diag request failed")]
    Send(#[source] io::Error),
    #[error("receiving sock_diag replies failed")]
    Recv(#[source] io::Error),
    #[error("a sock_diag reply datagram of {len} bytes did not fit the {capacity}-byte buffer")]
    DatagramTruncated { len: usize, capacity: usize },
    #[error("address family {family} is not AF_INET (2) or AF_INET6 (10)")]
    UnsupportedFamily { family: u16 },
    #[error(
        "the kernel has no sock_diag support for family {family}, protocol {protocol} \
         (its *_diag module is not built or not loaded)"
    )]
    NotSupported {
        family: u16,
        protocol: u8,
        #[source]
        source: io::Error,
    },
    #[error("the kernel answered errno {errno} (message at byte {offset} of the reply stream)")]
    Kernel {
        offset: usize,
        errno: i32,
        #[source]
        source: io::Error,
    },
    #[error("malformed sock_diag reply (message at byte {offset} of the reply stream): {kind}")]
    Malformed { offset: usize, kind: MalformedKind },
    #[error(
        "permission denied joining the sock_diag destroy notification groups (mask {groups:#x}): \
         the kernel lets only CAP_NET_ADMIN listen to them (run as root or `setcap \
         cap_net_admin+ep` the binary)"
    )]
    JoinDenied {
        groups: u32,
        #[source]
        source: io::Error,
    },
    #[error(
        "destroy notifications were lost: the kernel could not queue them on the socket \
         (ENOBUFS: its receive buffer was full)"
    )]
    NotificationsLost(#[source] io::Error),
    #[error("malformed destroy notification (message at byte {offset} of the notifications received): {kind}")]
    MalformedNotification { offset: usize, kind: MalformedKind },
}

/// What was wrong with a reply stream; [`DiagError::Malformed`] adds where. The 16 bytes
/// of a netlink header are `nlmsg::NLMSG_HDRLEN`, which sits above this file (a test there
/// checks the two agree).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedKind {
    #[error("truncated netlink header: {available} of 16 bytes")]
    TruncatedHeader { available: usize },
    #[error("nlmsg_len {len} is smaller than the 16-byte netlink header")]
    LengthTooSmall { len: u32 },
    #[error("nlmsg_len {len} runs past the end of the data ({available} bytes left)")]
    LengthPastEnd { len: u32, available: usize },
    #[error("truncated {what}: payload has {available} of {needed} bytes")]
    TruncatedPayload { what: &'static str, needed: usize, available: usize },
    #[error("unexpected netlink message type {0} in a sock_diag reply")]
    UnexpectedType(u16),
    #[error("idiag_family {0} is neither AF_INET ({AF_INET}) nor AF_INET6 ({AF_INET6})")]
    UnknownFamily(u8),
    #[error("the reply stream ends without NLMSG_DONE")]
    MissingDone,
    #[error("attribute at payload byte {at} claims {len} bytes where {available} remain")]
    BadAttribute { at: usize, len: usize, available: usize },
    #[error("attribute {what} at payload byte {at} has {available} of {needed} bytes")]
    ShortAttribute { what: &'static str, at: usize, needed: usize, available: usize },
    #[error("reply for address family {got} in a dump of family {expected}")]
    WrongFamily { expected: u8, got: u8 },
    #[error("no {what} attribute")]
    MissingAttribute { what: &'static str },
}

/// A socket call's error: a refusal names the capability, anything else is `other`.
pub(crate) fn classify_io(op: &'static str, e: io::Error, other: fn(io::Error) -> DiagError) -> DiagError {
    if e.kind() == io::ErrorKind::PermissionDenied {
        DiagError::PermissionDenied { op, capability: CAPABILITY, source: e }
    } else {
        other(e)
    }
}

/// Give a kernel errno its meaning for this request.
pub(crate) fn classify_kernel(err: DiagError, family: u16, protocol: u8) -> DiagError {
    match err {
        DiagError::Kernel { errno, source, .. } if errno == libc::ENOENT || errno == libc::EOPNOTSUPP => {
            DiagError::NotSupported { family, protocol, source }
        }
        DiagError::Kernel { errno, source, .. } if errno == libc::EPERM || errno == libc::EACCES => {
            DiagError::PermissionDenied { op: "dumping", capability: CAPABILITY, source }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use sockstat_ebpf::{AF_INET, IPPROTO_TCP};

    use super::*;

    #[test]
    fn kernel_errno_is_classified() {
        let k = |errno| DiagError::Kernel { offset: 0, errno, source: io::Error::from_raw_os_error(errno) };
        let e = classify_kernel(k(libc::ENOENT), AF_INET, 255);
        assert!(matches!(e, DiagError::NotSupported { family: AF_INET, protocol: 255, .. }), "{e:?}");
        let e = classify_kernel(k(libc::EPERM), AF_INET, IPPROTO_TCP);
        assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
        let e = classify_kernel(k(libc::EINVAL), AF_INET, IPPROTO_TCP);
        assert!(matches!(e, DiagError::Kernel { errno: libc::EINVAL, .. }), "{e:?}");
    }
}
