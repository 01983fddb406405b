//! sock_diag (`NETLINK_SOCK_DIAG`) dumps, made as ss makes them: one `SOCK_DIAG_BY_FAMILY`
//! and `NLM_F_DUMP` request per address family (inet: per protocol and family; UNIX, packet,
//! netlink, vsock: one each), replies decoded into records in the order the kernel dumps
//! them (ss prints them in that order). Every column a record carries comes from the kernel
//! at the time of the dump ([`Source::Kernel`]).
//!
//! The layer imports only `model` (and `sockstat-ebpf`'s constants). Inside it, each file
//! imports only the files listed before it here, never one after:
//! - `error`: [`DiagError`] and [`MalformedKind`], the errno classification;
//! - `socket`: opening the `NETLINK_SOCK_DIAG` socket, its buffer sizes;
//! - `nlmsg`: netlink framing, no I/O: requests built (`dump_request`, request
//!   attributes), reply streams walked (`Decoder`), attributes split;
//! - `mptcp`: the MPTCP request attribute and `mptcp_info`;
//! - `inet_ext`: the attributes after an `inet_diag_msg` (`-e -m -i`, `tcp_info`);
//! - `bytecode`: `INET_DIAG_REQ_BYTECODE` programs splitting a dump into disjoint shares;
//! - `inet`: the inet requests (dump, MPTCP, `SOCK_DESTROY`) and the inet decoder,
//!   [`parse_inet_replies`], which also reads recorded reply streams (`-D FILE`);
//! - `unix`, `packet`, `netlink`, `vsock`, `xdp`: one family each, request and decoding;
//! - `destroy`: [`DestroyListener`], a socket joined to the multicast groups on which the
//!   kernel announces every destroyed TCP or UDP socket (what `ss -E` reads), decoded by
//!   the inet decoder;
//! - this file: [`SockDiag`], the socket that sends the requests and feeds the replies to
//!   the decoders, and the re-exports that make up `crate::diag`.
//!
//! RAW sockets are not here: this kernel has no RAW_DIAG, so ss (and `sys`) read
//! /proc/net/raw.
//!
//! [`Source::Kernel`]: crate::model::socket::Source::Kernel

pub mod bytecode;
mod destroy;
mod error;
mod inet;
pub mod inet_ext;
mod mptcp;
mod netlink;
mod nlmsg;
mod packet;
mod socket;
mod unix;
mod vsock;
mod xdp;

use std::io;

use netlink_sys::{Socket, SocketAddr};
use sockstat_ebpf::IPPROTO_TCP;

pub use self::destroy::{DestroyGroups, DestroyListener};
pub use self::error::{DiagError, MalformedKind};
use self::error::{classify_io, classify_kernel};
use self::inet::parse_inet_diag_msg_with;
pub use self::inet::{
    INET_DIAG_MSG_LEN, InetDump, StorageRequest, parse_first_inet_dump, parse_inet_replies, parse_inet_replies_with,
};
pub use self::nlmsg::NLMSG_HDRLEN;
use self::nlmsg::{Decoder, Step};
use crate::model::socket::{InetSocket, NetlinkSocket, PacketSocket, UnixSocket, VsockSocket, XdpSocket};

/// A family's decoder of one reply payload, given the payload's offset in its datagram.
type ParsePayload<'a, T> = dyn FnMut(&[u8], usize) -> Result<T, MalformedKind> + 'a;

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
    /// The BPF socket-local storages inet requests ask for.
    storages: Option<StorageRequest>,
    /// The program inet dumps send (`INET_DIAG_REQ_BYTECODE`): only the sockets it keeps
    /// are filled and sent.
    bytecode: Option<Vec<u8>>,
}

impl SockDiag {
    /// Open the socket in the calling thread's network namespace.
    ///
    /// # Errors
    /// [`DiagError::Open`], or [`DiagError::PermissionDenied`] if the socket is refused.
    pub fn open() -> Result<Self, DiagError> {
        Ok(Self {
            socket: open_socket()?,
            recv_buf: Vec::with_capacity(socket::RECV_CHUNK),
            seq: 0x5eed_0000,
            poisoned: false,
            last_interrupted: false,
            ext: 0,
            details: false,
            unix_show: 0,
            recording: None,
            storages: None,
            bytecode: None,
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

    /// Send `code` with every inet dump: the kernel fills only the sockets it keeps
    /// ([`bytecode`] builds them).
    #[must_use]
    pub fn with_bytecode(mut self, code: Vec<u8>) -> Self {
        self.bytecode = Some(code);
        self
    }

    /// Also ask inet dumps for the sockets' BPF local storages (`--bpf-maps`,
    /// `--bpf-map-id`), decoded into each record's details.
    #[must_use]
    pub fn with_storages(mut self, storages: Option<StorageRequest>) -> Self {
        self.details |= storages.is_some();
        self.storages = storages;
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
        let request = inet::destroy_request(s, self.seq);
        self.send(&request)?;
        loop {
            self.recv()?;
            if let Some(errno) = nlmsg::ack_errno(&self.recv_buf, self.seq)? {
                if errno == 0 {
                    return Ok(());
                }
                let err = DiagError::Kernel { offset: 0, errno, source: io::Error::from_raw_os_error(errno) };
                return Err(classify_kernel(err, s.family, s.protocol));
            }
        }
    }

    /// The cookie of the network namespace this socket lives in (SO_NETNS_COOKIE), the
    /// name the sock_ops program's request events give a namespace.
    ///
    /// # Errors
    /// The kernel refused the option (Linux 5.14 added it).
    pub fn netns_cookie(&self) -> io::Result<u64> {
        use std::os::fd::AsRawFd;
        // include/uapi/asm-generic/socket.h (every architecture but alpha, mips, parisc
        // and sparc).
        const SO_NETNS_COOKIE: libc::c_int = 71;
        let mut cookie = 0u64;
        let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
        // SAFETY: a valid socket fd; `cookie` and `len` are valid for writes of the sizes
        // given.
        let ret = unsafe {
            libc::getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_NETNS_COOKIE,
                (&raw mut cookie).cast(),
                &raw mut len,
            )
        };
        if ret == 0 { Ok(cookie) } else { Err(io::Error::last_os_error()) }
    }

    /// The socket with `s`'s tuple, interface and cookie as the kernel has it now (an
    /// exact lookup, no walk of its tables); `None` if it is gone (or its tuple now
    /// belongs to another socket).
    ///
    /// # Errors
    /// I/O, kernel errors other than "not found", and undecodable replies.
    pub fn lookup_inet(&mut self, s: &InetSocket) -> Result<Option<InetSocket>, DiagError> {
        if self.poisoned {
            self.socket = open_socket()?;
            self.poisoned = false;
        }
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        self.send(&inet::lookup_request(s, seq))?;
        loop {
            self.recv()?;
            if let Some(errno) = nlmsg::ack_errno(&self.recv_buf, seq)? {
                return match errno {
                    libc::ENOENT | libc::ESTALE => Ok(None),
                    _ => Err(DiagError::Kernel { offset: 0, errno, source: io::Error::from_raw_os_error(errno) }),
                };
            }
            // The answer is one inet_diag_msg with this request's sequence number.
            let mut found = None;
            let mut decoder = Decoder::new(Some(seq));
            let details = self.details;
            let mut take = |p: &[u8]| -> Result<(), error::MalformedKind> {
                found = Some(parse_inet_diag_msg_with(p, s.protocol, details, 0)?);
                Ok(())
            };
            decoder.feed(&self.recv_buf, &mut take)?;
            if found.is_some() {
                return Ok(found);
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
        let mut request = inet::dump_request_v2(protocol, family, states, seq, self.ext)?;
        if let Some(code) = &self.bytecode {
            inet::add_bytecode_attr(&mut request, code);
        }
        if let Some(r) = &self.storages {
            inet::add_storage_attr(&mut request, r);
        }
        let details = self.details;
        self.dump(&request, family, protocol, &mut |p, at| parse_inet_diag_msg_with(p, protocol, details, at))
    }

    /// Dump the TCP sockets of both families whose state bit is in `states` in one walk of
    /// the kernel's tables (see [`inet::tcp_any_family_request`]): rows of the two families
    /// interleaved in the kernel's order, listeners first. The filter program goes with
    /// it. With socket-local storages asked for (ss prints their values according to where
    /// they land in its datagrams, one dump per family), or when the kernel refuses the
    /// request, it dumps each family in turn, as [`SockDiag::dump_tcp`] does.
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`].
    pub fn dump_tcp_any_family(&mut self, states: u32) -> Result<Vec<InetSocket>, DiagError> {
        if self.storages.is_some() {
            return self.dump_tcp(&[sockstat_ebpf::AF_INET, sockstat_ebpf::AF_INET6], states);
        }
        let mut request = inet::tcp_any_family_request(states, self.seq.wrapping_add(1), self.ext);
        if let Some(code) = &self.bytecode {
            inet::add_bytecode_attr(&mut request, code);
        }
        let details = self.details;
        match self.dump(&request, 0, IPPROTO_TCP, &mut |p, at| parse_inet_diag_msg_with(p, IPPROTO_TCP, details, at)) {
            // A kernel that refuses the older request still answers one per family.
            Err(DiagError::NotSupported { .. } | DiagError::Kernel { errno: libc::EINVAL, .. }) => {
                self.dump_tcp(&[sockstat_ebpf::AF_INET, sockstat_ebpf::AF_INET6], states)
            }
            got => got,
        }
    }

    /// Dump the MPTCP sockets of one address family whose state bit is in `states`, in
    /// kernel order, as ss asks for them (the `mptcp` module says how); the records' `protocol` is
    /// [`PROTO_MPTCP_TABLE`](crate::model::socket::PROTO_MPTCP_TABLE).
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`]; [`DiagError::NotSupported`] without MPTCP diag.
    pub fn dump_mptcp(&mut self, family: u16, states: u32) -> Result<Vec<InetSocket>, DiagError> {
        use crate::model::socket::PROTO_MPTCP_TABLE;
        let mut request = inet::mptcp_request(family, states, self.seq.wrapping_add(1), self.ext)?;
        if let Some(r) = &self.storages {
            inet::add_storage_attr(&mut request, r);
        }
        let details = self.details;
        self.dump(&request, family, PROTO_MPTCP_TABLE, &mut |p, at| {
            parse_inet_diag_msg_with(p, PROTO_MPTCP_TABLE, details, at)
        })
    }

    /// Dump UNIX sockets whose state bit is in `states`, with name, peer and queues.
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`].
    pub fn dump_unix(&mut self, states: u32) -> Result<Vec<UnixSocket>, DiagError> {
        let request = unix::request(self.seq.wrapping_add(1), states, self.unix_show);
        let details = self.details;
        self.dump(&request, 1, 0, &mut |p, _| unix::parse(p, details))
    }

    /// Dump every packet socket, with its interface, receive queue and filter.
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`].
    pub fn dump_packet(&mut self) -> Result<Vec<PacketSocket>, DiagError> {
        let request = packet::request(self.seq.wrapping_add(1));
        self.dump(&request, 17, 0, &mut |p, _| packet::parse(p))
    }

    /// Dump every netlink socket of every netlink protocol.
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`].
    pub fn dump_netlink(&mut self) -> Result<Vec<NetlinkSocket>, DiagError> {
        let request = netlink::request(self.seq.wrapping_add(1));
        self.dump(&request, 16, 0, &mut |p, _| netlink::parse(p))
    }

    /// Dump vsock sockets whose state bit is in `states`.
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`]; [`DiagError::NotSupported`] without vsock_diag.
    pub fn dump_vsock(&mut self, states: u32) -> Result<Vec<VsockSocket>, DiagError> {
        let request = vsock::request(self.seq.wrapping_add(1), states);
        self.dump(&request, 40, 0, &mut |p, _| vsock::parse(p))
    }

    /// Dump every AF_XDP socket, with what ss's `xdp_show` asks for (info, rings, umem,
    /// meminfo, stats).
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`]; [`DiagError::NotSupported`] without xsk_diag
    /// (`CONFIG_XDP_SOCKETS_DIAG`).
    pub fn dump_xdp(&mut self) -> Result<Vec<XdpSocket>, DiagError> {
        let request = xdp::request(self.seq.wrapping_add(1));
        self.dump(&request, 44, 0, &mut |p, _| xdp::parse(p))
    }

    /// Count the replies of a dump of a family sockstat does not decode (TIPC), with
    /// the request struct `body` (after the netlink header). The caller refuses to print a
    /// table it cannot decode when this is not 0.
    ///
    /// # Errors
    /// As [`SockDiag::dump_inet`]; [`DiagError::NotSupported`] without the diag module.
    pub fn count_replies(&mut self, family: u16, body: &[u8]) -> Result<usize, DiagError> {
        let request = nlmsg::dump_request(self.seq.wrapping_add(1), body);
        Ok(self.dump(&request, family, 0, &mut |_, _| Ok(()))?.len())
    }

    /// Send `request` (whose sequence number is `self.seq + 1`) and decode every reply
    /// with `parse`, until `NLMSG_DONE`.
    fn dump<T>(
        &mut self,
        request: &[u8],
        family: u16,
        protocol: u8,
        parse: &mut ParsePayload<'_, T>,
    ) -> Result<Vec<T>, DiagError> {
        if self.poisoned {
            self.socket = open_socket()?;
            self.poisoned = false;
        }
        self.seq = self.seq.wrapping_add(1);
        // Poisoned until this dump's NLMSG_DONE is read; any early return leaves it set.
        self.poisoned = true;
        self.send(request)?;

        // A dump's replies carry its request's type.
        let kind = request.get(4..6).map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]));
        let mut decoder = Decoder::new(Some(self.seq)).replying_to(kind);
        let mut records = Vec::new();
        loop {
            self.recv()?;
            if let Some(rec) = &mut self.recording {
                rec.extend_from_slice(&self.recv_buf);
            }
            // Each payload's offset in its datagram: where ss, which receives a datagram
            // into a fresh malloc'd buffer, finds it (btf_dump prints some misaligned
            // socket-local storage values differently).
            let base = self.recv_buf.as_ptr() as usize;
            let mut push = |p: &[u8]| -> Result<(), MalformedKind> {
                records.push(parse(p, p.as_ptr() as usize - base)?);
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

fn open_socket() -> Result<Socket, DiagError> {
    let mut socket = socket::new_socket()?;
    socket.bind_auto().map_err(socket::open_err)?;
    // Not connected: requests are sent to the kernel (port 0) with sendto, as libnetlink
    // does, so this socket shows in a netlink dump as ss's own does (unconnected, `*`).
    Ok(socket)
}

#[cfg(test)]
mod tests {
    //! The socket against the kernel, in the calling namespace (no root: a plain dump needs
    //! no privilege). The dumps compared with the real `ss` in network namespaces, which
    //! need root, are root tests in `tests/tests/diag.rs`.

    use anyhow::{bail, ensure};
    use sockstat_ebpf::AF_INET;

    use super::*;
    /// ss 6.1's `-a`: every state up to and including NEW_SYN_RECV (SS_MAX = 13).
    const SS_ALL: u32 = (1 << 13) - 1;

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
}
