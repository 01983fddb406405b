//! ss-compatible output: a two-pass column renderer (ss.c's `out()`/`field_next()` buffer,
//! `render_calc_width()` and `render()`), writing to any `io::Write`, and the inet
//! columns ss prints for TCP sockets (`sock_state_print`, `inet_addr_print`,
//! `resolve_service`).
//!
//! The bar is byte-identical output with iproute2 6.1's `ss` for the same sockets: the
//! same column widths, alignment, delimiters and trailing spaces. Pass one collects every
//! field of every line and measures each column; pass two prints. When stdout is not a
//! terminal ss prints "compact" columns (content width plus delimiter); on a terminal it
//! spreads the spare width over the columns: [`Options::screen_width`] chooses which.
//!
//! Names come from [`Names`]: /etc/services for ports (as ss's `getservbyport(port,
//! "tcp")`, skipping the ephemeral range as ss does), the kernel for interface names.
//! Host names are never resolved (that is `-r`, refused by `query::check_supported`).

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv6Addr};

use crate::cli::Options;
use crate::socket::{InetSocket, NetlinkSocket, PacketSocket, Snapshot, UnixSocket, VsockSocket};
use sockstat_ebpf::TcpState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// ss.c `columns[]`: alignment, header, left delimiter.
struct ColumnSpec {
    align: Align,
    header: &'static str,
    ldelim: &'static str,
}

const COL_NETID: usize = 0;
const COL_STATE: usize = 1;
const COL_RECVQ: usize = 2;
const COL_SENDQ: usize = 3;
const COL_ADDR: usize = 4;
const COL_SERV: usize = 5;
const COL_RADDR: usize = 6;
const COL_RSERV: usize = 7;
/// Extra per-socket text (`-o`, `-e`, `-p` ...). Its header is "Process".
const COL_EXT: usize = 8;
/// Always empty for inet sockets; it closes every line.
const COL_PROC: usize = 9;
const COL_MAX: usize = 10;

const COLUMNS: [ColumnSpec; COL_MAX] = [
    ColumnSpec {
        align: Align::Left,
        header: "Netid",
        ldelim: "",
    },
    ColumnSpec {
        align: Align::Left,
        header: "State",
        ldelim: " ",
    },
    ColumnSpec {
        align: Align::Left,
        header: "Recv-Q",
        ldelim: " ",
    },
    ColumnSpec {
        align: Align::Left,
        header: "Send-Q",
        ldelim: " ",
    },
    ColumnSpec {
        align: Align::Right,
        header: "Local Address:",
        ldelim: " ",
    },
    ColumnSpec {
        align: Align::Left,
        header: "Port",
        ldelim: "",
    },
    ColumnSpec {
        align: Align::Right,
        header: "Peer Address:",
        ldelim: " ",
    },
    ColumnSpec {
        align: Align::Left,
        header: "Port",
        ldelim: "",
    },
    ColumnSpec {
        align: Align::Left,
        header: "Process",
        ldelim: "",
    },
    ColumnSpec {
        align: Align::Left,
        header: "",
        ldelim: "",
    },
];

/// Pass one of ss's renderer: every line's fields, kept until the widths are known.
struct Grid {
    disabled: [bool; COL_MAX],
    rows: Vec<[String; COL_MAX]>,
    /// Whether the last row is a socket (not the header). ss never flushes the last
    /// field it writes, so that row's Process field is not measured: see [`Grid::widths`].
    last_is_data: bool,
}

impl Grid {
    fn new(disabled: [bool; COL_MAX], header: bool) -> Self {
        let mut rows = Vec::new();
        if header {
            // print_header(): every enabled column but the last gets its header.
            rows.push(std::array::from_fn(|c| {
                if c == COL_PROC {
                    String::new()
                } else {
                    COLUMNS[c].header.to_owned()
                }
            }));
        }
        Grid {
            disabled,
            rows,
            last_is_data: false,
        }
    }

    fn push(&mut self, row: [String; COL_MAX]) {
        self.rows.push(row);
        self.last_is_data = true;
    }

    /// `render_calc_width()`. Widths are in bytes, as ss counts them.
    fn widths(&self, screen_width: Option<usize>) -> [usize; COL_MAX] {
        let mut max_len = [0usize; COL_MAX];
        let last = self.rows.len().saturating_sub(1);
        for (r, row) in self.rows.iter().enumerate() {
            // field_flush() measures a field when the next one starts; the field being
            // written when render() runs is never measured (COL_EXT after a socket,
            // COL_PROC after the header).
            let unflushed = if r != last {
                COL_MAX
            } else if self.last_is_data {
                COL_EXT
            } else {
                COL_PROC
            };
            for c in (0..unflushed).filter(|&c| !self.disabled[c]) {
                max_len[c] = max_len[c].max(row[c].len());
            }
        }

        let screen = screen_width.unwrap_or(usize::MAX);
        let mut width = [0usize; COL_MAX];
        let mut first = true;
        for c in (0..COL_MAX).filter(|&c| !self.disabled[c]) {
            width[c] = if !first && max_len[c] > 0 {
                max_len[c] + COLUMNS[c].ldelim.len()
            } else {
                max_len[c]
            };
            // A field wider than the screen starts its own line and wraps.
            width[c] = width[c].min(screen);
            if width[c] > 0 {
                first = false;
            }
        }
        if screen_width.is_some() {
            spread(&mut width, screen);
        }
        width
    }

    /// `render()`: pass two.
    fn write(&self, screen_width: Option<usize>, out: &mut dyn Write) -> io::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let width = self.widths(screen_width);
        let mut text = Vec::new();
        for row in &self.rows {
            let mut line_started = false;
            for c in (0..COL_MAX).filter(|&c| !self.disabled[c]) {
                let spec = &COLUMNS[c];
                let field = row[c].as_bytes();
                // The delimiter is printed even for a zero-width column, as ss does.
                let mut printed = 0;
                if line_started {
                    text.extend_from_slice(spec.ldelim.as_bytes());
                    printed = spec.ldelim.len();
                }
                line_started = true;
                if width[c] > 0 && spec.align == Align::Right {
                    let pad = width[c].saturating_sub(field.len() + printed);
                    text.resize(text.len() + pad, b' ');
                    printed += pad;
                }
                text.extend_from_slice(field);
                printed += field.len();
                if width[c] > 0 && spec.align == Align::Left {
                    text.resize(text.len() + width[c].saturating_sub(printed), b' ');
                }
            }
            text.push(b'\n');
        }
        out.write_all(&text)
    }
}

/// The second pass of `render_calc_width()`, for a terminal `screen` columns wide: break
/// the columns into lines that fit and spread each line's spare width over its columns,
/// the remainder going to the rightmost ones first.
fn spread(width: &mut [usize; COL_MAX], screen: usize) {
    // `eol` is one past the last column of the previous line (ss keeps a pointer to it).
    let mut eol = 0;
    let mut len = 0;
    let mut linecols = 0;
    let mut c = 0;
    while c < COL_MAX {
        if width[c] == 0 {
            c += 1;
            continue;
        }
        linecols += 1;
        len += width[c];
        let last = !width[c + 1..].iter().any(|&w| w > 0);
        if !last && len < screen {
            c += 1;
            continue;
        }
        if len != screen {
            let mut end = c;
            if len > screen {
                // This column does not fit: end the line before it and retry it on the next.
                len -= width[c];
                linecols -= 1;
                end = c.saturating_sub(1);
            }
            let pad = screen - len;
            // linecols is never 0 here (a column is never wider than the screen), but a
            // division must not be able to panic.
            if let (Some(spacing), Some(mut rem)) =
                (pad.checked_div(linecols), pad.checked_rem(linecols))
            {
                for w in width[eol..=end].iter_mut().rev().filter(|w| **w > 0) {
                    *w += spacing;
                    if rem > 0 {
                        *w += 1;
                        rem -= 1;
                    }
                }
            }
            c = end;
        }
        eol = c + 1;
        len = 0;
        linecols = 0;
        c += 1;
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

/// glibc's `inet_ntop(AF_INET6)`, which ss uses: like RFC 5952, except that an address
/// whose first 96 bits are zero (other than `::` and `::1`-like ones) is written with a
/// dotted quad (`::1.2.3.4`), which Rust's `Display` does not do.
#[must_use]
pub fn inet6_ntop(addr: &Ipv6Addr) -> String {
    use std::fmt::Write as _;
    let words = addr.segments();
    // The longest run of zero words (the first of equal runs), if at least two long.
    let mut best: Option<(usize, usize)> = None;
    let mut cur: Option<(usize, usize)> = None;
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            cur = Some(cur.map_or((i, 1), |(b, l)| (b, l + 1)));
        } else if let Some(run) = cur.take()
            && best.is_none_or(|(_, l)| run.1 > l)
        {
            best = Some(run);
        }
    }
    if let Some(run) = cur
        && best.is_none_or(|(_, l)| run.1 > l)
    {
        best = Some(run);
    }
    let best = best.filter(|&(_, l)| l >= 2);

    let mut s = String::with_capacity(39);
    for (i, &w) in words.iter().enumerate() {
        if let Some((base, len)) = best
            && (base..base + len).contains(&i)
        {
            if i == base {
                s.push(':');
            }
            continue;
        }
        if i != 0 {
            s.push(':');
        }
        if i == 6
            && best.is_some_and(|(base, len)| {
                base == 0 && (len == 6 || (len == 5 && words[5] == 0xffff))
            })
        {
            let o = addr.octets();
            let _ = write!(s, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
            return s;
        }
        let _ = write!(s, "{w:x}");
    }
    if best.is_some_and(|(base, len)| base + len == 8) {
        s.push(':');
    }
    s
}

/// ss's `inet_addr_print()` address text (without `%dev` and `:`).
///
/// The unspecified IPv6 address prints as `*` unless the socket is v6-only: a dual-stack
/// `[::]` listener accepts IPv4 too, and ss says so.
#[must_use]
pub fn addr_text(addr: &IpAddr, v6only: bool) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) if a.is_unspecified() && !v6only => "*".to_owned(),
        IpAddr::V6(a) => format!("[{}]", inet6_ntop(a)),
    }
}

/// Whether the socket is IPV6_V6ONLY, which only changes how `::` prints: sock_diag's
/// INET_DIAG_SKV6ONLY, or `skc_ipv6only` as the eBPF program read it.
fn v6only(s: &InetSocket) -> bool {
    s.v6only
}

/// Port, protocol, interface and process names, looked up the way ss does.
#[derive(Clone, Debug)]
pub struct Names {
    /// First /etc/services name per TCP port; `None` with `-n`.
    services: Option<HashMap<u16, String>>,
    /// The same for UDP (ss resolves with `getservbyport(port, "udp")` for UDP sockets).
    udp_services: Option<HashMap<u16, String>>,
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
}

/// Which /etc/services protocol, or /etc/protocols, names a port (ss's `dg_proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortKind {
    Tcp,
    Udp,
    /// Raw sockets: the "port" is the IP protocol number (ss's `RAW_PROTO`).
    Raw,
}

impl Names {
    /// Reads /etc/services, /etc/protocols (unless `numeric`), iproute2's nl_protos and the
    /// ephemeral range, as ss would.
    #[must_use]
    pub fn system(numeric: bool) -> Self {
        let services_text = if numeric { String::new() } else { std::fs::read_to_string("/etc/services").unwrap_or_default() };
        let protocols = (!numeric)
            .then(|| parse_protocols(&std::fs::read_to_string("/etc/protocols").unwrap_or_default()));
        let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|t| parse_port_range(&t))
            // ss's fallback when the file cannot be read.
            .unwrap_or((1024, 4999));
        // iproute2 6.1 reads CONF_ETC_DIR/nl_protos, then CONF_USR_DIR's if that is absent.
        let nl_text = std::fs::read_to_string("/etc/iproute2/nl_protos")
            .or_else(|_| std::fs::read_to_string("/usr/share/iproute2/nl_protos"))
            .unwrap_or_default();
        Names {
            services: (!numeric).then(|| parse_services(&services_text, "tcp")),
            udp_services: (!numeric).then(|| parse_services(&services_text, "udp")),
            protocols,
            nl_protos: nl_protos(&nl_text),
            numeric,
            ephemeral,
            ifnames: None,
            comms: None,
        }
    }

    /// Names from given data: `services` is /etc/services text (`None` for `-n`).
    #[must_use]
    pub fn fixed(services: Option<&str>, ephemeral: (u16, u16), ifnames: &[(u32, &str)]) -> Self {
        Names {
            services: services.map(|t| parse_services(t, "tcp")),
            udp_services: services.map(|t| parse_services(t, "udp")),
            protocols: services.map(|_| HashMap::new()),
            nl_protos: nl_protos(""),
            numeric: services.is_none(),
            ephemeral,
            ifnames: Some(ifnames.iter().map(|&(i, n)| (i, n.to_owned())).collect()),
            comms: Some(HashMap::new()),
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

/// ss reads `%*d (%[^)])` from /proc/PID/stat: the command up to the first `)`.
fn stat_comm(stat: &str) -> Option<String> {
    let rest = stat.split_once('(')?.1;
    let comm = rest.split(')').next()?;
    // `%[^)]` must match at least one character.
    (!comm.is_empty()).then(|| comm.to_owned())
}

/// iproute2 lib/ll_proto.c `llproto_names[]`, in its order (the first match wins).
const LL_PROTOS: &[(u16, &str)] = &[
    (0x0060, "loop"), (0x0200, "pup"), (0x0201, "pupat"), (0x0800, "ip"), (0x0805, "x25"),
    (0x0806, "arp"), (0x08ff, "bpq"), (0x0a00, "ieeepup"), (0x0a01, "ieeepupat"), (0x6000, "dec"),
    (0x6001, "dna_dl"), (0x6002, "dna_rc"), (0x6003, "dna_rt"), (0x6004, "lat"), (0x6005, "diag"),
    (0x6006, "cust"), (0x6007, "sca"), (0x8035, "rarp"), (0x809b, "atalk"), (0x80f3, "aarp"),
    (0x8137, "ipx"), (0x86dd, "ipv6"), (0x8863, "ppp_disc"), (0x8864, "ppp_ses"), (0x884c, "atmmpoa"),
    (0x8884, "atmfate"), (0x0001, "802_3"), (0x0002, "ax25"), (0x0003, "all"), (0x0004, "802_2"),
    (0x0005, "snap"), (0x0006, "ddcmp"), (0x0007, "wan_ppp"), (0x0008, "ppp_mp"), (0x0009, "localtalk"),
    (0x000c, "can"), (0x0010, "ppptalk"), (0x0011, "tr_802_2"), (0x0015, "mobitex"), (0x0016, "control"),
    (0x0017, "irda"), (0x0018, "econet"), (0x88ca, "tipc"), (0x8892, "profinet"), (0x88a2, "aoe"),
    (0x88a4, "ethercat"), (0x8100, "802.1Q"), (0x88a8, "802.1ad"), (0x8847, "mpls_uc"), (0x8848, "mpls_mc"),
    (0x6558, "teb"), (0x88cc, "LLDP"),
];

/// iproute2 lib/rt_names.c `nl_proto_tab[]`, overridden by the nl_protos file's lines
/// (`rtnl_tab_initialize`: `ID NAME`, decimal or 0x-hex, `#` comments).
fn nl_protos(text: &str) -> HashMap<u8, String> {
    let builtin: &[(u8, &str)] = &[
        (0, "rtnl"), (1, "unused"), (2, "usersock"), (3, "fw"), (4, "tcpdiag"), (5, "nflog"),
        (6, "xfrm"), (7, "selinux"), (8, "iscsi"), (9, "audit"), (10, "fiblookup"), (11, "connector"),
        (12, "nft"), (13, "ip6fw"), (14, "dec-rt"), (15, "uevent"), (16, "genl"), (18, "scsi-trans"),
        (19, "ecryptfs"), (20, "rdma"), (21, "crypto"),
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
/// `getservbyport` returns the first match in file order.
fn parse_services(text: &str, want: &str) -> HashMap<u16, String> {
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
        if proto != want {
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

fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(str::parse::<u16>);
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) => Some((lo, hi)),
        _ => None,
    }
}

/// ss's `print_ms_timer()`.
fn ms_timer(timeout: u32) -> String {
    let mut secs = timeout / 1000;
    let minutes = secs / 60;
    secs %= 60;
    let mut msecs = timeout % 1000;
    let mut buf = String::new();
    if minutes != 0 {
        msecs = 0;
        buf.push_str(&format!("{minutes}min"));
        if minutes > 9 {
            secs = 0;
        }
    }
    if secs != 0 {
        if secs > 9 {
            msecs = 0;
        }
        buf.push_str(&format!("{secs}{}", if msecs != 0 { "." } else { "sec" }));
    }
    if msecs != 0 {
        buf.push_str(&format!("{msecs:03}ms"));
    }
    buf
}

/// ss's `tcp_timer_print()` for `-o` (inet sockets from sock_diag).
fn timer_text(s: &InetSocket) -> String {
    const NAMES: [&str; 6] = ["off", "on", "keepalive", "timewait", "persist", "unknown"];
    if s.timer == 0 {
        return String::new();
    }
    let t = usize::from(s.timer.min(5));
    format!(" timer:({},{},{})", NAMES[t], ms_timer(s.expires_ms), s.retrans)
}

/// The first four fields of every line: ss's `sock_state_print()`.
fn state_fields(row: &mut [String; COL_MAX], netid: &str, state: u8, rq: u32, wq: u32) {
    row[COL_NETID] = netid.to_owned();
    row[COL_STATE] = state_name(state).to_owned();
    // ss keeps the queues in an `int` and prints them with "%-6d".
    row[COL_RECVQ] = format!("{:<6}", rq.cast_signed());
    row[COL_SENDQ] = format!("{:<6}", wq.cast_signed());
}

/// The fields of one inet socket's line (`inet_stats_print`, plus `-o` timers).
fn inet_row(opts: &Options, s: &InetSocket, names: &Names, netid: &str, kind: PortKind) -> [String; COL_MAX] {
    let mut row: [String; COL_MAX] = Default::default();
    state_fields(&mut row, netid, s.state, s.rqueue, s.wqueue);
    let v6only = v6only(s);
    let mut local = addr_text(&s.src, v6only);
    if s.ifindex != 0 {
        local.push('%');
        local.push_str(&names.ifname(s.ifindex));
    }
    local.push(':');
    row[COL_ADDR] = local;
    let port = |p: u16| if opts.numeric { port_numeric(p) } else { names.port_of(kind, p) };
    row[COL_SERV] = port(s.sport);
    row[COL_RADDR] = addr_text(&s.dst, v6only) + ":";
    row[COL_RSERV] = port(s.dport);
    // Raw sockets come from /proc/net/raw(6), whose ss printer has no timers.
    if opts.show_options && kind != PortKind::Raw {
        row[COL_EXT] = timer_text(s);
    }
    row
}

fn port_numeric(port: u16) -> String {
    if port == 0 {
        "*".to_owned()
    } else {
        port.to_string()
    }
}

/// `unix_stats_print()`: the name (or `*`) and inode, the peer's `*` and inode. ss joins
/// address and port with a space here, not a colon.
fn unix_row(s: &UnixSocket) -> [String; COL_MAX] {
    let mut row: [String; COL_MAX] = Default::default();
    let netid = match s.kind {
        1 => "u_str",
        5 => "u_seq",
        _ => "u_dgr",
    };
    state_fields(&mut row, netid, s.state, s.rqueue, s.wqueue);
    // Abstract names print with '@' for each NUL, paths up to their first NUL (%s).
    row[COL_ADDR] = s.display_name().unwrap_or_else(|| "*".to_owned()) + " ";
    row[COL_SERV] = s.inode.to_string();
    // The netlink path never resolves the peer's name (only ss's /proc/net/unix path does).
    row[COL_RADDR] = "* ".to_owned();
    row[COL_RSERV] = s.peer.to_string();
    row
}

/// `packet_stats_print()` and, with `-b`, `packet_show_sock()`'s filter dump.
fn packet_row(opts: &Options, s: &PacketSocket, names: &Names) -> [String; COL_MAX] {
    let mut row: [String; COL_MAX] = Default::default();
    // SOCK_RAW is 3; ss calls every other type p_dgr.
    let netid = if s.kind == 3 { "p_raw" } else { "p_dgr" };
    // Packet sockets are always UNCONN for ss; Send-Q is never filled in.
    state_fields(&mut row, netid, 7, s.rqueue, 0);
    let addr = if s.protocol == 3 { "*".to_owned() } else { names.ll_proto(s.protocol) };
    row[COL_ADDR] = addr + ":";
    row[COL_SERV] = if s.ifindex == 0 { "*".to_owned() } else { names.ifname(s.ifindex) };
    row[COL_RADDR] = "*".to_owned();
    if opts.show_bpf
        && let Some(filter) = &s.filter
    {
        let mut ext = if opts.oneline { " bpf filter (" } else { "\n\tbpf filter (" }.to_owned();
        ext.push_str(&format!("{}): ", filter.len()));
        for i in filter {
            ext.push_str(&format!(" 0x{:02x} {} {} {},", i.code, i.jt, i.jf, i.k));
        }
        if opts.bpf_disasm {
            for (n, insn) in filter.iter().enumerate() {
                ext.push_str(if opts.oneline { " " } else { "\n\t" });
                ext.push_str(&crate::cbpf::image(insn, n));
                if opts.oneline {
                    ext.push(';');
                }
            }
        }
        row[COL_EXT] = ext;
    }
    row
}

/// `netlink_show_one()`.
fn netlink_row(s: &NetlinkSocket, names: &Names) -> [String; COL_MAX] {
    let mut row: [String; COL_MAX] = Default::default();
    state_fields(&mut row, "nl", 7, s.rqueue, s.wqueue);
    row[COL_ADDR] = names.nl_proto(s.protocol) + ":";
    row[COL_SERV] = names.netlink_port(s.portid);
    // NETLINK_CONNECTED = 1: ss prints the destination group and port id as numbers.
    if s.state == 1 {
        row[COL_RADDR] = format!("{}:", s.dst_group.cast_signed());
        row[COL_RSERV] = s.dst_portid.to_string();
    } else {
        row[COL_RADDR] = "*".to_owned();
    }
    row
}

/// `vsock_stats_print()`.
fn vsock_row(s: &VsockSocket) -> [String; COL_MAX] {
    let mut row: [String; COL_MAX] = Default::default();
    let netid = match s.kind {
        1 => "v_str",
        2 => "v_dgr",
        _ => "???",
    };
    // ss fills neither queue for vsock.
    state_fields(&mut row, netid, s.state, 0, 0);
    let any = |v: u32| if v == u32::MAX { "*".to_owned() } else { v.to_string() };
    row[COL_ADDR] = any(s.src_cid) + ":";
    row[COL_SERV] = any(s.src_port);
    row[COL_RADDR] = any(s.dst_cid) + ":";
    row[COL_RSERV] = any(s.dst_port);
    row
}

/// Prints `sockets` as `ss -t` does for `opts` (header, Netid/State columns as selected,
/// service names unless `-n`), with names from the system. The sockets are printed in the
/// order given: select and order them first (`query::select`).
///
/// # Errors
/// Any error writing to `out`.
pub fn render_inet(opts: &Options, sockets: &[InetSocket], out: &mut dyn Write) -> io::Result<()> {
    render_inet_with(opts, sockets, &Names::system(opts.numeric), out)
}

/// [`render_inet`] with the given [`Names`].
///
/// # Errors
/// Any error writing to `out`.
pub fn render_inet_with(
    opts: &Options,
    sockets: &[InetSocket],
    names: &Names,
    out: &mut dyn Write,
) -> io::Result<()> {
    let snap = Snapshot { tcp: sockets.to_vec(), ..Snapshot::default() };
    render_with(opts, &snap, names, out)
}

/// Prints every table of `snap` in ss's order (netlink, packet, UNIX, raw, UDP, TCP,
/// DCCP, SCTP, vsock, MPTCP: ss.c `main()`), as one grid: the column widths are measured
/// over all of them, as ss's single render buffer does.
///
/// # Errors
/// Any error writing to `out`.
pub fn render(opts: &Options, snap: &Snapshot, out: &mut dyn Write) -> io::Result<()> {
    render_with(opts, snap, &Names::system(opts.numeric), out)
}

/// [`render`] with the given [`Names`].
///
/// # Errors
/// Any error writing to `out`.
pub fn render_with(opts: &Options, snap: &Snapshot, names: &Names, out: &mut dyn Write) -> io::Result<()> {
    let mut disabled = [false; COL_MAX];
    disabled[COL_NETID] = !opts.show_netid();
    disabled[COL_STATE] = !opts.show_state();
    let mut grid = Grid::new(disabled, opts.show_header);
    for s in &snap.netlink {
        grid.push(netlink_row(s, names));
    }
    for s in &snap.packet {
        grid.push(packet_row(opts, s, names));
    }
    for s in &snap.unix {
        grid.push(unix_row(s));
    }
    // ss's proc fallback sets the type to 0 for raw sockets, and proto_name(0) is "raw".
    for (list, netid, kind) in [
        (&snap.raw, "raw", PortKind::Raw),
        (&snap.udp, "udp", PortKind::Udp),
        (&snap.tcp, "tcp", PortKind::Tcp),
        // dg_proto stays "tcp" from tcp_show for the tables printed after it.
        (&snap.dccp, "dccp", PortKind::Tcp),
        (&snap.sctp, "sctp", PortKind::Tcp),
    ] {
        for s in list {
            grid.push(inet_row(opts, s, names, netid, kind));
        }
    }
    for s in &snap.vsock {
        grid.push(vsock_row(s));
    }
    for s in &snap.mptcp {
        grid.push(inet_row(opts, s, names, "mptcp", PortKind::Tcp));
    }
    grid.write(opts.screen_width, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::parse_ss_args;
    use crate::query::{check_supported, select};
    use crate::socket::Source;
    use sockstat_ebpf::{AF_INET, IPPROTO_TCP};
    use std::ffi::OsString;

    /// A stand-in for /etc/services: the real names for the fixture's ports, plus
    /// entries that ss must not use (a second name, a UDP-only port, an ephemeral port).
    const SERVICES: &str = "# Network services
ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
ssh2\t\t22/tcp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
https\t\t443/tcp
http-alt\t8080/tcp\twebcache
tproxy\t\t8081/tcp
udponly\t\t7070/udp
ephem\t\t40000/tcp
";

    fn names(numeric: bool) -> Names {
        Names::fixed((!numeric).then_some(SERVICES), (32768, 60999), &[(1, "lo")])
    }

    fn opts(args: &str) -> Options {
        let o = parse_ss_args(args.split_whitespace().map(OsString::from))
            .unwrap_or_else(|e| panic!("{args}: {e}"));
        assert_eq!(check_supported(&o), Ok(()), "{args}");
        o
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one fixture row per call reads as a table"
    )]
    fn sock(
        state: TcpState,
        src: &str,
        sport: u16,
        dst: &str,
        dport: u16,
        rq: u32,
        wq: u32,
        ifindex: u32,
    ) -> InetSocket {
        let src: IpAddr = src.parse().expect("fixture address");
        let dst: IpAddr = dst.parse().expect("fixture address");
        // What the kernel reports: binding to a specific, non-v4-mapped IPv6 address sets
        // sk_ipv6only (net/ipv6/af_inet6.c, __inet6_bind); the fixture's `[::]`
        // listeners are dual-stack.
        let v6only = matches!(src, IpAddr::V6(a) if !a.is_unspecified() && a.to_ipv4_mapped().is_none());
        InetSocket {
            family: if src.is_ipv4() { AF_INET } else { sockstat_ebpf::AF_INET6 },
            protocol: IPPROTO_TCP,
            state: state as u8,
            src,
            sport,
            dst,
            dport,
            v6only,
            ifindex,
            rqueue: rq,
            wqueue: wq,
            cookie: 0,
            uid: 0,
            inode: 0,
            timer: 0,
            retrans: 0,
            expires_ms: 0,
            source: Source::Kernel,
        }
    }

    const LONG: &str = "2001:db8:1234:5678:9abc:def0:1234:5678";

    /// The sockets made in a netns with python3 for the snapshots, in the order ss
    /// printed them (AF_INET then AF_INET6, kernel hash order within each).
    fn fixture() -> Vec<InetSocket> {
        use TcpState::*;
        vec![
            sock(Listen, "127.0.0.1", 9090, "0.0.0.0", 0, 0, 128, 1),
            sock(Listen, "127.0.0.1", 8080, "0.0.0.0", 0, 0, 128, 0),
            sock(Listen, "127.0.0.1", 7070, "0.0.0.0", 0, 0, 128, 0),
            sock(Listen, "0.0.0.0", 22, "0.0.0.0", 0, 0, 128, 0),
            sock(Listen, "0.0.0.0", 80, "0.0.0.0", 0, 0, 5, 0),
            sock(Established, "127.0.0.1", 40001, "127.0.0.1", 8083, 0, 0, 0),
            sock(Established, "127.0.0.1", 40000, "127.0.0.1", 8080, 0, 0, 0),
            sock(TimeWait, "127.0.0.1", 40003, "127.0.0.1", 7070, 0, 0, 0),
            sock(
                Established,
                "127.0.0.1",
                8080,
                "127.0.0.1",
                40000,
                100,
                0,
                0,
            ),
            sock(SynSent, "10.1.0.1", 40004, "10.1.0.2", 5000, 0, 1, 0),
            sock(Listen, LONG, 443, "::", 0, 0, 128, 0),
            // Dual-stack (IPV6_V6ONLY off): ss prints `*`.
            sock(Listen, "::", 8083, "::", 0, 0, 128, 0),
            sock(Listen, "::1", 8081, "::", 0, 0, 128, 0),
            sock(
                Established,
                "::ffff:127.0.0.1",
                8083,
                "::ffff:127.0.0.1",
                40001,
                0,
                0,
                0,
            ),
            sock(Established, LONG, 443, LONG, 40002, 0, 0, 0),
            sock(Established, LONG, 40002, LONG, 443, 0, 0, 0),
        ]
    }

    /// The fixture's order in the run that captured TTY_SNAPSHOTS (hash order differs).
    const TTY_ORDER: [usize; 16] = [0, 1, 2, 3, 4, 6, 5, 7, 8, 9, 12, 11, 10, 14, 13, 15];

    fn render(o: &Options, sockets: Vec<InetSocket>) -> String {
        let selected = select(o, sockets);
        let mut out = Vec::new();
        render_inet_with(o, &selected, &names(o.numeric), &mut out).expect("writing to a Vec");
        String::from_utf8(out).expect("ss output is ASCII here")
    }

    fn expected(lines: &[&str]) -> String {
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    #[test]
    fn byte_identical_with_ss_when_not_a_tty() {
        for &(args, lines) in SNAPSHOTS {
            assert_eq!(render(&opts(args), fixture()), expected(lines), "ss {args}");
        }
    }

    #[test]
    fn byte_identical_with_ss_on_a_terminal() {
        let all = fixture();
        for &(width, args, lines) in TTY_SNAPSHOTS {
            let mut o = opts(args);
            o.screen_width = Some(width);
            let sockets = TTY_ORDER.iter().map(|&i| all[i].clone()).collect();
            assert_eq!(
                render(&o, sockets),
                expected(lines),
                "ss {args} at {width} columns"
            );
        }
    }

    #[test]
    fn header_only_and_nothing_at_all() {
        // Captured from ss 6.1 with no matching socket: the header still ends in "Process".
        let cases: &[(&str, &str)] = &[
            (
                "-tn",
                "State Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n",
            ),
            (
                "-t4n state listening",
                "Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n",
            ),
            ("-tnH", ""),
        ];
        for &(args, want) in cases {
            assert_eq!(render(&opts(args), Vec::new()), want, "ss {args}");
        }
    }

    #[test]
    fn netid_column_when_several_tables() {
        // Not reachable through query yet (only TCP is supported), but the column model
        // must place Netid as ss does. Expected text: `ss -tuna` (ss 6.1) in a netns
        // holding one loopback connection and its listener, and no UDP socket.
        let o = opts("-tan");
        let o = Options {
            tables: o.tables | crate::cli::Table::Udp.bit(),
            ..o
        };
        let s = vec![
            sock(TcpState::Listen, "127.0.0.1", 8080, "0.0.0.0", 0, 0, 128, 0),
            sock(
                TcpState::Established,
                "127.0.0.1",
                8080,
                "127.0.0.1",
                40000,
                0,
                0,
                0,
            ),
            sock(
                TcpState::Established,
                "127.0.0.1",
                40000,
                "127.0.0.1",
                8080,
                0,
                0,
                0,
            ),
        ];
        let mut out = Vec::new();
        render_inet_with(&o, &s, &names(true), &mut out).expect("writing to a Vec");
        assert_eq!(
            String::from_utf8_lossy(&out),
            expected(&[
                "Netid State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process",
                "tcp   LISTEN 0      128        127.0.0.1:8080       0.0.0.0:*           ",
                "tcp   ESTAB  0      0          127.0.0.1:8080     127.0.0.1:40000       ",
                "tcp   ESTAB  0      0          127.0.0.1:40000    127.0.0.1:8080        ",
            ])
        );
    }

    #[test]
    fn ipv6_text_matches_glibc_inet_ntop() {
        // Right-hand sides from python3's socket.inet_ntop (glibc) on the same machine.
        let cases: &[(&str, &str)] = &[
            ("::", "::"),
            ("::1", "::1"),
            ("::2", "::2"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::ffff:0:1.2.3.4", "::ffff:0:102:304"),
            ("1::", "1::"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("2001:db8::1", "2001:db8::1"),
            ("0:0:1::", "0:0:1::"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
            ("fe80::1:0:0:1", "fe80::1:0:0:1"),
            ("0:0:0:0:0:1:1.2.3.4", "::1:102:304"),
            ("::ffff:0.0.0.0", "::ffff:0.0.0.0"),
        ];
        for &(input, want) in cases {
            let a: Ipv6Addr = input.parse().expect("test address");
            assert_eq!(inet6_ntop(&a), want, "{input}");
        }
    }

    #[test]
    fn any_address_depends_on_v6only() {
        let any: IpAddr = "::".parse().expect("test address");
        assert_eq!(addr_text(&any, false), "*");
        // ss 6.1 for a `[::]` listener with IPV6_V6ONLY set: "[::]:8082" / "[::]:*".
        assert_eq!(addr_text(&any, true), "[::]");
        assert_eq!(
            addr_text(&"0.0.0.0".parse().expect("test address"), false),
            "0.0.0.0"
        );
        let mapped = sock(TcpState::Listen, "::ffff:127.0.0.1", 1, "::", 0, 0, 0, 0);
        assert!(!v6only(&mapped));
        assert!(v6only(&sock(TcpState::Listen, "::1", 1, "::", 0, 0, 0, 0)));
        assert!(!v6only(&sock(TcpState::Listen, "::", 1, "::", 0, 0, 0, 0)));
    }

    #[test]
    fn ports_resolve_like_getservbyport() {
        let n = names(false);
        let cases: &[(u16, &str)] = &[
            (0, "*"),
            (22, "ssh"),
            (80, "http"),
            (7070, "7070"),
            (40000, "40000"),
            (8081, "tproxy"),
            (9, "9"),
        ];
        for &(port, want) in cases {
            assert_eq!(n.port(port), want, "{port}");
        }
        assert_eq!(names(true).port(22), "22");
        assert_eq!(n.ifname(1), "lo");
        assert_eq!(n.ifname(7), "if7");
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("garbage"), None);
    }

    #[test]
    fn state_names_are_ss_names() {
        let names: Vec<&str> = (0..=14).map(state_name).collect();
        assert_eq!(
            names,
            [
                "UNKNOWN",
                "ESTAB",
                "SYN-SENT",
                "SYN-RECV",
                "FIN-WAIT-1",
                "FIN-WAIT-2",
                "TIME-WAIT",
                "UNCONN",
                "CLOSE-WAIT",
                "LAST-ACK",
                "LISTEN",
                "CLOSING",
                "SYN-RECV",
                "UNKNOWN",
                "UNKNOWN"
            ]
        );
    }

    #[test]
    fn write_errors_are_returned() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let o = opts("-tan");
        let err =
            render_inet_with(&o, &fixture(), &names(true), &mut Broken).expect_err("broken pipe");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }

    /// (ss arguments, ss 6.1's output for the fixture sockets, captured in a netns.)
    const SNAPSHOTS: &[(&str, &[&str])] = &[
        (
            "-tan",
            &[
                "State     Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
                "LISTEN    0      128                                127.0.0.1%lo:9090                                   0.0.0.0:*           ",
                "LISTEN    0      128                                   127.0.0.1:8080                                   0.0.0.0:*           ",
                "LISTEN    0      128                                   127.0.0.1:7070                                   0.0.0.0:*           ",
                "LISTEN    0      128                                     0.0.0.0:22                                     0.0.0.0:*           ",
                "LISTEN    0      5                                       0.0.0.0:80                                     0.0.0.0:*           ",
                "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
                "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
                "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070        ",
                "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
                "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
                "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*           ",
                "LISTEN    0      128                                           *:8083                                         *:*           ",
                "LISTEN    0      128                                       [::1]:8081                                      [::]:*           ",
                "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
            ],
        ),
        (
            "-ta",
            &[
                "State     Recv-Q Send-Q                            Local Address:Port                                 Peer Address:Port    Process",
                "LISTEN    0      128                                127.0.0.1%lo:9090                                      0.0.0.0:*              ",
                "LISTEN    0      128                                   127.0.0.1:http-alt                                  0.0.0.0:*              ",
                "LISTEN    0      128                                   127.0.0.1:7070                                      0.0.0.0:*              ",
                "LISTEN    0      128                                     0.0.0.0:ssh                                       0.0.0.0:*              ",
                "LISTEN    0      5                                       0.0.0.0:http                                      0.0.0.0:*              ",
                "ESTAB     0      0                                     127.0.0.1:40001                                   127.0.0.1:8083           ",
                "ESTAB     0      0                                     127.0.0.1:40000                                   127.0.0.1:http-alt       ",
                "TIME-WAIT 0      0                                     127.0.0.1:40003                                   127.0.0.1:7070           ",
                "ESTAB     100    0                                     127.0.0.1:http-alt                                127.0.0.1:40000          ",
                "SYN-SENT  0      1                                      10.1.0.1:40004                                    10.1.0.2:5000           ",
                "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:https                                        [::]:*              ",
                "LISTEN    0      128                                           *:8083                                            *:*              ",
                "LISTEN    0      128                                       [::1]:tproxy                                       [::]:*              ",
                "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                           [::ffff:127.0.0.1]:40001          ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:https    [2001:db8:1234:5678:9abc:def0:1234:5678]:40002          ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002    [2001:db8:1234:5678:9abc:def0:1234:5678]:https          ",
            ],
        ),
        (
            "-tln",
            &[
                "State  Recv-Q Send-Q                            Local Address:Port Peer Address:PortProcess",
                "LISTEN 0      128                                127.0.0.1%lo:9090      0.0.0.0:*          ",
                "LISTEN 0      128                                   127.0.0.1:8080      0.0.0.0:*          ",
                "LISTEN 0      128                                   127.0.0.1:7070      0.0.0.0:*          ",
                "LISTEN 0      128                                     0.0.0.0:22        0.0.0.0:*          ",
                "LISTEN 0      5                                       0.0.0.0:80        0.0.0.0:*          ",
                "LISTEN 0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443          [::]:*          ",
                "LISTEN 0      128                                           *:8083            *:*          ",
                "LISTEN 0      128                                       [::1]:8081         [::]:*          ",
            ],
        ),
        (
            "-tl",
            &[
                "State  Recv-Q Send-Q                            Local Address:Port     Peer Address:PortProcess",
                "LISTEN 0      128                                127.0.0.1%lo:9090          0.0.0.0:*          ",
                "LISTEN 0      128                                   127.0.0.1:http-alt      0.0.0.0:*          ",
                "LISTEN 0      128                                   127.0.0.1:7070          0.0.0.0:*          ",
                "LISTEN 0      128                                     0.0.0.0:ssh           0.0.0.0:*          ",
                "LISTEN 0      5                                       0.0.0.0:http          0.0.0.0:*          ",
                "LISTEN 0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:https            [::]:*          ",
                "LISTEN 0      128                                           *:8083                *:*          ",
                "LISTEN 0      128                                       [::1]:tproxy           [::]:*          ",
            ],
        ),
        (
            "-tanH",
            &[
                "LISTEN    0      128                                127.0.0.1%lo:9090                                   0.0.0.0:*    ",
                "LISTEN    0      128                                   127.0.0.1:8080                                   0.0.0.0:*    ",
                "LISTEN    0      128                                   127.0.0.1:7070                                   0.0.0.0:*    ",
                "LISTEN    0      128                                     0.0.0.0:22                                     0.0.0.0:*    ",
                "LISTEN    0      5                                       0.0.0.0:80                                     0.0.0.0:*    ",
                "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083 ",
                "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080 ",
                "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070 ",
                "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000",
                "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000 ",
                "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*    ",
                "LISTEN    0      128                                           *:8083                                         *:*    ",
                "LISTEN    0      128                                       [::1]:8081                                      [::]:*    ",
                "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443  ",
            ],
        ),
        (
            "-tan4",
            &[
                "State     Recv-Q Send-Q Local Address:Port  Peer Address:Port Process",
                "LISTEN    0      128     127.0.0.1%lo:9090       0.0.0.0:*           ",
                "LISTEN    0      128        127.0.0.1:8080       0.0.0.0:*           ",
                "LISTEN    0      128        127.0.0.1:7070       0.0.0.0:*           ",
                "LISTEN    0      128          0.0.0.0:22         0.0.0.0:*           ",
                "LISTEN    0      5            0.0.0.0:80         0.0.0.0:*           ",
                "ESTAB     0      0          127.0.0.1:40001    127.0.0.1:8083        ",
                "ESTAB     0      0          127.0.0.1:40000    127.0.0.1:8080        ",
                "TIME-WAIT 0      0          127.0.0.1:40003    127.0.0.1:7070        ",
                "ESTAB     100    0          127.0.0.1:8080     127.0.0.1:40000       ",
                "SYN-SENT  0      1           10.1.0.1:40004     10.1.0.2:5000        ",
            ],
        ),
        (
            "-tan6",
            &[
                "State  Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
                "LISTEN 0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*           ",
                "LISTEN 0      128                                           *:8083                                         *:*           ",
                "LISTEN 0      128                                       [::1]:8081                                      [::]:*           ",
                "ESTAB  0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
                "ESTAB  0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
                "ESTAB  0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
            ],
        ),
        (
            "-tn state syn-sent",
            &[
                "Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess",
                "0      1           10.1.0.1:40004     10.1.0.2:5000       ",
            ],
        ),
        (
            "-tn state time-wait",
            &[
                "Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess",
                "0      0          127.0.0.1:40003    127.0.0.1:7070       ",
            ],
        ),
        (
            "-tlH",
            &[
                "LISTEN 0      128                                127.0.0.1%lo:9090     0.0.0.0:*",
                "LISTEN 0      128                                   127.0.0.1:http-alt 0.0.0.0:*",
                "LISTEN 0      128                                   127.0.0.1:7070     0.0.0.0:*",
                "LISTEN 0      128                                     0.0.0.0:ssh      0.0.0.0:*",
                "LISTEN 0      5                                       0.0.0.0:http     0.0.0.0:*",
                "LISTEN 0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:https       [::]:*",
                "LISTEN 0      128                                           *:8083           *:*",
                "LISTEN 0      128                                       [::1]:tproxy      [::]:*",
            ],
        ),
        (
            "-tn exclude listening",
            &[
                "State     Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
                "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
                "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
                "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070        ",
                "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
                "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
                "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
            ],
        ),
        (
            "-t4n state listening",
            &[
                "Recv-Q Send-Q Local Address:Port Peer Address:PortProcess",
                "0      128     127.0.0.1%lo:9090      0.0.0.0:*          ",
                "0      128        127.0.0.1:8080      0.0.0.0:*          ",
                "0      128        127.0.0.1:7070      0.0.0.0:*          ",
                "0      128          0.0.0.0:22        0.0.0.0:*          ",
                "0      5            0.0.0.0:80        0.0.0.0:*          ",
            ],
        ),
        (
            "-tn",
            &[
                "State    Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
                "ESTAB    0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
                "ESTAB    0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
                "ESTAB    100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
                "SYN-SENT 0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
                "ESTAB    0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
                "ESTAB    0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
                "ESTAB    0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
            ],
        ),
        (
            "-tan state bucket",
            &[
                "State     Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess",
                "TIME-WAIT 0      0          127.0.0.1:40003    127.0.0.1:7070       ",
            ],
        ),
        (
            "-tan state connected",
            &[
                "State     Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
                "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
                "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
                "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070        ",
                "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
                "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
                "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
            ],
        ),
        (
            "-tn state established state listening",
            &[
                "State  Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
                "LISTEN 0      128                                127.0.0.1%lo:9090                                   0.0.0.0:*           ",
                "LISTEN 0      128                                   127.0.0.1:8080                                   0.0.0.0:*           ",
                "LISTEN 0      128                                   127.0.0.1:7070                                   0.0.0.0:*           ",
                "LISTEN 0      128                                     0.0.0.0:22                                     0.0.0.0:*           ",
                "LISTEN 0      5                                       0.0.0.0:80                                     0.0.0.0:*           ",
                "ESTAB  0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
                "ESTAB  0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
                "ESTAB  100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
                "LISTEN 0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*           ",
                "LISTEN 0      128                                           *:8083                                         *:*           ",
                "LISTEN 0      128                                       [::1]:8081                                      [::]:*           ",
                "ESTAB  0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
                "ESTAB  0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
                "ESTAB  0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
            ],
        ),
        (
            "-tan exclude all",
            &[
                "State    Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
                "ESTAB    0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
                "ESTAB    0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
                "ESTAB    100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
                "SYN-SENT 0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
                "ESTAB    0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
                "ESTAB    0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
                "ESTAB    0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
            ],
        ),
        (
            "-tn excl established",
            &[
                "State     Recv-Q Send-Q                            Local Address:Port  Peer Address:PortProcess",
                "LISTEN    0      128                                127.0.0.1%lo:9090       0.0.0.0:*          ",
                "LISTEN    0      128                                   127.0.0.1:8080       0.0.0.0:*          ",
                "LISTEN    0      128                                   127.0.0.1:7070       0.0.0.0:*          ",
                "LISTEN    0      128                                     0.0.0.0:22         0.0.0.0:*          ",
                "LISTEN    0      5                                       0.0.0.0:80         0.0.0.0:*          ",
                "TIME-WAIT 0      0                                     127.0.0.1:40003    127.0.0.1:7070       ",
                "SYN-SENT  0      1                                      10.1.0.1:40004     10.1.0.2:5000       ",
                "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443           [::]:*          ",
                "LISTEN    0      128                                           *:8083             *:*          ",
                "LISTEN    0      128                                       [::1]:8081          [::]:*          ",
            ],
        ),
        (
            "-tn state all",
            &[
                "State     Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
                "LISTEN    0      128                                127.0.0.1%lo:9090                                   0.0.0.0:*           ",
                "LISTEN    0      128                                   127.0.0.1:8080                                   0.0.0.0:*           ",
                "LISTEN    0      128                                   127.0.0.1:7070                                   0.0.0.0:*           ",
                "LISTEN    0      128                                     0.0.0.0:22                                     0.0.0.0:*           ",
                "LISTEN    0      5                                       0.0.0.0:80                                     0.0.0.0:*           ",
                "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
                "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
                "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070        ",
                "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
                "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
                "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*           ",
                "LISTEN    0      128                                           *:8083                                         *:*           ",
                "LISTEN    0      128                                       [::1]:8081                                      [::]:*           ",
                "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
            ],
        ),
        (
            "-tnl state all",
            &[
                "State     Recv-Q Send-Q                            Local Address:Port                              Peer Address:Port Process",
                "LISTEN    0      128                                127.0.0.1%lo:9090                                   0.0.0.0:*           ",
                "LISTEN    0      128                                   127.0.0.1:8080                                   0.0.0.0:*           ",
                "LISTEN    0      128                                   127.0.0.1:7070                                   0.0.0.0:*           ",
                "LISTEN    0      128                                     0.0.0.0:22                                     0.0.0.0:*           ",
                "LISTEN    0      5                                       0.0.0.0:80                                     0.0.0.0:*           ",
                "ESTAB     0      0                                     127.0.0.1:40001                                127.0.0.1:8083        ",
                "ESTAB     0      0                                     127.0.0.1:40000                                127.0.0.1:8080        ",
                "TIME-WAIT 0      0                                     127.0.0.1:40003                                127.0.0.1:7070        ",
                "ESTAB     100    0                                     127.0.0.1:8080                                 127.0.0.1:40000       ",
                "SYN-SENT  0      1                                      10.1.0.1:40004                                 10.1.0.2:5000        ",
                "LISTEN    0      128    [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                       [::]:*           ",
                "LISTEN    0      128                                           *:8083                                         *:*           ",
                "LISTEN    0      128                                       [::1]:8081                                      [::]:*           ",
                "ESTAB     0      0                            [::ffff:127.0.0.1]:8083                        [::ffff:127.0.0.1]:40001       ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:443   [2001:db8:1234:5678:9abc:def0:1234:5678]:40002       ",
                "ESTAB     0      0      [2001:db8:1234:5678:9abc:def0:1234:5678]:40002 [2001:db8:1234:5678:9abc:def0:1234:5678]:443         ",
            ],
        ),
        (
            "-tn4H state established",
            &[
                "0      0      127.0.0.1:40001 127.0.0.1:8083 ",
                "0      0      127.0.0.1:40000 127.0.0.1:8080 ",
                "100    0      127.0.0.1:8080  127.0.0.1:40000",
            ],
        ),
    ];

    /// (screen width, ss arguments, output on a terminal that wide), fixture in TTY_ORDER.
    const TTY_SNAPSHOTS: &[(usize, &str, &[&str])] = &[
        (
            60,
            "-tan",
            &[
                "State                 Recv-Q             Send-Q                                               Local Address:Port                                       Peer Address:Port   Process  ",
                "LISTEN                0                  128                                                   127.0.0.1%lo:9090                                            0.0.0.0:*               ",
                "LISTEN                0                  128                                                      127.0.0.1:8080                                            0.0.0.0:*               ",
                "LISTEN                0                  128                                                      127.0.0.1:7070                                            0.0.0.0:*               ",
                "LISTEN                0                  128                                                        0.0.0.0:22                                              0.0.0.0:*               ",
                "LISTEN                0                  5                                                          0.0.0.0:80                                              0.0.0.0:*               ",
                "ESTAB                 0                  0                                                        127.0.0.1:40000                                         127.0.0.1:8080            ",
                "ESTAB                 0                  0                                                        127.0.0.1:40001                                         127.0.0.1:8083            ",
                "TIME-WAIT             0                  0                                                        127.0.0.1:40003                                         127.0.0.1:7070            ",
                "ESTAB                 100                0                                                        127.0.0.1:8080                                          127.0.0.1:40000           ",
                "SYN-SENT              0                  1                                                         10.1.0.1:40004                                          10.1.0.2:5000            ",
                "LISTEN                0                  128                                                          [::1]:8081                                               [::]:*               ",
                "LISTEN                0                  128                                                              *:8083                                                  *:*               ",
                "LISTEN                0                  128                       [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                                [::]:*               ",
                "ESTAB                 0                  0                         [2001:db8:1234:5678:9abc:def0:1234:5678]:443            [2001:db8:1234:5678:9abc:def0:1234:5678]:40002           ",
                "ESTAB                 0                  0                                               [::ffff:127.0.0.1]:8083                                 [::ffff:127.0.0.1]:40001           ",
                "ESTAB                 0                  0                         [2001:db8:1234:5678:9abc:def0:1234:5678]:40002          [2001:db8:1234:5678:9abc:def0:1234:5678]:443             ",
            ],
        ),
        (
            60,
            "-tln",
            &[
                "State               Recv-Q              Send-Q                                          Local Address:Port Peer Address:Port                        Process                         ",
                "LISTEN              0                   128                                              127.0.0.1%lo:9090      0.0.0.0:*                                                           ",
                "LISTEN              0                   128                                                 127.0.0.1:8080      0.0.0.0:*                                                           ",
                "LISTEN              0                   128                                                 127.0.0.1:7070      0.0.0.0:*                                                           ",
                "LISTEN              0                   128                                                   0.0.0.0:22        0.0.0.0:*                                                           ",
                "LISTEN              0                   5                                                     0.0.0.0:80        0.0.0.0:*                                                           ",
                "LISTEN              0                   128                                                     [::1]:8081         [::]:*                                                           ",
                "LISTEN              0                   128                                                         *:8083            *:*                                                           ",
                "LISTEN              0                   128                  [2001:db8:1234:5678:9abc:def0:1234:5678]:443          [::]:*                                                           ",
            ],
        ),
        (
            100,
            "-tan",
            &[
                "State           Recv-Q       Send-Q                                        Local Address:Port                                                   Peer Address:Port                Process                ",
                "LISTEN          0            128                                            127.0.0.1%lo:9090                                                        0.0.0.0:*                                          ",
                "LISTEN          0            128                                               127.0.0.1:8080                                                        0.0.0.0:*                                          ",
                "LISTEN          0            128                                               127.0.0.1:7070                                                        0.0.0.0:*                                          ",
                "LISTEN          0            128                                                 0.0.0.0:22                                                          0.0.0.0:*                                          ",
                "LISTEN          0            5                                                   0.0.0.0:80                                                          0.0.0.0:*                                          ",
                "ESTAB           0            0                                                 127.0.0.1:40000                                                     127.0.0.1:8080                                       ",
                "ESTAB           0            0                                                 127.0.0.1:40001                                                     127.0.0.1:8083                                       ",
                "TIME-WAIT       0            0                                                 127.0.0.1:40003                                                     127.0.0.1:7070                                       ",
                "ESTAB           100          0                                                 127.0.0.1:8080                                                      127.0.0.1:40000                                      ",
                "SYN-SENT        0            1                                                  10.1.0.1:40004                                                      10.1.0.2:5000                                       ",
                "LISTEN          0            128                                                   [::1]:8081                                                           [::]:*                                          ",
                "LISTEN          0            128                                                       *:8083                                                              *:*                                          ",
                "LISTEN          0            128                [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                                            [::]:*                                          ",
                "ESTAB           0            0                  [2001:db8:1234:5678:9abc:def0:1234:5678]:443                        [2001:db8:1234:5678:9abc:def0:1234:5678]:40002                                      ",
                "ESTAB           0            0                                        [::ffff:127.0.0.1]:8083                                             [::ffff:127.0.0.1]:40001                                      ",
                "ESTAB           0            0                  [2001:db8:1234:5678:9abc:def0:1234:5678]:40002                      [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                        ",
            ],
        ),
        (
            100,
            "-tln",
            &[
                "State   Recv-Q  Send-Q                              Local Address:Port   Peer Address:Port Process  ",
                "LISTEN  0       128                                  127.0.0.1%lo:9090        0.0.0.0:*             ",
                "LISTEN  0       128                                     127.0.0.1:8080        0.0.0.0:*             ",
                "LISTEN  0       128                                     127.0.0.1:7070        0.0.0.0:*             ",
                "LISTEN  0       128                                       0.0.0.0:22          0.0.0.0:*             ",
                "LISTEN  0       5                                         0.0.0.0:80          0.0.0.0:*             ",
                "LISTEN  0       128                                         [::1]:8081           [::]:*             ",
                "LISTEN  0       128                                             *:8083              *:*             ",
                "LISTEN  0       128      [2001:db8:1234:5678:9abc:def0:1234:5678]:443            [::]:*             ",
            ],
        ),
        (
            200,
            "-tan",
            &[
                "State              Recv-Q          Send-Q                                              Local Address:Port                                                  Peer Address:Port           Process          ",
                "LISTEN             0               128                                                  127.0.0.1%lo:9090                                                       0.0.0.0:*                               ",
                "LISTEN             0               128                                                     127.0.0.1:8080                                                       0.0.0.0:*                               ",
                "LISTEN             0               128                                                     127.0.0.1:7070                                                       0.0.0.0:*                               ",
                "LISTEN             0               128                                                       0.0.0.0:22                                                         0.0.0.0:*                               ",
                "LISTEN             0               5                                                         0.0.0.0:80                                                         0.0.0.0:*                               ",
                "ESTAB              0               0                                                       127.0.0.1:40000                                                    127.0.0.1:8080                            ",
                "ESTAB              0               0                                                       127.0.0.1:40001                                                    127.0.0.1:8083                            ",
                "TIME-WAIT          0               0                                                       127.0.0.1:40003                                                    127.0.0.1:7070                            ",
                "ESTAB              100             0                                                       127.0.0.1:8080                                                     127.0.0.1:40000                           ",
                "SYN-SENT           0               1                                                        10.1.0.1:40004                                                     10.1.0.2:5000                            ",
                "LISTEN             0               128                                                         [::1]:8081                                                          [::]:*                               ",
                "LISTEN             0               128                                                             *:8083                                                             *:*                               ",
                "LISTEN             0               128                      [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                                           [::]:*                               ",
                "ESTAB              0               0                        [2001:db8:1234:5678:9abc:def0:1234:5678]:443                       [2001:db8:1234:5678:9abc:def0:1234:5678]:40002                           ",
                "ESTAB              0               0                                              [::ffff:127.0.0.1]:8083                                            [::ffff:127.0.0.1]:40001                           ",
                "ESTAB              0               0                        [2001:db8:1234:5678:9abc:def0:1234:5678]:40002                     [2001:db8:1234:5678:9abc:def0:1234:5678]:443                             ",
            ],
        ),
        (
            200,
            "-tln",
            &[
                "State               Recv-Q              Send-Q                                                       Local Address:Port                             Peer Address:Port              Process              ",
                "LISTEN              0                   128                                                           127.0.0.1%lo:9090                                  0.0.0.0:*                                      ",
                "LISTEN              0                   128                                                              127.0.0.1:8080                                  0.0.0.0:*                                      ",
                "LISTEN              0                   128                                                              127.0.0.1:7070                                  0.0.0.0:*                                      ",
                "LISTEN              0                   128                                                                0.0.0.0:22                                    0.0.0.0:*                                      ",
                "LISTEN              0                   5                                                                  0.0.0.0:80                                    0.0.0.0:*                                      ",
                "LISTEN              0                   128                                                                  [::1]:8081                                     [::]:*                                      ",
                "LISTEN              0                   128                                                                      *:8083                                        *:*                                      ",
                "LISTEN              0                   128                               [2001:db8:1234:5678:9abc:def0:1234:5678]:443                                      [::]:*                                      ",
            ],
        ),
    ];
}
