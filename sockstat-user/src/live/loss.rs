//! Loss accounting: events lost in the kernel (ring buffer full), undecodable records,
//! and timeline records the writer dropped. A loss is logged, marked in the timeline as
//! a gap, and repaired by a resync from sock_diag; the status query reports the counts.

use sockstat_ebpf::{AF_INET, AF_INET6};
use tracing::warn;

use crate::live::agent::{ALL_STATES, AgentError, State, monotonic_ns};

pub(super) struct Loss {
    /// Loss counters as of the last (re)seed: an increase means the table missed events.
    seen_lost: (u64, u64),
    /// Timeline records dropped as of the last (re)seed.
    seen_dropped: u64,
    /// CLOCK_MONOTONIC ns of the last loss check that found nothing lost: a loss found
    /// later happened after it, so a gap starts there.
    clean_until_ns: u64,
    /// Resyncs after a loss, since start.
    pub(super) resyncs: u64,
}

impl Loss {
    /// Nothing lost as of `clean_until_ns` (the seed's dump).
    pub(super) fn new(clean_until_ns: u64) -> Loss {
        Loss { seen_lost: (0, 0), seen_dropped: 0, clean_until_ns, resyncs: 0 }
    }

    /// The kernel's counters start at zero with the program: the first check compares
    /// with zero.
    pub(super) fn counted_from_zero(&mut self) {
        self.seen_lost = (0, 0);
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
        self.drain_all();
        let seen = &self.loss;
        let (lost_kernel, malformed) = (now.0 - seen.seen_lost.0, now.1 - seen.seen_lost.1);
        let lost_timeline = dropped - seen.seen_dropped;
        let gap_end = monotonic_ns();
        self.sink.mark_gap(seen.clean_until_ns, gap_end, lost_kernel, malformed + lost_timeline);
        // The timeline gets a snapshot now unless it got one lately (then it is owed,
        // and `checkpoint` writes it when due).
        let snapshot_now = self.sink.snapshot_now_after_loss();
        let kind = snapshot_now.then_some("resync");
        if now != self.loss.seen_lost {
            warn!(lost_kernel, malformed, lost_timeline, "events lost; resyncing the table from sock_diag");
            // Events still in the ring are newer than the loss; they are applied after
            // the new seed, in order, exactly as at start-up.
            let dump = self.spaces.diag.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)?;
            self.seed(dump, gap_end, kind);
            self.spaces.reseed_others();
            self.loss.resyncs += 1;
        } else {
            // Only timeline records were dropped: the table is right; the timeline has a
            // gap, closed by the next snapshot.
            warn!(lost_timeline, "timeline writer behind; records dropped, gap marked");
            if snapshot_now {
                let dump = self.spaces.diag.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)?;
                self.sink.snapshot_after_drop(gap_end, dump);
            }
        }
        self.loss.seen_lost = now;
        self.loss.seen_dropped = dropped;
        self.loss.clean_until_ns = gap_end;
        self.drain_all();
        Ok(())
    }
}
