//! The owners of sockets: which process holds which socket descriptor, as the agent's
//! owners iterator reports them (and `-p` prints them).

use std::mem::offset_of;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sockstat_ebpf::OwnerRecord;

/// The owners iterator's output as it came from the kernel: whole [`OwnerRecord`]s back
/// to back, in pid then descriptor order. The agent sends these bytes as they are and
/// the client reads each field at its offset: a `-p` query at 100k sockets is 100k
/// records, and converting each into an owned value cost more than the walk's reading.
#[derive(Clone, Default)]
pub struct OwnerRecords(Bytes);

/// Record bytes: owned, or held in place by what keeps them (an answer the agent handed
/// over in shared memory, mapped by the client).
#[derive(Clone)]
enum Bytes {
    Owned(Vec<u8>),
    Held(std::sync::Arc<dyn AsRef<[u8]> + Send + Sync>, std::ops::Range<usize>),
}

impl Default for Bytes {
    fn default() -> Self {
        Bytes::Owned(Vec::new())
    }
}

impl std::fmt::Debug for OwnerRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerRecords({} records)", self.len())
    }
}

impl PartialEq for OwnerRecords {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for OwnerRecords {}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "owner records: {len} bytes is not a whole number of {size}-byte records (a torn record at byte {offset})",
    size = OwnerRecord::SIZE
)]
pub struct TornRecords {
    pub len: usize,
    pub offset: usize,
}

impl OwnerRecords {
    /// # Errors
    /// A length that is not a multiple of the record size.
    pub fn new(bytes: Vec<u8>) -> Result<Self, TornRecords> {
        Self::whole(bytes.len())?;
        Ok(Self(Bytes::Owned(bytes)))
    }

    /// The records at `range` of what `holder` keeps, read there.
    ///
    /// # Errors
    /// A range out of the holder's bytes, or not a multiple of the record size.
    pub fn held(
        holder: std::sync::Arc<dyn AsRef<[u8]> + Send + Sync>,
        range: std::ops::Range<usize>,
    ) -> Result<Self, TornRecords> {
        let have = (*holder).as_ref().len();
        if range.start > range.end || range.end > have {
            return Err(TornRecords { len: have, offset: range.start.min(have) });
        }
        Self::whole(range.len())?;
        Ok(Self(Bytes::Held(holder, range)))
    }

    fn whole(len: usize) -> Result<(), TornRecords> {
        if len.is_multiple_of(OwnerRecord::SIZE) {
            Ok(())
        } else {
            Err(TornRecords { len, offset: len - len % OwnerRecord::SIZE })
        }
    }

    fn vec_mut(&mut self) -> &mut Vec<u8> {
        if let Bytes::Held(..) = self.0 {
            self.0 = Bytes::Owned(self.as_bytes().to_vec());
        }
        match &mut self.0 {
            Bytes::Owned(v) => v,
            // Made owned just above.
            Bytes::Held(..) => unreachable!("owner records made owned"),
        }
    }

    #[must_use]
    pub fn from_records(records: &[OwnerRecord]) -> Self {
        let mut out = Self::with_capacity(records.len());
        for r in records {
            out.push(r);
        }
        out
    }

    /// Room for `n` records.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self(Bytes::Owned(Vec::with_capacity(n * OwnerRecord::SIZE)))
    }

    /// Appends one record.
    pub fn push(&mut self, r: &OwnerRecord) {
        put_record(self.vec_mut(), r);
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.as_bytes().len() / OwnerRecord::SIZE
    }

    /// The records' bytes, back to back.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Bytes::Owned(v) => v,
            Bytes::Held(holder, range) => &(**holder).as_ref()[range.clone()],
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// The `i`th record.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<OwnerRef<'_>> {
        self.as_bytes().get(i * OwnerRecord::SIZE..(i + 1) * OwnerRecord::SIZE).map(OwnerRef)
    }

    /// The records in the iterator's order (pid, then descriptor).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = OwnerRef<'_>> + ExactSizeIterator {
        self.as_bytes().chunks_exact(OwnerRecord::SIZE).map(OwnerRef)
    }

    /// The records of the `wanted` socket inodes in the order ss lists a socket's owners
    /// (ss prepends each find, so the last found comes first: the records backwards),
    /// with the inode, pid and descriptor as ss prints them; a record whose numbers do
    /// not fit those is left out.
    pub fn newest_first<'a>(
        &'a self,
        wanted: &'a rustc_hash::FxHashSet<u32>,
    ) -> impl Iterator<Item = (u32, i32, i32, OwnerRef<'a>)> + 'a {
        self.iter().rev().filter_map(|r| {
            let inode = u32::try_from(r.inode()).ok().filter(|i| wanted.contains(i))?;
            Some((inode, i32::try_from(r.pid()).ok()?, i32::try_from(r.fd()).ok()?, r))
        })
    }
}

/// One record of [`OwnerRecords`], read in place (the kernel's native byte order: the
/// agent and its clients share the machine).
#[derive(Clone, Copy, Debug)]
pub struct OwnerRef<'a>(&'a [u8]);

impl<'a> OwnerRef<'a> {
    fn u32_at(self, o: usize) -> u32 {
        u32::from_ne_bytes([self.0[o], self.0[o + 1], self.0[o + 2], self.0[o + 3]])
    }

    fn u64_at(self, o: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[o..o + 8]);
        u64::from_ne_bytes(b)
    }

    /// Process id (initial pid namespace).
    #[must_use]
    pub fn pid(self) -> u32 {
        self.u32_at(offset_of!(OwnerRecord, pid))
    }

    #[must_use]
    pub fn fd(self) -> u32 {
        self.u32_at(offset_of!(OwnerRecord, fd))
    }

    /// The socket's inode.
    #[must_use]
    pub fn inode(self) -> u64 {
        self.u64_at(offset_of!(OwnerRecord, inode))
    }

    /// The socket's cookie, 0 if none was ever generated.
    #[must_use]
    pub fn cookie(self) -> u64 {
        self.u64_at(offset_of!(OwnerRecord, cookie))
    }

    /// The process's `comm` as the kernel keeps it, NUL-padded.
    #[must_use]
    pub fn comm(self) -> [u8; 16] {
        let at = offset_of!(OwnerRecord, comm);
        let mut comm = [0u8; 16];
        comm.copy_from_slice(&self.0[at..at + 16]);
        comm
    }

    /// The process name as ss shows it, in the bytes the kernel keeps (not always UTF-8):
    /// /proc/PID/stat gives `comm` up to its first NUL, and ss reads it from there with
    /// `%[^)]`: up to the first `)`, nothing if it starts with one.
    #[must_use]
    pub fn name_bytes(self) -> &'a [u8] {
        let at = offset_of!(OwnerRecord, comm);
        let comm = &self.0[at..at + 16];
        let len = comm.iter().position(|&b| b == 0 || b == b')').unwrap_or(comm.len());
        &comm[..len]
    }
}

/// Appends `r` as the owners iterator writes a record: made whole, then copied at once
/// (an answer is 100k of them).
pub fn put_record(out: &mut Vec<u8>, r: &OwnerRecord) {
    let mut b = [0u8; OwnerRecord::SIZE];
    let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
    put(offset_of!(OwnerRecord, pid), &r.pid.to_ne_bytes());
    put(offset_of!(OwnerRecord, fd), &r.fd.to_ne_bytes());
    put(offset_of!(OwnerRecord, inode), &r.inode.to_ne_bytes());
    put(offset_of!(OwnerRecord, cookie), &r.cookie.to_ne_bytes());
    put(offset_of!(OwnerRecord, comm), &r.comm);
    out.extend_from_slice(&b);
}

impl Serialize for OwnerRecords {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.as_bytes())
    }
}

impl<'de> Deserialize<'de> for OwnerRecords {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = OwnerRecords;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a byte string of owner records")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<OwnerRecords, E> {
                self.visit_byte_buf(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<OwnerRecords, E> {
                OwnerRecords::new(v).map_err(E::custom)
            }
        }
        d.deserialize_byte_buf(Bytes)
    }
}

/// The records of several walks that each list some of the descriptors, in
/// (pid, descriptor) order. Each walk visits the tasks in the same order, ascending pids
/// of the agent's pid namespace (the initial one, whose pids the records carry), and a
/// task's descriptors in ascending order, so merging on (pid, descriptor) gives the order
/// of one whole walk. Whole records only: a torn tail is kept at the end, for
/// [`OwnerRecords::new`] to refuse.
#[must_use]
pub fn merge_walks(mut walks: Vec<Vec<u8>>) -> Vec<u8> {
    if walks.len() < 2 {
        return walks.pop().unwrap_or_default();
    }
    let key = |r: &[u8]| (OwnerRef(r).pid(), OwnerRef(r).fd());
    let mut out = Vec::with_capacity(walks.iter().map(Vec::len).sum());
    let mut records: Vec<_> = walks.iter().map(|w| w.chunks_exact(OwnerRecord::SIZE).peekable()).collect();
    loop {
        let next =
            records.iter_mut().enumerate().filter_map(|(i, r)| r.peek().map(|rec| (key(rec), i))).min().map(|(_, i)| i);
        let Some(i) = next else { break };
        if let Some(rec) = records[i].next() {
            out.extend_from_slice(rec);
        }
    }
    for w in &walks {
        out.extend_from_slice(w.chunks_exact(OwnerRecord::SIZE).remainder());
    }
    out
}

/// One descriptor of one process that refers to a socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// The process name (`comm`), as /proc/PID/stat gives it: bytes, as the kernel keeps
    /// them (ss 7.1 escapes a name byte by byte); JSON shows it as text, an invalid byte
    /// as U+FFFD.
    #[serde(serialize_with = "as_text")]
    pub comm: Vec<u8>,
    pub pid: i32,
    /// `-T`: the thread (task) id; `None` without `-T`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    pub fd: i32,
}

fn as_text<S: serde::Serializer>(comm: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(comm))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32, fd: u32, inode: u64, cookie: u64, comm: &[u8]) -> OwnerRecord {
        let mut c = [0u8; 16];
        c[..comm.len()].copy_from_slice(comm);
        OwnerRecord { pid, fd, inode, cookie, comm: c }
    }

    #[test]
    fn records_read_in_place_as_the_kernel_wrote_them() {
        let records = OwnerRecords::from_records(&[record(10, 3, 1 << 33, 9, b"nginx"), record(20, 7, 5, 0, b"x")]);
        let got: Vec<_> = records.iter().map(|r| (r.pid(), r.fd(), r.inode(), r.cookie(), r.name_bytes())).collect();
        assert_eq!(got, [(10, 3, 1 << 33, 9, &b"nginx"[..]), (20, 7, 5, 0, b"x")]);
        let last = records.iter().next_back().unwrap();
        assert_eq!(last.pid(), 20);
        // Through the wire encoding and back.
        let bytes = postcard::to_stdvec(&records).unwrap();
        assert_eq!(postcard::from_bytes::<OwnerRecords>(&bytes).unwrap(), records);
    }

    #[test]
    fn records_held_in_place_read_as_owned_ones() {
        let owned = OwnerRecords::from_records(&[record(3, 4, 99, 7, b"held"), record(5, 6, 100, 8, b"x")]);
        let mut frame = vec![0xee; 3];
        frame.extend_from_slice(owned.as_bytes());
        frame.push(0xff);
        let holder: std::sync::Arc<dyn AsRef<[u8]> + Send + Sync> = std::sync::Arc::new(frame.clone());
        let held = OwnerRecords::held(holder.clone(), 3..frame.len() - 1).unwrap();
        assert_eq!(held, owned);
        assert_eq!(held.get(1).map(|r| r.pid()), Some(5));
        // Pushing makes them owned: the holder's bytes do not change.
        let mut grown = held.clone();
        grown.push(&record(9, 1, 1, 1, b"y"));
        assert_eq!((grown.len(), held.len()), (3, 2));
        assert_eq!((*holder).as_ref(), &frame[..]);
        // A range out of the holder, or of torn records, is refused.
        assert!(OwnerRecords::held(holder.clone(), 0..frame.len() + 1).is_err());
        assert!(OwnerRecords::held(holder, 3..frame.len()).is_err());
    }

    #[test]
    fn the_halves_of_a_walk_merge_into_its_order() {
        let records = |rs: &[(u32, u32)]| {
            let rs: Vec<_> = rs.iter().map(|&(pid, fd)| record(pid, fd, u64::from(pid * 100 + fd), 0, b"x")).collect();
            OwnerRecords::from_records(&rs).as_bytes().to_vec()
        };
        let whole = [(1, 0), (1, 1), (1, 2), (7, 3), (12, 4), (12, 5), (300, 1)];
        let even: Vec<_> = whole.iter().copied().filter(|r| r.1 % 2 == 0).collect();
        let odd: Vec<_> = whole.iter().copied().filter(|r| r.1 % 2 == 1).collect();
        assert_eq!(merge_walks(vec![records(&even), records(&odd)]), records(&whole));
        assert_eq!(merge_walks(vec![records(&odd), Vec::new()]), records(&odd));
        assert_eq!(merge_walks(vec![records(&whole)]), records(&whole));
        // A torn record stays torn, at the end, for the records' check to refuse.
        let mut torn = records(&odd);
        torn.extend_from_slice(&[9, 9, 9]);
        let merged = merge_walks(vec![records(&even), torn]);
        assert_eq!(merged.len(), records(&whole).len() + 3);
        assert!(OwnerRecords::new(merged).is_err());
    }

    #[test]
    fn a_torn_record_is_refused_with_its_offset() {
        let mut bytes = OwnerRecords::from_records(&[record(1, 2, 3, 4, b"a")]).as_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        assert_eq!(OwnerRecords::new(bytes.clone()), Err(TornRecords { len: 43, offset: 40 }));
        let err = postcard::from_bytes::<OwnerRecords>(&postcard::to_stdvec(&serde_bytes_of(&bytes)).unwrap());
        assert!(err.is_err());
    }

    /// `bytes` as a serde byte string (what a sender of torn records would write).
    fn serde_bytes_of(bytes: &[u8]) -> impl Serialize + '_ {
        struct B<'a>(&'a [u8]);
        impl Serialize for B<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        B(bytes)
    }

    #[test]
    fn owner_names_read_as_ss_reads_them() {
        let name = |comm: &[u8]| {
            OwnerRecords::from_records(&[record(1, 3, 7, 9, comm)]).iter().next().unwrap().name_bytes().to_vec()
        };
        assert_eq!(name(b"nginx"), b"nginx");
        // /proc/PID/stat reads `1 ((sd-pam)) S`: ss's `%[^)]` stops at the first `)`.
        assert_eq!(name(b"(sd-pam)"), b"(sd-pam");
        assert_eq!(name(b")x"), b"");
        assert_eq!(name(b"exactly16bytes!!"), b"exactly16bytes!!");
    }
}
