//! sockstat: ss-compatible socket snapshots from an eBPF-fed live table, and tracing of
//! every TCP state transition.
//!
//! Data flows one way: kernel -> `bpf` (the event stream) / `diag` (sock_diag dumps) ->
//! `live` (the agent's table) -> `query` -> `render`. The folders are layers: each
//! imports only the ones listed before it here, never one after it.

pub mod bpf;
pub mod cli;
pub mod cmd;
pub mod diag;
pub mod filter;
pub mod fleet;
pub mod live;
pub mod model;
pub mod names;
pub mod query;
pub mod render;
pub mod sys;
pub mod threads;
pub mod timeline;
pub mod wire;
