//! (stream: being written)
