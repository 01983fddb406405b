//! The agent's live socket table: full TCP sockets keyed by socket cookie, seeded from a
//! sock_diag dump and kept current by state-transition events. No I/O here.
//!
//! What the table cannot know from events is left to the kernel at query time (see
//! `agent`): TIME-WAIT and SYN-RECV mini-sockets (no full socket, no event: the
//! full socket goes FIN-WAIT-2/CLOSING -> CLOSE and a timewait sock takes over),
//! SYN-SENT sockets (the event fires before connect() picks the local port), and
//! SYN-RECV (inet_diag reports request socks and full SYN-RECV sockets alike as state 3).
//!
//! One [`Table`] per network namespace ([`Namespaces`]): the eBPF program sees the
//! transitions of every namespace, each event says which one (`Transition::netns`), and
//! sock_diag dumps and socket tuples are per namespace, so each namespace is seeded,
//! resynced and queried on its own.

use std::collections::{BTreeMap, hash_map::Entry as Slot};

use rustc_hash::FxHashMap;
use sockstat_ebpf::{AF_INET6, TcpState};

use crate::{
    bpf::stream::Transition,
    live::{
        minis::{self, Minis},
        ready::{self, Ready, Touched},
    },
    model::{
        socket::{InetSocket, Source},
        tcp::{self, Change},
    },
};

/// States a socket stays in without its process (the kernel moves it on by itself):
/// FIN-WAIT-1, FIN-WAIT-2, CLOSING, LAST-ACK.
const CLOSING_STATES: u32 = (1 << TcpState::FinWait1 as u32)
    | (1 << TcpState::FinWait2 as u32)
    | (1 << TcpState::Closing as u32)
    | (1 << TcpState::LastAck as u32);

/// How long a socket stays in a closing state before the kernel is asked about it, and
/// how often again after that.
pub const CLOSING_CHECK_NS: u64 = 10_000_000_000;

/// Every TCP state, as an inet_diag state mask.
pub const ALL_STATES: u32 = 0xffff_ffff;

/// States whose sockets the table answers for; the others come from the kernel.
pub const TABLE_STATES: u32 = !KERNEL_STATES;

/// The query-time dump also asks for FIN-WAIT-2, keeping only timewait sockets in that
/// sub-state (`InetSocket::is_mini`): the table has the full FIN-WAIT-2 sockets. The
/// timeline's replay, which cannot ask the kernel, guesses the same sub-state from the
/// peer (`timeline::replay`).
pub const TIMEWAIT_SUBSTATES: u32 = 1 << TcpState::FinWait2 as u32;

/// States answered by a sock_diag dump at query time (plus CLOSE, which no dump has).
pub const KERNEL_STATES: u32 = (1 << TcpState::SynSent as u32)
    | (1 << TcpState::SynRecv as u32)
    | (1 << TcpState::TimeWait as u32)
    | (1 << TcpState::NewSynRecv as u32)
    | (1 << TcpState::Close as u32);

#[derive(Clone, Debug)]
pub struct Entry {
    pub sock: InetSocket,
    /// CLOCK_MONOTONIC ns of the last transition; 0 for sockets known only from a dump.
    pub since_ns: u64,
}

/// What applying one event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Inserted,
    Updated,
    /// The full socket closed ([`Change::Closed`]). `to_time_wait` when it closed from
    /// FIN-WAIT-2 or CLOSING, the paths on which tcp_time_wait() hands the tuple to a
    /// timewait socket.
    Removed {
        to_time_wait: bool,
    },
    /// A close for a socket the table never held (closed before the seed, or another
    /// namespace's socket).
    Unknown,
    /// Not for this table: another network namespace, not an inet socket, or an accept
    /// notice (owner information, not a state change).
    Foreign,
    /// A request socket, added to the mini sockets.
    Request,
}

#[derive(Debug, Default)]
pub struct Table {
    /// Keyed by cookie: kernel-made, so no hash flooding to fear, and a fast hash is
    /// most of the cost of applying an event and of walking the table for a query.
    sockets: FxHashMap<u64, Entry>,
    /// Every cookie in answer order (`sort_like_dump`), AF_INET's then AF_INET6's,
    /// kept until the table changes: repeated queries of an unchanged table skip the
    /// sort, and a query of one family walks only that family's cookies.
    order: Option<[Vec<u64>; 2]>,
    /// Only events of this network namespace are applied (None: all).
    netns: Option<u32>,
    /// Timewait and request sockets, modelled (see `minis`).
    pub minis: Minis,
    /// Cookie -> CLOCK_MONOTONIC ns of the last kernel check of a socket long in a
    /// closing state ([`Table::closing_to_check`]).
    closing_checked: FxHashMap<u64, u64>,
    /// Changes to `sockets` so far: the ready answer is rebuilt when this (or the mini
    /// sockets' count) moved since it was built.
    changes: u64,
    ready: Option<std::sync::Arc<Ready>>,
    /// Full sockets added, removed or changed since `ready` was made.
    touched: Touched,
    /// `changes` at the last [`Table::closing_to_check`] walk, and when the first socket it
    /// saw but left becomes due.
    closing_due: Option<(u64, u64)>,
}

impl Table {
    pub fn new(netns: Option<u32>) -> Table {
        Table {
            sockets: FxHashMap::default(),
            order: None,
            netns,
            minis: Minis::default(),
            closing_checked: FxHashMap::default(),
            changes: 0,
            ready: None,
            touched: Touched::All,
            closing_due: None,
        }
    }

    /// Every change to `sockets` goes through here, with the cookie it changed: the
    /// cached order and ready answer are out of date.
    fn changed(&mut self, cookie: u64) {
        self.order = None;
        self.changes += 1;
        self.touched.touch(cookie);
    }

    /// [`Table::changed`] for every socket at once.
    fn changed_all(&mut self) {
        self.order = None;
        self.changes += 1;
        self.touched.all();
    }

    /// The answer kept ready (see `ready`), built again first if the table or its mini
    /// sockets changed since. Full sockets in TIME-WAIT are left out: the mini sockets
    /// have them.
    ///
    /// Shared: answers are made from it off the event loop, several at once, while the
    /// table goes on changing (a later change makes a new one; answers in the making keep
    /// the one they started with).
    pub fn ready(&mut self) -> std::sync::Arc<Ready> {
        let now = (self.changes, self.minis.changes());
        match &self.ready {
            Some(r) if r.built_at == now => r.clone(),
            _ => {
                let touched = self.touched.take().and(self.minis.take_touched());
                let r = match (self.ready.take(), touched) {
                    // The sockets that changed taken out of the last answer and put back.
                    (Some(last), Touched::Cookies(cookies)) => {
                        let (sockets, minis) = (&self.sockets, &self.minis);
                        let fresh = cookies.iter().flat_map(|c| {
                            let full = sockets.get(c).map(|e| &e.sock).filter(|s| shown(s));
                            full.into_iter().chain(minis.get(*c).map(|m| &m.sock))
                        });
                        last.rebuilt(&cookies, fresh, now)
                    }
                    // Made whole: the old one is gone first (unless an answer still holds
                    // it, two at once would double the memory they take).
                    (last, _) => {
                        drop(last);
                        Ready::build(self.rows_now(), now)
                    }
                };
                let r = std::sync::Arc::new(r);
                self.ready = Some(r.clone());
                r
            }
        }
    }

    /// Every socket the ready answer shows: the full sockets (those in TIME-WAIT left out:
    /// the mini sockets have them), then the mini sockets.
    fn rows_now(&self) -> impl Iterator<Item = &InetSocket> {
        let full = self.sockets.values().map(|e| &e.sock).filter(|s| shown(s));
        full.chain(self.minis.iter().map(|m| &m.sock))
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    pub fn get(&self, cookie: u64) -> Option<&Entry> {
        self.sockets.get(&cookie)
    }

    /// Adds the number of sockets in each state (kernel state number) to `counts`.
    pub fn count_by_state(&self, counts: &mut [u64; 16]) {
        for e in self.sockets.values() {
            counts[usize::from(e.sock.state & 15)] += 1;
        }
    }

    /// Replaces the contents with a dump of the namespace. Mini-sockets in the dump
    /// (TIME-WAIT, SYN-RECV request socks) are not full sockets and are skipped.
    pub fn seed(&mut self, dump: Vec<InetSocket>) {
        self.sockets.clear();
        self.closing_checked.clear();
        self.changed_all();
        self.minis.clear();
        self.minis.reseed(&dump, &[minis::Kind::Timewait, minis::Kind::Request], crate::model::clock::monotonic_ns());
        for mut sock in dump {
            // Full sockets only (a SYN-RECV child enters the table with its first event).
            if sock.is_mini() {
                continue;
            }
            sock.source = Source::Table;
            self.sockets.insert(sock.cookie, Entry { sock, since_ns: 0 });
        }
    }

    /// Full sockets in a state the kernel leaves on its own (FIN-WAIT-1, FIN-WAIT-2,
    /// CLOSING, LAST-ACK: their process may be gone) whose last transition is at least
    /// [`CLOSING_CHECK_NS`] old and that were not checked within as long: at most `budget`,
    /// the longest unchecked first. The kernel does not always report how such a socket
    /// ends (see [`Table::drop_taken_over`]); an exact lookup says whether it is still
    /// there.
    pub fn closing_to_check(&mut self, now_ns: u64, budget: usize) -> Vec<InetSocket> {
        // Nothing changed since the last walk, and nothing it saw is due yet: no walk
        // (a query of a quiet table of 100k sockets would spend a millisecond here).
        if self.closing_due.is_some_and(|(changes, due_ns)| changes == self.changes && now_ns < due_ns) {
            return Vec::new();
        }
        let checked = &mut self.closing_checked;
        checked.retain(|c, _| self.sockets.contains_key(c));
        let mut next_due = u64::MAX;
        let mut due: Vec<(u64, &InetSocket)> = Vec::new();
        for e in self.sockets.values().filter(|e| CLOSING_STATES & (1 << e.sock.state) != 0) {
            let at = checked.get(&e.sock.cookie).copied().unwrap_or(0);
            let due_ns = e.since_ns.max(at).saturating_add(CLOSING_CHECK_NS);
            if now_ns >= due_ns {
                due.push((at, &e.sock));
            } else {
                next_due = next_due.min(due_ns);
            }
        }
        due.sort_unstable_by_key(|&(at, s)| (at, s.cookie));
        due.truncate(budget);
        if !due.is_empty() {
            // Due until the kernel was asked (which is a change), the ones past the budget too.
            next_due = now_ns;
        }
        let due: Vec<InetSocket> = due.into_iter().map(|(_, s)| s.clone()).collect();
        self.closing_due = Some((self.changes, next_due));
        due
    }

    /// What an exact lookup at `now_ns` said of `asked`, a socket [`Table::closing_to_check`]
    /// gave: gone (`None`), a timewait socket, or still a full socket in some state (whose
    /// state and queues the table then takes from the kernel). Returns
    /// whether the table held a close the kernel never reported (the socket was removed).
    pub fn closing_checked(&mut self, asked: &InetSocket, found: Option<InetSocket>, now_ns: u64) -> bool {
        match found {
            Some(s) if !s.is_mini() => {
                self.closing_checked.insert(asked.cookie, now_ns);
                if let Some(e) = self.sockets.get_mut(&asked.cookie) {
                    // Transitions the kernel did not report: its state is the truth; and
                    // the queues as of this check (a FIN queued after the transition).
                    (e.sock.state, e.sock.rqueue, e.sock.wqueue) = (s.state, s.rqueue, s.wqueue);
                    self.changed(asked.cookie);
                }
                false
            }
            // Gone, or handed to a timewait socket (which the mini-socket checks place).
            _ => {
                self.closing_checked.remove(&asked.cookie);
                let removed = self.sockets.remove(&asked.cookie).is_some();
                if removed {
                    self.changed(asked.cookie);
                }
                removed
            }
        }
    }

    /// Removes the full sockets whose cookie the kernel now shows on a timewait socket
    /// (one a dump or lookup confirmed: a timewait socket takes over its full socket's
    /// cookie). Their close was never reported: under load the kernel sometimes moves an
    /// orphaned FIN-WAIT-1 socket on to TIME-WAIT without the tracepoint seeing its last
    /// transitions, and no counter says so. Returns their cookies.
    ///
    /// Only the timewait sockets confirmed since the last call can be such: a full socket
    /// that comes later (an event) removes the mini socket of its cookie.
    pub fn drop_taken_over(&mut self) -> Vec<u64> {
        let confirmed = self.minis.take_confirmed();
        let (sockets, minis) = (&self.sockets, &self.minis);
        let gone: Vec<u64> = confirmed
            .into_iter()
            .filter(|c| {
                minis.get(*c).is_some_and(|m| m.kind == minis::Kind::Timewait && m.expires_ns.is_some())
                    && sockets.contains_key(c)
            })
            .collect();
        for &c in &gone {
            self.sockets.remove(&c);
            self.changed(c);
        }
        gone
    }

    /// Applies an event taken from the ring while the dump that seeded this table was
    /// made: it may be older than the dump. A socket the dump does not have either opened
    /// after it (its opening transition comes first) or was gone by then: a later
    /// transition of an unknown socket is not taken as a new socket (its close may have
    /// been lost, which is what the dump repaired).
    pub fn apply_replayed(&mut self, t: &Transition) -> Applied {
        let opening =
            t.old == TcpState::Close as u8 || t.old == TcpState::Listen as u8 || t.new == TcpState::Listen as u8;
        if t.is_transition() && !opening && !self.sockets.contains_key(&t.cookie) {
            return Applied::Unknown;
        }
        self.apply(t)
    }

    /// Applies one event, by the rules of [`tcp`] (shared with the timeline's replay).
    pub fn apply(&mut self, t: &Transition) -> Applied {
        if t.request && t.is_inet() {
            self.minis.request(t.as_row(), t.ts_ns);
            return Applied::Request;
        }
        if t.accept || !t.is_inet() || self.netns.is_some_and(|ns| ns != t.netns) {
            return Applied::Foreign;
        }
        self.changed(t.cookie);
        if let Change::Closed { to_time_wait } = tcp::change(t.old, t.new) {
            let removed = self.sockets.remove(&t.cookie);
            // A close can come after the kernel released the local port (its event then
            // says port 0): the tuple is the one the table knew.
            let mut closed = t.as_row();
            if closed.sport == 0
                && let Some(e) = &removed
            {
                (closed.src, closed.sport, closed.dst, closed.dport) =
                    (e.sock.src, e.sock.sport, e.sock.dst, e.sock.dport);
            }
            if t.old == TcpState::LastAck as u8 {
                self.minis.fin_sender_closed(&closed);
            }
            // A timewait socket takes the tuple and the cookie over (see `minis`); without
            // a port it cannot be placed, and the kernel's count says so at the next query.
            if to_time_wait && closed.sport != 0 {
                self.minis.timewait_from_close(&closed, t.old, t.ts_ns);
            }
            return match removed {
                Some(_) => Applied::Removed { to_time_wait },
                None => Applied::Unknown,
            };
        }
        let tuple = (t.sport != 0).then_some((t.src, t.sport, t.dst, t.dport));
        let slot = self.sockets.entry(t.cookie);
        // The mini socket it replaces (of its cookie or tuple) went at its first event
        // with a port: later ones need not look (two lookups in maps that hold every
        // TIME-WAIT socket, at most events).
        if !matches!(&slot, Slot::Occupied(e) if e.get().sock.sport != 0) {
            self.minis.full_socket(t.cookie, tuple);
        }
        if t.old == TcpState::CloseWait as u8 && t.new == TcpState::LastAck as u8 {
            self.minis.peer_sent_fin(&t.as_row(), t.ts_ns);
        }
        match slot {
            Slot::Occupied(mut e) => {
                let e = e.get_mut();
                e.sock = tcp::moved(Some(&e.sock), t.as_row());
                e.since_ns = t.ts_ns;
                Applied::Updated
            }
            Slot::Vacant(v) => {
                v.insert(Entry { sock: t.as_row(), since_ns: t.ts_ns });
                Applied::Inserted
            }
        }
    }

    /// Sockets of `family` whose state is in `states` (bit n = state n), limited to the
    /// states the table answers for. Order: listeners first (as the kernel dumps the
    /// listening hash before the established hash), then by local and peer address.
    pub fn snapshot(&mut self, family: u16, states: u32) -> Vec<InetSocket> {
        self.snapshot_where(family, states, |_| true)
    }

    /// As [`Table::snapshot`], keeping only the sockets `wanted` accepts (checked before
    /// anything is copied). Full sockets only: mini sockets are [`Table::minis`].
    pub fn snapshot_where(
        &mut self,
        family: u16,
        states: u32,
        wanted: impl Fn(&InetSocket) -> bool,
    ) -> Vec<InetSocket> {
        let mask = states & TABLE_STATES;
        let sockets = &self.sockets;
        let order = self.order.get_or_insert_with(|| {
            let mut all: Vec<&InetSocket> = sockets.values().map(|e| &e.sock).collect();
            ready::sort_in_dump_order(&mut all);
            let (v6, v4): (Vec<&InetSocket>, Vec<&InetSocket>) = all.into_iter().partition(|s| s.family == AF_INET6);
            [v4.iter().map(|s| s.cookie).collect(), v6.iter().map(|s| s.cookie).collect()]
        });
        order[usize::from(family == AF_INET6)]
            .iter()
            .filter_map(|c| sockets.get(c))
            .filter(|e| e.sock.family == family && mask & (1 << e.sock.state) != 0 && wanted(&e.sock))
            .map(|e| e.sock.clone())
            .collect()
    }
}

/// Whether the ready answer shows full socket `s` (one in TIME-WAIT is a mini socket's).
fn shown(s: &InetSocket) -> bool {
    s.state != TcpState::TimeWait as u8
}

/// Where [`Namespaces::apply`] sent an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routed {
    /// Applied to the table of its namespace.
    Applied(Applied),
    /// Its namespace is not tracked yet: held until the namespace is seeded
    /// ([`Namespaces::take_waiting`], [`Namespaces::seed`]).
    Held,
    /// Its namespace could not be seeded lately (or the event names none): dropped. A
    /// later seed comes from a fresh dump, which includes its effect.
    Dropped,
}

/// The agent's tables, one per network namespace, keyed by the namespace's inode number.
///
/// A namespace is tracked once a dump of it seeded its table. An event of a namespace
/// not tracked yet is held (in ring order) until the agent has dumped that namespace;
/// the held events are then applied over the dump, exactly as the events that arrive
/// during the agent's first seed are. A namespace the agent could not dump is marked
/// unreachable for a while: its events are dropped rather than held (and no new dump is
/// tried for each of them).
#[derive(Debug)]
pub struct Namespaces {
    own: u32,
    tables: FxHashMap<u32, Table>,
    waiting: BTreeMap<u32, Vec<Transition>>,
    /// Namespace -> CLOCK_MONOTONIC ns until which its events are dropped.
    unreachable: FxHashMap<u32, u64>,
    /// Network namespace cookie -> inode, for request events (which name their
    /// namespace by cookie).
    cookies: FxHashMap<u64, u32>,
}

impl Namespaces {
    /// The tables of an agent in namespace `own`, whose table always exists (empty until
    /// seeded).
    #[must_use]
    pub fn new(own: u32) -> Namespaces {
        Namespaces {
            own,
            tables: FxHashMap::from_iter([(own, Table::new(Some(own)))]),
            waiting: BTreeMap::new(),
            unreachable: FxHashMap::default(),
            cookies: FxHashMap::default(),
        }
    }

    /// Namespace `netns`'s cookie is `cookie` (SO_NETNS_COOKIE of a socket in it).
    pub fn learn_cookie(&mut self, netns: u32, cookie: u64) {
        self.cookies.insert(cookie, netns);
    }

    /// The agent's own namespace.
    #[must_use]
    pub fn own(&self) -> u32 {
        self.own
    }

    /// The agent's own namespace's table.
    pub fn own_table(&mut self) -> &mut Table {
        self.tables.entry(self.own).or_insert_with(|| Table::new(Some(self.own)))
    }

    #[must_use]
    pub fn get(&self, netns: u32) -> Option<&Table> {
        self.tables.get(&netns)
    }

    pub fn get_mut(&mut self, netns: u32) -> Option<&mut Table> {
        self.tables.get_mut(&netns)
    }

    #[must_use]
    pub fn is_tracked(&self, netns: u32) -> bool {
        self.tables.contains_key(&netns)
    }

    /// Whether any tracked namespace's table has the socket `cookie` (cookies are
    /// unique across namespaces).
    #[must_use]
    pub fn contains(&self, cookie: u64) -> bool {
        self.tables.values().any(|t| t.get(cookie).is_some())
    }

    /// Sockets in every table.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tables.values().map(Table::len).sum()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sockets of every table by state (kernel state number).
    #[must_use]
    pub fn count_by_state(&self) -> [u64; 16] {
        let mut counts = [0; 16];
        for t in self.tables.values() {
            t.count_by_state(&mut counts);
        }
        counts
    }

    /// (namespace, sockets) of every tracked namespace, by namespace.
    #[must_use]
    pub fn counts(&self) -> Vec<(u32, usize)> {
        let mut v: Vec<(u32, usize)> = self.tables.iter().map(|(&ns, t)| (ns, t.len())).collect();
        v.sort_unstable();
        v
    }

    /// Tracked namespaces other than the agent's own, by namespace.
    #[must_use]
    pub fn others(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.tables.keys().copied().filter(|&ns| ns != self.own).collect();
        v.sort_unstable();
        v
    }

    /// Applies `t` to its namespace's table, or holds it until that namespace is
    /// seeded. `now_ns`: CLOCK_MONOTONIC, for the unreachable marks.
    /// [`Namespaces::apply`] for an event taken from the ring while the tables were
    /// dumped ([`Table::apply_replayed`]).
    pub fn apply_replayed(&mut self, t: &Transition, now_ns: u64) -> Routed {
        match self.tables.get_mut(&t.netns) {
            Some(table) if !t.request => Routed::Applied(table.apply_replayed(t)),
            _ => self.apply(t, now_ns),
        }
    }

    pub fn apply(&mut self, t: &Transition, now_ns: u64) -> Routed {
        if t.request {
            // A namespace not tracked yet gets its requests from its seed dump.
            return match self.cookies.get(&t.netns_cookie).and_then(|ns| self.tables.get_mut(ns)) {
                Some(table) => Routed::Applied(table.apply(t)),
                None => Routed::Dropped,
            };
        }
        if let Some(table) = self.tables.get_mut(&t.netns) {
            return Routed::Applied(table.apply(t));
        }
        // 0: the program could not read the namespace; accept notices and other
        // families change no table, so they need no seed either.
        if t.netns == 0
            || t.accept
            || !t.is_inet()
            || self.unreachable.get(&t.netns).is_some_and(|&until| now_ns < until)
        {
            return Routed::Dropped;
        }
        self.waiting.entry(t.netns).or_default().push(t.clone());
        Routed::Held
    }

    /// The namespaces that have events waiting for a seed, with those events in ring
    /// order. The caller dumps each and calls [`Namespaces::seed`] or
    /// [`Namespaces::mark_unreachable`].
    pub fn take_waiting(&mut self) -> BTreeMap<u32, Vec<Transition>> {
        std::mem::take(&mut self.waiting)
    }

    /// Seeds (or reseeds) namespace `netns` from `dump`, made after every event in
    /// `replay` was emitted, then applies `replay` over it in order. The namespace is
    /// tracked from here on.
    pub fn seed(&mut self, netns: u32, dump: Vec<InetSocket>, replay: &[Transition]) {
        self.unreachable.remove(&netns);
        let table = self.tables.entry(netns).or_insert_with(|| Table::new(Some(netns)));
        table.seed(dump);
        for t in replay {
            table.apply_replayed(t);
        }
    }

    /// `netns` could not be dumped: stop tracking it (its table could go wrong unseen),
    /// and drop its events until `until_ns` (CLOCK_MONOTONIC). The agent's own namespace
    /// is always tracked: it is only emptied.
    pub fn mark_unreachable(&mut self, netns: u32, until_ns: u64) {
        if netns == self.own {
            self.own_table().seed(Vec::new());
            return;
        }
        self.tables.remove(&netns);
        self.unreachable.insert(netns, until_ns);
    }

    /// Stops tracking `netns` (it is gone). Not the agent's own namespace.
    pub fn forget(&mut self, netns: u32) -> bool {
        self.cookies.retain(|_, ns| *ns != netns);
        netns != self.own && self.tables.remove(&netns).is_some()
    }

    /// Drops unreachable marks that expired before `now_ns`.
    pub fn expire_marks(&mut self, now_ns: u64) {
        self.unreachable.retain(|_, &mut until| now_ns < until);
    }
}

/// Listeners first, then everything else, each group by (local, peer).
pub fn sort_like_dump(socks: &mut [InetSocket]) {
    socks.sort_unstable_by(ready::dump_order);
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use sockstat_ebpf::{AF_INET, AF_INET6};

    use super::*;

    const NS: u32 = 4_026_532_000;

    fn ev(cookie: u64, old: TcpState, new: TcpState, sport: u16, dport: u16) -> Transition {
        Transition {
            netns: NS,
            pid: 42,
            tid: 42,
            comm: "test".into(),
            dst: if dport == 0 { "0.0.0.0".parse().unwrap() } else { "127.0.0.1".parse().unwrap() },
            wqueue: if new == TcpState::Listen { 128 } else { 0 },
            ..Transition::fixture(cookie, cookie * 10, old, new, (sport, dport))
        }
    }

    fn states(t: &mut Table, family: u16) -> Vec<(u16, u16, u8)> {
        t.snapshot(family, !0).iter().map(|s| (s.sport, s.dport, s.state)).collect()
    }

    #[test]
    fn connection_life_and_time_wait_handoff() {
        use TcpState::*;
        let mut t = Table::new(Some(NS));
        assert_eq!(t.apply(&ev(1, Close, Listen, 8080, 0)), Applied::Inserted);
        assert_eq!(t.apply(&ev(2, Close, SynSent, 0, 8080)), Applied::Inserted);
        // SYN-SENT is answered by the kernel at query time: not in the snapshot.
        assert_eq!(states(&mut t, AF_INET), vec![(8080, 0, Listen as u8)]);
        assert_eq!(t.apply(&ev(2, SynSent, Established, 50000, 8080)), Applied::Updated);
        assert_eq!(t.apply(&ev(3, Listen, SynRecv, 8080, 50000)), Applied::Inserted);
        assert_eq!(states(&mut t, AF_INET).len(), 2, "SYN-RECV is answered by the kernel");
        assert_eq!(t.apply(&ev(3, SynRecv, Established, 8080, 50000)), Applied::Updated);
        assert_eq!(
            states(&mut t, AF_INET),
            vec![(8080, 0, Listen as u8), (8080, 50000, Established as u8), (50000, 8080, Established as u8)]
        );
        // Active close by the client: it ends in TIME-WAIT, which is not a table state.
        t.apply(&ev(2, Established, FinWait1, 50000, 8080));
        t.apply(&ev(3, Established, CloseWait, 8080, 50000));
        t.apply(&ev(2, FinWait1, FinWait2, 50000, 8080));
        t.apply(&ev(3, CloseWait, LastAck, 8080, 50000));
        assert_eq!(t.apply(&ev(2, FinWait2, Close, 50000, 8080)), Applied::Removed { to_time_wait: true });
        assert_eq!(t.apply(&ev(3, LastAck, Close, 8080, 50000)), Applied::Removed { to_time_wait: false });
        assert_eq!(states(&mut t, AF_INET), vec![(8080, 0, Listen as u8)]);
        // Listener close.
        assert_eq!(t.apply(&ev(1, Listen, Close, 8080, 0)), Applied::Removed { to_time_wait: false });
        assert!(t.is_empty());
        assert_eq!(t.apply(&ev(1, Listen, Close, 8080, 0)), Applied::Unknown);
    }

    #[test]
    fn snapshot_where_filters_before_copying_and_keeps_the_order() {
        use TcpState::*;
        let mut t = Table::new(Some(NS));
        t.apply(&ev(1, Close, Listen, 8080, 0));
        t.apply(&ev(2, SynSent, Established, 50001, 8080));
        t.apply(&ev(3, SynSent, Established, 50000, 9090));
        let filter = crate::filter::parse(&["dport", "=", ":8080"], 0).unwrap();
        let got: Vec<u16> = t.snapshot_where(AF_INET, !0, |s| filter.matches(s)).iter().map(|s| s.sport).collect();
        assert_eq!(got, vec![50001]);
        let all: Vec<u16> = t.snapshot(AF_INET, !0).iter().map(|s| s.sport).collect();
        assert_eq!(all, vec![8080, 50000, 50001], "listeners first, then by local address");
    }

    #[test]
    fn reused_tuple_is_a_new_socket() {
        use TcpState::*;
        let mut t = Table::new(Some(NS));
        t.apply(&ev(10, SynSent, Established, 50001, 9000));
        // Same tuple, new socket (new cookie) before the old one's close is seen.
        t.apply(&ev(11, SynSent, Established, 50001, 9000));
        assert_eq!(t.len(), 2);
        t.apply(&ev(10, Established, Close, 50001, 9000));
        assert_eq!(t.len(), 1);
        assert!(t.get(11).is_some());
        assert_eq!(states(&mut t, AF_INET), vec![(50001, 9000, Established as u8)]);
    }

    #[test]
    fn other_namespaces_and_families_are_kept_apart() {
        use TcpState::*;
        let mut t = Table::new(Some(NS));
        let mut foreign = ev(5, Close, Listen, 22, 0);
        foreign.netns = NS + 1;
        assert_eq!(t.apply(&foreign), Applied::Foreign);
        let mut v6 = ev(6, Close, Listen, 443, 0);
        v6.family = AF_INET6;
        v6.src = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
        t.apply(&v6);
        assert!(states(&mut t, AF_INET).is_empty());
        assert_eq!(states(&mut t, AF_INET6), vec![(443, 0, Listen as u8)]);
    }

    #[test]
    fn seed_keeps_full_sockets_and_events_replay_over_it() {
        use TcpState::*;
        let mut t = Table::new(Some(NS));
        let mk = |cookie, state: TcpState, sport| InetSocket {
            family: AF_INET,
            protocol: 6,
            state: state as u8,
            src: "127.0.0.1".parse().unwrap(),
            sport,
            dst: "127.0.0.1".parse().unwrap(),
            dport: 1,
            v6only: false,
            ifindex: 3,
            rqueue: 0,
            wqueue: 0,
            cookie,
            uid: 1000,
            inode: 77,
            timer: 0,
            retrans: 0,
            expires_ms: 0,
            source: Source::Kernel,
            ext: None,
        };
        t.seed(vec![mk(1, Established, 100), mk(2, TimeWait, 200), mk(3, Listen, 300)]);
        assert_eq!(t.len(), 2, "TIME-WAIT is a mini-socket, not held by the table");
        // An event from before the dump, replayed after it, ends in the same state.
        t.apply(&ev(1, SynSent, Established, 100, 1));
        let e = t.get(1).unwrap();
        assert_eq!((e.sock.uid, e.sock.inode), (1000, 77), "dump-only fields survive updates");
        assert_eq!(e.sock.ifindex, 0, "the bound device comes from the event");
        t.apply(&ev(1, Established, FinWait1, 100, 1));
        assert_eq!(t.get(1).unwrap().sock.state, FinWait1 as u8);
        assert_eq!(t.get(3).unwrap().sock.source, Source::Table);
    }

    /// Each family's rows of a ready answer, and its row count by state.
    fn ready_rows(r: &Ready) -> Vec<(Vec<u8>, Vec<usize>)> {
        [AF_INET, AF_INET6]
            .into_iter()
            .map(|family| {
                let mut out = Vec::new();
                r.answer(family, !0, None, &mut out);
                (out, (0..32).map(|s| r.bytes_in(family, 1 << s)).collect())
            })
            .collect()
    }

    #[test]
    fn the_ready_answer_after_changes_equals_one_made_whole() {
        use TcpState::*;
        let mut t = Table::new(Some(NS));
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let seed: Vec<InetSocket> = (1..=40u16)
            .map(|i| InetSocket::tcp(AF_INET, Established as u8, (lo, 40_000 + i), (lo, 8080), u64::from(i)))
            .chain([
                InetSocket::tcp(AF_INET, Listen as u8, (lo, 8080), ("0.0.0.0".parse().unwrap(), 0), 100),
                InetSocket::tcp(AF_INET, TimeWait as u8, (lo, 45_000), (lo, 8080), 101),
            ])
            .collect();
        t.seed(seed);
        let check = |t: &mut Table, step: &str| {
            let (got, want) = (t.ready(), Ready::build(t.rows_now(), (0, 0)));
            assert!(ready_rows(&got) == ready_rows(&want), "after {step}: the ready answer differs from a whole one");
        };
        check(&mut t, "the seed");
        // New connections (a new port sorts among the old rows), closes into TIME-WAIT,
        // a request and the full socket that completes it, a listener that closes, a
        // socket whose state a kernel check corrected, one it found gone.
        t.apply(&ev(200, SynSent, Established, 40_020, 8080));
        t.apply(&ev(3, Established, FinWait1, 40_003, 8080));
        t.apply(&ev(3, FinWait1, FinWait2, 40_003, 8080));
        check(&mut t, "new and closing connections");
        t.apply(&ev(3, FinWait2, Close, 40_003, 8080));
        t.apply(&ev(4, Established, CloseWait, 40_004, 8080));
        t.apply(&ev(4, CloseWait, LastAck, 40_004, 8080));
        t.apply(&Transition { request: true, ..ev(300, Close, NewSynRecv, 8080, 50_000) });
        check(&mut t, "a close into TIME-WAIT and a request");
        t.apply(&ev(301, SynRecv, Established, 8080, 50_000));
        t.apply(&ev(100, Listen, Close, 8080, 0));
        let five = t.get(5).map(|e| e.sock.clone()).unwrap();
        t.closing_checked(&five, Some(InetSocket { state: CloseWait as u8, ..five.clone() }), 1_000);
        let six = t.get(6).map(|e| e.sock.clone()).unwrap();
        t.closing_checked(&six, None, 1_000);
        check(&mut t, "a completed request, a closed listener, kernel checks");
        t.minis.remove(3);
        check(&mut t, "a timewait socket gone");
        // A SYN on the tuple of a timewait socket: the request takes the tuple over.
        t.apply(&ev(400, Established, FinWait1, 8080, 50_001));
        t.apply(&ev(400, FinWait1, FinWait2, 8080, 50_001));
        t.apply(&ev(400, FinWait2, Close, 8080, 50_001));
        check(&mut t, "another close into a timewait socket");
        t.apply(&Transition { request: true, ..ev(401, Close, NewSynRecv, 8080, 50_001) });
        check(&mut t, "a request on a timewait socket's tuple");
    }

    #[test]
    fn a_full_socket_whose_cookie_a_timewait_socket_has_is_gone() {
        use TcpState::*;
        let mut t = Table::new(Some(NS));
        t.apply(&ev(1, Close, Listen, 8080, 0));
        t.apply(&ev(2, SynSent, Established, 50000, 8080));
        t.apply(&ev(2, Established, FinWait1, 50000, 8080));
        t.apply(&ev(3, SynSent, Established, 50001, 8080));
        // Socket 2's FIN-WAIT-1 -> FIN-WAIT-2 -> CLOSE never came; a dump shows its
        // timewait socket (same cookie, same tuple).
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let tw = InetSocket { cookie: 2, ..InetSocket::tcp(AF_INET, TimeWait as u8, (lo, 50000), (lo, 8080), 0) };
        t.minis.reseed(&[tw], &[minis::Kind::Timewait], 10);
        assert_eq!(t.drop_taken_over(), vec![2]);
        assert!(t.get(2).is_none());
        assert_eq!(ports(&mut t), [(8080, Listen as u8), (50001, Established as u8)]);
        // A timewait socket modelled from a reported close confirms nothing: no full
        // socket of its cookie is left to remove, and none other goes.
        assert!(t.drop_taken_over().is_empty());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn sockets_long_in_a_closing_state_are_checked_and_the_gone_ones_leave() {
        use TcpState::*;
        let mut t = Table::new(Some(NS));
        // ev(cookie, ...) stamps its transition at cookie * 10 ns.
        t.apply(&ev(1, Close, Listen, 8080, 0));
        t.apply(&ev(2, Established, FinWait1, 50000, 8080));
        t.apply(&ev(3, Established, FinWait2, 50001, 8080));
        t.apply(&ev(4, SynSent, Established, 50002, 8080));
        t.apply(&ev(5, CloseWait, LastAck, 50003, 8080));
        // Not yet long enough in their state: nothing to check.
        assert!(t.closing_to_check(CLOSING_CHECK_NS, 10).is_empty());
        let now = 100 + CLOSING_CHECK_NS;
        let due: Vec<u64> = t.closing_to_check(now, 10).iter().map(|s| s.cookie).collect();
        assert_eq!(due, [2, 3, 5], "listeners and established sockets are never asked about");
        assert_eq!(t.closing_to_check(now, 2).len(), 2, "at most the budget");
        // 2: gone without a word; 3: still there, in FIN-WAIT-2; 5: the kernel has it in
        // CLOSING, not the LAST-ACK the table has: the kernel's state wins.
        assert!(t.closing_checked(&t.get(2).unwrap().sock.clone(), None, now));
        let three = t.get(3).unwrap().sock.clone();
        assert!(!t.closing_checked(&three, Some(three.clone()), now));
        let five = t.get(5).unwrap().sock.clone();
        let closing = InetSocket { state: Closing as u8, ..five.clone() };
        assert!(!t.closing_checked(&five, Some(closing), now));
        assert!(t.get(2).is_none());
        assert_eq!(t.get(5).unwrap().sock.state, Closing as u8);
        // Checked ones wait another interval; the table's others are untouched.
        assert!(t.closing_to_check(now + 1, 10).is_empty());
        assert_eq!(t.closing_to_check(now + CLOSING_CHECK_NS, 10).len(), 2);
        assert_eq!(t.len(), 4);
    }

    fn in_ns(netns: u32, t: Transition) -> Transition {
        Transition { netns, ..t }
    }

    fn ports(t: &mut Table) -> Vec<(u16, u8)> {
        t.snapshot(AF_INET, !0).iter().map(|s| (s.sport, s.state)).collect()
    }

    #[test]
    fn namespaces_are_partitioned_and_new_ones_held_until_seeded() {
        use TcpState::*;
        const OTHER: u32 = NS + 7;
        let mut n = Namespaces::new(NS);
        assert_eq!(n.apply(&ev(1, Close, Listen, 80, 0), 0), Routed::Applied(Applied::Inserted));
        // Same port, another namespace: not this table's socket; held for a seed.
        assert_eq!(n.apply(&in_ns(OTHER, ev(2, Close, Listen, 80, 0)), 0), Routed::Held);
        assert_eq!(n.apply(&in_ns(OTHER, ev(3, SynSent, Established, 5000, 80)), 0), Routed::Held);
        assert!(!n.is_tracked(OTHER));
        assert_eq!(n.counts(), vec![(NS, 1)]);
        let waiting = n.take_waiting();
        assert_eq!(waiting.keys().copied().collect::<Vec<_>>(), vec![OTHER]);
        assert!(n.take_waiting().is_empty(), "taken once");
        // The dump (made after the held events) has the listener; socket 3 closed
        // before it (its close is still in the ring). The held events replay over the
        // dump, and do not bring socket 3 back.
        let dumped = InetSocket {
            source: Source::Kernel,
            ..InetSocket::tcp(
                AF_INET,
                Listen as u8,
                ("0.0.0.0".parse().unwrap(), 80),
                ("0.0.0.0".parse().unwrap(), 0),
                2,
            )
        };
        n.seed(OTHER, vec![dumped], &waiting[&OTHER]);
        assert!(n.is_tracked(OTHER));
        assert_eq!(ports(n.get_mut(OTHER).unwrap()), vec![(80, Listen as u8)]);
        assert_eq!(ports(n.own_table()), vec![(80, Listen as u8)], "the own table is untouched");
        assert_eq!(n.counts(), vec![(NS, 1), (OTHER, 1)]);
        assert_eq!(n.len(), 2);
        // Later events go straight to the table.
        assert_eq!(n.apply(&in_ns(OTHER, ev(3, Established, Close, 5000, 80)), 0), Routed::Applied(Applied::Unknown));
        assert_eq!(n.apply(&in_ns(OTHER, ev(4, Close, SynSent, 5001, 80)), 0), Routed::Applied(Applied::Inserted));
        assert_eq!(n.others(), vec![OTHER]);
    }

    #[test]
    fn unreachable_namespaces_drop_events_until_the_mark_expires() {
        use TcpState::*;
        const OTHER: u32 = NS + 9;
        let mut n = Namespaces::new(NS);
        n.apply(&in_ns(OTHER, ev(1, Close, Listen, 22, 0)), 0);
        n.take_waiting();
        n.mark_unreachable(OTHER, 1_000);
        assert_eq!(n.apply(&in_ns(OTHER, ev(2, Close, Listen, 23, 0)), 999), Routed::Dropped);
        assert!(n.take_waiting().is_empty());
        n.expire_marks(999);
        assert_eq!(
            n.apply(&in_ns(OTHER, ev(2, Close, Listen, 23, 0)), 1_000),
            Routed::Held,
            "asked again once the mark expired"
        );
        // A seed lifts the mark; a tracked namespace that becomes unreachable is no
        // longer tracked (its table could go wrong unseen).
        let held = n.take_waiting();
        n.seed(OTHER, Vec::new(), &held[&OTHER]);
        assert_eq!(n.counts(), vec![(NS, 0), (OTHER, 1)]);
        n.mark_unreachable(OTHER, 5_000);
        assert!(!n.is_tracked(OTHER));
        // Namespace 0 (unreadable) and accept notices never ask for a seed.
        assert_eq!(n.apply(&in_ns(0, ev(3, Close, Listen, 24, 0)), 0), Routed::Dropped);
        let accept = Transition { accept: true, ..in_ns(NS + 10, ev(4, Close, Close, 25, 0)) };
        assert_eq!(n.apply(&accept, 0), Routed::Dropped);
    }

    #[test]
    fn the_own_namespace_is_never_forgotten() {
        use TcpState::*;
        const OTHER: u32 = NS + 3;
        let mut n = Namespaces::new(NS);
        n.apply(&ev(1, Close, Listen, 80, 0), 0);
        assert!(!n.forget(NS));
        n.mark_unreachable(NS, u64::MAX);
        assert!(n.is_tracked(NS) && n.own_table().is_empty(), "emptied, still tracked");
        n.seed(OTHER, Vec::new(), &[]);
        assert!(n.forget(OTHER));
        assert!(!n.forget(OTHER));
        assert_eq!(n.counts(), vec![(NS, 0)]);
    }
}
#[cfg(test)]
mod mini_tests {
    use super::*;
    use sockstat_ebpf::TcpState::*;

    fn ev(cookie: u64, old: TcpState, new: TcpState, sport: u16, dport: u16) -> Transition {
        Transition { netns: 9, ..Transition::fixture(cookie, cookie * 10, old, new, (sport, dport)) }
    }

    #[test]
    fn closes_make_timewait_minis() {
        let mut t = Table::new(Some(9));
        t.apply(&ev(1, Close, Listen, 7000, 0));
        t.apply(&ev(2, Close, SynSent, 5000, 7000));
        t.apply(&ev(2, SynSent, Established, 5000, 7000));
        t.apply(&ev(3, Listen, SynRecv, 7000, 5000));
        t.apply(&ev(3, SynRecv, Established, 7000, 5000));
        t.apply(&ev(2, Established, FinWait1, 5000, 7000));
        t.apply(&ev(3, Established, CloseWait, 7000, 5000));
        t.apply(&ev(2, FinWait1, FinWait2, 5000, 7000));
        t.apply(&ev(2, FinWait2, Close, 5000, 7000));
        assert_eq!(t.minis.len(), 1);
        t.apply(&ev(3, CloseWait, LastAck, 7000, 5000));
        t.apply(&ev(3, LastAck, Close, 7000, 5000));
        assert_eq!(t.minis.len(), 1);
        assert_eq!(t.minis.iter().next().unwrap().sock.state, TimeWait as u8);
    }
}

#[cfg(test)]
mod replay_tests {
    use super::*;
    use sockstat_ebpf::TcpState::*;

    fn ev(cookie: u64, old: TcpState, new: TcpState, sport: u16, dport: u16) -> Transition {
        Transition { netns: 9, ..Transition::fixture(cookie, cookie * 10, old, new, (sport, dport)) }
    }

    #[test]
    fn replayed_events_open_sockets_but_do_not_bring_closed_ones_back() {
        let mut t = Table::new(Some(9));
        t.seed(Vec::new());
        // Closed before the dump, its close lost: its FIN-WAIT-1 must not bring it back.
        assert_eq!(t.apply_replayed(&ev(1, Established, FinWait1, 5000, 80)), Applied::Unknown);
        // Opened after the dump.
        assert_eq!(t.apply_replayed(&ev(2, Close, SynSent, 5001, 80)), Applied::Inserted);
        assert_eq!(t.apply_replayed(&ev(2, SynSent, Established, 5001, 80)), Applied::Updated);
        assert_eq!(t.apply_replayed(&ev(3, Listen, SynRecv, 80, 5001)), Applied::Inserted);
        assert_eq!(t.len(), 2);
    }
}
