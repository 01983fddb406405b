//! The writer's view of every socket in progress: its transitions folded, as they come,
//! into the one row it gets (packed as `codec` says), with its owner (by `lifetime`'s
//! rules), until it closes. Pure: the writer turns what this hands out into SQL.

use std::{borrow::Cow, net::IpAddr};

use rustc_hash::FxHashMap;
use sockstat_ebpf::TcpState;

use crate::{
    bpf::stream::Transition,
    timeline::{
        codec::{self, Path, STEP_UNIT_NS, Trailer},
        lifetime::{Listeners, Opened, OwnerSource, is_listener_transition, opened},
    },
};

/// A task name as the kernel keeps it (TASK_COMM_LEN), NUL-padded.
pub type Comm = [u8; 16];

/// A task that owns sockets: pid 0 and no name when unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Task {
    pub pid: u32,
    pub comm: Comm,
}

impl Task {
    fn of(t: &Transition) -> Task {
        let mut comm = [0u8; 16];
        let text = t.comm.text();
        let b = text.as_bytes();
        let n = b.len().min(comm.len());
        comm[..n].copy_from_slice(&b[..n]);
        Task { pid: t.pid, comm }
    }

    pub fn comm_str(&self) -> Cow<'_, str> {
        let n = self.comm.iter().position(|&b| b == 0).unwrap_or(self.comm.len());
        String::from_utf8_lossy(&self.comm[..n])
    }

    pub fn is_unknown(&self) -> bool {
        *self == Task::default()
    }
}

/// One socket's row in the making.
#[derive(Clone, Debug)]
pub struct Sock {
    pub cookie: u64,
    pub netns: u32,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// CLOCK_MONOTONIC ns of the first and the last transition.
    pub first_ns: u64,
    pub last_ns: u64,
    pub path: Path,
    /// `steps` entries of the transitions between the first and the last.
    steps: Vec<u8>,
    /// Offset of the last entry in `steps`, in STEP_UNIT_NS units.
    step_units: u64,
    /// Socket options, and the queues of the first and the last transition.
    pub trailer: Trailer,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// The socket's cgroup v2 id (0: unknown): the same at every transition, kept from
    /// the first that carried one.
    pub cgroup_id: u64,
    /// From its CLOSE transition: the errno the kernel left (0: none), retransmits and
    /// smoothed RTT (microseconds).
    pub error: u32,
    pub retrans: u32,
    pub srtt_us: u32,
    pub owner: Task,
    pub source: OwnerSource,
    /// A listening socket, not a connection.
    pub listener: bool,
    /// Ended with a CLOSE transition (not given up, not split).
    pub finished: bool,
    /// The writer stored it as open (it has an `open_connections` row).
    pub stored: bool,
    /// Changed since the writer last stored it.
    pub dirty: bool,
    /// The first snapshot at which it was open, or was in the kernel's dump before
    /// the writer first saw it (see `schema`: `crossings`).
    pub crossing: Option<i64>,
}

fn queues(t: &Transition) -> (u32, u32) {
    // A CLOSE transition's queues describe nothing: the full socket is gone.
    if t.new == TcpState::Close as u8 { (0, 0) } else { (t.rqueue, t.wqueue) }
}

impl Sock {
    fn start(t: &Transition, owner: Task, source: OwnerSource, listener: bool) -> Sock {
        let mut path = Path::default();
        path.push(t.old);
        path.push(t.new);
        Sock {
            cookie: t.cookie,
            netns: t.netns,
            src: t.src,
            sport: t.sport,
            dst: t.dst,
            dport: t.dport,
            first_ns: t.ts_ns,
            last_ns: t.ts_ns,
            path,
            steps: Vec::new(),
            step_units: 0,
            trailer: Trailer { v6only: t.v6only, ifindex: t.ifindex, first_queues: queues(t), last_queues: queues(t) },
            bytes_sent: t.bytes_acked,
            bytes_received: t.bytes_received,
            cgroup_id: t.cgroup_id,
            error: t.error,
            retrans: t.retrans,
            srtt_us: t.srtt_us,
            owner,
            source,
            listener,
            finished: false,
            stored: false,
            dirty: true,
            crossing: None,
        }
    }

    /// Adds a later transition; false (nothing added) when the path is full.
    fn add(&mut self, t: &Transition) -> bool {
        if self.path.len() >= codec::MAX_STATES {
            return false;
        }
        // The current last transition becomes one between the first and the new last.
        if self.path.len() >= 3 {
            let units = self.last_ns.saturating_sub(self.first_ns) / STEP_UNIT_NS;
            codec::put_step(&mut self.steps, units - self.step_units.min(units), self.trailer.last_queues);
            self.step_units = units;
        }
        self.path.push(t.new);
        self.last_ns = self.last_ns.max(t.ts_ns);
        self.trailer.last_queues = queues(t);
        // The first transition can come before the kernel filled in the tuple, and CLOSE
        // comes after it released the port: keep the last complete one.
        if t.sport != 0 && t.dport != 0 {
            (self.src, self.sport, self.dst, self.dport) = (t.src, t.sport, t.dst, t.dport);
        }
        if t.new != TcpState::Close as u8 {
            (self.trailer.v6only, self.trailer.ifindex) = (t.v6only, t.ifindex);
        }
        self.bytes_sent = t.bytes_acked;
        self.bytes_received = t.bytes_received;
        if self.cgroup_id == 0 {
            self.cgroup_id = t.cgroup_id;
        }
        (self.error, self.retrans, self.srtt_us) = (t.error, t.retrans, t.srtt_us);
        self.dirty = true;
        true
    }

    /// The `error`, `retrans` and `srtt_us` columns: what its CLOSE transition read, for
    /// a socket seen to close (NULL otherwise, and NULL for an error of 0 and for an
    /// RTT never measured).
    pub fn health(&self) -> (Option<u32>, Option<u32>, Option<u32>) {
        if !self.finished || self.listener {
            return (None, None, None);
        }
        ((self.error != 0).then_some(self.error), Some(self.retrans), (self.srtt_us != 0).then_some(self.srtt_us))
    }

    /// The `steps` column: the entries, then the trailer if it says anything.
    pub fn steps_blob(&self) -> Option<Vec<u8>> {
        let mut trailer = self.trailer;
        // One transition: the first is the last, and its queues are said once.
        if self.path.len() < 3 {
            trailer.last_queues = (0, 0);
        }
        let mut b = Vec::with_capacity(self.steps.len() + 4);
        b.extend_from_slice(&self.steps);
        trailer.put(&mut b);
        (!b.is_empty()).then_some(b)
    }

    /// The `owner` column: how the owner was learnt, for a connection that finished;
    /// `None` for a listener and for a socket not seen to close.
    pub fn owner_code(&self) -> Option<u8> {
        (self.finished && !self.listener).then_some(owner_code(self.source))
    }
}

/// `owner` column values.
pub fn owner_code(o: OwnerSource) -> u8 {
    match o {
        OwnerSource::Connect => 0,
        OwnerSource::Accept => 1,
        OwnerSource::Listener => 2,
        OwnerSource::Unknown => 3,
    }
}

pub fn owner_source(code: u8) -> OwnerSource {
    match code {
        0 => OwnerSource::Connect,
        1 => OwnerSource::Accept,
        2 => OwnerSource::Listener,
        _ => OwnerSource::Unknown,
    }
}

/// Every socket in progress, by cookie.
#[derive(Debug, Default)]
pub struct Assembler {
    open: FxHashMap<u64, Sock>,
    listeners: Listeners<Task>,
    /// Sockets that closed (or were given up) since the last [`Assembler::take_done`].
    done: Vec<Sock>,
    /// Cookies of open sockets marked dirty since the last [`Assembler::store_dirty`].
    touched: Vec<u64>,
    /// The newest snapshot: (id, CLOCK_MONOTONIC ns of its dump).
    last_snapshot: Option<(i64, u64)>,
}

impl Assembler {
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Folds one event of the stream in.
    pub fn observe(&mut self, t: &Transition) {
        if t.accept {
            if let Some(s) = self.open.get_mut(&t.cookie)
                && !s.listener
            {
                s.owner = Task::of(t);
                s.source = OwnerSource::Accept;
                if !s.dirty {
                    s.dirty = true;
                    self.touched.push(s.cookie);
                }
            }
            return;
        }
        let listener = is_listener_transition(t.old, t.new);
        if t.new == TcpState::Listen as u8 {
            self.listeners.listen(t.netns, t.sport, t.cookie, t.src, Task::of(t));
        } else if listener {
            self.listeners.close(t.cookie);
        }
        let was_dirty = match self.open.get_mut(&t.cookie) {
            Some(s) => {
                let was = s.dirty;
                if s.add(t) {
                    s.listener |= listener;
                    Some(was)
                } else {
                    // Past MAX_STATES: this row ends, a new one goes on (same cookie).
                    let mut full = self.open.remove(&t.cookie).expect("present");
                    full.finished = false;
                    let (owner, source) = (full.owner, full.source);
                    let mut next = Sock::start(t, owner, source, listener || full.listener);
                    next.crossing = full.crossing;
                    self.done.push(full);
                    self.open.insert(t.cookie, next);
                    None
                }
            }
            None => {
                let (owner, source) = if listener {
                    (Task::of(t), OwnerSource::Unknown)
                } else {
                    match opened(t.old, t.new) {
                        Opened::Active => (Task::of(t), OwnerSource::Connect),
                        Opened::Passive => {
                            let owner = self.listeners.owner(t.netns, t.src, t.sport).unwrap_or_default();
                            let source = if owner.is_unknown() { OwnerSource::Unknown } else { OwnerSource::Listener };
                            (owner, source)
                        }
                        Opened::Before => (Task::default(), OwnerSource::Unknown),
                    }
                };
                let mut s = Sock::start(t, owner, source, listener);
                // In the newest snapshot's dump already, though seen only now: a replay
                // from that snapshot must find this row.
                if let Some((id, ts)) = self.last_snapshot
                    && t.ts_ns <= ts
                {
                    s.crossing = Some(id);
                }
                self.open.insert(t.cookie, s);
                None
            }
        };
        if t.new == TcpState::Close as u8 {
            if let Some(mut s) = self.open.remove(&t.cookie) {
                s.finished = true;
                self.done.push(s);
            }
        } else if was_dirty != Some(true) {
            self.touched.push(t.cookie);
        }
    }

    /// Gives up the sockets `cookies` names (their closes were lost): their rows end
    /// where they are, not as finished connections.
    pub fn forget(&mut self, cookies: &[u64]) {
        for c in cookies {
            if let Some(mut s) = self.open.remove(c) {
                if s.listener {
                    self.listeners.close(*c);
                }
                s.finished = false;
                self.done.push(s);
            }
        }
    }

    /// A snapshot (dump at `mono_ns`) was stored with `id`: every socket open now was
    /// in it (or closed just before the dump, in which case claiming it costs a replay
    /// one candidate row more, and nothing else).
    pub fn snapshot_taken(&mut self, id: i64, mono_ns: u64) {
        for s in self.open.values_mut() {
            s.crossing.get_or_insert(id);
        }
        self.last_snapshot = Some((id, mono_ns));
    }

    /// The sockets that closed or were given up, in that order. The list keeps its
    /// room for the next ones (thousands between two batches under churn).
    pub fn take_done(&mut self) -> std::vec::Drain<'_, Sock> {
        self.done.drain(..)
    }

    /// Calls `store` on every open socket that changed, then marks it stored; stops at
    /// the first error.
    pub fn store_dirty<E>(&mut self, mut store: impl FnMut(&Sock) -> Result<(), E>) -> Result<(), E> {
        let touched = std::mem::take(&mut self.touched);
        for (i, c) in touched.iter().enumerate() {
            if let Some(s) = self.open.get_mut(c)
                && s.dirty
            {
                if let Err(e) = store(s) {
                    self.touched.extend_from_slice(&touched[i..]);
                    return Err(e);
                }
                s.dirty = false;
                s.stored = true;
            }
        }
        Ok(())
    }

    /// After a batch failed to commit: whatever it stored is gone, so every open
    /// socket is stored again with the next one.
    pub fn restore_all(&mut self) {
        self.touched.clear();
        for s in self.open.values_mut() {
            s.dirty = true;
            self.touched.push(s.cookie);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::codec::steps;
    use TcpState::*;

    fn ev(cookie: u64, ts: u64, old: TcpState, new: TcpState, ports: (u16, u16), pid: u32) -> Transition {
        Transition {
            netns: 7,
            pid,
            tid: pid,
            comm: format!("p{pid}").as_str().into(),
            ..Transition::fixture(cookie, ts, old, new, ports)
        }
    }

    #[test]
    fn the_cgroup_is_kept_and_health_is_the_closes() {
        let mut a = Assembler::default();
        // The cgroup from whichever transition carried it; the error, retransmits and
        // RTT from the CLOSE transition only.
        a.observe(&ev(4, 10, Close, SynSent, (0, 80), 5));
        a.observe(&Transition { cgroup_id: 42, retrans: 9, ..ev(4, 20, SynSent, Established, (6000, 80), 5) });
        a.observe(&Transition { error: 104, retrans: 3, srtt_us: 80, ..ev(4, 30, Established, Close, (0, 80), 5) });
        let done: Vec<Sock> = a.take_done().collect();
        assert_eq!(done[0].cgroup_id, 42);
        assert_eq!(done[0].health(), (Some(104), Some(3), Some(80)));
        // A socket given up (its close lost) says nothing of its health.
        a.observe(&Transition { cgroup_id: 42, ..ev(5, 10, Close, SynSent, (0, 80), 5) });
        a.forget(&[5]);
        assert_eq!(a.take_done().next().unwrap().health(), (None, None, None));
    }

    #[test]
    fn a_connection_becomes_one_row_with_its_owner_times_and_queues() {
        let mut a = Assembler::default();
        a.observe(&Transition { rqueue: 0, wqueue: 128, ..ev(1, 10, Close, Listen, (80, 0), 100) });
        a.observe(&ev(2, 1_000, Listen, SynRecv, (80, 5000), 9));
        a.observe(&ev(2, 7_000, SynRecv, Established, (80, 5000), 9));
        let mut accept = ev(2, 8_000, Close, Close, (80, 5000), 100);
        accept.accept = true;
        a.observe(&accept);
        a.observe(&Transition { rqueue: 1, ..ev(2, 719_999, Established, CloseWait, (80, 5000), 9) });
        a.observe(&ev(2, 743_000, CloseWait, LastAck, (80, 5000), 100));
        assert_eq!(a.take_done().len(), 0);
        a.observe(&ev(2, 764_000, LastAck, Close, (0, 5000), 9));
        let done: Vec<Sock> = a.take_done().collect();
        let s = &done[0];
        assert_eq!(s.path.states().collect::<Vec<_>>(), [10, 3, 1, 8, 9, 7]);
        assert_eq!((s.owner.pid, s.owner.comm_str().as_ref(), s.owner_code()), (100, "p100", Some(1)));
        assert_eq!((s.sport, s.dport), (80, 5000), "the last complete tuple");
        assert_eq!((s.first_ns, s.last_ns), (1_000, 764_000));
        // Intermediate times to the microsecond, rounded down from the first.
        let (st, trailer) = steps(s.steps_blob().as_deref(), 3);
        let offs: Vec<_> = st.iter().map(|x| (x.offset_ns, x.queues)).collect();
        assert_eq!(offs, [(6_000, (0, 0)), (718_000, (1, 0)), (742_000, (0, 0))]);
        assert_eq!(trailer, Trailer::default(), "nothing more to say");
        assert_eq!(a.open_count(), 1, "the listener is still open");
    }

    #[test]
    fn open_sockets_are_stored_when_they_change_and_given_up_on_request() {
        let mut a = Assembler::default();
        a.observe(&ev(1, 1, Close, SynSent, (0, 80), 5));
        a.observe(&ev(1, 2, SynSent, Established, (4000, 80), 5));
        let mut stored = Vec::new();
        a.store_dirty(|s| {
            stored.push((s.cookie, s.path.len()));
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(stored, [(1, 3)], "one store per socket per batch");
        a.store_dirty(|_| Err(())).unwrap();
        a.snapshot_taken(4, 3);
        // Seen only after the snapshot, but there before its dump.
        a.observe(&ev(2, 3, Established, FinWait1, (4001, 80), 5));
        a.forget(&[1, 2]);
        let done: Vec<Sock> = a.take_done().collect();
        assert_eq!(done.len(), 2);
        assert!(done.iter().all(|s| s.owner_code().is_none() && s.crossing == Some(4)));
        assert!(done[0].stored && !done[1].stored);
    }

    #[test]
    fn a_path_longer_than_a_row_continues_in_another() {
        let mut a = Assembler::default();
        a.observe(&ev(1, 0, Close, SynSent, (0, 80), 5));
        let mut ts = 1;
        while a.take_done().len() == 0 {
            a.observe(&ev(1, ts, Established, Established, (4000, 80), 5));
            ts += 1;
        }
        a.observe(&ev(1, ts, Established, Close, (4000, 80), 5));
        let next: Vec<Sock> = a.take_done().collect();
        assert_eq!(next.len(), 1);
        assert!(next[0].finished);
        assert_eq!(next[0].owner.pid, 5, "the owner goes on");
    }
}
