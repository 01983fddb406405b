//! `sockstat status`: the agent's counters, as text or one JSON object.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;

use crate::wire::{client, protocol::Status};

/// Asks the agent at `socket` for its status and prints it.
///
/// # Errors
/// Reaching the agent, writing to stdout.
pub fn run(socket: &Path, json: bool) -> Result<()> {
    let s = client::Client::connect(socket).and_then(client::Client::status)?;
    let mut out = io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &s)?;
        writeln!(out)?;
    } else {
        writeln!(out, "agent pid:        {}", s.pid)?;
        writeln!(out, "netns:            {}", s.netns)?;
        writeln!(out, "uptime:           {:.1}s", s.uptime_ms as f64 / 1000.0)?;
        writeln!(out, "events seen:      {}", s.events_seen)?;
        writeln!(out, "events received:  {}", s.events_received)?;
        writeln!(
            out,
            "events lost:      {} (kernel ring buffer) + {} (program runs the kernel skipped) + {} (malformed) + {} (agent queue full)",
            s.events_lost_kernel, s.events_missed, s.events_malformed, s.events_overflowed
        )?;
        writeln!(
            out,
            "events rescued:   {} (transitions that interrupted the transition program on its CPU, run by its second)",
            s.events_rescued
        )?;
        writeln!(
            out,
            "events queued:    {} at most (read from the ring, waiting for the event loop)",
            s.events_queued_peak
        )?;
        writeln!(out, "read errors:      {}", s.read_errors)?;
        writeln!(out, "resyncs:          {}", s.resyncs)?;
        writeln!(out, "table size:       {} ({} network namespaces)", s.table_size, s.namespaces.len())?;
        for ns in &s.namespaces {
            let name = ns.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
            let own = if ns.own { ", the agent's own" } else { "" };
            writeln!(out, "  netns {}{name}: {} sockets{own}", ns.netns, ns.sockets)?;
        }
        writeln!(out, "seed time:        {} ms", s.seed_ms)?;
        writeln!(
            out,
            "accept hook:      {}",
            if s.accept_hook { "attached" } else { "absent (passive opens attributed to the listener's owner)" }
        )?;
        writeln!(
            out,
            "owners iterator:  {}",
            if s.owners_iter { "loaded (-p reads owners through the agent)" } else { "absent (-p walks /proc)" }
        )?;
        if s.owners_iter {
            writeln!(
                out,
                "owners kept:      {} ({} answers from kept owners, {} walks of one process, {} walks of every process)",
                if s.owners_kept { "yes, between queries" } else { "no (each -p walks every process)" },
                s.owner_answers_kept,
                s.owner_walks_process,
                s.owner_walks_whole
            )?;
        }
        if s.sock_ops {
            writeln!(
                out,
                "sock_ops:         attached (TCP answers from the table; mini sockets checked by {} lookups, {} dumps, {} timewait count mismatches; {} dumps spared, one made < 250 ms before)",
                s.mini_lookups, s.mini_dumps, s.mini_count_mismatches, s.mini_dumps_spared
            )?;
            writeln!(
                out,
                "closes unreported: {} (full sockets found closed or handed to timewait sockets; removed)",
                s.closes_unreported
            )?;
        } else {
            writeln!(out, "sock_ops:         absent (SYN-SENT, SYN-RECV and timewait rows dumped at query time)")?;
        }
        writeln!(out, "shared answers:   {} (large answers handed over in shared memory)", s.answers_shared)?;
        match (s.timeline_committed, s.timeline_dropped) {
            (Some(c), Some(d)) => writeln!(out, "timeline:         {c} rows committed, {d} dropped")?,
            _ => writeln!(out, "timeline:         off")?,
        }
        write_programs(&mut out, &s)?;
    }
    Ok(())
}

/// The programs' cost as the kernel counts it: per run, and runs per second.
fn write_programs(out: &mut impl Write, s: &Status) -> io::Result<()> {
    let state = match s.bpf_stats {
        Some(true) => "stats on (kernel.bpf_stats_enabled=1)",
        Some(false) => STATS_OFF,
        None => "unknown: cannot read /proc/sys/kernel/bpf_stats_enabled",
    };
    writeln!(out, "program cost:     {state}")?;
    for p in &s.programs {
        let label = format!("{}:", p.role);
        match p.ns_per_run {
            Some(ns) => writeln!(
                out,
                "  {label:<17} {ns} ns per run, {} runs/s since start ({} runs counted; {} id {})",
                p.runs_per_sec, p.run_count, p.name, p.id
            )?,
            None => writeln!(out, "  {label:<17} no runs counted ({} id {})", p.name, p.id)?,
        }
    }
    Ok(())
}

/// What `status` says when the kernel does not count program runs.
const STATS_OFF: &str = "stats off: run `sysctl kernel.bpf_stats_enabled=1`";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::protocol::ProgramStatus;

    fn status(bpf_stats: Option<bool>, programs: Vec<ProgramStatus>) -> Status {
        Status {
            pid: 1,
            netns: 2,
            uptime_ms: 3,
            events_seen: 0,
            events_received: 0,
            events_lost_kernel: 0,
            events_missed: 0,
            events_rescued: 0,
            events_malformed: 0,
            events_overflowed: 0,
            events_queued_peak: 0,
            closes_unreported: 0,
            mini_dumps_spared: 0,
            read_errors: 0,
            resyncs: 0,
            table_size: 0,
            namespaces: Vec::new(),
            seed_ms: 0,
            timeline_committed: None,
            timeline_dropped: None,
            accept_hook: true,
            owners_iter: true,
            owners_kept: true,
            owner_walks_whole: 1,
            owner_walks_process: 2,
            owner_answers_kept: 3,
            answers_shared: 4,
            sock_ops: true,
            mini_lookups: 0,
            mini_dumps: 0,
            mini_count_mismatches: 0,
            bpf_stats,
            programs,
        }
    }

    fn program(role: &str, name: &str, id: u32, run_count: u64, ns_per_run: Option<u64>) -> ProgramStatus {
        ProgramStatus {
            role: role.into(),
            name: name.into(),
            id,
            run_count,
            run_time_ns: run_count * ns_per_run.unwrap_or(0),
            ns_per_run,
            runs_per_sec: run_count / 10,
        }
    }

    fn text(s: &Status) -> String {
        let mut out = Vec::new();
        write_programs(&mut out, s).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn program_cost_per_program_or_how_to_turn_stats_on() {
        let programs = vec![
            program("transition", "sockstat_set_state", 11, 1500, Some(205)),
            program("accept hook", "sockstat_accept", 12, 150, Some(290)),
            program("owners, even fds", "sockstat_owner0", 13, 0, None),
        ];
        assert_eq!(
            text(&status(Some(true), programs.clone())),
            "program cost:     stats on (kernel.bpf_stats_enabled=1)\n\
             \x20 transition:       205 ns per run, 150 runs/s since start (1500 runs counted; sockstat_set_state id 11)\n\
             \x20 accept hook:      290 ns per run, 15 runs/s since start (150 runs counted; sockstat_accept id 12)\n\
             \x20 owners, even fds: no runs counted (sockstat_owner0 id 13)\n"
        );
        let off = text(&status(Some(false), programs[2..].to_vec()));
        assert_eq!(
            off,
            "program cost:     stats off: run `sysctl kernel.bpf_stats_enabled=1`\n\
             \x20 owners, even fds: no runs counted (sockstat_owner0 id 13)\n"
        );
    }
}
