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
use sockstat::{agent, cli, client, fetch, format, query, trace};

#[derive(Parser)]
#[command(name = "sockstat", version, about = "sockstat's own commands (ss options are handled separately: see `sockstat -h`)")]
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
        /// Stop after N transitions.
        #[arg(long, default_value_t = 0)]
        count: u64,
    },
}

fn ringbuf_size(s: &str) -> Result<u32, String> {
    let n: u32 = s.parse().map_err(|e| format!("{e}"))?;
    if n.is_power_of_two() && n >= 4096 {
        Ok(n)
    } else {
        Err(format!("{n} is not a power of two of at least 4096"))
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let own = args.get(1).and_then(|a| a.to_str()).is_some_and(|a| matches!(a, "agent" | "status" | "trace"));
    let result = if own { run_own(&args) } else { run_ss(&args[1..]) };
    match result {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)) {
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
        OwnCommand::Agent { socket, ringbuf_bytes } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(io::stderr)
                .with_ansi(io::stderr().is_terminal())
                .init();
            agent::run(agent::AgentConfig { socket, ringbuf_bytes }).context("agent")?;
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
                writeln!(out, "events lost:      {} (kernel ring buffer) + {} (malformed)", s.events_lost_kernel, s.events_malformed)?;
                writeln!(out, "read errors:      {}", s.read_errors)?;
                writeln!(out, "resyncs:          {}", s.resyncs)?;
                writeln!(out, "table size:       {}", s.table_size)?;
                writeln!(out, "seed time:        {} ms", s.seed_ms)?;
            }
        }
        OwnCommand::Trace { json, all_netns, count } => {
            trace::run(&trace::TraceOptions { json, all_netns, count }).context("trace")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_ss(args: &[OsString]) -> Result<ExitCode> {
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
    query::check_supported(&opts)?;
    let families = query::families(&opts);
    let states = query::state_mask(&opts);
    let sockets = fetch::tcp(opts.source, &opts.agent_socket, &families, states)?;
    let sockets = query::select(&opts, sockets);
    let mut out = io::BufWriter::new(io::stdout().lock());
    format::render_inet(&opts, &sockets, &mut out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
