//! The kernel ABI's socket numbers, defined once for every layer: address families
//! (include/linux/socket.h), IP protocols (include/uapi/linux/in.h) and socket types
//! (include/linux/net.h). The ones the eBPF program also uses come from `sockstat-ebpf`.

pub use sockstat_ebpf::{AF_INET, AF_INET6, IPPROTO_TCP};

pub const AF_UNSPEC: u16 = 0;
pub const AF_UNIX: u16 = 1;
pub const AF_NETLINK: u16 = 16;
pub const AF_PACKET: u16 = 17;
pub const AF_TIPC: u16 = 30;
pub const AF_VSOCK: u16 = 40;
pub const AF_XDP: u16 = 44;

pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_DCCP: u8 = 33;
pub const IPPROTO_SCTP: u8 = 132;
/// MPTCP's protocol number: above 255, so sock_diag carries it in an attribute
/// (`INET_DIAG_REQ_PROTOCOL`), never in the request's protocol byte.
pub const IPPROTO_MPTCP: u32 = 262;

pub const SOCK_STREAM: u8 = 1;
pub const SOCK_DGRAM: u8 = 2;
pub const SOCK_SEQPACKET: u8 = 5;

/// The symbolic name of errno `n` (`ECONNREFUSED`), as `strerrorname_np(3)` gives it;
/// `E<n>` for a number the C library does not name.
#[must_use]
pub fn errno_name(n: u32) -> String {
    let raw = i32::try_from(n).unwrap_or(i32::MAX);
    match nix::errno::Errno::from_raw(raw) {
        nix::errno::Errno::UnknownErrno => format!("E{n}"),
        e => format!("{e:?}"),
    }
}

#[cfg(test)]
mod errno_tests {
    #[test]
    fn errno_names_are_the_c_names() {
        assert_eq!(super::errno_name(111), "ECONNREFUSED");
        assert_eq!(super::errno_name(110), "ETIMEDOUT");
        assert_eq!(super::errno_name(104), "ECONNRESET");
        assert_eq!(super::errno_name(4000), "E4000");
    }
}
