//! Pure decoding of sock_diag inet replies: the bytes of concatenated netlink messages in,
//! [`InetSocket`] records out. No I/O here, so one decoder serves a live dump (fed one
//! datagram at a time by [`super::SockDiag`]) and a recorded reply stream (`-D FILE` writes
//! the reply datagrams back to back, `NLMSG_DONE` included, as `ss -D` does).
//!
//! Why not `netlink-packet-sock-diag`'s `InetResponse` parser: it turns `idiag_timer` into an
//! enum that drops `idiag_expires` for the TIME-WAIT timer (ss prints it in `-o`) and drops
//! `idiag_retrans` for every timer but retransmit, and it boxes each reply and decodes all of
//! its attributes, which a 100k-socket dump does not need. `inet_diag_msg` is a fixed
//! 72-byte struct, so it is read here by offset, every read length-checked. The crate still
//! builds the request (see `super::build_request`).
//!
//! Integers other than ports and addresses are in host byte order (netlink is host-endian),
//! so a recorded stream is only readable on a machine of the same endianness.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_DUMP_INTR, NLMSG_ALIGNTO, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP};
use netlink_packet_sock_diag::{AF_INET, AF_INET6, SOCK_DIAG_BY_FAMILY};

use super::DiagError;
use crate::model::socket::{InetSocket, Source};

/// `sizeof(struct nlmsghdr)` (include/uapi/linux/netlink.h): `__u32 nlmsg_len` @0,
/// `__u16 nlmsg_type` @4, `__u16 nlmsg_flags` @6, `__u32 nlmsg_seq` @8, `__u32 nlmsg_pid` @12.
pub const NLMSG_HDRLEN: usize = 16;

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

/// What was wrong with a reply stream; [`DiagError::Malformed`] adds where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedKind {
    #[error("truncated netlink header: {available} of {NLMSG_HDRLEN} bytes")]
    TruncatedHeader { available: usize },
    #[error("nlmsg_len {len} is smaller than the {NLMSG_HDRLEN}-byte netlink header")]
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

/// One netlink attribute (`struct rtattr`, include/uapi/linux/rtnetlink.h): its type, its
/// payload, and the payload's offset in the message payload (for error messages).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attr<'a> {
    pub kind: u16,
    pub data: &'a [u8],
    pub at: usize,
}

impl<'a> Attr<'a> {
    /// The first `N` bytes of the payload, or an error naming the attribute.
    pub(crate) fn array<const N: usize>(&self, what: &'static str) -> Result<[u8; N], MalformedKind> {
        self.data.first_chunk::<N>().copied().ok_or(MalformedKind::ShortAttribute {
            what,
            at: self.at,
            needed: N,
            available: self.data.len(),
        })
    }

    pub(crate) fn u32(&self, what: &'static str) -> Result<u32, MalformedKind> {
        self.array::<4>(what).map(u32::from_ne_bytes)
    }

    /// The `i`-th native-endian u32 of the payload (`sk_meminfo` arrays and the like).
    pub(crate) fn u32_index(&self, i: usize, what: &'static str) -> Result<u32, MalformedKind> {
        self.data
            .get(i * 4..)
            .and_then(<[u8]>::first_chunk::<4>)
            .map(|b| u32::from_ne_bytes(*b))
            .ok_or(MalformedKind::ShortAttribute { what, at: self.at, needed: (i + 1) * 4, available: self.data.len() })
    }
}

/// An `SK_MEMINFO_*` array (include/uapi/linux/sock_diag.h): at least the 7 words ss
/// prints unconditionally (`r`..`o`); `bl` and `d` follow on newer kernels.
pub(crate) fn meminfo_words(a: &Attr<'_>, what: &'static str) -> Result<Vec<u32>, MalformedKind> {
    if a.data.len() < 28 {
        return Err(MalformedKind::ShortAttribute { what, at: a.at, needed: 28, available: a.data.len() });
    }
    Ok(a.data.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Splits the attributes that follow a fixed diag struct. `base` is where `attrs` starts in
/// the message payload, so offsets in errors are payload offsets. Every length is checked:
/// an attribute shorter than its header or longer than what remains is an error.
pub(crate) fn attributes(attrs: &[u8], base: usize) -> Result<Vec<Attr<'_>>, MalformedKind> {
    let mut out = Vec::new();
    let mut pos = 0;
    // rtattr: u16 len (header included), u16 type, payload, padded to 4 bytes. Trailing
    // bytes shorter than a header are padding.
    while attrs.len() - pos >= 4 {
        let rest = &attrs[pos..];
        let len = usize::from(u16_ne_at(rest, 0).unwrap_or(0));
        let kind = u16_ne_at(rest, 2).unwrap_or(0);
        if len < 4 || len > rest.len() {
            return Err(MalformedKind::BadAttribute { at: base + pos, len, available: rest.len() });
        }
        out.push(Attr { kind: kind & 0x3fff, data: &rest[4..len], at: base + pos + 4 });
        pos += len.next_multiple_of(4).min(rest.len());
    }
    Ok(out)
}

/// The fixed-size head of a diag reply, or a `TruncatedPayload` error naming it.
pub(crate) fn head<'a, const N: usize>(payload: &'a [u8], what: &'static str) -> Result<&'a [u8; N], MalformedKind> {
    payload.first_chunk::<N>().ok_or(MalformedKind::TruncatedPayload { what, needed: N, available: payload.len() })
}

/// A native-endian u32 at a constant offset of a fixed-size head (in bounds by construction;
/// a wrong constant yields 0 rather than a panic).
pub(crate) fn ne_u32<const N: usize>(msg: &[u8; N], off: usize) -> u32 {
    u32_at(msg, off).unwrap_or(0)
}

pub(crate) fn ne_u16<const N: usize>(msg: &[u8; N], off: usize) -> u16 {
    u16_ne_at(msg, off).unwrap_or(0)
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
    let mut decoder = Decoder::new(None);
    let mut sockets = Vec::with_capacity(buf.len() / (NLMSG_HDRLEN + INET_DIAG_MSG_LEN));
    let mut dumps = 0;
    let mut rest = buf;
    while !rest.is_empty() {
        let mut push = |payload: &[u8]| -> Result<(), MalformedKind> {
            sockets.push(parse_inet_diag_msg_with(payload, protocol, details)?);
            Ok(())
        };
        match decoder.feed(rest, &mut push)? {
            Step::Done { consumed } => {
                dumps += 1;
                rest = rest.get(consumed..).unwrap_or_default();
            }
            Step::More => break,
        }
    }
    if !rest.is_empty() || dumps == 0 {
        return Err(DiagError::Malformed { offset: buf.len(), kind: MalformedKind::MissingDone });
    }
    Ok(InetDump { sockets, dumps, interrupted: decoder.interrupted })
}

/// Result of feeding one buffer of whole messages to a [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// No `NLMSG_DONE` yet: feed the next datagram.
    More,
    /// `NLMSG_DONE` ended the dump; `consumed` bytes of this buffer (padding included) were
    /// used, anything after them belongs to the next dump.
    Done { consumed: usize },
}

/// Incremental decoder of one reply stream, whatever the sock_diag family: it checks the
/// netlink framing and hands each `SOCK_DIAG_BY_FAMILY` payload to a per-family parser.
/// Error offsets count from the first byte ever fed, so for a live dump they are offsets in
/// the stream that `-D FILE` would record.
#[derive(Debug)]
pub(crate) struct Decoder {
    /// Stream offset of the next byte to be fed.
    stream_offset: usize,
    /// A live dump accepts only its own sequence number, as libnetlink does: anything else
    /// is a leftover on the socket. A recorded stream accepts every message.
    seq: Option<u32>,
    pub(crate) interrupted: bool,
    /// A stream of multicast notifications has no end: `NLMSG_DONE` in it is an error.
    notifications: bool,
}

impl Decoder {
    pub(crate) fn new(seq: Option<u32>) -> Self {
        Self { stream_offset: 0, seq, interrupted: false, notifications: false }
    }

    /// A decoder of sock_diag multicast notifications (`SKNLGRP_*_DESTROY`): messages with
    /// sequence number 0 (what the kernel's `netlink_broadcast` sends, and all ss's reader
    /// keeps), and no `NLMSG_DONE`.
    pub(crate) fn notifications() -> Self {
        Self { notifications: true, ..Self::new(Some(0)) }
    }

    /// Decode the whole messages in `buf`, handing each reply payload to `on_msg`, until
    /// `buf` ends or an `NLMSG_DONE` does. An error from `on_msg` is reported at the offset
    /// of its message.
    pub(crate) fn feed(
        &mut self,
        buf: &[u8],
        on_msg: &mut dyn FnMut(&[u8]) -> Result<(), MalformedKind>,
    ) -> Result<Step, DiagError> {
        let mut pos = 0;
        while pos < buf.len() {
            let at = self.stream_offset + pos;
            let malformed = |kind| DiagError::Malformed { offset: at, kind };
            let rest = &buf[pos..];
            let header = read_header(rest).map_err(malformed)?;
            let len = usize::try_from(header.len).unwrap_or(usize::MAX);
            if len < NLMSG_HDRLEN {
                return Err(malformed(MalformedKind::LengthTooSmall { len: header.len }));
            }
            let Some(message) = rest.get(..len) else {
                return Err(malformed(MalformedKind::LengthPastEnd { len: header.len, available: rest.len() }));
            };
            let payload = &message[NLMSG_HDRLEN..];
            // Messages start NLMSG_ALIGNTO-aligned; the padding of the last message may be
            // missing at the very end of a buffer, which is harmless.
            let next = pos + align(len).min(rest.len());

            if self.seq.is_some_and(|seq| seq != header.seq) {
                pos = next;
                continue;
            }
            if header.flags & NLM_F_DUMP_INTR != 0 {
                self.interrupted = true;
            }
            match header.kind {
                NLMSG_NOOP => {}
                NLMSG_DONE if self.notifications => {
                    return Err(malformed(MalformedKind::UnexpectedType(NLMSG_DONE)));
                }
                NLMSG_DONE => {
                    // A dump's NLMSG_DONE carries an int status (net/netlink/af_netlink.c,
                    // netlink_dump_done); negative means the dump failed part-way.
                    let status = read_status(payload, "NLMSG_DONE status").map_err(malformed)?;
                    if status < 0 {
                        return Err(kernel_error(at, status));
                    }
                    self.stream_offset += next;
                    return Ok(Step::Done { consumed: next });
                }
                NLMSG_ERROR => {
                    // struct nlmsgerr (include/uapi/linux/netlink.h): int error, then the
                    // request's header, which is not needed. error == 0 is an ACK.
                    let status = read_status(payload, "NLMSG_ERROR errno").map_err(malformed)?;
                    if status != 0 {
                        return Err(kernel_error(at, status));
                    }
                }
                SOCK_DIAG_BY_FAMILY => on_msg(payload).map_err(malformed)?,
                other => return Err(malformed(MalformedKind::UnexpectedType(other))),
            }
            pos = next;
        }
        self.stream_offset += buf.len();
        Ok(Step::More)
    }
}

/// The fields of `struct nlmsghdr` this module needs.
#[derive(Debug, Clone, Copy)]
struct Header {
    len: u32,
    kind: u16,
    flags: u16,
    seq: u32,
}

fn read_header(buf: &[u8]) -> Result<Header, MalformedKind> {
    let truncated = || MalformedKind::TruncatedHeader { available: buf.len() };
    let hdr = buf.get(..NLMSG_HDRLEN).ok_or_else(truncated)?;
    Ok(Header {
        len: u32_at(hdr, 0).ok_or_else(truncated)?,
        kind: u16_ne_at(hdr, 4).ok_or_else(truncated)?,
        flags: u16_ne_at(hdr, 6).ok_or_else(truncated)?,
        seq: u32_at(hdr, 8).ok_or_else(truncated)?,
    })
}

fn read_status(payload: &[u8], what: &'static str) -> Result<i32, MalformedKind> {
    payload.first_chunk::<4>().map(|b| i32::from_ne_bytes(*b)).ok_or(MalformedKind::TruncatedPayload {
        what,
        needed: 4,
        available: payload.len(),
    })
}

fn kernel_error(offset: usize, status: i32) -> DiagError {
    let errno = status.saturating_neg();
    DiagError::Kernel { offset, errno, source: io::Error::from_raw_os_error(errno) }
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
/// One rtattr (length, type, payload, padding to 4 bytes), for the parsers' tests.
#[cfg(test)]
pub(crate) fn test_rtattr(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut v = (u16::try_from(4 + data.len()).expect("small")).to_ne_bytes().to_vec();
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(data);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

#[cfg(test)]
pub(crate) fn parse_inet_diag_msg(payload: &[u8], protocol: u8) -> Result<InetSocket, MalformedKind> {
    parse_inet_diag_msg_with(payload, protocol, false)
}

/// [`parse_inet_diag_msg`], plus the attributes `-e -m -i` print when `details` is set.
pub(crate) fn parse_inet_diag_msg_with(
    payload: &[u8],
    protocol: u8,
    details: bool,
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
            Some(Box::new(super::inet_ext::parse_details_of(attrs, INET_DIAG_MSG_LEN, mptcp)?))
        } else {
            None
        },
    })
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
    parse_inet_diag_msg_with(payload, protocol, true)
}

/// `N` bytes of the fixed-size `msg` at a constant offset. The offsets above are all in
/// bounds of `INET_DIAG_MSG_LEN`; a wrong constant yields zeroes rather than a panic.
fn fixed<const N: usize>(msg: &[u8; INET_DIAG_MSG_LEN], off: usize) -> [u8; N] {
    msg.get(off..).and_then(|s| s.first_chunk::<N>()).copied().unwrap_or([0; N])
}

fn u32_at(buf: &[u8], off: usize) -> Option<u32> {
    buf.get(off..)?.first_chunk::<4>().map(|b| u32::from_ne_bytes(*b))
}

fn u16_ne_at(buf: &[u8], off: usize) -> Option<u16> {
    buf.get(off..)?.first_chunk::<2>().map(|b| u16::from_ne_bytes(*b))
}

/// NLMSG_ALIGN (include/uapi/linux/netlink.h).
fn align(len: usize) -> usize {
    let to = usize::from(NLMSG_ALIGNTO);
    len.saturating_add(to - 1) & !(to - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: u8 = 6;
    const SEQ: u32 = 7;

    /// A netlink message: header (host order, as the kernel writes it), payload, padding.
    fn nlmsg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(NLMSG_HDRLEN + payload.len()).expect("test payload fits");
        let mut m = Vec::new();
        m.extend_from_slice(&len.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&4242u32.to_ne_bytes());
        m.extend_from_slice(payload);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    fn done() -> Vec<u8> {
        nlmsg(NLMSG_DONE, 2, SEQ, &0i32.to_ne_bytes())
    }

    /// Field values for one hand-built `inet_diag_msg`, laid out independently of the parser.
    struct Raw {
        family: u8,
        state: u8,
        timer: u8,
        retrans: u8,
        sport: u16,
        dport: u16,
        src: [u8; 16],
        dst: [u8; 16],
        ifindex: u32,
        cookie: [u32; 2],
        expires: u32,
        rqueue: u32,
        wqueue: u32,
        uid: u32,
        inode: u32,
    }

    impl Raw {
        fn bytes(&self) -> Vec<u8> {
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

    fn v4_raw() -> Raw {
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

    fn v6_raw() -> Raw {
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

    fn reply(raw: &Raw) -> Vec<u8> {
        nlmsg(SOCK_DIAG_BY_FAMILY, 2, SEQ, &raw.bytes())
    }

    fn malformed(err: DiagError) -> (usize, MalformedKind) {
        match err {
            DiagError::Malformed { offset, kind } => (offset, kind),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

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
}
