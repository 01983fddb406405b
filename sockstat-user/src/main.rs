//! The `sockstat` binary: a thin edge that dispatches and prints errors with their
//! chain. `sockstat agent|status|trace|history ...` are sockstat's own commands (see
//! `sockstat::cmd`); anything else is an ss command line.

use std::{ffi::OsString, io, process::ExitCode};

use sockstat::{
    cli::commands::own_command_line,
    cmd::{self, long_runs},
};

#[cfg(all(target_arch = "x86_64", any(test, target_env = "musl")))]
mod fast_copy;
mod huge_pages;

#[global_allocator]
static ALLOC: huge_pages::HugePages = huge_pages::HugePages;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if long_runs::HANDS_OVER {
        sockstat::names::lookup::set_before_resolver(resolve_in_glibc);
    }
    let result = match own_command_line(&args) {
        Some(line) => {
            if long_runs::HANDS_OVER && line.get(1).is_some_and(long_runs::is_long_run) {
                let why = long_runs::hand_over(&args);
                eprintln!(
                    "sockstat: {why}; `{}` runs in this build, which holds more memory under churn \
                     (`cargo xtask build` makes both files, `cargo xtask install` installs both)",
                    line[1].to_string_lossy()
                );
            }
            cmd::own(&line)
        }
        None => {
            // A query: its big buffers live for milliseconds (see `huge_pages`).
            huge_pages::enable();
            cmd::ss::run(&args)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("sockstat: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Hands a query that looks names up to the glibc build (see `long_runs`): musl's resolver
/// reads neither nsswitch.conf nor glibc's special cases, and it waits out DNS timeouts
/// glibc does not.
fn resolve_in_glibc() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let why = long_runs::hand_over(&args);
    eprintln!("sockstat: {why}; names are looked up with musl's resolver, which may differ from ss's");
}
