//! One module per command of the `sockstat` binary: the ss command line, `-E`, `trace`,
//! `history` (and `--at`), `status`, `agent`. Each glues the layers below together;
//! `main.rs` only dispatches.

pub mod events;
pub mod history;
pub mod trace;
