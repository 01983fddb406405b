//! The rows of the families other than inet: UNIX (`unix_stats_print()`), packet
//! (`packet_stats_print()`, `-b` filters), netlink, vsock and XDP, and the state and
//! queue fields every row starts with. May import `model`, `names` and the rest of `render`.

use crate::model::socket::{NetlinkSocket, PacketSocket, UnixSocket, VsockSocket, XdpSocket};
use crate::names::system::Names;
use crate::render::addr::queue_text;
use crate::render::grid::{
    COL_ADDR, COL_LAST, COL_MAX, COL_NETID, COL_PROCESS, COL_RADDR, COL_RECVQ, COL_RSERV, COL_SENDQ, COL_SERV,
    COL_STATE,
};
use crate::render::inet::{push_sock_details, shutdown_text};
use crate::render::labels::state_name;
use crate::render::style::Style;
use crate::render::tcpinfo::skmem_text;

/// The first four fields of every line: ss's `sock_state_print()`.
pub(super) fn state_fields(row: &mut [String; COL_MAX], netid: &str, state: u8, rq: u32, wq: u32) {
    row[COL_NETID] = netid.to_owned();
    row[COL_STATE] = state_name(state).to_owned();
    // ss keeps the queues in an `int` and prints them with "%-6d".
    row[COL_RECVQ] = queue_text(rq);
    row[COL_SENDQ] = queue_text(wq);
}

/// `unix_stats_print()`: the name (or `*`) and inode, the peer's `*` and inode. ss joins
/// address and port with a space here, not a colon.
pub(super) fn unix_row(opts: &Style, s: &UnixSocket, names: &Names) -> [String; COL_MAX] {
    let mut row: [String; COL_MAX] = Default::default();
    let netid = match s.kind {
        1 => "u_str",
        5 => "u_seq",
        _ => "u_dgr",
    };
    state_fields(&mut row, netid, s.state, s.rqueue, s.wqueue);
    // Abstract names print with '@' for each NUL, paths up to their first NUL (%s).
    row[COL_ADDR] = s.display_name().unwrap_or_else(|| "*".to_owned()) + " ";
    // ss 6.1 prints the inodes with int_to_str(), ss 7.1 with uint_to_str().
    let inode = |ino: u32| if opts.compat.v7() { ino.to_string() } else { ino.cast_signed().to_string() };
    row[COL_SERV] = inode(s.inode);
    // The netlink path never resolves the peer's name (only ss's /proc/net/unix path does).
    row[COL_RADDR] = "* ".to_owned();
    row[COL_RSERV] = inode(s.peer);
    // unix_show_sock(): owners, then `-m`'s skmem (no line break), then `-e`'s shutdown,
    // bound path inode/device and pending connections.
    row[COL_PROCESS] = names.users(s.inode);
    let mut ext = String::new();
    if let Some(d) = s.ext.as_deref() {
        if opts.show_mem
            && let Some(m) = &d.skmem
        {
            ext.push_str(&skmem_text(m));
        }
        if opts.show_details > 0 {
            if let Some(m) = d.shutdown {
                ext.push_str(&shutdown_text(m));
            }
            if let Some((ino, dev)) = d.vfs {
                // glibc's major()/minor() of the kernel's new_encode_dev() value.
                let major = (dev >> 8) & 0xfff;
                let minor = (dev & 0xff) | ((dev >> 12) & 0x000f_ff00);
                ext.push_str(&format!(" ino:{ino} dev:{major}/{minor}"));
            }
            if let Some(peers) = &d.icons {
                ext.push_str(" peers:");
                for p in peers {
                    ext.push_str(&format!(" {p}"));
                }
            }
        }
    }
    row[COL_LAST] = ext;
    row
}

/// `packet_stats_print()` and, with `-b`, `packet_show_sock()`'s filter dump.
pub(super) fn packet_row(opts: &Style, s: &PacketSocket, names: &Names) -> [String; COL_MAX] {
    let mut row: [String; COL_MAX] = Default::default();
    // SOCK_RAW is 3; ss calls every other type p_dgr.
    let netid = if s.kind == 3 { "p_raw" } else { "p_dgr" };
    // Packet sockets are always UNCONN for ss; Send-Q is never filled in.
    state_fields(&mut row, netid, 7, s.rqueue, 0);
    // ETH_P_CFM (0x8902) has a name from ss 7.1 on (iproute2's llproto_names gained it).
    let addr = match s.protocol {
        3 => "*".to_owned(),
        0x8902 if opts.compat.v7() && !opts.numeric => "cfm".to_owned(),
        p => names.ll_proto(p),
    };
    row[COL_ADDR] = addr + ":";
    row[COL_SERV] = if s.ifindex == 0 { "*".to_owned() } else { names.ifname(s.ifindex) };
    row[COL_RADDR] = "*".to_owned();
    // packet_stats_print(): owners, `-e`'s sock_details_print(); packet_show_sock(): the
    // info, rings and fanout, then `-b`, then `-m`.
    row[COL_PROCESS] = names.users(s.inode);
    let mut out = String::new();
    if opts.show_details > 0 {
        push_sock_details(&mut out, s.uid, s.inode, s.cookie);
        let nl = if opts.oneline { " " } else { "\n\t" };
        if let Some([version, copy_thresh, flags]) = s.info {
            out.push_str(&format!("{nl}ver:{version} cpy_thresh:{copy_thresh} flags( "));
            for (bit, name) in [(1, "running"), (2, " auxdata"), (4, " origdev"), (8, " vnethdr"), (16, " loss")] {
                if flags & bit != 0 {
                    out.push_str(name);
                }
            }
            if flags == 0 {
                out.push('0');
            }
            out.push_str(" )");
        }
        for (ring, name) in s.rings.iter().zip(["ring_rx(", "ring_tx("]) {
            if let Some([bs, bn, fs, fnr, tmo, _, features]) = ring {
                out.push_str(&format!(
                    "{nl}{name}blk_size:{},blk_nr:{},frm_size:{},frm_nr:{},tmo:{},features:0x{features:x})",
                    bs.cast_signed(),
                    bn.cast_signed(),
                    fs.cast_signed(),
                    fnr.cast_signed(),
                    tmo.cast_signed()
                ));
            }
        }
        if let Some(fanout) = s.fanout {
            let ty = (fanout >> 16) & 0xffff;
            let name = match ty {
                0 => "hash".to_owned(),
                1 => "lb".to_owned(),
                2 => "cpu".to_owned(),
                3 => "roll".to_owned(),
                4 => "random".to_owned(),
                5 => "qm".to_owned(),
                _ => format!("0x{ty:x}"),
            };
            out.push_str(&format!("{nl}fanout(id:{},type:{name})", fanout & 0xffff));
        }
    }
    row[COL_LAST] = out;
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
                ext.push_str(&crate::render::cbpf::image(insn, n));
                if opts.oneline {
                    ext.push(';');
                }
            }
        }
        row[COL_LAST].push_str(&ext);
    }
    if opts.show_mem
        && let Some(m) = &s.skmem
    {
        row[COL_LAST].push_str(&skmem_text(m));
    }
    row
}

/// `netlink_show_one()`.
pub(super) fn netlink_row(opts: &Style, s: &NetlinkSocket, names: &Names) -> [String; COL_MAX] {
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
    // No owners here: ss's netlink printer never calls proc_ctx_print(), so its details
    // stay in the Process field (dropped by ss 7.1 without -p). Its netlink path passes
    // sk = cb = 0; `groups` is an unsigned int there.
    if opts.show_details > 0 {
        row[COL_PROCESS] = format!(" sk=0 cb=0 groups=0x{:08x}", s.groups & 0xffff_ffff);
    }
    if opts.show_mem
        && let Some(m) = &s.skmem
    {
        row[COL_PROCESS].push('\t');
        row[COL_PROCESS].push_str(&skmem_text(m));
    }
    row
}

/// `vsock_stats_print()`.
pub(super) fn vsock_row(s: &VsockSocket, names: &Names) -> [String; COL_MAX] {
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
    row[COL_PROCESS] = names.users(s.inode);
    row
}

/// `xdp_stats_print()` and `xdp_show_sock()`'s `-e` and `-m` parts.
pub(super) fn xdp_row(opts: &Style, s: &XdpSocket, names: &Names) -> [String; COL_MAX] {
    let mut row: [String; COL_MAX] = Default::default();
    // ss: state SS_CLOSE (UNCONN), Recv-Q from SK_MEMINFO_RMEM_ALLOC, Send-Q never set.
    state_fields(&mut row, "xdp", 7, s.rqueue, 0);
    if s.ifindex == 0 {
        row[COL_ADDR] = "*".to_owned();
    } else {
        row[COL_ADDR] = names.ifname(s.ifindex) + ":";
        // "q%d" of the queue id stored in an int.
        row[COL_SERV] = format!("q{}", s.queue_id.cast_signed());
    }
    row[COL_RADDR] = "*".to_owned();
    row[COL_PROCESS] = names.users(s.inode);
    let mut out = String::new();
    if opts.show_details > 0 {
        // sock_details_print(): no mark or cgroup for XDP sockets.
        push_sock_details(&mut out, s.uid, s.inode, s.cookie);
        let nl = if opts.oneline { " " } else { "\n\t" };
        let ring = |out: &mut String, name: &str, entries: Option<u32>| {
            if let Some(e) = entries {
                out.push_str(&format!("{nl}{name}(entries:{e})"));
            }
        };
        ring(&mut out, "rx", s.rx_ring);
        ring(&mut out, "tx", s.tx_ring);
        if let Some(u) = &s.umem {
            // ss 6.1 prints " tumem(" on one line (-O): its typo, kept.
            out.push_str(if opts.oneline { " tumem(" } else { "\n\tumem(" });
            out.push_str(&format!(
                "id:{},size:{},num_pages:{},chunk_size:{},headroom:{},ifindex:{},qid:{},zc:{},refs:{})",
                u.id,
                u.size,
                u.num_pages,
                u.chunk_size,
                u.headroom,
                u.ifindex,
                u.queue_id,
                u.flags & 1,
                u.refs
            ));
            ring(&mut out, "fr", s.fill_ring);
            ring(&mut out, "cr", s.completion_ring);
        }
        if let Some([dropped, rx_invalid, full, fill_empty, tx_invalid, tx_empty]) = s.stats {
            out.push_str(&format!(
                "{nl}stats(rx dropped:{dropped},rx invalid:{rx_invalid},rx queue full:{full},\
                 rx fill ring empty:{fill_empty},tx invalid:{tx_invalid},tx ring empty:{tx_empty})"
            ));
        }
    }
    if opts.show_mem
        && let Some(m) = &s.skmem
    {
        out.push_str(&skmem_text(m));
    }
    row[COL_LAST] = out;
    row
}
