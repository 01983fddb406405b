//! `cargo xtask fuzz`: runs every cargo-fuzz target of `sockstat-user/fuzz` for a bounded
//! time, installing cargo-fuzz first if it is missing. cargo-fuzz needs the nightly
//! toolchain (sanitizer flags); `cargo xtask setup` installs nightly for the eBPF build.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The fuzz targets, in the order they run (names of `[[bin]]`s in sockstat-user/fuzz).
pub const TARGETS: [&str; 6] =
    ["filter_parser", "diag_parser", "recorded_dump", "protocol_decode", "btf_offsets", "timeline_reader"];

/// Runs each target for `seconds_per_target` seconds (libFuzzer's `-max_total_time`) from
/// the repository root `root`. A crash stops here with an error naming the target; the
/// reproducer is under `sockstat-user/fuzz/artifacts/TARGET/`.
///
/// # Errors
/// If cargo-fuzz cannot be installed, or a target fails to build or finds a crash.
pub fn run(root: &Path, seconds_per_target: u64) -> Result<()> {
    if seconds_per_target == 0 {
        bail!("give the fuzzers at least one second per target");
    }
    ensure_cargo_fuzz()?;
    let dir = root.join("sockstat-user").join("fuzz");
    for target in TARGETS {
        eprintln!("fuzzing {target} for {seconds_per_target} s");
        let mut cmd = Command::new("cargo");
        cmd.args(["+nightly", "fuzz", "run", target, "--"])
            .arg(format!("-max_total_time={seconds_per_target}"))
            .current_dir(&dir);
        // The filter grammar's keywords: random bytes rarely spell `dport`.
        let dict = dir.join(format!("{}.dict", target.trim_end_matches("_parser")));
        if dict.exists() {
            cmd.arg(format!("-dict={}", dict.display()));
        }
        let status = cmd.status().with_context(|| format!("running cargo fuzz in {}", dir.display()))?;
        if !status.success() {
            bail!(
                "fuzz target {target} failed ({status}); reproducer in {}",
                dir.join("artifacts").join(target).display()
            );
        }
    }
    Ok(())
}

/// Installs cargo-fuzz with `cargo install` when `cargo fuzz` is not available.
fn ensure_cargo_fuzz() -> Result<()> {
    let present =
        Command::new("cargo").args(["+nightly", "fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    eprintln!("installing cargo-fuzz");
    let status = Command::new("cargo")
        .args(["install", "--locked", "cargo-fuzz"])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!(
            "`cargo install cargo-fuzz` failed ({status}); install the nightly toolchain with `rustup toolchain install nightly` and retry"
        );
    }
    Ok(())
}
