//! Where a query's time goes, as the client measures it, for `SOCKSTAT_PROFILE=1`: the
//! client prints one line on stderr (`cmd::ss`), which `cargo xtask bench` reads. The
//! agent's part is what the client waited between sending its request and the first
//! byte of the answer.

use std::{cell::Cell, time::Instant};

/// The phases of the last agent query of this thread, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phases {
    /// connect() to the agent's socket.
    pub connect_us: u64,
    /// Writing the request.
    pub request_us: u64,
    /// From the request written to the answer's first byte: the agent's work.
    pub answer_us: u64,
    /// Reading the rest of the answer.
    pub transfer_us: u64,
    /// Decoding it.
    pub decode_us: u64,
    /// Bytes of the answer.
    pub bytes: u64,
}

thread_local! {
    static LAST: Cell<Option<Phases>> = const { Cell::new(None) };
}

/// Whether the environment asks for the profile line.
#[must_use]
pub fn enabled() -> bool {
    std::env::var_os("SOCKSTAT_PROFILE").is_some_and(|v| v == "1")
}

pub(super) fn record(p: Phases) {
    LAST.with(|l| l.set(Some(p)));
}

/// The phases of this thread's last agent query, if any.
#[must_use]
pub fn last() -> Option<Phases> {
    LAST.with(Cell::get)
}

/// Microseconds since `t`.
#[must_use]
pub fn us_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}
