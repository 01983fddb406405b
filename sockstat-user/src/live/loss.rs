//! Loss accounting: events lost in the kernel (ring buffer full), undecodable records,
//! and timeline records the writer dropped. A loss is logged, marked in the timeline as
//! a gap, and repaired by a resync from sock_diag; the status query reports the counts.

pub(super) struct Loss {
    /// Loss counters as of the last (re)seed: an increase means the table missed events.
    pub(super) seen_lost: (u64, u64),
    /// Timeline records dropped as of the last (re)seed.
    pub(super) seen_dropped: u64,
    /// CLOCK_MONOTONIC ns of the last loss check that found nothing lost: a loss found
    /// later happened after it, so a gap starts there.
    pub(super) clean_until_ns: u64,
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
