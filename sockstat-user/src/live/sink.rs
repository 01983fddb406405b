//! Where the transitions of every namespace go besides the tables: the timeline writer
//! (which folds them into connection rows on its own thread), with its gap markers and
//! kernel snapshots of every tracked namespace with sockets (at seed, after a loss, and
//! every [`CHECKPOINT_EVERY`]).

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use rustc_hash::FxHashSet;
use sockstat_ebpf::TcpState;
use tracing::warn;

use crate::{
    bpf::stream::Transition,
    live::loss::Losses,
    model::socket::InetSocket,
    timeline::{Gap, Record, Writer},
};

/// A kernel snapshot goes into the timeline this often, so `--at` needs to replay at
/// most this much and retention can cut at a snapshot.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_secs(600);
/// After a loss the timeline gets a fresh snapshot, but not more often than this: under
/// a sustained storm, writing one per loss would feed the overload that caused it. Until
/// then the gap stays open, and answers over it say they may be incomplete.
pub(super) const SNAPSHOT_AFTER_LOSS_EVERY: Duration = Duration::from_secs(10);

/// A periodic checkpoint with more namespaces with sockets than this besides the
/// agent's is spread over its interval (one dump at a time) rather than made at once.
pub(super) const SPREAD_FROM: usize = 1;

/// The dumps a periodic checkpoint deferred: one namespace each, spread evenly over
/// CHECKPOINT_EVERY, so that many namespaces cost a few dumps a tick, not a pause.
pub(super) struct Round {
    pub(super) pending: Vec<u32>,
    pub(super) done: usize,
    pub(super) started: Instant,
}

impl Round {
    /// Dumps due by now: the i-th (from 0) at (i + 1) / (n + 1) of the interval.
    pub(super) fn due(&self) -> usize {
        let n = self.pending.len();
        let elapsed = self.started.elapsed().as_secs_f64() / CHECKPOINT_EVERY.as_secs_f64();
        ((elapsed * (n + 1) as f64) as usize).min(n)
    }
}

pub(super) struct Sink {
    /// `None`: no timeline.
    pub(super) timeline: Option<Writer>,
    /// Cookies of the sockets the writer has open (seen, not yet closed): after a
    /// resync, those no longer in the table lost their close, and the writer is told.
    open: FxHashSet<u64>,
    pub(super) last_checkpoint: Instant,
    /// A loss happened since the last snapshot the timeline got.
    pub(super) snapshot_owed: bool,
    /// The periodic checkpoint being spread over its interval, if any.
    pub(super) round: Option<Round>,
}

impl Sink {
    pub(super) fn new(timeline: Option<Writer>) -> Sink {
        Sink {
            timeline,
            open: FxHashSet::default(),
            last_checkpoint: Instant::now(),
            snapshot_owed: false,
            round: None,
        }
    }

    /// Feeds one transition (of any namespace) to the timeline.
    pub(super) fn record(&mut self, t: &Transition) {
        // Request sockets are the live table's (SYN-RECV rows); the timeline records a
        // passive open from its full socket's transitions.
        if t.request {
            return;
        }
        if let Some(w) = self.timeline.as_mut() {
            if !t.accept {
                if t.new == TcpState::Close as u8 {
                    self.open.remove(&t.cookie);
                } else {
                    self.open.insert(t.cookie);
                }
            }
            w.push(Record::Transition(t.clone()));
            // A full chunk goes to the writer now; the rest at the loop's next tick.
            if w.pending() >= crate::timeline::writer::CHUNK_RECORDS {
                self.flush();
            }
        }
    }

    pub(super) fn flush(&mut self) {
        if let Some(w) = self.timeline.as_mut()
            && let Err(n) = w.flush()
        {
            warn!(records = n, "timeline writer is behind; records dropped (a gap and a resync follow)");
        }
    }

    /// Marks the time since an earlier agent last wrote the file, up to `now_mono_ns`, as
    /// a gap: nothing was recorded then.
    pub(super) fn mark_downtime(&mut self, now_mono_ns: u64) {
        if let Some(w) = self.timeline.as_mut()
            && let Some(prev) = w.previous_end_ns
        {
            let end = w.wall_ns(now_mono_ns);
            w.push(Record::Gap(Gap {
                start_ns: prev,
                end_ns: end,
                lost_kernel: 0,
                lost_userspace: 0,
                reason: "agent not running".into(),
            }));
        }
    }

    /// Marks a gap from `start_mono_ns` to `end_mono_ns` (CLOCK_MONOTONIC).
    /// `lost` events, and `timeline` records the writer dropped, in it.
    pub(super) fn mark_gap(&mut self, start_mono_ns: u64, end_mono_ns: u64, lost: &Losses, timeline: u64) {
        if let Some(w) = self.timeline.as_mut() {
            let gap = Gap {
                start_ns: w.wall_ns(start_mono_ns),
                end_ns: w.wall_ns(end_mono_ns),
                lost_kernel: lost.kernel(),
                lost_userspace: lost.userspace(timeline),
                reason: lost.reason(timeline),
            };
            w.push(Record::Gap(gap));
        }
    }

    /// Records a seed's dumps (by namespace) as a snapshot of `kind`; the next
    /// checkpoint is due CHECKPOINT_EVERY from now.
    pub(super) fn snapshot_of_seed(&mut self, mono_ns: u64, kind: &'static str, spaces: Vec<(u32, Vec<InetSocket>)>) {
        if let Some(w) = self.timeline.as_mut() {
            w.push(Record::Snapshot { mono_ns, kind, spaces });
            self.last_checkpoint = Instant::now();
            self.snapshot_owed = false;
            // It stands for every namespace: the dumps still owed are not needed.
            self.round = None;
        }
    }

    /// Records a dump made after a loss that left the table right (only timeline records
    /// were dropped).
    pub(super) fn snapshot_after_drop(&mut self, mono_ns: u64, spaces: Vec<(u32, Vec<InetSocket>)>) {
        if let Some(w) = self.timeline.as_mut() {
            w.push(Record::Snapshot { mono_ns, kind: "resync", spaces });
        }
        self.last_checkpoint = Instant::now();
        self.round = None;
    }

    /// After a loss: whether the timeline gets its snapshot now, or (it got one lately)
    /// it is owed, and [`State::checkpoint`] writes it when due.
    pub(super) fn snapshot_now_after_loss(&mut self) -> bool {
        let now = self.last_checkpoint.elapsed() >= SNAPSHOT_AFTER_LOSS_EVERY;
        self.snapshot_owed = !now;
        now
    }

    /// Keeps only the connections in progress that `keep` says still exist: the writer
    /// ends the rows of the others where they are (their closes were lost).
    pub(super) fn keep_lifetimes(&mut self, mut keep: impl FnMut(u64) -> bool) {
        let gone: Vec<u64> = self.open.iter().copied().filter(|&c| !keep(c)).collect();
        if gone.is_empty() {
            return;
        }
        for c in &gone {
            self.open.remove(c);
        }
        if let Some(w) = self.timeline.as_mut() {
            w.push(Record::Forget(gone));
        }
    }

    /// Rows the writer committed; `None` without a timeline.
    pub(super) fn committed(&self) -> Option<u64> {
        self.timeline.as_ref().map(|w| w.committed.load(Ordering::Relaxed))
    }

    /// Records dropped because the writer fell behind; `None` without a timeline.
    pub(super) fn dropped(&self) -> Option<u64> {
        self.timeline.as_ref().map(|w| w.dropped.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_checkpoint_dumps_evenly_over_its_interval() {
        let at = |fraction: f64| Round {
            pending: vec![1, 2, 3],
            done: 0,
            started: Instant::now() - CHECKPOINT_EVERY.mul_f64(fraction),
        };
        assert_eq!(at(0.0).due(), 0);
        assert_eq!(at(0.26).due(), 1, "the first at a quarter");
        assert_eq!(at(0.51).due(), 2);
        assert_eq!(at(0.76).due(), 3, "all before the next checkpoint");
        assert_eq!(at(2.0).due(), 3);
    }
}
