//! One inet socket's row (`inet_stats_print()`, `inet_show_sock()`): addresses and ports,
//! `-o` timers, `-e` details (`sock_details_print()`, shutdown, v6only), `--tos`,
//! `--cgroup`, `--inet-sockopt`, then the `-m`/`-i` text of [`super::tcpinfo`], then the
//! BPF socket-local storages (`--bpf-maps`, through [`super::btf_dump`]). May import
//! `model`, `names` and the rest of `render`.

use std::net::IpAddr;

use crate::model::socket::{InetSocket, PROTO_MPTCP_TABLE};
use crate::names::system::{Names, PortKind};
use crate::render::addr::{push_addr, push_port_numeric, push_queue, resolved_addr_text};
use crate::render::grid::{COL_MAX, FieldsRow, RowSink};
use crate::render::labels::state_name;
use crate::render::style::Style;
use crate::render::tcpinfo::{mptcp_show_info, push_tcp_info};

/// Whether the socket is IPV6_V6ONLY, which only changes how `::` prints: sock_diag's
/// INET_DIAG_SKV6ONLY, or `skc_ipv6only` as the eBPF program read it.
pub(super) fn v6only(s: &InetSocket) -> bool {
    s.v6only
}

/// ss's `print_ms_timer()`. ss 7.1 ends the milliseconds of a time of 1-9 s with `sec`
/// (`5.123sec`), where 6.1 wrote `5.123ms`.
pub(super) fn ms_timer(timeout: u32, v7: bool) -> String {
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
        buf.push_str(&format!("{msecs:03}{}", if v7 && secs != 0 { "sec" } else { "ms" }));
    }
    buf
}

/// ss's `tcp_timer_print()` for `-o` (inet sockets from sock_diag). ss 6.1 names the
/// timers 5 and up `unknown`; ss 7.1 names 5 (`IDIAG_TIMER_DELACK`) `delack`.
pub(super) fn timer_text(s: &InetSocket, v7: bool) -> String {
    const NAMES: [&str; 6] = ["off", "on", "keepalive", "timewait", "persist", "delack"];
    if s.timer == 0 {
        return String::new();
    }
    let name = match usize::from(s.timer) {
        5 if !v7 => "unknown",
        t => NAMES.get(t).copied().unwrap_or("unknown"),
    };
    format!(" timer:({name},{},{})", ms_timer(s.expires_ms, v7), s.retrans)
}

/// The fields of one inet socket's line (`inet_stats_print`, plus `-o` timers).
pub(super) fn inet_row(opts: &Style, s: &InetSocket, names: &Names, netid: &str, kind: PortKind) -> [String; COL_MAX] {
    let mut row: [String; COL_MAX] = Default::default();
    inet_row_into(&mut FieldsRow::new(&mut row), opts, s, names, netid, kind);
    row
}

/// [`inet_row`] written field by field into `row`.
pub(super) fn inet_row_into(
    row: &mut impl RowSink,
    opts: &Style,
    s: &InetSocket,
    names: &Names,
    netid: &str,
    kind: PortKind,
) {
    row.field().push_str(netid);
    row.next_field();
    row.field().push_str(state_name(s.state));
    row.next_field();
    // ss keeps the queues in an `int` and prints them with "%-6d".
    push_queue(row.field(), s.rqueue);
    row.next_field();
    push_queue(row.field(), s.wqueue);
    row.next_field();
    let v6only = v6only(s);
    let host = |out: &mut String, a: &IpAddr| {
        if opts.resolve_hosts {
            out.push_str(&resolved_addr_text(a, v6only, names));
        } else {
            push_addr(out, a, v6only);
        }
    };
    let local = row.field();
    host(local, &s.src);
    if s.ifindex != 0 {
        local.push('%');
        local.push_str(&names.ifname(s.ifindex));
    }
    local.push(':');
    row.next_field();
    let port = |out: &mut String, p: u16| {
        if opts.numeric {
            push_port_numeric(out, p);
        } else {
            out.push_str(&names.port_of(kind, p));
        }
    };
    port(row.field(), s.sport);
    row.next_field();
    host(row.field(), &s.dst);
    row.field().push(':');
    row.next_field();
    port(row.field(), s.dport);
    row.next_field();
    names.push_users(row.field(), s.inode);
    row.next_field();
    push_row_tail(row.field(), opts, s, names, kind);
    row.next_field();
}

/// The lengths of the fields [`inet_row_into`] writes, column by column, as cheaply as
/// they can be known: counted for the plain fields (numbers, IPv4 addresses without
/// names), written into `scratch` for the others.
pub(super) fn inet_row_lens(
    opts: &Style,
    s: &InetSocket,
    names: &Names,
    netid: &str,
    kind: PortKind,
    scratch: &mut String,
) -> [usize; COL_MAX] {
    let mut lens = [0usize; COL_MAX];
    let written = |scratch: &mut String, write: &dyn Fn(&mut String)| {
        scratch.clear();
        write(scratch);
        scratch.len()
    };
    lens[0] = netid.len();
    lens[1] = state_name(s.state).len();
    lens[2] = queue_len(s.rqueue);
    lens[3] = queue_len(s.wqueue);
    let v6only = v6only(s);
    let host_len = |scratch: &mut String, a: &IpAddr| match a {
        IpAddr::V4(v4) if !opts.resolve_hosts => ipv4_len(*v4),
        _ => written(scratch, &|out: &mut String| {
            if opts.resolve_hosts {
                out.push_str(&resolved_addr_text(a, v6only, names));
            } else {
                push_addr(out, a, v6only);
            }
        }),
    };
    lens[4] = host_len(scratch, &s.src) + 1;
    if s.ifindex != 0 {
        lens[4] += 1 + names.ifname(s.ifindex).len();
    }
    let port_len = |p: u16| match (p, opts.numeric) {
        (0, _) => 1,
        (p, true) => decimal_len(u64::from(p)),
        (p, false) => names.port_of(kind, p).len(),
    };
    lens[5] = port_len(s.sport);
    lens[6] = host_len(scratch, &s.dst) + 1;
    lens[7] = port_len(s.dport);
    lens[8] = names.users_len(s.inode);
    scratch.clear();
    push_row_tail(scratch, opts, s, names, kind);
    lens[9] = scratch.len();
    lens
}

/// The length of [`push_queue`]'s text.
fn queue_len(q: u32) -> usize {
    let v = q.cast_signed();
    let digits = decimal_len(u64::from(v.unsigned_abs()));
    if v < 0 { 1 + digits.max(5) } else { digits.max(6) }
}

/// The number of decimal digits of `n`.
fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// The length of an IPv4 address's dotted-quad text.
fn ipv4_len(a: std::net::Ipv4Addr) -> usize {
    3 + a.octets().iter().map(|&o| decimal_len(u64::from(o))).sum::<usize>()
}

/// What [`inet_row_into`] writes after the owners: `-o` timers and the details.
fn push_row_tail(ext: &mut String, opts: &Style, s: &InetSocket, names: &Names, kind: PortKind) {
    if kind == PortKind::Raw {
        // dgram_show_line (the /proc path): no timers, and `-e` adds only the text after
        // the pointer column.
        if opts.show_details > 0
            && let Some(opt) = s.ext.as_ref().and_then(|d| d.proc_opt.as_deref())
            && !opt.is_empty()
        {
            ext.push_str(&format!(" opt:\"{opt}\""));
        }
    } else {
        if opts.show_options {
            ext.push_str(&timer_text(s, opts.compat.v7()));
        }
        push_inet_details(ext, opts, s, names);
    }
}

/// The head of ss's `sock_details_print()` (`-e`), shared by every family that prints
/// it: ` uid:N` unless root's, then ` ino:N sk:COOKIE`.
pub(super) fn push_sock_details(out: &mut String, uid: u32, inode: u32, cookie: u64) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    if uid != 0 {
        let _ = write!(out, " uid:{uid}");
    }
    let _ = write!(out, " ino:{inode} sk:{cookie:x}");
}

/// Appends what `inet_show_sock()` prints after the timer: `-e`'s `sock_details_print()`, v6only
/// and shutdown, then (`-m`, or `-i` for other than UDP) `tcp_show_info()` on a new line.
pub(super) fn push_inet_details(out: &mut String, opts: &Style, s: &InetSocket, names: &Names) {
    let d = s.ext.as_deref();
    if opts.show_details > 0 {
        push_sock_details(out, s.uid, s.inode, s.cookie);
        if let Some(d) = d {
            if d.mark != 0 {
                out.push_str(&format!(" fwmark:0x{:x}", d.mark));
            }
            if d.cgroup_id != 0 {
                out.push_str(" cgroup:");
                names.push_cgroup_path(out, d.cgroup_id);
            }
            if s.family == sockstat_ebpf::AF_INET6
                && let Some(v) = d.v6only
            {
                out.push_str(&format!(" v6only:{v}"));
            }
            if let Some(m) = d.shutdown {
                push_shutdown(out, m);
            }
        }
    }
    // --tos: what the kernel sent, each with C's %#x (0 prints as `0`).
    if opts.show_tos
        && let Some(d) = d
    {
        let hex = |v: u32| if v == 0 { "0".to_owned() } else { format!("{v:#x}") };
        if let Some(v) = d.tos {
            out.push_str(&format!(" tos:{}", hex(v.into())));
        }
        if let Some(v) = d.tclass {
            out.push_str(&format!(" tclass:{}", hex(v.into())));
        }
        if let Some(v) = d.class_id {
            out.push_str(&format!(" class_id:{}", hex(v)));
        }
    }
    // --cgroup: printed whenever the kernel sent INET_DIAG_CGROUP_ID (0 = absent here).
    if opts.show_cgroup
        && let Some(d) = d
        && d.cgroup_id != 0
    {
        out.push_str(" cgroup:");
        names.push_cgroup_path(out, d.cgroup_id);
    }
    if opts.show_inet_sockopt
        && let Some(flags) = d.and_then(|d| d.sockopt)
    {
        out.push_str(if opts.oneline { " inet-sockopt: (" } else { "\n\tinet-sockopt: (" });
        out.push_str(&sockopt_text(flags));
        out.push(')');
    }
    if opts.show_mem || (opts.show_tcpinfo && s.protocol != IPPROTO_UDP) {
        if !opts.oneline {
            out.push_str("\n\t");
        }
        if let Some(d) = d {
            if s.protocol == PROTO_MPTCP_TABLE {
                out.push_str(&mptcp_show_info(d, opts.compat.v7()));
            } else {
                push_tcp_info(out, opts, s.state, d, names);
            }
        }
    }
    if let Some(d) = d {
        for stg in &d.bpf_storages {
            push_sk_storage(out, opts.oneline, stg, names);
        }
    }
}

/// ss 7.1's `out_bpf_sk_storage()`: one socket-local storage value, dumped from its map's
/// BTF (on its own lines, or compact with `-O`). A map that could not be looked up prints
/// ss's "failed to fetch info" line; a value of the wrong size prints nothing (ss says so
/// on stderr, as sockstat's fetch does).
fn push_sk_storage(out: &mut String, oneline: bool, stg: &crate::model::socket::SkStorageValue, names: &Names) {
    use super::btf_dump::{DumpOpts, dump_type_data};
    let Some(map) = names.bpf_map(stg.map_id) else {
        out.push_str(&format!("\n\tmap_id: {} failed to fetch info, skipping\n", stg.map_id));
        return;
    };
    if map.value_size as usize != stg.value.len() {
        return;
    }
    let opts = DumpOpts { indent_level: if oneline { 0 } else { 2 }, compact: oneline, misalign: stg.misalign };
    let (text, result) = match &map.btf {
        Some(btf) => dump_type_data(btf, map.value_type_id, &stg.value, opts),
        // A map without BTF: btf_dump has no type to look the value up in.
        None => (String::new(), Err(-2)),
    };
    let id = stg.map_id.cast_signed();
    if oneline {
        out.push_str(&format!(" map_id:{id}"));
        out.push_str(&text);
        if let Err(e) = result {
            out.push_str(&format!("failed to dump data: {e}"));
        }
    } else {
        out.push_str(&format!("\n\tmap_id:{id} [\n"));
        out.push_str(&text);
        if let Err(e) = result {
            out.push_str(&format!("\t\tfailed to dump data: {e}"));
        }
        out.push_str("\n\t]");
    }
}

pub(super) const IPPROTO_UDP: u8 = 17;

/// The names ss prints for the set bits of `struct inet_diag_sockopt`, in its order.
pub(super) const SOCKOPT_NAMES: [(u16, &str); 11] = [
    (0, "recverr"),
    (1, "is_icsk"),
    (2, "freebind"),
    (3, "hdrincl"),
    (4, "mc_loop"),
    (5, "transparent"),
    (6, "mc_all"),
    (7, "nodefrag"),
    (8, "bind_addr_no_port"),
    (9, "recverr_rfc4884"),
    (10, "defer_connect"),
];

/// ` recverr is_icsk ...`: each set flag of [`crate::model::socket::InetDetails::sockopt`].
#[must_use]
pub fn sockopt_text(flags: u16) -> String {
    SOCKOPT_NAMES.iter().filter(|(bit, _)| flags & (1 << bit) != 0).map(|(_, n)| format!(" {n}")).collect()
}

/// ` <->`, `-->`...: ss's `%c-%c` of the shutdown mask.
pub(super) fn shutdown_text(mask: u8) -> String {
    let mut out = String::with_capacity(4);
    push_shutdown(&mut out, mask);
    out
}

/// Appends [`shutdown_text`].
pub(super) fn push_shutdown(out: &mut String, mask: u8) {
    out.push(' ');
    out.push(if mask & 1 != 0 { '-' } else { '<' });
    out.push('-');
    out.push(if mask & 2 != 0 { '-' } else { '>' });
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::model::btf::{Btf, BtfBuilder, INT_SIGNED, StorageMapInfo};
    use crate::model::socket::SkStorageValue;

    fn names() -> Names {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, INT_SIGNED);
        let s = b.composite(false, "v", 8, &[("a", int, 0, 0), ("b", int, 32, 0)]);
        let btf = Arc::new(Btf::parse(&b.build()).expect("btf"));
        let info =
            |value_type_id| Arc::new(StorageMapInfo { value_size: 8, value_type_id, btf: Some(Arc::clone(&btf)) });
        // Map 5 is well-formed; map 6 names a type its BTF lacks, which btf_dump refuses.
        Names::fixed(None, (32768, 60999), &[]).with_bpf_maps(HashMap::from([(5, info(s)), (6, info(99))]))
    }

    fn text(oneline: bool, map_id: u32, value: &[u8]) -> String {
        let mut out = String::new();
        push_sk_storage(&mut out, oneline, &SkStorageValue { map_id, value: value.to_vec(), misalign: 0 }, &names());
        out
    }

    #[test]
    fn storages_print_as_ss_7_1_prints_them() {
        let v = [1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff];
        assert_eq!(
            text(false, 5, &v),
            "\n\tmap_id:5 [\n\t\t(struct v){\n\t\t\t.a = (int)1,\n\t\t\t.b = (int)-2,\n\t\t}\n\t]"
        );
        assert_eq!(text(true, 5, &v), " map_id:5(struct v){.a = (int)1,.b = (int)-2,}");
        // A map not looked up, a value of another size, a type btf_dump cannot find.
        assert_eq!(text(false, 7, &v), "\n\tmap_id: 7 failed to fetch info, skipping\n");
        assert_eq!(text(false, 5, &v[..4]), "");
        assert_eq!(text(false, 6, &v), "\n\tmap_id:6 [\n\t\tfailed to dump data: -2\n\t]");
        assert_eq!(text(true, 6, &v), " map_id:6failed to dump data: -2");
    }
}
