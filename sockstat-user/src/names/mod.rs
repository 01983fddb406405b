//! Names: the system's name database (services, protocols, netlink protocol names,
//! link-layer protocols, interfaces, the local port range, cgroup paths) and host-name
//! resolution. What the renderer prints and what the filter parser resolves both come
//! from here. May import `model`.

pub mod hosts;
pub mod lookup;
pub mod system;
