//! The agent: its event loop (drain the stream, apply it to the table, detect loss and
//! resync), the live socket table of every tracked network namespace, and the server
//! that answers queries on its unix socket. May import every layer below `render`.

pub mod agent;
pub mod server;
pub mod table;
