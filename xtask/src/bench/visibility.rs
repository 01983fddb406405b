//! Section 4: event-to-visible latency, measured with whole CLI runs only: how long after
//! a connect or an abortive close a `sockstat --source agent` query shows the change.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use super::{
    harness::Log,
    snapshot::Level,
    stats::{fmt_ms, percentile},
};

/// Port of the listener used by the event-to-visible measurement.
pub(super) const PROBE_PORT: u16 = 9998;

pub(super) struct Visibility {
    pub(super) label: &'static str,
    pub(super) sockets: u64,
    pub(super) samples: usize,
    pub(super) appear: Vec<Duration>,
    pub(super) gone: Vec<Duration>,
    /// Queries that ran before the one that showed the change (should be 0: the agent
    /// drains its ring before answering).
    pub(super) extra_polls: usize,
}

/// Whether both ends of the connection from local port `port` to PROBE_PORT are listed.
fn shows_connection(out: &str, port: u16) -> (bool, bool) {
    let (client, server) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{PROBE_PORT}"));
    let mut found = (false, false);
    // The cheap substring test first: this runs over 100k-line outputs in an unoptimised
    // xtask build.
    for l in out.lines().filter(|l| l.contains(&server)) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 5 && f[0] == "ESTAB" {
            found.0 |= f[3] == client && f[4] == server;
            found.1 |= f[3] == server && f[4] == client;
        }
    }
    found
}

pub(super) fn visibility(
    log: &Log,
    bin: &Path,
    socket: &Path,
    probe: &TcpListener,
    level: &Level,
    samples: usize,
) -> Result<Visibility> {
    log.say(&format!("level {}: event-to-visible latency, {samples} samples", level.label));
    // Returns the output and when the command finished: the search through the output
    // afterwards is the bench's cost, not sockstat's.
    let query = || -> Result<(String, Instant)> {
        let out = Command::new(bin).args(["--source", "agent", "--socket"]).arg(socket).arg("-tan").output()?;
        let done = Instant::now();
        if !out.status.success() {
            bail!("sockstat -tan failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok((String::from_utf8_lossy(&out.stdout).into_owned(), done))
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, PROBE_PORT));
    let mut v =
        Visibility { label: level.label, sockets: 0, samples, appear: Vec::new(), gone: Vec::new(), extra_polls: 0 };
    for _ in 0..samples {
        // The state change: connect() returns once the client is ESTABLISHED; the
        // server side is established by then too (the final ACK is processed in the
        // same loopback softirq).
        let t0 = Instant::now();
        let c = TcpStream::connect(addr)?;
        let (s, _) = probe.accept()?;
        let port = c.local_addr()?.port();
        loop {
            let (out, done) = query()?;
            if shows_connection(&out, port) == (true, true) {
                v.appear.push(done - t0);
                v.sockets = v.sockets.max(out.lines().count().saturating_sub(1) as u64);
                break;
            }
            v.extra_polls += 1;
            if t0.elapsed() > Duration::from_secs(10) {
                bail!("connection from port {port} not visible after 10 s");
            }
        }
        // And the way back: an abortive close (no TIME-WAIT) removes both ends.
        for sock in [&c, &s] {
            nix::sys::socket::setsockopt(
                sock,
                nix::sys::socket::sockopt::Linger,
                &libc::linger { l_onoff: 1, l_linger: 0 },
            )?;
        }
        let t1 = Instant::now();
        drop((c, s));
        loop {
            let (out, done) = query()?;
            if shows_connection(&out, port) == (false, false) {
                v.gone.push(done - t1);
                break;
            }
            v.extra_polls += 1;
            if t1.elapsed() > Duration::from_secs(10) {
                bail!("closed connection from port {port} still listed after 10 s");
            }
        }
    }
    log.say(&format!(
        "  appear p50 {} p99 {}, disappear p50 {} p99 {}, extra polls {}",
        fmt_ms(percentile(&v.appear, 50.0)),
        fmt_ms(percentile(&v.appear, 99.0)),
        fmt_ms(percentile(&v.gone, 50.0)),
        fmt_ms(percentile(&v.gone, 99.0)),
        v.extra_polls
    ));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_both_ends_of_a_connection() {
        let out = "State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n\
                   ESTAB  0      0          127.0.0.1:40001    127.0.0.1:9998\n\
                   ESTAB  0      0          127.0.0.1:9998     127.0.0.1:40001\n\
                   ESTAB  0      0          127.0.0.1:4000     127.0.0.1:9998\n";
        assert_eq!(shows_connection(out, 40001), (true, true));
        assert_eq!(shows_connection(out, 4000), (true, false));
        assert_eq!(shows_connection(out, 400), (false, false));
    }
}
