//! `sockstat agent`: logs to stderr through `tracing` (`RUST_LOG` sets the level, `info`
//! by default), then runs the agent until SIGINT or SIGTERM.

use std::io::{self, IsTerminal};

use anyhow::{Context, Result};

use crate::live::agent::{self, AgentConfig};

/// Runs the agent with `cfg`.
///
/// # Errors
/// Whatever stops the agent (loading the program, the socket, the timeline...).
pub fn run(cfg: AgentConfig) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .init();
    agent::run(cfg).context("agent")
}
