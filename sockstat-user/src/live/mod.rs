//! The agent: its event loop (drain the stream, apply it to the table, detect loss and
//! resync), the live socket table of every tracked network namespace, and the server
//! that answers queries on its unix socket. May import every layer below `render`.
//!
//! `agent` is the entry point (configuration, start-up, the event loop); the state it
//! holds is split by concern into `namespaces`, `sink` (lifetimes and the timeline),
//! `loss` and `answer`; `table` is the table itself, with no I/O; `server` the socket
//! and its connections.

pub mod agent;
mod answer;
mod loss;
mod namespaces;
pub mod server;
mod sink;
pub mod table;
