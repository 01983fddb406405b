//! How full the event ring buffers are, read from their positions: a read-only mapping of
//! each map's consumer and producer pages (kernel/bpf/ringbuf.c: `consumer_pos` at the
//! start of the first page, `producer_pos` at the start of the second; a read-only
//! mapping of both is allowed to any process holding the map's fd). Independent of the
//! reader that drains the ring, so any thread can ask, at any time, without a lock.

use std::{
    os::fd::{AsRawFd, BorrowedFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

#[derive(Debug, thiserror::Error)]
#[error("mapping a ring buffer's positions (mmap of its first two pages)")]
pub struct RingFillError(#[source] std::io::Error);

/// The positions of one ring buffer, mapped read-only.
struct Positions {
    pages: NonNull<libc::c_void>,
    page: usize,
}

impl Positions {
    fn new(fd: BorrowedFd<'_>, page: usize) -> Result<Positions, RingFillError> {
        // SAFETY: a fresh shared read-only mapping of two pages of a ring buffer map fd,
        // which the kernel allows; the result is checked before use.
        let p =
            unsafe { libc::mmap(std::ptr::null_mut(), 2 * page, libc::PROT_READ, libc::MAP_SHARED, fd.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(RingFillError(std::io::Error::last_os_error()));
        }
        let pages = NonNull::new(p).ok_or_else(|| RingFillError(std::io::Error::other("mmap returned NULL")))?;
        Ok(Positions { pages, page })
    }

    fn pos(&self, page: usize) -> u64 {
        // SAFETY: the mapping covers two pages; each position is an 8-byte aligned u64
        // at the start of its page, which the kernel updates atomically.
        unsafe { (*self.pages.as_ptr().cast::<u8>().add(page * self.page).cast::<AtomicU64>()).load(Ordering::Acquire) }
    }

    /// (consumer, producer).
    fn both(&self) -> (u64, u64) {
        // Consumer first: it only grows toward the producer, so a stale consumer can make
        // the ring look fuller, never emptier.
        let consumer = self.pos(0);
        (consumer, self.pos(1))
    }
}

impl Drop for Positions {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, used by nothing after this.
        unsafe { libc::munmap(self.pages.as_ptr(), 2 * self.page) };
    }
}

/// The positions of every event ring, mapped read-only.
pub struct RingFill {
    rings: Vec<Positions>,
    /// Data bytes of each ring.
    size: u64,
}

// SAFETY: the mappings are read-only and live until drop; the positions are read with
// atomic loads, as the kernel writes them with smp_store_release.
unsafe impl Send for RingFill {}
// SAFETY: as above; no method mutates through the mappings.
unsafe impl Sync for RingFill {}

impl RingFill {
    /// Maps the positions of the ring buffer maps `fds`, of `size` data bytes each. The
    /// mappings stay valid after the fds are closed (they hold the maps).
    pub fn new<'a>(fds: impl IntoIterator<Item = BorrowedFd<'a>>, size: u32) -> Result<RingFill, RingFillError> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let rings = fds.into_iter().map(|fd| Positions::new(fd, page)).collect::<Result<Vec<_>, _>>()?;
        Ok(RingFill { rings, size: u64::from(size) })
    }

    /// Bytes reserved in the rings and not yet consumed (records and their headers).
    #[must_use]
    pub fn used_bytes(&self) -> u64 {
        self.rings
            .iter()
            .map(|r| {
                let (consumer, producer) = r.both();
                producer.saturating_sub(consumer).min(self.size)
            })
            .sum()
    }

    /// Whether every record reserved in ring `i` has been consumed (a record reserved
    /// and not yet committed counts as held). Compares the positions alone, whatever the
    /// size.
    #[must_use]
    pub fn ring_is_empty(&self, i: usize) -> bool {
        self.rings.get(i).is_none_or(|r| {
            let (consumer, producer) = r.both();
            producer == consumer
        })
    }

    /// Whether every ring is empty ([`RingFill::ring_is_empty`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        (0..self.rings.len()).all(|i| self.ring_is_empty(i))
    }

    /// The rings' data size in bytes, all together.
    #[must_use]
    pub fn size_bytes(&self) -> u64 {
        self.size * self.rings.len() as u64
    }
}
