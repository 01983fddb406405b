//! Which build runs a command: `agent` and `trace` run in the glibc build.
//!
//! `cargo xtask build` links sockstat twice, both statically: against musl as `sockstat`,
//! and against glibc as `sockstat-glibc` beside it. A query is a process of its own that
//! lasts about a millisecond, and glibc's start-up reads the CPU's cache sizes with a
//! dozen `cpuid` instructions, each a trip to the hypervisor on a virtual machine: the
//! musl build starts in half the time. The agent and `trace` run for days under churn:
//! as a musl build with musl's malloc the agent took a third more CPU (that allocator's
//! lock and page faults), and with mimalloc (the musl build's allocator, `huge_pages`) as
//! much CPU as the glibc build but 2.6x its memory (mimalloc keeps what it freed). So the
//! musl build hands those two commands to its sibling by `exec`: the same process (its
//! id, arguments, descriptors and environment), another program image.

use std::{
    ffi::OsString,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Command,
};

/// The glibc build's file name, beside `sockstat`.
pub const SIBLING: &str = "sockstat-glibc";

/// The commands the sibling runs.
const LONG_RUNS: [&str; 2] = ["agent", "trace"];

/// Whether this build hands long-running commands over: the musl one.
pub const HANDS_OVER: bool = cfg!(target_env = "musl");

/// Whether `command` (an own command's name) runs in the sibling build.
#[must_use]
pub fn is_long_run(command: &OsString) -> bool {
    command.to_str().is_some_and(|c| LONG_RUNS.contains(&c))
}

/// Where the sibling of the executable at `exe` is.
#[must_use]
pub fn sibling_of(exe: &Path) -> PathBuf {
    exe.with_file_name(SIBLING)
}

/// Replaces this process with the sibling build running `args` (the whole command
/// line, `args[0]` included, which the sibling gets as its own path). Returns only if it
/// could not: with what to tell the user, and the command then runs in this build.
pub fn hand_over(args: &[OsString]) -> String {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return format!("cannot find this executable's path ({e})"),
    };
    let sibling = sibling_of(&exe);
    if !sibling.is_file() {
        return format!("{} is missing", sibling.display());
    }
    let err = Command::new(&sibling).args(args.iter().skip(1)).exec();
    format!("cannot run {}: {err}", sibling.display())
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsString, path::Path};

    use super::{is_long_run, sibling_of};

    #[test]
    fn agent_and_trace_are_handed_over_and_the_short_commands_are_not() {
        assert!(is_long_run(&OsString::from("agent")));
        assert!(is_long_run(&OsString::from("trace")));
        assert!(!is_long_run(&OsString::from("status")));
        assert!(!is_long_run(&OsString::from("history")));
    }

    #[test]
    fn the_sibling_is_beside_the_executable() {
        assert_eq!(sibling_of(Path::new("/usr/local/bin/sockstat")), Path::new("/usr/local/bin/sockstat-glibc"));
    }
}
