//! What the system tells outside sock_diag: network namespaces (entering, listing,
//! handles), the /proc walks that find each socket's owners, and /proc/net tables (raw
//! sockets, which this kernel's sock_diag does not dump), BPF socket-local storage maps
//! looked up through bpf(2). May import `model`.

pub mod bpf_maps;
pub mod netns;
pub mod owners;
pub mod procnet;
pub mod ss_version;
