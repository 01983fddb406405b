//! sockstat: ss-compatible socket snapshots from an eBPF-fed live table, and tracing of
//! every TCP state transition.
//!
//! Data flows one way: kernel -> `bpf` (the event stream) / `diag` (sock_diag dumps) ->
//! `live` (the agent's table) -> `query` -> `render`. The folders are layers: each
//! imports only the ones listed before it here, never one after it.

pub mod model;
pub mod names;
pub mod filter;
pub mod diag;
pub mod sys;
pub mod bpf;
pub mod wire;
pub mod query;
pub mod timeline;
pub mod live;
pub mod render;
pub mod cli;
pub mod cmd;
