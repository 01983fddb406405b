//! One query's plan: what its [`Selection`] asks of the kernel or the agent, computed
//! once (the state mask, the families in dump order, where TCP comes from, which tables
//! are looked at, the dump of the other tables) and read by every step of the fetch.

use crate::diag::StorageRequest;
use crate::model::abi::{AF_NETLINK, AF_PACKET, AF_UNIX, AF_VSOCK, AF_XDP, IPPROTO_DCCP, IPPROTO_SCTP, IPPROTO_UDP};
use crate::query::selection::{Selection, SourceChoice, Table};
use crate::query::{families, inet_table, state_mask, tcp_source};
use crate::wire::protocol::DumpSpec;

/// TCP_CLOSE: packet, netlink and XDP sockets are only shown when it is selected.
const CLOSE: u32 = 1 << 7;

/// What a query fetches, derived once from its selection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The state mask asked for ([`state_mask`]).
    pub states: u32,
    /// Inet families in dump order ([`families`]).
    pub families: Vec<u16>,
    /// Where TCP comes from ([`tcp_source`]).
    pub tcp_source: SourceChoice,
    /// Whether the TCP, raw and MPTCP tables are looked at ([`inet_table`]).
    pub tcp: bool,
    pub raw: bool,
    pub mptcp: bool,
    /// The sock_diag dumps besides TCP, in ss's order.
    pub spec: DumpSpec,
    /// The BPF socket-local storages inet dumps ask for (set by the fetch, which opens
    /// the maps).
    pub storages: Option<StorageRequest>,
}

impl Plan {
    #[must_use]
    pub fn new(sel: &Selection) -> Plan {
        let states = state_mask(sel);
        let families = families(sel);
        let spec = dump_spec(sel, states, &families);
        Plan {
            states,
            tcp_source: tcp_source(sel),
            tcp: inet_table(sel, Table::Tcp),
            raw: inet_table(sel, Table::Raw),
            mptcp: inet_table(sel, Table::Mptcp),
            families,
            spec,
            storages: None,
        }
    }
}

/// What `sel` dumps besides TCP, in ss's order.
fn dump_spec(sel: &Selection, states: u32, families: &[u16]) -> DumpSpec {
    let unix = [Table::UnixStream, Table::UnixDgram, Table::UnixSeqpacket];
    DumpSpec {
        netlink: sel.has_table(Table::Netlink) && sel.has_family(AF_NETLINK) && sel.states & CLOSE != 0,
        // ss's netlink path shows every packet socket once either packet table is
        // selected (packet_show_sock does not check the socket type), and so does sockstat.
        packet: (sel.has_table(Table::PacketRaw) || sel.has_table(Table::PacketDgram))
            && sel.has_family(AF_PACKET)
            && sel.states & CLOSE != 0,
        unix: (unix.iter().any(|&t| sel.has_table(t)) && sel.has_family(AF_UNIX)).then_some(sel.states),
        inet: [(Table::Udp, IPPROTO_UDP), (Table::Dccp, IPPROTO_DCCP), (Table::Sctp, IPPROTO_SCTP)]
            .into_iter()
            .filter(|&(table, _)| inet_table(sel, table))
            .map(|(_, protocol)| (protocol, families.to_vec(), states))
            .collect(),
        vsock: ((sel.has_table(Table::VsockStream) || sel.has_table(Table::VsockDgram)) && sel.has_family(AF_VSOCK))
            .then_some(sel.states),
        mptcp: inet_table(sel, Table::Mptcp).then(|| (families.to_vec(), states)),
        xdp: sel.has_table(Table::Xdp) && sel.has_family(AF_XDP) && sel.states & CLOSE != 0,
        details: sel.needs.details || sel.needs.cgroup,
        mem: sel.needs.mem,
        info: sel.needs.info,
        tos: sel.needs.tos,
        attrs: sel.needs.sockopt || sel.filter.needs_diag_attrs(),
    }
}
