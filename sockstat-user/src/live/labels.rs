//! The names and paths the timeline's dictionaries keep beside the numbers events
//! carry: a network namespace's `ip netns` name, a cgroup's path under the cgroup2
//! mount. The writer asks once per namespace or cgroup it meets, from its SQL thread.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::timeline::{LabelSource, Labels};

/// Cgroup paths by id, from the last walk of the cgroup2 mount: a cgroup met for the
/// first time is usually new, so a miss walks the mount again (once per cgroup the
/// writer meets: it keeps what it was told).
#[derive(Default)]
struct System {
    cgroups: Mutex<HashMap<u64, String>>,
}

impl Labels for System {
    fn netns_name(&self, inode: u32) -> Option<String> {
        crate::sys::netns::names().remove(&inode)
    }

    fn cgroup_path(&self, id: u64) -> Option<String> {
        let mut known = self.cgroups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = known.get(&id) {
            return Some(p.clone());
        }
        *known = crate::names::system::system_cgroups();
        known.get(&id).cloned()
    }
}

/// The labels of this system.
pub(super) fn system() -> LabelSource {
    LabelSource(Some(Arc::new(System::default())))
}
