//! What to fetch and what to keep: turns resolved [`Options`] into the requests the fetch
//! layer (sock_diag dumps, /proc/net/raw, or the agent) makes, and selects from the records
//! it returns what ss would print. No I/O here.

pub mod fetch;
pub mod plan;
pub mod selection;
pub mod storages;

use crate::diag::DestroyGroups;
use crate::filter::{Subject, bit};
use crate::model::abi::{SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM};
use crate::model::socket::{InetSocket, NetlinkSocket, PacketSocket, UnixSocket, VsockSocket, XdpSocket};
use crate::query::plan::Plan;
use crate::query::selection::{Selection, SourceChoice, Table};
use sockstat_ebpf::{AF_INET, AF_INET6, IPPROTO_TCP, TcpState};

/// A request that sockstat cannot answer the way ss would, yet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// An option that changes ss's output and that sockstat does not implement.
    #[error("not supported yet: {option}")]
    UnsupportedOption { option: String },
    /// Timers (`-o`, and `-b`, which implies it) asked of the agent: its table keeps
    /// `idiag_expires` as of the last transition, which ss would print counting down.
    #[error(
        "{option} prints TCP timers, which only a kernel dump has fresh: drop --source agent \
         (auto uses the kernel for this query)"
    )]
    TimersFromAgent { option: &'static str },
    /// `-e`, `-m`, `-i`, `-T` asked of the agent: its table has no cgroup, memory or
    /// tcp_info, and no inode for sockets opened after its seed.
    #[error(
        "{option} prints socket details that only a kernel dump has: drop --source agent \
         (auto uses the kernel for this query)"
    )]
    DetailsFromAgent { option: &'static str },
    /// A `fwmark`/`cgroup` condition asked of the agent: its table has neither value.
    #[error(
        "a fwmark or cgroup condition needs each socket's mark and cgroup id, which only a \
         kernel dump has: drop --source agent (auto uses the kernel for this query)"
    )]
    AttrsFromAgent,
    /// `-E` with `--source agent`: destroy notifications come from the kernel only.
    #[error(
        "-E follows the kernel's socket-destroy notifications, which the agent does not \
         relay: drop --source agent"
    )]
    EventsFromAgent,
}

/// The ss FILTER of `sockstat trace` and `sockstat history`, applied to events rather than
/// to a table: the expression to the socket's tuple, a STATE-FILTER to the states the
/// event (or the connection) went through.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    filter: crate::filter::Filter,
}

impl EventFilter {
    /// # Errors
    /// The FILTER's syntax errors, as for queries.
    pub fn parse<S: AsRef<str>>(words: &[S]) -> Result<EventFilter, crate::filter::FilterError> {
        Ok(EventFilter { filter: crate::filter::parse(words, 0)? })
    }

    /// Whether the expression looks at a socket's details (`cgroup`, `fwmark`): the
    /// subject must then carry them.
    #[must_use]
    pub fn needs_details(&self) -> bool {
        self.filter.needs_diag_attrs()
    }

    #[must_use]
    pub fn accepts(&self, sock: &InetSocket, states: &[u8]) -> bool {
        let f = &self.filter;
        (!f.saw_states || states.iter().any(|&s| f.state_filter & (1u32 << u32::from(s).min(31)) != 0))
            && f.matches(sock)
    }
}

/// Fails if the options ask for something sockstat would answer differently from ss.
///
/// Call before fetching: the fetch and render steps assume the columns `format`
/// implements.
///
/// # Errors
/// [`QueryError`] naming the first unsupported option.
pub fn check_supported(sel: &Selection, unsupported: &[String], follow_events: bool) -> Result<(), QueryError> {
    if let Some(option) = unsupported.first() {
        return Err(QueryError::UnsupportedOption { option: option.clone() });
    }
    if follow_events && sel.source == SourceChoice::Agent {
        return Err(QueryError::EventsFromAgent);
    }
    // The storage request names maps by this process's fds: never relayed to the agent,
    // whatever the tables.
    if sel.source == SourceChoice::Agent
        && let Some(option) = bpf_maps_option(sel)
    {
        return Err(QueryError::DetailsFromAgent { option });
    }
    if sel.source == SourceChoice::Agent
        && sel.has_table(Table::Tcp)
        && !sel.kill
        && let Some(option) = agent_detail(sel)
    {
        return Err(match option {
            "-o" | "-b" => QueryError::TimersFromAgent { option },
            FILTER_ATTRS => QueryError::AttrsFromAgent,
            _ => QueryError::DetailsFromAgent { option },
        });
    }
    Ok(())
}

/// [`agent_detail`]'s name for a FILTER with a `fwmark` or `cgroup` condition.
const FILTER_ATTRS: &str = "fwmark/cgroup";

/// The first option of `sel` whose TCP values the agent's table does not have fresh.
fn agent_detail(sel: &Selection) -> Option<&'static str> {
    [
        (sel.filter.needs_diag_attrs(), FILTER_ATTRS),
        (sel.needs.details, "-e"),
        (sel.needs.mem, "-m"),
        (sel.needs.info, "-i"),
        (sel.needs.threads, "-T"),
        (sel.needs.cgroup, "--cgroup"),
        (sel.needs.tos, "--tos"),
        (sel.needs.sockopt, "--inet-sockopt"),
        (sel.needs.bpf, "-b"),
        (sel.needs.timers, "-o"),
    ]
    .into_iter()
    .find_map(|(on, name)| on.then_some(name))
    .or_else(|| bpf_maps_option(sel))
}

/// `--bpf-maps` or `--bpf-map-id`, if the query has one.
fn bpf_maps_option(sel: &Selection) -> Option<&'static str> {
    sel.bpf_maps.as_ref().map(|m| match m {
        selection::BpfMaps::All => "--bpf-maps",
        selection::BpfMaps::Ids(_) => "--bpf-map-id",
    })
}

/// Where TCP comes from: `-e`, `-m`, `-i`, `-o`/`-b` and `-T` print values the agent's
/// table does not keep fresh, so `auto` asks the kernel for those queries. `-K` always
/// goes to the kernel, even with `--source agent`: SOCK_DESTROY names the socket by the
/// tuple and cookie of a fresh dump, and a kill is never relayed through the agent.
#[must_use]
pub fn tcp_source(sel: &Selection) -> SourceChoice {
    if sel.kill || (sel.source == SourceChoice::Auto && agent_detail(sel).is_some()) {
        SourceChoice::Kernel
    } else {
        sel.source
    }
}

/// The state mask to request (bit n = kernel TCP state n).
///
/// ss's selection plus `TCP_NEW_SYN_RECV` whenever SYN-RECV is selected: the kernel's
/// inet_diag does the same for request sockets (net/ipv4/inet_diag.c,
/// `inet_diag_dump_icsk`), so an agent table that keeps state 12 must match it too.
#[must_use]
pub fn state_mask(sel: &Selection) -> u32 {
    let syn_recv = bit(TcpState::SynRecv);
    if sel.states & syn_recv != 0 { sel.states | bit(TcpState::NewSynRecv) } else { sel.states }
}

/// The address families to dump for an inet table over sock_diag, in ss's order.
///
/// ss's `inet_show_netlink` dumps AF_INET, then AF_INET6 unless the last family option
/// was `-4`; it starts with AF_INET6 (and stops there) when that option was `-6`. So
/// `-t -4 -6` shows only IPv6 and `-t -6 -4` only IPv4, whatever the family mask. Sockets
/// of a family outside the mask are then dropped (`show_one_inet_sock`).
#[must_use]
pub fn families(sel: &Selection) -> Vec<u16> {
    let order: &[u16] = match sel.preferred_family {
        Some(AF_INET6) => &[AF_INET6],
        Some(AF_INET) => &[AF_INET],
        _ => &[AF_INET, AF_INET6],
    };
    order.iter().copied().filter(|&af| sel.has_family(af)).collect()
}

/// The destroy notification groups `-E` joins: ss.c's `handle_follow_request`, TCP and
/// UDP of each selected inet family. The family mask decides, not the last family option
/// (so `-t -4 -6` follows both). Empty when neither TCP nor UDP of an inet family is
/// selected: ss then exits with status 255 without printing anything.
#[must_use]
pub fn destroy_groups(sel: &Selection) -> DestroyGroups {
    let mut groups = DestroyGroups::NONE;
    for (family, table, group) in [
        (AF_INET, Table::Tcp, DestroyGroups::INET_TCP),
        (AF_INET, Table::Udp, DestroyGroups::INET_UDP),
        (AF_INET6, Table::Tcp, DestroyGroups::INET6_TCP),
        (AF_INET6, Table::Udp, DestroyGroups::INET6_UDP),
    ] {
        if sel.has_family(family) && sel.has_table(table) {
            groups = groups.union(group);
        }
    }
    groups
}

/// Whether `-E` prints a destroyed socket: ss's `show_one_inet_sock` checks the family
/// mask and the FILTER expression, and nothing else. No state selection applies (a
/// destroyed TCP socket is mostly in CLOSE, printed `UNCONN`, even under `-t` or
/// `state established`), nor a table one (the joined groups did that).
#[must_use]
pub fn select_event(sel: &Selection, s: &InetSocket) -> bool {
    sel.has_family(s.family) && sel.filter.matches(s)
}

/// The families /proc/net/raw(6) are read for: ss's fallback reads by the family mask
/// alone, AF_INET first.
#[must_use]
pub fn proc_families(sel: &Selection) -> Vec<u16> {
    [AF_INET, AF_INET6].into_iter().filter(|&af| sel.has_family(af)).collect()
}

/// Whether ss would look at an inet table at all (`tcp_show` and friends return early
/// without an inet family).
#[must_use]
pub fn inet_table(sel: &Selection, t: Table) -> bool {
    sel.has_table(t) && (sel.has_family(AF_INET) || sel.has_family(AF_INET6))
}

/// Keeps the TCP sockets ss would print for `sel`, in the order given.
///
/// Selection is by the socket's own family, as sock_diag's is: a v4-mapped connection on
/// an AF_INET6 socket is shown by `-6`, not `-4`.
#[must_use]
pub fn select(sel: &Selection, sockets: Vec<InetSocket>) -> Vec<InetSocket> {
    select_planned(sel, &Plan::new(sel), sockets)
}

/// [`select`] with the query's plan.
#[must_use]
pub fn select_planned(sel: &Selection, plan: &Plan, sockets: Vec<InetSocket>) -> Vec<InetSocket> {
    if !plan.tcp {
        return Vec::new();
    }
    select_inet(sel, plan, IPPROTO_TCP, sockets)
}

/// Keeps the inet sockets of `protocol` whose family and state ss would print, in order.
#[must_use]
pub fn select_inet(sel: &Selection, plan: &Plan, protocol: u8, sockets: Vec<InetSocket>) -> Vec<InetSocket> {
    sockets
        .into_iter()
        .filter(|s| inet_selected(sel, plan, protocol, (s.protocol, s.family, s.state), || sel.filter.matches(s)))
        .collect()
}

/// Whether ss prints an inet socket of table `protocol` that has (`its` protocol, family,
/// state): [`select_inet`]'s test. `matches` (the FILTER expression on the whole socket)
/// is asked only when there is an expression.
pub fn inet_selected(
    sel: &Selection,
    plan: &Plan,
    protocol: u8,
    its: (u8, u16, u8),
    matches: impl FnOnce() -> bool,
) -> bool {
    let (its_protocol, family, state) = its;
    its_protocol == protocol
        && plan.families.contains(&family)
        && state_selected(plan.states, protocol, state)
        && (sel.filter.expr.is_none() || matches())
}

/// Whether a socket the kernel reports in `state` is one `states` asks for. A TCP socket
/// in CLOSE is also one of `SS_BOUND_INACTIVE` (bit 13): the kernel dumps bound but
/// inactive sockets for that bit only, and reports them as CLOSE (net/ipv4/inet_diag.c,
/// `inet_diag_dump_icsk`'s bhash2 walk), which ss prints `UNCONN`. A SYN-RECV is also one
/// of `TCP_NEW_SYN_RECV` (bit 12, in ss 7.1's `SS_CONN`): request sockets are dumped for
/// that bit and reported as SYN-RECV.
#[must_use]
pub fn state_selected(states: u32, protocol: u8, state: u8) -> bool {
    let close = TcpState::Close as u8;
    let syn_recv = TcpState::SynRecv as u8;
    (u32::from(state) < u32::BITS && states & (1 << state) != 0)
        || (protocol == IPPROTO_TCP && state == close && states & crate::filter::SS_BOUND_INACTIVE != 0)
        || (state == syn_recv && states & bit(TcpState::NewSynRecv) != 0)
}

/// Applies the FILTER expression to raw sockets read from /proc (ss runs `run_ssfilter`
/// on them too); the state was selected while reading.
#[must_use]
pub fn select_raw(sel: &Selection, sockets: Vec<InetSocket>) -> Vec<InetSocket> {
    sockets.into_iter().filter(|s| sel.filter.matches(s)).collect()
}

/// ss's `unix_type_skip`: drops UNIX sockets of a type whose table is not selected
/// (types other than stream, dgram and seqpacket are kept, as ss keeps them).
#[must_use]
pub fn select_unix(sel: &Selection, sockets: Vec<UnixSocket>) -> Vec<UnixSocket> {
    sockets
        .into_iter()
        .filter(|s| match s.kind {
            SOCK_STREAM => sel.has_table(Table::UnixStream),
            SOCK_DGRAM => sel.has_table(Table::UnixDgram),
            SOCK_SEQPACKET => sel.has_table(Table::UnixSeqpacket),
            _ => true,
        })
        .filter(|s| {
            // ss's netlink path never learns the peer's name: only its inode.
            let name = s.display_name();
            sel.filter.matches_subject(&Subject::unix(name.as_deref(), None, s.inode, s.peer))
        })
        .collect()
}

/// ss's `vsock_type_skip`, then the FILTER expression (`vsock_show_sock`).
#[must_use]
pub fn select_vsock(sel: &Selection, sockets: Vec<VsockSocket>) -> Vec<VsockSocket> {
    sockets
        .into_iter()
        .filter(|s| match s.kind {
            SOCK_STREAM => sel.has_table(Table::VsockStream),
            SOCK_DGRAM => sel.has_table(Table::VsockDgram),
            _ => true,
        })
        .filter(|s| sel.filter.matches_subject(&Subject::vsock(s)))
        .collect()
}

/// The FILTER expression on netlink sockets, as ss's `netlink_show_one` runs it (the
/// table and state selection were the dump's).
#[must_use]
pub fn select_netlink(sel: &Selection, sockets: Vec<NetlinkSocket>) -> Vec<NetlinkSocket> {
    sockets.into_iter().filter(|s| sel.filter.matches_subject(&Subject::netlink(s))).collect()
}

/// The FILTER expression on packet sockets, as ss's `packet_stats_print` runs it.
#[must_use]
pub fn select_packet(sel: &Selection, sockets: Vec<PacketSocket>) -> Vec<PacketSocket> {
    sockets.into_iter().filter(|s| sel.filter.matches_subject(&Subject::packet(s))).collect()
}

/// The FILTER expression on XDP sockets, as ss's `xdp_stats_print` runs it (the table
/// and the UNCONN state were the dump's).
#[must_use]
pub fn select_xdp(sel: &Selection, sockets: Vec<XdpSocket>) -> Vec<XdpSocket> {
    sockets.into_iter().filter(|s| sel.filter.matches_subject(&Subject::xdp(s))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_ss_args;
    use crate::model::socket::Source;
    use std::ffi::OsString;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn options(line: &str) -> crate::cli::Options {
        parse_ss_args(line.split_whitespace().map(OsString::from)).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn opts(line: &str) -> Selection {
        options(line).selection
    }

    fn check_supported(o: &crate::cli::Options) -> Result<(), QueryError> {
        super::check_supported(&o.selection, &o.unsupported, o.follow_events)
    }

    fn sock(family: u16, state: TcpState, sport: u16) -> InetSocket {
        let (src, dst) = if family == AF_INET {
            (IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            (IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST))
        };
        InetSocket { source: Source::Kernel, ..InetSocket::tcp(family, state as u8, (src, sport), (dst, 1), 0) }
    }

    fn ports(v: &[InetSocket]) -> Vec<u16> {
        v.iter().map(|s| s.sport).collect()
    }

    #[test]
    fn families_in_dump_order() {
        assert_eq!(families(&opts("-t")), [AF_INET, AF_INET6]);
        // The last family option decides which families are dumped (ss's preferred_family).
        assert_eq!(families(&opts("-t6 -4")), [AF_INET]);
        assert_eq!(families(&opts("-t4 -6")), [AF_INET6]);
        assert_eq!(families(&opts("-t -6 -x")), [AF_INET6]);
        assert_eq!(proc_families(&opts("-w -6 -4")), [AF_INET, AF_INET6]);
        assert_eq!(families(&opts("-t6")), [AF_INET6]);
        assert_eq!(families(&opts("-t -f inet")), [AF_INET]);
    }

    #[test]
    fn state_mask_adds_new_syn_recv_with_syn_recv() {
        assert_eq!(state_mask(&opts("-t")), crate::filter::SS_CONN);
        assert_eq!(state_mask(&opts("-ta")), 0xfff | 1 << 12);
        assert_eq!(state_mask(&opts("-t state bucket")), 1 << 3 | 1 << 6 | 1 << 12);
        assert_eq!(state_mask(&opts("-tl")), 1 << 10 | 1 << 7);
    }

    #[test]
    fn select_keeps_family_state_and_order() {
        let all = vec![
            sock(AF_INET, TcpState::Listen, 1),
            sock(AF_INET, TcpState::Established, 2),
            sock(AF_INET6, TcpState::TimeWait, 3),
            sock(AF_INET6, TcpState::Established, 4),
            sock(AF_INET6, TcpState::NewSynRecv, 5),
            sock(AF_INET, TcpState::SynSent, 6),
            sock(AF_INET, TcpState::BoundInactive, 7),
        ];
        let cases: &[(&str, &[u16])] = &[
            ("-t", &[2, 4, 6]),
            ("-ta", &[1, 2, 3, 4, 5, 6]),
            ("-tl", &[1]),
            ("-ta4", &[1, 2, 6]),
            ("-tan6", &[3, 4, 5]),
            ("-t state syn-recv", &[5]),
            ("-t state established", &[2, 4]),
            ("-t exclude established", &[1, 3, 5, 6]),
        ];
        for &(line, want) in cases {
            assert_eq!(ports(&select(&opts(line), all.clone())), want, "{line}");
        }
        let mut udp = sock(AF_INET, TcpState::Established, 9);
        udp.protocol = 17;
        assert!(select(&opts("-ta"), vec![udp]).is_empty());
    }

    #[test]
    fn unsupported_requests_are_named() {
        assert_eq!(check_supported(&options("-tan")), Ok(()));
        assert_eq!(check_supported(&options("-t6lnH state listening")), Ok(()));
        assert_eq!(check_supported(&options("-tpemi --json")), Ok(()));
        assert_eq!(check_supported(&options("-tanr")), Ok(()));
        assert_eq!(check_supported(&options("-t -E")), Ok(()));
        assert_eq!(check_supported(&options("-t -E --source kernel")), Ok(()));
        assert_eq!(check_supported(&options("-t -E --source agent")), Err(QueryError::EventsFromAgent));
        assert_eq!(check_supported(&options("-t --tos --inet-sockopt")), Ok(()));
        for (line, option) in
            [("-t --tos --source agent", "--tos"), ("-t --inet-sockopt --source agent", "--inet-sockopt")]
        {
            assert_eq!(check_supported(&options(line)), Err(QueryError::DetailsFromAgent { option }), "{line}");
        }
        for line in ["-t fwmark 0x17", "-t not ( fwmark 1/3 or sport = :22 )"] {
            assert_eq!(tcp_source(&opts(line)), SourceChoice::Kernel, "{line}");
            let agent = format!("{line} --source agent");
            assert_eq!(check_supported(&options(&agent)), Err(QueryError::AttrsFromAgent), "{agent}");
        }
        assert_eq!(tcp_source(&opts("-t sport = :22")), SourceChoice::Auto);
        assert_eq!(tcp_source(&opts("-t --tos")), SourceChoice::Kernel);
        assert_eq!(tcp_source(&opts("-t --inet-sockopt")), SourceChoice::Kernel);
        // Socket-local storage requests name maps by this process's fds: never the agent.
        assert_eq!(tcp_source(&opts("-t --bpf-maps")), SourceChoice::Kernel);
        assert_eq!(check_supported(&options("-t --bpf-map-id 3")), Ok(()));
        for (line, option) in
            [("-t --bpf-maps --source agent", "--bpf-maps"), ("-u --bpf-map-id 3 --source agent", "--bpf-map-id")]
        {
            assert_eq!(check_supported(&options(line)), Err(QueryError::DetailsFromAgent { option }), "{line}");
        }
        assert_eq!(check_supported(&options("-tm --source agent")), Err(QueryError::DetailsFromAgent { option: "-m" }));
        assert_eq!(check_supported(&options("-tK --source agent")), Ok(()));
        assert_eq!(tcp_source(&opts("-tK --source agent")), SourceChoice::Kernel);
        assert_eq!(tcp_source(&opts("-ti")), SourceChoice::Kernel);
        assert_eq!(tcp_source(&opts("-t --json")), SourceChoice::Auto);
        // Every table is supported now, including ss's default of all of them.
        assert_eq!(check_supported(&options("-tu")), Ok(()));
        assert_eq!(check_supported(&options("-an")), Ok(()));
        assert_eq!(check_supported(&options("-4")), Ok(()));
        assert!(matches!(
            check_supported(&options("-tb --source agent")),
            Err(QueryError::TimersFromAgent { option: "-b" })
        ));
        assert_eq!(tcp_source(&opts("-to")), SourceChoice::Kernel);
        assert_eq!(tcp_source(&opts("-t")), SourceChoice::Auto);
    }

    #[test]
    fn xdp_rows_are_filtered_as_ss_does() {
        // ss's xdp_stats_print(): `dev` is the bound interface, `sport` the queue id.
        let x = |ifindex, queue_id| XdpSocket { ifindex, queue_id, ..XdpSocket::default() };
        let xdp = vec![x(1, 0), x(2, 3), x(0, 0)];
        assert_eq!(select_xdp(&opts("--xdp dev = lo"), xdp.clone()), [xdp[0].clone()]);
        assert_eq!(select_xdp(&opts("--xdp sport = :3"), xdp.clone()), [xdp[1].clone()]);
        assert_eq!(select_xdp(&opts("--xdp"), xdp.clone()), xdp);
    }

    #[test]
    fn netlink_packet_and_vsock_rows_are_filtered() {
        let nl = |protocol, portid| NetlinkSocket { protocol, portid, ..NetlinkSocket::default() };
        let pk = |protocol, ifindex| PacketSocket {
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
        };
        let netlink = vec![nl(0, 0), nl(0, 77), nl(16, 0)];
        let packet = vec![pk(0x0800, 1), pk(3, 0)];
        let pids = |v: Vec<NetlinkSocket>| v.iter().map(|s| (s.protocol, s.portid)).collect::<Vec<_>>();
        assert_eq!(pids(select_netlink(&opts("-a sport = :0"), netlink.clone())), [(0, 0), (16, 0)]);
        assert_eq!(pids(select_netlink(&opts("-a src netlink:rtnl"), netlink.clone())), [(0, 0), (0, 77)]);
        assert_eq!(pids(select_netlink(&opts("-a"), netlink.clone())), [(0, 0), (0, 77), (16, 0)]);
        assert_eq!(select_packet(&opts("-0 dev = lo"), packet.clone()), [packet[0].clone()]);
        assert_eq!(select_packet(&opts("-0 src all"), packet.clone()), [packet[1].clone()]);
        let v = VsockSocket {
            kind: 1,
            state: 10,
            src_cid: 3,
            src_port: 1024,
            dst_cid: u32::MAX,
            dst_port: u32::MAX,
            inode: 1,
        };
        assert_eq!(select_vsock(&opts("--vsock -a sport = :1024"), vec![v.clone()]), std::slice::from_ref(&v));
        assert!(select_vsock(&opts("--vsock -a src 2:1024"), vec![v]).is_empty());
    }

    #[test]
    fn destroy_groups_follow_tables_and_family_mask() {
        let (t4, u4, t6, u6) =
            (DestroyGroups::INET_TCP, DestroyGroups::INET_UDP, DestroyGroups::INET6_TCP, DestroyGroups::INET6_UDP);
        let all = t4.union(u4).union(t6).union(u6);
        let cases: &[(&str, DestroyGroups)] = &[
            ("-E", all),
            ("-E -t", t4.union(t6)),
            ("-E -u", u4.union(u6)),
            ("-E -tu", all),
            ("-E -t -4", t4),
            ("-E -u -6", u6),
            // The family mask decides, not the last family option (preferred_family).
            ("-E -t -4 -6", t4.union(t6)),
            ("-E -4", t4.union(u4)),
            ("-E -A tcp,udp -f inet6", t6.union(u6)),
            // A family named in the FILTER replaces the family selection.
            ("-E -t src inet:127.0.0.1", t4),
            ("-E -t6 dst [::1]", t6),
            // Tables without destroy groups: nothing to join (ss exits 255).
            ("-E -x", DestroyGroups::NONE),
            ("-E -w", DestroyGroups::NONE),
            ("-E -0", DestroyGroups::NONE),
            ("-E -M", DestroyGroups::NONE),
            ("-E -S -d", DestroyGroups::NONE),
        ];
        for &(line, want) in cases {
            assert_eq!(destroy_groups(&opts(line)), want, "{line}");
        }
        // The bind(2) mask: group g is bit g - 1 (SKNLGRP_INET_TCP_DESTROY = 1 ...).
        assert_eq!((t4.mask(), u4.mask(), t6.mask(), u6.mask(), all.mask()), (1, 2, 4, 8, 15));
        assert!(destroy_groups(&opts("-E -x")).is_empty() && !t4.is_empty());
    }

    #[test]
    fn events_are_selected_by_family_and_expression_only() {
        let v4 = sock(AF_INET, TcpState::Close, 8080);
        let v6 = sock(AF_INET6, TcpState::Close, 8080);
        let estab = sock(AF_INET, TcpState::Established, 9090);
        // No state selection: a CLOSE socket shows under -t's SS_CONN or a state filter.
        for line in ["-E -t", "-E -ta", "-E -t state established", "-E -tl"] {
            assert!(select_event(&opts(line), &v4) && select_event(&opts(line), &v6), "{line}");
        }
        assert!(select_event(&opts("-E -t4"), &v4) && !select_event(&opts("-E -t4"), &v6));
        assert!(!select_event(&opts("-E -t6"), &v4) && select_event(&opts("-E -t6"), &v6));
        let sport = opts("-E -t sport = :8080");
        assert!(select_event(&sport, &v4) && select_event(&sport, &v6) && !select_event(&sport, &estab));
        assert!(!select_event(&opts("-E -t dport = :53"), &v4));
    }

    #[test]
    fn request_only_states_select_what_the_kernel_dumps_for_them() {
        use crate::filter::{SS_BOUND_INACTIVE, SS_CONN, ss_conn};
        let (close, syn_recv) = (TcpState::Close as u8, TcpState::SynRecv as u8);
        // ss 6.1's SS_CONN: neither bound-inactive sockets nor request sockets.
        assert!(!state_selected(SS_CONN, IPPROTO_TCP, close) && !state_selected(SS_CONN, IPPROTO_TCP, syn_recv));
        // ss 7.1's: both, as the kernel reports them (CLOSE, SYN-RECV).
        assert!(
            state_selected(ss_conn(true), IPPROTO_TCP, close) && state_selected(ss_conn(true), IPPROTO_TCP, syn_recv)
        );
        assert!(state_selected(SS_BOUND_INACTIVE, IPPROTO_TCP, close));
        // A UDP socket in CLOSE is unconnected, not bound-inactive.
        assert!(!state_selected(SS_BOUND_INACTIVE, 17, close));
    }
}
