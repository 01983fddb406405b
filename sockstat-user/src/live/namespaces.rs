//! The network namespaces the agent tracks: their tables, the handles (nsfs paths) that
//! reach them, and their life in the agent: seeded at start (every namespace with a
//! handle), on first sight in an event, or again after a loss; dumps run inside them;
//! forgotten once gone.

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use sockstat_ebpf::{AF_INET, AF_INET6};
use tracing::info;

use crate::{
    diag::{DiagError, SockDiag},
    live::{
        error::{AgentError, error_text},
        table::ALL_STATES,
        table::Namespaces,
    },
    model::{clock::monotonic_ns, socket::InetSocket},
    sys::netns::{self, HandleError},
    wire::protocol::NamespaceStatus,
};

/// A namespace the agent could not dump is not asked again for this long (its events
/// are dropped meanwhile; a query from it tries again at once).
const UNREACHABLE_FOR: Duration = Duration::from_secs(5);
/// How often tracked namespaces without sockets are checked for a handle (one without
/// is gone, and forgotten).
const LIVENESS_EVERY: Duration = Duration::from_secs(2);

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

pub(super) struct NamespaceSet {
    /// Inode of the agent's own network namespace.
    pub(super) own: u32,
    /// The live tables, one per network namespace.
    pub(super) tables: Namespaces,
    /// Last known handle (an nsfs path) of each namespace, checked again before use.
    handles: HashMap<u32, PathBuf>,
    last_liveness: Instant,
    /// sock_diag in the agent's own namespace.
    pub(super) diag: SockDiag,
}

impl NamespaceSet {
    /// The namespaces of an agent in namespace `own`, whose sock_diag socket is `diag`.
    pub(super) fn new(own: u32, diag: SockDiag) -> NamespaceSet {
        let mut tables = Namespaces::new(own);
        if let Ok(cookie) = diag.netns_cookie() {
            tables.learn_cookie(own, cookie);
        }
        NamespaceSet { own, tables, handles: HashMap::new(), last_liveness: Instant::now(), diag }
    }

    /// Dumps namespace `ns`'s TCP sockets to seed its table, and learns its cookie.
    pub(super) fn dump_for_seed(&mut self, ns: u32, peer: Option<u32>) -> Result<Vec<InetSocket>, AgentError> {
        let (dump, cookie) = self.in_namespace(ns, peer, seed_dump)?;
        if let Some(cookie) = cookie {
            self.tables.learn_cookie(ns, cookie);
        }
        Ok(dump)
    }

    /// The last handle known for `ns`, for logs.
    pub(super) fn known_handle(&self, ns: u32) -> Option<&PathBuf> {
        self.handles.get(&ns)
    }

    /// Seeds the namespaces first seen in the last drain: a dump of each, then the
    /// events held for it replayed over the dump (later ones are still in the ring).
    pub(super) fn seed_waiting(&mut self) {
        for (ns, held) in self.tables.take_waiting() {
            match self.dump_for_seed(ns, None) {
                Ok(dump) => {
                    info!(netns = ns, sockets = dump.len(), handle = ?self.handles.get(&ns), "tracking a network namespace first seen in an event");
                    self.tables.seed(ns, dump, &held);
                }
                Err(e) => {
                    info!(netns = ns, error = %error_text(&e), "cannot dump a network namespace seen in an event; not tracking it (queries from it fall back to the kernel)");
                    self.tables.mark_unreachable(ns, monotonic_ns() + duration_ns(UNREACHABLE_FOR));
                }
            }
        }
    }

    /// Seeds every namespace with a handle other than the agent's own (at start);
    /// returns the dumps, by namespace.
    pub(super) fn seed_others(&mut self) -> Vec<(u32, Vec<InetSocket>)> {
        let mut dumps = Vec::new();
        self.handles = netns::discover().into_iter().collect();
        let mut found: Vec<u32> = self.handles.keys().copied().filter(|&ns| ns != self.own).collect();
        found.sort_unstable();
        for ns in found {
            match self.dump_for_seed(ns, None) {
                Ok(dump) => {
                    info!(netns = ns, sockets = dump.len(), handle = ?self.handles.get(&ns), "tracking a network namespace");
                    dumps.push((ns, dump.clone()));
                    self.tables.seed(ns, dump, &[]);
                }
                // It may have gone since it was found; its next event tries again.
                Err(e) => {
                    info!(netns = ns, error = %error_text(&e), "cannot dump a network namespace; not tracking it")
                }
            }
        }
        dumps
    }

    /// A dump of the agent's own namespace and of every other tracked namespace that
    /// has sockets (an empty one is left out: the snapshot says nothing of it, and its
    /// later sockets all have events), by namespace, for a timeline snapshot. One that
    /// cannot be dumped is left out too (logged).
    ///
    /// # Errors
    /// The own namespace's dump.
    /// The namespaces other than the agent's that have sockets now.
    pub(super) fn busy_others(&self) -> Vec<u32> {
        self.tables.counts().into_iter().filter(|&(ns, n)| n > 0 && ns != self.own).map(|(ns, _)| ns).collect()
    }

    /// The TCP sockets of namespace `ns`, from the kernel.
    pub(super) fn dump(&mut self, ns: u32) -> Result<Vec<InetSocket>, AgentError> {
        self.in_namespace(ns, None, |d| d.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES))
    }

    pub(super) fn dump_all(&mut self) -> Result<Vec<(u32, Vec<InetSocket>)>, AgentError> {
        let mut out = vec![(self.own, self.diag.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)?)];
        let busy: Vec<u32> =
            self.tables.counts().into_iter().filter(|&(ns, n)| n > 0 && ns != self.own).map(|(ns, _)| ns).collect();
        for ns in busy {
            match self.in_namespace(ns, None, |d| d.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)) {
                Ok(dump) => out.push((ns, dump)),
                Err(e) => {
                    info!(netns = ns, error = %error_text(&e), "cannot dump a network namespace for the timeline")
                }
            }
        }
        Ok(out)
    }

    /// Namespace `ns` could not be dumped again after a loss: it is no longer tracked
    /// (its table could be wrong, and nothing would repair it), and tried again later.
    pub(super) fn give_up(&mut self, ns: u32, e: &AgentError) {
        info!(netns = ns, error = %error_text(e), "cannot resync a network namespace; no longer tracked");
        self.tables.mark_unreachable(ns, monotonic_ns() + duration_ns(UNREACHABLE_FOR));
    }

    /// A handle to namespace `ns`: the querying process's (`peer`), the last one known,
    /// or a fresh search of /run/netns and /proc.
    pub(super) fn handle(&mut self, ns: u32, peer: Option<u32>) -> Result<(PathBuf, std::fs::File), HandleError> {
        if let Some(pid) = peer {
            let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
            if let Ok(f) = netns::open_checked(&path, ns) {
                self.handles.insert(ns, path.clone());
                return Ok((path, f));
            }
        }
        if let Some(path) = self.handles.get(&ns)
            && let Ok(f) = netns::open_checked(path, ns)
        {
            return Ok((path.clone(), f));
        }
        self.handles = netns::discover().into_iter().collect();
        let path = self.handles.get(&ns).ok_or(HandleError::NotFound(ns))?;
        let f = netns::open_checked(path, ns).map_err(|_| HandleError::NotFound(ns))?;
        Ok((path.clone(), f))
    }

    /// Runs `f` on a sock_diag socket of namespace `ns`: the agent's own, or a fresh one
    /// opened (and closed) by a thread that entered `ns`.
    pub(super) fn in_namespace<T: Send>(
        &mut self,
        ns: u32,
        peer: Option<u32>,
        f: impl FnOnce(&mut SockDiag) -> Result<T, DiagError> + Send,
    ) -> Result<T, AgentError> {
        if ns == self.own {
            return Ok(f(&mut self.diag)?);
        }
        let (path, file) = self.handle(ns, peer)?;
        Ok(netns::run_in(ns, (&path, &file), || SockDiag::open().and_then(|mut d| f(&mut d)))??)
    }

    /// Every LIVENESS_EVERY: a tracked namespace without sockets and without a handle is
    /// gone (a socket holds its namespace alive, so one with sockets is not): forget it,
    /// before its inode number is reused.
    pub(super) fn forget_gone(&mut self) {
        if self.last_liveness.elapsed() < LIVENESS_EVERY {
            return;
        }
        self.last_liveness = Instant::now();
        self.tables.expire_marks(monotonic_ns());
        let empty: Vec<u32> =
            self.tables.counts().into_iter().filter(|&(ns, n)| n == 0 && ns != self.own).map(|(ns, _)| ns).collect();
        let mut rescanned = false;
        for ns in empty {
            let known = self.handles.get(&ns).is_some_and(|p| netns::open_checked(p, ns).is_ok());
            if !known && !rescanned {
                self.handles = netns::discover().into_iter().collect();
                rescanned = true;
            }
            if !known && !self.handles.contains_key(&ns) && self.tables.forget(ns) {
                info!(netns = ns, "network namespace gone (no handle, no sockets); no longer tracked");
            }
        }
    }

    /// Every tracked namespace, for the status query.
    pub(super) fn status(&self) -> Vec<NamespaceStatus> {
        let mut names = netns::names();
        self.tables
            .counts()
            .into_iter()
            .map(|(ns, n)| NamespaceStatus {
                netns: ns,
                name: names.remove(&ns),
                own: ns == self.own,
                sockets: n as u64,
            })
            .collect()
    }
}

/// What seeding a namespace's table takes from a sock_diag socket in it: every TCP socket,
/// and the namespace's cookie (which request events name it by).
pub(super) fn seed_dump(d: &mut SockDiag) -> Result<(Vec<InetSocket>, Option<u64>), DiagError> {
    Ok((d.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)?, d.netns_cookie().ok()))
}
