//! The owners iterator: a BPF iterator over every task's open files (`task_file`) that
//! writes one [`OwnerRecord`] per socket descriptor of each process. Reading it is what
//! `ss -p` does by walking /proc/PID/fd, done in one pass in the kernel.

use core::ffi::c_void;

use aya_ebpf::helpers::generated::{bpf_seq_write, bpf_sock_from_file};
use sockstat_ebpf::{OwnerOffsets, OwnerRecord};

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
