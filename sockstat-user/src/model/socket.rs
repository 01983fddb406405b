//! Normalised socket records, whatever their source (a sock_diag dump, the agent's live
//! table, a recorded dump, /proc/net/raw). Everything after `diag`/`table` works on these
//! types: [`InetSocket`] for TCP/UDP/raw/DCCP/SCTP, and one record type per other family
//! ([`UnixSocket`], [`PacketSocket`], [`NetlinkSocket`], [`VsockSocket`]), gathered per
//! socket table in a [`Snapshot`].
//!
//! Freshness, per family: TCP comes from the agent's table when one runs (queues and timers
//! as of the last transition or seed, see [`Source::Table`]), otherwise from sock_diag at
//! query time. Every other family is always dumped from the kernel by the client at query
//! time ([`Source::Kernel`]): UDP, MPTCP, UNIX, packet and netlink sockets change without a state
//! transition the eBPF program could see. Raw sockets come from /proc/net/raw and raw6 at
//! query time, because this kernel has no RAW_DIAG (ss falls back the same way).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
pub use sockstat_ebpf::TcpState;

/// Where a record's values came from; the formatter never needs it, `-e`/JSON and the
/// column-source table (docs/columns.md) do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A sock_diag reply read at query time.
    Kernel,
    /// The agent's table: seeded from sock_diag, then kept by state-transition events.
    /// Queue sizes are as of the socket's last transition or the last seed.
    Table,
}

/// An internet socket (TCP, UDP, raw, DCCP, SCTP, MPTCP), as ss's `struct sockstat` holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InetSocket {
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u16,
    /// The table's IP protocol: IPPROTO_TCP (6), UDP (17), DCCP (33), SCTP (132);
    /// [`PROTO_RAW_TABLE`] for raw rows, [`PROTO_MPTCP_TABLE`] for MPTCP rows.
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
    /// What `-e`, `-m` and `-i` print beyond the table columns, when the query asked the
    /// kernel for it (`None` otherwise, and always from the agent's table, which does not
    /// keep it fresh).
    #[serde(default)]
    pub ext: Option<Box<InetDetails>>,
}

/// Inet sockets read one at a time by number, without a list of them all (a query's
/// rows as the agent sent them are decoded as they are printed).
pub trait InetRows: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Socket `i` (below [`InetRows::len`]).
    fn socket(&self, i: usize) -> InetSocket;
}

impl InetRows for Vec<InetSocket> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn socket(&self, i: usize) -> InetSocket {
        self[i].clone()
    }
}

/// The sock_diag attributes of an inet socket that `ss -e -m -i` print
/// (include/uapi/linux/inet_diag.h), as the kernel sent them. `None`/0 = absent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InetDetails {
    /// `INET_DIAG_MARK` (sent to CAP_NET_ADMIN readers only), printed as `fwmark:` if not 0.
    pub mark: u32,
    /// `INET_DIAG_CGROUP_ID`: the cgroup v2 id, printed as its path.
    pub cgroup_id: u64,
    /// `INET_DIAG_SHUTDOWN`: bit 0 = no more receives, bit 1 = no more sends.
    pub shutdown: Option<u8>,
    /// `INET_DIAG_SKV6ONLY` as sent (AF_INET6 full sockets only); ss prints `v6only:`
    /// only when the attribute is there.
    pub v6only: Option<u8>,
    /// `INET_DIAG_SKMEMINFO`: the `SK_MEMINFO_*` array (7 to 9 words, by kernel version).
    pub skmem: Option<Vec<u32>>,
    /// `INET_DIAG_MEMINFO`: rmem, wmem, fmem, tmem (ss's fallback when SKMEMINFO is absent).
    pub meminfo: Option<[u32; 4]>,
    /// `INET_DIAG_INFO`: `struct tcp_info`, zero-filled past what the kernel sent. `None`
    /// for an MPTCP socket, whose INET_DIAG_INFO is a `struct mptcp_info` ([`Self::mptcp_info`]).
    pub tcp_info: Option<TcpInfo>,
    /// Bytes of `tcp_info` the kernel sent (it grows with kernel versions).
    pub tcp_info_len: u32,
    /// `INET_DIAG_CONG`: the congestion control's name.
    pub cong: Option<String>,
    /// `INET_DIAG_VEGASINFO`: enabled, rttcnt, rtt, minrtt.
    pub vegas: Option<[u32; 4]>,
    /// `INET_DIAG_DCTCPINFO`: enabled, ce_state, alpha, ab_ecn, ab_tot.
    pub dctcp: Option<[u32; 5]>,
    /// `INET_DIAG_BBRINFO`: bw_lo, bw_hi, min_rtt, pacing_gain, cwnd_gain.
    pub bbr: Option<[u32; 5]>,
    /// For raw sockets read from /proc/net/raw: the text after the `pointer` column (the
    /// drop count), which `ss -e` prints as `opt:"..."`.
    pub proc_opt: Option<String>,
    /// `INET_DIAG_TOS` (asked for by `--tos`): the IP TOS byte, printed as `tos:%#x`.
    #[serde(default)]
    pub tos: Option<u8>,
    /// `INET_DIAG_TCLASS` (`--tos`, AF_INET6 sockets only): printed as `tclass:%#x`.
    #[serde(default)]
    pub tclass: Option<u8>,
    /// `INET_DIAG_CLASS_ID` (sent with TCLASS): the net_cls class id (or the priority),
    /// printed as `class_id:%#x`.
    #[serde(default)]
    pub class_id: Option<u32>,
    /// `INET_DIAG_SOCKOPT`: `struct inet_diag_sockopt`'s two bytes of flags, first byte
    /// in the low bits (bit 0 recverr, 1 is_icsk, 2 freebind, 3 hdrincl, 4 mc_loop,
    /// 5 transparent, 6 mc_all, 7 nodefrag, 8 bind_address_no_port, 9 recverr_rfc4884,
    /// 10 defer_connect), printed by `--inet-sockopt`.
    #[serde(default)]
    pub sockopt: Option<u16>,
    /// `INET_DIAG_INFO` of an MPTCP socket (a [`PROTO_MPTCP_TABLE`] record): `struct
    /// mptcp_info` (net/mptcp/mptcp_diag.c sends it in place of a `tcp_info`). Boxed,
    /// as `ulp`: rare, and a `-tani` of 100k sockets holds 100k of these records.
    #[serde(default)]
    pub mptcp_info: Option<Box<MptcpInfo>>,
    /// `INET_DIAG_ULP_INFO` (sent with `-i` to CAP_NET_ADMIN readers): the TCP upper layer
    /// protocol (kTLS, an MPTCP subflow) and what it reports.
    #[serde(default)]
    pub ulp: Option<Box<UlpInfo>>,
    /// `INET_DIAG_MD5SIG` (sent with `-i` to CAP_NET_ADMIN readers): the socket's TCP-MD5
    /// keys, as ss prints them.
    #[serde(default)]
    pub md5: Option<Vec<Md5Key>>,
    /// `INET_DIAG_SK_BPF_STORAGES` (sent when the request asked for it: `--bpf-maps`,
    /// `--bpf-map-id`): the socket's BPF local storage values, in the kernel's order.
    #[serde(default)]
    pub bpf_storages: Vec<SkStorageValue>,
}

/// One `SK_DIAG_BPF_STORAGE` (include/uapi/linux/sock_diag.h): a socket-local storage
/// map's id and the socket's value in it, as raw bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkStorageValue {
    pub map_id: u32,
    pub value: Vec<u8>,
    /// The value's address modulo 8 in ss's receive buffer (a fresh malloc'd one per
    /// datagram, so its offset in the datagram): libbpf's btf_dump reads a misaligned
    /// 8-byte enum or pointer differently.
    pub misalign: u8,
}

/// One `struct tcp_diag_md5sig` (include/uapi/linux/tcp.h).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Md5Key {
    pub family: u8,
    pub prefixlen: u8,
    /// The address (first 4 bytes for AF_INET), network order.
    pub addr: [u8; 16],
    /// The key, `tcpm_keylen` bytes of it.
    pub key: Vec<u8>,
}

/// `INET_DIAG_ULP_INFO`'s nested attributes (`INET_ULP_INFO_*`, include/uapi/linux/inet_diag.h).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UlpInfo {
    /// `INET_ULP_INFO_NAME`: `tls`, `mptcp` ...
    pub name: Option<String>,
    /// `INET_ULP_INFO_TLS`: `TLS_INFO_VERSION`, `CIPHER`, `TXCONF`, `RXCONF` (u16 each).
    pub tls: Option<TlsInfo>,
    /// `INET_ULP_INFO_MPTCP`: the `MPTCP_SUBFLOW_ATTR_*` of an MPTCP subflow.
    pub mptcp: Option<MptcpSubflow>,
}

/// kTLS state (include/uapi/linux/tls.h).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    pub version: Option<u16>,
    pub cipher: Option<u16>,
    pub txconf: Option<u16>,
    pub rxconf: Option<u16>,
    /// `TLS_INFO_ZC_RO_TX` (zerocopy sendfile) and `TLS_INFO_RX_NO_PAD`: flags, present or not.
    #[serde(default)]
    pub zc_ro_tx: bool,
    #[serde(default)]
    pub rx_no_pad: bool,
}

/// An MPTCP subflow's `MPTCP_SUBFLOW_ATTR_*` (include/uapi/linux/mptcp.h).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MptcpSubflow {
    pub flags: Option<u32>,
    pub token_rem: Option<u32>,
    pub token_loc: Option<u32>,
    pub id_rem: Option<u8>,
    pub id_loc: Option<u8>,
    pub map_seq: Option<u64>,
    pub map_sfseq: Option<u32>,
    pub ssn_offset: Option<u32>,
    pub map_datalen: Option<u32>,
}

/// `struct mptcp_info` (include/uapi/linux/mptcp.h) up to `mptcpi_rcv_nxt`, the fields
/// iproute2 6.1's `mptcp_stats_print` reads. Fields the kernel did not send are 0, as ss
/// zero-fills them; what newer kernels append is ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MptcpInfo {
    pub subflows: u8,
    pub add_addr_signal: u8,
    pub add_addr_accepted: u8,
    pub subflows_max: u8,
    pub add_addr_signal_max: u8,
    pub add_addr_accepted_max: u8,
    /// `MPTCP_INFO_FLAG_FALLBACK` (bit 0), `MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED` (bit 1).
    pub flags: u32,
    pub token: u32,
    pub write_seq: u64,
    pub snd_una: u64,
    pub rcv_nxt: u64,
    /// The fields after `rcv_nxt`, which ss 7.1 prints (each only when not 0).
    #[serde(default)]
    pub ext: MptcpInfoExt,
}

/// `struct mptcp_info` after `mptcpi_rcv_nxt` (kernel 5.12 to 6.x): what ss 7.1's
/// `mptcp_stats_print` adds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MptcpInfoExt {
    pub local_addr_used: u8,
    pub local_addr_max: u8,
    pub csum_enabled: u8,
    pub retransmits: u32,
    pub bytes_retrans: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub bytes_acked: u64,
    pub subflows_total: u8,
    pub endp_laminar_max: u8,
    pub last_data_sent: u32,
    pub last_data_recv: u32,
    pub last_ack_recv: u32,
}

/// `struct tcp_info` (include/uapi/linux/tcp.h) up to `tcpi_snd_wnd`, the fields iproute2
/// 6.1's `ss -i` reads. Fields the kernel did not send are 0, as ss zero-fills them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpInfo {
    pub state: u8,
    pub ca_state: u8,
    pub retransmits: u8,
    pub probes: u8,
    pub backoff: u8,
    pub options: u8,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub delivery_rate_app_limited: bool,
    pub rto: u32,
    pub ato: u32,
    pub snd_mss: u32,
    pub rcv_mss: u32,
    pub unacked: u32,
    pub sacked: u32,
    pub lost: u32,
    pub retrans: u32,
    pub fackets: u32,
    pub last_data_sent: u32,
    pub last_ack_sent: u32,
    pub last_data_recv: u32,
    pub last_ack_recv: u32,
    pub pmtu: u32,
    pub rcv_ssthresh: u32,
    pub rtt: u32,
    pub rttvar: u32,
    pub snd_ssthresh: u32,
    pub snd_cwnd: u32,
    pub advmss: u32,
    pub reordering: u32,
    pub rcv_rtt: u32,
    pub rcv_space: u32,
    pub total_retrans: u32,
    pub pacing_rate: u64,
    pub max_pacing_rate: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_out: u32,
    pub segs_in: u32,
    pub notsent_bytes: u32,
    pub min_rtt: u32,
    pub data_segs_in: u32,
    pub data_segs_out: u32,
    pub delivery_rate: u64,
    pub busy_time: u64,
    pub rwnd_limited: u64,
    pub sndbuf_limited: u64,
    pub delivered: u32,
    pub delivered_ce: u32,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub dsack_dups: u32,
    pub reord_seen: u32,
    pub rcv_ooopack: u32,
    pub snd_wnd: u32,
    /// `tcpi_rcv_wnd` and `tcpi_rehash` (kernel 6.2+), printed by ss 7.1 only.
    #[serde(default)]
    pub rcv_wnd: u32,
    #[serde(default)]
    pub rehash: u32,
}

/// IPPROTO_RAW: the `protocol` of an [`InetSocket`] read from /proc/net/raw(6). Its
/// `sport` then holds the socket's IP protocol number, as the kernel prints it there.
pub const PROTO_RAW_TABLE: u8 = 255;

/// The `protocol` of an [`InetSocket`] of the MPTCP table. IPPROTO_MPTCP is 262, which
/// does not fit the u8 (and whose low byte, 6, is TCP's): MPTCP rows are marked with 254,
/// a number IANA reserves for experiments, which no other table here uses. The dump asks
/// for 262 in an `INET_DIAG_REQ_PROTOCOL` attribute (see `diag::mptcp`).
pub const PROTO_MPTCP_TABLE: u8 = 254;

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
    /// What `-e` and `-m` print, when asked for (`UDIAG_SHOW_VFS | ICONS | MEMINFO`).
    #[serde(default)]
    pub ext: Option<Box<UnixDetails>>,
}

/// The UNIX_DIAG attributes `ss -e -m` print (include/uapi/linux/unix_diag.h).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixDetails {
    /// `UNIX_DIAG_SHUTDOWN`.
    pub shutdown: Option<u8>,
    /// `UNIX_DIAG_VFS`: inode and device of the bound path.
    pub vfs: Option<(u32, u32)>,
    /// `UNIX_DIAG_ICONS`: inodes of connections waiting in a listener's queue.
    pub icons: Option<Vec<u32>>,
    /// `UNIX_DIAG_MEMINFO`: the `SK_MEMINFO_*` array.
    pub skmem: Option<Vec<u32>>,
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
    /// `PACKET_DIAG_INFO`'s `pdi_version`, `pdi_copy_thresh`, `pdi_flags` (for `-e`).
    #[serde(default)]
    pub info: Option<[u32; 3]>,
    /// `PACKET_DIAG_RX_RING` / `TX_RING` (`struct packet_diag_ring`, 7 words), for `-e`.
    #[serde(default)]
    pub rings: [Option<[u32; 7]>; 2],
    /// `PACKET_DIAG_FANOUT`, for `-e`.
    #[serde(default)]
    pub fanout: Option<u32>,
    /// `PACKET_DIAG_MEMINFO` (the `SK_MEMINFO_*` array), for `-m`.
    #[serde(default)]
    pub skmem: Option<Vec<u32>>,
}

/// An AF_NETLINK socket (sock_diag `netlink_diag_msg` and its attributes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// `NETLINK_DIAG_MEMINFO` (the `SK_MEMINFO_*` array), for `-m`.
    #[serde(default)]
    pub skmem: Option<Vec<u32>>,
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

/// An AF_XDP socket (sock_diag `xdp_diag_msg` and its attributes, include/uapi/linux/xdp_diag.h,
/// filled by net/xdp/xsk_diag.c).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XdpSocket {
    /// `xdiag_type`: SOCK_RAW (3) for every AF_XDP socket.
    pub kind: u8,
    pub inode: u32,
    pub cookie: u64,
    /// `XDP_DIAG_INFO`: the bound interface (0 = not bound) and queue.
    pub ifindex: u32,
    pub queue_id: u32,
    /// `XDP_DIAG_UID`.
    pub uid: u32,
    /// `SK_MEMINFO_RMEM_ALLOC` of `XDP_DIAG_MEMINFO`: what ss prints as Recv-Q.
    pub rqueue: u32,
    /// `XDP_DIAG_RX_RING` / `XDP_DIAG_TX_RING` entries, for `-e`.
    pub rx_ring: Option<u32>,
    pub tx_ring: Option<u32>,
    /// `XDP_DIAG_UMEM`, for `-e`.
    pub umem: Option<XdpUmem>,
    /// `XDP_DIAG_UMEM_FILL_RING` / `XDP_DIAG_UMEM_COMPLETION_RING` entries, for `-e`.
    pub fill_ring: Option<u32>,
    pub completion_ring: Option<u32>,
    /// `XDP_DIAG_STATS` (`struct xdp_diag_stats`): rx dropped, rx invalid, rx queue full,
    /// rx fill ring empty, tx invalid, tx ring empty; for `-e`.
    pub stats: Option<[u64; 6]>,
    /// `XDP_DIAG_MEMINFO` (the `SK_MEMINFO_*` array), for `-m`.
    pub skmem: Option<Vec<u32>>,
}

/// `struct xdp_diag_umem`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XdpUmem {
    pub size: u64,
    pub id: u32,
    pub num_pages: u32,
    pub chunk_size: u32,
    pub headroom: u32,
    pub ifindex: u32,
    pub queue_id: u32,
    /// `XDP_DU_F_ZEROCOPY` (1) is the only flag.
    pub flags: u32,
    pub refs: u32,
}

/// Every socket a query shows, per socket table, each in kernel dump order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// AF_XDP sockets (`--xdp`), printed between vsock and MPTCP as ss prints them.
    #[serde(default)]
    pub xdp: Vec<XdpSocket>,
}

impl Snapshot {
    /// The inodes of every socket (0 left out): those whose owners `-p`/`-T` print.
    #[must_use]
    pub fn inodes(&self) -> rustc_hash::FxHashSet<u32> {
        self.packet
            .iter()
            .map(|p| p.inode)
            .chain(self.unix.iter().map(|u| u.inode))
            .chain(
                [&self.raw, &self.udp, &self.tcp, &self.dccp, &self.sctp, &self.mptcp]
                    .into_iter()
                    .flatten()
                    .map(|i| i.inode),
            )
            .chain(self.vsock.iter().map(|v| v.inode))
            .chain(self.xdp.iter().map(|x| x.inode))
            .filter(|&i| i != 0)
            .collect()
    }
}

/// `1.2.3.4:80` or `[::1]:80`: an endpoint as sockstat's own outputs (trace, history)
/// print it.
pub fn endpoint(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

impl InetSocket {
    /// The socket with its cgroup v2 id known (from the event stream or the timeline,
    /// not from sock_diag), for the `cgroup` filter condition; no other detail is set.
    #[must_use]
    pub fn with_cgroup(mut self, cgroup_id: Option<u64>) -> InetSocket {
        if let Some(cgroup_id) = cgroup_id {
            self.ext = Some(Box::new(InetDetails { cgroup_id, ..InetDetails::default() }));
        }
        self
    }

    /// Whether sock_diag reported a mini-socket rather than a full socket: a timewait
    /// socket (timer 3, "timewait", whatever its sub-state: TIME-WAIT, or FIN-WAIT-2 for
    /// a socket closed before the peer's FIN; net/ipv4/inet_diag.c, inet_twsk_diag_fill)
    /// or a SYN-RECV one (a request sock, or a child not accepted yet). Neither gets
    /// events under its cookie until it becomes a full, accepted socket.
    #[must_use]
    pub fn is_mini(&self) -> bool {
        self.timer == 3
            || self.state == sockstat_ebpf::TcpState::TimeWait as u8
            || self.state == sockstat_ebpf::TcpState::SynRecv as u8
            || self.state == sockstat_ebpf::TcpState::NewSynRecv as u8
    }

    /// A TCP socket known by its tuple and state (what an event carries); queues,
    /// owner and timers zero, to be filled by the caller where known.
    #[must_use]
    pub fn tcp(
        family: u16,
        state: u8,
        (src, sport): (IpAddr, u16),
        (dst, dport): (IpAddr, u16),
        cookie: u64,
    ) -> InetSocket {
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
            ext: None,
        }
    }

    pub fn tcp_state(&self) -> Option<TcpState> {
        TcpState::try_from(self.state).ok()
    }
}
