//! The binary's allocator: glibc's (mimalloc in the musl build, see `Base`), except that
//! in a query ([`enable`]) a block of 1 MiB or more is a mapping of its own that may use
//! transparent huge pages (`MADV_HUGEPAGE`; the kernel's `enabled` setting decides).
//!
//! A query of 100k rows handles a few buffers of several MiB (the answer, its rows, the
//! text) for a few milliseconds: in 4 KiB pages, their first touches (thousands of page
//! faults) and their unmapping at exit were a fifth of the whole command's time. The
//! agent and `trace` run for days and reuse their memory: for them a fresh mapping per
//! big block (its pages zeroed by the kernel at every first touch) was a quarter of the
//! agent's time under churn, so they keep the system allocator's way.

/// The allocator under the big blocks' mappings: glibc's, or mimalloc in the musl build.
/// musl's takes one lock for every thread and unmaps freed memory at once: a 100k-row
/// `-tani`, decoded and printed on two threads, took 3.5x as long as with glibc's, most of
/// it in that lock and in the TLB shootdowns of the unmappings; with mimalloc (without
/// transparent huge pages, whose first touch zeroes 2 MiB) as long as with glibc's, for
/// 0.1 ms more at start.
#[cfg(target_env = "musl")]
use mimalloc::MiMalloc as Base;
#[cfg(not(target_env = "musl"))]
use std::alloc::System as Base;
use std::{
    alloc::{GlobalAlloc, Layout},
    sync::atomic::{AtomicU8, Ordering},
};

/// Blocks from this size on are mappings of their own.
const BIG: usize = 1 << 20;
/// Mappings are whole multiples of this (a huge page).
const HUGE: usize = 2 << 20;

pub struct HugePages;

/// Whether big blocks are mappings: not decided yet, then [`ON`] or [`OFF`] for the rest
/// of the process (a block must be freed the way it was made).
static MODE: AtomicU8 = AtomicU8::new(UNDECIDED);
const UNDECIDED: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;

/// Makes big blocks mappings of their own, if no big block was made yet (the process's
/// way is decided by its first big block otherwise: the system allocator's). Returns
/// whether they are.
pub fn enable() -> bool {
    MODE.compare_exchange(UNDECIDED, ON, Ordering::SeqCst, Ordering::SeqCst).is_ok()
        || MODE.load(Ordering::SeqCst) == ON
}

fn big(layout: Layout) -> bool {
    // mmap's alignment is a page's: larger ones stay with the system allocator.
    if layout.size() < BIG || layout.align() > 4096 {
        return false;
    }
    // The first big block decides, if `enable` did not.
    let _ = MODE.compare_exchange(UNDECIDED, OFF, Ordering::SeqCst, Ordering::SeqCst);
    MODE.load(Ordering::Relaxed) == ON
}

fn mapped_len(size: usize) -> usize {
    size.next_multiple_of(HUGE)
}

/// A fresh mapping of `len` bytes advised for huge pages; null if the kernel refuses.
unsafe fn map(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
    // no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    // SAFETY: advice on the mapping just made; whatever the kernel answers, the memory
    // is usable (in small pages if it declines).
    unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) };
    p.cast()
}

// SAFETY: every block is either the system allocator's (small or strictly aligned
// layouts, passed through) or a mapping of its own, told apart by the layout the caller
// gives back (the same at dealloc and realloc as at alloc, as GlobalAlloc requires).
unsafe impl GlobalAlloc for HugePages {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if big(layout) {
            // SAFETY: see `map`.
            unsafe { map(mapped_len(layout.size())) }
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { Base.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if big(layout) {
            // SAFETY: see `map`; anonymous mappings are zero-filled.
            unsafe { map(mapped_len(layout.size())) }
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { Base.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if big(layout) {
            // SAFETY: `ptr` is a mapping `alloc` made for this layout's size.
            unsafe { libc::munmap(ptr.cast(), mapped_len(layout.size())) };
        } else {
            // SAFETY: the caller's contract, passed on.
            unsafe { Base.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract: `layout.align()` with `new_size` is a valid layout.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (big(layout), big(new)) {
            (false, false) => {
                // SAFETY: the caller's contract, passed on.
                unsafe { Base.realloc(ptr, layout, new_size) }
            }
            (true, true) => {
                let (old_len, new_len) = (mapped_len(layout.size()), mapped_len(new_size));
                if old_len == new_len {
                    return ptr;
                }
                // SAFETY: `ptr` is a mapping of `old_len` bytes; the kernel moves its pages
                // (no copy) where it has room.
                let p = unsafe { libc::mremap(ptr.cast(), old_len, new_len, libc::MREMAP_MAYMOVE) };
                if p == libc::MAP_FAILED { std::ptr::null_mut() } else { p.cast() }
            }
            _ => {
                // From one kind to the other: a new block, the contents copied.
                // SAFETY: `new` is a valid layout (above); the copy stays within both blocks.
                unsafe {
                    let p = self.alloc(new);
                    if !p.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    p
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_both_kinds_grow_shrink_and_keep_their_bytes() {
        assert!(enable(), "a big block was made before the test: mappings not tested");
        let a = HugePages;
        let small = Layout::from_size_align(1000, 8).unwrap();
        // SAFETY: layouts are valid and every block is freed with the layout it has.
        unsafe {
            let mut p = a.alloc(small);
            p.write_bytes(7, 1000);
            let mut layout = small;
            // Small -> big -> bigger (mremap) -> small again, contents kept each time.
            for size in [3 << 20, 9 << 20, 4096] {
                p = a.realloc(p, layout, size);
                assert!(!p.is_null());
                assert_eq!(*p, 7);
                assert_eq!(*p.add(999), 7);
                layout = Layout::from_size_align(size, 8).unwrap();
                if size > 1000 {
                    p.add(size - 1).write(9);
                }
            }
            a.dealloc(p, layout);
            let z = Layout::from_size_align(5 << 20, 64).unwrap();
            let q = a.alloc_zeroed(z);
            assert!(std::slice::from_raw_parts(q, 5 << 20).iter().all(|&b| b == 0));
            a.dealloc(q, z);
        }
    }
}
