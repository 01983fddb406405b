//! The `sockstat` binary: a thin edge that dispatches and prints errors with their
//! chain. `sockstat agent|status|trace|history ...` are sockstat's own commands (see
//! `sockstat::cmd`); anything else is an ss command line.

use std::{ffi::OsString, io, process::ExitCode};

use sockstat::{cli::commands::COMMANDS, cmd};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let own = args.get(1).and_then(|a| a.to_str()).is_some_and(|a| COMMANDS.contains(&a));
    let result = if own { cmd::own(&args) } else { cmd::ss::run(&args[1..]) };
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
