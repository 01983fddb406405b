//! Types shared by the eBPF program and userspace: the ring-buffer event, the kernel
//! offsets userspace resolves from BTF and hands to the program, TCP states, and the
//! names of maps, programs and globals. Defined once here; `#![no_std]`, integers and
//! byte arrays only, `#[repr(C)]` with explicit padding and compile-time size checks.
#![no_std]

/// Name of the tp_btf program in the object file.
pub const PROGRAM_NAME: &str = "sockstat_set_state";
/// A second tp_btf program on the same tracepoint, for the transitions the kernel does not
/// hand to [`PROGRAM_NAME`]: a program is not run again on a CPU where it is running
/// (its `recursion_misses`), and a transition in a softirq that interrupted it (loopback
/// and any busy receive path make these) would be lost. This one runs right after it on
/// each transition, claims the ones it ran, and runs the others.
pub const NESTED_PROGRAM: &str = "sockstat_nested";
/// Name of the tracepoint program on the exits of accept(2) and accept4(2): it tells
/// which process accepted a passively opened socket (the transitions of such a socket
/// fire in softirq context, where the current task is unrelated). A classic tracepoint,
/// because fentry/fexit programs are refused (EPERM) on our machines.
pub const ACCEPT_PROGRAM: &str = "sockstat_accept";
/// The syscall exit tracepoints ACCEPT_PROGRAM attaches to (category `syscalls`).
pub const ACCEPT_TRACEPOINTS: [&str; 2] = ["sys_exit_accept4", "sys_exit_accept"];

/// Names of the BPF iterator programs that list every process's socket descriptors, for
/// `-p` (BPF_TRACE_ITER programs on `task_file`: no trampoline, unlike fentry). The walk is
/// bound by cache misses on each socket, so it is split in two walks read at once on two
/// cores: the first lists the even descriptors, the second the odd ones.
pub const OWNERS_PROGRAMS: [&str; 2] = ["sockstat_owner0", "sockstat_owner1"];
/// The iterator target [`OWNERS_PROGRAMS`] are loaded for (`struct bpf_iter__task_file`).
pub const OWNERS_ITER: &str = "task_file";
/// Global (`.rodata`) holding [`OwnerOffsets`], set by the loader before load.
pub const OWNER_OFFSETS_GLOBAL: &str = "OWNER_OFFSETS";
/// The BPF iterator program over every task (`task`) that lists each process (thread
/// group leader) with the address of its descriptor table, whether it is exiting, and
/// its name ([`TaskRecord`]): cheap next to the owners walk (tasks, not descriptors), it
/// tells the agent which processes came, went, changed tables or names.
pub const OWNER_TASKS_PROGRAM: &str = "sockstat_owner_tasks";
/// The iterator target [`OWNER_TASKS_PROGRAM`] is loaded for (`struct bpf_iter__task`).
pub const OWNER_TASKS_ITER: &str = "task";
/// The tracepoint program that notes, in [`OWNER_CHANGES_MAP`], the descriptor table of
/// the current task after each system call that may add or remove a socket descriptor in
/// place: the agent keeps the owners of `-p` between queries and walks again only the
/// processes whose table was noted (see docs/agent.md, "Owners between queries").
pub const OWNER_MARK_PROGRAM: &str = "sockstat_owner_mark";
/// What [`OWNER_MARK_PROGRAM`] attaches to (category, name): the exits of every system
/// call that installs a socket descriptor in the caller's table (socket, socketpair,
/// accept, dup*, fcntl's F_DUPFD, SCM_RIGHTS in recvmsg, pidfd_getfd, SCTP's peel-off in
/// getsockopt, KCM's clone ioctl, io_uring's accept/socket/fixed-file install) or removes
/// one (close, close_range, dup2/dup3 over it, io_uring's close), exec (close-on-exec),
/// unshare (a copied table), and io_uring completions (its worker and poll threads share
/// the table and make no system call). Fork, exit and renames show in the task listing. A
/// tracepoint the kernel lacks is a system call it lacks, and is skipped.
pub const OWNER_MARK_TRACEPOINTS: [(&str, &str); 18] = [
    ("syscalls", "sys_exit_socket"),
    ("syscalls", "sys_exit_socketpair"),
    ("syscalls", "sys_exit_accept"),
    ("syscalls", "sys_exit_accept4"),
    ("syscalls", "sys_exit_dup"),
    ("syscalls", "sys_exit_dup2"),
    ("syscalls", "sys_exit_dup3"),
    ("syscalls", "sys_exit_fcntl"),
    ("syscalls", "sys_exit_recvmsg"),
    ("syscalls", "sys_exit_recvmmsg"),
    ("syscalls", "sys_exit_pidfd_getfd"),
    ("syscalls", "sys_exit_getsockopt"),
    ("syscalls", "sys_exit_close"),
    ("syscalls", "sys_exit_close_range"),
    ("syscalls", "sys_exit_unshare"),
    ("syscalls", "sys_exit_io_uring_enter"),
    ("sched", "sched_process_exec"),
    ("io_uring", "io_uring_complete"),
];
/// The pair of tracepoint programs on ioctl(2): its exit notes the caller's table like
/// [`OWNER_MARK_PROGRAM`] (KCM's clone), and a seccomp supervisor's
/// `SECCOMP_IOCTL_NOTIF_ADDFD`, which installs a descriptor in *another* process, is
/// counted in [`OWNER_MISSED_MAP`] once it returned: the next `-p` walks everything.
pub const OWNER_IOCTL_ENTER_PROGRAM: &str = "sockstat_owner_ioctl_in";
pub const OWNER_IOCTL_EXIT_PROGRAM: &str = "sockstat_owner_ioctl";
/// `SECCOMP_IOCTL_NOTIF_ADDFD` (include/uapi/linux/seccomp.h): `_IOW('!', 3, struct
/// seccomp_notif_addfd)`, a 24-byte struct.
pub const SECCOMP_IOCTL_NOTIF_ADDFD: u64 = (1 << 30) | (24 << 16) | ((b'!' as u64) << 8) | 3;
/// Hash of descriptor-table addresses (`struct files_struct *`, u64 -> u8) noted since
/// the agent last took them.
pub const OWNER_CHANGES_MAP: &str = "OWNER_CHANGES";
/// Capacity of [`OWNER_CHANGES_MAP`]: more tables changed between two queries than this
/// and the next query walks everything.
pub const OWNER_CHANGES_MAX: u32 = 16384;
/// Array of one `u64` the agent adds one to at the end of each take of
/// [`OWNER_CHANGES_MAP`] (the programs' per-CPU memory of what they noted is good until
/// then).
pub const OWNER_EPOCH_MAP: &str = "OWNER_EPOCH";
/// Per-CPU `u64`: notes that did not fit in [`OWNER_CHANGES_MAP`], and descriptors
/// installed in another process (seccomp): when the sum moves, the next `-p` walks every
/// process.
pub const OWNER_MISSED_MAP: &str = "OWNER_MISSED";
/// Hash of the threads (pid_tgid -> u8) inside an `SECCOMP_IOCTL_NOTIF_ADDFD` ioctl.
pub const OWNER_ADDFD_MAP: &str = "OWNER_ADDFD";
/// `task_struct.flags` bit of a task that is exiting (include/linux/sched.h).
pub const PF_EXITING: u32 = 0x4;
/// [`TaskRecord::flags`]: the leader is exiting (`PF_EXITING`).
pub const TASK_EXITING: u32 = 1;
/// [`TaskRecord::flags`]: a task of the process has used io_uring (`task_struct.io_uring`
/// set): its rings may install or close descriptors with no system call and no completion
/// (`IOSQE_CQE_SKIP_SUCCESS` under SQPOLL), so the process is walked at every query.
pub const TASK_IO_URING: u32 = 2;
/// [`TaskRecord::flags`]: a record for another thread than the leader, carrying only its
/// [`TASK_IO_URING`] flag and its table (its other fields are the leader's business).
pub const TASK_THREAD: u32 = 4;
/// [`TaskRecord::flags`]: a 32-bit (compat or x32) process, whose system calls the
/// syscall tracepoints do not report: walked at every query.
pub const TASK_COMPAT: u32 = 8;
/// `SECCOMP_IOCTL_NOTIF_ADDFD` as the kernel matches it (`EA_IOCTL`): without the
/// direction and size bits, which a caller may set otherwise.
pub const SECCOMP_ADDFD_MATCH: u32 = (SECCOMP_IOCTL_NOTIF_ADDFD as u32) & 0xffff;

/// Name of the cgroup `sock_ops` program (attached to the cgroup v2 root, so it sees
/// every TCP socket): it reports an active open once connect() picked the local port
/// (the transition to SYN-SENT fires before that), and each request socket a listener
/// creates for an incoming SYN (SYN-RECV, which no state transition announces).
pub const SOCK_OPS_PROGRAM: &str = "sockstat_sock_ops";
/// Array of one `u32` of [`CONFIG_SOCK_OPS`]-style flags, written by userspace after it
/// attached the programs.
pub const CONFIG_MAP: &str = "CONFIG";
/// Set in `CONFIG[0]` once [`SOCK_OPS_PROGRAM`] is attached: the transition program
/// then leaves CLOSE -> SYN-SENT to it, which reports that transition with the port.
pub const CONFIG_SOCK_OPS: u32 = 1;

/// [`StateEvent::kind`] values.
pub const EVENT_TRANSITION: u8 = 0;
/// A socket was returned by accept(): `pid`/`comm` are its owner; states are 0.
pub const EVENT_ACCEPT: u8 = 1;
/// A listener created a request socket for an incoming SYN (state NEW_SYN_RECV, shown
/// as SYN-RECV): its tuple and cookie; `netns` is 0 and `netns_cookie` names the
/// namespace; pid, comm and queues are 0. No event says when a request goes: it becomes
/// a full socket (whose transitions follow), or the kernel drops it silently.
pub const EVENT_REQUEST: u8 = 2;
/// Kernel tracepoint the program attaches to (`sock:inet_sock_set_state`).
pub const TRACEPOINT: &str = "inet_sock_set_state";
/// The ring buffers carrying [`StateEvent`]s: a program writes to ring
/// `cpu % EVENT_RINGS`, so CPUs do not contend for one ring's lock and positions (on a
/// shared ring that cost a third of each event). Each ring is in reservation order; the
/// reader puts the rings' events back in time order (`ts_ns`, see the reader).
pub const EVENT_RINGS: usize = 8;
/// The maps of [`EVENT_RINGS`], by ring.
pub const EVENTS_MAPS: [&str; EVENT_RINGS] =
    ["EVENTS0", "EVENTS1", "EVENTS2", "EVENTS3", "EVENTS4", "EVENTS5", "EVENTS6", "EVENTS7"];
/// Per-CPU `u64` counters, indexed by [`Counter`].
pub const COUNTERS_MAP: &str = "COUNTERS";
/// Global (`.rodata`) holding [`KernelOffsets`], set by the loader before load.
pub const OFFSETS_GLOBAL: &str = "OFFSETS";
/// Default size of the event rings in bytes, all together (power of two, multiple of the
/// page size): the loader shares it among the rings the CPUs use.
pub const DEFAULT_RINGBUF_BYTES: u32 = 1 << 24;
/// How often readers drain the ring buffer without being woken (see
/// `KernelOffsets::wakeup_bytes`) while events come: the most such an event waits before
/// userspace sees it. A reader that keeps finding the ring empty looks less often.
pub const DRAIN_INTERVAL_MS: u64 = 5;

/// The helper id the programs call in place of the kernel function (kfunc)
/// `bpf_rdonly_cast(ptr, btf_id)`, which aya cannot link. The loader rewrites each such
/// call in the object into a call of the kfunc (whose BTF id it reads from the kernel's
/// BTF) before loading it, and sets [`KernelOffsets::casts`]. No helper has this id.
pub const RDONLY_CAST_CALL: u32 = 0x5ca7_0001;

/// Index into the per-CPU counters map.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Transitions the program saw (TCP only).
    Seen = 0,
    /// Ring buffer reservations that failed: events lost in the kernel.
    Lost = 1,
    /// Kernel memory reads that failed (fields of that event are zero).
    ReadErrors = 2,
    /// Transitions [`NESTED_PROGRAM`] ran because they interrupted [`PROGRAM_NAME`] on
    /// its CPU: runs of it the kernel skipped that are not lost.
    Rescued = 3,
}
pub const COUNTER_SLOTS: u32 = 4;

/// Byte offsets inside kernel structures, resolved in userspace from
/// `/sys/kernel/btf/vmlinux` (struct sock_common / sock / tcp_sock / net in
/// include/net/sock.h, include/linux/tcp.h, include/net/net_namespace.h), because
/// Rust eBPF has no CO-RE relocations.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `sock_common.skc_daddr` (IPv4 peer, network order).
    pub skc_daddr: u32,
    /// `sock_common.skc_rcv_saddr` (IPv4 local, network order).
    pub skc_rcv_saddr: u32,
    /// `sock_common.skc_dport` (network order).
    pub skc_dport: u32,
    /// `sock_common.skc_num` (local port, host order).
    pub skc_num: u32,
    /// `sock_common.skc_family`.
    pub skc_family: u32,
    /// `sock_common.skc_net` (a `struct net *`).
    pub skc_net: u32,
    /// `sock_common.skc_v6_daddr`.
    pub skc_v6_daddr: u32,
    /// `sock_common.skc_v6_rcv_saddr`.
    pub skc_v6_rcv_saddr: u32,
    /// `net.ns.inum`: the network namespace inode number.
    pub net_ns_inum: u32,
    /// `sock.sk_protocol` (u16).
    pub sk_protocol: u32,
    /// `sock.sk_ack_backlog` (u32).
    pub sk_ack_backlog: u32,
    /// `sock.sk_max_ack_backlog` (u32).
    pub sk_max_ack_backlog: u32,
    /// `tcp_sock.bytes_acked` (u64).
    pub tcp_bytes_acked: u32,
    /// `tcp_sock.bytes_received` (u64).
    pub tcp_bytes_received: u32,
    /// `tcp_sock.rcv_nxt`, `copied_seq`, `write_seq`, `snd_una` (u32 sequence numbers):
    /// the queue sizes inet_diag reports are differences of these (net/ipv4/tcp_diag.c).
    pub tcp_rcv_nxt: u32,
    pub tcp_copied_seq: u32,
    pub tcp_write_seq: u32,
    pub tcp_snd_una: u32,
    /// `sock_common.skc_ipv6only` is a one-bit bitfield: the byte holding it and the
    /// bit's position in that byte (little-endian bit order).
    pub skc_ipv6only_byte: u32,
    pub skc_ipv6only_bit: u32,
    /// `sock_common.skc_bound_dev_if` (int): SO_BINDTODEVICE's ifindex.
    pub skc_bound_dev_if: u32,
    /// `sock.sk_cookie` (atomic64_t): the cookie bpf_get_socket_cookie() generated and
    /// cached (the first value stored stays), read directly where that helper is not
    /// available (tracepoints) and, once set, instead of calling it.
    pub sk_cookie: u32,
    /// From the current task to the socket behind an fd: `task_struct.files`,
    /// `files_struct.fdt`, `fdtable.fd`, `fdtable.max_fds`, `file.private_data`
    /// (a `struct socket *` for a socket file), `socket.sk`.
    pub task_files: u32,
    pub files_fdt: u32,
    pub fdt_fd: u32,
    pub fdt_max_fds: u32,
    pub file_private_data: u32,
    pub socket_sk: u32,
    /// Offset of `ret` in the sys_exit_accept tracepoints' records, read from tracefs.
    pub tp_exit_ret: u32,
    /// Submit without waking the reader until this many bytes are waiting in the ring
    /// buffer; the reader also drains on a short timer ([`DRAIN_INTERVAL_MS`]). One
    /// wakeup per event costs more than the event at high connection rates. 0: wake
    /// on every event.
    pub wakeup_bytes: u32,
    /// 1 once userspace filled the offsets; the program emits nothing while 0.
    pub valid: u32,
    /// `task_struct.pid` and `task_struct.tgid` (pid_t) and `task_struct.comm` (char[16]),
    /// read from the current task instead of calling bpf_get_current_pid_tgid and
    /// bpf_get_current_comm.
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_comm: u32,
    /// Each CPU compares what is waiting with `wakeup_bytes` once every
    /// `wakeup_check_mask + 1` events (a power of two): the comparison costs a helper call.
    pub wakeup_check_mask: u32,
    /// How many leading bytes of a `struct tcp_sock` hold every socket field above (at
    /// most [`SOCK_COPY_BYTES`]; 0 if they do not fit): the accept hook, which reaches the
    /// socket through an untyped pointer, copies them with one read instead of one read
    /// per field.
    pub sock_copy_len: u32,
    /// BTF type ids (in `/sys/kernel/btf/vmlinux`) of `struct file`, `struct socket` and
    /// `struct tcp_sock`, for the casts (see [`RDONLY_CAST_CALL`]).
    pub btf_file: u32,
    pub btf_socket: u32,
    pub btf_tcp_sock: u32,
    /// BTF id of `struct kiocb`, whose first member is a `struct file *` (`ki_filp`): the
    /// accept hook reads an fd table slot (a `struct file *` BTF does not type) as that
    /// member of a cast, a load instead of a helper read. 0 where `ki_filp` is not at
    /// offset 0: the helper read.
    pub btf_fd_slot: u32,
    /// 1 if the loader turned the programs' [`RDONLY_CAST_CALL`] calls into calls of the
    /// kernel's `bpf_rdonly_cast`; 0 and the programs take their other path (helper
    /// calls and copies), which the verifier then checks instead.
    pub casts: u32,
    /// `sock.sk_err` (int): the error the kernel set on the socket (tcp_done_with_error()
    /// sets it before the CLOSE transition: ECONNREFUSED, ETIMEDOUT, ECONNRESET ...).
    pub sk_err: u32,
    /// `tcp_sock.total_retrans` (u32) and `tcp_sock.srtt_us` (u32, smoothed RTT in
    /// microseconds, shifted left by 3): read at CLOSE transitions only.
    pub tcp_total_retrans: u32,
    pub tcp_srtt_us: u32,
    /// `sock.sk_cgrp_data.cgroup` (a `struct cgroup *`, CONFIG_SOCK_CGROUP_DATA; 0: the
    /// kernel has none, and events carry no cgroup), `cgroup.kn` (a `struct kernfs_node
    /// *`) and `kernfs_node.id` (u64): the cgroup v2 id, as `cgroup_id()` in
    /// include/linux/cgroup.h computes it.
    pub sk_cgrp_cgroup: u32,
    pub cgroup_kn: u32,
    pub kernfs_node_id: u32,
}

/// The most of a socket the accept hook copies at once without casts (per-CPU scratch).
/// The fields it reads end at byte 1832 on Linux 6.18 (tcp_sock.bytes_acked is the last);
/// the loader checks.
pub const SOCK_COPY_BYTES: u32 = 4096;
const _: () = assert!(core::mem::size_of::<KernelOffsets>() == 188);

/// Byte offsets the owners iterator reads (include/linux/sched.h, include/linux/fs.h,
/// include/linux/net.h, include/net/sock.h), resolved from BTF like [`KernelOffsets`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnerOffsets {
    /// `task_struct.pid` and `task_struct.tgid` (pid_t).
    pub task_pid: u32,
    pub task_tgid: u32,
    /// `task_struct.comm` (char[16]).
    pub task_comm: u32,
    /// `file.f_inode`, `inode.i_ino` (unsigned long).
    pub file_f_inode: u32,
    pub inode_i_ino: u32,
    /// `socket.sk`.
    pub socket_sk: u32,
    /// `sock_common.skc_cookie`: 0 until sock_diag or a BPF program asked for it.
    pub sk_cookie: u32,
    /// 1 once userspace filled the offsets; the program emits nothing while 0.
    pub valid: u32,
    /// `task_struct.files` (the descriptor table) and `task_struct.flags` (unsigned int).
    pub task_files: u32,
    pub task_flags: u32,
    /// `task_struct.start_time` (u64, ns since boot).
    pub task_start_time: u32,
    /// `task_struct.io_uring`; 0 on a kernel without io_uring.
    pub task_io_uring: u32,
    /// `task_struct.thread_info.flags` (unsigned long), and the flag of a task with a
    /// 32-bit address space there (x86's `TIF_ADDR32`, arm64's `TIF_32BIT`); mask 0 where
    /// the loader knows none.
    pub task_ti_flags: u32,
    pub compat_mask: u32,
}
const _: () = assert!(core::mem::size_of::<OwnerOffsets>() == 56);

/// One process as the task listing writes it ([`OWNER_TASKS_PROGRAM`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskRecord {
    /// The process (thread group) id, in the initial pid namespace.
    pub tgid: u32,
    /// [`TASK_EXITING`], [`TASK_IO_URING`], [`TASK_THREAD`].
    pub flags: u32,
    /// When the leader started (`task_struct.start_time`): with the pid, the process's
    /// identity (pids are reused).
    pub start: u64,
    /// The address of its descriptor table (`struct files_struct`), 0 once it exited.
    /// Kept inside the agent: it never leaves it.
    pub files: u64,
    /// The leader's `comm`, NUL-padded.
    pub comm: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<TaskRecord>() == 40);

impl TaskRecord {
    pub const SIZE: usize = core::mem::size_of::<TaskRecord>();
}

/// One socket descriptor of one process, as the owners iterator writes it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnerRecord {
    /// The process (thread group) id, in the initial pid namespace.
    pub pid: u32,
    pub fd: u32,
    /// The socket's inode number (what /proc/PID/fd links name as `socket:[INODE]`).
    pub inode: u64,
    /// The socket's cookie, 0 if none was ever generated.
    pub cookie: u64,
    /// The process's `comm`, NUL-padded.
    pub comm: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<OwnerRecord>() == 40);

impl OwnerRecord {
    pub const SIZE: usize = core::mem::size_of::<OwnerRecord>();
}

/// One TCP state transition, as written to the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateEvent {
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// `bpf_get_socket_cookie(sk)`: equals sock_diag's `idiag_cookie`.
    pub cookie: u64,
    /// `tcp_sock.bytes_acked` at the transition.
    pub bytes_acked: u64,
    /// `tcp_sock.bytes_received` at the transition.
    pub bytes_received: u64,
    /// Network namespace inode number (`ip netns identify`, `/proc/PID/ns/net`).
    pub netns: u32,
    /// Thread group id (the process) of the task current at the transition.
    pub pid: u32,
    /// Thread id of that task.
    pub tid: u32,
    /// `sk_ack_backlog`: accept queue length (meaningful for listeners).
    pub ack_backlog: u32,
    /// `sk_max_ack_backlog`: listen() backlog.
    pub max_ack_backlog: u32,
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u16,
    /// Local port, host order.
    pub sport: u16,
    /// Peer port, host order.
    pub dport: u16,
    /// Old and new `TcpState` values.
    pub oldstate: u8,
    pub newstate: u8,
    /// IPPROTO_TCP; kept so other inet protocols can be told apart later.
    pub protocol: u8,
    /// 1 if the socket is IPV6_V6ONLY (`skc_ipv6only`).
    pub v6only: u8,
    /// [`EVENT_TRANSITION`] or [`EVENT_ACCEPT`].
    pub kind: u8,
    pub _pad: u8,
    /// Local address: IPv4 in the first 4 bytes, or IPv6 (network order).
    pub saddr: [u8; 16],
    /// Peer address, as `saddr`.
    pub daddr: [u8; 16],
    /// `comm` of the current task, NUL padded.
    pub comm: [u8; 16],
    /// `tcp_sock` sequence numbers at the transition (see `KernelOffsets`).
    pub rcv_nxt: u32,
    pub copied_seq: u32,
    pub write_seq: u32,
    pub snd_una: u32,
    /// Interface the socket is bound to (0: none).
    pub bound_dev_if: u32,
    /// `sk_err` at a transition to CLOSE (an errno; 0: none, and at every other
    /// transition).
    pub error: u32,
    /// The socket's cgroup v2 id (`sk->sk_cgrp_data`); 0 when unknown (accept notices,
    /// kernels without CONFIG_SOCK_CGROUP_DATA).
    pub cgroup_id: u64,
    /// `tcp_sock.total_retrans` and `srtt_us >> 3` at a transition to CLOSE; 0 at every
    /// other transition.
    pub retrans: u32,
    pub srtt_us: u32,
    /// The network namespace's cookie (`bpf_get_netns_cookie`, SO_NETNS_COOKIE) for
    /// [`EVENT_REQUEST`], whose program cannot read the namespace's inode; 0 otherwise.
    pub netns_cookie: u64,
}
const _: () = assert!(core::mem::size_of::<StateEvent>() == 160);

impl StateEvent {
    pub const SIZE: usize = core::mem::size_of::<StateEvent>();

    /// Decodes an event from ring-buffer bytes; `None` if the length is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<StateEvent> {
        if bytes.len() != Self::SIZE {
            return None;
        }
        // SAFETY: the length equals size_of::<StateEvent>(), StateEvent is repr(C) made
        // only of integers and byte arrays (every bit pattern valid), and
        // read_unaligned has no alignment requirement.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<StateEvent>()) })
    }

    /// The event in ring-buffer bytes, read in place; `None` if the length is wrong or
    /// the bytes are not aligned for it (the ring's records are 8-aligned: then
    /// [`StateEvent::from_bytes`] copies).
    pub fn view(bytes: &[u8]) -> Option<&StateEvent> {
        if bytes.len() != Self::SIZE || !bytes.as_ptr().cast::<StateEvent>().is_aligned() {
            return None;
        }
        // SAFETY: length and alignment checked; repr(C) of integers and byte arrays (every
        // bit pattern valid); the reference borrows `bytes`.
        Some(unsafe { &*bytes.as_ptr().cast::<StateEvent>() })
    }

    /// The event's bytes, as the kernel wrote them.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: repr(C), no implicit padding (size asserted above), so every byte is
        // initialised; the slice borrows self.
        unsafe { core::slice::from_raw_parts((self as *const StateEvent).cast::<u8>(), Self::SIZE) }
    }
}

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const IPPROTO_TCP: u8 = 6;

/// TCP states, numbered as in include/net/tcp_states.h.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcpState {
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait1 = 4,
    FinWait2 = 5,
    TimeWait = 6,
    Close = 7,
    CloseWait = 8,
    LastAck = 9,
    Listen = 10,
    Closing = 11,
    NewSynRecv = 12,
    BoundInactive = 13,
}

impl TryFrom<u8> for TcpState {
    type Error = u8;
    fn try_from(v: u8) -> Result<Self, u8> {
        Ok(match v {
            1 => Self::Established,
            2 => Self::SynSent,
            3 => Self::SynRecv,
            4 => Self::FinWait1,
            5 => Self::FinWait2,
            6 => Self::TimeWait,
            7 => Self::Close,
            8 => Self::CloseWait,
            9 => Self::LastAck,
            10 => Self::Listen,
            11 => Self::Closing,
            12 => Self::NewSynRecv,
            13 => Self::BoundInactive,
            other => return Err(other),
        })
    }
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C) structs of integers and byte arrays without implicit padding
    // (sizes asserted above): any bit pattern is a valid value.
    unsafe impl aya::Pod for super::KernelOffsets {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::StateEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::OwnerOffsets {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trips_through_bytes() {
        let ev = StateEvent {
            ts_ns: 0x0102_0304_0506_0708,
            cookie: 0xdead_beef_0000_0001,
            bytes_acked: 7,
            bytes_received: 9,
            netns: 4_026_531_840,
            pid: 1234,
            tid: 1235,
            ack_backlog: 1,
            max_ack_backlog: 4096,
            family: AF_INET6,
            sport: 8080,
            dport: 51234,
            oldstate: TcpState::SynSent as u8,
            newstate: TcpState::Established as u8,
            protocol: IPPROTO_TCP,
            v6only: 1,
            kind: EVENT_ACCEPT,
            _pad: 0,
            saddr: [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            daddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
            rcv_nxt: 1,
            copied_seq: 2,
            write_seq: 3,
            snd_una: 0xffff_fff0,
            bound_dev_if: 7,
            error: 111,
            cgroup_id: 0x1234_5678_9abc,
            retrans: 3,
            srtt_us: 250,
            netns_cookie: 0x0a0b_0c0d,
        };
        let bytes = ev.as_bytes().to_vec();
        assert_eq!(bytes.len(), 160);
        assert_eq!(&bytes[132..136], &111u32.to_ne_bytes());
        assert_eq!(&bytes[136..144], &0x1234_5678_9abcu64.to_ne_bytes());
        assert_eq!(&bytes[148..152], &250u32.to_ne_bytes());
        assert_eq!(&bytes[152..160], &0x0a0b_0c0du64.to_ne_bytes());
        assert_eq!(&bytes[128..132], &7u32.to_ne_bytes());
        assert_eq!(&bytes[124..128], &0xffff_fff0u32.to_ne_bytes());
        // Field offsets the kernel side writes to, fixed by repr(C).
        assert_eq!(&bytes[0..8], &0x0102_0304_0506_0708u64.to_ne_bytes());
        assert_eq!(&bytes[36..40], &1234u32.to_ne_bytes());
        assert_eq!(bytes[58], TcpState::SynSent as u8);
        assert_eq!(bytes[59], TcpState::Established as u8);
        assert_eq!(bytes[61], 1);
        assert_eq!(bytes[62], EVENT_ACCEPT);
        assert_eq!(&bytes[96..100], b"curl");
        assert_eq!(StateEvent::from_bytes(&bytes), Some(ev));
        assert_eq!(StateEvent::from_bytes(&bytes[..159]), None);
    }

    #[test]
    fn states_convert_without_transmute() {
        for v in 1..=13u8 {
            assert_eq!(TcpState::try_from(v).map(|s| s as u8), Ok(v));
        }
        assert_eq!(TcpState::try_from(0), Err(0));
        assert_eq!(TcpState::try_from(14), Err(14));
    }
}
