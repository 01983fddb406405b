//! One record as JSON: the line `history --json` prints, and the payload the fleet
//! export publishes (the same object with `"host"`). One definition for both, so that a
//! consumer of the stream reads what `history --json` documents.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::{
    bpf::stream::kernel_state_name,
    timeline::{Gap, StoredLifetime, StoredTransition, format_ns},
};

/// A record; `type` names its kind.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line<'a> {
    Lifetime {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<Cow<'a, str>>,
        start: Option<String>,
        end: String,
        #[serde(flatten)]
        life: Cow<'a, StoredLifetime>,
    },
    Transition {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<Cow<'a, str>>,
        time: String,
        #[serde(flatten)]
        t: Cow<'a, StoredTransition>,
        old_name: Cow<'a, str>,
        new_name: Cow<'a, str>,
    },
    Gap {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<Cow<'a, str>>,
        start: String,
        end: String,
        lost_kernel: u64,
        lost_userspace: u64,
        /// Records the export could not publish: retention deleted them first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unpublished: Option<u64>,
        reason: Cow<'a, str>,
    },
}

impl<'a> Line<'a> {
    pub fn lifetime(host: Option<&'a str>, life: &'a StoredLifetime) -> Line<'a> {
        Line::Lifetime {
            host: host.map(Cow::Borrowed),
            start: life.start_ns.map(format_ns),
            end: format_ns(life.end_ns),
            life: Cow::Borrowed(life),
        }
    }

    pub fn transition(host: Option<&'a str>, t: &'a StoredTransition) -> Line<'a> {
        Line::Transition {
            host: host.map(Cow::Borrowed),
            time: format_ns(t.ts_ns),
            t: Cow::Borrowed(t),
            old_name: Cow::Borrowed(kernel_state_name(t.old)),
            new_name: Cow::Borrowed(kernel_state_name(t.new)),
        }
    }

    pub fn gap(host: Option<&'a str>, g: &'a Gap, unpublished: Option<u64>) -> Line<'a> {
        Line::Gap {
            host: host.map(Cow::Borrowed),
            start: format_ns(g.start_ns),
            end: format_ns(g.end_ns),
            lost_kernel: g.lost_kernel,
            lost_userspace: g.lost_userspace,
            unpublished,
            reason: Cow::Borrowed(&g.reason),
        }
    }

    /// The record's host, if it has one.
    pub fn host(&self) -> Option<&str> {
        match self {
            Line::Lifetime { host, .. } | Line::Transition { host, .. } | Line::Gap { host, .. } => host.as_deref(),
        }
    }
}
