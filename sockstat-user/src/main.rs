//! The `sockstat` binary: a thin edge that dispatches and prints errors with their
//! chain. `sockstat agent|status|trace|history ...` are sockstat's own commands (see
//! `sockstat::cmd`); anything else is an ss command line.

use std::{ffi::OsString, io, process::ExitCode};

use sockstat::{cli::commands::own_command_line, cmd};

mod huge_pages;

#[global_allocator]
static ALLOC: huge_pages::HugePages = huge_pages::HugePages;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let result = match own_command_line(&args) {
        Some(line) => cmd::own(&line),
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
