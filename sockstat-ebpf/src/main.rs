//! The eBPF side of sockstat: a tp_btf program on `sock:inet_sock_set_state` that turns
//! every TCP state transition into one fixed-size [`StateEvent`] in a ring buffer.
//! Built only for bpfel-unknown-none (`cargo xtask build-ebpf`); on the host this file
//! compiles to an empty binary so `cargo build --workspace` still works.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod owners;
#[cfg(target_arch = "bpf")]
mod program;

#[cfg(not(target_arch = "bpf"))]
fn main() {}
