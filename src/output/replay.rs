//! The replay buffer of a TCP/TLS output: framed messages not yet acknowledged by the receiver
//! (in memory), plus the most recently acknowledged ones (in the on-disk [`Journal`]).
//!
//! Offsets are *logical*: they count every byte ever appended to this output and never go back,
//! so "acknowledged up to X" and "written up to X" survive reconnections and buffer compaction.
//!
//! ```text
//!  journal start     base            acked                      end
//!   | acknowledged, on disk |  memory: sent or not, unacked       |
//! ```
//!
//! A message counts as *delivered* once at least `retain` more bytes have been acknowledged
//! after it (a receiver cannot hold that much unread, so even one that crashed had read it), or
//! when the receiver closes its side after our clean close ([`confirm_all`](ReplayBuffer::confirm_all)).

use std::collections::VecDeque;
use std::io;
use std::path::Path;

use super::journal::Journal;

/// One framed message: its logical end offset and the event's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameEntry {
    end: u64,
    seq: u64,
}

/// What one write to a connection covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteNote {
    /// Frames completed by this write for the first time.
    pub new_frames: u64,
    /// Bytes written for the first time.
    pub new_bytes: u64,
    /// Frames completed again (written whole on an earlier connection).
    pub resent_frames: u64,
}

/// What an acknowledgement changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AckNote {
    /// The highest sequence number such that every event up to it is acknowledged (or was
    /// dropped), if any.
    pub progress: Option<u64>,
    /// Frames newly acknowledged whole.
    pub acknowledged: u64,
    /// Frames newly counted as delivered.
    pub delivered: u64,
}

#[derive(Debug)]
pub struct ReplayBuffer {
    /// Bytes from logical offset `base` on start at `data[head]`.
    data: Vec<u8>,
    head: usize,
    base: u64,
    /// The acknowledged bytes before `base` still kept for resending; ends at `base`.
    journal: Journal,
    /// Frames ending after the journal's start, oldest first.
    frames: VecDeque<FrameEntry>,
    /// Frames before this index are acknowledged whole.
    acked_idx: usize,
    /// Frames before this index are counted as delivered.
    delivered_idx: usize,
    /// Everything before this logical offset is acknowledged (may fall inside a frame).
    acked: u64,
    /// Highest logical offset written on any connection; frames at or below it that are written
    /// again are duplicates.
    high_water: u64,
    /// Sequence number of the last event taken (framed or dropped).
    last_seq: u64,
    /// Acknowledged bytes to keep for resending after a reconnect.
    retain: u64,
    /// Unacknowledged bytes beyond which no more events are taken.
    capacity: usize,
    /// The first failure to write the journal since it last worked, not yet reported.
    journal_error: Option<io::Error>,
    /// The last journal write failed (report a failing disk once, not at every acknowledgement).
    journal_failing: bool,
}

impl ReplayBuffer {
    /// A buffer holding up to `capacity` unacknowledged bytes in memory and the last `retain`
    /// acknowledged bytes in a journal in `journal_dir`.
    pub fn new(capacity: usize, retain: u64, journal_dir: &Path) -> io::Result<ReplayBuffer> {
        Ok(ReplayBuffer {
            data: Vec::new(),
            head: 0,
            base: 0,
            journal: Journal::open(journal_dir, retain, 0)?,
            frames: VecDeque::new(),
            acked_idx: 0,
            delivered_idx: 0,
            acked: 0,
            high_water: 0,
            last_seq: 0,
            retain,
            capacity,
            journal_error: None,
            journal_failing: false,
        })
    }

    /// Logical offset just past the last byte.
    pub fn end(&self) -> u64 {
        self.base + (self.data.len() - self.head) as u64
    }

    /// Oldest byte held in memory; everything before it is acknowledged.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Oldest byte held at all (journal included): where a new connection starts sending.
    pub fn start(&self) -> u64 {
        self.journal.start()
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Bytes not yet acknowledged (sent or not).
    pub fn unacked_bytes(&self) -> u64 {
        self.end() - self.acked
    }

    /// Bytes a new connection sends again or for the first time: journal plus memory.
    pub fn held_bytes(&self) -> u64 {
        self.end() - self.start()
    }

    /// Acknowledged bytes in the journal.
    pub fn journal_bytes(&self) -> u64 {
        self.journal.len()
    }

    /// Whether another batch may be taken (backpressure when the unacknowledged part is full).
    pub fn has_room(&self) -> bool {
        self.unacked_bytes() < self.capacity as u64
    }

    /// The buffer to encode frames into; call [`commit_frame`](Self::commit_frame) after each.
    pub fn tail_mut(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Records that the bytes appended since the last commit are the frame of event `seq`.
    pub fn commit_frame(&mut self, seq: u64) {
        let end = self.end();
        if self.frames.back().is_none_or(|f| f.end < end) {
            self.frames.push_back(FrameEntry { end, seq });
        }
        self.last_seq = self.last_seq.max(seq);
    }

    /// Records that event `seq` was taken without a frame (dropped as oversize).
    pub fn note_taken(&mut self, seq: u64) {
        self.last_seq = self.last_seq.max(seq);
    }

    /// Up to `max` bytes of memory starting at logical offset `from` (which must lie in
    /// `base..=end`).
    pub fn bytes_from(&self, from: u64, max: usize) -> &[u8] {
        debug_assert!(from >= self.base && from <= self.end());
        let start = self.head + (from - self.base) as usize;
        let stop = self.data.len().min(start.saturating_add(max));
        &self.data[start..stop]
    }

    /// Reads up to `max` journal bytes from logical offset `from` (in `start..base`) into `buf`.
    pub fn journal_read(&self, from: u64, max: usize, buf: &mut Vec<u8>) -> io::Result<()> {
        self.journal.read_at(from, max, buf)
    }

    /// The first journal write failure of a streak of them, once.
    pub fn take_journal_error(&mut self) -> Option<io::Error> {
        self.journal_error.take()
    }

    /// Records that bytes `from..to` were written to a connection. Frames that end in this
    /// range and had been written whole before are duplicates.
    pub fn note_written(&mut self, from: u64, to: u64) -> WriteNote {
        let a = self.frames.partition_point(|f| f.end <= from);
        let b = self.frames.partition_point(|f| f.end <= to);
        let dup_limit = to.min(self.high_water);
        let d = if dup_limit > from {
            self.frames.partition_point(|f| f.end <= dup_limit)
        } else {
            a
        };
        let note = WriteNote {
            new_frames: (b - d) as u64,
            new_bytes: to.saturating_sub(from.max(self.high_water)),
            resent_frames: (d - a) as u64,
        };
        self.high_water = self.high_water.max(to);
        note
    }

    /// Records an acknowledgement up to logical offset `to`: whole acknowledged frames move from
    /// memory to the journal, and the journal drops what is older than `retain`.
    pub fn ack(&mut self, to: u64) -> AckNote {
        let to = to.min(self.end());
        if to > self.acked {
            self.acked = to;
        }
        let mut note = AckNote::default();
        while self
            .frames
            .get(self.acked_idx)
            .is_some_and(|f| f.end <= self.acked)
        {
            self.acked_idx += 1;
            note.acknowledged += 1;
        }
        // Move the acknowledged whole frames out of memory.
        let journal_to = match self.acked_idx {
            0 => self.base,
            i => self.frames[i - 1].end.max(self.base),
        };
        if journal_to > self.base {
            let n = (journal_to - self.base) as usize;
            match self.journal.append(&self.data[self.head..self.head + n]) {
                Ok(()) => self.journal_failing = false,
                Err(e) => {
                    if !self.journal_failing {
                        self.journal_error = Some(e);
                    }
                    self.journal_failing = true;
                }
            }
            self.head += n;
            self.base = journal_to;
        }
        if self.head == self.data.len() {
            // Nothing left in memory: reuse the allocation from the start.
            self.data.clear();
            self.head = 0;
        } else if self.head > 1 << 20 && self.head > self.data.len() / 2 {
            self.data.drain(..self.head);
            self.head = 0;
        }
        note.delivered = self.count_delivered(self.acked.saturating_sub(self.retain));
        let start = self.journal.trim();
        let gone = self.frames.partition_point(|f| f.end <= start);
        self.frames.drain(..gone);
        self.acked_idx -= gone;
        self.delivered_idx = self.delivered_idx.saturating_sub(gone);
        note.progress = self.progress();
        note
    }

    /// The receiver confirmed it read everything acknowledged (it closed its side after our
    /// clean close): every acknowledged frame counts as delivered and the journal is emptied.
    /// Returns the frames newly counted as delivered.
    pub fn confirm_all(&mut self) -> u64 {
        let n = self.count_delivered(self.acked);
        self.journal.clear();
        let start = self.journal.start();
        let gone = self.frames.partition_point(|f| f.end <= start);
        self.frames.drain(..gone);
        self.acked_idx -= gone;
        self.delivered_idx -= gone;
        n
    }

    /// Counts frames ending at or before `upto` as delivered; returns how many were new.
    fn count_delivered(&mut self, upto: u64) -> u64 {
        let before = self.delivered_idx;
        while self.delivered_idx < self.acked_idx && self.frames[self.delivered_idx].end <= upto {
            self.delivered_idx += 1;
        }
        (self.delivered_idx - before) as u64
    }

    /// The highest sequence number such that every event up to it is acknowledged or dropped.
    pub fn progress(&self) -> Option<u64> {
        let p = match self.frames.get(self.acked_idx) {
            Some(f) => f.seq.saturating_sub(1),
            None => self.last_seq,
        };
        (p > 0).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(capacity: usize, retain: u64) -> (ReplayBuffer, tempfile::TempDir) {
        let tmp = tempfile::tempdir().unwrap();
        (
            ReplayBuffer::new(capacity, retain, tmp.path()).unwrap(),
            tmp,
        )
    }

    fn push(b: &mut ReplayBuffer, seq: u64, len: usize) {
        b.tail_mut()
            .extend(std::iter::repeat_n(b'0' + seq as u8, len));
        b.commit_frame(seq);
    }

    #[test]
    fn progress_follows_whole_acknowledged_frames() {
        let (mut b, _t) = buffer(1000, 0);
        push(&mut b, 1, 10);
        push(&mut b, 2, 10);
        b.note_taken(3); // dropped oversize
        push(&mut b, 4, 10);
        assert_eq!(b.progress(), None);
        assert_eq!(
            b.ack(15).progress,
            Some(1),
            "half of frame 2 is not frame 2"
        );
        assert_eq!(
            b.ack(20).progress,
            Some(3),
            "the dropped event 3 counts as done"
        );
        let n = b.ack(30);
        assert_eq!(n.progress, Some(4));
        assert_eq!(n.acknowledged, 1);
        assert_eq!(b.unacked_bytes(), 0);
    }

    #[test]
    fn acknowledged_frames_move_to_the_journal_and_are_resent_from_it() {
        let (mut b, _t) = buffer(1000, 25);
        for s in 1..=5 {
            push(&mut b, s, 10);
        }
        assert_eq!(
            b.note_written(0, 50),
            WriteNote {
                new_frames: 5,
                new_bytes: 50,
                resent_frames: 0
            }
        );
        let n = b.ack(45);
        assert_eq!(
            (n.acknowledged, n.delivered),
            (4, 2),
            "frames 1 and 2 end at least 25 bytes before the acknowledgement"
        );
        assert_eq!(b.base(), 40, "whole acknowledged frames left memory");
        assert_eq!(b.start(), 0, "the journal keeps them all (one segment)");
        assert_eq!(b.journal_bytes(), 40);
        let mut buf = Vec::new();
        b.journal_read(30, 100, &mut buf).unwrap();
        assert_eq!(buf, b"4444444444", "frame 4 read back from disk");
        assert_eq!(b.bytes_from(b.base(), 100), b"5555555555");
        // a reconnect resends everything held: the four journal frames are duplicates
        let w = b.note_written(0, 40);
        assert_eq!(w.resent_frames, 4);
        assert_eq!(w.new_frames, 0);
        assert_eq!(b.ack(50).delivered, 0, "frame 3 ends 20 bytes before it");
        // the receiver confirmed it read everything
        assert_eq!(b.confirm_all(), 3);
        assert_eq!(b.journal_bytes(), 0);
        assert_eq!(b.start(), 50);
        push(&mut b, 6, 10);
        assert_eq!(
            b.note_written(50, 60),
            WriteNote {
                new_frames: 1,
                new_bytes: 10,
                resent_frames: 0
            },
            "first write of frame 6 is no duplicate"
        );
    }

    #[test]
    fn capacity_counts_only_unacknowledged_bytes() {
        let (mut b, _t) = buffer(30, 1000);
        push(&mut b, 1, 20);
        assert!(b.has_room());
        push(&mut b, 2, 20);
        assert!(!b.has_room());
        b.ack(40);
        assert!(
            b.has_room(),
            "the acknowledged tail does not block new events"
        );
        assert_eq!(b.held_bytes(), 40);
        assert_eq!(b.journal_bytes(), 40);
    }

    #[test]
    fn without_retention_acknowledged_means_delivered() {
        let (mut b, _t) = buffer(1000, 0);
        push(&mut b, 1, 10);
        push(&mut b, 2, 10);
        let n = b.ack(20);
        assert_eq!((n.acknowledged, n.delivered), (2, 2));
        assert_eq!(b.held_bytes(), 0);
    }

    #[test]
    fn a_failing_journal_is_reported_once_and_the_output_goes_on() {
        let (mut b, t) = buffer(1000, 1000);
        std::fs::remove_dir_all(t.path()).unwrap();
        for s in 1..=3 {
            push(&mut b, s, 10);
        }
        let n = b.ack(10);
        assert_eq!(n.progress, Some(1), "acknowledgements still count");
        assert!(b.take_journal_error().is_some());
        b.ack(20);
        assert!(b.take_journal_error().is_none(), "reported once per streak");
        assert_eq!(b.journal_bytes(), 0, "nothing is claimed to be kept");
        assert_eq!(
            b.start(),
            b.base(),
            "a reconnect resends only what memory holds"
        );
    }

    #[test]
    fn partial_writes_count_duplicates_only_for_whole_frames() {
        let (mut b, _t) = buffer(1000, 1000);
        push(&mut b, 1, 10);
        push(&mut b, 2, 10);
        assert_eq!(
            b.note_written(0, 15),
            WriteNote {
                new_frames: 1,
                new_bytes: 15,
                resent_frames: 0
            }
        );
        // connection breaks; the new one writes everything again
        let n = b.note_written(0, 20);
        assert_eq!(
            n,
            WriteNote {
                new_frames: 1,
                new_bytes: 5,
                resent_frames: 1
            },
            "frame 1 was written whole before; frame 2 was not"
        );
    }
}
