//! One module per command of the `sockstat` binary: the ss command line ([`ss`], with
//! `-E` in [`events`] and `--at` in [`history`]), `trace`, `history`, `status`, `agent`.
//! Each glues the layers below together and reports errors with context; `main.rs` only
//! dispatches.

pub mod agent;
pub mod events;
pub mod history;
pub mod long_runs;
mod queued_stdout;
pub mod ss;
pub mod status;
pub mod trace;

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::commands::{Own, OwnCommand};
use crate::query::EventFilter;

/// Runs one of sockstat's own commands (`args` is the whole command line).
///
/// # Errors
/// The command's failure, with context.
pub fn own(args: &[OsString]) -> Result<ExitCode> {
    match Own::parse_from(args).command {
        OwnCommand::Agent {
            socket,
            ringbuf_bytes,
            timeline,
            no_timeline,
            retain_age,
            retain_bytes,
            timeline_transitions,
            metrics,
            nats,
            nats_host,
            nats_transitions,
        } => {
            let timeline = (!no_timeline)
                .then(|| crate::timeline::WriterConfig::new(timeline, retain_age, retain_bytes, timeline_transitions));
            let nats = nats.map(|url| crate::fleet::FleetConfig {
                url,
                host: nats_host.unwrap_or_else(crate::fleet::default_host),
                transitions: nats_transitions,
            });
            agent::run(crate::live::agent::AgentConfig { socket, ringbuf_bytes, timeline, metrics, nats })?;
        }
        OwnCommand::History { since, until, transitions, json, timeline, nats, host, netns, failed, filter } => {
            let filter = match EventFilter::parse(&filter) {
                Ok(f) => f,
                Err(e) => return Ok(filter_error(&e)),
            };
            let opts = history::HistoryOptions { since, until, transitions, json, filter, netns, failed };
            let source = match nats {
                Some(url) => history::Source::Fleet { url, host },
                None => history::Source::Timeline(timeline),
            };
            let mut out = io::BufWriter::new(io::stdout().lock());
            history::print_history(&source, &opts, &mut out, &mut io::stderr()).context("history")?;
            out.flush()?;
        }
        OwnCommand::Status { socket, json } => status::run(&socket, json)?,
        OwnCommand::Trace { json, all_netns, netns, count, lifetimes, filter } => {
            let filter = match EventFilter::parse(&filter) {
                Ok(f) => f,
                Err(e) => return Ok(filter_error(&e)),
            };
            trace::run(&trace::TraceOptions { json, all_netns, netns, count, lifetimes, filter }).context("trace")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A FILTER error, reported as ss reports it (message naming the column, exit status).
pub fn filter_error(e: &crate::filter::FilterError) -> ExitCode {
    let _ = io::stderr().lock().write_all(e.ss_message(crate::cli::PROG).as_bytes());
    ExitCode::from(e.exit_code())
}
