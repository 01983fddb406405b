//! `-r`: host names for addresses, as iproute2's `format_host()` finds them.
//!
//! iproute2 (lib/utils.c `resolve_address`) calls glibc's `gethostbyaddr()` and prints
//! `h_name`, after rewriting a v4-mapped IPv6 address (`::ffff:a.b.c.d`) to the IPv4
//! address, and remembers every answer, failures included, for the rest of the run. We
//! call the same glibc function (its reentrant form) so that /etc/hosts, nsswitch.conf,
//! DNS and glibc's own special cases (the unspecified address, first name of the first
//! matching /etc/hosts line) give exactly ss's answers; `getnameinfo()` would differ (it
//! falls back to numeric text, and treats v4-mapped addresses and `NI_NOFQDN` its own way).

use std::collections::HashMap;
use std::ffi::CStr;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

/// Host names by address, looked up once per address per run (ss's `nht` cache).
///
/// Shared between the threads that render a big answer.
#[derive(Debug)]
pub struct HostNames {
    /// Answers so far; `None` = no name (ss remembers "negative" entries too).
    cache: Mutex<HashMap<IpAddr, Option<String>>>,
    /// Fixed names (tests): no system lookups, anything absent has no name.
    fixed: bool,
}

impl HostNames {
    /// Names from the system resolver (glibc `gethostbyaddr_r`).
    #[must_use]
    pub fn system() -> Self {
        HostNames { cache: Mutex::new(HashMap::new()), fixed: false }
    }

    /// Names from a fixed table; addresses not in it have no name.
    #[must_use]
    pub fn fixed(names: &[(IpAddr, &str)]) -> Self {
        let map = names.iter().map(|&(a, n)| (unmap(a), Some(n.to_owned()))).collect();
        HostNames { cache: Mutex::new(map), fixed: true }
    }

    /// The name ss prints for `addr` with `-r`, or `None` if it prints the number.
    #[must_use]
    pub fn name(&self, addr: IpAddr) -> Option<String> {
        let addr = unmap(addr);
        if let Some(known) = self.cache().get(&addr) {
            return known.clone();
        }
        let found = if self.fixed { None } else { gethostbyaddr(addr) };
        self.cache().insert(addr, found.clone());
        found
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Option<String>>> {
        // A panic while holding the lock left at worst an answer out: the map is whole.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clone for HostNames {
    fn clone(&self) -> Self {
        HostNames { cache: Mutex::new(self.cache().clone()), fixed: self.fixed }
    }
}

/// ss looks a v4-mapped address up as the IPv4 address it carries.
fn unmap(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

// Not in the libc crate; the glibc prototype (netdb.h).
unsafe extern "C" {
    fn gethostbyaddr_r(
        addr: *const libc::c_void,
        len: libc::socklen_t,
        family: libc::c_int,
        ret: *mut libc::hostent,
        buf: *mut libc::c_char,
        buflen: libc::size_t,
        result: *mut *mut libc::hostent,
        h_errnop: *mut libc::c_int,
    ) -> libc::c_int;
}

/// glibc's `gethostbyaddr()` answer for `addr`: its `h_name`, or `None` on any failure
/// (ss prints the number then, whatever the reason).
fn gethostbyaddr(addr: IpAddr) -> Option<String> {
    let (bytes, family): (Vec<u8>, libc::c_int) = match addr {
        IpAddr::V4(a) => (a.octets().to_vec(), libc::AF_INET),
        IpAddr::V6(a) => (a.octets().to_vec(), libc::AF_INET6),
    };
    let len = libc::socklen_t::try_from(bytes.len()).ok()?;
    // glibc asks for a bigger buffer with ERANGE (many aliases or addresses); stop at
    // 1 MiB rather than loop on a broken answer.
    let mut buf = vec![0 as libc::c_char; 4096];
    loop {
        // SAFETY: an all-zero hostent is valid (null pointers, zero integers).
        let mut ent: libc::hostent = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::hostent = std::ptr::null_mut();
        let mut herr: libc::c_int = 0;
        // SAFETY: every pointer is valid for the call: `bytes` holds `len` bytes of the
        // address, `buf` is writable for `buf.len()` bytes, the out-parameters are locals.
        let rc = unsafe {
            gethostbyaddr_r(
                bytes.as_ptr().cast(),
                len,
                family,
                &raw mut ent,
                buf.as_mut_ptr(),
                buf.len(),
                &raw mut result,
                &raw mut herr,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || ent.h_name.is_null() {
            return None;
        }
        // SAFETY: on success h_name points to a NUL-terminated string inside `buf`,
        // which is alive here.
        let name = unsafe { CStr::from_ptr(ent.h_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn v4_mapped_is_looked_up_as_ipv4() {
        let h = HostNames::fixed(&[(ip("127.0.0.1"), "localhost")]);
        assert_eq!(h.name(ip("::ffff:127.0.0.1")).as_deref(), Some("localhost"));
        assert_eq!(h.name(ip("127.0.0.1")).as_deref(), Some("localhost"));
        assert_eq!(h.name(ip("::1")), None);
        assert_eq!(h.name(ip("10.254.0.1")), None);
    }

    #[test]
    fn system_answers_are_cached() {
        let h = HostNames::system();
        let first = h.name(ip("127.0.0.1"));
        assert_eq!(h.cache().get(&ip("127.0.0.1")), Some(&first));
        assert_eq!(h.name(ip("::ffff:127.0.0.1")), first);
    }
}
