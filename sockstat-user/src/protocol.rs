//! (protocol: being written)
