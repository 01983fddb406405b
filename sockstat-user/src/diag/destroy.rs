//! The other way sock_diag talks: [`DestroyListener`], a socket joined to the multicast
//! groups ([`DestroyGroups`]) on which the kernel announces every destroyed TCP or UDP
//! socket (what `ss -E` reads), and the decoding of those notifications by the inet
//! decoder that reads a dump's replies.
//!
//! Imports the socket (`socket`), the framing (`nlmsg`, `error`), the inet decoder
//! (`inet`) and `model`; only `mod.rs` sits above it.

use std::io;

use netlink_sys::{Socket, SocketAddr};

use super::error::{DiagError, MalformedKind};
use super::inet::{INET_DIAG_MSG_LEN, parse_inet_diag_msg_with};
use super::nlmsg::{Decoder, attributes, head};
use super::socket::{RECV_CHUNK, new_socket};
use crate::model::socket::InetSocket;

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
        // The receive buffer leaves room for bursts of notifications (each about 380 bytes
        // for TCP) while we print.
        let mut socket = new_socket()?;
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

/// `INET_DIAG_PROTOCOL` (include/uapi/linux/inet_diag.h): a u8, the socket's IP protocol.
/// A dump reply leaves it out (the request names the protocol); a destroy notification
/// always carries it (net/ipv4/inet_diag.c, `inet_diag_handler_get_info`).
const INET_DIAG_PROTOCOL: u16 = 10;

/// Decode one destroy notification: an `inet_diag_msg` whose protocol is in its
/// `INET_DIAG_PROTOCOL` attribute, with every attribute it carries (for TCP,
/// `INET_DIAG_INFO`) decoded into `ext`, as ss's `inet_show_sock` reads them.
///
/// # Errors
/// What [`parse_inet_diag_msg_with`] rejects, and a notification without
/// `INET_DIAG_PROTOCOL`.
pub(crate) fn parse_destroy_notification(payload: &[u8]) -> Result<InetSocket, MalformedKind> {
    head::<INET_DIAG_MSG_LEN>(payload, "inet_diag_msg")?;
    let attrs = payload.get(INET_DIAG_MSG_LEN..).unwrap_or_default();
    let mut protocol = None;
    for a in attributes(attrs, INET_DIAG_MSG_LEN)? {
        if a.kind == INET_DIAG_PROTOCOL {
            protocol = Some(a.array::<1>("INET_DIAG_PROTOCOL")?[0]);
        }
    }
    let protocol = protocol.ok_or(MalformedKind::MissingAttribute { what: "INET_DIAG_PROTOCOL" })?;
    parse_inet_diag_msg_with(payload, protocol, true, 0)
}

#[cfg(test)]
mod tests {
    use super::super::inet::fixtures::*;
    use super::super::nlmsg::{Step, test_rtattr};
    use super::*;
    use netlink_packet_core::NLMSG_DONE;
    use netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY;

    /// A destroy notification as the kernel broadcasts it: sequence number 0, the
    /// `inet_diag_msg`, `INET_DIAG_PROTOCOL` (unless `protocol` is `None`), then `extra`.
    fn notification(raw: &Raw, protocol: Option<u8>, extra: &[u8]) -> Vec<u8> {
        let mut payload = raw.bytes();
        if let Some(p) = protocol {
            payload.extend(test_rtattr(INET_DIAG_PROTOCOL, &[p]));
        }
        payload.extend_from_slice(extra);
        nlmsg(SOCK_DIAG_BY_FAMILY, 0, 0, &payload)
    }

    fn feed_notifications(decoder: &mut Decoder, buf: &[u8], out: &mut Vec<InetSocket>) -> Result<Step, DiagError> {
        decoder.feed(buf, &mut |p: &[u8]| -> Result<(), MalformedKind> {
            out.push(parse_destroy_notification(p)?);
            Ok(())
        })
    }

    #[test]
    fn destroy_notifications_take_the_protocol_from_their_attribute() {
        // A TCP notification carries INET_DIAG_INFO (type 2): a tcp_info, here 8 bytes
        // (state CLOSE, then ca_state .. rcv_wscale), zero-filled past what was sent.
        let info = test_rtattr(2, &[7, 0, 0, 0, 0, 0, 0x77, 0]);
        let mut datagram = notification(&v4_raw(), Some(TCP), &info);
        // A reply to someone's request (sequence number not 0) is not a notification.
        datagram.extend(nlmsg(SOCK_DIAG_BY_FAMILY, 0, SEQ, &v4_raw().bytes()));
        datagram.extend(notification(&v6_raw(), Some(17), &[]));
        let mut decoder = Decoder::notifications();
        let mut out = Vec::new();
        assert_eq!(feed_notifications(&mut decoder, &datagram, &mut out).expect("valid"), Step::More);
        let [tcp, udp] = out.as_slice() else { panic!("two notifications: {out:?}") };
        assert_eq!((tcp.family, tcp.protocol, tcp.sport, tcp.cookie), (2, TCP, 8080, 0xab_1122_3344));
        let info = tcp.ext.as_ref().and_then(|d| d.tcp_info.as_ref()).expect("tcp_info decoded");
        assert_eq!((info.state, info.snd_wscale, info.rcv_wscale), (7, 7, 7));
        assert_eq!((udp.family, udp.protocol, udp.wqueue), (10, 17, 4096));
        assert!(udp.ext.as_ref().is_some_and(|d| d.tcp_info.is_none()));
    }

    #[test]
    fn malformed_notifications_name_problem_and_stream_offset() {
        let mut decoder = Decoder::notifications();
        let mut out = Vec::new();
        let first = notification(&v4_raw(), Some(TCP), &[]);
        feed_notifications(&mut decoder, &first, &mut out).expect("valid");
        // No INET_DIAG_PROTOCOL: an error at the second datagram's first byte.
        let (offset, kind) = malformed(
            feed_notifications(&mut decoder, &notification(&v4_raw(), None, &[]), &mut out).expect_err("no protocol"),
        );
        assert_eq!((offset, kind), (first.len(), MalformedKind::MissingAttribute { what: "INET_DIAG_PROTOCOL" }));

        let cases: Vec<(Vec<u8>, MalformedKind)> = vec![
            // NLMSG_DONE never ends a notification stream.
            (nlmsg(NLMSG_DONE, 2, 0, &0i32.to_ne_bytes()), MalformedKind::UnexpectedType(NLMSG_DONE)),
            (
                nlmsg(SOCK_DIAG_BY_FAMILY, 0, 0, &[0; 40]),
                MalformedKind::TruncatedPayload { what: "inet_diag_msg", needed: INET_DIAG_MSG_LEN, available: 40 },
            ),
            // An attribute claiming more bytes than the message has.
            (
                notification(&v4_raw(), Some(TCP), &[64, 0, 2, 0]),
                MalformedKind::BadAttribute { at: INET_DIAG_MSG_LEN + 8, len: 64, available: 4 },
            ),
            (
                notification(&v4_raw(), None, &test_rtattr(INET_DIAG_PROTOCOL, &[])),
                MalformedKind::ShortAttribute {
                    what: "INET_DIAG_PROTOCOL",
                    at: INET_DIAG_MSG_LEN + 4,
                    needed: 1,
                    available: 0,
                },
            ),
        ];
        for (buf, want) in cases {
            let mut decoder = Decoder::notifications();
            let mut ok = notification(&v6_raw(), Some(17), &[]);
            let at = ok.len();
            ok.extend(buf);
            let (offset, kind) = malformed(feed_notifications(&mut decoder, &ok, &mut out).expect_err("malformed"));
            assert_eq!((offset, kind), (at, want));
        }
    }
}
