//! The `sockstat` binary: a thin edge that parses arguments, dispatches, and prints
//! errors with their chain.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::SUCCESS
}
