//! Standard output written by a thread of its own, for `trace`: the thread that drains
//! the ring buffer hands finished text over and goes back to draining, so a reader that
//! stalls for a while (a pipe whose reader is busy) costs memory, not events. Only when
//! [`QUEUE_BYTES`] of text wait does the drain wait too (and the ring may then overflow,
//! which is counted and reported).

use std::{
    io::{self, Write},
    sync::{
        Arc, Mutex,
        mpsc::{self, SyncSender},
    },
    thread::JoinHandle,
};

/// Text is handed over in chunks of about this size.
const CHUNK: usize = 256 * 1024;
/// At most this much text waits for the writer (in chunks).
pub const QUEUE_BYTES: usize = 256 * 1024 * 1024;

pub struct QueuedStdout {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    writer: Option<JoinHandle<()>>,
    /// The writer's error (its kind and text), once it met one; it writes nothing after.
    failed: Arc<Mutex<Option<(io::ErrorKind, String)>>>,
}

impl QueuedStdout {
    /// Starts the writer thread.
    ///
    /// # Errors
    /// The thread could not be started.
    pub fn start() -> io::Result<QueuedStdout> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUE_BYTES / CHUNK);
        let failed = Arc::new(Mutex::new(None));
        let seen = Arc::clone(&failed);
        let writer = std::thread::Builder::new().name("trace-stdout".into()).spawn(move || {
            let mut out = io::stdout().lock();
            for chunk in rx {
                if let Err(e) = out.write_all(&chunk).and_then(|()| out.flush()) {
                    if let Ok(mut f) = seen.lock() {
                        *f = Some((e.kind(), e.to_string()));
                    }
                    return;
                }
            }
        })?;
        Ok(QueuedStdout { buf: Vec::with_capacity(CHUNK), tx: Some(tx), writer: Some(writer), failed })
    }

    fn error(&self) -> Option<io::Error> {
        let f = self.failed.lock().ok()?;
        f.as_ref().map(|(kind, text)| io::Error::new(*kind, text.clone()))
    }

    /// Hands what is buffered to the writer.
    fn hand_over(&mut self) -> io::Result<()> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let tx = self.tx.as_ref().ok_or_else(|| io::Error::other("stdout already closed"))?;
        // The writer stopped (after an error, read above on the next call).
        tx.send(chunk).map_err(|_| self.error().unwrap_or_else(|| io::Error::other("stdout writer stopped")))
    }

    /// Writes everything handed over, and stops the writer.
    ///
    /// # Errors
    /// What writing met (a reader gone: `BrokenPipe`).
    pub fn finish(mut self) -> io::Result<()> {
        self.hand_over()?;
        drop(self.tx.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        self.error().map_or(Ok(()), Err)
    }
}

impl Write for QueuedStdout {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.hand_over()?;
        }
        Ok(data.len())
    }

    /// Hands the buffer to the writer (no system call here).
    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()
    }
}
