//! The tp_btf program. Kernel structure fields are read with `bpf_probe_read_kernel`
//! at offsets userspace resolved from BTF (see `KernelOffsets`): Rust eBPF has no CO-RE.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_ns, bpf_probe_read_kernel,
        bpf_probe_read_kernel_buf,
    },
    macros::{btf_tracepoint, map, tracepoint},
    maps::{PerCpuArray, RingBuf},
    programs::{BtfTracePointContext, TracePointContext},
};
use sockstat_ebpf::{
    AF_INET, AF_INET6, COUNTER_SLOTS, Counter, DEFAULT_RINGBUF_BYTES, EVENT_ACCEPT, EVENT_TRANSITION, IPPROTO_TCP,
    KernelOffsets, SOCK_COMMON_BYTES, StateEvent, TcpState,
};

#[map(name = "EVENTS")]
static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RINGBUF_BYTES, 0);

#[map(name = "COUNTERS")]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

/// Filled by the loader (`EbpfLoader::set_global`) before the program is loaded.
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
    common_len: 0,
};

#[inline(always)]
fn bump(counter: Counter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: per-CPU slot, only this CPU writes it while the program runs.
        unsafe { *slot += 1 };
    }
}

/// Reads a `T` at `base + off` in kernel memory; counts failures and yields zero.
#[inline(always)]
fn read<T: Copy + Default>(base: *const u8, off: u32) -> T {
    // SAFETY: bpf_probe_read_kernel validates the address; a fault returns an error.
    match unsafe { bpf_probe_read_kernel(base.wrapping_add(off as usize).cast::<T>()) } {
        Ok(v) => v,
        Err(_) => {
            bump(Counter::ReadErrors);
            T::default()
        }
    }
}

/// Reads one field of OFFSETS. Volatile so the compiler does not fold the zero
/// initialiser above; field by field to keep the 512-byte BPF stack free.
macro_rules! offset {
    ($field:ident) => {
        // SAFETY: OFFSETS is a read-only global the loader writes before load.
        unsafe { core::ptr::read_volatile(&raw const OFFSETS.$field) }
    };
}

#[btf_tracepoint(function = "inet_sock_set_state")]
pub fn sockstat_set_state(ctx: BtfTracePointContext) -> i32 {
    // TP_PROTO(const struct sock *sk, const int oldstate, const int newstate):
    // include/trace/events/sock.h.
    let sk: *const u8 = ctx.arg(0);
    let oldstate: i32 = ctx.arg(1);
    let newstate: i32 = ctx.arg(2);
    if offset!(valid) == 0 || sk.is_null() {
        aya_log_ebpf::error!(&ctx, "sockstat: offsets not set or null sock; event dropped");
        return 0;
    }
    // SAFETY: tp_btf programs may call bpf_get_socket_cookie on the traced sock.
    let cookie = unsafe { aya_ebpf::helpers::generated::bpf_get_socket_cookie(sk as *mut c_void) };
    emit(sk, cookie, EVENT_TRANSITION, oldstate as u8, newstate as u8);
    0
}

#[tracepoint]
pub fn sockstat_accept(ctx: TracePointContext) -> u32 {
    if offset!(valid) == 0 {
        return 0;
    }
    // SAFETY: the loader read the offset of `long ret` from this tracepoint's format.
    let ret_offset = offset!(tp_exit_ret) as usize;
    let Ok(fd) = (unsafe { ctx.read_at::<i64>(ret_offset) }) else {
        return 0;
    };
    if fd < 0 {
        return 0;
    }
    // current->files->fdt->fd[fd]->private_data->sk (include/linux/fdtable.h,
    // include/linux/net.h): the socket accept() just installed in the fd table.
    // SAFETY: bpf_get_current_task has no preconditions; every dereference below goes
    // through bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let files: u64 = read(task, offset!(task_files));
    let fdt: u64 = read(files as *const u8, offset!(files_fdt));
    let max_fds: u32 = read(fdt as *const u8, offset!(fdt_max_fds));
    if fdt == 0 || fd as u64 >= u64::from(max_fds) {
        return 0;
    }
    let fd_array: u64 = read(fdt as *const u8, offset!(fdt_fd));
    let file: u64 = read(fd_array as *const u8, (fd as u32).wrapping_mul(8));
    let socket: u64 = read(file as *const u8, offset!(file_private_data));
    let sk: u64 = read(socket as *const u8, offset!(socket_sk));
    if sk == 0 {
        return 0;
    }
    let sk = sk as *const u8;
    // The socket's transitions were traced, which generated and cached its cookie.
    let cookie: u64 = read(sk, offset!(sk_cookie));
    emit(sk, cookie, EVENT_ACCEPT, 0, 0);
    0
}

/// Writes one event for `sk`, in place in the ring buffer.
#[inline(always)]
fn emit(sk: *const u8, cookie: u64, kind: u8, oldstate: u8, newstate: u8) {
    let protocol: u16 = read(sk, offset!(sk_protocol));
    if protocol != IPPROTO_TCP as u16 {
        return;
    }
    bump(Counter::Seen);

    let Some(mut entry) = EVENTS.reserve::<StateEvent>(0) else {
        bump(Counter::Lost);
        return;
    };
    // The event is built in place in the ring buffer: a StateEvent on the stack next to
    // the helpers' frames would overflow the 512-byte BPF stack.
    let slot: *mut StateEvent = entry.as_mut_ptr();
    // SAFETY: `slot` points at a reserved, exclusively owned ring-buffer slot of
    // size_of::<StateEvent>() bytes; after zeroing it holds a valid StateEvent (every bit
    // pattern is), so a unique reference to it is sound until submit.
    let ev: &mut StateEvent = unsafe {
        core::ptr::write_bytes(slot, 0, 1);
        &mut *slot
    };
    // One copy of the head of sock_common holds every skc_* field read below.
    let mut common = [0u8; SOCK_COMMON_BYTES as usize];
    let len = (offset!(common_len) as usize).min(common.len());
    read_into(sk, 0, &mut common[..len]);
    let family = u16::from_ne_bytes(field(&common, offset!(skc_family)));
    ev.ts_ns = unsafe { bpf_ktime_get_ns() };
    ev.cookie = cookie;
    ev.kind = kind;
    ev.family = family;
    ev.sport = u16::from_ne_bytes(field(&common, offset!(skc_num)));
    ev.dport = u16::from_be_bytes(field(&common, offset!(skc_dport)));
    ev.oldstate = oldstate;
    ev.newstate = newstate;
    ev.protocol = IPPROTO_TCP;
    ev.bound_dev_if = u32::from_ne_bytes(field(&common, offset!(skc_bound_dev_if)));
    // Only what the state makes meaningful: a listener's queues are its accept queue
    // and backlog, a connection's are differences of its sequence numbers.
    if newstate == TcpState::Listen as u8 {
        ev.ack_backlog = read(sk, offset!(sk_ack_backlog));
        ev.max_ack_backlog = read(sk, offset!(sk_max_ack_backlog));
    } else {
        ev.rcv_nxt = read(sk, offset!(tcp_rcv_nxt));
        ev.copied_seq = read(sk, offset!(tcp_copied_seq));
        ev.write_seq = read(sk, offset!(tcp_write_seq));
        ev.snd_una = read(sk, offset!(tcp_snd_una));
        ev.bytes_acked = read(sk, offset!(tcp_bytes_acked));
        ev.bytes_received = read(sk, offset!(tcp_bytes_received));
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    ev.pid = (pid_tgid >> 32) as u32;
    ev.tid = pid_tgid as u32;
    if let Ok(comm) = bpf_get_current_comm() {
        ev.comm = comm;
    }
    let net = u64::from_ne_bytes(field(&common, offset!(skc_net)));
    if net != 0 {
        ev.netns = read(net as *const u8, offset!(net_ns_inum));
    }
    if family == AF_INET {
        ev.saddr[..4].copy_from_slice(&field::<4>(&common, offset!(skc_rcv_saddr)));
        ev.daddr[..4].copy_from_slice(&field::<4>(&common, offset!(skc_daddr)));
    } else if family == AF_INET6 {
        ev.saddr = field(&common, offset!(skc_v6_rcv_saddr));
        ev.daddr = field(&common, offset!(skc_v6_daddr));
        let flags: [u8; 1] = field(&common, offset!(skc_ipv6only_byte));
        ev.v6only = (flags[0] >> (offset!(skc_ipv6only_bit) & 7)) & 1;
    }
    // Wake the reader only once enough is waiting (it also drains on a timer).
    let waiting = EVENTS.query(u64::from(BPF_RB_AVAIL_DATA));
    let flags = if waiting < u64::from(offset!(wakeup_bytes)) { BPF_RB_NO_WAKEUP } else { BPF_RB_FORCE_WAKEUP };
    entry.submit(flags as u64);
}

/// `N` bytes at `off` of the copied head of sock_common; zeros if out of range (the
/// loader checked the offsets, the verifier wants the bound).
#[inline(always)]
fn field<const N: usize>(common: &[u8; SOCK_COMMON_BYTES as usize], off: u32) -> [u8; N] {
    let off = off as usize;
    let mut out = [0u8; N];
    if off + N <= common.len() {
        out.copy_from_slice(&common[off..off + N]);
    }
    out
}

/// Copies `dst.len()` bytes of kernel memory at `base + off` into `dst`.
#[inline(always)]
fn read_into(base: *const u8, off: u32, dst: &mut [u8]) {
    // SAFETY: bpf_probe_read_kernel_buf validates the source address.
    if unsafe { bpf_probe_read_kernel_buf(base.wrapping_add(off as usize), dst) }.is_err() {
        bump(Counter::ReadErrors);
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}
