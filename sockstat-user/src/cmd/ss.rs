//! The ss command line: `sockstat [ss options] [FILTER]`, with sockstat's `--at TIME`
//! (answered from the timeline) and `-E` (destroy notifications). Parses the options,
//! enters `-N`'s namespace, then prints the summary, records a dump (`-D`), follows
//! events, replays the timeline, or fetches the snapshot and renders it.

use std::{
    collections::HashMap,
    ffi::OsString,
    io::{self, Write},
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, Result};
use rustc_hash::{FxHashMap, FxHashSet};

use super::{events, history};
use crate::{
    cli,
    query::{self, fetch, selection::Table, storages::StorageMaps},
    render::{format, json, style::SsCompat, summary},
    sys::{netns, owners, ss_version},
};

/// Takes sockstat's time-travel options out of an ss command line:
/// `--at TIME` / `--at=TIME` and `--timeline PATH` / `--timeline=PATH`.
fn take_time_travel(args: &[OsString]) -> Result<(Vec<OsString>, Option<String>, PathBuf)> {
    let mut rest = Vec::new();
    let mut at = None;
    let mut timeline = PathBuf::from(crate::timeline::DEFAULT_PATH);
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

/// What `--at` cannot answer, refused before anything runs: the timeline keeps each TCP
/// connection's ends, state path, cookie and opener, nothing that `-e -m -i -o -p -T -b
/// --tos --inet-sockopt` print, no socket-local storage, and no summary counts; a past
/// table cannot be killed. Printing them would show zeros or the present. The cgroups it
/// keeps serve the `cgroup PATH` condition; `--cgroup`'s column is refused too, since a
/// socket the replay takes from a snapshot without a later transition has none.
fn check_at(opts: &cli::Options) -> Result<()> {
    let (n, sel) = (&opts.selection.needs, &opts.selection);
    let refused: Vec<&str> = [
        (n.details, "-e"),
        (n.mem, "-m"),
        (n.info, "-i"),
        (n.timers && !n.details && !n.bpf, "-o"),
        (n.owners, "-p"),
        (n.threads, "-T"),
        (n.bpf && !opts.style.bpf_disasm, "-b"),
        (opts.style.bpf_disasm, "--bpf-disasm"),
        (n.tos, "--tos"),
        (n.cgroup, "--cgroup"),
        (n.sockopt, "--inet-sockopt"),
        (sel.bpf_maps.is_some(), "--bpf-maps/--bpf-map-id"),
        (sel.kill, "-K"),
        (opts.summary, "-s"),
        (opts.diag_file.is_some(), "-D"),
        (opts.follow_events, "-E"),
    ]
    .into_iter()
    .filter_map(|(asked, name)| asked.then_some(name))
    .collect();
    anyhow::ensure!(
        refused.is_empty(),
        "--at replays the timeline, which keeps each TCP connection's ends, states, cookie and opening \
         process, not what {} show{}: drop {} (`sockstat history [--json]` lists each connection's owner, \
         bytes and cookie)",
        refused.join(" "),
        if refused.len() == 1 { "s" } else { "" },
        if refused.len() == 1 { "it" } else { "them" },
    );
    anyhow::ensure!(
        sel.has_table(Table::Tcp),
        "--at replays the timeline, which keeps TCP sockets only: ask for the TCP table (-t)"
    );
    Ok(())
}

/// `-E`: follow destroy notifications until SIGINT/SIGTERM, then die by that signal as ss
/// does (it has no handler), every line already flushed.
fn run_events(opts: &cli::Options) -> Result<ExitCode> {
    if query::destroy_groups(&opts.selection).is_empty() {
        // ss exits 255 here without a word.
        eprintln!(
            "{}: -E follows TCP and UDP sockets only: no TCP or UDP table of an inet family is selected",
            cli::PROG
        );
        return Ok(ExitCode::from(255));
    }
    let names = format::Names::system(opts.style.numeric);
    let mut out = io::stdout().lock();
    match events::run(opts, &names, &mut out).context("-E")? {
        events::Stopped::Signal(signal) => {
            drop(out);
            events::die_by(signal)
        }
        events::Stopped::BrokenPipe => Ok(ExitCode::SUCCESS),
    }
}

/// Whose output to reproduce when `--ss-compat` is not given: `SOCKSTAT_SS_COMPAT`, else
/// the version of the ss installed here (cached, see `sys::ss_version`), else the newest.
fn default_compat() -> Result<SsCompat, cli::CliError> {
    if let Some(value) = std::env::var_os("SOCKSTAT_SS_COMPAT").filter(|v| !v.is_empty()) {
        let value = value.to_string_lossy().into_owned();
        return SsCompat::parse(&value).ok_or(cli::CliError::Compat { source_name: "SOCKSTAT_SS_COMPAT", value });
    }
    Ok(ss_version::installed().map_or(SsCompat::NEWEST, |(major, minor)| SsCompat::for_version(major, minor)))
}

/// Runs an ss command line (`args` is the whole command line, program name first).
///
/// # Errors
/// What stops the query, with context.
pub fn run(args: &[OsString]) -> Result<ExitCode> {
    // A query lives for milliseconds and its buffers come and go: those under 1 MiB are
    // kept on the heap rather than mapped and unmapped one by one (a freed one's pages
    // serve the next, a growing one is often extended where it lies); larger ones are
    // mappings of their own (the binary's allocator, `huge_pages`).
    // glibc's settings: musl's allocator has none (the musl build runs queries only, see
    // `cmd::long_runs`).
    // SAFETY: mallopt only sets allocator parameters, before any other thread exists.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    let (words, at, timeline) = take_time_travel(args.get(1..).unwrap_or_default())?;
    let mut opts = match cli::parse_ss_args_with(words.iter().cloned(), default_compat) {
        Ok(o) => o,
        Err(cli::CliError::Filter(_)) if let Some(hint) = cli::commands::misplaced_command(args) => {
            eprintln!("{}: {hint}", cli::PROG);
            return Ok(ExitCode::from(1));
        }
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
    if at.is_some() {
        check_at(&opts)?;
    }
    // -r: addresses' names come from the C library's resolver, while the rows print.
    if opts.style.resolve_hosts {
        crate::names::lookup::before_resolver();
    }
    // --bpf-map-id: ss looks each map up while it parses its options, and exits on the
    // first it cannot use.
    let mut storage_maps = match opts.selection.bpf_maps.as_ref().map(StorageMaps::open).transpose() {
        Ok(maps) => maps,
        Err(e) => {
            eprintln!("{}: {e}", cli::PROG);
            return Ok(ExitCode::from(1));
        }
    };
    opts.style.screen_width = cli::stdout_screen_width(opts.style.compat, std::env::var_os("COLUMNS").as_deref());
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
        // ss says nothing on stderr about a missing diag module: the note is asked for.
        if opts.notes {
            io::stderr().lock().write_all(summary::missing_diag_note(cli::PROG, &fetch::missing_diag()).as_bytes())?;
        }
        if opts.summary_only {
            return Ok(ExitCode::SUCCESS);
        }
    }
    // -D FILE: ss writes the TCP replies and exits before it prints anything else.
    if let Some(file) = &opts.diag_file {
        if !opts.selection.has_table(Table::Tcp) {
            eprintln!("{}: tcpdiag dump requested and no tcp in filter.", cli::PROG);
            return Ok(ExitCode::SUCCESS);
        }
        let bytes = fetch::record_tcp(&opts.selection, storage_maps.as_ref()).context("-D")?;
        if file.as_os_str().to_string_lossy().starts_with('-') {
            let mut out = io::stdout().lock();
            out.write_all(&bytes)?;
            out.flush()?;
        } else {
            std::fs::write(file, &bytes).with_context(|| format!("writing {}", file.display()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    query::check_supported(&opts.selection, &opts.unsupported, opts.follow_events)?;
    if opts.follow_events {
        return run_events(&opts);
    }
    if let Some(at) = at {
        if opts.selection.tables & !Table::Tcp.bit() != 0 {
            eprintln!(
                "{}: --at: the timeline keeps TCP sockets only; the other tables asked for are not shown",
                cli::PROG
            );
        }
        let mut out = io::BufWriter::new(io::stdout().lock());
        history::print_at(&timeline, &at, &opts, &mut out, &mut io::stderr()).context("--at")?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let started = std::time::Instant::now();
    // TCP alone from the agent's table, printed as text: its rows are printed as they
    // came, never held decoded.
    let table = if storage_maps.is_none() && !opts.style.json && !opts.style.show_threads {
        fetch::table_tcp(&opts.selection)?
    } else {
        None
    };
    if let Some(mut table) = table {
        let fetched = std::time::Instant::now();
        let names = format::Names::system(opts.style.numeric);
        let names = match table.owners.take() {
            Some(records) if opts.style.show_processes > 0 => {
                names.with_owners(format::RecordUsers::new(records, None, opts.style.compat))
            }
            _ => names,
        };
        let formatting = std::time::Instant::now();
        let mut out = io::BufWriter::new(TimedWriter { inner: io::stdout().lock(), spent: Duration::ZERO });
        format::render_tcp_rows(&opts.style, &table, &names, &mut out)?;
        out.flush()?;
        print_profile(started, fetched, formatting, out.get_ref().spent, crate::model::socket::InetRows::len(&table));
        drop(out);
        std::mem::forget((table, names));
        return Ok(ExitCode::SUCCESS);
    }
    let (snapshot, mut agent_owners) = fetch::snapshot(&opts.selection, storage_maps.as_ref())?;
    // --bpf-maps: look up the maps the values came from (as ss does when it prints them,
    // also for values a recorded dump holds without the options).
    if storage_maps.is_none() && StorageMaps::any_in(&snapshot) {
        storage_maps = Some(StorageMaps::lazy());
    }
    let bpf_maps = match &mut storage_maps {
        Some(maps) => {
            maps.resolve(&snapshot, cli::PROG);
            io::stderr().lock().write_all(maps.warnings().concat().as_bytes())?;
            maps.infos()
        }
        None => HashMap::new(),
    };
    let fetched = std::time::Instant::now();
    // -p: owners of exactly the sockets about to be printed: from the agent's owners
    // iterator when it gave them, else from one /proc walk. Text output from the agent's
    // records takes each socket's text straight from them; JSON and the /proc walk go
    // through owner lists. -T: the text lists owners per thread, as ss walks
    // /proc/PID/task.
    let wanted =
        if opts.style.show_processes > 0 || opts.style.show_threads { snapshot.inodes() } else { FxHashSet::default() };
    let texts_of = |owners: &HashMap<u32, Vec<crate::model::owner::Owner>>| -> FxHashMap<u32, String> {
        owners.iter().map(|(&i, l)| (i, format::users_text_for(l, opts.style.compat))).collect()
    };
    let names = format::Names::system(opts.style.numeric).with_bpf_maps(bpf_maps);
    let (owners, names) = match (agent_owners.take(), opts.style.show_threads, opts.style.show_processes > 0) {
        (_, true, _) => {
            let owners = owners::owners_with_threads(&wanted);
            let texts = texts_of(&owners);
            (owners, names.with_owners(texts))
        }
        (Some(records), false, true) if !opts.style.json => {
            (HashMap::new(), names.with_owners(format::RecordUsers::new(records, Some(&wanted), opts.style.compat)))
        }
        (agent, false, true) => {
            let owners = match agent {
                Some(records) => owners::from_records(&records, &wanted),
                None => owners::owners(&wanted),
            };
            let texts = texts_of(&owners);
            (owners, names.with_owners(texts))
        }
        (_, false, false) => (HashMap::new(), names),
    };
    // The time spent in the writes to stdout is counted apart for SOCKSTAT_PROFILE.
    let formatting = std::time::Instant::now();
    let mut out = io::BufWriter::new(TimedWriter { inner: io::stdout().lock(), spent: Duration::ZERO });
    if opts.style.json {
        json::render(&opts.style, &snapshot, &names, &owners, &mut out)?;
    } else {
        format::render_with(&opts.style, &snapshot, &names, &mut out)?;
    }
    out.flush()?;
    print_profile(started, fetched, formatting, out.get_ref().spent, snapshot.tcp.len());
    drop(out);
    // The process ends now, and the kernel takes its memory back at once: freeing 100k
    // rows, owners and their text one by one first was a sixth of a `-p` query's time.
    std::mem::forget((snapshot, agent_owners, owners, wanted, names));
    Ok(ExitCode::SUCCESS)
}

/// `SOCKSTAT_PROFILE=1`'s line: where a query's time went (`spent`: in the writes).
fn print_profile(
    started: std::time::Instant,
    fetched: std::time::Instant,
    formatting: std::time::Instant,
    spent: Duration,
    rows: usize,
) {
    if !crate::wire::profile::enabled() {
        return;
    }
    let format_us = u64::try_from(formatting.elapsed().saturating_sub(spent).as_micros()).unwrap_or(u64::MAX);
    let write_us = u64::try_from(spent.as_micros()).unwrap_or(u64::MAX);
    let p = crate::wire::profile::last().unwrap_or_default();
    eprintln!(
        "sockstat profile: connect_us={} request_us={} answer_us={} transfer_us={} decode_us={} fetch_us={} \
         format_us={format_us} write_us={write_us} total_us={} rows={rows} bytes={}",
        p.connect_us,
        p.request_us,
        p.answer_us,
        p.transfer_us,
        p.decode_us,
        u64::try_from(fetched.duration_since(started).as_micros()).unwrap_or(u64::MAX),
        crate::wire::profile::us_since(started),
        p.bytes,
    );
}

/// A writer that adds up the time its writes take (`SOCKSTAT_PROFILE`'s `write_us`).
struct TimedWriter<W> {
    inner: W,
    spent: Duration,
}

impl<W: Write> Write for TimedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let started = std::time::Instant::now();
        let written = self.inner.write(buf);
        self.spent += started.elapsed();
        written
    }

    fn flush(&mut self) -> io::Result<()> {
        let started = std::time::Instant::now();
        let flushed = self.inner.flush();
        self.spent += started.elapsed();
        flushed
    }
}
