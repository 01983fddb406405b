//! (btf: being written)
