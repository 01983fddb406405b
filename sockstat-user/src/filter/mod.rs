//! The ss FILTER language (`ss [OPTIONS] [FILTER]`): parsed from the words left after the
//! options, and evaluated on socket records.
//!
//! This module owns, in order:
//! - the STATE-FILTER prefix: `state NAME` and `exclude NAME` (`excl NAME`) pairs turned
//!   into a state bitmask exactly as iproute2's ss.c `main()` and `scan_state()` do;
//! - the expression grammar of iproute2's misc/ssfilter.y: a lexer that classifies each
//!   token as ss's `yylex()` does (including its sticky "last keyword" state, which decides
//!   whether a value is a host, a port, a device, a mark or a cgroup), and a recursive-descent
//!   parser for the same LALR grammar. Two consequences of that grammar are kept on purpose:
//!   `and` and `or` have *equal* precedence and group left to right (`a or b and c` is
//!   `(a or b) and c`), and juxtaposition is `and`;
//! - value parsing as ss.c's `parse_hostcond()`, `parse_devcond()`, `parse_markmask()` and
//!   `parse_cgroupcond()` do it, with iproute2's C number rules (`strtoul` base 0: `0x50`
//!   is 80, `010` is 8, `127.1` is 127.1.0.0);
//! - evaluation. ss filters TCP sockets twice: the kernel runs the filter compiled to
//!   inet_diag bytecode (net/ipv4/inet_diag.c, `inet_diag_bc_run`), then ss runs
//!   `run_ssfilter()` on every reply. The two disagree on corner cases (address families,
//!   v4-mapped addresses, ports above 65535, `autobound`), and what ss prints is what both
//!   accept, so [`Filter::matches_subject`] evaluates both and requires both. A filter that
//!   does not compile to bytecode (anything with `dev`: ss.c cannot compile it) is
//!   evaluated in user space only, as ss does.
//!
//! Bit `n` of every state mask here is kernel TCP state `n` (include/net/tcp_states.h),
//! which is also ss's `SS_*` numbering. ss's masks stop at bit 11 (`SS_MAX` = 12): it never
//! asks for `TCP_NEW_SYN_RECV` (12) or `TCP_BOUND_INACTIVE` (13) by name; the kernel reports
//! request sockets as SYN-RECV anyway. See `query::state_mask` for what is sent to the
//! kernel.

use std::ffi::CString;
use std::net::{IpAddr, Ipv6Addr};

use crate::names::lookup;

use crate::model::socket::{InetSocket, NetlinkSocket, PacketSocket, Source, VsockSocket, XdpSocket};
use sockstat_ebpf::TcpState;
use sockstat_ebpf::{AF_INET, AF_INET6};

/// Number of states ss knows (`SS_MAX`): bits 0 (`SS_UNKNOWN`) to 11 (`SS_CLOSING`).
pub const SS_MAX: u32 = 12;
/// ss's `SS_ALL`. Bit 0 (UNKNOWN) is included, as in ss.
pub const SS_ALL: u32 = (1 << SS_MAX) - 1;
/// ss's `SS_CONN`: the default for TCP when neither `-a`, `-l` nor a state filter is given.
pub const SS_CONN: u32 =
    SS_ALL & !(bit(TcpState::Listen) | bit(TcpState::Close) | bit(TcpState::TimeWait) | bit(TcpState::SynRecv));
/// What `-l` selects: listeners, and unconnected sockets (CLOSE) for the datagram tables.
pub const SS_LISTENING: u32 = bit(TcpState::Listen) | bit(TcpState::Close);

/// The mask bit of one state.
#[must_use]
pub const fn bit(state: TcpState) -> u32 {
    1 << state as u32
}

/// The mask for one STATE-FILTER identifier, or `None` if ss would reject it.
///
/// Case-insensitive, as ss's `strcasecmp`. Besides the names in ss's usage text it
/// accepts what ss's table accepts: `close` and `unconnected` (for CLOSE), `syn-rcv`,
/// and `unknown` (bit 0). `listen` is *not* accepted (ss says "wrong state name").
#[must_use]
pub fn scan_state(name: &str) -> Option<u32> {
    // Special names first, in ss's order (it checks them before the table).
    let special: &[(&str, u32)] = &[
        ("close", bit(TcpState::Close)),
        ("closed", bit(TcpState::Close)),
        ("syn-rcv", bit(TcpState::SynRecv)),
        ("established", bit(TcpState::Established)),
        ("all", SS_ALL),
        ("connected", SS_ALL & !(bit(TcpState::Close) | bit(TcpState::Listen))),
        ("synchronized", SS_ALL & !(bit(TcpState::Close) | bit(TcpState::Listen) | bit(TcpState::SynSent))),
        ("bucket", bit(TcpState::SynRecv) | bit(TcpState::TimeWait)),
        ("big", SS_ALL & !(bit(TcpState::SynRecv) | bit(TcpState::TimeWait))),
    ];
    // ss.c `sstate_namel[]`, indexed by state number.
    const TABLE: [&str; SS_MAX as usize] = [
        "UNKNOWN",
        "established",
        "syn-sent",
        "syn-recv",
        "fin-wait-1",
        "fin-wait-2",
        "time-wait",
        "unconnected",
        "close-wait",
        "last-ack",
        "listening",
        "closing",
    ];
    special
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, mask)| mask)
        .or_else(|| TABLE.iter().position(|n| n.eq_ignore_ascii_case(name)).map(|i| 1 << i))
}

// Address families ss's filter names (include/linux/socket.h) besides AF_INET/AF_INET6.
const AF_UNSPEC: u16 = 0;
const AF_UNIX: u16 = 1;
const AF_NETLINK: u16 = 16;
const AF_PACKET: u16 = 17;
const AF_VSOCK: u16 = 40;
const AF_XDP: u16 = 44;

/// Deepest nesting of `(`/`not` and of alternating `and`/`or` chains accepted. bison's
/// parser stack stops ss at 10000 states ("memory exhausted", exit 255); a tree that deep
/// would overflow our recursive evaluator, so sockstat stops earlier, with the same status.
pub const MAX_DEPTH: usize = 200;

/// A parsed FILTER.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    /// ss's `state_filter` after the STATE-FILTER words, before defaults are applied:
    /// 0 means "no explicit states" (ss then falls back to the tables' defaults).
    pub state_filter: u32,
    /// Whether any `state`/`exclude` word was seen.
    pub saw_states: bool,
    /// The expression after the STATE-FILTER words (ss's `ssfilter`); `None` when there is
    /// none, which matches every socket.
    pub expr: Option<Expr>,
    /// ss's side effect of parsing a host condition: when a condition names a family
    /// (`inet:`, `inet6:`, `unix:`, `link:`, `netlink:`, `vsock:`) or ss has a preferred
    /// family (the last of `-4`/`-6`/`-x`/`-0`/`-f`...), `parse_hostcond()` *replaces* the
    /// selected families with that one (ss.c: `f->families = 0; filter_af_set(f, fam)`).
    /// The last such condition wins. The caller applies it to the family selection:
    /// `ss -t src inet:127.0.0.1` shows no AF_INET6 socket, v4-mapped or not.
    pub family_override: Option<u16>,
}

impl Filter {
    /// Whether the expression accepts an internet socket (state filtering is
    /// `query::select`'s job). No expression accepts everything.
    #[must_use]
    pub fn matches(&self, sock: &InetSocket) -> bool {
        self.matches_subject(&Subject::from(sock))
    }

    /// Whether a `fwmark` or `cgroup` condition is in the expression (see
    /// [`Expr::needs_diag_attrs`]).
    #[must_use]
    pub fn needs_diag_attrs(&self) -> bool {
        self.expr.as_ref().is_some_and(Expr::needs_diag_attrs)
    }

    /// Whether the expression accepts a socket seen through a [`Subject`] (any family).
    ///
    /// For AF_INET/AF_INET6 this is ss's result: the kernel's bytecode verdict AND
    /// `run_ssfilter()`'s, unless the expression cannot be compiled to bytecode (`dev`
    /// anywhere in it), in which case ss sends none and only user space decides. Other
    /// families (unix, packet, netlink, vsock) are filtered in user space only, as ss does.
    #[must_use]
    pub fn matches_subject(&self, s: &Subject<'_>) -> bool {
        let Some(expr) = &self.expr else {
            return true;
        };
        let user = expr.eval_user(s);
        if (s.family == AF_INET || s.family == AF_INET6) && expr.compiles_to_bytecode() {
            user && expr.eval_kernel(s)
        } else {
            user
        }
    }
}

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
    /// compares inet prefixes (see [`Endpoint::Data`]).
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

/// A FILTER that ss would reject, or that sockstat cannot evaluate.
///
/// `position` is the 1-based index of the offending word among the FILTER words (the
/// non-option arguments, after getopt-style permutation). `column` is the 1-based
/// character position in the FILTER words joined by single spaces.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("wrong state name {name:?} (filter word {position})")]
    WrongStateName { name: String, position: usize },
    #[error("{keyword:?} needs a state name after it (filter word {position})")]
    MissingStateName { keyword: String, position: usize },
    /// No longer returned by [`parse`], which accepts the whole grammar; kept so callers
    /// that still name it compile until they are updated.
    #[error("filter expressions are not supported yet: {token:?} (filter word {position}); only `state`/`exclude` are")]
    ExpressionUnsupported { token: String, position: usize },
    /// A token where ss's grammar does not allow it (bison's "syntax error"; ss exits 255).
    /// `token` is `None` at the end of the filter.
    #[error("filter syntax error at column {column} {}: expected {expected}", near(token.as_deref()))]
    Syntax { column: usize, token: Option<String>, expected: &'static str },
    /// The expression nests deeper than [`MAX_DEPTH`] (ss's parser stack also has a limit).
    #[error("filter syntax error at column {column} near {token:?}: nested deeper than {MAX_DEPTH} levels")]
    TooDeep { column: usize, token: String },
    /// A value ss's lexer cannot parse (an address, port, device, mark or cgroup); ss
    /// reports these before any syntax error after them and exits 1.
    #[error("filter error at column {column} near {token:?}")]
    Value {
        column: usize,
        token: String,
        #[source]
        kind: ValueError,
    },
}

fn near(token: Option<&str>) -> String {
    match token {
        Some(t) => format!("near {t:?}"),
        None => "at the end of the filter".to_owned(),
    }
}

/// Why a value in the filter could not be parsed (ss's lexer-level errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("an inet prefix is expected rather than {0:?}")]
    NotAPrefix(String),
    #[error("{0:?} does not look like a port")]
    NotAPort(String),
    #[error("ambiguous port {0:?}: its tcp and udp numbers differ")]
    AmbiguousPort(String),
    #[error("cannot parse dst/src address: '[' without ']'")]
    UnclosedBracket,
    #[error("cannot parse device {0:?}: no such interface, and not an index")]
    Device(String),
    #[error("cannot parse mark {0:?}: expected MARK or MARK/MASK")]
    Mark(String),
    #[error("cannot parse cgroup {0:?}: not a cgroup v2 path")]
    Cgroup(String),
    #[error("{0:?} is not a link-layer protocol: a name of iproute2's ll_proto table or a number up to 0xffff")]
    LinkProtocol(String),
    #[error("{0:?} is neither a number nor an interface")]
    LinkPort(String),
    #[error("{0:?} is not a netlink protocol: a name of iproute2's nl_protos or a number up to 255")]
    NetlinkProtocol(String),
    #[error("{0:?} is not a netlink port id: a number or \"kernel\"")]
    NetlinkPort(String),
    #[error("{0:?} is not a vsock cid: a number up to 4294967295 or *")]
    VsockCid(String),
    #[error("{0:?} is not a vsock port: a number up to 4294967295 or *")]
    VsockPort(String),
}

impl FilterError {
    /// What to print on stderr for this mistake, with `prog` (e.g. "sockstat") in place of
    /// "ss". Every line ends with a newline. State-word errors copy ss's text; expression
    /// errors say where, which ss does not ("bison bellows ... syntax error!").
    #[must_use]
    pub fn ss_message(&self, prog: &str) -> String {
        match self {
            Self::WrongStateName { name, .. } => format!("{prog}: wrong state name: {name}\n"),
            // iproute2's incomplete_command(): no program prefix.
            Self::MissingStateName { .. } => "Command line is not complete. Try option \"help\"\n".to_owned(),
            Self::Value { kind, .. } => format!("{prog}: {self}: {kind}\n"),
            Self::ExpressionUnsupported { .. } | Self::Syntax { .. } | Self::TooDeep { .. } => {
                format!("{prog}: {self}\n")
            }
        }
    }

    /// The exit status ss uses: `exit(-1)` (255) for state-word and grammar errors, `exit(1)`
    /// for a value its lexer rejects ("Cannot parse dst/src address.").
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Value { .. } => 1,
            _ => 255,
        }
    }
}

/// The look-ups ss makes while parsing a filter, injectable so tests are deterministic.
pub trait Resolver {
    /// `getservbyname(name, proto)`: the port of a service name for "tcp" or "udp".
    fn service_port(&self, name: &str, proto: &str) -> Option<u16>;
    /// `gethostbyname2(name, family)`: the addresses of `family` (AF_INET or AF_INET6) a
    /// host name has, in resolver order.
    fn host_addrs(&self, name: &str, family: u16) -> Vec<IpAddr>;
    /// The index of the interface called `name` in this network namespace.
    fn ifindex(&self, name: &str) -> Option<u32>;
    /// The cgroup v2 id of `path` (absolute, or relative to the cgroup2 mount).
    fn cgroup_id(&self, path: &str) -> Option<u64>;
    /// `net.ipv4.ip_local_port_range`.
    fn ephemeral_ports(&self) -> Option<(i32, i32)>;
    /// iproute2's `nl_proto_a2n()` by name: the lowest netlink protocol number called
    /// `name` (case-sensitive) in its table (built in, overridden by `nl_protos`).
    fn netlink_protocol(&self, name: &str) -> Option<u8>;
}

// The system look-ups live in names::lookup; their old paths stay valid for callers.
pub use crate::names::lookup::{SystemResolver, services_lookup};

impl Resolver for SystemResolver {
    fn service_port(&self, name: &str, proto: &str) -> Option<u16> {
        lookup::service_port(name, proto)
    }

    fn host_addrs(&self, name: &str, family: u16) -> Vec<IpAddr> {
        lookup::host_addrs(name)
            .into_iter()
            .filter(|ip| match ip {
                IpAddr::V4(_) => family == AF_INET,
                IpAddr::V6(_) => family == AF_INET6,
            })
            .collect()
    }

    fn ifindex(&self, name: &str) -> Option<u32> {
        lookup::ifindex(name)
    }

    fn cgroup_id(&self, path: &str) -> Option<u64> {
        lookup::cgroup_id(path)
    }

    fn netlink_protocol(&self, name: &str) -> Option<u8> {
        lookup::netlink_protocol(name)
    }

    fn ephemeral_ports(&self) -> Option<(i32, i32)> {
        lookup::ephemeral_ports().map(|(low, high)| (i32::from(low), i32::from(high)))
    }
}

/// What ss knows when it parses the filter, besides the words.
#[derive(Clone, Copy)]
pub struct ParseContext<'r> {
    /// ss's `preferred_family`: the family of the last `-4`, `-6`, `-0`, `-x`, `--vsock`,
    /// `--tipc`, `--xdp` or `-f` option, AF_UNSPEC (0) if none. It decides how addresses
    /// parse (with -6, `1.2.3.4` is a host name to resolve) and sets
    /// [`Filter::family_override`].
    pub preferred_family: u16,
    /// Whether the TCP table is selected: service names are looked up for "tcp".
    pub tcp: bool,
    /// Whether the UDP table is selected: service names are looked up for "udp" (a name
    /// whose tcp and udp ports differ is then ambiguous, as in ss).
    pub udp: bool,
    pub resolver: &'r dyn Resolver,
}

impl std::fmt::Debug for ParseContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParseContext")
            .field("preferred_family", &self.preferred_family)
            .field("tcp", &self.tcp)
            .field("udp", &self.udp)
            .finish_non_exhaustive()
    }
}

impl ParseContext<'static> {
    /// `ss -t` with no family option, resolving on this machine.
    #[must_use]
    pub fn tcp() -> Self {
        ParseContext { preferred_family: AF_UNSPEC, tcp: true, udp: false, resolver: &SystemResolver }
    }
}

/// Parses the FILTER words as `ss -t` would ([`ParseContext::tcp`]). `initial` is ss's
/// `state_filter` as `-a`/`-l` left it (0 if neither was given).
///
/// # Errors
/// As [`parse_with`].
pub fn parse<S: AsRef<str>>(words: &[S], initial: u32) -> Result<Filter, FilterError> {
    parse_with(words, initial, &ParseContext::tcp())
}

/// Parses the FILTER words.
///
/// STATE-FILTER, ss semantics kept exactly: the first `state` word discards `initial` and
/// starts from nothing, the first `exclude` word starts from `SS_ALL`; later words OR in
/// (`state`) or mask out (`exclude`). Keywords are case-sensitive, state names are not.
/// The expression starts at the first word that is neither keyword.
///
/// # Errors
/// [`FilterError`] for an unknown state name, a keyword at the end, an expression token
/// ss's grammar rejects, or a value ss's lexer cannot parse.
pub fn parse_with<S: AsRef<str>>(words: &[S], initial: u32, ctx: &ParseContext<'_>) -> Result<Filter, FilterError> {
    let mut filter = Filter { state_filter: initial, ..Filter::default() };
    let mut i = 0;
    while let Some(word) = words.get(i) {
        let word = word.as_ref();
        let include = match word {
            "state" => true,
            "exclude" | "excl" => false,
            _ => break,
        };
        let Some(name) = words.get(i + 1) else {
            return Err(FilterError::MissingStateName { keyword: word.to_owned(), position: i + 1 });
        };
        let name = name.as_ref();
        let mask =
            scan_state(name).ok_or_else(|| FilterError::WrongStateName { name: name.to_owned(), position: i + 2 })?;
        if !filter.saw_states {
            filter.state_filter = if include { 0 } else { SS_ALL };
        }
        if include {
            filter.state_filter |= mask;
        } else {
            filter.state_filter &= !mask;
        }
        filter.saw_states = true;
        i += 2;
    }
    // Columns count from the start of the whole FILTER text, state words included.
    let offset: usize = words[..i].iter().map(|w| w.as_ref().chars().count() + 1).sum();
    let mut parser = Parser::new(split_tokens(&words[i..], offset), ctx);
    filter.expr = parser.parse_applet()?;
    filter.family_override = parser.family_override;
    Ok(filter)
}

// ---------------------------------------------------------------------------------------
// Lexer

/// One whitespace-separated token of the FILTER, before classification.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RawToken {
    text: String,
    column: usize,
}

/// Splits the words as ss's `get_token_from_line()` splits each argv word: on spaces and
/// tabs, a backslash escaping the next character (the backslash itself is dropped), empty
/// words skipped. `offset` is the number of characters before the first word.
fn split_tokens<S: AsRef<str>>(words: &[S], offset: usize) -> Vec<RawToken> {
    let mut out = Vec::new();
    let mut column = offset + 1;
    for word in words {
        let chars: Vec<char> = word.as_ref().chars().collect();
        let mut i = 0;
        loop {
            while matches!(chars.get(i), Some(' ' | '\t')) {
                i += 1;
            }
            if i >= chars.len() {
                break;
            }
            let start = i;
            let mut text = String::new();
            while let Some(&c) = chars.get(i) {
                if c == ' ' || c == '\t' {
                    break;
                }
                if c == '\\' {
                    i += 1;
                    match chars.get(i) {
                        Some(&escaped) => text.push(escaped),
                        None => break,
                    }
                } else {
                    text.push(c);
                }
                i += 1;
            }
            out.push(RawToken { text, column: column + start });
        }
        column += chars.len() + 1;
    }
    out
}

/// The keyword that decides how the next value token is parsed (ss's `tok_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keyword {
    Dst,
    Src,
    Dport,
    Sport,
    Dev,
    Fwmark,
    Cgroup,
    Autobound,
}

/// A classified token (ss's `yylex()` return values).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Not,
    And,
    Or,
    LParen,
    RParen,
    Kw(Keyword),
    Geq,
    Leq,
    Neq,
    Eq,
    Gt,
    Lt,
    Host(HostCond),
    DevCond(u32),
    MarkMask(u32, u32),
    CgroupCond(String, u64),
    End,
}

impl Tok {
    /// Tokens that start an `expr` (so juxtaposition means `and`).
    fn starts_expr(&self) -> bool {
        matches!(self, Tok::LParen | Tok::Not | Tok::Kw(_))
    }
}

/// A classified token with where it came from.
#[derive(Clone, Debug)]
struct Lexed {
    tok: Tok,
    text: Option<String>,
    column: usize,
}

struct Parser<'c, 'r> {
    raw: std::vec::IntoIter<RawToken>,
    peeked: Option<Lexed>,
    /// ss's `tok_type`: the last keyword lexed, never reset.
    last_keyword: Option<Keyword>,
    ctx: &'c ParseContext<'r>,
    family_override: Option<u16>,
    end_column: usize,
    nesting: usize,
}

impl<'c, 'r> Parser<'c, 'r> {
    fn new(raw: Vec<RawToken>, ctx: &'c ParseContext<'r>) -> Self {
        let end_column = raw.last().map_or(1, |t| t.column + t.text.chars().count());
        Parser {
            raw: raw.into_iter(),
            peeked: None,
            last_keyword: None,
            ctx,
            family_override: None,
            end_column,
            nesting: 0,
        }
    }

    /// The next token, classified now: like bison, a token is lexed (and a bad value
    /// reported) only when the parser needs it, so an earlier syntax error wins.
    fn peek(&mut self) -> Result<&Lexed, FilterError> {
        let lexed = match self.peeked.take() {
            Some(l) => l,
            None => match self.raw.next() {
                None => Lexed { tok: Tok::End, text: None, column: self.end_column },
                Some(raw) => Lexed { tok: self.classify(&raw)?, text: Some(raw.text), column: raw.column },
            },
        };
        Ok(self.peeked.insert(lexed))
    }

    fn next(&mut self) -> Result<Lexed, FilterError> {
        self.peek()?;
        Ok(self.peeked.take().unwrap_or(Lexed { tok: Tok::End, text: None, column: self.end_column }))
    }

    /// ss's `yylex()` for one token.
    fn classify(&mut self, raw: &RawToken) -> Result<Tok, FilterError> {
        let kw = |p: &mut Self, k: Keyword| {
            p.last_keyword = Some(k);
            Tok::Kw(k)
        };
        Ok(match raw.text.as_str() {
            "!" | "not" => Tok::Not,
            "&" | "&&" | "and" => Tok::And,
            "|" | "||" | "or" => Tok::Or,
            "(" => Tok::LParen,
            ")" => Tok::RParen,
            "dst" => kw(self, Keyword::Dst),
            "src" => kw(self, Keyword::Src),
            "dport" => kw(self, Keyword::Dport),
            "sport" => kw(self, Keyword::Sport),
            "dev" => kw(self, Keyword::Dev),
            "fwmark" => kw(self, Keyword::Fwmark),
            "cgroup" => kw(self, Keyword::Cgroup),
            ">=" | "ge" | "geq" => Tok::Geq,
            "<=" | "le" | "leq" => Tok::Leq,
            "!=" | "ne" | "neq" => Tok::Neq,
            "=" | "==" | "eq" => Tok::Eq,
            ">" | "gt" => Tok::Gt,
            "<" | "lt" => Tok::Lt,
            "autobound" => kw(self, Keyword::Autobound),
            text => {
                let value = match self.last_keyword {
                    Some(Keyword::Dev) => parse_devcond(text, self.ctx.resolver).map(Tok::DevCond),
                    Some(Keyword::Fwmark) => parse_markmask(text).map(|(m, k)| Tok::MarkMask(m, k)),
                    Some(Keyword::Cgroup) => self
                        .ctx
                        .resolver
                        .cgroup_id(text)
                        .filter(|&id| id != 0)
                        .map(|id| Tok::CgroupCond(text.to_owned(), id))
                        .ok_or_else(|| ValueError::Cgroup(text.to_owned())),
                    k => {
                        let is_port = matches!(k, Some(Keyword::Sport | Keyword::Dport));
                        self.parse_hostcond(text, is_port).map(Tok::Host)
                    }
                };
                value.map_err(|kind| FilterError::Value { column: raw.column, token: raw.text.clone(), kind })?
            }
        })
    }

    /// ss.c `parse_hostcond()`.
    fn parse_hostcond(&mut self, text: &str, is_port: bool) -> Result<HostCond, ValueError> {
        let mut fam = self.ctx.preferred_family;
        let mut addr = text;
        for (prefix, f) in [
            ("unix:", AF_UNIX),
            ("link:", AF_PACKET),
            ("netlink:", AF_NETLINK),
            ("vsock:", AF_VSOCK),
            ("inet:", AF_INET),
            ("inet6:", AF_INET6),
        ] {
            if let Some(rest) = addr.strip_prefix(prefix) {
                fam = f;
                addr = rest;
                break;
            }
        }
        let cond = match fam {
            AF_UNIX => HostCond { port: -1, addr: HostAddr::Unix(addr.to_owned()) },
            AF_PACKET => self.parse_link_hostcond(addr, is_port)?,
            AF_NETLINK => self.parse_netlink_hostcond(addr, is_port)?,
            AF_VSOCK => parse_vsock_hostcond(addr, is_port)?,
            _ => self.parse_inet_hostcond(addr, is_port, fam)?,
        };
        if fam != AF_UNSPEC {
            self.family_override = Some(fam);
        }
        Ok(cond)
    }

    /// The AF_PACKET part of `parse_hostcond()`: `[PROTOCOL][:INTERFACE]`. The protocol is
    /// a name of iproute2's `ll_proto` table (any case) or a 16-bit number, `*` or nothing
    /// for any; the "port" is a number, an interface name (`ifN` too), `*` or nothing.
    /// ss compares the protocol with the socket's and the port with its interface index.
    fn parse_link_hostcond(&self, text: &str, is_port: bool) -> Result<HostCond, ValueError> {
        let (addr, port) = find_port(text, is_port);
        let mut cond = HostCond { port: -1, addr: HostAddr::Other(Prefix { family: AF_PACKET, ..Prefix::ANY }) };
        if let Some(port) = port.filter(|p| !p.is_empty() && *p != "*") {
            cond.port = match get_integer(port) {
                Some(n) => n,
                None => ll_name_to_index(port, self.ctx.resolver)
                    .and_then(|i| i32::try_from(i).ok())
                    .filter(|&i| i > 0)
                    .ok_or_else(|| ValueError::LinkPort(port.to_owned()))?,
            };
        }
        if !is_port && !addr.is_empty() && addr != "*" {
            let proto = crate::names::system::ll_proto_id(addr)
                .or_else(|| get_unsigned(addr).and_then(|n| u16::try_from(n).ok()))
                .ok_or_else(|| ValueError::LinkProtocol(addr.to_owned()))?;
            cond.addr = HostAddr::Other(data_prefix(AF_PACKET, u32::from(proto), 32));
        }
        Ok(cond)
    }

    /// The AF_NETLINK part of `parse_hostcond()`: `[PROTOCOL][:PORTID]`. The protocol is a
    /// name of iproute2's netlink table (`nl_protos`, case-sensitive) or a number up to
    /// 255, `*` or nothing for any; the port id a number, `kernel` (0), `*` or nothing.
    fn parse_netlink_hostcond(&self, text: &str, is_port: bool) -> Result<HostCond, ValueError> {
        let (addr, port) = find_port(text, is_port);
        let mut cond = HostCond { port: -1, addr: HostAddr::Other(Prefix { family: AF_NETLINK, ..Prefix::ANY }) };
        if let Some(port) = port.filter(|p| !p.is_empty() && *p != "*") {
            cond.port = match (get_integer(port), port) {
                (Some(n), _) => n,
                (None, "kernel") => 0,
                (None, _) => return Err(ValueError::NetlinkPort(port.to_owned())),
            };
        }
        if !is_port && !addr.is_empty() && addr != "*" {
            let proto = self
                .ctx
                .resolver
                .netlink_protocol(addr)
                .or_else(|| {
                    // nl_proto_a2n(): strtoul(arg, &end, 0), whole string, at most 255.
                    let n = c_scan(addr, 0);
                    let (v, _) = c_strtoul(&n);
                    (n.consumed != 0 && n.consumed == addr.len()).then_some(v).and_then(|v| u8::try_from(v).ok())
                })
                .ok_or_else(|| ValueError::NetlinkProtocol(addr.to_owned()))?;
            cond.addr = HostAddr::Other(data_prefix(AF_NETLINK, u32::from(proto), 32));
        }
        Ok(cond)
    }

    /// The inet part of `parse_hostcond()`: `[ADDR]:PORT`, `*:PORT`, `ADDR[/PLEN][:PORT]`,
    /// or for `sport`/`dport` the whole token as a port.
    fn parse_inet_hostcond(&self, text: &str, is_port: bool, fam: u16) -> Result<HostCond, ValueError> {
        let (addr, port) = if let Some(rest) = text.strip_prefix('[') {
            let close = rest.find(']').ok_or(ValueError::UnclosedBracket)?;
            let inside = &rest[..close];
            (inside, Some(if is_port { inside } else { &rest[close + 1..] }))
        } else if is_port {
            (text, Some(text))
        } else if let Some(after_star) = text.strip_prefix('*') {
            (text, Some(after_star))
        } else {
            // The port is after the last ':' that follows the first '/' (if any), so
            // `fe80::/64` has none and `10.0.0.0/8:22` has one.
            let from = text.find('/').unwrap_or(0);
            match text[from..].rfind(':') {
                Some(i) => (&text[..from + i], Some(&text[from + i..])),
                None => (text, None),
            }
        };

        let mut cond_port = -1;
        if let Some(p) = port {
            let p = p.strip_prefix(':').unwrap_or(p);
            if !p.is_empty() && !p.starts_with('*') {
                cond_port = match get_integer(p) {
                    Some(n) => n,
                    None => self.service_port(p)?,
                };
            }
        }

        let mut first = Prefix::ANY;
        let mut more = Vec::new();
        if !is_port && !addr.is_empty() && !addr.starts_with('*') {
            if let Some(p) = get_prefix_1(addr, fam) {
                first = p;
            } else {
                let r = self.ctx.resolver;
                let mut found = r.host_addrs(addr, if fam == AF_UNSPEC { AF_INET } else { fam });
                if fam == AF_UNSPEC {
                    found.extend(r.host_addrs(addr, AF_INET6));
                }
                let mut found = found.into_iter().map(Prefix::host);
                first = found.next().ok_or_else(|| ValueError::NotAPrefix(addr.to_owned()))?;
                more = found.collect();
            }
        }
        Ok(HostCond { port: cond_port, addr: HostAddr::Inet { first, more } })
    }

    /// A service name: udp's port if the UDP table is selected, else tcp's; ambiguous if
    /// both are selected and differ (ss.c).
    fn service_port(&self, name: &str) -> Result<i32, ValueError> {
        let r = self.ctx.resolver;
        let udp = if self.ctx.udp { r.service_port(name, "udp") } else { None };
        let tcp = if self.ctx.tcp { r.service_port(name, "tcp") } else { None };
        if let (Some(u), Some(t)) = (udp, tcp)
            && u != t
        {
            return Err(ValueError::AmbiguousPort(name.to_owned()));
        }
        udp.or(tcp).map(i32::from).ok_or_else(|| ValueError::NotAPort(name.to_owned()))
    }

    // -----------------------------------------------------------------------------------
    // Parser: ssfilter.y
    //
    //   applet:   exprlist | /* empty */
    //   exprlist: expr | exprlist '|' expr | exprlist '&' expr | exprlist expr
    //   expr:     '(' exprlist ')' | '!' expr | DCOND eq HOSTCOND | SCOND eq HOSTCOND
    //           | DPORT (GEQ|LEQ|'>'|'<'|eq|NEQ) HOSTCOND | SPORT (...) HOSTCOND
    //           | DEVNAME (eq|NEQ) DEVCOND | FWMARK (eq|NEQ) MARKMASK
    //           | CGROUPPATH (eq|NEQ) CGROUPCOND | AUTOBOUND
    //   eq:       '=' | /* empty */
    fn parse_applet(&mut self) -> Result<Option<Expr>, FilterError> {
        if self.peek()?.tok == Tok::End {
            return Ok(None);
        }
        let (expr, _) = self.exprlist()?;
        let next = self.next()?;
        match next.tok {
            Tok::End => Ok(Some(expr)),
            _ => Err(syntax(&next, "'and', 'or', another condition, or the end of the filter")),
        }
    }

    /// Returns the expression and its tree depth.
    fn exprlist(&mut self) -> Result<(Expr, usize), FilterError> {
        let (mut acc, mut depth) = self.expr()?;
        loop {
            let is_or = match &self.peek()?.tok {
                Tok::Or => {
                    self.next()?;
                    true
                }
                Tok::And => {
                    self.next()?;
                    false
                }
                t if t.starts_expr() => false,
                _ => return Ok((acc, depth)),
            };
            let column = self.peek()?.column;
            let (rhs, rdepth) = self.expr()?;
            (acc, depth) = join(acc, depth, rhs, rdepth, is_or);
            if depth > MAX_DEPTH {
                return Err(FilterError::TooDeep { column, token: String::new() });
            }
        }
    }

    fn expr(&mut self) -> Result<(Expr, usize), FilterError> {
        let t = self.next()?;
        match t.tok {
            Tok::LParen => self.nested(&t, Self::paren_rest),
            Tok::Not => {
                let (e, d) = self.nested(&t, Self::expr)?;
                Ok((Expr::Not(Box::new(e)), d + 1))
            }
            Tok::Kw(k) => self.condition(k),
            _ => Err(syntax(&t, "a condition: src, dst, sport, dport, dev, fwmark, cgroup, autobound, 'not' or '('")),
        }
    }

    /// After `(`: `exprlist ')'`.
    fn paren_rest(&mut self) -> Result<(Expr, usize), FilterError> {
        let (e, d) = self.exprlist()?;
        let close = self.next()?;
        if close.tok == Tok::RParen { Ok((e, d)) } else { Err(syntax(&close, "')', 'and', 'or' or another condition")) }
    }

    /// A condition after its keyword. Kept out of [`Parser::expr`] (never inlined) so the
    /// frames of the `(`/`not` recursion stay small.
    #[inline(never)]
    fn condition(&mut self, k: Keyword) -> Result<(Expr, usize), FilterError> {
        match k {
            Keyword::Src | Keyword::Dst => {
                if self.peek()?.tok == Tok::Eq {
                    self.next()?;
                }
                let v = self.next()?;
                let Tok::Host(cond) = v.tok else {
                    return Err(syntax(&v, "an address, [ADDRESS]:PORT or *:PORT ('=' optional)"));
                };
                Ok((if k == Keyword::Src { Expr::Src(cond) } else { Expr::Dst(cond) }, 1))
            }
            Keyword::Sport | Keyword::Dport => {
                let op = match self.peek()?.tok {
                    ref op @ (Tok::Geq | Tok::Leq | Tok::Gt | Tok::Lt | Tok::Eq | Tok::Neq) => {
                        let op = op.clone();
                        self.next()?;
                        op
                    }
                    _ => Tok::Eq,
                };
                let v = self.next()?;
                let Tok::Host(cond) = v.tok else {
                    return Err(syntax(&v, "a port, or one of = != < > <= >= followed by a port"));
                };
                let src = k == Keyword::Sport;
                let p = cond.port;
                let ge = if src { Expr::SportGe } else { Expr::DportGe };
                let le = if src { Expr::SportLe } else { Expr::DportLe };
                let eq = || {
                    if src { Expr::Src(cond.clone()) } else { Expr::Dst(cond.clone()) }
                };
                Ok(match op {
                    Tok::Geq => (ge(p), 1),
                    Tok::Leq => (le(p), 1),
                    Tok::Gt => (Expr::Not(Box::new(le(p))), 2),
                    Tok::Lt => (Expr::Not(Box::new(ge(p))), 2),
                    Tok::Neq => (Expr::Not(Box::new(eq())), 2),
                    _ => (eq(), 1),
                })
            }
            Keyword::Dev | Keyword::Fwmark | Keyword::Cgroup => {
                let negate = match self.peek()?.tok {
                    Tok::Eq => {
                        self.next()?;
                        false
                    }
                    Tok::Neq => {
                        self.next()?;
                        true
                    }
                    _ => false,
                };
                let v = self.next()?;
                let e = match (k, v.tok) {
                    (Keyword::Dev, Tok::DevCond(i)) => Expr::Dev(i),
                    (Keyword::Fwmark, Tok::MarkMask(mark, mask)) => Expr::Mark { mark, mask },
                    (Keyword::Cgroup, Tok::CgroupCond(path, id)) => Expr::Cgroup { path, id },
                    (k, tok) => {
                        let what = match k {
                            Keyword::Dev => "a device name or index ('=' or '!=' optional)",
                            Keyword::Fwmark => "MARK or MARK/MASK ('=' or '!=' optional)",
                            _ => "a cgroup path ('=' or '!=' optional)",
                        };
                        return Err(syntax(&Lexed { tok, ..v }, what));
                    }
                };
                Ok(if negate { (Expr::Not(Box::new(e)), 2) } else { (e, 1) })
            }
            Keyword::Autobound => {
                let (low, high) = self.ctx.resolver.ephemeral_ports().unwrap_or((1024, 4999));
                Ok((Expr::Autobound { low, high }, 1))
            }
        }
    }

    /// Runs `f` one nesting level deeper, refusing to go past [`MAX_DEPTH`] (the parser
    /// recurses on `(` and `not`).
    fn nested(
        &mut self,
        at: &Lexed,
        f: fn(&mut Self) -> Result<(Expr, usize), FilterError>,
    ) -> Result<(Expr, usize), FilterError> {
        if self.nesting >= MAX_DEPTH {
            return Err(FilterError::TooDeep { column: at.column, token: at.text.clone().unwrap_or_default() });
        }
        self.nesting += 1;
        let r = f(self);
        self.nesting -= 1;
        r
    }
}

/// `acc OP rhs`, flattening a chain of the same operator.
fn join(acc: Expr, adepth: usize, rhs: Expr, rdepth: usize, is_or: bool) -> (Expr, usize) {
    match (acc, is_or) {
        (Expr::Or(mut v), true) => {
            v.push(rhs);
            (Expr::Or(v), adepth.max(rdepth + 1))
        }
        (Expr::And(mut v), false) => {
            v.push(rhs);
            (Expr::And(v), adepth.max(rdepth + 1))
        }
        (acc, true) => (Expr::Or(vec![acc, rhs]), adepth.max(rdepth) + 1),
        (acc, false) => (Expr::And(vec![acc, rhs]), adepth.max(rdepth) + 1),
    }
}

fn syntax(at: &Lexed, expected: &'static str) -> FilterError {
    FilterError::Syntax { column: at.column, token: at.text.clone(), expected }
}

// ---------------------------------------------------------------------------------------
// Values: iproute2's lib/utils.c number and address rules.

/// The result of C's `strtoul`/`strtol` on a prefix of a string.
struct CNumber {
    /// Magnitude, saturated at `u64::MAX`.
    magnitude: u64,
    negative: bool,
    /// Bytes consumed; 0 when there are no digits (C sets `endptr` to the start).
    consumed: usize,
}

/// C's number scanning for `strtoul`/`strtol` with `base` 0 (auto) or 10: leading
/// `isspace`, optional sign, `0x` hex / `0` octal prefixes for base 0.
fn c_scan(s: &str, base: u32) -> CNumber {
    let b = s.as_bytes();
    let mut i = 0;
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')) {
        i += 1;
    }
    let mut negative = false;
    if let Some(&c @ (b'+' | b'-')) = b.get(i) {
        negative = c == b'-';
        i += 1;
    }
    let mut radix = base;
    if base == 0 {
        radix = 10;
        if b.get(i) == Some(&b'0') {
            radix = 8;
            // "0x" counts as a prefix only when a hex digit follows; "0xg" is 0, then "xg".
            if matches!(b.get(i + 1), Some(b'x' | b'X')) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
                radix = 16;
                i += 2;
            }
        }
    }
    let start = i;
    let mut magnitude: u64 = 0;
    while let Some(d) = b.get(i).and_then(|&c| char::from(c).to_digit(radix)) {
        magnitude =
            magnitude.checked_mul(u64::from(radix)).and_then(|m| m.checked_add(u64::from(d))).unwrap_or(u64::MAX);
        i += 1;
    }
    CNumber { magnitude, negative, consumed: if i == start { 0 } else { i } }
}

/// `strtoul(s, &end, base)`: the value (negation wraps, as in C; overflow saturates) and
/// whether it overflowed (ERANGE).
fn c_strtoul(n: &CNumber) -> (u64, bool) {
    if n.magnitude == u64::MAX {
        return (u64::MAX, true);
    }
    if n.negative { (n.magnitude.wrapping_neg(), false) } else { (n.magnitude, false) }
}

/// `strtol(s, &end, base)`: the value (saturated) and whether it overflowed.
fn c_strtol(n: &CNumber) -> (i64, bool) {
    let limit = if n.negative { 1u64 << 63 } else { (1u64 << 63) - 1 };
    if n.magnitude > limit {
        return (if n.negative { i64::MIN } else { i64::MAX }, true);
    }
    let v = i128::from(n.magnitude);
    let v = if n.negative { -v } else { v };
    (i64::try_from(v).unwrap_or(i64::MAX), false)
}

/// iproute2 `get_integer(&val, s, 0)`: the whole string, within `int`.
fn get_integer(s: &str) -> Option<i32> {
    let n = c_scan(s, 0);
    if n.consumed == 0 || n.consumed != s.len() {
        return None;
    }
    let (v, overflow) = c_strtol(&n);
    if overflow {
        return None;
    }
    i32::try_from(v).ok()
}

/// iproute2 `get_unsigned(&val, s, 0)`: the whole string, within `unsigned int`.
fn get_unsigned(s: &str) -> Option<u32> {
    let n = c_scan(s, 0);
    if n.consumed == 0 || n.consumed != s.len() {
        return None;
    }
    let (v, overflow) = c_strtoul(&n);
    if overflow {
        return None;
    }
    u32::try_from(v).ok()
}

/// iproute2 `get_addr_ipv4()`: one to four `strtoul` numbers (base 0, each <= 255)
/// separated by dots; missing trailing bytes are 0 (`127.1` is 127.1.0.0).
fn get_addr_ipv4(s: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut rest = s;
    for (i, byte) in out.iter_mut().enumerate() {
        let n = c_scan(rest, 0);
        let (v, _) = c_strtoul(&n);
        if n.consumed == 0 {
            return None;
        }
        *byte = u8::try_from(v).ok()?;
        let tail = &rest[n.consumed..];
        if tail.is_empty() {
            break;
        }
        if i == 3 || !tail.starts_with('.') {
            return None;
        }
        rest = &tail[1..];
    }
    Some(out)
}

/// iproute2 `get_addr_1()` for the families a filter can name. Returns the address and
/// whether it was one of the "any" spellings (iproute2's `bitlen == -2`).
fn get_addr_1(s: &str, fam: u16) -> Option<(Prefix, bool)> {
    if matches!(s, "default" | "all" | "any") {
        // The family is the caller's, AF_UNSPEC included: `src any` matches every family.
        let p = Prefix { family: fam, bytes: [0; 16], bitlen: 0 };
        return Some((p, true));
    }
    if s.contains(':') {
        if fam != AF_UNSPEC && fam != AF_INET6 {
            return None;
        }
        let ip: Ipv6Addr = s.parse().ok()?;
        return Some((Prefix::host(IpAddr::V6(ip)), false));
    }
    if fam != AF_UNSPEC && fam != AF_INET {
        return None;
    }
    let v4 = get_addr_ipv4(s)?;
    Some((Prefix::host(IpAddr::V4(v4.into())), false))
}

/// iproute2 `get_netmask()`: a number, or a dotted mask with contiguous ones.
fn get_netmask(s: &str) -> Option<u32> {
    if let Some(n) = get_unsigned(s) {
        return Some(n);
    }
    let (p, _) = get_addr_1(s, AF_INET)?;
    if p.family != AF_INET {
        return None;
    }
    let mask = u32::from_be_bytes([p.bytes[0], p.bytes[1], p.bytes[2], p.bytes[3]]);
    let host = !mask;
    // A valid mask is ones then zeros: its complement is 2^n - 1.
    (host & host.wrapping_add(1) == 0).then(|| mask.leading_ones())
}

/// iproute2 `get_prefix_1()`: `ADDR[/PLEN]`, PLEN a number or a dotted mask.
fn get_prefix_1(s: &str, fam: u16) -> Option<Prefix> {
    let (addr, plen) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let (mut p, any) = get_addr_1(addr, fam)?;
    let max: u32 = match p.family {
        AF_INET => 32,
        AF_INET6 => 128,
        _ => 0,
    };
    match plen {
        Some(m) => {
            if any {
                return None;
            }
            let bits = get_netmask(m)?;
            if bits > max {
                return None;
            }
            p.bitlen = u8::try_from(bits).ok()?;
        }
        None => p.bitlen = if any { 0 } else { u8::try_from(max).unwrap_or(0) },
    }
    Some(p)
}

/// iproute2's `ll_name_to_index()`: the kernel's table, then the `ifN` spelling; `None`
/// for 0 (no such interface).
fn ll_name_to_index(s: &str, resolver: &dyn Resolver) -> Option<u32> {
    resolver
        .ifindex(s)
        .or_else(|| {
            // ll_idx_a2n(): sscanf(name, "if%u").
            let rest = s.strip_prefix("if")?;
            let n = c_scan(rest, 10);
            // %u stores the strtoul result in an unsigned int: truncation is C's.
            (n.consumed != 0).then(|| c_strtoul(&n).0 as u32)
        })
        .filter(|&i| i != 0)
}

/// ss.c `find_port()`: for `sport`/`dport` the whole token is the port (a leading `:`
/// dropped); otherwise the text before the first `:` is the address and the text after
/// it the port (`None` without a `:`).
fn find_port(text: &str, is_port: bool) -> (&str, Option<&str>) {
    if is_port {
        // ss cuts the ':' off in place, which also leaves the address empty.
        return match text.strip_prefix(':') {
            Some(port) => ("", Some(port)),
            None => (text, Some(text)),
        };
    }
    match text.split_once(':') {
        Some((addr, port)) => (addr, Some(port)),
        None => (text, None),
    }
}

/// An `inet_prefix` of a non-inet family holding `value` as ss stores it
/// (`a.addr.data[0] = value`).
fn data_prefix(family: u16, value: u32, bitlen: u8) -> Prefix {
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&value.to_ne_bytes());
    Prefix { family, bytes, bitlen }
}

/// The AF_VSOCK part of ss.c `parse_hostcond()`: `[CID][:PORT]`, each a `get_u32` number
/// or `*`; a missing cid is any (ss still stores cid -1 in the prefix, with no length).
/// Unlike the packet and netlink forms, an empty port (`vsock:3:`) is an error.
fn parse_vsock_hostcond(text: &str, is_port: bool) -> Result<HostCond, ValueError> {
    let (addr, port) = find_port(text, is_port);
    let mut cond_port = -1;
    if let Some(port) = port.filter(|&p| p != "*") {
        // get_u32 into an int: the wrap is ss's (port 4294967295 is -1, "any").
        cond_port = get_unsigned(port).ok_or_else(|| ValueError::VsockPort(port.to_owned()))?.cast_signed();
    }
    let mut cid = u32::MAX;
    let mut bitlen = 0;
    if !is_port && !addr.is_empty() && addr != "*" {
        cid = get_unsigned(addr).ok_or_else(|| ValueError::VsockCid(addr.to_owned()))?;
        bitlen = 32;
    }
    Ok(HostCond { port: cond_port, addr: HostAddr::Other(data_prefix(AF_VSOCK, cid, bitlen)) })
}

/// ss.c `parse_devcond()`: an interface name (iproute2's `ll_name_to_index`: the kernel's
/// table, then the `ifN` spelling), else a whole `strtoul` number within `unsigned int`.
fn parse_devcond(s: &str, resolver: &dyn Resolver) -> Result<u32, ValueError> {
    if let Some(i) = ll_name_to_index(s, resolver) {
        return Ok(i);
    }
    let n = c_scan(s, 0);
    let (v, _) = c_strtoul(&n);
    if n.consumed == 0 || n.consumed != s.len() {
        return Err(ValueError::Device(s.to_owned()));
    }
    u32::try_from(v).map_err(|_| ValueError::Device(s.to_owned()))
}

/// `sscanf("%i")`: leading space, sign, base prefix; the `long` result truncated to
/// `int`. Returns the value's bits and the rest of the string.
fn scan_c_int(s: &str) -> Option<(u32, &str)> {
    let n = c_scan(s, 0);
    if n.consumed == 0 {
        return None;
    }
    let (v, _) = c_strtol(&n);
    // Truncation to C `int`, then reinterpretation as the u32 ss stores: C's.
    Some((v as u32, &s[n.consumed..]))
}

/// ss.c `parse_markmask()`: `MARK` (mask 0xffffffff) or `MARK/MASK`, each `%i`; text after
/// the number(s) is ignored, as sscanf does.
fn parse_markmask(s: &str) -> Result<(u32, u32), ValueError> {
    let err = || ValueError::Mark(s.to_owned());
    if s.contains('/') {
        let (mark, rest) = scan_c_int(s).ok_or_else(err)?;
        let rest = rest.strip_prefix('/').ok_or_else(err)?;
        let (mask, _) = scan_c_int(rest).ok_or_else(err)?;
        Ok((mark, mask))
    } else {
        let (mark, _) = scan_c_int(s).ok_or_else(err)?;
        Ok((mark, u32::MAX))
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation

/// An address as iproute2's `inet_prefix.data`: network order, IPv4 in the first 4 bytes.
fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    }
}

/// The first `bits` bits of `a` and `b` are equal (`inet_addr_match() == 0`, the
/// kernel's `bitstring_match()`).
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let bits = usize::from(bits);
    let whole = bits / 8;
    let (Some(a_whole), Some(b_whole)) = (a.get(..whole), b.get(..whole)) else {
        return false;
    };
    if a_whole != b_whole {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(whole), b.get(whole)) {
        (Some(x), Some(y)) => (x ^ y) & mask == 0,
        _ => false,
    }
}

fn is_v4_mapped(b: &[u8; 16]) -> bool {
    b[..10].iter().all(|&x| x == 0) && b[10] == 0xff && b[11] == 0xff
}

/// ss.c `inet2_addr_match()` (true = match): a plain prefix compare of the 16 bytes,
/// whatever the families, then a v4 rule also tried on a v4-mapped address.
fn user_addr_match(family: u16, addr: &[u8; 16], p: &Prefix) -> bool {
    if prefix_eq(addr, &p.bytes, p.bitlen) {
        return true;
    }
    if p.family == AF_INET && family == AF_INET6 && is_v4_mapped(addr) {
        // ss copies the v4 part into the first word and compares again (<= 32 bits).
        return prefix_eq(&addr[12..], &p.bytes, p.bitlen);
    }
    false
}

/// Evaluates ss's `unix_match()`: `fnmatch(pattern, path or "", FNM_CASEFOLD)`.
fn unix_match(pattern: &str, path: Option<&str>) -> bool {
    let (Ok(p), Ok(s)) = (CString::new(pattern), CString::new(path.unwrap_or(""))) else {
        // A C string cannot hold NUL: ss could never be given such a pattern or path.
        return false;
    };
    // SAFETY: both are valid NUL-terminated strings that outlive the call; fnmatch only
    // reads them.
    unsafe { libc::fnmatch(p.as_ptr(), s.as_ptr(), libc::FNM_CASEFOLD) == 0 }
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

    /// ss.c `run_ssfilter()`.
    #[must_use]
    pub fn eval_user(&self, s: &Subject<'_>) -> bool {
        match self {
            Expr::And(v) => v.iter().all(|e| e.eval_user(s)),
            Expr::Or(v) => v.iter().any(|e| e.eval_user(s)),
            Expr::Not(e) => !e.eval_user(s),
            Expr::Src(c) => user_hostcond(c, s.family, s.local, s.lport),
            Expr::Dst(c) => user_hostcond(c, s.family, s.remote, s.rport),
            Expr::SportGe(p) => s.lport >= *p,
            Expr::SportLe(p) => s.lport <= *p,
            Expr::DportGe(p) => s.rport >= *p,
            Expr::DportLe(p) => s.rport <= *p,
            Expr::Dev(i) => s.ifindex == *i,
            Expr::Mark { mark, mask } => s.mark.is_some_and(|m| m & mask == *mark),
            Expr::Cgroup { id, .. } => s.cgroup_id == Some(*id),
            Expr::Autobound { low, high } => match (s.local, s.family) {
                // A unix socket is autobound when unnamed or named "@" + 5 hex digits.
                (Endpoint::Unix(p), _) => p.is_none_or(|p| {
                    p.len() == 6 && p.starts_with('@') && p[1..].bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
                }),
                // ss: a packet socket bound to no interface and no protocol; a netlink
                // socket with a negative (kernel-chosen) port id; a vsock port above 1023.
                (Endpoint::Data(d), AF_PACKET) => s.lport == 0 && d[..4] == [0; 4],
                (Endpoint::Data(_), AF_NETLINK) => s.lport < 0,
                (Endpoint::Data(_), AF_VSOCK) => s.lport > 1023,
                (Endpoint::Inet(_) | Endpoint::Data(_), _) => (*low..=*high).contains(&s.lport),
            },
        }
    }

    /// The kernel's verdict on the bytecode ss compiles from this tree
    /// (net/ipv4/inet_diag.c `inet_diag_bc_run`, Linux 6.1). Meaningful for inet sockets
    /// and only when [`Expr::compiles_to_bytecode`].
    #[must_use]
    pub fn eval_kernel(&self, s: &Subject<'_>) -> bool {
        // The bytecode's port operands are `unsigned short` (struct inet_diag_bc_op.no).
        let port16 = |p: i32| i32::from(p as u16);
        match self {
            Expr::And(v) => v.iter().all(|e| e.eval_kernel(s)),
            Expr::Or(v) => v.iter().any(|e| e.eval_kernel(s)),
            Expr::Not(e) => !e.eval_kernel(s),
            Expr::Src(c) => kernel_hostcond(c, s.family, s.local, s.lport),
            Expr::Dst(c) => kernel_hostcond(c, s.family, s.remote, s.rport),
            Expr::SportGe(p) => s.lport >= port16(*p),
            Expr::SportLe(p) => s.lport <= port16(*p),
            Expr::DportGe(p) => s.rport >= port16(*p),
            Expr::DportLe(p) => s.rport <= port16(*p),
            // Never compiled (see compiles_to_bytecode): no kernel verdict to add.
            Expr::Dev(_) => true,
            Expr::Mark { mark, mask } => s.mark.is_some_and(|m| m & mask == *mark),
            Expr::Cgroup { id, .. } => s.cgroup_id == Some(*id),
            // Unknown: take the port's range as the sign of an explicit bind, so both
            // halves agree and `not autobound` stays the complement of `autobound`.
            Expr::Autobound { low, high } => match s.port_locked {
                Some(locked) => !locked,
                None => (*low..=*high).contains(&s.lport),
            },
        }
    }
}

/// ss.c `run_ssfilter()` for `SSF_SCOND`/`SSF_DCOND`.
///
/// ss compares the condition's `inet_prefix` with the socket's `local`/`remote` bytes
/// whatever either family is: a packet, netlink or vsock socket's bytes hold a protocol
/// or cid ([`Endpoint::Data`]), so `src 0.0.0.0` matches NETLINK_ROUTE sockets (protocol
/// 0) and `src 16.0.0.0` NETLINK_GENERIC ones on this little-endian machine. A unix
/// socket's bytes hold a pointer to its name: zero when unnamed (and always for the peer,
/// which ss's netlink path never names).
fn user_hostcond(c: &HostCond, family: u16, end: Endpoint<'_>, port: i32) -> bool {
    let (first, more): (&Prefix, &[Prefix]) = match &c.addr {
        HostAddr::Unix(pattern) => {
            return match end {
                Endpoint::Unix(path) => unix_match(pattern, path),
                // ss reads the protocol or cid as a string pointer: zero is NULL, read as
                // "". Any other value makes ss dereference it and die of SIGSEGV (`ss -a
                // 'src unix:* or src netlink:rtnl'`): sockstat answers "no match" there.
                Endpoint::Data(d) => d == [0; 16] && unix_match(pattern, None),
                // ss would read an inet socket's address bytes as a string pointer here; it
                // never gets that far because a unix condition drops the inet families
                // (family_override).
                Endpoint::Inet(_) => false,
            };
        }
        HostAddr::Inet { first, more } => (first, more),
        HostAddr::Other(p) => (p, &[]),
    };
    if c.port != -1 && c.port != port {
        return false;
    }
    if first.bitlen == 0 {
        return true;
    }
    let bytes = match end {
        Endpoint::Inet(ip) => ip_bytes(ip),
        Endpoint::Data(d) => d,
        // An unnamed unix socket: a NULL pointer, all zero.
        Endpoint::Unix(None) => [0; 16],
        // A named one: the address of ss's copy of the name, which no prefix can be
        // expected to match; treated as no match.
        Endpoint::Unix(Some(_)) => return false,
    };
    std::iter::once(first).chain(more).any(|p| user_addr_match(family, &bytes, p))
}

/// `INET_DIAG_BC_S_COND`/`D_COND` in `inet_diag_bc_run()`, for the first element only (ss
/// writes the first element's address into every element of the chain).
fn kernel_hostcond(c: &HostCond, family: u16, end: Endpoint<'_>, port: i32) -> bool {
    let HostAddr::Inet { first, .. } = &c.addr else {
        // The kernel rejects other families in bytecode (inet_diag_bc_audit); ss never
        // dumps inet sockets with such a filter.
        return false;
    };
    if c.port != -1 && c.port != port {
        return false;
    }
    let Endpoint::Inet(ip) = end else {
        return false;
    };
    let addr = ip_bytes(ip);
    if first.family != AF_UNSPEC && first.family != family {
        return family == AF_INET6
            && first.family == AF_INET
            && is_v4_mapped(&addr)
            && prefix_eq(&addr[12..], &first.bytes, first.bitlen);
    }
    first.bitlen == 0 || prefix_eq(&addr, &first.bytes, first.bitlen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::socket::Source;
    use TcpState::*;

    const fn b(s: TcpState) -> u32 {
        bit(s)
    }

    // ---- STATE-FILTER --------------------------------------------------------------

    #[test]
    fn constants_match_ss() {
        // Values computed by hand from ss.c's enum: SS_ALL = 0xfff, SS_CONN drops
        // LISTEN(10), CLOSE(7), TIME_WAIT(6), SYN_RECV(3).
        assert_eq!(SS_ALL, 0xfff);
        assert_eq!(SS_CONN, 0xfff & !(1 << 10 | 1 << 7 | 1 << 6 | 1 << 3));
        assert_eq!(SS_LISTENING, 1 << 10 | 1 << 7);
    }

    #[test]
    fn every_identifier_scans_as_ss_does() {
        let cases: &[(&str, u32)] = &[
            ("established", b(Established)),
            ("syn-sent", b(SynSent)),
            ("syn-recv", b(SynRecv)),
            ("syn-rcv", b(SynRecv)),
            ("fin-wait-1", b(FinWait1)),
            ("fin-wait-2", b(FinWait2)),
            ("time-wait", b(TimeWait)),
            ("closed", b(Close)),
            ("close", b(Close)),
            ("unconnected", b(Close)),
            ("close-wait", b(CloseWait)),
            ("last-ack", b(LastAck)),
            ("listening", b(Listen)),
            ("closing", b(Closing)),
            ("unknown", 1),
            ("all", 0xfff),
            ("connected", 0xfff & !(b(Close) | b(Listen))),
            ("synchronized", 0xfff & !(b(Close) | b(Listen) | b(SynSent))),
            ("bucket", b(SynRecv) | b(TimeWait)),
            ("big", 0xfff & !(b(SynRecv) | b(TimeWait))),
            ("ESTABLISHED", b(Established)),
            ("Time-Wait", b(TimeWait)),
        ];
        for &(name, mask) in cases {
            assert_eq!(scan_state(name), Some(mask), "{name}");
        }
        for bad in ["listen", "estab", "", "syn_sent", "fin-wait", "new-syn-recv", "bogus"] {
            assert_eq!(scan_state(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn state_words_combine_as_ss_does() {
        let a = SS_ALL;
        let l = SS_LISTENING;
        let cases: &[(&[&str], u32, u32)] = &[
            (&[], 0, 0),
            (&[], a, a),
            (&[], l, l),
            (&["state", "established"], 0, b(Established)),
            // The first `state` discards -a / -l.
            (&["state", "established"], a, b(Established)),
            (&["state", "time-wait"], l, b(TimeWait)),
            (&["state", "established", "state", "listening"], 0, b(Established) | b(Listen)),
            // The first `exclude` starts from SS_ALL, whatever -l said.
            (&["exclude", "listening"], l, a & !b(Listen)),
            (&["excl", "established"], 0, a & !b(Established)),
            (&["state", "connected", "exclude", "time-wait"], 0, a & !(b(Close) | b(Listen) | b(TimeWait))),
            (&["exclude", "all"], a, 0),
            (&["exclude", "bucket", "state", "syn-recv"], 0, a & !b(TimeWait)),
        ];
        for &(words, initial, want) in cases {
            let f = parse_with(words, initial, &ctx()).unwrap_or_else(|e| panic!("{words:?}: {e}"));
            assert_eq!(f.state_filter, want, "{words:?} from {initial:#x}");
            assert_eq!(f.saw_states, !words.is_empty(), "{words:?}");
            assert_eq!(f.expr, None);
        }
        // The expression follows the state words.
        let f = parse_with(&["state", "listening", "sport", "=", ":22"], 0, &ctx()).expect("valid");
        assert_eq!(f.state_filter, b(Listen));
        assert_eq!(f.expr, Some(Expr::Src(port_cond(22))));
    }

    #[test]
    fn malformed_state_words_match_ss_text() {
        let cases: &[(&[&str], FilterError, &str)] = &[
            (
                &["state", "bogus"],
                FilterError::WrongStateName { name: "bogus".into(), position: 2 },
                "sockstat: wrong state name: bogus\n",
            ),
            (
                &["state", "established", "exclude", "listen"],
                FilterError::WrongStateName { name: "listen".into(), position: 4 },
                "sockstat: wrong state name: listen\n",
            ),
            (
                &["state"],
                FilterError::MissingStateName { keyword: "state".into(), position: 1 },
                "Command line is not complete. Try option \"help\"\n",
            ),
            (
                &["state", "all", "excl"],
                FilterError::MissingStateName { keyword: "excl".into(), position: 3 },
                "Command line is not complete. Try option \"help\"\n",
            ),
        ];
        for (words, want, text) in cases {
            let err = parse_with(words, 0, &ctx()).expect_err("must fail");
            assert_eq!(&err, want, "{words:?}");
            assert_eq!(err.ss_message("sockstat"), *text, "{words:?}");
            assert_eq!(err.exit_code(), 255);
        }
    }

    // ---- a deterministic resolver ----------------------------------------------------

    struct Fake;

    impl Resolver for Fake {
        fn service_port(&self, name: &str, proto: &str) -> Option<u16> {
            match (name, proto) {
                ("ssh", _) => Some(22),
                ("http", _) => Some(80),
                ("amb", "tcp") => Some(1),
                ("amb", "udp") => Some(2),
                _ => None,
            }
        }
        fn host_addrs(&self, name: &str, family: u16) -> Vec<IpAddr> {
            match (name, family) {
                ("localhost", AF_INET) => vec![[127, 0, 0, 1].into()],
                ("localhost", AF_INET6) => vec![Ipv6Addr::LOCALHOST.into()],
                ("six", AF_INET6) => vec!["2001:db8::6".parse().expect("literal")],
                _ => Vec::new(),
            }
        }
        fn ifindex(&self, name: &str) -> Option<u32> {
            match name {
                "lo" => Some(1),
                "eth0" => Some(2),
                _ => None,
            }
        }
        fn cgroup_id(&self, path: &str) -> Option<u64> {
            matches!(path, "/system.slice" | "system.slice").then_some(42)
        }
        fn ephemeral_ports(&self) -> Option<(i32, i32)> {
            Some((32768, 60999))
        }
        fn netlink_protocol(&self, name: &str) -> Option<u8> {
            match name {
                "rtnl" => Some(0),
                "tcpdiag" => Some(4),
                "genl" => Some(16),
                _ => None,
            }
        }
    }

    fn ctx() -> ParseContext<'static> {
        ParseContext { preferred_family: AF_UNSPEC, tcp: true, udp: false, resolver: &Fake }
    }

    fn words(text: &str) -> Vec<&str> {
        text.split(' ').filter(|w| !w.is_empty()).collect()
    }

    fn expr(text: &str) -> Expr {
        match parse_with(&words(text), 0, &ctx()) {
            Ok(Filter { expr: Some(e), .. }) => e,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn port_cond(port: i32) -> HostCond {
        HostCond { port, addr: HostAddr::Inet { first: Prefix::ANY, more: vec![] } }
    }

    fn pfx(text: &str, bitlen: u8) -> Prefix {
        let ip: IpAddr = text.parse().expect("literal");
        Prefix { bitlen, ..Prefix::host(ip) }
    }

    fn addr_cond(port: i32, first: Prefix) -> HostCond {
        HostCond { port, addr: HostAddr::Inet { first, more: vec![] } }
    }

    // ---- grammar -----------------------------------------------------------------------

    #[test]
    fn expressions_parse_to_ss_trees() {
        let d80 = || Expr::Dst(port_cond(80));
        let s = |p| Expr::Src(port_cond(p));
        let not = |e| Expr::Not(Box::new(e));
        let cases: Vec<(&str, Expr)> = vec![
            // `=` is optional; `eq` and `==` are `=`; a bare number is a port after dport.
            ("dport = :80", d80()),
            ("dport :80", d80()),
            ("dport eq 80", d80()),
            ("dport == 80", d80()),
            ("dport 80", d80()),
            ("dport = :http", d80()),
            ("dport = 0x50", d80()),
            ("dport = :+80", d80()),
            // `*` (or nothing after ':') is any port.
            ("dport = *", Expr::Dst(port_cond(-1))),
            ("dport = :", Expr::Dst(port_cond(-1))),
            ("sport != :22", not(s(22))),
            ("sport ne 22", not(s(22))),
            ("sport neq ssh", not(s(22))),
            ("sport > :1024", not(Expr::SportLe(1024))),
            ("sport gt 1024", not(Expr::SportLe(1024))),
            ("sport < 1024", not(Expr::SportGe(1024))),
            ("dport >= :1024", Expr::DportGe(1024)),
            ("dport geq 1024", Expr::DportGe(1024)),
            ("dport <= 1024", Expr::DportLe(1024)),
            ("dport le 1024", Expr::DportLe(1024)),
            ("dst 10.0.0.0/8", Expr::Dst(addr_cond(-1, pfx("10.0.0.0", 8)))),
            ("dst = 10.0.0.0/255.0.0.0", Expr::Dst(addr_cond(-1, pfx("10.0.0.0", 8)))),
            ("dst 10/0x8", Expr::Dst(addr_cond(-1, pfx("10.0.0.0", 8)))),
            ("src 127.1", Expr::Src(addr_cond(-1, pfx("127.1.0.0", 32)))),
            ("src 0x7f.1", Expr::Src(addr_cond(-1, pfx("127.1.0.0", 32)))),
            ("src 127.0.0.1:8080", Expr::Src(addr_cond(8080, pfx("127.0.0.1", 32)))),
            ("src 10.0.0.0/8:22", Expr::Src(addr_cond(22, pfx("10.0.0.0", 8)))),
            ("dst [::1]", Expr::Dst(addr_cond(-1, pfx("::1", 128)))),
            ("dst [::1]:443", Expr::Dst(addr_cond(443, pfx("::1", 128)))),
            ("dst [::1/128]", Expr::Dst(addr_cond(-1, pfx("::1", 128)))),
            ("dst fe80::/64", Expr::Dst(addr_cond(-1, pfx("fe80::", 64)))),
            ("dst [127.0.0.1]:22", Expr::Dst(addr_cond(22, pfx("127.0.0.1", 32)))),
            ("src *:80", s(80)),
            ("src *", s(-1)),
            ("src :ssh", s(22)),
            ("src 127.0.0.1:*", Expr::Src(addr_cond(-1, pfx("127.0.0.1", 32)))),
            ("src any", Expr::Src(addr_cond(-1, Prefix::ANY))),
            (
                "dst localhost",
                Expr::Dst(HostCond {
                    port: -1,
                    addr: HostAddr::Inet { first: pfx("127.0.0.1", 32), more: vec![pfx("::1", 128)] },
                }),
            ),
            // Juxtaposition is `and`; `and` and `or` have equal precedence, left to right.
            ("sport = :1 sport = :2", Expr::And(vec![s(1), s(2)])),
            ("sport = :1 or sport = :2 and sport = :3", Expr::And(vec![Expr::Or(vec![s(1), s(2)]), s(3)])),
            ("sport = :1 && sport = :2 || sport = :3", Expr::Or(vec![Expr::And(vec![s(1), s(2)]), s(3)])),
            ("sport = :1 | sport = :2 | sport = :3", Expr::Or(vec![s(1), s(2), s(3)])),
            ("sport = :1 or ( sport = :2 & sport = :3 )", Expr::Or(vec![s(1), Expr::And(vec![s(2), s(3)])])),
            // `not` binds to one expr.
            ("not sport = :1 sport = :2", Expr::And(vec![not(s(1)), s(2)])),
            ("! ( sport = :1 or sport = :2 )", not(Expr::Or(vec![s(1), s(2)]))),
            ("not not sport = :1", not(not(s(1)))),
            ("dev = lo", Expr::Dev(1)),
            ("dev eth0", Expr::Dev(2)),
            ("dev != eth0", not(Expr::Dev(2))),
            ("dev if7", Expr::Dev(7)),
            ("dev 0x10", Expr::Dev(16)),
            ("dev 0", Expr::Dev(0)),
            ("fwmark = 0x10/0xff", Expr::Mark { mark: 16, mask: 255 }),
            ("fwmark 5", Expr::Mark { mark: 5, mask: u32::MAX }),
            ("fwmark 5abc", Expr::Mark { mark: 5, mask: u32::MAX }),
            ("fwmark 0/0/0", Expr::Mark { mark: 0, mask: 0 }),
            ("fwmark != 010", not(Expr::Mark { mark: 8, mask: u32::MAX })),
            ("fwmark -1", Expr::Mark { mark: u32::MAX, mask: u32::MAX }),
            ("cgroup = /system.slice", Expr::Cgroup { path: "/system.slice".into(), id: 42 }),
            ("cgroup != system.slice", not(Expr::Cgroup { path: "system.slice".into(), id: 42 })),
            ("autobound", Expr::Autobound { low: 32768, high: 60999 }),
        ];
        for (text, want) in cases {
            assert_eq!(expr(text), want, "{text:?}");
        }
    }

    #[test]
    fn words_are_split_and_unescaped_as_ss_does() {
        // One word holding the whole expression, as `ss 'dport = :80'` passes it.
        let f = parse_with(&["dport = :80 or", "sport\t:22"], 0, &ctx()).expect("valid");
        assert_eq!(f.expr, Some(Expr::Or(vec![Expr::Dst(port_cond(80)), Expr::Src(port_cond(22))])));
        // A backslash escapes a space: one token, which is then not a keyword.
        let e = parse_with(&["dport\\ =\\ :22"], 0, &ctx()).expect_err("one token");
        assert_eq!(
            e,
            FilterError::Value {
                column: 1,
                token: "dport = :22".into(),
                kind: ValueError::NotAPrefix("dport = ".into())
            }
        );
        // Empty words are skipped.
        assert_eq!(
            parse_with(&["", "sport", "", "22"], 0, &ctx()).expect("valid").expr,
            Some(Expr::Src(port_cond(22)))
        );
        assert_eq!(split_tokens(&["a\\"], 0), vec![RawToken { text: "a".into(), column: 1 }]);
    }

    #[test]
    fn family_prefixes_and_preferred_family() {
        let f = parse_with(&["src", "unix:/tmp/.X11-unix/*"], 0, &ctx()).expect("valid");
        assert_eq!(f.expr, Some(Expr::Src(HostCond { port: -1, addr: HostAddr::Unix("/tmp/.X11-unix/*".into()) })));
        assert_eq!(f.family_override, Some(AF_UNIX));
        let f = parse_with(&["src", "inet6:[::1]"], 0, &ctx()).expect("valid");
        assert_eq!(f.family_override, Some(AF_INET6));
        let f = parse_with(&["src", "inet:127.0.0.1", "or", "dport", "80"], 0, &ctx()).expect("valid");
        assert_eq!(f.family_override, Some(AF_INET));
        assert_eq!(parse_with(&["dport", "80"], 0, &ctx()).expect("valid").family_override, None);

        // ss -x: every address is a path glob, and ports too.
        let unix = ParseContext { preferred_family: AF_UNIX, ..ctx() };
        let f = parse_with(&["src", "/tmp/*"], 0, &unix).expect("valid");
        assert_eq!(f.expr, Some(Expr::Src(HostCond { port: -1, addr: HostAddr::Unix("/tmp/*".into()) })));
        assert_eq!(f.family_override, Some(AF_UNIX));

        // ss -6: an IPv4 literal is not an address of the family; it is looked up as a name.
        let six = ParseContext { preferred_family: AF_INET6, ..ctx() };
        let e = parse_with(&["src", "1.2.3.4"], 0, &six).expect_err("v4 under -6");
        assert!(matches!(e, FilterError::Value { kind: ValueError::NotAPrefix(_), .. }), "{e:?}");
        let f = parse_with(&["src", "six"], 0, &six).expect("resolves for v6");
        assert_eq!(f.expr, Some(Expr::Src(addr_cond(-1, pfx("2001:db8::6", 128)))));
        assert_eq!(f.family_override, Some(AF_INET6));

        // With both tcp and udp selected, a service whose ports differ is ambiguous.
        let both = ParseContext { udp: true, ..ctx() };
        let e = parse_with(&["dport", "amb"], 0, &both).expect_err("ambiguous");
        assert_eq!(e.to_string(), "filter error at column 7 near \"amb\"");
        assert_eq!(
            e.ss_message("sockstat"),
            "sockstat: filter error at column 7 near \"amb\": ambiguous port \"amb\": its tcp and udp numbers differ\n"
        );
        assert_eq!(expr("dport amb"), Expr::Dst(port_cond(1)));
    }

    #[test]
    fn invalid_filters_name_column_and_token() {
        use ValueError as V;
        // (filter words joined by spaces, column, token, Some(value error) or None for a
        // syntax error)
        let cases: Vec<(&str, usize, Option<&str>, Option<ValueError>)> = vec![
            // A bare word is a host to resolve (ss's lexer), and fails as one.
            ("frob", 1, Some("frob"), Some(V::NotAPrefix("frob".into()))),
            ("src 1.2.3.4 frob", 13, Some("frob"), Some(V::NotAPrefix("frob".into()))),
            // After dport, the sticky keyword makes the next bare word a port.
            ("dport = :80 frob", 13, Some("frob"), Some(V::NotAPort("frob".into()))),
            ("dport = :nosuchsvc", 9, Some(":nosuchsvc"), Some(V::NotAPort("nosuchsvc".into()))),
            ("dport = 080", 9, Some("080"), Some(V::NotAPort("080".into()))),
            ("dport = 127.0.0.1:80", 9, Some("127.0.0.1:80"), Some(V::NotAPort("127.0.0.1:80".into()))),
            ("dst 127.0.0.1:22x", 5, Some("127.0.0.1:22x"), Some(V::NotAPort("22x".into()))),
            ("src [::]/0", 5, Some("[::]/0"), Some(V::NotAPort("/0".into()))),
            ("src [::1]x", 5, Some("[::1]x"), Some(V::NotAPort("x".into()))),
            ("src [::1", 5, Some("[::1"), Some(V::UnclosedBracket)),
            ("src ::1", 5, Some("::1"), Some(V::NotAPrefix(":".into()))),
            ("src 10.0.0.0/33", 5, Some("10.0.0.0/33"), Some(V::NotAPrefix("10.0.0.0/33".into()))),
            (
                "src 127.0.0.1/255.0.255.0",
                5,
                Some("127.0.0.1/255.0.255.0"),
                Some(V::NotAPrefix("127.0.0.1/255.0.255.0".into())),
            ),
            ("src 127.0.0.1/08", 5, Some("127.0.0.1/08"), Some(V::NotAPrefix("127.0.0.1/08".into()))),
            ("src 256.0.0.1", 5, Some("256.0.0.1"), Some(V::NotAPrefix("256.0.0.1".into()))),
            ("src 1.2.3.4.5", 5, Some("1.2.3.4.5"), Some(V::NotAPrefix("1.2.3.4.5".into()))),
            ("src any/8", 5, Some("any/8"), Some(V::NotAPrefix("any/8".into()))),
            ("dev = nosuch", 7, Some("nosuch"), Some(V::Device("nosuch".into()))),
            ("dev if0", 5, Some("if0"), Some(V::Device("if0".into()))),
            ("dev lo 1.2.3.4", 8, Some("1.2.3.4"), Some(V::Device("1.2.3.4".into()))),
            ("fwmark = 5/", 10, Some("5/"), Some(V::Mark("5/".into()))),
            ("fwmark abc", 8, Some("abc"), Some(V::Mark("abc".into()))),
            ("cgroup = /nope", 10, Some("/nope"), Some(V::Cgroup("/nope".into()))),
            // Grammar errors: the token is lexed first (a valid value), then rejected.
            ("dst", 4, None, None),
            ("dst =", 6, None, None),
            ("not", 4, None, None),
            ("!", 2, None, None),
            ("( dport = :80", 14, None, None),
            ("dport = :80 )", 13, Some(")"), None),
            ("dport > :80 and", 16, None, None),
            ("src != 127.0.0.1", 5, Some("!="), None),
            ("src > 1.2.3.4", 5, Some(">"), None),
            ("1.2.3.4", 1, Some("1.2.3.4"), None),
            ("localhost", 1, Some("localhost"), None),
            ("dport = :80 :81", 13, Some(":81"), None),
            ("dport = = :80", 9, Some("="), None),
            ("( )", 3, Some(")"), None),
            ("sport = :1 and or sport = :2", 16, Some("or"), None),
            ("dev", 4, None, None),
            ("fwmark =", 9, None, None),
            ("autobound 1.2.3.4", 11, Some("1.2.3.4"), None),
            ("src ( 1.2.3.4 )", 5, Some("("), None),
            // Columns count the state words too.
            ("state established dst", 22, None, None),
            ("state established frob", 19, Some("frob"), Some(V::NotAPrefix("frob".into()))),
        ];
        for (text, column, token, value) in cases {
            let err = parse_with(&words(text), 0, &ctx()).expect_err(text);
            let want = match value {
                Some(kind) => FilterError::Value { column, token: token.unwrap_or_default().to_owned(), kind },
                None => err_syntax(&err, column, token),
            };
            assert_eq!(err, want, "{text:?}");
            let code = if matches!(want, FilterError::Value { .. }) { 1 } else { 255 };
            assert_eq!(err.exit_code(), code, "{text:?}");
        }
    }

    /// A syntax error with this column and token (the "expected" text is checked apart).
    fn err_syntax(got: &FilterError, column: usize, token: Option<&str>) -> FilterError {
        let expected = match got {
            FilterError::Syntax { expected, .. } => expected,
            _ => "(not a syntax error)",
        };
        FilterError::Syntax { column, token: token.map(str::to_owned), expected }
    }

    #[test]
    fn error_messages_say_where_and_what() {
        let e = parse_with(&words("dport = :80 )"), 0, &ctx()).expect_err("unbalanced");
        assert_eq!(
            e.ss_message("sockstat"),
            "sockstat: filter syntax error at column 13 near \")\": expected 'and', 'or', another condition, or the end of the filter\n"
        );
        let e = parse_with(&words("src 1.2.3.4 frob"), 0, &ctx()).expect_err("frob");
        assert_eq!(
            e.ss_message("sockstat"),
            "sockstat: filter error at column 13 near \"frob\": an inet prefix is expected rather than \"frob\"\n"
        );
        let e = parse_with(&words("sport ="), 0, &ctx()).expect_err("end");
        assert_eq!(
            e.ss_message("sockstat"),
            "sockstat: filter syntax error at column 8 at the end of the filter: expected a port, or one of = != < > <= >= followed by a port\n"
        );
        // Columns are characters, not bytes.
        let e = parse_with(&["src", "é", "frob"], 0, &ctx()).expect_err("é");
        assert!(matches!(e, FilterError::Value { column: 5, .. }), "{e:?}");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = vec!["("; MAX_DEPTH + 1];
        assert!(matches!(parse_with(&deep, 0, &ctx()), Err(FilterError::TooDeep { .. })));
        let nots: Vec<&str> = std::iter::repeat_n("not", 10_000).chain(["autobound"]).collect();
        assert!(matches!(parse_with(&nots, 0, &ctx()), Err(FilterError::TooDeep { .. })));
        // Alternating and/or chains deepen the tree.
        let mut alt = vec!["autobound"];
        for i in 0..1000 {
            alt.extend([if i % 2 == 0 { "or" } else { "and" }, "autobound"]);
        }
        assert!(matches!(parse_with(&alt, 0, &ctx()), Err(FilterError::TooDeep { .. })));
        // A long chain of one operator does not.
        let mut flat = vec!["autobound"];
        for _ in 0..10_000 {
            flat.extend(["or", "autobound"]);
        }
        assert!(parse_with(&flat, 0, &ctx()).is_ok());
        let ok: Vec<&str> = std::iter::repeat_n("not", MAX_DEPTH - 1).chain(["autobound"]).collect();
        assert!(parse_with(&ok, 0, &ctx()).is_ok());
    }

    // ---- evaluation ------------------------------------------------------------------

    fn sock(src: &str, sport: u16, dst: &str, dport: u16, state: TcpState) -> InetSocket {
        let src: IpAddr = src.parse().expect("literal");
        let dst: IpAddr = dst.parse().expect("literal");
        let family = if src.is_ipv4() { AF_INET } else { AF_INET6 };
        InetSocket { source: Source::Kernel, ..InetSocket::tcp(family, state as u8, (src, sport), (dst, dport), 0) }
    }

    /// The sockets of a namespace where real ss 6.1 was run (labels A..L), and what it
    /// printed for each filter: v4 listeners and both ends of v4 connections, a dual-stack
    /// v6 listener with a v4-mapped connection, a v6-only listener with a v6 connection.
    fn world() -> Vec<(char, InetSocket)> {
        let m = "::ffff:127.0.0.1";
        vec![
            ('A', sock("127.0.0.1", 80, "0.0.0.0", 0, Listen)),
            ('B', sock("0.0.0.0", 22, "0.0.0.0", 0, Listen)),
            ('C', sock("127.0.0.1", 22, "127.0.0.1", 36364, Established)),
            ('D', sock("127.0.0.1", 36364, "127.0.0.1", 22, Established)),
            ('E', sock("127.0.0.1", 45664, "127.0.0.1", 80, Established)),
            ('F', sock("127.0.0.1", 80, "127.0.0.1", 45664, Established)),
            ('G', sock("::", 8080, "::", 0, Listen)),
            ('H', sock("::1", 443, "::", 0, Listen)),
            ('I', sock(m, 57144, m, 8080, Established)),
            ('J', sock("::1", 443, "::1", 37390, Established)),
            ('K', sock(m, 8080, m, 57144, Established)),
            ('L', sock("::1", 37390, "::1", 443, Established)),
        ]
    }

    #[test]
    fn matching_agrees_with_recorded_ss_output() {
        let all = "ABCDEFGHIJKL";
        let cases: &[(&str, &str)] = &[
            ("sport = :80", "AF"),
            ("dport = :22", "D"),
            // A v4 rule matches v4-mapped addresses; a v4-mapped rule only those.
            ("src 127.0.0.1", "ACDEFIK"),
            ("src [::ffff:127.0.0.1]", "IK"),
            ("src [127.0.0.1]:22", "C"),
            ("src 127.0.0.1/8:22", "C"),
            ("src 127.0.0.1/255.0.0.0", "ACDEFIK"),
            ("src 127.0.0.1/0x8", "ACDEFIK"),
            // The kernel keeps a v6 rule off v4 sockets (user space alone would match
            // 0.0.0.0 with [::]), and a v4 rule off native v6 sockets.
            ("src [::]", "G"),
            ("src 0.0.0.0/8", "B"),
            ("src 0.0.0.0/0", "ABCDEFIK"),
            // ... and user space keeps `not` of a short v4 prefix off v6 sockets whose
            // first byte is 0: neither half accepts them.
            ("not src 0.0.0.0/8", "ACDEF"),
            ("src any", all),
            ("src default", all),
            ("src 127", ""),
            ("src 127.1", ""),
            // The kernel tests only the first address a name resolves to.
            ("dst localhost", "CDEFIK"),
            ("dst [::1]:443", "L"),
            // Equal precedence, left to right.
            ("sport = :80 or sport = :22 sport = :8080", ""),
            ("sport = :80 or sport = :22 and dport = :22", ""),
            ("sport = :80 and sport = :22 or dport = :22", "D"),
            ("sport = :80 && dport = :45664", "F"),
            ("sport = :80 || sport = :22", "ABCF"),
            ("sport = :80 ! sport = :22", "AF"),
            ("not not sport = :80", "AF"),
            ("! ( sport = :22 or sport = :80 )", "DEGHIJKL"),
            ("dport > :80 and dport < :40000", "CIJL"),
            ("sport <= 443", "ABCFHJ"),
            ("dport le 22", "ABDGH"),
            ("dport leq 22", "ABDGH"),
            ("sport ne 22", "ADEFGHIJKL"),
            ("sport geq 22", all),
            ("sport ge :ssh", all),
            ("sport = 0x50", "AF"),
            ("sport = :+80", "AF"),
            // Ports above 65535: the kernel compares with the low 16 bits (99999 & 0xffff
            // = 34463), user space with the whole int.
            ("sport <= 99999", "ABCFGHJK"),
            ("autobound", "DEIL"),
            ("not autobound", "ABGH"),
            ("dev = lo", ""),
            ("dev != 1", all),
            ("dev 0", all),
            ("dev 0 and sport = :80", "AF"),
            ("src inet6:[::1]", "HJL"),
        ];
        let world = world();
        for &(text, want) in cases {
            let f = parse_with(&words(text), 0, &ctx()).unwrap_or_else(|e| panic!("{text}: {e}"));
            let got: String = world
                .iter()
                .filter(|(_, s)| f.family_override.is_none_or(|af| af == s.family))
                .filter(|(_, s)| f.matches(s))
                .map(|(l, _)| *l)
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
        // The family override is part of the answer: without it, v4-mapped sockets would
        // match `inet:127.0.0.1`.
        let f = parse_with(&words("src inet:127.0.0.1"), 0, &ctx()).expect("valid");
        assert_eq!(f.family_override, Some(AF_INET));
        let v4: String = world.iter().filter(|(_, s)| s.family == AF_INET && f.matches(s)).map(|(l, _)| *l).collect();
        assert_eq!(v4, "ACDEF");
    }

    #[test]
    fn no_expression_matches_everything() {
        let f = parse_with(&["state", "listening"], 0, &ctx()).expect("valid");
        assert!(world().iter().all(|(_, s)| f.matches(s)));
    }

    #[test]
    fn unknown_fields_evaluate_false() {
        // The agent's table knows neither mark nor cgroup id.
        let s = InetSocket { source: Source::Table, ..sock("127.0.0.1", 80, "127.0.0.1", 1, Established) };
        // A kernel record without the attributes (a TIME-WAIT, a /proc raw socket) has
        // both 0, as in ss.
        let bare = sock("127.0.0.1", 80, "127.0.0.1", 1, TimeWait);
        for (text, want) in [("fwmark = 0", true), ("fwmark 1", false), ("cgroup /system.slice", false)] {
            assert_eq!(parse_with(&words(text), 0, &ctx()).expect("valid").matches(&bare), want, "{text}");
        }
        for (text, want) in [
            ("fwmark = 0", false),
            ("fwmark != 0", true),
            ("cgroup = /system.slice", false),
            ("not cgroup /system.slice", true),
        ] {
            assert_eq!(parse_with(&words(text), 0, &ctx()).expect("valid").matches(&s), want, "{text}");
        }
        // Once known, they are compared as ss does.
        let f = parse_with(&words("fwmark = 0x10/0xf0"), 0, &ctx()).expect("valid");
        let mut subj = Subject::from(&s);
        subj.mark = Some(0x1f);
        assert!(f.matches_subject(&subj));
        subj.mark = Some(0x2f);
        assert!(!f.matches_subject(&subj));
        let f = parse_with(&words("cgroup /system.slice"), 0, &ctx()).expect("valid");
        subj.cgroup_id = Some(42);
        assert!(f.matches_subject(&subj));
        // The kernel's half of autobound, when known, wins over the port range.
        let f = parse_with(&words("autobound"), 0, &ctx()).expect("valid");
        let mut client = Subject::from(&s);
        client.lport = 40000;
        assert!(f.matches_subject(&client));
        client.port_locked = None;
        assert!(f.matches_subject(&client));
        client.port_locked = Some(true);
        assert!(!f.matches_subject(&client));
    }

    #[test]
    fn dev_is_user_space_only() {
        let mut s = sock("::1", 22, "::1", 5, Established);
        s.ifindex = 2;
        let f = parse_with(&words("dev eth0"), 0, &ctx()).expect("valid");
        assert!(f.matches(&s));
        // Without a dev condition, the kernel half applies: a v6 rule on a v4 socket.
        let v4 = sock("0.0.0.0", 22, "0.0.0.0", 0, Listen);
        let kernel_and_user = parse_with(&words("src [::]"), 0, &ctx()).expect("valid");
        assert!(!kernel_and_user.matches(&v4));
        // With one, ss sends no bytecode and its user space matches 0.0.0.0 with [::].
        let user_only = parse_with(&words("src [::] and not dev 99"), 0, &ctx()).expect("valid");
        assert!(user_only.matches(&v4));
    }

    #[test]
    fn unix_paths_match_as_fnmatch() {
        let f = parse_with(&words("src unix:/tmp/.X11-unix/*"), 0, &ctx()).expect("valid");
        let x0 = Subject::unix(Some("/tmp/.X11-unix/X0"), None, 1, 0);
        let upper = Subject::unix(Some("/TMP/.x11-UNIX/X0"), None, 1, 0);
        let other = Subject::unix(Some("/run/dbus/system_bus_socket"), None, 1, 0);
        let unnamed = Subject::unix(None, None, 1, 0);
        assert!(f.matches_subject(&x0));
        assert!(f.matches_subject(&upper), "FNM_CASEFOLD");
        assert!(!f.matches_subject(&other));
        assert!(!f.matches_subject(&unnamed));
        // No FNM_PATHNAME: `*` crosses '/'.
        let f = parse_with(&words("dst unix:/run/*"), 0, &ctx()).expect("valid");
        assert!(f.matches_subject(&Subject::unix(None, Some("/run/dbus/system_bus_socket"), 1, 2)));
        // An empty pattern matches an unnamed socket.
        let f = parse_with(&words("src unix:"), 0, &ctx()).expect("valid");
        assert!(f.matches_subject(&unnamed) && !f.matches_subject(&x0));
        // autobound: unnamed, or abstract "@" + 5 hex digits.
        let f = parse_with(&words("autobound"), 0, &ctx()).expect("valid");
        assert!(f.matches_subject(&unnamed));
        assert!(f.matches_subject(&Subject::unix(Some("@0001f"), None, 1, 0)));
        assert!(!f.matches_subject(&Subject::unix(Some("@0001g"), None, 1, 0)));
        assert!(!f.matches_subject(&x0));
        // A unix condition never matches an inet socket.
        let f = parse_with(&words("src unix:*"), 0, &ctx()).expect("valid");
        assert!(!f.matches(&sock("127.0.0.1", 1, "127.0.0.1", 2, Established)));
    }

    // ---- netlink, packet and vsock sockets ----------------------------------------------

    fn nl(protocol: u8, portid: i32) -> NetlinkSocket {
        NetlinkSocket {
            protocol,
            state: 0,
            portid,
            dst_portid: 0,
            dst_group: 0,
            rqueue: 0,
            wqueue: 0,
            inode: 0,
            cookie: 0,
            groups: 0,
            skmem: None,
        }
    }

    fn pkt(protocol: u16, ifindex: u32) -> PacketSocket {
        PacketSocket {
            kind: 3,
            protocol,
            inode: 0,
            ifindex,
            rqueue: 0,
            uid: 0,
            cookie: 0,
            filter: None,
            info: None,
            rings: [None, None],
            fanout: None,
            skmem: None,
        }
    }

    /// The sockets of the namespace the expectations below were taken from (ss 6.1, `ss -a
    /// FILTER`): netlink rtnl of the kernel (a) and of pid 20380 (b), genl of pid 20380
    /// (c), tcpdiag of the kernel (d), an autobound rtnl (e); packet ETH_P_IP bound to lo
    /// (P), ETH_P_ALL unbound (Q), protocol 0 unbound (R).
    fn family_world() -> Vec<(char, Subject<'static>)> {
        vec![
            ('a', Subject::netlink(&nl(0, 0))),
            ('b', Subject::netlink(&nl(0, 20380))),
            ('c', Subject::netlink(&nl(16, 20380))),
            ('d', Subject::netlink(&nl(4, 0))),
            ('e', Subject::netlink(&nl(0, -4242))),
            ('P', Subject::packet(&pkt(0x0800, 1))),
            ('Q', Subject::packet(&pkt(3, 0))),
            ('R', Subject::packet(&pkt(0, 0))),
        ]
    }

    #[test]
    fn netlink_and_packet_sockets_match_as_ss_does() {
        let cases: &[(&str, &str)] = &[
            // lport is the port id (netlink) or the interface index (packet).
            ("sport = :0", "adQR"),
            ("sport = :20380", "bc"),
            ("sport > :100", "bc"),
            ("sport < :1", "adeQR"),
            ("sport = :1", "P"),
            // rport is -1 (netlink) or 0 (packet); -1 is also "any port".
            ("dport = :0", "PQR"),
            ("dport != :0", "abcde"),
            ("dport = :-1", "abcdePQR"),
            // Inet prefixes compare with the protocol's bytes (little-endian here).
            ("src 0.0.0.0", "abeR"),
            ("src 16.0.0.0", "c"),
            ("src 4.0.0.0/8", "d"),
            ("src 3.0.0.0", "Q"),
            ("src 0.8.0.0", "P"),
            ("src [::]", "abeR"),
            ("src 127.0.0.1", ""),
            ("not src 127.0.0.1", "abcdePQR"),
            ("dst 0.0.0.0", "abcdePQR"),
            ("src 0.0.0.0:0", "aR"),
            ("dev lo", "P"),
            ("dev 0", "abcdeQR"),
            ("fwmark 0", "abcdePQR"),
            ("not fwmark 1", "abcdePQR"),
            ("fwmark 1", ""),
            ("cgroup /system.slice", ""),
            ("autobound", "eR"),
            ("not autobound", "abcdPQ"),
            ("( sport = :53 or dst :0 )", "PQR"),
            // Family forms.
            ("src link:ip", "P"),
            ("src link:IP:lo", "P"),
            ("src link:*:lo", "P"),
            ("src link::1", "P"),
            ("src link:all", "Q"),
            ("src link:0", "R"),
            ("src link:0x0800", "P"),
            ("src link:", "PQR"),
            ("src link:*", "PQR"),
            ("dst link:ip", ""),
            ("sport = link:lo", "P"),
            ("src netlink:rtnl", "abe"),
            ("src netlink:rtnl:kernel", "a"),
            ("src netlink:*:kernel", "ad"),
            ("src netlink::0", "ad"),
            ("src netlink:16", "c"),
            ("src netlink:0x10", "c"),
            ("src netlink:genl:20380", "c"),
            // A unix pattern (before the last family form, which decides the families) reads
            // the protocol as a string pointer: NULL is "" (ss dies of SIGSEGV on any other
            // value; sockstat answers no match).
            ("src unix:* or src netlink:16", "abce"),
            ("src unix:x* or src link:5", ""),
            ("dst unix:* and src netlink:", "abcde"),
        ];
        let world = family_world();
        for &(text, want) in cases {
            let f = parse_with(&words(text), 0, &ctx()).unwrap_or_else(|e| panic!("{text}: {e}"));
            // A family form replaces the families shown (ss's parse_hostcond), as the
            // caller applies it.
            let got: String = world
                .iter()
                .filter(|(_, s)| f.family_override.is_none_or(|af| af == s.family) && f.matches_subject(s))
                .map(|(c, _)| *c)
                .collect();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn vsock_sockets_match_as_ss_does() {
        let vs = |src_cid, src_port, dst_cid, dst_port| VsockSocket {
            kind: 1,
            state: 10,
            src_cid,
            src_port,
            dst_cid,
            dst_port,
            inode: 1,
        };
        let listener = vs(3, 1234, u32::MAX, u32::MAX);
        let low = vs(2, 22, 3, 50_000);
        let vctx = ParseContext { preferred_family: AF_VSOCK, ..ctx() };
        for (text, want_listener, want_low) in [
            ("src vsock:3", true, false),
            ("src vsock:3:1234", true, false),
            ("src vsock::1234", true, false),
            ("src vsock::1235", false, false),
            ("src vsock:*:*", true, true),
            ("dst vsock:3", false, true),
            ("dport = vsock:50000", false, true),
            // VMADDR_PORT_ANY is -1 in ss's int, the "any" port.
            ("dst vsock::4294967295", true, true),
            ("autobound", true, false),
            ("sport > :1023", true, false),
            ("src 3.0.0.0", true, false),
            ("dst 255.255.255.255", true, false),
        ] {
            let f = parse_with(&words(text), 0, &ctx()).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(f.matches_subject(&Subject::vsock(&listener)), want_listener, "{text} on the listener");
            assert_eq!(f.matches_subject(&Subject::vsock(&low)), want_low, "{text} on the connection");
        }
        // Under --vsock every address is a vsock one.
        let f = parse_with(&words("src 2:22"), 0, &vctx).expect("valid");
        assert_eq!(f.family_override, Some(AF_VSOCK));
        assert!(f.matches_subject(&Subject::vsock(&low)) && !f.matches_subject(&Subject::vsock(&listener)));
    }

    #[test]
    fn family_host_conditions_parse_as_ss_does() {
        let other =
            |family, value, bitlen, port| HostCond { port, addr: HostAddr::Other(data_prefix(family, value, bitlen)) };
        let cases: &[(u16, &str, HostCond, u16)] = &[
            (AF_UNSPEC, "src link:ip:lo", other(AF_PACKET, 0x0800, 32, 1), AF_PACKET),
            (AF_UNSPEC, "src link:ipv6:if1", other(AF_PACKET, 0x86dd, 32, 1), AF_PACKET),
            (AF_UNSPEC, "src link:", other(AF_PACKET, 0, 0, -1), AF_PACKET),
            (AF_UNSPEC, "src link:*:*", other(AF_PACKET, 0, 0, -1), AF_PACKET),
            (AF_UNSPEC, "src netlink:tcpdiag:kernel", other(AF_NETLINK, 4, 32, 0), AF_NETLINK),
            (AF_UNSPEC, "src netlink:*:-5", other(AF_NETLINK, 0, 0, -5), AF_NETLINK),
            (AF_UNSPEC, "src vsock:3", other(AF_VSOCK, 3, 32, -1), AF_VSOCK),
            (AF_UNSPEC, "src vsock::80", other(AF_VSOCK, u32::MAX, 0, 80), AF_VSOCK),
            // A preferred family (-0, -f netlink) makes every address one of its own.
            (AF_PACKET, "src arp", other(AF_PACKET, 0x0806, 32, -1), AF_PACKET),
            (AF_PACKET, "src :lo", other(AF_PACKET, 0, 0, 1), AF_PACKET),
            (AF_PACKET, "sport = :eth0", other(AF_PACKET, 0, 0, 2), AF_PACKET),
            (AF_PACKET, "sport = 7", other(AF_PACKET, 0, 0, 7), AF_PACKET),
            (AF_NETLINK, "src genl", other(AF_NETLINK, 16, 32, -1), AF_NETLINK),
            (AF_NETLINK, "sport = :kernel", other(AF_NETLINK, 0, 0, 0), AF_NETLINK),
            (AF_NETLINK, "dport = :22", other(AF_NETLINK, 0, 0, 22), AF_NETLINK),
        ];
        for (preferred_family, text, want, fam) in cases {
            let c = ParseContext { preferred_family: *preferred_family, ..ctx() };
            let f = parse_with(&words(text), 0, &c).unwrap_or_else(|e| panic!("{text}: {e}"));
            let got = match f.expr {
                Some(Expr::Src(h) | Expr::Dst(h)) => h,
                other => panic!("{text}: {other:?}"),
            };
            assert_eq!(&got, want, "{text}");
            assert_eq!(f.family_override, Some(*fam), "{text}");
        }
        // What ss refuses ("Cannot parse dst/src address.", exit 1).
        use ValueError as V;
        for (text, kind) in [
            ("src link:bogus", V::LinkProtocol("bogus".into())),
            ("src link:0x10000", V::LinkProtocol("0x10000".into())),
            ("src link:-1", V::LinkProtocol("-1".into())),
            ("src link:ip:nodev", V::LinkPort("nodev".into())),
            ("src link::0x", V::LinkPort("0x".into())),
            ("src netlink:kernel", V::NetlinkProtocol("kernel".into())),
            ("src netlink:RTNL", V::NetlinkProtocol("RTNL".into())),
            ("src netlink:256", V::NetlinkProtocol("256".into())),
            ("src netlink:rtnl:x", V::NetlinkPort("x".into())),
            ("src vsock:x", V::VsockCid("x".into())),
            ("src vsock:-1", V::VsockCid("-1".into())),
            ("src vsock:1:", V::VsockPort(String::new())),
            ("src vsock:1:4294967296", V::VsockPort("4294967296".into())),
        ] {
            let e = parse_with(&words(text), 0, &ctx()).expect_err(text);
            assert_eq!(e, FilterError::Value { column: 5, token: text[4..].to_owned(), kind }, "{text}");
            assert_eq!(e.exit_code(), 1, "{text}");
        }
    }

    #[test]
    fn inet_prefixes_on_unix_sockets_compare_the_name_pointer() {
        // ss's unix sockets hold a pointer to their name in local.data (NULL when
        // unnamed) and nothing in remote.data (the netlink path never names the peer).
        let named = Subject::unix(Some("/run/x"), None, 7, 0);
        let unnamed = Subject::unix(None, None, 8, 0);
        let f = |t: &str| parse_with(&words(t), 0, &ctx()).expect("valid");
        assert!(f("dst 0.0.0.0").matches_subject(&named) && f("dst 0.0.0.0").matches_subject(&unnamed));
        assert!(!f("src 0.0.0.0").matches_subject(&named) && f("src 0.0.0.0").matches_subject(&unnamed));
        assert!(!f("dst 1.2.3.4").matches_subject(&unnamed));
        assert!(f("src *:7").matches_subject(&named) && !f("src 0.0.0.0:7").matches_subject(&unnamed));
    }

    #[test]
    fn c_number_rules() {
        assert_eq!(get_integer("0x50"), Some(80));
        assert_eq!(get_integer("010"), Some(8));
        assert_eq!(get_integer("-1"), Some(-1));
        assert_eq!(get_integer("08"), None);
        assert_eq!(get_integer("2147483648"), None);
        assert_eq!(get_integer("0x"), None);
        assert_eq!(get_integer(""), None);
        assert_eq!(get_unsigned("4294967295"), Some(u32::MAX));
        assert_eq!(get_unsigned("4294967296"), None);
        assert_eq!(get_unsigned("-1"), None);
        assert_eq!(get_unsigned("-0"), Some(0));
        assert_eq!(get_addr_ipv4("10"), Some([10, 0, 0, 0]));
        assert_eq!(get_addr_ipv4("0x7f.0.0.01"), Some([127, 0, 0, 1]));
        assert_eq!(get_addr_ipv4("1.2.3."), None);
        assert_eq!(get_addr_ipv4("-1"), None);
        assert_eq!(get_netmask("255.255.0.0"), Some(16));
        assert_eq!(get_netmask("0.255.0.0"), None);
        assert_eq!(get_netmask("any"), Some(0));
        // %i stores strtol's long in an int: the low 32 bits, or -1 after saturation.
        assert_eq!(parse_markmask("99999999999"), Ok((1_215_752_191, u32::MAX)));
        assert_eq!(parse_markmask("99999999999999999999/1"), Ok((u32::MAX, 1)));
        assert_eq!(
            services_lookup("ssh 22/tcp # comment\nhttp 80/tcp www # WWW\nhttp 80/udp\n", "www", "tcp"),
            Some(80)
        );
        assert_eq!(services_lookup("ssh 22/tcp\n", "ssh", "udp"), None);
    }
}
