//! Loads sockstat's eBPF program (embedded at build time by `cargo xtask build`), gives it
//! the kernel offsets from BTF, and attaches it as tp_btf to `sock:inet_sock_set_state`.
//! A tp_btf attach goes through bpf_raw_tracepoint_open, so the core program needs
//! neither tracefs nor kprobes (both absent on a fresh machine of ours). The accept hook
//! is a classic tracepoint: tracefs is mounted for it when missing. Dropping the
//! [`Tracer`] detaches everything.

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, Iter, TracePoint},
};
use sockstat_ebpf::{
    ACCEPT_PROGRAM, ACCEPT_TRACEPOINTS, COUNTERS_MAP, Counter, EVENTS_MAP, OFFSETS_GLOBAL, OWNER_OFFSETS_GLOBAL,
    OWNERS_ITER, OWNERS_PROGRAM, OwnerRecord, PROGRAM_NAME, TRACEPOINT,
};

use crate::bpf::btf::{self, BtfError};

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
    #[error("the owners iterator gave {len} bytes: not whole records (the last starts at offset {offset})")]
    TornOwners { len: usize, offset: usize },
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
}

/// A loaded and attached program. Fields drop in declaration order; `ebpf` last, which
/// detaches the program.
pub struct Tracer {
    events: Option<RingBuf<MapData>>,
    counters: PerCpuArray<MapData, u64>,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
    /// Whether the accept hook (syscall exit tracepoints) is attached.
    pub accept_hook: bool,
    /// Whether the owners iterator loaded ([`Tracer::owners`]).
    pub owners_iter: bool,
    ebpf: Ebpf,
}

#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Ring buffer size in bytes: a power of two and a multiple of the page size.
    pub ringbuf_bytes: u32,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { ringbuf_bytes: sockstat_ebpf::DEFAULT_RINGBUF_BYTES }
    }
}

impl Tracer {
    pub fn load(opts: LoadOptions) -> Result<Tracer, EbpfError> {
        if OBJECT.is_empty() {
            return Err(EbpfError::NotEmbedded);
        }
        let (mut offsets, owner_offsets) = btf::kernel_and_owner_offsets()?;
        // The owners iterator is optional: without its offsets it stays unloaded.
        let owner_offsets = owner_offsets.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "no owners iterator: -p walks /proc as ss does");
            sockstat_ebpf::OwnerOffsets::default()
        });
        // Readers drain every DRAIN_INTERVAL_MS; wake them early at an eighth full.
        offsets.wakeup_bytes = opts.ringbuf_bytes / 8;
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
        let mut ebpf = EbpfLoader::new()
            .override_global(OFFSETS_GLOBAL, &offsets, true)
            .override_global(OWNER_OFFSETS_GLOBAL, &owner_offsets, true)
            .map_max_entries(EVENTS_MAP, opts.ringbuf_bytes)
            .load(OBJECT)
            .map_err(|source| {
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
        let program: &mut BtfTracePoint = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(EbpfError::MissingProgram(PROGRAM_NAME))?
            .try_into()
            .map_err(|e| EbpfError::Program { what: "program type check", hint: "", source: Box::new(e) })?;
        program.load(TRACEPOINT, &kernel_btf).map_err(|source| {
            let hint = match &source {
                aya::programs::ProgramError::LoadError { io_error, .. } => hint_for(io_error),
                _ => "",
            };
            EbpfError::Program { what: "loading the tp_btf program", hint, source: Box::new(source) }
        })?;
        program.attach().map_err(|source| EbpfError::Program {
            what: "attaching to sock:inet_sock_set_state",
            hint: PERM_HINT,
            source: Box::new(source),
        })?;
        // Passive opens are attributed to the accepting process through this hook.
        // Without it sockstat still works: the owner falls back to the listener's.
        let accept_hook = accept_ret.is_ok()
            && match attach_accept_hook(&mut ebpf) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "no accept hook: accepted sockets are attributed to their listener's owner");
                    false
                }
            };
        // -p through the agent: without the iterator, owners come from a /proc walk.
        let owners_iter = owner_offsets.valid == 1
            && match load_owners_iter(&mut ebpf, &kernel_btf) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "no owners iterator: -p walks /proc as ss does");
                    false
                }
            };
        let events = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).ok_or(EbpfError::MissingMap(EVENTS_MAP))?)
            .map_err(|e| EbpfError::Map { map: EVENTS_MAP, source: Box::new(e) })?;
        let counters = PerCpuArray::try_from(ebpf.take_map(COUNTERS_MAP).ok_or(EbpfError::MissingMap(COUNTERS_MAP))?)
            .map_err(|e| EbpfError::Map { map: COUNTERS_MAP, source: Box::new(e) })?;
        Ok(Tracer { events: Some(events), counters, logger, accept_hook, owners_iter, ebpf })
    }

    /// A fresh walk of the owners iterator, to be read with [`read_owners`] (on any
    /// thread: the walk happens as the file is read).
    ///
    /// # Errors
    /// The iterator did not load, or attaching it failed.
    pub fn owners_reader(&mut self) -> Result<std::fs::File, EbpfError> {
        if !self.owners_iter {
            return Err(EbpfError::MissingProgram(OWNERS_PROGRAM));
        }
        let iter: &mut Iter = self
            .ebpf
            .program_mut(OWNERS_PROGRAM)
            .ok_or(EbpfError::MissingProgram(OWNERS_PROGRAM))?
            .try_into()
            .map_err(|e| EbpfError::Program { what: "program type check", hint: "", source: Box::new(e) })?;
        let program = |what, e| EbpfError::Program { what, hint: "", source: Box::new(e) };
        // Each read of a fresh link is a fresh walk; the link goes with the file.
        let link = iter.attach().map_err(|e| program("attaching the owners iterator", e))?;
        let link = iter.take_link(link).map_err(|e| program("taking the owners iterator link", e))?;
        link.into_file().map_err(|e| EbpfError::Iter { source: std::io::Error::other(e) })
    }

    /// The ring buffer, for the event stream; `None` once taken.
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
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
        Ok(KernelCounters {
            seen: sum(Counter::Seen)?,
            lost: sum(Counter::Lost)?,
            read_errors: sum(Counter::ReadErrors)?,
        })
    }
}

/// Reads a walk of the owners iterator ([`Tracer::owners_reader`]) to its end.
///
/// # Errors
/// Reading failed, or the bytes are not whole records.
pub fn read_owners(mut file: std::fs::File) -> Result<Vec<OwnerRecord>, EbpfError> {
    use std::io::Read;
    // A read that walked many objects without output returns EAGAIN (the kernel's
    // MAX_ITER_OBJECTS); the walk goes on with the next read.
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {}
            Err(source) => return Err(EbpfError::Iter { source }),
        }
    }
    parse_owner_records(&bytes)
}

fn load_owners_iter(ebpf: &mut Ebpf, btf: &Btf) -> Result<(), EbpfError> {
    let iter: &mut Iter = ebpf
        .program_mut(OWNERS_PROGRAM)
        .ok_or(EbpfError::MissingProgram(OWNERS_PROGRAM))?
        .try_into()
        .map_err(|e| EbpfError::Program { what: "program type check", hint: "", source: Box::new(e) })?;
    iter.load(OWNERS_ITER, btf).map_err(|source| EbpfError::Program {
        what: "loading the owners iterator",
        hint: PERM_HINT,
        source: Box::new(source),
    })
}

/// The iterator's output: whole [`OwnerRecord`]s back to back.
///
/// # Errors
/// A length that is not a multiple of the record size (a torn read).
pub fn parse_owner_records(bytes: &[u8]) -> Result<Vec<OwnerRecord>, EbpfError> {
    if !bytes.len().is_multiple_of(OwnerRecord::SIZE) {
        return Err(EbpfError::TornOwners { len: bytes.len(), offset: bytes.len() - bytes.len() % OwnerRecord::SIZE });
    }
    Ok(bytes
        .chunks_exact(OwnerRecord::SIZE)
        .map(|c| {
            let u32_at = |i: usize| u32::from_ne_bytes(c[i..i + 4].try_into().unwrap_or_default());
            let u64_at = |i: usize| u64::from_ne_bytes(c[i..i + 8].try_into().unwrap_or_default());
            OwnerRecord {
                pid: u32_at(0),
                fd: u32_at(4),
                inode: u64_at(8),
                cookie: u64_at(16),
                comm: c[24..40].try_into().unwrap_or_default(),
            }
        })
        .collect())
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
