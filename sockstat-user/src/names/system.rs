//! The system's name database, read once per run as ss reads it: /etc/services and
//! /etc/protocols, iproute2's netlink protocol names and link-layer protocol table, the
//! interface names, the ephemeral port range, the cgroup2 hierarchy, process names of
//! netlink port ids, and (with `-r`) host names. Tests build a fixed one instead.

use std::collections::HashMap;
use std::net::IpAddr;

use super::hosts::HostNames;

/// Port, protocol, interface and process names, looked up the way ss does.
#[derive(Clone, Debug)]
pub struct Names {
    /// First /etc/services name per TCP port; `None` with `-n`.
    services: Option<HashMap<u16, String>>,
    /// The same for UDP (ss resolves with `getservbyport(port, "udp")` for UDP sockets).
    udp_services: Option<HashMap<u16, String>>,
    /// The same for any protocol (`getservbyport(port, NULL)`, [`PortKind::Any`]).
    any_services: Option<HashMap<u16, String>>,
    /// /etc/protocols: the name of each IP protocol (raw sockets' "port"); `None` with `-n`.
    protocols: Option<HashMap<u16, String>>,
    /// iproute2's netlink protocol names (/etc/iproute2/nl_protos over its built-in table).
    nl_protos: HashMap<u8, String>,
    /// `-n`: ss prints numbers for link-layer and netlink protocols and netlink port ids.
    numeric: bool,
    /// `net.ipv4.ip_local_port_range`: ss never names these ports.
    ephemeral: (u16, u16),
    /// Fixed interface names (tests, recorded dumps); `None` asks the kernel.
    ifnames: Option<HashMap<u32, String>>,
    /// Fixed process names by pid (tests); `None` reads /proc/PID/stat.
    comms: Option<HashMap<i32, String>>,
    /// cgroup v2 id -> path, built on first use by walking the cgroup2 mount, as ss's
    /// `cg_id_to_path()` does. A fixed (test) `Names` starts with an empty map.
    cgroups: std::sync::OnceLock<HashMap<u64, String>>,
    /// `-p`: socket inode -> the `("comm",pid=N,fd=N),...` list ss prints in `users:(...)`.
    owners: std::sync::Arc<dyn Users>,
    /// `-r`: host names, looked up on first use and cached for the run.
    pub hosts: HostNames,
    /// `--bpf-maps`, `--bpf-map-id`: the socket-local storage maps whose values can be
    /// printed, by id (a map missing here prints as ss's "failed to fetch info").
    bpf_maps: HashMap<u32, std::sync::Arc<crate::model::btf::StorageMapInfo>>,
}

/// Which /etc/services protocol, or /etc/protocols, names a port (ss's `dg_proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortKind {
    Tcp,
    Udp,
    /// Raw sockets: the "port" is the IP protocol number (ss's `RAW_PROTO`).
    Raw,
    /// No protocol (`dg_proto` NULL, as under `-E`): the first /etc/services entry for
    /// the port, whatever its protocol (`getservbyport(port, NULL)`).
    Any,
}

/// The owners of sockets as `-p` prints them: the `("comm",pid=N,fd=N),...` list of each
/// socket inode.
pub trait Users: Send + Sync + std::fmt::Debug {
    /// Whether any process holds `inode`.
    fn holds(&self, inode: u32) -> bool;
    /// Appends `inode`'s list (nothing if none holds it); whether any holds it.
    fn push(&self, out: &mut String, inode: u32) -> bool;
    /// The length of `inode`'s list, if any holds it (what [`Users::push`] would append).
    fn len(&self, inode: u32) -> Option<usize> {
        let mut out = String::new();
        self.push(&mut out, inode).then_some(out.len())
    }
}

impl Users for rustc_hash::FxHashMap<u32, String> {
    fn holds(&self, inode: u32) -> bool {
        self.contains_key(&inode)
    }
    fn push(&self, out: &mut String, inode: u32) -> bool {
        self.get(&inode).map(|list| out.push_str(list)).is_some()
    }
}

impl Names {
    /// Reads /etc/services, /etc/protocols (unless `numeric`), iproute2's nl_protos and the
    /// ephemeral range, as ss would.
    #[must_use]
    pub fn system(numeric: bool) -> Self {
        let services_text =
            if numeric { String::new() } else { std::fs::read_to_string("/etc/services").unwrap_or_default() };
        let protocols =
            (!numeric).then(|| parse_protocols(&std::fs::read_to_string("/etc/protocols").unwrap_or_default()));
        let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| parse_port_range(&t))
            // ss's fallback when the file cannot be read.
            .unwrap_or((1024, 4999));
        Names {
            services: (!numeric).then(|| parse_services(&services_text, Some("tcp"))),
            udp_services: (!numeric).then(|| parse_services(&services_text, Some("udp"))),
            any_services: (!numeric).then(|| parse_services(&services_text, None)),
            protocols,
            nl_protos: system_nl_protos(),
            numeric,
            ephemeral,
            ifnames: None,
            comms: None,
            cgroups: std::sync::OnceLock::new(),
            owners: std::sync::Arc::new(rustc_hash::FxHashMap::<u32, String>::default()),
            hosts: HostNames::system(),
            bpf_maps: HashMap::new(),
        }
    }

    /// Names from given data: `services` is /etc/services text (`None` for `-n`).
    #[must_use]
    pub fn fixed(services: Option<&str>, ephemeral: (u16, u16), ifnames: &[(u32, &str)]) -> Self {
        Names {
            services: services.map(|t| parse_services(t, Some("tcp"))),
            udp_services: services.map(|t| parse_services(t, Some("udp"))),
            any_services: services.map(|t| parse_services(t, None)),
            protocols: services.map(|_| HashMap::new()),
            nl_protos: nl_protos(""),
            numeric: services.is_none(),
            ephemeral,
            ifnames: Some(ifnames.iter().map(|&(i, n)| (i, n.to_owned())).collect()),
            comms: Some(HashMap::new()),
            cgroups: std::sync::OnceLock::from(HashMap::new()),
            owners: std::sync::Arc::new(rustc_hash::FxHashMap::<u32, String>::default()),
            hosts: HostNames::fixed(&[]),
            bpf_maps: HashMap::new(),
        }
    }

    /// [`Names::fixed`] plus /etc/protocols text and process names by pid.
    #[must_use]
    pub fn with_protocols_and_comms(mut self, protocols: &str, comms: &[(i32, &str)]) -> Self {
        if !self.numeric {
            self.protocols = Some(parse_protocols(protocols));
        }
        self.comms = Some(comms.iter().map(|&(p, c)| (p, c.to_owned())).collect());
        self
    }

    /// The owners `-p` prints, by socket inode: texts made beforehand (found by
    /// `sys::owners`), or anything that writes them when a row is printed.
    #[must_use]
    pub fn with_owners(mut self, owners: impl Users + 'static) -> Self {
        self.owners = std::sync::Arc::new(owners);
        self
    }

    /// The socket-local storage maps whose values `--bpf-maps` prints, by id.
    #[must_use]
    pub fn with_bpf_maps(mut self, maps: HashMap<u32, std::sync::Arc<crate::model::btf::StorageMapInfo>>) -> Self {
        self.bpf_maps = maps;
        self
    }

    /// A socket-local storage map's value size and BTF, if it could be looked up.
    #[must_use]
    pub fn bpf_map(&self, id: u32) -> Option<&crate::model::btf::StorageMapInfo> {
        self.bpf_maps.get(&id).map(std::sync::Arc::as_ref)
    }

    /// Fixed host names for `-r` (tests); other addresses have none.
    #[must_use]
    pub fn with_hosts(self, hosts: &[(IpAddr, &str)]) -> Self {
        Names { hosts: HostNames::fixed(hosts), ..self }
    }

    /// Fixed cgroup paths by id (tests).
    #[must_use]
    pub fn with_cgroups(self, cgroups: &[(u64, &str)]) -> Self {
        let map: HashMap<u64, String> = cgroups.iter().map(|&(i, p)| (i, p.to_owned())).collect();
        Names { cgroups: std::sync::OnceLock::from(map), ..self }
    }

    /// ss's `cg_id_to_path()`: the cgroup's path under the cgroup2 mount (`/` for the
    /// root), or `unreachable:ID` (hex).
    #[must_use]
    pub fn cgroup_path(&self, id: u64) -> String {
        let mut out = String::new();
        self.push_cgroup_path(&mut out, id);
        out
    }

    /// Appends [`Names::cgroup_path`] to `out` (`-e` prints one per row).
    pub fn push_cgroup_path(&self, out: &mut String, id: u64) {
        match self.cgroups.get_or_init(system_cgroups).get(&id) {
            Some(path) => out.push_str(path),
            None => {
                use std::fmt::Write as _;
                // Writing to a String cannot fail.
                let _ = write!(out, "unreachable:{id:x}");
            }
        }
    }

    /// `users:(...)` for a socket inode, with its leading space; empty if no process
    /// holds it (or `-p` was not given).
    pub fn users(&self, inode: u32) -> String {
        let mut out = String::new();
        self.push_users(&mut out, inode);
        out
    }

    /// Appends [`Names::users`] to `out` (a query prints one per row).
    pub fn push_users(&self, out: &mut String, inode: u32) {
        if inode == 0 {
            return;
        }
        // One lookup: the list is written after its opening, which goes if there is none.
        let at = out.len();
        out.push_str(" users:(");
        if self.owners.push(out, inode) {
            out.push(')');
        } else {
            out.truncate(at);
        }
    }

    /// The length of what [`Names::push_users`] appends.
    #[must_use]
    pub fn users_len(&self, inode: u32) -> usize {
        if inode == 0 {
            return 0;
        }
        self.owners.len(inode).map_or(0, |n| " users:(".len() + n + 1)
    }

    /// ss's `resolve_service()` for TCP: `*` for 0, the service name outside the ephemeral
    /// range, else the number.
    #[must_use]
    pub fn port(&self, port: u16) -> String {
        self.port_of(PortKind::Tcp, port)
    }

    /// ss's `resolve_service()` with `dg_proto` set for the table being printed.
    #[must_use]
    pub fn port_of(&self, kind: PortKind, port: u16) -> String {
        if port == 0 {
            return "*".to_owned();
        }
        let services = match kind {
            PortKind::Tcp => &self.services,
            PortKind::Udp => &self.udp_services,
            PortKind::Any => &self.any_services,
            // inet_proto_n2a(): getprotobynumber, or "ipproto-N".
            PortKind::Raw => {
                return match &self.protocols {
                    None => port.to_string(),
                    Some(p) => p.get(&port).cloned().unwrap_or_else(|| format!("ipproto-{port}")),
                };
            }
        };
        let (lo, hi) = self.ephemeral;
        if let Some(services) = services
            && !(lo..=hi).contains(&port)
            && let Some(name) = services.get(&port)
        {
            return name.clone();
        }
        port.to_string()
    }

    /// iproute2's `ll_index_to_name()`: the interface name, or `if<N>` if unknown.
    #[must_use]
    pub fn ifname(&self, ifindex: u32) -> String {
        let name = match &self.ifnames {
            Some(map) => map.get(&ifindex).cloned(),
            None => system_ifname(ifindex),
        };
        name.unwrap_or_else(|| format!("if{ifindex}"))
    }

    /// iproute2's `ll_proto_n2a()`: the link-layer protocol name, or `[N]` (always with -n).
    #[must_use]
    pub fn ll_proto(&self, proto: u16) -> String {
        if !self.numeric
            && let Some(&(_, name)) = LL_PROTOS.iter().find(|&&(id, _)| id == proto)
        {
            return name.to_owned();
        }
        format!("[{proto}]")
    }

    /// iproute2's `nl_proto_n2a()`: the netlink protocol name, or its number.
    #[must_use]
    pub fn nl_proto(&self, proto: u8) -> String {
        if !self.numeric
            && let Some(name) = self.nl_protos.get(&proto)
        {
            return name.clone();
        }
        proto.to_string()
    }

    /// What ss's `netlink_show_one` prints for a port id: `*` for -1, `kernel` for 0,
    /// `comm/pid` for a live process, else the number (always the number with -n).
    #[must_use]
    pub fn netlink_port(&self, pid: i32) -> String {
        if pid == -1 {
            return "*".to_owned();
        }
        if self.numeric {
            return pid.to_string();
        }
        if pid == 0 {
            return "kernel".to_owned();
        }
        if pid > 0 {
            let comm = match &self.comms {
                Some(map) => map.get(&pid).cloned(),
                None => std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|t| stat_comm(&t)),
            };
            if let Some(comm) = comm {
                return format!("{comm}/{pid}");
            }
        }
        pid.to_string()
    }
}

/// Every directory of the cgroup2 mount by cgroup id. A cgroup2 directory's inode number
/// is its cgroup id (kernfs: `kernfs_ino` is the node id on 64-bit), which is what ss's
/// `get_cgroup2_id()` reads through `name_to_handle_at`. The walk stays on the mount
/// (`FTW_MOUNT`); unreadable directories are skipped.
#[must_use]
pub fn system_cgroups() -> HashMap<u64, String> {
    use std::os::unix::fs::MetadataExt;
    let mut map = HashMap::new();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let Some(mnt) = mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, dir, ty) = (f.next()?, f.next()?, f.next()?);
        (ty == "cgroup2").then(|| dir.to_owned())
    }) else {
        return map;
    };
    let Ok(root) = std::fs::metadata(&mnt) else { return map };
    let mut stack = vec![std::path::PathBuf::from(&mnt)];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else { continue };
        if meta.dev() != root.dev() {
            continue;
        }
        let rel = dir.to_string_lossy().get(mnt.len()..).unwrap_or_default().to_owned();
        map.insert(meta.ino(), if rel.is_empty() { "/".to_owned() } else { rel });
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
    map
}

/// ss reads `%*d (%[^)])` from /proc/PID/stat: the command up to the first `)`.
fn stat_comm(stat: &str) -> Option<String> {
    let rest = stat.split_once('(')?.1;
    let comm = rest.split(')').next()?;
    // `%[^)]` must match at least one character.
    (!comm.is_empty()).then(|| comm.to_owned())
}

/// iproute2 lib/ll_proto.c `llproto_names[]`, in its order (the first match wins).
const LL_PROTOS: &[(u16, &str)] = &[
    (0x0060, "loop"),
    (0x0200, "pup"),
    (0x0201, "pupat"),
    (0x0800, "ip"),
    (0x0805, "x25"),
    (0x0806, "arp"),
    (0x08ff, "bpq"),
    (0x0a00, "ieeepup"),
    (0x0a01, "ieeepupat"),
    (0x6000, "dec"),
    (0x6001, "dna_dl"),
    (0x6002, "dna_rc"),
    (0x6003, "dna_rt"),
    (0x6004, "lat"),
    (0x6005, "diag"),
    (0x6006, "cust"),
    (0x6007, "sca"),
    (0x8035, "rarp"),
    (0x809b, "atalk"),
    (0x80f3, "aarp"),
    (0x8137, "ipx"),
    (0x86dd, "ipv6"),
    (0x8863, "ppp_disc"),
    (0x8864, "ppp_ses"),
    (0x884c, "atmmpoa"),
    (0x8884, "atmfate"),
    (0x0001, "802_3"),
    (0x0002, "ax25"),
    (0x0003, "all"),
    (0x0004, "802_2"),
    (0x0005, "snap"),
    (0x0006, "ddcmp"),
    (0x0007, "wan_ppp"),
    (0x0008, "ppp_mp"),
    (0x0009, "localtalk"),
    (0x000c, "can"),
    (0x0010, "ppptalk"),
    (0x0011, "tr_802_2"),
    (0x0015, "mobitex"),
    (0x0016, "control"),
    (0x0017, "irda"),
    (0x0018, "econet"),
    (0x88ca, "tipc"),
    (0x8892, "profinet"),
    (0x88a2, "aoe"),
    (0x88a4, "ethercat"),
    (0x8100, "802.1Q"),
    (0x88a8, "802.1ad"),
    (0x8847, "mpls_uc"),
    (0x8848, "mpls_mc"),
    (0x6558, "teb"),
    (0x88cc, "LLDP"),
];

/// iproute2's `ll_proto_a2n()` by name: the first entry of its table called `name`,
/// compared as `strcasecmp` does (numbers are the caller's).
#[must_use]
pub fn ll_proto_id(name: &str) -> Option<u16> {
    LL_PROTOS.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|&(id, _)| id)
}

/// iproute2's netlink protocol names on this machine: the built-in table overridden by
/// the nl_protos file (iproute2 6.1 reads CONF_ETC_DIR/nl_protos, then CONF_USR_DIR's if
/// that is absent).
pub fn system_nl_protos() -> HashMap<u8, String> {
    let text = std::fs::read_to_string("/etc/iproute2/nl_protos")
        .or_else(|_| std::fs::read_to_string("/usr/share/iproute2/nl_protos"))
        .unwrap_or_default();
    nl_protos(&text)
}

/// iproute2's `nl_proto_a2n()` by name: it scans its table from protocol 0 up and takes
/// the first exact (case-sensitive) match.
pub fn nl_proto_id(table: &HashMap<u8, String>, name: &str) -> Option<u8> {
    table.iter().filter(|(_, n)| n.as_str() == name).map(|(&id, _)| id).min()
}

/// iproute2 lib/rt_names.c `nl_proto_tab[]`, overridden by the nl_protos file's lines
/// (`rtnl_tab_initialize`: `ID NAME`, decimal or 0x-hex, `#` comments).
fn nl_protos(text: &str) -> HashMap<u8, String> {
    let builtin: &[(u8, &str)] = &[
        (0, "rtnl"),
        (1, "unused"),
        (2, "usersock"),
        (3, "fw"),
        (4, "tcpdiag"),
        (5, "nflog"),
        (6, "xfrm"),
        (7, "selinux"),
        (8, "iscsi"),
        (9, "audit"),
        (10, "fiblookup"),
        (11, "connector"),
        (12, "nft"),
        (13, "ip6fw"),
        (14, "dec-rt"),
        (15, "uevent"),
        (16, "genl"),
        (18, "scsi-trans"),
        (19, "ecryptfs"),
        (20, "rdma"),
        (21, "crypto"),
    ];
    let mut map: HashMap<u8, String> = builtin.iter().map(|&(i, n)| (i, n.to_owned())).collect();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(id), Some(name)) = (f.next(), f.next()) else { continue };
        let id = match id.strip_prefix("0x") {
            Some(hex) => u8::from_str_radix(hex, 16).ok(),
            None => id.parse::<u8>().ok(),
        };
        if let Some(id) = id {
            map.insert(id, name.to_owned());
        }
    }
    map
}

fn system_ifname(ifindex: u32) -> Option<String> {
    // Not nix's if_indextoname: it checks the result against nix's pointer sentinel
    // (-1), not NULL, so an index with no device comes back as an empty name.
    let mut buf = [0u8; libc::IF_NAMESIZE];
    // SAFETY: if_indextoname writes at most IF_NAMESIZE bytes, NUL included, into the
    // buffer, which is that long; it returns NULL (and writes nothing usable) on failure.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr().cast()) };
    if p.is_null() {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// /etc/services lines are `name port/proto [aliases] [# comment]`; glibc's
/// `getservbyport` returns the first match in file order (of any protocol when `want` is
/// `None`, as for a NULL protocol).
fn parse_services(text: &str, want: Option<&str>) -> HashMap<u16, String> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((port, proto)) = port_proto.split_once('/') else {
            continue;
        };
        if want.is_some_and(|w| w != proto) {
            continue;
        }
        if let Ok(port) = port.parse::<u16>() {
            map.entry(port).or_insert_with(|| name.to_owned());
        }
    }
    map
}

/// /etc/protocols lines are `name number [aliases] [# comment]`; `getprotobynumber`
/// returns the first match's official name.
fn parse_protocols(text: &str) -> HashMap<u16, String> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        if let (Some(name), Some(Ok(num))) = (fields.next(), fields.next().map(str::parse::<u16>)) {
            map.entry(num).or_insert_with(|| name.to_owned());
        }
    }
    map
}

pub fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) => Some((lo, hi)),
        _ => None,
    }
}
