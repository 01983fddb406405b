//! [`Subject`]: what a filter sees of one socket, as ss fills its `struct sockstat` for
//! each family before `run_ssfilter()`. Built from `model` records; no I/O.

use std::net::IpAddr;

use crate::model::socket::{InetSocket, NetlinkSocket, PacketSocket, Source, VsockSocket, XdpSocket};
use sockstat_ebpf::TcpState;

use super::{AF_NETLINK, AF_PACKET, AF_UNIX, AF_VSOCK, AF_XDP};

/// What a filter sees of one socket: enough of ss's `struct sockstat` for every condition.
///
/// Build it from an [`InetSocket`] with `From`, or from a unix socket record with
/// [`Subject::unix`]. Fields sockstat does not know yet are `Option`: a condition on an
/// unknown value is false (so `not` of it is true), see [`Subject::mark`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subject<'a> {
    /// The socket's own family (AF_INET, AF_INET6, AF_UNIX): a v4-mapped connection on an
    /// AF_INET6 socket is AF_INET6 here, as in sock_diag.
    pub family: u16,
    pub local: Endpoint<'a>,
    pub remote: Endpoint<'a>,
    /// ss's `lport`/`rport` (C `int`s): ports for inet; for unix, ss puts the inode and the
    /// peer's inode here, and `sport`/`dport` comparisons use them.
    pub lport: i32,
    pub rport: i32,
    /// Bound interface index (`idiag_if`), 0 for none.
    pub ifindex: u32,
    /// `sk_mark` (sock_diag's `INET_DIAG_MARK`, sent to CAP_NET_ADMIN only). `None`: not in
    /// the record, and every `fwmark` condition is false.
    pub mark: Option<u32>,
    /// cgroup v2 id (`INET_DIAG_CGROUP_ID`). `None`: every `cgroup` condition is false.
    pub cgroup_id: Option<u64>,
    /// Whether the local port was bound explicitly (`SOCK_BINDPORT_LOCK` in
    /// `sk_userlocks`), which is the kernel's half of `autobound`. sock_diag does not
    /// report it: `From<&InetSocket>` guesses it from the state (see there); `None` guesses
    /// it from the port (explicit iff outside `ip_local_port_range`).
    pub port_locked: Option<bool>,
}

/// One end of a [`Subject`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint<'a> {
    Inet(IpAddr),
    /// A unix socket's path (`@` first for the abstract namespace, as ss prints it), or
    /// `None` when unnamed.
    Unix(Option<&'a str>),
    /// What ss's `struct sockstat` holds in `local.data`/`remote.data` for a packet,
    /// netlink or vsock socket: a `__u32` in native byte order in the first 4 bytes, zeros
    /// after. Local end: the packet protocol (host order), the netlink protocol, the vsock
    /// cid; remote end: zero for packet and netlink, the peer's cid for vsock.
    Data([u8; 16]),
}

impl Endpoint<'_> {
    /// [`Endpoint::Data`] holding `value` as ss stores it (`local.data[0] = value`).
    #[must_use]
    pub fn data(value: u32) -> Self {
        let mut bytes = [0u8; 16];
        bytes[..4].copy_from_slice(&value.to_ne_bytes());
        Endpoint::Data(bytes)
    }
}

impl<'a> From<&'a InetSocket> for Subject<'a> {
    fn from(s: &'a InetSocket) -> Self {
        Subject {
            family: s.family,
            local: Endpoint::Inet(s.src),
            remote: Endpoint::Inet(s.dst),
            lport: i32::from(s.sport),
            rport: i32::from(s.dport),
            ifindex: s.ifindex,
            // ss reads both from the reply's INET_DIAG_MARK and INET_DIAG_CGROUP_ID, 0 when
            // absent (TIME-WAIT and request socks, raw sockets read from /proc). The agent's
            // table has neither: unknown, and the query is sent to the kernel instead
            // (`query::tcp_source`).
            mark: match (&s.ext, s.source) {
                (Some(e), _) => Some(e.mark),
                (None, Source::Kernel) => Some(0),
                (None, Source::Table) => None,
            },
            cgroup_id: match (&s.ext, s.source) {
                (Some(e), _) => Some(e.cgroup_id),
                (None, Source::Kernel) => Some(0),
                (None, Source::Table) => None,
            },
            // A guess, as sock_diag does not say: listeners bound their port explicitly;
            // no other TCP socket carries the lock where the kernel looks (clients bind
            // automatically, and real ss 6.1 counts accepted sockets as autobound too).
            // Wrong for a client that bind()s a port before connect(), or a listener that
            // never called bind(). Other protocols (UDP servers bind, clients do not):
            // guessed from the port, as `None` says.
            port_locked: if s.state == TcpState::Listen as u8 {
                Some(true)
            } else if s.protocol == sockstat_ebpf::IPPROTO_TCP {
                Some(false)
            } else {
                None
            },
        }
    }
}

impl<'a> Subject<'a> {
    /// A unix socket: its path and its peer's (`None` when unnamed or unknown), its inode
    /// and its peer's inode (ss's `lport`/`rport` for unix sockets, compared as C `int`s).
    #[must_use]
    pub fn unix(path: Option<&'a str>, peer_path: Option<&'a str>, inode: u32, peer_inode: u32) -> Self {
        Subject {
            family: AF_UNIX,
            local: Endpoint::Unix(path),
            remote: Endpoint::Unix(peer_path),
            // ss stores the u32 inode in an int: the wrap is ss's.
            lport: inode.cast_signed(),
            rport: peer_inode.cast_signed(),
            ifindex: 0,
            // ss's zero-initialised `struct sockstat`: unix_diag has neither.
            mark: Some(0),
            cgroup_id: Some(0),
            port_locked: None,
        }
    }
}

impl Subject<'static> {
    /// A netlink socket as ss's `netlink_show_one()` fills `struct sockstat` before
    /// `run_ssfilter()`: family AF_NETLINK, `lport` the port id (0 for the kernel's own
    /// sockets, negative when autobound), `rport` -1, the protocol in `local.data`, the
    /// rest zero (no interface, mark 0, cgroup 0).
    #[must_use]
    pub fn netlink(s: &NetlinkSocket) -> Self {
        Subject {
            family: AF_NETLINK,
            local: Endpoint::data(u32::from(s.protocol)),
            remote: Endpoint::data(0),
            lport: s.portid,
            rport: -1,
            ifindex: 0,
            mark: Some(0),
            cgroup_id: Some(0),
            port_locked: None,
        }
    }

    /// A packet socket as ss's `packet_show_sock()`/`packet_stats_print()` fill it:
    /// family AF_PACKET, `lport` and `iface` the bound interface index (0 = any), `rport`
    /// 0, the protocol (host order, 3 = ETH_P_ALL) in `local.data`, the rest zero.
    #[must_use]
    pub fn packet(s: &PacketSocket) -> Self {
        Subject {
            family: AF_PACKET,
            local: Endpoint::data(u32::from(s.protocol)),
            remote: Endpoint::data(0),
            // ss stores the unsigned index in an int: the wrap is ss's.
            lport: s.ifindex.cast_signed(),
            rport: 0,
            ifindex: s.ifindex,
            mark: Some(0),
            cgroup_id: Some(0),
            port_locked: None,
        }
    }

    /// An XDP socket as ss's `xdp_show_sock()`/`xdp_stats_print()` fill it: family
    /// AF_XDP, `iface` the bound interface index (0 = not bound), `lport` the queue id
    /// (a u32 stored in an int), `rport` 0, both addresses zero (ss never sets them), the
    /// rest zero.
    #[must_use]
    pub fn xdp(s: &XdpSocket) -> Self {
        Subject {
            family: AF_XDP,
            local: Endpoint::data(0),
            remote: Endpoint::data(0),
            lport: s.queue_id.cast_signed(),
            rport: 0,
            ifindex: s.ifindex,
            mark: Some(0),
            cgroup_id: Some(0),
            port_locked: None,
        }
    }

    /// A vsock socket as ss's `vsock_show_sock()` fills it: family AF_VSOCK, the cids in
    /// `local.data`/`remote.data`, the ports in `lport`/`rport` (u32s stored in ints, so
    /// `VMADDR_PORT_ANY` is -1), the rest zero.
    #[must_use]
    pub fn vsock(s: &VsockSocket) -> Self {
        Subject {
            family: AF_VSOCK,
            local: Endpoint::data(s.src_cid),
            remote: Endpoint::data(s.dst_cid),
            lport: s.src_port.cast_signed(),
            rport: s.dst_port.cast_signed(),
            ifindex: 0,
            mark: Some(0),
            cgroup_id: Some(0),
            port_locked: None,
        }
    }
}
