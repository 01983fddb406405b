//! A task's name as the kernel keeps it (`task_struct.comm`): 16 bytes, NUL-padded.
//! Held as those bytes, so an event carries it without an allocation (the agent takes
//! hundreds of thousands of events a second); text only where it is shown.

use std::{borrow::Cow, fmt};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Comm([u8; 16]);

impl Comm {
    /// The kernel's bytes as they are (what follows a NUL is ignored).
    #[must_use]
    pub fn from_kernel(bytes: &[u8; 16]) -> Comm {
        let mut c = [0u8; 16];
        let n = bytes.iter().position(|&b| b == 0).unwrap_or(16);
        c[..n].copy_from_slice(&bytes[..n]);
        Comm(c)
    }

    /// The name's bytes, without the padding.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        let n = self.0.iter().position(|&b| b == 0).unwrap_or(16);
        &self.0[..n]
    }

    /// The name as text (bytes that are not UTF-8 replaced, as the program's output has
    /// always shown them); borrowed unless a byte had to be replaced.
    #[must_use]
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.bytes())
    }
}

/// A name given as text: its first 16 bytes.
impl From<&str> for Comm {
    fn from(s: &str) -> Comm {
        let mut c = [0u8; 16];
        let n = s.len().min(16);
        c[..n].copy_from_slice(&s.as_bytes()[..n]);
        Comm::from_kernel(&c)
    }
}

impl PartialEq<&str> for Comm {
    fn eq(&self, other: &&str) -> bool {
        self.bytes() == other.as_bytes()
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text(), f)
    }
}

/// Serialized as its text, as when it was a string.
impl Serialize for Comm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl<'de> Deserialize<'de> for Comm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Comm, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Comm::from(s.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_bytes_and_show_as_text() {
        let c = Comm::from_kernel(b"nginx: worker\0xy");
        assert_eq!(c, "nginx: worker");
        assert_eq!(c.to_string(), "nginx: worker");
        let full = Comm::from_kernel(b"0123456789abcdef");
        assert_eq!(full.bytes().len(), 16);
        let odd = Comm::from_kernel(b"a\xffb\0\0\0\0\0\0\0\0\0\0\0\0\0");
        assert_eq!(odd.text(), "a\u{fffd}b");
        assert_eq!(Comm::from("a-name-longer-than-sixteen"), "a-name-longer-th");
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"nginx: worker\"");
        assert_eq!(serde_json::from_str::<Comm>(&json).unwrap(), c);
    }
}
