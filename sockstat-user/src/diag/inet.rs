//! The inet decoder and the inet requests: `inet_diag_req_v2` built for a dump (TCP, UDP,
//! ..., MPTCP with its attribute) and for `SOCK_DESTROY`, and the decoding of sock_diag inet
//! replies: the bytes of concatenated netlink messages in, [`InetSocket`] records out. No
//! I/O here, so one decoder serves a live dump (fed one datagram at a time by
//! `SockDiag`) and a recorded reply stream (`-D FILE` writes the reply datagrams back to
//! back, `NLMSG_DONE` included, as `ss -D` does).
//!
//! Imports the framing (`nlmsg`, `error`), `inet_ext` (the attributes after an
//! `inet_diag_msg`), `mptcp` and `model`; the destroy listener and the socket (`mod.rs`)
//! sit above it.
//!
//! Why not `netlink-packet-sock-diag`'s `InetResponse` parser: it turns `idiag_timer` into an
//! enum that drops `idiag_expires` for the TIME-WAIT timer (ss prints it in `-o`) and drops
//! `idiag_retrans` for every timer but retransmit, and it boxes each reply and decodes all of
//! its attributes, which a 100k-socket dump does not need. `inet_diag_msg` is a fixed
//! 72-byte struct, so it is read here by offset, every read length-checked.
//!
//! Why not its `InetRequest` either: requests of every family are built one way, by hand on
//! [`nlmsg::dump_request`](super::nlmsg::dump_request), because that is the way that can say
//! everything ss sends: MPTCP's `INET_DIAG_REQ_PROTOCOL` attribute after the struct, a
//! `SOCK_DESTROY` naming one socket with `NLM_F_ACK`, and state bits the crate has no name
//! for (NEW_SYN_RECV, BOUND_INACTIVE). The bytes are those the crate built before (a test
//! builds them both ways and compares), so what ss is compared with and what `-D FILE`
//! recorded does not change.
//!
//! Integers other than ports and addresses are in host byte order (netlink is host-endian),
//! so a recorded stream is only readable on a machine of the same endianness.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST};
use netlink_packet_sock_diag::{AF_INET, AF_INET6, SOCK_DESTROY};

use super::error::{DiagError, MalformedKind};
use super::nlmsg::{Decoder, NLMSG_HDRLEN, Step, dump_request, request, u16_ne_at};
use super::{inet_ext, mptcp};
use crate::model::socket::{InetSocket, PROTO_MPTCP_TABLE, Source};

/// `sizeof(struct inet_diag_msg)` (include/uapi/linux/inet_diag.h); attributes follow it.
pub const INET_DIAG_MSG_LEN: usize = 72;

// Field offsets inside `struct inet_diag_msg` (include/uapi/linux/inet_diag.h). The embedded
// `struct inet_diag_sockid` starts at 4: `__be16 idiag_sport` @4, `__be16 idiag_dport` @6,
// `__be32 idiag_src[4]` @8, `__be32 idiag_dst[4]` @24, `__u32 idiag_if` @40,
// `__u32 idiag_cookie[2]` @44. An AF_INET address sits in the first 4 bytes of src/dst.
const OFF_FAMILY: usize = 0;
const OFF_STATE: usize = 1;
const OFF_TIMER: usize = 2;
const OFF_RETRANS: usize = 3;
const OFF_SPORT: usize = 4;
const OFF_DPORT: usize = 6;
const OFF_SRC: usize = 8;
const OFF_DST: usize = 24;
const OFF_IF: usize = 40;
const OFF_COOKIE: usize = 44;
const OFF_EXPIRES: usize = 52;
const OFF_RQUEUE: usize = 56;
const OFF_WQUEUE: usize = 60;
const OFF_UID: usize = 64;
const OFF_INODE: usize = 68;

/// `sizeof(struct inet_diag_sockid)`: `__be16 idiag_sport`, `__be16 idiag_dport`,
/// `__be32 idiag_src[4]`, `__be32 idiag_dst[4]`, `__u32 idiag_if`, `__u32 idiag_cookie[2]`.
const SOCKID_LEN: usize = 48;

/// The body of an `inet_diag_req_v2` (include/uapi/linux/inet_diag.h): `sdiag_family`,
/// `sdiag_protocol`, `idiag_ext`, pad, `__u32 idiag_states`, then the socket id (56 bytes).
fn req_v2(family: u8, protocol: u8, ext: u8, states: u32, id: &[u8; SOCKID_LEN]) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + SOCKID_LEN);
    body.extend_from_slice(&[family, protocol, ext, 0]);
    // Every bit kept, named or not (NEW_SYN_RECV, BOUND_INACTIVE).
    body.extend_from_slice(&states.to_ne_bytes());
    body.extend_from_slice(id);
    body
}

/// The bytes of an `inet_diag_req_v2` dump request of the `protocol` sockets of `family`
/// whose state bit is in `states`, with the `idiag_ext` bits `ext` and a wildcard socket id,
/// as ss's `sockdiag_send` sends it.
///
/// # Errors
/// [`DiagError::UnsupportedFamily`] for a family other than AF_INET/AF_INET6.
pub(crate) fn dump_request_v2(protocol: u8, family: u16, states: u32, seq: u32, ext: u8) -> Result<Vec<u8>, DiagError> {
    let af = match u8::try_from(family) {
        Ok(af @ (AF_INET | AF_INET6)) => af,
        _ => return Err(DiagError::UnsupportedFamily { family }),
    };
    Ok(dump_request(seq, &req_v2(af, protocol, ext, states, &[0; SOCKID_LEN])))
}

/// The whole dump request of the TCP sockets of both families whose state bit is in
/// `states`, with the `idiag_ext` bits `ext`: a `TCPDIAG_GETSOCK` request, whose body is an
/// `inet_diag_req` (`idiag_family`, `idiag_src_len`, `idiag_dst_len`, `idiag_ext`, the
/// socket id, `__u32 idiag_states`, `__u32 idiag_dbs`). The kernel dumps it as AF_UNSPEC
/// (net/ipv4/inet_diag.c, `inet_diag_dump_compat`): one walk of the TCP hash tables for
/// both families, where a `SOCK_DIAG_BY_FAMILY` dump per family walks them twice.
pub(crate) fn tcp_any_family_request(states: u32, seq: u32, ext: u8) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + SOCKID_LEN + 8);
    body.extend_from_slice(&[0, 0, 0, ext]);
    body.extend_from_slice(&[0; SOCKID_LEN]);
    body.extend_from_slice(&states.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    super::nlmsg::request(
        super::nlmsg::TCPDIAG_GETSOCK,
        netlink_packet_core::NLM_F_REQUEST | netlink_packet_core::NLM_F_DUMP,
        seq,
        &body,
    )
}

/// The whole dump request for the MPTCP sockets of `family` whose state bit is in
/// `states`, with the `idiag_ext` bits `ext`: the `inet_diag_req_v2` ss sends, then
/// `INET_DIAG_REQ_PROTOCOL` (see [`mptcp`]).
///
/// # Errors
/// [`DiagError::UnsupportedFamily`] for a family other than AF_INET/AF_INET6.
pub(crate) fn mptcp_request(family: u16, states: u32, seq: u32, ext: u8) -> Result<Vec<u8>, DiagError> {
    let mut req = dump_request_v2(mptcp::REQUEST_PROTOCOL_BYTE, family, states, seq, ext)?;
    mptcp::add_protocol_attr(&mut req);
    Ok(req)
}

/// Which socket-local storages a dump asks for (`--bpf-maps`, `--bpf-map-id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageRequest {
    /// Every map's: an empty `INET_DIAG_REQ_SK_BPF_STORAGES`.
    All,
    /// Those of the maps open as these fds, in this order (`SK_DIAG_BPF_STORAGE_REQ_MAP_FD`
    /// each).
    MapFds(Vec<i32>),
}

/// `INET_DIAG_REQ_BYTECODE` (include/uapi/linux/inet_diag.h).
const INET_DIAG_REQ_BYTECODE: u16 = 1;

/// Appends a filter program to a whole dump request, before the storage request, where
/// ss's `sockdiag_send` puts its own.
pub(crate) fn add_bytecode_attr(req: &mut Vec<u8>, code: &[u8]) {
    super::nlmsg::push_attr(req, INET_DIAG_REQ_BYTECODE, code);
}

/// `INET_DIAG_REQ_SK_BPF_STORAGES` (include/uapi/linux/inet_diag.h), nested.
const INET_DIAG_REQ_SK_BPF_STORAGES: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
/// `SK_DIAG_BPF_STORAGE_REQ_MAP_FD` (include/uapi/linux/sock_diag.h).
const SK_DIAG_BPF_STORAGE_REQ_MAP_FD: u16 = 1;

/// Appends the storage request to a whole dump request, after any other attribute, as
/// ss's `sockdiag_send` does.
pub(crate) fn add_storage_attr(req: &mut Vec<u8>, r: &StorageRequest) {
    let mut nest = Vec::new();
    if let StorageRequest::MapFds(fds) = r {
        for fd in fds {
            nest.extend_from_slice(&8u16.to_ne_bytes());
            nest.extend_from_slice(&SK_DIAG_BPF_STORAGE_REQ_MAP_FD.to_ne_bytes());
            nest.extend_from_slice(&fd.to_ne_bytes());
        }
    }
    super::nlmsg::push_attr(req, INET_DIAG_REQ_SK_BPF_STORAGES | NLA_F_NESTED, &nest);
}

/// `SOCK_DESTROY` (include/uapi/linux/sock_diag.h) with `NLM_F_REQUEST | NLM_F_ACK`, and
/// an `inet_diag_req_v2` naming the socket: family, protocol, ext, pad, states, then
/// `struct inet_diag_sockid` (ports and addresses in network order, `idiag_if`, cookie).
pub(crate) fn destroy_request(s: &InetSocket, seq: u32) -> Vec<u8> {
    by_id(s, SOCK_DESTROY, NLM_F_REQUEST | NLM_F_ACK, seq)
}

/// An exact lookup (`SOCK_DIAG_BY_FAMILY` without `NLM_F_DUMP`): the one socket with
/// `s`'s tuple, interface and cookie, or an error (ENOENT: none; ESTALE: another socket
/// holds the tuple now). The kernel finds full, timewait and request sockets alike.
pub(crate) fn lookup_request(s: &InetSocket, seq: u32) -> Vec<u8> {
    by_id(s, netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, seq)
}

/// A request of `kind` naming one socket by its `struct inet_diag_sockid`.
fn by_id(s: &InetSocket, kind: u16, flags: u16, seq: u32) -> Vec<u8> {
    let addr = |a: &IpAddr| match a {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            b
        }
        IpAddr::V6(v6) => v6.octets(),
    };
    // An MPTCP row is named as ss names it, by `(__u8)IPPROTO_MPTCP`, i.e. TCP: the kernel
    // finds no TCP socket with the MPTCP socket's cookie and answers ENOENT, so `-K`
    // closes no MPTCP socket, as with ss.
    let protocol = if s.protocol == PROTO_MPTCP_TABLE { mptcp::REQUEST_PROTOCOL_BYTE } else { s.protocol };
    let mut id = [0u8; SOCKID_LEN];
    id[0..2].copy_from_slice(&s.sport.to_be_bytes());
    id[2..4].copy_from_slice(&s.dport.to_be_bytes());
    id[4..20].copy_from_slice(&addr(&s.src));
    id[20..36].copy_from_slice(&addr(&s.dst));
    id[36..40].copy_from_slice(&s.ifindex.to_ne_bytes());
    // cookie[0] is the low word, cookie[1] the high one (ss's cookie_sk_get).
    id[40..44].copy_from_slice(&((s.cookie & 0xffff_ffff) as u32).to_ne_bytes());
    id[44..48].copy_from_slice(&((s.cookie >> 32) as u32).to_ne_bytes());
    let body = req_v2(u8::try_from(s.family).unwrap_or(0), protocol, 0, 0, &id);
    request(kind, flags, seq, &body)
}

/// Everything a complete reply stream says, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetDump {
    /// The records, in the order the kernel dumped them (ss prints them in that order).
    pub sockets: Vec<InetSocket>,
    /// How many dumps (each ended by `NLMSG_DONE`) the stream held: `ss -D` of `-t` writes
    /// one for AF_INET and one for AF_INET6.
    pub dumps: usize,
    /// Some message carried `NLM_F_DUMP_INTR`: the kernel says the dump may be inconsistent
    /// (ss warns "Dump was interrupted and may be inconsistent.").
    pub interrupted: bool,
}

/// Decode a complete reply stream: netlink messages back to back, each dump ended by
/// `NLMSG_DONE`. `protocol` is the request's protocol (`inet_diag_msg` does not carry it).
///
/// # Errors
/// [`DiagError::Kernel`] for an `NLMSG_ERROR` (or a negative `NLMSG_DONE` status) in the
/// stream; [`DiagError::Malformed`] for bytes that are not a well-formed reply stream,
/// including one that is empty or stops before its last `NLMSG_DONE`.
pub fn parse_inet_replies(buf: &[u8], protocol: u8) -> Result<InetDump, DiagError> {
    parse_inet_replies_with(buf, protocol, false)
}

/// [`parse_inet_replies`], also decoding what `-e -m -i` print into each record's `ext`
/// when `details` is set (a recorded `-D` stream holds whatever the recording asked for).
///
/// # Errors
/// As [`parse_inet_replies`]; a malformed attribute too.
pub fn parse_inet_replies_with(buf: &[u8], protocol: u8, details: bool) -> Result<InetDump, DiagError> {
    parse_replies(buf, protocol, details, false)
}

/// The first dump of a reply stream only, as ss reads a `TCPDIAG_FILE`
/// (`tcp_show_netlink_file`: "the only legal exit point" is the first `NLMSG_DONE`; what
/// follows it is never read).
///
/// # Errors
/// As [`parse_inet_replies_with`], for the bytes up to that `NLMSG_DONE`.
pub fn parse_first_inet_dump(buf: &[u8], protocol: u8, details: bool) -> Result<InetDump, DiagError> {
    parse_replies(buf, protocol, details, true)
}

fn parse_replies(buf: &[u8], protocol: u8, details: bool, first_only: bool) -> Result<InetDump, DiagError> {
    let mut decoder = Decoder::new(None);
    let mut sockets = Vec::with_capacity(buf.len() / (NLMSG_HDRLEN + INET_DIAG_MSG_LEN));
    let mut dumps = 0;
    let mut rest = buf;
    while !rest.is_empty() {
        let mut push = |payload: &[u8]| -> Result<(), MalformedKind> {
            // ss reads each recorded message into the start of one buffer: its payload
            // sits just after the header there.
            sockets.push(parse_inet_diag_msg_with(payload, protocol, details, NLMSG_HDRLEN)?);
            Ok(())
        };
        match decoder.feed(rest, &mut push)? {
            Step::Done { consumed } => {
                dumps += 1;
                rest = rest.get(consumed..).unwrap_or_default();
                if first_only {
                    rest = &[];
                }
            }
            Step::More => break,
        }
    }
    if !rest.is_empty() || dumps == 0 {
        return Err(DiagError::Malformed { offset: buf.len(), kind: MalformedKind::MissingDone });
    }
    Ok(InetDump { sockets, dumps, interrupted: decoder.interrupted })
}

/// `INET_DIAG_SKV6ONLY` (include/uapi/linux/inet_diag.h): a u8, sent for every AF_INET6
/// socket whatever was requested (net/ipv4/inet_diag.c, inet_diag_msg_attrs_fill).
const INET_DIAG_SKV6ONLY: u16 = 11;

/// Walks the rtattrs after the fixed struct; returns the IPV6_V6ONLY flag. Other
/// attributes are skipped; a malformed one is an error, not a guess.
fn v6only_attr(attrs: &[u8]) -> Result<bool, MalformedKind> {
    let mut v6only = false;
    let mut rest = attrs;
    // rtattr: u16 len (header included), u16 type, payload, padded to 4 bytes.
    while rest.len() >= 4 {
        let len = usize::from(u16_ne_at(rest, 0).unwrap_or(0));
        let ty = u16_ne_at(rest, 2).unwrap_or(0);
        if len < 4 || len > rest.len() {
            return Err(MalformedKind::TruncatedPayload {
                what: "inet_diag attribute",
                needed: len.max(4),
                available: rest.len(),
            });
        }
        if ty == INET_DIAG_SKV6ONLY {
            v6only = rest.get(4).is_some_and(|&b| b != 0);
        }
        rest = rest.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    Ok(v6only)
}

/// Decode one `struct inet_diag_msg` (include/uapi/linux/inet_diag.h) and the attributes
/// sockstat reads from what follows it.
#[cfg(test)]
pub(crate) fn parse_inet_diag_msg(payload: &[u8], protocol: u8) -> Result<InetSocket, MalformedKind> {
    parse_inet_diag_msg_with(payload, protocol, false, 0)
}

/// [`parse_inet_diag_msg`], plus the attributes `-e -m -i` print when `details` is set.
/// `datagram_at`: the payload's offset in its datagram (0 when unknown).
pub(crate) fn parse_inet_diag_msg_with(
    payload: &[u8],
    protocol: u8,
    details: bool,
    datagram_at: usize,
) -> Result<InetSocket, MalformedKind> {
    let msg = payload.first_chunk::<INET_DIAG_MSG_LEN>().ok_or(MalformedKind::TruncatedPayload {
        what: "inet_diag_msg",
        needed: INET_DIAG_MSG_LEN,
        available: payload.len(),
    })?;
    let family = msg[OFF_FAMILY];
    let addr = |off: usize| -> Result<IpAddr, MalformedKind> {
        let bytes: [u8; 16] = fixed(msg, off);
        match family {
            AF_INET => {
                let [a, b, c, d, ..] = bytes;
                Ok(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
            }
            AF_INET6 => Ok(IpAddr::V6(Ipv6Addr::from(bytes))),
            other => Err(MalformedKind::UnknownFamily(other)),
        }
    };
    let u32_field = |off: usize| u32::from_ne_bytes(fixed(msg, off));
    Ok(InetSocket {
        family: u16::from(family),
        protocol,
        state: msg[OFF_STATE],
        src: addr(OFF_SRC)?,
        // Ports are __be16 on the wire.
        sport: u16::from_be_bytes(fixed(msg, OFF_SPORT)),
        dst: addr(OFF_DST)?,
        dport: u16::from_be_bytes(fixed(msg, OFF_DPORT)),
        v6only: v6only_attr(payload.get(INET_DIAG_MSG_LEN..).unwrap_or(&[]))?,
        ifindex: u32_field(OFF_IF),
        rqueue: u32_field(OFF_RQUEUE),
        wqueue: u32_field(OFF_WQUEUE),
        // ss: cookie_sk_get() = cookie[0] | (u64)cookie[1] << 32, printed as `sk:%llx`.
        cookie: u64::from(u32_field(OFF_COOKIE)) | u64::from(u32_field(OFF_COOKIE + 4)) << 32,
        uid: u32_field(OFF_UID),
        inode: u32_field(OFF_INODE),
        timer: msg[OFF_TIMER],
        retrans: msg[OFF_RETRANS],
        expires_ms: u32_field(OFF_EXPIRES),
        source: Source::Kernel,
        ext: if details {
            let attrs = payload.get(INET_DIAG_MSG_LEN..).unwrap_or(&[]);
            let mptcp = protocol == crate::model::socket::PROTO_MPTCP_TABLE;
            Some(Box::new(inet_ext::parse_details_of(attrs, INET_DIAG_MSG_LEN, mptcp, datagram_at)?))
        } else {
            None
        },
    })
}

/// `N` bytes of the fixed-size `msg` at a constant offset. The offsets above are all in
/// bounds of `INET_DIAG_MSG_LEN`; a wrong constant yields zeroes rather than a panic.
fn fixed<const N: usize>(msg: &[u8; INET_DIAG_MSG_LEN], off: usize) -> [u8; N] {
    msg.get(off..).and_then(|s| s.first_chunk::<N>()).copied().unwrap_or([0; N])
}

/// Hand-built inet replies for the decoders' tests (this file's and the destroy
/// listener's), laid out independently of the parser.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::net::Ipv6Addr;

    use netlink_packet_core::NLMSG_DONE;
    use netlink_packet_sock_diag::{AF_INET, AF_INET6, SOCK_DIAG_BY_FAMILY};

    use super::super::error::{DiagError, MalformedKind};
    pub(crate) use super::super::nlmsg::test_nlmsg as nlmsg;
    use super::INET_DIAG_MSG_LEN;

    pub(crate) const TCP: u8 = 6;
    pub(crate) const SEQ: u32 = 7;

    pub(crate) fn done() -> Vec<u8> {
        nlmsg(NLMSG_DONE, 2, SEQ, &0i32.to_ne_bytes())
    }

    /// Field values for one hand-built `inet_diag_msg`, laid out independently of the parser.
    pub(crate) struct Raw {
        pub(crate) family: u8,
        pub(crate) state: u8,
        pub(crate) timer: u8,
        pub(crate) retrans: u8,
        pub(crate) sport: u16,
        pub(crate) dport: u16,
        pub(crate) src: [u8; 16],
        pub(crate) dst: [u8; 16],
        pub(crate) ifindex: u32,
        pub(crate) cookie: [u32; 2],
        pub(crate) expires: u32,
        pub(crate) rqueue: u32,
        pub(crate) wqueue: u32,
        pub(crate) uid: u32,
        pub(crate) inode: u32,
    }

    impl Raw {
        pub(crate) fn bytes(&self) -> Vec<u8> {
            let mut b = vec![self.family, self.state, self.timer, self.retrans];
            b.extend_from_slice(&self.sport.to_be_bytes());
            b.extend_from_slice(&self.dport.to_be_bytes());
            b.extend_from_slice(&self.src);
            b.extend_from_slice(&self.dst);
            b.extend_from_slice(&self.ifindex.to_ne_bytes());
            b.extend_from_slice(&self.cookie[0].to_ne_bytes());
            b.extend_from_slice(&self.cookie[1].to_ne_bytes());
            for v in [self.expires, self.rqueue, self.wqueue, self.uid, self.inode] {
                b.extend_from_slice(&v.to_ne_bytes());
            }
            assert_eq!(b.len(), INET_DIAG_MSG_LEN);
            b
        }
    }

    pub(crate) fn v4_raw() -> Raw {
        let mut src = [0u8; 16];
        src[..4].copy_from_slice(&[127, 0, 0, 1]);
        // Bytes after the first 4 of an AF_INET address must be ignored.
        src[4..8].copy_from_slice(&[9, 9, 9, 9]);
        let mut dst = [0u8; 16];
        dst[..4].copy_from_slice(&[10, 1, 2, 3]);
        Raw {
            family: AF_INET,
            state: 1,
            timer: 2,
            retrans: 3,
            sport: 8080,
            dport: 51000,
            src,
            dst,
            ifindex: 5,
            cookie: [0x1122_3344, 0x0000_00ab],
            expires: 7000,
            rqueue: 11,
            wqueue: 22,
            uid: 1000,
            inode: 123_456,
        }
    }

    pub(crate) fn v6_raw() -> Raw {
        let src: [u8; 16] = "2001:db8::1".parse::<Ipv6Addr>().expect("literal").octets();
        let dst: [u8; 16] = "fe80::2".parse::<Ipv6Addr>().expect("literal").octets();
        Raw {
            family: AF_INET6,
            state: 10,
            timer: 0,
            retrans: 0,
            sport: 443,
            dport: 0,
            src,
            dst,
            ifindex: 0,
            cookie: [0xdead_beef, 0xcafe_f00d],
            expires: 0,
            rqueue: 0,
            wqueue: 4096,
            uid: 0,
            inode: 99,
        }
    }

    pub(crate) fn reply(raw: &Raw) -> Vec<u8> {
        nlmsg(SOCK_DIAG_BY_FAMILY, 2, SEQ, &raw.bytes())
    }

    pub(crate) fn malformed(err: DiagError) -> (usize, MalformedKind) {
        match err {
            DiagError::Malformed { offset, kind } => (offset, kind),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP};
    use netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY;

    use super::fixtures::*;
    use super::*;

    #[test]
    fn v4_record_fields() {
        let mut buf = reply(&v4_raw());
        buf.extend(done());
        let dump = parse_inet_replies(&buf, TCP).expect("valid stream");
        assert_eq!(dump.dumps, 1);
        assert!(!dump.interrupted);
        let expected = InetSocket {
            family: 2,
            protocol: TCP,
            state: 1,
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            sport: 8080,
            dst: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
            dport: 51000,
            v6only: false,
            ifindex: 5,
            rqueue: 11,
            wqueue: 22,
            cookie: 0xab_1122_3344,
            uid: 1000,
            inode: 123_456,
            timer: 2,
            retrans: 3,
            expires_ms: 7000,
            source: Source::Kernel,
            ext: None,
        };
        assert_eq!(dump.sockets, vec![expected]);
    }

    #[test]
    fn v6_record_fields() {
        let mut buf = reply(&v6_raw());
        buf.extend(done());
        let dump = parse_inet_replies(&buf, TCP).expect("valid stream");
        let [s] = dump.sockets.as_slice() else { panic!("one record expected: {dump:?}") };
        assert_eq!(s.family, 10);
        assert_eq!(s.src, "2001:db8::1".parse::<IpAddr>().expect("literal"));
        assert_eq!(s.dst, "fe80::2".parse::<IpAddr>().expect("literal"));
        assert_eq!((s.sport, s.dport), (443, 0));
        assert_eq!(s.state, 10);
        assert_eq!(s.wqueue, 4096);
        assert_eq!(s.cookie, 0xcafe_f00d_dead_beef);
        assert_eq!(s.inode, 99);
    }

    #[test]
    fn attributes_after_the_struct_are_skipped() {
        // An INET_DIAG_SHUTDOWN attribute (type 8, one byte, padded) after the struct.
        let mut payload = v4_raw().bytes();
        payload.extend_from_slice(&[5, 0, 8, 0, 3, 0, 0, 0]);
        let mut buf = nlmsg(SOCK_DIAG_BY_FAMILY, 2, SEQ, &payload);
        buf.extend(reply(&v6_raw()));
        buf.extend(done());
        let dump = parse_inet_replies(&buf, TCP).expect("valid stream");
        assert_eq!(dump.sockets.len(), 2);
        assert_eq!(dump.sockets[1].sport, 443, "second record read after the attribute");
    }

    #[test]
    fn v6only_attribute_is_read_and_a_bad_attribute_rejected() {
        // SHUTDOWN (8) then SKV6ONLY (11) = 1, each one byte padded to 8.
        let mut payload = v6_raw().bytes();
        payload.extend_from_slice(&[5, 0, 8, 0, 0, 0, 0, 0, 5, 0, 11, 0, 1, 0, 0, 0]);
        let mut buf = nlmsg(SOCK_DIAG_BY_FAMILY, 2, SEQ, &payload);
        buf.extend(reply(&v6_raw()));
        buf.extend(done());
        let dump = parse_inet_replies(&buf, TCP).expect("valid stream");
        assert!(dump.sockets[0].v6only);
        assert!(!dump.sockets[1].v6only, "no attribute: dual-stack");

        // An attribute claiming 12 bytes where 8 remain.
        let mut payload = v6_raw().bytes();
        payload.extend_from_slice(&[12, 0, 11, 0, 1, 0, 0, 0]);
        let mut buf = nlmsg(SOCK_DIAG_BY_FAMILY, 2, SEQ, &payload);
        buf.extend(done());
        let (offset, kind) = malformed(parse_inet_replies(&buf, TCP).expect_err("bad attribute"));
        assert_eq!(offset, 0);
        assert!(
            matches!(kind, MalformedKind::TruncatedPayload { what: "inet_diag attribute", needed: 12, available: 8 }),
            "{kind:?}"
        );
    }

    #[test]
    fn multi_message_keeps_kernel_order_and_two_dumps() {
        // What `-D` records for `-t`: the AF_INET dump, its DONE, the AF_INET6 dump, DONE.
        let mut a = v4_raw();
        a.sport = 1;
        let mut b = v4_raw();
        b.sport = 2;
        let mut buf = reply(&a);
        buf.extend(reply(&b));
        buf.extend(done());
        buf.extend(reply(&v6_raw()));
        buf.extend(done());
        let dump = parse_inet_replies(&buf, TCP).expect("valid stream");
        assert_eq!(dump.dumps, 2);
        let ports: Vec<u16> = dump.sockets.iter().map(|s| s.sport).collect();
        assert_eq!(ports, vec![1, 2, 443]);
    }

    #[test]
    fn empty_dump_is_just_done() {
        let dump = parse_inet_replies(&done(), TCP).expect("valid stream");
        assert_eq!(dump.dumps, 1);
        assert!(dump.sockets.is_empty());
    }

    #[test]
    fn noop_is_skipped_and_dump_intr_is_reported() {
        let mut buf = nlmsg(NLMSG_NOOP, 0, SEQ, &[]);
        buf.extend(nlmsg(SOCK_DIAG_BY_FAMILY, 2 | NLM_F_DUMP_INTR, SEQ, &v4_raw().bytes()));
        buf.extend(done());
        let dump = parse_inet_replies(&buf, TCP).expect("valid stream");
        assert_eq!(dump.sockets.len(), 1);
        assert!(dump.interrupted);
    }

    #[test]
    fn error_message_carries_errno_and_offset() {
        // What the kernel answers when no inet_diag handler exists for the protocol.
        let first = reply(&v4_raw());
        let mut err_payload = (-libc::ENOENT).to_ne_bytes().to_vec();
        err_payload.extend_from_slice(&[0; NLMSG_HDRLEN]);
        let mut buf = first.clone();
        buf.extend(nlmsg(NLMSG_ERROR, 0, SEQ, &err_payload));
        match parse_inet_replies(&buf, TCP) {
            Err(DiagError::Kernel { offset, errno, source }) => {
                assert_eq!(offset, first.len());
                assert_eq!(errno, libc::ENOENT);
                assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
            }
            other => panic!("expected Kernel error, got {other:?}"),
        }
    }

    #[test]
    fn error_with_eopnotsupp() {
        let buf = nlmsg(NLMSG_ERROR, 0, SEQ, &(-libc::EOPNOTSUPP).to_ne_bytes());
        match parse_inet_replies(&buf, TCP) {
            Err(DiagError::Kernel { offset: 0, errno, .. }) => assert_eq!(errno, libc::EOPNOTSUPP),
            other => panic!("expected Kernel error at 0, got {other:?}"),
        }
    }

    #[test]
    fn ack_error_zero_is_not_an_error() {
        let mut buf = nlmsg(NLMSG_ERROR, 0, SEQ, &0i32.to_ne_bytes());
        buf.extend(done());
        assert_eq!(parse_inet_replies(&buf, TCP).expect("ack then done").dumps, 1);
    }

    #[test]
    fn negative_done_status_is_a_kernel_error() {
        let buf = nlmsg(NLMSG_DONE, 2, SEQ, &(-libc::EINTR).to_ne_bytes());
        match parse_inet_replies(&buf, TCP) {
            Err(DiagError::Kernel { errno, .. }) => assert_eq!(errno, libc::EINTR),
            other => panic!("expected Kernel error, got {other:?}"),
        }
    }

    #[test]
    fn truncated_header() {
        let first = reply(&v4_raw());
        let mut buf = first.clone();
        buf.extend_from_slice(&done()[..10]);
        let (offset, kind) = malformed(parse_inet_replies(&buf, TCP).expect_err("truncated"));
        assert_eq!(offset, first.len());
        assert_eq!(kind, MalformedKind::TruncatedHeader { available: 10 });
    }

    #[test]
    fn truncated_payload_inet_diag_msg() {
        // nlmsg_len is consistent with the data, but the payload is shorter than the struct.
        let short = &v4_raw().bytes()[..40];
        let mut buf = nlmsg(SOCK_DIAG_BY_FAMILY, 2, SEQ, short);
        buf.extend(done());
        let (offset, kind) = malformed(parse_inet_replies(&buf, TCP).expect_err("short"));
        assert_eq!(offset, 0);
        assert_eq!(kind, MalformedKind::TruncatedPayload { what: "inet_diag_msg", needed: 72, available: 40 });
    }

    #[test]
    fn truncated_done_status() {
        let buf = nlmsg(NLMSG_DONE, 2, SEQ, &[]);
        let (_, kind) = malformed(parse_inet_replies(&buf, TCP).expect_err("short DONE"));
        assert_eq!(kind, MalformedKind::TruncatedPayload { what: "NLMSG_DONE status", needed: 4, available: 0 });
    }

    #[test]
    fn stream_cut_inside_a_message() {
        // The header promises 88 bytes; the data stops after 50.
        let msg = reply(&v4_raw());
        let (offset, kind) = malformed(parse_inet_replies(&msg[..50], TCP).expect_err("cut"));
        assert_eq!(offset, 0);
        assert_eq!(kind, MalformedKind::LengthPastEnd { len: 88, available: 50 });
    }

    #[test]
    fn nlmsg_len_smaller_than_header() {
        let mut buf = reply(&v4_raw());
        let second_at = buf.len();
        let mut bad = done();
        bad[..4].copy_from_slice(&8u32.to_ne_bytes());
        buf.extend(bad);
        let (offset, kind) = malformed(parse_inet_replies(&buf, TCP).expect_err("bad len"));
        assert_eq!(offset, second_at);
        assert_eq!(kind, MalformedKind::LengthTooSmall { len: 8 });
    }

    #[test]
    fn nlmsg_len_larger_than_data() {
        let mut buf = done();
        buf[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        let (_, kind) = malformed(parse_inet_replies(&buf, TCP).expect_err("bad len"));
        assert_eq!(kind, MalformedKind::LengthPastEnd { len: u32::MAX, available: 20 });
    }

    #[test]
    fn missing_done_and_empty_input_are_rejected() {
        let buf = reply(&v4_raw());
        let (offset, kind) = malformed(parse_inet_replies(&buf, TCP).expect_err("no DONE"));
        assert_eq!((offset, kind), (buf.len(), MalformedKind::MissingDone));
        let (offset, kind) = malformed(parse_inet_replies(&[], TCP).expect_err("empty"));
        assert_eq!((offset, kind), (0, MalformedKind::MissingDone));
    }

    #[test]
    fn unknown_family_and_type_are_rejected() {
        let mut raw = v4_raw();
        raw.family = 1; // AF_UNIX
        let (_, kind) = malformed(parse_inet_replies(&reply(&raw), TCP).expect_err("AF_UNIX"));
        assert_eq!(kind, MalformedKind::UnknownFamily(1));
        let buf = nlmsg(16, 0, SEQ, &[0; 4]); // RTM_NEWLINK is not a sock_diag reply
        let (_, kind) = malformed(parse_inet_replies(&buf, TCP).expect_err("type 16"));
        assert_eq!(kind, MalformedKind::UnexpectedType(16));
    }

    #[test]
    fn live_decoder_skips_other_sequence_numbers_and_counts_offsets_across_feeds() {
        let mut decoder = Decoder::new(Some(SEQ));
        let mut out = Vec::new();
        let mut push = |p: &[u8]| -> Result<(), MalformedKind> {
            out.push(parse_inet_diag_msg(p, TCP)?);
            Ok(())
        };
        // A leftover reply of an earlier request (seq 6) is ignored.
        let mut first = nlmsg(SOCK_DIAG_BY_FAMILY, 2, SEQ - 1, &v6_raw().bytes());
        first.extend(reply(&v4_raw()));
        assert_eq!(decoder.feed(&first, &mut push).expect("datagram 1"), Step::More);
        // The second datagram is cut: the error offset counts the first datagram too.
        let second = &reply(&v4_raw())[..30];
        let (offset, _) = malformed(decoder.feed(second, &mut push).expect_err("cut"));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].family, 2);
        assert_eq!(offset, first.len());
    }

    #[test]
    fn one_walk_request_is_an_inet_diag_req_and_its_replies_are_read_by_their_type() {
        use crate::diag::nlmsg::TCPDIAG_GETSOCK;
        let req = tcp_any_family_request(0x0fff, SEQ, 0x0e);
        // nlmsghdr, then inet_diag_req: family (0: both), src/dst lengths, ext, the
        // 48-byte socket id, states, dbs.
        assert_eq!(req.len(), 16 + 60);
        assert_eq!(u32::from_ne_bytes(req[0..4].try_into().unwrap()), 76);
        assert_eq!(u16::from_ne_bytes(req[4..6].try_into().unwrap()), TCPDIAG_GETSOCK);
        assert_eq!(u16::from_ne_bytes(req[6..8].try_into().unwrap()), 0x301, "NLM_F_REQUEST | NLM_F_DUMP");
        assert_eq!(u32::from_ne_bytes(req[8..12].try_into().unwrap()), SEQ);
        assert_eq!(req[16..20], [0, 0, 0, 0x0e]);
        assert!(req[20..68].iter().all(|&b| b == 0), "a wildcard socket id");
        assert_eq!(u32::from_ne_bytes(req[68..72].try_into().unwrap()), 0x0fff);
        // Its replies carry TCPDIAG_GETSOCK: read by a decoder told so, refused otherwise.
        let mut buf = nlmsg(TCPDIAG_GETSOCK, 2, SEQ, &v4_raw().bytes());
        buf.extend(nlmsg(TCPDIAG_GETSOCK, 2, SEQ, &v6_raw().bytes()));
        buf.extend(done());
        let mut families = Vec::new();
        let mut push = |p: &[u8]| -> Result<(), MalformedKind> {
            families.push(parse_inet_diag_msg(p, TCP)?.family);
            Ok(())
        };
        let mut decoder = Decoder::new(Some(SEQ)).replying_to(TCPDIAG_GETSOCK);
        assert!(matches!(decoder.feed(&buf, &mut push).expect("replies"), Step::Done { .. }));
        assert_eq!(families, [2, 10]);
        let (_, kind) = malformed(Decoder::new(Some(SEQ)).feed(&buf, &mut |_| Ok(())).expect_err("wrong type"));
        assert_eq!(kind, MalformedKind::UnexpectedType(TCPDIAG_GETSOCK));
    }

    #[test]
    fn live_decoder_reports_done_position() {
        let mut decoder = Decoder::new(Some(SEQ));
        let mut n = 0;
        let mut count = |_: &[u8]| -> Result<(), MalformedKind> {
            n += 1;
            Ok(())
        };
        let mut buf = reply(&v4_raw());
        buf.extend(done());
        let len = buf.len();
        assert_eq!(decoder.feed(&buf, &mut count).expect("done"), Step::Done { consumed: len });
    }

    #[test]
    fn agrees_with_netlink_packet_sock_diag() {
        // Cross-check the hand-written layout against the crate's independent parser.
        use netlink_packet_core::Parseable;
        use netlink_packet_sock_diag::inet::InetResponse;
        for raw in [v4_raw(), v6_raw()] {
            let bytes = raw.bytes();
            let theirs = InetResponse::parse(&bytes).expect("crate parses it");
            let ours = parse_inet_diag_msg(&bytes, TCP).expect("we parse it");
            let id = &theirs.header.socket_id;
            assert_eq!(ours.src, id.source_address);
            assert_eq!(ours.dst, id.destination_address);
            assert_eq!((ours.sport, ours.dport), (id.source_port, id.destination_port));
            assert_eq!(ours.ifindex, id.interface_id);
            let [c0, c1] = [&id.cookie[..4], &id.cookie[4..]]
                .map(|half| u64::from(u32::from_ne_bytes(half.try_into().expect("4 bytes"))));
            assert_eq!(ours.cookie, c0 | c1 << 32, "cookie is cookie[0] | cookie[1] << 32");
            assert_eq!(ours.state, theirs.header.state);
            assert_eq!((ours.rqueue, ours.wqueue), (theirs.header.recv_queue, theirs.header.send_queue));
            assert_eq!((ours.uid, ours.inode), (theirs.header.uid, theirs.header.inode));
        }
    }

    /// ss 6.1's `-a`: every state up to and including NEW_SYN_RECV (SS_MAX = 13).
    const SS_ALL: u32 = (1 << 13) - 1;

    #[test]
    fn request_bytes_follow_inet_diag_req_v2() {
        let req = dump_request_v2(TCP, u16::from(AF_INET6), 0x1ffe, 77, 0).expect("inet family");
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
        let err = dump_request_v2(TCP, 1, SS_ALL, 1, 0).expect_err("AF_UNIX");
        assert!(matches!(err, DiagError::UnsupportedFamily { family: 1 }), "{err:?}");
    }

    /// The request as it was built before every family's went through `nlmsg`: with
    /// netlink-packet-sock-diag's `InetRequest`.
    fn crate_request(protocol: u8, family: u8, states: u32, seq: u32, ext: u8) -> Vec<u8> {
        use netlink_packet_core::{NLM_F_DUMP, NetlinkHeader, NetlinkMessage};
        use netlink_packet_sock_diag::SockDiagMessage;
        use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
        let socket_id = if family == AF_INET { SocketId::new_v4() } else { SocketId::new_v6() };
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = seq;
        let mut message = NetlinkMessage::new(
            header,
            SockDiagMessage::InetRequest(InetRequest {
                family,
                protocol,
                extensions: ExtensionFlags::from_bits_retain(ext),
                states: StateFlags::from_bits_retain(states),
                socket_id,
            })
            .into(),
        );
        message.finalize();
        let mut buf = vec![0; message.buffer_len()];
        message.serialize(&mut buf);
        buf
    }

    #[test]
    fn request_bytes_are_those_netlink_packet_sock_diag_built() {
        // TCP, UDP, raw, (u8)MPTCP; ss's -a, the default (everything but the three
        // listening-ish states), one state, 0; -m -i -e and --tos extension bits.
        for protocol in [6, 17, 255, mptcp::REQUEST_PROTOCOL_BYTE] {
            for family in [AF_INET, AF_INET6] {
                for states in [SS_ALL, 0xfff & !(1 << 10 | 1 << 7 | 1 << 6), 1 << 10, u32::MAX, 0] {
                    for (seq, ext) in [(0x5eed_0001, 0), (7, 0x4f), (u32::MAX, 0x30), (1, 0xff)] {
                        let ours = dump_request_v2(protocol, u16::from(family), states, seq, ext).expect("inet");
                        let theirs = crate_request(protocol, family, states, seq, ext);
                        assert_eq!(ours, theirs, "protocol {protocol} family {family} states {states:#x} ext {ext:#x}");
                    }
                }
            }
        }
    }

    /// The bytes the crate built, captured on this (little-endian) machine before the change:
    /// TCP over AF_INET with `-a` as the first request of a `SockDiag`, and UDP over
    /// AF_INET6 with `-m -i`.
    #[cfg(target_endian = "little")]
    #[test]
    fn request_bytes_are_the_recorded_ones() {
        let hex = |v: &[u8]| v.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let zeros = "00".repeat(48);
        let tcp = dump_request_v2(6, 2, 0x1fff, 0x5eed_0001, 0).expect("inet");
        assert_eq!(hex(&tcp), format!("48000000140001030100ed5e0000000002060000ff1f0000{zeros}"));
        let udp = dump_request_v2(17, 10, 0x1fff, 7, 0x4f).expect("inet");
        assert_eq!(hex(&udp), format!("480000001400010307000000000000000a114f00ff1f0000{zeros}"));
        let mptcp = mptcp_request(10, 0x1fff, 9, 0x4f).expect("inet");
        assert_eq!(hex(&mptcp), format!("500000001400010309000000000000000a064f00ff1f0000{zeros}0800030006010000"));
    }

    #[test]
    fn destroy_request_names_the_socket() {
        let s = parse_inet_diag_msg(&v4_raw().bytes(), TCP).expect("valid");
        let req = destroy_request(&s, 3);
        // What the request was before: the dump header with SOCK_DESTROY (21) and
        // NLM_F_REQUEST | NLM_F_ACK (0x05) written over type and flags.
        let mut body = vec![2, 6, 0, 0, 0, 0, 0, 0];
        body.extend_from_slice(&8080u16.to_be_bytes());
        body.extend_from_slice(&51000u16.to_be_bytes());
        body.extend_from_slice(&[127, 0, 0, 1]);
        body.extend_from_slice(&[0; 12]);
        body.extend_from_slice(&[10, 1, 2, 3]);
        body.extend_from_slice(&[0; 12]);
        body.extend_from_slice(&5u32.to_ne_bytes());
        body.extend_from_slice(&0x1122_3344u32.to_ne_bytes());
        body.extend_from_slice(&0xabu32.to_ne_bytes());
        let mut want = dump_request(3, &body);
        want[4..6].copy_from_slice(&21u16.to_ne_bytes());
        want[6..8].copy_from_slice(&0x05u16.to_ne_bytes());
        assert_eq!(req, want);
        // An MPTCP row is named by ss's (__u8)262.
        let mptcp_row = InetSocket { protocol: PROTO_MPTCP_TABLE, ..s };
        assert_eq!(destroy_request(&mptcp_row, 3)[17], 6);
    }

    #[test]
    fn storage_request_is_a_nest_of_map_fds() {
        let mut req = dump_request_v2(6, 2, 0xfff, 1, 0).expect("request");
        add_storage_attr(&mut req, &StorageRequest::All);
        assert_eq!(&req[72..], &[4, 0, 2, 0x80][..], "empty INET_DIAG_REQ_SK_BPF_STORAGES, nested");
        assert_eq!(u32::from_ne_bytes([req[0], req[1], req[2], req[3]]), 76);
        let mut req = dump_request_v2(6, 2, 0xfff, 1, 0).expect("request");
        add_storage_attr(&mut req, &StorageRequest::MapFds(vec![5, 7]));
        assert_eq!(&req[72..76], &[20, 0, 2, 0x80][..]);
        assert_eq!(&req[76..], &[8, 0, 1, 0, 5, 0, 0, 0, 8, 0, 1, 0, 7, 0, 0, 0][..]);
    }

    #[test]
    fn whole_request_is_inet_diag_req_v2_then_protocol() {
        // AF_INET6, every state, -m -i extension bits, sequence 9.
        let req = mptcp_request(10, 0x1fff, 9, 0x4f).expect("inet family");
        // nlmsghdr (16) + inet_diag_req_v2 (56) + rtattr (4) + u32 (4).
        assert_eq!(req.len(), 80);
        assert_eq!(u32::from_ne_bytes(req[0..4].try_into().expect("4")), 80);
        assert_eq!(u16::from_ne_bytes(req[4..6].try_into().expect("2")), 20, "SOCK_DIAG_BY_FAMILY");
        assert_eq!(u16::from_ne_bytes(req[6..8].try_into().expect("2")), 0x301, "REQUEST|DUMP");
        assert_eq!(u32::from_ne_bytes(req[8..12].try_into().expect("4")), 9);
        assert_eq!(&req[16..20], &[10, 6, 0x4f, 0], "family, (u8)262, ext, pad");
        assert_eq!(u32::from_ne_bytes(req[20..24].try_into().expect("4")), 0x1fff);
        assert!(req[24..72].iter().all(|&b| b == 0), "wildcard socket id");
        assert_eq!(&req[72..76], &[8, 0, 3, 0][..], "rta_len 8, INET_DIAG_REQ_PROTOCOL (little-endian)");
        assert_eq!(u32::from_ne_bytes(req[76..80].try_into().expect("4")), 262);
        assert!(matches!(mptcp_request(1, 0, 1, 0), Err(DiagError::UnsupportedFamily { family: 1 })));
    }
}
