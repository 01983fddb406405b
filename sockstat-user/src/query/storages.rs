//! `--bpf-maps` and `--bpf-map-id`: the BPF socket-local storage maps a query asks the
//! kernel about, handled as ss 7.1 handles them. Given ids are looked up before anything
//! is dumped (an unknown id, or a map that is not sk_storage, ends the run as in ss);
//! with `--bpf-maps` the kernel sends every map's value and each map is looked up when
//! one of its values is first seen (a lookup that fails is retried at the next value and
//! prints ss's "failed to fetch info" line where the value would be). The map fds stay
//! open for the dump, whose request names them.

use std::collections::HashMap;
use std::sync::Arc;

use crate::diag::StorageRequest;
use crate::model::btf::StorageMapInfo;
use crate::model::socket::Snapshot;
use crate::query::selection::BpfMaps;
use crate::sys::bpf_maps::{BpfMapError, SkStorageMap, open_sk_storage};

/// The maps of one query and what looking them up said.
#[derive(Debug)]
pub struct StorageMaps {
    all: bool,
    /// The maps looked up, in the order they were (`--bpf-map-id`: the order given).
    opened: Vec<SkStorageMap>,
    /// Lines for stderr, in ss's wording, each with its newline.
    warnings: Vec<String>,
}

impl StorageMaps {
    /// Looks up the maps the options name (none for `--bpf-maps`).
    ///
    /// # Errors
    /// The first given id that is not an sk_storage map this process can open.
    pub fn open(which: &BpfMaps) -> Result<StorageMaps, BpfMapError> {
        let mut maps = StorageMaps { all: matches!(which, BpfMaps::All), opened: Vec::new(), warnings: Vec::new() };
        if let BpfMaps::Ids(ids) = which {
            for (id, text) in ids {
                maps.opened.push(open_sk_storage(*id, text)?);
            }
        }
        Ok(maps)
    }

    /// No map yet, each looked up as its values are met: for values that come without
    /// the options (a recorded dump holding them, which ss prints too).
    #[must_use]
    pub fn lazy() -> StorageMaps {
        StorageMaps { all: true, opened: Vec::new(), warnings: Vec::new() }
    }

    /// Whether any inet socket of `snap` carries a socket-local storage value.
    #[must_use]
    pub fn any_in(snap: &Snapshot) -> bool {
        [&snap.raw, &snap.udp, &snap.tcp, &snap.dccp, &snap.sctp, &snap.mptcp]
            .into_iter()
            .flatten()
            .any(|s| s.ext.as_deref().is_some_and(|d| !d.bpf_storages.is_empty()))
    }

    /// What the inet dumps ask for: every map's values, or those of the maps given.
    #[must_use]
    pub fn request(&self) -> StorageRequest {
        if self.all {
            StorageRequest::All
        } else {
            use std::os::fd::AsRawFd;
            StorageRequest::MapFds(self.opened.iter().map(|m| m.fd.as_raw_fd()).collect())
        }
    }

    /// Goes through every value the dump returned, in print order, as ss's printing
    /// does: looks up the maps not seen yet, and notes what ss says on stderr (a failed
    /// lookup, a value whose size is not its map's). `prog` prefixes lookup errors.
    pub fn resolve(&mut self, snap: &Snapshot, prog: &str) {
        let tables = [&snap.raw, &snap.udp, &snap.tcp, &snap.dccp, &snap.sctp, &snap.mptcp];
        for s in tables.into_iter().flatten() {
            let Some(d) = s.ext.as_deref() else { continue };
            for stg in &d.bpf_storages {
                let known = self.opened.iter().position(|m| m.id == stg.map_id);
                let map = match known {
                    Some(i) => &self.opened[i],
                    None => match open_sk_storage(stg.map_id, "(null)") {
                        Ok(m) => {
                            self.opened.push(m);
                            &self.opened[self.opened.len() - 1]
                        }
                        Err(e) => {
                            self.warnings.push(format!("{prog}: {e}\n"));
                            continue;
                        }
                    },
                };
                if map.info.value_size as usize != stg.value.len() {
                    self.warnings.push(format!(
                        "map_id: {}: invalid value size, expecting {}, got {}\n",
                        stg.map_id,
                        map.info.value_size,
                        stg.value.len()
                    ));
                }
            }
        }
    }

    /// The maps looked up, by id, for the renderer.
    #[must_use]
    pub fn infos(&self) -> HashMap<u32, Arc<StorageMapInfo>> {
        self.opened.iter().map(|m| (m.id, Arc::clone(&m.info))).collect()
    }

    /// What to print on stderr.
    #[must_use]
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}
