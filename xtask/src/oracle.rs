//! The second reference of the integration tests: iproute2 7.1's ss, built from the
//! tarball in `../shared/oracles` (relative to the repository root) or named by `SS_7_1`.
//! With it, `cargo xtask test` runs the comparisons a second time against ss 7.1, with
//! sockstat told to reproduce 7.1 (`SOCKSTAT_SS_COMPAT=7.1`), and the 7.1-only tests.

use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result, bail};

/// The test targets that compare with ss and run again against ss 7.1.
pub const COMPARISONS: &[&str] = &[
    "snapshot",
    "details",
    "families",
    "filter_vs_ss",
    "filter_families",
    "mptcp",
    "events",
    "xdp",
    "resolve",
    "netns",
    "agent",
    "cli",
];

/// The tests of what only ss 7.1 has (`-B`, `-Q`, `--bpf-maps`, ...); they need `SS_7_1`.
pub const SS71_ONLY: &str = "ss71";

/// The ss 7.1 binary: `SS_7_1` if set, else built by `../shared/oracles/build-ss.sh` into
/// `target/ss-7.1.0`; `None` (with the line saying why printed) when neither is there.
pub fn ss71(root: &Path) -> Result<Option<PathBuf>> {
    if let Some(p) = env::var_os("SS_7_1").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("SS_7_1={} is not a file", p.display());
        }
        return Ok(Some(p));
    }
    let script = root.join("..").join("shared").join("oracles").join("build-ss.sh");
    if !script.is_file() {
        eprintln!(
            "xtask test: the comparison with ss 7.1 did not run: set SS_7_1 to an iproute2 7.1 ss binary, \
             or provide {} (iproute2-7.1.0.tar.gz and build-ss.sh)",
            script.parent().unwrap_or(root).display()
        );
        return Ok(None);
    }
    let out_dir = root.join("target").join("ss-7.1.0");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&out_dir)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !path.is_file() {
        bail!("{} printed {}, which is not a file", script.display(), path.display());
    }
    Ok(Some(path))
}

/// A `PATH` with a directory holding `ss` -> `ss71` first, so that every `ss` the tests
/// run (in any namespace) is 7.1's.
pub fn path_with(root: &Path, ss71: &Path) -> Result<OsString> {
    let dir = root.join("target").join("ss71-path");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let link = dir.join("ss");
    let _ = std::fs::remove_file(&link);
    let target = std::fs::canonicalize(ss71).with_context(|| format!("resolving {}", ss71.display()))?;
    std::os::unix::fs::symlink(&target, &link).with_context(|| format!("linking {}", link.display()))?;
    let mut paths = vec![dir];
    paths.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    env::join_paths(paths).context("PATH")
}
