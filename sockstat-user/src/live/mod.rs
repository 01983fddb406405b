//! The agent: its event loop (drain the stream, apply it to the table, detect loss and
//! resync), the live socket table of every tracked network namespace, and the server
//! that answers queries on its unix socket. May import every layer below `render`.
//!
//! `agent` is the entry point (configuration, start-up, the event loop) and `answer`
//! answers queries; both work on `state`, which holds the pieces below it, each in its
//! own file: `namespaces`, `sink` (lifetimes and the timeline), `loss`; `table` is the
//! table itself, with no I/O; `server` the socket and its connections; `exporter` the
//! `--metrics` HTTP server and `metrics` what it serves; `shared` large answers handed over
//! in shared memory; `owners` the owners of `-p` kept between queries; `error` the agent's
//! error type;
//! `labels` the names and paths the timeline's dictionaries keep. Files import only those
//! listed after them here.

pub mod agent;
mod answer;
pub mod error;
pub mod exporter;
mod labels;
mod loss;
pub mod metrics;
pub mod minis;
mod namespaces;
mod owners;
pub mod ready;
pub mod server;
mod shared;
mod sink;
mod spare;
mod state;
pub mod table;
