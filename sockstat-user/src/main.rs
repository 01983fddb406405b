//! The `sockstat` binary: a thin edge that parses arguments, dispatches, and prints
//! errors with their chain. `sockstat agent|status|trace ...` are sockstat's own
//! commands; anything else is an ss command line.

use std::{
    ffi::OsString,
    io::{self, IsTerminal, Write},
    path::PathBuf,
    process::ExitCode,
};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use sockstat::{
    cli,
    cmd::{events, history, trace},
    live::agent,
    query::{self, fetch},
    render::{format, json, summary},
    sys::{netns, owners as procs},
    timeline,
    wire::client,
};

#[derive(Parser)]
#[command(
    name = "sockstat",
    version,
    about = "sockstat's own commands (ss options are handled separately: see `sockstat -h`)"
)]
struct Own {
    #[command(subcommand)]
    command: OwnCommand,
}

#[derive(Subcommand)]
enum OwnCommand {
    /// Run the agent: load the eBPF program, keep the live socket table, answer queries.
    Agent {
        /// Unix socket to serve queries on (created mode 0600).
        #[arg(long, default_value = client::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Ring buffer size in bytes (a power of two, at least the page size).
        #[arg(long, default_value_t = sockstat_ebpf::DEFAULT_RINGBUF_BYTES, value_parser = ringbuf_size)]
        ringbuf_bytes: u32,
        /// The timeline database (SQLite), created if missing.
        #[arg(long, default_value = timeline::DEFAULT_PATH)]
        timeline: PathBuf,
        /// Record no timeline.
        #[arg(long, conflicts_with = "timeline")]
        no_timeline: bool,
        /// Delete timeline rows older than this (e.g. 7d, 12h).
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        retain_age: std::time::Duration,
        /// Delete the oldest timeline rows while the file is larger than this many bytes.
        #[arg(long, default_value_t = 1 << 30)]
        retain_bytes: u64,
    },
    /// Finished connections (or transitions) recorded in the timeline, with its gaps.
    History {
        /// Start of the window: RFC 3339 or relative (-5m).
        #[arg(long, allow_hyphen_values = true)]
        since: Option<String>,
        /// End of the window: RFC 3339 or relative (-5m).
        #[arg(long, allow_hyphen_values = true)]
        until: Option<String>,
        /// List transitions instead of finished connections.
        #[arg(long)]
        transitions: bool,
        /// One JSON object per line, gaps included (`"type": "gap"`).
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = timeline::DEFAULT_PATH)]
        timeline: PathBuf,
        /// An ss FILTER: `[ state STATE-FILTER ] [ EXPRESSION ]`, e.g. `dport = :443`.
        #[arg(trailing_var_arg = true)]
        filter: Vec<String>,
    },
    /// Print the agent's counters: events seen, lost, resyncs, table size.
    Status {
        #[arg(long, default_value = client::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stream TCP state transitions live, one per line.
    Trace {
        /// One JSON object per line (NDJSON).
        #[arg(long)]
        json: bool,
        /// Show every network namespace, not only the one sockstat runs in.
        #[arg(long)]
        all_netns: bool,
        /// Stop after N records.
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// One record per finished connection (start, duration, owner, bytes, state path)
        /// instead of one per transition.
        #[arg(long)]
        lifetimes: bool,
        /// An ss FILTER: `[ state STATE-FILTER ] [ EXPRESSION ]`, e.g. `dport = :443`.
        #[arg(trailing_var_arg = true)]
        filter: Vec<String>,
    },
}

fn ringbuf_size(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if n.is_power_of_two() && n >= 4096 { Ok(n) } else { Err(format!("{n} is not a power of two of at least 4096")) }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let own =
        args.get(1).and_then(|a| a.to_str()).is_some_and(|a| matches!(a, "agent" | "status" | "trace" | "history"));
    let result = if own { run_own(&args) } else { run_ss(&args[1..]) };
    match result {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("sockstat: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_own(args: &[OsString]) -> Result<ExitCode> {
    let own = Own::parse_from(args);
    match own.command {
        OwnCommand::Agent { socket, ringbuf_bytes, timeline, no_timeline, retain_age, retain_bytes } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(io::stderr)
                .with_ansi(io::stderr().is_terminal())
                .init();
            let timeline =
                (!no_timeline).then_some(timeline::WriterConfig { path: timeline, retain_age, retain_bytes });
            agent::run(agent::AgentConfig { socket, ringbuf_bytes, timeline }).context("agent")?;
        }
        OwnCommand::History { since, until, transitions, json, timeline, filter } => {
            let filter = match query::EventFilter::parse(&filter) {
                Ok(f) => f,
                Err(e) => return Ok(filter_error(&e)),
            };
            let opts = history::HistoryOptions { since, until, transitions, json, filter };
            let mut out = io::BufWriter::new(io::stdout().lock());
            history::print_history(&timeline, &opts, &mut out, &mut io::stderr()).context("history")?;
            out.flush()?;
        }
        OwnCommand::Status { socket, json } => {
            let s = client::Client::connect(&socket).and_then(client::Client::status)?;
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
                    "events lost:      {} (kernel ring buffer) + {} (malformed)",
                    s.events_lost_kernel, s.events_malformed
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
                    if s.accept_hook {
                        "attached"
                    } else {
                        "absent (passive opens attributed to the listener's owner)"
                    }
                )?;
                writeln!(
                    out,
                    "owners iterator:  {}",
                    if s.owners_iter {
                        "loaded (-p reads owners through the agent)"
                    } else {
                        "absent (-p walks /proc)"
                    }
                )?;
                match (s.timeline_committed, s.timeline_dropped) {
                    (Some(c), Some(d)) => writeln!(out, "timeline:         {c} rows committed, {d} dropped")?,
                    _ => writeln!(out, "timeline:         off")?,
                }
            }
        }
        OwnCommand::Trace { json, all_netns, count, lifetimes, filter } => {
            let filter = match query::EventFilter::parse(&filter) {
                Ok(f) => f,
                Err(e) => return Ok(filter_error(&e)),
            };
            trace::run(&trace::TraceOptions { json, all_netns, count, lifetimes, filter }).context("trace")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A FILTER error, reported as ss reports it (message naming the column, exit status).
fn filter_error(e: &sockstat::filter::FilterError) -> ExitCode {
    let _ = io::stderr().lock().write_all(e.ss_message(cli::PROG).as_bytes());
    ExitCode::from(e.exit_code())
}

/// Takes sockstat's time-travel options out of an ss command line:
/// `--at TIME` / `--at=TIME` and `--timeline PATH` / `--timeline=PATH`.
fn take_time_travel(args: &[OsString]) -> Result<(Vec<OsString>, Option<String>, PathBuf)> {
    let mut rest = Vec::new();
    let mut at = None;
    let mut timeline = PathBuf::from(timeline::DEFAULT_PATH);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        if s == "--" {
            rest.push(a.clone());
            rest.extend(it.cloned());
            break;
        }
        if let Some(v) = s.strip_prefix("--at=") {
            at = Some(v.to_string());
        } else if s == "--at" {
            at = Some(
                it.next().context("--at needs a time (RFC 3339 or relative, like -5m)")?.to_string_lossy().into_owned(),
            );
        } else if let Some(v) = s.strip_prefix("--timeline=") {
            timeline = PathBuf::from(v);
        } else if s == "--timeline" {
            timeline = PathBuf::from(it.next().context("--timeline needs a path")?);
        } else {
            rest.push(a.clone());
        }
    }
    Ok((rest, at, timeline))
}

/// `-E`: follow destroy notifications until SIGINT/SIGTERM, then die by that signal as ss
/// does (it has no handler), every line already flushed.
fn run_events(opts: &cli::Options) -> Result<ExitCode> {
    if query::destroy_groups(opts).is_empty() {
        // ss exits 255 here without a word.
        eprintln!(
            "{}: -E follows TCP and UDP sockets only: no TCP or UDP table of an inet family is selected",
            cli::PROG
        );
        return Ok(ExitCode::from(255));
    }
    let names = format::Names::system(opts.numeric);
    let mut out = io::stdout().lock();
    match events::run(opts, &names, &mut out).context("-E")? {
        events::Stopped::Signal(signal) => {
            drop(out);
            events::die_by(signal)
        }
        events::Stopped::BrokenPipe => Ok(ExitCode::SUCCESS),
    }
}

fn run_ss(args: &[OsString]) -> Result<ExitCode> {
    let (args, at, timeline) = take_time_travel(args)?;
    let mut opts = match cli::parse_ss_args(args.iter().cloned()) {
        Ok(o) => o,
        Err(e) => {
            let text = e.rendered();
            if e.to_stdout() {
                io::stdout().lock().write_all(text.as_bytes())?;
            } else {
                io::stderr().lock().write_all(text.as_bytes())?;
            }
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    opts.screen_width = cli::stdout_screen_width();
    // -N: ss switches namespace while parsing options, before it opens any socket or reads
    // /proc/net; every thread-free step below then runs in the namespace.
    if let Some(name) = &opts.netns
        && let Err(e) = netns::enter(&name.to_string_lossy())
    {
        eprintln!("{e}");
        return Ok(ExitCode::from(1));
    }
    // ss prints the summary before it opens any socket (its own would be counted).
    if opts.summary {
        let mut out = io::stdout().lock();
        summary::read_system(cli::PROG, &mut out, &mut io::stderr().lock())?;
        out.flush()?;
        io::stderr().lock().write_all(summary::missing_diag_note(cli::PROG, &fetch::missing_diag()).as_bytes())?;
        if opts.summary_only {
            return Ok(ExitCode::SUCCESS);
        }
    }
    // -D FILE: ss writes the TCP replies and exits before it prints anything else.
    if let Some(file) = &opts.diag_file {
        if !opts.has_table(cli::Table::Tcp) {
            eprintln!("{}: tcpdiag dump requested and no tcp in filter.", cli::PROG);
            return Ok(ExitCode::SUCCESS);
        }
        let bytes = fetch::record_tcp(&opts).context("-D")?;
        if file.as_os_str().to_string_lossy().starts_with('-') {
            let mut out = io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
        } else {
            std::fs::write(file, &bytes).with_context(|| format!("writing {}", file.display()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    query::check_supported(&opts)?;
    if opts.follow_events {
        anyhow::ensure!(
            at.is_none(),
            "--at replays the timeline and -E follows live destroy notifications: use one of them"
        );
        return run_events(&opts);
    }
    if let Some(at) = at {
        let mut out = io::BufWriter::new(io::stdout().lock());
        history::print_at(&timeline, &at, &opts, &mut out, &mut io::stderr()).context("--at")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let (snapshot, agent_owners) = fetch::snapshot(&opts)?;
    // -p: owners of exactly the sockets about to be printed: from the agent's owners
    // iterator when it gave them, else from one /proc walk.
    let owners = if opts.show_processes > 0 {
        let s = &snapshot;
        let wanted: std::collections::HashSet<u32> = s
            .packet
            .iter()
            .map(|p| p.inode)
            .chain(s.unix.iter().map(|u| u.inode))
            .chain([&s.raw, &s.udp, &s.tcp, &s.dccp, &s.sctp, &s.mptcp].into_iter().flatten().map(|i| i.inode))
            .chain(s.vsock.iter().map(|v| v.inode))
            .chain(s.xdp.iter().map(|x| x.inode))
            .filter(|&i| i != 0)
            .collect();
        match &agent_owners {
            Some(entries) => procs::from_entries(entries, &wanted),
            None => procs::owners(&wanted),
        }
    } else {
        std::collections::HashMap::new()
    };
    // -T: the text lists owners per thread, as ss walks /proc/PID/task.
    let threaded = opts.show_threads.then(|| procs::owners_with_threads(&format::snapshot_inodes(&snapshot)));
    let users = threaded.as_ref().unwrap_or(&owners);
    let names = format::Names::system(opts.numeric)
        .with_owners(users.iter().map(|(&i, l)| (i, procs::users_text(l))).collect());
    let mut out = io::BufWriter::new(io::stdout().lock());
    if opts.json {
        json::render(&opts, &snapshot, &names, &owners, &mut out)?;
    } else {
        format::render_with(&opts, &snapshot, &names, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
