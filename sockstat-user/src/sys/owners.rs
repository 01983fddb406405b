//! `-p`: which processes hold which sockets, found as ss finds them, by reading the
//! `socket:[INODE]` links under /proc/PID/fd, but with less work than ss's full walk:
//!
//! - only the inodes of the sockets about to be printed are looked for, and a process's
//!   name is read (from /proc/PID/stat) only once one of its descriptors matches;
//! - each process's fd directory is read once: threads share the descriptor table, so
//!   /proc/PID/task/* is never walked, except for `-T` ([`owners_with_threads`]), which
//!   lists every thread as ss does: the process itself (`tid=PID`), then each other task
//!   of /proc/PID/task, read through /proc/TID (its own `comm`).
//!
//! It does not stop at the first owner of each inode: a socket shared by several
//! processes (inherited across fork, passed with SCM_RIGHTS) is listed with every owner,
//! as ss lists it, so the walk has to see every process.
//!
//! The owners of one inode are listed as ss lists them: ss prepends each find to a hash
//! chain, so the last process found (the highest pid in /proc's order) comes first, and
//! within a process the highest fd first.

use std::collections::HashMap;

use rustc_hash::FxHashSet;
use std::path::Path;

use crate::model::owner::Owner;

/// Owners of each wanted inode, in ss's order, reading the proc tree at `proc_root`.
/// Processes that exit or refuse access during the walk are skipped, as ss skips them.
#[must_use]
pub fn owners_in(proc_root: &Path, wanted: &FxHashSet<u32>) -> HashMap<u32, Vec<Owner>> {
    walk(proc_root, wanted, false)
}

/// ss's `user_ent_hash_build()`: every pid directory, then with `threads` every other
/// task of /proc/PID/task as /proc/TID; each find is prepended, so the lists come out in
/// reverse discovery order.
fn walk(proc_root: &Path, wanted: &FxHashSet<u32>, threads: bool) -> HashMap<u32, Vec<Owner>> {
    let mut found: HashMap<u32, Vec<Owner>> = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    let Ok(procs) = std::fs::read_dir(proc_root) else { return found };
    for entry in procs.flatten() {
        let name = entry.file_name();
        let Some(pid) = leading_int(&name.to_string_lossy()) else { continue };
        let tid = threads.then_some(pid);
        task(&proc_root.join(pid.to_string()), pid, tid, wanted, &mut found);
        if !threads {
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(proc_root.join(pid.to_string()).join("task")) else { continue };
        for t in tasks.flatten() {
            let Some(tid) = leading_int(&t.file_name().to_string_lossy()) else { continue };
            if tid == pid {
                continue;
            }
            task(&proc_root.join(tid.to_string()), pid, Some(tid), wanted, &mut found);
        }
    }
    for list in found.values_mut() {
        list.reverse();
    }
    found
}

/// ss's `user_ent_hash_build_task()`: the sockets among `dir`'s descriptors.
fn task(dir: &Path, pid: i32, tid: Option<i32>, wanted: &FxHashSet<u32>, found: &mut HashMap<u32, Vec<Owner>>) {
    let Ok(fds) = std::fs::read_dir(dir.join("fd")) else { return };
    let mut comm: Option<Vec<u8>> = None;
    for fd_entry in fds.flatten() {
        let Some(fd) = leading_int(&fd_entry.file_name().to_string_lossy()) else { continue };
        let Ok(link) = std::fs::read_link(fd_entry.path()) else { continue };
        let Some(inode) = socket_inode(&link.to_string_lossy()) else { continue };
        if !wanted.contains(&inode) {
            continue;
        }
        // Its bytes, UTF-8 or not.
        let comm = comm.get_or_insert_with(|| {
            std::fs::read(dir.join("stat")).ok().and_then(|t| stat_comm(&t).map(<[u8]>::to_vec)).unwrap_or_default()
        });
        found.entry(inode).or_default().push(Owner { comm: comm.clone(), pid, tid, fd });
    }
}

/// `-T`: [`owners_in`] of /proc with every thread listed (`tid=`), as ss lists them.
#[must_use]
pub fn owners_with_threads(wanted: &FxHashSet<u32>) -> HashMap<u32, Vec<Owner>> {
    walk(Path::new("/proc"), wanted, true)
}

/// [`owners_in`] of /proc.
#[must_use]
pub fn owners(wanted: &FxHashSet<u32>) -> HashMap<u32, Vec<Owner>> {
    owners_in(Path::new("/proc"), wanted)
}

/// [`owners`] from the agent's owners iterator instead of /proc: the records come in
/// pid then descriptor order (the order of a /proc walk), and each inode's list is
/// reversed as ss's hash chain reverses it.
#[must_use]
pub fn from_records(records: &crate::model::owner::OwnerRecords, wanted: &FxHashSet<u32>) -> HashMap<u32, Vec<Owner>> {
    let mut found: HashMap<u32, Vec<Owner>> = HashMap::new();
    for (inode, pid, fd, r) in records.newest_first(wanted) {
        found.entry(inode).or_default().push(Owner { comm: r.name_bytes().to_vec(), pid, tid: None, fd });
    }
    found
}

/// sscanf's `%d` of a directory name: its leading decimal digits (ss's `%d%*c`).
fn leading_int(s: &str) -> Option<i32> {
    let end = s.bytes().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    s.get(..end).and_then(|d| d.parse().ok())
}

/// `socket:[12345]` -> 12345.
fn socket_inode(link: &str) -> Option<u32> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// ss reads `%*d (%[^)])`: the name up to the first `)`.
fn stat_comm(stat: &[u8]) -> Option<&[u8]> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let rest = &stat[open + 1..];
    let comm = &rest[..rest.iter().position(|&b| b == b')').unwrap_or(rest.len())];
    (!comm.is_empty()).then_some(comm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::system::Users;
    use crate::render::format::{RecordUsers, users_text, users_text_for};

    /// What `-p` prints for each wanted inode from the records, written as rows are.
    fn users_texts(
        records: &crate::model::owner::OwnerRecords,
        wanted: &FxHashSet<u32>,
        compat: SsCompat,
    ) -> HashMap<u32, String> {
        let users = RecordUsers::new(records.clone(), Some(wanted), compat);
        wanted
            .iter()
            .filter(|&&i| users.holds(i))
            .map(|&i| {
                let mut out = String::new();
                users.push(&mut out, i);
                // The length counted when the records were read is the text's.
                assert_eq!(users.len(i), Some(out.len()), "{out}");
                (i, out)
            })
            .collect()
    }
    use crate::render::style::SsCompat;
    use std::os::unix::fs::symlink;

    #[test]
    fn walks_a_fake_proc_tree_in_ss_order() {
        let root = std::env::temp_dir().join(format!("sockstat-procs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mk = |pid: &str, comm: &str, fds: &[(&str, &str)]| {
            let d = root.join(pid);
            std::fs::create_dir_all(d.join("fd")).expect("mkdir");
            std::fs::write(d.join("stat"), format!("{pid} ({comm}) S 1 2 3")).expect("stat");
            for (fd, target) in fds {
                symlink(target, d.join("fd").join(fd)).expect("symlink");
            }
        };
        mk("10", "nginx", &[("3", "socket:[100]"), ("4", "socket:[100]"), ("5", "/dev/null"), ("6", "socket:[999]")]);
        mk("20", "a (b", &[("7", "socket:[100]"), ("8", "socket:[200]")]);
        std::fs::create_dir_all(root.join("self")).expect("non-pid dir");
        let wanted: FxHashSet<u32> = [100, 200, 300].into_iter().collect();
        let found = owners_in(&root, &wanted);
        assert!(!found.contains_key(&999) && !found.contains_key(&300));
        let text = users_text(&found[&200]);
        assert_eq!(text, r#"("a (b",pid=20,fd=8)"#);
        // Reverse discovery order; read_dir order is the file system's, so only check
        // that every owner is there and that it is the reverse of a discovery.
        let list = &found[&100];
        assert_eq!(list.len(), 3);
        let mut sorted = list.clone();
        sorted.sort_by_key(|o| (o.pid, o.fd));
        assert_eq!(sorted.iter().map(|o| (o.pid, o.fd)).collect::<Vec<_>>(), [(10, 3), (10, 4), (20, 7)]);
        // -T: pid 10 has a second task, 11, whose own stat names it.
        std::fs::create_dir_all(root.join("10/task/10")).expect("task dir");
        std::fs::create_dir_all(root.join("10/task/11")).expect("task dir");
        mk("11", "worker", &[("3", "socket:[100]")]);
        let found = walk(&root, &[200].into_iter().collect(), true);
        assert_eq!(users_text(&found[&200]), r#"("a (b",pid=20,tid=20,fd=8)"#);
        let found = walk(&root, &[100].into_iter().collect(), true);
        let mut got: Vec<_> = found[&100].iter().map(|o| (o.comm.as_slice(), o.pid, o.tid, o.fd)).collect();
        got.sort_by_key(|&(_, p, t, f)| (p, t, f));
        assert_eq!(
            got,
            [
                (&b"nginx"[..], 10, Some(10), 3),
                (b"nginx", 10, Some(10), 4),
                (b"worker", 10, Some(11), 3),
                (b"worker", 11, Some(11), 3),
                (b"a (b", 20, Some(20), 7)
            ]
        );
        // A name that is not UTF-8 is kept as its bytes.
        mk("30", "placeholder", &[("3", "socket:[300]")]);
        std::fs::write(root.join("30/stat"), b"30 (x\xffy) S 1 2 3").expect("stat");
        let found = owners_in(&root, &[300].into_iter().collect());
        assert_eq!(found[&300][0].comm, b"x\xffy");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn agent_records_in_ss_order() {
        let e = |pid: u32, fd: u32, comm: &[u8], inode: u64| {
            let mut c = [0u8; 16];
            c[..comm.len()].copy_from_slice(comm);
            sockstat_ebpf::OwnerRecord { pid, fd, inode, cookie: 0, comm: c }
        };
        let records = crate::model::owner::OwnerRecords::from_records(&[
            e(10, 3, b"nginx", 100),
            e(10, 4, b"nginx", 100),
            e(10, 6, b"nginx", 999),
            e(20, 7, b"a (b", 100),
            e(20, 8, b"a (b\x01", 200),
            e(21, 3, b"big", 1 << 32),
        ]);
        let wanted: FxHashSet<u32> = [100, 200, 300, 0].into_iter().collect();
        let found = from_records(&records, &wanted);
        assert!(!found.contains_key(&999) && !found.contains_key(&300) && !found.contains_key(&0));
        assert_eq!(users_text(&found[&100]), r#"("a (b",pid=20,fd=7),("nginx",pid=10,fd=4),("nginx",pid=10,fd=3)"#);
        assert_eq!(users_text(&found[&200]), "(\"a (b\u{1}\",pid=20,fd=8)");
        // The texts made straight from the records are the lists' texts, in both ss
        // versions' spelling.
        for compat in [SsCompat::V6_1, SsCompat::V7_1] {
            let texts = users_texts(&records, &wanted, compat);
            assert_eq!(texts.len(), found.len());
            for (inode, list) in &found {
                assert_eq!(texts[inode], users_text_for(list, compat), "inode {inode}");
            }
        }
        assert_eq!(users_texts(&records, &wanted, SsCompat::V7_1)[&200], r#"("a (b.",pid=20,fd=8)"#);
        // A name that is not UTF-8: ss 7.1 escapes each byte, one `?` for 0xff.
        let odd = crate::model::owner::OwnerRecords::from_records(&[e(30, 4, b"x\xffy", 400)]);
        let wanted: FxHashSet<u32> = [400].into_iter().collect();
        assert_eq!(users_texts(&odd, &wanted, SsCompat::V7_1)[&400], r#"("x?y",pid=30,fd=4)"#);
        assert_eq!(users_texts(&odd, &wanted, SsCompat::V6_1)[&400], "(\"x\u{fffd}y\",pid=30,fd=4)");
    }

    #[test]
    fn parsers() {
        assert_eq!(socket_inode("socket:[42]"), Some(42));
        assert_eq!(socket_inode("pipe:[42]"), None);
        assert_eq!(leading_int("123"), Some(123));
        assert_eq!(leading_int("self"), None);
        assert_eq!(stat_comm(b"1 (sys)temd) S"), Some(&b"sys"[..]));
    }
}
