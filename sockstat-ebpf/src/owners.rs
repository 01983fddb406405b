//! The owners iterator: a BPF iterator over every task's open files (`task_file`) that
//! writes one [`OwnerRecord`] per socket descriptor of each process. Reading it is what
//! `ss -p` does by walking /proc/PID/fd, done in one pass in the kernel.

use core::ffi::c_void;

use aya_ebpf::helpers::{bpf_probe_read_kernel, generated::bpf_seq_write};
use sockstat_ebpf::{OwnerOffsets, OwnerRecord};

/// Filled by the loader (`EbpfLoader::override_global`) before the program is loaded.
#[unsafe(no_mangle)]
static OWNER_OFFSETS: OwnerOffsets = OwnerOffsets {
    task_pid: 0,
    task_tgid: 0,
    task_comm: 0,
    file_f_inode: 0,
    inode_i_mode: 0,
    inode_i_ino: 0,
    file_private_data: 0,
    socket_sk: 0,
    sk_cookie: 0,
    valid: 0,
};

/// `S_IFMT` and `S_IFSOCK` (include/uapi/linux/stat.h).
const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;

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
/// BTF-typed pointers, checked non-null) or `inode` (a pointer field loaded through
/// `file`, typed `struct inode *` by the verifier), with that type's field.
macro_rules! field {
    ($base:expr, $field:ident) => {{
        let off = offset!($field);
        // SAFETY: see the macro's documentation.
        unsafe { load($base, off) }
    }};
}

/// A `T` at `base + off` in kernel memory, or zero if the read faults: for what no typed
/// pointer reaches (`file->private_data` is a `void *`).
#[inline(always)]
fn read<T: Copy + Default>(base: *const u8, off: u32) -> T {
    // SAFETY: bpf_probe_read_kernel validates the address; a fault returns an error.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off as usize).cast::<T>()) }.unwrap_or_default()
}

/// `struct bpf_iter__task_file` (kernel/bpf/task_iter.c): meta, task, fd, file. The
/// verifier gives the pointers their BTF types: the task's and the file's fields, and the
/// inode's through `file->f_inode`, are direct loads; the socket behind
/// `file->private_data` (untyped) is read with bpf_probe_read_kernel, for socket files
/// only.
#[unsafe(no_mangle)]
#[unsafe(link_section = "iter/task_file")]
pub fn sockstat_owners(ctx: *mut c_void) -> i32 {
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
    if offset!(valid) == 0 || task.is_null() || file.is_null() {
        return 0;
    }
    // /proc lists thread group leaders; a thread with a file table of its own is not
    // what `/proc/PID/fd` shows.
    let pid: i32 = field!(task, task_pid);
    let tgid: i32 = field!(task, task_tgid);
    if pid != tgid {
        return 0;
    }
    let inode: *const u8 = field!(file, file_f_inode);
    if inode.is_null() {
        return 0;
    }
    let mode: u16 = field!(inode, inode_i_mode);
    if mode & S_IFMT != S_IFSOCK {
        return 0;
    }
    // An O_PATH descriptor of a socket *file* has the mode too, but no socket behind it
    // (and the file system's inode number): /proc shows it as a path, not a socket.
    let socket: u64 = field!(file, file_private_data);
    if socket == 0 {
        return 0;
    }
    let sk: u64 = read(socket as *const u8, offset!(socket_sk));
    let record = OwnerRecord {
        pid: tgid as u32,
        fd,
        inode: field!(inode, inode_i_ino),
        cookie: if sk == 0 { 0 } else { read(sk as *const u8, offset!(sk_cookie)) },
        comm: field!(task, task_comm),
    };
    // SAFETY: meta is the iterator's bpf_iter_meta; its first member is the seq_file.
    let seq = unsafe { core::ptr::read_volatile(meta) };
    // SAFETY: `record` lives on this stack frame for the duration of the call.
    unsafe { bpf_seq_write(seq.cast(), (&raw const record).cast(), OwnerRecord::SIZE as u32) };
    0
}
