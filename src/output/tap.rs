//! The tap: a troubleshooting copy of every record, written by its own task. It never slows
//! delivery: the pipeline hands records over a bounded queue with `try_send`, and when the
//! writer falls behind, records are dropped from the tap and counted.
//!
//! Formats: `json` writes one object per record (`record_type`, `fields`, `cef`, `warnings`);
//! `wire` writes the framed messages exactly as the first network output (else the first output)
//! made them: its [`FrameEncoder`](super::FrameEncoder) copies each frame here (see
//! [`FrameEncoder::copy_to`](super::FrameEncoder::copy_to)). A wire tap can be read back with
//! [`WireReader`].

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use super::error::SyslogError;
use super::rotate::RotatingFile;
use super::syslog::framing::{FrameError, parse_auto};
use crate::config::output::{TapConfig, TapFormat};

/// One record as the pipeline saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TapRecord {
    /// eStreamer record type (e.g. 400 for an intrusion event).
    pub record_type: u32,
    /// Decoded fields, by catalog name.
    pub fields: serde_json::Value,
    /// The CEF line, if the record produced one.
    pub cef: Option<String>,
    /// Problems met while decoding or mapping this record.
    pub warnings: Vec<String>,
    /// The framed message as sent (for `format = "wire"`); empty if none. Not part of the JSON.
    #[serde(skip)]
    pub wire: Vec<u8>,
}

impl TapRecord {
    /// A framed message for the `wire` format (it writes only these bytes).
    pub fn wire(wire: Vec<u8>) -> TapRecord {
        TapRecord {
            record_type: 0,
            fields: serde_json::Value::Null,
            cef: None,
            warnings: Vec::new(),
            wire,
        }
    }
}

/// Tap counters.
#[derive(Debug, Default)]
pub struct TapStats {
    /// Records written to the tap file.
    pub written: AtomicU64,
    /// Records dropped because the writer was behind (the queue was full).
    pub dropped: AtomicU64,
    /// Failed writes (each loses the records of that write from the tap only).
    pub errors: AtomicU64,
}

/// The pipeline's end of the tap. Cheap to clone; the tap stops when every handle is dropped.
#[derive(Debug, Clone)]
pub struct TapHandle {
    tx: mpsc::Sender<TapRecord>,
    stats: Arc<TapStats>,
    format: TapFormat,
}

impl TapHandle {
    /// What the tap writes: with `Wire`, fill [`TapRecord::wire`]; with `Json`, leave it empty.
    pub fn format(&self) -> TapFormat {
        self.format
    }

    /// Queues a record without waiting. Returns false (and counts it) if the queue is full.
    pub fn send(&self, record: TapRecord) -> bool {
        match self.tx.try_send(record) {
            Ok(()) => true,
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    pub fn stats(&self) -> &Arc<TapStats> {
        &self.stats
    }
}

/// Records written together at most (one write per group).
const GROUP: usize = 512;

/// Opens the tap file and starts the writer on a blocking thread. `key` names the config section
/// in errors (normally `tap`).
pub fn spawn_tap(cfg: &TapConfig, key: &str) -> Result<(TapHandle, JoinHandle<()>), SyslogError> {
    cfg.validate(key)?;
    let mut file = RotatingFile::open(&cfg.path, cfg.rotate_bytes, cfg.keep)
        .map_err(|e| SyslogError::file(format!("{key}.path"), "open", &cfg.path, e))?;
    let (tx, mut rx) = mpsc::channel::<TapRecord>(cfg.queue_records);
    let stats = Arc::new(TapStats::default());
    let format = cfg.format;
    let writer_stats = stats.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::with_capacity(256 * 1024);
        let mut error_logged = false;
        while let Some(first) = rx.blocking_recv() {
            buf.clear();
            let mut n = 0u64;
            let mut next = Some(first);
            while let Some(rec) = next.take() {
                match format {
                    TapFormat::Json => {
                        if serde_json::to_writer(&mut buf, &rec).is_ok() {
                            buf.push(b'\n');
                        }
                    }
                    TapFormat::Wire => buf.extend_from_slice(&rec.wire),
                }
                n += 1;
                if n < GROUP as u64 {
                    next = rx.try_recv().ok();
                }
            }
            match file.write_all(&buf) {
                Ok(()) => {
                    writer_stats.written.fetch_add(n, Ordering::Relaxed);
                    error_logged = false;
                }
                Err(e) => {
                    writer_stats.errors.fetch_add(1, Ordering::Relaxed);
                    writer_stats.dropped.fetch_add(n, Ordering::Relaxed);
                    if !error_logged {
                        warn!(
                            "tap: cannot write to {}: {e}; tap records are dropped until it works",
                            file.path().display()
                        );
                        error_logged = true;
                    }
                }
            }
        }
    });
    Ok((TapHandle { tx, stats, format }, task))
}

/// Reads the messages of a `wire` tap file (or any RFC 6587 stream, octet-counted or LF framing
/// detected per frame).
pub struct WireReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    eof: bool,
    max_len: usize,
}

impl<R: Read> WireReader<R> {
    pub fn new(inner: R) -> WireReader<R> {
        WireReader {
            inner,
            buf: Vec::new(),
            start: 0,
            eof: false,
            max_len: 1 << 24,
        }
    }

    /// The next message (without framing), `Ok(None)` at the end.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, WireReadError> {
        loop {
            if let Some((msg, used)) = parse_auto(&self.buf[self.start..], self.max_len)? {
                let m = msg.to_vec();
                self.start += used;
                return Ok(Some(m));
            }
            if self.eof {
                return if self.start == self.buf.len() {
                    Ok(None)
                } else {
                    Err(WireReadError::Truncated(self.buf.len() - self.start))
                };
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.inner.read(&mut chunk)?;
            if n == 0 {
                self.eof = true;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Why a wire tap cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WireReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("the file ends inside a frame ({0} bytes left over)")]
    Truncated(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (tx, _rx) = mpsc::channel(2);
        let h = TapHandle {
            tx,
            stats: Arc::default(),
            format: TapFormat::Json,
        };
        let rec = TapRecord {
            record_type: 400,
            fields: serde_json::json!({}),
            cef: None,
            warnings: vec![],
            wire: vec![],
        };
        assert!(h.send(rec.clone()));
        assert!(h.send(rec.clone()));
        assert!(!h.send(rec.clone()));
        assert!(!h.send(rec));
        assert_eq!(h.stats().dropped.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn wire_reader_reads_mixed_framing_and_reports_a_cut_file() {
        let data = b"11 <13>1 first<13>1 second\n".to_vec();
        let mut r = WireReader::new(&data[..]);
        assert_eq!(r.next_message().unwrap().unwrap(), b"<13>1 first");
        assert_eq!(r.next_message().unwrap().unwrap(), b"<13>1 second");
        assert!(r.next_message().unwrap().is_none());
        let mut r = WireReader::new(&b"20 <13>1 cut"[..]);
        assert!(matches!(
            r.next_message(),
            Err(WireReadError::Truncated(12))
        ));
    }
}
