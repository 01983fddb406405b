//! Rebuilding the TCP table at a past moment, for `sockstat --at`: the newest snapshot at
//! or before it, then the stored transitions, applied by the same rules as the live
//! table's (`model::tcp`). Unlike the live table, which asks the kernel at query time,
//! the replay has to model the sockets that get no events itself: timewait sockets, from
//! the snapshot and from the closes that made them, and SYN-SENT ports, from the
//! socket's next stored transition.

use std::{collections::HashMap, net::IpAddr};

use rusqlite::OptionalExtension;
use sockstat_ebpf::TcpState;

use crate::{
    bpf::stream::Transition,
    model::{
        socket::InetSocket,
        tcp::{self, Change, TIME_WAIT_NS},
    },
    timeline::{
        Gap, TimelineError, format_ns,
        reader::{Reader, TRANSITION_COLUMNS, addr, transition_row},
        sql,
    },
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
    /// transition up to it, in order. TIME-WAIT sockets come from the snapshot (with the
    /// expiry sock_diag gave) and from FIN-WAIT-2/CLOSING -> CLOSE transitions, which hand
    /// the tuple to a timewait socket that lives TCP_TIMEWAIT_LEN (60 s) unless reused.
    pub fn state_at(&self, at_ns: i64) -> Result<AtState, TimelineError> {
        let e = sql(&self.path);
        let snap: Option<(i64, i64)> = self
            .conn
            .query_row(
                "SELECT id, ts_ns FROM snapshots WHERE ts_ns <= ?1 ORDER BY ts_ns DESC, id DESC LIMIT 1",
                [at_ns],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(&e)?;
        let Some((snap_id, snap_ns)) = snap else {
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
        let mut model = Model::default();
        let mut st = self
            .conn
            .prepare(
                "SELECT cookie, family, state, src, sport, dst, dport, rqueue, wqueue, v6only, ifindex, uid, inode, expires_ms, timer
                 FROM snapshot_sockets WHERE snapshot = ?1",
            )
            .map_err(&e)?;
        let rows = st
            .query_map([snap_id], |r| {
                Ok((
                    InetSocket {
                        v6only: r.get(9)?,
                        ifindex: r.get(10)?,
                        rqueue: r.get(7)?,
                        wqueue: r.get(8)?,
                        uid: r.get(11)?,
                        inode: r.get(12)?,
                        timer: r.get(14)?,
                        ..InetSocket::tcp(
                            r.get(1)?,
                            r.get(2)?,
                            (addr(&r.get::<_, String>(3)?), r.get(4)?),
                            (addr(&r.get::<_, String>(5)?), r.get(6)?),
                            r.get::<_, i64>(0)? as u64,
                        )
                    },
                    r.get::<_, i64>(13)?,
                ))
            })
            .map_err(&e)?;
        for row in rows {
            let (sock, expires_ms) = row.map_err(&e)?;
            model.seed(sock, snap_ns + expires_ms * 1_000_000);
        }
        let ids = self.transition_ids(snap_ns, at_ns)?;
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {TRANSITION_COLUMNS}
                 FROM transitions WHERE id BETWEEN ?3 AND ?4 AND ts_ns > ?1 AND ts_ns <= ?2 AND accept = 0 ORDER BY id"
            ))
            .map_err(&e)?;
        let rows = st.query_map([snap_ns, at_ns, ids.0, ids.1], transition_row).map_err(&e)?;
        for row in rows {
            let (wall_ns, t) = row.map_err(&e)?;
            model.apply(wall_ns, &t);
        }
        // A SYN-SENT socket's only transition so far came before connect() picked its
        // port; a later transition of the same socket (same cookie) has it. It follows
        // soon after, so a forward rowid walk from the moment finds it quickly; the
        // writer keeps no cookie index, one B-tree less per row.
        let mut later = self
            .conn
            .prepare(
                "SELECT src, sport FROM transitions WHERE id > ?1 AND cookie = ?2 AND sport != 0 ORDER BY id LIMIT 1",
            )
            .map_err(&e)?;
        for s in model.full.values_mut().filter(|s| s.sport == 0) {
            if let Some((src, sport)) = later
                .query_row([ids.1, s.cookie as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u16>(1)?)))
                .optional()
                .map_err(&e)?
            {
                s.src = addr(&src);
                s.sport = sport;
            }
        }
        Ok(AtState { sockets: model.sockets_at(at_ns), gaps: self.gaps_between(snap_ns, at_ns)?, snapshot_ns: snap_ns })
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
            self.full.insert(sock.cookie, sock);
        }
    }

    /// Applies transition `t`, stored at wall-clock `wall_ns`, by the rules of [`tcp`]
    /// (shared with the live table); a close that hands the tuple to a timewait socket
    /// leaves one here, as the kernel would.
    fn apply(&mut self, wall_ns: i64, t: &Transition) {
        match tcp::change(t.old, t.new) {
            Change::Closed { to_time_wait } => {
                if let Some(gone) = self.full.remove(&t.cookie)
                    && to_time_wait
                {
                    self.timewait.insert(tuple(&gone), (tcp::time_wait_row(gone), wall_ns + TIME_WAIT_NS));
                }
            }
            Change::Moved => {
                let sock = tcp::moved(self.full.get(&t.cookie), t.as_socket());
                // A new connection on a timewait tuple replaces the timewait socket.
                self.timewait.remove(&tuple(&sock));
                self.full.insert(t.cookie, sock);
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
    use super::*;
    use crate::timeline::{
        Record,
        fixtures::{temp_db, tr, writer},
    };

    #[test]
    fn replays_snapshot_and_transitions_to_a_moment() {
        use TcpState::*;
        let path = temp_db("replay");
        let now = crate::model::clock::monotonic_now().as_nanos() as u64;
        let offset;
        {
            let mut w = writer(&path);
            offset = w.offset_ns;
            w.push(Record::Snapshot { mono_ns: now, kind: "seed", sockets: Vec::new() });
            for t in [
                tr(1, now + 10, Close, Listen, 80, 0),
                tr(2, now + 20, Close, SynSent, 0, 80),
                tr(2, now + 30, SynSent, Established, 5000, 80),
                tr(3, now + 31, SynRecv, Established, 80, 5000),
                tr(2, now + 40, Established, FinWait1, 5000, 80),
                tr(3, now + 41, Established, CloseWait, 80, 5000),
                tr(2, now + 42, FinWait1, FinWait2, 5000, 80),
                tr(3, now + 43, CloseWait, LastAck, 80, 5000),
                tr(2, now + 44, FinWait2, Close, 0, 80),
                tr(3, now + 45, LastAck, Close, 0, 5000),
            ] {
                w.push(Record::Transition(t));
            }
            w.flush().unwrap();
        }
        let wall = |mono: u64| mono as i64 + offset;
        let r = Reader::open(&path).unwrap();
        let states = |at: u64| -> Vec<(u16, u16, u8)> {
            let mut v: Vec<_> =
                r.state_at(wall(at)).unwrap().sockets.iter().map(|s| (s.sport, s.dport, s.state)).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(
            states(now + 35),
            vec![(80, 0, Listen as u8), (80, 5000, Established as u8), (5000, 80, Established as u8)]
        );
        // The client handed its tuple (port from the earlier transition) to TIME-WAIT.
        assert_eq!(states(now + 50), vec![(80, 0, Listen as u8), (5000, 80, TimeWait as u8)]);
        // ... which lives 60 s.
        assert_eq!(states(now + 50 + TIME_WAIT_NS as u64), vec![(80, 0, Listen as u8)]);
        let err = r.state_at(wall(now) - 1_000_000_000).unwrap_err();
        assert!(matches!(err, TimelineError::BeforeStart { .. }), "{err}");
    }
}
