//! One normalised socket record, whatever its source (a sock_diag dump, the agent's
//! live table, a recorded dump). Everything after `diag`/`table` works on this type.

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

/// Inode number of this process's network namespace (what `/proc/self/ns/net` names,
/// and what the eBPF program records per event).
pub fn own_netns() -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/proc/self/ns/net")?;
    Ok(u32::try_from(meta.ino()).unwrap_or(0))
}

impl InetSocket {
    pub fn tcp_state(&self) -> Option<TcpState> {
        TcpState::try_from(self.state).ok()
    }
}
