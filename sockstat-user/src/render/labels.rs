//! ss's names for a socket's protocol (the Netid column) and TCP state (the State
//! column), shared by the grid rows, `-E` and JSON.

use sockstat_ebpf::TcpState;

/// ss's `proto_name()`: the Netid of an inet socket by IP protocol.
#[must_use]
pub fn netid_name(protocol: u8) -> &'static str {
    match protocol {
        0 => "raw",
        6 => "tcp",
        17 => "udp",
        33 => "dccp",
        58 => "icmp6",
        132 => "sctp",
        _ => "???",
    }
}

/// ss's state names (`sstate_name[]`), by kernel state number.
#[must_use]
pub fn state_name(state: u8) -> &'static str {
    match TcpState::try_from(state) {
        Ok(TcpState::Established) => "ESTAB",
        Ok(TcpState::SynSent) => "SYN-SENT",
        // The kernel reports request sockets (NEW_SYN_RECV) as SYN-RECV in sock_diag
        // (inet_req_diag_fill); a record kept with the internal state prints the same.
        Ok(TcpState::SynRecv | TcpState::NewSynRecv) => "SYN-RECV",
        Ok(TcpState::FinWait1) => "FIN-WAIT-1",
        Ok(TcpState::FinWait2) => "FIN-WAIT-2",
        Ok(TcpState::TimeWait) => "TIME-WAIT",
        Ok(TcpState::Close) => "UNCONN",
        Ok(TcpState::CloseWait) => "CLOSE-WAIT",
        Ok(TcpState::LastAck) => "LAST-ACK",
        Ok(TcpState::Listen) => "LISTEN",
        Ok(TcpState::Closing) => "CLOSING",
        // ss has no name past CLOSING (it would index out of its table); 0 is UNKNOWN.
        Ok(TcpState::BoundInactive) | Err(_) => "UNKNOWN",
    }
}
