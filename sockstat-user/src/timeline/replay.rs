//! Rebuilding the TCP table at a past moment, for `sockstat --at`: the newest snapshot at
//! or before it, then the transitions the stored rows tell, applied in time order by
//! the same rules as the live table's (`model::tcp`). Unlike the live table, which asks
//! the kernel at query time, the replay has to model the sockets that get no events
//! itself: timewait sockets, from the snapshot and from the closes that made them.
//! A row carries its socket's last complete tuple, so a SYN-SENT socket (whose event
//! came before connect() picked the port) shows its port as soon as a later transition
//! of it was stored.

use std::{collections::HashMap, net::IpAddr};

use sockstat_ebpf::TcpState;

use crate::{
    model::{
        socket::InetSocket,
        tcp::{self, Change, TIME_WAIT_NS},
    },
    timeline::{Gap, TimelineError, codec, format_ns, reader::Reader, sql},
};

/// The table as it was at a moment, and how sure the answer is.
#[derive(Debug)]
pub struct AtState {
    pub sockets: Vec<InetSocket>,
    /// Gaps between the snapshot used and the moment: the answer may be incomplete.
    pub gaps: Vec<Gap>,
    pub snapshot_ns: i64,
}

impl Reader {
    /// Rebuilds the TCP table at `at_ns`: the newest snapshot at or before it, then every
    /// transition after it up to `at_ns`, in time order. TIME-WAIT sockets come from the
    /// snapshot (with the expiry sock_diag gave) and from FIN-WAIT-2/CLOSING -> CLOSE
    /// transitions, which hand the tuple to a timewait socket that lives
    /// TCP_TIMEWAIT_LEN (60 s) unless reused. Only the sockets of network namespace
    /// `netns` (its inode): the timeline holds every namespace the agent tracked.
    pub fn state_at(&self, at_ns: i64, netns: u32) -> Result<AtState, TimelineError> {
        let e = sql(&self.path);
        let Some(snap) = self.snapshot_for(at_ns, netns)? else {
            let first: Option<i64> =
                self.conn.query_row("SELECT MIN(ts_ns) FROM snapshots", [], |r| r.get(0)).map_err(&e)?;
            return Err(match first {
                Some(first) => TimelineError::BeforeStart {
                    path: self.path.clone(),
                    at: format_ns(at_ns),
                    first: format_ns(first),
                },
                None => TimelineError::Empty { path: self.path.clone() },
            });
        };
        let (snap_id, snap_ns, first_conn) = snap;
        let names = self.names()?;
        let mut model = Model::default();
        let timewait: bool =
            self.conn.query_row("SELECT timewait FROM snapshots WHERE id = ?1", [snap_id], |r| r.get(0)).map_err(&e)?;
        if !timewait {
            self.rebuild_timewait(&mut model, snap_ns, first_conn, netns)?;
        }
        // Every transition after the snapshot up to the moment, from every row that
        // may hold one, in time order (a socket's own in its order); their cgroups are
        // those of the snapshot's sockets too.
        let mut rows = Vec::new();
        self.rows_for_replay(snap, at_ns, &mut |row| {
            if row.end_ns > snap_ns && row.first_ns <= at_ns && names.netns(&row) == netns {
                rows.push(row);
            }
        })?;
        let cgroups: HashMap<u64, Option<u64>> = rows.iter().map(|r| (r.cookie, names.cgroup(r).0)).collect();
        // The snapshot's sockets of `netns`, packed one row per namespace.
        let mut st = self.conn.prepare("SELECT netns, data FROM snapshot_sockets WHERE snapshot = ?1").map_err(&e)?;
        let packed =
            st.query_map([snap_id], |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Vec<u8>>(1)?))).map_err(&e)?;
        for row in packed {
            let (ns, data) = row.map_err(&e)?;
            if names.netns_inode(ns) != netns {
                continue;
            }
            let sockets = codec::read_snapshot_blob(&data).map_err(|source| TimelineError::Block {
                path: self.path.clone(),
                first: snap_id,
                source,
            })?;
            for sock in sockets {
                let expires_ms = i64::from(sock.expires_ms);
                // sock_diag gives no cgroup for a timewait or request socket (ss filters
                // them as cgroup 0); a full socket has its row's.
                let cgroup = if sock.is_mini() { None } else { cgroups.get(&sock.cookie).copied().flatten() };
                model.seed(InetSocket { expires_ms: 0, ..sock }.with_cgroup(cgroup), snap_ns + expires_ms * 1_000_000);
            }
        }
        let mut steps = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            for (i, t) in row.transitions().into_iter().enumerate() {
                if t.ts_ns > snap_ns && t.ts_ns <= at_ns {
                    steps.push((t.ts_ns, r, i, t));
                }
            }
        }
        steps.sort_by_key(|(ts, r, i, _)| (*ts, *r, *i));
        for (ts, r, _, t) in &steps {
            let row = &rows[*r];
            model.apply(*ts, row.cookie, t.old, t.new, row.socket(t).with_cgroup(names.cgroup(row).0));
        }
        Ok(AtState { sockets: model.sockets_at(at_ns), gaps: self.gaps_between(snap_ns, at_ns)?, snapshot_ns: snap_ns })
    }

    /// The TIME-WAIT sockets at `snap_ns`, of a snapshot that left them out: replayed
    /// from the rows that closed in the TIME-WAIT lifetime before it, the closes that
    /// made them and the connections that took their tuples over, by the rules of the
    /// replay itself. Those rows were written before the snapshot (its rows start at
    /// `first_conn`), or just after, for a close still in the ring at the dump.
    fn rebuild_timewait(
        &self,
        model: &mut Model,
        snap_ns: i64,
        first_conn: i64,
        netns: u32,
    ) -> Result<(), TimelineError> {
        let names = self.names()?;
        let from = snap_ns - TIME_WAIT_NS - 1_000_000_000;
        let Some(lo) = self.first_row_ending_from(from)? else { return Ok(()) };
        let late: Option<i64> = self
            .conn
            .query_row("SELECT MAX(last_conn) FROM batches WHERE min_ts_ns <= ?1", [snap_ns], |r| r.get(0))
            .map_err(sql(&self.path))?;
        let mut rows = Vec::new();
        self.rows_between(lo, late.unwrap_or(0).max(first_conn - 1), &mut |row| {
            if row.end_ns > from && row.first_ns <= snap_ns && names.netns(&row) == netns {
                rows.push(row);
            }
        })?;
        let mut steps = Vec::new();
        for (r, row) in rows.iter().enumerate() {
            for (i, t) in row.transitions().into_iter().enumerate() {
                if t.ts_ns > from && t.ts_ns <= snap_ns {
                    steps.push((t.ts_ns, r, i, t));
                }
            }
        }
        steps.sort_by_key(|(ts, r, i, _)| (*ts, *r, *i));
        let mut before = Model::default();
        for (ts, r, _, t) in &steps {
            let row = &rows[*r];
            before.apply(*ts, row.cookie, t.old, t.new, row.socket(t));
        }
        model.timewait.extend(before.timewait.into_iter().filter(|(_, (_, expires))| *expires > snap_ns));
        Ok(())
    }
}

type Tuple = (u16, IpAddr, u16, IpAddr, u16);

/// The replay model behind `state_at`: full sockets by cookie, timewait sockets by tuple.
#[derive(Default)]
struct Model {
    full: HashMap<u64, InetSocket>,
    /// Tuple -> (the socket as a TIME-WAIT row, expiry ns).
    timewait: HashMap<Tuple, (InetSocket, i64)>,
}

fn tuple(s: &InetSocket) -> Tuple {
    (s.family, s.src, s.sport, s.dst, s.dport)
}

impl Model {
    fn seed(&mut self, sock: InetSocket, expires_ns: i64) {
        // Mini-sockets get no events: they live until their timer (or a new connection
        // on their tuple) ends them.
        if sock.is_mini() {
            self.timewait.insert(tuple(&sock), (sock, expires_ns));
        } else {
            // A connection on the tuple of a rebuilt timewait socket took it over.
            self.timewait.remove(&tuple(&sock));
            self.full.insert(sock.cookie, sock);
        }
    }

    /// Applies a transition of socket `cookie` from `old` to `new` at wall-clock
    /// `wall_ns`, `event` the socket as it left it, by the rules of [`tcp`] (shared with
    /// the live table); a close that hands the tuple to a timewait socket leaves one
    /// here, as the kernel would.
    fn apply(&mut self, wall_ns: i64, cookie: u64, old: u8, new: u8, event: InetSocket) {
        match tcp::change(old, new) {
            Change::Closed { to_time_wait } => {
                if let Some(mut gone) = self.full.remove(&cookie)
                    && to_time_wait
                {
                    // A timewait socket has no cgroup (sock_diag sends none for it).
                    gone.ext = None;
                    self.timewait.insert(tuple(&gone), (tcp::time_wait_row(gone), wall_ns + TIME_WAIT_NS));
                }
            }
            Change::Moved => {
                let sock = tcp::moved(self.full.get(&cookie), event);
                // A new connection on a timewait tuple replaces the timewait socket.
                self.timewait.remove(&tuple(&sock));
                self.full.insert(cookie, sock);
            }
        }
    }

    fn sockets_at(&self, at_ns: i64) -> Vec<InetSocket> {
        let mut out: Vec<InetSocket> = self.full.values().cloned().collect();
        for (sock, expires) in self.timewait.values() {
            if *expires <= at_ns {
                continue;
            }
            let mut s = sock.clone();
            // An orphaned socket closed in FIN-WAIT-2 hands over in the timewait
            // FIN-WAIT-2 substate, which ss shows as FIN-WAIT-2, until the peer's FIN
            // arrives. With the peer in this namespace, its CLOSE-WAIT says it has not
            // sent it yet. (The live agent asks the kernel instead: `TIMEWAIT_SUBSTATES`
            // in `live::table`.)
            let peer_open = self.full.values().any(|p| {
                p.state == TcpState::CloseWait as u8
                    && p.src == s.dst
                    && p.sport == s.dport
                    && p.dst == s.src
                    && p.dport == s.sport
            });
            if s.state == TcpState::TimeWait as u8 && peer_open {
                s.state = TcpState::FinWait2 as u8;
            }
            out.push(s);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::timeline::{
        Record, Writer,
        fixtures::{temp_db, tr, writer},
    };

    /// `n` microseconds: transitions between a socket's first and last are stored to
    /// the microsecond.
    const US: u64 = 1_000;

    #[test]
    fn each_namespace_replays_its_own_sockets() {
        use TcpState::*;
        let path = temp_db("replay-netns");
        let now = crate::model::clock::monotonic_now().as_nanos() as u64;
        let offset;
        let listener = |ns: u32, port: u16| InetSocket {
            cookie: u64::from(ns) * 100 + u64::from(port),
            ..InetSocket::tcp(
                sockstat_ebpf::AF_INET,
                Listen as u8,
                ("127.0.0.1".parse().unwrap(), port),
                ("0.0.0.0".parse().unwrap(), 0),
                u64::from(ns) * 100 + u64::from(port),
            )
        };
        {
            let mut w = writer(&path);
            offset = w.offset_ns;
            // Namespace 1 (the agent's) and 2 each have a listener in the seed.
            let spaces = vec![(1, vec![listener(1, 80)]), (2, vec![listener(2, 81)])];
            w.push(Record::Snapshot { mono_ns: now, kind: "seed", spaces });
            // Then a connection in namespace 2 only.
            let in2 = |t: crate::bpf::stream::Transition| crate::bpf::stream::Transition { netns: 2, ..t };
            w.push(Record::Transition(in2(tr(7, now + 10 * US, Close, SynSent, 0, 9))));
            w.push(Record::Transition(in2(tr(7, now + 20 * US, SynSent, Established, 6000, 9))));
            w.flush().unwrap();
        }
        let r = Reader::open(&path).unwrap();
        let at = |ns: u32| -> Vec<(u16, u8)> {
            let mut v: Vec<_> = r
                .state_at(now as i64 + offset + 30 * US as i64, ns)
                .unwrap()
                .sockets
                .iter()
                .map(|s| (s.sport, s.state))
                .collect();
            v.sort_unstable();
            v
        };
        assert_eq!(at(1), vec![(80, Listen as u8)]);
        assert_eq!(at(2), vec![(81, Listen as u8), (6000, Established as u8)]);
        assert_eq!(at(3), vec![], "a namespace the timeline never saw is empty");
    }

    /// A checkpoint spread over its interval: the agent's namespace dumped at its
    /// start, namespace 2 later in a part of its own; until then a replay of namespace 2
    /// starts from the snapshot before, and retention keeps that one.
    #[test]
    fn a_spread_checkpoint_answers_each_namespace_from_its_own_dump() {
        use TcpState::*;
        let path = temp_db("replay-spread");
        let now = crate::model::clock::monotonic_now().as_nanos() as u64;
        let offset;
        let sock = |ns: u32, port: u16, state: TcpState, cookie: u64| InetSocket {
            cookie,
            ..InetSocket::tcp(
                sockstat_ebpf::AF_INET,
                state as u8,
                ("127.0.0.1".parse().unwrap(), port),
                ("127.0.0.1".parse().unwrap(), if state == Listen { 0 } else { 9 }),
                cookie + u64::from(ns),
            )
        };
        let in2 = |t: crate::bpf::stream::Transition| crate::bpf::stream::Transition { netns: 2, ..t };
        {
            let mut w = writer(&path);
            offset = w.offset_ns;
            let seed = vec![(1, vec![sock(1, 80, Listen, 180)]), (2, vec![sock(2, 81, Listen, 281)])];
            w.push(Record::Snapshot { mono_ns: now, kind: "seed", spaces: seed });
            w.push(Record::Transition(in2(tr(7, now + 10 * US, Close, SynSent, 0, 9))));
            w.push(Record::Transition(in2(tr(7, now + 20 * US, SynSent, Established, 6000, 9))));
            w.flush().unwrap();
            let spaces = vec![(1, vec![sock(1, 80, Listen, 180)])];
            w.push(Record::Checkpoint { mono_ns: now + 100 * US, spaces, deferred: vec![2] });
            w.flush().unwrap();
            let sockets = vec![sock(2, 81, Listen, 281), sock(2, 6000, Established, 7)];
            w.push(Record::CheckpointPart { mono_ns: now + 300 * US, netns: 2, sockets });
            w.flush().unwrap();
            w.push(Record::Transition(in2(tr(7, now + 400 * US, Established, Close, 6000, 9))));
        }
        let r = Reader::open(&path).unwrap();
        let t = |us: u64| now as i64 + offset + (us * US) as i64;
        let at = |us: u64, ns: u32| -> (i64, Vec<(u16, u8)>) {
            let st = r.state_at(t(us), ns).unwrap();
            let mut v: Vec<_> = st.sockets.iter().map(|s| (s.sport, s.state)).collect();
            v.sort_unstable();
            (st.snapshot_ns, v)
        };
        let open2 = vec![(81, Listen as u8), (6000, Established as u8)];
        assert_eq!(at(200, 2), (t(0), open2.clone()), "before its part: from the seed");
        assert_eq!(at(350, 2), (t(300), open2), "from its part");
        assert_eq!(at(450, 2), (t(300), vec![(81, Listen as u8)]));
        assert_eq!(at(200, 1), (t(100), vec![(80, Listen as u8)]), "the agent's: from the checkpoint");
        // Retention with the cut after the checkpoint: the seed stays, for namespace 2.
        let conn = rusqlite::Connection::open(&path).unwrap();
        assert!(!crate::timeline::writer::cut_before(&conn, t(200)).unwrap());
        assert_eq!(at(200, 2).0, t(0));
    }

    #[test]
    fn replays_snapshot_and_transitions_to_a_moment() {
        use TcpState::*;
        let path = temp_db("replay");
        let now = crate::model::clock::monotonic_now().as_nanos() as u64;
        let offset;
        {
            let mut w = writer(&path);
            offset = w.offset_ns;
            w.push(Record::Snapshot { mono_ns: now, kind: "seed", spaces: Vec::new() });
            for t in [
                tr(1, now + 10 * US, Close, Listen, 80, 0),
                tr(2, now + 20 * US, Close, SynSent, 0, 80),
                tr(2, now + 30 * US, SynSent, Established, 5000, 80),
                tr(3, now + 31 * US, SynRecv, Established, 80, 5000),
                tr(2, now + 40 * US, Established, FinWait1, 5000, 80),
                tr(3, now + 41 * US, Established, CloseWait, 80, 5000),
                tr(2, now + 42 * US, FinWait1, FinWait2, 5000, 80),
                tr(3, now + 43 * US, CloseWait, LastAck, 80, 5000),
                tr(2, now + 44 * US, FinWait2, Close, 0, 80),
                tr(3, now + 45 * US, LastAck, Close, 0, 5000),
            ] {
                w.push(Record::Transition(t));
            }
            w.flush().unwrap();
        }
        let wall = |mono: u64| mono as i64 + offset;
        let r = Reader::open(&path).unwrap();
        let states = |at: u64| -> Vec<(u16, u16, u8)> {
            let mut v: Vec<_> =
                r.state_at(wall(at), 1).unwrap().sockets.iter().map(|s| (s.sport, s.dport, s.state)).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(
            states(now + 35 * US),
            vec![(80, 0, Listen as u8), (80, 5000, Established as u8), (5000, 80, Established as u8)]
        );
        // The client handed its tuple (port from the earlier transition) to TIME-WAIT.
        assert_eq!(states(now + 50 * US), vec![(80, 0, Listen as u8), (5000, 80, TimeWait as u8)]);
        // ... which lives 60 s.
        assert_eq!(states(now + 50 * US + TIME_WAIT_NS as u64), vec![(80, 0, Listen as u8)]);
        let err = r.state_at(wall(now) - 1_000_000_000, 1).unwrap_err();
        assert!(matches!(err, TimelineError::BeforeStart { .. }), "{err}");
    }

    #[test]
    fn rows_written_long_after_a_moment_still_answer_for_it() {
        use TcpState::*;
        let path = temp_db("crossing");
        let now = crate::model::clock::monotonic_now().as_nanos() as u64;
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let listener = InetSocket { wqueue: 128, ..InetSocket::tcp(2, Listen as u8, (lo, 80), (lo, 0), 1) };
        let conn = |cookie, state: TcpState, ports: (u16, u16)| {
            InetSocket::tcp(2, state as u8, (lo, ports.0), (lo, ports.1), cookie)
        };
        let offset;
        {
            let mut w = writer(&path);
            offset = w.offset_ns;
            w.push(Record::Snapshot { mono_ns: now, kind: "seed", spaces: vec![(1, vec![listener.clone()])] });
            w.push(Record::Transition(tr(2, now + 10 * US, Close, SynSent, 0, 80)));
            w.push(Record::Transition(tr(2, now + 20 * US, SynSent, Established, 5000, 80)));
            w.flush().unwrap();
            // A checkpoint while the connection is open, then more batches; it closes
            // after a second checkpoint, and another one stays open.
            let sockets = vec![listener.clone(), conn(2, Established, (5000, 80))];
            w.push(Record::Snapshot { mono_ns: now + 100 * US, kind: "checkpoint", spaces: vec![(1, sockets)] });
            w.push(Record::Transition(tr(2, now + 150 * US, Established, FinWait1, 5000, 80)));
            w.push(Record::Transition(tr(4, now + 160 * US, Close, SynSent, 0, 81)));
            w.flush().unwrap();
            let sockets = vec![listener.clone(), conn(2, FinWait1, (5000, 80)), conn(4, SynSent, (5001, 81))];
            w.push(Record::Snapshot { mono_ns: now + 200 * US, kind: "checkpoint", spaces: vec![(1, sockets)] });
            w.push(Record::Transition(tr(2, now + 250 * US, FinWait1, Close, 5000, 80)));
            w.flush().unwrap();
        }
        let wall = |mono: u64| mono as i64 + offset;
        let r = Reader::open(&path).unwrap();
        let states = |at: u64| -> Vec<(u16, u8)> {
            let mut v: Vec<_> = r.state_at(wall(at), 1).unwrap().sockets.iter().map(|s| (s.dport, s.state)).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(states(now + 50 * US), vec![(0, Listen as u8), (80, Established as u8)]);
        assert_eq!(states(now + 170 * US), vec![(0, Listen as u8), (80, FinWait1 as u8), (81, SynSent as u8)]);
        assert_eq!(states(now + 260 * US), vec![(0, Listen as u8), (81, SynSent as u8)]);
        // The listener's queue sizes come from the snapshot.
        assert_eq!(
            r.state_at(wall(now + 50 * US), 1).unwrap().sockets.iter().find(|s| s.dport == 0).unwrap().wqueue,
            128
        );
    }

    #[test]
    fn a_checkpoint_leaves_time_wait_to_the_closes_it_came_from() {
        use TcpState::*;
        const S: u64 = 1_000_000_000;
        let path = temp_db("timewait");
        let t0 = crate::model::clock::monotonic_now().as_nanos() as u64 - 600 * S;
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let listener = InetSocket { wqueue: 128, ..InetSocket::tcp(2, Listen as u8, (lo, 80), (lo, 0), 1) };
        let close = |w: &mut Writer, cookie, at: u64, sport| {
            for t in [
                tr(cookie, at, Close, SynSent, 0, 80),
                tr(cookie, at + 10 * US, SynSent, Established, sport, 80),
                tr(cookie, at + 20 * US, Established, FinWait1, sport, 80),
                tr(cookie, at + 30 * US, FinWait1, FinWait2, sport, 80),
                tr(cookie, at + 40 * US, FinWait2, Close, sport, 80),
            ] {
                w.push(Record::Transition(t));
            }
            w.flush().unwrap();
        };
        let offset;
        {
            let mut w = writer(&path);
            offset = w.offset_ns;
            w.push(Record::Snapshot { mono_ns: t0, kind: "seed", spaces: vec![(1, vec![listener.clone()])] });
            w.flush().unwrap();
            close(&mut w, 2, t0 + 100 * S, 5000);
            close(&mut w, 3, t0 + 130 * S, 5001);
            // A new connection takes the second one's tuple over.
            w.push(Record::Transition(tr(5, t0 + 140 * S, Close, SynSent, 0, 80)));
            w.push(Record::Transition(tr(5, t0 + 140 * S + 10 * US, SynSent, Established, 5001, 80)));
            w.flush().unwrap();
            // The kernel's dump: the listener, the new connection, the first's TIME-WAIT.
            let tw = InetSocket {
                timer: 3,
                expires_ms: 10_000,
                ..InetSocket::tcp(2, TimeWait as u8, (lo, 5000), (lo, 80), 2)
            };
            let sockets = vec![listener.clone(), InetSocket::tcp(2, Established as u8, (lo, 5001), (lo, 80), 5), tw];
            w.push(Record::Snapshot { mono_ns: t0 + 150 * S, kind: "checkpoint", spaces: vec![(1, sockets)] });
            w.flush().unwrap();
            // After trouble, a checkpoint keeps them.
            w.push(Record::Gap(Gap {
                start_ns: 1,
                end_ns: 2,
                lost_kernel: 1,
                lost_userspace: 0,
                reason: "test".into(),
            }));
            w.flush().unwrap();
            let tw = InetSocket { timer: 3, ..InetSocket::tcp(2, TimeWait as u8, (lo, 5000), (lo, 80), 2) };
            w.push(Record::Snapshot { mono_ns: t0 + 155 * S, kind: "checkpoint", spaces: vec![(1, vec![tw])] });
            w.flush().unwrap();
        }
        let stored = Connection::open(&path)
            .unwrap()
            .prepare("SELECT timewait, (SELECT COALESCE(SUM(count), 0) FROM snapshot_sockets WHERE snapshot = s.id) FROM snapshots s ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get::<_, bool>(0)?, r.get::<_, i64>(1)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(stored, [(true, 1), (false, 2), (true, 1)]);
        let wall = |mono: u64| mono as i64 + offset;
        let r = Reader::open(&path).unwrap();
        let states = |at: u64| -> Vec<(u16, u8)> {
            let mut v: Vec<_> = r.state_at(wall(at), 1).unwrap().sockets.iter().map(|s| (s.sport, s.state)).collect();
            v.sort_unstable();
            v
        };
        // From the checkpoint: the first connection's TIME-WAIT, rebuilt from its close;
        // none for the second's tuple, which the new connection holds.
        assert_eq!(states(t0 + 151 * S), vec![(80, Listen as u8), (5000, TimeWait as u8), (5001, Established as u8)]);
    }
}
