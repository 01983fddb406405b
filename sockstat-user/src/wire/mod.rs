//! The agent's query protocol ([`protocol`]: frames, requests, responses) and the client
//! that speaks it ([`client`]). May import `model` and `filter` (a query carries its
//! parsed FILTER).

pub mod client;
pub mod profile;
pub mod protocol;
pub mod rows;
