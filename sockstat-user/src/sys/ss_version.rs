//! The version of the `ss` installed on this machine, which decides whose output sockstat
//! reproduces by default (a user who aliases ss to sockstat should see what their ss
//! prints). Asking means running `ss -V`, so the answer is cached in a small file keyed by
//! the binary's path, size and modification time: one exec per ss upgrade, not per query.
//!
//! The cache lives in `/run/sockstat/ss-version` (root) or
//! `$XDG_RUNTIME_DIR/sockstat/ss-version`; when neither is writable the version is asked
//! every time. Nothing here is an error for the caller: no ss, an ss that is sockstat
//! itself, or an unreadable answer all give `None`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The cache file's name inside its directory.
const CACHE_FILE: &str = "ss-version";

/// `ss -V`'s version (`major`, `minor`) of the first `ss` on `PATH`, cached.
#[must_use]
pub fn installed() -> Option<(u32, u32)> {
    let ss = find_on_path("ss")?;
    let meta = std::fs::metadata(&ss).ok()?;
    // An `ss` that is this very binary (a symlink to sockstat, a hard link) says nothing
    // about iproute2: the same file, by device and inode.
    if std::fs::metadata("/proc/self/exe").is_ok_and(|me| (me.dev(), me.ino()) == (meta.dev(), meta.ino())) {
        return None;
    }
    let key = format!("{}\t{}\t{}.{}", ss.display(), meta.len(), meta.mtime(), meta.mtime_nsec());
    let dirs = cache_dirs();
    for dir in &dirs {
        if let Some(v) = std::fs::read_to_string(dir.join(CACHE_FILE)).ok().and_then(|t| cached(&t, &key)) {
            return Some(v);
        }
    }
    let version = ask(&ss)?;
    for dir in &dirs {
        if store(dir, &key, version) {
            break;
        }
    }
    Some(version)
}

/// The version in a cache file's text, if it was written for `key`.
fn cached(text: &str, key: &str) -> Option<(u32, u32)> {
    let (k, v) = text.trim_end().rsplit_once('\t')?;
    if k != key {
        return None;
    }
    parse_version(v)
}

/// Writes the cache atomically (a temporary file renamed over it); false if the directory
/// cannot be made or written.
fn store(dir: &Path, key: &str, (major, minor): (u32, u32)) -> bool {
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let tmp = dir.join(format!("{CACHE_FILE}.{}", std::process::id()));
    if std::fs::write(&tmp, format!("{key}\t{major}.{minor}\n")).is_err() {
        let _ = std::fs::remove_file(&tmp);
        return false;
    }
    std::fs::rename(&tmp, dir.join(CACHE_FILE)).is_ok()
}

/// Where the cache may live, in order of preference.
fn cache_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    // /run/sockstat is root's (the agent's directory); others use their runtime dir.
    if is_root() {
        dirs.push(PathBuf::from("/run/sockstat"));
    }
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(xdg).join("sockstat"));
    }
    dirs
}

fn is_root() -> bool {
    // SAFETY: geteuid() has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `ss -V` and reads its version: iproute2 prints `ss utility, iproute2-6.1.0` (older
/// ones `iproute2-ss200127`, a date, which counts as older than 6.1).
fn ask(ss: &Path) -> Option<(u32, u32)> {
    let out = Command::new(ss).arg("-V").stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rest = text.split("iproute2-").nth(1)?;
    if rest.starts_with("ss") {
        return Some((5, 0));
    }
    parse_version(rest.split_whitespace().next()?)
}

/// `7.1.0` or `7.1` -> (7, 1).
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// The first executable `name` in `PATH`, as a shell would find it.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_cache_lines_parse() {
        assert_eq!(parse_version("7.1.0"), Some((7, 1)));
        assert_eq!(parse_version("6.1"), Some((6, 1)));
        assert_eq!(parse_version("x.1"), None);
        let key = "/usr/bin/ss\t123\t1700000000.5";
        assert_eq!(cached(&format!("{key}\t6.1\n"), key), Some((6, 1)));
        // A different binary (path, size or time) is asked again.
        assert_eq!(cached(&format!("{key}\t6.1\n"), "/usr/bin/ss\t124\t1700000000.5"), None);
        assert_eq!(cached("garbage", key), None);
    }

    #[test]
    fn cache_round_trips_through_a_directory() {
        let dir = std::env::temp_dir().join(format!("sockstat-ssver-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(store(&dir, "k\t1\t2.3", (7, 1)));
        let text = std::fs::read_to_string(dir.join(CACHE_FILE)).expect("cache written");
        assert_eq!(cached(&text, "k\t1\t2.3"), Some((7, 1)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
