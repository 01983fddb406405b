//! Owners between queries: the socket descriptors of every process, kept from one `-p`
//! query to the next, so that a query walks again only the processes that may have
//! changed (see docs/agent.md, "Owners between queries").
//!
//! A process is walked again when the task listing shows it new (a pid and start time not
//! kept), with another descriptor table, or exiting; or when its table was noted as
//! changed in place since the last query (the tracepoint notes). A rename changes only
//! the kept name. Everything is walked when nothing is kept yet, when notes were missed,
//! or when more processes changed than walking them one by one is worth.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashSet;
use sockstat_ebpf::{OwnerRecord, TASK_COMPAT, TASK_EXITING, TASK_IO_URING, TASK_THREAD, TaskRecord};

use crate::{
    bpf::{
        loader::EbpfError,
        owners::{Changes, OwnersKernel},
    },
    model::owner::OwnerRecords,
};

/// More changed processes than this and a whole walk is cheaper (each process's walk is
/// a few system calls of its own).
const WALK_ONE_BY_ONE_MAX: usize = 256;

/// What the kernel side gives ([`OwnersKernel`]; a fake in tests).
pub(super) trait Source {
    /// Whether the listing and the notes are there; without them every query walks all.
    fn keeps_track(&self) -> bool;
    fn walk_all(&self) -> Result<Vec<u8>, EbpfError>;
    fn walk_process(&self, tgid: u32) -> Result<Vec<u8>, EbpfError>;
    fn tasks(&self) -> Result<Vec<u8>, EbpfError>;
    fn take_changes(&mut self) -> Result<Changes, EbpfError>;
}

impl Source for OwnersKernel {
    fn keeps_track(&self) -> bool {
        OwnersKernel::keeps_track(self)
    }
    fn walk_all(&self) -> Result<Vec<u8>, EbpfError> {
        OwnersKernel::walk_all(self)
    }
    fn walk_process(&self, tgid: u32) -> Result<Vec<u8>, EbpfError> {
        OwnersKernel::walk_process(self, tgid)
    }
    fn tasks(&self) -> Result<Vec<u8>, EbpfError> {
        OwnersKernel::tasks(self)
    }
    fn take_changes(&mut self) -> Result<Changes, EbpfError> {
        OwnersKernel::take_changes(self)
    }
}

/// How the owners of queries were found, since the agent started (`sockstat status`).
#[derive(Debug, Default)]
pub struct WalkCounts {
    /// Walks of every process.
    pub whole: AtomicU64,
    /// Walks of one process.
    pub processes: AtomicU64,
    /// Answers from what was kept, with or without walks of single processes.
    pub kept: AtomicU64,
}

/// One socket descriptor kept: 16 bytes (the socket's inode as ss prints it, a u32; a
/// record with a larger one is not kept, as no row could show it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Descriptor {
    fd: u32,
    inode: u32,
    cookie: u64,
}

#[derive(Debug, PartialEq, Eq)]
struct Process {
    start: u64,
    /// The descriptor table's address, [`UNKNOWN_TABLE`] for a process the listing did
    /// not show (it started after the listing).
    files: u64,
    /// Walked again at every query: exiting (its last descriptors close after the kernel
    /// marked it so), using io_uring (whose rings change descriptors unseen), or started
    /// after the listing.
    volatile: bool,
    comm: [u8; 16],
    sockets: Vec<Descriptor>,
}

fn volatile(t: &TaskRecord) -> bool {
    t.flags & (TASK_EXITING | TASK_IO_URING | TASK_COMPAT) != 0
}

const UNKNOWN_TABLE: u64 = u64::MAX;

pub(super) struct Owners<S> {
    source: S,
    /// Whether processes are kept between queries (see [`Owners::new`]).
    keeps: bool,
    /// By pid, in the walk's order; `None` until a whole walk, and after any error.
    kept: Option<Kept>,
    counts: Arc<WalkCounts>,
}

struct Kept {
    /// The notes' missed count when this was walked whole.
    missed: u64,
    processes: BTreeMap<u32, Process>,
}

impl<S: Source> Owners<S> {
    /// `keep`: whether the agent may keep processes between queries at all. A walk of one
    /// process names it by its pid in the agent's pid namespace, while the records and
    /// the listing carry pids of the initial one: only an agent in the initial pid
    /// namespace keeps processes.
    pub(super) fn new(source: S, keep: bool) -> Self {
        let keeps = keep && source.keeps_track();
        Owners { source, keeps, kept: None, counts: Arc::default() }
    }

    pub(super) fn keeps(&self) -> bool {
        self.keeps
    }

    /// Drops what is kept: the next query walks every process.
    pub(super) fn forget(&mut self) {
        self.kept = None;
    }

    pub(super) fn counts(&self) -> Arc<WalkCounts> {
        Arc::clone(&self.counts)
    }

    /// Every process's socket descriptors now, from a whole walk: the answer of an agent
    /// that keeps no processes (one that keeps them answers with [`Owners::refresh_kept`]
    /// and [`Owners::write_kept`]).
    ///
    /// # Errors
    /// The walk could not be read.
    pub(super) fn records(&mut self) -> Result<OwnerRecords, EbpfError> {
        self.counts.whole.fetch_add(1, Ordering::Relaxed);
        OwnerRecords::new(self.source.walk_all()?).map_err(|e| EbpfError::Iter { source: std::io::Error::other(e) })
    }

    fn refresh(&mut self) -> Result<(), EbpfError> {
        // The notes first: a change noted after this take is for the next query; one
        // noted before it is seen by the walks below, which come after the change.
        let changes = self.source.take_changes()?;
        let (listed, rings) = tasks(&self.source.tasks()?)?;
        let to_walk = match &mut self.kept {
            Some(kept) if kept.missed == changes.missed => {
                kept.processes.retain(|tgid, p| listed.get(tgid).is_some_and(|t| t.start == p.start));
                let mut to_walk = Vec::new();
                for (&tgid, t) in &listed {
                    match kept.processes.get_mut(&tgid) {
                        // Unchanged; or without a table before and now (a zombie): no
                        // descriptors, nothing to walk.
                        Some(p)
                            if p.files == t.files
                                && (t.files == 0 || !p.volatile && !volatile(t))
                                && !changes.tables.contains(&t.files)
                                && !rings.contains(&t.files) =>
                        {
                            p.comm = t.comm;
                        }
                        _ => to_walk.push(tgid),
                    }
                }
                Some(to_walk).filter(|w| w.len() <= WALK_ONE_BY_ONE_MAX)
            }
            _ => None,
        };
        let Some(to_walk) = to_walk else {
            self.kept = Some(Kept { missed: changes.missed, processes: self.walk_whole(&listed)? });
            return Ok(());
        };
        self.counts.kept.fetch_add(1, Ordering::Relaxed);
        for tgid in to_walk {
            let t = &listed[&tgid];
            // A process whose table is gone (it exited) has no descriptors to walk.
            let sockets = if t.files == 0 {
                Vec::new()
            } else {
                self.counts.processes.fetch_add(1, Ordering::Relaxed);
                descriptors(self.source.walk_process(tgid)?, Some(tgid))?
                    .remove(&tgid)
                    .map(|(_, s)| s)
                    .unwrap_or_default()
            };
            let process = Process { start: t.start, files: t.files, volatile: volatile(t), comm: t.comm, sockets };
            if let Some(kept) = self.kept.as_mut() {
                kept.processes.insert(tgid, process);
            }
        }
        Ok(())
    }

    fn walk_whole(&mut self, listed: &BTreeMap<u32, TaskRecord>) -> Result<BTreeMap<u32, Process>, EbpfError> {
        self.counts.whole.fetch_add(1, Ordering::Relaxed);
        let mut found = descriptors(self.source.walk_all()?, None)?;
        let mut processes: BTreeMap<u32, Process> = listed
            .iter()
            .map(|(&tgid, t)| {
                let sockets = found.remove(&tgid).map(|(_, s)| s).unwrap_or_default();
                (tgid, Process { start: t.start, files: t.files, volatile: volatile(t), comm: t.comm, sockets })
            })
            .collect();
        // Started after the listing: kept under an unknown table, so the next query walks
        // it again.
        for (tgid, (comm, sockets)) in found {
            processes.insert(tgid, Process { start: 0, files: UNKNOWN_TABLE, volatile: true, comm, sockets });
        }
        Ok(processes)
    }

    /// With processes kept: brings them up to date, and gives the length of their
    /// records, which [`Owners::write_kept`] then writes (into the answer's frame, with no
    /// copy between). `None` when processes are not kept: [`Owners::records`] walks.
    ///
    /// # Errors
    /// A walk, the listing or the notes could not be read; nothing kept is trusted after.
    pub(super) fn refresh_kept(&mut self) -> Result<Option<usize>, EbpfError> {
        if !self.keeps {
            return Ok(None);
        }
        let result = self.refresh();
        if result.is_err() {
            self.kept = None;
        }
        result?;
        let records = self.kept.as_ref().map_or(0, |k| k.processes.values().map(|p| p.sockets.len()).sum::<usize>());
        Ok(Some(records * OwnerRecord::SIZE))
    }

    /// Appends the kept descriptors as a whole walk's records: pid, then descriptor order.
    pub(super) fn write_kept(&self, out: &mut Vec<u8>) {
        let Some(kept) = &self.kept else { return };
        for (&tgid, p) in &kept.processes {
            for d in &p.sockets {
                let r = OwnerRecord { pid: tgid, fd: d.fd, inode: u64::from(d.inode), cookie: d.cookie, comm: p.comm };
                crate::model::owner::put_record(out, &r);
            }
        }
    }
}

/// The listing's records by pid: the leaders', with the io_uring flag of any of their
/// threads; and the tables of every task that has used io_uring (a process sharing
/// such a table with another, `CLONE_FILES`, is walked at every query too).
fn tasks(bytes: &[u8]) -> Result<(BTreeMap<u32, TaskRecord>, FxHashSet<u64>), EbpfError> {
    if !bytes.len().is_multiple_of(TaskRecord::SIZE) {
        return Err(EbpfError::Iter {
            source: std::io::Error::other(format!(
                "task listing: {} bytes is not a whole number of {}-byte records (a torn record at byte {})",
                bytes.len(),
                TaskRecord::SIZE,
                bytes.len() - bytes.len() % TaskRecord::SIZE
            )),
        });
    }
    let u32_at = |r: &[u8], o: usize| u32::from_ne_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
    let u64_at = |r: &[u8], o: usize| u64::from(u32_at(r, o)) | (u64::from(u32_at(r, o + 4)) << 32);
    let mut rings = Vec::new();
    let mut ring_tables = FxHashSet::default();
    let mut leaders: BTreeMap<u32, TaskRecord> = bytes
        .chunks_exact(TaskRecord::SIZE)
        .map(|r| {
            use std::mem::offset_of;
            let mut comm = [0u8; 16];
            let at = offset_of!(TaskRecord, comm);
            comm.copy_from_slice(&r[at..at + 16]);
            let t = TaskRecord {
                tgid: u32_at(r, offset_of!(TaskRecord, tgid)),
                flags: u32_at(r, offset_of!(TaskRecord, flags)),
                start: u64_at(r, offset_of!(TaskRecord, start)),
                files: u64_at(r, offset_of!(TaskRecord, files)),
                comm,
            };
            (t.tgid, t)
        })
        .filter(|(tgid, t)| {
            if t.flags & TASK_IO_URING != 0 && t.files != 0 {
                ring_tables.insert(t.files);
            }
            if t.flags & TASK_THREAD != 0 {
                rings.push(*tgid);
            }
            t.flags & TASK_THREAD == 0
        })
        .collect();
    for tgid in rings {
        if let Some(t) = leaders.get_mut(&tgid) {
            t.flags |= TASK_IO_URING;
        }
    }
    Ok((leaders, ring_tables))
}

/// One process's name and descriptors as a walk found them.
type Walked = ([u8; 16], Vec<Descriptor>);

/// A walk's records by pid: each process's name (as the walk read it) and descriptors;
/// with `only`, that process's alone.
fn descriptors(bytes: Vec<u8>, only: Option<u32>) -> Result<BTreeMap<u32, Walked>, EbpfError> {
    let records = OwnerRecords::new(bytes).map_err(|e| EbpfError::Iter { source: std::io::Error::other(e) })?;
    let mut found: BTreeMap<u32, Walked> = BTreeMap::new();
    for r in records.iter() {
        if only.is_some_and(|t| t != r.pid()) {
            continue;
        }
        let Ok(inode) = u32::try_from(r.inode()) else { continue };
        let entry = found.entry(r.pid()).or_insert_with(|| (r.comm(), Vec::new()));
        entry.1.push(Descriptor { fd: r.fd(), inode, cookie: r.cookie() });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashSet;
    use std::cell::RefCell;

    /// One process: start, table, flags, comm, (descriptor, inode)s.
    type FakeProcess = (u64, u64, u32, [u8; 16], Vec<(u32, u64)>);

    /// A kernel of processes by tgid, whose walks count themselves.
    #[derive(Default)]
    struct Fake {
        procs: BTreeMap<u32, FakeProcess>,
        /// Processes one of whose other threads has used io_uring.
        rings: Vec<u32>,
        notes: FxHashSet<u64>,
        missed: u64,
        whole: RefCell<u32>,
        single: RefCell<Vec<u32>>,
    }

    fn comm(s: &str) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[..s.len()].copy_from_slice(s.as_bytes());
        c
    }

    impl Fake {
        fn records(&self, only: Option<u32>) -> Vec<u8> {
            let mut out = Vec::new();
            for (&tgid, (_, files, _, c, fds)) in &self.procs {
                if only.is_some_and(|o| o != tgid) || *files == 0 {
                    continue;
                }
                let records: Vec<_> = fds
                    .iter()
                    .map(|&(fd, inode)| OwnerRecord { pid: tgid, fd, inode, cookie: inode + 1000, comm: *c })
                    .collect();
                out.extend_from_slice(OwnerRecords::from_records(&records).as_bytes());
            }
            out
        }
    }

    impl Source for Fake {
        fn keeps_track(&self) -> bool {
            true
        }
        fn walk_all(&self) -> Result<Vec<u8>, EbpfError> {
            *self.whole.borrow_mut() += 1;
            Ok(self.records(None))
        }
        fn walk_process(&self, tgid: u32) -> Result<Vec<u8>, EbpfError> {
            self.single.borrow_mut().push(tgid);
            Ok(self.records(Some(tgid)))
        }
        fn tasks(&self) -> Result<Vec<u8>, EbpfError> {
            let mut out = Vec::new();
            for (&tgid, &(start, files, flags, c, _)) in &self.procs {
                let t = TaskRecord { tgid, flags, start, files, comm: c };
                // SAFETY: TaskRecord is repr(C) of integers and bytes without padding.
                let bytes =
                    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(&t).cast::<u8>(), TaskRecord::SIZE) };
                out.extend_from_slice(bytes);
            }
            for &tgid in &self.rings {
                let files = self.procs.get(&tgid).map_or(0, |p| p.1);
                let t = TaskRecord { tgid, flags: TASK_THREAD | TASK_IO_URING, start: 9, files, comm: comm("t") };
                // SAFETY: as above.
                let bytes =
                    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(&t).cast::<u8>(), TaskRecord::SIZE) };
                out.extend_from_slice(bytes);
            }
            Ok(out)
        }
        fn take_changes(&mut self) -> Result<Changes, EbpfError> {
            Ok(Changes { missed: self.missed, tables: std::mem::take(&mut self.notes) })
        }
    }

    /// What a whole walk of `fake` gives, without counting it.
    fn truth(fake: &Fake) -> OwnerRecords {
        OwnerRecords::new(fake.records(None)).expect("whole records")
    }

    /// What the agent answers: the kept processes' records, or a whole walk's.
    fn answer(owners: &mut Owners<Fake>) -> OwnerRecords {
        match owners.refresh_kept().expect("kept processes") {
            Some(len) => {
                let mut bytes = Vec::new();
                owners.write_kept(&mut bytes);
                assert_eq!(bytes.len(), len, "the length said before writing");
                OwnerRecords::new(bytes).expect("whole records")
            }
            None => owners.records().expect("records"),
        }
    }

    fn check(owners: &mut Owners<Fake>, whole: u32, single: &[u32]) {
        let got = answer(owners);
        assert_eq!(got, truth(&owners.source));
        assert_eq!(*owners.source.whole.borrow(), whole, "whole walks");
        assert_eq!(owners.source.single.borrow_mut().drain(..).collect::<Vec<_>>(), single, "walks of one process");
    }

    #[test]
    fn walks_again_only_what_changed() {
        let mut fake = Fake::default();
        fake.procs.insert(10, (1, 0xa0, 0, comm("nginx"), vec![(3, 100), (4, 101)]));
        fake.procs.insert(20, (2, 0xb0, 0, comm("sshd"), vec![(5, 200)]));
        fake.procs.insert(30, (3, 0xc0, 0, comm("bash"), vec![]));
        let mut owners = Owners::new(fake, true);
        check(&mut owners, 1, &[]);
        // Nothing changed: nothing walked.
        check(&mut owners, 1, &[]);
        // A descriptor closed in place, noted.
        owners.source.procs.get_mut(&10).expect("10").4.pop();
        owners.source.notes.insert(0xa0);
        check(&mut owners, 1, &[10]);
        // A rename: no walk, the new name.
        owners.source.procs.get_mut(&20).expect("20").3 = comm("sshd: user");
        check(&mut owners, 1, &[]);
        // A fork (a new pid) and an exit (a pid gone).
        owners.source.procs.insert(40, (4, 0xd0, 0, comm("nginx"), vec![(3, 100)]));
        owners.source.procs.remove(&20);
        check(&mut owners, 1, &[40]);
        // A pid reused by a process with the same table address: its start time differs.
        owners.source.procs.insert(40, (5, 0xd0, 0, comm("other"), vec![(7, 300)]));
        check(&mut owners, 1, &[40]);
        // A table shared by two processes (clone with CLONE_FILES): a note on it walks both.
        owners.source.procs.insert(50, (6, 0xd0, 0, comm("other"), vec![(7, 300)]));
        check(&mut owners, 1, &[50]);
        for p in [40, 50] {
            owners.source.procs.get_mut(&p).expect("sharer").4.push((8, 301));
        }
        owners.source.notes.insert(0xd0);
        check(&mut owners, 1, &[40, 50]);
        // Exiting: walked at every query until it is gone; once its table is gone, not
        // walked at all.
        owners.source.procs.get_mut(&10).expect("10").2 = TASK_EXITING;
        check(&mut owners, 1, &[10]);
        check(&mut owners, 1, &[10]);
        owners.source.procs.get_mut(&10).expect("10").1 = 0;
        check(&mut owners, 1, &[]);
        owners.source.procs.remove(&10);
        check(&mut owners, 1, &[]);
        // A thread of 30 used io_uring: 30 is walked at every query, and once more after.
        owners.source.rings.push(30);
        check(&mut owners, 1, &[30]);
        check(&mut owners, 1, &[30]);
        owners.source.rings.clear();
        check(&mut owners, 1, &[30]);
        check(&mut owners, 1, &[]);
        // An unshared table (another address): walked.
        owners.source.procs.get_mut(&30).expect("30").1 = 0xe0;
        check(&mut owners, 1, &[30]);
        // Notes that did not fit: everything walked.
        owners.source.missed = 1;
        check(&mut owners, 2, &[]);
        check(&mut owners, 2, &[]);
    }

    #[test]
    fn io_uring_and_32_bit_processes_are_walked_at_every_query() {
        let mut fake = Fake::default();
        fake.procs.insert(10, (1, 0xa0, 0, comm("ring"), vec![(3, 100)]));
        fake.procs.insert(11, (2, 0xa0, 0, comm("sharer"), vec![(3, 100)]));
        fake.procs.insert(20, (3, 0xb0, TASK_COMPAT, comm("old"), vec![(4, 200)]));
        fake.procs.insert(30, (4, 0xc0, 0, comm("quiet"), vec![(5, 300)]));
        let mut owners = Owners::new(fake, true);
        check(&mut owners, 1, &[]);
        check(&mut owners, 1, &[20]);
        // A thread of 10 used io_uring: 10 and 11, which shares its table, are walked.
        owners.source.rings.push(10);
        check(&mut owners, 1, &[10, 11, 20]);
        check(&mut owners, 1, &[10, 11, 20]);
    }

    #[test]
    fn many_changes_walk_everything() {
        let mut fake = Fake::default();
        for p in 0..(WALK_ONE_BY_ONE_MAX as u32 + 10) {
            fake.procs.insert(100 + p, (u64::from(p), 0x1000 + u64::from(p), 0, comm("w"), vec![(3, u64::from(p))]));
        }
        let mut owners = Owners::new(fake, true);
        check(&mut owners, 1, &[]);
        let tables: Vec<u64> = owners.source.procs.values().map(|p| p.1).collect();
        owners.source.notes.extend(tables);
        check(&mut owners, 2, &[]);
    }

    #[test]
    fn without_keeping_every_query_walks_everything() {
        let mut fake = Fake::default();
        fake.procs.insert(10, (1, 0xa0, 0, comm("nginx"), vec![(3, 100)]));
        let mut owners = Owners::new(fake, false);
        check(&mut owners, 1, &[]);
        check(&mut owners, 2, &[]);
    }

    #[test]
    fn a_torn_listing_is_an_error_that_names_the_offset() {
        let err = tasks(&[0u8; TaskRecord::SIZE + 3]).map(|_| ()).expect_err("torn");
        assert!(err.to_string().contains("reading the owners iterator"), "{err}");
        let source = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
        assert!(source.contains("at byte 40"), "{source}");
    }
}
