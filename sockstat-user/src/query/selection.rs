//! What a query selects, resolved from the command line once: the socket tables,
//! address families and states (ss's `current_filter`), the FILTER expression, where the
//! answer comes from, and what each row must carry beyond its tuple and state. How the
//! rows are printed is not here: that is `render::Style`.

use std::path::PathBuf;

use crate::filter::{Filter, SS_CONN};
use crate::model::abi::{AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_TIPC, AF_UNIX, AF_VSOCK, AF_XDP};

/// The bit of address family `af` in [`Selection::families`].
#[must_use]
pub const fn fam(af: u16) -> u64 {
    1 << af
}

/// ss's socket tables (`TCP_DB` ...), in ss.c's enum order: the discriminant is the bit
/// in [`Selection::tables`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Tcp = 0,
    Mptcp,
    Dccp,
    Udp,
    Raw,
    UnixDgram,
    UnixStream,
    UnixSeqpacket,
    PacketDgram,
    PacketRaw,
    Netlink,
    Sctp,
    VsockStream,
    VsockDgram,
    Tipc,
    Xdp,
}

impl Table {
    pub const ALL: [Table; 16] = [
        Table::Tcp,
        Table::Mptcp,
        Table::Dccp,
        Table::Udp,
        Table::Raw,
        Table::UnixDgram,
        Table::UnixStream,
        Table::UnixSeqpacket,
        Table::PacketDgram,
        Table::PacketRaw,
        Table::Netlink,
        Table::Sctp,
        Table::VsockStream,
        Table::VsockDgram,
        Table::Tipc,
        Table::Xdp,
    ];

    #[must_use]
    pub const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// The name `-A`/`--query` uses for the table.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Table::Tcp => "tcp",
            Table::Mptcp => "mptcp",
            Table::Dccp => "dccp",
            Table::Udp => "udp",
            Table::Raw => "raw",
            Table::UnixDgram => "unix_dgram",
            Table::UnixStream => "unix_stream",
            Table::UnixSeqpacket => "unix_seqpacket",
            Table::PacketDgram => "packet_dgram",
            Table::PacketRaw => "packet_raw",
            Table::Netlink => "netlink",
            Table::Sctp => "sctp",
            Table::VsockStream => "vsock_stream",
            Table::VsockDgram => "vsock_dgram",
            Table::Tipc => "tipc",
            Table::Xdp => "xdp",
        }
    }

    /// ss.c `default_dbs[db]`: (states, families).
    #[must_use]
    pub const fn defaults(self) -> (u32, u64) {
        use sockstat_ebpf::TcpState::{Close, Established, Listen};
        let inet = fam(AF_INET) | fam(AF_INET6);
        let estab = crate::filter::bit(Established);
        let close = crate::filter::bit(Close);
        match self {
            Table::Tcp | Table::Mptcp | Table::Dccp | Table::Sctp => (SS_CONN, inet),
            Table::Udp | Table::Raw => (estab, inet),
            Table::UnixDgram => (close, fam(AF_UNIX)),
            Table::UnixStream | Table::UnixSeqpacket => (SS_CONN, fam(AF_UNIX)),
            Table::PacketDgram | Table::PacketRaw => (close, fam(AF_PACKET)),
            Table::Netlink => (close, fam(AF_NETLINK)),
            Table::VsockStream | Table::VsockDgram => (SS_CONN, fam(AF_VSOCK)),
            Table::Tipc => (estab | crate::filter::bit(Listen) | close, fam(AF_TIPC)),
            Table::Xdp => (close, fam(AF_XDP)),
        }
    }
}

/// Where the answer comes from (`--source`, sockstat's own option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceChoice {
    /// The agent if its socket answers, otherwise a sock_diag dump.
    Auto,
    /// The agent only; failing to reach it is an error.
    Agent,
    /// A sock_diag dump only, as ss does.
    Kernel,
}

/// What a query selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Selected socket tables: bits are [`Table`] discriminants (ss's `current_filter.dbs`).
    pub tables: u32,
    /// Selected address families: bit `af` (ss's `current_filter.families`).
    pub families: u64,
    /// Selected states: bit n = state n, at most `SS_ALL` (ss's `current_filter.states`).
    pub states: u32,
    /// The parsed FILTER.
    pub filter: Filter,
    /// ss's `preferred_family`: the family of the last `-4`/`-6`/`-x`/`-0`/`-f`/`--vsock`
    /// ... option (`None` if none). ss dumps inet sockets of AF_INET only when it is
    /// AF_INET, of AF_INET6 only when it is AF_INET6, else both (`inet_show_netlink`).
    pub preferred_family: Option<u16>,
    /// `--source`.
    pub source: SourceChoice,
    /// `--socket PATH`: the agent's query socket.
    pub agent_socket: PathBuf,
    /// `-K`: close every socket shown, with SOCK_DESTROY.
    pub kill: bool,
    /// What the printed rows must carry.
    pub needs: Needs,
    /// `--tcpdiag-all`: a recorded `TCPDIAG_FILE` is read whole and selected like a live
    /// dump, where ss (and sockstat by default) reads it up to its first `NLMSG_DONE` and
    /// applies only the FILTER expression.
    pub recorded_all_dumps: bool,
    /// `--bpf-maps` (every BPF socket-local storage map) or `--bpf-map-id=ID` (those
    /// maps): the sk_storage values to print with each inet socket.
    pub bpf_maps: Option<BpfMaps>,
}

/// Which BPF socket-local storage maps to show (ss 7.1's `--bpf-maps`, `--bpf-map-id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BpfMaps {
    All,
    /// Each id once, in the order first given, with its text as given (ss names a map of
    /// the wrong type by it).
    Ids(Vec<(u32, String)>),
}

/// What the printed rows must carry beyond the tuple, state and queues, by the option
/// that asks for it: it decides what a dump requests and whether the agent's table can
/// answer (see `query::tcp_source`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// `-e`.
    pub details: bool,
    /// `-m`.
    pub mem: bool,
    /// `-i`.
    pub info: bool,
    /// `-p`.
    pub owners: bool,
    /// `-T`: owners per thread.
    pub threads: bool,
    /// `--cgroup`.
    pub cgroup: bool,
    /// `--tos`.
    pub tos: bool,
    /// `--inet-sockopt`.
    pub sockopt: bool,
    /// `-b`.
    pub bpf: bool,
    /// `-o` (and `-e`, `-b`, which imply it): timers.
    pub timers: bool,
}

impl Selection {
    #[must_use]
    pub fn has_table(&self, t: Table) -> bool {
        self.tables & t.bit() != 0
    }

    #[must_use]
    pub fn has_family(&self, af: u16) -> bool {
        self.families & fam(af) != 0
    }
}
