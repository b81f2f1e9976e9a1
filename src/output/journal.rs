//! The resend journal of a TCP/TLS output: the most recently *acknowledged* messages, on disk.
//!
//! A TCP acknowledgement only says the receiver's kernel holds the bytes. A receiver that crashes
//! loses what was still unread in its socket buffer (up to twice `SO_RCVBUF` on Linux: 64 MiB for
//! a 32 MiB buffer). So acknowledged bytes are not dropped at once: they are appended here, in
//! segment files under the output's folder in the state directory, and sent again after a broken
//! connection. Segments are deleted whole once at least `retain` newer bytes are acknowledged.
//!
//! Memory use does not depend on `retain`: only the segment list is held. The files are written
//! through the page cache; at high rates a segment is deleted seconds after it was written and
//! never reaches the disk. Segments always start at a frame boundary, so resending from the
//! oldest segment's start sends whole frames.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A segment is closed and a new one started once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 8 << 20;

const SUFFIX: &str = ".journal";

#[derive(Debug)]
struct Segment {
    /// Logical offset of its first byte.
    start: u64,
    /// Logical offset just past its last byte.
    end: u64,
}

#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    retain: u64,
    segments: VecDeque<Segment>,
    /// The newest segment, open for appending.
    writer: Option<File>,
    /// Logical offset just past the last byte (where the next append goes).
    end: u64,
}

impl Journal {
    /// Opens the journal in `dir` (created if missing) keeping at least `retain` acknowledged
    /// bytes; logical offsets start at `start`. Segments left there by an earlier run are
    /// deleted: offsets do not carry over between runs.
    pub fn open(dir: &Path, retain: u64, start: u64) -> io::Result<Journal> {
        if retain > 0 {
            fs::create_dir_all(dir)?;
            for old in segment_files(dir)? {
                fs::remove_file(old)?;
            }
        }
        Ok(Journal {
            dir: dir.to_path_buf(),
            retain,
            segments: VecDeque::new(),
            writer: None,
            end: start,
        })
    }

    /// Logical offset of the oldest byte held (equal to [`end`](Self::end) when empty).
    pub fn start(&self) -> u64 {
        self.segments.front().map_or(self.end, |s| s.start)
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// Bytes held on disk.
    pub fn len(&self) -> u64 {
        self.end - self.start()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends whole frames (the caller guarantees `bytes` ends at a frame boundary). With
    /// `retain = 0` nothing is kept. On a write error the journal forgets everything it held
    /// (those messages can no longer be resent) and starts afresh with the next append; offsets
    /// move on either way.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let from = self.end;
        self.end += bytes.len() as u64;
        if self.retain == 0 {
            return Ok(());
        }
        match self.write(from, bytes) {
            Ok(()) => {
                self.segments.back_mut().expect("written").end = self.end;
                Ok(())
            }
            Err(e) => {
                self.writer = None;
                self.forget_before(u64::MAX);
                Err(e)
            }
        }
    }

    /// Writes `bytes` (logical offset `from`) to the newest segment, starting a new one first
    /// when it is full or none is open.
    fn write(&mut self, from: u64, bytes: &[u8]) -> io::Result<()> {
        let full = self
            .segments
            .back()
            .is_none_or(|s| s.end - s.start >= SEGMENT_BYTES);
        if full || self.writer.is_none() {
            self.writer = None;
            let f = File::options()
                .create(true)
                .truncate(true)
                .write(true)
                .open(self.segment_path(from))?;
            self.writer = Some(f);
            self.segments.push_back(Segment {
                start: from,
                end: from,
            });
        }
        self.writer.as_mut().expect("opened above").write_all(bytes)
    }

    /// Deletes the segments no longer needed: those entirely older than the last `retain` bytes.
    /// Returns the new [`start`](Self::start).
    pub fn trim(&mut self) -> u64 {
        let keep_from = self.end.saturating_sub(self.retain);
        self.forget_before(keep_from);
        self.start()
    }

    /// Deletes every segment ending at or before `offset`.
    fn forget_before(&mut self, offset: u64) {
        while let Some(s) = self.segments.front() {
            if s.end > offset {
                break;
            }
            if self.segments.len() == 1 {
                self.writer = None;
            }
            let _ = fs::remove_file(self.segment_path(s.start));
            self.segments.pop_front();
        }
    }

    /// Deletes everything: the receiver confirmed it has read it all.
    pub fn clear(&mut self) {
        self.forget_before(self.end);
    }

    /// Reads up to `max` bytes from logical offset `from` (within `start..end`) into `buf`
    /// (replacing its contents); never crosses a segment end.
    pub fn read_at(&self, from: u64, max: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        let Some(s) = self
            .segments
            .iter()
            .find(|s| s.start <= from && from < s.end)
        else {
            return Ok(());
        };
        let n = ((s.end - from) as usize).min(max);
        buf.resize(n, 0);
        let f = File::open(self.segment_path(s.start))?;
        f.read_exact_at(buf, from - s.start)?;
        Ok(())
    }

    fn segment_path(&self, start: u64) -> PathBuf {
        self.dir.join(format!("{start:020}{SUFFIX}"))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The journal segment files in `dir`.
fn segment_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(SUFFIX))
        {
            v.push(p);
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> usize {
        segment_files(dir).unwrap().len()
    }

    #[test]
    fn keeps_at_least_retain_bytes_in_whole_segments_and_reads_them_back() {
        let tmp = tempfile::tempdir().unwrap();
        let mut j = Journal::open(tmp.path(), SEGMENT_BYTES + 10, 100).unwrap();
        let chunk: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        for _ in 0..20 {
            j.append(&chunk).unwrap();
        }
        // 20 MiB written in 8 MiB segments: 8 + 8 + 4.
        assert_eq!(files(tmp.path()), 3);
        assert_eq!(
            j.trim(),
            100 + SEGMENT_BYTES,
            "the first segment is older than retain"
        );
        assert_eq!(files(tmp.path()), 2);
        assert!(j.len() >= SEGMENT_BYTES + 10);
        let mut buf = Vec::new();
        // A read across the segment boundary stops at it.
        let at = j.end() - (4 << 20) - 3;
        j.read_at(at, 100, &mut buf).unwrap();
        assert_eq!(buf.len(), 3);
        assert_eq!(buf[0], ((at - 100) % 256) as u8);
        j.read_at(j.end() - 10, 100, &mut buf).unwrap();
        assert_eq!(buf.len(), 10);
        j.clear();
        assert_eq!(files(tmp.path()), 0);
        assert!(j.is_empty());
    }

    #[test]
    fn zero_retain_writes_nothing_and_old_segments_are_removed_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(format!("{:020}{SUFFIX}", 5)), b"old").unwrap();
        let mut j = Journal::open(tmp.path(), 1 << 20, 0).unwrap();
        assert_eq!(files(tmp.path()), 0);
        j.append(b"abc").unwrap();
        drop(j);
        assert_eq!(
            files(tmp.path()),
            0,
            "dropping the journal removes its files"
        );
        let mut j = Journal::open(tmp.path(), 0, 0).unwrap();
        j.append(b"abc").unwrap();
        assert_eq!(files(tmp.path()), 0);
        assert_eq!((j.start(), j.end()), (3, 3));
    }
}
