//! (format: being written)
