//! What ss 7.1 added to the command line and what depends on the ss reproduced outside
//! the selection: `--bpf-maps`/`--bpf-map-id` as ss 7.1 parses them, and the terminal
//! width (ss 7.1 falls back to `$COLUMNS`). `--ss-compat`, `-B` and `-Q` are resolved
//! with the other options in the parent module.

use clap::ArgMatches;

use super::{CliError, flag_positions, lossy, values_with_positions};
use crate::render::style::SsCompat;

pub use crate::query::selection::BpfMaps;

/// What the terminal on stdout is wide, as ss's `render_screen_width()`: `None` when
/// stdout is not a terminal or its size is unknown (ss then prints compact columns).
/// ss 7.1 then falls back to `$COLUMNS` (C's `atoi`, used when positive), so `COLUMNS=100
/// ss | less` spreads the columns; `columns` is that variable's value.
#[must_use]
pub fn stdout_screen_width(compat: SsCompat, columns: Option<&std::ffi::OsStr>) -> Option<usize> {
    terminal_width().or_else(|| {
        let text = columns.filter(|_| compat.v7())?.to_string_lossy().into_owned();
        usize::try_from(c_atoi(&text)).ok().filter(|&w| w > 0)
    })
}

fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer, which points to
    // a live, properly aligned local of that type; fd 1 stays open for the call.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &raw mut ws) };
    (rc != -1 && ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

/// C's `atoi`: leading white space, a sign, then decimal digits up to the first other
/// character; 0 when there are none (an out-of-range value clamps here, where C's is
/// undefined).
fn c_atoi(text: &str) -> i32 {
    let t = text.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    let magnitude = digits[..end].bytes().fold(0i64, |v, d| (v * 10 + i64::from(d - b'0')).min(1 << 32));
    let v = if negative { -magnitude } else { magnitude };
    i32::try_from(v).unwrap_or(if negative { i32::MIN } else { i32::MAX })
}

/// `--bpf-maps` and `--bpf-map-id=ID` as ss 7.1 takes them: an id is a C number
/// (`strtoul(.., 0)`: decimal, `0x` hex or `0` octal) from 1 to 2^32-2; the two options
/// exclude each other.
pub(super) fn bpf_map_options(m: &ArgMatches) -> Result<Option<BpfMaps>, CliError> {
    let all = flag_positions(m, "bpf-maps").into_iter().min();
    let ids = values_with_positions(m, "bpf-map-id");
    if let (Some(all_at), Some((id_at, _))) = (all, ids.first()) {
        return Err(CliError::BpfMapOption {
            message: "--bpf-maps and --bpf-map-id cannot be used together".to_owned(),
            // ss returns -1 from main() when --bpf-maps follows an id, and exit(1)s on an
            // id after --bpf-maps.
            status: if all_at > *id_at { 255 } else { 1 },
        });
    }
    if all.is_some() {
        return Ok(Some(BpfMaps::All));
    }
    if ids.is_empty() {
        return Ok(None);
    }
    let mut list = Vec::new();
    for (_, v) in ids {
        let text = lossy(&v);
        let id = crate::filter::c_strtoul(&text).filter(|&id| id != 0 && id < u64::from(u32::MAX));
        let Some(id) = id.and_then(|id| u32::try_from(id).ok()) else {
            return Err(CliError::BpfMapOption { message: format!("invalid BPF map ID {text}"), status: 1 });
        };
        if !list.iter().any(|(known, _)| *known == id) {
            list.push((id, text));
        }
    }
    Ok(Some(BpfMaps::Ids(list)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fall_back_to_the_environment_for_ss_7_1_only() {
        assert_eq!((c_atoi(" 80x"), c_atoi("-3"), c_atoi("x"), c_atoi("+12")), (80, -3, 0, 12));
        // The unit tests' stdout is not a terminal.
        let cols = Some(std::ffi::OsStr::new("100"));
        assert_eq!(stdout_screen_width(SsCompat::V7_1, cols), Some(100));
        assert_eq!(stdout_screen_width(SsCompat::V6_1, cols), None);
        assert_eq!(stdout_screen_width(SsCompat::V7_1, Some(std::ffi::OsStr::new("0"))), None);
        assert_eq!(stdout_screen_width(SsCompat::V7_1, None), None);
    }
}
