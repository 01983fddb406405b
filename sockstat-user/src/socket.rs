//! Normalised socket records, whatever their source (a sock_diag dump, the agent's live
//! table, a recorded dump, /proc/net/raw). Everything after `diag`/`table` works on these
//! types: [`InetSocket`] for TCP/UDP/raw/DCCP/SCTP, and one record type per other family
//! ([`UnixSocket`], [`PacketSocket`], [`NetlinkSocket`], [`VsockSocket`]), gathered per
//! socket table in a [`Snapshot`].
//!
//! Freshness, per family: TCP comes from the agent's table when one runs (queues and timers
//! as of the last transition or seed, see [`Source::Table`]), otherwise from sock_diag at
//! query time. Every other family is always dumped from the kernel by the client at query
//! time ([`Source::Kernel`]): UDP, UNIX, packet and netlink sockets change without a state
//! transition the eBPF program could see. Raw sockets come from /proc/net/raw and raw6 at
//! query time, because this kernel has no RAW_DIAG (ss falls back the same way).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
pub use sockstat_ebpf::TcpState;

/// Where a record's values came from; the formatter never needs it, `-e`/JSON and the
/// README's freshness table do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A sock_diag reply read at query time.
    Kernel,
    /// The agent's table: seeded from sock_diag, then kept by state-transition events.
    /// Queue sizes are as of the socket's last transition or the last seed.
    Table,
}

/// An internet (TCP for now) socket, as ss's `struct sockstat` holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InetSocket {
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u16,
    /// IPPROTO_TCP (6) for now.
    pub protocol: u8,
    /// Kernel TCP state number (include/net/tcp_states.h); see [`TcpState`].
    pub state: u8,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
    /// IPV6_V6ONLY (sock_diag's INET_DIAG_SKV6ONLY): ss prints `[::]` rather than `*` for
    /// the any address of such a socket.
    pub v6only: bool,
    /// `idiag_if`: interface the socket is bound to (0 = none), printed as `%dev`.
    pub ifindex: u32,
    /// Recv-Q: bytes not yet read, or for LISTEN the accept queue length.
    pub rqueue: u32,
    /// Send-Q: bytes not yet acknowledged, or for LISTEN the backlog.
    pub wqueue: u32,
    /// Socket cookie (`idiag_cookie`, printed by `ss -e` as `sk:`); 0 when unknown.
    pub cookie: u64,
    pub uid: u32,
    pub inode: u32,
    /// `idiag_timer`, `idiag_retrans`, `idiag_expires` (ms), for `-o`.
    pub timer: u8,
    pub retrans: u8,
    pub expires_ms: u32,
    pub source: Source,
}

/// IPPROTO_RAW: the `protocol` of an [`InetSocket`] read from /proc/net/raw(6). Its
/// `sport` then holds the socket's IP protocol number, as the kernel prints it there.
pub const PROTO_RAW_TABLE: u8 = 255;

/// A UNIX domain socket (sock_diag `unix_diag_msg` and its attributes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixSocket {
    /// SOCK_STREAM (1), SOCK_DGRAM (2) or SOCK_SEQPACKET (5).
    pub kind: u8,
    /// Kernel state number (TCP numbering: LISTEN, ESTABLISHED, CLOSE ...).
    pub state: u8,
    pub inode: u32,
    /// Inode of the peer (`UNIX_DIAG_PEER`), 0 when none.
    pub peer: u32,
    /// `UNIX_DIAG_NAME` bytes as the kernel sent them (abstract names start with NUL);
    /// `None` for an unnamed socket.
    pub name: Option<Vec<u8>>,
    /// `UNIX_DIAG_RQLEN`: for a listener, the accept queue and the backlog.
    pub rqueue: u32,
    pub wqueue: u32,
}

impl UnixSocket {
    /// The name ss shows and filters by: an abstract name with `@` for each of its NULs,
    /// a path up to its first NUL (ss prints it with `%s`); `None` when unnamed. Bytes
    /// that are not UTF-8 become U+FFFD (ss would print them raw).
    #[must_use]
    pub fn display_name(&self) -> Option<String> {
        let n = self.name.as_ref()?;
        Some(if n.first() == Some(&0) {
            let at: Vec<u8> = n.iter().map(|&b| if b == 0 { b'@' } else { b }).collect();
            String::from_utf8_lossy(&at).into_owned()
        } else {
            String::from_utf8_lossy(n.split(|&b| b == 0).next().unwrap_or_default()).into_owned()
        })
    }
}

/// One classic BPF instruction (`struct sock_filter`, include/uapi/linux/filter.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfInsn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// An AF_PACKET socket (sock_diag `packet_diag_msg` and its attributes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PacketSocket {
    /// SOCK_RAW (3) or SOCK_DGRAM (2).
    pub kind: u8,
    /// Ethernet protocol in host order (`pdiag_num`), 3 = ETH_P_ALL.
    pub protocol: u16,
    pub inode: u32,
    /// Bound interface (`PACKET_DIAG_INFO` `pdi_index`), 0 = any.
    pub ifindex: u32,
    /// `SK_MEMINFO_RMEM_ALLOC` of `PACKET_DIAG_MEMINFO`: what ss prints as Recv-Q.
    pub rqueue: u32,
    pub uid: u32,
    pub cookie: u64,
    /// The attached classic BPF program (`PACKET_DIAG_FILTER`), if any.
    pub filter: Option<Vec<BpfInsn>>,
}

/// An AF_NETLINK socket (sock_diag `netlink_diag_msg` and its attributes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetlinkSocket {
    /// NETLINK_ROUTE (0), NETLINK_SOCK_DIAG (4) ...
    pub protocol: u8,
    /// 0 = unconnected, 1 = NETLINK_CONNECTED.
    pub state: u8,
    /// Port id; the kernel's own sockets have 0, autobound ones may be negative.
    pub portid: i32,
    pub dst_portid: i32,
    pub dst_group: u32,
    /// `SK_MEMINFO_RMEM_ALLOC` / `SK_MEMINFO_WMEM_ALLOC` of `NETLINK_DIAG_MEMINFO`.
    pub rqueue: u32,
    pub wqueue: u32,
    pub inode: u32,
    pub cookie: u64,
    /// First word of `NETLINK_DIAG_GROUPS` (0 if absent).
    pub groups: u64,
}

/// An AF_VSOCK socket (sock_diag `vsock_diag_msg`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsockSocket {
    pub kind: u8,
    pub state: u8,
    pub src_cid: u32,
    pub src_port: u32,
    pub dst_cid: u32,
    pub dst_port: u32,
    pub inode: u32,
}

/// Every socket a query shows, per socket table, each in kernel dump order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub netlink: Vec<NetlinkSocket>,
    pub packet: Vec<PacketSocket>,
    pub unix: Vec<UnixSocket>,
    /// From /proc/net/raw and raw6: `protocol` is [`PROTO_RAW_TABLE`].
    pub raw: Vec<InetSocket>,
    pub udp: Vec<InetSocket>,
    pub tcp: Vec<InetSocket>,
    pub dccp: Vec<InetSocket>,
    pub sctp: Vec<InetSocket>,
    pub vsock: Vec<VsockSocket>,
    pub mptcp: Vec<InetSocket>,
}

/// Inode number of this process's network namespace (what `/proc/self/ns/net` names,
/// and what the eBPF program records per event).
pub fn own_netns() -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/proc/self/ns/net")?;
    Ok(u32::try_from(meta.ino()).unwrap_or(0))
}

impl InetSocket {
    /// A TCP socket known by its tuple and state (what an event carries); queues,
    /// owner and timers zero, to be filled by the caller where known.
    #[must_use]
    pub fn tcp(family: u16, state: u8, (src, sport): (IpAddr, u16), (dst, dport): (IpAddr, u16), cookie: u64) -> InetSocket {
        InetSocket {
            family,
            protocol: sockstat_ebpf::IPPROTO_TCP,
            state,
            src,
            sport,
            dst,
            dport,
            v6only: false,
            ifindex: 0,
            rqueue: 0,
            wqueue: 0,
            cookie,
            uid: 0,
            inode: 0,
            timer: 0,
            retrans: 0,
            expires_ms: 0,
            source: Source::Table,
        }
    }

    pub fn tcp_state(&self) -> Option<TcpState> {
        TcpState::try_from(self.state).ok()
    }
}
