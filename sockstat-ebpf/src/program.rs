//! The transition program (tp_btf) and the accept hook (a classic tracepoint). Kernel
//! structure fields sit at offsets userspace resolved from BTF (see `KernelOffsets`): Rust
//! eBPF has no CO-RE. They reach the programs through a read-only global that the loader
//! freezes, so the verifier knows each offset as a constant.
//!
//! What an event costs is mostly its helper calls (each one a few tens of ns on our
//! machines), so the programs make as few as they can (see docs/agent.md, "What the
//! programs cost"):
//! - Through a pointer the verifier types from BTF (the tp_btf argument, the current task,
//!   a pointer field loaded through one, what `bpf_rdonly_cast` returns), a field is one
//!   load: the verifier checks the offset against the type's layout when the program
//!   loads, and the JIT guards the load (a bad address reads zero). No helper call.
//! - `bpf_rdonly_cast` types an address for free (the verifier turns the call into a
//!   register move): it reaches `tcp_sock` from the `sock` argument, and the accept hook's
//!   file, socket and sock from the one number its walk reads. Without it (the loader says
//!   so in `casts`), a `bpf_skc_to_tcp_sock` call and, in the accept hook, helper reads.
//! - pid, tid and comm are loads from the BTF-typed current task (one helper call instead
//!   of two); the socket's cookie is a load once the socket has one.
//! - The event is written field by field straight into its ring-buffer slot: no zeroing
//!   first (every byte is written once), no copy through the stack. Whether to wake the
//!   reader is asked of the ring every few dozen events, not on each.

use core::{ffi::c_void, mem::MaybeUninit};

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_ktime_get_ns,
        generated::{
            bpf_get_current_task_btf, bpf_get_netns_cookie, bpf_get_smp_processor_id, bpf_get_socket_cookie,
            bpf_probe_read_kernel, bpf_skc_to_tcp_sock,
        },
    },
    macros::{btf_tracepoint, map, sock_ops, tracepoint},
    maps::{Array, PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, SockOpsContext, TracePointContext},
};
use sockstat_ebpf::{
    AF_INET, AF_INET6, CONFIG_SOCK_OPS, COUNTER_SLOTS, Counter, EVENT_ACCEPT, EVENT_REQUEST, EVENT_TRANSITION,
    IPPROTO_TCP, KernelOffsets, RDONLY_CAST_CALL, SOCK_COPY_BYTES, StateEvent, TcpState,
};

// The rings of `EVENTS_MAPS`, one per CPU (modulo EVENT_RINGS); the loader sizes those
// the machine's CPUs use and leaves the others a page.
const OBJECT_RING_BYTES: u32 = 4096;
#[map(name = "EVENTS0")]
static EVENTS0: RingBuf = RingBuf::with_byte_size(OBJECT_RING_BYTES, 0);
#[map(name = "EVENTS1")]
static EVENTS1: RingBuf = RingBuf::with_byte_size(OBJECT_RING_BYTES, 0);
#[map(name = "EVENTS2")]
static EVENTS2: RingBuf = RingBuf::with_byte_size(OBJECT_RING_BYTES, 0);
#[map(name = "EVENTS3")]
static EVENTS3: RingBuf = RingBuf::with_byte_size(OBJECT_RING_BYTES, 0);
#[map(name = "EVENTS4")]
static EVENTS4: RingBuf = RingBuf::with_byte_size(OBJECT_RING_BYTES, 0);
#[map(name = "EVENTS5")]
static EVENTS5: RingBuf = RingBuf::with_byte_size(OBJECT_RING_BYTES, 0);
#[map(name = "EVENTS6")]
static EVENTS6: RingBuf = RingBuf::with_byte_size(OBJECT_RING_BYTES, 0);
#[map(name = "EVENTS7")]
static EVENTS7: RingBuf = RingBuf::with_byte_size(OBJECT_RING_BYTES, 0);
const _: () = assert!(sockstat_ebpf::EVENT_RINGS == 8);

/// Runs `$body` with `$ring` bound to this CPU's ring, `EVENTS{cpu % 8}`. A match at each
/// use rather than a ring pointer kept in a register: the verifier then checks what
/// follows once, not once per ring.
macro_rules! on_this_cpus_ring {
    ($ring:ident => $body:expr) => {{
        // SAFETY: no preconditions (inlined by the verifier on x86-64). A program run does
        // not move to another CPU: reserve and query name the same ring.
        match unsafe { bpf_get_smp_processor_id() } % 8 {
            0 => {
                let $ring = &EVENTS0;
                $body
            }
            1 => {
                let $ring = &EVENTS1;
                $body
            }
            2 => {
                let $ring = &EVENTS2;
                $body
            }
            3 => {
                let $ring = &EVENTS3;
                $body
            }
            4 => {
                let $ring = &EVENTS4;
                $body
            }
            5 => {
                let $ring = &EVENTS5;
                $body
            }
            6 => {
                let $ring = &EVENTS6;
                $body
            }
            _ => {
                let $ring = &EVENTS7;
                $body
            }
        }
    }};
}

#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

/// Flags userspace sets after attaching ([`CONFIG_SOCK_OPS`]).
#[map(name = "CONFIG")]
static CONFIG: Array<u32> = Array::with_max_entries(1, 0);

/// Filled by the loader (`EbpfLoader::override_global`) before the program is loaded.
#[unsafe(no_mangle)]
static OFFSETS: KernelOffsets = KernelOffsets {
    skc_daddr: 0,
    skc_rcv_saddr: 0,
    skc_dport: 0,
    skc_num: 0,
    skc_family: 0,
    skc_net: 0,
    skc_v6_daddr: 0,
    skc_v6_rcv_saddr: 0,
    net_ns_inum: 0,
    sk_protocol: 0,
    sk_ack_backlog: 0,
    sk_max_ack_backlog: 0,
    tcp_bytes_acked: 0,
    tcp_bytes_received: 0,
    tcp_rcv_nxt: 0,
    tcp_copied_seq: 0,
    tcp_write_seq: 0,
    tcp_snd_una: 0,
    skc_ipv6only_byte: 0,
    skc_ipv6only_bit: 0,
    skc_bound_dev_if: 0,
    sk_cookie: 0,
    task_files: 0,
    files_fdt: 0,
    fdt_fd: 0,
    fdt_max_fds: 0,
    file_private_data: 0,
    socket_sk: 0,
    tp_exit_ret: 0,
    wakeup_bytes: 0,
    valid: 0,
    task_pid: 0,
    task_tgid: 0,
    task_comm: 0,
    wakeup_check_mask: 0,
    sock_copy_len: 0,
    btf_file: 0,
    btf_socket: 0,
    btf_tcp_sock: 0,
    btf_fd_slot: 0,
    casts: 0,
    sk_err: 0,
    tcp_total_retrans: 0,
    tcp_srtt_us: 0,
    sk_cgrp_cgroup: 0,
    cgroup_kn: 0,
    kernfs_node_id: 0,
};

/// Offset of `long ret` in the records of the syscall exit tracepoints on every kernel
/// with them (after the 8-byte common header and `int __syscall_nr`, padded). A context
/// field is read with a load at a constant offset in the instruction (the verifier refuses
/// a context pointer moved by a register): another offset than this one takes a helper.
const SYS_EXIT_RET: usize = 16;

// The event's addresses are written as two u64 each: they must be 8-aligned in the slot
// (the ring buffer's slots are).
const _: () = assert!(core::mem::offset_of!(StateEvent, saddr) % 8 == 0);
const _: () = assert!(core::mem::offset_of!(StateEvent, daddr) % 8 == 0);
const _: () = assert!(core::mem::offset_of!(StateEvent, comm) % 8 == 0);

/// Counts one `counter` on this CPU; returns this CPU's new count. (The verifier inlines
/// the per-CPU array lookup: no helper call.)
#[inline(always)]
fn bump(counter: Counter) -> u64 {
    match COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        Some(slot) => unsafe {
            *slot += 1;
            *slot
        },
        None => 0,
    }
}

/// Reads one field of OFFSETS. Volatile so the compiler does not fold the zero
/// initialiser above; the verifier knows the value (the map is frozen), which it needs
/// for the typed loads below.
macro_rules! offset {
    ($field:ident) => {
        // SAFETY: OFFSETS is a read-only global the loader writes before load.
        unsafe { core::ptr::read_volatile(&raw const OFFSETS.$field) }
    };
}

/// Writes one field of the event being built in its ring-buffer slot.
macro_rules! put {
    ($ev:ident . $field:ident = $value:expr) => {{
        let value = $value;
        // SAFETY: `$ev` points at a reserved ring-buffer slot of size_of::<StateEvent>()
        // bytes, exclusively ours until submit; a raw write never reads the memory.
        unsafe { (&raw mut (*$ev).$field).write(value) }
    }};
}

/// A field at `base + off` of a kernel object the verifier types from BTF: one load,
/// checked against the type's layout at load time (`off` must be an OFFSETS field, which
/// the verifier sees as a constant), a fault reading as zero.
///
/// # Safety
/// `base` comes from the verifier's typed pointers (a tp_btf argument, a helper returning
/// a BTF pointer, or a pointer field loaded through one) and `off` is the offset of a
/// `T`-sized field of that type.
#[inline(always)]
unsafe fn load<T: Copy>(base: *const u8, off: u32) -> T {
    // SAFETY: see above; the JIT guards the load (BPF_PROBE_MEM).
    unsafe { core::ptr::read_volatile(base.wrapping_add(off as usize).cast::<T>()) }
}

/// `bpf_rdonly_cast(ptr, btf_id)`: `ptr` typed as a pointer to the kernel struct whose BTF
/// id is `btf_id` (a constant: an OFFSETS field), untrusted and read-only, so its fields
/// are plain guarded loads. The verifier replaces the call with a register move. The
/// program calls the placeholder helper id RDONLY_CAST_CALL, which the loader rewrites
/// into the kfunc call; only call this where `casts` is set.
///
/// # Safety
/// `offset!(casts)` is 1 (else the placeholder stays and the program does not load).
#[inline(always)]
unsafe fn rdonly_cast(ptr: u64, btf_id: u32) -> *const u8 {
    // SAFETY: as aya's helpers call theirs: a call to a constant the loader resolves.
    unsafe {
        let kfunc: unsafe extern "C" fn(u64, u32) -> *const u8 = core::mem::transmute(RDONLY_CAST_CALL as usize);
        kfunc(ptr, btf_id)
    }
}

/// A `T` at `base + off` in kernel memory through `bpf_probe_read_kernel`, for untyped
/// addresses; counts failures and yields zero.
#[inline(always)]
fn read<T: Copy + Default>(base: u64, off: u32) -> T {
    let mut out = MaybeUninit::<T>::uninit();
    // SAFETY: the helper validates the source address and writes all of `out`, zeros on
    // failure.
    let ret = unsafe {
        bpf_probe_read_kernel(
            out.as_mut_ptr().cast::<c_void>(),
            core::mem::size_of::<T>() as u32,
            base.wrapping_add(u64::from(off)) as *const c_void,
        )
    };
    if ret < 0 {
        bump(Counter::ReadErrors);
        return T::default();
    }
    // SAFETY: written by the helper above.
    unsafe { out.assume_init() }
}

/// The `tcp_sock` fields an event carries.
#[derive(Clone, Copy, Default)]
struct TcpFields {
    rcv_nxt: u32,
    copied_seq: u32,
    write_seq: u32,
    snd_una: u32,
    bytes_acked: u64,
    bytes_received: u64,
    /// Read at a transition to CLOSE only (0 otherwise): the connection's health at its
    /// end.
    total_retrans: u32,
    srtt_us: u32,
}

/// Where an event's socket fields come from: a BTF-typed socket, or a socket at an
/// untyped address.
trait Sock {
    /// A `T` at `off` in `struct sock_common`.
    fn common<T: Copy + Default>(&self, off: u32) -> T;
    /// A `T` at `off` in `struct sock`, beyond its `sock_common`.
    fn sock<T: Copy + Default>(&self, off: u32) -> T;
    /// The `tcp_sock` fields; with `closing`, the health counters too.
    fn tcp(&self, closing: bool) -> TcpFields;
    /// `sk->__sk_common.skc_net.net->ns.inum`.
    fn netns(&self) -> u32;
    /// `sk->sk_cgrp_data.cgroup->kn->id`: the cgroup v2 id; 0 if not known.
    fn cgroup(&self) -> u64;
}

/// A BTF-typed socket (the tp_btf argument, or the accept hook's cast one): every field a
/// plain load.
struct Typed(*const u8);

impl Sock for Typed {
    #[inline(always)]
    fn common<T: Copy + Default>(&self, off: u32) -> T {
        // SAFETY: a typed `struct sock *`; the offsets are sock_common's.
        unsafe { load(self.0, off) }
    }

    #[inline(always)]
    fn sock<T: Copy + Default>(&self, off: u32) -> T {
        // SAFETY: as above, offsets of struct sock.
        unsafe { load(self.0, off) }
    }

    #[inline(always)]
    fn tcp(&self, closing: bool) -> TcpFields {
        // tcp_sock's fields lie beyond struct sock, which is all the verifier lets a sock
        // pointer reach: the same address typed as a tcp_sock (the program checked the
        // protocol), by a free cast, or by a helper that checks it is one (null if not).
        let tp = if offset!(casts) != 0 {
            let id = offset!(btf_tcp_sock);
            // SAFETY: casts are on.
            unsafe { rdonly_cast(self.0 as u64, id) }
        } else {
            // SAFETY: the helper takes any BTF-typed socket.
            unsafe { bpf_skc_to_tcp_sock(self.0 as *mut c_void) as *const u8 }
        };
        if tp.is_null() {
            return TcpFields::default();
        }
        let field = |off: u32| tp.wrapping_add(off as usize);
        let (rcv_nxt, copied_seq) = (field(offset!(tcp_rcv_nxt)), field(offset!(tcp_copied_seq)));
        let (write_seq, snd_una) = (field(offset!(tcp_write_seq)), field(offset!(tcp_snd_una)));
        let (acked, received) = (field(offset!(tcp_bytes_acked)), field(offset!(tcp_bytes_received)));
        // Two more loads, at the one transition a connection's health is recorded.
        let (total_retrans, srtt_us) = if closing {
            let (retrans, srtt) = (field(offset!(tcp_total_retrans)), field(offset!(tcp_srtt_us)));
            // SAFETY: a BTF-typed tcp_sock; the offsets are tcp_sock's (both u32).
            unsafe { (load::<u32>(retrans, 0), load::<u32>(srtt, 0) >> 3) }
        } else {
            (0, 0)
        };
        // SAFETY: a BTF-typed tcp_sock; the offsets are tcp_sock's.
        unsafe {
            TcpFields {
                rcv_nxt: load(rcv_nxt, 0),
                copied_seq: load(copied_seq, 0),
                write_seq: load(write_seq, 0),
                snd_una: load(snd_una, 0),
                bytes_acked: load(acked, 0),
                bytes_received: load(received, 0),
                total_retrans,
                srtt_us,
            }
        }
    }

    #[inline(always)]
    fn netns(&self) -> u32 {
        // `skc_net` (possible_net_t) holds one `struct net *`: loaded through a typed
        // pointer it is typed too.
        let (skc_net, inum) = (offset!(skc_net), offset!(net_ns_inum));
        // SAFETY: a typed sock; skc_net's offset; then a typed struct net.
        unsafe {
            let net: *const u8 = load(self.0, skc_net);
            if net.is_null() { 0 } else { load(net, inum) }
        }
    }

    #[inline(always)]
    fn cgroup(&self) -> u64 {
        // Three loads through typed pointers (sock -> cgroup -> kernfs_node): what
        // bpf_sk_cgroup_id() returns, without a helper (which tracing programs lack).
        let (cgrp, kn, id) = (offset!(sk_cgrp_cgroup), offset!(cgroup_kn), offset!(kernfs_node_id));
        if cgrp == 0 {
            return 0;
        }
        // SAFETY: a typed sock; `sk_cgrp_data.cgroup` is a struct cgroup pointer, its
        // `kn` a struct kernfs_node pointer, both typed when loaded through typed ones.
        unsafe {
            let cgroup: *const u8 = load(self.0, cgrp);
            if cgroup.is_null() {
                return 0;
            }
            let node: *const u8 = load(cgroup, kn);
            if node.is_null() { 0 } else { load(node, id) }
        }
    }
}

/// Scratch space for the accept hook's copy of a socket: too large for the 512-byte BPF
/// stack. Per CPU, so concurrent runs on other CPUs do not share it (a program run is not
/// preempted on its CPU).
#[map(name = "SOCK_COPY")]
static SOCK_COPY: PerCpuArray<[u8; SOCK_COPY_BYTES as usize]> = PerCpuArray::with_max_entries(1, 0);

/// Without casts, the accept hook's socket at an untyped address, copied with one read:
/// from its start to the end of the last field an event needs (`sock_copy_len`),
/// sock_common, sock and tcp_sock fields alike. One call copying a couple of KiB costs
/// less than a call per field.
struct Copied {
    copy: *const u8,
    len: usize,
}

impl Copied {
    #[inline(always)]
    fn new(sk: u64) -> Option<Copied> {
        let copy = SOCK_COPY.get_ptr_mut(0)?.cast::<u8>();
        let len = offset!(sock_copy_len).min(SOCK_COPY_BYTES);
        // SAFETY: the helper validates the source and writes `len` bytes of the per-CPU
        // scratch (no larger), zeros on failure. The loader computed `len` from fields of
        // struct tcp_sock, so the copy stays inside the socket.
        let ret = unsafe { bpf_probe_read_kernel(copy.cast::<c_void>(), len, sk as *const c_void) };
        if ret < 0 {
            bump(Counter::ReadErrors);
        }
        Some(Copied { copy, len: len as usize })
    }

    /// A `T` at `off` in the copy; zero beyond it (the loader sized the copy to hold every
    /// field, and the verifier, seeing constants, drops the test).
    #[inline(always)]
    fn at<T: Copy + Default>(&self, off: u32) -> T {
        let off = off as usize;
        if off + core::mem::size_of::<T>() > self.len {
            return T::default();
        }
        // SAFETY: in bounds (above); the field is naturally aligned in the socket, and
        // so in the 8-aligned copy.
        unsafe { self.copy.add(off).cast::<T>().read() }
    }
}

impl Sock for Copied {
    #[inline(always)]
    fn common<T: Copy + Default>(&self, off: u32) -> T {
        self.at(off)
    }

    #[inline(always)]
    fn sock<T: Copy + Default>(&self, off: u32) -> T {
        self.at(off)
    }

    /// Only accept notices come this way: they carry no health counters.
    #[inline(always)]
    fn tcp(&self, _closing: bool) -> TcpFields {
        TcpFields {
            rcv_nxt: self.at(offset!(tcp_rcv_nxt)),
            copied_seq: self.at(offset!(tcp_copied_seq)),
            write_seq: self.at(offset!(tcp_write_seq)),
            snd_una: self.at(offset!(tcp_snd_una)),
            bytes_acked: self.at(offset!(tcp_bytes_acked)),
            bytes_received: self.at(offset!(tcp_bytes_received)),
            total_retrans: 0,
            srtt_us: 0,
        }
    }

    #[inline(always)]
    fn netns(&self) -> u32 {
        let net: u64 = self.common(offset!(skc_net));
        if net == 0 { 0 } else { read(net, offset!(net_ns_inum)) }
    }

    /// Accept notices need no cgroup: the socket's transitions carried it.
    #[inline(always)]
    fn cgroup(&self) -> u64 {
        0
    }
}

/// The transitions [`sockstat_set_state`] ran last on this CPU, each as [`handled_key`]
/// (0: none), and where the next goes: [`sockstat_nested`] runs every transition it does
/// not find here. A few, not one: a transition the first program runs while the second is
/// about to look (in the kernel's entry to it, before its first instruction) stays here,
/// unclaimed, beside the next ones.
#[map(name = "HANDLED")]
static HANDLED: PerCpuArray<[u64; HANDLED_SLOTS + 1]> = PerCpuArray::with_max_entries(1, 0);

const HANDLED_SLOTS: usize = 4;

/// One transition in flight on a CPU: its socket's address and its two states (a
/// socket is kilobytes long: no two in flight are closer than 256 bytes); never 0.
#[inline(always)]
fn handled_key(sk: u64, oldstate: i32, newstate: i32) -> u64 {
    sk.wrapping_add((((oldstate as u64) & 15) << 4 | (newstate as u64) & 15) + 1)
}

#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn sockstat_set_state(ctx: BtfTracePointContext) -> i32 {
    let ret = transition(&ctx);
    // Said last: a transition that interrupts this run anywhere (the kernel's entry and
    // exit around the program included) is not this one, and the second program runs it.
    let key = handled_key(ctx.arg::<u64>(0), ctx.arg(1), ctx.arg(2));
    if let Some(h) = HANDLED.get_ptr_mut(0) {
        // SAFETY: this CPU's slot; the last word is the cursor (below HANDLED_SLOTS).
        unsafe {
            let at = ((*h)[HANDLED_SLOTS] as usize) % HANDLED_SLOTS;
            (&raw mut (*h)[at]).write_volatile(key);
            (*h)[HANDLED_SLOTS] = ((at + 1) % HANDLED_SLOTS) as u64;
        }
    }
    ret
}

/// Runs after [`sockstat_set_state`] on each transition: claims the one it just ran, or
/// runs a transition the kernel did not run it for. That is one that interrupted it on
/// its CPU (a softirq ending an interrupt, loopback's receive path): the kernel does not
/// run a program again on a CPU where it is running (its `recursion_misses`). The
/// nesting stops there: a softirq does not interrupt a softirq, and no TCP state changes
/// in a hard interrupt.
#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn sockstat_nested(ctx: BtfTracePointContext) -> i32 {
    let key = handled_key(ctx.arg::<u64>(0), ctx.arg(1), ctx.arg(2));
    let Some(h) = HANDLED.get_ptr_mut(0) else { return 0 };
    for at in 0..HANDLED_SLOTS {
        // SAFETY: this CPU's slot.
        unsafe {
            let slot = &raw mut (*h)[at];
            if slot.read_volatile() == key {
                slot.write_volatile(0);
                return 0;
            }
        }
    }
    bump(Counter::Rescued);
    transition(&ctx)
}

/// One transition of `sock:inet_sock_set_state`, whichever program the kernel ran.
#[inline(always)]
fn transition(ctx: &BtfTracePointContext) -> i32 {
    // TP_PROTO(const struct sock *sk, const int oldstate, const int newstate):
    // include/trace/events/sock.h.
    let sk: *const u8 = ctx.arg(0);
    let oldstate: i32 = ctx.arg(1);
    let newstate: i32 = ctx.arg(2);
    if offset!(valid) == 0 || sk.is_null() {
        aya_log_ebpf::error!(ctx, "sockstat: offsets not set or null sock; event dropped");
        return 0;
    }
    let sock = Typed(sk);
    if sock.sock::<u16>(offset!(sk_protocol)) != u16::from(IPPROTO_TCP) {
        return 0;
    }
    // connect() sets SYN-SENT before it picks the local port; the sock_ops program,
    // called once the port is there, reports this transition instead when attached.
    if newstate == TcpState::SynSent as i32 && CONFIG.get(0).is_some_and(|c| c & CONFIG_SOCK_OPS != 0) {
        return 0;
    }
    // The cookie bpf_get_socket_cookie generated is cached in the socket (the first
    // value stored wins): read it, and call the helper only for a socket without one yet.
    let mut cookie: u64 = sock.common(offset!(sk_cookie));
    if cookie == 0 {
        // SAFETY: tp_btf programs may call bpf_get_socket_cookie on the traced sock.
        cookie = unsafe { bpf_get_socket_cookie(sk as *mut c_void) };
    }
    emit(&sock, current_task(), cookie, EVENT_TRANSITION, oldstate as u8, newstate as u8);
    0
}

/// The cgroup sock_ops program. Its return value is the callback's success; the reply
/// (a timeout or window for the INIT callbacks) is left 0, which keeps the kernel's
/// defaults.
#[sock_ops]
pub fn sockstat_sock_ops(ctx: SockOpsContext) -> u32 {
    if offset!(valid) == 0 {
        return 1;
    }
    let op = ctx.op();
    // SAFETY: the context's fields are readable in every callback.
    let full = unsafe { (*ctx.ops).is_fullsock } != 0;
    if op == aya_ebpf::bindings::BPF_SOCK_OPS_TCP_CONNECT_CB && full {
        // connect() has hashed the socket with its local port: the transition to
        // SYN-SENT, with the whole tuple.
        // SAFETY: the context's socket field; null for no full socket.
        let sk = unsafe { (*ctx.ops).__bindgen_anon_2.sk };
        if sk.is_null() {
            return 1;
        }
        // SAFETY: a non-null context socket, which the helper types for direct loads.
        let tp = unsafe { bpf_skc_to_tcp_sock(sk.cast::<c_void>()) } as *const u8;
        if tp.is_null() {
            return 1;
        }
        let sock = Typed(tp);
        let mut cookie: u64 = sock.common(offset!(sk_cookie));
        if cookie == 0 {
            // SAFETY: a sock_ops context is a valid argument.
            cookie = unsafe { bpf_get_socket_cookie(ctx.ops.cast::<c_void>()) };
        }
        emit(&sock, current_task(), cookie, EVENT_TRANSITION, TcpState::Close as u8, TcpState::SynSent as u8);
    } else if op == aya_ebpf::bindings::BPF_SOCK_OPS_TIMEOUT_INIT && !full {
        request(&ctx);
    }
    1
}

/// The event of a request socket: its tuple from the context (the socket is no full
/// one: no typed loads), its namespace by cookie.
#[inline(always)]
fn request(ctx: &SockOpsContext) {
    let seen = bump(Counter::Seen);
    let Some(mut entry) = on_this_cpus_ring!(events => events.reserve::<StateEvent>(0)) else {
        bump(Counter::Lost);
        return;
    };
    let ev: *mut StateEvent = entry.as_mut_ptr();
    let ops = ctx.ops.cast::<c_void>();
    let family = ctx.family() as u16;
    // SAFETY: no preconditions; a sock_ops context is a valid argument to both.
    let (ts, cookie, netns_cookie) =
        unsafe { (bpf_ktime_get_ns(), bpf_get_socket_cookie(ops), bpf_get_netns_cookie(ops)) };
    put!(ev.ts_ns = ts);
    put!(ev.cookie = cookie);
    put!(ev.netns_cookie = netns_cookie);
    put!(ev.bytes_acked = 0);
    put!(ev.bytes_received = 0);
    put!(ev.netns = 0);
    put!(ev.pid = 0);
    put!(ev.tid = 0);
    put!(ev.ack_backlog = 0);
    put!(ev.max_ack_backlog = 0);
    put!(ev.family = family);
    put!(ev.sport = ctx.local_port() as u16);
    // remote_port holds the port in network order in its upper 16 bits on little-endian
    // machines (the kernel shifts `skc_dport` there), in its lower 16 on big-endian.
    let rp = ctx.remote_port();
    let dport = if cfg!(target_endian = "little") { (rp >> 16) as u16 } else { rp as u16 };
    put!(ev.dport = u16::from_be(dport));
    put!(ev.oldstate = 0);
    put!(ev.newstate = TcpState::NewSynRecv as u8);
    put!(ev.protocol = IPPROTO_TCP);
    put!(ev.v6only = 0);
    put!(ev.kind = EVENT_REQUEST);
    put!(ev._pad = 0);
    put!(ev.rcv_nxt = 0);
    put!(ev.copied_seq = 0);
    put!(ev.write_seq = 0);
    put!(ev.snd_una = 0);
    put!(ev.bound_dev_if = 0);
    put!(ev.error = 0);
    put!(ev.cgroup_id = 0);
    put!(ev.retrans = 0);
    put!(ev.srtt_us = 0);
    // Context fields are read one u32 at a constant offset each: the verifier refuses a
    // load through a context pointer the program moved.
    let o = ctx.ops;
    // SAFETY: fields of the context, readable in every callback.
    let (saddr, daddr) = unsafe {
        if family == AF_INET {
            (
                [core::ptr::read_volatile(&raw const (*o).local_ip4), 0, 0, 0],
                [core::ptr::read_volatile(&raw const (*o).remote_ip4), 0, 0, 0],
            )
        } else {
            let l = &raw const (*o).local_ip6;
            let r = &raw const (*o).remote_ip6;
            (
                [
                    core::ptr::read_volatile(&raw const (*l)[0]),
                    core::ptr::read_volatile(&raw const (*l)[1]),
                    core::ptr::read_volatile(&raw const (*l)[2]),
                    core::ptr::read_volatile(&raw const (*l)[3]),
                ],
                [
                    core::ptr::read_volatile(&raw const (*r)[0]),
                    core::ptr::read_volatile(&raw const (*r)[1]),
                    core::ptr::read_volatile(&raw const (*r)[2]),
                    core::ptr::read_volatile(&raw const (*r)[3]),
                ],
            )
        }
    };
    put!(ev.saddr = words_to_bytes(saddr));
    put!(ev.daddr = words_to_bytes(daddr));
    put!(ev.comm = [0; 16]);
    submit(entry, seen);
}

/// Four u32 words holding an address in network order, as bytes.
#[inline(always)]
fn words_to_bytes(w: [u32; 4]) -> [u8; 16] {
    let mut b = [0u8; 16];
    let mut i = 0;
    while i < 4 {
        let bytes = w[i].to_ne_bytes();
        b[i * 4] = bytes[0];
        b[i * 4 + 1] = bytes[1];
        b[i * 4 + 2] = bytes[2];
        b[i * 4 + 3] = bytes[3];
        i += 1;
    }
    b
}

/// The current task, BTF-typed: its pid, tgid and comm are plain loads, one helper call
/// for all three.
#[inline(always)]
fn current_task() -> *const u8 {
    // SAFETY: no preconditions; never null in a tracing program.
    unsafe { bpf_get_current_task_btf() as *const u8 }
}

#[tracepoint]
pub fn sockstat_accept(ctx: TracePointContext) -> u32 {
    if offset!(valid) == 0 {
        return 0;
    }
    let record = ctx.as_ptr() as *const u8;
    let ret_offset = offset!(tp_exit_ret);
    let fd: i64 = if ret_offset as usize == SYS_EXIT_RET {
        // SAFETY: the record is at least SYS_EXIT_RET + 8 bytes long (its format says so,
        // the loader read the offset there); a constant offset, as the verifier requires.
        unsafe { core::ptr::read_volatile(record.wrapping_add(SYS_EXIT_RET).cast::<i64>()) }
    } else {
        read(record as u64, ret_offset)
    };
    if fd < 0 {
        return 0;
    }
    // current->files->fdt->fd[fd]->private_data->sk (include/linux/fdtable.h,
    // include/linux/net.h): the socket accept() just installed in the fd table. The task,
    // its files and its fd table are BTF-typed (plain loads).
    // SAFETY: bpf_get_current_task_btf has no preconditions and returns a typed task;
    // `files` and `fdt` are pointer fields loaded through typed pointers, so typed too.
    let (task_files, files_fdt) = (offset!(task_files), offset!(files_fdt));
    let (fdt_max_fds, fdt_fd) = (offset!(fdt_max_fds), offset!(fdt_fd));
    let task = current_task();
    let (max_fds, fd_array) = unsafe {
        let files: *const u8 = load(task, task_files);
        if files.is_null() {
            return 0;
        }
        let fdt: *const u8 = load(files, files_fdt);
        if fdt.is_null() {
            return 0;
        }
        (load::<u32>(fdt, fdt_max_fds), load::<u64>(fdt, fdt_fd))
    };
    if fd as u64 >= u64::from(max_fds) {
        return 0;
    }
    // The fd array is an array of pointers, which BTF does not type: the slot read as
    // the first member (a `struct file *`) of a cast struct, or by a helper read.
    let slot_type = offset!(btf_fd_slot);
    let file: u64 = if offset!(casts) != 0 && slot_type != 0 {
        let slot = fd_array.wrapping_add((fd as u64).wrapping_mul(8));
        // SAFETY: casts are on; the slot is `fd` (below max_fds) of the fd array, and
        // `btf_fd_slot`'s type has an 8-byte pointer at offset 0. The load is guarded.
        unsafe { load::<u64>(rdonly_cast(slot, slot_type), 0) }
    } else {
        read(fd_array, (fd as u32).wrapping_mul(8))
    };
    if file == 0 {
        return 0;
    }
    if offset!(casts) != 0 {
        let (private_data, socket_sk) = (offset!(file_private_data), offset!(socket_sk));
        let (btf_file, btf_socket) = (offset!(btf_file), offset!(btf_socket));
        // SAFETY: casts are on. `file` is the fd's struct file, and an fd accept() returns
        // is a socket's, so its private_data is a struct socket and `sk` a struct sock *
        // (should another thread have replaced the fd meanwhile, the loads are guarded
        // and the protocol test drops what is not a TCP socket).
        let sk: *const u8 = unsafe {
            let file = rdonly_cast(file, btf_file);
            let socket: u64 = load(file, private_data);
            load(rdonly_cast(socket, btf_socket), socket_sk)
        };
        if !sk.is_null() {
            accepted(&Typed(sk), task);
        }
    } else {
        let socket: u64 = read(file, offset!(file_private_data));
        let sk: u64 = read(socket, offset!(socket_sk));
        if sk != 0
            && let Some(sock) = Copied::new(sk)
        {
            accepted(&sock, task);
        }
    }
    0
}

/// The event of a socket accept() returned to `task`.
#[inline(always)]
fn accepted<S: Sock>(sock: &S, task: *const u8) {
    if sock.sock::<u16>(offset!(sk_protocol)) != u16::from(IPPROTO_TCP) {
        return;
    }
    // The socket's transitions were traced, which generated and cached its cookie.
    let cookie: u64 = sock.common(offset!(sk_cookie));
    emit(sock, task, cookie, EVENT_ACCEPT, 0, 0);
}

/// Writes one event for `s`, in place in the ring buffer: every byte once.
#[inline(always)]
fn emit<S: Sock>(s: &S, task: *const u8, cookie: u64, kind: u8, oldstate: u8, newstate: u8) {
    let seen = bump(Counter::Seen);
    let Some(mut entry) = on_this_cpus_ring!(events => events.reserve::<StateEvent>(0)) else {
        bump(Counter::Lost);
        return;
    };
    let ev: *mut StateEvent = entry.as_mut_ptr();
    let family: u16 = s.common(offset!(skc_family));
    // SAFETY: no preconditions.
    put!(ev.ts_ns = unsafe { bpf_ktime_get_ns() });
    put!(ev.cookie = cookie);
    put!(ev.kind = kind);
    put!(ev._pad = 0);
    put!(ev.family = family);
    put!(ev.sport = s.common(offset!(skc_num)));
    put!(ev.dport = u16::from_be(s.common(offset!(skc_dport))));
    put!(ev.oldstate = oldstate);
    put!(ev.newstate = newstate);
    put!(ev.protocol = IPPROTO_TCP);
    put!(ev.bound_dev_if = s.common(offset!(skc_bound_dev_if)));
    // What a post-mortem asks, read at the one transition that ends a socket: why it
    // ended (sk_err: tcp_done_with_error() sets it before tcp_done() moves it to CLOSE)
    // and how it went (retransmits, smoothed RTT).
    let closing = kind == EVENT_TRANSITION && newstate == TcpState::Close as u8;
    let error: i32 = if closing { s.sock(offset!(sk_err)) } else { 0 };
    put!(ev.error = error.unsigned_abs());
    // An accept notice's socket had its cgroup carried by its transitions.
    put!(ev.cgroup_id = if kind == EVENT_TRANSITION { s.cgroup() } else { 0 });
    put!(ev.netns_cookie = 0);
    // Only what the state makes meaningful: a listener's queues are its accept queue
    // and backlog, a connection's are differences of its sequence numbers.
    let (backlog, max_backlog, tcp) = if newstate == TcpState::Listen as u8 {
        (s.sock(offset!(sk_ack_backlog)), s.sock(offset!(sk_max_ack_backlog)), TcpFields::default())
    } else if newstate == TcpState::SynSent as u8 {
        // Reported from tcp_connect() before it sets the send sequence up (snd_una is
        // not set yet): the queue is the SYN it queues next, as inet_diag then shows it.
        (0, 0, TcpFields { write_seq: 1, ..TcpFields::default() })
    } else {
        (0, 0, s.tcp(closing))
    };
    put!(ev.retrans = tcp.total_retrans);
    put!(ev.srtt_us = tcp.srtt_us);
    put!(ev.ack_backlog = backlog);
    put!(ev.max_ack_backlog = max_backlog);
    put!(ev.rcv_nxt = tcp.rcv_nxt);
    put!(ev.copied_seq = tcp.copied_seq);
    put!(ev.write_seq = tcp.write_seq);
    put!(ev.snd_una = tcp.snd_una);
    put!(ev.bytes_acked = tcp.bytes_acked);
    put!(ev.bytes_received = tcp.bytes_received);
    // What bpf_get_current_pid_tgid and bpf_get_current_comm return, read from the task
    // (the kernel keeps comm NUL-terminated and pads it with NULs when it sets it).
    let (tgid, pid, comm) = (offset!(task_tgid), offset!(task_pid), offset!(task_comm));
    // SAFETY: a typed task; the offsets are task_struct's (comm: char[16]).
    let (tgid, pid, comm) = unsafe {
        let comm = if comm % 8 == 0 {
            (load::<u64>(task, comm), load::<u64>(task, comm + 8))
        } else {
            let b = |i: u32| u64::from(load::<u8>(task, comm + i));
            let half = |at: u32| (0..8).fold(0u64, |acc, i| acc | (b(at + i) << (8 * i)));
            (half(0), half(8))
        };
        (load::<u32>(task, tgid), load::<u32>(task, pid), comm)
    };
    put!(ev.pid = tgid);
    put!(ev.tid = pid);
    // SAFETY: as put!; comm is 16 bytes at an 8-aligned offset of the slot (asserted).
    unsafe {
        let c = (&raw mut (*ev).comm).cast::<u64>();
        c.write(comm.0);
        c.add(1).write(comm.1);
    }
    put!(ev.netns = s.netns());
    // Addresses as two u64 halves each (8-aligned in the slot, asserted above).
    let (saddr, daddr, v6only) = if family == AF_INET {
        let v4 = |off: u32| u64::from(s.common::<u32>(off));
        // Little-endian: the u32's bytes come first, as the address's first 4 bytes.
        ((v4(offset!(skc_rcv_saddr)), 0), (v4(offset!(skc_daddr)), 0), 0)
    } else if family == AF_INET6 {
        let v6 = |off: u32| (s.common::<u64>(off), s.common::<u64>(off + 8));
        let flags: u8 = s.common(offset!(skc_ipv6only_byte));
        (v6(offset!(skc_v6_rcv_saddr)), v6(offset!(skc_v6_daddr)), (flags >> (offset!(skc_ipv6only_bit) & 7)) & 1)
    } else {
        ((0, 0), (0, 0), 0)
    };
    // SAFETY: as put!; both arrays are 16 bytes at 8-aligned offsets of the slot.
    unsafe {
        let sa = (&raw mut (*ev).saddr).cast::<u64>();
        sa.write(saddr.0);
        sa.add(1).write(saddr.1);
        let da = (&raw mut (*ev).daddr).cast::<u64>();
        da.write(daddr.0);
        da.add(1).write(daddr.1);
    }
    put!(ev.v6only = v6only);
    submit(entry, seen);
}

/// Submits a reserved event. Wakes the reader only once enough is waiting in this CPU's
/// ring (it also drains on a timer). Asking the ring is a helper call: each CPU asks
/// every `wakeup_check_mask + 1` events.
#[inline(always)]
fn submit(entry: aya_ebpf::maps::ring_buf::RingBufEntry<StateEvent>, seen: u64) {
    let wakeup = offset!(wakeup_bytes);
    let check = seen & u64::from(offset!(wakeup_check_mask)) == 0;
    let waiting = || on_this_cpus_ring!(events => events.query(u64::from(BPF_RB_AVAIL_DATA)));
    let flags =
        if wakeup == 0 || (check && waiting() >= u64::from(wakeup)) { BPF_RB_FORCE_WAKEUP } else { BPF_RB_NO_WAKEUP };
    entry.submit(u64::from(flags));
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
