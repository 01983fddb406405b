//! Kernel structure offsets for the eBPF program, resolved from the running kernel's
//! BTF (`/sys/kernel/btf/vmlinux`). Rust eBPF has no CO-RE relocations, so the loader
//! hands these to the program through a global instead. Also the BTF ids the programs'
//! casts name: of the structs they cast to, and of the kfunc `bpf_rdonly_cast`.

use std::{collections::BTreeMap, path::Path};

use btfparse::{Offset, Readable, TypeInformation, TypeVariant};
use sockstat_ebpf::{KernelOffsets, OwnerOffsets};

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("cannot read {path}: {source} (the kernel needs CONFIG_DEBUG_INFO_BTF)")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot parse kernel BTF: {0}")]
    Parse(String),
    #[error("kernel BTF has no type `struct {0}`")]
    MissingType(&'static str),
    #[error(
        "kernel BTF: cannot resolve `{ty}.{path}`: {message}; the eBPF program reads that field, and this kernel \
         does not have it under that name (sockstat does not support this kernel's layout)"
    )]
    Member { ty: &'static str, path: &'static str, message: String },
    #[error("kernel BTF: `{ty}.{path}` is a bitfield; sockstat reads whole bytes")]
    Bitfield { ty: &'static str, path: &'static str },
    #[error("kernel BTF: `{ty}.{path}` is not a one-bit bitfield")]
    NotOneBit { ty: &'static str, path: &'static str },
}

/// A BTF blob held in memory (btfparse reads through the `Readable` trait).
struct Blob(Vec<u8>);

impl Readable for Blob {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        let start = usize::try_from(offset).ok();
        let end = start.and_then(|s| s.checked_add(buffer.len()));
        match (start, end) {
            (Some(s), Some(e)) if e <= self.0.len() => {
                buffer.copy_from_slice(&self.0[s..e]);
                Ok(())
            }
            _ => Err(btfparse::Error::new(btfparse::ErrorKind::InvalidOffset, "read past the end of the BTF blob")),
        }
    }
}

struct Resolver {
    types: TypeInformation,
}

impl Resolver {
    /// (byte, bit within that byte) of a one-bit bitfield member.
    fn bit_position(&self, ty: &'static str, path: &'static str) -> Result<(u32, u32), BtfError> {
        let id = self.types.id_of(ty).ok_or(BtfError::MissingType(ty))?;
        match self.types.offset_of(id, path) {
            Ok((_, Offset::BitOffsetAndSize(bits, 1))) => Ok((bits / 8, bits % 8)),
            Ok((_, Offset::BitOffsetAndSize(..) | Offset::ByteOffset(_))) => Err(BtfError::NotOneBit { ty, path }),
            Err(e) => Err(BtfError::Member { ty, path, message: e.message().to_string() }),
        }
    }

    /// The id of `struct name` (its name may also be another kind's).
    fn struct_id(&self, name: &'static str) -> Result<u32, BtfError> {
        self.id_of_kind(name, |t| matches!(t, TypeVariant::Struct(_))).ok_or(BtfError::MissingType(name))
    }

    /// The id of the function `name`, if the kernel has one.
    fn func_id(&self, name: &str) -> Option<u32> {
        self.id_of_kind(name, |t| matches!(t, TypeVariant::Func(_)))
    }

    fn id_of_kind(&self, name: &str, kind: impl Fn(&TypeVariant) -> bool) -> Option<u32> {
        // The name index keeps one id per name: check its kind, else look through all.
        let named =
            |(id, t): (u32, &TypeVariant)| (kind(t) && self.types.name_of(id).as_deref() == Some(name)).then_some(id);
        match self.types.id_of(name) {
            Some(id) if self.types.from_id(id).is_some_and(|t| kind(&t)) => Some(id),
            _ => self.types.get().iter().find_map(|(&id, t)| named((id, t))),
        }
    }

    fn byte_offset(&self, ty: &'static str, path: &'static str) -> Result<u32, BtfError> {
        let id = self.types.id_of(ty).ok_or(BtfError::MissingType(ty))?;
        match self.types.offset_of(id, path) {
            Ok((_, Offset::ByteOffset(off))) => Ok(off),
            Ok((_, Offset::BitOffsetAndSize(..))) => Err(BtfError::Bitfield { ty, path }),
            Err(e) => Err(BtfError::Member { ty, path, message: e.message().to_string() }),
        }
    }
}

/// Resolves every offset the program needs from the running kernel's BTF
/// (`tp_exit_ret` comes from tracefs instead: see `ebpf`).
pub fn kernel_offsets() -> Result<KernelOffsets, BtfError> {
    offsets_from_file(Path::new(VMLINUX_BTF))
}

/// What the loader needs from the kernel's BTF, from one parse.
#[derive(Debug)]
pub struct Resolved {
    /// [`kernel_offsets`].
    pub kernel: KernelOffsets,
    /// The owners iterator's offsets: may fail alone (the iterator is optional, the
    /// tracer is not).
    pub owners: Result<OwnerOffsets, BtfError>,
    /// The BTF id of the kfunc `bpf_rdonly_cast` (kernels since 6.2), which the programs'
    /// casts call (see `sockstat_ebpf::RDONLY_CAST_CALL`); `None` without it.
    pub rdonly_cast: Option<u32>,
}

/// [`Resolved`] from the running kernel's BTF.
pub fn kernel_and_owner_offsets() -> Result<Resolved, BtfError> {
    let r = resolver(read(Path::new(VMLINUX_BTF))?)?;
    Ok(Resolved { kernel: offsets(&r)?, owners: owner_offsets(&r), rdonly_cast: r.func_id("bpf_rdonly_cast") })
}

fn read(path: &Path) -> Result<Vec<u8>, BtfError> {
    std::fs::read(path).map_err(|source| BtfError::Read { path: path.display().to_string(), source })
}

fn resolver(bytes: Vec<u8>) -> Result<Resolver, BtfError> {
    let types = TypeInformation::new(&Blob(bytes)).map_err(|e| BtfError::Parse(e.message().to_string()))?;
    check_indirections(&types)?;
    let (mut stack, mut done) = (Vec::new(), std::collections::HashSet::new());
    for &id in types.get().keys() {
        check_anonymous_members(types.get(), id, &mut stack, &mut done)?;
    }
    Ok(Resolver { types })
}

/// Deepest nesting of anonymous struct/union members a BTF may have (a kernel's is a few).
const MAX_ANONYMOUS_NESTING: usize = 64;

/// The type `tid` resolves to through typedef/const/volatile/restrict/fwd links (which
/// [`check_indirections`] has bounded).
fn through_indirections(all: &BTreeMap<u32, TypeVariant>, mut tid: u32) -> u32 {
    loop {
        tid = match all.get(&tid) {
            Some(TypeVariant::Fwd(t)) => *t.tid(),
            Some(TypeVariant::Typedef(t)) => *t.tid(),
            Some(TypeVariant::Const(t)) => *t.tid(),
            Some(TypeVariant::Volatile(t)) => *t.tid(),
            Some(TypeVariant::Restrict(t)) => *t.tid(),
            _ => return tid,
        };
    }
}

/// btfparse looks for a member name inside every anonymous member, recursively, with no
/// limit: a crafted BTF whose anonymous member contains its own struct (found by the
/// `btf_offsets` fuzz target) overflowed the stack. Refused here instead, as is nesting
/// deeper than [`MAX_ANONYMOUS_NESTING`].
fn check_anonymous_members(
    all: &BTreeMap<u32, TypeVariant>,
    id: u32,
    stack: &mut Vec<u32>,
    done: &mut std::collections::HashSet<u32>,
) -> Result<(), BtfError> {
    if done.contains(&id) {
        return Ok(());
    }
    let members = match all.get(&id) {
        Some(TypeVariant::Struct(s)) => s.member_list(),
        Some(TypeVariant::Union(u)) => u.member_list(),
        _ => return Ok(()),
    };
    if stack.contains(&id) || stack.len() >= MAX_ANONYMOUS_NESTING {
        return Err(BtfError::Parse(format!(
            "type {id}: anonymous members nested in a cycle (or deeper than {MAX_ANONYMOUS_NESTING})"
        )));
    }
    stack.push(id);
    for m in members.iter().filter(|m| m.name().is_none()) {
        check_anonymous_members(all, through_indirections(all, m.tid()), stack, done)?;
    }
    stack.pop();
    done.insert(id);
    Ok(())
}

/// Longest chain of typedef/const/volatile/restrict/fwd a BTF may have (a kernel's are a
/// few links long).
const MAX_INDIRECTIONS: usize = 64;

/// btfparse follows typedef, const, volatile, restrict and fwd links until it reaches
/// another kind, with no limit: a crafted BTF whose chain loops back (found by the
/// `btf_offsets` fuzz target) would hang `offset_of`. Refused here instead.
fn check_indirections(types: &TypeInformation) -> Result<(), BtfError> {
    let all = types.get();
    for &start in all.keys() {
        let mut tid = start;
        let mut hops = 0;
        while let Some(next) = all.get(&tid).and_then(|t| match t {
            TypeVariant::Fwd(t) => Some(*t.tid()),
            TypeVariant::Typedef(t) => Some(*t.tid()),
            TypeVariant::Const(t) => Some(*t.tid()),
            TypeVariant::Volatile(t) => Some(*t.tid()),
            TypeVariant::Restrict(t) => Some(*t.tid()),
            _ => None,
        }) {
            hops += 1;
            if hops > MAX_INDIRECTIONS {
                return Err(BtfError::Parse(format!(
                    "type {start}: more than {MAX_INDIRECTIONS} typedef/const/volatile/restrict links (a cycle?)"
                )));
            }
            tid = next;
        }
    }
    Ok(())
}

/// The `thread_info.flags` bit of a task with a 32-bit address space
/// (arch/x86/include/asm/thread_info.h `TIF_ADDR32`, set for ia32 and x32 processes;
/// arch/arm64/include/asm/thread_info.h `TIF_32BIT`).
#[cfg(target_arch = "x86_64")]
const COMPAT_TASK_FLAG: u32 = 1 << 29;
#[cfg(target_arch = "aarch64")]
const COMPAT_TASK_FLAG: u32 = 1 << 22;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const COMPAT_TASK_FLAG: u32 = 0;

fn owner_offsets(r: &Resolver) -> Result<OwnerOffsets, BtfError> {
    Ok(OwnerOffsets {
        task_pid: r.byte_offset("task_struct", "pid")?,
        task_tgid: r.byte_offset("task_struct", "tgid")?,
        task_comm: r.byte_offset("task_struct", "comm")?,
        file_f_inode: r.byte_offset("file", "f_inode")?,
        inode_i_ino: r.byte_offset("inode", "i_ino")?,
        socket_sk: r.byte_offset("socket", "sk")?,
        sk_cookie: r.byte_offset("sock_common", "skc_cookie")?,
        valid: 1,
        task_files: r.byte_offset("task_struct", "files")?,
        task_flags: r.byte_offset("task_struct", "flags")?,
        task_start_time: r.byte_offset("task_struct", "start_time")?,
        // Absent without io_uring (CONFIG_IO_URING): 0, and the listing skips it.
        task_io_uring: r.byte_offset("task_struct", "io_uring").unwrap_or(0),
        task_ti_flags: r.byte_offset("task_struct", "thread_info.flags").unwrap_or(0),
        compat_mask: if r.byte_offset("task_struct", "thread_info.flags").is_ok() { COMPAT_TASK_FLAG } else { 0 },
    })
}

pub fn offsets_from_file(path: &Path) -> Result<KernelOffsets, BtfError> {
    offsets_from_bytes(read(path)?)
}

pub fn offsets_from_bytes(bytes: Vec<u8>) -> Result<KernelOffsets, BtfError> {
    offsets(&resolver(bytes)?)
}

fn offsets(r: &Resolver) -> Result<KernelOffsets, BtfError> {
    let (skc_ipv6only_byte, skc_ipv6only_bit) = r.bit_position("sock_common", "skc_ipv6only")?;
    // struct sock embeds struct sock_common as its first member `__sk_common`
    // (include/net/sock.h); the skc_* names are members of that struct, some inside
    // anonymous unions, which btfparse resolves.
    Ok(with_sock_copy_len(KernelOffsets {
        skc_daddr: r.byte_offset("sock_common", "skc_daddr")?,
        skc_rcv_saddr: r.byte_offset("sock_common", "skc_rcv_saddr")?,
        skc_dport: r.byte_offset("sock_common", "skc_dport")?,
        skc_num: r.byte_offset("sock_common", "skc_num")?,
        skc_family: r.byte_offset("sock_common", "skc_family")?,
        skc_net: r.byte_offset("sock_common", "skc_net")?,
        skc_v6_daddr: r.byte_offset("sock_common", "skc_v6_daddr")?,
        skc_v6_rcv_saddr: r.byte_offset("sock_common", "skc_v6_rcv_saddr")?,
        // struct net { ... struct ns_common ns; ... } with ns_common.inum
        // (include/net/net_namespace.h, include/linux/ns_common.h).
        net_ns_inum: r.byte_offset("net", "ns.inum")?,
        sk_protocol: r.byte_offset("sock", "sk_protocol")?,
        sk_ack_backlog: r.byte_offset("sock", "sk_ack_backlog")?,
        sk_max_ack_backlog: r.byte_offset("sock", "sk_max_ack_backlog")?,
        // struct tcp_sock (include/linux/tcp.h): u64 counters.
        tcp_bytes_acked: r.byte_offset("tcp_sock", "bytes_acked")?,
        tcp_bytes_received: r.byte_offset("tcp_sock", "bytes_received")?,
        tcp_rcv_nxt: r.byte_offset("tcp_sock", "rcv_nxt")?,
        tcp_copied_seq: r.byte_offset("tcp_sock", "copied_seq")?,
        tcp_write_seq: r.byte_offset("tcp_sock", "write_seq")?,
        tcp_snd_una: r.byte_offset("tcp_sock", "snd_una")?,
        skc_ipv6only_byte,
        skc_ipv6only_bit,
        skc_bound_dev_if: r.byte_offset("sock_common", "skc_bound_dev_if")?,
        sk_cookie: r.byte_offset("sock_common", "skc_cookie")?,
        // include/linux/sched.h, include/linux/fdtable.h, include/linux/fs.h,
        // include/linux/net.h.
        task_files: r.byte_offset("task_struct", "files")?,
        files_fdt: r.byte_offset("files_struct", "fdt")?,
        fdt_fd: r.byte_offset("fdtable", "fd")?,
        fdt_max_fds: r.byte_offset("fdtable", "max_fds")?,
        file_private_data: r.byte_offset("file", "private_data")?,
        socket_sk: r.byte_offset("socket", "sk")?,
        tp_exit_ret: 0,
        wakeup_bytes: 0,
        valid: 1,
        task_pid: r.byte_offset("task_struct", "pid")?,
        task_tgid: r.byte_offset("task_struct", "tgid")?,
        task_comm: r.byte_offset("task_struct", "comm")?,
        wakeup_check_mask: 0,
        sock_copy_len: 0,
        btf_file: r.struct_id("file")?,
        btf_socket: r.struct_id("socket")?,
        btf_tcp_sock: r.struct_id("tcp_sock")?,
        // include/linux/fs.h: struct kiocb { struct file *ki_filp; ... }.
        btf_fd_slot: match r.byte_offset("kiocb", "ki_filp") {
            Ok(0) => r.struct_id("kiocb").unwrap_or(0),
            _ => 0,
        },
        casts: 0,
        // include/net/sock.h (int sk_err), include/linux/tcp.h (u32 total_retrans,
        // u32 srtt_us).
        sk_err: r.byte_offset("sock", "sk_err")?,
        tcp_total_retrans: r.byte_offset("tcp_sock", "total_retrans")?,
        tcp_srtt_us: r.byte_offset("tcp_sock", "srtt_us")?,
        // include/net/sock.h (struct sock_cgroup_data sk_cgrp_data, whose `cgroup` is a
        // struct cgroup *), include/linux/cgroup-defs.h (cgroup.kn), include/linux/
        // kernfs.h (u64 kernfs_node.id). A kernel without CONFIG_SOCK_CGROUP_DATA has no
        // sk_cgrp_data: 0, and events carry no cgroup.
        sk_cgrp_cgroup: r.byte_offset("sock", "sk_cgrp_data.cgroup").unwrap_or(0),
        cgroup_kn: r.byte_offset("cgroup", "kn").unwrap_or(0),
        kernfs_node_id: r.byte_offset("kernfs_node", "id").unwrap_or(0),
    }))
}

/// Sets `sock_copy_len` to the end of the last socket field an event carries: the accept
/// hook copies the socket up to there with one read. 0 (no accept hook) if that does not
/// fit its buffer.
fn with_sock_copy_len(mut off: KernelOffsets) -> KernelOffsets {
    let ends = [
        off.skc_daddr + 4,
        off.skc_rcv_saddr + 4,
        off.skc_dport + 2,
        off.skc_num + 2,
        off.skc_family + 2,
        off.skc_net + 8,
        off.skc_v6_daddr + 16,
        off.skc_v6_rcv_saddr + 16,
        off.skc_ipv6only_byte + 1,
        off.skc_bound_dev_if + 4,
        off.sk_cookie + 8,
        off.sk_protocol + 2,
        off.sk_ack_backlog + 4,
        off.sk_max_ack_backlog + 4,
        off.tcp_bytes_acked + 8,
        off.tcp_bytes_received + 8,
        off.tcp_rcv_nxt + 4,
        off.tcp_copied_seq + 4,
        off.tcp_write_seq + 4,
        off.tcp_snd_una + 4,
    ];
    let len = ends.into_iter().max().unwrap_or(0).next_multiple_of(8);
    off.sock_copy_len = if len <= sockstat_ebpf::SOCK_COPY_BYTES { len } else { 0 };
    off
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs against this machine's kernel: BTF is part of the platform sockstat needs.
    #[test]
    fn resolves_offsets_from_the_running_kernel() {
        let off = kernel_offsets().expect("kernel BTF must be readable: sockstat requires CONFIG_DEBUG_INFO_BTF");
        // The head of struct sock_common has been stable for a decade: addrpair at 0,
        // portpair after the hash (include/net/sock.h).
        assert_eq!(off.skc_daddr, 0);
        assert_eq!(off.skc_rcv_saddr, 4);
        assert_eq!(off.skc_dport, 12);
        assert_eq!(off.skc_num, 14);
        assert_eq!(off.skc_family, 16);
        assert!(off.skc_v6_daddr > off.skc_family && off.skc_v6_rcv_saddr == off.skc_v6_daddr + 16);
        assert!(off.tcp_bytes_received > off.sk_protocol && off.tcp_bytes_acked > off.sk_protocol);
        assert_eq!(off.valid, 1);
        assert!(off.sock_copy_len >= off.tcp_bytes_acked + 8 && off.sock_copy_len <= sockstat_ebpf::SOCK_COPY_BYTES);
        assert!(off.sock_copy_len > off.sk_protocol && off.sock_copy_len.is_multiple_of(8));
        assert_eq!(off.task_tgid, off.task_pid + 4, "task_struct.tgid follows pid");
        // skc_cookie is an atomic64_t inside sock_common, after the address/port pairs.
        assert!(off.sk_cookie > off.skc_family && off.sk_cookie.is_multiple_of(8), "skc_cookie at {}", off.sk_cookie);
        assert!(off.task_files > 0 && off.file_private_data > 0 && off.fdt_fd != off.fdt_max_fds);
        // skc_ipv6only shares a byte with skc_reuse:4 and skc_reuseport:1.
        assert!(off.skc_ipv6only_byte > off.skc_family && off.skc_ipv6only_bit < 8);
        // This kernel has CONFIG_SOCK_CGROUP_DATA (cgroup v2 is in use here).
        assert!(off.sk_cgrp_cgroup > 0 && off.cgroup_kn > 0 && off.kernfs_node_id > 0, "{off:?}");
        assert!(off.tcp_total_retrans > off.sk_err && off.tcp_srtt_us > off.sk_err);
    }

    #[test]
    fn resolves_owner_offsets_from_the_running_kernel() {
        let Resolved { kernel, owners, rdonly_cast } = kernel_and_owner_offsets().expect("kernel BTF");
        let owners = owners.expect("owner offsets");
        // Our kernels are newer than 6.2, which added the kfunc; the struct ids differ.
        assert!(rdonly_cast.is_some_and(|id| id > 0));
        let ids = [kernel.btf_file, kernel.btf_socket, kernel.btf_tcp_sock, kernel.btf_fd_slot];
        assert!(ids.iter().all(|&id| id > 0) && ids[0] != ids[1] && ids[1] != ids[2] && ids[2] != ids[3], "{ids:?}");
        assert_eq!(kernel, kernel_offsets().expect("kernel BTF"));
        assert_eq!(owners.valid, 1);
        assert_eq!(owners.task_tgid, owners.task_pid + 4, "task_struct.tgid follows pid");
        assert_eq!((owners.socket_sk, owners.sk_cookie), (kernel.socket_sk, kernel.sk_cookie));
        assert!(owners.task_comm > owners.task_tgid && owners.inode_i_ino > 0);
    }

    /// The running kernel's BTF with the name string `name` spelled otherwise: every
    /// member of that name disappears (BTF keeps each string once, so the members that
    /// use it all point at the one changed).
    fn kernel_btf_without(name: &str) -> Vec<u8> {
        let mut bytes = std::fs::read(VMLINUX_BTF).expect("kernel BTF (CONFIG_DEBUG_INFO_BTF)");
        let needle = format!("\0{name}\0").into_bytes();
        let at = bytes.windows(needle.len()).position(|w| w == needle).unwrap_or_else(|| panic!("no string {name}"));
        // The last letter, uppercased: a name no kernel member has.
        bytes[at + needle.len() - 2].make_ascii_uppercase();
        bytes
    }

    /// A kernel whose `struct sock_common` lacks a field the program reads: the error at
    /// start names the struct and the field, not just "BTF failed".
    #[test]
    fn a_missing_field_is_named() {
        let err = offsets_from_bytes(kernel_btf_without("skc_cookie")).expect_err("resolved a field that is gone");
        assert!(matches!(err, BtfError::Member { ty: "sock_common", path: "skc_cookie", .. }), "{err:?}");
        let text = crate::bpf::loader::EbpfError::from(err).to_string();
        assert!(text.contains("`sock_common.skc_cookie`") && text.contains("this kernel"), "{text}");
        // A field of another struct, read further down the list, is named the same way.
        let err = offsets_from_bytes(kernel_btf_without("bytes_received")).expect_err("resolved a field that is gone");
        assert!(err.to_string().contains("`tcp_sock.bytes_received`"), "{err}");
    }

    /// Found by the `btf_offsets` fuzz target: a type whose typedef chain loops back made
    /// btfparse's `offset_of` spin forever. Now an error, at once.
    #[test]
    fn a_typedef_cycle_is_an_error_not_a_hang() {
        let bytes = include_bytes!("testdata/btf-typedef-cycle.bin").to_vec();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(offsets_from_bytes(bytes).map_err(|e| e.to_string()));
        });
        let result =
            rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the resolver hangs on a typedef cycle");
        let err = result.expect_err("offsets resolved from a BTF with a cycle");
        assert!(err.contains("cycle"), "{err}");
    }

    /// Found by the `btf_offsets` fuzz target: an anonymous member containing its own
    /// struct made btfparse's `offset_of` recurse until the stack overflowed.
    #[test]
    fn an_anonymous_member_cycle_is_an_error_not_a_stack_overflow() {
        let err = offsets_from_bytes(include_bytes!("testdata/btf-anonymous-member-cycle.bin").to_vec())
            .expect_err("offsets resolved from a BTF with a cycle");
        assert!(err.to_string().contains("cycle"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(offsets_from_bytes(vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0]).is_err());
        assert!(offsets_from_bytes(Vec::new()).is_err());
    }
}
