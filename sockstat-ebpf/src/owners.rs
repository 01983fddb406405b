//! The owners iterator: a BPF iterator over every task's open files (`task_file`) that
//! writes one [`OwnerRecord`] per socket descriptor of each process. Reading it is what
//! `ss -p` does by walking /proc/PID/fd, done in one pass in the kernel.
//!
//! Beside it, what lets the agent keep owners between queries: the task listing (an
//! iterator over tasks, one [`TaskRecord`] per process) and the change notes (tracepoint
//! programs that note the descriptor table of whoever made a system call that may add or
//! remove a socket descriptor).

use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::{bpf_get_current_pid_tgid, bpf_get_current_task_btf, bpf_seq_write, bpf_sock_from_file},
    macros::{map, tracepoint},
    maps::{Array, HashMap, PerCpuArray},
    programs::TracePointContext,
};
use sockstat_ebpf::{
    OWNER_CHANGES_MAX, OwnerOffsets, OwnerRecord, PF_EXITING, SECCOMP_ADDFD_MATCH, TASK_COMPAT, TASK_EXITING,
    TASK_IO_URING, TASK_THREAD, TaskRecord,
};

/// Descriptor tables noted since the agent last took them (`OWNER_CHANGES_MAP`).
#[map(name = "OWNER_CHANGES")]
static OWNER_CHANGES: HashMap<u64, u8> = HashMap::with_max_entries(OWNER_CHANGES_MAX, 0);

/// Notes that did not fit, and descriptors installed in another process
/// (`OWNER_MISSED_MAP`).
#[map(name = "OWNER_MISSED")]
static OWNER_MISSED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The agent's take count (`OWNER_EPOCH_MAP`): it adds one after each take of the notes,
/// once it removed the notes it took.
#[map(name = "OWNER_EPOCH")]
static OWNER_EPOCH: Array<u64> = Array::with_max_entries(1, 0);

/// Per CPU, the tables this CPU noted lately, each with the take count it was noted in:
/// a table found there with the current count was in `OWNER_CHANGES` at or after this
/// count began, so either it is there still or a take removed it and has not moved the
/// count yet (and walks after moving it): the hash lookup is skipped. Direct mapped by
/// process id; most system calls under load come from a few processes.
#[map(name = "OWNER_NOTED")]
static OWNER_NOTED: PerCpuArray<[u64; 2 * NOTED_SLOTS]> = PerCpuArray::with_max_entries(1, 0);
const NOTED_SLOTS: usize = 16;

/// Set for good once a thread inside an ADDFD could not be remembered in `OWNER_ADDFD`
/// (16384 of them in flight at once): no exit can then tell that its descriptor landed.
#[map(name = "OWNER_ADDFD_PENDING")]
static OWNER_ADDFD_PENDING: Array<u32> = Array::with_max_entries(1, 0);

/// Threads inside a seccomp `SECCOMP_IOCTL_NOTIF_ADDFD` ioctl (`OWNER_ADDFD_MAP`).
#[map(name = "OWNER_ADDFD")]
static OWNER_ADDFD: HashMap<u64, u8> = HashMap::with_max_entries(16384, 0);

/// Filled by the loader (`EbpfLoader::override_global`) before the program is loaded.
#[unsafe(no_mangle)]
static OWNER_OFFSETS: OwnerOffsets = OwnerOffsets {
    task_pid: 0,
    task_tgid: 0,
    task_comm: 0,
    file_f_inode: 0,
    inode_i_ino: 0,
    socket_sk: 0,
    sk_cookie: 0,
    valid: 0,
    task_files: 0,
    task_flags: 0,
    task_start_time: 0,
    task_io_uring: 0,
    task_ti_flags: 0,
    compat_mask: 0,
};

macro_rules! offset {
    ($field:ident) => {
        // SAFETY: OWNER_OFFSETS is a read-only global the loader writes before load.
        unsafe { core::ptr::read_volatile(&raw const OWNER_OFFSETS.$field) }
    };
}

/// A field at `base + off` of a kernel object the verifier types from BTF (the
/// iterator's task and file, a pointer field loaded through one): one load, checked
/// against the type's layout when the program loads (`off` is an OWNER_OFFSETS field, a
/// constant to the verifier: the global is frozen), a fault reading as zero. Most of a
/// walk's time went into helper reads before.
///
/// # Safety
/// `base` is such a typed pointer and `off` the offset of a `T`-sized field of its type.
#[inline(always)]
unsafe fn load<T: Copy>(base: *const u8, off: u32) -> T {
    // SAFETY: see above; the JIT guards the load (BPF_PROBE_MEM).
    unsafe { core::ptr::read_volatile(base.wrapping_add(off as usize).cast::<T>()) }
}

/// `base->field` through [`load`]. Every use below passes `task` or `file` (the iterator's
/// BTF-typed pointers, checked non-null), `socket` (bpf_sock_from_file's typed result,
/// checked non-null) or a pointer field loaded through one of those (`inode`, `sk`, typed
/// by the verifier), with that type's field.
macro_rules! field {
    ($base:expr, $field:ident) => {{
        let off = offset!($field);
        // SAFETY: see the macro's documentation.
        unsafe { load($base, off) }
    }};
}

/// The even descriptors' records (see `OWNERS_PROGRAMS`).
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/task_file")]
pub fn sockstat_owner0(ctx: *mut c_void) -> i32 {
    owners(ctx, 0)
}

/// The odd descriptors' records.
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/task_file")]
pub fn sockstat_owner1(ctx: *mut c_void) -> i32 {
    owners(ctx, 1)
}

/// `struct bpf_iter__task_file` (kernel/bpf/task_iter.c): meta, task, fd, file. The
/// verifier gives the pointers their BTF types, so every field below is a direct load.
/// Only descriptors of parity `half` are read: the other walk has the rest.
#[inline(always)]
fn owners(ctx: *mut c_void, half: u32) -> i32 {
    let ctx = ctx as *const u8;
    // SAFETY: the kernel passes a bpf_iter__task_file; these are its fields' offsets
    // (three pointer-sized unions and a u32 fd, padded).
    let (meta, task, fd, file) = unsafe {
        (
            core::ptr::read_volatile(ctx.cast::<*const *mut c_void>()),
            core::ptr::read_volatile(ctx.add(8).cast::<*const u8>()),
            core::ptr::read_volatile(ctx.add(16).cast::<u32>()),
            core::ptr::read_volatile(ctx.add(24).cast::<*const u8>()),
        )
    };
    if fd & 1 != half || offset!(valid) == 0 || task.is_null() || file.is_null() {
        return 0;
    }
    // /proc lists thread group leaders; a thread with a file table of its own is not
    // what `/proc/PID/fd` shows.
    let pid: i32 = field!(task, task_pid);
    let tgid: i32 = field!(task, task_tgid);
    if pid != tgid {
        return 0;
    }
    // bpf_sock_from_file: the file's socket if it is one (its f_op is the socket
    // files'), as a BTF-typed pointer: `socket->sk` and the sock's cookie are direct
    // loads. An O_PATH descriptor of a socket *file* is not one (/proc shows it as a
    // path). Each record costs a few cache misses (the socket, its inode, its sock): the
    // walk's time is theirs, so nothing else is read.
    // SAFETY: `file` is the iterator's non-null `struct file *`, the helper's argument.
    let socket = unsafe { bpf_sock_from_file(file as *mut _) } as *const u8;
    if socket.is_null() {
        return 0;
    }
    let inode: *const u8 = field!(file, file_f_inode);
    if inode.is_null() {
        return 0;
    }
    let sk: *const u8 = field!(socket, socket_sk);
    let record = OwnerRecord {
        pid: tgid as u32,
        fd,
        inode: field!(inode, inode_i_ino),
        cookie: if sk.is_null() { 0 } else { field!(sk, sk_cookie) },
        comm: field!(task, task_comm),
    };
    // SAFETY: meta is the iterator's bpf_iter_meta; its first member is the seq_file.
    let seq = unsafe { core::ptr::read_volatile(meta) };
    // SAFETY: `record` lives on this stack frame for the duration of the call.
    unsafe { bpf_seq_write(seq.cast(), (&raw const record).cast(), OwnerRecord::SIZE as u32) };
    0
}

/// `struct bpf_iter__task` (kernel/bpf/task_iter.c): meta, task. Every task is visited,
/// threads too; one record per thread group leader, as /proc lists processes.
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/task")]
pub fn sockstat_owner_tasks(ctx: *mut c_void) -> i32 {
    let ctx = ctx as *const u8;
    // SAFETY: the kernel passes a bpf_iter__task: two pointer-sized unions.
    let (meta, task) = unsafe {
        (
            core::ptr::read_volatile(ctx.cast::<*const *mut c_void>()),
            core::ptr::read_volatile(ctx.add(8).cast::<*const u8>()),
        )
    };
    if offset!(valid) == 0 || task.is_null() {
        return 0;
    }
    let pid: i32 = field!(task, task_pid);
    let tgid: i32 = field!(task, task_tgid);
    let io_uring = offset!(task_io_uring) != 0 && {
        let ring: u64 = field!(task, task_io_uring);
        ring != 0
    };
    let mut flags = if io_uring { TASK_IO_URING } else { 0 };
    if pid != tgid {
        if !io_uring {
            return 0;
        }
        flags |= TASK_THREAD;
    }
    let task_flags: u32 = field!(task, task_flags);
    if task_flags & PF_EXITING != 0 {
        flags |= TASK_EXITING;
    }
    let compat_mask = offset!(compat_mask);
    if compat_mask != 0 {
        let ti_flags: u64 = field!(task, task_ti_flags);
        if ti_flags & u64::from(compat_mask) != 0 {
            flags |= TASK_COMPAT;
        }
    }
    let files: u64 = field!(task, task_files);
    let record = TaskRecord {
        tgid: tgid as u32,
        flags,
        start: field!(task, task_start_time),
        files,
        comm: field!(task, task_comm),
    };
    // SAFETY: meta is the iterator's bpf_iter_meta; its first member is the seq_file.
    let seq = unsafe { core::ptr::read_volatile(meta) };
    // SAFETY: `record` lives on this stack frame for the duration of the call.
    unsafe { bpf_seq_write(seq.cast(), (&raw const record).cast(), TaskRecord::SIZE as u32) };
    0
}

/// Notes the current task's descriptor table (see `OWNER_MARK_TRACEPOINTS`); the
/// tracepoint's record is not read. Runs after the system call's change is in the table:
/// an agent that takes the note and then walks the table sees the change.
#[tracepoint]
pub fn sockstat_owner_mark(_ctx: TracePointContext) -> u32 {
    note_current_table();
    0
}

/// The entry of ioctl(2): remembers a thread that installs a descriptor in another
/// process (seccomp's ADDFD), for [`sockstat_owner_ioctl`].
#[tracepoint]
pub fn sockstat_owner_ioctl_in(ctx: TracePointContext) -> u32 {
    // struct syscall_trace_enter: the 8-byte common header, int __syscall_nr (padded),
    // then the arguments as unsigned longs: fd at 16, cmd at 24.
    // SAFETY: the record of sys_enter_ioctl holds its three arguments.
    let cmd: u64 = match unsafe { ctx.read_at::<u64>(24) } {
        Ok(c) => c,
        Err(_) => return 0,
    };
    // The kernel matches the command without its direction and size bits (EA_IOCTL), on
    // the low 32 bits of the register.
    if (cmd as u32) & 0xffff == SECCOMP_ADDFD_MATCH {
        // SAFETY: no preconditions.
        let id = unsafe { bpf_get_current_pid_tgid() };
        if OWNER_ADDFD.insert(&id, &1, 0).is_err()
            && let Some(pending) = OWNER_ADDFD_PENDING.get_ptr_mut(0)
        {
            // Not remembered by thread: from now on every ioctl exit counts one, so
            // that every query after this one's descriptor landed walks everything.
            // SAFETY: a u32 of a one-entry array.
            unsafe { *pending = 1 };
        }
    }
    0
}

/// The exit of ioctl(2): notes the caller's table, and counts a finished ADDFD.
#[tracepoint]
pub fn sockstat_owner_ioctl(_ctx: TracePointContext) -> u32 {
    note_current_table();
    // SAFETY: no preconditions.
    let id = unsafe { bpf_get_current_pid_tgid() };
    // SAFETY: the value is not kept.
    if unsafe { OWNER_ADDFD.get(&id) }.is_some() {
        let _ = OWNER_ADDFD.remove(&id);
        missed();
    }
    if let Some(pending) = OWNER_ADDFD_PENDING.get_ptr_mut(0)
        // SAFETY: a u32 of a one-entry array.
        && unsafe { *pending } != 0
    {
        missed();
    }
    0
}

#[inline(always)]
fn note_current_table() {
    if offset!(valid) == 0 {
        return;
    }
    // SAFETY: no preconditions; a BTF-typed task, never null in a tracing program.
    let task = unsafe { bpf_get_current_task_btf() } as *const u8;
    let files: u64 = field!(task, task_files);
    if files == 0 {
        return;
    }
    // Most calls find their table noted already (a busy process between two queries):
    // this CPU remembers it (array lookups are inlined by the verifier: no helper call).
    let epoch = match OWNER_EPOCH.get(0) {
        // SAFETY: a u64 the agent writes whole.
        Some(e) => unsafe { core::ptr::read_volatile(e) },
        None => return,
    };
    // Slots by process: the verifier allows no arithmetic on the table's address (a typed
    // pointer); compared, it must be equal.
    let tgid: u32 = field!(task, task_tgid);
    let slot = tgid as usize % NOTED_SLOTS;
    let noted = OWNER_NOTED.get_ptr_mut(0);
    if let Some(noted) = noted {
        // SAFETY: this CPU's array of 2 * NOTED_SLOTS u64s; `slot` < NOTED_SLOTS.
        let (f, e) = unsafe { ((*noted)[2 * slot], (*noted)[2 * slot + 1]) };
        if f == files && e == epoch {
            return;
        }
    }
    // SAFETY: the value is not kept.
    if unsafe { OWNER_CHANGES.get(&files) }.is_none() {
        /// BPF_NOEXIST: a note another CPU made meanwhile is as good as this one.
        const NOEXIST: u64 = 1;
        /// -EEXIST.
        const EEXIST: i32 = -17;
        if let Err(e) = OWNER_CHANGES.insert(&files, &1, NOEXIST)
            && e != EEXIST
        {
            missed();
            return;
        }
    }
    if let Some(noted) = noted {
        // SAFETY: as above. The table is in the map now, for this take count.
        unsafe {
            (*noted)[2 * slot] = files;
            (*noted)[2 * slot + 1] = epoch;
        }
    }
}

#[inline(always)]
fn missed() {
    if let Some(count) = OWNER_MISSED.get_ptr_mut(0) {
        // SAFETY: this CPU's slot of a per-CPU array; a nested run on the same CPU may
        // make the two add as one, and the sum still moves, which is all it is read for.
        unsafe { *count += 1 };
    }
}
