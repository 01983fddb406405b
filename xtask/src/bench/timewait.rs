//! The TIME-WAIT scene: the top key level's established connections with a set of
//! TIME-WAIT sockets beside them (a server with short-lived clients), the same queries
//! timed against ss, plus `-tan state time-wait`.
//!
//! TIME-WAIT lasts 60 s (`TCP_TIMEWAIT_LEN`) and nothing renews it, so the set is made by
//! `loadgen time-wait` right before the measurements, counted with ss before and after
//! every query, and made again (once the old set expired: the count stays what the table
//! says) before a query that would start when the set is older than `FRESH_FOR`. A query
//! during which the count fell is said so and measured again on a new set.

use std::{
    fs,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{
    harness::{Agent, JsonExt, Log, Timing, run_ok},
    profile::{Profile, profile},
    snapshot::{Compared, Level, agent_args, compare, scene_queries},
};

/// `loadgen time-wait` listens on these ports (its client sockets are the TIME-WAIT ones).
const PORT_BASE: u16 = 23000;
const PORTS: u16 = 16;
/// The kernel's TIME-WAIT length (include/net/tcp.h).
const TIME_WAIT_LEN: Duration = Duration::from_secs(60);
/// No query pair starts on a set older than this: the slowest pair (`-tanp`, ss taking
/// seconds per run) ends well before the set expires.
pub(super) const FRESH_FOR: Duration = Duration::from_secs(40);
/// The kernel's timer wheel may fire a 60 s timer a few seconds late.
const EXPIRY_SLACK: Duration = Duration::from_secs(15);
/// Runs of `-tan` with the client's profile line.
pub(super) const PROFILE_RUNS: usize = 11;

/// One set of TIME-WAIT sockets.
pub(super) struct TimeWaitSet {
    /// When `loadgen time-wait` started: its first sockets expire 60 s after.
    pub(super) made: Instant,
    /// Seconds it took to make.
    pub(super) seconds: f64,
    /// TIME-WAIT sockets counted with ss right after.
    pub(super) counted: usize,
}

pub(super) struct TimeWaitRow {
    pub(super) cmp: Compared,
    /// TIME-WAIT sockets counted with ss right before and right after the pair.
    pub(super) before: usize,
    pub(super) after: usize,
    /// The first measurement lost TIME-WAIT sockets on the way and was repeated on a new set.
    pub(super) remeasured: bool,
}

pub(super) struct TimeWaitScene {
    pub(super) label: &'static str,
    /// Established sockets beside the TIME-WAIT ones (ss, at the start).
    pub(super) established: usize,
    /// TIME-WAIT connections asked of `loadgen time-wait` per set.
    pub(super) asked: u32,
    pub(super) sets: Vec<TimeWaitSet>,
    pub(super) rows: Vec<TimeWaitRow>,
    /// What happened to the sets on the way (expiries, new sets), in order.
    pub(super) events: Vec<String>,
    pub(super) profile: Profile,
    /// Agent resyncs during the scene (ring buffer overflows while the sets were made).
    pub(super) resyncs: u64,
}

/// TCP sockets of the current namespace in `state`, counted with ss (no header).
pub(super) fn count_state(state: &str) -> Result<usize> {
    let out = run_ok(Command::new("ss").args(["-Htan", "state", state]))?;
    Ok(out.lines().filter(|l| !l.trim().is_empty()).count())
}

/// The bench namespace's `tcp_tw_reuse`, restored on drop.
struct TwReuse(String);

const TW_REUSE: &str = "/proc/sys/net/ipv4/tcp_tw_reuse";

impl TwReuse {
    /// Turns TIME-WAIT reuse off: on loopback (the default, 2) `connect()` may pick a port
    /// whose TIME-WAIT socket to the same listener is over a second old and recycle it,
    /// which ate about 5% of a 48k set. The churn, later, runs with the default again.
    fn off() -> Result<TwReuse> {
        let old = fs::read_to_string(TW_REUSE).with_context(|| format!("reading {TW_REUSE}"))?;
        fs::write(TW_REUSE, "0").with_context(|| format!("writing 0 to {TW_REUSE}"))?;
        Ok(TwReuse(old.trim().to_string()))
    }
}

impl Drop for TwReuse {
    fn drop(&mut self) {
        let _ = fs::write(TW_REUSE, &self.0);
    }
}

fn make_set(log: &Log, asked: u32) -> Result<TimeWaitSet> {
    log.say(&format!("time-wait scene: closing {asked} connections client first"));
    let reuse = TwReuse::off()?;
    let made = Instant::now();
    let out = Command::new(std::env::current_exe()?)
        .args(["loadgen", "time-wait", "--connections", &asked.to_string(), "--ports", &PORTS.to_string()])
        .args(["--port-base", &PORT_BASE.to_string(), "--seconds", &FRESH_FOR.as_secs().to_string()])
        .stdin(Stdio::null())
        .output()
        .context("running loadgen time-wait")?;
    if !out.status.success() {
        bail!("loadgen time-wait failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    let seconds = made.elapsed().as_secs_f64();
    drop(reuse);
    let counted = count_state("time-wait")?;
    log.say(&format!("  {counted} TIME-WAIT sockets, made in {seconds:.1} s"));
    // A set that came out far short means the kernel refused them (`tcp_max_tw_buckets`)
    // or reused their ports: the scene would not be what it says.
    if counted < asked as usize * 9 / 10 {
        bail!(
            "only {counted} TIME-WAIT sockets after closing {asked} connections client first \
             (see net.ipv4.tcp_max_tw_buckets and TcpExtTCPTimeWaitOverflow in nstat)"
        );
    }
    Ok(TimeWaitSet { made, seconds, counted })
}

/// Waits for `old` to expire, then makes a new set: the count stays near one set's.
fn renew(log: &Log, scene: &mut TimeWaitScene, why: String) -> Result<()> {
    let old = scene.sets.last().context("no TIME-WAIT set to renew")?;
    let (made, counted) = (old.made, old.counted);
    log.say(&format!("time-wait scene: {why}; waiting for the set to expire"));
    scene.events.push(why);
    thread::sleep(TIME_WAIT_LEN.saturating_sub(made.elapsed()));
    let deadline = Instant::now() + EXPIRY_SLACK;
    while count_state("time-wait")? > counted / 100 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(500));
    }
    let set = make_set(log, scene.asked)?;
    scene.events.push(format!(
        "the set expired; a new set of {} TIME-WAIT sockets, {:.0} s after the old one was started",
        set.counted,
        made.elapsed().as_secs_f64()
    ));
    scene.sets.push(set);
    Ok(())
}

fn age(scene: &TimeWaitScene) -> Duration {
    scene.sets.last().map_or(Duration::MAX, |s| s.made.elapsed())
}

pub(super) fn time_wait_scene(
    log: &Log,
    bin: &Path,
    agent: &Agent,
    level: &Level,
    t: &Timing,
    asked: u32,
) -> Result<TimeWaitScene> {
    let resyncs = agent.status()?.u64("resyncs")?;
    let established = count_state("established")?;
    let set = make_set(log, asked)?;
    agent.wait_drained(Duration::from_secs(30))?;
    let tan = vec!["-tan".to_string()];
    log.say(&format!("time-wait scene: sockstat -tan {PROFILE_RUNS} times with its profile line"));
    let prof = profile(bin, &agent_args(agent, &tan), PROFILE_RUNS)?;
    let mut scene = TimeWaitScene {
        label: level.label,
        established,
        asked,
        sets: vec![set],
        rows: Vec::new(),
        events: Vec::new(),
        profile: prof,
        resyncs: 0,
    };
    for q in scene_queries(true) {
        let query = q.args.join(" ");
        let mut remeasured = false;
        loop {
            if age(&scene) > FRESH_FOR {
                let why = format!("the set was {:.0} s old before `{query}`", age(&scene).as_secs_f64());
                renew(log, &mut scene, why)?;
            }
            log.say(&format!("time-wait scene: sockstat and ss {query}"));
            let before = count_state("time-wait")?;
            let cmp = compare(bin, agent, &q, t)?;
            let after = count_state("time-wait")?;
            log.say(&format!(
                "  {query:24} sockstat {:>14}  ss {:>12}  TIME-WAIT {before} -> {after}",
                cmp.sockstat.cell(),
                cmp.ss.cell()
            ));
            if after >= before * 9 / 10 || remeasured {
                scene.rows.push(TimeWaitRow { cmp, before, after, remeasured });
                break;
            }
            let why = format!("TIME-WAIT sockets expired during `{query}` ({before} -> {after}): measured again");
            renew(log, &mut scene, why)?;
            remeasured = true;
        }
    }
    scene.resyncs = agent.status()?.u64("resyncs")?.saturating_sub(resyncs);
    Ok(scene)
}

/// Destroys the namespace's TIME-WAIT sockets (`ss -K`), so that the sections after the
/// scene start without them; returns how many there were.
pub(super) fn clear_time_wait(log: &Log) -> Result<usize> {
    let n = count_state("time-wait")?;
    let st = Command::new("ss")
        .args(["-K", "-tan", "state", "time-wait"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running ss -K")?;
    let left = count_state("time-wait")?;
    log.say(&format!("time-wait scene: ss -K destroyed {} of {n} TIME-WAIT sockets ({st})", n - left.min(n)));
    Ok(n)
}
