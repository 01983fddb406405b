//! `-E`/`--events`: every TCP and UDP socket the kernel destroys, printed as it goes, as
//! iproute2 6.1's `ss -E` prints it (ss.c `handle_follow_request`).
//!
//! The subscription and decoding are the sock_diag layer's ([`DestroyListener`]); which
//! groups to join and which sockets to show are [`query`]'s ([`query::destroy_groups`],
//! [`query::select_event`]); the lines are [`format::EventRenderer`]'s, the same row
//! formatter as a dump's, with ss's per-notification rendering. This module runs the
//! loop: wait for a notification or a signal, print, flush.
//!
//! Differences from ss, on purpose: every notification's output is flushed at once (ss
//! writes through stdio, which a pipe or file buffers in 4 KiB blocks, so a reader sees
//! nothing for a while and the unflushed tail is lost when ss is interrupted); `--json`
//! (sockstat's own) prints one object per notification.

use std::io::{self, Write};

use tokio::io::unix::AsyncFd;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::Options;
use crate::diag::{DestroyListener, DiagError, SockDiag};
use crate::model::socket::InetSocket;
use crate::query;
use crate::render::format::{EventRenderer, Names};

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("following sock_diag destroy notifications")]
    Diag(#[from] DiagError),
    /// `-K`: a SOCK_DESTROY request failed otherwise than "cannot be closed / gone".
    #[error("SOCK_DESTROY answers")]
    Kill(#[source] DiagError),
    #[error("{0}")]
    Io(&'static str, #[source] io::Error),
}

/// Why the loop ended. ss has no signal handler: SIGINT or SIGTERM kills it. The caller
/// does the same once the output is flushed ([`die_by`]), so the exit status is ss's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    Signal(nix::sys::signal::Signal),
    /// The reader of stdout went away (EPIPE).
    BrokenPipe,
}

/// Follows destroy notifications until SIGINT or SIGTERM, printing each shown socket to
/// `out` (flushed per notification). The caller checks first that
/// [`query::destroy_groups`] is not empty.
///
/// # Errors
/// Joining the groups (CAP_NET_ADMIN), receiving or decoding notifications (a lost or
/// malformed one ends the loop, naming the problem), `-K`'s requests, writing.
pub fn run(opts: &Options, names: &Names, out: &mut dyn Write) -> Result<Stopped, EventsError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EventsError::Io("starting the event loop", e))?;
    rt.block_on(follow(opts, names, out))
}

async fn follow(opts: &Options, names: &Names, out: &mut dyn Write) -> Result<Stopped, EventsError> {
    use nix::sys::signal::Signal;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| EventsError::Io("installing a SIGINT handler", e))?;
    let mut sigterm =
        signal(SignalKind::terminate()).map_err(|e| EventsError::Io("installing a SIGTERM handler", e))?;
    let listener = DestroyListener::join(query::destroy_groups(&opts.selection))?;
    // SAFETY: the fd belongs to the listener, which the AsyncFd owns for its whole life:
    // it cannot be closed or reused while registered.
    let mut listener = unsafe { AsyncFd::register(listener) }
        .map_err(|e| EventsError::Io("registering the sock_diag socket", e.into_parts().1))?;
    // -K: ss closes each shown socket with SOCK_DESTROY on a second socket; a destroyed
    // socket is already gone, so the kernel answers ENOENT and ss shows nothing.
    let mut killer = if opts.selection.kill { Some(SockDiag::open()?) } else { None };
    let mut renderer = EventRenderer::new(&opts.style);
    let mut batch = Vec::new();
    loop {
        let mut guard = tokio::select! {
            g = listener.readable_mut() => g.map_err(|e| EventsError::Io("waiting for notifications", e))?,
            _ = sigint.recv() => return Ok(Stopped::Signal(Signal::SIGINT)),
            _ = sigterm.recv() => return Ok(Stopped::Signal(Signal::SIGTERM)),
        };
        batch.clear();
        // One datagram per turn, so a flood of notifications cannot starve the signals.
        if !guard.get_inner_mut().try_recv(&mut batch)? {
            guard.clear_ready();
            continue;
        }
        for s in &batch {
            match show(opts, s, killer.as_mut(), &mut renderer, names, out) {
                Ok(()) => {}
                Err(EventsError::Io(_, e)) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(Stopped::BrokenPipe),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Prints one notification as ss's `generic_show_sock` does (filter, `-K`, render), and
/// flushes.
fn show(
    opts: &Options,
    s: &InetSocket,
    killer: Option<&mut SockDiag>,
    renderer: &mut EventRenderer,
    names: &Names,
    out: &mut dyn Write,
) -> Result<(), EventsError> {
    let mut shown = query::select_event(&opts.selection, s);
    if shown && let Some(diag) = killer {
        // ss names the protocol of a notification's SOCK_DESTROY as `(__u8)IPPROTO_MAX`,
        // i.e. 0, which the kernel answers ENOENT: under -E, -K kills nothing and shows
        // nothing (else a timewait socket that took over the notified socket's tuple and
        // cookie would be killed here but not by ss). The same request, the same answer.
        let named_as_ss = InetSocket { protocol: 0, ext: None, ..s.clone() };
        match diag.destroy_inet(&named_as_ss) {
            Ok(()) => {}
            Err(DiagError::NotSupported { .. }) => shown = false,
            Err(e) => return Err(EventsError::Kill(e)),
        }
    }
    let sock = shown.then_some(s);
    let written = if opts.style.json {
        sock.map_or(Ok(()), |s| crate::render::json::write_inet_event(&opts.style, s, names, out))
    } else {
        renderer.event(&opts.style, sock, names, out)
    };
    written.and_then(|()| out.flush()).map_err(|e| EventsError::Io("writing to stdout", e))
}

/// Ends the process by `signal`, with its default action, as an ss without a handler
/// would end: the parent sees the same wait status. Call with the output flushed.
pub fn die_by(signal: nix::sys::signal::Signal) -> ! {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, sigprocmask};
    // SAFETY: restoring the default disposition installs no handler code; nothing else
    // in this process relies on the handler the event loop installed, which has ended.
    let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
    let mut set = SigSet::empty();
    set.add(signal);
    let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = nix::sys::signal::raise(signal);
    // Not reached for SIGINT/SIGTERM; the shell's convention otherwise.
    std::process::exit(128 + signal as i32)
}
