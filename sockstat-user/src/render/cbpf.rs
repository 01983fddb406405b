//! A disassembler for classic BPF (the `struct sock_filter` programs attached with
//! SO_ATTACH_FILTER, which `ss -b` prints as raw numbers), in the text format of libpcap's
//! `bpf_image()`, i.e. what `tcpdump -d` prints:
//!
//! ```text
//! (000) ldh      [12]
//! (001) jeq      #0x86dd          jt 2<TAB>jf 8
//! ```
//!
//! (`<TAB>` is a tab character, as libpcap prints it.)
//!
//! Used by sockstat's own `--bpf-disasm` option. Written from the opcode encoding in
//! include/uapi/linux/bpf_common.h and include/uapi/linux/filter.h; no I/O, no unsafe. An
//! opcode this module does not know is printed as libpcap prints it (`unimp 0x..`), never
//! guessed.

use std::fmt::Write as _;

use crate::model::socket::BpfInsn;

// Instruction classes (BPF_CLASS(code) = code & 0x07).
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_STX: u16 = 0x03;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
// Load sizes (BPF_SIZE(code) = code & 0x18).
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_B: u16 = 0x10;
// Load modes (BPF_MODE(code) = code & 0xe0).
const BPF_IMM: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_IND: u16 = 0x40;
const BPF_MEM: u16 = 0x60;
const BPF_LEN: u16 = 0x80;
const BPF_MSH: u16 = 0xa0;
// ALU and jump operations (BPF_OP(code) = code & 0xf0).
const BPF_ADD: u16 = 0x00;
const BPF_SUB: u16 = 0x10;
const BPF_MUL: u16 = 0x20;
const BPF_DIV: u16 = 0x30;
const BPF_OR: u16 = 0x40;
const BPF_AND: u16 = 0x50;
const BPF_LSH: u16 = 0x60;
const BPF_RSH: u16 = 0x70;
const BPF_NEG: u16 = 0x80;
const BPF_MOD: u16 = 0x90;
const BPF_XOR: u16 = 0xa0;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
// Operand source (BPF_SRC(code) = code & 0x08) and return value source.
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;
// BPF_MISC operations.
const BPF_TAX: u16 = 0x00;
const BPF_TXA: u16 = 0x80;

/// One instruction as `tcpdump -d` prints it, `n` being its index (jump targets are
/// absolute: `n + 1 + offset`). No trailing newline.
#[must_use]
pub fn image(insn: &BpfInsn, n: usize) -> String {
    // libpcap prints k with %d (as a signed int) or 0x%x depending on the instruction.
    let k = insn.k;
    let ks = k.cast_signed();
    let (op, operand): (&str, String) = match insn.code {
        c if c == BPF_RET | BPF_K => ("ret", format!("#{ks}")),
        c if c == BPF_RET | BPF_A => ("ret", String::new()),
        c if c == BPF_LD | BPF_W | BPF_ABS => ("ld", format!("[{ks}]")),
        c if c == BPF_LD | BPF_H | BPF_ABS => ("ldh", format!("[{ks}]")),
        c if c == BPF_LD | BPF_B | BPF_ABS => ("ldb", format!("[{ks}]")),
        c if c == BPF_LD | BPF_W | BPF_LEN => ("ld", "#pktlen".to_owned()),
        c if c == BPF_LD | BPF_W | BPF_IND => ("ld", format!("[x + {ks}]")),
        c if c == BPF_LD | BPF_H | BPF_IND => ("ldh", format!("[x + {ks}]")),
        c if c == BPF_LD | BPF_B | BPF_IND => ("ldb", format!("[x + {ks}]")),
        c if c == BPF_LD | BPF_IMM => ("ld", format!("#0x{k:x}")),
        c if c == BPF_LDX | BPF_IMM => ("ldx", format!("#0x{k:x}")),
        c if c == BPF_LDX | BPF_W | BPF_LEN => ("ldx", "#pktlen".to_owned()),
        c if c == BPF_LDX | BPF_MSH | BPF_B => ("ldxb", format!("4*([{ks}]&0xf)")),
        c if c == BPF_LD | BPF_MEM => ("ld", format!("M[{ks}]")),
        c if c == BPF_LDX | BPF_MEM => ("ldx", format!("M[{ks}]")),
        c if c == BPF_ST => ("st", format!("M[{ks}]")),
        c if c == BPF_STX => ("stx", format!("M[{ks}]")),
        c if c == BPF_JMP | BPF_JA => ("ja", format!("{}", jump_target(n, k))),
        c if c == BPF_JMP | BPF_JGT | BPF_K => ("jgt", format!("#0x{k:x}")),
        c if c == BPF_JMP | BPF_JGE | BPF_K => ("jge", format!("#0x{k:x}")),
        c if c == BPF_JMP | BPF_JEQ | BPF_K => ("jeq", format!("#0x{k:x}")),
        c if c == BPF_JMP | BPF_JSET | BPF_K => ("jset", format!("#0x{k:x}")),
        c if c == BPF_JMP | BPF_JGT | BPF_X => ("jgt", "x".to_owned()),
        c if c == BPF_JMP | BPF_JGE | BPF_X => ("jge", "x".to_owned()),
        c if c == BPF_JMP | BPF_JEQ | BPF_X => ("jeq", "x".to_owned()),
        c if c == BPF_JMP | BPF_JSET | BPF_X => ("jset", "x".to_owned()),
        c if c & 0x07 == BPF_ALU && c & !0xf8 == BPF_ALU => alu(c, k, ks),
        c if c == BPF_MISC | BPF_TAX => ("tax", String::new()),
        c if c == BPF_MISC | BPF_TXA => ("txa", String::new()),
        c => ("unimp", format!("0x{c:x}")),
    };
    let is_cond_jump = insn.code & 0x07 == BPF_JMP && insn.code & 0xf0 != BPF_JA && op != "unimp";
    if is_cond_jump {
        format!(
            "({n:03}) {op:<8} {operand:<16} jt {}\tjf {}",
            n + 1 + usize::from(insn.jt),
            n + 1 + usize::from(insn.jf)
        )
    } else {
        format!("({n:03}) {op:<8} {operand}")
    }
}

/// `ja`'s absolute target; k is unsigned, so a huge k cannot wrap into the program.
fn jump_target(n: usize, k: u32) -> u64 {
    (n as u64) + 1 + u64::from(k)
}

/// The ALU instructions: `op #k` (decimal or hex as libpcap chooses) or `op x`.
fn alu(code: u16, k: u32, ks: i32) -> (&'static str, String) {
    let x = code & BPF_X == BPF_X;
    let (op, hex) = match code & 0xf0 {
        BPF_ADD => ("add", false),
        BPF_SUB => ("sub", false),
        BPF_MUL => ("mul", false),
        BPF_DIV => ("div", false),
        BPF_MOD => ("mod", false),
        BPF_AND => ("and", true),
        BPF_OR => ("or", true),
        BPF_XOR => ("xor", true),
        BPF_LSH => ("lsh", false),
        BPF_RSH => ("rsh", false),
        BPF_NEG if !x => return ("neg", String::new()),
        _ => return ("unimp", format!("0x{code:x}")),
    };
    let operand = if x {
        "x".to_owned()
    } else if hex {
        format!("#0x{k:x}")
    } else {
        format!("#{ks}")
    };
    (op, operand)
}

/// The whole program, one line per instruction, each ending in a newline, exactly as
/// `tcpdump -d` prints a compiled filter.
#[must_use]
pub fn disassemble(program: &[BpfInsn]) -> String {
    let mut s = String::new();
    for (n, insn) in program.iter().enumerate() {
        let _ = writeln!(s, "{}", image(insn, n));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (&'static str, &'static [(u16, u8, u8, u32)], &'static str);

    const CASES: &[Case] = &[
        // `tcpdump -dd 'tcp port 80'` and its `tcpdump -d` text.
        (
            "tcp_port_80",
            &[
                (0x28, 0, 0, 0x0000000c),
                (0x15, 0, 6, 0x000086dd),
                (0x30, 0, 0, 0x00000014),
                (0x15, 0, 15, 0x00000006),
                (0x28, 0, 0, 0x00000036),
                (0x15, 12, 0, 0x00000050),
                (0x28, 0, 0, 0x00000038),
                (0x15, 10, 11, 0x00000050),
                (0x15, 0, 10, 0x00000800),
                (0x30, 0, 0, 0x00000017),
                (0x15, 0, 8, 0x00000006),
                (0x28, 0, 0, 0x00000014),
                (0x45, 6, 0, 0x00001fff),
                (0xb1, 0, 0, 0x0000000e),
                (0x48, 0, 0, 0x0000000e),
                (0x15, 2, 0, 0x00000050),
                (0x48, 0, 0, 0x00000010),
                (0x15, 0, 1, 0x00000050),
                (0x6, 0, 0, 0x00040000),
                (0x6, 0, 0, 0x00000000),
            ],
            "(000) ldh      [12]\n\
         (001) jeq      #0x86dd          jt 2\tjf 8\n\
         (002) ldb      [20]\n\
         (003) jeq      #0x6             jt 4\tjf 19\n\
         (004) ldh      [54]\n\
         (005) jeq      #0x50            jt 18\tjf 6\n\
         (006) ldh      [56]\n\
         (007) jeq      #0x50            jt 18\tjf 19\n\
         (008) jeq      #0x800           jt 9\tjf 19\n\
         (009) ldb      [23]\n\
         (010) jeq      #0x6             jt 11\tjf 19\n\
         (011) ldh      [20]\n\
         (012) jset     #0x1fff          jt 19\tjf 13\n\
         (013) ldxb     4*([14]&0xf)\n\
         (014) ldh      [x + 14]\n\
         (015) jeq      #0x50            jt 18\tjf 16\n\
         (016) ldh      [x + 16]\n\
         (017) jeq      #0x50            jt 18\tjf 19\n\
         (018) ret      #262144\n\
         (019) ret      #0\n\
        ",
        ),
        // `tcpdump -dd 'ip and len > 100'` and its `tcpdump -d` text.
        (
            "len_gt",
            &[
                (0x28, 0, 0, 0x0000000c),
                (0x15, 0, 3, 0x00000800),
                (0x80, 0, 0, 0x00000000),
                (0x25, 0, 1, 0x00000064),
                (0x6, 0, 0, 0x00040000),
                (0x6, 0, 0, 0x00000000),
            ],
            "(000) ldh      [12]\n\
         (001) jeq      #0x800           jt 2\tjf 5\n\
         (002) ld       #pktlen\n\
         (003) jgt      #0x64            jt 4\tjf 5\n\
         (004) ret      #262144\n\
         (005) ret      #0\n\
        ",
        ),
        // `tcpdump -dd 'ip[2:2] - 20 > 100'` and its `tcpdump -d` text.
        (
            "sub_k",
            &[
                (0x28, 0, 0, 0x0000000c),
                (0x15, 0, 4, 0x00000800),
                (0x28, 0, 0, 0x00000010),
                (0x14, 0, 0, 0x00000014),
                (0x25, 0, 1, 0x00000064),
                (0x6, 0, 0, 0x00040000),
                (0x6, 0, 0, 0x00000000),
            ],
            "(000) ldh      [12]\n\
         (001) jeq      #0x800           jt 2\tjf 6\n\
         (002) ldh      [16]\n\
         (003) sub      #20\n\
         (004) jgt      #0x64            jt 5\tjf 6\n\
         (005) ret      #262144\n\
         (006) ret      #0\n\
        ",
        ),
        // `tcpdump -dd 'ip[0] * 4 / 2 = 10 or ip[0] % 3 = 1'` and its `tcpdump -d` text.
        (
            "mul_div_mod",
            &[
                (0x28, 0, 0, 0x0000000c),
                (0x15, 0, 8, 0x00000800),
                (0x30, 0, 0, 0x0000000e),
                (0x24, 0, 0, 0x00000004),
                (0x34, 0, 0, 0x00000002),
                (0x15, 3, 0, 0x0000000a),
                (0x30, 0, 0, 0x0000000e),
                (0x94, 0, 0, 0x00000003),
                (0x15, 0, 1, 0x00000001),
                (0x6, 0, 0, 0x00040000),
                (0x6, 0, 0, 0x00000000),
            ],
            "(000) ldh      [12]\n\
         (001) jeq      #0x800           jt 2\tjf 10\n\
         (002) ldb      [14]\n\
         (003) mul      #4\n\
         (004) div      #2\n\
         (005) jeq      #0xa             jt 9\tjf 6\n\
         (006) ldb      [14]\n\
         (007) mod      #3\n\
         (008) jeq      #0x1             jt 9\tjf 10\n\
         (009) ret      #262144\n\
         (010) ret      #0\n\
        ",
        ),
        // `tcpdump -dd 'ip[0] ^ 5 = 1 or ip[0] << 1 = 2 or ip[0] >> 1 = 3 or ip[0] | 1 = 9 or ip[0] & 3 = 2'` and its `tcpdump -d` text.
        (
            "bit_ops",
            &[
                (0x28, 0, 0, 0x0000000c),
                (0x15, 0, 16, 0x00000800),
                (0x30, 0, 0, 0x0000000e),
                (0xa4, 0, 0, 0x00000005),
                (0x15, 12, 0, 0x00000001),
                (0x30, 0, 0, 0x0000000e),
                (0x64, 0, 0, 0x00000001),
                (0x15, 9, 0, 0x00000002),
                (0x30, 0, 0, 0x0000000e),
                (0x74, 0, 0, 0x00000001),
                (0x15, 6, 0, 0x00000003),
                (0x30, 0, 0, 0x0000000e),
                (0x44, 0, 0, 0x00000001),
                (0x15, 3, 0, 0x00000009),
                (0x30, 0, 0, 0x0000000e),
                (0x54, 0, 0, 0x00000003),
                (0x15, 0, 1, 0x00000002),
                (0x6, 0, 0, 0x00040000),
                (0x6, 0, 0, 0x00000000),
            ],
            "(000) ldh      [12]\n\
         (001) jeq      #0x800           jt 2\tjf 18\n\
         (002) ldb      [14]\n\
         (003) xor      #0x5\n\
         (004) jeq      #0x1             jt 17\tjf 5\n\
         (005) ldb      [14]\n\
         (006) lsh      #1\n\
         (007) jeq      #0x2             jt 17\tjf 8\n\
         (008) ldb      [14]\n\
         (009) rsh      #1\n\
         (010) jeq      #0x3             jt 17\tjf 11\n\
         (011) ldb      [14]\n\
         (012) or       #0x1\n\
         (013) jeq      #0x9             jt 17\tjf 14\n\
         (014) ldb      [14]\n\
         (015) and      #0x3\n\
         (016) jeq      #0x2             jt 17\tjf 18\n\
         (017) ret      #262144\n\
         (018) ret      #0\n\
        ",
        ),
        // `tcpdump -dd 'ip[0] + ip[1] > 3'` and its `tcpdump -d` text.
        (
            "scratch_add_x",
            &[
                (0x28, 0, 0, 0x0000000c),
                (0x15, 0, 8, 0x00000800),
                (0x30, 0, 0, 0x0000000e),
                (0x2, 0, 0, 0x00000001),
                (0x30, 0, 0, 0x0000000f),
                (0x7, 0, 0, 0x00000003),
                (0x60, 0, 0, 0x00000001),
                (0xc, 0, 0, 0x00000000),
                (0x25, 0, 1, 0x00000003),
                (0x6, 0, 0, 0x00040000),
                (0x6, 0, 0, 0x00000000),
            ],
            "(000) ldh      [12]\n\
         (001) jeq      #0x800           jt 2\tjf 10\n\
         (002) ldb      [14]\n\
         (003) st       M[1]\n\
         (004) ldb      [15]\n\
         (005) tax      \n\
         (006) ld       M[1]\n\
         (007) add      x\n\
         (008) jgt      #0x3             jt 9\tjf 10\n\
         (009) ret      #262144\n\
         (010) ret      #0\n\
        ",
        ),
        // `tcpdump -dd 'ip[1] - ip[0] < 3 and ip[2] >= 4'` and its `tcpdump -d` text.
        (
            "sub_x_jge",
            &[
                (0x28, 0, 0, 0x0000000c),
                (0x15, 0, 10, 0x00000800),
                (0x30, 0, 0, 0x0000000f),
                (0x2, 0, 0, 0x00000001),
                (0x30, 0, 0, 0x0000000e),
                (0x7, 0, 0, 0x00000003),
                (0x60, 0, 0, 0x00000001),
                (0x1c, 0, 0, 0x00000000),
                (0x35, 3, 0, 0x00000003),
                (0x30, 0, 0, 0x00000010),
                (0x35, 0, 1, 0x00000004),
                (0x6, 0, 0, 0x00040000),
                (0x6, 0, 0, 0x00000000),
            ],
            "(000) ldh      [12]\n\
         (001) jeq      #0x800           jt 2\tjf 12\n\
         (002) ldb      [15]\n\
         (003) st       M[1]\n\
         (004) ldb      [14]\n\
         (005) tax      \n\
         (006) ld       M[1]\n\
         (007) sub      x\n\
         (008) jge      #0x3             jt 12\tjf 9\n\
         (009) ldb      [16]\n\
         (010) jge      #0x4             jt 11\tjf 12\n\
         (011) ret      #262144\n\
         (012) ret      #0\n\
        ",
        ),
        // `tcpdump -dd -s 128 'udp'` and its `tcpdump -d` text.
        (
            "udp_snaplen_128",
            &[
                (0x28, 0, 0, 0x0000000c),
                (0x15, 0, 2, 0x00000800),
                (0x30, 0, 0, 0x00000017),
                (0x15, 6, 7, 0x00000011),
                (0x15, 0, 6, 0x000086dd),
                (0x30, 0, 0, 0x00000014),
                (0x15, 3, 0, 0x00000011),
                (0x15, 0, 3, 0x0000002c),
                (0x30, 0, 0, 0x00000036),
                (0x15, 0, 1, 0x00000011),
                (0x6, 0, 0, 0x00000080),
                (0x6, 0, 0, 0x00000000),
            ],
            "(000) ldh      [12]\n\
         (001) jeq      #0x800           jt 2\tjf 4\n\
         (002) ldb      [23]\n\
         (003) jeq      #0x11            jt 10\tjf 11\n\
         (004) jeq      #0x86dd          jt 5\tjf 11\n\
         (005) ldb      [20]\n\
         (006) jeq      #0x11            jt 10\tjf 7\n\
         (007) jeq      #0x2c            jt 8\tjf 11\n\
         (008) ldb      [54]\n\
         (009) jeq      #0x11            jt 10\tjf 11\n\
         (010) ret      #128\n\
         (011) ret      #0\n\
        ",
        ),
    ];

    fn program(raw: &[(u16, u8, u8, u32)]) -> Vec<BpfInsn> {
        raw.iter().map(|&(code, jt, jf, k)| BpfInsn { code, jt, jf, k }).collect()
    }

    #[test]
    fn matches_tcpdump_d() {
        for &(name, raw, text) in CASES {
            assert_eq!(disassemble(&program(raw)), text, "{name}");
        }
    }

    #[test]
    fn covers_every_instruction_kind_named_in_the_brief() {
        let all: Vec<&str> = CASES.iter().map(|c| c.2).collect();
        let joined = all.join("");
        for needle in [
            "ld       #pktlen",
            "ldh      [x + 14]",
            "ldxb     4*(",
            "jset",
            "jgt",
            "jge",
            "sub      x",
            "add      x",
            "mul",
            "div",
            "mod",
            "xor",
            "lsh",
            "rsh",
            "tax",
            "st       M[1]",
            "ret      #128",
        ] {
            assert!(joined.contains(needle), "no case prints {needle:?}");
        }
    }

    #[test]
    fn forms_tcpdump_expressions_do_not_produce() {
        let p = program(&[
            (0x01, 0, 0, 5),           // ldx #0x5
            (0x81, 0, 0, 0),           // ldx #pktlen (BPF_LDX|BPF_W|BPF_LEN)
            (0x84, 0, 0, 0),           // neg
            (0x87, 0, 0, 0),           // txa
            (0x05, 0, 0, 3),           // ja +3
            (0x16, 0, 0, 0),           // ret a
            (0x20, 0, 0, 0xffff_f000), // ld [-4096]: a Linux ancillary load (SKF_AD_OFF)
            (0x03, 0, 0, 2),           // stx M[2]
            (0x61, 0, 0, 3),           // ldx M[3]
            (0x1d, 1, 2, 0),           // jeq x
            (0xff, 0, 0, 0),           // not an opcode
        ]);
        assert_eq!(
            disassemble(&p),
            "(000) ldx      #0x5\n\
             (001) ldx      #pktlen\n\
             (002) neg      \n\
             (003) txa      \n\
             (004) ja       8\n\
             (005) ret      \n\
             (006) ld       [-4096]\n\
             (007) stx      M[2]\n\
             (008) ldx      M[3]\n\
             (009) jeq      x                jt 11\tjf 12\n\
             (010) unimp    0xff\n"
        );
    }

    #[test]
    fn empty_program_is_empty_text() {
        assert_eq!(disassemble(&[]), "");
    }
}
