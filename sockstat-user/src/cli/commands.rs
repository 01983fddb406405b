//! sockstat's own commands (`agent`, `history`, `status`, `trace`), parsed with clap's
//! derive API. ss command lines are parsed by the parent module.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The words that name sockstat's own commands; any other first word starts an ss
/// command line.
pub const COMMANDS: [&str; 4] = ["agent", "status", "trace", "history"];

#[derive(Parser)]
#[command(
    name = "sockstat",
    version,
    about = "sockstat's own commands (ss options are handled separately: see `sockstat -h`)"
)]
pub struct Own {
    #[command(subcommand)]
    pub command: OwnCommand,
}

#[derive(Subcommand)]
pub enum OwnCommand {
    /// Run the agent: load the eBPF program, keep the live socket table, answer queries.
    Agent {
        /// Unix socket to serve queries on (created mode 0600).
        #[arg(long, default_value = crate::wire::client::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Ring buffer size in bytes (a power of two, at least the page size).
        #[arg(long, default_value_t = sockstat_ebpf::DEFAULT_RINGBUF_BYTES, value_parser = ringbuf_size)]
        ringbuf_bytes: u32,
        /// The timeline database (SQLite), created if missing.
        #[arg(long, default_value = crate::timeline::DEFAULT_PATH)]
        timeline: PathBuf,
        /// Record no timeline.
        #[arg(long, conflicts_with = "timeline")]
        no_timeline: bool,
        /// Delete timeline rows older than this (e.g. 7d, 12h).
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        retain_age: std::time::Duration,
        /// Delete the oldest timeline rows while the file is larger than this many bytes.
        #[arg(long, default_value_t = crate::timeline::DEFAULT_RETAIN_BYTES)]
        retain_bytes: u64,
        /// Also record one timeline row per transition (each with the task it ran in and
        /// the tuple it saw), besides the one row per connection: ten times the size.
        #[arg(long, conflicts_with = "no_timeline")]
        timeline_transitions: bool,
    },
    /// Finished connections (or transitions) recorded in the timeline, with its gaps.
    History {
        /// Start of the window: RFC 3339 or relative (-5m).
        #[arg(long, allow_hyphen_values = true)]
        since: Option<String>,
        /// End of the window: RFC 3339 or relative (-5m).
        #[arg(long, allow_hyphen_values = true)]
        until: Option<String>,
        /// List transitions instead of finished connections (as each connection's row
        /// tells them, with its owner, unless the agent kept one row per transition).
        #[arg(long)]
        transitions: bool,
        /// One JSON object per line, gaps included (`"type": "gap"`).
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = crate::timeline::DEFAULT_PATH)]
        timeline: PathBuf,
        /// An ss FILTER: `[ state STATE-FILTER ] [ EXPRESSION ]`, e.g. `dport = :443`.
        #[arg(trailing_var_arg = true)]
        filter: Vec<String>,
    },
    /// Print the agent's counters: events seen, lost, resyncs, table size.
    Status {
        #[arg(long, default_value = crate::wire::client::DEFAULT_SOCKET)]
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
