//! File and stdout outputs: one message per line, one write and flush per batch. They run on a
//! blocking thread (plain `std` I/O); "delivered" means written and flushed to the OS.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::rotate::RotatingFile;
use super::syslog::encoder::{Encoded, FrameEncoder};
use super::{Batch, OutputStats, publish_progress};
use crate::net::backoff::Backoff;

/// After the input has ended, how long a failing sink is retried before giving up.
const GIVE_UP_AFTER_CLOSE: Duration = Duration::from_secs(10);

pub(crate) enum LineSink {
    File(RotatingFile),
    Stdout,
}

impl LineSink {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            LineSink::File(f) => f.write_all(bytes),
            LineSink::Stdout => {
                let mut out = std::io::stdout().lock();
                let written = out.write_all(bytes).and_then(|()| out.flush());
                if written
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
                {
                    reader_gone();
                }
                written
            }
        }
    }
}

/// Standard output is a pipe whose reader has exited (`estreamer-cef demo | head`): nobody will
/// read another line, so retrying is pointless. End the program at once, as the default SIGPIPE
/// action would, but with exit status 0 (the reader's choice, not an error; one-shot commands
/// treat a broken pipe the same way). Rust ignores SIGPIPE, so sockets only see EPIPE: the
/// network outputs keep their reconnect logic and are not affected.
fn reader_gone() -> ! {
    std::process::exit(0)
}

pub(crate) struct LineOutput {
    pub name: String,
    pub sink: LineSink,
    pub encoder: FrameEncoder,
}

impl LineOutput {
    pub(crate) fn run_blocking(
        mut self,
        mut rx: mpsc::Receiver<Arc<Batch>>,
        progress: watch::Sender<u64>,
        stats: Arc<OutputStats>,
    ) {
        let mut buf = Vec::with_capacity(64 * 1024);
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        stats.up.store(true, Ordering::Relaxed);
        while let Some(batch) = rx.blocking_recv() {
            buf.clear();
            self.encoder.set_time(SystemTime::now());
            let mut lines = 0u64;
            for ev in &batch.events {
                match self.encoder.encode(ev, &mut buf) {
                    Encoded::Framed {
                        truncated,
                        newlines_replaced,
                    } => {
                        lines += 1;
                        if truncated {
                            stats.truncated.fetch_add(1, Ordering::Relaxed);
                        }
                        stats
                            .newlines_replaced
                            .fetch_add(newlines_replaced as u64, Ordering::Relaxed);
                    }
                    Encoded::Dropped => {
                        stats.dropped_oversize.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if !buf.is_empty() && !self.write_with_retry(&buf, &rx, &stats, &mut backoff) {
                break;
            }
            stats.sent.fetch_add(lines, Ordering::Relaxed);
            stats.acknowledged.fetch_add(lines, Ordering::Relaxed);
            stats.delivered.fetch_add(lines, Ordering::Relaxed);
            stats.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
            if let Some(last) = batch.events.last() {
                publish_progress(&progress, Some(last.seq));
            }
        }
        stats.up.store(false, Ordering::Relaxed);
    }

    /// Retries until the write succeeds; false if the input has ended and it kept failing.
    fn write_with_retry(
        &mut self,
        buf: &[u8],
        rx: &mpsc::Receiver<Arc<Batch>>,
        stats: &OutputStats,
        backoff: &mut Backoff,
    ) -> bool {
        let mut failing_since: Option<Instant> = None;
        loop {
            match self.sink.write_all(buf) {
                Ok(()) => {
                    if failing_since.is_some() {
                        info!(output = %self.name, "writing works again");
                        stats.up.store(true, Ordering::Relaxed);
                        backoff.reset();
                    }
                    return true;
                }
                Err(e) => {
                    stats.errors.fetch_add(1, Ordering::Relaxed);
                    let since = *failing_since.get_or_insert_with(|| {
                        let target = match &self.sink {
                            LineSink::File(f) => f.path().display().to_string(),
                            LineSink::Stdout => "standard output".to_string(),
                        };
                        warn!(output = %self.name, "cannot write to {target}: {e}; retrying (events are held until it works)");
                        stats.up.store(false, Ordering::Relaxed);
                        Instant::now()
                    });
                    if rx.is_closed() && since.elapsed() > GIVE_UP_AFTER_CLOSE {
                        warn!(output = %self.name, "giving up at shutdown: the last batch stays undelivered");
                        return false;
                    }
                    std::thread::sleep(backoff.next_delay());
                }
            }
        }
    }
}
