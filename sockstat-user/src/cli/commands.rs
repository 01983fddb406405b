//! sockstat's own commands (`agent`, `history`, `status`, `trace`), parsed with clap's
//! derive API. ss command lines are parsed by the parent module.

use std::{ffi::OsString, path::PathBuf};

use clap::{Parser, Subcommand};

/// The agent's ring buffer: 8 MiB held no loss at the highest churn these 2 cores make
/// (~33k connections/s, ~7 events each), and the mapping counts twice in the agent's RSS
/// (the kernel maps the data pages twice), so a bigger one costs an idle agent its memory
/// budget. `trace`, which spends more per event, keeps the program's 16 MiB.
pub const AGENT_RINGBUF_BYTES: u32 = 8 << 20;

/// The words that name sockstat's own commands; any other first word starts an ss
/// command line.
pub const COMMANDS: [&str; 4] = ["agent", "status", "trace", "history"];

/// The command line of one of sockstat's own commands, with the options the commands
/// share (`--socket PATH`, `--json`) moved after the command name when they came before
/// it (`sockstat --socket PATH status`); `None`: an ss command line.
#[must_use]
pub fn own_command_line(args: &[OsString]) -> Option<Vec<OsString>> {
    let mut shared = Vec::new();
    let mut i = 1;
    while let Some(word) = args.get(i).and_then(|a| a.to_str()) {
        match word {
            "--json" => shared.push(args[i].clone()),
            "--socket" => {
                shared.extend(args.get(i..=i + 1)?.iter().cloned());
                i += 1;
            }
            w if w.starts_with("--socket=") => shared.push(args[i].clone()),
            w if COMMANDS.contains(&w) => {
                let mut line = vec![args[0].clone(), args[i].clone()];
                line.extend(shared);
                line.extend(args[i + 1..].iter().cloned());
                return Some(line);
            }
            _ => return None,
        }
        i += 1;
    }
    None
}

/// What to say when the FILTER of an ss command line failed and its first word is `help`
/// or a command's name (`sockstat -tan status`, `sockstat help`). A later word is the
/// filter's (`dst help` names a host), and keeps the filter's own error.
#[must_use]
pub fn misplaced_command(args: &[OsString]) -> Option<String> {
    let first = args.iter().skip(1).filter_map(|a| a.to_str()).find(|w| !w.starts_with('-'))?;
    let word = (first == "help" || COMMANDS.contains(&first)).then_some(first)?;
    Some(if word == "help" {
        "there is no `help` command: `sockstat --help` lists ss's options and sockstat's commands, \
         `sockstat COMMAND --help` explains one"
            .to_owned()
    } else {
        format!(
            "`{word}` is a sockstat command: give it first, as `sockstat {word} [OPTIONS]` (`sockstat {word} --help`)"
        )
    })
}

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
        /// Size of the per-CPU event rings in bytes, all together (a power of two, at least the page size).
        #[arg(long, default_value_t = AGENT_RINGBUF_BYTES, value_parser = ringbuf_size)]
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
        /// Serve Prometheus metrics at http://ADDR:PORT/metrics (e.g. 127.0.0.1:9924;
        /// port 0 picks a free one, logged at start).
        #[arg(long, value_name = "ADDR:PORT")]
        metrics: Option<std::net::SocketAddr>,
        /// Publish every finished connection and gap marker to NATS JetStream (stream
        /// SOCKSTAT, subjects sockstat.HOST.KIND; see docs/fleet.md), from the timeline:
        /// what the server misses while it is down is sent when it is back.
        #[arg(long, value_name = "URL", conflicts_with = "no_timeline")]
        nats: Option<String>,
        /// This host's name in the fleet's subjects and records (default: the host name).
        #[arg(long, value_name = "NAME", requires = "nats")]
        nats_host: Option<String>,
        /// Also publish each finished connection's transitions (sockstat.HOST.transition).
        #[arg(long, requires = "nats")]
        nats_transitions: bool,
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
        #[arg(long, default_value = crate::timeline::DEFAULT_PATH, conflicts_with = "nats")]
        timeline: PathBuf,
        /// Answer from the fleet's NATS JetStream stream (what `agent --nats` publishes)
        /// instead of the local timeline; every record names its host.
        #[arg(long, value_name = "URL")]
        nats: Option<String>,
        /// With --nats: only this host.
        #[arg(long, value_name = "NAME", requires = "nats")]
        host: Option<String>,
        /// Only this network namespace: its inode number, or its `ip netns` name (as
        /// recorded, or as /run/netns names it now). Default: every namespace.
        #[arg(long, value_name = "INODE|NAME")]
        netns: Option<crate::cli::netns_arg::NetnsArg>,
        /// Only connections that failed: never reached ESTABLISHED, or ended with an
        /// error (refused, timed out, reset).
        #[arg(long, conflicts_with = "transitions")]
        failed: bool,
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
        #[arg(long, conflicts_with = "netns")]
        all_netns: bool,
        /// Show this network namespace instead of the one sockstat runs in: its inode
        /// number, or its `ip netns` name.
        #[arg(long, value_name = "INODE|NAME")]
        netns: Option<crate::cli::netns_arg::NetnsArg>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn shared_options_move_after_the_command() {
        let line = |l: &str| own_command_line(&words(l)).map(|v| v.join(std::ffi::OsStr::new(" ")));
        assert_eq!(line("sockstat status --json"), Some("sockstat status --json".into()));
        assert_eq!(line("sockstat --socket /s status"), Some("sockstat status --socket /s".into()));
        assert_eq!(line("sockstat --json --socket=/s status -x"), Some("sockstat status --json --socket=/s -x".into()));
        assert_eq!(line("sockstat -tan"), None);
        assert_eq!(line("sockstat --json -tan"), None);
        assert_eq!(line("sockstat --socket /s"), None);
        assert_eq!(line("sockstat --socket"), None);
        assert_eq!(line("sockstat -tan status"), None);
    }

    #[test]
    fn a_misplaced_command_is_named() {
        assert!(misplaced_command(&words("sockstat -tan status")).is_some_and(|m| m.contains("`sockstat status")));
        assert!(misplaced_command(&words("sockstat help")).is_some_and(|m| m.contains("--help")));
        assert_eq!(misplaced_command(&words("sockstat -tan dst help")), None);
        assert_eq!(misplaced_command(&words("sockstat -tan dst 10.0.0.1")), None);
    }
}
