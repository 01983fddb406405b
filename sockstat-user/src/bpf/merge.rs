//! The events of several rings put back in time order.
//!
//! Each CPU writes to a ring of its own (see `sockstat_ebpf::EVENT_RINGS`), so the
//! events of one socket may be spread over several rings: the reader takes what each
//! ring holds and hands on the events in the order of their `ts_ns` (CLOCK_MONOTONIC, read
//! by the program after it reserved the record). A socket's transitions are made under
//! its lock, so their times are in the order they happened.
//!
//! What may be handed on: an event is released once no ring can still give an earlier
//! one. The reader reads the clock (`t`), then empties a ring; if it found the ring
//! empty, every record reserved before `t` was taken, and every later one will carry a
//! time of at least `t` (the program reads the clock after reserving): the ring's mark
//! becomes `t`. A ring left holding a record that is reserved but not committed yet
//! keeps its last mark. Events older than every ring's mark are released, in time order;
//! the others wait for the next pass.

use crate::bpf::stream::Transition;

/// Events taken from the rings, waiting for every ring's mark to pass them.
#[derive(Debug, Default)]
pub struct Merge {
    /// Per ring: the events taken and not released yet, in the ring's order (which is
    /// time order but where a program run was preempted between its reservation and its
    /// clock read).
    rings: Vec<Vec<Transition>>,
    /// Per ring: no event it gives from now on is older than this.
    marks: Vec<u64>,
    /// [`Merge::release`]'s work space, kept between calls.
    fronts: Vec<(usize, usize, usize)>,
}

impl Merge {
    #[must_use]
    pub fn new(rings: usize) -> Merge {
        Merge { rings: (0..rings).map(|_| Vec::new()).collect(), marks: vec![0; rings], fronts: Vec::new() }
    }

    /// An event taken from ring `ring`.
    pub fn push(&mut self, ring: usize, t: Transition) {
        if let Some(r) = self.rings.get_mut(ring) {
            r.push(t);
        }
    }

    /// Ring `ring` was found empty after the clock read `t` (no record reserved and not
    /// committed either).
    pub fn emptied(&mut self, ring: usize, t: u64) {
        if let Some(m) = self.marks.get_mut(ring) {
            *m = (*m).max(t);
        }
    }

    /// Events taken and not released yet.
    #[must_use]
    pub fn held(&self) -> usize {
        self.rings.iter().map(Vec::len).sum()
    }

    /// Appends to `out`, oldest first, every held event older than every ring's mark;
    /// returns how many. Each ring's events are in time order already but for a rare
    /// preempted run (then sorted, stably); the rings' runs are merged by index, so each
    /// event is copied once (into `out`), whatever the number of rings.
    pub fn release(&mut self, out: &mut Vec<Transition>) -> usize {
        let Some(&mark) = self.marks.iter().min() else { return 0 };
        let before = out.len();
        let Merge { rings, fronts, .. } = self;
        fronts.clear();
        for (i, r) in rings.iter_mut().enumerate() {
            if !r.is_sorted_by_key(|t| t.ts_ns) {
                r.sort_by_key(|t| t.ts_ns);
            }
            let end = r.partition_point(|t| t.ts_ns < mark);
            if end > 0 {
                // (ring, how many it releases, the next of them to hand on)
                fronts.push((i, end, 0));
            }
        }
        if let [(i, end, _)] = fronts.as_slice() {
            out.extend(rings[*i].drain(..*end));
            return out.len() - before;
        }
        // The oldest front next; equal times in ring order.
        loop {
            let mut next: Option<(usize, u64)> = None;
            for (k, &(i, end, at)) in fronts.iter().enumerate() {
                if at < end && next.is_none_or(|(_, ts)| rings[i][at].ts_ns < ts) {
                    next = Some((k, rings[i][at].ts_ns));
                }
            }
            let Some((k, _)) = next else { break };
            let (i, _, at) = &mut fronts[k];
            out.push(rings[*i][*at].clone());
            *at += 1;
        }
        for &(i, end, _) in fronts.iter() {
            rings[i].drain(..end);
        }
        out.len() - before
    }
}

#[cfg(test)]
mod tests {
    use sockstat_ebpf::TcpState;

    use super::*;

    fn ev(ts_ns: u64, cookie: u64) -> Transition {
        Transition::fixture(cookie, ts_ns, TcpState::SynSent, TcpState::Established, (5000, 80))
    }

    fn times(v: &[Transition]) -> Vec<(u64, u64)> {
        v.iter().map(|t| (t.ts_ns, t.cookie)).collect()
    }

    #[test]
    fn events_of_several_rings_come_out_in_time_order_once_every_ring_passed_them() {
        let mut m = Merge::new(2);
        let mut out = Vec::new();
        // Ring 0 emptied at 100, ring 1 still holds an uncommitted record (mark 0).
        m.push(0, ev(10, 1));
        m.push(0, ev(30, 2));
        m.emptied(0, 100);
        m.push(1, ev(20, 3));
        assert_eq!(m.release(&mut out), 0, "ring 1 may still give an earlier event");
        assert_eq!(m.held(), 3);
        // Ring 1's record committed (time 5, reserved before the others read the
        // clock); both rings emptied at 200.
        m.push(1, ev(5, 4));
        m.emptied(0, 200);
        m.emptied(1, 200);
        assert_eq!(m.release(&mut out), 4);
        assert_eq!(times(&out), [(5, 4), (10, 1), (20, 3), (30, 2)]);
        assert_eq!(m.held(), 0);
    }

    #[test]
    fn only_events_older_than_the_lowest_mark_are_released() {
        let mut m = Merge::new(2);
        let mut out = Vec::new();
        m.push(0, ev(50, 1));
        m.push(1, ev(150, 2));
        m.emptied(0, 200);
        m.emptied(1, 100);
        assert_eq!(m.release(&mut out), 1);
        assert_eq!(times(&out), [(50, 1)]);
        // An event at the mark itself may have a twin still to come: it waits.
        m.push(1, ev(100, 3));
        assert_eq!(m.release(&mut out), 0);
        m.emptied(1, 300);
        assert_eq!(m.release(&mut out), 2);
        assert_eq!(times(&out), [(50, 1), (100, 3), (150, 2)]);
    }

    #[test]
    fn a_mark_never_goes_back_and_equal_times_keep_their_order() {
        let mut m = Merge::new(1);
        let mut out = Vec::new();
        m.emptied(0, 100);
        m.emptied(0, 50);
        // A run preempted between its reservation and its clock read: out of time order
        // in its ring.
        m.push(0, ev(70, 1));
        m.push(0, ev(70, 2));
        m.push(0, ev(60, 3));
        assert_eq!(m.release(&mut out), 3);
        assert_eq!(times(&out), [(60, 3), (70, 1), (70, 2)]);
        // Nothing held, nothing released; no ring at all releases nothing.
        assert_eq!(m.release(&mut out), 0);
        let mut none = Merge::new(0);
        none.push(0, ev(1, 1));
        assert_eq!(none.release(&mut out), 0);
    }

    #[test]
    fn three_rings_interleave_by_time_and_equal_times_go_by_ring() {
        let mut m = Merge::new(3);
        let mut out = Vec::new();
        for (ring, ts, cookie) in [(0, 10, 1), (0, 40, 2), (1, 20, 3), (1, 40, 4), (2, 5, 5), (2, 30, 6)] {
            m.push(ring, ev(ts, cookie));
        }
        for ring in 0..3 {
            m.emptied(ring, 35);
        }
        assert_eq!(m.release(&mut out), 4);
        assert_eq!(times(&out), [(5, 5), (10, 1), (20, 3), (30, 6)]);
        assert_eq!(m.held(), 2);
        for ring in 0..3 {
            m.emptied(ring, 100);
        }
        assert_eq!(m.release(&mut out), 2);
        assert_eq!(times(&out[4..]), [(40, 2), (40, 4)]);
    }
}
