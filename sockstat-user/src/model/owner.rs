//! The owners of sockets: which process holds which socket descriptor, as the agent's
//! owners iterator reports them (and `-p` prints them).

use serde::{Deserialize, Serialize};

/// One socket descriptor of one process (an [`sockstat_ebpf::OwnerRecord`] decoded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerEntry {
    /// Process id (initial pid namespace), descriptor number, the process's `comm`.
    pub pid: u32,
    pub fd: u32,
    pub comm: String,
    /// The socket's inode, and its cookie (0 if none was ever generated).
    pub inode: u64,
    pub cookie: u64,
}

/// One descriptor of one process that refers to a socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// The process name (`comm`), as /proc/PID/stat gives it.
    pub comm: String,
    pub pid: i32,
    /// `-T`: the thread (task) id; `None` without `-T`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<i32>,
    pub fd: i32,
}
