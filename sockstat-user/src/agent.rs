//! (agent: being written)
