//! Where the time of `sockstat -tan` goes: the client, run with `SOCKSTAT_PROFILE=1`,
//! prints one `sockstat profile: key=N ...` line on stderr (connect, request, the agent's
//! answer as the agent reports it, transfer, decode, format, write, total, in
//! microseconds; rows and bytes). The bench runs the query a few times and keeps the
//! median of each field. Builds without the line are reported as such.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use super::stats::median_f;

/// The environment variable that makes the client print its profile line.
pub(super) const PROFILE_ENV: &str = "SOCKSTAT_PROFILE";
const PROFILE_PREFIX: &str = "sockstat profile:";
/// The fields in the order the table lists them; fields the bench does not know follow.
const KNOWN_FIELDS: [&str; 10] = [
    "connect_us",
    "request_us",
    "answer_us",
    "transfer_us",
    "decode_us",
    "format_us",
    "write_us",
    "total_us",
    "rows",
    "bytes",
];

/// The profile of one query over several runs.
pub(super) struct Profile {
    /// Whole-process wall time of every run (stdout to /dev/null, as in the timed runs).
    pub(super) wall: Vec<Duration>,
    /// Runs whose stderr had a profile line.
    pub(super) with_line: usize,
    /// Each field seen, with its values over the runs that had it.
    pub(super) fields: Vec<(String, Vec<u64>)>,
}

impl Profile {
    /// (field, median, runs that had it), known fields first, in their order.
    pub(super) fn medians(&self) -> Vec<(&str, f64, usize)> {
        let rank = |k: &str| KNOWN_FIELDS.iter().position(|f| *f == k).unwrap_or(KNOWN_FIELDS.len());
        let mut v: Vec<(&str, f64, usize)> = self
            .fields
            .iter()
            .map(|(k, vals)| (k.as_str(), median_f(vals.iter().map(|&x| x as f64)), vals.len()))
            .collect();
        v.sort_by_key(|(k, _, _)| rank(k));
        v
    }
}

/// The key=value pairs of the profile line in `stderr`, if there is one. Lenient: pairs
/// whose value is not an unsigned integer are skipped, so a field the client adds or
/// prints differently does not lose the others.
pub(super) fn parse_profile(stderr: &str) -> Option<Vec<(String, u64)>> {
    let line = stderr.lines().find_map(|l| l.trim().strip_prefix(PROFILE_PREFIX))?;
    Some(
        line.split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| v.trim_end_matches(',').parse().ok().map(|n| (k.to_string(), n)))
            .collect(),
    )
}

/// Runs `program args` `runs` times with the profile variable set.
pub(super) fn profile(program: &Path, args: &[String], runs: usize) -> Result<Profile> {
    let mut p = Profile { wall: Vec::new(), with_line: 0, fields: Vec::new() };
    for _ in 0..runs {
        let t0 = Instant::now();
        let out = Command::new(program)
            .args(args)
            .env(PROFILE_ENV, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("running {}", program.display()))?;
        p.wall.push(t0.elapsed());
        if !out.status.success() {
            anyhow::bail!(
                "{} {args:?} with {PROFILE_ENV}=1 failed ({}): {}",
                program.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let Some(pairs) = parse_profile(&String::from_utf8_lossy(&out.stderr)) else { continue };
        p.with_line += 1;
        for (k, v) in pairs {
            match p.fields.iter_mut().find(|(f, _)| *f == k) {
                Some((_, vals)) => vals.push(v),
                None => p.fields.push((k, vec![v])),
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_lines_are_read_leniently() {
        let err = "warning: something\nsockstat profile: connect_us=12 request_us=3 answer_us=4500 transfer_us=x \
                   decode_us= format_us=900 rows=100013 bytes=10485760 newfield=7 junk\n";
        let got = parse_profile(err).unwrap();
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["connect_us", "request_us", "answer_us", "format_us", "rows", "bytes", "newfield"]);
        assert_eq!(got[2], ("answer_us".to_string(), 4500));
        assert!(parse_profile("no such line\n").is_none());
        assert_eq!(parse_profile("sockstat profile:\n"), Some(vec![]));
    }

    #[test]
    fn medians_list_known_fields_first() {
        let p = Profile {
            wall: vec![],
            with_line: 3,
            fields: vec![
                ("zzz".into(), vec![1]),
                ("total_us".into(), vec![30, 10, 20]),
                ("connect_us".into(), vec![5, 7]),
            ],
        };
        let m = p.medians();
        assert_eq!(m[0], ("connect_us", 6.0, 2));
        assert_eq!(m[1], ("total_us", 20.0, 3));
        assert_eq!(m[2], ("zzz", 1.0, 1));
    }
}
