//! How a full TCP socket moves through its states, as far as state-transition events
//! tell: one copy of the rules shared by the agent's live table (`live::table`) and the
//! timeline's replay for `--at` (`timeline::replay`). Pure: no I/O, no clock. Imports
//! only the socket record and the kernel's state numbers.
//!
//! What the two do with the sockets events do not follow (mini-sockets: TIME-WAIT and
//! SYN-RECV) is theirs, and differs for a reason: the live table leaves them to a
//! sock_diag dump at query time, while the replay has no kernel to ask about the past
//! and rebuilds timewait sockets from the close that made them ([`time_wait_row`]).

use sockstat_ebpf::TcpState;

use crate::model::socket::InetSocket;

/// How long a timewait socket lives (TCP_TIMEWAIT_LEN, include/net/tcp.h).
pub const TIME_WAIT_NS: i64 = 60_000_000_000;

/// What one transition does to the full socket it names (by cookie).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The socket is now in the transition's new state: known from here on if it was
    /// not, else updated ([`moved`]).
    Moved,
    /// The full socket is gone: a transition to CLOSE. `to_time_wait` when it closed from
    /// FIN-WAIT-2 or CLOSING, the paths on which tcp_time_wait() hands the tuple to a
    /// timewait socket (net/ipv4/tcp_minisocks.c), which gets no events of its own.
    Closed { to_time_wait: bool },
}

/// What a transition from `old` to `new` (kernel state numbers) means for a full socket.
#[must_use]
pub fn change(old: u8, new: u8) -> Change {
    if new == TcpState::Close as u8 {
        Change::Closed { to_time_wait: old == TcpState::FinWait2 as u8 || old == TcpState::Closing as u8 }
    } else {
        Change::Moved
    }
}

/// The row of a socket after a [`Change::Moved`] transition: `event` is the socket as
/// the transition saw it (state, tuple, queues, v6only, device), `before` the row it had.
/// Owner uid and inode do not change with the state and an event does not carry them:
/// they stay what a dump said. An event's tuple can be partial (the first one comes
/// before connect() picks the local port, as `timeline::lifetime` notes too): then the
/// last complete tuple stays.
#[must_use]
pub fn moved(before: Option<&InetSocket>, mut event: InetSocket) -> InetSocket {
    if let Some(b) = before {
        (event.uid, event.inode) = (b.uid, b.inode);
        if event.sport == 0 || event.dport == 0 {
            (event.src, event.sport, event.dst, event.dport) = (b.src, b.sport, b.dst, b.dport);
        }
    }
    event
}

/// The timewait socket that takes over the tuple of `closed`, a full socket that closed
/// with `to_time_wait` ([`Change::Closed`]): state TIME-WAIT, empty queues. It lives
/// [`TIME_WAIT_NS`], or until a new connection takes its tuple.
#[must_use]
pub fn time_wait_row(mut closed: InetSocket) -> InetSocket {
    closed.state = TcpState::TimeWait as u8;
    (closed.rqueue, closed.wqueue) = (0, 0);
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_hands_to_time_wait_only_from_the_last_states_of_an_active_close() {
        use TcpState::*;
        assert_eq!(change(FinWait2 as u8, Close as u8), Change::Closed { to_time_wait: true });
        assert_eq!(change(Closing as u8, Close as u8), Change::Closed { to_time_wait: true });
        for old in [LastAck, Listen, SynSent, Established, FinWait1] {
            assert_eq!(change(old as u8, Close as u8), Change::Closed { to_time_wait: false }, "{old:?}");
        }
        assert_eq!(change(SynSent as u8, Established as u8), Change::Moved);
    }

    #[test]
    fn a_move_keeps_dump_only_fields_and_the_last_complete_tuple() {
        let lo = "127.0.0.1".parse().unwrap();
        let before = InetSocket { uid: 1000, inode: 77, ..InetSocket::tcp(2, 1, (lo, 5000), (lo, 80), 9) };
        let after = moved(Some(&before), InetSocket::tcp(2, 4, (lo, 5000), (lo, 80), 9));
        assert_eq!((after.state, after.uid, after.inode), (4, 1000, 77));
        let partial = moved(Some(&before), InetSocket::tcp(2, 4, (lo, 0), (lo, 80), 9));
        assert_eq!((partial.sport, partial.state), (5000, 4));
        assert_eq!(moved(None, InetSocket::tcp(2, 2, (lo, 0), (lo, 80), 9)).sport, 0);
    }
}
