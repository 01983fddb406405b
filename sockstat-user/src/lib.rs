//! sockstat: ss-compatible socket snapshots from an eBPF-fed live table, and tracing of
//! every TCP state transition. Data flows one way:
//! kernel -> `stream`/`diag` -> `table` -> `query` -> `format`.

pub mod agent;
pub mod btf;
pub mod cbpf;
pub mod cli;
pub mod client;
pub mod diag;
pub mod events;
pub mod ebpf;
pub mod fetch;
pub mod lifetime;
pub mod filter;
pub mod format;
pub mod history;
pub mod json;
pub mod netns;
pub mod protocol;
pub mod procs;
pub mod query;
pub mod resolve;
pub mod server;
pub mod socket;
pub mod stream;
pub mod summary;
pub mod table;
pub mod timeline;
pub mod trace;
