//! The last large answer's buffer, kept for the next answer until the loop's next heap
//! trim. A fresh buffer of megabytes is a mapping of its own (see `agent::run`): each
//! answer of 100k rows faulted in and zeroed 5 MiB and unmapped it after, half of what
//! the agent spent on it. Queries that come in a burst reuse one buffer; an agent left
//! alone for a trim interval holds none.

use std::sync::Mutex;

/// Buffers smaller than this are cheap to make (the heap serves them): not kept.
const KEEP_FROM: usize = 1 << 20;

static SPARE: Mutex<Option<Vec<u8>>> = Mutex::new(None);

/// An empty buffer with room for `len` bytes: the spare one if it has it, else a new one.
#[must_use]
pub fn take(len: usize) -> Vec<u8> {
    let spare = SPARE.lock().ok().and_then(|mut s| s.take_if(|b| b.capacity() >= len));
    match spare {
        Some(mut b) => {
            b.clear();
            b
        }
        None => Vec::with_capacity(len),
    }
}

/// Keeps `buf` for the next answer if it is large and no larger one is kept.
pub fn give_back(buf: Vec<u8>) {
    if buf.capacity() < KEEP_FROM {
        return;
    }
    if let Ok(mut s) = SPARE.lock()
        && s.as_ref().is_none_or(|kept| kept.capacity() < buf.capacity())
    {
        *s = Some(buf);
    }
}

/// Drops the kept buffer (the loop's trim tick: its pages go back to the system).
pub fn release() {
    if let Ok(mut s) = SPARE.lock() {
        *s = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_buffer_is_reused_until_released() {
        release();
        let mut b = take(2 << 20);
        b.extend_from_slice(&[7; 100]);
        let at = b.as_ptr();
        give_back(b);
        let again = take(1 << 20);
        assert!(again.is_empty() && again.as_ptr() == at, "the kept buffer, emptied");
        give_back(again);
        // Too small a spare for the length asked: a new buffer, the spare kept.
        assert!(take(3 << 20).capacity() >= 3 << 20);
        let kept = take(1);
        assert_eq!(kept.as_ptr(), at);
        // Small buffers are not kept; release empties.
        give_back(Vec::with_capacity(16));
        assert!(SPARE.lock().unwrap().is_none());
        give_back(Vec::with_capacity(2 << 20));
        release();
        assert!(SPARE.lock().unwrap().is_none());
    }
}
