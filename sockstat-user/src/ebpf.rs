//! (ebpf: being written)
