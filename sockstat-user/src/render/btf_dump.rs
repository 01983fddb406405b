//! A BPF socket-local storage value printed from its map's BTF as libbpf's
//! `btf_dump__dump_type_data()` prints it (src/btf_dump.c, libbpf 1.1, which ss 7.1 calls
//! with `emit_zeroes` always, and `compact` with `-O` or `indent_level = 2` without), and
//! the same value as typed JSON for `--json`. No I/O here.
//!
//! The text mirrors libbpf 1.1's state machine (Debian 12's libbpf, which the ss 7.1 built
//! here links), quirks included, because ss's output is its output: a `(type)` cast
//! before every value but array elements; one-byte ints printed as characters once any
//! char array has been seen in the value (libbpf never clears its `is_array_char`); a
//! char array's NUL ends it, prints nothing but its indentation, and ends every later
//! array and one-byte int of the value too (libbpf 1.1 never clears its
//! `is_array_terminated`; later versions print the NUL as `'\0'` and clear it); a signed
//! enum's value that names no enumerator printed with no delimiter after it; a member
//! that cannot be printed ends the dump with a negative errno, after what was printed
//! before it.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::model::btf::{Btf, Detail, INT_BOOL, INT_SIGNED, Type, kind};

/// errno values btf_dump returns (negated).
const ENOENT: i32 = 2;
const E2BIG: i32 = 7;
const EINVAL: i32 = 22;
const ENOTSUP: i32 = 95;

/// `struct btf_dump_type_data_opts` as ss fills it (`emit_zeroes` is always set), and
/// where the value lies.
#[derive(Clone, Copy, Debug)]
pub struct DumpOpts {
    pub indent_level: usize,
    pub compact: bool,
    /// The value's address modulo 8 in ss's buffer
    /// ([`crate::model::socket::SkStorageValue::misalign`]).
    pub misalign: u8,
}

/// libbpf's `struct btf_dump_data`: the state of one dump.
struct State {
    depth: usize,
    is_array_member: bool,
    is_array_char: bool,
    is_array_terminated: bool,
}

struct Dumper<'a> {
    btf: &'a Btf,
    data: &'a [u8],
    opts: DumpOpts,
    st: State,
    out: String,
    /// Deduplicated names of structs, unions and enums (`type_names`), and of typedefs
    /// (`ident_names`): a second type of the same name prints as `name___2`.
    names: [HashMap<String, usize>; 2],
    cached: HashMap<u32, String>,
    /// Nesting of type declarations: a function prototype taking a pointer to itself
    /// would otherwise recurse forever.
    decl_depth: usize,
}

/// Deeper nesting than any real type has: BTF with a cycle ends there, not in a crash.
const MAX_NESTING: usize = 64;

/// The text of `data` as a `type_id` value, and btf_dump's result: `Err(-errno)` after
/// the part it printed when a member cannot be printed (ss then adds `failed to dump
/// data: -errno`).
pub fn dump_type_data(btf: &Btf, type_id: u32, data: &[u8], opts: DumpOpts) -> (String, Result<(), i32>) {
    let mut d = Dumper {
        btf,
        data,
        opts,
        st: State { depth: 0, is_array_member: false, is_array_char: false, is_array_terminated: false },
        out: String::new(),
        names: [HashMap::new(), HashMap::new()],
        cached: HashMap::new(),
        decl_depth: 0,
    };
    let r = if btf.get(type_id).is_none() { Err(-ENOENT) } else { d.dump(None, type_id, 0, 0, 0).map(|_| ()) };
    (d.out, r)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

/// C's `%f` (six decimals, `inf`, `nan`, `-nan`).
fn c_float(v: f64) -> String {
    if v.is_nan() {
        if v.is_sign_negative() { "-nan".into() } else { "nan".into() }
    } else if v.is_infinite() {
        if v < 0.0 { "-inf".into() } else { "inf".into() }
    } else {
        format!("{v:.6}")
    }
}

/// An x87 80-bit extended value (a 16-byte `long double`) as the nearest f64.
fn f80_to_f64(b: &[u8]) -> f64 {
    let mant = le_u64(&b[..8]);
    let se = u16::from_le_bytes([b[8], b[9]]);
    let sign = if se & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from(se & 0x7fff);
    if exp == 0x7fff {
        return if mant << 1 == 0 { sign * f64::INFINITY } else { f64::NAN };
    }
    #[expect(clippy::cast_precision_loss, reason = "long double to double, as printing needs")]
    let m = mant as f64 / (1u64 << 63) as f64;
    sign * m * 2f64.powi(if exp == 0 { -16382 } else { exp - 16383 })
}

impl Dumper<'_> {
    fn newline(&self) -> &'static str {
        if self.opts.compact || self.st.depth == 0 { "" } else { "\n" }
    }

    fn delim(&self) -> &'static str {
        if self.st.depth == 0 { "" } else { "," }
    }

    fn pfx(&mut self) {
        if !self.opts.compact {
            for _ in 0..self.opts.indent_level + self.st.depth {
                self.out.push('\t');
            }
        }
    }

    /// `btf_dump_type_values`: the value, then the delimiter and newline of this depth.
    fn value(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push_str(self.delim());
        self.out.push_str(self.newline());
    }

    fn ty(&self, id: u32) -> &Type {
        self.btf.get(id).unwrap_or_else(|| self.btf.get(0).expect("void"))
    }

    /// `btf_dump_resolve_name`.
    fn resolve_name(&mut self, id: u32, ns: usize) -> String {
        let t = self.ty(id);
        if t.name_off == 0 {
            return String::new();
        }
        let orig = self.btf.name(t.name_off).to_owned();
        if let Some(n) = self.cached.get(&id) {
            return n.clone();
        }
        if t.kind == kind::FWD || (t.kind == kind::ENUM && t.vlen == 0) {
            self.cached.insert(id, orig.clone());
            return orig;
        }
        let count = self.names[ns].entry(orig.clone()).or_insert(0);
        *count += 1;
        let name = if *count > 1 { format!("{orig}___{count}") } else { orig };
        self.cached.insert(id, name.clone());
        name
    }

    /// `btf_dump_emit_type_decl` with modifiers stripped and anonymous types not
    /// expanded, as `btf_dump_emit_type_cast` calls it.
    fn type_decl(&mut self, mut id: u32, fname: &str) {
        if self.decl_depth > MAX_NESTING {
            return;
        }
        self.decl_depth += 1;
        let mut stack = Vec::new();
        for _ in 0..=self.btf.type_cnt() {
            let t = self.ty(id);
            if !t.is_mod() {
                stack.push(id);
            }
            if id == 0 {
                break;
            }
            match t.kind {
                kind::PTR | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::FUNC_PROTO | kind::TYPE_TAG => {
                    id = t.size_or_type;
                }
                kind::ARRAY => match t.detail {
                    Detail::Array { elem, .. } => id = elem,
                    _ => break,
                },
                _ => break,
            }
        }
        self.type_chain(&mut stack, fname);
        self.decl_depth -= 1;
    }

    fn emit_name(&mut self, name: &str, last_was_ptr: bool) {
        if !name.is_empty() && !last_was_ptr {
            self.out.push(' ');
        }
        self.out.push_str(name);
    }

    /// `btf_dump_emit_type_chain`, popping from the end of `decls`.
    fn type_chain(&mut self, decls: &mut Vec<u32>, fname: &str) {
        let mut last_was_ptr = true;
        while let Some(id) = decls.pop() {
            if id == 0 {
                self.out.push_str("void");
                last_was_ptr = false;
                continue;
            }
            let t = self.ty(id).clone();
            match t.kind {
                kind::INT | kind::FLOAT => self.out.push_str(self.btf.name(t.name_off)),
                kind::STRUCT | kind::UNION => {
                    let name = self.resolve_name(id, 0);
                    self.out.push_str(if t.kind == kind::STRUCT { "struct" } else { "union" });
                    if t.name_off != 0 {
                        self.out.push(' ');
                    }
                    self.out.push_str(&name);
                }
                kind::ENUM | kind::ENUM64 => {
                    let name = self.resolve_name(id, 0);
                    self.out.push_str("enum ");
                    self.out.push_str(&name);
                }
                kind::FWD => {
                    let name = self.resolve_name(id, 0);
                    self.out.push_str(if t.kflag { "union " } else { "struct " });
                    self.out.push_str(&name);
                }
                kind::TYPEDEF => {
                    let name = self.resolve_name(id, 1);
                    self.out.push_str(&name);
                }
                kind::PTR => self.out.push_str(if last_was_ptr { "*" } else { " *" }),
                kind::ARRAY => {
                    let Detail::Array { nelems, .. } = t.detail else { return };
                    let Some(&next) = decls.last() else {
                        self.emit_name(fname, last_was_ptr);
                        let _ = write!(self.out, "[{nelems}]");
                        return;
                    };
                    let multidim = self.ty(next).kind == kind::ARRAY;
                    if !fname.is_empty() && !last_was_ptr {
                        self.out.push(' ');
                    }
                    if !multidim {
                        self.out.push('(');
                    }
                    self.type_chain(decls, fname);
                    if !multidim {
                        self.out.push(')');
                    }
                    let _ = write!(self.out, "[{nelems}]");
                    return;
                }
                kind::FUNC_PROTO => {
                    if decls.is_empty() {
                        self.emit_name(fname, last_was_ptr);
                    } else {
                        self.out.push_str(" (");
                        self.type_chain(decls, fname);
                        self.out.push(')');
                    }
                    self.out.push('(');
                    let Detail::Params(params) = &t.detail else { return };
                    if params.is_empty() || (params.len() == 1 && params[0].1 == 0) {
                        self.out.push_str("void)");
                        return;
                    }
                    for (i, &(name_off, ty)) in params.iter().enumerate() {
                        if i > 0 {
                            self.out.push_str(", ");
                        }
                        if i == params.len() - 1 && ty == 0 {
                            self.out.push_str("...");
                            break;
                        }
                        let name = self.btf.name(name_off).to_owned();
                        self.type_decl(ty, &name);
                    }
                    self.out.push(')');
                    return;
                }
                _ => {}
            }
            last_was_ptr = t.kind == kind::PTR;
        }
        self.emit_name(fname, last_was_ptr);
    }

    fn type_cast(&mut self, id: u32) {
        if self.st.is_array_member {
            return;
        }
        if matches!(self.ty(id).kind, kind::VAR | kind::DATASEC) {
            return;
        }
        self.out.push('(');
        self.type_decl(id, "");
        self.out.push(')');
    }

    /// libbpf's `ptr_is_aligned`, on the address the value had in ss's buffer.
    fn aligned(&self, id: u32, off: usize) -> bool {
        let a = self.btf.align_of(id) as usize;
        a != 0 && (usize::from(self.opts.misalign) + off).is_multiple_of(a)
    }

    /// `btf_dump_dump_type_data`: the size dumped, or `-errno`.
    fn dump(&mut self, fname: Option<&str>, id: u32, off: usize, bits_offset: u8, bit_sz: u8) -> Result<usize, i32> {
        if self.st.depth > MAX_NESTING {
            return Err(-EINVAL);
        }
        let end = self.data.len();
        let size = if bit_sz != 0 {
            let nr = (usize::from(bits_offset) + usize::from(bit_sz)).div_ceil(8);
            if off + nr > end {
                return Err(-E2BIG);
            }
            nr
        } else {
            let size = self.btf.resolve_size(id).filter(|&s| s < i32::MAX as u64).ok_or(-EINVAL)?;
            let size = usize::try_from(size).map_err(|_| -EINVAL)?;
            let (_, t) = self.btf.skip_mods_and_typedefs(id).ok_or(-EINVAL)?;
            if matches!(t.kind, kind::INT | kind::FLOAT | kind::PTR | kind::ENUM | kind::ENUM64)
                && off + usize::from(bits_offset) / 8 + size > end
            {
                return Err(-E2BIG);
            }
            size
        };
        self.pfx();
        if let Some(name) = fname.filter(|n| !n.is_empty()) {
            let _ = write!(self.out, ".{name} = ");
        }
        self.type_cast(id);
        let (sid, t) = self.btf.skip_mods_and_typedefs(id).ok_or(-EINVAL)?;
        let t = t.clone();
        match t.kind {
            0 | kind::FWD | kind::FUNC | kind::FUNC_PROTO | kind::DECL_TAG => {
                let _ = write!(self.out, "<unsupported kind:{}>", t.kind);
                return Err(-ENOTSUP);
            }
            kind::INT if bit_sz != 0 => {
                let v = self.bitfield_value(&t, off, bits_offset, bit_sz)?;
                self.value(&format!("{v:#x}"));
            }
            kind::INT => self.int_data(&t, off)?,
            kind::FLOAT => self.float_data(&t, off)?,
            kind::PTR => {
                let v = le_u64(&self.data[off..off + 8]);
                if self.aligned(sid, off) && v == 0 {
                    self.value("(nil)");
                } else {
                    self.value(&format!("{v:#x}"));
                }
            }
            kind::ARRAY => self.array_data(&t, off)?,
            kind::STRUCT | kind::UNION => self.struct_data(&t, off)?,
            kind::ENUM | kind::ENUM64 => {
                let value = if bit_sz != 0 {
                    let v = self.bitfield_value(&t, off, bits_offset, bit_sz)?;
                    // libbpf reads the enum's size of bytes from a local __s64.
                    let bytes = v.to_le_bytes();
                    enum_value(&t, &bytes)?
                } else if !self.aligned(sid, off) {
                    // libbpf reads a misaligned enum as a bitfield of 0 bits at offset 0,
                    // shifting a u64 by 64 both ways: the ss 7.1 built here prints 0.
                    if self.data.len() < off + t.size_or_type as usize {
                        return Err(-E2BIG);
                    }
                    0
                } else {
                    enum_value(&t, &self.data[off..])?
                };
                self.enum_data(&t, value);
            }
            _ => return Err(-EINVAL),
        }
        Ok(size)
    }

    fn bitfield_value(&self, t: &Type, off: usize, bits_offset: u8, bit_sz: u8) -> Result<u64, i32> {
        let start = usize::from(bits_offset % 8);
        let nr = (start + usize::from(bit_sz)).div_ceil(8);
        if off + nr > self.data.len() {
            return Err(-E2BIG);
        }
        if t.size_or_type > 8 {
            return Err(-EINVAL);
        }
        let n = t.size_or_type as usize;
        let num = le_u64(self.data.get(off..(off + n).min(self.data.len())).unwrap_or_default());
        let copied = u32::from(bit_sz) + u32::from(bits_offset);
        // C shifts by 64 act as shifts by 0 on x86, as wrapping shifts do.
        Ok(num.wrapping_shl(64u32.wrapping_sub(copied)).wrapping_shr(64u32.wrapping_sub(u32::from(bit_sz))))
    }

    fn int_data(&mut self, t: &Type, off: usize) -> Result<(), i32> {
        let Detail::Int { encoding, .. } = t.detail else { return Err(-EINVAL) };
        let sign = encoding & INT_SIGNED != 0;
        let b = &self.data[off..];
        let text = match t.size_or_type {
            16 => {
                let (lsi, msi) = (le_u64(&b[..8]), le_u64(&b[8..16]));
                if msi == 0 { format!("{lsi:#x}") } else { format!("{msi:#x}{lsi:016x}") }
            }
            8 if sign => le_u64(b).cast_signed().to_string(),
            8 => le_u64(b).to_string(),
            4 if sign => i32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string(),
            4 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string(),
            2 if sign => i16::from_le_bytes([b[0], b[1]]).to_string(),
            2 => u16::from_le_bytes([b[0], b[1]]).to_string(),
            1 => {
                if self.st.is_array_char {
                    if self.st.is_array_terminated {
                        return Ok(());
                    }
                    // libbpf 1.1 prints nothing for the NUL (later versions print '\0').
                    if b[0] == 0 {
                        self.st.is_array_terminated = true;
                        return Ok(());
                    }
                    // isprint() in the C locale (ss never calls setlocale).
                    if (0x20..0x7f).contains(&b[0]) {
                        self.value(&format!("'{}'", char::from(b[0])));
                        return Ok(());
                    }
                }
                if sign { b[0].cast_signed().to_string() } else { b[0].to_string() }
            }
            _ => return Err(-EINVAL),
        };
        self.value(&text);
        Ok(())
    }

    fn float_data(&mut self, t: &Type, off: usize) -> Result<(), i32> {
        let b = &self.data[off..];
        let v = match t.size_or_type {
            16 => f80_to_f64(b),
            8 => f64::from_bits(le_u64(b)),
            4 => f64::from(f32::from_bits(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
            _ => return Err(-EINVAL),
        };
        self.value(&c_float(v));
        Ok(())
    }

    fn array_data(&mut self, t: &Type, off: usize) -> Result<(), i32> {
        let Detail::Array { elem, nelems, .. } = t.detail else { return Err(-EINVAL) };
        let elem_size = self.btf.resolve_size(elem).filter(|&s| s > 0).ok_or(-EINVAL)?;
        let elem_size = usize::try_from(elem_size).map_err(|_| -EINVAL)?;
        if let Some((_, et)) = self.btf.skip_mods_and_typedefs(elem)
            && et.kind == kind::INT
            && elem_size == 1
        {
            self.st.is_array_char = true;
        }
        self.st.depth += 1;
        self.out.push('[');
        self.out.push_str(self.newline());
        let was_member = std::mem::replace(&mut self.st.is_array_member, true);
        for i in 0..nelems as usize {
            if self.st.is_array_terminated {
                break;
            }
            let at = off + i * elem_size;
            // Past the value every element fails its size check (the kernel sizes the value
            // as its type, so this only cuts a malformed one short).
            if at > self.data.len() {
                break;
            }
            // libbpf ignores an element's error.
            let _ = self.dump(None, elem, at, 0, 0);
        }
        self.st.is_array_member = was_member;
        self.st.depth -= 1;
        self.pfx();
        self.value("]");
        Ok(())
    }

    fn struct_data(&mut self, t: &Type, off: usize) -> Result<(), i32> {
        let Detail::Members(members) = &t.detail else { return Err(-EINVAL) };
        self.st.depth += 1;
        self.out.push('{');
        self.out.push_str(self.newline());
        for m in members {
            let name = self.btf.name(m.name_off).to_owned();
            let at = off + (m.bit_offset / 8) as usize;
            let bits = (m.bit_offset % 8) as u8;
            self.dump(Some(&name), m.type_id, at, bits, m.bitfield_size)?;
        }
        self.st.depth -= 1;
        self.pfx();
        self.value("}");
        Ok(())
    }

    fn enum_data(&mut self, t: &Type, value: i64) {
        let Detail::Enumerators(values) = &t.detail else { return };
        let signed = t.kflag;
        if let Some(e) = values.iter().find(|e| e.value.cast_signed() == value) {
            let name = self.btf.name(e.name_off).to_owned();
            self.value(&name);
            return;
        }
        #[expect(clippy::cast_possible_truncation, reason = "C's %d/%u of the value take its low 32 bits")]
        // libbpf passes `is_signed ? "%d" : "%u"` to a macro that appends "%s%s" (the
        // delimiter and newline) to its format: the literals join with "%u" alone, so a
        // signed value is printed with neither.
        match (t.kind == kind::ENUM64, signed) {
            (false, true) => self.out.push_str(&(value as i32).to_string()),
            (false, false) => self.value(&(value as u32).to_string()),
            (true, true) => self.out.push_str(&format!("{value}LL")),
            (true, false) => self.value(&format!("{}ULL", value.cast_unsigned())),
        }
    }
}

/// `btf_dump_get_enum_value`: the enum's size of bytes, sign-extended when `kflag` says
/// the enum is signed (8 bytes always are).
fn enum_value(t: &Type, b: &[u8]) -> Result<i64, i32> {
    let signed = t.kflag;
    let n = t.size_or_type as usize;
    if b.len() < n {
        return Err(-E2BIG);
    }
    Ok(match n {
        8 => le_u64(b).cast_signed(),
        4 if signed => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        4 => i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        2 if signed => i64::from(i16::from_le_bytes([b[0], b[1]])),
        2 => i64::from(u16::from_le_bytes([b[0], b[1]])),
        1 if signed => i64::from(b[0].cast_signed()),
        1 => i64::from(b[0]),
        _ => return Err(-EINVAL),
    })
}

/// The value as JSON, typed by its BTF: a struct or union is an object of its members
/// (an anonymous member's members merged into it), an array a list, a char array a
/// string up to its NUL when that part is printable ASCII, an int a number (a bool one
/// `true`/`false`, a 128-bit one a hex string), an enum its enumerator's name (else its
/// number), a float a number, a pointer its address; `null` for what BTF cannot say.
#[must_use]
pub fn json_value(btf: &Btf, type_id: u32, data: &[u8]) -> serde_json::Value {
    json_at(btf, type_id, data, 0, 0, 0, 0)
}

fn json_at(btf: &Btf, id: u32, data: &[u8], off: usize, bits: u8, bit_sz: u8, depth: usize) -> serde_json::Value {
    use serde_json::Value;
    let Some((_, t)) = btf.skip_mods_and_typedefs(id) else { return Value::Null };
    if depth > 64 {
        return Value::Null;
    }
    let size = t.size_or_type as usize;
    let bytes = |n: usize| data.get(off..off + n);
    if bit_sz != 0 && matches!(t.kind, kind::INT | kind::ENUM | kind::ENUM64) {
        let nr = (usize::from(bits) + usize::from(bit_sz)).div_ceil(8);
        let Some(b) = bytes(nr.max(size.min(8))).or_else(|| bytes(nr)) else { return Value::Null };
        let v = le_u64(b)
            .wrapping_shl(64u32.wrapping_sub(u32::from(bit_sz) + u32::from(bits)))
            .wrapping_shr(64u32.wrapping_sub(u32::from(bit_sz)));
        return Value::from(v);
    }
    match t.kind {
        kind::INT => {
            let Detail::Int { encoding, .. } = t.detail else { return Value::Null };
            let Some(b) = bytes(size) else { return Value::Null };
            let signed = encoding & INT_SIGNED != 0;
            if encoding & INT_BOOL != 0 {
                return Value::Bool(b.iter().any(|&x| x != 0));
            }
            match size {
                16 => {
                    let (lsi, msi) = (le_u64(&b[..8]), le_u64(&b[8..]));
                    Value::from(if msi == 0 { format!("{lsi:#x}") } else { format!("{msi:#x}{lsi:016x}") })
                }
                1 | 2 | 4 | 8 if signed => {
                    let shift = 64 - 8 * size as u32;
                    Value::from((le_u64(b) << shift).cast_signed() >> shift)
                }
                1 | 2 | 4 | 8 => Value::from(le_u64(b)),
                _ => Value::Null,
            }
        }
        kind::FLOAT => match (size, bytes(size)) {
            (8, Some(b)) => serde_json::Number::from_f64(f64::from_bits(le_u64(b))).map_or(Value::Null, Value::Number),
            (4, Some(b)) => serde_json::Number::from_f64(f64::from(f32::from_bits(le_u64(b) as u32)))
                .map_or(Value::Null, Value::Number),
            _ => Value::Null,
        },
        kind::PTR => bytes(8).map_or(Value::Null, |b| Value::from(le_u64(b))),
        kind::ENUM | kind::ENUM64 => {
            let Some(b) = bytes(size) else { return Value::Null };
            let Ok(v) = enum_value(t, b) else { return Value::Null };
            let Detail::Enumerators(values) = &t.detail else { return Value::Null };
            match values.iter().find(|e| e.value.cast_signed() == v) {
                Some(e) => Value::from(btf.name(e.name_off)),
                None if t.kflag => Value::from(v),
                None => Value::from(if size < 8 {
                    v.cast_unsigned() & ((1u64 << (8 * size)) - 1)
                } else {
                    v.cast_unsigned()
                }),
            }
        }
        kind::ARRAY => {
            let Detail::Array { elem, nelems, .. } = t.detail else { return Value::Null };
            let Some(es) = btf.resolve_size(elem).and_then(|s| usize::try_from(s).ok()).filter(|&s| s > 0) else {
                return Value::Null;
            };
            let n = (nelems as usize).min(data.len().saturating_sub(off) / es);
            let is_char = btf.skip_mods_and_typedefs(elem).is_some_and(|(_, e)| e.kind == kind::INT) && es == 1;
            if is_char && let Some(b) = bytes(n) {
                let text = b.split(|&c| c == 0).next().unwrap_or_default();
                if text.iter().all(|c| (0x20..0x7f).contains(c)) {
                    return Value::from(String::from_utf8_lossy(text).into_owned());
                }
            }
            Value::Array((0..n).map(|i| json_at(btf, elem, data, off + i * es, 0, 0, depth + 1)).collect())
        }
        kind::STRUCT | kind::UNION => {
            let Detail::Members(members) = &t.detail else { return Value::Null };
            let mut obj = serde_json::Map::new();
            for m in members {
                let at = off + (m.bit_offset / 8) as usize;
                let b = (m.bit_offset % 8) as u8;
                let v = json_at(btf, m.type_id, data, at, b, m.bitfield_size, depth + 1);
                match (m.name_off, v) {
                    (0, Value::Object(inner)) => obj.extend(inner),
                    (off, v) => {
                        obj.insert(btf.name(off).to_owned(), v);
                    }
                }
            }
            Value::Object(obj)
        }
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::btf::{BtfBuilder, INT_SIGNED, kind};

    /// struct sock_val { __u32 a; unsigned long long b; char name[8]; int arr[3];
    /// enum color c; struct { unsigned short x; char y; } in; unsigned int f:3, g:5; }
    fn fixture() -> (Btf, u32, Vec<u8>) {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, INT_SIGNED);
        let uint = b.int("unsigned int", 4, 0);
        let ull = b.int("long long unsigned int", 8, 0);
        let ch = b.int("char", 1, INT_SIGNED);
        let ush = b.int("short unsigned int", 2, 0);
        let u32t = b.typedef("__u32", uint);
        let name = b.array(ch, int, 8);
        let arr = b.array(int, int, 3);
        let color = b.enumeration("color", 4, false, &[("RED", 0), ("GREEN", 1)]);
        let inner = b.composite(false, "", 4, &[("x", ush, 0, 0), ("y", ch, 16, 0)]);
        let val = b.composite(
            false,
            "sock_val",
            48,
            &[
                ("a", u32t, 0, 0),
                ("b", ull, 64, 0),
                ("name", name, 128, 0),
                ("arr", arr, 192, 0),
                ("c", color, 288, 0),
                ("in", inner, 320, 0),
                ("f", uint, 352, 3),
                ("g", uint, 355, 5),
            ],
        );
        let mut data = vec![0u8; 48];
        data[0..4].copy_from_slice(&7u32.to_le_bytes());
        data[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        data[16..19].copy_from_slice(b"ab\0");
        data[24..28].copy_from_slice(&(-1i32).to_le_bytes());
        data[28..32].copy_from_slice(&2i32.to_le_bytes());
        data[36..40].copy_from_slice(&1u32.to_le_bytes());
        data[40..42].copy_from_slice(&300u16.to_le_bytes());
        data[42] = b'z';
        data[44] = 0b1010_1101; // f = 5, g = 0b10101
        (Btf::parse(&b.build()).expect("btf"), val, data)
    }

    #[test]
    fn multiline_as_ss_prints_it() {
        let (btf, id, data) = fixture();
        let (text, r) = dump_type_data(&btf, id, &data, DumpOpts { indent_level: 2, compact: false, misalign: 0 });
        assert_eq!(r, Ok(()));
        let want = "\t\t(struct sock_val){\n\
                    \t\t\t.a = (__u32)7,\n\
                    \t\t\t.b = (long long unsigned int)1099511627776,\n\
                    \t\t\t.name = (char[8])[\n\t\t\t\t'a',\n\t\t\t\t'b',\n\t\t\t\t\t\t\t],\n\
                    \t\t\t.arr = (int[3])[\n\t\t\t],\n\
                    \t\t\t.c = (enum color)GREEN,\n\
                    \t\t\t.in = (struct){\n\t\t\t\t.x = (short unsigned int)300,\n\t\t\t\t.y = (char)\t\t\t},\n\
                    \t\t\t.f = (unsigned int)0x5,\n\
                    \t\t\t.g = (unsigned int)0x15,\n\
                    \t\t}";
        assert_eq!(text, want);
    }

    #[test]
    fn compact_as_ss_oneline_prints_it() {
        let (btf, id, data) = fixture();
        let (text, r) = dump_type_data(&btf, id, &data, DumpOpts { indent_level: 0, compact: true, misalign: 0 });
        assert_eq!(r, Ok(()));
        assert_eq!(
            text,
            "(struct sock_val){.a = (__u32)7,.b = (long long unsigned int)1099511627776,\
             .name = (char[8])['a','b',],.arr = (int[3])[],.c = (enum color)GREEN,\
             .in = (struct){.x = (short unsigned int)300,.y = (char)},\
             .f = (unsigned int)0x5,.g = (unsigned int)0x15,}"
        );
    }

    #[test]
    fn short_data_and_unknown_types_fail_as_libbpf_does() {
        let (btf, id, data) = fixture();
        // Cut inside `b`: `a` is printed, then `b` fails its size check (-E2BIG).
        let (text, r) = dump_type_data(&btf, id, &data[..10], DumpOpts { indent_level: 0, compact: true, misalign: 0 });
        assert_eq!((text.as_str(), r), ("(struct sock_val){.a = (__u32)7,", Err(-E2BIG)));
        assert_eq!(
            dump_type_data(&btf, 999, &data, DumpOpts { indent_level: 0, compact: true, misalign: 0 }).1,
            Err(-ENOENT)
        );
    }

    #[test]
    fn unnamed_signed_enum_values_lose_their_delimiter() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, INT_SIGNED);
        let signed = b.enumeration("sign", 4, true, &[("NEG", -1)]);
        let unsigned = b.enumeration("plain", 4, false, &[("ONE", 1)]);
        let s = b.composite(false, "s", 12, &[("a", signed, 0, 0), ("b", unsigned, 32, 0), ("c", int, 64, 0)]);
        let btf = Btf::parse(&b.build()).expect("btf");
        let mut data = Vec::new();
        for v in [5i32, 6, -1] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        let (text, r) = dump_type_data(&btf, s, &data, DumpOpts { indent_level: 0, compact: true, misalign: 0 });
        assert_eq!((text.as_str(), r), ("(struct s){.a = (enum sign)5.b = (enum plain)6,.c = (int)-1,}", Ok(())));
        data[..4].copy_from_slice(&(-1i32).to_le_bytes());
        let (text, _) = dump_type_data(&btf, s, &data, DumpOpts { indent_level: 0, compact: true, misalign: 0 });
        assert!(text.starts_with("(struct s){.a = (enum sign)NEG,"), "{text}");
    }

    #[test]
    fn misaligned_eight_byte_enums_and_pointers_as_libbpf_reads_them() {
        let mut b = BtfBuilder::new();
        let big = b.string("BIG");
        let e = b.raw("e", kind::ENUM64, false, 1, 8, &[big, 0, 1]);
        let ptr = b.ptr(0);
        let s = b.composite(false, "s", 16, &[("e", e, 0, 0), ("p", ptr, 64, 0)]);
        let btf = Btf::parse(&b.build()).expect("btf");
        let mut data = vec![0u8; 16];
        data[4] = 1; // e = 1 << 32
        let dump = |misalign| dump_type_data(&btf, s, &data, DumpOpts { indent_level: 0, compact: true, misalign }).0;
        assert_eq!(dump(0), "(struct s){.e = (enum e)BIG,.p = (void *)(nil),}");
        assert_eq!(dump(4), "(struct s){.e = (enum e)0ULL,.p = (void *)0x0,}");
    }

    #[test]
    fn cyclic_btf_ends_in_an_error_not_a_crash() {
        let mut b = BtfBuilder::new();
        // struct loop { struct loop inner; }: id 1 names itself.
        let s = b.composite(false, "loop", 4, &[("inner", 1, 0, 0)]);
        let btf = Btf::parse(&b.build()).expect("btf");
        let (_, r) = dump_type_data(&btf, s, &[0; 4], DumpOpts { indent_level: 0, compact: true, misalign: 0 });
        assert_eq!(r, Err(-EINVAL));
        assert!(json_value(&btf, s, &[0; 4]).is_object());
    }

    /// Mutated blobs and values: every outcome is text or an error, never a panic.
    #[test]
    fn mutated_btf_and_values_never_panic() {
        let (_, _, data) = fixture();
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, INT_SIGNED);
        let ch = b.int("char", 1, INT_SIGNED);
        let name = b.array(ch, int, 8);
        let e = b.enumeration("e", 4, true, &[("A", 1)]);
        b.composite(false, "s", 24, &[("a", int, 0, 0), ("n", name, 32, 0), ("e", e, 96, 3), ("f", int, 128, 0)]);
        let blob = b.build();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let mut m = blob.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % m.len() as u64) as usize;
                m[i] = next() as u8;
            }
            let Ok(btf) = Btf::parse(&m) else { continue };
            let len = (next() % 40) as usize;
            let value: Vec<u8> = data.iter().copied().cycle().take(len).collect();
            for id in 0..btf.type_cnt() as u32 + 1 {
                for compact in [false, true] {
                    let misalign = (next() % 8) as u8;
                    let _ = dump_type_data(&btf, id, &value, DumpOpts { indent_level: 2, compact, misalign });
                }
                let _ = json_value(&btf, id, &value);
            }
        }
    }

    #[test]
    fn json_is_typed() {
        let (btf, id, data) = fixture();
        let v = json_value(&btf, id, &data);
        assert_eq!(
            v,
            serde_json::json!({"a": 7, "b": 1_099_511_627_776u64, "name": "ab", "arr": [-1, 2, 0], "c": "GREEN",
                "in": {"x": 300, "y": 122}, "f": 5, "g": 21})
        );
    }
}
