//! BPF socket-local storage maps (`BPF_MAP_TYPE_SK_STORAGE`) looked up by id through the
//! bpf(2) syscall, as ss 7.1 does for `--bpf-maps` and `--bpf-map-id`: the map's fd
//! (`BPF_MAP_GET_FD_BY_ID`, kept open: sock_diag requests name maps by fd), its
//! `struct bpf_map_info` (`BPF_OBJ_GET_INFO_BY_FD`), and its BTF
//! (`BPF_BTF_GET_FD_BY_ID`, then the raw blob through `BPF_OBJ_GET_INFO_BY_FD`).
//! May import `model`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use crate::model::btf::{Btf, BtfError, StorageMapInfo};

/// `enum bpf_cmd` (include/uapi/linux/bpf.h).
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_BTF_GET_FD_BY_ID: libc::c_long = 19;
/// `BPF_MAP_TYPE_SK_STORAGE`.
pub const MAP_TYPE_SK_STORAGE: u32 = 24;
/// `sizeof(struct bpf_map_info)` as of Linux 6.x: type, id, key_size, value_size,
/// max_entries, map_flags, name[16], ifindex, btf_vmlinux_value_type_id, netns_dev,
/// netns_ino, btf_id, btf_key_type_id, btf_value_type_id, pad, map_extra.
const MAP_INFO_LEN: usize = 88;
/// `sizeof(struct bpf_btf_info)`: btf (pointer), btf_size, id, name (pointer), name_len,
/// kernel_btf.
const BTF_INFO_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum BpfMapError {
    /// ss's "cannot get fd for BPF map ID %u" (with its hint on EPERM).
    #[error("cannot get fd for BPF map ID {id}{}", if *.permission { ": missing root permissions, CAP_BPF, or CAP_SYS_ADMIN" } else { "" })]
    Fd {
        id: u32,
        permission: bool,
        #[source]
        source: io::Error,
    },
    #[error("failed to get info for BPF map ID {id}")]
    Info {
        id: u32,
        #[source]
        source: io::Error,
    },
    /// ss's wording, with the id as it was written on the command line.
    #[error("BPF map with ID {given} has type ID {found}, expecting {MAP_TYPE_SK_STORAGE} ('sk_storage')")]
    NotSkStorage { given: String, found: u32 },
    #[error("failed to load BTF for map ID {id}")]
    Btf {
        id: u32,
        #[source]
        source: io::Error,
    },
    #[error("BTF of map ID {id} is malformed")]
    BtfParse {
        id: u32,
        #[source]
        source: BtfError,
    },
}

/// What sockstat needs of one socket-local storage map to print its values.
#[derive(Debug)]
pub struct SkStorageMap {
    pub id: u32,
    /// Kept open for the sock_diag request (`SK_DIAG_BPF_STORAGE_REQ_MAP_FD`).
    pub fd: OwnedFd,
    /// Its value size and BTF (`value_type_id` is never 0 for sk_storage, which the
    /// kernel creates only with BTF).
    pub info: Arc<StorageMapInfo>,
}

fn bpf(cmd: libc::c_long, attr: &mut [u8]) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, writable buffer of the size passed, laid out as the
    // `union bpf_attr` member of `cmd` (the kernel zero-checks bytes it does not know).
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

fn fd_by_id(cmd: libc::c_long, id: u32) -> io::Result<OwnedFd> {
    // `start_id` / `map_id` / `btf_id`, `next_id`, `open_flags`.
    let mut attr = [0u8; 12];
    attr[..4].copy_from_slice(&id.to_ne_bytes());
    let fd = bpf(cmd, &mut attr)?;
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `BPF_OBJ_GET_INFO_BY_FD` into `info` (whose first bytes may point the kernel at more
/// buffers, as `bpf_btf_info.btf` does).
fn info_by_fd(fd: RawFd, info: &mut [u8]) -> io::Result<()> {
    // `bpf_fd`, `info_len`, `info` (an aligned u64 pointer).
    let mut attr = [0u8; 16];
    attr[..4].copy_from_slice(&fd.cast_unsigned().to_ne_bytes());
    attr[4..8].copy_from_slice(&u32::try_from(info.len()).unwrap_or(u32::MAX).to_ne_bytes());
    attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map(|_| ())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The raw BTF blob with this id.
///
/// # Errors
/// The syscalls'.
pub fn btf_blob(btf_id: u32) -> io::Result<Vec<u8>> {
    let fd = fd_by_id(BPF_BTF_GET_FD_BY_ID, btf_id)?;
    // First ask for the size, then for the blob.
    let mut info = [0u8; BTF_INFO_LEN];
    info_by_fd(fd.as_raw_fd(), &mut info)?;
    let size = u32_at(&info, 8);
    let mut blob = vec![0u8; size as usize];
    let mut info = [0u8; BTF_INFO_LEN];
    info[..8].copy_from_slice(&(blob.as_mut_ptr() as u64).to_ne_bytes());
    info[8..12].copy_from_slice(&size.to_ne_bytes());
    info_by_fd(fd.as_raw_fd(), &mut info)?;
    blob.truncate(u32_at(&info, 8).min(size) as usize);
    Ok(blob)
}

/// Opens the map with this id and reads what printing its values needs. `given`: the id
/// as the user wrote it, for ss's message about a map of another type.
///
/// # Errors
/// [`BpfMapError`]: no such map (or no permission), not a socket-local storage map, its
/// BTF unreadable or malformed.
pub fn open_sk_storage(id: u32, given: &str) -> Result<SkStorageMap, BpfMapError> {
    let fd = fd_by_id(BPF_MAP_GET_FD_BY_ID, id).map_err(|source| BpfMapError::Fd {
        id,
        permission: source.raw_os_error() == Some(libc::EPERM),
        source,
    })?;
    let mut info = [0u8; MAP_INFO_LEN];
    info_by_fd(fd.as_raw_fd(), &mut info).map_err(|source| BpfMapError::Info { id, source })?;
    let map_type = u32_at(&info, 0);
    if map_type != MAP_TYPE_SK_STORAGE {
        return Err(BpfMapError::NotSkStorage { given: given.to_owned(), found: map_type });
    }
    let value_size = u32_at(&info, 12);
    let btf_id = u32_at(&info, 64);
    let value_type_id = u32_at(&info, 72);
    let btf = if value_type_id == 0 {
        None
    } else {
        let blob = btf_blob(btf_id).map_err(|source| BpfMapError::Btf { id, source })?;
        Some(Arc::new(Btf::parse(&blob).map_err(|source| BpfMapError::BtfParse { id, source })?))
    };
    Ok(SkStorageMap { id, fd, info: Arc::new(StorageMapInfo { value_size, value_type_id, btf }) })
}
