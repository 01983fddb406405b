//! (table: being written)
