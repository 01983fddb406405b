//! What to fetch and what to keep: turns resolved [`Options`] into the request the fetch
//! layer (a sock_diag dump or the agent) makes, and selects from the records it returns
//! what ss would print. No I/O here.

use crate::cli::{Options, Table};
use crate::filter::bit;
use crate::socket::InetSocket;
use sockstat_ebpf::{AF_INET, AF_INET6, IPPROTO_TCP, TcpState};

/// A request that sockstat cannot answer the way ss would, yet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// An option that changes ss's output and that sockstat does not implement.
    #[error("not supported yet: {option}")]
    UnsupportedOption { option: String },
    /// Socket tables other than TCP (ss shows every table when none is named).
    #[error(
        "not supported yet: socket tables other than tcp ({tables}); select TCP only, e.g. with -t"
    )]
    UnsupportedTables { tables: String },
}

/// Fails if the options ask for something sockstat would answer differently from ss.
///
/// Call before fetching: the fetch and render steps assume TCP only and the columns
/// `format` implements.
///
/// # Errors
/// [`QueryError`] naming the first unsupported option, or the tables it cannot show.
pub fn check_supported(opts: &Options) -> Result<(), QueryError> {
    if let Some(option) = opts.unsupported.first() {
        return Err(QueryError::UnsupportedOption {
            option: option.clone(),
        });
    }
    let others: Vec<&str> = Table::ALL
        .iter()
        .filter(|&&t| t != Table::Tcp && opts.has_table(t))
        .map(|t| t.name())
        .collect();
    if !others.is_empty() {
        return Err(QueryError::UnsupportedTables {
            tables: others.join(","),
        });
    }
    Ok(())
}

/// The state mask to request (bit n = kernel TCP state n).
///
/// ss's selection plus `TCP_NEW_SYN_RECV` whenever SYN-RECV is selected: the kernel's
/// inet_diag does the same for request sockets (net/ipv4/inet_diag.c,
/// `inet_diag_dump_icsk`), so an agent table that keeps state 12 must match it too.
#[must_use]
pub fn state_mask(opts: &Options) -> u32 {
    let syn_recv = bit(TcpState::SynRecv);
    if opts.states & syn_recv != 0 {
        opts.states | bit(TcpState::NewSynRecv)
    } else {
        opts.states
    }
}

/// The address families to dump, AF_INET before AF_INET6 as ss dumps them.
#[must_use]
pub fn families(opts: &Options) -> Vec<u16> {
    [AF_INET, AF_INET6]
        .into_iter()
        .filter(|&af| opts.has_family(af))
        .collect()
}

/// Keeps the sockets ss would print for `opts`, in the order given.
///
/// Selection is by the socket's own family, as sock_diag's is: a v4-mapped connection on
/// an AF_INET6 socket is shown by `-6`, not `-4`.
#[must_use]
pub fn select(opts: &Options, sockets: Vec<InetSocket>) -> Vec<InetSocket> {
    let mask = state_mask(opts);
    let fams = families(opts);
    let tcp = opts.has_table(Table::Tcp);
    sockets
        .into_iter()
        .filter(|s| {
            tcp && s.protocol == IPPROTO_TCP
                && fams.contains(&s.family)
                && u32::from(s.state) < u32::BITS
                && mask & (1 << s.state) != 0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_ss_args;
    use crate::socket::Source;
    use std::ffi::OsString;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn opts(line: &str) -> Options {
        parse_ss_args(line.split_whitespace().map(OsString::from))
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn sock(family: u16, state: TcpState, sport: u16) -> InetSocket {
        let (src, dst) = if family == AF_INET {
            (
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            )
        } else {
            (
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            )
        };
        InetSocket {
            family,
            protocol: IPPROTO_TCP,
            state: state as u8,
            src,
            sport,
            dst,
            dport: 1,
            v6only: false,
            ifindex: 0,
            rqueue: 0,
            wqueue: 0,
            cookie: 0,
            uid: 0,
            inode: 0,
            timer: 0,
            retrans: 0,
            expires_ms: 0,
            source: Source::Kernel,
        }
    }

    fn ports(v: &[InetSocket]) -> Vec<u16> {
        v.iter().map(|s| s.sport).collect()
    }

    #[test]
    fn families_in_dump_order() {
        assert_eq!(families(&opts("-t")), [AF_INET, AF_INET6]);
        assert_eq!(families(&opts("-t6 -4")), [AF_INET, AF_INET6]);
        assert_eq!(families(&opts("-t6")), [AF_INET6]);
        assert_eq!(families(&opts("-t -f inet")), [AF_INET]);
    }

    #[test]
    fn state_mask_adds_new_syn_recv_with_syn_recv() {
        assert_eq!(state_mask(&opts("-t")), crate::filter::SS_CONN);
        assert_eq!(state_mask(&opts("-ta")), 0xfff | 1 << 12);
        assert_eq!(
            state_mask(&opts("-t state bucket")),
            1 << 3 | 1 << 6 | 1 << 12
        );
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
        assert_eq!(check_supported(&opts("-tan")), Ok(()));
        assert_eq!(check_supported(&opts("-t6lnH state listening")), Ok(()));
        assert_eq!(
            check_supported(&opts("-tp")),
            Err(QueryError::UnsupportedOption {
                option: "-p".into()
            })
        );
        assert_eq!(
            check_supported(&opts("-t --json")).map_err(|e| e.to_string()),
            Err("not supported yet: --json".into())
        );
        assert_eq!(
            check_supported(&opts("-tu")),
            Err(QueryError::UnsupportedTables {
                tables: "udp".into()
            })
        );
        // ss's default is every table.
        assert!(matches!(
            check_supported(&opts("-an")),
            Err(QueryError::UnsupportedTables { .. })
        ));
        // -4 alone selects every inet table.
        assert!(matches!(
            check_supported(&opts("-4")),
            Err(QueryError::UnsupportedTables { .. })
        ));
    }
}
