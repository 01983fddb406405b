//! What the agent's event loop holds, split by concern (the program and its ring, the
//! tracked namespaces, the timeline sink, loss accounting, what answers say about the
//! agent), and the work that spans several of them: draining the ring into the tables
//! and the sink, seeding, the loss check and resync, the timeline's checkpoints.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use sockstat_ebpf::{AF_INET, AF_INET6};
use tracing::{info, warn};

use crate::{
    bpf::loader::{KernelCounters, Tracer},
    bpf::owners::OwnersKernel,
    bpf::reader::RingReader,
    live::{
        error::AgentError,
        loss::{Loss, Losses},
        metrics::Connections,
        namespaces::{NamespaceSet, seed_dump},
        owners::{Owners, WalkCounts},
        sink::{CHECKPOINT_EVERY, Round, SNAPSHOT_AFTER_LOSS_EVERY, SPREAD_FROM, Sink},
        table::ALL_STATES,
    },
    model::{clock::monotonic_ns, socket::InetSocket},
    timeline::Record,
};

/// The loaded program and the reader of the ring buffer it fills.
pub(super) struct Kernel {
    pub(super) stream: RingReader,
    pub(super) tracer: Tracer,
    /// The owners of `-p`, kept between queries; `None` without the owners iterator.
    pub(super) owners: Option<KeptOwners>,
}

/// The owners, shared with the threads that answer `-p` (one walks at a time), and how
/// they were found.
pub(super) struct KeptOwners {
    pub(super) owners: Arc<Mutex<Owners<OwnersKernel>>>,
    pub(super) counts: Arc<WalkCounts>,
    /// Whether processes are kept between queries.
    pub(super) keeps: bool,
}

impl KeptOwners {
    /// The owners programs taken from `tracer`; kept between queries only by an agent in
    /// the initial pid namespace (see [`Owners::new`]).
    pub(super) fn new(tracer: &mut Tracer, pidns: u64) -> Option<KeptOwners> {
        let kernel = OwnersKernel::take_from(tracer).ok()?;
        let owners = Owners::new(kernel, pidns == crate::sys::netns::INITIAL_PIDNS);
        let (counts, keeps) = (owners.counts(), owners.keeps());
        Some(KeptOwners { owners: Arc::new(Mutex::new(owners)), counts, keeps })
    }
}

impl Kernel {
    pub(super) fn counters(&self) -> KernelCounters {
        self.tracer.counters().unwrap_or_default()
    }

    /// Events lost since start, by the way they went.
    pub(super) fn losses(&self) -> Result<Losses, AgentError> {
        let c = self.tracer.counters()?;
        Ok(Losses {
            ring: c.lost,
            skipped: c.missed,
            overflowed: self.stream.overflowed(),
            malformed: self.stream.malformed(),
        })
    }
}

/// What answers say about the agent itself.
pub(super) struct AgentInfo {
    /// Inode of the agent's listening socket: its query connections are left out of the
    /// UNIX rows it dumps for a query.
    pub(super) listener_inode: u64,
    /// Inode of the agent's pid namespace (`/proc/self/ns/pid`).
    pub(super) pidns: u64,
    pub(super) started: Instant,
    pub(super) seed_ms: u64,
    /// How queries checked the modelled mini sockets with the kernel.
    pub(super) checks: MiniChecks,
}

/// What queries asked the kernel to check the mini sockets (timewait, request) the
/// table models, since start.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct MiniChecks {
    /// Exact sock_diag lookups of one socket.
    pub(super) lookups: u64,
    /// Dumps of the mini sockets' states (too many to look up, or a count that differed).
    pub(super) dumps: u64,
    /// Times the kernel's timewait count differed from the model's.
    pub(super) count_mismatches: u64,
    /// Full sockets found handed to a timewait socket without a reported close.
    pub(super) taken_over: u64,
    /// Dumps not made because one was made moments before.
    pub(super) dumps_spared: u64,
}

/// Everything the event loop holds, by concern.
pub(super) struct State {
    /// The tracked namespaces: their tables, handles, and sock_diag at home.
    pub(super) spaces: NamespaceSet,
    pub(super) kernel: Kernel,
    /// Where the own namespace's transitions go besides the table.
    pub(super) sink: Sink,
    pub(super) loss: Loss,
    /// What answers say about the agent itself.
    pub(super) info: AgentInfo,
    /// Connections seen opening and closing, for `--metrics`; `None` without.
    pub(super) conns: Option<Connections>,
}

impl State {
    /// Applies what the reader has taken from the ring, up to `DRAIN_MAX` events;
    /// returns how many.
    pub(super) fn drain(&mut self) -> Result<usize, AgentError> {
        let State { spaces, kernel, sink, conns, .. } = self;
        let now = monotonic_ns();
        let n = kernel.stream.drain(|t| take(spaces, sink, conns, t, now, Rules::Live))?;
        self.after_taking();
        Ok(n)
    }

    /// Applies everything the ring holds now (and all that came before it).
    pub(super) fn drain_all(&mut self) -> Result<(), AgentError> {
        let State { spaces, kernel, sink, conns, .. } = self;
        let now = monotonic_ns();
        kernel.stream.flush(|t| take(spaces, sink, conns, t, now, Rules::Live))?;
        self.after_taking();
        Ok(())
    }

    /// Applies what the reader took from the ring while the seed was dumped: by the
    /// replay rules ([`Rules::Replayed`]), as some of it may be older than the dump.
    pub(super) fn replay_held(&mut self) -> Result<(), AgentError> {
        let State { spaces, kernel, sink, conns, .. } = self;
        let now = monotonic_ns();
        kernel.stream.flush(|t| take(spaces, sink, conns, t, now, Rules::Replayed))?;
        self.after_taking();
        Ok(())
    }

    fn after_taking(&mut self) {
        self.spaces.seed_waiting();
    }

    /// A dump of the own namespace and of every other tracked one, and the events the
    /// reader took from the ring meanwhile (in ring order, to be applied after the
    /// seeds: some may be older than the dump).
    #[expect(clippy::type_complexity, reason = "the dumps, each namespace's own result, and the events held")]
    fn dump_all_and_held(
        &mut self,
    ) -> Result<
        (
            Vec<InetSocket>,
            Vec<(u32, Result<(Vec<InetSocket>, Option<u64>), AgentError>)>,
            Vec<crate::bpf::stream::Transition>,
        ),
        AgentError,
    > {
        let handles: Vec<(u32, Result<(std::path::PathBuf, std::fs::File), crate::sys::netns::HandleError>)> =
            self.spaces.tables.others().into_iter().map(|ns| (ns, self.spaces.handle(ns, None))).collect();
        // On a thread of its own: entering the other namespaces must not move this one.
        let (own, others) = std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let own = crate::diag::SockDiag::open()
                        .and_then(|mut d| d.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES))
                        .map_err(AgentError::from);
                    let others: Vec<_> = handles
                        .into_iter()
                        .map(|(ns, handle)| {
                            let result = handle.map_err(AgentError::from).and_then(|(path, file)| {
                                crate::sys::netns::run_in(ns, (&path, &file), || {
                                    crate::diag::SockDiag::open().and_then(|mut d| seed_dump(&mut d))
                                })
                                .map_err(AgentError::from)
                                .and_then(|r| r.map_err(AgentError::from))
                            });
                            (ns, result)
                        })
                        .collect();
                    (own, others)
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        let mut held = Vec::new();
        self.kernel.stream.flush(|t| held.push(t.clone()))?;
        Ok((own?, others, held))
    }

    /// The own namespace seeded from `own_dump` (given when it is to be recorded), the
    /// others from `others`: the timeline's snapshot of `kind`, and the lifetimes of
    /// sockets no table has any more ended.
    pub(super) fn seeded(
        &mut self,
        own_dump: Option<Vec<InetSocket>>,
        others: Vec<(u32, Vec<InetSocket>)>,
        mono_ns: u64,
        kind: Option<&'static str>,
    ) {
        let own = self.spaces.own;
        if let (Some(kind), Some(own_dump)) = (kind, own_dump) {
            let mut spaces = vec![(own, own_dump)];
            spaces.extend(others.into_iter().filter(|(_, d)| !d.is_empty()));
            self.sink.snapshot_of_seed(mono_ns, kind, spaces);
        }
        // Connections whose close was lost would stay open in the tracker forever.
        let tables = &self.spaces.tables;
        self.sink.keep_lifetimes(|cookie| tables.contains(cookie));
        self.sink.flush();
    }
}
impl State {
    /// After a loss the table (or the timeline) may be wrong in ways no later event
    /// repairs: mark the gap, re-dump, and record the dump.
    pub(super) fn check_loss(&mut self) -> Result<(), AgentError> {
        let now = self.kernel.losses()?;
        let dropped = self.sink.dropped().unwrap_or(0);
        if now == self.loss.seen_lost && dropped == self.loss.seen_dropped {
            self.loss.clean_until_ns = monotonic_ns();
            return Ok(());
        }
        // Events still in the ring from before the loss belong before the new dump:
        // applied after it, a lost close would let them bring a closed socket back.
        self.drain_all()?;
        let seen = &self.loss;
        let lost = now.since(&seen.seen_lost);
        let lost_timeline = dropped - seen.seen_dropped;
        let gap_end = monotonic_ns();
        self.sink.mark_gap(seen.clean_until_ns, gap_end, &lost, lost_timeline);
        // The timeline gets a snapshot now unless it got one lately (then it is owed,
        // and `checkpoint` writes it when due).
        let snapshot_now = self.sink.snapshot_now_after_loss();
        let kind = snapshot_now.then_some("resync");
        if now != self.loss.seen_lost {
            // Which way they went: reservations the ring refused, program runs the kernel
            // skipped, events the agent's queue dropped, undecodable records.
            warn!(
                ring = lost.ring,
                skipped = lost.skipped,
                overflowed = lost.overflowed,
                malformed = lost.malformed,
                lost_timeline,
                "events lost; resyncing the table from sock_diag"
            );
            // Events that come during the dumps are newer than the loss; they are applied
            // after the new seed, in order, exactly as at start-up (the reader keeps
            // the ring empty meanwhile).
            let (dump, others, held) = self.dump_all_and_held()?;
            let own = self.spaces.own;
            let own_dump = kind.map(|_| dump.clone());
            self.spaces.tables.seed(own, dump, &[]);
            let mut seeded = Vec::new();
            for (ns, result) in others {
                match result {
                    Ok((dump, cookie)) => {
                        if let Some(cookie) = cookie {
                            self.spaces.tables.learn_cookie(ns, cookie);
                        }
                        seeded.push((ns, dump.clone()));
                        self.spaces.tables.seed(ns, dump, &[]);
                    }
                    Err(e) => self.spaces.give_up(ns, &e),
                }
            }
            self.seeded(own_dump, seeded, gap_end, kind);
            let now_ns = monotonic_ns();
            for t in &held {
                take(&mut self.spaces, &mut self.sink, &mut self.conns, t, now_ns, Rules::Replayed);
            }
            self.loss.resyncs += 1;
            // A connection whose close was lost is no longer in its (tracked) table.
            let (spaces, conns) = (&self.spaces, &mut self.conns);
            if let Some(c) = conns.as_mut() {
                c.forget(|ns, cookie| spaces.tables.get(ns).is_some_and(|t| t.get(cookie).is_none()));
            }
        } else {
            // Only timeline records were dropped: the table is right; the timeline has a
            // gap, closed by the next snapshot.
            warn!(lost_timeline, "timeline writer behind; records dropped, gap marked");
            if snapshot_now {
                let spaces = self.spaces.dump_all()?;
                self.sink.snapshot_after_drop(gap_end, spaces);
            }
        }
        self.loss.seen_lost = now;
        self.loss.seen_dropped = dropped;
        self.loss.clean_until_ns = gap_end;
        self.drain_all()
    }
}
impl State {
    /// A kernel snapshot in the timeline every CHECKPOINT_EVERY (not applied to the
    /// table, which is current). With many namespaces with sockets, the agent's own is
    /// dumped then and the others one at a time over the interval, each a snapshot of
    /// its own (the dumps of a spread checkpoint that are due are made here too).
    pub(super) fn checkpoint(&mut self) -> Result<(), AgentError> {
        if self.sink.timeline.is_none() {
            return Ok(());
        }
        self.checkpoint_parts();
        let sink = &mut self.sink;
        let due = if sink.snapshot_owed { SNAPSHOT_AFTER_LOSS_EVERY } else { CHECKPOINT_EVERY };
        if sink.last_checkpoint.elapsed() < due {
            return Ok(());
        }
        let kind = if sink.snapshot_owed { "resync" } else { "checkpoint" };
        sink.snapshot_owed = false;
        sink.last_checkpoint = Instant::now();
        // What a round left undone is deferred no more: this snapshot stands for all.
        sink.round = None;
        let mono_ns = monotonic_ns();
        let others = self.spaces.busy_others();
        if kind == "resync" || others.len() <= SPREAD_FROM {
            let spaces = self.spaces.dump_all()?;
            if let Some(w) = self.sink.timeline.as_mut() {
                w.push(Record::Snapshot { mono_ns, kind, spaces });
            }
        } else {
            let own = self.spaces.own;
            let spaces = vec![(own, self.spaces.dump(own)?)];
            if let Some(w) = self.sink.timeline.as_mut() {
                w.push(Record::Checkpoint { mono_ns, spaces, deferred: others.clone() });
            }
            self.sink.round = Some(Round { pending: others, done: 0, started: Instant::now() });
        }
        self.sink.flush();
        Ok(())
    }

    /// The dumps of the spread checkpoint that are due by now.
    fn checkpoint_parts(&mut self) {
        let Some(round) = self.sink.round.as_mut() else { return };
        let (from, to) = (round.done, round.due());
        round.done = to;
        let todo: Vec<u32> = round.pending[from..to].to_vec();
        if to == round.pending.len() {
            self.sink.round = None;
        }
        for ns in todo {
            let mono_ns = monotonic_ns();
            match self.spaces.dump(ns) {
                Ok(sockets) => {
                    if let Some(w) = self.sink.timeline.as_mut() {
                        w.push(Record::CheckpointPart { mono_ns, netns: ns, sockets });
                    }
                }
                // Its replays start from its previous snapshot: longer, still right.
                Err(e) => info!(netns = ns, error = %e, "cannot dump a network namespace for the timeline"),
            }
        }
        if from != to {
            self.sink.flush();
        }
    }
}

/// How an event taken from the ring is applied to its table.
#[derive(Clone, Copy)]
enum Rules {
    /// As it comes.
    Live,
    /// Over a dump made while it waited: it may be older than the dump, and a socket the
    /// dump does not have is not brought back by it
    /// ([`crate::live::table::Table::apply_replayed`]).
    Replayed,
}

/// One event taken from the ring: applied to its table, counted, recorded. The timeline
/// records every namespace (a namespace not tracked yet included: its sockets' rows begin
/// with their first event).
fn take(
    spaces: &mut NamespaceSet,
    sink: &mut Sink,
    conns: &mut Option<Connections>,
    t: &crate::bpf::stream::Transition,
    now: u64,
    rules: Rules,
) {
    match rules {
        Rules::Live => spaces.tables.apply(t, now),
        Rules::Replayed => spaces.tables.apply_replayed(t, now),
    };
    if let Some(c) = conns.as_mut() {
        c.observe(t);
    }
    sink.record(t);
}
