//! `sockstat status`: the agent's counters, as text or one JSON object.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Result;

use crate::wire::client;

/// Asks the agent at `socket` for its status and prints it.
///
/// # Errors
/// Reaching the agent, writing to stdout.
pub fn run(socket: &Path, json: bool) -> Result<()> {
    let s = client::Client::connect(socket).and_then(client::Client::status)?;
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
            if s.accept_hook { "attached" } else { "absent (passive opens attributed to the listener's owner)" }
        )?;
        writeln!(
            out,
            "owners iterator:  {}",
            if s.owners_iter { "loaded (-p reads owners through the agent)" } else { "absent (-p walks /proc)" }
        )?;
        match (s.timeline_committed, s.timeline_dropped) {
            (Some(c), Some(d)) => writeln!(out, "timeline:         {c} rows committed, {d} dropped")?,
            _ => writeln!(out, "timeline:         off")?,
        }
    }
    Ok(())
}
