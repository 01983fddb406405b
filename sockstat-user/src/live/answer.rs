//! Answering queries: from the table on the event loop (status, TCP sockets), or by work
//! handed off the loop (a dump of every table, the owners iterator).

use std::sync::Arc;

use sockstat_ebpf::{AF_INET, AF_INET6, IPPROTO_TCP, TcpState};
use tracing::{debug, info, warn};

use crate::{
    diag::{DiagError, SockDiag},
    filter::Filter,
    live::{
        error::{AgentError, error_text},
        minis,
        ready::Ready,
        state::State,
        table::{self, KERNEL_STATES},
    },
    model::clock::monotonic_ns,
    model::socket::InetSocket,
    sys::netns::{self, HandleError},
    wire::{
        protocol::{
            Encoded, ProgramStatus, ROWS_FRAME_HEAD, Request, Response, Status, encode, encode_owners_into,
            encode_rows_into,
        },
        rows::TcpRows,
    },
};

/// What a request gets: an answer now, or work to run off the event loop that makes it.
pub(super) enum Answer {
    /// Boxed: a Response is large, a job is a pointer.
    Now(Box<Response>),
    /// The job makes the answer's frame (a large one is encoded as it is made).
    Later(Box<dyn FnOnce() -> Encoded + Send>),
    /// A frame made on the spot: few rows, found through an index or the listeners alone
    /// (a hop to a worker thread and back would be most of its time).
    Encoded(Encoded),
}

/// Rows an indexed answer may look at to be made on the event loop.
const ON_THE_SPOT_ROWS: usize = 256;

/// Work off the event loop that makes a [`Response`], encoded there too.
fn later(job: impl FnOnce() -> Response + Send + 'static) -> Answer {
    Answer::Later(Box::new(move || encode(&job())))
}

impl Answer {
    fn now(r: Response) -> Answer {
        Answer::Now(Box::new(r))
    }
}

/// What the table side of a TCP query gives.
enum Tcp {
    /// The table's ready answer: the rows are copied from it off the event loop.
    Ready(Arc<Ready>),
    /// Rows the agent dumped (without its sock_ops program).
    Dumped(Vec<InetSocket>),
}

/// The frame of the rows of `ready` a query asks for, in its families' order, written in
/// the last large answer's buffer when one is kept (`spare`).
fn rows(ready: &Ready, families: &[u16], states: u32, filter: Option<&Filter>) -> Encoded {
    let fill = |out: &mut Vec<u8>| {
        for &family in families {
            ready.answer(family, states, filter, out);
        }
    };
    if filter.is_some_and(|f| f.expr.is_some()) {
        let mut out = Vec::new();
        fill(&mut out);
        return encode(&Response::Rows(TcpRows(out)));
    }
    // An unfiltered answer's size is known: its rows are written once, into their frame
    // (hundreds of thousands of rows are tens of MiB: copies of it are what several
    // clients at once would make the agent hold).
    let len = families.iter().map(|&f| ready.bytes_in(f, states)).sum();
    encode_rows_into(super::spare::take(ROWS_FRAME_HEAD + len), len, fill)
}

impl State {
    pub(super) fn answer(&mut self, req: Request, peer: Option<u32>, conn: u64) -> Answer {
        match req {
            Request::Dump { netns, spec } => {
                let listener = self.info.listener_inode;
                // One socket of the agent's in the namespace dumped (besides its own
                // long-lived one at home), as ss has one of its own there.
                let dump = move || crate::query::fetch::dump_tables(&mut crate::query::fetch::open_for(&spec)?, &spec);
                let finish = move |dumped: Result<crate::model::socket::Snapshot, AgentError>| match dumped {
                    Ok(mut snap) => {
                        without_query_connections(&mut snap.unix, listener, conn);
                        Response::Dump(snap)
                    }
                    Err(e @ AgentError::Namespace(_)) => Response::NotTracked { netns, reason: error_text(&e) },
                    Err(e) => Response::Error(error_text(&e)),
                };
                if netns == self.spaces.own {
                    return later(move || finish(dump().map_err(AgentError::from)));
                }
                match self.spaces.handle(netns, peer) {
                    Ok((path, file)) => later(move || {
                        finish(
                            netns::run_in(netns, (&path, &file), dump)
                                .map_err(AgentError::from)
                                .and_then(|r| r.map_err(AgentError::from)),
                        )
                    }),
                    Err(e) => Answer::now(finish(Err(e.into()))),
                }
            }
            // The records carry pids of the initial pid namespace, as seen by an agent
            // that walks every task: a client that sees other pids walks /proc itself.
            Request::Owners { pidns } if pidns != self.info.pidns => Answer::now(Response::Unavailable {
                reason: format!("the client's pid namespace ({pidns}) is not the agent's ({})", self.info.pidns),
            }),
            Request::Owners { .. } => match &self.kernel.owners {
                Some(kept) => {
                    let owners = Arc::clone(&kept.owners);
                    Answer::Later(Box::new(move || {
                        let mut owners = match owners.lock() {
                            Ok(owners) => owners,
                            Err(poisoned) => {
                                // A walk panicked half way: nothing kept is trusted.
                                let mut owners = poisoned.into_inner();
                                owners.forget();
                                owners
                            }
                        };
                        // Kept processes are written straight into the frame, in the
                        // last large answer's buffer when one is kept.
                        let unavailable = |e: &crate::bpf::loader::EbpfError| {
                            encode(&Response::Unavailable { reason: error_text(e) })
                        };
                        match owners.refresh_kept() {
                            Ok(Some(len)) => {
                                encode_owners_into(super::spare::take(ROWS_FRAME_HEAD + len), len, |out| {
                                    owners.write_kept(out);
                                })
                            }
                            Ok(None) => match owners.records() {
                                Ok(records) => encode(&Response::Owners(records)),
                                Err(e) => unavailable(&e),
                            },
                            Err(e) => unavailable(&e),
                        }
                    }))
                }
                None => Answer::now(Response::Unavailable { reason: "the owners iterator did not load".into() }),
            },
            Request::Tcp { netns, families, states, filter } => {
                if let Err(r) = self.track(netns, peer) {
                    return Answer::Now(r);
                }
                match self.tcp(netns, peer, &families, states, filter.as_ref()) {
                    // Copying (and filtering) rows is the part of an answer that grows with
                    // the table: done off the event loop, several answers at once.
                    Ok(Tcp::Ready(ready))
                        if ready.small_answer(&families, states, filter.as_ref(), ON_THE_SPOT_ROWS) =>
                    {
                        Answer::Encoded(rows(&ready, &families, states, filter.as_ref()))
                    }
                    Ok(Tcp::Ready(ready)) => {
                        Answer::Later(Box::new(move || rows(&ready, &families, states, filter.as_ref())))
                    }
                    Ok(Tcp::Dumped(s)) => Answer::now(Response::Sockets(s)),
                    // No way into the namespace for its mini-sockets: the client asks the
                    // kernel itself (auto) or reports why (agent).
                    Err(e @ AgentError::Namespace(_)) => {
                        Answer::now(Response::NotTracked { netns, reason: error_text(&e) })
                    }
                    Err(e) => Answer::now(Response::Error(error_text(&e))),
                }
            }
            Request::Status => Answer::now(Response::Status(self.status())),
            // Unwrapped by the server; the answer is the same either way.
            Request::Shared(inner) => self.answer(*inner, peer, conn),
        }
    }

    /// Starts tracking namespace `netns` if this is the first query from it (a dump seeds
    /// its table). `Err`: the response that says why it cannot be.
    fn track(&mut self, netns: u32, peer: Option<u32>) -> Result<(), Box<Response>> {
        if self.spaces.tables.is_tracked(netns) {
            return Ok(());
        }
        match self.spaces.dump_for_seed(netns, peer) {
            Ok(dump) => {
                info!(netns, sockets = dump.len(), handle = ?self.spaces.known_handle(netns), "tracking a network namespace first seen in a query");
                self.spaces.tables.seed(netns, dump, &[]);
                // What happened during the dump is in the ring: apply it.
                self.drain_all().map_err(|e| Box::new(Response::Error(error_text(&e))))
            }
            Err(e) => Err(Box::new(Response::NotTracked { netns, reason: error_text(&e) })),
        }
    }

    /// The counters `sockstat status` prints.
    pub(super) fn status(&self) -> Status {
        let c = self.kernel.counters();
        let uptime_ms = u64::try_from(self.info.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let owner_count = |which: fn(&crate::live::owners::WalkCounts) -> &std::sync::atomic::AtomicU64| {
            self.kernel.owners.as_ref().map_or(0, |o| which(&o.counts).load(std::sync::atomic::Ordering::Relaxed))
        };
        let programs = match self.kernel.tracer.program_stats() {
            Ok(stats) => stats.iter().map(|p| program_status(p, uptime_ms)).collect(),
            Err(e) => {
                warn!(error = %error_text(&e), "reading the BPF programs' statistics");
                Vec::new()
            }
        };
        Status {
            pid: std::process::id(),
            netns: self.spaces.own,
            uptime_ms,
            events_seen: c.seen,
            events_received: self.kernel.stream.received(),
            events_lost_kernel: c.lost,
            events_missed: c.missed,
            events_rescued: c.rescued,
            events_malformed: self.kernel.stream.malformed(),
            events_overflowed: self.kernel.stream.overflowed(),
            events_queued_peak: self.kernel.stream.queued_peak() as u64,
            read_errors: c.read_errors,
            resyncs: self.loss.resyncs,
            table_size: self.spaces.tables.len() as u64,
            namespaces: self.spaces.status(),
            seed_ms: self.info.seed_ms,
            timeline_committed: self.sink.committed(),
            timeline_dropped: self.sink.dropped(),
            accept_hook: self.kernel.tracer.accept_hook,
            owners_iter: self.kernel.tracer.owners_iter,
            owners_kept: self.kernel.owners.as_ref().is_some_and(|o| o.keeps),
            owner_walks_whole: owner_count(|c| &c.whole),
            owner_walks_process: owner_count(|c| &c.processes),
            owner_answers_kept: owner_count(|c| &c.kept),
            answers_shared: super::shared::sent(),
            sock_ops: self.kernel.tracer.sock_ops,
            mini_lookups: self.info.checks.lookups,
            mini_dumps: self.info.checks.dumps,
            mini_count_mismatches: self.info.checks.count_mismatches,
            mini_dumps_spared: self.info.checks.dumps_spared,
            closes_unreported: self.info.checks.taken_over,
            bpf_stats: crate::bpf::loader::stats_enabled(),
            programs,
        }
    }

    /// What a `--metrics` scrape gets from the event loop.
    pub(super) fn metrics_snapshot(&self) -> crate::live::metrics::Snapshot {
        crate::live::metrics::Snapshot { status: self.status(), by_state: self.spaces.tables.count_by_state() }
    }

    /// The TCP sockets of namespace `ns` (tracked) for a query. With the sock_ops program,
    /// from the table alone: its full sockets, and its mini sockets once checked with the
    /// kernel where the model can be wrong ([`State::check_minis`]). Without it, SYN-SENT,
    /// SYN-RECV and timewait rows come from a dump of those states made now.
    fn tcp(
        &mut self,
        ns: u32,
        peer: Option<u32>,
        families: &[u16],
        states: u32,
        filter: Option<&Filter>,
    ) -> Result<Tcp, AgentError> {
        if !self.kernel.tracer.sock_ops {
            return self.tcp_with_dump(ns, peer, families, states, filter).map(Tcp::Dumped);
        }
        // Every event emitted before the query was applied (the event loop drains the
        // ring before it answers anything); a loss since the last check is repaired (a
        // resync) before the table answers.
        self.check_loss()?;
        self.check_closing(ns, peer)?;
        if states & MINI_STATES != 0 {
            self.check_minis(ns, peer, states)?;
        }
        let Some(table) = self.spaces.tables.get_mut(ns) else { return Err(HandleError::NotFound(ns).into()) };
        Ok(Tcp::Ready(table.ready()))
    }

    /// Makes namespace `ns`'s mini sockets right before they are shown: requests, and
    /// timewait sockets the model cannot place or whose expiry it does not know, are
    /// looked up one by one (or, when there are many, replaced by a dump of their
    /// states); then the kernel's count of timewait sockets must equal the model's, or
    /// the timewait sockets are dumped again.
    fn check_minis(&mut self, ns: u32, peer: Option<u32>, states: u32) -> Result<(), AgentError> {
        let now = monotonic_ns();
        let Some(table) = self.spaces.tables.get_mut(ns) else { return Err(HandleError::NotFound(ns).into()) };
        table.minis.expire(now);
        let check: Vec<InetSocket> = table
            .minis
            .to_check(now)
            .into_iter()
            .filter(|s| states & (1 << s.state) != 0 || s.state == TcpState::SynRecv as u8)
            .collect();
        debug!(netns = ns, minis = table.minis.len(), to_check = check.len(), "checking mini sockets");
        let many = check.len() > LOOKUP_BUDGET;
        // A dump is due but one was made moments ago: the model is that dump plus every
        // event since. Under heavy churn each query would otherwise dump (hundreds of
        // thousands of timewait sockets, their expiry known only to the timer wheel's
        // precision), and the queries together would keep the kernel walking.
        let dumped_lately = now.saturating_sub(table.minis.dumped_ns) < DUMP_GAP_NS;
        if many && dumped_lately {
            self.info.checks.dumps_spared += 1;
            return Ok(());
        }
        // One trip into the namespace: the lookups (or the dump), then the kernel's count.
        let (looked, looked_at, count) = self.spaces.in_namespace(ns, peer, move |d| {
            let looked_at = monotonic_ns();
            let looked = if many {
                Looked::Dump(d.dump_tcp(&[AF_INET, AF_INET6], MINI_STATES)?)
            } else {
                Looked::Each(
                    check.into_iter().map(|s| Ok((d.lookup_inet(&s)?, s.cookie))).collect::<Result<_, DiagError>>()?,
                )
            };
            let at = monotonic_ns();
            Ok((looked, looked_at, crate::sys::procnet::timewait_count().map(|n| (n, at))))
        })?;
        // What the count read may already include is in the ring.
        self.drain_all()?;
        let Some(table) = self.spaces.tables.get_mut(ns) else { return Err(HandleError::NotFound(ns).into()) };
        // What the kernel said holds from when it was asked, before its count was read.
        let checked_at = looked_at;
        match looked {
            Looked::Dump(dump) => {
                self.info.checks.dumps += 1;
                table.minis.reseed(&dump, &[minis::Kind::Timewait, minis::Kind::Request], checked_at);
            }
            Looked::Each(results) => {
                self.info.checks.lookups += results.len() as u64;
                for (found, cookie) in results {
                    match found.and_then(|s| minis::mini_kind(&s).map(|k| (s, k))) {
                        Some((s, kind)) => table.minis.confirmed(s, kind, checked_at),
                        None => {
                            table.minis.remove(cookie);
                        }
                    }
                }
            }
        }
        let gone = table.drop_taken_over();
        let counted = count.map(|(kernel, at)| (kernel, table.minis.timewait_count(at) as u64));
        self.closes_unreported(ns, gone);
        let (kernel, model) = match counted {
            Ok(c) => c,
            Err(e) => {
                warn!(netns = ns, error = %e, "cannot read the kernel's timewait count; timewait rows not checked");
                return Ok(());
            }
        };
        if kernel != model {
            self.info.checks.count_mismatches += 1;
            let Some(table) = self.spaces.tables.get(ns) else { return Ok(()) };
            if monotonic_ns().saturating_sub(table.minis.dumped_ns) < DUMP_GAP_NS {
                self.info.checks.dumps_spared += 1;
                return Ok(());
            }
            debug!(
                netns = ns,
                kernel, model, "timewait sockets: the model and the kernel's count differ; dumping them"
            );
            let dump = self.spaces.in_namespace(ns, peer, |d| {
                d.dump_tcp(&[AF_INET, AF_INET6], (1 << TcpState::TimeWait as u32) | table::TIMEWAIT_SUBSTATES)
            })?;
            self.info.checks.dumps += 1;
            let now = monotonic_ns();
            if let Some(table) = self.spaces.tables.get_mut(ns) {
                table.minis.reseed(&dump, &[minis::Kind::Timewait], now);
                let gone = table.drop_taken_over();
                self.closes_unreported(ns, gone);
            }
        }
        Ok(())
    }

    /// Looks up the full sockets of `ns` long in a closing state
    /// ([`crate::live::table::Table::closing_to_check`], at most [`CLOSING_BUDGET`] a
    /// query): those the kernel no longer has, their close unreported, leave the table.
    fn check_closing(&mut self, ns: u32, peer: Option<u32>) -> Result<(), AgentError> {
        let now = monotonic_ns();
        let Some(table) = self.spaces.tables.get_mut(ns) else { return Err(HandleError::NotFound(ns).into()) };
        let check = table.closing_to_check(now, CLOSING_BUDGET);
        if check.is_empty() {
            return Ok(());
        }
        let results = self.spaces.in_namespace(ns, peer, move |d| {
            check.into_iter().map(|s| Ok((d.lookup_inet(&s)?, s))).collect::<Result<Vec<_>, DiagError>>()
        })?;
        self.info.checks.lookups += results.len() as u64;
        // What happened meanwhile is in the ring, and newer than what the lookups said.
        self.drain_all()?;
        let Some(table) = self.spaces.tables.get_mut(ns) else { return Err(HandleError::NotFound(ns).into()) };
        let mut gone = Vec::new();
        for (found, asked) in results {
            if table.get(asked.cookie).is_some_and(|e| e.since_ns >= now) {
                continue;
            }
            if table.closing_checked(&asked, found, now) {
                gone.push(asked.cookie);
            }
        }
        self.closes_unreported(ns, gone);
        Ok(())
    }

    /// Full sockets of `ns` the checks found closed or handed to timewait sockets, their
    /// close never reported (removed from the table already): counted, logged, and their
    /// lifetimes in the timeline ended where they are, as after a lost close.
    fn closes_unreported(&mut self, ns: u32, gone: Vec<u64>) {
        if gone.is_empty() {
            return;
        }
        self.info.checks.taken_over += gone.len() as u64;
        warn!(
            netns = ns,
            sockets = gone.len(),
            "full sockets the kernel had closed or handed to timewait sockets without reporting it; removed"
        );
        let gone: std::collections::HashSet<u64> = gone.into_iter().collect();
        self.sink.keep_lifetimes(|cookie| !gone.contains(&cookie));
    }

    /// The TCP sockets of namespace `ns` without the sock_ops program: the table's full
    /// sockets, plus the states only a dump of that namespace lists, made there.
    fn tcp_with_dump(
        &mut self,
        ns: u32,
        peer: Option<u32>,
        families: &[u16],
        states: u32,
        filter: Option<&Filter>,
    ) -> Result<Vec<InetSocket>, AgentError> {
        let wanted = |s: &InetSocket| filter.is_none_or(|f| f.matches(s));
        // Mini-sockets and sockets whose identity events cannot give: from the kernel.
        let mask = states & (KERNEL_STATES | table::TIMEWAIT_SUBSTATES);
        let walk_start = monotonic_ns();
        let mut dumped = if mask == 0 {
            Vec::new()
        } else {
            let fams = families.to_vec();
            self.spaces.in_namespace(ns, peer, move |d| {
                if fams.len() < 2 {
                    return fams.iter().map(|&family| d.dump_inet(IPPROTO_TCP, family, mask)).collect();
                }
                // Each family's dump walks the whole established hash in the kernel (it
                // is shared by both families): walk it for both at once, one thread
                // and one sock_diag socket each. Threads start in their creator's
                // namespace, which is the one asked about.
                crate::threads::each_on_a_thread(fams.iter(), |&family| {
                    SockDiag::open()?.dump_inet(IPPROTO_TCP, family, mask)
                })
                .into_iter()
                .collect()
            })?
        }
        .into_iter();
        let Some(table) = self.spaces.tables.get_mut(ns) else { return Err(HandleError::NotFound(ns).into()) };
        let mut out = Vec::new();
        for &family in families {
            let mut part = table.snapshot_where(family, states, wanted);
            if mask != 0 {
                // Full FIN-WAIT-2 sockets are the table's; timewait ones in that sub-state
                // are not.
                let kernel: Vec<InetSocket> = dumped
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| (s.state != TcpState::FinWait2 as u8 || s.is_mini()) && wanted(s))
                    .collect();
                merge_dumped(&mut part, kernel, |s| table.get(s.cookie).is_some_and(|e| e.since_ns >= walk_start));
                table::sort_like_dump(&mut part);
            }
            out.extend(part);
        }
        Ok(out)
    }
}

/// What the mini-socket check got from the kernel.
enum Looked {
    /// A dump of the mini sockets' states.
    Dump(Vec<InetSocket>),
    /// Each looked-up socket as the kernel has it (`None`: gone), with the cookie asked.
    Each(Vec<(Option<InetSocket>, u64)>),
}

/// The least time between two dumps of a namespace's mini sockets for queries: within
/// it, answers use the last dump and the events since (the rows are then at most this
/// much older than the query where the model cannot tell alone, about what one dump of
/// 100k sockets takes).
const DUMP_GAP_NS: u64 = 250_000_000;

/// At most this many full sockets long in a closing state are looked up for a query (the
/// rest at the next).
const CLOSING_BUDGET: usize = 256;

/// At most this many mini sockets are looked up one by one for a query; more are
/// replaced by a dump (an exact lookup costs a few microseconds, a dump walks the
/// kernel's whole established hash).
const LOOKUP_BUDGET: usize = 1024;

/// The states mini sockets are shown in: TIME-WAIT, FIN-WAIT-2 (a timewait socket's
/// sub-state) and SYN-RECV (request sockets, state 12 in the kernel).
const MINI_STATES: u32 = (1 << TcpState::TimeWait as u32)
    | (1 << TcpState::FinWait2 as u32)
    | (1 << TcpState::SynRecv as u32)
    | (1 << TcpState::NewSynRecv as u32);

/// A program's statistics for `status`: the cost per run and the rate over `uptime_ms`.
fn program_status(p: &crate::bpf::loader::ProgramStats, uptime_ms: u64) -> ProgramStatus {
    let ns_per_run = (p.run_count > 0).then(|| (p.run_time_ns + p.run_count / 2) / p.run_count);
    let runs_per_sec = p.run_count.saturating_mul(1000).checked_div(uptime_ms).unwrap_or(0);
    ProgramStatus {
        role: p.role.as_str().to_string(),
        name: p.name.to_string(),
        id: p.id,
        run_count: p.run_count,
        run_time_ns: p.run_time_ns,
        ns_per_run,
        runs_per_sec,
    }
}

/// Adds the query-time dump's sockets to the table's. A tuple in both (a full socket in
/// the table, a mini socket in the dump) was moved by the kernel between the drain before
/// the query and the walk (a close handing it to a timewait socket, a connect
/// completing): the newer wins, the table's row if `after_walk_began` says its last
/// transition came after the walk began, else the dump's, so no socket shows twice.
fn merge_dumped(
    table_rows: &mut Vec<InetSocket>,
    dumped: Vec<InetSocket>,
    after_walk_began: impl Fn(&InetSocket) -> bool,
) {
    let tuple = |s: &InetSocket| (s.src, s.sport, s.dst, s.dport);
    let newer: std::collections::HashSet<_> = table_rows.iter().filter(|s| after_walk_began(s)).map(tuple).collect();
    let dumped_tuples: std::collections::HashSet<_> = dumped.iter().map(tuple).collect();
    table_rows.retain(|s| !dumped_tuples.contains(&tuple(s)) || newer.contains(&tuple(s)));
    table_rows.extend(dumped.into_iter().filter(|s| !newer.contains(&tuple(s))));
}

/// Leaves out the agent's query connections: the one this query came on (the agent's
/// end, inode `conn`, and the client's, its peer), and any other accepted on the agent's
/// socket (`listener`: an accepted end carries its listener's name), such as the
/// agent's end of a query that just finished and is being closed. They exist only
/// because questions are being asked; ss, which asks the kernel directly, has none.
fn without_query_connections(unix: &mut Vec<crate::model::socket::UnixSocket>, listener: u64, conn: u64) {
    let name = unix.iter().find(|s| listener != 0 && u64::from(s.inode) == listener).and_then(|s| s.name.clone());
    let accepted: std::collections::HashSet<u32> = unix
        .iter()
        .filter(|s| u64::from(s.inode) == conn || (u64::from(s.inode) != listener && name.is_some() && s.name == name))
        .map(|s| s.inode)
        .collect();
    unix.retain(|s| !accepted.contains(&s.inode) && !accepted.contains(&s.peer) && u64::from(s.peer) != conn);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::socket::UnixSocket;

    fn unix(inode: u32, peer: u32, name: Option<&str>, state: u8) -> UnixSocket {
        UnixSocket {
            kind: 1,
            state,
            inode,
            peer,
            name: name.map(|n| n.as_bytes().to_vec()),
            rqueue: 0,
            wqueue: 0,
            ext: None,
        }
    }

    #[test]
    fn a_tuple_moved_during_the_walk_shows_once() {
        let lo = "127.0.0.1".parse().unwrap();
        let sock = |cookie: u64, state: TcpState, sport: u16| InetSocket {
            cookie,
            ..InetSocket::tcp(2, state as u8, (lo, sport), (lo, 7004), 0)
        };
        // The table still has the full socket in FIN-WAIT-1 (its close is not drained
        // yet); the walk found the timewait socket that took its tuple over.
        let mut rows = vec![sock(1, TcpState::FinWait1, 57432), sock(2, TcpState::Established, 50000)];
        merge_dumped(&mut rows, vec![sock(9, TcpState::FinWait2, 57432)], |_| false);
        assert_eq!(
            rows.iter().map(|s| (s.cookie, s.state)).collect::<Vec<_>>(),
            [(2, TcpState::Established as u8), (9, TcpState::FinWait2 as u8)]
        );
        // A new connection on a timewait's tuple, seen after the walk: the table's wins.
        let mut rows = vec![sock(3, TcpState::Established, 57432)];
        merge_dumped(&mut rows, vec![sock(9, TcpState::TimeWait, 57432), sock(8, TcpState::TimeWait, 1)], |s| {
            s.cookie == 3
        });
        assert_eq!(rows.iter().map(|s| s.cookie).collect::<Vec<_>>(), [3, 8]);
    }

    #[test]
    fn program_cost_is_time_per_run_and_rate_over_uptime() {
        use crate::bpf::loader::{ProgramStats, Role};
        let stats = |run_count, run_time_ns| ProgramStats {
            role: Role::AcceptHook,
            name: sockstat_ebpf::ACCEPT_PROGRAM,
            id: 7,
            run_count,
            run_time_ns,
        };
        let p = program_status(&stats(3, 1000), 2000);
        assert_eq!((p.role.as_str(), p.name.as_str(), p.id), ("accept hook", "sockstat_accept", 7));
        // 333.3 rounds down, 1.5 runs/s truncates.
        assert_eq!((p.ns_per_run, p.runs_per_sec), (Some(333), 1));
        assert_eq!(program_status(&stats(2, 1001), 1000).ns_per_run, Some(501));
        // Stats never on: no cost; an agent started this millisecond: no rate.
        assert_eq!(program_status(&stats(0, 0), 5000).ns_per_run, None);
        assert_eq!(program_status(&stats(10, 10), 0).runs_per_sec, 0);
    }

    #[test]
    fn query_connections_are_left_out_and_nothing_else() {
        let (listen, estab) = (TcpState::Listen as u8, TcpState::Established as u8);
        let mut socks = vec![
            unix(10, 0, Some("/run/a.sock"), listen),
            // This query's connection: the agent's end and the client's.
            unix(11, 12, Some("/run/a.sock"), estab),
            unix(12, 11, None, estab),
            // The agent's end of a finished query, its client gone.
            unix(13, 0, Some("/run/a.sock"), estab),
            // Everything else stays, a connection to another listener included.
            unix(20, 0, Some("/run/b.sock"), listen),
            unix(21, 22, Some("/run/b.sock"), estab),
            unix(22, 21, None, estab),
        ];
        without_query_connections(&mut socks, 10, 11);
        assert_eq!(socks.iter().map(|s| s.inode).collect::<Vec<_>>(), [10, 20, 21, 22]);
        // Without a known listener, only this query's connection goes.
        let mut socks = vec![
            unix(11, 12, Some("/run/a.sock"), estab),
            unix(12, 11, None, estab),
            unix(13, 0, Some("/run/a.sock"), estab),
        ];
        without_query_connections(&mut socks, 0, 11);
        assert_eq!(socks.iter().map(|s| s.inode).collect::<Vec<_>>(), [13]);
    }
}
