//! sock_diag (`NETLINK_SOCK_DIAG`) dumps, made as ss makes them: one `SOCK_DIAG_BY_FAMILY`
//! and `NLM_F_DUMP` request per address family (inet: per protocol and family; UNIX, packet,
//! netlink, vsock: one each), replies decoded into records in the order the kernel dumps
//! them (ss prints them in that order).
//!
//! This module owns the socket and the requests; the submodules own the decoding and have
//! no I/O: `parse` (netlink framing, attributes, `inet_diag_msg`, [`parse_inet_replies`],
//! which also reads recorded reply streams, `-D FILE`), `mptcp` (its request attribute and
//! `mptcp_info`), `unix`, `packet`, `netlink`,
//! `vsock`, `xdp` (one family each), and `procnet` (/proc/net/raw, the fallback ss uses because
//! this kernel has no RAW_DIAG). Every column a record carries comes from the kernel at the
//! time of the dump ([`Source::Kernel`]).
//!
//! It also owns the other way sock_diag talks: [`DestroyListener`], a socket joined to the
//! multicast groups on which the kernel announces every destroyed TCP or UDP socket (what
//! `ss -E` reads), decoded by the same parser as a dump's replies.
//!
//! [`Source::Kernel`]: crate::model::socket::Source::Kernel

pub mod inet_ext;
mod mptcp;
mod netlink;
mod packet;
mod parse;
mod request;
mod unix;
mod vsock;
mod xdp;

use std::io;

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
use nix::sys::socket::{setsockopt, sockopt};
use sockstat_ebpf::IPPROTO_TCP;

use self::parse::{Decoder, Step};
pub use self::parse::{
    INET_DIAG_MSG_LEN, InetDump, MalformedKind, NLMSG_HDRLEN, parse_inet_replies, parse_inet_replies_with,
};
use self::parse::{parse_destroy_notification, parse_inet_diag_msg_with};
use crate::model::socket::{InetSocket, NetlinkSocket, PacketSocket, UnixSocket, VsockSocket, XdpSocket};

/// The capability sock_diag checks (`SOCK_DESTROY`, and the privileged attributes of a
/// dump). A plain inet dump needs none, which the permission error says too.
const CAPABILITY: &str = "CAP_NET_ADMIN";

/// Receive buffer asked for: room for many reply datagrams while we decode. `SO_RCVBUFFORCE`
/// (needs CAP_NET_ADMIN) bypasses `net.core.rmem_max`; without it the kernel caps
/// `SO_RCVBUF` at rmem_max, which is still enough because a dump is flow-controlled.
const RCVBUF_BYTES: usize = 4 << 20;

/// Bytes of one `recv`. The kernel sizes a dump datagram from the reader's buffer but never
/// above 32 KiB (net/netlink/af_netlink.c, `max_recvmsg_len`); 64 KiB leaves headroom, and a
/// datagram that is still larger is detected with `MSG_TRUNC`, never silently cut.
const RECV_CHUNK: usize = 64 << 10;

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

/// One `NETLINK_SOCK_DIAG` socket, opened once and reused for many dumps.
#[derive(Debug)]
pub struct SockDiag {
    // Never clone: netlink_sys::Socket derives Clone but closes its fd on drop.
    socket: Socket,
    recv_buf: Vec<u8>,
    seq: u32,
    /// A dump stopped before its `NLMSG_DONE`: its replies may still be queued and the
    /// kernel refuses a new dump on this socket (EBUSY) until the old one ends, so the next
    /// dump opens a fresh socket.
    poisoned: bool,
    last_interrupted: bool,
    /// `idiag_ext` bits of inet requests (`-m`, `-i`: [`inet_ext::extension_bits`]).
    ext: u8,
    /// Keep the attributes `-e -m -i` print in each record's `ext`.
    details: bool,
    /// `UDIAG_SHOW_*` bits added to UNIX requests (`-e`, `-m`).
    unix_show: u32,
    /// Every reply datagram received, back to back, when recording (`-D FILE`).
    recording: Option<Vec<u8>>,
}

impl SockDiag {
    /// Open the socket in the calling thread's network namespace.
    ///
    /// # Errors
    /// [`DiagError::Open`], or [`DiagError::PermissionDenied`] if the socket is refused.
    pub fn open() -> Result<Self, DiagError> {
        Ok(Self {
            socket: open_socket()?,
            recv_buf: Vec::with_capacity(RECV_CHUNK),
            seq: 0x5eed_0000,
            poisoned: false,
            last_interrupted: false,
            ext: 0,
            details: false,
            unix_show: 0,
            recording: None,
        })
    }

    /// Ask for and decode what `-e` (`details`), `-m` (`mem`) and `-i` (`info`) print,
    /// with the extension bits ss sets for the same options.
    #[must_use]
    pub fn with_details(mut self, details: bool, mem: bool, info: bool) -> Self {
        self.ext = inet_ext::extension_bits(mem, info);
        self.details = details || mem || info;
        self.unix_show = if details { unix::SHOW_DETAILS } else { 0 } | if mem { unix::SHOW_MEMINFO } else { 0 };
        self
    }

    /// Also ask for and decode what `--tos` (the TOS and TCLASS extension bits, as ss sets
    /// them) and `--inet-sockopt` (INET_DIAG_SOCKOPT, always sent) print.
    #[must_use]
    pub fn with_inet_attrs(mut self, tos: bool, sockopt: bool) -> Self {
        if tos {
            self.ext |= inet_ext::tos_extension_bits();
        }
        self.details |= tos || sockopt;
        self
    }

    /// Start keeping every reply datagram (what `ss -D FILE` writes).
    pub fn record(&mut self) {
        self.recording = Some(Vec::new());
    }

    /// The datagrams kept since [`SockDiag::record`], back to back.
    #[must_use]
    pub fn take_recording(&mut self) -> Vec<u8> {
        self.recording.take().unwrap_or_default()
    }

    /// Closes one inet socket with `SOCK_DESTROY` (what `ss -K` sends), naming it by the
    /// tuple and cookie the dump gave. The kernel checks CAP_NET_ADMIN and needs
    /// CONFIG_INET_DIAG_DESTROY.
    ///
    /// # Errors
    /// [`DiagError::PermissionDenied`] without CAP_NET_ADMIN; [`DiagError::NotSupported`]
    /// when the socket cannot be closed this way or is already gone (ss skips those);
    /// I/O and kernel errors otherwise.
    pub fn destroy_inet(&mut self, s: &InetSocket) -> Result<(), DiagError> {
        if self.poisoned {
            self.socket = open_socket()?;
            self.poisoned = false;
        }
        self.seq = self.seq.wrapping_add(1);
        let request = destroy_request(s, self.seq);
        self.send(&request)?;
        loop {
            self.recv()?;
            let mut pos = 0;
            while let Some(hdr) = self.recv_buf.get(pos..pos + NLMSG_HDRLEN) {
                let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
                let kind = u16::from_ne_bytes([hdr[4], hdr[5]]);
                let seq = u32::from_ne_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
                if len < NLMSG_HDRLEN {
                    return Err(DiagError::Malformed {
                        offset: pos,
                        kind: MalformedKind::LengthTooSmall { len: len as u32 },
                    });
                }
                // NLMSG_ERROR (2) carries the ACK: error 0, or the negative errno.
                if seq == self.seq && kind == 2 {
                    let errno = self
                        .recv_buf
                        .get(pos + NLMSG_HDRLEN..pos + NLMSG_HDRLEN + 4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                        .saturating_neg();
                    if errno == 0 {
                        return Ok(());
                    }
                    let err = DiagError::Kernel { offset: 0, errno, source: io::Error::from_raw_os_error(errno) };
                    return Err(classify_kernel(err, s.family, s.protocol));
                }
                pos += len.next_multiple_of(4);
            }
        }
    }

    /// Dump the `protocol` sockets of one address family whose state bit is set in `states`
    /// (bit n = kernel TCP state n, as ss's `idiag_states`), in kernel order.
    ///
    /// # Errors
    /// [`DiagError::UnsupportedFamily`] for a family other than AF_INET/AF_INET6;
    /// [`DiagError::NotSupported`] when the kernel has no diag handler for it (ENOENT /
    /// EOPNOTSUPP); I/O, kernel and decoding errors otherwise.
    pub fn dump_inet(&mut self, protocol: u8, family: u16, states: u32) -> Result<Vec<InetSocket>, DiagError> {
        let seq = self.seq.wrapping_add(1);
        let request = build_request(protocol, family, states, seq, self.ext)?;
        let details = self.details;
        self.dump(&request, family, protocol, &mut |p| parse_inet_diag_msg_with(p, protocol, details))
    }

    /// Dump the MPTCP sockets of one address family whose state bit is in `states`, in
    /// kernel order, as ss asks for them (see [`mptcp`]); the records' `protocol` is
    /// [`PROTO_MPTCP_TABLE`](crate::model::socket::PROTO_MPTCP_TABLE).
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`]; [`DiagError::NotSupported`] without MPTCP diag.
    pub fn dump_mptcp(&mut self, family: u16, states: u32) -> Result<Vec<InetSocket>, DiagError> {
        use crate::model::socket::PROTO_MPTCP_TABLE;
        let request = mptcp::request(family, states, self.seq.wrapping_add(1), self.ext)?;
        let details = self.details;
        self.dump(&request, family, PROTO_MPTCP_TABLE, &mut |p| parse_inet_diag_msg_with(p, PROTO_MPTCP_TABLE, details))
    }

    /// Dump UNIX sockets whose state bit is in `states`, with name, peer and queues.
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`].
    pub fn dump_unix(&mut self, states: u32) -> Result<Vec<UnixSocket>, DiagError> {
        let request = unix::request(self.seq.wrapping_add(1), states, self.unix_show);
        let details = self.details;
        self.dump(&request, 1, 0, &mut |p| unix::parse(p, details))
    }

    /// Dump every packet socket, with its interface, receive queue and filter.
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`].
    pub fn dump_packet(&mut self) -> Result<Vec<PacketSocket>, DiagError> {
        let request = packet::request(self.seq.wrapping_add(1));
        self.dump(&request, 17, 0, &mut packet::parse)
    }

    /// Dump every netlink socket of every netlink protocol.
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`].
    pub fn dump_netlink(&mut self) -> Result<Vec<NetlinkSocket>, DiagError> {
        let request = netlink::request(self.seq.wrapping_add(1));
        self.dump(&request, 16, 0, &mut netlink::parse)
    }

    /// Dump vsock sockets whose state bit is in `states`.
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`]; [`DiagError::NotSupported`] without vsock_diag.
    pub fn dump_vsock(&mut self, states: u32) -> Result<Vec<VsockSocket>, DiagError> {
        let request = vsock::request(self.seq.wrapping_add(1), states);
        self.dump(&request, 40, 0, &mut vsock::parse)
    }

    /// Dump every AF_XDP socket, with what ss's `xdp_show` asks for (info, rings, umem,
    /// meminfo, stats).
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`]; [`DiagError::NotSupported`] without xsk_diag
    /// (`CONFIG_XDP_SOCKETS_DIAG`).
    pub fn dump_xdp(&mut self) -> Result<Vec<XdpSocket>, DiagError> {
        let request = xdp::request(self.seq.wrapping_add(1));
        self.dump(&request, 44, 0, &mut xdp::parse)
    }

    /// Count the replies of a dump of a family sockstat does not decode (TIPC), with
    /// the request struct `body` (after the netlink header). The caller refuses to print a
    /// table it cannot decode when this is not 0.
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`]; [`DiagError::NotSupported`] without the diag module.
    pub fn count_replies(&mut self, family: u16, body: &[u8]) -> Result<usize, DiagError> {
        let request = request::dump_request(self.seq.wrapping_add(1), body);
        Ok(self.dump(&request, family, 0, &mut |_| Ok(()))?.len())
    }

    /// Send `request` (whose sequence number is `self.seq + 1`) and decode every reply
    /// with `parse`, until `NLMSG_DONE`.
    fn dump<T>(
        &mut self,
        request: &[u8],
        family: u16,
        protocol: u8,
        parse: &mut dyn FnMut(&[u8]) -> Result<T, MalformedKind>,
    ) -> Result<Vec<T>, DiagError> {
        if self.poisoned {
            self.socket = open_socket()?;
            self.poisoned = false;
        }
        self.seq = self.seq.wrapping_add(1);
        // Poisoned until this dump's NLMSG_DONE is read; any early return leaves it set.
        self.poisoned = true;
        self.send(request)?;

        let mut decoder = Decoder::new(Some(self.seq));
        let mut records = Vec::new();
        loop {
            self.recv()?;
            if let Some(rec) = &mut self.recording {
                rec.extend_from_slice(&self.recv_buf);
            }
            let mut push = |p: &[u8]| -> Result<(), MalformedKind> {
                records.push(parse(p)?);
                Ok(())
            };
            match decoder.feed(&self.recv_buf, &mut push) {
                Ok(Step::More) => {}
                Ok(Step::Done { .. }) => break,
                Err(err) => {
                    // The kernel ended the request with its error: the socket is clean.
                    if matches!(err, DiagError::Kernel { .. }) {
                        self.poisoned = false;
                    }
                    return Err(classify_kernel(err, family, protocol));
                }
            }
        }
        self.poisoned = false;
        self.last_interrupted = decoder.interrupted;
        Ok(records)
    }

    /// Dump TCP sockets of each family in `families`, in that order, concatenated (ss -t
    /// dumps AF_INET, then AF_INET6).
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`], for the first family that fails.
    pub fn dump_tcp(&mut self, families: &[u16], states: u32) -> Result<Vec<InetSocket>, DiagError> {
        let mut all = Vec::new();
        let mut interrupted = false;
        for &family in families {
            all.extend(self.dump_inet(IPPROTO_TCP, family, states)?);
            interrupted |= self.last_interrupted;
        }
        self.last_interrupted = interrupted;
        Ok(all)
    }

    /// Whether the kernel flagged the last dump (`dump_tcp`: any of its dumps) with
    /// `NLM_F_DUMP_INTR`, i.e. it may be inconsistent. ss warns and prints it anyway.
    #[must_use]
    pub fn last_dump_interrupted(&self) -> bool {
        self.last_interrupted
    }

    fn send(&self, request: &[u8]) -> Result<(), DiagError> {
        loop {
            match self.socket.send_to(request, &SocketAddr::new(0, 0), 0) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(classify_io("sending the dump request", e, DiagError::Send)),
            }
        }
    }

    /// Receive one datagram into `recv_buf`.
    fn recv(&mut self) -> Result<(), DiagError> {
        loop {
            self.recv_buf.clear();
            // With MSG_TRUNC, netlink returns the datagram's real length even if it was cut.
            match self.socket.recv(&mut self.recv_buf, libc::MSG_TRUNC) {
                Ok(len) if len > self.recv_buf.len() => {
                    return Err(DiagError::DatagramTruncated { len, capacity: self.recv_buf.len() });
                }
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(classify_io("receiving replies", e, DiagError::Recv)),
            }
        }
    }
}

/// `enum sknetlink_groups` (include/uapi/linux/sock_diag.h): the NETLINK_SOCK_DIAG
/// multicast groups on which the kernel announces destroyed sockets, one per family and
/// protocol (net/core/sock_diag.c, `sock_diag_destroy_group`; raw sockets have none).
const SKNLGRP_INET_TCP_DESTROY: u32 = 1;
const SKNLGRP_INET_UDP_DESTROY: u32 = 2;
const SKNLGRP_INET6_TCP_DESTROY: u32 = 3;
const SKNLGRP_INET6_UDP_DESTROY: u32 = 4;

/// A set of destroy groups, as `bind(2)` takes them in `nl_groups`: group `g` is bit
/// `g - 1` (ss's `1 << (SKNLGRP_... - 1)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DestroyGroups(u32);

impl DestroyGroups {
    pub const NONE: Self = Self(0);
    pub const INET_TCP: Self = Self(1 << (SKNLGRP_INET_TCP_DESTROY - 1));
    pub const INET_UDP: Self = Self(1 << (SKNLGRP_INET_UDP_DESTROY - 1));
    pub const INET6_TCP: Self = Self(1 << (SKNLGRP_INET6_TCP_DESTROY - 1));
    pub const INET6_UDP: Self = Self(1 << (SKNLGRP_INET6_UDP_DESTROY - 1));

    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The `nl_groups` bitmask.
    #[must_use]
    pub const fn mask(self) -> u32 {
        self.0
    }
}

/// A `NETLINK_SOCK_DIAG` socket joined to destroy notification groups. Each notification
/// is what the kernel's `inet_diag_handler_get_info` (net/ipv4/inet_diag.c) writes: an
/// `inet_diag_msg` with the tuple, state, queues and cookie (uid, inode and timer are
/// left 0), then `INET_DIAG_PROTOCOL` and, for TCP, `INET_DIAG_INFO` (`struct tcp_info`).
/// They are decoded as dump replies are, into [`InetSocket`]s with their attributes.
#[derive(Debug)]
pub struct DestroyListener {
    socket: Socket,
    recv_buf: Vec<u8>,
    /// One decoder for the whole notification stream: offsets in errors count from the
    /// first byte received.
    decoder: Decoder,
}

impl DestroyListener {
    /// Opens a socket in the calling thread's network namespace and joins `groups` (by
    /// binding with them as `nl_groups`, as ss's `rtnl_open_byproto` does). The socket is
    /// non-blocking: [`DestroyListener::try_recv`] says when nothing is queued.
    ///
    /// # Errors
    /// [`DiagError::JoinDenied`] without CAP_NET_ADMIN; [`DiagError::Open`] otherwise.
    pub fn join(groups: DestroyGroups) -> Result<Self, DiagError> {
        let open_err = |e| classify_io("opening the socket", e, DiagError::Open);
        let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(open_err)?;
        // Room for bursts of notifications (each about 380 bytes for TCP) while we print.
        if setsockopt(&socket, sockopt::RcvBufForce, &RCVBUF_BYTES).is_err() {
            let _ = setsockopt(&socket, sockopt::RcvBuf, &RCVBUF_BYTES);
        }
        socket.bind(&SocketAddr::new(0, groups.mask())).map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => DiagError::JoinDenied { groups: groups.mask(), source: e },
            _ => DiagError::Open(e),
        })?;
        socket.set_non_blocking(true).map_err(DiagError::Open)?;
        Ok(Self {
            socket,
            recv_buf: Vec::with_capacity(RECV_CHUNK),
            // Notifications carry sequence number 0 (and port id 0); ss's reader keeps only
            // those too (`rth.dump = 0`).
            decoder: Decoder::notifications(),
        })
    }

    /// Reads one queued datagram and appends the sockets it announces to `out`, in order.
    /// Returns false when nothing was queued (the socket would block).
    ///
    /// # Errors
    /// [`DiagError::NotificationsLost`] when the kernel dropped notifications for want of
    /// buffer space; [`DiagError::Recv`], [`DiagError::DatagramTruncated`];
    /// [`DiagError::MalformedNotification`] for a message that is not a well-formed
    /// notification, naming its offset in the stream received so far.
    pub fn try_recv(&mut self, out: &mut Vec<InetSocket>) -> Result<bool, DiagError> {
        loop {
            self.recv_buf.clear();
            match self.socket.recv(&mut self.recv_buf, libc::MSG_TRUNC) {
                Ok(len) if len > self.recv_buf.len() => {
                    return Err(DiagError::DatagramTruncated { len, capacity: self.recv_buf.len() });
                }
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Err(DiagError::NotificationsLost(e)),
                Err(e) => return Err(DiagError::Recv(e)),
            }
        }
        decode_notifications(&mut self.decoder, &self.recv_buf, out)?;
        Ok(true)
    }
}

impl std::os::fd::AsRawFd for DestroyListener {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }
}

/// Decodes one datagram of destroy notifications with `decoder` (which keeps the stream
/// offset), appending the sockets to `out`.
fn decode_notifications(decoder: &mut Decoder, buf: &[u8], out: &mut Vec<InetSocket>) -> Result<(), DiagError> {
    let mut push = |p: &[u8]| -> Result<(), MalformedKind> {
        out.push(parse_destroy_notification(p)?);
        Ok(())
    };
    // A notification decoder reports NLMSG_DONE as an error: it never ends a stream.
    match decoder.feed(buf, &mut push) {
        Ok(_) => Ok(()),
        Err(DiagError::Malformed { offset, kind }) => Err(DiagError::MalformedNotification { offset, kind }),
        Err(e) => Err(e),
    }
}

fn open_socket() -> Result<Socket, DiagError> {
    let open_err = |e| classify_io("opening the socket", e, DiagError::Open);
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(open_err)?;
    // Best effort: a smaller buffer only means more, smaller reads.
    if setsockopt(&socket, sockopt::RcvBufForce, &RCVBUF_BYTES).is_err() {
        let _ = setsockopt(&socket, sockopt::RcvBuf, &RCVBUF_BYTES);
    }
    socket.bind_auto().map_err(open_err)?;
    // Not connected: requests are sent to the kernel (port 0) with sendto, as libnetlink
    // does, so this socket shows in a netlink dump as ss's own does (unconnected, `*`).
    Ok(socket)
}

/// The bytes of an `inet_diag_req_v2` dump request (include/uapi/linux/inet_diag.h), built
/// with netlink-packet-sock-diag.
fn build_request(protocol: u8, family: u16, states: u32, seq: u32, ext: u8) -> Result<Vec<u8>, DiagError> {
    let (af, socket_id) = match u8::try_from(family) {
        Ok(af @ netlink_packet_sock_diag::AF_INET) => (af, SocketId::new_v4()),
        Ok(af @ netlink_packet_sock_diag::AF_INET6) => (af, SocketId::new_v6()),
        _ => return Err(DiagError::UnsupportedFamily { family }),
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut message = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family: af,
            protocol,
            extensions: ExtensionFlags::from_bits_retain(ext),
            // Retain bits the crate has no name for (NEW_SYN_RECV, BOUND_INACTIVE).
            states: StateFlags::from_bits_retain(states),
            socket_id,
        })
        .into(),
    );
    message.finalize();
    let mut buf = vec![0; message.buffer_len()];
    message.serialize(&mut buf);
    Ok(buf)
}

/// `SOCK_DESTROY` (include/uapi/linux/sock_diag.h) with `NLM_F_REQUEST | NLM_F_ACK`, and
/// an `inet_diag_req_v2` naming the socket: family, protocol, ext, pad, states, then
/// `struct inet_diag_sockid` (ports and addresses in network order, `idiag_if`, cookie).
fn destroy_request(s: &InetSocket, seq: u32) -> Vec<u8> {
    const SOCK_DESTROY: u16 = 21;
    const REQUEST_ACK: u16 = 0x01 | 0x04;
    let addr = |a: &std::net::IpAddr| match a {
        std::net::IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            b
        }
        std::net::IpAddr::V6(v6) => v6.octets(),
    };
    // An MPTCP row is named as ss names it, by `(__u8)IPPROTO_MPTCP`, i.e. TCP: the kernel
    // finds no TCP socket with the MPTCP socket's cookie and answers ENOENT, so `-K`
    // closes no MPTCP socket, as with ss.
    let protocol =
        if s.protocol == crate::model::socket::PROTO_MPTCP_TABLE { mptcp::REQUEST_PROTOCOL_BYTE } else { s.protocol };
    let mut body = vec![u8::try_from(s.family).unwrap_or(0), protocol, 0, 0];
    body.extend_from_slice(&0u32.to_ne_bytes());
    body.extend_from_slice(&s.sport.to_be_bytes());
    body.extend_from_slice(&s.dport.to_be_bytes());
    body.extend_from_slice(&addr(&s.src));
    body.extend_from_slice(&addr(&s.dst));
    body.extend_from_slice(&s.ifindex.to_ne_bytes());
    // cookie[0] is the low word, cookie[1] the high one (ss's cookie_sk_get).
    body.extend_from_slice(&((s.cookie & 0xffff_ffff) as u32).to_ne_bytes());
    body.extend_from_slice(&((s.cookie >> 32) as u32).to_ne_bytes());
    let mut msg = request::dump_request(seq, &body);
    msg[4..6].copy_from_slice(&SOCK_DESTROY.to_ne_bytes());
    msg[6..8].copy_from_slice(&REQUEST_ACK.to_ne_bytes());
    msg
}

fn classify_io(op: &'static str, e: io::Error, other: fn(io::Error) -> DiagError) -> DiagError {
    if e.kind() == io::ErrorKind::PermissionDenied {
        DiagError::PermissionDenied { op, capability: CAPABILITY, source: e }
    } else {
        other(e)
    }
}

/// Give a kernel errno its meaning for this request.
fn classify_kernel(err: DiagError, family: u16, protocol: u8) -> DiagError {
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
    //! Requests (no root) and dumps in a private network namespace compared with the real
    //! `ss` (root: these create namespaces and fail, not skip, without CAP_SYS_ADMIN).

    use std::fs::File;
    use std::net::{IpAddr, TcpListener, TcpStream};
    use std::process::Command;
    use std::time::Instant;

    use anyhow::{Context, bail, ensure};
    use nix::sched::{CloneFlags, setns};

    use sockstat_ebpf::{AF_INET, AF_INET6};

    use super::*;
    /// ss 6.1's `-a`: every state up to and including NEW_SYN_RECV (SS_MAX = 13).
    const SS_ALL: u32 = (1 << 13) - 1;

    #[test]
    fn request_bytes_follow_inet_diag_req_v2() {
        let req = build_request(IPPROTO_TCP, AF_INET6, 0x1ffe, 77, 0).expect("inet family");
        // nlmsghdr (16) + inet_diag_req_v2 (56: 4 bytes, states, 48-byte sockid).
        assert_eq!(req.len(), 72);
        assert_eq!(u32::from_ne_bytes(req[0..4].try_into().expect("4")), 72);
        assert_eq!(u16::from_ne_bytes(req[4..6].try_into().expect("2")), 20, "SOCK_DIAG_BY_FAMILY");
        assert_eq!(u16::from_ne_bytes(req[6..8].try_into().expect("2")), 0x301, "REQUEST|DUMP");
        assert_eq!(u32::from_ne_bytes(req[8..12].try_into().expect("4")), 77);
        assert_eq!(&req[16..20], &[10, 6, 0, 0], "family, protocol, no extensions, pad");
        assert_eq!(u32::from_ne_bytes(req[20..24].try_into().expect("4")), 0x1ffe, "states kept whole");
        assert!(req[24..].iter().all(|&b| b == 0), "wildcard socket id");
    }

    #[test]
    fn request_rejects_non_inet_family() {
        let err = build_request(IPPROTO_TCP, 1, SS_ALL, 1, 0).expect_err("AF_UNIX");
        assert!(matches!(err, DiagError::UnsupportedFamily { family: 1 }), "{err:?}");
    }

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

    /// A named network namespace (`ip netns add`), deleted on drop.
    struct NetNs {
        name: String,
    }

    impl NetNs {
        fn create(tag: &str) -> anyhow::Result<Self> {
            require_root()?;
            let name = format!("sockstat-diag-{tag}-{}", std::process::id());
            run("ip", &["netns", "add", &name])?;
            let ns = Self { name };
            run("ip", &["-n", &ns.name, "link", "set", "lo", "up"])?;
            Ok(ns)
        }

        /// Move the calling thread (only) into the namespace: sockets it creates live there.
        fn enter_this_thread(&self) -> anyhow::Result<()> {
            let path = format!("/run/netns/{}", self.name);
            let file = File::open(&path).with_context(|| format!("opening {path}"))?;
            setns(&file, CloneFlags::CLONE_NEWNET).context("setns(CLONE_NEWNET)")
        }

        fn ss(&self, args: &[&str]) -> anyhow::Result<String> {
            let mut full = vec!["netns", "exec", &self.name, "ss"];
            full.extend_from_slice(args);
            run("ip", &full)
        }
    }

    impl Drop for NetNs {
        fn drop(&mut self) {
            if let Err(e) = run("ip", &["netns", "del", &self.name]) {
                eprintln!("could not delete network namespace {}: {e:#}", self.name);
            }
        }
    }

    fn require_root() -> anyhow::Result<()> {
        const CAP_SYS_ADMIN: u32 = 21;
        let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
        let cap_eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .context("no CapEff in /proc/self/status")?;
        ensure!(
            cap_eff & (1 << CAP_SYS_ADMIN) != 0,
            "this test must run as root: it creates and enters a network namespace, which needs \
             CAP_SYS_ADMIN (run `sudo -E cargo test -p sockstat --lib diag`)"
        );
        Ok(())
    }

    fn run(cmd: &str, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(cmd).args(args).output().with_context(|| format!("running {cmd}"))?;
        if !out.status.success() {
            bail!("`{cmd} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        String::from_utf8(out.stdout).context("non-UTF-8 output")
    }

    /// ss's `sstate_name` (misc/ss.c).
    fn ss_state_name(state: u8) -> &'static str {
        match state {
            1 => "ESTAB",
            2 => "SYN-SENT",
            3 | 12 => "SYN-RECV",
            4 => "FIN-WAIT-1",
            5 => "FIN-WAIT-2",
            6 => "TIME-WAIT",
            7 => "UNCONN",
            8 => "CLOSE-WAIT",
            9 => "LAST-ACK",
            10 => "LISTEN",
            11 => "CLOSING",
            _ => "UNKNOWN",
        }
    }

    /// `127.0.0.1:80`, `[::1]:80`, `0.0.0.0:*` -> (address, port); `*` as a port is 0.
    fn split_endpoint(s: &str) -> anyhow::Result<(IpAddr, u16)> {
        let (host, port) = s.rsplit_once(':').with_context(|| format!("no port in {s}"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.split('%').next().unwrap_or(host);
        let port = if port == "*" { 0 } else { port.parse().with_context(|| format!("port in {s}"))? };
        Ok((host.parse().with_context(|| format!("address in {s}"))?, port))
    }

    /// One line of `ss -tanHe` checked field by field against our record.
    fn check_line(ours: &InetSocket, line: &str) -> anyhow::Result<()> {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [state, rq, wq, local, peer, details @ ..] = cols.as_slice() else {
            bail!("short ss line: {line}");
        };
        let detail = |key: &str| details.iter().find_map(|d| d.strip_prefix(key));
        ensure!(*state == ss_state_name(ours.state), "state: ss {state}, ours {ours:?}");
        ensure!(rq.parse::<u32>()? == ours.rqueue && wq.parse::<u32>()? == ours.wqueue, "queues: {line} vs {ours:?}");
        ensure!(split_endpoint(local)? == (ours.src, ours.sport), "local: {line} vs {ours:?}");
        ensure!(split_endpoint(peer)? == (ours.dst, ours.dport), "peer: {line} vs {ours:?}");
        ensure!(detail("ino:").context("no ino:")?.parse::<u32>()? == ours.inode, "inode: {line} vs {ours:?}");
        let sk = u64::from_str_radix(detail("sk:").context("no sk:")?, 16)?;
        ensure!(sk == ours.cookie, "cookie: ss sk:{sk:x}, ours {:x}", ours.cookie);
        // ss prints uid only when it is not 0.
        let uid = detail("uid:").map_or(Ok(0), str::parse::<u32>)?;
        ensure!(uid == ours.uid, "uid: {line} vs {ours:?}");
        Ok(())
    }

    #[test]
    fn dump_matches_ss_in_a_network_namespace() -> anyhow::Result<()> {
        let ns = NetNs::create("cmp")?;
        let (ours, ss_out) = std::thread::scope(|s| {
            s.spawn(|| -> anyhow::Result<_> {
                ns.enter_this_thread()?;
                let l4 = TcpListener::bind("127.0.0.1:0")?;
                let l6 = TcpListener::bind("[::1]:0")?;
                let c4 = TcpStream::connect(l4.local_addr()?)?;
                let a4 = l4.accept()?;
                let c6 = TcpStream::connect(l6.local_addr()?)?;
                let a6 = l6.accept()?;
                let mut diag = SockDiag::open()?;
                let ours = diag.dump_tcp(&[AF_INET, AF_INET6], SS_ALL)?;
                // The socket is reusable: a second dump sees the same sockets.
                let again = diag.dump_tcp(&[AF_INET, AF_INET6], SS_ALL)?;
                ensure!(again == ours, "second dump differs:\n{again:#?}\nfirst:\n{ours:#?}");
                let ss_out = ns.ss(&["-tanHe"])?;
                drop((c4, a4, c6, a6, l4, l6));
                Ok((ours, ss_out))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("namespace thread panicked"))?
        })?;

        let lines: Vec<&str> = ss_out.lines().filter(|l| !l.trim().is_empty()).collect();
        // 2 listeners + 2 connected pairs (4 sockets): a non-empty, non-trivial comparison.
        ensure!(ours.len() == 6, "expected 6 sockets, dumped {}: {ours:#?}", ours.len());
        ensure!(lines.len() == ours.len(), "ss shows {} sockets, we dumped {}:\n{ss_out}", lines.len(), ours.len());
        for (i, (rec, line)) in ours.iter().zip(&lines).enumerate() {
            check_line(rec, line).with_context(|| format!("record {i}"))?;
        }
        let listening = ours.iter().filter(|s| s.state == 10).count();
        ensure!(listening == 2, "two LISTEN sockets expected: {ours:#?}");
        ensure!(ours.iter().all(|s| s.cookie != 0 && s.inode != 0), "cookies and inodes set: {ours:#?}");
        Ok(())
    }

    #[test]
    fn unknown_protocol_is_not_supported() -> anyhow::Result<()> {
        // IPPROTO_RAW (255): this kernel has no RAW_DIAG, so inet_diag has no handler.
        let mut diag = SockDiag::open()?;
        match diag.dump_inet(255, AF_INET, SS_ALL) {
            Err(DiagError::NotSupported { family: AF_INET, protocol: 255, source }) => {
                let errno = source.raw_os_error();
                ensure!(errno == Some(libc::ENOENT) || errno == Some(libc::EOPNOTSUPP), "errno {errno:?}");
            }
            other => bail!("expected NotSupported, got {other:?}"),
        }
        // The error ended that request cleanly: the same socket still dumps.
        diag.dump_inet(IPPROTO_TCP, AF_INET, SS_ALL)?;
        Ok(())
    }

    #[test]
    fn destroy_notifications_of_the_joined_groups_arrive() -> anyhow::Result<()> {
        let ns = NetNs::create("destroy")?;
        let got = std::thread::scope(|s| {
            s.spawn(|| -> anyhow::Result<_> {
                ns.enter_this_thread()?;
                let mut listener = DestroyListener::join(DestroyGroups::INET_TCP.union(DestroyGroups::INET6_UDP))?;
                let l4 = TcpListener::bind("127.0.0.1:0")?;
                let port = l4.local_addr()?.port();
                // Not joined: IPv4 UDP and IPv6 TCP.
                drop(std::net::UdpSocket::bind("127.0.0.1:0")?);
                drop(TcpListener::bind("[::1]:0")?);
                drop(std::net::UdpSocket::bind("[::1]:4242")?);
                drop(l4);
                let mut got = Vec::new();
                let deadline = Instant::now() + std::time::Duration::from_secs(5);
                while got.len() < 2 && Instant::now() < deadline {
                    if !listener.try_recv(&mut got)? {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                }
                // Nothing else was announced.
                std::thread::sleep(std::time::Duration::from_millis(100));
                while listener.try_recv(&mut got)? {}
                Ok((got, port))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("namespace thread panicked"))?
        });
        let (got, port) = got?;
        // The kernel broadcasts from a workqueue: the order is not guaranteed.
        let mut seen: Vec<(u16, u8, u16, u8)> = got.iter().map(|s| (s.family, s.protocol, s.sport, s.state)).collect();
        seen.sort_unstable();
        // The IPv4 TCP listener and the IPv6 UDP socket, both in CLOSE.
        ensure!(seen == [(AF_INET, IPPROTO_TCP, port, 7), (AF_INET6, 17, 4242, 7)], "{got:#?}");
        ensure!(got.iter().all(|s| s.cookie != 0 && s.inode == 0), "{got:#?}");
        let tcp_info = |s: &InetSocket| s.ext.as_ref().is_some_and(|d| d.tcp_info.is_some());
        ensure!(got.iter().all(|s| tcp_info(s) == (s.protocol == IPPROTO_TCP)), "only TCP carries tcp_info: {got:#?}");
        Ok(())
    }

    /// A measurement, printed (run with `--nocapture`); it asserts only that the dump is whole.
    #[test]
    fn dump_speed_two_thousand_sockets() -> anyhow::Result<()> {
        const PAIRS: usize = 1000;
        let ns = NetNs::create("speed")?;
        std::thread::scope(|s| {
            s.spawn(|| -> anyhow::Result<()> {
                ns.enter_this_thread()?;
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                let mut held = Vec::with_capacity(2 * PAIRS);
                for _ in 0..PAIRS {
                    held.push(TcpStream::connect(addr)?);
                    held.push(listener.accept()?.0);
                }
                let mut diag = SockDiag::open()?;
                let mut times = Vec::new();
                for _ in 0..7 {
                    let start = Instant::now();
                    let n = diag.dump_tcp(&[AF_INET, AF_INET6], SS_ALL)?.len();
                    times.push(start.elapsed());
                    ensure!(n == 2 * PAIRS + 1, "dumped {n} sockets, expected {}", 2 * PAIRS + 1);
                }
                times.sort();
                let start = Instant::now();
                let ss_lines = ns.ss(&["-tanH"])?.lines().count();
                let ss_time = start.elapsed();
                println!(
                    "diag: {} sockets: dump_tcp min {:?}, median {:?}; `ip netns exec .. ss -tanH` ({ss_lines} lines, whole process) {:?}",
                    2 * PAIRS + 1,
                    times[0],
                    times[times.len() / 2],
                    ss_time,
                );
                Ok(())
            })
            .join()
            .map_err(|_| anyhow::anyhow!("namespace thread panicked"))?
        })
    }
}
