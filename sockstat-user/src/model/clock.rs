//! Clocks: the eBPF program stamps events with CLOCK_MONOTONIC (`bpf_ktime_get_ns`);
//! people read wall-clock time. These convert between the two.

use std::time::{Duration, SystemTime};

/// CLOCK_MONOTONIC now, the clock `bpf_ktime_get_ns` reads.
pub fn monotonic_now() -> Duration {
    // CLOCK_MONOTONIC is always supported on Linux; a failure would be a kernel bug.
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .unwrap_or_else(|_| nix::sys::time::TimeSpec::new(0, 0));
    Duration::new(ts.tv_sec().unsigned_abs(), u32::try_from(ts.tv_nsec()).unwrap_or(0))
}

/// CLOCK_MONOTONIC now, in nanoseconds.
#[must_use]
pub fn monotonic_ns() -> u64 {
    u64::try_from(monotonic_now().as_nanos()).unwrap_or(u64::MAX)
}

/// Converts a CLOCK_MONOTONIC timestamp to wall-clock time, using the current offset
/// between the two clocks (exact unless the wall clock was stepped since).
pub fn monotonic_to_system(ts_ns: u64) -> SystemTime {
    let mono_now = monotonic_now();
    let now = SystemTime::now();
    let event = Duration::from_nanos(ts_ns);
    if event <= mono_now { now - (mono_now - event) } else { now + (event - mono_now) }
}
