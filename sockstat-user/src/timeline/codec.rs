//! The packed columns of a connection row (see `schema` for the table): the state path
//! as one integer, the times and queue sizes of the transitions between the first and
//! the last (and the rarely set socket options) as a blob of varints, and addresses as
//! 4 or 16 bytes. Pure: no SQL, no clock.
//!
//! - `path`: kernel TCP state numbers, 4 bits each, the first in the lowest bits: the
//!   old state of the first transition, then the new state of each. `0x754127` reads,
//!   from the right, CLOSE(7) SYN_SENT(2) ESTABLISHED(1) FIN_WAIT1(4) FIN_WAIT2(5)
//!   CLOSE(7). At most [`MAX_STATES`] states; 0 is no state.
//! - `steps`: LEB128 varints. First, for each transition after the first and before the
//!   last, in order, `delta << 1 | q`: `delta` is its time minus the previous one's, in
//!   [`STEP_UNIT_NS`] units, each time rounded down from the first transition's (so the
//!   rounding never accumulates and never passes the last transition); `q` = 1 when two
//!   more varints follow, its Recv-Q and Send-Q (both 0 otherwise). Then, only when
//!   there is more to say, a trailer: flags (1: IPV6_V6ONLY; 2: an SO_BINDTODEVICE
//!   interface index follows; 4: the first transition's Recv-Q and Send-Q follow; 8:
//!   the last one's follow), then what they announce, in that order. NULL when empty.
//!   The first transition's time is the row's start, the last one's its end, both to
//!   the nanosecond; the number of transitions is the path's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// States one row holds; a socket that goes through more continues in a new row.
pub const MAX_STATES: usize = 15;

/// Unit of the times in `steps`. Microseconds: a loopback transition follows the
/// previous one within tens of microseconds, one byte, where nanoseconds take three.
pub const STEP_UNIT_NS: u64 = 1_000;

/// AF_INET and AF_INET6, as the kernel numbers them.
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// A state path packed 4 bits a state, the first in the lowest bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Path {
    bits: u64,
    len: u8,
}

impl Path {
    /// Appends `state`; false (and nothing appended) when the path is full. A state
    /// outside 1..=15 (none is) is stored as 15, which no kernel state is.
    pub fn push(&mut self, state: u8) -> bool {
        if usize::from(self.len) >= MAX_STATES {
            return false;
        }
        let s = if (1..=15).contains(&state) { state } else { 15 };
        self.bits |= u64::from(s) << (4 * self.len);
        self.len += 1;
        true
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, i: usize) -> u8 {
        ((self.bits >> (4 * i)) & 0xf) as u8
    }

    pub fn last(&self) -> Option<u8> {
        self.len.checked_sub(1).map(|i| self.get(usize::from(i)))
    }

    pub fn states(&self) -> impl Iterator<Item = u8> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The column value (at most 60 bits: never negative).
    pub fn to_i64(self) -> i64 {
        self.bits as i64
    }

    /// The path a column value holds: its states up to the first 0 nibble.
    pub fn from_i64(v: i64) -> Path {
        let bits = v as u64;
        let len = (0..MAX_STATES).take_while(|&i| (bits >> (4 * i)) & 0xf != 0).count();
        Path { bits: bits & ((1u64 << (4 * len)) - 1), len: len as u8 }
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a varint at `*at`, advancing it; `None` at the end or on a truncated one.
pub fn get_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Appends one `steps` entry: `units` after the previous entry, with its queues if
/// either is not 0.
pub fn put_step(out: &mut Vec<u8>, units: u64, (rq, wq): (u32, u32)) {
    let q = rq != 0 || wq != 0;
    put_varint(out, units << 1 | u64::from(q));
    if q {
        put_varint(out, u64::from(rq));
        put_varint(out, u64::from(wq));
    }
}

/// One decoded `steps` entry: ns after the first transition, and the queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub offset_ns: u64,
    pub queues: (u32, u32),
}

/// What the `steps` trailer says: the socket options, and the queues of the first and
/// the last transition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Trailer {
    pub v6only: bool,
    pub ifindex: u32,
    pub first_queues: (u32, u32),
    pub last_queues: (u32, u32),
}

impl Trailer {
    /// Appends the trailer, if it says anything.
    pub fn put(&self, out: &mut Vec<u8>) {
        let (q0, q1) = (self.first_queues != (0, 0), self.last_queues != (0, 0));
        let flags =
            u64::from(self.v6only) | u64::from(self.ifindex != 0) << 1 | u64::from(q0) << 2 | u64::from(q1) << 3;
        if flags == 0 {
            return;
        }
        put_varint(out, flags);
        if self.ifindex != 0 {
            put_varint(out, u64::from(self.ifindex));
        }
        for (set, (r, w)) in [(q0, self.first_queues), (q1, self.last_queues)] {
            if set {
                put_varint(out, u64::from(r));
                put_varint(out, u64::from(w));
            }
        }
    }

    fn get(buf: &[u8], at: &mut usize) -> Trailer {
        let mut t = Trailer::default();
        let Some(flags) = get_varint(buf, at) else { return t };
        t.v6only = flags & 1 != 0;
        if flags & 2 != 0 {
            t.ifindex = get_varint(buf, at).unwrap_or(0) as u32;
        }
        let mut queues = || (get_varint(buf, at).unwrap_or(0) as u32, get_varint(buf, at).unwrap_or(0) as u32);
        if flags & 4 != 0 {
            t.first_queues = queues();
        }
        if flags & 8 != 0 {
            t.last_queues = queues();
        }
        t
    }
}

/// The `steps` column of a row whose path has `intermediate` + 2 transitions: the
/// entries (as many as it holds, a malformed tail dropped) and the trailer.
pub fn steps(blob: Option<&[u8]>, intermediate: usize) -> (Vec<Step>, Trailer) {
    let Some(buf) = blob else { return (Vec::new(), Trailer::default()) };
    let (mut at, mut units, mut out) = (0, 0u64, Vec::with_capacity(intermediate));
    while out.len() < intermediate && at < buf.len() {
        let Some(v) = get_varint(buf, &mut at) else { break };
        units = units.saturating_add(v >> 1);
        let queues = if v & 1 == 1 {
            match (get_varint(buf, &mut at), get_varint(buf, &mut at)) {
                (Some(r), Some(w)) => (r as u32, w as u32),
                _ => break,
            }
        } else {
            (0, 0)
        };
        out.push(Step { offset_ns: units.saturating_mul(STEP_UNIT_NS), queues });
    }
    let trailer = if out.len() == intermediate { Trailer::get(buf, &mut at) } else { Trailer::default() };
    (out, trailer)
}

/// An address as stored: 4 bytes for IPv4, 16 for IPv6 (the socket's family).
pub fn addr_bytes(a: &IpAddr) -> AddrBytes {
    match a {
        IpAddr::V4(v4) => AddrBytes::V4(v4.octets()),
        IpAddr::V6(v6) => AddrBytes::V6(v6.octets()),
    }
}

pub enum AddrBytes {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl AsRef<[u8]> for AddrBytes {
    fn as_ref(&self) -> &[u8] {
        match self {
            AddrBytes::V4(b) => b,
            AddrBytes::V6(b) => b,
        }
    }
}

/// The address a stored blob holds (the unspecified IPv4 address for a malformed one).
pub fn addr_from(blob: &[u8]) -> IpAddr {
    match blob.len() {
        16 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(blob);
            IpAddr::V6(Ipv6Addr::from(b))
        }
        4 => IpAddr::V4(Ipv4Addr::new(blob[0], blob[1], blob[2], blob[3])),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// The family a stored address says: AF_INET6 for 16 bytes, else AF_INET.
pub fn family_of(blob: &[u8]) -> u16 {
    if blob.len() == 16 { AF_INET6 } else { AF_INET }
}

/// One socket's row as a block holds it: dictionary ids (`processes`, `netns`,
/// `cgroups`), not names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnRow {
    pub cookie: u64,
    /// Wall-clock ns of the last transition; the first is `duration_ns` before it.
    pub end_ns: i64,
    pub duration_ns: u64,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub path: Path,
    pub steps: Option<Vec<u8>>,
    pub process: Option<i64>,
    pub owner: Option<u8>,
    pub netns: Option<i64>,
    pub cgroup: Option<i64>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub error: Option<u32>,
    pub retrans: Option<u32>,
    pub srtt_us: Option<u32>,
}

/// What rows of a block share, kept once in its palette: owner, namespace, cgroup, how
/// the owner was learnt, state path and addresses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Kind {
    process: Option<i64>,
    netns: Option<i64>,
    cgroup: Option<i64>,
    owner: Option<u8>,
    path: u64,
    src: IpAddr,
    dst: IpAddr,
    /// The port rows of this kind share: the destination port of a socket opened by
    /// connect(), the source port of any other (the server's port, either way); each
    /// row keeps the other one.
    port: u16,
}

/// Whether a socket of path `path` keeps its destination port in its kind: opened by
/// connect() (CLOSE -> SYN_SENT), its source port is the ephemeral one.
fn shares_dport(path: u64) -> bool {
    path & 0xff == 0x27
}

/// An optional dictionary id as a varint: 0 for none, else id + 1 (ids are positive).
fn put_opt(out: &mut Vec<u8>, v: Option<i64>) {
    put_varint(out, v.map_or(0, |v| v.cast_unsigned().wrapping_add(1)));
}

fn get_opt(buf: &[u8], at: &mut usize) -> Option<Option<i64>> {
    let v = get_varint(buf, at)?;
    Some(v.checked_sub(1).map(u64::cast_signed))
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)).cast_unsigned());
}

fn get_zigzag(buf: &[u8], at: &mut usize) -> Option<i64> {
    let v = get_varint(buf, at)?;
    Some((v >> 1).cast_signed() ^ -((v & 1).cast_signed()))
}

fn put_addr(out: &mut Vec<u8>, a: &IpAddr) {
    let b = addr_bytes(a);
    out.push(b.as_ref().len() as u8);
    out.extend_from_slice(b.as_ref());
}

fn get_addr(buf: &[u8], at: &mut usize) -> Option<IpAddr> {
    let n = usize::from(*buf.get(*at)?);
    let bytes = buf.get(*at + 1..*at + 1 + n)?;
    *at += 1 + n;
    match n {
        4 | 16 => Some(addr_from(bytes)),
        _ => None,
    }
}

fn get_u16(buf: &[u8], at: &mut usize) -> Option<u16> {
    let b = buf.get(*at..*at + 2)?;
    *at += 2;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// The rows of one batch packed into one blob (the `connections.data` column), so a
/// socket costs its own few bytes and no SQLite row of its own: SQLite spends about 15
/// bytes on a row (cell pointer, lengths, rowid, one header byte per column), more than
/// half of what a loopback connection's socket needs.
///
/// Layout: varint palette length, the palette's kinds, varint row count, the rows. A
/// kind: `process`, `netns`, `cgroup`, `owner` (varints, 0 for NULL, else the value +
/// 1), the packed `path` (varint), `src` and `dst` (a length byte, 4 or 16, and the
/// address), then a port (varint): the destination port when the path starts CLOSE ->
/// SYN_SENT (opened by connect()), else the source port. A row: its kind's index in the
/// palette; the cookie and the end time, each as the zigzag varint difference from the
/// row before (the first from the block's `cookie_base` and `base_ns`, which the
/// `batches` row keeps); the duration in ns; the other port (2 bytes, little-endian:
/// an ephemeral port takes 3 as a varint); `bytes_sent`,
/// `bytes_received`; the health (0: none, for a listener or a socket not seen to close;
/// else 1 + (`srtt_us` + 1, or 0 when never measured) << 1 | `more`, and with `more`
/// two varints follow: the errno (0: none) and `retrans` + 1 (0: NULL); without it the
/// errno is none and `retrans` 0); the length of `steps` and its bytes (0: NULL).
pub struct BlockWriter {
    palette: Vec<Kind>,
    index: rustc_hash::FxHashMap<Kind, u64>,
    rows: Vec<u8>,
    count: u64,
    prev_cookie: u64,
    prev_end: i64,
}

impl BlockWriter {
    /// A block whose cookies and times count from `cookie_base` and `base_ns`.
    pub fn new(cookie_base: u64, base_ns: i64) -> BlockWriter {
        BlockWriter {
            palette: Vec::new(),
            index: rustc_hash::FxHashMap::default(),
            rows: Vec::new(),
            count: 0,
            prev_cookie: cookie_base,
            prev_end: base_ns,
        }
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn push(&mut self, r: &ConnRow) {
        let kind = Kind {
            process: r.process,
            netns: r.netns,
            cgroup: r.cgroup,
            owner: r.owner,
            path: r.path.to_i64().cast_unsigned(),
            src: r.src,
            dst: r.dst,
            port: 0,
        };
        let (port, other) = if shares_dport(kind.path) { (r.dport, r.sport) } else { (r.sport, r.dport) };
        let kind = Kind { port, ..kind };
        let next = self.palette.len() as u64;
        let k = *self.index.entry(kind.clone()).or_insert_with(|| next);
        if k == next {
            self.palette.push(kind);
        }
        let out = &mut self.rows;
        put_varint(out, k);
        put_zigzag(out, r.cookie.wrapping_sub(self.prev_cookie).cast_signed());
        put_zigzag(out, r.end_ns.wrapping_sub(self.prev_end));
        (self.prev_cookie, self.prev_end) = (r.cookie, r.end_ns);
        put_varint(out, r.duration_ns);
        out.extend_from_slice(&other.to_le_bytes());
        put_varint(out, r.bytes_sent);
        put_varint(out, r.bytes_received);
        if r.error.is_none() && r.retrans.is_none() && r.srtt_us.is_none() {
            put_varint(out, 0);
        } else {
            let more = r.error.is_some() || r.retrans != Some(0);
            let srtt = r.srtt_us.map_or(0, |s| u64::from(s) + 1);
            put_varint(out, 1 + (srtt << 1 | u64::from(more)));
            if more {
                put_varint(out, u64::from(r.error.unwrap_or(0)));
                put_varint(out, r.retrans.map_or(0, |n| u64::from(n) + 1));
            }
        }
        let steps = r.steps.as_deref().unwrap_or_default();
        put_varint(out, steps.len() as u64);
        out.extend_from_slice(steps);
        self.count += 1;
    }

    /// The blob.
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rows.len() + 16 * self.palette.len() + 8);
        put_varint(&mut out, self.palette.len() as u64);
        for k in &self.palette {
            put_opt(&mut out, k.process);
            put_opt(&mut out, k.netns);
            put_opt(&mut out, k.cgroup);
            put_varint(&mut out, k.owner.map_or(0, |o| u64::from(o) + 1));
            put_varint(&mut out, k.path);
            put_addr(&mut out, &k.src);
            put_addr(&mut out, &k.dst);
            put_varint(&mut out, u64::from(k.port));
        }
        put_varint(&mut out, self.count);
        out.extend_from_slice(&self.rows);
        out
    }
}

/// A block blob that does not read as one (cut short, or not written by this code).
#[derive(Debug, thiserror::Error)]
#[error("malformed connections block: {0}")]
pub struct BlockError(&'static str);

/// The rows of a block whose cookies and times count from `cookie_base` and
/// `base_ns`, in order.
///
/// # Errors
/// A block that does not read to its end as [`BlockWriter`] writes it.
pub fn read_block(buf: &[u8], cookie_base: u64, base_ns: i64) -> Result<Vec<ConnRow>, BlockError> {
    let at = &mut 0usize;
    let bad = BlockError;
    let n = get_varint(buf, at).ok_or(bad("palette length"))?;
    let mut palette = Vec::new();
    for _ in 0..n {
        let process = get_opt(buf, at).ok_or(bad("palette process"))?;
        let netns = get_opt(buf, at).ok_or(bad("palette netns"))?;
        let cgroup = get_opt(buf, at).ok_or(bad("palette cgroup"))?;
        let owner = get_varint(buf, at).ok_or(bad("palette owner"))?;
        let owner = owner.checked_sub(1).map(|o| u8::try_from(o).unwrap_or(u8::MAX));
        let path = get_varint(buf, at).ok_or(bad("palette path"))?;
        let src = get_addr(buf, at).ok_or(bad("palette source address"))?;
        let dst = get_addr(buf, at).ok_or(bad("palette destination address"))?;
        let port = get_varint(buf, at).and_then(|p| u16::try_from(p).ok()).ok_or(bad("palette port"))?;
        palette.push(Kind { process, netns, cgroup, owner, path, src, dst, port });
    }
    let count = get_varint(buf, at).ok_or(bad("row count"))?;
    let mut rows = Vec::with_capacity(usize::try_from(count.min(65_536)).unwrap_or(0));
    let (mut cookie, mut end) = (cookie_base, base_ns);
    for _ in 0..count {
        let k = get_varint(buf, at).ok_or(bad("row kind"))?;
        let kind = usize::try_from(k).ok().and_then(|k| palette.get(k)).ok_or(bad("row kind out of the palette"))?;
        cookie = cookie.wrapping_add(get_zigzag(buf, at).ok_or(bad("row cookie"))?.cast_unsigned());
        end = end.wrapping_add(get_zigzag(buf, at).ok_or(bad("row end"))?);
        let duration_ns = get_varint(buf, at).ok_or(bad("row duration"))?;
        let other = get_u16(buf, at).ok_or(bad("row port"))?;
        let (sport, dport) = if shares_dport(kind.path) { (other, kind.port) } else { (kind.port, other) };
        let bytes_sent = get_varint(buf, at).ok_or(bad("row bytes sent"))?;
        let bytes_received = get_varint(buf, at).ok_or(bad("row bytes received"))?;
        let h = get_varint(buf, at).ok_or(bad("row health"))?;
        let (error, retrans, srtt_us) = match h.checked_sub(1) {
            None => (None, None, None),
            Some(v) => {
                let srtt = (v >> 1).checked_sub(1).map(|s| u32::try_from(s).unwrap_or(u32::MAX));
                if v & 1 == 1 {
                    let e = get_varint(buf, at).ok_or(bad("row errno"))?;
                    let r = get_varint(buf, at).ok_or(bad("row retransmits"))?;
                    let r = r.checked_sub(1).map(|r| u32::try_from(r).unwrap_or(u32::MAX));
                    ((e != 0).then(|| u32::try_from(e).unwrap_or(u32::MAX)), r, srtt)
                } else {
                    (None, Some(0), srtt)
                }
            }
        };
        let len = usize::try_from(get_varint(buf, at).ok_or(bad("row steps length"))?).unwrap_or(usize::MAX);
        let steps = buf.get(*at..at.saturating_add(len)).ok_or(bad("row steps"))?;
        *at += len;
        rows.push(ConnRow {
            cookie,
            end_ns: end,
            duration_ns,
            src: kind.src,
            sport,
            dst: kind.dst,
            dport,
            path: Path::from_i64(kind.path.cast_signed()),
            steps: (!steps.is_empty()).then(|| steps.to_vec()),
            process: kind.process,
            owner: kind.owner,
            netns: kind.netns,
            cgroup: kind.cgroup,
            bytes_sent,
            bytes_received,
            error,
            retrans,
            srtt_us,
        });
    }
    Ok(rows)
}

/// One namespace's sockets of a snapshot packed into one blob (the
/// `snapshot_sockets.data` column), for the reason [`BlockWriter`] packs connection rows.
/// `sockets` in cookie order.
///
/// Layout: varint count of distinct addresses, each a length byte (4 or 16) and the
/// address; varint count of sockets; per socket: the cookie as the varint difference
/// from the one before (the first from 0), a byte `state | timer << 4 | v6only << 7`,
/// the varint indexes of its source and destination addresses, the source and
/// destination ports (2 bytes each, little-endian), then varints: Recv-Q, Send-Q,
/// ifindex, uid, inode, `expires_ms`.
pub fn snapshot_blob(sockets: &[&crate::model::socket::InetSocket]) -> Vec<u8> {
    let mut addrs: Vec<IpAddr> = Vec::new();
    let mut index = rustc_hash::FxHashMap::default();
    let mut rows = Vec::with_capacity(24 * sockets.len());
    let mut at = |a: IpAddr, addrs: &mut Vec<IpAddr>| -> u64 {
        *index.entry(a).or_insert_with(|| {
            addrs.push(a);
            addrs.len() as u64 - 1
        })
    };
    let mut prev = 0u64;
    for s in sockets {
        put_varint(&mut rows, s.cookie.wrapping_sub(prev));
        prev = s.cookie;
        rows.push((s.state & 0xf) | (s.timer.min(7) << 4) | (u8::from(s.v6only) << 7));
        let (src, dst) = (at(s.src, &mut addrs), at(s.dst, &mut addrs));
        put_varint(&mut rows, src);
        put_varint(&mut rows, dst);
        rows.extend_from_slice(&s.sport.to_le_bytes());
        rows.extend_from_slice(&s.dport.to_le_bytes());
        for v in [s.rqueue, s.wqueue, s.ifindex, s.uid, s.inode, s.expires_ms] {
            put_varint(&mut rows, u64::from(v));
        }
    }
    let mut out = Vec::with_capacity(rows.len() + 17 * addrs.len() + 8);
    put_varint(&mut out, addrs.len() as u64);
    for a in &addrs {
        put_addr(&mut out, a);
    }
    put_varint(&mut out, sockets.len() as u64);
    out.extend_from_slice(&rows);
    out
}

/// The sockets of a [`snapshot_blob`], each with its `expires_ms`.
///
/// # Errors
/// A blob that does not read to its end as [`snapshot_blob`] writes it.
pub fn read_snapshot_blob(buf: &[u8]) -> Result<Vec<crate::model::socket::InetSocket>, BlockError> {
    let at = &mut 0usize;
    let bad = BlockError;
    let n = get_varint(buf, at).ok_or(bad("snapshot address count"))?;
    let mut addrs = Vec::new();
    for _ in 0..n {
        addrs.push(get_addr(buf, at).ok_or(bad("snapshot address"))?);
    }
    let count = get_varint(buf, at).ok_or(bad("snapshot socket count"))?;
    let mut out = Vec::with_capacity(usize::try_from(count.min(65_536)).unwrap_or(0));
    let mut cookie = 0u64;
    for _ in 0..count {
        cookie = cookie.wrapping_add(get_varint(buf, at).ok_or(bad("snapshot cookie"))?);
        let bits = *buf.get(*at).ok_or(bad("snapshot state"))?;
        *at += 1;
        let mut addr = || -> Result<IpAddr, BlockError> {
            let i = get_varint(buf, at).ok_or(bad("snapshot address index"))?;
            usize::try_from(i).ok().and_then(|i| addrs.get(i)).copied().ok_or(bad("snapshot address out of the list"))
        };
        let (src, dst) = (addr()?, addr()?);
        let sport = get_u16(buf, at).ok_or(bad("snapshot source port"))?;
        let dport = get_u16(buf, at).ok_or(bad("snapshot destination port"))?;
        let mut v = [0u32; 6];
        for x in &mut v {
            *x = u32::try_from(get_varint(buf, at).ok_or(bad("snapshot socket field"))?).unwrap_or(u32::MAX);
        }
        let [rqueue, wqueue, ifindex, uid, inode, expires_ms] = v;
        let family = family_of(addr_bytes(&src).as_ref());
        out.push(crate::model::socket::InetSocket {
            v6only: bits & 0x80 != 0,
            timer: (bits >> 4) & 7,
            rqueue,
            wqueue,
            ifindex,
            uid,
            inode,
            expires_ms,
            ..crate::model::socket::InetSocket::tcp(family, bits & 0xf, (src, sport), (dst, dport), cookie)
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cookie: u64, end_ns: i64, owner: Option<u8>) -> ConnRow {
        let mut path = Path::default();
        for st in [7, 2, 1, 4, 5, 7] {
            path.push(st);
        }
        ConnRow {
            cookie,
            end_ns,
            duration_ns: 81_234,
            src: "127.0.0.1".parse().unwrap(),
            sport: 40_000,
            dst: "::1".parse().unwrap(),
            dport: 80,
            path,
            steps: Some(vec![5, 6, 7]),
            process: Some(3),
            owner,
            netns: Some(1),
            cgroup: None,
            bytes_sent: 8,
            bytes_received: 1 << 40,
            error: None,
            retrans: Some(0),
            srtt_us: Some(31),
        }
    }

    #[test]
    fn a_block_gives_back_its_rows() {
        let base = (1u64 << 40, 1_700_000_000_000_000_000i64);
        let rows = vec![
            row(base.0, base.1, Some(0)),
            ConnRow { error: Some(111), srtt_us: None, ..row(base.0 + 7, base.1 + 15_000, Some(0)) },
            ConnRow { retrans: Some(3), steps: None, ..row(base.0 - 2, base.1 - 10, Some(1)) },
            ConnRow { retrans: None, error: None, srtt_us: None, ..row(5, base.1 + 90_000_000, None) },
            ConnRow { srtt_us: None, ..row(base.0 + 1, base.1 + 90_000_001, Some(2)) },
        ];
        let mut w = BlockWriter::new(base.0, base.1);
        for r in &rows {
            w.push(r);
        }
        assert_eq!(w.len(), 5);
        let blob = w.finish();
        assert_eq!(read_block(&blob, base.0, base.1).unwrap(), rows);
        // Cut short anywhere: an error, never a panic or a made-up row.
        for n in 0..blob.len() {
            assert!(read_block(&blob[..n], base.0, base.1).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn a_snapshot_blob_gives_back_its_sockets() {
        use crate::model::socket::InetSocket;
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let six: IpAddr = "2001:db8::7".parse().unwrap();
        let socks = [
            InetSocket {
                rqueue: 0,
                wqueue: 128,
                uid: 1000,
                inode: 98_765,
                ..InetSocket::tcp(2, 10, (lo, 80), (lo, 0), 5)
            },
            InetSocket {
                timer: 3,
                expires_ms: 59_000,
                v6only: true,
                ifindex: 2,
                ..InetSocket::tcp(10, 6, (six, 443), (six, 50_000), 1 << 40)
            },
        ];
        let refs: Vec<&InetSocket> = socks.iter().collect();
        let blob = snapshot_blob(&refs);
        let back = read_snapshot_blob(&blob).unwrap();
        assert_eq!(back.len(), 2);
        for (a, b) in socks.iter().zip(&back) {
            let key = |s: &InetSocket| {
                (s.cookie, s.family, s.state, s.src, s.sport, s.dst, s.dport, s.rqueue, s.wqueue, s.v6only, s.ifindex)
            };
            assert_eq!(key(a), key(b));
            assert_eq!((a.uid, a.inode, a.timer, a.expires_ms), (b.uid, b.inode, b.timer, b.expires_ms));
        }
        for n in 0..blob.len() {
            assert!(read_snapshot_blob(&blob[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn any_bytes_read_as_a_block_or_an_error() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut w = BlockWriter::new(10, 20);
        w.push(&row(11, 25, Some(1)));
        let valid = w.finish();
        for _ in 0..20_000 {
            let mut b = valid.clone();
            // Flip a few bytes, cut or extend it.
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            match next() % 3 {
                0 => b.truncate((next() as usize) % (b.len() + 1)),
                1 => b.extend((0..next() % 8).map(|_| next() as u8)),
                _ => {}
            }
            let _ = read_block(&b, next(), next() as i64);
        }
    }

    #[test]
    fn a_loopback_socket_takes_a_few_bytes_in_a_block() {
        let mut w = BlockWriter::new(1000, 0);
        for i in 0..1000u64 {
            w.push(&ConnRow {
                sport: 40_000 + (i as u16),
                bytes_received: 8,
                ..row(1000 + 2 * i, (i * 15_000) as i64, Some(0))
            });
        }
        let per_row = w.finish().len() / 1000;
        assert!(per_row <= 20, "{per_row} bytes a row");
    }

    #[test]
    fn a_path_packs_into_an_integer_read_from_the_right() {
        let mut p = Path::default();
        for s in [7, 2, 1, 4, 5, 7] {
            assert!(p.push(s));
        }
        assert_eq!(p.to_i64(), 0x75_4127);
        assert_eq!(Path::from_i64(0x75_4127), p);
        assert_eq!(p.states().collect::<Vec<_>>(), [7, 2, 1, 4, 5, 7]);
        assert_eq!(p.last(), Some(7));
        let mut full = Path::default();
        for _ in 0..MAX_STATES {
            assert!(full.push(1));
        }
        assert!(!full.push(7), "a 16th state does not fit");
        assert_eq!(Path::from_i64(full.to_i64()).len(), MAX_STATES);
    }

    #[test]
    fn steps_round_trip_with_queues_only_where_set() {
        let mut b = Vec::new();
        put_step(&mut b, 51, (0, 0));
        put_step(&mut b, 700, (1, 0));
        put_step(&mut b, 36, (0, 0));
        // 51 << 1 is one byte; 700 << 1 | 1 two, then the queues one each.
        assert_eq!(b.len(), 1 + 2 + 2 + 1);
        let (s, trailer) = steps(Some(&b), 3);
        assert_eq!(trailer, Trailer::default());
        assert_eq!(
            s,
            vec![
                Step { offset_ns: 51_000, queues: (0, 0) },
                Step { offset_ns: 751_000, queues: (1, 0) },
                Step { offset_ns: 787_000, queues: (0, 0) },
            ]
        );
        assert!(steps(None, 0).0.is_empty());
        // A truncated blob loses its tail, not the rest.
        assert_eq!(steps(Some(&b[..4]), 3).0.len(), 1);
    }

    #[test]
    fn the_trailer_follows_the_entries_only_when_it_says_something() {
        let mut b = Vec::new();
        Trailer::default().put(&mut b);
        assert!(b.is_empty());
        let t = Trailer { v6only: true, ifindex: 3, first_queues: (0, 128), last_queues: (1, 0) };
        put_step(&mut b, 5, (0, 0));
        t.put(&mut b);
        assert_eq!(steps(Some(&b), 1), (vec![Step { offset_ns: 5_000, queues: (0, 0) }], t));
        // A listener: no transition between the first and the last.
        let mut l = Vec::new();
        Trailer { first_queues: (0, 128), ..Trailer::default() }.put(&mut l);
        assert_eq!(steps(Some(&l), 0).1.first_queues, (0, 128));
    }

    #[test]
    fn addresses_keep_their_family_in_their_length() {
        for a in ["127.0.0.1", "::1", "::ffff:10.0.0.1"] {
            let ip: IpAddr = a.parse().unwrap();
            let b = addr_bytes(&ip);
            assert_eq!(addr_from(b.as_ref()), ip);
            assert_eq!(family_of(b.as_ref()), if ip.is_ipv4() { AF_INET } else { AF_INET6 });
        }
    }
}
