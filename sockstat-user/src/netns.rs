//! `-N NAME`: run the query in the network namespace `ip netns add NAME` made, exactly as
//! iproute2's `netns_switch()` does, since what ss prints depends on it: `setns` into
//! /run/netns/NAME, then a private mount namespace in which /sys is a sysfs of the new
//! network namespace (so the host's cgroup2 mount under /sys is gone, and ss prints
//! `cgroup:unreachable:ID`, as sockstat then does) and each file of /etc/netns/NAME is
//! bind-mounted over its /etc counterpart (e.g. a namespace's own /etc/services).

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

/// Why the namespace could not be entered; the message is iproute2's.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("Cannot open network namespace \"{name}\": {reason}")]
    Open { name: String, reason: String },
    #[error("setting the network namespace \"{name}\" failed: {reason}")]
    Setns { name: String, reason: String },
    #[error("unshare failed: {0}")]
    Unshare(nix::Error),
    #[error("\"mount --make-rslave /\" failed: {0}")]
    Slave(nix::Error),
    #[error("mount of /sys failed: {0}")]
    Sysfs(nix::Error),
}

/// Enters /run/netns/`name` for this (single-threaded) process.
///
/// # Errors
/// [`NetnsError`], worded as `ip`/`ss` word it.
pub fn enter(name: &str) -> Result<(), NetnsError> {
    let path = Path::new("/run/netns").join(name);
    let strerror = |e: &std::io::Error| e.to_string().split(" (os error").next().unwrap_or_default().to_owned();
    let file = std::fs::File::open(&path).map_err(|e| NetnsError::Open { name: name.to_owned(), reason: strerror(&e) })?;
    setns(&file, CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetnsError::Setns { name: name.to_owned(), reason: strerror(&std::io::Error::from(e)) })?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(NetnsError::Unshare)?;
    // Nothing mounted below may propagate back to the parent namespace.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>).map_err(NetnsError::Slave)?;
    // iproute2 mounts the new sysfs read-only when the old /sys was read-only.
    let flags = match nix::sys::statvfs::statvfs("/sys") {
        Ok(st) if st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) => MsFlags::MS_RDONLY,
        _ => MsFlags::empty(),
    };
    // A failure here means no sysfs was mounted, which is fine (iproute2 ignores it too).
    let _ = umount2("/sys", MntFlags::MNT_DETACH);
    mount(Some(name), "/sys", Some("sysfs"), flags, None::<&str>).map_err(NetnsError::Sysfs)?;
    bind_etc(name);
    Ok(())
}

/// iproute2's `bind_etc()`: every entry of /etc/netns/NAME over /etc/ENTRY, best effort.
fn bind_etc(name: &str) {
    let dir = Path::new("/etc/netns").join(name);
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for e in entries.flatten() {
        let file = e.file_name();
        if file == "." || file == ".." {
            continue;
        }
        let target = Path::new("/etc").join(&file);
        // A missing target or a failed bind is reported by ip as a warning; ss output
        // does not depend on it, so it is skipped silently here.
        let _ = mount(Some(&e.path()), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>);
    }
}
