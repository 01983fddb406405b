//! How full the event ring buffer is, read from its positions: a read-only mapping of
//! the map's consumer and producer pages (kernel/bpf/ringbuf.c: `consumer_pos` at the
//! start of the first page, `producer_pos` at the start of the second; a read-only
//! mapping of both is allowed to any process holding the map's fd). Independent of the
//! reader that drains the ring, so any thread can ask, at any time, without a lock.

use std::{
    os::fd::{AsRawFd, BorrowedFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

#[derive(Debug, thiserror::Error)]
#[error("mapping the ring buffer's positions (mmap of its first two pages)")]
pub struct RingFillError(#[source] std::io::Error);

/// The positions of one ring buffer, mapped read-only.
pub struct RingFill {
    pages: NonNull<libc::c_void>,
    page: usize,
    size: u64,
}

// SAFETY: the mapping is read-only and lives until drop; the positions are read with
// atomic loads, as the kernel writes them with smp_store_release.
unsafe impl Send for RingFill {}
// SAFETY: as above; no method mutates through the mapping.
unsafe impl Sync for RingFill {}

impl RingFill {
    /// Maps the positions of the ring buffer map `fd`, of `size` data bytes. The
    /// mapping stays valid after `fd` is closed (it holds the map).
    pub fn new(fd: BorrowedFd<'_>, size: u32) -> Result<RingFill, RingFillError> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        // SAFETY: a fresh shared read-only mapping of two pages of a ring buffer map fd,
        // which the kernel allows; the result is checked before use.
        let p =
            unsafe { libc::mmap(std::ptr::null_mut(), 2 * page, libc::PROT_READ, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(RingFillError(std::io::Error::last_os_error()));
        }
        let pages = NonNull::new(p).ok_or_else(|| RingFillError(std::io::Error::other("mmap returned NULL")))?;
        Ok(RingFill { pages, page, size: u64::from(size) })
    }

    fn pos(&self, page: usize) -> u64 {
        // SAFETY: the mapping covers two pages; each position is an 8-byte aligned u64
        // at the start of its page, which the kernel updates atomically.
        unsafe { (*self.pages.as_ptr().cast::<u8>().add(page * self.page).cast::<AtomicU64>()).load(Ordering::Acquire) }
    }

    /// Bytes reserved in the ring and not yet consumed (records and their headers).
    #[must_use]
    pub fn used_bytes(&self) -> u64 {
        let consumer = self.pos(0);
        let producer = self.pos(1);
        producer.saturating_sub(consumer).min(self.size)
    }

    /// Whether every record reserved in the ring has been consumed (a record reserved and
    /// not yet committed counts as held). Compares the positions alone, whatever the size.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        // Consumer first: it only grows toward the producer, so a stale consumer can make
        // the ring look fuller, never emptier.
        let consumer = self.pos(0);
        self.pos(1) == consumer
    }

    /// The ring's data size in bytes.
    #[must_use]
    pub fn size_bytes(&self) -> u64 {
        self.size
    }
}

impl Drop for RingFill {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, used by nothing after this.
        unsafe { libc::munmap(self.pages.as_ptr(), 2 * self.page) };
    }
}
