//! `--json`: one JSON object per socket, one per line (NDJSON), in the order ss would
//! print the rows, with every column ss prints for the same options, typed: numbers are
//! JSON numbers, absent values are left out rather than printed as placeholders.
//!
//! Keys of every object:
//! - `netid` (`"tcp"`, `"udp"`, `"raw"`, `"mptcp"`, `"xdp"`, `"u_str"`, `"u_dgr"`, `"u_seq"`, `"p_raw"`,
//!   `"p_dgr"`, `"nl"`, `"v_str"`, `"v_dgr"`) and `state` (ss's name: `"ESTAB"`,
//!   `"LISTEN"`, `"UNCONN"`...), always, even when ss hides the column;
//! - `recv_q`, `send_q`: numbers;
//! - inet sockets: `local_address`, `peer_address` (plain text, no brackets, `::` and
//!   `0.0.0.0` as such), `local_port`, `peer_port` (numbers; 0 = `*`), `interface` (name
//!   of the bound device, only if bound), `v6only` (bool, AF_INET6 only);
//! - UNIX: `local_address` (the name, `@` for abstract NULs; absent when unnamed),
//!   `local_port` (inode), `peer_port` (peer inode);
//! - packet: `protocol` (number), `interface`; netlink: `protocol`, `portid`, and
//!   `dst_group` / `dst_portid` when connected; vsock: `local_cid`, `local_port`,
//!   `peer_cid`, `peer_port`; xdp: `interface` and `queue_id` (only if bound).
//! - xdp with `-e`: `uid`, `inode`, `cookie`, and when sent `rx_ring`, `tx_ring`,
//!   `fill_ring`, `completion_ring` (entries), `umem` {`id`, `size`, `num_pages`,
//!   `chunk_size`, `headroom`, `ifindex`, `queue_id`, `zc`, `refs`}, `stats`
//!   {`rx_dropped`, `rx_invalid`, `rx_queue_full`, `rx_fill_ring_empty`, `tx_invalid`,
//!   `tx_ring_empty`}.
//!
//! With options, as ss prints them: `-o` `timer` {`name`, `expires_ms`, `retrans`};
//! `-e` `uid`, `inode`, `cookie` (ss's `sk:`, a number), `fwmark`, `cgroup` (path),
//! `shutdown` (the mask, a number); UNIX `vfs_inode`, `vfs_dev` ("MAJ/MIN"), `peers`;
//! `-m` `skmem` {`r`, `rb`, `t`, `tb`, `f`, `w`, `o`, `bl`, `d`}; `-i` `tcp_info` (every
//! field of `struct tcp_info` ss reads, raw kernel units: microseconds for rtt/rto/ato,
//! bytes per second for rates) with `cong`, `bbr`, `dctcp`, `vegas` when sent (MPTCP
//! sockets: `mptcp_info`, the fields of `struct mptcp_info` ss reads, instead); `-p`
//! `users` [{`comm`, `pid`, `fd`}] (`-T`: every thread, with `tid`); `--cgroup` `cgroup`;
//! `--tos` `tos`, `tclass`, `class_id` (numbers, when sent); `--inet-sockopt`
//! `inet_sockopt` (the names ss prints, an array); `-b` on packet sockets `bpf_filter`,
//! the classic BPF program attached, [{`code`, `jt`, `jf`, `k`}] (numbers, as `-b` prints
//! them); `--bpf-maps`/`--bpf-map-id` on inet sockets that have any, `bpf_maps`
//! [{`map_id`, `value` (typed from the map's BTF: objects, arrays, numbers, strings for
//! char arrays, enumerator names), `text` (btf_dump's text, as `-O` prints it)}], or
//! `error` where ss prints a failure (ss 7.1 has no JSON output).

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;

use serde_json::{Map, Value, json};

use crate::model::owner::Owner;
use crate::model::socket::{InetSocket, Snapshot, UnixSocket};
use crate::render::format::Names;
use crate::render::labels::{netid_name, state_name};
use crate::render::style::Style;

const TIMERS: [&str; 6] = ["off", "on", "keepalive", "timewait", "persist", "unknown"];

/// Writes one JSON object per socket of `snap`, in ss's table order.
///
/// # Errors
/// Any error writing to `out`.
pub fn render(
    opts: &Style,
    snap: &Snapshot,
    names: &Names,
    owners: &HashMap<u32, Vec<Owner>>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut emit = |mut obj: Map<String, Value>, inode: u32| -> io::Result<()> {
        if (opts.show_processes > 0 || opts.show_threads)
            && let Some(list) = owners.get(&inode)
        {
            obj.insert("users".into(), json!(list));
        }
        serde_json::to_writer(&mut *out, &obj)?;
        out.write_all(b"\n")
    };
    for s in &snap.netlink {
        let mut o = head("nl", 7, s.rqueue, s.wqueue);
        o.insert("protocol".into(), json!(s.protocol));
        o.insert("portid".into(), json!(s.portid));
        if s.state == 1 {
            o.insert("dst_group".into(), json!(s.dst_group));
            o.insert("dst_portid".into(), json!(s.dst_portid));
        }
        if opts.show_details > 0 {
            o.insert("groups".into(), json!(s.groups & 0xffff_ffff));
        }
        if opts.show_mem {
            insert_skmem(&mut o, s.skmem.as_deref());
        }
        // ss prints no owners for netlink sockets: inode 0 is never an owner's.
        emit(o, 0)?;
    }
    for s in &snap.packet {
        let mut o = head(if s.kind == 3 { "p_raw" } else { "p_dgr" }, 7, s.rqueue, 0);
        o.insert("protocol".into(), json!(s.protocol));
        if s.ifindex != 0 {
            o.insert("interface".into(), json!(names.ifname(s.ifindex)));
        }
        if opts.show_details > 0 {
            o.insert("uid".into(), json!(s.uid));
            o.insert("inode".into(), json!(s.inode));
            o.insert("cookie".into(), json!(s.cookie));
        }
        if opts.show_mem {
            insert_skmem(&mut o, s.skmem.as_deref());
        }
        if opts.show_bpf
            && let Some(filter) = &s.filter
        {
            let insns: Vec<Value> =
                filter.iter().map(|i| json!({"code": i.code, "jt": i.jt, "jf": i.jf, "k": i.k})).collect();
            o.insert("bpf_filter".into(), Value::Array(insns));
        }
        emit(o, s.inode)?;
    }
    for s in &snap.unix {
        emit(unix(opts, s), s.inode)?;
    }
    for (list, netid) in [
        (&snap.raw, "raw"),
        (&snap.udp, "udp"),
        (&snap.tcp, "tcp"),
        (&snap.dccp, "dccp"),
        (&snap.sctp, "sctp"),
        (&snap.mptcp, "mptcp"),
    ] {
        for s in list {
            emit(inet(opts, s, names, netid), s.inode)?;
        }
    }
    for s in &snap.vsock {
        let netid = match s.kind {
            1 => "v_str",
            2 => "v_dgr",
            _ => "???",
        };
        let mut o = head(netid, s.state, 0, 0);
        o.insert("local_cid".into(), json!(s.src_cid));
        o.insert("local_port".into(), json!(s.src_port));
        o.insert("peer_cid".into(), json!(s.dst_cid));
        o.insert("peer_port".into(), json!(s.dst_port));
        emit(o, s.inode)?;
    }
    for s in &snap.xdp {
        let mut o = head("xdp", 7, s.rqueue, 0);
        if s.ifindex != 0 {
            o.insert("interface".into(), json!(names.ifname(s.ifindex)));
            o.insert("queue_id".into(), json!(s.queue_id));
        }
        if opts.show_details > 0 {
            o.insert("uid".into(), json!(s.uid));
            o.insert("inode".into(), json!(s.inode));
            o.insert("cookie".into(), json!(s.cookie));
            for (key, ring) in [
                ("rx_ring", s.rx_ring),
                ("tx_ring", s.tx_ring),
                ("fill_ring", s.fill_ring),
                ("completion_ring", s.completion_ring),
            ] {
                if let Some(entries) = ring {
                    o.insert(key.into(), json!(entries));
                }
            }
            if let Some(u) = &s.umem {
                o.insert(
                    "umem".into(),
                    json!({"id": u.id, "size": u.size, "num_pages": u.num_pages, "chunk_size": u.chunk_size,
                           "headroom": u.headroom, "ifindex": u.ifindex, "queue_id": u.queue_id,
                           "zc": u.flags & 1, "refs": u.refs}),
                );
            }
            if let Some([d, ri, f, fe, ti, te]) = s.stats {
                o.insert(
                    "stats".into(),
                    json!({"rx_dropped": d, "rx_invalid": ri, "rx_queue_full": f, "rx_fill_ring_empty": fe,
                           "tx_invalid": ti, "tx_ring_empty": te}),
                );
            }
        }
        if opts.show_mem {
            insert_skmem(&mut o, s.skmem.as_deref());
        }
        emit(o, s.inode)?;
    }
    Ok(())
}

/// `-E --json`: one object for a destroyed inet socket, on its own line. The keys are a
/// dump's (`netid` from the notification's protocol); a notification has no uid, inode
/// or timer, so `-e` prints 0 for `uid` and `inode`, and `-p` finds no owner. It does not
/// say whether an IPv6 socket was v6-only: `v6only` is left out.
///
/// # Errors
/// Any error writing to `out`.
pub fn write_inet_event(opts: &Style, s: &InetSocket, names: &Names, out: &mut dyn Write) -> io::Result<()> {
    let mut obj = inet(opts, s, names, netid_name(s.protocol));
    if s.ext.as_ref().is_none_or(|d| d.v6only.is_none()) {
        obj.remove("v6only");
    }
    serde_json::to_writer(&mut *out, &obj)?;
    out.write_all(b"\n")
}

fn head(netid: &str, state: u8, rq: u32, wq: u32) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("netid".into(), json!(netid));
    o.insert("state".into(), json!(state_name(state)));
    // ss keeps the queues in an int.
    o.insert("recv_q".into(), json!(rq.cast_signed()));
    o.insert("send_q".into(), json!(wq.cast_signed()));
    o
}

fn insert_skmem(o: &mut Map<String, Value>, m: Option<&[u32]>) {
    if let Some(m) = m {
        let mut sk = Map::new();
        for (i, key) in ["r", "rb", "t", "tb", "f", "w", "o", "bl", "d"].iter().enumerate() {
            if let Some(v) = m.get(i) {
                sk.insert((*key).into(), json!(v));
            }
        }
        o.insert("skmem".into(), Value::Object(sk));
    }
}

fn unix(opts: &Style, s: &UnixSocket) -> Map<String, Value> {
    let netid = match s.kind {
        1 => "u_str",
        5 => "u_seq",
        _ => "u_dgr",
    };
    let mut o = head(netid, s.state, s.rqueue, s.wqueue);
    if let Some(name) = s.display_name() {
        o.insert("local_address".into(), json!(name));
    }
    o.insert("local_port".into(), json!(s.inode));
    o.insert("peer_port".into(), json!(s.peer));
    if let Some(d) = s.ext.as_deref() {
        if opts.show_mem {
            insert_skmem(&mut o, d.skmem.as_deref());
        }
        if opts.show_details > 0 {
            if let Some(m) = d.shutdown {
                o.insert("shutdown".into(), json!(m));
            }
            if let Some((ino, dev)) = d.vfs {
                o.insert("vfs_inode".into(), json!(ino));
                o.insert(
                    "vfs_dev".into(),
                    json!(format!("{}/{}", (dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0x000f_ff00))),
                );
            }
            if let Some(p) = &d.icons {
                o.insert("peers".into(), json!(p));
            }
        }
    }
    o
}

fn addr(a: &IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => crate::render::format::inet6_ntop(v6),
    }
}

fn inet(opts: &Style, s: &InetSocket, names: &Names, netid: &str) -> Map<String, Value> {
    let mut o = head(netid, s.state, s.rqueue, s.wqueue);
    o.insert("local_address".into(), json!(addr(&s.src)));
    o.insert("local_port".into(), json!(s.sport));
    o.insert("peer_address".into(), json!(addr(&s.dst)));
    o.insert("peer_port".into(), json!(s.dport));
    if s.ifindex != 0 {
        o.insert("interface".into(), json!(names.ifname(s.ifindex)));
    }
    if s.family == sockstat_ebpf::AF_INET6 {
        o.insert("v6only".into(), json!(s.v6only));
    }
    let raw = s.protocol == crate::model::socket::PROTO_RAW_TABLE;
    if opts.show_options && !raw && s.timer != 0 {
        o.insert(
            "timer".into(),
            json!({"name": TIMERS[usize::from(s.timer.min(5))], "expires_ms": s.expires_ms, "retrans": s.retrans}),
        );
    }
    let d = s.ext.as_deref();
    if opts.show_details > 0 && !raw {
        o.insert("uid".into(), json!(s.uid));
        o.insert("inode".into(), json!(s.inode));
        o.insert("cookie".into(), json!(s.cookie));
        if let Some(d) = d {
            if d.mark != 0 {
                o.insert("fwmark".into(), json!(d.mark));
            }
            if d.cgroup_id != 0 {
                o.insert("cgroup".into(), json!(names.cgroup_path(d.cgroup_id)));
            }
            if let Some(m) = d.shutdown {
                o.insert("shutdown".into(), json!(m));
            }
        }
    }
    // --cgroup: the same `cgroup` field as -e's.
    if opts.show_cgroup
        && !raw
        && let Some(d) = d
        && d.cgroup_id != 0
    {
        o.insert("cgroup".into(), json!(names.cgroup_path(d.cgroup_id)));
    }
    if let Some(d) = d {
        if opts.show_tos {
            for (key, v) in [("tos", json!(d.tos)), ("tclass", json!(d.tclass)), ("class_id", json!(d.class_id))] {
                if !v.is_null() {
                    o.insert(key.into(), v);
                }
            }
        }
        if opts.show_inet_sockopt
            && let Some(flags) = d.sockopt
        {
            let names: Vec<String> =
                crate::render::format::sockopt_text(flags).split_whitespace().map(str::to_owned).collect();
            o.insert("inet_sockopt".into(), json!(names));
        }
        if opts.show_details > 0 && raw {
            o.insert("opt".into(), json!(d.proc_opt));
        }
        if opts.show_mem {
            insert_skmem(&mut o, d.skmem.as_deref());
        }
        if opts.show_tcpinfo
            && let Some(i) = &d.mptcp_info
        {
            o.insert("mptcp_info".into(), json!(i));
        }
        if opts.show_tcpinfo && s.protocol != 17 {
            if let Some(i) = &d.tcp_info {
                o.insert("tcp_info".into(), json!(i));
            }
            for (key, v) in
                [("cong", json!(d.cong)), ("bbr", json!(d.bbr)), ("dctcp", json!(d.dctcp)), ("vegas", json!(d.vegas))]
            {
                if !v.is_null() {
                    o.insert(key.into(), v);
                }
            }
        }
        if !d.bpf_storages.is_empty() {
            o.insert("bpf_maps".into(), Value::Array(d.bpf_storages.iter().map(|v| sk_storage(v, names)).collect()));
        }
    }
    o
}

/// One socket-local storage value (`--bpf-maps`): `map_id`, `value` typed from the map's
/// BTF ([`crate::render::btf_dump::json_value`]) and `text`, what `-O` prints for it;
/// `error` (ss's words) in place of them when the map could not be looked up or the value
/// is not its map's size, and beside a `text` cut short where btf_dump stops.
fn sk_storage(v: &crate::model::socket::SkStorageValue, names: &Names) -> Value {
    use crate::render::btf_dump::{DumpOpts, dump_type_data, json_value};
    let mut o = Map::new();
    o.insert("map_id".into(), json!(v.map_id));
    let Some(map) = names.bpf_map(v.map_id) else {
        o.insert("error".into(), json!("failed to fetch info"));
        return Value::Object(o);
    };
    if map.value_size as usize != v.value.len() {
        let e = format!("invalid value size, expecting {}, got {}", map.value_size, v.value.len());
        o.insert("error".into(), json!(e));
        return Value::Object(o);
    }
    let Some(btf) = &map.btf else {
        o.insert("error".into(), json!("the map has no BTF"));
        return Value::Object(o);
    };
    o.insert("value".into(), json_value(btf, map.value_type_id, &v.value));
    let (text, r) = dump_type_data(
        btf,
        map.value_type_id,
        &v.value,
        DumpOpts { indent_level: 0, compact: true, misalign: v.misalign },
    );
    o.insert("text".into(), json!(text));
    if let Err(e) = r {
        o.insert("error".into(), json!(format!("failed to dump data: {e}")));
    }
    Value::Object(o)
}
