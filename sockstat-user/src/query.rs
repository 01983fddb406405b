//! (query: being written)
