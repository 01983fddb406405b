//! ss's column grid: the columns (`columns[]`), the two-pass renderer that buffers every
//! field, measures each column (`field_flush()`), computes the widths
//! (`render_calc_width()`, spreading spare width on a terminal) and prints (`render()`).
//! Knows nothing of sockets: rows come in as text. May import only std.
//!
//! Rows are built once for both ss versions: `-p`'s `users:(...)` in [`COL_PROCESS`], the
//! details after them (`-o -e -m -i ...`) in [`COL_LAST`]. ss 6.1 writes both into its
//! "Process" column and leaves the last one empty; ss 7.1 (which swapped `COL_EXT` and
//! `COL_PROC`) keeps them apart, shows the Process column only with `-p` (text written to
//! a hidden column is dropped, as its `out()` drops it) and, when the width is unknown,
//! does not pad the last shown column before the details. [`Grid`] and [`fold_row`] apply
//! the version's rule.

use std::io::{self, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    Right,
}

/// ss.c `columns[]`: alignment, header, left delimiter.
pub(super) struct ColumnSpec {
    align: Align,
    header: &'static str,
    ldelim: &'static str,
}

pub(super) const COL_NETID: usize = 0;

pub(super) const COL_STATE: usize = 1;

pub(super) const COL_RECVQ: usize = 2;

pub(super) const COL_SENDQ: usize = 3;

pub(super) const COL_ADDR: usize = 4;

pub(super) const COL_SERV: usize = 5;

pub(super) const COL_RADDR: usize = 6;

pub(super) const COL_RSERV: usize = 7;

/// Header "Process": `-p`'s `users:(...)` (with ss 6.1, every detail after them too).
/// A netlink row writes its details here in both versions (ss never calls
/// `proc_ctx_print()` for netlink sockets).
pub(super) const COL_PROCESS: usize = 8;

/// The last column, without header: the details after the owners (`-o`, `-e`, `-m`, `-i`
/// ...) as rows are built; ss 6.1 leaves it empty (see [`fold_row`]).
pub(super) const COL_LAST: usize = 9;

pub(super) const COL_MAX: usize = 10;

pub(super) const COLUMNS: [ColumnSpec; COL_MAX] = [
    ColumnSpec { align: Align::Left, header: "Netid", ldelim: "" },
    ColumnSpec { align: Align::Left, header: "State", ldelim: " " },
    ColumnSpec { align: Align::Left, header: "Recv-Q", ldelim: " " },
    ColumnSpec { align: Align::Left, header: "Send-Q", ldelim: " " },
    ColumnSpec { align: Align::Right, header: "Local Address:", ldelim: " " },
    ColumnSpec { align: Align::Left, header: "Port", ldelim: "" },
    ColumnSpec { align: Align::Right, header: "Peer Address:", ldelim: " " },
    ColumnSpec { align: Align::Left, header: "Port", ldelim: "" },
    ColumnSpec { align: Align::Left, header: "Process", ldelim: "" },
    ColumnSpec { align: Align::Left, header: "", ldelim: "" },
];

/// print_header(): every enabled column but the last gets its header.
pub(super) fn header_row() -> [String; COL_MAX] {
    std::array::from_fn(|c| if c == COL_LAST { String::new() } else { COLUMNS[c].header.to_owned() })
}

/// The field of a data row that ss has not flushed when it renders (and so never
/// measures): the one it was writing. ss 6.1 writes a row's tail into its Process column;
/// ss 7.1 moves on to the last column after the owners, except for netlink rows
/// (`ends_in_process`), which never call `proc_ctx_print()`.
pub(super) fn unflushed_after_row(v7: bool, ends_in_process: bool) -> usize {
    if v7 && !ends_in_process { COL_LAST } else { COL_PROCESS }
}

/// A row as ss of that version buffers it: ss 6.1 has the details in the Process field,
/// after the owners, and an empty last field.
pub(super) fn fold_row(row: &mut [String; COL_MAX], v7: bool) {
    if !v7 && !row[COL_LAST].is_empty() {
        let tail = std::mem::take(&mut row[COL_LAST]);
        row[COL_PROCESS].push_str(&tail);
    }
}

/// ss 7.1's `render()`: with no known width (compact output) the last shown column before
/// the details gets no right padding. `None` for ss 6.1 or a known width.
pub(super) fn unpadded_column(v7: bool, disabled: &[bool; COL_MAX], screen_width: Option<usize>) -> Option<usize> {
    if !v7 || screen_width.is_some() {
        return None;
    }
    (0..COL_LAST).rfind(|&c| !disabled[c])
}

/// Pass one of ss's renderer: every line's fields, kept until the widths are known.
///
/// The fields live back to back in one buffer (`text`), each row's ends in `ends`: a
/// query prints 100k rows and more, and a `String` per field made the allocator and the
/// page faults the largest cost of printing them.
pub(super) struct Grid {
    disabled: [bool; COL_MAX],
    /// ss 7.1's rules rather than 6.1's.
    v7: bool,
    /// [`unflushed_after_row`] of the last row pushed.
    last_unflushed: usize,
    text: Vec<u8>,
    /// `COL_MAX` end offsets into `text` per row.
    ends: Vec<usize>,
    /// Whether the last row is a socket (not the header). ss never flushes the last
    /// field it writes, so that row's Process field is not measured: see [`Grid::measure`].
    last_is_data: bool,
}

impl Grid {
    pub(super) fn new(disabled: [bool; COL_MAX], header: bool, v7: bool) -> Self {
        let mut grid =
            Grid { disabled, v7, last_unflushed: COL_PROCESS, text: Vec::new(), ends: Vec::new(), last_is_data: false };
        if header {
            grid.append(&header_row());
        }
        grid
    }

    fn append(&mut self, row: &[String; COL_MAX]) {
        for (c, field) in row.iter().enumerate() {
            // ss 6.1: the details follow the owners in the Process field and the last
            // field stays empty ([`fold_row`], without copying the row).
            match (self.v7, c) {
                (false, COL_LAST) => {}
                (false, COL_PROCESS) => {
                    self.text.extend_from_slice(field.as_bytes());
                    self.text.extend_from_slice(row[COL_LAST].as_bytes());
                }
                _ => self.text.extend_from_slice(field.as_bytes()),
            }
            self.ends.push(self.text.len());
        }
    }

    /// A row of a family whose ss code prints the owners (`proc_ctx_print()`): every
    /// family but netlink.
    pub(super) fn push(&mut self, row: &[String; COL_MAX]) {
        self.append(row);
        self.last_is_data = true;
        self.last_unflushed = unflushed_after_row(self.v7, false);
    }

    /// A netlink row: its details are in [`COL_PROCESS`].
    pub(super) fn push_netlink(&mut self, row: &[String; COL_MAX]) {
        self.append(row);
        self.last_is_data = true;
        self.last_unflushed = unflushed_after_row(self.v7, true);
    }

    fn rows(&self) -> usize {
        self.ends.len() / COL_MAX
    }

    /// Field `c` of row `r`.
    fn field(&self, r: usize, c: usize) -> &[u8] {
        let i = r * COL_MAX + c;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    /// What ss's `field_flush()` measured: each enabled column's longest field.
    fn measure(&self) -> [usize; COL_MAX] {
        let mut max_len = [0usize; COL_MAX];
        let last = self.rows().saturating_sub(1);
        for r in 0..self.rows() {
            // field_flush() measures a field when the next one starts; the field being
            // written when render() runs is never measured (the Process field or the last
            // one after a socket, the last one after the header).
            let unflushed = if r != last {
                COL_MAX
            } else if self.last_is_data {
                self.last_unflushed
            } else {
                COL_LAST
            };
            measure_fields(&mut max_len, |c| self.field(r, c).len(), &self.disabled, unflushed);
        }
        max_len
    }

    /// `render()`: pass two.
    pub(super) fn write(&self, screen_width: Option<usize>, out: &mut dyn Write) -> io::Result<()> {
        if self.rows() == 0 {
            return Ok(());
        }
        let width = widths(&self.measure(), &self.disabled, screen_width);
        let unpadded = unpadded_column(self.v7, &self.disabled, screen_width);
        write_rows(self.rows(), |r, c| self.field(r, c), &self.disabled, &width, unpadded, out)
    }
}

/// Adds the lengths of `row`'s enabled fields before column `unflushed` to `max_len`.
pub(super) fn measure_row(
    max_len: &mut [usize; COL_MAX],
    row: &[String; COL_MAX],
    disabled: &[bool; COL_MAX],
    unflushed: usize,
) {
    measure_fields(max_len, |c| row[c].len(), disabled, unflushed);
}

/// [`measure_row`] with each field's length given by `len(column)`.
pub(super) fn measure_fields(
    max_len: &mut [usize; COL_MAX],
    len: impl Fn(usize) -> usize,
    disabled: &[bool; COL_MAX],
    unflushed: usize,
) {
    for c in (0..unflushed).filter(|&c| !disabled[c]) {
        max_len[c] = max_len[c].max(len(c));
    }
}

/// `render_calc_width()` from the measured lengths. Widths are in bytes, as ss counts them.
pub(super) fn widths(
    max_len: &[usize; COL_MAX],
    disabled: &[bool; COL_MAX],
    screen_width: Option<usize>,
) -> [usize; COL_MAX] {
    let screen = screen_width.unwrap_or(usize::MAX);
    let mut width = [0usize; COL_MAX];
    let mut first = true;
    for c in (0..COL_MAX).filter(|&c| !disabled[c]) {
        width[c] = if !first && max_len[c] > 0 { max_len[c] + COLUMNS[c].ldelim.len() } else { max_len[c] };
        // A field wider than the screen starts its own line and wraps.
        width[c] = width[c].min(screen);
        if width[c] > 0 {
            first = false;
        }
    }
    if screen_width.is_some() {
        spread(&mut width, screen);
    }
    width
}

/// `render()`'s printing loop: `rows` rows, field `(row, column)` given by `field`, each
/// enabled field padded to its width but column `unpadded` ([`unpadded_column`]).
pub(super) fn write_rows<'a>(
    rows: usize,
    field: impl Fn(usize, usize) -> &'a [u8],
    disabled: &[bool; COL_MAX],
    width: &[usize; COL_MAX],
    unpadded: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut text = Vec::new();
    for r in 0..rows {
        let mut line_started = false;
        for c in (0..COL_MAX).filter(|&c| !disabled[c]) {
            let spec = &COLUMNS[c];
            let field = field(r, c);
            // The delimiter is printed even for a zero-width column, as ss does.
            let mut printed = 0;
            if line_started {
                text.extend_from_slice(spec.ldelim.as_bytes());
                printed = spec.ldelim.len();
            }
            line_started = true;
            if width[c] > 0 && spec.align == Align::Right {
                let pad = width[c].saturating_sub(field.len() + printed);
                text.resize(text.len() + pad, b' ');
                printed += pad;
            }
            text.extend_from_slice(field);
            printed += field.len();
            if width[c] > 0 && spec.align == Align::Left && unpadded != Some(c) {
                text.resize(text.len() + width[c].saturating_sub(printed), b' ');
            }
        }
        text.push(b'\n');
    }
    out.write_all(&text)
}

/// The second pass of `render_calc_width()`, for a terminal `screen` columns wide: break
/// the columns into lines that fit and spread each line's spare width over its columns,
/// the remainder going to the rightmost ones first.
pub(super) fn spread(width: &mut [usize; COL_MAX], screen: usize) {
    // `eol` is one past the last column of the previous line (ss keeps a pointer to it).
    let mut eol = 0;
    let mut len = 0;
    let mut linecols = 0;
    let mut c = 0;
    while c < COL_MAX {
        if width[c] == 0 {
            c += 1;
            continue;
        }
        linecols += 1;
        len += width[c];
        let last = !width[c + 1..].iter().any(|&w| w > 0);
        if !last && len < screen {
            c += 1;
            continue;
        }
        if len != screen {
            let mut end = c;
            if len > screen {
                // This column does not fit: end the line before it and retry it on the next.
                len -= width[c];
                linecols -= 1;
                end = c.saturating_sub(1);
            }
            let pad = screen - len;
            // linecols is never 0 here (a column is never wider than the screen), but a
            // division must not be able to panic.
            if let (Some(spacing), Some(mut rem)) = (pad.checked_div(linecols), pad.checked_rem(linecols)) {
                for w in width[eol..=end].iter_mut().rev().filter(|w| **w > 0) {
                    *w += spacing;
                    if rem > 0 {
                        *w += 1;
                        rem -= 1;
                    }
                }
            }
            c = end;
        }
        eol = c + 1;
        len = 0;
        linecols = 0;
        c += 1;
    }
}
