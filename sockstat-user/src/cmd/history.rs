//! Questions to the past, answered from the timeline: `sockstat --at TIME [ss options]`
//! (the TCP table as it was, in ss's format) and `sockstat history` (lifetimes,
//! transitions and gaps in a window). An answer that spans a gap says so on stderr.

use std::{
    io::{self, Write},
    path::Path,
    time::{Duration, SystemTime},
};

use serde::Serialize;

use crate::{
    bpf::stream::kernel_state_name,
    cli::Options,
    live::table,
    query::{self, EventFilter},
    render::format,
    timeline::{Gap, Reader, TimelineError, format_ns, unix_ns},
};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "bad time {input:?}: expected RFC 3339 (2026-11-25T12:03:05Z, 2026-11-25 12:03:05), a time relative to now (-5m, -90s, -1h30m) or `now`"
    )]
    Time { input: String },
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    #[error("writing the answer")]
    Io(#[from] io::Error),
    #[error(
        "the timeline {path} records network namespace {recorded} (its agent's), not this one ({here}): \
         --at answers only in the namespace the agent runs in"
    )]
    OtherNamespace { path: String, recorded: u32, here: u32 },
    #[error("reading this process's network namespace")]
    Netns(#[source] io::Error),
}

/// Parses an absolute (RFC 3339, UTC unless an offset is given) or relative (`-5m`)
/// time into wall-clock ns since the epoch.
pub fn parse_time(input: &str, now: SystemTime) -> Result<i64, HistoryError> {
    let bad = || HistoryError::Time { input: input.to_string() };
    let s = input.trim();
    if s == "now" {
        return Ok(unix_ns(now));
    }
    if let Some(rel) = s.strip_prefix('-') {
        let d: Duration = humantime::parse_duration(rel).map_err(|_| bad())?;
        return Ok(unix_ns(now.checked_sub(d).ok_or_else(bad)?));
    }
    humantime::parse_rfc3339_weak(s).map(unix_ns).map_err(|_| bad())
}

fn warn_gaps(gaps: &[Gap], err: &mut dyn Write) -> io::Result<()> {
    for g in gaps {
        writeln!(
            err,
            "sockstat: warning: the timeline has a gap from {} to {} ({} events lost in the kernel, {} in userspace: {}); this answer may be incomplete",
            format_ns(g.start_ns),
            format_ns(g.end_ns),
            g.lost_kernel,
            g.lost_userspace,
            g.reason
        )?;
    }
    Ok(())
}

/// `sockstat --at TIME [ss options]`: the TCP table at TIME, as ss would have printed it.
pub fn print_at(
    timeline: &Path,
    at: &str,
    opts: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), HistoryError> {
    let at_ns = parse_time(at, SystemTime::now())?;
    let reader = Reader::open(timeline)?;
    // The timeline holds the agent's own namespace only (see `agent`): printed in
    // another namespace, its sockets would pass for that namespace's.
    let here = crate::sys::netns::own_netns().map_err(HistoryError::Netns)?;
    if let Some(recorded) = reader.netns()?
        && recorded != here
    {
        return Err(HistoryError::OtherNamespace { path: timeline.display().to_string(), recorded, here });
    }
    let state = reader.state_at(at_ns)?;
    warn_gaps(&state.gaps, err)?;
    let states = query::state_mask(&opts.selection);
    let mut rows = Vec::new();
    for family in query::families(&opts.selection) {
        let mut part: Vec<_> =
            state.sockets.iter().filter(|s| s.family == family && states & (1 << s.state) != 0).cloned().collect();
        table::sort_like_dump(&mut part);
        rows.extend(part);
    }
    let rows = query::select(&opts.selection, rows);
    format::render_inet(&opts.style, &rows, out)?;
    Ok(())
}

#[derive(Clone, Debug, Default)]
pub struct HistoryOptions {
    pub since: Option<String>,
    pub until: Option<String>,
    pub transitions: bool,
    pub json: bool,
    pub filter: EventFilter,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Lifetime {
        start: Option<String>,
        end: String,
        #[serde(flatten)]
        life: &'a crate::timeline::StoredLifetime,
    },
    Transition {
        time: String,
        #[serde(flatten)]
        t: &'a crate::timeline::StoredTransition,
        old_name: &'static str,
        new_name: &'static str,
    },
    Gap {
        start: String,
        end: String,
        lost_kernel: u64,
        lost_userspace: u64,
        reason: &'a str,
    },
}

/// `sockstat history`: lifetimes (or transitions) ending in the window, and its gaps.
pub fn print_history(
    timeline: &Path,
    opts: &HistoryOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), HistoryError> {
    let now = SystemTime::now();
    let since = opts.since.as_deref().map(|s| parse_time(s, now)).transpose()?.unwrap_or(i64::MIN);
    let until = opts.until.as_deref().map(|s| parse_time(s, now)).transpose()?.unwrap_or(i64::MAX);
    let reader = Reader::open(timeline)?;
    let gaps = reader.gaps(since, until)?;
    if opts.json {
        for g in &gaps {
            let line = Line::Gap {
                start: format_ns(g.start_ns),
                end: format_ns(g.end_ns),
                lost_kernel: g.lost_kernel,
                lost_userspace: g.lost_userspace,
                reason: &g.reason,
            };
            serde_json::to_writer(&mut *out, &line).map_err(io::Error::other)?;
            writeln!(out)?;
        }
    } else {
        warn_gaps(&gaps, err)?;
    }
    if opts.transitions {
        let rows = reader.transitions(since, until)?;
        if !opts.json {
            writeln!(out, "{:<30} {:<7} {:<16} {:<47} {:<47} OLD -> NEW", "TIME(UTC)", "PID", "COMM", "LOCAL", "PEER")?;
        }
        for t in rows.iter().filter(|t| opts.filter.accepts(&t.as_socket(), &[t.new])) {
            if opts.json {
                let line = Line::Transition {
                    time: format_ns(t.ts_ns),
                    t,
                    old_name: kernel_state_name(t.old),
                    new_name: kernel_state_name(t.new),
                };
                serde_json::to_writer(&mut *out, &line).map_err(io::Error::other)?;
                writeln!(out)?;
            } else {
                let columns = crate::cmd::trace::transition_columns(
                    t.pid,
                    &t.comm,
                    (t.src, t.sport),
                    (t.dst, t.dport),
                    t.old,
                    t.new,
                );
                writeln!(out, "{:<30} {columns}", format_ns(t.ts_ns))?;
            }
        }
        return Ok(());
    }
    let rows = reader.lifetimes(since, until)?;
    if !opts.json {
        writeln!(
            out,
            "{:<30} {:<7} {:<16} {:<47} {:<47} {:>10} {:>10} {:>12} PATH",
            "START(UTC)", "PID", "COMM", "LOCAL", "PEER", "TX_BYTES", "RX_BYTES", "DURATION_MS"
        )?;
    }
    for l in rows.iter().filter(|l| opts.filter.accepts(&l.as_socket(), &l.states())) {
        let start = l.start_ns.map(format_ns);
        if opts.json {
            let line = Line::Lifetime { start, end: format_ns(l.end_ns), life: l };
            serde_json::to_writer(&mut *out, &line).map_err(io::Error::other)?;
            writeln!(out)?;
        } else {
            let dur = l.duration_ns.map_or_else(|| "-".to_string(), |d| format!("{:.3}", d as f64 / 1e6));
            let columns = crate::cmd::trace::lifetime_columns(
                l.pid,
                &l.comm,
                (l.src, l.sport),
                (l.dst, l.dport),
                (l.bytes_sent, l.bytes_received),
                &dur,
                &l.path,
            );
            writeln!(out, "{:<30} {columns}", start.as_deref().unwrap_or("-"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_absolute_relative_and_bad() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_time("now", now).unwrap(), 1_000_000_000_000_000);
        assert_eq!(parse_time("-5m", now).unwrap(), 999_700_000_000_000);
        assert_eq!(parse_time("-1h 30m", now).unwrap(), 994_600_000_000_000);
        assert_eq!(parse_time("1970-01-12T13:46:40Z", now).unwrap(), 1_000_000_000_000_000);
        assert_eq!(parse_time("1970-01-12 13:46:40.5", now).unwrap(), 1_000_000_500_000_000);
        for bad in ["yesterday", "-5 parsecs", "2026-13-01T00:00:00Z", ""] {
            let e = parse_time(bad, now).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
