//! Connection lifetimes assembled from transitions (the job of bcc's tcplife): one record
//! per finished TCP connection, with its owner, byte counts and the states it went through.
//!
//! Owners: an active open belongs to the task that called connect() (the CLOSE->SYN_SENT
//! transition runs in its context). A passive open's transitions run in softirq context,
//! where the current task is unrelated, so its owner is the task that accept()ed it (the
//! accept hook), or until then, the task that made its listener listen().

use std::{collections::HashMap, net::IpAddr};

use serde::Serialize;
use sockstat_ebpf::TcpState;

use crate::bpf::stream::{Transition, kernel_state_name};

/// How the owner of a connection was learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerSource {
    /// The task that called connect().
    Connect,
    /// The task that accept()ed the socket.
    Accept,
    /// Not accepted (yet): the task that made the listener listen().
    Listener,
    /// The connection began before tracing did.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lifetime {
    pub cookie: u64,
    pub netns: u32,
    pub family: u16,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// CLOCK_MONOTONIC ns of the first transition; `None` if it began before tracing.
    pub start_ns: Option<u64>,
    pub end_ns: u64,
    pub pid: u32,
    pub comm: String,
    pub owner: OwnerSource,
    /// Opened by connect() (true) or accepted from a listener (false); `None` if unknown.
    pub active: Option<bool>,
    /// `tcp_sock.bytes_acked` at close: bytes sent and acknowledged by the peer.
    pub bytes_sent: u64,
    /// `tcp_sock.bytes_received` at close.
    pub bytes_received: u64,
    /// Kernel state numbers, in order, from the first state entered to CLOSE.
    pub path: Vec<u8>,
    /// The socket's cgroup v2 id (0: unknown); from its CLOSE transition, the errno the
    /// kernel left on it (0: none), its retransmits and smoothed RTT (microseconds; 0:
    /// never measured). Printed by their users (names, not numbers).
    #[serde(skip)]
    pub cgroup_id: u64,
    #[serde(skip)]
    pub error: u32,
    #[serde(skip)]
    pub retrans: u32,
    #[serde(skip)]
    pub srtt_us: u32,
}

impl Lifetime {
    pub fn duration_ns(&self) -> Option<u64> {
        self.start_ns.map(|s| self.end_ns.saturating_sub(s))
    }

    /// The connection's socket with its final tuple, for filters.
    pub fn as_socket(&self) -> crate::model::socket::InetSocket {
        let state = self.path.last().copied().unwrap_or(TcpState::Close as u8);
        crate::model::socket::InetSocket::tcp(
            self.family,
            state,
            (self.src, self.sport),
            (self.dst, self.dport),
            self.cookie,
        )
        .with_cgroup((self.cgroup_id != 0).then_some(self.cgroup_id))
    }

    /// `SYN_SENT>ESTABLISHED>FIN_WAIT1>FIN_WAIT2>CLOSE`.
    pub fn path_text(&self) -> String {
        self.path.iter().map(|&s| kernel_state_name(s)).collect::<Vec<_>>().join(">")
    }
}

#[derive(Clone, Debug)]
struct Open {
    life: Lifetime,
}

/// Listening sockets by (netns, port), each with the owner (`O`: a pid and a name, as
/// the caller keeps them) of the connections it passes on until accept() names theirs.
/// Several per port: v4 and v6, other addresses, SO_REUSEPORT groups.
#[derive(Debug)]
pub(crate) struct Listeners<O> {
    at: HashMap<(u32, u16), Vec<Listener<O>>>,
}

/// A listening socket: (cookie, local address, owner).
type Listener<O> = (u64, IpAddr, O);

impl<O> Default for Listeners<O> {
    fn default() -> Listeners<O> {
        Listeners { at: HashMap::new() }
    }
}

impl<O: Clone> Listeners<O> {
    /// Socket `cookie` listens on `addr:port` in `netns`, for `owner`.
    pub(crate) fn listen(&mut self, netns: u32, port: u16, cookie: u64, addr: IpAddr, owner: O) {
        let at = self.at.entry((netns, port)).or_default();
        at.retain(|l| l.0 != cookie);
        at.push((cookie, addr, owner));
    }

    /// Listener `cookie` closed. Its CLOSE transition has port 0 (see `Tuples` in
    /// trace): found by cookie.
    pub(crate) fn close(&mut self, cookie: u64) {
        for at in self.at.values_mut() {
            at.retain(|l| l.0 != cookie);
        }
        self.at.retain(|_, at| !at.is_empty());
    }

    /// The owner of the listener a passive open on `local:port` came from: one bound to
    /// that address, else to the any address of its family, else a dual-stack `::`.
    pub(crate) fn owner(&self, netns: u32, local: IpAddr, port: u16) -> Option<O> {
        let at = self.at.get(&(netns, port))?;
        let mapped = match local {
            IpAddr::V6(a) => a.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let rank = |addr: &IpAddr| -> u8 {
            if *addr == local || Some(*addr) == mapped {
                0
            } else if addr.is_unspecified() && addr.is_ipv4() == local.is_ipv4() {
                1
            } else if addr.is_unspecified() && addr.is_ipv6() {
                2
            } else {
                3
            }
        };
        at.iter().filter(|l| rank(&l.1) < 3).min_by_key(|l| rank(&l.1)).map(|l| l.2.clone())
    }
}

/// How the first transition seen of a connection opened it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opened {
    /// CLOSE -> SYN_SENT: connect(), in the caller's context.
    Active,
    /// LISTEN -> ...: a child of a listener, in softirq context.
    Passive,
    /// Anything else: the connection began before tracing did.
    Before,
}

pub(crate) fn opened(old: u8, new: u8) -> Opened {
    if old == TcpState::Close as u8 && new == TcpState::SynSent as u8 {
        Opened::Active
    } else if old == TcpState::Listen as u8 {
        Opened::Passive
    } else {
        Opened::Before
    }
}

/// Whether a transition belongs to a listening socket rather than a connection: it
/// enters LISTEN, or leaves it for CLOSE (a passive child leaves it for SYN_RECV).
pub(crate) fn is_listener_transition(old: u8, new: u8) -> bool {
    new == TcpState::Listen as u8 || (old == TcpState::Listen as u8 && new == TcpState::Close as u8)
}

/// Follows every socket by cookie from its first transition to CLOSE.
#[derive(Debug, Default)]
pub struct Tracker {
    open: HashMap<u64, Open>,
    /// Listeners: (pid, comm) of their owners.
    listeners: Listeners<(u32, String)>,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Keeps only the connections `keep` says still exist (after a resync).
    pub fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) {
        self.open.retain(|&cookie, _| keep(cookie));
    }

    /// Connections in progress.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Feeds one event; returns the lifetime it completed, if any.
    pub fn observe(&mut self, t: &Transition) -> Option<Lifetime> {
        if t.accept {
            if let Some(o) = self.open.get_mut(&t.cookie) {
                o.life.pid = t.pid;
                o.life.comm = t.comm.to_string();
                o.life.owner = OwnerSource::Accept;
            }
            return None;
        }
        let (old, new) = (t.old, t.new);
        let close = TcpState::Close as u8;
        if new == TcpState::Listen as u8 {
            self.listeners.listen(t.netns, t.sport, t.cookie, t.src, (t.pid, t.comm.to_string()));
            return None;
        }
        if is_listener_transition(old, new) {
            self.listeners.close(t.cookie);
            return None;
        }
        let entry = match self.open.entry(t.cookie) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let (start_ns, pid, comm, owner, active) = match opened(old, new) {
                    Opened::Active => (Some(t.ts_ns), t.pid, t.comm.to_string(), OwnerSource::Connect, Some(true)),
                    Opened::Passive => {
                        let (pid, comm) = self.listeners.owner(t.netns, t.src, t.sport).unwrap_or_default();
                        let owner = if pid == 0 { OwnerSource::Unknown } else { OwnerSource::Listener };
                        (Some(t.ts_ns), pid, comm, owner, Some(false))
                    }
                    Opened::Before => (None, 0, String::new(), OwnerSource::Unknown, None),
                };
                v.insert(Open {
                    life: Lifetime {
                        cookie: t.cookie,
                        netns: t.netns,
                        family: t.family,
                        src: t.src,
                        sport: t.sport,
                        dst: t.dst,
                        dport: t.dport,
                        start_ns,
                        end_ns: 0,
                        pid,
                        comm,
                        owner,
                        active,
                        bytes_sent: 0,
                        bytes_received: 0,
                        path: Vec::new(),
                        cgroup_id: 0,
                        error: 0,
                        retrans: 0,
                        srtt_us: 0,
                    },
                })
            }
        };
        let life = &mut entry.life;
        life.path.push(new);
        // The first transition can come before the kernel filled in the tuple, and CLOSE
        // comes after it released the port: keep the last complete one.
        if t.sport != 0 && t.dport != 0 {
            (life.src, life.sport, life.dst, life.dport) = (t.src, t.sport, t.dst, t.dport);
        }
        life.bytes_sent = t.bytes_acked;
        life.bytes_received = t.bytes_received;
        if life.cgroup_id == 0 {
            life.cgroup_id = t.cgroup_id;
        }
        if new != close {
            return None;
        }
        (life.error, life.retrans, life.srtt_us) = (t.error, t.retrans, t.srtt_us);
        let mut done = self.open.remove(&t.cookie)?.life;
        done.end_ns = t.ts_ns;
        Some(done)
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use TcpState::*;

    fn ev(cookie: u64, ts: u64, old: TcpState, new: TcpState, ports: (u16, u16), pid: u32, comm: &str) -> Transition {
        Transition {
            netns: 7,
            pid,
            tid: pid,
            comm: comm.into(),
            bytes_acked: ts,
            bytes_received: ts * 2,
            ..Transition::fixture(cookie, ts, old, new, ports)
        }
    }

    #[test]
    fn client_and_server_of_a_short_connection() {
        let mut tr = Tracker::new();
        assert_eq!(tr.observe(&ev(1, 10, Close, Listen, (80, 0), 100, "server")), None);
        // Loopback: every softirq transition runs in the client's context (pid 200).
        let client = [
            ev(2, 20, Close, SynSent, (0, 80), 200, "client"),
            ev(2, 30, SynSent, Established, (5000, 80), 200, "client"),
        ];
        for e in &client {
            assert_eq!(tr.observe(e), None);
        }
        assert_eq!(tr.observe(&ev(3, 31, Listen, SynRecv, (80, 5000), 200, "client")), None);
        assert_eq!(tr.observe(&ev(3, 32, SynRecv, Established, (80, 5000), 200, "client")), None);
        let mut accept = ev(3, 33, Close, Close, (80, 5000), 100, "server");
        accept.accept = true;
        assert_eq!(tr.observe(&accept), None);
        tr.observe(&ev(2, 40, Established, FinWait1, (5000, 80), 200, "client"));
        tr.observe(&ev(3, 41, Established, CloseWait, (80, 5000), 200, "client"));
        tr.observe(&ev(2, 42, FinWait1, FinWait2, (5000, 80), 200, "client"));
        tr.observe(&ev(3, 43, CloseWait, LastAck, (80, 5000), 100, "server"));
        let c = tr.observe(&ev(2, 44, FinWait2, Close, (0, 80), 100, "server")).expect("client done");
        let s = tr.observe(&ev(3, 45, LastAck, Close, (0, 5000), 200, "client")).expect("server done");
        assert_eq!((c.pid, c.comm.as_str(), c.owner, c.active), (200, "client", OwnerSource::Connect, Some(true)));
        assert_eq!((c.sport, c.dport), (5000, 80), "port of the complete tuple, not CLOSE's 0");
        assert_eq!(c.duration_ns(), Some(24));
        assert_eq!(c.path_text(), "SYN_SENT>ESTABLISHED>FIN_WAIT1>FIN_WAIT2>CLOSE");
        assert_eq!((c.bytes_sent, c.bytes_received), (44, 88));
        assert_eq!((s.pid, s.comm.as_str(), s.owner, s.active), (100, "server", OwnerSource::Accept, Some(false)));
        assert_eq!(s.path_text(), "SYN_RECV>ESTABLISHED>CLOSE_WAIT>LAST_ACK>CLOSE");
        assert_eq!(tr.open_count(), 0);
    }

    #[test]
    fn listeners_on_one_port_keep_their_own_owners() {
        let mut tr = Tracker::new();
        let mut v4 = ev(1, 1, Close, Listen, (80, 0), 100, "nginx");
        v4.src = "10.0.0.1".parse().unwrap();
        tr.observe(&v4);
        let mut v6 = ev(2, 2, Close, Listen, (80, 0), 200, "caddy");
        v6.src = "::".parse().unwrap();
        tr.observe(&v6);
        let child = |cookie, src: &str| {
            let mut c = ev(cookie, 3, Listen, SynRecv, (80, 6000), 9, "softirq");
            c.src = src.parse().unwrap();
            c
        };
        tr.observe(&child(3, "10.0.0.1"));
        tr.observe(&child(4, "::ffff:127.0.0.1"));
        let a = tr.observe(&ev(3, 4, SynRecv, Close, (80, 6000), 9, "softirq")).unwrap();
        let b = tr.observe(&ev(4, 4, SynRecv, Close, (80, 6000), 9, "softirq")).unwrap();
        assert_eq!((a.pid, b.pid), (100, 200));
        // Closing one listener (its CLOSE has port 0) leaves the other's owner.
        tr.observe(&ev(1, 5, Listen, Close, (0, 0), 100, "nginx"));
        tr.observe(&child(5, "::1"));
        assert_eq!(tr.observe(&ev(5, 6, SynRecv, Close, (80, 6000), 9, "x")).unwrap().pid, 200);
    }

    #[test]
    fn unaccepted_and_pre_existing_connections() {
        let mut tr = Tracker::new();
        tr.observe(&ev(1, 1, Close, Listen, (80, 0), 100, "server"));
        tr.observe(&ev(3, 2, Listen, SynRecv, (80, 6000), 9, "softirq"));
        let s = tr.observe(&ev(3, 3, SynRecv, Close, (80, 6000), 9, "softirq")).unwrap();
        assert_eq!((s.pid, s.owner), (100, OwnerSource::Listener));
        // Began before tracing: no start, no owner; still reported.
        let p = tr.observe(&ev(4, 5, Established, Close, (7000, 22), 1, "x")).unwrap();
        assert_eq!((p.start_ns, p.owner, p.active), (None, OwnerSource::Unknown, None));
        // Listeners are not connections.
        assert_eq!(tr.observe(&ev(1, 9, Listen, Close, (80, 0), 100, "server")), None);
        assert_eq!(tr.open_count(), 0);
    }
}
