//! The agent's error type, and the one-line form of an error chain that answers carry.

use crate::{
    bpf::loader::EbpfError, bpf::reader::ReaderError, bpf::ringfill::RingFillError, diag::DiagError,
    live::exporter::ExporterError, live::server::ServerError, sys::netns::HandleError, timeline::TimelineError,
};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
    #[error(transparent)]
    Reader(#[from] ReaderError),
    #[error("sock_diag dump")]
    Diag(#[from] DiagError),
    #[error(transparent)]
    Timeline(#[from] TimelineError),
    #[error("{0}")]
    Io(&'static str, #[source] std::io::Error),
    #[error(transparent)]
    Namespace(#[from] HandleError),
    #[error(transparent)]
    Exporter(#[from] ExporterError),
    #[error(transparent)]
    RingFill(#[from] RingFillError),
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
}

/// An error and its sources, on one line.
pub(super) fn error_text(e: &dyn std::error::Error) -> String {
    let chain = error_chain(e);
    if chain.is_empty() { e.to_string() } else { format!("{e}: {chain}") }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}
