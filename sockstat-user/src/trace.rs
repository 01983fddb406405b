//! (trace: being written)
