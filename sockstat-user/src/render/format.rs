//! ss-compatible output: a two-pass column renderer (ss.c's `out()`/`field_next()` buffer,
//! `render_calc_width()` and `render()`), writing to any `io::Write`, and the inet
//! columns ss prints for TCP sockets (`sock_state_print`, `inet_addr_print`,
//! `resolve_service`).
//!
//! The bar is byte-identical output with iproute2 6.1's `ss` for the same sockets: the
//! same column widths, alignment, delimiters and trailing spaces. Pass one collects every
//! field of every line and measures each column; pass two prints. When stdout is not a
//! terminal ss prints "compact" columns (content width plus delimiter); on a terminal it
//! spreads the spare width over the columns: [`Style::screen_width`] chooses which.
//! [`EventRenderer`] drives the same renderer the way `ss -E` does: one render per
//! destroyed socket, with the column widths carried over from one render to the next.
//!
//! Names come from [`Names`]: /etc/services for ports (as ss's `getservbyport(port,
//! "tcp")`, skipping the ephemeral range as ss does), the kernel for interface names.
//! With `-r`, host addresses print as names ([`crate::names::hosts::HostNames`], glibc's
//! `gethostbyaddr()` as iproute2's `format_host()` calls it).
//!
//! The pieces live beside this file: [`super::grid`] (columns, widths, printing),
//! [`super::addr`] (address and port text), [`super::inet`] (inet rows), [`super::tcpinfo`]
//! (`-i`/`-m` text), [`super::family`] (the other families' rows), [`super::events`] (`-E`).
//! This module assembles a snapshot's rows into one grid and keeps the paths callers use.

use std::io::{self, Write};
use std::ops::Range;

use crate::model::socket::{InetRows, InetSocket, Snapshot};
pub use crate::names::system::{Names, PortKind};
pub use crate::render::addr::{addr_text, inet6_ntop};
pub use crate::render::events::EventRenderer;
use crate::render::family::{netlink_row, packet_row, unix_row, vsock_row, xdp_row};
use crate::render::grid::{COL_MAX, COL_NETID, COL_PROCESS, COL_RECVQ, COL_SENDQ, COL_STATE, Grid, GridParts};
pub use crate::render::inet::sockopt_text;
use crate::render::inet::{inet_row_into, inet_row_lens};
pub use crate::render::labels::{netid_name, state_name};
use crate::render::style::{SsCompat, Style};
pub use crate::render::tcpinfo::c_g;

/// The text inside ss's `users:(...)`: `("comm",pid=N,fd=N)` joined by commas.
#[must_use]
pub fn users_text(owners: &[crate::model::owner::Owner]) -> String {
    users_text_for(owners, SsCompat::V6_1)
}

/// [`users_text`] as the given ss prints it: ss 7.1 escapes each name ([`escaped_comm`]).
#[must_use]
pub fn users_text_for(owners: &[crate::model::owner::Owner], compat: SsCompat) -> String {
    // Written in place: `-p` makes one of these per socket (100k and more).
    let mut out = String::with_capacity(owners.len() * 40);
    for (i, o) in owners.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_owner(&mut out, &o.comm, o.pid, o.tid, o.fd, compat);
    }
    out
}

/// The agent's owner records as `-p` prints them: each socket's [`users_text_for`] is
/// written from the records when its row is, straight into the row (each name from the
/// record's own bytes). At 100k sockets, making 100k texts first and copying each into
/// its row later was most of a `-p` query's client time (an allocation each, then a
/// cache miss each).
#[derive(Debug)]
pub struct RecordUsers {
    records: crate::model::owner::OwnerRecords,
    /// Socket inode -> its first owner in `chain`, and the length of its list's text.
    heads: rustc_hash::FxHashMap<u32, (u32, u32)>,
    /// (record index, next owner of the same inode or [`RecordUsers::END`]), in ss's
    /// order: the last record found first (ss prepends each find).
    chain: Vec<(u32, u32)>,
    compat: SsCompat,
}

impl RecordUsers {
    const END: u32 = u32::MAX;

    /// The owners of the `wanted` socket inodes among `records` (of every socket they
    /// hold: `None`).
    #[must_use]
    pub fn new(
        records: crate::model::owner::OwnerRecords,
        wanted: Option<&rustc_hash::FxHashSet<u32>>,
        compat: SsCompat,
    ) -> Self {
        let n = wanted.map_or(records.len(), rustc_hash::FxHashSet::len);
        let mut heads = rustc_hash::FxHashMap::with_capacity_and_hasher(n, Default::default());
        let mut chain = Vec::with_capacity(n);
        // In the records' order, each prepended: the last found comes first.
        for (i, r) in records.iter().enumerate() {
            let Ok(inode) = u32::try_from(r.inode()) else { continue };
            if wanted.is_some_and(|w| !w.contains(&inode))
                || i32::try_from(r.pid()).is_err()
                || i32::try_from(r.fd()).is_err()
            {
                continue;
            }
            let (Ok(index), Ok(at)) = (u32::try_from(i), u32::try_from(chain.len())) else { break };
            // Counted here, in the records' order: printing measures every list before it
            // writes any, and a list's records lie anywhere in the records.
            let own = owner_len(r.name_bytes(), r.pid() as i32, r.fd() as i32, compat);
            let next = match heads.entry(inode) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    let (next, len): (u32, u32) = *e.get();
                    // A comma before it.
                    e.insert((at, len.saturating_add(1).saturating_add(own)));
                    next
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert((at, own));
                    Self::END
                }
            };
            chain.push((index, next));
        }
        RecordUsers { records, heads, chain, compat }
    }
}

impl crate::names::system::Users for RecordUsers {
    fn holds(&self, inode: u32) -> bool {
        self.heads.contains_key(&inode)
    }

    fn len(&self, inode: u32) -> Option<usize> {
        self.heads.get(&inode).map(|&(_, len)| len as usize)
    }

    fn push(&self, out: &mut String, inode: u32) -> bool {
        let Some(&(head, _)) = self.heads.get(&inode) else { return false };
        let mut at = head;
        let mut first = true;
        while let Some(&(index, next)) = self.chain.get(at as usize) {
            if let Some(r) = self.records.get(index as usize) {
                if !first {
                    out.push(',');
                }
                first = false;
                // Numbers that fit were checked when the chain was made.
                let (pid, fd) = (r.pid() as i32, r.fd() as i32);
                push_owner(out, r.name_bytes(), pid, None, fd, self.compat);
            }
            at = next;
        }
        true
    }
}

/// One owner: `("comm",pid=N[,tid=N],fd=N)`. ss 7.1 escapes the name byte by byte (an
/// invalid UTF-8 byte is one `?`); ss 6.1 prints it as it is (here a name that is not
/// UTF-8 gets a replacement character).
fn push_owner(out: &mut String, comm: &[u8], pid: i32, tid: Option<i32>, fd: i32, compat: SsCompat) {
    out.push_str("(\"");
    if compat.v7() {
        push_escaped_comm(out, comm);
    } else {
        out.push_str(&String::from_utf8_lossy(comm));
    }
    out.push_str("\",pid=");
    push_int(out, pid);
    if let Some(tid) = tid {
        out.push_str(",tid=");
        push_int(out, tid);
    }
    out.push_str(",fd=");
    push_int(out, fd);
    out.push(')');
}

/// The length of [`push_owner`]'s text for a process without a thread id, counted.
fn owner_len(comm: &[u8], pid: i32, fd: i32, compat: SsCompat) -> u32 {
    let name =
        if compat.v7() || std::str::from_utf8(comm).is_ok() { comm.len() } else { String::from_utf8_lossy(comm).len() };
    let int = |n: i32| usize::from(n < 0) + n.unsigned_abs().checked_ilog10().map_or(1, |l| l as usize + 1);
    // ("NAME",pid=N,fd=N)
    u32::try_from("(\"".len() + name + "\",pid=".len() + int(pid) + ",fd=".len() + int(fd) + 1).unwrap_or(u32::MAX)
}

/// `%d`.
fn push_int(out: &mut String, n: i32) {
    if n < 0 {
        out.push('-');
    }
    crate::render::addr::push_decimal(out, u64::from(n.unsigned_abs()));
}

/// A process name as ss 7.1 prints it: iproute2's `escape_str()` (procps' escaping) in
/// the C locale ss runs in (it never calls setlocale(), so the codeset is not UTF-8):
/// `esc_all()` makes each control byte and DEL a `.` and each byte above 0x7f a `?`.
#[must_use]
pub fn escaped_comm(comm: &str) -> String {
    let mut out = String::with_capacity(comm.len());
    push_escaped_comm(&mut out, comm.as_bytes());
    out
}

/// [`escaped_comm`] of a name's bytes as the kernel keeps them (UTF-8 or not: ss escapes
/// bytes, so an invalid byte is one `?`, not a replacement character's three).
fn push_escaped_comm(out: &mut String, comm: &[u8]) {
    out.extend(comm.iter().map(|&b| match b {
        0 => '@',
        0x01..=0x1f | 0x7f => '.',
        0x80..=0xff => '?',
        _ => char::from(b),
    }));
}

/// The columns ss hides for `opts`: Netid with one table, State with one state, the
/// queues with `-Q`, and (ss 7.1) Process without `-p`.
pub(super) fn disabled_columns(opts: &Style) -> [bool; COL_MAX] {
    let mut disabled = [false; COL_MAX];
    disabled[COL_NETID] = !opts.show_netid;
    disabled[COL_STATE] = !opts.show_state;
    disabled[COL_RECVQ] = opts.hide_queues;
    disabled[COL_SENDQ] = opts.hide_queues;
    disabled[COL_PROCESS] = opts.compat.v7() && opts.show_processes == 0;
    disabled
}

/// Prints `sockets` as `ss -t` does for `opts` (header, Netid/State columns as selected,
/// service names unless `-n`), with names from the system. The sockets are printed in the
/// order given: select and order them first (`query::select`).
///
/// # Errors
/// Any error writing to `out`.
pub fn render_inet(opts: &Style, sockets: &[InetSocket], out: &mut dyn Write) -> io::Result<()> {
    render_inet_with(opts, sockets, &Names::system(opts.numeric), out)
}

/// [`render_inet`] with the given [`Names`].
///
/// # Errors
/// Any error writing to `out`.
pub fn render_inet_with(opts: &Style, sockets: &[InetSocket], names: &Names, out: &mut dyn Write) -> io::Result<()> {
    let snap = Snapshot { tcp: sockets.to_vec(), ..Snapshot::default() };
    render_with(opts, &snap, names, out)
}

/// Prints every table of `snap` in ss's order (netlink, packet, UNIX, raw, UDP, TCP,
/// DCCP, SCTP, vsock, XDP, MPTCP: ss.c `main()`), as one grid: the column widths are measured
/// over all of them, as ss's single render buffer does.
///
/// # Errors
/// Any error writing to `out`.
pub fn render(opts: &Style, snap: &Snapshot, out: &mut dyn Write) -> io::Result<()> {
    render_with(opts, snap, &Names::system(opts.numeric), out)
}

/// [`render`] with the given [`Names`].
///
/// # Errors
/// Any error writing to `out`.
pub fn render_with(opts: &Style, snap: &Snapshot, names: &Names, out: &mut dyn Write) -> io::Result<()> {
    // Two threads for a big answer (the rows' text is most of a query's client time)
    // when there are two CPUs to run them; not with -r, whose lookups ss makes one by
    // one, in order.
    let parts = if row_count(snap) < PARALLEL_ROWS || opts.resolve_hosts {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
    };
    render_in_parts(opts, snap, names, parts, out)
}

/// [`render_with`], the rows built and printed in `parts` parts, one thread each: the
/// same text whatever the number.
pub(super) fn render_in_parts(
    opts: &Style,
    snap: &Snapshot,
    names: &Names,
    parts: usize,
    out: &mut dyn Write,
) -> io::Result<()> {
    let disabled = disabled_columns(opts);
    let v7 = opts.compat.v7();
    let total = row_count(snap);
    let parts = parts.clamp(1, total.max(1));
    // Part i holds rows bounds[i]..bounds[i + 1]; the first one the header too.
    let bounds: Vec<usize> = (0..=parts).map(|i| total * i / parts).collect();
    let build = |i: usize| {
        let rows = bounds[i]..bounds[i + 1];
        let mut grid = Grid::part(disabled, i == 0 && opts.show_header, v7, rows.len(), i + 1 == parts);
        push_rows(&mut grid, opts, snap, names, rows);
        grid
    };
    let grids = crate::threads::each_on_a_thread(0..parts, build);
    GridParts { parts: &grids }.write(opts.screen_width, out)
}

/// Prints TCP `rows` as [`render_with`] prints a snapshot holding only them, without
/// holding their text: each block of rows is built twice (measured, then printed), from
/// sockets made one at a time by `rows` (the agent's answer, decoded as it is read).
///
/// # Errors
/// Any error writing to `out`.
pub fn render_tcp_rows(opts: &Style, rows: &dyn InetRows, names: &Names, out: &mut dyn Write) -> io::Result<()> {
    use crate::render::grid::{STREAMED_BLOCK, StreamedGrid};
    let n = rows.len();
    let threads = if n < PARALLEL_ROWS || opts.resolve_hosts {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
    };
    let grid = StreamedGrid {
        disabled: disabled_columns(opts),
        v7: opts.compat.v7(),
        header: opts.show_header,
        rows: n,
        threads,
    };
    let lens =
        |i: usize, scratch: &mut String| inet_row_lens(opts, &rows.socket(i), names, "tcp", PortKind::Tcp, scratch);
    let build = |b: usize, grid: &mut Grid| {
        for i in b * STREAMED_BLOCK..n.min((b + 1) * STREAMED_BLOCK) {
            inet_row_into(&mut grid.row(), opts, &rows.socket(i), names, "tcp", PortKind::Tcp);
            grid.end_row(false);
        }
    };
    grid.write(&lens, &build, opts.screen_width, out)
}

/// Rows from which [`render_with`] builds and prints on two threads.
pub(super) const PARALLEL_ROWS: usize = 20_000;

/// The number of rows of `snap`'s sockets.
fn row_count(snap: &Snapshot) -> usize {
    [
        snap.netlink.len(),
        snap.packet.len(),
        snap.unix.len(),
        snap.raw.len(),
        snap.udp.len(),
        snap.tcp.len(),
        snap.dccp.len(),
        snap.sctp.len(),
        snap.vsock.len(),
        snap.xdp.len(),
        snap.mptcp.len(),
    ]
    .iter()
    .sum()
}

/// Pushes rows `rows` (numbered over every table, in ss's order) of `snap` to `grid`.
fn push_rows(grid: &mut Grid, opts: &Style, snap: &Snapshot, names: &Names, rows: Range<usize>) {
    // The first row of the next table.
    let mut at = 0;
    // The part of `rows` in the next table, `len` rows long, as indices into it.
    let mut take = |len: usize| {
        let span = rows.start.clamp(at, at + len) - at..rows.end.clamp(at, at + len) - at;
        at += len;
        span
    };
    for s in &snap.netlink[take(snap.netlink.len())] {
        grid.push_netlink(&netlink_row(opts, s, names));
    }
    for s in &snap.packet[take(snap.packet.len())] {
        grid.push(&packet_row(opts, s, names));
    }
    for s in &snap.unix[take(snap.unix.len())] {
        grid.push(&unix_row(opts, s, names));
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
        for s in &list[take(list.len())] {
            inet_row_into(&mut grid.row(), opts, s, names, netid, kind);
            grid.end_row(false);
        }
    }
    for s in &snap.vsock[take(snap.vsock.len())] {
        grid.push(&vsock_row(s, names));
    }
    for s in &snap.xdp[take(snap.xdp.len())] {
        grid.push(&xdp_row(opts, s, names));
    }
    for s in &snap.mptcp[take(snap.mptcp.len())] {
        inet_row_into(&mut grid.row(), opts, s, names, "mptcp", PortKind::Tcp);
        grid.end_row(false);
    }
}

#[cfg(test)]
mod tests;
