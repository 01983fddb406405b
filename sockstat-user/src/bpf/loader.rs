//! Loads sockstat's eBPF program (embedded at build time by `cargo xtask build`), gives it
//! the kernel offsets from BTF, and attaches it as tp_btf to `sock:inet_sock_set_state`.
//! A tp_btf attach goes through bpf_raw_tracepoint_open, so the core program needs
//! neither tracefs nor kprobes (both absent on a fresh machine of ours). The accept hook
//! is a classic tracepoint: tracefs is mounted for it when missing. Before loading, the
//! object's placeholder calls become calls of the kfunc `bpf_rdonly_cast` (aya 0.14 does
//! not link kfuncs: see [`kfunc`]). Dropping the [`Tracer`] detaches everything. It also
//! reads the programs' run statistics for `status`.

use std::os::fd::AsFd;

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, Iter, TracePoint},
};
use sockstat_ebpf::{
    ACCEPT_PROGRAM, ACCEPT_TRACEPOINTS, COUNTERS_MAP, Counter, EVENT_RINGS, EVENTS_MAPS, NESTED_PROGRAM,
    OFFSETS_GLOBAL, OWNER_CHANGES_MAP, OWNER_IOCTL_ENTER_PROGRAM, OWNER_IOCTL_EXIT_PROGRAM, OWNER_MARK_PROGRAM,
    OWNER_MARK_TRACEPOINTS, OWNER_MISSED_MAP, OWNER_OFFSETS_GLOBAL, OWNER_TASKS_ITER, OWNER_TASKS_PROGRAM, OWNERS_ITER,
    OWNERS_PROGRAMS, PROGRAM_NAME, TRACEPOINT,
};

use crate::bpf::btf::{self, BtfError};

/// The records of the ring buffers [`Tracer::take_events`] hands out.
pub use sockstat_ebpf::StateEvent;

/// The event rings the machine's CPUs write to (CPU `c` to ring `c % EVENT_RINGS`), in
/// ring order, each `bytes_each` bytes.
pub struct EventRings {
    pub rings: Vec<RingBuf<MapData>>,
    pub bytes_each: u32,
}

/// How many rings `cpus` possible CPUs write to, and the size of each: `total` bytes
/// shared evenly, each a power of two of at least `page` bytes.
#[must_use]
pub fn ring_sizes(total: u32, cpus: usize, page: u32) -> (usize, u32) {
    let used = cpus.clamp(1, EVENT_RINGS);
    let share = (total / used as u32).max(1);
    // The largest power of two not above the share.
    let each = (1u32 << (31 - share.leading_zeros())).max(page);
    (used, each)
}

/// Every possible CPU may run the programs, whatever this process's affinity.
fn possible_cpus() -> usize {
    aya::util::nr_cpus().unwrap_or(1)
}

fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    u32::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// The eBPF object; empty when the crate was built without `cargo xtask build`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/sockstat-ebpf.o"));

#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error(
        "this sockstat binary was built without its eBPF program; build it with `cargo xtask build` \
         (or run it with `cargo xtask run -- ARGS`)"
    )]
    NotEmbedded,
    #[error(transparent)]
    Btf(#[from] BtfError),
    #[error("loading the eBPF object failed{hint}")]
    Load {
        hint: &'static str,
        #[source]
        source: Box<aya::EbpfError>,
    },
    #[error("program `{0}` is missing from the eBPF object")]
    MissingProgram(&'static str),
    #[error("map `{0}` is missing from the eBPF object")]
    MissingMap(&'static str),
    #[error("{what} failed{hint}")]
    Program {
        what: &'static str,
        hint: &'static str,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error("reading the owners iterator")]
    Iter {
        #[source]
        source: std::io::Error,
    },
    #[error("the kernel has no bpf_rdonly_cast (Linux 6.2 added it)")]
    NoCasts,
    #[error(
        "no cgroup v2 hierarchy is mounted (/proc/self/mountinfo lists no cgroup2 file system), and mounting one failed"
    )]
    NoCgroup2 {
        #[source]
        mount: Option<std::io::Error>,
    },
    #[error("opening the cgroup v2 root {path}")]
    Cgroup {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the statistics of program `{program}`")]
    Info {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("eBPF map `{map}`")]
    Map {
        map: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

const PERM_HINT: &str = " (loading BPF programs needs CAP_BPF and CAP_PERFMON, or root)";

fn hint_for(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => PERM_HINT,
        _ => "",
    }
}

/// Counters kept by the program (summed over CPUs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    pub seen: u64,
    pub lost: u64,
    pub read_errors: u64,
    /// Runs of the tracing programs the kernel skipped (`recursion_misses` of
    /// `bpf_prog_info`): a transition in a softirq that interrupted the same program on
    /// its CPU is not traced. Events lost like any other. Those the second transition
    /// program ran are not counted here (see `rescued`).
    pub missed: u64,
    /// Transitions that interrupted the first transition program on its CPU, run by the
    /// second ([`NESTED_PROGRAM`]).
    pub rescued: u64,
}

/// What [`Tracer::take_owners_programs`] hands over.
pub type OwnersPrograms =
    ([std::os::fd::OwnedFd; 2], Option<std::os::fd::OwnedFd>, Option<(aya::maps::Map, aya::maps::Map, aya::maps::Map)>);

/// A loaded and attached program. Fields drop in declaration order; `ebpf` last, which
/// detaches the program.
pub struct Tracer {
    events: Option<EventRings>,
    counters: PerCpuArray<MapData, u64>,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    /// Whether [`NESTED_PROGRAM`] is attached beside [`PROGRAM_NAME`].
    pub nested: bool,
    /// Whether the accept hook (syscall exit tracepoints) is attached.
    pub accept_hook: bool,
    /// Whether the owners iterator loaded ([`Tracer::take_owners_programs`]).
    pub owners_iter: bool,
    /// Whether the task listing loaded and the notes of changed descriptor tables are
    /// made: the agent then keeps owners between queries.
    pub owner_marks: bool,
    /// Whether the sock_ops program is attached (to the cgroup v2 root): SYN-SENT
    /// transitions carry their local port, and request sockets (SYN-RECV) are reported.
    pub sock_ops: bool,
    casts: bool,
    ebpf: Ebpf,
}

/// What a program does for sockstat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The tp_btf program on `sock:inet_sock_set_state`.
    Transition,
    /// Its second, for the transitions that interrupt it ([`NESTED_PROGRAM`]).
    TransitionNested,
    /// The tracepoint program on the exits of accept(2) and accept4(2).
    AcceptHook,
    /// The owners iterator (`-p`): its program for even descriptors, and the one for odd
    /// ones.
    OwnersEven,
    OwnersOdd,
    /// The task listing, and the tracepoint programs that note changed descriptor tables
    /// (system call exits; ioctl's entry and exit).
    OwnerTasks,
    OwnerNotes,
    OwnerNotesIoctlIn,
    OwnerNotesIoctl,
    /// The cgroup sock_ops program (active opens with their port, request sockets).
    SockOps,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Transition => "transition",
            Role::TransitionNested => "transition, nested",
            Role::AcceptHook => "accept hook",
            Role::OwnersEven => "owners, even fds",
            Role::OwnersOdd => "owners, odd fds",
            Role::OwnerTasks => "owners, task listing",
            Role::OwnerNotes => "owners, change notes",
            Role::OwnerNotesIoctlIn => "owners, ioctl entry",
            Role::OwnerNotesIoctl => "owners, ioctl exit",
            Role::SockOps => "sock_ops",
        }
    }
}

/// A program's statistics as the kernel keeps them (`bpf_prog_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProgramStats {
    pub role: Role,
    /// Its name in the object (the kernel keeps the first 15 bytes).
    pub name: &'static str,
    /// The kernel's program id (`bpftool prog show id ID`).
    pub id: u32,
    /// Runs and nanoseconds in the program, counted while stats are on.
    pub run_count: u64,
    pub run_time_ns: u64,
}

/// Whether the kernel counts program runs and time now (`kernel.bpf_stats_enabled`, also
/// on while any process holds a BPF_ENABLE_STATS file descriptor); `None` if unreadable.
pub fn stats_enabled() -> Option<bool> {
    let text = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").ok()?;
    Some(text.trim() != "0")
}

/// The fields of `struct bpf_prog_info` (include/uapi/linux/bpf.h) sockstat reads.
#[derive(Clone, Copy, Debug, Default)]
struct ProgInfo {
    id: u32,
    run_time_ns: u64,
    run_cnt: u64,
    recursion_misses: u64,
}

/// `bpf(BPF_OBJ_GET_INFO_BY_FD)` on a program: aya 0.14's `ProgramInfo` has no run
/// statistics.
fn prog_info(fd: std::os::fd::BorrowedFd<'_>) -> Result<ProgInfo, std::io::Error> {
    use std::os::fd::AsRawFd;
    // struct bpf_prog_info: id at 4, run_time_ns at 192, run_cnt at 200 (since 5.1),
    // recursion_misses at 208 (since 5.12); the kernel fills what fits in info_len and
    // zeroes the rest of it.
    const INFO_LEN: usize = 216;
    /// enum bpf_cmd (include/uapi/linux/bpf.h).
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_int = 15;
    #[repr(C, align(8))]
    struct Info([u8; INFO_LEN]);
    #[repr(C)]
    struct GetInfo {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut info = Info([0; INFO_LEN]);
    let mut attr = [0u8; 128];
    let get = GetInfo { bpf_fd: fd.as_raw_fd() as u32, info_len: INFO_LEN as u32, info: info.0.as_mut_ptr() as u64 };
    // SAFETY: GetInfo is the `info` member of union bpf_attr (three plain integers); it is
    // copied into a zeroed buffer larger than that member.
    unsafe { std::ptr::write_unaligned(attr.as_mut_ptr().cast::<GetInfo>(), get) };
    // SAFETY: BPF_OBJ_GET_INFO_BY_FD reads `attr` (size passed) and writes at most
    // INFO_LEN bytes to `info`, which outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, attr.as_mut_ptr(), attr.len()) };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let b = &info.0;
    let u32_at = |i: usize| u32::from_ne_bytes(b[i..i + 4].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap_or_default());
    Ok(ProgInfo { id: u32_at(4), run_time_ns: u64_at(192), run_cnt: u64_at(200), recursion_misses: u64_at(208) })
}

/// What every load attempt starts from: the offsets and ids from BTF, tracefs's answer.
struct Prepared {
    opts: LoadOptions,
    offsets: sockstat_ebpf::KernelOffsets,
    owner_offsets: sockstat_ebpf::OwnerOffsets,
    rdonly_cast: Option<u32>,
    accept_ret: bool,
    /// The rings the CPUs write to, each one's size, and the page size (the others' size).
    rings: (usize, u32, u32),
}

impl Prepared {
    fn new(opts: LoadOptions) -> Result<Prepared, EbpfError> {
        if OBJECT.is_empty() {
            return Err(EbpfError::NotEmbedded);
        }
        let btf::Resolved { kernel: mut offsets, owners, rdonly_cast } = btf::kernel_and_owner_offsets()?;
        // The owners iterator is optional: without its offsets it stays unloaded.
        let owner_offsets = owners.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no owners iterator: -p walks /proc as ss does");
            sockstat_ebpf::OwnerOffsets::default()
        });
        // Readers drain every DRAIN_INTERVAL_MS; wake them early once a ring is an eighth
        // full.
        let (cpus, page) = (possible_cpus(), page_size());
        let (used, each) = ring_sizes(opts.ringbuf_bytes, cpus, page);
        offsets.wakeup_bytes = each / 8;
        offsets.wakeup_check_mask = wakeup_check_mask(offsets.wakeup_bytes, cpus.div_ceil(used));
        // The accept hook is a classic tracepoint: it needs tracefs (mounted here if it is
        // not) and the offset of `ret` in its record, read from the format file.
        let accept_ret = tracefs::ensure_mounted()
            .and_then(|dir| tracefs::field_offset(&dir, "syscalls", sockstat_ebpf::ACCEPT_TRACEPOINTS[0], "ret"));
        match &accept_ret {
            Ok(off) => offsets.tp_exit_ret = *off,
            Err(e) => {
                tracing::warn!(error = %e, "no accept hook: accepted sockets are attributed to their listener's owner")
            }
        }
        if offsets.sock_copy_len == 0 {
            tracing::warn!(
                max = sockstat_ebpf::SOCK_COPY_BYTES,
                "the socket fields the accept hook copies end beyond its buffer on this kernel: \
                 it loads only with casts"
            );
        }
        Ok(Prepared {
            opts,
            offsets,
            owner_offsets,
            rdonly_cast,
            accept_ret: accept_ret.is_ok(),
            rings: (used, each, page),
        })
    }

    /// Whether the accept hook can be loaded at all: without casts it needs its copy.
    fn accept_possible(&self) -> bool {
        self.accept_ret && (self.rdonly_cast.is_some() || self.offsets.sock_copy_len != 0)
    }
}

/// The eBPF object, copied to be patched (aya reads it in place: 8-aligned).
struct Object(Vec<u64>);

impl Object {
    fn copy(elf: &[u8]) -> Object {
        let mut words = vec![0u64; elf.len().div_ceil(8)];
        Object::bytes_mut(&mut words)[..elf.len()].copy_from_slice(elf);
        Object(words)
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: u64s viewed as their bytes (alignment 1 <= 8, same length in bytes).
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>(), self.0.len() * 8) }
    }

    fn bytes_mut(words: &mut [u64]) -> &mut [u8] {
        // SAFETY: as `bytes`; the borrow is unique.
        unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8) }
    }

    /// `elf` with each call of helper `placeholder` in its code sections turned into a call
    /// of the kernel function whose BTF id (in vmlinux) is `btf_id`.
    fn with_kfunc_calls(elf: &[u8], placeholder: u32, btf_id: u32) -> Object {
        let mut object = Object::copy(elf);
        let n = kfunc::patch(Object::bytes_mut(&mut object.0), placeholder, btf_id);
        tracing::debug!(calls = n, btf_id, "kfunc calls linked");
        object
    }
}

/// Linking kfunc calls, which aya 0.14 cannot do: a BPF call instruction (opcode 0x85) whose
/// source register field is BPF_PSEUDO_KFUNC_CALL (2) calls the kernel function whose BTF
/// id is its immediate (include/uapi/linux/bpf.h; `off` 0: in vmlinux's BTF). The program
/// calls a placeholder helper id instead, which this rewrites.
mod kfunc {
    const CALL: u8 = 0x85;
    const PSEUDO_KFUNC_CALL: u8 = 2;
    /// `SHF_EXECINSTR` (include/uapi/linux/elf.h).
    const EXEC: u64 = 0x4;

    /// Rewrites the calls of helper `placeholder` in the code sections of the ELF object
    /// `elf` (64-bit, little-endian, as BPF objects are); returns how many. A malformed
    /// object is left as it is (aya reports it).
    pub fn patch(elf: &mut [u8], placeholder: u32, btf_id: u32) -> usize {
        let Some(sections) = code_sections(elf) else { return 0 };
        let mut n = 0;
        for (start, len) in sections {
            for insn in elf[start..start + len].chunks_exact_mut(8) {
                // code, dst_reg:4 | src_reg:4, off: i16, imm: i32.
                if insn[0] == CALL && insn[1] == 0 && insn[2..4] == [0, 0] && insn[4..8] == placeholder.to_le_bytes() {
                    insn[1] = PSEUDO_KFUNC_CALL << 4;
                    insn[4..8].copy_from_slice(&btf_id.to_le_bytes());
                    n += 1;
                }
            }
        }
        n
    }

    /// (offset, size) of each SHF_EXECINSTR section, from the ELF64 section headers.
    fn code_sections(elf: &[u8]) -> Option<Vec<(usize, usize)>> {
        let u16_at = |i: usize| Some(u16::from_le_bytes(elf.get(i..i + 2)?.try_into().ok()?) as usize);
        let u64_at = |i: usize| usize::try_from(u64::from_le_bytes(elf.get(i..i + 8)?.try_into().ok()?)).ok();
        // ELFCLASS64, ELFDATA2LSB.
        if elf.get(..6)? != b"\x7fELF\x02\x01" {
            return None;
        }
        let (shoff, shentsize, shnum) = (u64_at(0x28)?, u16_at(0x3a)?, u16_at(0x3c)?);
        (0..shnum)
            .filter_map(|i| {
                let h = shoff.checked_add(i.checked_mul(shentsize)?)?;
                let flags = u64::from_le_bytes(elf.get(h + 8..h + 16)?.try_into().ok()?);
                let (start, len) = (u64_at(h + 24)?, u64_at(h + 32)?);
                let whole = start.checked_add(len).is_some_and(|end| end <= elf.len()) && len % 8 == 0;
                (flags & EXEC != 0).then_some(whole.then_some((start, len)))
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        /// A minimal ELF64 with one code section holding `code` and one data section.
        fn elf(code: &[u8], data: &[u8]) -> Vec<u8> {
            let mut e = vec![0u8; 64];
            e[..6].copy_from_slice(b"\x7fELF\x02\x01");
            let code_at = e.len();
            e.extend_from_slice(code);
            let data_at = e.len();
            e.extend_from_slice(data);
            let shoff = e.len();
            e[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
            e[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
            e[0x3c..0x3e].copy_from_slice(&2u16.to_le_bytes());
            for (flags, at, len) in [(0x6u64, code_at, code.len()), (0x2, data_at, data.len())] {
                let mut h = [0u8; 64];
                h[8..16].copy_from_slice(&flags.to_le_bytes());
                h[24..32].copy_from_slice(&(at as u64).to_le_bytes());
                h[32..40].copy_from_slice(&(len as u64).to_le_bytes());
                e.extend_from_slice(&h);
            }
            e
        }

        const PLACEHOLDER: u32 = 0x5ca7_0001;

        fn call(helper: u32) -> [u8; 8] {
            let mut i = [0x85, 0, 0, 0, 0, 0, 0, 0];
            i[4..].copy_from_slice(&helper.to_le_bytes());
            i
        }

        #[test]
        fn rewrites_placeholder_calls_in_code_only() {
            let mov = [0xbf, 0x10, 0, 0, 0, 0, 0, 0];
            let code = [call(PLACEHOLDER), mov, call(113), call(PLACEHOLDER)].concat();
            // The same bytes in a data section stay as they are.
            let data = call(PLACEHOLDER);
            let mut e = elf(&code, &data);
            assert_eq!(super::patch(&mut e, PLACEHOLDER, 65504), 2);
            let kfunc = [0x85, 0x20, 0, 0, 0xe0, 0xff, 0, 0];
            assert_eq!(&e[64..96], [kfunc, mov, call(113), kfunc].concat().as_slice());
            assert_eq!(&e[96..104], &call(PLACEHOLDER));
            // Nothing left to rewrite the second time.
            assert_eq!(super::patch(&mut e, PLACEHOLDER, 65504), 0);
        }

        #[test]
        fn malformed_objects_are_left_alone() {
            let mut short = b"\x7fELF\x02\x01".to_vec();
            assert_eq!(super::patch(&mut short, PLACEHOLDER, 1), 0);
            let mut e = elf(&call(PLACEHOLDER), &[]);
            // The code section's header (after the header and the code) points past the end.
            let code_header = 64 + 8;
            e[code_header + 24..code_header + 32].copy_from_slice(&u64::MAX.to_le_bytes());
            let before = e.clone();
            assert_eq!(super::patch(&mut e, PLACEHOLDER, 1), 0);
            assert_eq!(e, before);
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Ring buffer size in bytes: a power of two and a multiple of the page size.
    pub ringbuf_bytes: u32,
    /// Whether to load the task listing and attach the notes of changed descriptor
    /// tables (an agent that keeps owners between queries); `trace` has no use for them,
    /// and they run on system calls.
    pub owner_notes: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { ringbuf_bytes: sockstat_ebpf::DEFAULT_RINGBUF_BYTES, owner_notes: false }
    }
}

impl Tracer {
    /// Loads and attaches the programs, with the casts (see
    /// [`sockstat_ebpf::RDONLY_CAST_CALL`]) if the kernel has `bpf_rdonly_cast`; if the
    /// kernel refuses them, again without.
    ///
    /// # Errors
    /// No embedded object, no kernel BTF, or the kernel refused the transition program.
    pub fn load(opts: LoadOptions) -> Result<Tracer, EbpfError> {
        let prepared = Prepared::new(opts)?;
        if prepared.rdonly_cast.is_none() {
            tracing::info!("no bpf_rdonly_cast in the kernel: the programs read through helpers (slower)");
            return Tracer::load_prepared(&prepared, false);
        }
        match Tracer::load_prepared(&prepared, true) {
            // An accept hook that did not load with casts may load without.
            Ok(t) if t.accept_hook || !prepared.accept_possible() => Ok(t),
            Ok(t) => {
                drop(t);
                tracing::warn!("the accept hook did not load with casts: loading the programs without them");
                Tracer::load_prepared(&prepared, false)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the programs did not load with casts: loading them without");
                Tracer::load_prepared(&prepared, false)
            }
        }
    }

    /// [`Tracer::load`] with the casts on or off (off: the programs' path for kernels
    /// without `bpf_rdonly_cast`, which tests compare with the other).
    ///
    /// # Errors
    /// As [`Tracer::load`]; also when `casts` is asked of a kernel without the kfunc.
    pub fn load_with_casts(opts: LoadOptions, casts: bool) -> Result<Tracer, EbpfError> {
        let prepared = Prepared::new(opts)?;
        if casts && prepared.rdonly_cast.is_none() {
            return Err(EbpfError::NoCasts);
        }
        Tracer::load_prepared(&prepared, casts)
    }

    fn load_prepared(p: &Prepared, casts: bool) -> Result<Tracer, EbpfError> {
        let mut offsets = p.offsets;
        let object = match p.rdonly_cast.filter(|_| casts) {
            Some(id) => {
                offsets.casts = 1;
                Object::with_kfunc_calls(OBJECT, sockstat_ebpf::RDONLY_CAST_CALL, id)
            }
            None => Object::copy(OBJECT),
        };
        let (used, each, page) = p.rings;
        let mut loader = EbpfLoader::new();
        loader.override_global(OFFSETS_GLOBAL, &offsets, true).override_global(
            OWNER_OFFSETS_GLOBAL,
            &p.owner_offsets,
            true,
        );
        // Rings no CPU writes to keep a page.
        for (i, name) in EVENTS_MAPS.iter().enumerate() {
            loader.map_max_entries(name, if i < used { each } else { page });
        }
        let mut ebpf = loader.load(object.bytes()).map_err(|source| {
            let hint = match &source {
                aya::EbpfError::MapError(aya::maps::MapError::CreateError { io_error, .. }) => hint_for(io_error),
                aya::EbpfError::ProgramError(aya::programs::ProgramError::LoadError { io_error, .. }) => {
                    hint_for(io_error)
                }
                _ => "",
            };
            EbpfError::Load { hint, source: Box::new(source) }
        })?;
        // The program's only log is an error path; without the logger its messages would
        // be dropped silently.
        let logger = aya_log::EbpfLogger::init(&mut ebpf).ok();
        let kernel_btf = Btf::from_sys_fs().map_err(|e| EbpfError::Btf(BtfError::Parse(e.to_string())))?;
        attach_transition(
            &mut ebpf,
            &kernel_btf,
            PROGRAM_NAME,
            ("loading the tp_btf program", "attaching to sock:inet_sock_set_state"),
        )?;
        // Attached second, it runs second: after the first has said which transition it ran.
        let nested = match attach_transition(
            &mut ebpf,
            &kernel_btf,
            NESTED_PROGRAM,
            ("loading the second tp_btf program", "attaching the second program to sock:inet_sock_set_state"),
        ) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "no second transition program: transitions in a softirq that interrupts the first on its CPU are lost (and resynced)");
                false
            }
        };
        // Passive opens are attributed to the accepting process through this hook.
        // Without it sockstat still works: the owner falls back to the listener's.
        let accept_hook = p.accept_possible()
            && match attach_accept_hook(&mut ebpf) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, casts, "no accept hook: accepted sockets are attributed to their listener's owner");
                    false
                }
            };
        // -p through the agent: without the iterator, owners come from a /proc walk.
        let owners_iter = p.owner_offsets.valid == 1
            && match load_owners_iter(&mut ebpf, &kernel_btf) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "no owners iterator: -p walks /proc as ss does");
                    false
                }
            };
        // Owners kept between queries: without the listing and the notes, each -p walks
        // every process.
        let owner_marks = owners_iter
            && p.opts.owner_notes
            && match load_owner_marks(&mut ebpf, &kernel_btf) {
                Ok(()) => true,
                Err(e) => {
                    let cause = std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
                    tracing::warn!(error = %e, cause, "no notes of descriptor changes: each -p walks every process");
                    false
                }
            };
        // SYN-SENT with its port and SYN-RECV request sockets: without the program the
        // table lacks both, and queries ask the kernel for them.
        let sock_ops = match attach_sock_ops(&mut ebpf) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "no sock_ops program: SYN-SENT and SYN-RECV rows come from a sock_diag dump at query time");
                false
            }
        };
        let rings = EVENTS_MAPS[..used]
            .iter()
            .map(|&name| {
                RingBuf::try_from(ebpf.take_map(name).ok_or(EbpfError::MissingMap(name))?)
                    .map_err(|e| EbpfError::Map { map: name, source: Box::new(e) })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let events = EventRings { rings, bytes_each: each };
        let counters = PerCpuArray::try_from(ebpf.take_map(COUNTERS_MAP).ok_or(EbpfError::MissingMap(COUNTERS_MAP))?)
            .map_err(|e| EbpfError::Map { map: COUNTERS_MAP, source: Box::new(e) })?;
        Ok(Tracer {
            events: Some(events),
            counters,
            logger,
            nested,
            accept_hook,
            owners_iter,
            owner_marks,
            sock_ops,
            casts,
            ebpf,
        })
    }

    /// Whether the programs read kernel structures through `bpf_rdonly_cast` (see
    /// [`Tracer::load`]).
    pub fn casts(&self) -> bool {
        self.casts
    }

    /// Each loaded program's kernel statistics: run count and time (counted only while
    /// `kernel.bpf_stats_enabled` is 1, see [`stats_enabled`]).
    ///
    /// # Errors
    /// Asking the kernel about a program failed.
    pub fn program_stats(&self) -> Result<Vec<ProgramStats>, EbpfError> {
        let loaded = [
            (Role::Transition, PROGRAM_NAME, true),
            (Role::TransitionNested, NESTED_PROGRAM, self.nested),
            (Role::AcceptHook, ACCEPT_PROGRAM, self.accept_hook),
            (Role::OwnersEven, OWNERS_PROGRAMS[0], self.owners_iter),
            (Role::OwnersOdd, OWNERS_PROGRAMS[1], self.owners_iter),
            (Role::OwnerTasks, OWNER_TASKS_PROGRAM, self.owner_marks),
            (Role::OwnerNotes, OWNER_MARK_PROGRAM, self.owner_marks),
            (Role::OwnerNotesIoctlIn, OWNER_IOCTL_ENTER_PROGRAM, self.owner_marks),
            (Role::OwnerNotesIoctl, OWNER_IOCTL_EXIT_PROGRAM, self.owner_marks),
            (Role::SockOps, sockstat_ebpf::SOCK_OPS_PROGRAM, self.sock_ops),
        ];
        loaded
            .into_iter()
            .filter(|&(_, _, loaded)| loaded)
            .map(|(role, name, _)| {
                let program = self.ebpf.program(name).ok_or(EbpfError::MissingProgram(name))?;
                let fd = program.fd().map_err(|e| EbpfError::Program {
                    what: "program fd",
                    hint: "",
                    source: Box::new(e),
                })?;
                let info = prog_info(fd.as_fd()).map_err(|source| EbpfError::Info { program: name, source })?;
                Ok(ProgramStats { role, name, id: info.id, run_count: info.run_cnt, run_time_ns: info.run_time_ns })
            })
            .collect()
    }

    /// The owners programs (copies of their file descriptors: the walkers, and the task
    /// listing where the notes are made) and the notes' maps (changes, missed, epoch),
    /// for `bpf::owners` to walk on any thread. Once only: the maps go with them.
    ///
    /// # Errors
    /// The iterators did not load, or their file descriptors could not be copied.
    pub fn take_owners_programs(&mut self) -> Result<OwnersPrograms, EbpfError> {
        if !self.owners_iter {
            return Err(EbpfError::MissingProgram(OWNERS_PROGRAMS[0]));
        }
        let copy = |ebpf: &mut Ebpf, name: &'static str| -> Result<std::os::fd::OwnedFd, EbpfError> {
            let program = ebpf.program(name).ok_or(EbpfError::MissingProgram(name))?;
            let fd =
                program.fd().map_err(|e| EbpfError::Program { what: "program fd", hint: "", source: Box::new(e) })?;
            fd.as_fd().try_clone_to_owned().map_err(|source| EbpfError::Iter { source })
        };
        let walkers = [copy(&mut self.ebpf, OWNERS_PROGRAMS[0])?, copy(&mut self.ebpf, OWNERS_PROGRAMS[1])?];
        let tasks = if self.owner_marks { Some(copy(&mut self.ebpf, OWNER_TASKS_PROGRAM)?) } else { None };
        let notes = if self.owner_marks {
            match (
                self.ebpf.take_map(OWNER_CHANGES_MAP),
                self.ebpf.take_map(OWNER_MISSED_MAP),
                self.ebpf.take_map(sockstat_ebpf::OWNER_EPOCH_MAP),
            ) {
                (Some(changes), Some(missed), Some(epoch)) => Some((changes, missed, epoch)),
                _ => None,
            }
        } else {
            None
        };
        Ok((walkers, tasks, notes))
    }

    /// The ring buffers, for the event stream; `None` once taken.
    pub fn take_events(&mut self) -> Option<EventRings> {
        self.events.take()
    }

    /// Forwards whatever the program logged to the `log` facade (tracing picks it up).
    pub fn flush_log(&mut self) {
        if let Some(logger) = self.logger.as_mut() {
            logger.flush();
        }
    }

    pub fn counters(&self) -> Result<KernelCounters, EbpfError> {
        let sum = |c: Counter| -> Result<u64, EbpfError> {
            let values = self
                .counters
                .get(&(c as u32), 0)
                .map_err(|e| EbpfError::Map { map: COUNTERS_MAP, source: Box::new(e) })?;
            Ok(values.iter().copied().sum())
        };
        let mut missed = 0;
        for (name, loaded) in [(PROGRAM_NAME, true), (ACCEPT_PROGRAM, self.accept_hook)] {
            if !loaded {
                continue;
            }
            let fd = self
                .ebpf
                .program(name)
                .ok_or(EbpfError::MissingProgram(name))?
                .fd()
                .map_err(|e| EbpfError::Program { what: "program fd", hint: "", source: Box::new(e) })?;
            missed +=
                prog_info(fd.as_fd()).map_err(|source| EbpfError::Info { program: name, source })?.recursion_misses;
        }
        // Skipped runs of the first transition program that the second ran are not lost.
        // The second's own skipped runs are not either: it is only running on a CPU where
        // the first is not, and so the first runs what interrupts it.
        let rescued = if self.nested { sum(Counter::Rescued)? } else { 0 };
        Ok(KernelCounters {
            seen: sum(Counter::Seen)?,
            lost: sum(Counter::Lost)?,
            read_errors: sum(Counter::ReadErrors)?,
            missed: missed.saturating_sub(rescued),
            rescued,
        })
    }
}

/// How often (in events, minus one: a power of two minus one) each CPU's program asks
/// its ring buffer how much is waiting: at most 64 events apart, and so that the `cpus`
/// CPUs writing to one ring together add at most an eighth of `wakeup_bytes` between two
/// checks (a small ring is checked on every event).
fn wakeup_check_mask(wakeup_bytes: u32, cpus: usize) -> u32 {
    let cpus = u32::try_from(cpus).unwrap_or(u32::MAX);
    let record = sockstat_ebpf::StateEvent::SIZE as u32 + 8;
    let every = (wakeup_bytes / 8 / record / cpus.max(1)).clamp(1, 64);
    // The largest power of two not above `every`.
    (1u32 << (31 - every.leading_zeros())) - 1
}

/// One of [`OWNERS_PROGRAMS`], as the iterator program it is.
fn owners_program<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Iter, EbpfError> {
    ebpf.program_mut(name).ok_or(EbpfError::MissingProgram(name))?.try_into().map_err(|e| EbpfError::Program {
        what: "program type check",
        hint: "",
        source: Box::new(e),
    })
}

fn load_owners_iter(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), EbpfError> {
    for name in OWNERS_PROGRAMS {
        owners_program(ebpf, name)?.load(OWNERS_ITER, btf).map_err(|source| EbpfError::Program {
            what: "loading the owners iterator",
            hint: PERM_HINT,
            source: Box::new(source),
        })?;
    }
    Ok(())
}

/// Loads the task listing and attaches the programs that note changed descriptor tables
/// (`OWNER_MARK_TRACEPOINTS`, the ioctl pair). A tracepoint this kernel lacks is a system
/// call (or io_uring) it lacks, nothing to note; any other failure is an error: notes
/// missing from one path would leave owners stale.
fn load_owner_marks(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), EbpfError> {
    let program =
        |what, e: aya::programs::ProgramError| EbpfError::Program { what, hint: PERM_HINT, source: Box::new(e) };
    let tasks: &mut Iter = ebpf
        .program_mut(OWNER_TASKS_PROGRAM)
        .ok_or(EbpfError::MissingProgram(OWNER_TASKS_PROGRAM))?
        .try_into()
        .map_err(|e| program("program type check", e))?;
    tasks.load(OWNER_TASKS_ITER, btf).map_err(|e| program("loading the task listing", e))?;
    // Whether a tracepoint exists is read from tracefs (aya's attach does not tell a
    // missing one from other failures).
    let events =
        tracefs::ensure_mounted().map_err(|e| EbpfError::Iter { source: std::io::Error::other(e) })?.join("events");
    let exists = |category: &str, name: &str| events.join(category).join(name).is_dir();
    // Without these the notes would miss most changes: a kernel without syscall
    // tracepoints (CONFIG_FTRACE_SYSCALLS) keeps no owners.
    for point in ["sys_exit_socket", "sys_exit_close", "sys_exit_recvmsg", "sys_enter_ioctl", "sys_exit_ioctl"] {
        if !exists("syscalls", point) {
            return Err(EbpfError::Iter {
                source: std::io::Error::other(format!("no tracepoint syscalls:{point} (CONFIG_FTRACE_SYSCALLS)")),
            });
        }
    }
    for (name, points) in [
        (OWNER_MARK_PROGRAM, &OWNER_MARK_TRACEPOINTS[..]),
        // The exit before the entry: an entry seen with no exit attached would leave its
        // thread remembered.
        (OWNER_IOCTL_EXIT_PROGRAM, &[("syscalls", "sys_exit_ioctl")][..]),
        (OWNER_IOCTL_ENTER_PROGRAM, &[("syscalls", "sys_enter_ioctl")][..]),
    ] {
        let tp: &mut TracePoint = ebpf
            .program_mut(name)
            .ok_or(EbpfError::MissingProgram(name))?
            .try_into()
            .map_err(|e| program("program type check", e))?;
        tp.load().map_err(|e| program("loading a descriptor-change program", e))?;
        for &(category, point) in points {
            if !exists(category, point) {
                tracing::debug!(category, point, "no such tracepoint: nothing to note there");
                continue;
            }
            tp.attach(category, point).map_err(|e| program("attaching a descriptor-change program", e))?;
        }
    }
    Ok(())
}

/// Loads the sock_ops program, attaches it to the cgroup v2 root (every socket's
/// cgroup descends from it), then tells the transition program so (`CONFIG`).
fn attach_sock_ops(ebpf: &mut Ebpf) -> Result<(), EbpfError> {
    let program = |what, e: aya::programs::ProgramError| EbpfError::Program { what, hint: "", source: Box::new(e) };
    let cgroup = open_cgroup2_root()?;
    let prog: &mut aya::programs::SockOps = ebpf
        .program_mut(sockstat_ebpf::SOCK_OPS_PROGRAM)
        .ok_or(EbpfError::MissingProgram(sockstat_ebpf::SOCK_OPS_PROGRAM))?
        .try_into()
        .map_err(|e| program("program type check", e))?;
    prog.load().map_err(|e| program("loading the sock_ops program", e))?;
    // A bpf_link (what aya makes where the kernel has them) shares the cgroup with every
    // other program and takes no flags: "single" asks for none.
    prog.attach(&cgroup, aya::programs::CgroupAttachMode::Single)
        .map_err(|e| program("attaching the sock_ops program to the cgroup v2 root", e))?;
    let mut config: aya::maps::Array<_, u32> = aya::maps::Array::try_from(
        ebpf.map_mut(sockstat_ebpf::CONFIG_MAP).ok_or(EbpfError::MissingMap(sockstat_ebpf::CONFIG_MAP))?,
    )
    .map_err(|e| EbpfError::Map { map: sockstat_ebpf::CONFIG_MAP, source: Box::new(e) })?;
    config
        .set(0, sockstat_ebpf::CONFIG_SOCK_OPS, 0)
        .map_err(|e| EbpfError::Map { map: sockstat_ebpf::CONFIG_MAP, source: Box::new(e) })
}

/// The cgroup v2 root directory, opened. Where this mount namespace has no cgroup2 mount
/// (`ip netns exec` mounts a fresh /sys, hiding the host's), the agent mounts one on a
/// directory of its own, opens it, and unmounts it again: the open directory is all the
/// attach needs.
fn open_cgroup2_root() -> Result<std::fs::File, EbpfError> {
    let cgroup_err = |path: &std::path::Path, source| EbpfError::Cgroup { path: path.to_path_buf(), source };
    if let Some(root) = cgroup2_root() {
        return std::fs::File::open(&root).map_err(|e| cgroup_err(&root, e));
    }
    let dir = std::env::temp_dir().join(format!("sockstat-cgroup2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| cgroup_err(&dir, e))?;
    let mounted = nix::mount::mount(Some("cgroup2"), &dir, Some("cgroup2"), nix::mount::MsFlags::empty(), None::<&str>);
    let opened = match mounted {
        Ok(()) => {
            let f = std::fs::File::open(&dir).map_err(|e| cgroup_err(&dir, e));
            let _ = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH);
            f
        }
        Err(errno) => Err(EbpfError::NoCgroup2 { mount: Some(std::io::Error::from(errno)) }),
    };
    let _ = std::fs::remove_dir(&dir);
    opened
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on a hybrid system), from /proc/self/mountinfo.
fn cgroup2_root() -> Option<std::path::PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let mut fields = left.split_whitespace().skip(3);
        let (root, mountpoint) = (fields.next()?, fields.next()?);
        (fstype == "cgroup2" && root == "/").then(|| std::path::PathBuf::from(mountpoint.replace("\\040", " ")))
    })
}

/// Loads the tp_btf program `name` and attaches it to [`TRACEPOINT`]; `what` names the
/// two steps in an error.
fn attach_transition(
    ebpf: &mut Ebpf,
    kernel_btf: &Btf,
    name: &'static str,
    (loading, attaching): (&'static str, &'static str),
) -> Result<(), EbpfError> {
    let program: &mut BtfTracePoint = ebpf
        .program_mut(name)
        .ok_or(EbpfError::MissingProgram(name))?
        .try_into()
        .map_err(|e| EbpfError::Program { what: "program type check", hint: "", source: Box::new(e) })?;
    program.load(TRACEPOINT, kernel_btf).map_err(|source| {
        let hint = match &source {
            aya::programs::ProgramError::LoadError { io_error, .. } => hint_for(io_error),
            _ => "",
        };
        EbpfError::Program { what: loading, hint, source: Box::new(source) }
    })?;
    program.attach().map_err(|source| EbpfError::Program {
        what: attaching,
        hint: PERM_HINT,
        source: Box::new(source),
    })?;
    Ok(())
}

fn attach_accept_hook(ebpf: &mut Ebpf) -> Result<(), EbpfError> {
    let tp: &mut TracePoint = ebpf
        .program_mut(ACCEPT_PROGRAM)
        .ok_or(EbpfError::MissingProgram(ACCEPT_PROGRAM))?
        .try_into()
        .map_err(|e| EbpfError::Program { what: "program type check", hint: "", source: Box::new(e) })?;
    tp.load().map_err(|source| EbpfError::Program {
        what: "loading the accept tracepoint program",
        hint: PERM_HINT,
        source: Box::new(source),
    })?;
    for name in ACCEPT_TRACEPOINTS {
        tp.attach("syscalls", name).map_err(|source| EbpfError::Program {
            what: "attaching to the accept syscall tracepoints",
            hint: PERM_HINT,
            source: Box::new(source),
        })?;
    }
    Ok(())
}

/// tracefs: mounted on demand, and the place tracepoint record formats are read from.
pub mod tracefs {
    use std::path::{Path, PathBuf};

    const MOUNT_POINT: &str = "/sys/kernel/tracing";

    #[derive(Debug, thiserror::Error)]
    pub enum TracefsError {
        #[error("mounting tracefs on {MOUNT_POINT} (needs CAP_SYS_ADMIN)")]
        Mount(#[source] nix::Error),
        #[error("reading {path}")]
        Read {
            path: PathBuf,
            #[source]
            source: std::io::Error,
        },
        #[error("{path}: no field `{field}` with an offset")]
        Field { path: PathBuf, field: String },
    }

    /// Returns tracefs's directory, mounting it first if nothing is mounted there.
    pub fn ensure_mounted() -> Result<PathBuf, TracefsError> {
        let dir = PathBuf::from(MOUNT_POINT);
        if dir.join("events").is_dir() {
            return Ok(dir);
        }
        nix::mount::mount(Some("tracefs"), MOUNT_POINT, Some("tracefs"), nix::mount::MsFlags::empty(), None::<&str>)
            .map_err(TracefsError::Mount)?;
        tracing::info!("mounted tracefs on {MOUNT_POINT}");
        Ok(dir)
    }

    /// Byte offset of `field` in the records of tracepoint `category:name`.
    pub fn field_offset(dir: &Path, category: &str, name: &str, field: &str) -> Result<u32, TracefsError> {
        let path = dir.join("events").join(category).join(name).join("format");
        let text =
            std::fs::read_to_string(&path).map_err(|source| TracefsError::Read { path: path.clone(), source })?;
        parse_field_offset(&text, field).ok_or(TracefsError::Field { path, field: field.to_string() })
    }

    /// Parses `field:long ret;\toffset:16;\tsize:8;\tsigned:1;` lines.
    pub fn parse_field_offset(format: &str, field: &str) -> Option<u32> {
        format.lines().find_map(|line| {
            let decl = line.trim().strip_prefix("field:")?.split(';').next()?;
            let name = decl.split_whitespace().last()?.split('[').next()?;
            if name != field {
                return None;
            }
            let off = line.split("offset:").nth(1)?.split(';').next()?;
            off.trim().parse().ok()
        })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn finds_field_offsets_in_a_format_file() {
            let format = "name: sys_exit_accept4\nID: 2233\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;\n";
            assert_eq!(super::parse_field_offset(format, "ret"), Some(16));
            assert_eq!(super::parse_field_offset(format, "__syscall_nr"), Some(8));
            assert_eq!(super::parse_field_offset(format, "missing"), None);
            assert_eq!(super::parse_field_offset("field:long ret;\toffset:x;", "ret"), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ring_sizes, wakeup_check_mask};

    #[test]
    fn the_ring_bytes_are_shared_among_the_rings_the_cpus_use() {
        // 8 MiB on 2 CPUs: two rings of 4 MiB.
        assert_eq!(ring_sizes(8 << 20, 2, 4096), (2, 4 << 20));
        // One CPU: one ring, all of it.
        assert_eq!(ring_sizes(8 << 20, 1, 4096), (1, 8 << 20));
        // Three CPUs: three rings, each the power of two below a third.
        assert_eq!(ring_sizes(8 << 20, 3, 4096), (3, 2 << 20));
        // More CPUs than rings: eight rings, CPUs sharing them.
        assert_eq!(ring_sizes(8 << 20, 64, 4096), (8, 1 << 20));
        // Never below a page, even when that is more than asked for.
        assert_eq!(ring_sizes(4096, 2, 4096), (2, 4096));
        assert_eq!(ring_sizes(4096, 0, 4096), (1, 4096));
    }

    #[test]
    fn cpus_sharing_a_ring_ask_it_more_often() {
        // 4 MiB rings wake the reader at 512 KiB: one CPU per ring may go 64 events
        // between looks; a ring shared by 64 CPUs is asked on every few events.
        assert_eq!(wakeup_check_mask(512 << 10, 1), 63);
        assert!(wakeup_check_mask(512 << 10, 64) < 63);
        assert_eq!(wakeup_check_mask(512, 1), 0, "a small ring is asked on every event");
    }
}
