//! (diag: being written)
