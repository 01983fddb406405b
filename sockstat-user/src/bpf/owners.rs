//! The owners programs seen from userspace: a walk of every process's socket descriptors
//! or of one process's, the task listing, and the change notes the tracepoint programs
//! leave between queries (see sockstat-ebpf's owners.rs and docs/agent.md, "Owners between
//! queries"). What to do with them is `live::owners`'s business.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use aya::maps::{Array, HashMap, MapData, PerCpuArray};
use rustc_hash::FxHashSet;

use crate::bpf::loader::{EbpfError, Tracer};

/// The loaded owners programs and the maps of their change notes, detached from the rest
/// of the programs so that a walk can run on any thread.
pub struct OwnersKernel {
    /// The iterator programs for even and odd descriptors (`OWNERS_PROGRAMS`).
    walkers: [OwnedFd; 2],
    /// The task listing; `None` where it did not load (every query walks everything).
    tasks: Option<OwnedFd>,
    /// The notes; `None` where the programs that make them are not attached.
    notes: Option<Notes>,
}

struct Notes {
    changes: HashMap<MapData, u64, u8>,
    missed: PerCpuArray<MapData, u64>,
    epoch: Array<MapData, u64>,
}

/// What the notes said since they were last taken.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// The sum of notes that did not fit (or descriptors installed in another process):
    /// when it moves between two takes, every process may have changed.
    pub missed: u64,
    /// The descriptor tables (`struct files_struct` addresses) noted.
    pub tables: FxHashSet<u64>,
}

impl OwnersKernel {
    /// The owners programs taken from `tracer` (see [`Tracer::take_owners_programs`]).
    ///
    /// # Errors
    /// The iterators did not load, or their file descriptors could not be copied.
    pub fn take_from(tracer: &mut Tracer) -> Result<Self, EbpfError> {
        let (walkers, tasks, notes) = tracer.take_owners_programs()?;
        Ok(Self::new(walkers, tasks, notes))
    }

    fn new(
        walkers: [OwnedFd; 2],
        tasks: Option<OwnedFd>,
        notes: Option<(aya::maps::Map, aya::maps::Map, aya::maps::Map)>,
    ) -> Self {
        let notes = notes.and_then(|(changes, missed, epoch)| {
            Some(Notes {
                changes: HashMap::try_from(changes).ok()?,
                missed: PerCpuArray::try_from(missed).ok()?,
                epoch: Array::try_from(epoch).ok()?,
            })
        });
        // A walk of one process needs the iterator's task filter (Linux 6.1); an older
        // kernel refuses the larger link info: then every query walks everything.
        let filter = iterator(walkers[0].as_fd(), Some(std::process::id())).map(drop);
        if let Err(e) = &filter {
            tracing::warn!(error = %e, "no walks of one process (Linux 6.1's iterator task filter): each -p walks every process");
        }
        let tasks = tasks.filter(|_| notes.is_some() && filter.is_ok());
        OwnersKernel { walkers, tasks, notes }
    }

    /// Whether the agent can keep owners between queries: the task listing loaded and
    /// the notes are being made.
    #[must_use]
    pub fn keeps_track(&self) -> bool {
        self.tasks.is_some() && self.notes.is_some()
    }

    /// Every process's socket descriptors: `OwnerRecord`s in (pid, descriptor) order.
    ///
    /// # Errors
    /// Making or reading an iterator failed.
    pub fn walk_all(&self) -> Result<Vec<u8>, EbpfError> {
        let files = self.walkers.iter().map(|p| iterator(p.as_fd(), None)).collect::<Result<Vec<_>, _>>()?;
        read_owners(files)
    }

    /// One process's socket descriptors (`tgid` as the agent's pid namespace numbers it):
    /// the same records, in descriptor order; none once it is gone.
    ///
    /// # Errors
    /// As [`OwnersKernel::walk_all`].
    pub fn walk_process(&self, tgid: u32) -> Result<Vec<u8>, EbpfError> {
        let walks = self
            .walkers
            .iter()
            .map(|p| iterator(p.as_fd(), Some(tgid)).and_then(read_walk))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::model::owner::merge_walks(walks))
    }

    /// Every process: `TaskRecord`s in pid order.
    ///
    /// # Errors
    /// Without the listing, or making or reading its iterator failed.
    pub fn tasks(&self) -> Result<Vec<u8>, EbpfError> {
        let program = self.tasks.as_ref().ok_or(EbpfError::MissingProgram(sockstat_ebpf::OWNER_TASKS_PROGRAM))?;
        read_walk(iterator(program.as_fd(), None)?)
    }

    /// Takes the notes made since the last take: the tables noted are removed from the
    /// map (a note made after its table was read stays for the next take; one made
    /// between reading and removing it is for a change that the walk after this take
    /// sees, since notes are made once the change is in the table).
    ///
    /// # Errors
    /// Without notes, or reading their maps failed.
    pub fn take_changes(&mut self) -> Result<Changes, EbpfError> {
        let notes = self.notes.as_mut().ok_or(EbpfError::MissingMap(sockstat_ebpf::OWNER_CHANGES_MAP))?;
        let map_error = |map, e: aya::maps::MapError| EbpfError::Map { map, source: Box::new(e) };
        // Read first: a count that moves after this read is seen by the next take.
        let missed = notes
            .missed
            .get(&0, 0)
            .map_err(|e| map_error(sockstat_ebpf::OWNER_MISSED_MAP, e))?
            .iter()
            .copied()
            .fold(0u64, u64::wrapping_add);
        let tables: FxHashSet<u64> = notes
            .changes
            .keys()
            .collect::<Result<_, _>>()
            .map_err(|e| map_error(sockstat_ebpf::OWNER_CHANGES_MAP, e))?;
        for table in &tables {
            match notes.changes.remove(table) {
                Ok(()) | Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_error(sockstat_ebpf::OWNER_CHANGES_MAP, e)),
            }
        }
        // The programs remember, per CPU, the tables they noted since the count last
        // moved, and skip noting those again. Moved after the removal: a call skipped
        // before this point made its change before it, so before the walks this take
        // leads to; one after it finds the count moved and notes its table again.
        let epoch = notes.epoch.get(&0, 0).map_err(|e| map_error(sockstat_ebpf::OWNER_EPOCH_MAP, e))?;
        notes.epoch.set(0, epoch.wrapping_add(1), 0).map_err(|e| map_error(sockstat_ebpf::OWNER_EPOCH_MAP, e))?;
        Ok(Changes { missed, tables })
    }
}

/// A fresh walk of the iterator program `program`, over every task, or over the threads
/// of process `tgid` only (`bpf_iter_link_info.task.pid`, Linux 6.1): a link made with
/// BPF_LINK_CREATE, then BPF_ITER_CREATE on it. The file reads the walk; the link goes
/// with it.
fn iterator(program: std::os::fd::BorrowedFd<'_>, tgid: Option<u32>) -> Result<std::fs::File, EbpfError> {
    /// enum bpf_cmd and enum bpf_attach_type (include/uapi/linux/bpf.h).
    const BPF_LINK_CREATE: libc::c_int = 28;
    const BPF_ITER_CREATE: libc::c_int = 33;
    const BPF_TRACE_ITER: u32 = 28;
    // union bpf_iter_link_info: for tasks, { u32 tid; u32 pid; u32 pid_fd; } in a 16-byte
    // union (its largest member is the cgroup one).
    #[repr(C, align(8))]
    struct IterInfo([u32; 4]);
    let info = IterInfo([0, tgid.unwrap_or(0), 0, 0]);
    // link_create: prog_fd, target_fd, attach_type, flags, then for iterators
    // iter_info (u64 pointer) and iter_info_len (u32).
    let mut attr = [0u8; 64];
    attr[0..4].copy_from_slice(&(program.as_raw_fd() as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&BPF_TRACE_ITER.to_ne_bytes());
    if tgid.is_some() {
        attr[16..24].copy_from_slice(&(std::ptr::from_ref(&info) as u64).to_ne_bytes());
        attr[24..28].copy_from_slice(&(std::mem::size_of::<IterInfo>() as u32).to_ne_bytes());
    }
    let os_err = |what: &str| EbpfError::Iter {
        source: std::io::Error::other(format!("{what}: {}", std::io::Error::last_os_error())),
    };
    // SAFETY: BPF_LINK_CREATE reads `attr` (size passed) and the iter_info it points to,
    // which outlives the call.
    let link = unsafe { libc::syscall(libc::SYS_bpf, BPF_LINK_CREATE, attr.as_mut_ptr(), attr.len()) };
    if link < 0 {
        return Err(os_err("creating an iterator link"));
    }
    // SAFETY: a new file descriptor the kernel returned, owned by nothing else.
    let link = unsafe { OwnedFd::from_raw_fd(link as i32) };
    let mut attr = [0u8; 16];
    attr[0..4].copy_from_slice(&(link.as_raw_fd() as u32).to_ne_bytes());
    // SAFETY: BPF_ITER_CREATE reads `attr` (link_fd, flags).
    let iter = unsafe { libc::syscall(libc::SYS_bpf, BPF_ITER_CREATE, attr.as_mut_ptr(), attr.len()) };
    if iter < 0 {
        return Err(os_err("creating an iterator"));
    }
    // SAFETY: as above; the iterator holds its own reference to the link.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(iter as i32) }))
}

/// Reads walks of the owners iterators to their ends, each on a thread of its
/// own, and merges them: the program's records back to back (`model::owner::OwnerRecords`
/// checks them) in the order one walk of every descriptor would give.
///
/// # Errors
/// Reading failed.
fn read_owners(files: Vec<std::fs::File>) -> Result<Vec<u8>, EbpfError> {
    let walks = crate::threads::each_on_a_thread(files, read_walk);
    let walks = walks.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok(crate::model::owner::merge_walks(walks))
}

/// One walk read to its end.
fn read_walk(mut file: std::fs::File) -> Result<Vec<u8>, EbpfError> {
    use std::io::Read;
    // Read straight into the result (a walk at 100k sockets is megabytes); a read that
    // walked many objects without output returns EAGAIN (the kernel's MAX_ITER_OBJECTS),
    // and the walk goes on with the next read.
    const CHUNK: usize = 1 << 20;
    let mut bytes = Vec::new();
    let mut len = 0;
    loop {
        if bytes.len() - len < CHUNK / 4 {
            bytes.resize(len + CHUNK, 0);
        }
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {}
            Err(source) => return Err(EbpfError::Iter { source }),
        }
    }
    bytes.truncate(len);
    Ok(bytes)
}
