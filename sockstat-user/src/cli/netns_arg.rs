//! `--netns INODE|NAME` of `trace` and `history`: a network namespace by its inode number
//! (`ls -i /run/netns/NAME`, `readlink /proc/PID/ns/net`) or its `ip netns` name.

use std::{io, path::Path, str::FromStr};

use crate::sys::netns::{NAMED_DIR, inode_of};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetnsArg {
    Inode(u32),
    Name(String),
}

impl FromStr for NetnsArg {
    type Err = String;

    fn from_str(s: &str) -> Result<NetnsArg, String> {
        if s.is_empty() {
            return Err("a network namespace: an inode number or an `ip netns` name".into());
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(NetnsArg::Inode)
                .map_err(|_| format!("{s} is not a namespace inode (a 32-bit number)"));
        }
        if s.contains('/') || s == "." || s == ".." {
            return Err(format!("{s:?} is not an `ip netns` name (a file name under {NAMED_DIR})"));
        }
        Ok(NetnsArg::Name(s.to_owned()))
    }
}

impl NetnsArg {
    /// The namespace's inode now (a name is looked up in /run/netns).
    ///
    /// # Errors
    /// A name with no namespace under /run/netns, said with the path.
    pub fn inode(&self) -> io::Result<u32> {
        match self {
            NetnsArg::Inode(n) => Ok(*n),
            NetnsArg::Name(name) => {
                let path = Path::new(NAMED_DIR).join(name);
                inode_of(&path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
            }
        }
    }

    /// Whether a record of namespace `inode`, recorded with the name `name` (if it had
    /// one), is of this namespace: by inode, by the name recorded, or by the inode the
    /// name has now.
    #[must_use]
    pub fn matches(&self, inode: u32, name: Option<&str>, named_now: Option<u32>) -> bool {
        match self {
            NetnsArg::Inode(n) => *n == inode,
            NetnsArg::Name(want) => name == Some(want.as_str()) || named_now == Some(inode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inodes_and_names_parse_and_bad_ones_say_why() {
        assert_eq!("4026531840".parse(), Ok(NetnsArg::Inode(4_026_531_840)));
        assert_eq!("blue".parse(), Ok(NetnsArg::Name("blue".into())));
        assert!("99999999999".parse::<NetnsArg>().unwrap_err().contains("32-bit"));
        assert!("../x".parse::<NetnsArg>().unwrap_err().contains("/run/netns"));
        assert!("".parse::<NetnsArg>().is_err());
        let blue = NetnsArg::Name("blue".into());
        assert!(blue.matches(7, Some("blue"), None) && blue.matches(7, None, Some(7)) && !blue.matches(7, None, None));
        assert!(NetnsArg::Inode(7).matches(7, None, None) && !NetnsArg::Inode(7).matches(8, Some("7"), None));
    }
}
