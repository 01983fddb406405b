//! TCP rows as the agent sends them: a fixed little-endian layout per row, written once
//! when the agent's ready answer is built and decoded by the client without a field-by-
//! field parser. A query of 100k rows is the agent copying bytes and the client reading
//! them at fixed offsets.
//!
//! Layout (`ROW_HEAD` bytes, then the two addresses: 4 bytes each for AF_INET, 16 for
//! AF_INET6, network order):
//!
//! | offset | field |
//! | ---: | --- |
//! | 0 | family u16 |
//! | 2 | state u8 |
//! | 3 | flags u8: bit 0 v6only, bit 1 read from the kernel at query time |
//! | 4 | timer u8, retrans u8, protocol u8, 0 |
//! | 8 | cookie u64 |
//! | 16 | sport u16, dport u16 |
//! | 20 | ifindex, rqueue, wqueue, uid, inode, expires_ms: u32 each |
//! | 44 | src, dst |
//!
//! Rows carry what the table keeps: no `-e -m -i` details (`ext`), which a table answer
//! never has.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sockstat_ebpf::{AF_INET, AF_INET6};

use crate::model::socket::{InetSocket, Source};

/// Bytes before the addresses.
pub const ROW_HEAD: usize = 44;
/// A whole AF_INET row.
pub const ROW_V4: usize = ROW_HEAD + 8;
/// A whole AF_INET6 row.
pub const ROW_V6: usize = ROW_HEAD + 32;

const FLAG_V6ONLY: u8 = 1;
const FLAG_KERNEL: u8 = 2;

/// Offsets of the fields an index or a state mask reads straight from a row.
pub const OFF_STATE: usize = 2;
pub const OFF_SPORT: usize = 16;
pub const OFF_DPORT: usize = 18;
pub const OFF_ADDRS: usize = ROW_HEAD;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RowsError {
    #[error("TCP rows: row at byte {offset} has family {family}, not AF_INET or AF_INET6")]
    Family { offset: usize, family: u16 },
    #[error("TCP rows: row at byte {offset} is cut short ({have} of {need} bytes)")]
    Truncated { offset: usize, have: usize, need: usize },
}

/// The size of a row of `family`; `None` for a family rows cannot hold.
#[must_use]
pub fn row_len(family: u16) -> Option<usize> {
    match family {
        AF_INET => Some(ROW_V4),
        AF_INET6 => Some(ROW_V6),
        _ => None,
    }
}

/// Writes `a` as `family` holds it at the start of `out` (4 or 16 bytes).
fn put_addr(out: &mut [u8], family: u16, a: &IpAddr) {
    match (family, a) {
        (AF_INET, IpAddr::V4(v4)) => out[..4].copy_from_slice(&v4.octets()),
        (AF_INET, IpAddr::V6(v6)) => {
            out[..4].copy_from_slice(&v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED).octets());
        }
        (_, IpAddr::V6(v6)) => out[..16].copy_from_slice(&v6.octets()),
        (_, IpAddr::V4(v4)) => out[..16].copy_from_slice(&v4.to_ipv6_mapped().octets()),
    }
}

/// Appends `s` as one row. An inet socket of another family than AF_INET/AF_INET6 is not
/// a TCP row and is skipped (returns false).
pub fn push_row(out: &mut Vec<u8>, s: &InetSocket) -> bool {
    let Some(len) = row_len(s.family) else { return false };
    // Made whole on the stack, then appended at once: the agent writes 200k rows each time
    // its ready answer is made again.
    let mut row = [0u8; ROW_V6];
    let mut put = |at: usize, bytes: &[u8]| row[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &s.family.to_le_bytes());
    let flags = if s.v6only { FLAG_V6ONLY } else { 0 } | if s.source == Source::Kernel { FLAG_KERNEL } else { 0 };
    put(2, &[s.state, flags, s.timer, s.retrans, s.protocol, 0]);
    put(8, &s.cookie.to_le_bytes());
    put(OFF_SPORT, &s.sport.to_le_bytes());
    put(OFF_DPORT, &s.dport.to_le_bytes());
    for (i, v) in [s.ifindex, s.rqueue, s.wqueue, s.uid, s.inode, s.expires_ms].into_iter().enumerate() {
        put(20 + 4 * i, &v.to_le_bytes());
    }
    let n = (len - ROW_HEAD) / 2;
    put_addr(&mut row[ROW_HEAD..], s.family, &s.src);
    put_addr(&mut row[ROW_HEAD + n..], s.family, &s.dst);
    out.extend_from_slice(&row[..len]);
    true
}

/// A row's bytes, read at fixed offsets (the caller checked its length).
#[derive(Clone, Copy, Debug)]
pub struct Row<'a>(pub &'a [u8]);

impl<'a> Row<'a> {
    fn u16_at(self, o: usize) -> u16 {
        u16::from_le_bytes([self.0[o], self.0[o + 1]])
    }

    fn u32_at(self, o: usize) -> u32 {
        u32::from_le_bytes(self.0[o..o + 4].try_into().unwrap_or_default())
    }

    #[must_use]
    pub fn family(self) -> u16 {
        self.u16_at(0)
    }

    #[must_use]
    pub fn state(self) -> u8 {
        self.0[OFF_STATE]
    }

    #[must_use]
    pub fn cookie(self) -> u64 {
        u64::from_le_bytes(self.0[8..16].try_into().unwrap_or_default())
    }

    #[must_use]
    pub fn inode(self) -> u32 {
        self.u32_at(36)
    }

    /// Where the row's fields were read: the agent's table, or the kernel at query time.
    #[must_use]
    pub fn source(self) -> Source {
        if self.0[3] & FLAG_KERNEL != 0 { Source::Kernel } else { Source::Table }
    }

    #[must_use]
    pub fn protocol(self) -> u8 {
        self.0[6]
    }

    #[must_use]
    pub fn sport(self) -> u16 {
        self.u16_at(OFF_SPORT)
    }

    #[must_use]
    pub fn dport(self) -> u16 {
        self.u16_at(OFF_DPORT)
    }

    /// The local address's bytes (4 or 16, network order).
    #[must_use]
    pub fn src(self) -> &'a [u8] {
        let n = (self.0.len() - ROW_HEAD) / 2;
        &self.0[ROW_HEAD..ROW_HEAD + n]
    }

    /// The remote address's bytes.
    #[must_use]
    pub fn dst(self) -> &'a [u8] {
        let n = (self.0.len() - ROW_HEAD) / 2;
        &self.0[ROW_HEAD + n..]
    }

    fn ip(b: &[u8]) -> IpAddr {
        match <[u8; 4]>::try_from(b) {
            Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            Err(_) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap_or_default())),
        }
    }

    #[must_use]
    pub fn socket(self) -> InetSocket {
        let b = self.0;
        InetSocket {
            family: self.family(),
            protocol: self.protocol(),
            state: b[OFF_STATE],
            src: Self::ip(self.src()),
            sport: self.sport(),
            dst: Self::ip(self.dst()),
            dport: self.dport(),
            v6only: b[3] & FLAG_V6ONLY != 0,
            ifindex: self.u32_at(20),
            rqueue: self.u32_at(24),
            wqueue: self.u32_at(28),
            cookie: self.cookie(),
            uid: self.u32_at(32),
            inode: self.inode(),
            timer: b[4],
            retrans: b[5],
            expires_ms: self.u32_at(40),
            source: self.source(),
            ext: None,
        }
    }
}

/// The rows of `bytes` in order, each checked for its family and length.
#[derive(Clone)]
pub struct Rows<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Iterator for Rows<'a> {
    type Item = Result<Row<'a>, RowsError>;

    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.offset;
        let rest = self.bytes.get(offset..).filter(|r| !r.is_empty())?;
        let row = match rest {
            [a, b, ..] => {
                let family = u16::from_le_bytes([*a, *b]);
                match row_len(family) {
                    None => Err(RowsError::Family { offset, family }),
                    Some(need) => {
                        rest.get(..need).map(Row).ok_or(RowsError::Truncated { offset, have: rest.len(), need })
                    }
                }
            }
            _ => Err(RowsError::Truncated { offset, have: rest.len(), need: ROW_V4 }),
        };
        // After an error, nothing more.
        self.offset = row.as_ref().map_or(self.bytes.len(), |r| offset + r.0.len());
        Some(row)
    }
}

/// Splits `bytes` into rows (see [`Rows`]).
#[must_use]
pub fn rows(bytes: &[u8]) -> Rows<'_> {
    Rows { bytes, offset: 0 }
}

/// Decodes every row.
///
/// # Errors
/// A row of an unknown family or cut short, with its byte offset.
pub fn decode(bytes: &[u8]) -> Result<Vec<InetSocket>, RowsError> {
    // Checked and counted first: the records are then written once, into their place.
    let n = rows(bytes).try_fold(0usize, |n, r| r.map(|_| n + 1))?;
    let mut out = Vec::with_capacity(n);
    out.extend(rows(bytes).map_while(Result::ok).map(Row::socket));
    Ok(out)
}

/// TCP rows in the layout above, back to back: what [`crate::wire::protocol::Response::Rows`]
/// carries (serialized as one byte string).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpRows(pub Vec<u8>);

impl Serialize for TcpRows {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for TcpRows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = TcpRows;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string of TCP rows")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<TcpRows, E> {
                Ok(TcpRows(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<TcpRows, E> {
                Ok(TcpRows(v))
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(src: &str, dst: &str) -> InetSocket {
        let src: IpAddr = src.parse().unwrap();
        InetSocket {
            family: if src.is_ipv4() { AF_INET } else { AF_INET6 },
            protocol: 6,
            state: 1,
            src,
            sport: 443,
            dst: dst.parse().unwrap(),
            dport: 50_123,
            v6only: !src.is_ipv4(),
            ifindex: 3,
            rqueue: 7,
            wqueue: u32::MAX,
            cookie: 0x1234_5678_9abc,
            uid: 1000,
            inode: 99,
            timer: 2,
            retrans: 1,
            expires_ms: 400,
            source: Source::Table,
            ext: None,
        }
    }

    #[test]
    fn rows_round_trip_both_families() {
        let socks = vec![sock("10.1.2.3", "192.168.0.9"), sock("fe80::1", "2001:db8::7"), sock("0.0.0.0", "0.0.0.0")];
        let mut bytes = Vec::new();
        for s in &socks {
            assert!(push_row(&mut bytes, s));
        }
        assert_eq!(bytes.len(), 2 * ROW_V4 + ROW_V6);
        assert_eq!(decode(&bytes).unwrap(), socks);
        let r: Vec<Row> = rows(&bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!((r[1].sport(), r[1].dport(), r[1].state()), (443, 50_123, 1));
        assert_eq!(r[0].dst(), &[192, 168, 0, 9]);
    }

    #[test]
    fn bad_rows_name_their_offset() {
        let mut bytes = Vec::new();
        push_row(&mut bytes, &sock("10.1.2.3", "10.1.2.4"));
        let cut = &bytes[..ROW_V4 - 1];
        assert_eq!(decode(cut).unwrap_err(), RowsError::Truncated { offset: 0, have: ROW_V4 - 1, need: ROW_V4 });
        let mut two = bytes.clone();
        two.extend_from_slice(&[7, 0, 0]);
        assert_eq!(decode(&two).unwrap_err(), RowsError::Family { offset: ROW_V4, family: 7 });
        // An error ends the rows.
        assert_eq!(rows(&two).count(), 2);
        two.truncate(ROW_V4 + 1);
        assert!(matches!(decode(&two).unwrap_err(), RowsError::Truncated { offset: ROW_V4, have: 1, .. }));
        assert_eq!(decode(&[]).unwrap(), []);
    }

    #[test]
    fn rows_travel_as_one_byte_string() {
        let mut bytes = Vec::new();
        push_row(&mut bytes, &sock("10.1.2.3", "10.1.2.4"));
        let encoded = postcard::to_allocvec(&TcpRows(bytes.clone())).unwrap();
        // A varint length, then the bytes as they are.
        assert_eq!(&encoded[1..], &bytes[..]);
        assert_eq!(postcard::from_bytes::<TcpRows>(&encoded).unwrap(), TcpRows(bytes));
    }
}
