//! The kernel side seen from userspace: loading and attaching the eBPF programs
//! ([`loader`]), the kernel structure offsets they need from BTF ([`btf`]), and the
//! ring-buffer stream of state transitions ([`stream`]), the agent's thread that reads it
//! ([`reader`]) and puts the per-CPU rings' events back in time order ([`merge`]), how
//! full its rings are ([`ringfill`]), and the owners programs' walks,
//! task listing and change notes ([`owners`]). May import `model`.

pub mod btf;
pub mod loader;
pub mod merge;
pub mod owners;
pub mod reader;
pub mod ringfill;
pub mod stream;
