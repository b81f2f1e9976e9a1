//! Delivery bookkeeping of one FMC's stream, behind one small interface ([`Delivery`]): which
//! records are new (the resume [`cursor`]), which of them every output has delivered (the
//! [`tracker`]) and where a restart resumes (the [`bookmark`], saved atomically).
//!
//! The pipeline calls, in stream order: [`Delivery::admit`] for every record taken from the FMC,
//! [`Delivery::emitted`] after each message with the last event sequence number handed to the
//! outputs, and [`Delivery::delivered`] when every output has delivered up to a sequence number.
//! The bookmark moves only past delivered events: nothing lost across restarts, and after a clean
//! stop nothing sent twice.

pub mod bookmark;
pub mod cursor;
pub mod tracker;

use std::path::{Path, PathBuf};

pub use bookmark::Bookmark;
pub use cursor::{Cursor, identity};
pub use tracker::{Mark, Tracker};

use crate::decode::RecordHeader;

/// One FMC's delivery state. See the module documentation.
#[derive(Debug)]
pub struct Delivery {
    dir: PathBuf,
    cursor: Cursor,
    tracker: Tracker,
}

impl Delivery {
    /// The state in folder `dir`: resumes from its bookmark when `resume` (a missing bookmark is a
    /// first start), else starts afresh. A damaged bookmark is an error that names the file.
    pub fn open(dir: &Path, resume: bool) -> Result<Delivery, String> {
        let bookmark = if resume { Bookmark::load(dir)? } else { None };
        let bookmark = bookmark.unwrap_or_default();
        Ok(Delivery {
            dir: dir.to_path_buf(),
            cursor: bookmark.cursor(),
            tracker: Tracker::new(bookmark),
        })
    }

    /// The archive second a restart resumes from (0: no bookmark).
    pub fn bookmark_second(&self) -> u32 {
        self.tracker.bookmark().second
    }

    /// The newest archive second received: where a new connection resumes.
    pub fn resume_second(&self) -> u32 {
        self.cursor.second()
    }

    /// A new connection to the FMC resumes from [`resume_second`](Self::resume_second): the
    /// records of that second it sends again are skipped.
    pub fn reconnected(&mut self) {
        self.cursor.begin_replay();
    }

    /// Whether a record (its EventData body) is new; it is then followed until delivered. A
    /// record already handled before a reconnect or restart is not.
    pub fn admit(&mut self, body: &[u8]) -> bool {
        let id = identity(body);
        let second = RecordHeader::parse(body)
            .map(|h| h.archive_timestamp)
            .unwrap_or(0);
        if !self.cursor.admit(second, id) {
            return false;
        }
        self.tracker.admitted(second, id);
        true
    }

    /// Every record admitted so far is behind us once events up to `seq` are delivered.
    pub fn emitted(&mut self, seq: u64) {
        self.tracker.checkpoint(seq);
    }

    /// Where admission stands now, for [`emitted_at`](Self::emitted_at) once the records
    /// admitted so far have become events (they are transformed in parallel, while more
    /// records are admitted).
    pub fn mark(&self) -> Option<Mark> {
        self.tracker.mark()
    }

    /// Every record admitted up to `mark` is behind us once events up to `seq` are delivered.
    pub fn emitted_at(&mut self, seq: u64, mark: Option<Mark>) {
        self.tracker.checkpoint_at(seq, mark);
    }

    /// Every output has delivered the events up to `seq`.
    pub fn delivered(&mut self, seq: u64) {
        self.tracker.delivered(seq);
    }

    /// Saves the bookmark if it moved since the last save; returns its second then.
    pub fn save_if_moved(&mut self) -> std::io::Result<Option<u32>> {
        match self.tracker.take_changed() {
            Some(b) => b.save(&self.dir).map(|_| Some(b.second)),
            None => Ok(None),
        }
    }

    /// The bookmark as it stands, saved (at shutdown) unless nothing was ever delivered.
    pub fn save(&self) -> std::io::Result<Bookmark> {
        let b = self.tracker.bookmark();
        if b.second > 0 {
            b.save(&self.dir)?;
        }
        Ok(b)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An EventData body: record type 71, archive timestamp `second`, one payload byte.
    fn body(second: u32, byte: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&71u32.to_be_bytes());
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&second.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.push(byte);
        b
    }

    #[test]
    fn a_restart_resumes_past_delivered_records_and_skips_them_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Delivery::open(dir.path(), true).unwrap();
        assert!(d.admit(&body(100, 1)));
        assert!(d.admit(&body(100, 2)));
        d.emitted(2);
        assert!(d.admit(&body(101, 3)));
        d.emitted(3);
        d.delivered(2);
        assert_eq!(d.save_if_moved().unwrap(), Some(100));
        assert_eq!(d.save_if_moved().unwrap(), None, "saved only when moved");
        drop(d);

        let mut d = Delivery::open(dir.path(), true).unwrap();
        assert_eq!(d.bookmark_second(), 100);
        assert!(!d.admit(&body(100, 1)), "delivered before the restart");
        assert!(!d.admit(&body(100, 2)));
        assert!(
            d.admit(&body(101, 3)),
            "taken but never delivered: sent again"
        );
        assert!(
            Delivery::open(dir.path(), false)
                .unwrap()
                .admit(&body(100, 1)),
            "without resuming nothing is skipped"
        );
    }
}
