//! `-N NAME`: run the query in the network namespace `ip netns add NAME` made, exactly as
//! iproute2's `netns_switch()` does, since what ss prints depends on it: `setns` into
//! /run/netns/NAME, then a private mount namespace in which /sys is a sysfs of the new
//! network namespace (so the host's cgroup2 mount under /sys is gone, and ss prints
//! `cgroup:unreachable:ID`, as sockstat then does) and each file of /etc/netns/NAME is
//! bind-mounted over its /etc counterpart (e.g. a namespace's own /etc/services).
//!
//! Also the agent's way into other namespaces: finding a handle to a namespace by its
//! inode (/run/netns/NAME, /proc/PID/ns/net) and running work on a thread that entered it.

use std::{
    collections::BTreeMap,
    fs::File,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

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
    let file =
        std::fs::File::open(&path).map_err(|e| NetnsError::Open { name: name.to_owned(), reason: strerror(&e) })?;
    setns(&file, CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetnsError::Setns { name: name.to_owned(), reason: strerror(&std::io::Error::from(e)) })?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(NetnsError::Unshare)?;
    // Nothing mounted below may propagate back to the parent namespace.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>)
        .map_err(NetnsError::Slave)?;
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

/// Why the agent could not work in another network namespace.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("no handle to network namespace {0}: no /run/netns entry and no process is in it")]
    NotFound(u32),
    #[error("entering network namespace {inode} through {path}")]
    Enter {
        inode: u32,
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("the thread working in network namespace {0} panicked")]
    Thread(u32),
}

/// The inode number of the network namespace `path` refers to (an nsfs file such as
/// /run/netns/NAME or /proc/PID/ns/net): the number the eBPF program records per event.
///
/// # Errors
/// The `stat`'s.
pub fn inode_of(path: &Path) -> std::io::Result<u32> {
    let ino = std::fs::metadata(path)?.ino();
    u32::try_from(ino).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))
}

/// Every network namespace this process can find a handle to, by inode: the entries of
/// /run/netns first (so a named namespace keeps its name), then each process's
/// /proc/PID/ns/net. Namespaces held only by a thread, a socket or a bind mount
/// elsewhere are not found.
#[must_use]
pub fn discover() -> BTreeMap<u32, PathBuf> {
    let mut found = BTreeMap::new();
    let named = std::fs::read_dir(NAMED_DIR).into_iter().flatten().flatten().map(|e| e.path());
    let procs = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .map(|e| e.path().join("ns/net"));
    for path in named.chain(procs) {
        // A process may exit, a name may be deleted, while we look: skip it.
        if let Ok(inode) = inode_of(&path) {
            found.entry(inode).or_insert(path);
        }
    }
    found
}

/// Where `ip netns add` names namespaces.
pub const NAMED_DIR: &str = "/run/netns";

/// The name of a namespace handle under /run/netns (`ip netns` names), if it is one.
#[must_use]
pub fn name_of(path: &Path) -> Option<String> {
    path.strip_prefix(NAMED_DIR).ok()?.to_str().map(str::to_owned)
}

/// The `ip netns` names of namespaces, by inode (the first name of each).
#[must_use]
pub fn names() -> BTreeMap<u32, String> {
    let mut found = BTreeMap::new();
    for path in std::fs::read_dir(NAMED_DIR).into_iter().flatten().flatten().map(|e| e.path()) {
        if let (Ok(inode), Some(name)) = (inode_of(&path), name_of(&path)) {
            found.entry(inode).or_insert(name);
        }
    }
    found
}

/// Opens `path` if it still refers to network namespace `inode` (names and pids are
/// reused, so what a path referred to earlier is checked again on the open file).
///
/// # Errors
/// The open's, or `InvalidData` when the file is another namespace.
pub fn open_checked(path: &Path, inode: u32) -> std::io::Result<File> {
    let file = File::open(path)?;
    if u32::try_from(file.metadata()?.ino()).ok() == Some(inode) {
        Ok(file)
    } else {
        Err(std::io::Error::from(std::io::ErrorKind::InvalidData))
    }
}

/// Runs `f` on a thread of its own that entered network namespace `inode` through
/// `handle`: `setns(CLONE_NEWNET)` changes only the calling thread, and that thread ends
/// with `f`, so nothing else of this process changes namespace. Sockets `f` opens belong
/// to that namespace; `f` should close them (an open socket keeps its namespace alive).
///
/// # Errors
/// [`HandleError`] when the thread cannot enter the namespace.
pub fn run_in<T: Send>(inode: u32, handle: (&Path, &File), f: impl FnOnce() -> T + Send) -> Result<T, HandleError> {
    let (path, file) = handle;
    std::thread::scope(|s| {
        s.spawn(|| {
            setns(file, CloneFlags::CLONE_NEWNET).map_err(|source| HandleError::Enter {
                inode,
                path: path.to_path_buf(),
                source,
            })?;
            Ok(f())
        })
        .join()
        .unwrap_or(Err(HandleError::Thread(inode)))
    })
}

/// Inode number of this process's pid namespace (`/proc/self/ns/pid`).
/// PROC_PID_INIT_INO (include/linux/proc_ns.h): the initial pid namespace's inode.
pub const INITIAL_PIDNS: u64 = 0xEFFF_FFFC;

pub fn own_pidns() -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata("/proc/self/ns/pid")?.ino())
}

/// Inode number of this process's network namespace (what `/proc/self/ns/net` names,
/// and what the eBPF program records per event).
pub fn own_netns() -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/proc/self/ns/net")?;
    Ok(u32::try_from(meta.ino()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_finds_this_process_namespace_under_its_inode() {
        let own = inode_of(Path::new("/proc/self/ns/net")).unwrap();
        let found = discover();
        let path = found.get(&own).expect("this process's namespace is found");
        assert_eq!(inode_of(path).unwrap(), own);
        assert!(open_checked(path, own).is_ok());
        assert!(open_checked(path, own.wrapping_add(1)).is_err(), "another inode is refused");
    }

    #[test]
    fn names_are_those_under_run_netns() {
        assert_eq!(name_of(Path::new("/run/netns/blue")).as_deref(), Some("blue"));
        assert_eq!(name_of(Path::new("/proc/1/ns/net")), None);
    }

    #[test]
    fn work_runs_in_the_namespace_entered() {
        let own = inode_of(Path::new("/proc/self/ns/net")).unwrap();
        let path = Path::new("/proc/self/ns/net");
        let file = open_checked(path, own).unwrap();
        // Entering one's own namespace needs CAP_SYS_ADMIN like any other; without it the
        // error names the namespace.
        match run_in(own, (path, &file), || inode_of(Path::new("/proc/thread-self/ns/net")).unwrap()) {
            Ok(inside) => assert_eq!(inside, own),
            Err(e) => assert!(e.to_string().contains(&own.to_string()), "{e}"),
        }
    }
}
