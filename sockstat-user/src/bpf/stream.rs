//! The event stream's records: ring-buffer records -> typed [`Transition`]s,
//! length-checked (read by [`crate::bpf::reader`]).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::SystemTime,
};

use serde::{Deserialize, Serialize};
use sockstat_ebpf::{AF_INET, AF_INET6, StateEvent, TcpState};

/// One TCP state transition, decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// CLOCK_MONOTONIC nanoseconds (`bpf_ktime_get_ns`).
    pub ts_ns: u64,
    pub cookie: u64,
    pub netns: u32,
    pub pid: u32,
    pub tid: u32,
    pub comm: crate::model::comm::Comm,
    pub family: u16,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    pub old: u8,
    pub new: u8,
    /// An accept() return, not a transition: `pid`/`comm` own the socket.
    pub accept: bool,
    /// A request socket a listener made for an incoming SYN (state NEW_SYN_RECV), not a
    /// transition: its namespace is `netns_cookie`'s (`netns` is 0).
    pub request: bool,
    pub netns_cookie: u64,
    pub v6only: bool,
    /// SO_BINDTODEVICE interface index (0: none).
    pub ifindex: u32,
    /// Recv-Q and Send-Q as inet_diag would have reported them at the transition
    /// (net/ipv4/tcp_diag.c: accept queue/backlog for LISTEN, else
    /// rcv_nxt - copied_seq and write_seq - snd_una).
    pub rqueue: u32,
    pub wqueue: u32,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    /// The socket's cgroup v2 id (0: unknown).
    pub cgroup_id: u64,
    /// At a transition to CLOSE: the errno the kernel left on the socket (`sk_err`; 0:
    /// none), its retransmits (`total_retrans`) and smoothed RTT in microseconds; 0 at
    /// every other transition.
    pub error: u32,
    pub retrans: u32,
    pub srtt_us: u32,
}

fn addr(family: u16, raw: &[u8; 16]) -> IpAddr {
    if family == AF_INET {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*raw))
    }
}

impl Transition {
    pub fn from_event(ev: &StateEvent) -> Transition {
        let (rqueue, wqueue) = if ev.newstate == TcpState::Listen as u8 {
            (ev.ack_backlog, ev.max_ack_backlog)
        } else {
            // Sequence numbers wrap: the differences are taken mod 2^32, and a negative
            // receive difference is clamped to 0 as tcp_diag does.
            let r = ev.rcv_nxt.wrapping_sub(ev.copied_seq);
            (if (r as i32) < 0 { 0 } else { r }, ev.write_seq.wrapping_sub(ev.snd_una))
        };
        Transition {
            ts_ns: ev.ts_ns,
            cookie: ev.cookie,
            netns: ev.netns,
            pid: ev.pid,
            tid: ev.tid,
            comm: crate::model::comm::Comm::from_kernel(&ev.comm),
            family: ev.family,
            src: addr(ev.family, &ev.saddr),
            sport: ev.sport,
            dst: addr(ev.family, &ev.daddr),
            dport: ev.dport,
            old: ev.oldstate,
            new: ev.newstate,
            accept: ev.kind == sockstat_ebpf::EVENT_ACCEPT,
            request: ev.kind == sockstat_ebpf::EVENT_REQUEST,
            netns_cookie: ev.netns_cookie,
            v6only: ev.v6only != 0,
            ifindex: ev.bound_dev_if,
            rqueue,
            wqueue,
            bytes_acked: ev.bytes_acked,
            bytes_received: ev.bytes_received,
            cgroup_id: ev.cgroup_id,
            error: ev.error,
            retrans: ev.retrans,
            srtt_us: ev.srtt_us,
        }
    }

    /// The socket as this transition saw it, for filters: with its cgroup (a boxed
    /// detail) when the program read one; see [`Transition::as_row`].
    pub fn as_socket(&self) -> crate::model::socket::InetSocket {
        self.as_row().with_cgroup((self.cgroup_id != 0).then_some(self.cgroup_id))
    }

    /// The socket as this transition saw it, without details: a table row, and what a
    /// filter without a `cgroup` (or `fwmark`) condition looks at.
    pub fn as_row(&self) -> crate::model::socket::InetSocket {
        crate::model::socket::InetSocket {
            v6only: self.v6only,
            ifindex: self.ifindex,
            rqueue: self.rqueue,
            wqueue: self.wqueue,
            ..crate::model::socket::InetSocket::tcp(
                self.family,
                self.new,
                (self.src, self.sport),
                (self.dst, self.dport),
                self.cookie,
            )
        }
    }

    /// A state transition (not an accept notice or a request socket).
    pub fn is_transition(&self) -> bool {
        !self.accept && !self.request
    }

    pub fn is_inet(&self) -> bool {
        self.family == AF_INET || self.family == AF_INET6
    }
}

/// Kernel state name without its `TCP_` prefix (`ESTABLISHED`, `TIME_WAIT` ...), for traces.
pub fn kernel_state_name(state: u8) -> &'static str {
    match TcpState::try_from(state) {
        Ok(TcpState::Established) => "ESTABLISHED",
        Ok(TcpState::SynSent) => "SYN_SENT",
        Ok(TcpState::SynRecv) => "SYN_RECV",
        Ok(TcpState::FinWait1) => "FIN_WAIT1",
        Ok(TcpState::FinWait2) => "FIN_WAIT2",
        Ok(TcpState::TimeWait) => "TIME_WAIT",
        Ok(TcpState::Close) => "CLOSE",
        Ok(TcpState::CloseWait) => "CLOSE_WAIT",
        Ok(TcpState::LastAck) => "LAST_ACK",
        Ok(TcpState::Listen) => "LISTEN",
        Ok(TcpState::Closing) => "CLOSING",
        Ok(TcpState::NewSynRecv) => "NEW_SYN_RECV",
        Ok(TcpState::BoundInactive) => "BOUND_INACTIVE",
        Err(_) => "UNKNOWN",
    }
}

/// The inverse of [`kernel_state_name`].
pub fn kernel_state_number(name: &str) -> Option<u8> {
    (1..=13).find(|&n| kernel_state_name(n) == name)
}

/// `CLOCK_REALTIME - CLOCK_MONOTONIC` in ns, read once: converting every event with
/// one offset keeps their order and spacing (a fresh offset per event would jitter by
/// the time between the two clock reads). A wall-clock step after it was taken is not
/// followed.
pub fn realtime_offset_ns() -> i64 {
    let real = match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(_) => 0,
    };
    real - i64::try_from(crate::model::clock::monotonic_now().as_nanos()).unwrap_or(0)
}

/// Most events one [`RingReader::drain`](crate::bpf::reader::RingReader::drain) call
/// hands out.
pub const DRAIN_MAX: usize = 65_536;

#[cfg(test)]
impl Transition {
    /// An IPv4 loopback transition for tests (127.0.0.1 on both ends); what is not given
    /// is zero or empty.
    pub(crate) fn fixture(
        cookie: u64,
        ts_ns: u64,
        old: TcpState,
        new: TcpState,
        (sport, dport): (u16, u16),
    ) -> Transition {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Transition {
            ts_ns,
            cookie,
            netns: 0,
            pid: 0,
            tid: 0,
            comm: crate::model::comm::Comm::default(),
            family: AF_INET,
            src: lo,
            sport,
            dst: lo,
            dport,
            old: old as u8,
            new: new as u8,
            accept: false,
            request: false,
            netns_cookie: 0,
            v6only: false,
            ifindex: 0,
            rqueue: 0,
            wqueue: 0,
            bytes_acked: 0,
            bytes_received: 0,
            cgroup_id: 0,
            error: 0,
            retrans: 0,
            srtt_us: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(new: TcpState) -> StateEvent {
        StateEvent {
            family: AF_INET,
            saddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            daddr: [10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            sport: 40000,
            dport: 80,
            newstate: new as u8,
            oldstate: TcpState::Established as u8,
            comm: *b"nginx: worker\0\0\0",
            ack_backlog: 3,
            max_ack_backlog: 511,
            rcv_nxt: 5,
            copied_seq: 0xffff_fffe,
            write_seq: 10,
            snd_una: 4,
            ..StateEvent::default()
        }
    }

    #[test]
    fn decodes_addresses_comm_and_queues() {
        let t = Transition::from_event(&event(TcpState::FinWait1));
        assert_eq!(t.src, "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(t.dst, "10.1.2.3".parse::<IpAddr>().unwrap());
        assert_eq!(t.comm, "nginx: worker");
        // 5 - 0xfffffffe wraps to 7.
        assert_eq!((t.rqueue, t.wqueue), (7, 6));
        let l = Transition::from_event(&event(TcpState::Listen));
        assert_eq!((l.rqueue, l.wqueue), (3, 511));
    }

    #[test]
    fn negative_receive_queue_is_clamped() {
        let mut ev = event(TcpState::Established);
        ev.rcv_nxt = 1;
        ev.copied_seq = 2;
        assert_eq!(Transition::from_event(&ev).rqueue, 0);
    }

    #[test]
    fn v6_addresses_decode() {
        let mut ev = event(TcpState::Established);
        ev.family = AF_INET6;
        ev.saddr = Ipv6Addr::LOCALHOST.octets();
        ev.daddr = "::ffff:127.0.0.1".parse::<Ipv6Addr>().unwrap().octets();
        let t = Transition::from_event(&ev);
        assert_eq!(t.src, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(t.dst.to_string(), "::ffff:127.0.0.1");
    }
}
