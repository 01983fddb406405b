//! The data every layer speaks: socket records of each family, owners, and the socket
//! numbers of the kernel's ABI. Imports nothing of sockstat but the kernel-shared types
//! of `sockstat-ebpf`.

pub mod abi;
pub mod btf;
pub mod clock;
pub mod comm;
pub mod owner;
pub mod socket;
pub mod tcp;
