//! `sockstat agent --metrics ADDR:PORT`: an HTTP server on a thread of its own, serving
//! `/metrics`. A scrape asks the event loop for a [`Snapshot`] over a channel (answered
//! between two drains of the ring, as a `status` query is), then reads and encodes the
//! rest here ([`metrics::encode`]), so the event loop never waits for a scraper.

use std::{
    net::SocketAddr,
    sync::{Arc, mpsc as std_mpsc},
    thread::JoinHandle,
    time::Duration,
};

use tokio::sync::mpsc;
use tracing::warn;

use crate::live::metrics::{self, Snapshot, Sources};

/// A scrape's request to the event loop: where the snapshot goes.
pub(super) type ScrapeRequest = std_mpsc::SyncSender<Snapshot>;

/// How long a scrape waits for the event loop (busy with a resync, say) before it
/// answers 503.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(5);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
#[error("serving metrics on {addr}")]
pub struct ExporterError {
    addr: SocketAddr,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// The running server; dropping it stops the thread.
pub struct Exporter {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Exporter {
    /// Binds `addr` (an error if it is taken) and serves from a new thread.
    pub(super) fn start(
        addr: SocketAddr,
        snapshots: mpsc::Sender<ScrapeRequest>,
        sources: Sources,
    ) -> Result<Exporter, ExporterError> {
        let server = Arc::new(tiny_http::Server::http(addr).map_err(|source| ExporterError { addr, source })?);
        // Port 0 asks the kernel for one: report the one it gave.
        let addr = server.server_addr().to_ip().unwrap_or(addr);
        let thread = std::thread::Builder::new()
            .name("sockstat-metrics".into())
            .spawn({
                let server = server.clone();
                move || serve(&server, &snapshots, &sources)
            })
            .map_err(|e| ExporterError { addr, source: Box::new(e) })?;
        Ok(Exporter { server, thread: Some(thread), addr })
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(server: &tiny_http::Server, snapshots: &mpsc::Sender<ScrapeRequest>, sources: &Sources) {
    for req in server.incoming_requests() {
        let (status, content_type, body) = answer(&req, snapshots, sources);
        let header = tiny_http::Header::from_bytes("Content-Type", content_type).expect("a valid header");
        let resp = tiny_http::Response::from_string(body).with_status_code(status).with_header(header);
        if let Err(e) = req.respond(resp) {
            warn!(error = %e, "writing a metrics response failed");
        }
    }
}

fn answer(
    req: &tiny_http::Request,
    snapshots: &mpsc::Sender<ScrapeRequest>,
    sources: &Sources,
) -> (u16, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let path = req.url().split('?').next().unwrap_or_default();
    if path == "/" {
        return (200, TEXT, "sockstat agent: metrics at /metrics\n".into());
    }
    if path != "/metrics" {
        return (404, TEXT, format!("{path} not found: metrics are at /metrics\n"));
    }
    if !matches!(req.method(), tiny_http::Method::Get | tiny_http::Method::Head) {
        return (405, TEXT, "GET /metrics\n".into());
    }
    // Prometheus asks for OpenMetrics in its Accept header; other clients (curl,
    // promtool) get the classic text format.
    let openmetrics = req
        .headers()
        .iter()
        .any(|h| h.field.equiv("Accept") && h.value.as_str().contains("application/openmetrics-text"));
    let (tx, rx) = std_mpsc::sync_channel(1);
    if snapshots.blocking_send(tx).is_err() {
        return (503, TEXT, "the agent is stopping\n".into());
    }
    let Ok(snap) = rx.recv_timeout(SNAPSHOT_TIMEOUT) else {
        return (503, TEXT, format!("the agent's event loop did not answer within {SNAPSHOT_TIMEOUT:?}\n"));
    };
    match metrics::encode(snap, sources, openmetrics) {
        Ok(body) => (
            200,
            if openmetrics { OPENMETRICS } else { prometheus_client::encoding::prometheus_text::CONTENT_TYPE },
            body,
        ),
        Err(_) => (500, TEXT, "encoding the metrics failed\n".into()),
    }
}
