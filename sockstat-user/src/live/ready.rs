//! A table's TCP answer kept ready: every row it can show (full sockets and mini sockets)
//! in answer order, already in the wire layout (`wire::rows`), per family; and, built
//! the first time a filter asks for one, an index of those rows by local port, remote
//! port, local address or remote address. A query copies rows (and reads the state
//! byte), a filtered query finds its rows by binary search; neither walks the table.
//!
//! Made again at the first query after the table or its mini sockets changed (the
//! [`crate::live::table::Table`] counts changes); kept while nothing changes, which on a
//! server with long-lived connections is most of the time. On a busy server something
//! changed before nearly every query: the next answer is the last one with the rows of the
//! sockets that changed ([`Touched`]) taken out and put back where they now sort, the rows
//! between copied as they are ([`Ready::rebuilt`]), not every socket sorted and written
//! again.

use std::{cmp::Ordering, sync::OnceLock};

use rustc_hash::FxHashSet;

use sockstat_ebpf::{AF_INET, AF_INET6, TcpState};

use crate::{
    filter::{Filter, Required},
    model::socket::InetSocket,
    wire::rows::{self, Row},
};

/// Listeners first (the kernel dumps its listening hash before the established hash),
/// then by (local, peer), the cookie last: a total order, so the answer is the same every
/// time.
pub fn dump_order(a: &InetSocket, b: &InetSocket) -> Ordering {
    order_key(a).cmp(&order_key(b))
}

/// [`dump_order`] as one value of plain integers, compared field by field: sorting 200k
/// rows by it, each key made once, is several times cheaper than comparing the sockets'
/// addresses (an `IpAddr` of either kind) at every step. An address is its kind (IPv4
/// before IPv6, as `IpAddr` orders them) and its bits.
type OrderKey = (bool, (u8, u128), u16, (u8, u128), u16, u64);

/// Sorts `list` in [`dump_order`]. When every address is IPv4 (an AF_INET table), by
/// one `u128` of the tuple and the cookie: 32-byte elements compared in two steps, where
/// the general [`OrderKey`] moves 72 bytes an element.
pub(super) fn sort_in_dump_order(list: &mut Vec<&InetSocket>) {
    let v4 = |a: &std::net::IpAddr| match a {
        std::net::IpAddr::V4(v4) => Some(u128::from(v4.to_bits())),
        std::net::IpAddr::V6(_) => None,
    };
    let packed = |s: &InetSocket| -> Option<u128> {
        let listen = u128::from(s.state != TcpState::Listen as u8);
        Some(listen << 96 | v4(&s.src)? << 64 | u128::from(s.sport) << 48 | v4(&s.dst)? << 16 | u128::from(s.dport))
    };
    let keyed: Option<Vec<(u128, u64, u32)>> =
        list.iter().enumerate().map(|(i, s)| Some((packed(s)?, s.cookie, u32::try_from(i).ok()?))).collect();
    match keyed {
        Some(mut keyed) => {
            keyed.sort_unstable();
            *list = keyed.iter().map(|&(_, _, i)| list[i as usize]).collect();
        }
        None => list.sort_by_cached_key(|s| order_key(s)),
    }
}

/// [`order_key`] of the socket a row holds, read from the row's bytes.
fn row_order_key(r: Row<'_>) -> OrderKey {
    let addr = |b: &[u8]| match <[u8; 4]>::try_from(b) {
        Ok(v4) => (0, u128::from(u32::from_be_bytes(v4))),
        Err(_) => (1, <[u8; 16]>::try_from(b).map_or(0, u128::from_be_bytes)),
    };
    (r.state() != TcpState::Listen as u8, addr(r.src()), r.sport(), addr(r.dst()), r.dport(), r.cookie())
}

/// The sockets whose rows changed since a ready answer was made: what
/// [`Ready::rebuilt`] takes out and puts back. `All` (no answer to start from, a seed, or
/// more changes than make a partial rebuild worth it): the next one is made whole.
#[derive(Debug, Default)]
pub enum Touched {
    #[default]
    All,
    Cookies(FxHashSet<u64>),
}

/// Past this many changed sockets between two answers, the next is made whole.
const TOUCHED_MAX: usize = 1 << 15;

impl Touched {
    /// The socket of `cookie` was added, removed or changed.
    pub fn touch(&mut self, cookie: u64) {
        if let Touched::Cookies(c) = self {
            c.insert(cookie);
            if c.len() > TOUCHED_MAX {
                *self = Touched::All;
            }
        }
    }

    /// Every row may have changed.
    pub fn all(&mut self) {
        *self = Touched::All;
    }

    /// What was touched since the last call (an answer is being made from it): nothing
    /// from now on.
    pub fn take(&mut self) -> Touched {
        std::mem::replace(self, Touched::Cookies(FxHashSet::default()))
    }

    /// Both sets of changes in one.
    #[must_use]
    pub fn and(self, other: Touched) -> Touched {
        match (self, other) {
            (Touched::Cookies(mut a), Touched::Cookies(b)) => {
                a.extend(b);
                if a.len() > TOUCHED_MAX { Touched::All } else { Touched::Cookies(a) }
            }
            _ => Touched::All,
        }
    }
}

fn order_key(s: &InetSocket) -> OrderKey {
    let addr = |a: &std::net::IpAddr| match a {
        std::net::IpAddr::V4(v4) => (0, u128::from(v4.to_bits())),
        std::net::IpAddr::V6(v6) => (1, v6.to_bits()),
    };
    (s.state != TcpState::Listen as u8, addr(&s.src), s.sport, addr(&s.dst), s.dport, s.cookie)
}

/// Which field an index orders rows by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Sport,
    Dport,
    Src,
    Dst,
}

impl Key {
    fn of(local: bool, port: bool) -> Key {
        match (local, port) {
            (true, true) => Key::Sport,
            (false, true) => Key::Dport,
            (true, false) => Key::Src,
            (false, false) => Key::Dst,
        }
    }
}

/// One family's rows.
#[derive(Debug)]
struct Family {
    /// Bytes per row.
    len: usize,
    bytes: Vec<u8>,
    /// Row numbers ordered by each [`Key`] (then by row number), built when first asked
    /// (by whichever answer asks first: answers are made on several threads at once).
    indexes: [OnceLock<Vec<u32>>; 4],
    /// Rows per state (the state byte's low five bits, as answers read it).
    counts: [u32; 32],
    /// The rows after the listeners ordered by state (then by row number), built when a
    /// query first asks for states that are a small part of them (`-tan state syn-recv`).
    by_state: OnceLock<Vec<u32>>,
}

/// The rows an answer looks at for the states it asks for.
enum Shown {
    /// Every row of a range of rows (listeners only, all but them, or all).
    Range(std::ops::Range<usize>),
    /// These rows, in row order: the states asked for are a small part of the rest.
    Rows(Vec<u32>),
}

/// The LISTEN bit of a state mask.
const LISTEN: u32 = 1 << TcpState::Listen as u32;

/// Of the rows after the listeners, the largest share that is listed by state rather
/// than scanned: past it, reading every row's state costs less than the list.
const LISTED_SHARE: usize = 4;

impl Family {
    fn rows(&self) -> usize {
        self.bytes.len() / self.len
    }

    fn row(&self, i: usize) -> Row<'_> {
        Row(&self.bytes[i * self.len..(i + 1) * self.len])
    }

    /// A row's key as 16 bytes: ports big-endian in the first two, an IPv4 address in the
    /// first four (as the filter compares addresses: iproute2's `inet_prefix` data).
    fn key(&self, i: usize, k: Key) -> [u8; 16] {
        let r = self.row(i);
        let mut out = [0u8; 16];
        match k {
            Key::Sport => out[..2].copy_from_slice(&r.sport().to_be_bytes()),
            Key::Dport => out[..2].copy_from_slice(&r.dport().to_be_bytes()),
            Key::Src => out[..r.src().len()].copy_from_slice(r.src()),
            Key::Dst => out[..r.dst().len()].copy_from_slice(r.dst()),
        }
        out
    }

    fn index(&self, k: Key) -> &[u32] {
        self.indexes[k as usize].get_or_init(|| {
            let n = u32::try_from(self.rows()).unwrap_or(u32::MAX);
            let mut keyed: Vec<([u8; 16], u32)> = (0..n).map(|i| (self.key(i as usize, k), i)).collect();
            keyed.sort_unstable();
            let mut index = Vec::with_capacity(keyed.len());
            index.extend(keyed.into_iter().map(|(_, i)| i));
            index
        })
    }

    /// The listeners: all at the start ([`dump_order`]).
    fn listeners(&self) -> usize {
        self.counts[TcpState::Listen as usize] as usize
    }

    /// Appends rows `range` to `bytes` (in runs) but those of sockets `touched` names,
    /// counting them by state.
    fn keep_untouched(
        &self,
        range: std::ops::Range<usize>,
        touched: &FxHashSet<u64>,
        bytes: &mut Vec<u8>,
        counts: &mut [u32; 32],
    ) {
        let mut run = range.start;
        for r in range.clone() {
            let row = self.row(r);
            if touched.contains(&row.cookie()) {
                bytes.extend_from_slice(&self.bytes[run * self.len..r * self.len]);
                run = r + 1;
            } else {
                counts[usize::from(row.state() & 31)] += 1;
            }
        }
        bytes.extend_from_slice(&self.bytes[run * self.len..range.end * self.len]);
    }

    /// Rows in `states`.
    fn rows_in(&self, states: u32) -> usize {
        (0..32).filter(|s| states & (1 << s) != 0).map(|s| self.counts[s] as usize).sum()
    }

    /// The rows in `states` when no row after the listeners is in them: the listeners'
    /// range at the front (empty without LISTEN). `ss -l` asks for CLOSE too, which TCP
    /// rows are seldom in.
    fn listeners_only(&self, states: u32) -> Option<std::ops::Range<usize>> {
        let listeners = self.listeners();
        let start = if states & LISTEN != 0 { 0 } else { listeners };
        (self.rows_in(states & !LISTEN) == 0).then_some(start..listeners)
    }

    /// The rows that may be in `states` (every row in them, maybe others).
    fn shown(&self, states: u32) -> Shown {
        if let Some(range) = self.listeners_only(states) {
            return Shown::Range(range);
        }
        let listeners = self.listeners();
        let start = if states & LISTEN != 0 { 0 } else { listeners };
        let others = states & !LISTEN;
        if self.rows_in(others) * LISTED_SHARE > self.rows() - listeners {
            return Shown::Range(start..self.rows());
        }
        // Where each state's rows start in the list by state (listeners are not in it).
        let mut starts = [0usize; 33];
        for s in 0..32 {
            starts[s + 1] = starts[s] + if s == TcpState::Listen as usize { 0 } else { self.counts[s] as usize };
        }
        let by_state = self.by_state.get_or_init(|| {
            // A counting sort of the rows after the listeners by state.
            let mut at = starts;
            let mut list = vec![0u32; starts[32]];
            for i in listeners..self.rows() {
                let s = usize::from(self.row(i).state() & 31);
                list[at[s]] = u32::try_from(i).unwrap_or(u32::MAX);
                at[s] += 1;
            }
            list
        });
        let mut rows: Vec<u32> = (u32::try_from(start).unwrap_or(0)..u32::try_from(listeners).unwrap_or(0)).collect();
        for s in (0..32).filter(|s| others & (1 << s) != 0) {
            rows.extend_from_slice(&by_state[starts[s]..starts[s + 1]]);
        }
        rows.sort_unstable();
        Shown::Rows(rows)
    }

    /// Where the keys `lo..=hi` sit in `index`, the index of key `k`.
    fn bounds(&self, index: &[u32], k: Key, lo: [u8; 16], hi: [u8; 16]) -> std::ops::Range<usize> {
        let start = index.partition_point(|&i| self.key(i as usize, k) < lo);
        let end = index.partition_point(|&i| self.key(i as usize, k) <= hi);
        start..end.max(start)
    }

    /// Row numbers that may satisfy `req` (every row that does, in row order).
    fn candidates(&self, family: u16, req: &Required) -> Vec<u32> {
        let mut out = Vec::new();
        key_ranges(family, req, |k, lo, hi| {
            let index = self.index(k);
            out.extend_from_slice(&index[self.bounds(index, k, lo, hi)]);
        });
        out.sort_unstable();
        out.dedup();
        out
    }

    /// At most how many rows [`Family::candidates`] gives for `req` (a row in two
    /// overlapping ranges counted twice), read from indexes already built: `None` if one
    /// is not (building it sorts every row).
    fn candidates_at_most(&self, family: u16, req: &Required) -> Option<usize> {
        let mut n = Some(0);
        key_ranges(family, req, |k, lo, hi| {
            n = n.zip(self.indexes[k as usize].get()).map(|(n, index)| n + self.bounds(index, k, lo, hi).len());
        });
        n
    }
}

/// The ranges of keys (which key, lowest, highest) whose rows may satisfy `req`, for
/// `family`'s rows.
fn key_ranges(family: u16, req: &Required, mut each: impl FnMut(Key, [u8; 16], [u8; 16])) {
    match req {
        Required::Port { local, port } => {
            let mut key = [0u8; 16];
            key[..2].copy_from_slice(&port.to_be_bytes());
            each(Key::of(*local, true), key, key);
        }
        Required::Addr { local, prefixes } => {
            let k = Key::of(*local, false);
            for p in prefixes {
                let (lo, hi) = p.range();
                each(k, lo, hi);
                // ss also tries an IPv4 prefix on the IPv4 part of a v4-mapped IPv6
                // address.
                if family == AF_INET6
                    && let Some((lo, hi)) = p.v4_mapped_range()
                {
                    each(k, lo, hi);
                }
            }
        }
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct Ready {
    /// The table's and its mini sockets' change counts this was built at.
    pub(super) built_at: (u64, u64),
    families: [Family; 2],
}

/// The families a ready answer holds, in its order.
const FAMILIES: [u16; 2] = [AF_INET, AF_INET6];

fn slot(family: u16) -> Option<usize> {
    FAMILIES.iter().position(|&f| f == family)
}

/// `socks` of the families a ready answer holds, by [`slot`]; the others left out.
fn by_family<'a>(socks: impl Iterator<Item = &'a InetSocket>) -> [Vec<&'a InetSocket>; 2] {
    let mut by_family = [Vec::new(), Vec::new()];
    for s in socks {
        if let Some(i) = slot(s.family) {
            by_family[i].push(s);
        }
    }
    by_family
}

impl Ready {
    /// Every row of `socks` (any order), per family in [`dump_order`].
    pub fn build<'a>(socks: impl Iterator<Item = &'a InetSocket>, built_at: (u64, u64)) -> Ready {
        let mut by_family = by_family(socks);
        let families = std::array::from_fn(|i| {
            let list = &mut by_family[i];
            sort_in_dump_order(list);
            let len = rows::row_len(FAMILIES[i]).unwrap_or(rows::ROW_V6);
            let mut bytes = Vec::with_capacity(list.len() * len);
            for s in list.iter() {
                rows::push_row(&mut bytes, s);
            }
            let mut counts = [0u32; 32];
            for st in list.iter() {
                counts[usize::from(st.state & 31)] += 1;
            }
            Family { len, bytes, indexes: Default::default(), counts, by_state: OnceLock::new() }
        });
        Ready { built_at, families }
    }

    /// This answer with the rows of the sockets `touched` names taken out and `fresh` (those
    /// of them that are shown now) put in, in [`dump_order`]: the rows of a whole build of
    /// the sockets now, when `touched` names every socket added, removed or changed since
    /// this one was made. The rows between are copied as they are; indexes are made again
    /// when first asked.
    #[must_use]
    pub fn rebuilt<'a>(
        &self,
        touched: &FxHashSet<u64>,
        fresh: impl Iterator<Item = &'a InetSocket>,
        built_at: (u64, u64),
    ) -> Ready {
        let mut by_family = by_family(fresh);
        let families = std::array::from_fn(|i| {
            let old = &self.families[i];
            let list = &mut by_family[i];
            sort_in_dump_order(list);
            let mut bytes = Vec::with_capacity(old.bytes.len() + list.len() * old.len);
            let mut counts = [0u32; 32];
            let mut at = 0;
            for s in list.iter() {
                // Where `s` sorts among the old rows (a touched one's old place included:
                // the old rows are in order, the touched ones too).
                let key = order_key(s);
                let (mut lo, mut hi) = (at, old.rows());
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if row_order_key(old.row(mid)) < key {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                old.keep_untouched(at..lo, touched, &mut bytes, &mut counts);
                if rows::push_row(&mut bytes, s) {
                    counts[usize::from(s.state & 31)] += 1;
                }
                at = lo;
            }
            old.keep_untouched(at..old.rows(), touched, &mut bytes, &mut counts);
            Family { len: old.len, bytes, indexes: Default::default(), counts, by_state: OnceLock::new() }
        });
        Ready { built_at, families }
    }

    /// Rows held, both families.
    #[must_use]
    pub fn len(&self) -> usize {
        self.families.iter().map(Family::rows).sum()
    }

    /// Bytes of the rows of `family` in `states`: an unfiltered answer's size.
    #[must_use]
    pub fn bytes_in(&self, family: u16, states: u32) -> usize {
        let Some(f) = slot(family) else { return 0 };
        let fam = &self.families[f];
        fam.rows_in(states) * fam.len
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`Ready::answer`] of `filter` over `families` looks at `max` rows at most,
    /// through indexes already built or as one range of rows (the listeners, for a query of
    /// listeners alone): an answer cheap enough to make on the spot.
    #[must_use]
    pub fn small_answer(&self, families: &[u16], states: u32, filter: Option<&Filter>, max: usize) -> bool {
        let mut rows = 0;
        if filter.is_none_or(|f| f.expr.is_none()) {
            for &family in families {
                if let Some(f) = slot(family) {
                    match self.families[f].listeners_only(states) {
                        Some(range) => rows += range.len(),
                        None => return false,
                    }
                }
            }
            return rows <= max;
        }
        let Some(req) = filter.and_then(Filter::required) else { return false };
        for &family in families {
            let Some(f) = slot(family) else { continue };
            match self.families[f].candidates_at_most(family, &req) {
                Some(n) if rows + n <= max => rows += n,
                _ => return false,
            }
        }
        true
    }

    /// Appends to `out` the rows of `family` whose state is in `states` and that `filter`
    /// accepts, in answer order. A filter with a condition every match must meet
    /// ([`Filter::required`]) is answered from an index: only the rows meeting it are
    /// looked at.
    pub fn answer(&self, family: u16, states: u32, filter: Option<&Filter>, out: &mut Vec<u8>) {
        let Some(f) = slot(family) else { return };
        let fam = &self.families[f];
        let shown = |r: Row<'_>| states & (1u32 << (r.state() & 31)) != 0;
        let Some(filter) = filter.filter(|f| f.expr.is_some()) else {
            // No filter: the rows in the states asked, copied in runs.
            match fam.shown(states) {
                Shown::Range(range) => {
                    let end = range.end;
                    let mut run: Option<usize> = None;
                    for i in range {
                        match (shown(fam.row(i)), run) {
                            (true, None) => run = Some(i),
                            (false, Some(start)) => {
                                out.extend_from_slice(&fam.bytes[start * fam.len..i * fam.len]);
                                run = None;
                            }
                            _ => {}
                        }
                    }
                    if let Some(start) = run {
                        out.extend_from_slice(&fam.bytes[start * fam.len..end * fam.len]);
                    }
                }
                Shown::Rows(rows) => {
                    for i in rows {
                        out.extend_from_slice(fam.row(i as usize).0);
                    }
                }
            }
            return;
        };
        let mut keep = |r: Row<'_>| {
            if shown(r) && filter.matches(&r.socket()) {
                out.extend_from_slice(r.0);
            }
        };
        match filter.required() {
            Some(req) => {
                for i in fam.candidates(family, &req) {
                    keep(fam.row(i as usize));
                }
            }
            None => match fam.shown(states) {
                Shown::Range(range) => range.for_each(|i| keep(fam.row(i))),
                Shown::Rows(rows) => rows.into_iter().for_each(|i| keep(fam.row(i as usize))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn sock(cookie: u64, state: TcpState, src: &str, sport: u16, dst: &str, dport: u16) -> InetSocket {
        let src: IpAddr = src.parse().unwrap();
        let family = if src.is_ipv4() { AF_INET } else { AF_INET6 };
        let s = InetSocket::tcp(family, state as u8, (src, sport), (dst.parse().unwrap(), dport), cookie);
        InetSocket { inode: u32::try_from(cookie).unwrap(), ..s }
    }

    /// A few thousand sockets of both families, every state the table shows.
    fn world() -> Vec<InetSocket> {
        let states =
            [TcpState::Established, TcpState::Listen, TcpState::TimeWait, TcpState::SynRecv, TcpState::FinWait1];
        let mut out = Vec::new();
        for i in 0..3000u64 {
            let st = states[usize::try_from(i).unwrap() % states.len()];
            let a = u8::try_from(i % 7).unwrap();
            let b = u8::try_from(i % 5).unwrap();
            let (src, dst) = if i % 4 == 0 {
                (format!("::ffff:10.0.{a}.{b}"), format!("2001:db8::{b}"))
            } else if i % 4 == 1 {
                (format!("fe80::{a}"), format!("::ffff:127.0.{b}.{a}"))
            } else {
                (format!("127.0.{a}.{b}"), format!("10.{b}.{a}.9"))
            };
            let sport = [80, 443, 9999, 20_000][usize::try_from(i % 4).unwrap()];
            out.push(sock(i + 1, st, &src, sport, &dst, u16::try_from(30_000 + i % 97).unwrap()));
        }
        out
    }

    /// The answer as the table gave it before: a scan in dump order.
    fn scanned(world: &[InetSocket], family: u16, states: u32, filter: Option<&Filter>) -> Vec<InetSocket> {
        let mut v: Vec<InetSocket> = world
            .iter()
            .filter(|s| s.family == family && states & (1 << s.state) != 0 && filter.is_none_or(|f| f.matches(s)))
            .cloned()
            .collect();
        v.sort_unstable_by(dump_order);
        v
    }

    /// Both families' rows and counts.
    fn contents(r: &Ready) -> Vec<(Vec<u8>, [u32; 32])> {
        r.families.iter().map(|f| (f.bytes.clone(), f.counts)).collect()
    }

    #[test]
    fn a_rebuilt_answer_equals_a_whole_build_of_the_sockets_now() {
        let mut world = world();
        let last = Ready::build(world.iter(), (0, 0));
        let mut touched = FxHashSet::default();
        // Gone, moved (another state, a listener no more, another port, another peer
        // address), changed in place (queues), and new ones of both families, a
        // listener among them, one sorting before every old row and one after.
        for (i, s) in world.iter_mut().enumerate() {
            let change = match i % 11 {
                0 => Some(TcpState::Close as u8),
                3 => Some(TcpState::CloseWait as u8),
                5 if s.state == TcpState::Listen as u8 => Some(TcpState::Established as u8),
                _ => None,
            };
            if let Some(state) = change {
                s.state = state;
                touched.insert(s.cookie);
            } else if i % 13 == 1 {
                s.sport = s.sport.wrapping_add(1);
                touched.insert(s.cookie);
            } else if i % 17 == 2 {
                let peer = if s.family == AF_INET { "10.255.0.1" } else { "2001:db8::ff" };
                s.dst = peer.parse().unwrap();
                s.rqueue = 7;
                touched.insert(s.cookie);
            }
        }
        world.retain(|s| s.state != TcpState::Close as u8);
        for (cookie, state, src, sport, dst) in [
            (90_001, TcpState::Listen, "0.0.0.0", 1, "0.0.0.0"),
            (90_002, TcpState::Established, "127.0.0.1", 1, "1.1.1.1"),
            (90_003, TcpState::SynRecv, "255.255.255.255", 65_535, "255.255.255.255"),
            (90_004, TcpState::Listen, "::", 22, "::"),
            (90_005, TcpState::Established, "fe80::9", 8080, "::1"),
        ] {
            world.push(sock(cookie, state, src, sport, dst, 40_000));
            touched.insert(cookie);
        }
        // A cookie touched that no socket has any more, nor had.
        touched.insert(123_456_789);
        let fresh = world.iter().filter(|s| touched.contains(&s.cookie));
        let rebuilt = last.rebuilt(&touched, fresh, (1, 1));
        let whole = Ready::build(world.iter(), (1, 1));
        assert_eq!(rebuilt.len(), world.len());
        assert!(contents(&rebuilt) == contents(&whole), "a rebuilt answer differs from a whole build");
        // Nothing touched: the same rows.
        let again = rebuilt.rebuilt(&FxHashSet::default(), std::iter::empty(), (2, 2));
        assert!(contents(&again) == contents(&whole));
    }

    #[test]
    fn touched_sockets_past_the_bound_make_the_next_answer_whole() {
        let mut t = Touched::All;
        t.touch(1);
        assert!(matches!(t, Touched::All), "nothing to start from: whole");
        t.take();
        t.touch(1);
        assert!(matches!(&t, Touched::Cookies(c) if c.len() == 1));
        for c in 0..=TOUCHED_MAX as u64 {
            t.touch(c);
        }
        assert!(matches!(t, Touched::All));
        let (mut a, mut b) = (Touched::All, Touched::All);
        a.take();
        b.take();
        a.touch(1);
        b.touch(2);
        assert!(matches!(a.and(b), Touched::Cookies(c) if c.len() == 2));
        let mut c = Touched::All;
        c.take();
        assert!(matches!(c.and(Touched::All), Touched::All));
    }

    #[test]
    fn answers_equal_a_scan_with_and_without_indexes() {
        let world = world();
        let ready = Ready::build(world.iter(), (0, 0));
        assert_eq!(ready.len(), world.len());
        let filters = [
            "",
            "dport = :30005",
            "sport = :443",
            "sport = :9999 and dst 10.0.0.0/8",
            "dst 127.0.1.2",
            "src 127.0.1.0/24",
            "src 10.0.3.0/24",
            "dst ::ffff:127.0.2.0/120",
            "src fe80::/16",
            "src 0.0.0.0/8",
            "dport = :30005 or dport = :30006",
            "not sport = :80",
            "dport > :30090",
            "( src 127.0.0.0/16 and sport = :80 ) and dport = :30001",
        ];
        for text in filters {
            let words: Vec<&str> = text.split_whitespace().collect();
            let filter = crate::filter::parse(&words, 0).unwrap();
            for family in [AF_INET, AF_INET6] {
                // Every row scanned; the listeners alone; all but them; states listed
                // (a small share of the rows), with and without the listeners; as `ss -l`
                // asks (CLOSE too, in which no row is), with and without them.
                let listen = 1 << TcpState::Listen as u32;
                let close = 1 << TcpState::Close as u32;
                for states in [
                    !0u32,
                    listen,
                    listen | close,
                    close,
                    !listen,
                    1 << TcpState::Established as u32,
                    1 << TcpState::SynRecv as u32,
                    (1 << TcpState::TimeWait as u32) | listen,
                ] {
                    let mut out = Vec::new();
                    ready.answer(family, states, Some(&filter), &mut out);
                    let got = rows::decode(&out).unwrap();
                    let want = scanned(&world, family, states, Some(&filter));
                    if text.is_empty() {
                        assert_eq!(out.len(), ready.bytes_in(family, states), "states {states:#x}");
                    }
                    assert_eq!(got, want, "filter {text:?}, family {family}, states {states:#x}");
                }
            }
        }
    }

    #[test]
    fn answers_made_at_once_on_several_threads_agree() {
        let world = world();
        let ready = std::sync::Arc::new(Ready::build(world.iter(), (0, 0)));
        let filter = crate::filter::parse(&["sport", "=", ":443"], 0).unwrap();
        let want = scanned(&world, AF_INET, !0, Some(&filter));
        // Four answers race to build the same index; each gets the whole answer.
        let answers: Vec<Vec<u8>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut out = Vec::new();
                        ready.answer(AF_INET, !0, Some(&filter), &mut out);
                        out
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for a in answers {
            assert_eq!(rows::decode(&a).unwrap(), want);
        }
    }

    #[test]
    fn small_answers_are_indexed_ones_of_few_rows() {
        let world = world();
        let ready = Ready::build(world.iter(), (0, 0));
        let parse = |text: &str| crate::filter::parse(&text.split_whitespace().collect::<Vec<_>>(), 0).unwrap();
        let both = [AF_INET, AF_INET6];
        let (one, many, scan) = (parse("dport = :30005"), parse("sport = :443"), parse("not sport = :80"));
        let rows =
            |f: &Filter| scanned(&world, AF_INET, !0, Some(f)).len() + scanned(&world, AF_INET6, !0, Some(f)).len();
        assert!(rows(&one) >= 1 && rows(&many) > 8, "the world has the rows this test needs");
        // Before its index is built, no answer is small: building it sorts every row.
        assert!(!ready.small_answer(&both, !0, Some(&one), 256));
        let mut out = Vec::new();
        for family in both {
            ready.answer(family, !0, Some(&one), &mut out);
        }
        assert!(ready.small_answer(&both, !0, Some(&one), 256));
        // The rows it may look at, not those it returns, are bounded.
        ready.answer(AF_INET, !0, Some(&many), &mut out);
        ready.answer(AF_INET6, !0, Some(&many), &mut out);
        assert!(ready.small_answer(&both, !0, Some(&many), rows(&many)));
        assert!(!ready.small_answer(&both, !0, Some(&many), rows(&many) - 1));
        // No index answers a filter without a condition every match meets, nor none.
        assert!(!ready.small_answer(&both, !0, Some(&scan), usize::MAX));
        assert!(!ready.small_answer(&both, !0, None, usize::MAX));
        // Unfiltered, listeners alone are one range of rows, at the front.
        let listen = 1 << TcpState::Listen as u32;
        let listeners = world.iter().filter(|s| s.state == TcpState::Listen as u8).count();
        assert!(listeners > 0 && listeners < world.len(), "the world has listeners and other rows");
        assert!(ready.small_answer(&both, listen, None, listeners));
        assert!(!ready.small_answer(&both, listen, None, listeners - 1));
        assert!(!ready.small_answer(&both, listen | 1 << TcpState::Established as u32, None, usize::MAX));
        // As `ss -l` asks: CLOSE too, in which no row is.
        let close = 1 << TcpState::Close as u32;
        assert!(world.iter().all(|s| s.state != TcpState::Close as u8));
        assert!(ready.small_answer(&both, listen | close, None, listeners));
        // States no row is in: nothing to look at, listeners or not.
        assert!(ready.small_answer(&both, close, None, 0));
    }

    #[test]
    fn indexes_serve_the_filters_ss_users_type() {
        let required = |text: &str| {
            let words: Vec<&str> = text.split_whitespace().collect();
            let f = crate::filter::parse(&words, 0).unwrap();
            f.required().map(|r| match r {
                Required::Port { local, port } => format!("port local={local} {port}"),
                Required::Addr { local, prefixes } => format!("addr local={local} {}", prefixes.len()),
            })
        };
        assert_eq!(required("dport = :443").as_deref(), Some("port local=false 443"));
        // In a conjunction, the port is taken over the address.
        assert_eq!(required("dst 10.0.0.1 and sport = :22").as_deref(), Some("port local=true 22"));
        assert_eq!(required("dst 10.0.0.1").as_deref(), Some("addr local=false 1"));
        assert_eq!(required("src 127.0.1.0/24").as_deref(), Some("addr local=true 1"));
        // Nothing every match must have: a scan.
        assert_eq!(required("dport = :1 or sport = :2"), None);
        assert_eq!(required("not dport = :1"), None);
        assert_eq!(required("src *"), None);
    }
}
