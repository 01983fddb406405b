//! Output: ss's column grid and every family's row text, the `-i` text, JSON, the `-s`
//! summary, and the classic-BPF disassembly of `-b`. It prints what it is given and does
//! no I/O of its own beyond writing. May import `model` and `names`.

pub mod cbpf;
pub mod format;
pub mod json;
pub mod style;
pub mod summary;
