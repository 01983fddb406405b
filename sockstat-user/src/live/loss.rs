//! Loss accounting: events lost in the kernel (ring buffer full), undecodable records,
//! and timeline records the writer dropped. A loss is logged, marked in the timeline as
//! a gap, and repaired by a resync from sock_diag; the status query reports the counts.

/// Events lost since the agent started, by the way they went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Losses {
    /// Ring buffer reservations that failed (the ring was full).
    pub(super) ring: u64,
    /// Program runs the kernel skipped (`recursion_misses`).
    pub(super) skipped: u64,
    /// Events the reader took but dropped: the loop had too many waiting.
    pub(super) overflowed: u64,
    /// Records of the wrong size.
    pub(super) malformed: u64,
}

impl Losses {
    /// What was lost since `before`, way by way.
    pub(super) fn since(&self, before: &Losses) -> Losses {
        Losses {
            ring: self.ring.saturating_sub(before.ring),
            skipped: self.skipped.saturating_sub(before.skipped),
            overflowed: self.overflowed.saturating_sub(before.overflowed),
            malformed: self.malformed.saturating_sub(before.malformed),
        }
    }

    /// Lost in the kernel: never reached the ring.
    pub(super) fn kernel(&self) -> u64 {
        self.ring + self.skipped
    }

    /// Lost in the agent, with `timeline` records the timeline writer dropped.
    pub(super) fn userspace(&self, timeline: u64) -> u64 {
        self.overflowed + self.malformed + timeline
    }

    /// A gap's reason: every way events went, with `timeline` records dropped.
    pub(super) fn reason(&self, timeline: u64) -> String {
        let ways = [
            (self.ring, "kernel ring buffer full"),
            (self.skipped, "program runs the kernel skipped"),
            (self.overflowed, "agent queue full"),
            (self.malformed, "malformed records"),
            (timeline, "timeline writer behind"),
        ];
        let named: Vec<&str> = ways.iter().filter(|(n, _)| *n > 0).map(|&(_, why)| why).collect();
        if named.is_empty() { "userspace".to_string() } else { named.join(", ") }
    }
}

pub(super) struct Loss {
    /// Loss counters as of the last (re)seed: an increase means the table missed events.
    pub(super) seen_lost: Losses,
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
        Loss { seen_lost: Losses::default(), seen_dropped: 0, clean_until_ns, resyncs: 0 }
    }

    /// The kernel's counters start at zero with the program: the first check compares
    /// with zero.
    pub(super) fn counted_from_zero(&mut self) {
        self.seen_lost = Losses::default();
    }
}

#[cfg(test)]
mod tests {
    use super::Losses;

    #[test]
    fn a_gap_names_every_way_its_events_went() {
        let before = Losses { ring: 5, skipped: 1, overflowed: 0, malformed: 0 };
        let now = Losses { ring: 13, skipped: 1, overflowed: 4096, malformed: 0 };
        let d = now.since(&before);
        assert_eq!((d.kernel(), d.userspace(2)), (8, 4098));
        assert_eq!(d.reason(2), "kernel ring buffer full, agent queue full, timeline writer behind");
        let skipped = Losses { skipped: 3, ..Losses::default() };
        assert_eq!(skipped.reason(0), "program runs the kernel skipped");
        assert_eq!(Losses::default().reason(0), "userspace");
    }
}
