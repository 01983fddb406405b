//! `-E`: the grid driven one notification at a time, with the column widths carried over
//! from one render to the next. May import `model`, `names` and the rest of `render`.

use std::io::{self, Write};

use crate::model::socket::InetSocket;
use crate::names::system::{Names, PortKind};
use crate::render::format::disabled_columns;
use crate::render::grid::{
    COL_LAST, COL_MAX, fold_row, header_row, measure_row, unflushed_after_row, unpadded_column, widths, write_rows,
};
use crate::render::inet::inet_row;
use crate::render::labels::netid_name;
use crate::render::style::Style;

/// `-E`: ss's renderer as `handle_follow_request` drives it, one notification at a time.
///
/// ss.c's `generic_show_sock` calls `render()` after every notification, so each socket
/// is printed as it comes, with the widths of the columns so far: `render()` frees the
/// buffered fields but never resets the columns' measured lengths (`max_len`), so a
/// column only ever widens. `print_header()` only buffers the header (and measures it):
/// it is printed by the first render, with the first notification's line, or alone when
/// that notification is not shown. The field still open when a render runs is never
/// measured: after a socket that is the Process column (`-e`/`-o`/`-m`/`-i` text), whose
/// width therefore stays the header's ("Process", or 0 with `-H`).
#[derive(Debug)]
pub struct EventRenderer {
    disabled: [bool; COL_MAX],
    max_len: [usize; COL_MAX],
    /// The header line, buffered until the first render.
    header: Option<[String; COL_MAX]>,
    screen_width: Option<usize>,
    /// ss 7.1's grid rules rather than 6.1's.
    v7: bool,
}

impl EventRenderer {
    /// The renderer for `opts` (columns, header, terminal width), header not yet printed.
    #[must_use]
    pub fn new(opts: &Style) -> Self {
        let disabled = disabled_columns(opts);
        let mut max_len = [0; COL_MAX];
        let header = opts.show_header.then(header_row);
        if let Some(h) = &header {
            // print_header() flushes every header field but the last.
            measure_row(&mut max_len, h, &disabled, COL_LAST);
        }
        EventRenderer { disabled, max_len, header, screen_width: opts.screen_width, v7: opts.compat.v7() }
    }

    /// What ss prints for one notification: the pending header (if any), then `sock`'s
    /// line(s), formatted as a dump's row (`None`: a notification that is not shown, which
    /// still renders the pending header). The Netid is the notification's protocol; ports
    /// are named from /etc/services whatever their protocol (ss's `dg_proto` is never set
    /// on this path: `getservbyport(port, NULL)`).
    ///
    /// # Errors
    /// Any error writing to `out`.
    pub fn event(
        &mut self,
        opts: &Style,
        sock: Option<&InetSocket>,
        names: &Names,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let mut rows = Vec::with_capacity(2);
        rows.extend(self.header.take());
        if let Some(s) = sock {
            let mut row = inet_row(opts, s, names, netid_name(s.protocol), PortKind::Any);
            fold_row(&mut row, self.v7);
            measure_row(&mut self.max_len, &row, &self.disabled, unflushed_after_row(self.v7, false));
            rows.push(row);
        }
        if rows.is_empty() {
            return Ok(());
        }
        let width = widths(&self.max_len, &self.disabled, self.screen_width);
        let unpadded = unpadded_column(self.v7, &self.disabled, self.screen_width);
        write_rows(rows.len(), |r, c| rows[r][c].as_bytes(), &self.disabled, &width, unpadded, out)
    }
}
