//! BPF socket-local storage for the `--bpf-maps` tests: a BTF blob loaded into the kernel
//! (`BPF_BTF_LOAD`), an `BPF_MAP_TYPE_SK_STORAGE` map made with it (`BPF_MAP_CREATE`),
//! and values set on sockets from user space (`BPF_MAP_UPDATE_ELEM`, the socket's fd as
//! the key), through the bpf(2) syscall. Also a map of another type, which sockstat must
//! refuse as ss does.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, bail};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_BTF_LOAD: libc::c_long = 18;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_MAP_TYPE_SK_STORAGE: u32 = 24;
const BPF_F_NO_PREALLOC: u32 = 1;

fn bpf(cmd: libc::c_long, attr: &mut [u8]) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a zero-filled buffer laid out as the `union bpf_attr` member of
    // `cmd`, valid for the length passed; the pointers inside it outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) };
    if r < 0 { Err(std::io::Error::last_os_error()) } else { Ok(r) }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: a fd the kernel just returned, owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(RawFd::try_from(fd).expect("fd")) }
}

/// A map, kept open (it lives as long as this).
pub struct Map {
    pub fd: OwnedFd,
    pub id: u32,
    _btf: Option<OwnedFd>,
}

fn map_id(fd: &OwnedFd) -> anyhow::Result<u32> {
    let mut info = [0u8; 88];
    let mut attr = [0u8; 16];
    attr[..4].copy_from_slice(&fd.as_raw_fd().to_ne_bytes());
    attr[4..8].copy_from_slice(&88u32.to_ne_bytes());
    attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).context("BPF_OBJ_GET_INFO_BY_FD")?;
    Ok(u32::from_ne_bytes([info[4], info[5], info[6], info[7]]))
}

fn create(
    map_type: u32,
    key: u32,
    value: u32,
    max: u32,
    flags: u32,
    btf: Option<(&OwnedFd, u32, u32)>,
    name: &str,
) -> anyhow::Result<OwnedFd> {
    let mut attr = [0u8; 72];
    for (at, v) in [(0, map_type), (4, key), (8, value), (12, max), (16, flags)] {
        attr[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }
    let n = name.len().min(15);
    attr[28..28 + n].copy_from_slice(&name.as_bytes()[..n]);
    if let Some((fd, key_id, value_id)) = btf {
        attr[48..52].copy_from_slice(&fd.as_raw_fd().to_ne_bytes());
        attr[52..56].copy_from_slice(&key_id.to_ne_bytes());
        attr[56..60].copy_from_slice(&value_id.to_ne_bytes());
    }
    Ok(owned(bpf(BPF_MAP_CREATE, &mut attr).with_context(|| format!("BPF_MAP_CREATE {name}"))?))
}

/// Loads `blob` and makes a socket-local storage map whose key is type `key_id` (an
/// `int`) and whose value is type `value_id`, `value_size` bytes.
///
/// # Errors
/// The kernel's refusal, with its BTF verifier log.
pub fn sk_storage_map(blob: &[u8], key_id: u32, value_id: u32, value_size: u32, name: &str) -> anyhow::Result<Map> {
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = [0u8; 32];
    attr[..8].copy_from_slice(&(blob.as_ptr() as u64).to_ne_bytes());
    attr[8..16].copy_from_slice(&(log.as_mut_ptr() as u64).to_ne_bytes());
    attr[16..20].copy_from_slice(&u32::try_from(blob.len())?.to_ne_bytes());
    attr[20..24].copy_from_slice(&u32::try_from(log.len())?.to_ne_bytes());
    attr[24..28].copy_from_slice(&1u32.to_ne_bytes());
    let btf = match bpf(BPF_BTF_LOAD, &mut attr) {
        Ok(fd) => owned(fd),
        Err(e) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            bail!("BPF_BTF_LOAD: {e} (run as root): {}", String::from_utf8_lossy(&log[..end]));
        }
    };
    let fd =
        create(BPF_MAP_TYPE_SK_STORAGE, 4, value_size, 0, BPF_F_NO_PREALLOC, Some((&btf, key_id, value_id)), name)?;
    let id = map_id(&fd)?;
    Ok(Map { fd, id, _btf: Some(btf) })
}

/// An array map (one u32), which is not socket-local storage.
///
/// # Errors
/// The kernel's refusal.
pub fn array_map(name: &str) -> anyhow::Result<Map> {
    let fd = create(BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0, None, name)?;
    let id = map_id(&fd)?;
    Ok(Map { fd, id, _btf: None })
}

/// Sets `sock`'s value in `map` (user space may: the key is the socket's fd).
///
/// # Errors
/// The kernel's refusal.
pub fn set(map: &Map, sock: RawFd, value: &[u8]) -> anyhow::Result<()> {
    let key = sock;
    let mut attr = [0u8; 32];
    attr[..4].copy_from_slice(&map.fd.as_raw_fd().to_ne_bytes());
    attr[8..16].copy_from_slice(&(std::ptr::addr_of!(key) as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(value.as_ptr() as u64).to_ne_bytes());
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).context("BPF_MAP_UPDATE_ELEM")?;
    Ok(())
}
