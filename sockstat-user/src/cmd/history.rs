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
    /// The namespace the timeline's agent ran in (local answers only).
    own_netns: Option<u32>,
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
                own_netns: reader.netns()?,
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
                own_netns: None,
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
    let netns = NetnsWanted::new(opts.netns.as_ref());
    // Text shows where a socket was in one column: its cgroup, after its namespace
    // when that is not the agent's own (where most are; a fleet answer does not know
    // each host's own, and names every namespace).
    let own = a.own_netns;
    let place = |inode: u32, name: Option<&str>, cgroup: Option<&str>| {
        let cgroup = short_cgroup(cgroup, CGROUP_WIDTH);
        if own == Some(inode) { cgroup } else { format!("{}:{cgroup}", netns_text(inode, name)) }
    };
    if opts.transitions {
        let mut table = Table::new(a.fleet, &["TIME(UTC)", "PID/COMM", "LOCAL", "PEER", "OLD>NEW", "CGROUP"], &[]);
        for (host, t) in a
            .transitions
            .iter()
            .filter(|(_, t)| netns.accepts(t.netns, t.netns_name.as_deref()))
            .filter(|(_, t)| opts.filter.accepts(&t.as_socket(), &[t.new]))
        {
            if opts.json {
                write_json(out, &Line::transition(host.as_deref(), t))?;
            } else {
                table.push(
                    host.as_deref(),
                    Some(t.ts_ns),
                    vec![
                        clock(t.ts_ns, 6),
                        process(t.pid, &t.comm),
                        endpoint(t.src, t.sport),
                        endpoint(t.dst, t.dport),
                        format!("{}>{}", ss_state(t.old), ss_state(t.new)),
                        place(t.netns, t.netns_name.as_deref(), t.cgroup.as_deref()),
                    ],
                );
            }
        }
        return if opts.json { Ok(()) } else { table.write(out) };
    }
    let mut table = Table::new(
        a.fleet,
        &["START(UTC)", "DUR", "PID/COMM", "LOCAL", "PEER", "PATH", "TX/RX", "CGROUP", "HEALTH"],
        &[1, 6],
    );
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
            let dur = l.duration_ns.map_or_else(|| "-".to_string(), duration);
            table.push(
                host.as_deref(),
                l.start_ns,
                vec![
                    l.start_ns.map_or_else(|| "-".to_string(), |s| clock(s, 3)),
                    dur,
                    process(l.pid, &l.comm),
                    endpoint(l.src, l.sport),
                    endpoint(l.dst, l.dport),
                    short_path(&l.path),
                    format!("{}/{}", bytes(l.bytes_sent), bytes(l.bytes_received)),
                    place(l.netns, l.netns_name.as_deref(), l.cgroup.as_deref()),
                    health(l),
                ],
            );
        }
    }
    if opts.json { Ok(()) } else { table.write(out) }
}

/// Columns a cgroup takes at most in text output.
const CGROUP_WIDTH: usize = 16;

/// A duration in at most 5 columns: `149us`, `1.2ms`, `35ms`, `3.4s`, `12m`, `5h`, `3d`.
fn duration(ns: i64) -> String {
    let ns = ns.max(0) as f64;
    let short = |v: f64, unit: &str| if v < 10.0 { format!("{v:.1}{unit}") } else { format!("{v:.0}{unit}") };
    if ns < 1e6 {
        format!("{:.0}us", ns / 1e3)
    } else if ns < 1e9 {
        short(ns / 1e6, "ms")
    } else if ns < 60e9 {
        short(ns / 1e9, "s")
    } else if ns < 3600e9 {
        format!("{:.0}m", ns / 60e9)
    } else if ns < 86_400e9 {
        format!("{:.0}h", ns / 3600e9)
    } else {
        format!("{:.0}d", ns / 86_400e9)
    }
}

/// Text output: columns as wide as their widest cell (so that a line of IPv4
/// connections stays within 100 columns), a `# DATE (UTC)` line before the first row
/// and wherever the date changes (rows show the time of day only). A fleet answer's
/// rows start with their host (column `HOST`).
struct Table {
    header: Vec<String>,
    right: Vec<usize>,
    rows: Vec<(Option<i64>, Vec<String>)>,
    fleet: bool,
}

impl Table {
    fn new(fleet: bool, header: &[&str], right: &[usize]) -> Table {
        let shift = usize::from(fleet);
        Table {
            header: fleet
                .then(|| "HOST".to_string())
                .into_iter()
                .chain(header.iter().map(|h| (*h).to_string()))
                .collect(),
            right: right.iter().map(|r| r + shift).collect(),
            rows: Vec::new(),
            fleet,
        }
    }

    /// A row of `host` (fleet answers), at wall-clock ns `at` (for the date lines;
    /// `None`: unknown).
    fn push(&mut self, host: Option<&str>, at: Option<i64>, cells: Vec<String>) {
        let host = self.fleet.then(|| host.unwrap_or("-").to_string());
        self.rows.push((at, host.into_iter().chain(cells).collect()));
    }

    fn write(&self, out: &mut dyn Write) -> Result<(), HistoryError> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for (_, cells) in &self.rows {
            for (w, c) in widths.iter_mut().zip(cells) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let last = cells.len().saturating_sub(1);
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                let text = if self.right.contains(&i) {
                    format!("{c:>w$}")
                } else if i == last {
                    c.clone()
                } else {
                    format!("{c:<w$}")
                };
                s.push_str(&text);
                if i != last {
                    s.push(' ');
                }
            }
            s
        };
        writeln!(out, "{}", line(&self.header))?;
        let mut day = None;
        for (at, cells) in &self.rows {
            if let Some(d) = at.map(|t| format_ns(t)[..10].to_string())
                && day.as_ref() != Some(&d)
            {
                writeln!(out, "# {d} (UTC)")?;
                day = Some(d);
            }
            writeln!(out, "{}", line(cells))?;
        }
        Ok(())
    }
}

/// The time of day of wall-clock ns `ns` (UTC), with `digits` decimals of the second.
fn clock(ns: i64, digits: usize) -> String {
    let full = format_ns(ns);
    // 2026-11-29T21:07:26.640574277Z: the time of day, cut to the digits asked for.
    let t = full.get(11..full.len().saturating_sub(1)).unwrap_or(&full);
    let cut = t.find('.').map_or(t.len(), |dot| (dot + 1 + digits).min(t.len()));
    t[..cut].to_string()
}

/// `PID/COMM`, the name cut to 8 characters (`~` where cut); `-` when unknown.
fn process(pid: u32, comm: &str) -> String {
    if pid == 0 && comm.is_empty() {
        return "-".into();
    }
    let mut c: String = comm.chars().take(8).collect();
    if comm.chars().count() > 8 {
        c.pop();
        c.push('~');
    }
    format!("{pid}/{c}")
}

/// `ADDR:PORT`, IPv6 in brackets (shortened as usual: `[::1]:80`).
fn endpoint(a: std::net::IpAddr, port: u16) -> String {
    match a {
        std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// A state as ss names it (`ESTAB`, `FIN-WAIT-1`), but CLOSE for CLOSE (ss's `UNCONN`
/// is what a dump says of a closed socket, not a transition's end).
fn ss_state(s: u8) -> &'static str {
    if s == sockstat_ebpf::TcpState::Close as u8 { "CLOSE" } else { crate::render::labels::state_name(s) }
}

/// The one-letter code of a state in a text path (see [`short_path`]).
fn state_letter(name: &str) -> char {
    match name {
        "ESTABLISHED" => 'E',
        "SYN_SENT" => 'S',
        "SYN_RECV" => 'R',
        "FIN_WAIT1" => '1',
        "FIN_WAIT2" => '2',
        "TIME_WAIT" => 'T',
        "CLOSE" => 'C',
        "CLOSE_WAIT" => 'W',
        "LAST_ACK" => 'A',
        "LISTEN" => 'L',
        "CLOSING" => 'G',
        "NEW_SYN_RECV" => 'N',
        _ => '?',
    }
}

/// A lifetime's path in text output: one letter a state (`SE12C`: SYN_SENT ESTABLISHED
/// FIN_WAIT1 FIN_WAIT2 CLOSE; `REWAC`: SYN_RECV ESTABLISHED CLOSE_WAIT LAST_ACK CLOSE;
/// T TIME_WAIT, L LISTEN, G CLOSING, N NEW_SYN_RECV). JSON keeps the names.
fn short_path(path: &str) -> String {
    if path.is_empty() {
        return "-".into();
    }
    path.split('>').map(state_letter).collect()
}

/// A byte count in at most 5 columns: `812`, `12K`, `3.4M`, `17G` (powers of 1024).
fn bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    let mut v = n;
    for unit in ["", "K", "M", "G", "T"] {
        if v < 1024.0 {
            return if unit.is_empty() {
                format!("{v}")
            } else if v < 10.0 {
                format!("{v:.1}{unit}")
            } else {
                format!("{v:.0}{unit}")
            };
        }
        v /= 1024.0;
    }
    format!("{v:.0}P")
}

/// The error, retransmits and smoothed RTT at close, as short as they go: the errno name
/// (`ECONNREFUSED`), `rtxN` when there were retransmits, the RTT (`25us`, `1.2ms`)
/// when there was no error;
/// comma-separated, `-` when none is known.
fn health(l: &StoredLifetime) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(e) = &l.error {
        parts.push(e.clone());
    }
    if let Some(r) = l.retrans.filter(|r| *r > 0) {
        parts.push(format!("rtx{r}"));
    }
    // A connection that failed: its RTT says little.
    if let Some(us) = l.srtt_us.filter(|_| l.error.is_none()) {
        parts.push(if us < 1000 { format!("{us}us") } else { format!("{:.1}ms", f64::from(us) / 1000.0) });
    }
    if parts.is_empty() { "-".into() } else { parts.join(",") }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file with a refused connect and a loopback connection (both ends), a listener.
    fn recorded(name: &str) -> std::path::PathBuf {
        use crate::{
            bpf::stream::Transition,
            timeline::{Record, Writer, WriterConfig},
        };
        use sockstat_ebpf::TcpState::*;
        let path = std::env::temp_dir().join(format!("sockstat-history-{name}-{}.db", std::process::id()));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let cfg = WriterConfig {
            commit_every: Duration::ZERO,
            ..WriterConfig::new(path.clone(), Duration::from_secs(3600), 1 << 30, false)
        };
        let mut w = Writer::start(cfg, 4_026_531_840).unwrap();
        let t = |cookie, ts, old, new, ports: (u16, u16)| Transition {
            netns: 4_026_531_840,
            pid: 123_456,
            comm: "postgres-worker".into(),
            bytes_acked: 123_456,
            bytes_received: 9_999_999,
            srtt_us: 1_234,
            retrans: 2,
            ..Transition::fixture(cookie, ts, old, new, ports)
        };
        for tr in [
            t(1, 1_000, Close, Listen, (5432, 0)),
            t(2, 2_000, Close, SynSent, (0, 5432)),
            t(2, 3_000, SynSent, Established, (60_999, 5432)),
            t(3, 3_500, Listen, SynRecv, (5432, 60_999)),
            t(3, 4_000, SynRecv, Established, (5432, 60_999)),
            t(2, 5_000, Established, FinWait1, (60_999, 5432)),
            t(3, 6_000, Established, CloseWait, (5432, 60_999)),
            t(2, 7_000, FinWait1, FinWait2, (60_999, 5432)),
            t(3, 8_000, CloseWait, LastAck, (5432, 60_999)),
            t(2, 9_000, FinWait2, Close, (60_999, 5432)),
            t(3, 10_000, LastAck, Close, (5432, 60_999)),
            t(4, 11_000, Close, SynSent, (0, 81)),
            Transition {
                error: 111,
                bytes_acked: 0,
                bytes_received: 0,
                retrans: 0,
                srtt_us: 0,
                ..t(4, 12_000, SynSent, Close, (60_998, 81))
            },
        ] {
            w.push(Record::Transition(tr));
        }
        drop(w);
        path
    }

    #[test]
    fn text_lines_of_ipv4_connections_fit_in_100_columns() {
        let path = recorded("width");
        for transitions in [false, true] {
            let opts = HistoryOptions { transitions, ..HistoryOptions::default() };
            let (mut out, mut err) = (Vec::new(), Vec::new());
            print_history(&Source::Timeline(path.clone()), &opts, &mut out, &mut err).unwrap();
            let text = String::from_utf8(out).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), if transitions { 13 } else { 3 } + 2, "header, date, rows: {text}");
            assert!(lines[1].starts_with("# ") && lines[1].ends_with(" (UTC)"), "{text}");
            for l in &lines {
                assert!(l.chars().count() <= 100, "{} columns: {l}", l.chars().count());
            }
            if !transitions {
                let client = lines.iter().find(|l| l.contains(":60999 ") && l.contains("SE12C")).expect(&text);
                for part in ["123456/postgre~", "127.0.0.1:5432", "121K/9.5M", " -      rtx2,1.2ms", "7us"] {
                    assert!(client.contains(part), "{part} in {client}");
                }
                assert!(lines.iter().any(|l| l.contains("SC") && l.contains("ECONNREFUSED")), "{text}");
                assert!(lines.iter().any(|l| l.contains("REWAC")), "{text}");
            } else {
                assert!(lines.iter().any(|l| l.contains("ESTAB>FIN-WAIT-1")), "{text}");
            }
        }
        // JSON: one object a line, and nothing else.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print_history(
            &Source::Timeline(path.clone()),
            &HistoryOptions { json: true, ..HistoryOptions::default() },
            &mut out,
            &mut err,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "{text}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn fleet_tables_start_with_the_host() {
        let mut t = Table::new(true, &["START(UTC)", "DUR", "PATH"], &[1]);
        t.push(
            Some("web-1"),
            Some(1_764_450_000_000_000_000),
            vec!["21:00:00.000".into(), "1.2ms".into(), "SEC".into()],
        );
        t.push(None, None, vec!["-".into(), "35ms".into(), "REWAC".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "HOST  START(UTC)     DUR PATH", "{text}");
        assert!(lines[1].starts_with("# ") && lines[1].ends_with(" (UTC)"), "{text}");
        assert_eq!(lines[2], "web-1 21:00:00.000 1.2ms SEC", "{text}");
        assert_eq!(lines[3], "-     -             35ms REWAC", "{text}");
    }

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
