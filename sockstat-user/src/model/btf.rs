//! A BPF Type Format blob (include/uapi/linux/btf.h) read into typed records, as the
//! kernel hands it out for a map (`BPF_BTF_GET_FD_BY_ID`, then `BPF_OBJ_GET_INFO_BY_FD`):
//! what `--bpf-maps` needs to print a socket-local storage value as libbpf's
//! `btf_dump__dump_type_data()` does. No I/O here.
//!
//! Why not btfparse (which resolves the kernel's offsets in `bpf::btf`): btf_dump prints
//! from the raw records (an empty name versus none, the `kflag` of enums and forward
//! declarations, int encodings, the kind number of an unsupported type), which btfparse
//! does not keep. Every read is bounds-checked; a malformed blob is a [`BtfError`] naming
//! the byte offset.
//!
//! Also [`BtfBuilder`], which writes a blob: for the tests, and for anyone who makes a
//! socket-local storage map to look at with sockstat.

use std::fmt;

/// `BTF_MAGIC`.
const MAGIC: u16 = 0xeb9f;
/// `sizeof(struct btf_header)`: magic, version, flags, hdr_len, then four u32 offsets and lengths.
const HEADER_LEN: usize = 24;

/// `BTF_KIND_*` (include/uapi/linux/btf.h).
pub mod kind {
    pub const INT: u8 = 1;
    pub const PTR: u8 = 2;
    pub const ARRAY: u8 = 3;
    pub const STRUCT: u8 = 4;
    pub const UNION: u8 = 5;
    pub const ENUM: u8 = 6;
    pub const FWD: u8 = 7;
    pub const TYPEDEF: u8 = 8;
    pub const VOLATILE: u8 = 9;
    pub const CONST: u8 = 10;
    pub const RESTRICT: u8 = 11;
    pub const FUNC: u8 = 12;
    pub const FUNC_PROTO: u8 = 13;
    pub const VAR: u8 = 14;
    pub const DATASEC: u8 = 15;
    pub const FLOAT: u8 = 16;
    pub const DECL_TAG: u8 = 17;
    pub const TYPE_TAG: u8 = 18;
    pub const ENUM64: u8 = 19;
}

/// `BTF_INT_SIGNED`, `BTF_INT_CHAR`, `BTF_INT_BOOL`: bits of an int's encoding.
pub const INT_SIGNED: u8 = 1;
pub const INT_CHAR: u8 = 2;
pub const INT_BOOL: u8 = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    #[error("BTF blob of {len} bytes is shorter than its {HEADER_LEN}-byte header")]
    ShortHeader { len: usize },
    #[error("BTF magic is {found:#06x}, expected 0xeb9f (or a big-endian blob)")]
    Magic { found: u16 },
    #[error("BTF {section} section ({start}..{end}) lies outside the {len}-byte blob")]
    Section { section: &'static str, start: usize, end: usize, len: usize },
    #[error("BTF type {id} at byte {at} is cut short: needs {needed} bytes, {available} left")]
    ShortType { id: u32, at: usize, needed: usize, available: usize },
    #[error("BTF type {id} at byte {at} has unknown kind {kind}")]
    UnknownKind { id: u32, at: usize, kind: u8 },
    #[error("BTF type {id}: name offset {offset} is outside the {len}-byte string section")]
    Name { id: u32, offset: u32, len: usize },
}

/// A member of a struct or union.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name_off: u32,
    pub type_id: u32,
    /// In bits from the start of the struct.
    pub bit_offset: u32,
    /// 0 unless the struct has `kflag` set and this member is a bitfield.
    pub bitfield_size: u8,
}

/// One enumerator: its name and value (an `ENUM`'s s32/u32 widened, an `ENUM64`'s u64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enumerator {
    pub name_off: u32,
    pub value: u64,
}

/// The part of a type that depends on its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    Int {
        encoding: u8,
        offset: u8,
        bits: u8,
    },
    Array {
        elem: u32,
        index: u32,
        nelems: u32,
    },
    Members(Vec<Member>),
    Enumerators(Vec<Enumerator>),
    /// FUNC_PROTO parameters: (name offset, type).
    Params(Vec<(u32, u32)>),
    /// VAR: linkage.
    Var {
        linkage: u32,
    },
    /// DATASEC: (type, offset, size) of each variable.
    SecInfo(Vec<(u32, u32, u32)>),
    /// DECL_TAG: component index.
    DeclTag {
        component: i32,
    },
    None,
}

/// `struct btf_type` and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    pub name_off: u32,
    pub kind: u8,
    pub kflag: bool,
    pub vlen: u16,
    /// `size` for INT, ENUM, ENUM64, STRUCT, UNION, FLOAT, DATASEC; `type` for the others.
    pub size_or_type: u32,
    pub detail: Detail,
}

impl Type {
    #[must_use]
    pub fn is_mod(&self) -> bool {
        matches!(self.kind, kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG)
    }
}

/// The void type, id 0.
static VOID: Type = Type { name_off: 0, kind: 0, kflag: false, vlen: 0, size_or_type: 0, detail: Detail::None };

/// A whole BTF blob: types by id (1-based; 0 is void) and the string section.
#[derive(Clone, PartialEq, Eq)]
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
}

impl fmt::Debug for Btf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Btf({} types, {} bytes of strings)", self.types.len(), self.strings.len())
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Btf {
    /// Reads a blob in the host's byte order (the kernel's).
    ///
    /// # Errors
    /// A short or inconsistent header, a type cut short or of an unknown kind, a name
    /// outside the string section.
    pub fn parse(blob: &[u8]) -> Result<Btf, BtfError> {
        if blob.len() < HEADER_LEN {
            return Err(BtfError::ShortHeader { len: blob.len() });
        }
        let magic = u16::from_ne_bytes([blob[0], blob[1]]);
        if magic != MAGIC {
            return Err(BtfError::Magic { found: magic });
        }
        let hdr_len = u32_at(blob, 4) as usize;
        let section = |section: &'static str, off: usize, len: usize| {
            let start = hdr_len.checked_add(off);
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(start), Some(end)) if end <= blob.len() && hdr_len >= HEADER_LEN => Ok(start..end),
                _ => Err(BtfError::Section {
                    section,
                    start: hdr_len.saturating_add(off),
                    end: hdr_len.saturating_add(off).saturating_add(len),
                    len: blob.len(),
                }),
            }
        };
        let type_range = section("type", u32_at(blob, 8) as usize, u32_at(blob, 12) as usize)?;
        let str_range = section("string", u32_at(blob, 16) as usize, u32_at(blob, 20) as usize)?;
        let strings = blob[str_range].to_vec();
        let mut types = Vec::new();
        let tb = &blob[type_range.clone()];
        let mut at = 0usize;
        while at < tb.len() {
            let id = u32::try_from(types.len() + 1).unwrap_or(u32::MAX);
            let abs = type_range.start + at;
            let need = |n: usize| {
                if tb.len() - at < n {
                    Err(BtfError::ShortType { id, at: abs, needed: n, available: tb.len() - at })
                } else {
                    Ok(())
                }
            };
            need(12)?;
            let name_off = u32_at(tb, at);
            let info = u32_at(tb, at + 4);
            let size_or_type = u32_at(tb, at + 8);
            let vlen = (info & 0xffff) as u16;
            let k = ((info >> 24) & 0x1f) as u8;
            let kflag = info >> 31 != 0;
            let n = usize::from(vlen);
            let extra = match k {
                kind::INT | kind::VAR | kind::DECL_TAG => 4,
                kind::ARRAY => 12,
                kind::STRUCT | kind::UNION | kind::DATASEC | kind::ENUM64 => 12 * n,
                kind::ENUM | kind::FUNC_PROTO => 8 * n,
                kind::PTR
                | kind::FWD
                | kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::FUNC
                | kind::FLOAT
                | kind::TYPE_TAG => 0,
                _ => return Err(BtfError::UnknownKind { id, at: abs, kind: k }),
            };
            need(12 + extra)?;
            let e = at + 12;
            let word = |i: usize| u32_at(tb, e + 4 * i);
            let detail = match k {
                kind::INT => {
                    let w = word(0);
                    Detail::Int {
                        encoding: (w >> 24 & 0x0f) as u8,
                        offset: (w >> 16 & 0xff) as u8,
                        bits: (w & 0xff) as u8,
                    }
                }
                kind::ARRAY => Detail::Array { elem: word(0), index: word(1), nelems: word(2) },
                kind::STRUCT | kind::UNION => Detail::Members(
                    (0..n)
                        .map(|i| {
                            let off = word(3 * i + 2);
                            let (bit_offset, bitfield_size) =
                                if kflag { (off & 0x00ff_ffff, (off >> 24) as u8) } else { (off, 0) };
                            Member { name_off: word(3 * i), type_id: word(3 * i + 1), bit_offset, bitfield_size }
                        })
                        .collect(),
                ),
                kind::ENUM => Detail::Enumerators(
                    (0..n)
                        .map(|i| {
                            // `struct btf_enum`'s value is an `__s32`: libbpf compares it,
                            // widened with its sign, whatever the enum's signedness.
                            let value = i64::from(word(2 * i + 1).cast_signed()).cast_unsigned();
                            Enumerator { name_off: word(2 * i), value }
                        })
                        .collect(),
                ),
                kind::ENUM64 => Detail::Enumerators(
                    (0..n)
                        .map(|i| Enumerator {
                            name_off: word(3 * i),
                            value: u64::from(word(3 * i + 2)) << 32 | u64::from(word(3 * i + 1)),
                        })
                        .collect(),
                ),
                kind::FUNC_PROTO => Detail::Params((0..n).map(|i| (word(2 * i), word(2 * i + 1))).collect()),
                kind::VAR => Detail::Var { linkage: word(0) },
                kind::DATASEC => {
                    Detail::SecInfo((0..n).map(|i| (word(3 * i), word(3 * i + 1), word(3 * i + 2))).collect())
                }
                kind::DECL_TAG => Detail::DeclTag { component: word(0).cast_signed() },
                _ => Detail::None,
            };
            let t = Type { name_off, kind: k, kflag, vlen, size_or_type, detail };
            let names = std::iter::once(t.name_off).chain(match &t.detail {
                Detail::Members(m) => m.iter().map(|m| m.name_off).collect::<Vec<_>>(),
                Detail::Enumerators(e) => e.iter().map(|e| e.name_off).collect(),
                Detail::Params(p) => p.iter().map(|p| p.0).collect(),
                _ => Vec::new(),
            });
            for offset in names {
                if offset as usize >= strings.len() && offset != 0 {
                    return Err(BtfError::Name { id, offset, len: strings.len() });
                }
            }
            types.push(t);
            at += 12 + extra;
        }
        Ok(Btf { types, strings })
    }

    /// The type with this id (0: void); `None` past the last one.
    #[must_use]
    pub fn get(&self, id: u32) -> Option<&Type> {
        if id == 0 { Some(&VOID) } else { self.types.get(id as usize - 1) }
    }

    /// Number of types, void included (libbpf's `btf__type_cnt`).
    #[must_use]
    pub fn type_cnt(&self) -> usize {
        self.types.len() + 1
    }

    /// The NUL-terminated string at `off` ("" if out of range, as libbpf's
    /// `btf__str_by_offset` would give NULL and btf_dump never asks for those).
    #[must_use]
    pub fn name(&self, off: u32) -> &str {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("?")
    }

    /// The raw bytes of the name at `off`.
    #[must_use]
    pub fn name_bytes(&self, off: u32) -> &[u8] {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..end]
    }

    /// libbpf's `skip_mods_and_typedefs`: follows CONST, VOLATILE, RESTRICT, TYPE_TAG and
    /// TYPEDEF links (at most the number of types, so a loop ends).
    #[must_use]
    pub fn skip_mods_and_typedefs(&self, mut id: u32) -> Option<(u32, &Type)> {
        for _ in 0..=self.types.len() {
            let t = self.get(id)?;
            if t.is_mod() || t.kind == kind::TYPEDEF {
                id = t.size_or_type;
            } else {
                return Some((id, t));
            }
        }
        None
    }

    /// libbpf's `btf__resolve_size`: the size of a type in bytes, arrays multiplied out,
    /// modifiers and typedefs followed; `None` for a type without one or a loop.
    #[must_use]
    pub fn resolve_size(&self, mut id: u32) -> Option<u64> {
        let mut nelems: u64 = 1;
        for _ in 0..=self.types.len() {
            let t = self.get(id)?;
            match t.kind {
                kind::INT | kind::STRUCT | kind::UNION | kind::ENUM | kind::ENUM64 | kind::DATASEC | kind::FLOAT => {
                    return nelems.checked_mul(u64::from(t.size_or_type)).filter(|&s| s <= u64::from(u32::MAX));
                }
                kind::PTR => return nelems.checked_mul(8),
                kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::VAR
                | kind::DECL_TAG
                | kind::TYPE_TAG => id = t.size_or_type,
                kind::ARRAY => {
                    let Detail::Array { elem, nelems: n, .. } = t.detail else { return None };
                    nelems = nelems.checked_mul(u64::from(n))?;
                    id = elem;
                }
                _ => return None,
            }
        }
        None
    }

    /// libbpf's `btf__align_of`.
    #[must_use]
    pub fn align_of(&self, id: u32) -> u32 {
        let Some((_, t)) = self.skip_mods_and_typedefs(id) else { return 0 };
        match t.kind {
            kind::INT | kind::ENUM | kind::ENUM64 | kind::FLOAT => t.size_or_type.min(8),
            kind::PTR => 8,
            kind::ARRAY => match t.detail {
                Detail::Array { elem, .. } => self.align_of(elem),
                _ => 0,
            },
            kind::STRUCT | kind::UNION => {
                let Detail::Members(members) = &t.detail else { return 0 };
                let mut max = 1;
                for m in members {
                    let a = self.align_of(m.type_id);
                    if a == 0 {
                        return 0;
                    }
                    max = max.max(a);
                    // A member off its type's alignment: the struct is packed.
                    if m.bitfield_size == 0 && m.bit_offset % (8 * a) != 0 {
                        return 1;
                    }
                }
                if t.size_or_type % max != 0 { 1 } else { max }
            }
            _ => 0,
        }
    }
}

/// What printing a socket-local storage map's values needs of the map
/// (`struct bpf_map_info` and its BTF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageMapInfo {
    pub value_size: u32,
    /// `btf_value_type_id` (0: no BTF).
    pub value_type_id: u32,
    pub btf: Option<std::sync::Arc<Btf>>,
}

/// Writes a BTF blob in the host's byte order, type by type (ids from 1 in call order).
#[derive(Debug, Default, Clone)]
pub struct BtfBuilder {
    types: Vec<u8>,
    strings: Vec<u8>,
    count: u32,
}

impl BtfBuilder {
    #[must_use]
    pub fn new() -> BtfBuilder {
        BtfBuilder { types: Vec::new(), strings: vec![0], count: 0 }
    }

    /// Adds a string (or finds it), returning its offset; "" is offset 0.
    pub fn string(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    fn words(&mut self, w: &[u32]) {
        for x in w {
            self.types.extend_from_slice(&x.to_ne_bytes());
        }
    }

    /// A raw `struct btf_type` header with the extra words of its kind; returns its id.
    pub fn raw(&mut self, name: &str, k: u8, kflag: bool, vlen: u16, size_or_type: u32, extra: &[u32]) -> u32 {
        let name_off = self.string(name);
        let info = u32::from(kflag) << 31 | u32::from(k) << 24 | u32::from(vlen);
        self.words(&[name_off, info, size_or_type]);
        self.words(extra);
        self.count += 1;
        self.count
    }

    pub fn int(&mut self, name: &str, size: u32, encoding: u8) -> u32 {
        self.raw(name, kind::INT, false, 0, size, &[(u32::from(encoding) << 24) | (size * 8)])
    }

    pub fn array(&mut self, elem: u32, index: u32, nelems: u32) -> u32 {
        self.raw("", kind::ARRAY, false, 0, 0, &[elem, index, nelems])
    }

    pub fn typedef(&mut self, name: &str, target: u32) -> u32 {
        self.raw(name, kind::TYPEDEF, false, 0, target, &[])
    }

    pub fn ptr(&mut self, target: u32) -> u32 {
        self.raw("", kind::PTR, false, 0, target, &[])
    }

    /// A struct (or union) whose members are (name, type, bit offset, bitfield size);
    /// `kflag` is set when any member is a bitfield.
    pub fn composite(&mut self, union: bool, name: &str, size: u32, members: &[(&str, u32, u32, u8)]) -> u32 {
        let kflag = members.iter().any(|m| m.3 != 0);
        let mut extra = Vec::new();
        for &(n, ty, off, bits) in members {
            let name_off = self.string(n);
            extra.extend_from_slice(&[name_off, ty, if kflag { u32::from(bits) << 24 | off } else { off }]);
        }
        let k = if union { kind::UNION } else { kind::STRUCT };
        self.raw(name, k, kflag, u16::try_from(members.len()).unwrap_or(u16::MAX), size, &extra)
    }

    pub fn enumeration(&mut self, name: &str, size: u32, signed: bool, values: &[(&str, i32)]) -> u32 {
        let mut extra = Vec::new();
        for &(n, v) in values {
            let name_off = self.string(n);
            extra.extend_from_slice(&[name_off, v.cast_unsigned()]);
        }
        self.raw(name, kind::ENUM, signed, u16::try_from(values.len()).unwrap_or(u16::MAX), size, &extra)
    }

    /// The blob: header, types, strings.
    #[must_use]
    pub fn build(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN + self.types.len() + self.strings.len());
        b.extend_from_slice(&MAGIC.to_ne_bytes());
        b.extend_from_slice(&[1, 0]);
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        for w in [len(HEADER_LEN), 0, len(self.types.len()), len(self.types.len()), len(self.strings.len())] {
            b.extend_from_slice(&w.to_ne_bytes());
        }
        b.extend_from_slice(&self.types);
        b.extend_from_slice(&self.strings);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_sizes() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, INT_SIGNED);
        let arr = b.array(int, int, 3);
        let td = b.typedef("triple", arr);
        let s = b.composite(false, "s", 16, &[("a", int, 0, 0), ("t", td, 32, 0)]);
        let btf = Btf::parse(&b.build()).expect("parse");
        assert_eq!(btf.type_cnt(), 5);
        assert_eq!(btf.resolve_size(td), Some(12));
        assert_eq!(btf.resolve_size(s), Some(16));
        assert_eq!(btf.align_of(s), 4);
        assert_eq!(btf.name(btf.get(s).expect("s").name_off), "s");
    }

    #[test]
    fn malformed_blobs_name_the_problem() {
        assert_eq!(Btf::parse(&[0; 4]), Err(BtfError::ShortHeader { len: 4 }));
        let mut b = BtfBuilder::new();
        b.int("int", 4, INT_SIGNED);
        let blob = b.build();
        let mut bad = blob.clone();
        bad[0] = 0;
        assert!(matches!(Btf::parse(&bad), Err(BtfError::Magic { .. })));
        // The type section said to end past the blob.
        let mut cut = blob.clone();
        cut.truncate(30);
        assert!(matches!(Btf::parse(&cut), Err(BtfError::Section { section: "type", .. })));
        // An INT without its extra word.
        let mut short = BtfBuilder::new();
        short.raw("", kind::INT, false, 0, 4, &[]);
        assert!(matches!(Btf::parse(&short.build()), Err(BtfError::ShortType { id: 1, needed: 16, .. })));
        let mut unknown = BtfBuilder::new();
        unknown.raw("", 31, false, 0, 4, &[]);
        assert!(matches!(Btf::parse(&unknown.build()), Err(BtfError::UnknownKind { kind: 31, .. })));
        let mut name = BtfBuilder::new();
        name.raw("", kind::PTR, false, 0, 0, &[]);
        let mut blob = name.build();
        blob[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&999u32.to_ne_bytes());
        assert!(matches!(Btf::parse(&blob), Err(BtfError::Name { offset: 999, .. })));
    }
}
