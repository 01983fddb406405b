//! Embeds the eBPF object built by `cargo xtask build-ebpf`. xtask passes its path in
//! SOCKSTAT_EBPF_OBJECT; a plain `cargo build` (unit tests, clippy) embeds nothing and the
//! binary says how to get a working build when asked to load the program.

use std::{env, fs, path::PathBuf};

fn main() {
    // Relative relocations packed (DT_RELR, glibc 2.36+): a query is a whole process, and
    // applying some 25,000 RELA entries at each start was most of the loader's time.
    println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    println!("cargo::rerun-if-env-changed=SOCKSTAT_EBPF_OBJECT");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out.join("sockstat-ebpf.o");
    match env::var_os("SOCKSTAT_EBPF_OBJECT") {
        Some(src) => {
            let src = PathBuf::from(src);
            println!("cargo::rerun-if-changed={}", src.display());
            fs::copy(&src, &dest).unwrap_or_else(|e| panic!("copying eBPF object {}: {e}", src.display()));
        }
        None => fs::write(&dest, b"").expect("writing empty eBPF placeholder"),
    }
}
