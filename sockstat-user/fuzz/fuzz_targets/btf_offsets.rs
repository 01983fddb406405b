//! Arbitrary bytes -> the BTF offset resolver, as a kernel's (or a crafted)
//! /sys/kernel/btf/vmlinux would reach it: the offsets of every field the programs read,
//! or an error naming what is missing, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sockstat::bpf::btf::offsets_from_bytes(data.to_vec());
});
