//! Netlink framing, the bottom of sock_diag: building a request (`struct nlmsghdr` then the
//! family's request struct, as ss's `DIAG_REQUEST` macro does, and request attributes),
//! walking the messages of a reply stream ([`Decoder`]), and splitting the attributes
//! (`struct rtattr`) that follow a fixed diag struct. No I/O here, and nothing of any one
//! family: the per-family files (`inet`, `unix`, `packet`, ...) sit above this one.
//!
//! May import `error` (the one error type of `diag/`) and `model`; nothing else in `diag/`.
//!
//! Integers are in host byte order (netlink is host-endian), so a recorded stream is only
//! readable on a machine of the same endianness.

use std::io;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_ALIGNTO, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP,
};
use netlink_packet_sock_diag::SOCK_DIAG_BY_FAMILY;

use super::error::{DiagError, MalformedKind};

/// `sizeof(struct nlmsghdr)` (include/uapi/linux/netlink.h): `__u32 nlmsg_len` @0,
/// `__u16 nlmsg_type` @4, `__u16 nlmsg_flags` @6, `__u32 nlmsg_seq` @8, `__u32 nlmsg_pid` @12.
pub const NLMSG_HDRLEN: usize = 16;

/// A whole request: a `struct nlmsghdr` of type `kind` with `flags`, then `body` (which
/// must already be the family's request struct, padded to 4 bytes as every such struct
/// is). The port id is 0: the kernel fills in the sender's.
pub(crate) fn request(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + body.len();
    let mut buf = Vec::with_capacity(len);
    // Request structs are a few dozen bytes: the length always fits a u32.
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(body);
    buf
}

/// A whole dump request: `SOCK_DIAG_BY_FAMILY` (include/uapi/linux/sock_diag.h) with
/// `NLM_F_REQUEST | NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`), then `body`.
pub(crate) fn dump_request(seq: u32, body: &[u8]) -> Vec<u8> {
    request(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, body)
}

/// `TCPDIAG_GETSOCK` (include/uapi/linux/inet_diag.h): the older TCP request, whose body
/// is an `inet_diag_req`; its replies carry this type instead of `SOCK_DIAG_BY_FAMILY`.
pub(crate) const TCPDIAG_GETSOCK: u16 = 18;

/// Appends an attribute (`struct rtattr`: u16 `rta_len`, header included, u16 `rta_type`,
/// the payload, padded to 4 bytes) to a whole request and makes `nlmsg_len` cover it, as
/// iproute2's `addattr_l` does.
pub(crate) fn push_attr(request: &mut Vec<u8>, kind: u16, data: &[u8]) {
    // Request attributes are a few bytes: the length always fits a u16.
    let rta_len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
    request.extend_from_slice(&rta_len.to_ne_bytes());
    request.extend_from_slice(&kind.to_ne_bytes());
    request.extend_from_slice(data);
    request.resize(align(request.len()), 0);
    let len = u32::try_from(request.len()).unwrap_or(u32::MAX);
    if let Some(head) = request.get_mut(0..4) {
        head.copy_from_slice(&len.to_ne_bytes());
    }
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
    /// The type of the reply messages: `SOCK_DIAG_BY_FAMILY`, or the request's own for
    /// the older requests (`TCPDIAG_GETSOCK`).
    reply_kind: u16,
}

impl Decoder {
    pub(crate) fn new(seq: Option<u32>) -> Self {
        Self { stream_offset: 0, seq, interrupted: false, notifications: false, reply_kind: SOCK_DIAG_BY_FAMILY }
    }

    /// A decoder of the replies to a request of type `kind` (the replies of a dump carry
    /// its request's type).
    pub(crate) fn replying_to(self, kind: u16) -> Self {
        Self { reply_kind: kind, ..self }
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
                kind if kind == self.reply_kind => on_msg(payload).map_err(malformed)?,
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

/// The answer to request `seq` among the messages of `buf`, if it holds one: the errno of
/// its `NLMSG_ERROR` (0 for an ACK). Other messages, such as leftovers of an earlier
/// request, are skipped.
///
/// # Errors
/// [`DiagError::Malformed`] for an `nlmsg_len` shorter than the header.
pub(crate) fn ack_errno(buf: &[u8], seq: u32) -> Result<Option<i32>, DiagError> {
    let mut pos = 0;
    while let Some(hdr) = buf.get(pos..pos + NLMSG_HDRLEN) {
        let len = u32_at(hdr, 0).unwrap_or(0) as usize;
        let kind = u16_ne_at(hdr, 4).unwrap_or(0);
        let msg_seq = u32_at(hdr, 8).unwrap_or(0);
        if len < NLMSG_HDRLEN {
            return Err(DiagError::Malformed { offset: pos, kind: MalformedKind::LengthTooSmall { len: len as u32 } });
        }
        // NLMSG_ERROR carries the ACK: error 0, or the negative errno.
        if msg_seq == seq && kind == NLMSG_ERROR {
            let errno = buf
                .get(pos + NLMSG_HDRLEN..pos + NLMSG_HDRLEN + 4)
                .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .saturating_neg();
            return Ok(Some(errno));
        }
        pos += len.next_multiple_of(4);
    }
    Ok(None)
}

pub(crate) fn u32_at(buf: &[u8], off: usize) -> Option<u32> {
    buf.get(off..)?.first_chunk::<4>().map(|b| u32::from_ne_bytes(*b))
}

pub(crate) fn u16_ne_at(buf: &[u8], off: usize) -> Option<u16> {
    buf.get(off..)?.first_chunk::<2>().map(|b| u16::from_ne_bytes(*b))
}

/// NLMSG_ALIGN (include/uapi/linux/netlink.h).
fn align(len: usize) -> usize {
    let to = usize::from(NLMSG_ALIGNTO);
    len.saturating_add(to - 1) & !(to - 1)
}

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

/// A netlink message, for the decoders' tests: header (host order, as the kernel writes
/// it), payload, padding.
#[cfg(test)]
pub(crate) fn test_nlmsg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_then_body() {
        let r = dump_request(9, &[1, 2, 3, 4]);
        assert_eq!(r.len(), 20);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().expect("4")), 20);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().expect("2")), 20);
        assert_eq!(u16::from_ne_bytes(r[6..8].try_into().expect("2")), 0x301);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().expect("4")), 9);
        assert_eq!(&r[16..], &[1, 2, 3, 4]);
    }

    #[test]
    fn attribute_is_padded_and_counted_in_nlmsg_len() {
        let mut r = dump_request(1, &[0; 4]);
        push_attr(&mut r, 7, &[0xaa]);
        // 16 + 4, then rta_len 5, type 7, one byte, three of padding.
        assert_eq!(r.len(), 28);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().expect("4")), 28);
        assert_eq!(u16::from_ne_bytes(r[20..22].try_into().expect("2")), 5);
        assert_eq!(u16::from_ne_bytes(r[22..24].try_into().expect("2")), 7);
        assert_eq!(&r[24..], &[0xaa, 0, 0, 0]);
    }

    #[test]
    fn malformed_messages_name_the_header_length() {
        // error.rs sits below this file and spells the header length out.
        assert_eq!(
            MalformedKind::TruncatedHeader { available: 3 }.to_string(),
            format!("truncated netlink header: 3 of {NLMSG_HDRLEN} bytes")
        );
        assert_eq!(
            MalformedKind::LengthTooSmall { len: 8 }.to_string(),
            format!("nlmsg_len 8 is smaller than the {NLMSG_HDRLEN}-byte netlink header")
        );
    }

    #[test]
    fn ack_of_the_request_is_found_after_leftovers() {
        let mut buf = test_nlmsg(NLMSG_ERROR, 0, 4, &(-libc::EPERM).to_ne_bytes());
        assert_eq!(ack_errno(&buf, 5).expect("well formed"), None, "another request's answer");
        buf.extend(test_nlmsg(NLMSG_ERROR, 0, 5, &0i32.to_ne_bytes()));
        assert_eq!(ack_errno(&buf, 5).expect("well formed"), Some(0));
        let nack = test_nlmsg(NLMSG_ERROR, 0, 6, &(-libc::ENOENT).to_ne_bytes());
        assert_eq!(ack_errno(&nack, 6).expect("well formed"), Some(libc::ENOENT));
        let mut bad = test_nlmsg(NLMSG_ERROR, 0, 6, &[]);
        bad[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(matches!(
            ack_errno(&bad, 6),
            Err(DiagError::Malformed { offset: 0, kind: MalformedKind::LengthTooSmall { len: 8 } })
        ));
    }
}
