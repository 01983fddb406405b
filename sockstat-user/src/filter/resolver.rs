//! [`Resolver`]: the look-ups ss makes while parsing a filter, behind a trait so that tests
//! and the fuzzer answer them from fixed tables. The machine's answers come from
//! `names::lookup` ([`SystemResolver`]); its implementation of the trait is here because
//! `names` sits below `filter` and cannot name the trait.

use std::net::IpAddr;

use sockstat_ebpf::{AF_INET, AF_INET6};

use crate::names::lookup::{self, SystemResolver};

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
