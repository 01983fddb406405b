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

#[cfg(test)]
mod tests {
    use super::*;

    fn life() -> StoredLifetime {
        StoredLifetime {
            start_ns: Some(1_000_000_000),
            end_ns: 2_000_000_000,
            duration_ns: Some(1_000_000_000),
            pid: 7,
            comm: "curl".into(),
            owner: "connect".into(),
            active: Some(true),
            family: 2,
            src: "127.0.0.1".parse().unwrap(),
            sport: 40000,
            dst: "127.0.0.1".parse().unwrap(),
            dport: 80,
            bytes_sent: 10,
            bytes_received: 20,
            path: "SYN_SENT>ESTABLISHED>CLOSE".into(),
            cookie: 42,
            netns: 4_026_531_840,
            netns_name: None,
            cgroup: None,
            cgroup_id: None,
            error: None,
            retrans: Some(0),
            srtt_us: Some(50),
        }
    }

    #[test]
    fn the_local_line_has_no_host_and_the_fleet_line_reads_back() {
        let l = life();
        let local = serde_json::to_string(&Line::lifetime(None, &l)).unwrap();
        assert!(local.starts_with(r#"{"type":"lifetime","start":"1970-01-01T00:00:01"#), "{local}");
        assert!(!local.contains("host"), "{local}");
        let fleet = serde_json::to_string(&Line::lifetime(Some("web-1"), &l)).unwrap();
        assert!(fleet.starts_with(r#"{"type":"lifetime","host":"web-1","#), "{fleet}");
        let back: Line<'static> = serde_json::from_str(&fleet).unwrap();
        assert_eq!(back.host(), Some("web-1"));
        let Line::Lifetime { life, .. } = back else { panic!("not a lifetime: {fleet}") };
        assert_eq!(serde_json::to_string(&*life).unwrap(), serde_json::to_string(&l).unwrap());
    }

    #[test]
    fn gaps_say_what_went_unpublished_only_when_something_did() {
        let g = Gap { start_ns: 1, end_ns: 2, lost_kernel: 3, lost_userspace: 4, reason: "ring full".into() };
        let local = serde_json::to_string(&Line::gap(None, &g, None)).unwrap();
        assert_eq!(
            local,
            r#"{"type":"gap","start":"1970-01-01T00:00:00.000000001Z","end":"1970-01-01T00:00:00.000000002Z","lost_kernel":3,"lost_userspace":4,"reason":"ring full"}"#
        );
        let lost = serde_json::to_string(&Line::gap(Some("h"), &g, Some(9))).unwrap();
        assert!(lost.contains(r#""unpublished":9"#), "{lost}");
    }
}
