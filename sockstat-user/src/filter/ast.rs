//! The filter's syntax tree: [`Expr`] (ss's `struct ssfilter`), host conditions and
//! iproute2's `inet_prefix`, with the questions asked of a whole tree (does it compile to
//! bytecode, does it need sock_diag attributes). Evaluation is in `eval`. Imports only
//! std and the family numbers.

use std::net::IpAddr;

use sockstat_ebpf::{AF_INET, AF_INET6};

use super::AF_UNSPEC;

/// One node of ss's filter tree (`struct ssfilter`), with ss's own rewrites kept: `sport
/// > N` is `not sport <= N`, `sport < N` is `not sport >= N`, `!=` is `not =`.
///
/// `and`/`or` chains are n-ary (ss builds them left-deep and binary; both are associative
/// and side-effect free, so the verdicts are the same and a long chain costs no stack).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `src COND`, `sport [=] PORT` (ss's `SSF_SCOND`): the local end.
    Src(HostCond),
    /// `dst COND`, `dport [=] PORT` (`SSF_DCOND`): the remote end.
    Dst(HostCond),
    /// `sport >= PORT` (`SSF_S_GE`); the port as ss parsed it (an `int`, -1 for `*`).
    SportGe(i32),
    /// `sport <= PORT` (`SSF_S_LE`).
    SportLe(i32),
    /// `dport >= PORT` (`SSF_D_GE`).
    DportGe(i32),
    /// `dport <= PORT` (`SSF_D_LE`).
    DportLe(i32),
    /// `dev = NAME|INDEX` (`SSF_DEVCOND`): the socket's bound interface index.
    Dev(u32),
    /// `fwmark = MARK[/MASK]` (`SSF_MARKMASK`): `(sk_mark & mask) == mark`.
    Mark {
        mark: u32,
        mask: u32,
    },
    /// `cgroup = PATH` (`SSF_CGROUPCOND`): the socket's cgroup v2 id equals `id`, the id
    /// `PATH` resolved to when parsed.
    Cgroup {
        path: String,
        id: u64,
    },
    /// `autobound` (`SSF_S_AUTO`). `low..=high` is the `ip_local_port_range` read when the
    /// filter was parsed (ss's `is_ephemeral()`, 1024..=4999 if unreadable).
    Autobound {
        low: i32,
        high: i32,
    },
}

/// A host condition (ss's `struct aafilter` list): a port (-1 = any) and an address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostCond {
    pub port: i32,
    pub addr: HostAddr,
}

/// The address part of a [`HostCond`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HostAddr {
    /// An inet prefix. `first.bitlen == 0` means "any address" (no address given, `*`,
    /// `any`...); `first.family` is then AF_UNSPEC unless ss knew a family. A host name
    /// resolves to several addresses: `first` is the first, `more` the rest. ss's bytecode
    /// compiler copies `first` into every element of the chain, so the kernel only ever
    /// tests `first` (`dst localhost` never matches `::1`), while user space tests all.
    Inet { first: Prefix, more: Vec<Prefix> },
    /// A unix path glob (`unix:PATTERN`, or any address when the preferred family is
    /// AF_UNIX): `fnmatch(PATTERN, path, FNM_CASEFOLD)`, no `FNM_PATHNAME`, so `*` matches `/`.
    Unix(String),
    /// A `link:`, `netlink:` or `vsock:` address, or any address when the preferred
    /// family is AF_PACKET, AF_NETLINK or AF_VSOCK (`-0`, `-f link`, `-f netlink`,
    /// `--vsock`): ss's `inet_prefix` of that family, holding the packet protocol (host
    /// order), the netlink protocol or the vsock cid as a native-endian `__u32` in its
    /// first 4 bytes, `bitlen` 32 when one was given and 0 for any. ss's `run_ssfilter()`
    /// compares these bytes with the socket's own `local.data`/`remote.data` exactly as it
    /// compares inet prefixes (see [`Endpoint::Data`](super::Endpoint::Data)).
    Other(Prefix),
}

/// An address prefix as iproute2's `inet_prefix` holds it: 16 bytes in network order (an
/// IPv4 address in the first 4, zeros after), a family, a prefix length in bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Prefix {
    pub family: u16,
    pub bytes: [u8; 16],
    pub bitlen: u8,
}

impl Prefix {
    /// No address: the `*` of `*:80`, or a port-only condition.
    pub const ANY: Prefix = Prefix { family: AF_UNSPEC, bytes: [0; 16], bitlen: 0 };

    /// A full-length prefix for one address.
    #[must_use]
    pub fn host(ip: IpAddr) -> Prefix {
        match ip {
            IpAddr::V4(_) => Prefix { family: AF_INET, bytes: ip_bytes(ip), bitlen: 32 },
            IpAddr::V6(_) => Prefix { family: AF_INET6, bytes: ip_bytes(ip), bitlen: 128 },
        }
    }
}

/// An address as iproute2's `inet_prefix.data`: network order, IPv4 in the first 4 bytes.
pub(super) fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    }
}

impl Expr {
    /// Whether ss.c's `ssfilter_bytecompile()` produces bytecode: it cannot compile `dev`,
    /// and one `dev` anywhere drops the whole program.
    #[must_use]
    pub fn compiles_to_bytecode(&self) -> bool {
        match self {
            Expr::Dev(_) => false,
            Expr::And(v) | Expr::Or(v) => v.iter().all(Expr::compiles_to_bytecode),
            Expr::Not(e) => e.compiles_to_bytecode(),
            _ => true,
        }
    }

    /// Whether a `fwmark` or `cgroup` condition is anywhere in the expression: those
    /// need the mark and cgroup id of a sock_diag reply, which the agent's table lacks.
    #[must_use]
    pub fn needs_diag_attrs(&self) -> bool {
        match self {
            Expr::Mark { .. } | Expr::Cgroup { .. } => true,
            Expr::And(v) | Expr::Or(v) => v.iter().any(Expr::needs_diag_attrs),
            Expr::Not(e) => e.needs_diag_attrs(),
            _ => false,
        }
    }

    /// Whether a `fwmark` condition is anywhere in the expression.
    #[must_use]
    pub fn has_mark(&self) -> bool {
        match self {
            Expr::Mark { .. } => true,
            Expr::And(v) | Expr::Or(v) => v.iter().any(Expr::has_mark),
            Expr::Not(e) => e.has_mark(),
            _ => false,
        }
    }
}
