//! sockstat's ss command line (`sockstat::cmd::ss::run`, the code the `sockstat` binary
//! runs for it) in a dynamically linked binary. The release `sockstat` is linked
//! statically, and a static binary does not load `LD_PRELOAD` libraries: the xdp test's
//! stand-in for the kernel's xsk_diag (`fixtures/fake_xsk_diag.c`) is one.

use std::{ffi::OsString, process::ExitCode};

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    match sockstat::cmd::ss::run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sockstat: {e:#}");
            ExitCode::FAILURE
        }
    }
}
