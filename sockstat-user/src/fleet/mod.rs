//! The fleet export: every host's timeline records on NATS JetStream, one subject per
//! host and kind (`sockstat.HOST.lifetime`, `.gap`, `.transition`) in one stream
//! ([`STREAM`], subjects `sockstat.>`), each record a JSON object with the fields of
//! `history --json` and its host (`payload`). The agent publishes from its timeline,
//! which is the outbox (`publish`); `history --nats` reads the stream back (`fetch`).
//! docs/fleet.md describes subjects, headers and payload for other consumers.
//!
//! Imports `timeline` (the outbox and the record types) and `bpf` (state names).

pub mod fetch;
pub mod payload;
pub mod publish;

use std::time::Duration;

use async_nats::jetstream::stream;

/// The stream the agent creates when it is missing (and never changes when it exists).
pub const STREAM: &str = "SOCKSTAT";

/// Every subject of the export.
pub const SUBJECTS: &str = "sockstat.>";

/// How long the stream remembers message ids: a record published again within this
/// window (an ack lost to a reconnect) is stored once. Longer outages are covered by
/// the agent reading its last stored position back at every (re)connect.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// How long the stream keeps a record.
pub const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// Headers besides `Nats-Msg-Id`.
pub const HEADER_HOST: &str = "Sockstat-Host";
pub const HEADER_POSITION: &str = "Sockstat-Position";
pub const HEADER_ORIGIN: &str = "Sockstat-Origin";

/// The kinds of record, as the last subject token names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Lifetime,
    Gap,
    Transition,
}

impl Kind {
    pub fn token(self) -> &'static str {
        match self {
            Kind::Lifetime => "lifetime",
            Kind::Gap => "gap",
            Kind::Transition => "transition",
        }
    }
}

/// A host name as one subject token: `.`, `*`, `>` and white space (which would split
/// or widen a subject) become `_`.
pub fn host_token(host: &str) -> String {
    let t: String =
        host.chars().map(|c| if matches!(c, '.' | '*' | '>') || c.is_whitespace() { '_' } else { c }).collect();
    if t.is_empty() { "_".into() } else { t }
}

/// The subject of `host`'s records of `kind`.
pub fn subject(host: &str, kind: Kind) -> String {
    format!("sockstat.{}.{}", host_token(host), kind.token())
}

/// The stream's configuration when the agent creates it: limits retention (records
/// stay for [`MAX_AGE`], whoever reads them), file storage, one replica (a cluster's
/// operator raises it with `nats stream edit`), old records discarded first.
pub fn stream_config() -> stream::Config {
    stream::Config {
        name: STREAM.into(),
        description: Some("sockstat fleet export: finished connections, gaps and transitions per host".into()),
        subjects: vec![SUBJECTS.into()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::Old,
        max_age: MAX_AGE,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: 1,
        ..Default::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("bad NATS server address {url:?} (expected nats://HOST:PORT, or several separated by commas)")]
    Url {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no NATS server address given (expected nats://HOST:PORT)")]
    NoUrl,
    #[error("cannot connect to the NATS server at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("cannot connect to the NATS server at {url}: no answer within 10 s")]
    ConnectTimeout { url: String },
    #[error(
        "creating or reading the JetStream stream {STREAM} (is JetStream enabled on the server: `nats-server -js`?)"
    )]
    Stream(#[source] async_nats::jetstream::context::CreateStreamError),
    #[error(
        "the NATS server at {url} has no JetStream stream {STREAM}: no agent has published there yet (`sockstat agent --nats {url}`), or JetStream is off"
    )]
    NoStream {
        url: String,
        #[source]
        source: async_nats::jetstream::context::GetStreamError,
    },
    #[error("reading the stream {STREAM}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("reading back the last record of this host")]
    LastMessage(#[source] async_nats::jetstream::stream::LastRawMessageError),
    #[error("publishing to the stream {STREAM}")]
    Publish(#[source] async_nats::jetstream::context::PublishError),
    #[error("encoding a record as JSON")]
    Encode(#[source] serde_json::Error),
    #[error("record {seq} of the stream {STREAM} ({subject}) is not a sockstat record")]
    Decode {
        seq: u64,
        subject: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Timeline(#[from] crate::timeline::TimelineError),
    #[error("starting the fleet export thread")]
    Thread(#[source] std::io::Error),
    #[error("starting the NATS client's event loop")]
    Runtime(#[source] std::io::Error),
}

/// An error with its causes, `: `-separated, for log lines.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The fleet export's settings (`agent --nats`).
#[derive(Clone, Debug)]
pub struct FleetConfig {
    /// The NATS server (`nats://host:4222`; several, comma-separated, for a cluster).
    pub url: String,
    /// This host's name in subjects and payloads.
    pub host: String,
    /// Publish each finished connection's transitions too.
    pub transitions: bool,
}

/// This machine's host name (`gethostname`), `localhost` if it has none.
pub fn default_host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_one_subject_token() {
        assert_eq!(subject("web-1", Kind::Lifetime), "sockstat.web-1.lifetime");
        assert_eq!(subject("web1.example.com", Kind::Gap), "sockstat.web1_example_com.gap");
        assert_eq!(host_token("a*b> c"), "a_b__c");
        assert_eq!(host_token(""), "_");
    }
}
