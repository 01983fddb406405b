//! The `NETLINK_SOCK_DIAG` socket itself, as both its users open it: `SockDiag` (requests
//! and dumps) and the destroy listener (multicast notifications). Only the socket and its
//! buffer sizes live here; what is sent and read on it lives above.
//!
//! May import `error`; nothing else in `diag/`.

use netlink_sys::{Socket, protocols::NETLINK_SOCK_DIAG};
use nix::sys::socket::{setsockopt, sockopt};

use super::error::{DiagError, classify_io};

/// Receive buffer asked for: room for many reply datagrams while we decode. `SO_RCVBUFFORCE`
/// (needs CAP_NET_ADMIN) bypasses `net.core.rmem_max`; without it the kernel caps
/// `SO_RCVBUF` at rmem_max, which is still enough because a dump is flow-controlled.
const RCVBUF_BYTES: usize = 4 << 20;

/// Bytes of one `recv`. The kernel sizes a dump datagram from the reader's buffer but never
/// above 32 KiB (net/netlink/af_netlink.c, `max_recvmsg_len`); 64 KiB leaves headroom, and a
/// datagram that is still larger is detected with `MSG_TRUNC`, never silently cut.
pub(crate) const RECV_CHUNK: usize = 64 << 10;

/// A new, unbound `NETLINK_SOCK_DIAG` socket in the calling thread's network namespace,
/// with the receive buffer asked for (best effort: a smaller buffer only means more,
/// smaller reads; for notifications, room for bursts while we print).
///
/// # Errors
/// [`DiagError::Open`], or [`DiagError::PermissionDenied`] if the socket is refused.
pub(crate) fn new_socket() -> Result<Socket, DiagError> {
    let socket = Socket::new(NETLINK_SOCK_DIAG).map_err(open_err)?;
    if setsockopt(&socket, sockopt::RcvBufForce, &RCVBUF_BYTES).is_err() {
        let _ = setsockopt(&socket, sockopt::RcvBuf, &RCVBUF_BYTES);
    }
    Ok(socket)
}

/// An error of opening or binding the socket.
pub(crate) fn open_err(e: std::io::Error) -> DiagError {
    classify_io("opening the socket", e, DiagError::Open)
}
