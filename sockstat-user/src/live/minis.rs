//! The mini sockets of one namespace's table: timewait sockets (TIME-WAIT, and
//! FIN-WAIT-2 in its timewait sub-state) and request sockets (SYN-RECV), which no state
//! transition announces. They are modelled from what the kernel does say, and checked
//! where the model can be wrong (see `answer`, and docs/columns.md):
//!
//! - A full socket that closes from FIN-WAIT-2 or CLOSING hands its tuple and cookie to a
//!   timewait socket (tcp_time_wait()), which the kernel keeps for 60 s (its timer wheel
//!   may fire a few seconds late). Its sub-state: TIME-WAIT once the peer's FIN came,
//!   else FIN-WAIT-2 (an orphan that closed first). A local peer's FIN is seen (its
//!   CLOSE-WAIT -> LAST-ACK); a remote one's is not, so such a socket is checked with
//!   the kernel at each query (a remote peer's FIN turns it TIME-WAIT silently).
//! - The sock_ops program reports each request socket a listener makes for a SYN; the
//!   request ends as a full socket on the same tuple (whose events follow) or silently
//!   (timeout, reset, listener closed), so requests are always checked by an exact
//!   lookup before they are shown.
//! - A new socket on a tuple retires the mini socket that held it (timewait reuse, a SYN
//!   that recycles a timewait socket).
//!
//! No I/O here: the checks are the caller's, who hands back what the kernel said.

use std::net::IpAddr;

use rustc_hash::FxHashMap;
use sockstat_ebpf::TcpState;

use crate::{
    live::ready::Touched,
    model::socket::{InetSocket, Source},
};

/// How long the kernel keeps a timewait socket (TCP_TIMEWAIT_LEN).
pub const TIMEWAIT_NS: u64 = 60_000_000_000;

/// (local address, local port, peer address, peer port).
pub type Tuple = (IpAddr, u16, IpAddr, u16);

pub fn tuple(s: &InetSocket) -> Tuple {
    (s.src, s.sport, s.dst, s.dport)
}

fn reversed(t: &Tuple) -> Tuple {
    (t.2, t.3, t.0, t.1)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Timewait,
    Request,
}

#[derive(Clone, Debug)]
pub struct Mini {
    /// The row as ss prints it: TIME-WAIT or FIN-WAIT-2 for a timewait socket, SYN-RECV
    /// for a request.
    pub sock: InetSocket,
    pub kind: Kind,
    /// CLOCK_MONOTONIC ns when the model learnt of it (the close, the request event) or
    /// when the kernel last confirmed it.
    pub since_ns: u64,
    /// CLOCK_MONOTONIC ns of its timer's expiry, when the kernel said it (a dump or a
    /// lookup); `None`: modelled from an event, expiry not known to the nanosecond.
    pub expires_ns: Option<u64>,
    /// The model cannot tell this one's state alone: ask the kernel before showing it.
    pub unsure: bool,
}

impl Mini {
    /// Whether [`Minis::to_check`] may give it, now or later: it is unsure, a request, or a
    /// timewait socket whose expiry the kernel never said.
    fn may_need_check(&self) -> bool {
        self.must_check() || self.expires_ns.is_none()
    }

    /// Whether [`Minis::to_check`] gives it at every query.
    fn must_check(&self) -> bool {
        self.unsure || self.kind == Kind::Request
    }
}

/// Mini sockets of one kind, by cookie and by tuple.
#[derive(Debug, Default)]
struct Store {
    by_cookie: FxHashMap<u64, Mini>,
    by_tuple: FxHashMap<Tuple, u64>,
}

impl Store {
    /// Takes out `cookie`'s mini socket, and its tuple's entry.
    fn take(&mut self, cookie: u64) -> Option<Mini> {
        let m = self.by_cookie.remove(&cookie)?;
        let t = tuple(&m.sock);
        if self.by_tuple.get(&t) == Some(&cookie) {
            self.by_tuple.remove(&t);
        }
        Some(m)
    }

    /// Takes out the mini socket that holds `t`, unless it is `cookie`'s.
    fn take_tuple(&mut self, t: &Tuple, cookie: u64) -> Option<Mini> {
        let &held = self.by_tuple.get(t)?;
        if held == cookie {
            return None;
        }
        self.by_tuple.remove(t);
        self.by_cookie.remove(&held)
    }

    fn clear(&mut self) {
        self.by_cookie.clear();
        self.by_tuple.clear();
    }
}

/// A tuple and a cookie are each held by one mini socket at most, of either kind.
#[derive(Debug, Default)]
pub struct Minis {
    /// Timewait sockets: tens of thousands on a busy server, each kept a minute.
    lasting: Store,
    /// Request sockets: few at a time, each gone within a round trip, and one per
    /// incoming connection. Apart from the timewait sockets, their coming and going
    /// touches small maps only.
    requests: Store,
    /// Tuples of full sockets whose local peer sent its FIN (went LAST-ACK) before they
    /// closed: their close makes a TIME-WAIT socket. Gone with the peer's close.
    fin_received: rustc_hash::FxHashSet<Tuple>,
    /// CLOCK_MONOTONIC ns when the last dump that reseeded them began (0: never).
    pub dumped_ns: u64,
    /// Changes to the rows so far (see [`Minis::changes`]).
    changes: u64,
    /// What lets a query skip walking every mini socket (a quiet server holds tens of
    /// thousands of timewait sockets): how many [`Mini::may_need_check`], how many
    /// timewait sockets, the latest `since_ns` of one (an upper bound: not lowered when
    /// it goes), the earliest known expiry of one (a lower bound: not raised when it goes;
    /// `None`: none known).
    may_need_check: usize,
    /// Cookies confirmed by the kernel since [`Minis::take_confirmed`] last ran.
    confirmed: Vec<u64>,
    timewait: usize,
    timewait_latest_ns: u64,
    earliest_expiry_ns: Option<u64>,
    /// How many [`Mini::must_check`]; and a lower bound on the `since_ns` of those whose
    /// expiry is not known (made exact at each walk): until 60 s after it, only the former
    /// need a walk of every mini socket (tens of thousands, a millisecond when the caches
    /// are cold).
    must_check: usize,
    earliest_unknown_since_ns: Option<u64>,
    /// The mini sockets added, removed or changed since the table's ready answer was made.
    touched: Touched,
}

impl Minis {
    pub fn len(&self) -> usize {
        self.lasting.by_cookie.len() + self.requests.by_cookie.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lasting.by_cookie.is_empty() && self.requests.by_cookie.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Mini> {
        self.lasting.by_cookie.values().chain(self.requests.by_cookie.values())
    }

    pub fn get(&self, cookie: u64) -> Option<&Mini> {
        self.requests.by_cookie.get(&cookie).or_else(|| self.lasting.by_cookie.get(&cookie))
    }

    /// The cookies the kernel confirmed (a dump or a lookup) since the last call, each
    /// once.
    pub fn take_confirmed(&mut self) -> Vec<u64> {
        let mut c = std::mem::take(&mut self.confirmed);
        c.sort_unstable();
        c.dedup();
        c
    }

    /// How many times a row was added, removed or changed: an answer built from the rows
    /// is current while this stays the same.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// What [`Touched::take`] says of the mini sockets.
    pub fn take_touched(&mut self) -> Touched {
        self.touched.take()
    }

    pub fn clear(&mut self) {
        self.changes += 1;
        self.touched.all();
        (self.may_need_check, self.timewait, self.timewait_latest_ns, self.must_check) = (0, 0, 0, 0);
        (self.earliest_expiry_ns, self.earliest_unknown_since_ns) = (None, None);
        self.confirmed.clear();
        self.lasting.clear();
        self.requests.clear();
        self.fin_received.clear();
        self.dumped_ns = 0;
    }

    /// Timewait sockets the model holds that existed at `at_ns` (for the comparison with
    /// the kernel's count).
    pub fn timewait_count(&self, at_ns: u64) -> usize {
        if self.timewait_latest_ns <= at_ns {
            return self.timewait;
        }
        self.lasting.by_cookie.values().filter(|m| m.since_ns <= at_ns).count()
    }

    /// Keeps the counts of [`Minis`] as `m` comes or goes.
    fn count(&mut self, m: &Mini, comes: bool) {
        let step = |n: &mut usize| *n = if comes { *n + 1 } else { n.saturating_sub(1) };
        if m.may_need_check() {
            step(&mut self.may_need_check);
            if m.must_check() {
                step(&mut self.must_check);
            } else if comes {
                lower(&mut self.earliest_unknown_since_ns, m.since_ns);
            }
        }
        if m.kind == Kind::Timewait {
            step(&mut self.timewait);
            if comes {
                self.timewait_latest_ns = self.timewait_latest_ns.max(m.since_ns);
                if let Some(e) = m.expires_ns {
                    lower(&mut self.earliest_expiry_ns, e);
                }
            }
        }
    }

    fn insert(&mut self, mini: Mini) {
        self.changes += 1;
        self.count(&mini, true);
        let (cookie, t) = (mini.sock.cookie, tuple(&mini.sock));
        let (store, other) = match mini.kind {
            Kind::Timewait => (&mut self.lasting, &mut self.requests),
            Kind::Request => (&mut self.requests, &mut self.lasting),
        };
        // Another one on its tuple is gone (reused), and an earlier one of its cookie is
        // replaced, whatever their kind. In its own store, the inserts say what they
        // replace: one lookup each in maps that may hold every TIME-WAIT socket.
        let mut gone = [other.take_tuple(&t, cookie), other.take(cookie), None, None];
        if let Some(held) = store.by_tuple.insert(t, cookie)
            && held != cookie
        {
            gone[2] = store.by_cookie.remove(&held);
        }
        if let Some(old) = store.by_cookie.insert(cookie, mini) {
            let old_t = tuple(&old.sock);
            if old_t != t && store.by_tuple.get(&old_t) == Some(&cookie) {
                store.by_tuple.remove(&old_t);
            }
            gone[3] = Some(old);
        }
        self.touched.touch(cookie);
        for g in gone.iter().flatten() {
            self.count(g, false);
            self.touched.touch(g.sock.cookie);
        }
    }

    pub fn remove(&mut self, cookie: u64) -> Option<Mini> {
        let m = self.requests.take(cookie).or_else(|| self.lasting.take(cookie))?;
        self.changes += 1;
        self.touched.touch(cookie);
        self.count(&m, false);
        Some(m)
    }

    /// A full socket with `cookie` now holds tuple `t` (`None`: its port is not known
    /// yet): a mini socket of the same cookie (a request that completed) or on the same
    /// tuple (reused) is gone.
    pub fn full_socket(&mut self, cookie: u64, t: Option<Tuple>) {
        self.remove(cookie);
        if let Some(t) = t
            && let Some(&other) = self.requests.by_tuple.get(&t).or_else(|| self.lasting.by_tuple.get(&t))
        {
            self.remove(other);
        }
    }

    /// The full socket `closed` (its last state `old`) handed its tuple to a timewait
    /// socket at `now_ns`.
    pub fn timewait_from_close(&mut self, closed: &InetSocket, old: u8, now_ns: u64) {
        // CLOSING: both FINs were sent, ours is acked now: TIME-WAIT. FIN-WAIT-2: TIME-WAIT
        // if the peer's FIN came, which a local peer's LAST-ACK said; else most likely
        // FIN-WAIT-2 (an orphan closed before the peer), which only the kernel can say.
        let t = tuple(closed);
        let (state, unsure) = if old == TcpState::Closing as u8 || self.fin_received.remove(&t) {
            (TcpState::TimeWait, false)
        } else {
            (TcpState::FinWait2, true)
        };
        let sock = InetSocket {
            state: state as u8,
            rqueue: 0,
            wqueue: 0,
            uid: 0,
            inode: 0,
            timer: 3,
            retrans: 0,
            expires_ms: 0,
            source: Source::Table,
            ext: None,
            ..closed.clone()
        };
        self.insert(Mini { sock, kind: Kind::Timewait, since_ns: now_ns, expires_ns: None, unsure });
    }

    /// The full socket `s` sent its FIN from CLOSE-WAIT (now LAST-ACK): a timewait socket
    /// of its peer in the FIN-WAIT-2 sub-state moves to TIME-WAIT, its timer restarted;
    /// a peer still open will close into TIME-WAIT.
    pub fn peer_sent_fin(&mut self, s: &InetSocket, now_ns: u64) {
        let t = reversed(&tuple(s));
        match self.lasting.by_tuple.get(&t).and_then(|c| self.lasting.by_cookie.get(c)) {
            Some(m) if m.kind == Kind::Timewait && m.sock.state == TcpState::FinWait2 as u8 => {
                // Taken out and put back changed, so that every count follows it.
                let cookie = m.sock.cookie;
                if let Some(mut m) = self.lasting.take(cookie) {
                    self.count(&m, false);
                    m.sock.state = TcpState::TimeWait as u8;
                    m.since_ns = now_ns;
                    m.expires_ns = None;
                    m.unsure = false;
                    self.insert(m);
                }
            }
            Some(_) => {}
            None => {
                self.fin_received.insert(t);
            }
        }
    }

    /// The full socket `s`, which had sent its FIN, closed: its peer has closed too.
    pub fn fin_sender_closed(&mut self, s: &InetSocket) {
        self.fin_received.remove(&reversed(&tuple(s)));
    }

    /// A request socket reported by the sock_ops program.
    pub fn request(&mut self, mut sock: InetSocket, now_ns: u64) {
        sock.state = TcpState::SynRecv as u8;
        sock.source = Source::Table;
        sock.timer = 1;
        self.insert(Mini { sock, kind: Kind::Request, since_ns: now_ns, expires_ns: None, unsure: true });
    }

    /// Mini sockets from a dump made at `now_ns` (its TIME-WAIT, timewait FIN-WAIT-2 and
    /// SYN-RECV rows; full sockets are skipped), replacing those of the kinds `kinds`
    /// covers.
    ///
    /// Those the model learnt of after the dump began stay: the dump may have walked
    /// past their place before they were made (under churn, thousands of them).
    pub fn reseed(&mut self, dump: &[InetSocket], kinds: &[Kind], now_ns: u64) {
        self.dumped_ns = now_ns;
        let stale: Vec<u64> =
            self.iter().filter(|m| kinds.contains(&m.kind) && m.since_ns <= now_ns).map(|m| m.sock.cookie).collect();
        for cookie in stale {
            self.remove(cookie);
        }
        for s in dump {
            let Some(kind) = mini_kind(s) else { continue };
            if kinds.contains(&kind) {
                self.confirmed(s.clone(), kind, now_ns);
            }
        }
    }

    /// What an exact lookup (or a dump) at `now_ns` said of a mini socket: it exists as
    /// `s`.
    pub fn confirmed(&mut self, mut s: InetSocket, kind: Kind, now_ns: u64) {
        let expires_ns = now_ns + u64::from(s.expires_ms) * 1_000_000;
        s.source = Source::Table;
        // A timewait socket in the FIN-WAIT-2 sub-state turns TIME-WAIT when the peer's
        // FIN comes, which no event says for a remote peer (and a local peer's LAST-ACK
        // may have come just before the kernel was asked): asked again at each query.
        let unsure = s.state == TcpState::FinWait2 as u8;
        self.confirmed.push(s.cookie);
        self.insert(Mini { sock: s, kind, since_ns: now_ns, expires_ns: Some(expires_ns), unsure });
    }

    /// Drops what the kernel has expired by `now_ns` (known expiries only).
    pub fn expire(&mut self, now_ns: u64) {
        if self.earliest_expiry_ns.is_none_or(|e| now_ns <= e) {
            return;
        }
        // One walk: what has expired goes, and the bound is made exact again from what
        // stays.
        let mut gone = Vec::new();
        let mut earliest = None;
        for m in self.lasting.by_cookie.values() {
            match m.expires_ns {
                Some(e) if e < now_ns => gone.push(m.sock.cookie),
                Some(e) => lower(&mut earliest, e),
                None => {}
            }
        }
        self.earliest_expiry_ns = earliest;
        for cookie in gone {
            self.remove(cookie);
        }
    }

    /// The mini sockets to confirm with the kernel before answering at `now_ns`: every
    /// request, every timewait socket the model cannot place, and those past 60 s whose
    /// expiry the kernel never said.
    pub fn to_check(&mut self, now_ns: u64) -> Vec<InetSocket> {
        let due = |since: u64| now_ns.saturating_sub(since) >= TIMEWAIT_NS;
        if self.may_need_check == 0 || (self.must_check == 0 && !self.earliest_unknown_since_ns.is_some_and(due)) {
            return Vec::new();
        }
        // The bound made exact (the caller may leave some of those given unchecked: a query
        // of other states).
        let mut earliest = None;
        let check = self
            .iter()
            .filter(|m| {
                if m.expires_ns.is_none() && !m.must_check() {
                    lower(&mut earliest, m.since_ns);
                }
                m.must_check() || (m.expires_ns.is_none() && due(m.since_ns))
            })
            .map(|m| m.sock.clone())
            .collect();
        self.earliest_unknown_since_ns = earliest;
        check
    }
}

/// Lowers a lower bound (`None`: none yet) to `v`.
fn lower(bound: &mut Option<u64>, v: u64) {
    *bound = Some(bound.map_or(v, |b| b.min(v)));
}

/// Which kind of mini socket a dumped row is, if it is one: TIME-WAIT, a timewait socket
/// in FIN-WAIT-2 (its timer is the timewait one), or SYN-RECV without an inode (a request
/// socket, or a full child not yet accepted: whose next event then removes it).
pub fn mini_kind(s: &InetSocket) -> Option<Kind> {
    if s.state == TcpState::TimeWait as u8 || (s.state == TcpState::FinWait2 as u8 && s.timer == 3) {
        Some(Kind::Timewait)
    } else if s.state == TcpState::SynRecv as u8 || s.state == TcpState::NewSynRecv as u8 {
        Some(Kind::Request)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(cookie: u64, state: TcpState, sport: u16, dport: u16) -> InetSocket {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        InetSocket::tcp(2, state as u8, (lo, sport), (lo, dport), cookie)
    }

    /// The counts that spare walks agree with walks, whatever happens to the rows.
    #[test]
    fn shortcuts_agree_with_walking_every_row() {
        use TcpState::*;
        let mut m = Minis::default();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut now = 1_000u64;
        for _ in 0..4000 {
            now += next(3) * 20_000_000_000;
            let cookie = 1 + next(60);
            let port = u16::try_from(1000 + next(40)).unwrap();
            let mut s = sock(cookie, TimeWait, port, 80);
            match next(8) {
                0 => m.timewait_from_close(
                    &sock(cookie, Established, port, 80),
                    [FinWait2, Closing][usize::try_from(next(2)).unwrap()] as u8,
                    now,
                ),
                1 => {
                    s.expires_ms = u32::try_from(next(60_000)).unwrap();
                    m.confirmed(s, Kind::Timewait, now);
                }
                2 => m.confirmed(sock(cookie, FinWait2, port, 80), Kind::Timewait, now),
                3 => m.request(sock(cookie, SynRecv, port, 80), now),
                4 => {
                    m.remove(cookie);
                }
                5 => m.peer_sent_fin(&sock(cookie, CloseWait, 80, port), now),
                6 => m.expire(now),
                _ => m.full_socket(cookie, Some(tuple(&s))),
            }
            // One row per tuple and per cookie, whatever their kinds.
            let mut held = rustc_hash::FxHashSet::default();
            assert!(m.iter().all(|x| held.insert(tuple(&x.sock))), "a tuple held twice");
            let mut cookies = rustc_hash::FxHashSet::default();
            assert!(m.iter().all(|x| cookies.insert(x.sock.cookie)), "a cookie held twice");
            assert!(m.iter().all(|x| m.get(x.sock.cookie).is_some()));
            // The counts are those of the rows, whatever changed them.
            assert_eq!(m.must_check, m.iter().filter(|x| x.must_check()).count());
            assert_eq!(m.may_need_check, m.iter().filter(|x| x.may_need_check()).count());
            let at = now.saturating_sub(next(2) * 10_000_000_000);
            let walked = m.iter().filter(|x| x.kind == Kind::Timewait && x.since_ns <= at).count();
            assert_eq!(m.timewait_count(at), walked);
            let due = m
                .iter()
                .filter(|x| {
                    x.unsure || x.kind == Kind::Request || (x.expires_ns.is_none() && now - x.since_ns >= TIMEWAIT_NS)
                })
                .count();
            assert_eq!(m.to_check(now).len(), due);
            let mut expired = Minis::default();
            std::mem::swap(&mut expired, &mut m);
            expired.expire(now);
            assert!(expired.iter().all(|x| x.kind != Kind::Timewait || x.expires_ns.is_none_or(|e| e >= now)));
            m = expired;
        }
    }

    #[test]
    fn a_close_makes_a_timewait_socket_that_reuse_retires() {
        let mut m = Minis::default();
        // The client closed first: its peer is still in CLOSE-WAIT, so FIN-WAIT-2.
        m.timewait_from_close(&sock(1, TcpState::FinWait2, 5000, 80), TcpState::FinWait2 as u8, 10);
        assert_eq!(m.iter().next().map(|x| x.sock.state), Some(TcpState::FinWait2 as u8));
        // The server sends its FIN: TIME-WAIT, timer restarted.
        m.peer_sent_fin(&sock(2, TcpState::LastAck, 80, 5000), 20);
        let x = m.iter().next().unwrap();
        assert_eq!((x.sock.state, x.since_ns, x.unsure), (TcpState::TimeWait as u8, 20, false));
        assert_eq!(m.timewait_count(20), 1);
        assert_eq!(m.timewait_count(19), 0);
        // A new connection on the same tuple retires it.
        m.full_socket(3, Some(tuple(&sock(3, TcpState::Established, 5000, 80))));
        assert!(m.is_empty());
        // The server sent its FIN before the client closed: TIME-WAIT at once.
        m.peer_sent_fin(&sock(5, TcpState::LastAck, 80, 5001), 30);
        m.timewait_from_close(&sock(4, TcpState::FinWait2, 5001, 80), TcpState::FinWait2 as u8, 31);
        let x = m.iter().next().unwrap();
        assert_eq!((x.sock.state, x.unsure), (TcpState::TimeWait as u8, false));
        m.fin_sender_closed(&sock(5, TcpState::LastAck, 80, 5001));
        assert!(m.fin_received.is_empty());
    }

    #[test]
    fn timewait_sockets_of_unknown_expiry_are_checked_after_60_s_without_a_walk_before() {
        let mut m = Minis::default();
        // Sure timewait sockets (CLOSING -> TIME-WAIT), expiry not known, at 10 and 20.
        m.timewait_from_close(&sock(1, TcpState::Closing, 5000, 80), TcpState::Closing as u8, 10);
        m.timewait_from_close(&sock(2, TcpState::Closing, 5001, 80), TcpState::Closing as u8, 20);
        assert!(m.to_check(11).is_empty());
        assert!(m.to_check(9 + TIMEWAIT_NS).is_empty());
        let due: Vec<u64> = m.to_check(10 + TIMEWAIT_NS).iter().map(|s| s.cookie).collect();
        assert_eq!(due, [1]);
        // Left unchecked (a query of other states): still given at the next query.
        assert_eq!(m.to_check(11 + TIMEWAIT_NS).len(), 1);
        // Confirmed with its expiry: the other one is next, 60 s after its own close.
        let mut s = sock(1, TcpState::TimeWait, 5000, 80);
        s.expires_ms = 1000;
        m.confirmed(s, Kind::Timewait, 12 + TIMEWAIT_NS);
        assert!(m.to_check(13 + TIMEWAIT_NS).is_empty());
        assert_eq!(m.to_check(20 + TIMEWAIT_NS).len(), 1);
    }

    #[test]
    fn remote_peers_and_requests_are_checked() {
        let mut m = Minis::default();
        m.timewait_from_close(&sock(1, TcpState::FinWait2, 5000, 80), TcpState::FinWait2 as u8, 10);
        m.timewait_from_close(&sock(2, TcpState::Closing, 5001, 80), TcpState::Closing as u8, 10);
        m.request(sock(3, TcpState::NewSynRecv, 80, 6000), 10);
        let mut check: Vec<u64> = m.to_check(11).iter().map(|s| s.cookie).collect();
        check.sort_unstable();
        assert_eq!(check, [1, 3]);
        // Past 60 s, the timewait socket from CLOSING is checked too.
        assert_eq!(m.to_check(10 + TIMEWAIT_NS).len(), 3);
        // The request completes: its child's events carry its cookie.
        m.full_socket(3, Some(tuple(&sock(3, TcpState::Established, 80, 6000))));
        assert_eq!(m.len(), 2);
        // The kernel confirmed one with 30 s left, and the other is gone.
        let mut confirmed = sock(2, TcpState::TimeWait, 5001, 80);
        confirmed.expires_ms = 30_000;
        m.confirmed(confirmed, Kind::Timewait, 100);
        m.remove(1);
        assert!(m.to_check(200).is_empty());
        m.expire(100 + 30_000_000_001);
        assert!(m.is_empty());
    }

    #[test]
    fn a_dump_replaces_the_kinds_it_covers() {
        let mut m = Minis::default();
        m.request(sock(3, TcpState::NewSynRecv, 80, 6000), 10);
        m.timewait_from_close(&sock(1, TcpState::Closing, 5000, 80), TcpState::Closing as u8, 10);
        let mut fw2 = sock(9, TcpState::FinWait2, 5002, 80);
        fw2.timer = 3;
        m.reseed(
            &[sock(7, TcpState::TimeWait, 5001, 80), fw2, sock(8, TcpState::Established, 1, 2)],
            &[Kind::Timewait],
            50,
        );
        let mut cookies: Vec<u64> = m.iter().map(|x| x.sock.cookie).collect();
        cookies.sort_unstable();
        assert_eq!(cookies, [3, 7, 9]);
    }
}
