//! Where a query's sockets come from. TCP: the agent's live table when one runs (or when
//! forced with `--source agent`), else a sock_diag dump made here, as ss does. UDP, UNIX,
//! packet, netlink, MPTCP, DCCP, SCTP and vsock: always a sock_diag dump at query time
//! (the agent tracks TCP state transitions only; these sockets change without one), made
//! by the agent in the namespace asked about when one answers, else here ([`DumpSpec`]),
//! so they are as fresh as ss's. Raw sockets come from /proc/net/raw and raw6, ss's
//! fallback, because this kernel has no RAW_DIAG. `-p` owners: the agent's owners
//! iterator when it answers, else a /proc walk (`procs`).
//!
//! A table whose diag module the kernel lacks (ENOENT/EOPNOTSUPP: DCCP, SCTP, vsock, TIPC
//! here; MPTCP on a kernel without it) is shown empty, as ss shows it. TIPC and XDP replies are not decoded: if such a
//! dump returns sockets, the query fails rather than print a table without them.

use std::path::Path;

use sockstat_ebpf::IPPROTO_TCP;

use crate::model::abi::{AF_INET, AF_TIPC, IPPROTO_DCCP, IPPROTO_SCTP, IPPROTO_UDP};
use crate::{
    diag::{DiagError, SockDiag},
    model::owner::OwnerRecords,
    model::socket::{InetRows, InetSocket, PROTO_MPTCP_TABLE, Snapshot},
    query,
    query::plan::Plan,
    query::selection::{Selection, SourceChoice, Table},
    query::storages::StorageMaps,
    sys::netns::{own_netns, own_pidns},
    sys::procnet,
    wire::client::{Client, ClientError, RowsFrame},
    wire::protocol::DumpSpec,
};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Agent(#[from] ClientError),
    #[error("sock_diag dump")]
    Diag(#[from] DiagError),
    #[error("reading {path}")]
    Proc {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {path}")]
    ProcParse {
        path: String,
        #[source]
        source: procnet::ProcNetError,
    },
    #[error(
        "not supported yet: {table} sockets exist ({count} in the dump) and sockstat cannot \
         decode them; ss would list them"
    )]
    Undecoded { table: &'static str, count: usize },
    #[error("reading $TCPDIAG_FILE ({path})")]
    DiagFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("$TCPDIAG_FILE ({path}) is not a sock_diag TCP reply stream")]
    DiagFileParse {
        path: String,
        #[source]
        source: DiagError,
    },
    #[error(
        "-K closes sockets with SOCK_DESTROY, which needs CAP_NET_ADMIN: run as root or \
         grant it (`setcap cap_net_admin+ep` the binary)"
    )]
    KillNeedsCapability,
    #[error(
        "a fwmark condition needs each socket's mark, which the kernel reports to \
         CAP_NET_ADMIN only: run as root or grant it (`setcap cap_net_admin+ep` the binary)"
    )]
    MarkNeedsCapability,
    #[error(
        "--bpf-maps and --bpf-map-id read BPF socket-local storage, which the kernel's sock_diag \
         shows only to CAP_BPF or CAP_SYS_ADMIN: run as root or grant one (`setcap cap_bpf+ep` \
         the binary)"
    )]
    StoragesNeedCapability,
    #[error("SOCK_DESTROY answers")]
    Kill(#[source] DiagError),
}

/// A sock_diag socket asking for what `sel` prints (`-e`, `-m`, `-i`, `--bpf-maps`).
fn open_diag(plan: &Plan) -> Result<SockDiag, DiagError> {
    // --cgroup needs the decoded attributes (INET_DIAG_CGROUP_ID) as -e does; what else
    // -e asks for (UNIX VFS and ICONS) is only printed with -e.
    // --tos and --inet-sockopt need the decoded attributes too, not -e's UNIX extras.
    // A fwmark/cgroup condition is evaluated on the decoded INET_DIAG_MARK and
    // INET_DIAG_CGROUP_ID, so it needs the decoding too (and nothing that -e prints).
    Ok(open_for(&plan.spec)?.with_storages(plan.storages.clone()))
}

/// `-D FILE`: the raw reply datagrams of the TCP dump `sel` selects (AF_INET, then
/// AF_INET6, as ss's `inet_show_netlink` asks), back to back, `NLMSG_DONE`s included:
/// exactly what `ss -D` writes. No FILTER expression is applied (ss parses it after the
/// dump), the `-m`/`-i` attributes and the socket-local storages of `storages` are asked
/// for as ss asks.
///
/// # Errors
/// The dump's.
pub fn record_tcp(sel: &Selection, storages: Option<&StorageMaps>) -> Result<Vec<u8>, FetchError> {
    let mut plan = Plan::new(sel);
    plan.storages = storages.map(StorageMaps::request);
    let mut diag = open_diag(&plan)?;
    diag.record();
    diag.dump_tcp(&plan.families, plan.states)?;
    Ok(diag.take_recording())
}

/// TCP from a recorded reply stream (`TCPDIAG_FILE`), decoded with every attribute it
/// holds. By default as ss reads it: up to the first `NLMSG_DONE` (so a `-D` of `-t`
/// shows only its IPv4 half); with `all_dumps` (`--tcpdiag-all`), every dump in the file.
fn tcp_from_file(path: &std::ffi::OsStr, all_dumps: bool) -> Result<Vec<InetSocket>, FetchError> {
    let shown = path.to_string_lossy().into_owned();
    let buf = std::fs::read(path).map_err(|source| FetchError::DiagFile { path: shown.clone(), source })?;
    let dump = if all_dumps {
        crate::diag::parse_inet_replies_with(&buf, IPPROTO_TCP, true)
    } else {
        crate::diag::parse_first_inet_dump(&buf, IPPROTO_TCP, true)
    };
    Ok(dump.map_err(|source| FetchError::DiagFileParse { path: shown, source })?.sockets)
}

/// Whether this process has CAP_NET_ADMIN in its effective set, which SOCK_DESTROY
/// requires.
fn has_net_admin() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    has_capability(CAP_NET_ADMIN)
}

/// Whether this process has capability `bit` in its effective set (/proc/self/status
/// `CapEff`).
fn has_capability(bit: u32) -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .is_some_and(|caps| caps & (1 << bit) != 0)
    })
}

/// `-K`: closes each socket, keeping those that were closed. A socket the kernel cannot
/// close this way or that is already gone is dropped silently, as ss drops it.
fn kill(diag: &mut SockDiag, sockets: Vec<InetSocket>) -> Result<Vec<InetSocket>, FetchError> {
    let mut killed = Vec::with_capacity(sockets.len());
    for s in sockets {
        match diag.destroy_inet(&s) {
            Ok(()) => killed.push(s),
            Err(DiagError::NotSupported { .. }) => {}
            Err(e) => return Err(FetchError::Kill(e)),
        }
    }
    Ok(killed)
}

/// TCP sockets of `families` (in that order) whose state is in `states`.
///
/// # Errors
/// The agent's error (unless `source` is auto and no agent runs), or the dump's.
/// `filter`: the query's FILTER, which the agent applies before sending (the caller
/// still applies it to what comes back, from either source).
pub fn tcp(
    source: SourceChoice,
    agent_socket: &Path,
    families: &[u16],
    states: u32,
    filter: Option<&crate::filter::Filter>,
) -> Result<Vec<InetSocket>, FetchError> {
    if source != SourceChoice::Kernel {
        match Client::connect(agent_socket).and_then(|c| {
            // The namespace asked about is this process's: `-N NAME` entered it already.
            let netns = own_netns().map_err(ClientError::Netns)?;
            c.tcp_filtered(netns, families, states, filter)
        }) {
            Ok(mut s) => {
                // Bound but inactive sockets never change state, so no event tells the
                // agent of them: the kernel lists them (for this bit alone, a walk of its
                // bind table only), after the agent's rows.
                if states & crate::filter::SS_BOUND_INACTIVE != 0 {
                    s.extend(SockDiag::open()?.dump_tcp(families, crate::filter::SS_BOUND_INACTIVE)?);
                }
                return Ok(s);
            }
            Err(e) if source == SourceChoice::Auto && e.is_unavailable() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(SockDiag::open()?.dump_tcp(families, states)?)
}

/// Every table `sel` selects, each selected as ss would (family, state and type), in
/// kernel order. TCP goes through [`tcp`] (agent or kernel); the rest share one
/// sock_diag socket (the agent's, or one opened here after TCP is fetched), so a netlink
/// dump shows exactly one querying socket, as ss's shows its own. With `-p`, also the
/// agent's owner records (`None`: walk /proc).
///
/// `storages`: the socket-local storage maps of `--bpf-maps`/`--bpf-map-id`, whose values
/// every inet dump then asks for; those dumps are made here, never by the agent (the
/// request names maps by this process's fds).
///
/// # Errors
/// The first fetch that fails; a table the kernel has no diag module for is empty.
pub fn snapshot(
    sel: &Selection,
    storages: Option<&StorageMaps>,
) -> Result<(Snapshot, Option<OwnerRecords>), FetchError> {
    let mut snap = Snapshot::default();
    let mut plan = Plan::new(sel);
    plan.storages = storages.map(StorageMaps::request);
    let (states, tcp_source) = (plan.states, plan.tcp_source);
    // A recorded TCP dump (`TCPDIAG_FILE`, as ss reads it) stands in for the kernel's.
    let recorded = std::env::var_os("TCPDIAG_FILE");
    if sel.kill && !has_net_admin() {
        return Err(FetchError::KillNeedsCapability);
    }
    // bpf_sk_storage_diag_alloc() refuses the request without bpf_capable(); ss then falls
    // back to /proc/net/tcp and prints no values.
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_BPF: u32 = 39;
    if plan.storages.is_some() && !has_capability(CAP_BPF) && !has_capability(CAP_SYS_ADMIN) {
        return Err(FetchError::StoragesNeedCapability);
    }
    // The kernel sends INET_DIAG_MARK to CAP_NET_ADMIN only (and refuses ss's mark
    // bytecode without it): without it every mark of an inet dump would read as 0. UNIX
    // sockets and a recorded TCP dump need no capability (their marks are 0 as in ss).
    let inet_dump = (plan.tcp && recorded.is_none())
        || [Table::Udp, Table::Dccp, Table::Sctp, Table::Mptcp].into_iter().any(|t| query::inet_table(sel, t));
    if inet_dump && sel.filter.expr.as_ref().is_some_and(crate::filter::Expr::has_mark) && !has_net_admin() {
        return Err(FetchError::MarkNeedsCapability);
    }
    // -p with an agent: every socket descriptor of every process from its owners
    // iterator (one pass in the kernel, where ss walks /proc), read after the TCP answer
    // so that every table row's cookie exists by then.
    let want_agent_owners =
        sel.needs.owners && !sel.needs.threads && sel.source != SourceChoice::Kernel && recorded.is_none();
    let mut agent_owners = None;
    if plan.tcp {
        let families = &plan.families;
        snap.tcp = match &recorded {
            // ss's tcp_show_netlink_file() runs the FILTER expression alone: the recording
            // was selected (states, family) when it was made.
            Some(path) if !sel.recorded_all_dumps => {
                tcp_from_file(path, false)?.into_iter().filter(|s| sel.filter.matches(s)).collect()
            }
            Some(path) => query::select_planned(sel, &plan, tcp_from_file(path, true)?),
            None if tcp_source == SourceChoice::Kernel => {
                query::select_planned(sel, &plan, kernel_tcp(sel, &plan, families, states)?)
            }
            None => query::select_planned(
                sel,
                &plan,
                tcp(tcp_source, &sel.agent_socket, families, states, Some(&sel.filter))?,
            ),
        };
        let from_table = snap.tcp.iter().any(|s| s.source == crate::model::socket::Source::Table);
        if want_agent_owners {
            match Client::connect(&sel.agent_socket).and_then(|c| c.owners(own_pidns().map_err(ClientError::Netns)?)) {
                Ok(owners) => {
                    fill_inodes(&mut snap.tcp, &owners);
                    agent_owners = Some(owners);
                }
                // The /proc walk matches by inode, which the table lacks for sockets
                // opened after its seed: then TCP comes from the kernel too.
                Err(e) if sel.source == SourceChoice::Auto || !from_table => {
                    tracing::debug!(error = %e, "no owners from the agent; -p walks /proc");
                    if from_table {
                        snap.tcp = query::select_planned(sel, &plan, open_diag(&plan)?.dump_tcp(families, states)?);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        // A recorded dump is not this machine's sockets: never kill from it.
        if sel.kill && recorded.is_none() {
            snap.tcp = kill(&mut SockDiag::open()?, std::mem::take(&mut snap.tcp))?;
        }
    }

    // UDP, UNIX, packet, netlink, DCCP, SCTP, vsock: dumped at query time, by the agent
    // in the namespace asked about when one answers, else here. -K kills through a
    // dump of its own, never through the agent.
    let spec = &plan.spec;
    let local = sel.source == SourceChoice::Kernel || sel.kill || recorded.is_some() || plan.storages.is_some();
    let dumped = match (spec.is_empty(), local) {
        (true, _) => Snapshot::default(),
        (false, true) => dump_tables(&mut open_diag(&plan)?, spec)?,
        (false, false) => match Client::connect(&sel.agent_socket)
            .and_then(|c| c.dump(own_netns().map_err(ClientError::Netns)?, spec))
        {
            Ok(s) => s,
            Err(e) if sel.source == SourceChoice::Auto && e.is_unavailable() => {
                dump_tables(&mut open_diag(&plan)?, spec)?
            }
            Err(e) => return Err(e.into()),
        },
    };
    snap.netlink = query::select_netlink(sel, dumped.netlink);
    snap.packet = query::select_packet(sel, dumped.packet);
    snap.unix = query::select_unix(sel, dumped.unix);
    if plan.raw {
        snap.raw = query::select_raw(sel, raw(sel)?);
    }
    for (protocol, got) in [(IPPROTO_UDP, dumped.udp), (IPPROTO_DCCP, dumped.dccp), (IPPROTO_SCTP, dumped.sctp)] {
        let mut got = query::select_inet(sel, &plan, protocol, got);
        if sel.kill {
            got = kill(&mut SockDiag::open()?, got)?;
        }
        match protocol {
            IPPROTO_UDP => snap.udp = got,
            IPPROTO_DCCP => snap.dccp = got,
            _ => snap.sctp = got,
        }
    }
    snap.vsock = query::select_vsock(sel, dumped.vsock);
    if want_agent_owners && !plan.tcp {
        // No table rows to complete: the iterator if the agent has one, else /proc.
        agent_owners =
            Client::connect(&sel.agent_socket).and_then(|c| c.owners(own_pidns().map_err(ClientError::Netns)?)).ok();
    }
    if sel.has_table(Table::Tipc) && sel.has_family(AF_TIPC) {
        // struct tipc_sock_diag_req: family, protocol, pad, tidiag_states.
        let mut body = vec![30, 0, 0, 0];
        body.extend_from_slice(&sel.states.to_ne_bytes());
        undecoded(&mut open_diag(&plan)?, AF_TIPC, &body, "tipc")?;
    }
    snap.xdp = query::select_xdp(sel, dumped.xdp);
    if plan.mptcp {
        let mut got = query::select_inet(sel, &plan, PROTO_MPTCP_TABLE, dumped.mptcp);
        if sel.kill {
            got = kill(&mut SockDiag::open()?, got)?;
        }
        snap.mptcp = got;
    }
    Ok((snap, agent_owners))
}

/// TCP rows of the agent's table as it sent them, each made a socket when it is read
/// ([`InetRows`]): the rows the query selects (checked again here, as [`snapshot`]
/// selects), and with `-p` the owner records. [`table_tcp`] makes it.
pub struct TableTcp {
    frame: RowsFrame,
    /// The rows kept, by number in the frame.
    kept: Vec<u32>,
    /// Inodes of rows opened after the agent's seed, from the owner records, by number in
    /// the frame (0: the row's own; empty when no row lacks one). An array, not a map: with
    /// `-p` at 100k rows, every row of a busy server may lack its inode, and two hash
    /// lookups per printed row were a sixth of the query's time.
    inodes: Vec<u32>,
    /// Rows after the agent's: bound but inactive sockets, which the kernel lists (no
    /// event tells the agent of them), selected.
    extra: Vec<InetSocket>,
    pub owners: Option<OwnerRecords>,
}

impl InetRows for TableTcp {
    fn len(&self) -> usize {
        self.kept.len() + self.extra.len()
    }

    fn socket(&self, i: usize) -> InetSocket {
        let Some(&n) = self.kept.get(i) else {
            return self.extra[i - self.kept.len()].clone();
        };
        let mut s = self.frame.row(n as usize).socket();
        if let Some(&inode) = self.inodes.get(n as usize)
            && inode != 0
        {
            s.inode = inode;
        }
        s
    }
}

/// A query of the TCP table alone answered from the agent's table, its rows kept as they
/// came: what [`snapshot`] would fetch for `sel`, without a list of decoded sockets (at
/// 100k rows, fresh memory the kernel zeroes page by page was much of a query's time).
/// `None`: the query is not of that kind, or (`--source auto`) the agent cannot answer
/// it; [`snapshot`] then fetches it.
///
/// # Errors
/// What [`snapshot`] returns for the same failures of the agent.
pub fn table_tcp(sel: &Selection) -> Result<Option<TableTcp>, FetchError> {
    let plan = Plan::new(sel);
    let tcp_alone = plan.tcp
        && !plan.raw
        && !plan.mptcp
        && plan.spec.is_empty()
        && !(sel.has_table(Table::Tipc) && sel.has_family(AF_TIPC));
    if !tcp_alone
        || plan.tcp_source == SourceChoice::Kernel
        || sel.kill
        || sel.needs.threads
        || std::env::var_os("TCPDIAG_FILE").is_some()
    {
        return Ok(None);
    }
    // With -p the owner records are asked for on a second connection at the same time:
    // the agent makes both answers at once.
    let (frame, owners) = std::thread::scope(|scope| {
        let owners = sel.needs.owners.then(|| {
            scope.spawn(|| {
                Client::connect(&sel.agent_socket).and_then(|c| c.owners(own_pidns().map_err(ClientError::Netns)?))
            })
        });
        let frame = Client::connect(&sel.agent_socket).and_then(|c| {
            let netns = own_netns().map_err(ClientError::Netns)?;
            c.tcp_rows(netns, &plan.families, plan.states, Some(&sel.filter))
        });
        let owners = owners.map(|t| t.join().unwrap_or_else(|_| Err(ClientError::Unexpected("owners"))));
        (frame, owners)
    });
    let frame = match frame {
        Ok(frame) => frame,
        Err(e) if plan.tcp_source == SourceChoice::Auto && e.is_unavailable() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // As select_planned() keeps them.
    let kept: Vec<u32> = (0..frame.len())
        .filter(|&i| {
            let r = frame.row(i);
            query::inet_selected(sel, &plan, IPPROTO_TCP, (r.protocol(), r.family(), r.state()), || {
                sel.filter.matches(&r.socket())
            })
        })
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    // Bound but inactive sockets never change state, so no event tells the agent of them:
    // the kernel lists them (for this bit alone, a walk of its bind table only), after
    // the agent's rows, as `tcp` adds them.
    let extra = if plan.states & crate::filter::SS_BOUND_INACTIVE != 0 {
        let dumped = SockDiag::open()?.dump_tcp(&plan.families, crate::filter::SS_BOUND_INACTIVE)?;
        query::select_planned(sel, &plan, dumped)
    } else {
        Vec::new()
    };
    let mut table = TableTcp { frame, kept, inodes: Vec::new(), extra, owners: None };
    if let Some(owners) = owners {
        match owners {
            Ok(owners) => {
                table.fill_inodes(&owners);
                table.owners = Some(owners);
            }
            // The usual way decides: a /proc walk (with TCP from the kernel: rows opened
            // after the seed lack their inode) or the error.
            Err(e) => {
                tracing::debug!(error = %e, "no owners from the agent");
                return Ok(None);
            }
        }
    }
    Ok(Some(table))
}

impl TableTcp {
    /// [`fill_inodes`] for the rows kept.
    fn fill_inodes(&mut self, owners: &OwnerRecords) {
        let lacking: Vec<(u32, u64)> = self
            .kept
            .iter()
            .map(|&n| (n, self.frame.row(n as usize)))
            .filter(|(_, r)| lacks_inode(r.source(), r.inode(), r.cookie()))
            .map(|(n, r)| (n, r.cookie()))
            .collect();
        if lacking.is_empty() {
            return;
        }
        let by_cookie = inodes_by_cookie(owners);
        self.inodes = vec![0; self.frame.len()];
        for (n, cookie) in lacking {
            if let Some(&inode) = by_cookie.get(&cookie) {
                self.inodes[n as usize] = u32::try_from(inode).unwrap_or(0);
            }
        }
    }
}

/// Dumps made at once by [`kernel_tcp`], at most.
const DUMP_THREADS: usize = 4;

/// TCP sockets in the namespace from which [`kernel_tcp`] splits its dump: below, one
/// thread's dump takes a few milliseconds, and it keeps the kernel's order.
const SPLIT_FROM: u64 = 10_000;

/// The kernel's TCP rows for a query that asks for them: `--source kernel`, `-K`, or
/// details the agent cannot give fresh (`-i -e -m ...`) under `--source auto`.
///
/// Under `--source auto`, with [`SPLIT_FROM`] TCP sockets or more, the dump is split by
/// client-side port into one share per core (up to [`DUMP_THREADS`]), each dumped by a
/// thread of its own ([`crate::diag::bytecode`]): the kernel fills `tcp_info` and the other
/// attributes of each socket in the thread that asks, a microsecond a socket. Each thread
/// asks for both families at once (one walk of the kernel's tables). Each family's
/// rows then come as ss's do, listeners first, but the rest share by share (each share
/// in kernel order) rather than in one hash order. `--source kernel` always keeps one
/// dump in the kernel's order, as ss prints it; `-K` and socket-local storages (whose
/// values ss prints according to where they land in a datagram) keep it too.
fn kernel_tcp(sel: &Selection, plan: &Plan, families: &[u16], states: u32) -> Result<Vec<InetSocket>, FetchError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(DUMP_THREADS);
    let split = sel.source == SourceChoice::Auto
        && !sel.kill
        && plan.storages.is_none()
        && threads > 1
        && procnet::tcp_socket_count().is_ok_and(|n| n >= SPLIT_FROM);
    let Some((lo, hi)) = split.then(crate::names::lookup::ephemeral_ports).flatten() else {
        return Ok(open_diag(plan)?.dump_tcp(families, states)?);
    };
    let shares = crate::diag::bytecode::shares(lo..=hi, threads);
    // Per share, per family; each share on a thread of its own (inheriting this thread's
    // namespace, `-N` included).
    let dumps = crate::threads::each_on_a_thread(shares, |share| -> Result<Vec<Vec<InetSocket>>, FetchError> {
        let mut diag = open_diag(plan)?.with_bytecode(crate::diag::bytecode::client_port_share(lo..=hi, share));
        if families.len() == 1 {
            return Ok(vec![diag.dump_inet(IPPROTO_TCP, families[0], states)?]);
        }
        // Both families in one walk of the kernel's tables (each thread walks all of
        // them, keeping its share), then apart, each in the kernel's order.
        let both = diag.dump_tcp_any_family(states)?;
        let mut by_family: Vec<Vec<InetSocket>> = families.iter().map(|_| Vec::new()).collect();
        for s in both {
            if let Some(i) = families.iter().position(|&f| f == s.family) {
                by_family[i].push(s);
            }
        }
        Ok(by_family)
    });
    let mut dumps = dumps.into_iter().collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::with_capacity(dumps.iter().flatten().map(Vec::len).sum());
    for family in 0..families.len() {
        let listening = |s: &InetSocket| s.state == sockstat_ebpf::TcpState::Listen as u8;
        // The kernel dumps a family's listeners before its other sockets.
        for share in &dumps {
            rows.extend(share.get(family).into_iter().flatten().take_while(|s| listening(s)).cloned());
        }
        for share in &mut dumps {
            if let Some(got) = share.get_mut(family) {
                let listeners = got.iter().take_while(|s| listening(s)).count();
                rows.extend(got.drain(listeners..));
            }
        }
    }
    Ok(rows)
}

/// A sock_diag socket asking for what `spec`'s query prints.
///
/// # Errors
/// Opening the socket.
pub fn open_for(spec: &DumpSpec) -> Result<SockDiag, DiagError> {
    Ok(SockDiag::open()?.with_details(spec.details, spec.mem, spec.info).with_inet_attrs(spec.tos, spec.attrs))
}

/// Runs the dumps `spec` asks for on `diag`, unselected. A table whose diag module the
/// kernel lacks (DCCP, SCTP, vsock here) is empty, as in ss.
///
/// # Errors
/// The first dump that fails otherwise.
pub fn dump_tables(diag: &mut SockDiag, spec: &DumpSpec) -> Result<Snapshot, DiagError> {
    let mut snap = Snapshot::default();
    if spec.netlink {
        snap.netlink = diag.dump_netlink()?;
    }
    if spec.packet {
        snap.packet = diag.dump_packet()?;
    }
    if let Some(states) = spec.unix {
        snap.unix = diag.dump_unix(states)?;
    }
    for (protocol, families, states) in &spec.inet {
        let mut got = Vec::new();
        for &family in families {
            got.extend(absent_is_empty(diag.dump_inet(*protocol, family, *states))?);
        }
        match *protocol {
            IPPROTO_UDP => snap.udp = got,
            IPPROTO_DCCP => snap.dccp = got,
            _ => snap.sctp = got,
        }
    }
    if let Some(states) = spec.vsock {
        snap.vsock = absent_is_empty(diag.dump_vsock(states))?;
    }
    if spec.xdp {
        snap.xdp = absent_is_empty(diag.dump_xdp())?;
    }
    if let Some((families, states)) = &spec.mptcp {
        for &family in families {
            snap.mptcp.extend(absent_is_empty(diag.dump_mptcp(family, *states))?);
        }
    }
    Ok(snap)
}

/// The inode of each agent-table row opened after the agent's seed (0 there: events do
/// not carry it), from the owners iterator's record of the same socket (by cookie). A
/// socket no process holds (not yet accepted, orphaned) keeps 0, as sock_diag gives 0
/// for it too.
fn fill_inodes(tcp: &mut [InetSocket], owners: &OwnerRecords) {
    if !tcp.iter().any(|s| lacks_inode(s.source, s.inode, s.cookie)) {
        return;
    }
    let by_cookie = inodes_by_cookie(owners);
    for s in tcp.iter_mut().filter(|s| lacks_inode(s.source, s.inode, s.cookie)) {
        if let Some(&inode) = by_cookie.get(&s.cookie) {
            s.inode = u32::try_from(inode).unwrap_or(0);
        }
    }
}

/// Whether an agent-table row lacks the inode its owner records can give (by cookie).
fn lacks_inode(source: crate::model::socket::Source, inode: u32, cookie: u64) -> bool {
    source == crate::model::socket::Source::Table && inode == 0 && cookie != 0
}

/// Each socket's inode by its cookie, from the owner records.
fn inodes_by_cookie(owners: &OwnerRecords) -> rustc_hash::FxHashMap<u64, u64> {
    let mut by_cookie = rustc_hash::FxHashMap::with_capacity_and_hasher(owners.len(), Default::default());
    by_cookie.extend(owners.iter().filter(|o| o.cookie() != 0).map(|o| (o.cookie(), o.inode())));
    by_cookie
}

/// ENOENT/EOPNOTSUPP: no diag module for this family or protocol. ss shows such a table
/// empty (libnetlink keeps quiet about exactly these two errnos on NETLINK_SOCK_DIAG).
fn absent_is_empty<T>(r: Result<Vec<T>, DiagError>) -> Result<Vec<T>, DiagError> {
    match r {
        Err(DiagError::NotSupported { .. }) => Ok(Vec::new()),
        other => other,
    }
}

fn undecoded(diag: &mut SockDiag, family: u16, body: &[u8], table: &'static str) -> Result<(), FetchError> {
    match absent_is_empty(diag.count_replies(family, body).map(|n| vec![(); n]))?.len() {
        0 => Ok(()),
        count => Err(FetchError::Undecoded { table, count }),
    }
}

/// Raw sockets from /proc/net/raw and raw6 (ss's fallback when its RAW_DIAG request
/// fails, as it does on this kernel), state-filtered as ss's `dgram_show_line` does.
fn raw(sel: &Selection) -> Result<Vec<InetSocket>, FetchError> {
    let mut out = Vec::new();
    for family in query::proc_families(sel) {
        let path = if family == AF_INET { "/proc/net/raw" } else { "/proc/net/raw6" };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            // ss skips a missing raw6 (no IPv6) silently; a missing raw is its error too.
            Err(e) if family != AF_INET && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(FetchError::Proc { path: path.to_owned(), source }),
        };
        out.extend(
            procnet::parse_raw(&text, family, sel.states)
                .map_err(|source| FetchError::ProcParse { path: path.to_owned(), source })?,
        );
    }
    Ok(out)
}

/// The socket tables this kernel has no sock_diag module for, with what that means, for
/// the note `-s` prints. Probed with empty-state dumps (the kernel looks the handler up
/// before it looks at the states).
#[must_use]
pub fn missing_diag() -> Vec<(&'static str, &'static str)> {
    let Ok(mut diag) = SockDiag::open() else { return Vec::new() };
    let mut missing = Vec::new();
    let absent = |r: Result<usize, DiagError>| matches!(r, Err(DiagError::NotSupported { .. }));
    let probes: [(&str, &str, u8); 3] = [
        ("raw (RAW_DIAG)", "raw sockets are read from /proc/net/raw and raw6, as ss does", 255),
        ("dccp", "the dccp table is always empty, as in ss", IPPROTO_DCCP),
        ("sctp", "the sctp table is always empty, as in ss", IPPROTO_SCTP),
    ];
    for (table, what, protocol) in probes {
        if absent(diag.dump_inet(protocol, AF_INET, 0).map(|v| v.len())) {
            missing.push((table, what));
        }
    }
    if absent(diag.dump_mptcp(AF_INET, 0).map(|v| v.len())) {
        missing.push(("mptcp", "the mptcp table is always empty, as in ss"));
    }
    if absent(diag.dump_vsock(0).map(|v| v.len())) {
        missing.push(("vsock (VSOCK_DIAG)", "vsock sockets cannot be listed; ss prints none either"));
    }
    if absent(diag.dump_xdp().map(|v| v.len())) {
        missing.push(("xdp (XDP_DIAG)", "xdp sockets cannot be listed; ss prints none either"));
    }
    missing
}
