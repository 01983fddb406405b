//! `memcpy` and `memmove` for the static musl build.
//!
//! musl's x86-64 `memcpy` is a `rep movsq` for every size, and a query copies short
//! fields (an address's text, a port) millions of times: it was a quarter of a 100k-row
//! `-tan`'s time and a fifth of the agent's under churn. Copies up to 64 bytes are done
//! here with overlapping unaligned loads and stores, all loads first (so the same code
//! is a correct `memmove` for them); longer ones with `rep movsb`, which CPUs with
//! ERMS/FSRM run at full speed. glibc builds keep glibc's own functions.

/// Copies `n` bytes from `src` to `dst`; the ranges may overlap if `n <= 64`.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn copy_short_or_forward(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY (all blocks): every access is within the first or last `n` bytes of the
    // ranges the caller vouches for; loads are unaligned reads.
    unsafe {
        if n <= 16 {
            if n >= 8 {
                let (a, b) = ((src as *const u64).read_unaligned(), (src.add(n - 8) as *const u64).read_unaligned());
                (dst as *mut u64).write_unaligned(a);
                (dst.add(n - 8) as *mut u64).write_unaligned(b);
            } else if n >= 4 {
                let (a, b) = ((src as *const u32).read_unaligned(), (src.add(n - 4) as *const u32).read_unaligned());
                (dst as *mut u32).write_unaligned(a);
                (dst.add(n - 4) as *mut u32).write_unaligned(b);
            } else if n > 0 {
                let (a, b, c) = (*src, *src.add(n / 2), *src.add(n - 1));
                *dst = a;
                *dst.add(n / 2) = b;
                *dst.add(n - 1) = c;
            }
        } else if n <= 32 {
            let (a, b) = ((src as *const u128).read_unaligned(), (src.add(n - 16) as *const u128).read_unaligned());
            (dst as *mut u128).write_unaligned(a);
            (dst.add(n - 16) as *mut u128).write_unaligned(b);
        } else if n <= 64 {
            let a = (src as *const u128).read_unaligned();
            let b = (src.add(16) as *const u128).read_unaligned();
            let c = (src.add(n - 32) as *const u128).read_unaligned();
            let d = (src.add(n - 16) as *const u128).read_unaligned();
            (dst as *mut u128).write_unaligned(a);
            (dst.add(16) as *mut u128).write_unaligned(b);
            (dst.add(n - 32) as *mut u128).write_unaligned(c);
            (dst.add(n - 16) as *mut u128).write_unaligned(d);
        } else {
            core::arch::asm!(
                "rep movsb",
                inout("rcx") n => _,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags)
            );
        }
    }
}

/// Copies `n` bytes from the end down (`dst` above an overlapping `src`).
///
/// # Safety
/// As [`copy_short_or_forward`].
unsafe fn copy_backward(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the direction flag is set for the one instruction and cleared after, as
    // the ABI requires at calls; the pointers are the ranges' last bytes.
    unsafe {
        core::arch::asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dst.add(n - 1) => _,
            inout("rsi") src.add(n - 1) => _,
            options(nostack)
        );
    }
}

/// # Safety
/// The C function's contract: non-overlapping ranges of `n` bytes.
#[cfg(all(target_env = "musl", not(test)))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract.
    unsafe { copy_short_or_forward(dst, src, n) };
    dst
}

/// # Safety
/// The C function's contract: ranges of `n` bytes, which may overlap.
#[cfg(all(target_env = "musl", not(test)))]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; a forward copy is safe when `dst` is below `src` or
    // past its end, and short copies load everything before storing.
    unsafe { move_bytes(dst, src, n) };
    dst
}

/// `memmove`'s body.
///
/// # Safety
/// As `memmove`.
unsafe fn move_bytes(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the caller's contract (see `memmove`).
    unsafe {
        if n <= 64 || (dst as usize).wrapping_sub(src as usize) >= n {
            copy_short_or_forward(dst, src, n);
        } else {
            copy_backward(dst, src, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{copy_short_or_forward, move_bytes};

    #[test]
    fn copies_every_length_and_alignment_like_copy_from_slice() {
        let src: Vec<u8> = (0..400u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..300 {
            for (s, d) in [(0, 0), (1, 3), (7, 0), (5, 13)] {
                let mut dst = vec![0xAAu8; 320];
                let mut want = dst.clone();
                want[d..d + n].copy_from_slice(&src[s..s + n]);
                // SAFETY: both ranges are inside their vectors.
                unsafe { copy_short_or_forward(dst.as_mut_ptr().add(d), src.as_ptr().add(s), n) };
                assert_eq!(dst, want, "n={n} src+{s} dst+{d}");
            }
        }
    }

    #[test]
    fn moves_overlapping_ranges_both_ways_like_copy_within() {
        for n in 0..200 {
            for shift in [1usize, 3, 8, 17, 64, 100] {
                let base: Vec<u8> = (0..400u32).map(|i| (i * 13 + 1) as u8).collect();
                // Up: dst = src + shift; down: dst = src - shift.
                for up in [true, false] {
                    let (s, d) = if up { (50, 50 + shift) } else { (50 + shift, 50) };
                    let mut buf = base.clone();
                    let mut want = base.clone();
                    want.copy_within(s..s + n, d);
                    let p = buf.as_mut_ptr();
                    // SAFETY: both ranges are inside the vector.
                    unsafe { move_bytes(p.add(d), p.add(s), n) };
                    assert_eq!(buf, want, "n={n} shift={shift} up={up}");
                }
            }
        }
    }
}
