//! The netlink framing shared by every sock_diag dump request: a `struct nlmsghdr`
//! (include/uapi/linux/netlink.h) of type `SOCK_DIAG_BY_FAMILY` with
//! `NLM_F_REQUEST | NLM_F_DUMP`, followed by the family's own request struct, as ss's
//! `DIAG_REQUEST` macro builds it.

use super::parse::NLMSG_HDRLEN;

/// `SOCK_DIAG_BY_FAMILY` (include/uapi/linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST | NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const REQUEST_DUMP: u16 = 0x0301;

/// A whole dump request: header then `body` (which must already be the family's request
/// struct, padded to 4 bytes as every such struct is).
pub(crate) fn dump_request(seq: u32, body: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + body.len();
    let mut buf = Vec::with_capacity(len);
    // Request structs are a few dozen bytes: the length always fits a u32.
    buf.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    buf.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    buf.extend_from_slice(&REQUEST_DUMP.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(body);
    buf
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
}
