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

/// Where a row's text goes, field by field in column order: a [`Grid`] being filled
/// ([`Grid::row`]) or one row's fields ([`FieldsRow`]).
pub(super) trait RowSink {
    /// The text of the field being written (appended to).
    fn field(&mut self) -> &mut String;
    /// Ends the field being written; the next column's starts.
    fn next_field(&mut self);
}

/// A row as `[String; COL_MAX]` written through [`RowSink`] (`-E`'s rows, tests).
pub(super) struct FieldsRow<'a> {
    row: &'a mut [String; COL_MAX],
    col: usize,
}

impl<'a> FieldsRow<'a> {
    /// Clears `row` and starts writing its first field.
    pub(super) fn new(row: &'a mut [String; COL_MAX]) -> Self {
        for field in row.iter_mut() {
            field.clear();
        }
        FieldsRow { row, col: 0 }
    }
}

impl RowSink for FieldsRow<'_> {
    fn field(&mut self) -> &mut String {
        &mut self.row[self.col.min(COL_MAX - 1)]
    }

    fn next_field(&mut self) {
        self.col += 1;
    }
}

/// Pass one of ss's renderer: every line's fields, kept until the widths are known.
///
/// The fields live back to back in one buffer (`text`), each one's length in `lens`: a
/// query prints 100k rows and more, and a `String` per field made the allocator and the
/// page faults the largest cost of printing them. A big grid is built in parts, one per
/// thread ([`Grid::part`]), measured and printed as one ([`GridParts`]).
pub(super) struct Grid {
    disabled: [bool; COL_MAX],
    /// ss 7.1's rules rather than 6.1's.
    v7: bool,
    /// [`unflushed_after_row`] of the last row pushed.
    last_unflushed: usize,
    text: String,
    /// `COL_MAX` field lengths per row. A field is one socket's text, far below 4 GiB.
    lens: Vec<u32>,
    /// Whether the last row is a socket (not the header). ss never flushes the last
    /// field it writes, so that row's Process field is not measured: see [`Grid::measure`].
    last_is_data: bool,
    /// Whether this grid's last row is the last one printed: not so for a part that other
    /// parts follow, whose every field ss flushed.
    ends_output: bool,
    /// Where in `text` each block of [`BLOCK_ROWS`] rows starts, the first excepted.
    block_starts: Vec<usize>,
}

/// Rows printed as one piece (about 150 KiB of `-tan` text), by one thread.
const BLOCK_ROWS: usize = 2048;

/// Bytes of text a row is expected to take before any is written, to size buffers once.
const ROW_BYTES_GUESS: usize = 64;

impl Grid {
    /// A grid (or a part of one) sized for `rows` rows; `ends_output` if its last row is
    /// the last printed.
    pub(super) fn part(disabled: [bool; COL_MAX], header: bool, v7: bool, rows: usize, ends_output: bool) -> Self {
        let rows = rows + usize::from(header);
        let mut grid = Grid {
            disabled,
            v7,
            last_unflushed: COL_PROCESS,
            text: String::with_capacity(rows * ROW_BYTES_GUESS),
            lens: Vec::with_capacity(rows * COL_MAX),
            last_is_data: false,
            ends_output,
            block_starts: Vec::with_capacity(rows / BLOCK_ROWS + 1),
        };
        if header {
            grid.append(&header_row());
        }
        grid
    }

    /// Empties the grid for the next block of rows, keeping its buffers: `header` if the
    /// block starts the output, `ends_output` if its last row ends it.
    fn reset(&mut self, header: bool, ends_output: bool) {
        self.text.clear();
        self.lens.clear();
        self.block_starts.clear();
        self.last_is_data = false;
        self.last_unflushed = COL_PROCESS;
        self.ends_output = ends_output;
        if header {
            self.append(&header_row());
        }
    }

    fn append(&mut self, row: &[String; COL_MAX]) {
        let mut sink = self.row();
        for field in row {
            sink.field().push_str(field);
            sink.next_field();
        }
    }

    /// Starts a row, written field by field through the [`RowSink`]; the row ends when the
    /// writer is dropped (fields not ended are empty). Call [`Grid::end_row`] after.
    pub(super) fn row(&mut self) -> GridRow<'_> {
        let start = self.text.len();
        GridRow { grid: self, row_start: start, start, col: 0, lens: [0; COL_MAX] }
    }

    /// Marks the row just written as a socket's: `ends_in_process` for a netlink row, whose
    /// details are in [`COL_PROCESS`] (its ss code never calls `proc_ctx_print()`).
    pub(super) fn end_row(&mut self, ends_in_process: bool) {
        self.last_is_data = true;
        self.last_unflushed = unflushed_after_row(self.v7, ends_in_process);
    }

    /// A row of a family whose ss code prints the owners (`proc_ctx_print()`): every
    /// family but netlink.
    pub(super) fn push(&mut self, row: &[String; COL_MAX]) {
        self.append(row);
        self.end_row(false);
    }

    /// A netlink row: its details are in [`COL_PROCESS`].
    pub(super) fn push_netlink(&mut self, row: &[String; COL_MAX]) {
        self.append(row);
        self.end_row(true);
    }

    fn rows(&self) -> usize {
        self.lens.len() / COL_MAX
    }

    /// What ss's `field_flush()` measured: each enabled column's longest field.
    fn measure(&self) -> [usize; COL_MAX] {
        let mut max_len = [0usize; COL_MAX];
        if self.rows() == 0 {
            return max_len;
        }
        // field_flush() measures a field when the next one starts; the field being
        // written when render() runs is never measured (the Process field or the last
        // one after a socket, the last one after the header).
        let (body, last) =
            if self.ends_output { self.lens.split_at(self.lens.len() - COL_MAX) } else { (&self.lens[..], &[][..]) };
        let mut max = [0u32; COL_MAX];
        for row in body.chunks_exact(COL_MAX) {
            for (m, &len) in max.iter_mut().zip(row) {
                *m = (*m).max(len);
            }
        }
        measure_fields(&mut max_len, |c| max[c] as usize, &self.disabled, COL_MAX);
        if !last.is_empty() {
            let unflushed = if self.last_is_data { self.last_unflushed } else { COL_LAST };
            measure_fields(&mut max_len, |c| last[c] as usize, &self.disabled, unflushed);
        }
        max_len
    }

    /// The blocks of rows printed as one piece: `(first row, its offset in the text)`.
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        std::iter::once((0, 0))
            .chain(self.block_starts.iter().enumerate().map(|(i, &at)| ((i + 1) * BLOCK_ROWS, at)))
            .filter(|&(row, _)| row < self.rows())
    }

    /// Pass two for the block of rows starting at `row` (at `offset` in the text), with
    /// the widths of the whole output, appended to `out`.
    fn write_block(&self, layout: &Layout, (row, offset): (usize, usize), out: &mut Chunk) {
        let text = self.text.as_bytes();
        let rows = row..self.rows().min(row + BLOCK_ROWS);
        let mut start = offset;
        for lens in self.lens[rows.start * COL_MAX..rows.end * COL_MAX].chunks_exact(COL_MAX) {
            let lens: &[u32; COL_MAX] = lens.try_into().unwrap_or(&[0; COL_MAX]);
            layout.line_from(out, text, start, lens);
            start += lens.iter().map(|&l| l as usize).sum::<usize>();
        }
    }
}

/// The writer of one row of a [`Grid`] ([`Grid::row`]).
pub(super) struct GridRow<'a> {
    grid: &'a mut Grid,
    row_start: usize,
    /// Where the field being written starts in the grid's text.
    start: usize,
    col: usize,
    lens: [u32; COL_MAX],
}

impl RowSink for GridRow<'_> {
    #[inline]
    fn field(&mut self) -> &mut String {
        &mut self.grid.text
    }

    #[inline]
    fn next_field(&mut self) {
        // ss 6.1: the details follow the owners in the Process field and the last field
        // stays empty ([`fold_row`], without copying anything).
        if self.col >= COL_MAX || (self.col == COL_PROCESS && !self.grid.v7) {
            self.col += 1;
            return;
        }
        let end = self.grid.text.len();
        let field = if self.col == COL_LAST && !self.grid.v7 { COL_PROCESS } else { self.col };
        // A field is one socket's text, far below 4 GiB.
        self.lens[field] = u32::try_from(end - self.start).unwrap_or(u32::MAX);
        self.start = end;
        self.col += 1;
    }
}

impl Drop for GridRow<'_> {
    fn drop(&mut self) {
        while self.col < COL_MAX {
            self.next_field();
        }
        let grid = &mut *self.grid;
        // Nothing is written after the last field.
        grid.text.truncate(self.start);
        if grid.lens.len().is_multiple_of(BLOCK_ROWS * COL_MAX) && !grid.lens.is_empty() {
            grid.block_starts.push(self.row_start);
        }
        grid.lens.extend_from_slice(&self.lens);
    }
}

/// The output is handed to the writer in pieces of about this size: large writes, and a
/// buffer that stays in the cache instead of one the size of the whole output.
const CHUNK: usize = 256 * 1024;

/// A grid built in parts (in order), measured and printed as one.
pub(super) struct GridParts<'a> {
    pub(super) parts: &'a [Grid],
}

impl GridParts<'_> {
    /// `render()` over every part: the widths come from all of them. The rows are printed
    /// block by block, in order; with several parts, every other block is printed on a
    /// second thread, a few blocks ahead at most.
    pub(super) fn write(&self, screen_width: Option<usize>, out: &mut dyn Write) -> io::Result<()> {
        let Some(first) = self.parts.first() else { return Ok(()) };
        if self.parts.iter().all(|p| p.rows() == 0) {
            return Ok(());
        }
        let mut max_len = [0usize; COL_MAX];
        for part in self.parts {
            for (m, l) in max_len.iter_mut().zip(part.measure()) {
                *m = (*m).max(l);
            }
        }
        let width = widths(&max_len, &first.disabled, screen_width);
        let unpadded = unpadded_column(first.v7, &first.disabled, screen_width);
        let layout = Layout::new(&first.disabled, &width, unpadded);
        let blocks: Vec<(&Grid, (usize, usize))> =
            self.parts.iter().flat_map(|part| part.blocks().map(move |b| (part, b))).collect();
        let bound = self.parts.iter().map(|p| p.text.len() + p.rows() * (layout.padding_bound() + 1)).sum::<usize>();
        let chunk = Chunk::for_output(bound);
        let print = |_: &mut (), i: usize, chunk: &mut Chunk| {
            let (part, block) = blocks[i];
            part.write_block(&layout, block, chunk);
        };
        let second = (self.parts.len() > 1).then_some(());
        print_in_turns(blocks.len(), ((), second), &print, chunk, out)
    }
}

/// A grid whose rows are never kept whole: pass one measures each row from its fields'
/// lengths alone (`lens`), pass two builds the rows block by block and prints each block.
/// For the largest outputs (100k rows and more) this touches a few hundred KiB instead of
/// the whole text and its lengths (tens of MiB, each page of it fresh memory the kernel
/// zeroes first).
pub(super) struct StreamedGrid {
    pub(super) disabled: [bool; COL_MAX],
    pub(super) v7: bool,
    pub(super) header: bool,
    /// Rows (the header not counted).
    pub(super) rows: usize,
    /// Threads measuring and building rows: 1 or 2.
    pub(super) threads: usize,
}

/// Rows per block of a [`StreamedGrid`]: block `b` holds rows `STREAMED_BLOCK * b` on.
pub(super) const STREAMED_BLOCK: usize = BLOCK_ROWS;

impl StreamedGrid {
    /// `render()` of the rows `build(b, grid)` pushes for each block `b`, row `i` of which
    /// has fields `lens(i, scratch)` bytes long (as [`GridRow`] would count them before
    /// ss 6.1's fold): the same text as one [`Grid`] holding every row.
    pub(super) fn write(
        &self,
        lens: &(dyn Fn(usize, &mut String) -> [usize; COL_MAX] + Sync),
        build: &(dyn Fn(usize, &mut Grid) + Sync),
        screen_width: Option<usize>,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let (rows, v7, disabled) = (self.rows, self.v7, &self.disabled);
        let blocks = rows.div_ceil(STREAMED_BLOCK).max(usize::from(self.header));
        if blocks == 0 {
            return Ok(());
        }
        // Pass one: what Grid::measure() finds, row by row, each thread over a run.
        let measure = |run: std::ops::Range<usize>| {
            let mut max_len = [0usize; COL_MAX];
            let mut scratch = String::new();
            for i in run {
                let mut l = lens(i, &mut scratch);
                if !v7 {
                    l[COL_PROCESS] += std::mem::take(&mut l[COL_LAST]);
                }
                // The last field of the last row is never flushed, so never measured.
                let unflushed = if i + 1 == rows { unflushed_after_row(v7, false) } else { COL_MAX };
                measure_fields(&mut max_len, |c| l[c], disabled, unflushed);
            }
            max_len
        };
        let threads = self.threads.clamp(1, rows.max(1));
        let runs: Vec<std::ops::Range<usize>> =
            (0..threads).map(|i| rows * i / threads..rows * (i + 1) / threads).collect();
        let mut max_len = [0usize; COL_MAX];
        if self.header {
            let h = header_row();
            measure_fields(&mut max_len, |c| h[c].len(), disabled, if rows == 0 { COL_LAST } else { COL_MAX });
        }
        for m in crate::threads::each_on_a_thread(runs, measure) {
            for (a, l) in max_len.iter_mut().zip(m) {
                *a = (*a).max(l);
            }
        }
        let width = widths(&max_len, disabled, screen_width);
        let layout = Layout::new(disabled, &width, unpadded_column(v7, disabled, screen_width));
        let new_grid = || Grid::part(self.disabled, false, v7, STREAMED_BLOCK, false);
        let print = |grid: &mut Grid, b: usize, chunk: &mut Chunk| {
            grid.reset(b == 0 && self.header, b + 1 == blocks);
            build(b, grid);
            for block in grid.blocks() {
                grid.write_block(&layout, block, chunk);
            }
        };
        // Pass two: blocks printed in order, each thread building rows in a grid of its own.
        let second = (threads > 1).then(new_grid);
        // No line is longer than every column's longest field and the padding.
        let line_bound = max_len.iter().sum::<usize>() + layout.padding_bound();
        let chunk = Chunk::for_output((rows + usize::from(self.header)).saturating_mul(line_bound));
        print_in_turns(blocks, (new_grid(), second), &print, chunk, out)
    }
}

/// Prints blocks `0..blocks` in order, block `b` written by `print(state, b, chunk)`: on
/// this thread, or with a `second` state every other block on a second thread, a few
/// blocks ahead at most.
fn print_in_turns<S: Send>(
    blocks: usize,
    (mut first, second): (S, Option<S>),
    print: &(dyn Fn(&mut S, usize, &mut Chunk) + Sync),
    mut chunk: Chunk,
    out: &mut dyn Write,
) -> io::Result<()> {
    let Some(mut theirs_state) = second.filter(|_| blocks > 1) else {
        for b in 0..blocks {
            print(&mut first, b, &mut chunk);
            if chunk.len >= CHUNK {
                chunk.drain_to(out)?;
            }
        }
        return chunk.drain_to(out);
    };
    std::thread::scope(|scope| {
        // Blocks printed by the second thread, in order, and the buffers coming back.
        let (done, printed) = std::sync::mpsc::sync_channel::<Chunk>(AHEAD);
        let (give_back, returned) = std::sync::mpsc::channel::<Chunk>();
        scope.spawn(move || {
            for b in (1..blocks).step_by(2) {
                let mut chunk = returned.try_recv().unwrap_or_else(|_| Chunk::new());
                chunk.len = 0;
                print(&mut theirs_state, b, &mut chunk);
                if done.send(chunk).is_err() {
                    // The printing stopped (a write error).
                    return;
                }
            }
        });
        for b in 0..blocks {
            if b % 2 == 0 {
                print(&mut first, b, &mut chunk);
                chunk.drain_to(out)?;
            } else {
                let mut theirs = printed.recv().map_err(|_| io::Error::other("a rendering thread stopped"))?;
                theirs.drain_to(out)?;
                // The thread may have finished: then the buffer is not needed.
                let _ = give_back.send(theirs);
            }
        }
        Ok(())
    })
}

/// Blocks the second thread may have printed before they are written.
const AHEAD: usize = 3;

/// A buffer of printed lines, kept initialised so that short fields and padding can be
/// copied in fixed-size pieces (which compile to a few stores rather than a `memcpy`
/// call each): a line is only written where [`SLACK`] bytes follow its longest form.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

/// The fixed size of the pieces [`Chunk`] copies.
const PIECE: usize = 16;

/// Bytes beyond a line's longest form that [`Chunk`] keeps writable.
const SLACK: usize = 2 * SPACES.len();

const SPACES: [u8; 32] = [b' '; 32];

impl Chunk {
    /// A buffer for a whole output's worth of [`CHUNK`]s.
    fn new() -> Self {
        Self::with_len(CHUNK + CHUNK / 4)
    }

    /// A buffer for an output of at most `bound` bytes: a small output gets a small
    /// buffer (the whole one is zeroed first), a large one [`Chunk::new`]'s and the slack.
    fn for_output(bound: usize) -> Self {
        Self::with_len(bound.min(CHUNK + CHUNK / 4) + SLACK)
    }

    fn with_len(len: usize) -> Self {
        Chunk { buf: vec![0; len], len: 0 }
    }

    /// Room for `n` more bytes and the slack.
    #[inline]
    fn reserve(&mut self, n: usize) {
        if self.len + n + SLACK > self.buf.len() {
            self.buf.resize(self.len + n + SLACK, 0);
        }
    }

    /// Appends `text[start..start + len]`.
    #[inline]
    fn put(&mut self, text: &[u8], start: usize, len: usize) {
        match (text.get(start..start + PIECE), self.buf.get_mut(self.len..self.len + PIECE)) {
            (Some(src), Some(dst)) if len <= PIECE => dst.copy_from_slice(src),
            _ => self.buf[self.len..self.len + len].copy_from_slice(&text[start..start + len]),
        }
        self.len += len;
    }

    /// Appends `n` spaces.
    #[inline]
    fn spaces(&mut self, n: usize) {
        match self.buf.get_mut(self.len..self.len + SPACES.len()) {
            Some(dst) if n <= SPACES.len() => dst.copy_from_slice(&SPACES),
            _ => self.buf[self.len..self.len + n].fill(b' '),
        }
        self.len += n;
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn drain_to(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.buf[..self.len])?;
        self.len = 0;
        Ok(())
    }
}

/// The printing of a line: each enabled column's delimiter, width and padding.
pub(super) struct Layout {
    cols: Vec<LayoutColumn>,
    /// [`Layout::padding_bound`].
    padding: usize,
}

struct LayoutColumn {
    col: usize,
    /// Whether a space comes first (every delimiter is one space or none).
    ldelim: bool,
    width: usize,
    /// Spaces before the field up to the width (right-aligned columns).
    pad_before: bool,
    /// Spaces after the field up to the width (left-aligned columns but an unpadded one).
    pad_after: bool,
}

impl Layout {
    /// The line layout for the columns not `disabled`, `width` wide, column `unpadded`
    /// ([`unpadded_column`]) without right padding.
    pub(super) fn new(disabled: &[bool; COL_MAX], width: &[usize; COL_MAX], unpadded: Option<usize>) -> Self {
        let mut cols = Vec::with_capacity(COL_MAX);
        for c in (0..COL_MAX).filter(|&c| !disabled[c]) {
            let spec = &COLUMNS[c];
            cols.push(LayoutColumn {
                col: c,
                // The delimiter is printed even for a zero-width column, as ss does, but
                // not before the first column.
                ldelim: !cols.is_empty() && spec.ldelim == " ",
                width: width[c],
                pad_before: width[c] > 0 && spec.align == Align::Right,
                pad_after: width[c] > 0 && spec.align == Align::Left && unpadded != Some(c),
            });
        }
        let mut layout = Layout { cols, padding: 0 };
        layout.padding = layout.padding_bound();
        layout
    }

    /// The most bytes a line adds to its fields' text: delimiters, padding, newline.
    fn padding_bound(&self) -> usize {
        self.cols.iter().map(|c| usize::from(c.ldelim) + c.width).sum::<usize>() + 1
    }

    /// Appends one line whose fields are `text` from `start` on, `lens` long.
    #[inline]
    fn line_from(&self, out: &mut Chunk, text: &[u8], start: usize, lens: &[u32; COL_MAX]) {
        let mut starts = [0usize; COL_MAX];
        let mut at = start;
        for (s, &len) in starts.iter_mut().zip(lens) {
            *s = at;
            at += len as usize;
        }
        out.reserve(at - start + self.padding);
        for col in &self.cols {
            let len = lens[col.col] as usize;
            if col.ldelim {
                out.byte(b' ');
            }
            let mut printed = usize::from(col.ldelim);
            if col.pad_before {
                let pad = col.width.saturating_sub(len + printed);
                out.spaces(pad);
                printed += pad;
            }
            out.put(text, starts[col.col], len);
            printed += len;
            if col.pad_after {
                out.spaces(col.width.saturating_sub(printed));
            }
        }
        out.byte(b'\n');
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
    let layout = Layout::new(disabled, width, unpadded);
    // A few lines (`-E` prints one at a time): grown as needed.
    let mut chunk = Chunk::with_len(4096);
    let mut text = Vec::new();
    for r in 0..rows {
        text.clear();
        let mut lens = [0u32; COL_MAX];
        for (c, len) in lens.iter_mut().enumerate() {
            let field = field(r, c);
            text.extend_from_slice(field);
            *len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        }
        layout.line_from(&mut chunk, &text, 0, &lens);
    }
    chunk.drain_to(out)
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
