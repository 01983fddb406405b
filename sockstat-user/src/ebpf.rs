//! Loads sockstat's eBPF program (embedded at build time by `cargo xtask build`), gives it
//! the kernel offsets from BTF, and attaches it as tp_btf to `sock:inet_sock_set_state`.
//! A tp_btf attach goes through bpf_raw_tracepoint_open, so it needs neither tracefs nor
//! kprobes (both absent on a fresh machine of ours). Dropping the [`Tracer`] detaches.

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, RingBuf},
    programs::BtfTracePoint,
};
use sockstat_ebpf::{COUNTERS_MAP, Counter, EVENTS_MAP, OFFSETS_GLOBAL, PROGRAM_NAME, TRACEPOINT};

use crate::btf::{self, BtfError};

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
    _ebpf: Ebpf,
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
        let offsets = btf::kernel_offsets()?;
        let mut ebpf = EbpfLoader::new()
            .override_global(OFFSETS_GLOBAL, &offsets, true)
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
        let events = RingBuf::try_from(ebpf.take_map(EVENTS_MAP).ok_or(EbpfError::MissingMap(EVENTS_MAP))?)
            .map_err(|e| EbpfError::Map { map: EVENTS_MAP, source: Box::new(e) })?;
        let counters = PerCpuArray::try_from(ebpf.take_map(COUNTERS_MAP).ok_or(EbpfError::MissingMap(COUNTERS_MAP))?)
            .map_err(|e| EbpfError::Map { map: COUNTERS_MAP, source: Box::new(e) })?;
        Ok(Tracer { events: Some(events), counters, logger, _ebpf: ebpf })
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
        Ok(KernelCounters { seen: sum(Counter::Seen)?, lost: sum(Counter::Lost)?, read_errors: sum(Counter::ReadErrors)? })
    }
}
