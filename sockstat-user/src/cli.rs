//! (cli: being written)
