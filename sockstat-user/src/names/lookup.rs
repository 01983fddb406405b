//! Forward look-ups on this machine, the ones ss makes while parsing a filter: a service
//! name to its port (/etc/services), a host name to its addresses (the system resolver),
//! an interface name to its index, a cgroup v2 path to its id (under the cgroup2 mount),
//! a netlink protocol name to its number, and the local port range (/proc/sys).
//!
//! Plain functions over the system. [`SystemResolver`] names them as one resolver; the
//! filter's `Resolver` trait is implemented for it in `filter/resolver.rs`, since `names`
//! sits below `filter` and does not import it. May import `model`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Once, OnceLock};

use super::system::{nl_proto_id, parse_port_range, system_nl_protos};

/// The machine's own answers: /etc/services, the system resolver (getaddrinfo), the
/// kernel's interface table, the cgroup2 mount, /proc/sys.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

/// What runs before the first look-up through the C library's resolver (a host name's
/// addresses, an address's name), once per process: the musl build hands the whole
/// command to its glibc build there (`cmd::long_runs`), so that names come from glibc's
/// resolver and nsswitch.conf, as ss's do.
static BEFORE_RESOLVER: OnceLock<fn()> = OnceLock::new();
/// Done once the hook ran, or once it must not (see [`stdin_read`]).
static BEFORE_RESOLVER_RAN: Once = Once::new();

/// Sets what [`before_resolver`] runs (the first setting stays).
pub fn set_before_resolver(f: fn()) {
    let _ = BEFORE_RESOLVER.set(f);
}

/// Says that this process read its standard input (`-F -`): another program image could
/// not read it again, so the hook never runs after this.
pub fn stdin_read() {
    BEFORE_RESOLVER_RAN.call_once(|| {});
}

/// Runs what [`set_before_resolver`] set, the first time only, unless the standard input
/// was read. Called before any output: by the filter's host names as they are parsed, by
/// `-r` before the rows are printed.
pub fn before_resolver() {
    if let Some(f) = BEFORE_RESOLVER.get() {
        BEFORE_RESOLVER_RAN.call_once(f);
    }
}

/// `getservbyname(name, proto)`: the port of a service name for "tcp" or "udp".
#[must_use]
pub fn service_port(name: &str, proto: &str) -> Option<u16> {
    // glibc's getservbyname reads /etc/services ("files" is the only services source
    // in Debian's nsswitch.conf): first line whose name or alias matches, for `proto`.
    let text = std::fs::read_to_string("/etc/services").ok()?;
    services_lookup(&text, name, proto)
}

/// getservbyname over the text of an /etc/services file.
///
/// Not `system::parse_services`, which answers the other question (`getservbyport`: port
/// to official name, aliases ignored); this one matches aliases too and stops at the
/// first line that names the service.
#[must_use]
pub fn services_lookup(text: &str, name: &str, proto: &str) -> Option<u16> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let official = fields.next()?;
        let (port, p) = fields.next()?.split_once('/')?;
        if p != proto {
            return None;
        }
        let named = official == name || fields.any(|alias| alias == name);
        named.then(|| port.parse().ok()).flatten()
    })
}

/// Every address the system resolver gives for a host name (IPv4 and IPv6, in resolver
/// order); empty when it gives none.
#[must_use]
pub fn host_addrs(name: &str) -> Vec<IpAddr> {
    use std::net::ToSocketAddrs;
    if name.contains('\0') {
        return Vec::new();
    }
    before_resolver();
    // getaddrinfo rather than gethostbyname2: same files and DNS sources; the order of
    // several addresses of one family may differ (RFC 6724 sorting).
    (name, 0u16).to_socket_addrs().map(|it| it.map(|sa| sa.ip()).collect()).unwrap_or_default()
}

/// The index of the interface called `name` in this network namespace.
#[must_use]
pub fn ifindex(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok().filter(|&idx| idx != 0)
}

/// The cgroup v2 id of `path` (absolute, or relative to the cgroup2 mount).
#[must_use]
pub fn cgroup_id(path: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    // A cgroup v2 id is the kernfs node id, which the cgroup2 filesystem also reports
    // as the directory's inode number (64-bit kernels), so stat() gives what ss's
    // name_to_handle_at() does. ss tries the path as given, then under the mount.
    let mount = cgroup2_mount();
    let mut candidates = Vec::new();
    if path.starts_with('/') {
        candidates.push(PathBuf::from(path));
    }
    if let Some(m) = mount {
        candidates.push(m.join(path.trim_start_matches('/')));
    }
    candidates.into_iter().find_map(|p| std::fs::metadata(p).ok().map(|m| m.ino())).filter(|&id| id != 0)
}

/// The cgroup2 mount point from /proc/self/mountinfo.
///
/// `system::system_cgroups` finds the mount its own way, inline, from /proc/mounts (and
/// exposes no function for it). The two agree on an ordinary system; they could differ
/// in a chroot or for a mount point with escaped characters, so each keeps the file it
/// has always read.
fn cgroup2_mount() -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next() == Some("cgroup2"))
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// iproute2's `nl_proto_a2n()` by name on this machine: the lowest netlink protocol
/// number called `name` (case-sensitive) in its table (built in, overridden by
/// `nl_protos`).
#[must_use]
pub fn netlink_protocol(name: &str) -> Option<u8> {
    nl_proto_id(&system_nl_protos(), name)
}

/// `net.ipv4.ip_local_port_range`, `None` when unreadable.
///
/// Parsed as `u16`s with [`parse_port_range`] (the renderer's reading), where ss's
/// `is_ephemeral()` reads C `int`s: the same answer for anything the file can hold, since
/// the kernel's sysctl handler keeps both bounds within 1..=65535
/// (net/ipv4/sysctl_net_ipv4.c, `ip_local_port_range_min`/`_max`).
#[must_use]
pub fn ephemeral_ports() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    parse_port_range(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    static HOOK_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    #[test]
    fn the_resolver_hook_runs_once_before_the_first_host_lookup() {
        set_before_resolver(|| {
            HOOK_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let _ = host_addrs("localhost");
        let _ = host_addrs("localhost");
        before_resolver();
        assert_eq!(HOOK_RUNS.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn services_lookup_is_getservbyname() {
        assert_eq!(
            services_lookup("ssh 22/tcp # comment\nhttp 80/tcp www # WWW\nhttp 80/udp\n", "www", "tcp"),
            Some(80)
        );
        assert_eq!(services_lookup("ssh 22/tcp\n", "ssh", "udp"), None);
    }
}
