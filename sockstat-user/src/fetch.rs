//! Where a query's sockets come from: the agent's live table when one runs (or when
//! forced with `--source agent`), else a sock_diag dump made here, as ss does.

use std::path::Path;

use sockstat_ebpf::IPPROTO_TCP;

use crate::{
    cli::SourceChoice,
    client::{Client, ClientError},
    diag::{DiagError, SockDiag},
    socket::InetSocket,
};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Agent(#[from] ClientError),
    #[error("sock_diag dump")]
    Diag(#[from] DiagError),
}

/// TCP sockets of `families` (in that order) whose state is in `states`.
pub fn tcp(source: SourceChoice, agent_socket: &Path, families: &[u16], states: u32) -> Result<Vec<InetSocket>, FetchError> {
    if source != SourceChoice::Kernel {
        match Client::connect(agent_socket).and_then(|c| c.tcp(families, states)) {
            Ok(s) => return Ok(s),
            Err(e) if source == SourceChoice::Auto && e.is_unavailable() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut diag = SockDiag::open()?;
    let mut out = Vec::new();
    for &family in families {
        out.extend(diag.dump_inet(IPPROTO_TCP, family, states)?);
    }
    Ok(out)
}
