//! Output: ss's column grid and every family's row text, the `-i` text, JSON, the `-s`
//! summary, and the classic-BPF disassembly of `-b`. It prints what it is given and does
//! no I/O of its own beyond writing. May import `model` and `names`.
//!
//! `format` is the entry point of the text output (and the paths callers name); the
//! private modules beside it hold its pieces: `grid` the columns, `addr` the address and
//! port text, `inet` and `family` the rows, `tcpinfo` the `-i`/`-m` text, `events` `-E`.

mod addr;
pub mod btf_dump;
pub mod cbpf;
mod events;
mod family;
pub mod format;
mod grid;
mod inet;
pub mod json;
pub mod labels;
pub mod style;
pub mod summary;
mod tcpinfo;

/// Digits and IPv4 addresses written in place, for other commands' text (`trace`).
pub(crate) use addr::{push_decimal, push_decimal_padded, push_ipv4};
