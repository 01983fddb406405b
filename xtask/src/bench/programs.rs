//! What the agent's eBPF programs cost in the kernel: run time and run count, which the
//! kernel keeps per program while `kernel.bpf_stats_enabled` is 1. The agent's programs
//! are the ones it holds descriptors of (`prog_id` in /proc/PID/fdinfo), other agents of
//! the machine load programs of the same names; they are named by the bpf syscall
//! (BPF_OBJ_GET_INFO_BY_FD, through aya), which keeps the first 15 bytes of a name.
//! Imports nothing from the rest of the bench.

use std::{collections::BTreeSet, fs};

use anyhow::{Context, Result};

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";
/// BPF_OBJ_NAME_LEN, the terminating NUL included.
const KERNEL_NAME_LEN: usize = 16;

/// `kernel.bpf_stats_enabled` set to 1 while this lives; its old value is written back on
/// drop. The statistics cost each program run two clock reads, so they are on only while
/// the program cost is measured.
pub(super) struct StatsOn {
    old: String,
}

impl StatsOn {
    pub(super) fn enable() -> Result<StatsOn> {
        let old = fs::read_to_string(STATS_SYSCTL).with_context(|| format!("reading {STATS_SYSCTL}"))?;
        fs::write(STATS_SYSCTL, "1").with_context(|| format!("writing 1 to {STATS_SYSCTL}"))?;
        Ok(StatsOn { old: old.trim().to_string() })
    }
}

impl Drop for StatsOn {
    fn drop(&mut self) {
        let _ = fs::write(STATS_SYSCTL, &self.old);
    }
}

/// One program's counters at one moment.
#[derive(Clone, Debug)]
pub(super) struct ProgramCounters {
    /// The name the kernel keeps (at most 15 bytes).
    pub(super) name: String,
    pub(super) run_time_ns: u64,
    pub(super) run_cnt: u64,
}

/// What a program cost between two readings.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ProgramCost {
    pub(super) runs: u64,
    pub(super) run_time_ns: u64,
}

impl ProgramCost {
    pub(super) fn ns_per_run(&self) -> f64 {
        self.run_time_ns as f64 / self.runs.max(1) as f64
    }
}

/// The ids of the programs process `pid` holds: its program descriptors, and the programs
/// of its link descriptors.
fn program_ids(pid: u32) -> Result<BTreeSet<u32>> {
    let dir = format!("/proc/{pid}/fdinfo");
    let mut ids = BTreeSet::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        // A descriptor closed since the listing is no program of ours.
        let Ok(info) = fs::read_to_string(entry?.path()) else { continue };
        for line in info.lines() {
            if let Some(id) = line.strip_prefix("prog_id:") {
                ids.insert(id.trim().parse().with_context(|| format!("prog_id {id:?} in {dir}"))?);
            }
        }
    }
    Ok(ids)
}

/// The counters of every program process `pid` holds.
pub(super) fn programs_of(pid: u32) -> Result<Vec<ProgramCounters>> {
    let ids = program_ids(pid)?;
    // Programs loaded and unloaded by others while we walk the list fail to open: skipped.
    Ok(aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| ids.contains(&p.id()))
        .map(|p| ProgramCounters {
            name: String::from_utf8_lossy(p.name()).into_owned(),
            run_time_ns: u64::try_from(p.run_time().as_nanos()).unwrap_or(u64::MAX),
            run_cnt: p.run_count(),
        })
        .collect())
}

/// How many programs named `full` are loaded on the machine: other agents and traces run
/// on the same events as the bench's and weigh on every churn rate.
pub(super) fn loaded_named(full: &str) -> usize {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| same_name(&String::from_utf8_lossy(p.name()), full))
        .count()
}

/// Whether the kernel's (truncated) name of a program is `full`.
fn same_name(kernel: &str, full: &str) -> bool {
    let n = full.len().min(KERNEL_NAME_LEN - 1);
    full.get(..n).is_some_and(|prefix| prefix == kernel)
}

/// The cost of the programs named `full` between two readings (summed if several programs
/// carry the name); None if neither reading has one.
pub(super) fn cost(before: &[ProgramCounters], after: &[ProgramCounters], full: &str) -> Option<ProgramCost> {
    let sum = |v: &[ProgramCounters]| {
        v.iter().filter(|p| same_name(&p.name, full)).fold(None, |acc: Option<ProgramCost>, p| {
            let a = acc.unwrap_or_default();
            Some(ProgramCost { runs: a.runs + p.run_cnt, run_time_ns: a.run_time_ns + p.run_time_ns })
        })
    };
    let (b, a) = (sum(before), sum(after)?);
    let b = b.unwrap_or_default();
    Some(ProgramCost { runs: a.runs.saturating_sub(b.runs), run_time_ns: a.run_time_ns.saturating_sub(b.run_time_ns) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_names_are_truncated_names() {
        assert!(same_name("sockstat_set_st", "sockstat_set_state"));
        assert!(same_name("sockstat_accept", "sockstat_accept"));
        assert!(!same_name("sockstat_accep", "sockstat_accept"));
        assert!(!same_name("sockstat_owners", "sockstat_accept"));
    }

    #[test]
    fn cost_is_the_difference_of_two_readings() {
        let p = |name: &str, t, n| ProgramCounters { name: name.into(), run_time_ns: t, run_cnt: n };
        let before = [p("sockstat_set_st", 1_000, 10), p("sockstat_accept", 50, 1)];
        let after = [p("sockstat_set_st", 31_000, 110), p("sockstat_accept", 250, 3)];
        let c = cost(&before, &after, "sockstat_set_state").expect("named");
        assert_eq!((c.runs, c.run_time_ns), (100, 30_000));
        assert!((c.ns_per_run() - 300.0).abs() < 1e-9);
        assert!(cost(&before, &after, "sockstat_owners").is_none());
    }
}
