//! Questions to the past, answered from the timeline: `sockstat --at TIME [ss options]`
//! (the TCP table as it was, in ss's format, in the namespace sockstat runs in or `-N`
//! names) and `sockstat history` (lifetimes, transitions and gaps in a window, of every
//! namespace or the one `--netns` names), from the local timeline or, with `--nats`, from
//! the fleet's stream (`fleet::fetch`: the same records, each with its host). An answer
//! that spans a gap says so on stderr.

use std::{
    io::{self, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use crate::{
    cli::{Options, netns_arg::NetnsArg},
    fleet::{FleetError, fetch, payload::Line},
    live::table,
    query::{self, EventFilter},
    render::format,
    timeline::{Gap, Reader, StoredLifetime, StoredTransition, TimelineError, format_ns, unix_ns},
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
    #[error(transparent)]
    Fleet(#[from] FleetError),
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

fn warn_gaps(gaps: &[(Option<String>, Gap, Option<u64>)], err: &mut dyn Write) -> io::Result<()> {
    for (host, g, _) in gaps {
        let whose = host.as_ref().map_or_else(|| "the timeline".to_string(), |h| format!("host {h}'s timeline"));
        writeln!(
            err,
            "sockstat: warning: {whose} has a gap from {} to {} ({} events lost in the kernel, {} in userspace: {}); this answer may be incomplete",
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
    // The timeline holds every namespace the agent tracked: the answer is this one's
    // (the one sockstat runs in, which `-N` entered before this), as ss's would be.
    let here = crate::sys::netns::own_netns().map_err(HistoryError::Netns)?;
    let state = reader.state_at(at_ns, here)?;
    let gaps: Vec<_> = state.gaps.iter().map(|g| (None, g.clone(), None)).collect();
    warn_gaps(&gaps, err)?;
    let states = query::state_mask(&opts.selection);
    let mut rows = Vec::new();
    for family in query::families(&opts.selection) {
        let mut part: Vec<_> =
            state.sockets.iter().filter(|s| s.family == family && states & (1 << s.state) != 0).cloned().collect();
        table::sort_like_dump(&mut part);
        rows.extend(part);
    }
    let mut rows = query::select(&opts.selection, rows);
    // The cgroups were there for the `cgroup` condition only: the rows print as the
    // agent's do (ss's `--cgroup` column takes a kernel dump, not the timeline).
    for r in &mut rows {
        r.ext = None;
    }
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
    /// Only this network namespace (default: every one).
    pub netns: Option<NetnsArg>,
    /// Only connections that failed ([`StoredLifetime::failed`]).
    pub failed: bool,
}

/// `--netns`, resolved once: the namespace asked for, and the inode its name has now.
struct NetnsWanted<'a>(Option<(&'a NetnsArg, Option<u32>)>);

impl<'a> NetnsWanted<'a> {
    fn new(arg: Option<&'a NetnsArg>) -> NetnsWanted<'a> {
        NetnsWanted(arg.map(|w| (w, matches!(w, NetnsArg::Name(_)).then(|| w.inode().ok()).flatten())))
    }

    /// Whether a record of namespace `inode` (recorded as `name`) is one asked for.
    fn accepts(&self, inode: u32, name: Option<&str>) -> bool {
        self.0.is_none_or(|(w, named_now)| w.matches(inode, name, named_now))
    }
}

/// The cgroup as text output shows it: its last component, shortened to `width`
/// columns from the left (a container id's first characters stay); `-` when unknown.
fn short_cgroup(path: Option<&str>, width: usize) -> String {
    let Some(path) = path else { return "-".into() };
    let last = path.rsplit('/').find(|c| !c.is_empty()).unwrap_or("/");
    let mut s: String = last.chars().take(width).collect();
    if last.chars().count() > width {
        s.pop();
        s.push('~');
    }
    s
}

/// The namespace as text output shows it: its name, else its inode.
fn netns_text(inode: u32, name: Option<&str>) -> String {
    name.map_or_else(|| inode.to_string(), str::to_owned)
}

/// Where `history` reads: the local timeline, or the fleet's stream.
#[derive(Clone, Debug)]
pub enum Source {
    Timeline(PathBuf),
    /// `--nats URL [--host NAME]`.
    Fleet {
        url: String,
        host: Option<String>,
    },
}

/// The records of an answer, each with its host when they come from the fleet.
#[derive(Default)]
struct Answer {
    fleet: bool,
    gaps: Vec<(Option<String>, Gap, Option<u64>)>,
    lifetimes: Vec<(Option<String>, StoredLifetime)>,
    transitions: Vec<(Option<String>, StoredTransition)>,
}

/// The window's records from `source`.
fn answer(source: &Source, opts: &HistoryOptions, since: i64, until: i64) -> Result<Answer, HistoryError> {
    match source {
        Source::Timeline(path) => {
            let reader = Reader::open(path)?;
            let mut a = Answer {
                gaps: reader.gaps(since, until)?.into_iter().map(|g| (None, g, None)).collect(),
                ..Answer::default()
            };
            if opts.transitions {
                a.transitions = reader.transitions(since, until)?.into_iter().map(|t| (None, t)).collect();
            } else {
                a.lifetimes = reader.lifetimes(since, until)?.into_iter().map(|l| (None, l)).collect();
            }
            Ok(a)
        }
        Source::Fleet { url, host } => {
            let f = fetch::fetch(&fetch::FetchOptions {
                url: url.clone(),
                host: host.clone(),
                transitions: opts.transitions,
                since,
                until,
            })?;
            // As the local timeline orders them (by time), hosts after.
            let mut a = Answer {
                fleet: true,
                gaps: f.gaps.into_iter().map(|(h, g, u)| (Some(h), g, u)).collect(),
                lifetimes: f.lifetimes.into_iter().map(|(h, l)| (Some(h), l)).collect(),
                transitions: f.transitions.into_iter().map(|(h, t)| (Some(h), t)).collect(),
            };
            a.gaps.sort_by(|x, y| (x.1.start_ns, &x.0).cmp(&(y.1.start_ns, &y.0)));
            a.lifetimes.sort_by(|x, y| (x.1.end_ns, &x.0).cmp(&(y.1.end_ns, &y.0)));
            a.transitions.sort_by(|x, y| (x.1.ts_ns, &x.0).cmp(&(y.1.ts_ns, &y.0)));
            Ok(a)
        }
    }
}

fn write_json(out: &mut dyn Write, line: &Line<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, line).map_err(io::Error::other)?;
    writeln!(out)
}

/// The host column of fleet answers (empty for the local timeline).
fn host_cell(fleet: bool, host: Option<&str>) -> String {
    if fleet { format!("{:<20} ", host.unwrap_or("-")) } else { String::new() }
}

/// `sockstat history`: lifetimes (or transitions) ending in the window, and its gaps,
/// from the local timeline or the fleet's stream.
pub fn print_history(
    source: &Source,
    opts: &HistoryOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), HistoryError> {
    let now = SystemTime::now();
    let since = opts.since.as_deref().map(|s| parse_time(s, now)).transpose()?.unwrap_or(i64::MIN);
    let until = opts.until.as_deref().map(|s| parse_time(s, now)).transpose()?.unwrap_or(i64::MAX);
    let a = answer(source, opts, since, until)?;
    if opts.json {
        for (host, g, unpublished) in &a.gaps {
            write_json(out, &Line::gap(host.as_deref(), g, *unpublished))?;
        }
    } else {
        warn_gaps(&a.gaps, err)?;
    }
    let hosts_header = host_cell(a.fleet, Some("HOST"));
    let netns = NetnsWanted::new(opts.netns.as_ref());
    if opts.transitions {
        if !opts.json {
            writeln!(
                out,
                "{hosts_header}{:<30} {:<7} {:<16} {:<47} {:<47} OLD -> NEW NETNS CGROUP",
                "TIME(UTC)", "PID", "COMM", "LOCAL", "PEER"
            )?;
        }
        for (host, t) in a
            .transitions
            .iter()
            .filter(|(_, t)| netns.accepts(t.netns, t.netns_name.as_deref()))
            .filter(|(_, t)| opts.filter.accepts(&t.as_socket(), &[t.new]))
        {
            if opts.json {
                write_json(out, &Line::transition(host.as_deref(), t))?;
            } else {
                let columns = crate::cmd::trace::transition_columns(
                    t.pid,
                    &t.comm,
                    (t.src, t.sport),
                    (t.dst, t.dport),
                    t.old,
                    t.new,
                );
                let ns = netns_text(t.netns, t.netns_name.as_deref());
                writeln!(
                    out,
                    "{}{:<30} {columns} {ns} {}",
                    host_cell(a.fleet, host.as_deref()),
                    format_ns(t.ts_ns),
                    short_cgroup(t.cgroup.as_deref(), 24)
                )?;
            }
        }
        return Ok(());
    }
    if !opts.json {
        writeln!(
            out,
            "{hosts_header}{:<30} {:<7} {:<16} {:<47} {:<47} {:>10} {:>10} {:>12} PATH {HEALTH_HEADER}",
            "START(UTC)", "PID", "COMM", "LOCAL", "PEER", "TX_BYTES", "RX_BYTES", "DURATION_MS"
        )?;
    }
    for (host, l) in a
        .lifetimes
        .iter()
        .filter(|(_, l)| netns.accepts(l.netns, l.netns_name.as_deref()))
        .filter(|(_, l)| !opts.failed || l.failed())
        .filter(|(_, l)| opts.filter.accepts(&l.as_socket(), &l.states()))
    {
        if opts.json {
            write_json(out, &Line::lifetime(host.as_deref(), l))?;
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
            let start = l.start_ns.map(format_ns);
            writeln!(
                out,
                "{}{:<30} {columns} {}",
                host_cell(a.fleet, host.as_deref()),
                start.as_deref().unwrap_or("-"),
                health_columns(l)
            )?;
        }
    }
    Ok(())
}

/// The header of [`health_columns`].
const HEALTH_HEADER: &str = "NETNS CGROUP ERROR RETRANS SRTT_US";

/// What a lifetime line says after its path: namespace, cgroup (short form), the error
/// at close, retransmits and smoothed RTT (`-` where unknown), space-separated.
fn health_columns(l: &StoredLifetime) -> String {
    let opt = |v: Option<u32>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    format!(
        "{} {} {} {} {}",
        netns_text(l.netns, l.netns_name.as_deref()),
        short_cgroup(l.cgroup.as_deref(), 24),
        l.error.as_deref().unwrap_or("-"),
        opt(l.retrans),
        opt(l.srtt_us)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_show_their_last_component_in_24_columns() {
        assert_eq!(short_cgroup(Some("/system.slice/nginx.service"), 24), "nginx.service");
        assert_eq!(short_cgroup(Some("/"), 24), "/");
        assert_eq!(short_cgroup(None, 24), "-");
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(short_cgroup(Some(&format!("/kubepods/pod1/{id}")), 24), "0123456789abcdef0123456~");
        assert_eq!(netns_text(7, Some("blue")), "blue");
        assert_eq!(netns_text(7, None), "7");
    }

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
