//! The replay buffer of a TCP/TLS output: framed messages not yet acknowledged by the receiver,
//! plus a tail of recently acknowledged ones, in one contiguous byte buffer.
//!
//! Offsets are *logical*: they count every byte ever appended to this output and never go back,
//! so "acknowledged up to X" and "written up to X" survive reconnections and buffer compaction.
//!
//! ```text
//!  base            acked                        end
//!   |  resend tail   |  sent or not, unacked      |
//! ```

use std::collections::VecDeque;

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

#[derive(Debug)]
pub struct ReplayBuffer {
    /// Bytes from logical offset `base` on start at `data[head]`.
    data: Vec<u8>,
    head: usize,
    base: u64,
    /// Frames ending after `base`, oldest first.
    frames: VecDeque<FrameEntry>,
    /// Everything before this logical offset is acknowledged (may fall inside a frame).
    acked: u64,
    /// Highest logical offset written on any connection; frames at or below it that are written
    /// again are duplicates.
    high_water: u64,
    /// Sequence number of the last event taken (framed or dropped).
    last_seq: u64,
    /// Acknowledged bytes to keep for resending after a reconnect.
    retain: usize,
    /// Unacknowledged bytes beyond which no more events are taken.
    capacity: usize,
}

impl ReplayBuffer {
    pub fn new(capacity: usize, retain: usize) -> ReplayBuffer {
        ReplayBuffer {
            data: Vec::new(),
            head: 0,
            base: 0,
            frames: VecDeque::new(),
            acked: 0,
            high_water: 0,
            last_seq: 0,
            retain,
            capacity,
        }
    }

    /// Logical offset just past the last byte.
    pub fn end(&self) -> u64 {
        self.base + (self.data.len() - self.head) as u64
    }

    /// Oldest byte still held: where a new connection starts sending.
    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Bytes not yet acknowledged (sent or not).
    pub fn unacked_bytes(&self) -> u64 {
        self.end() - self.acked
    }

    /// Bytes held, acknowledged tail included.
    pub fn held_bytes(&self) -> usize {
        self.data.len() - self.head
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

    /// Up to `max` bytes starting at logical offset `from` (which must lie in `base..=end`).
    pub fn bytes_from(&self, from: u64, max: usize) -> &[u8] {
        debug_assert!(from >= self.base && from <= self.end());
        let start = self.head + (from - self.base) as usize;
        let stop = self.data.len().min(start.saturating_add(max));
        &self.data[start..stop]
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

    /// Records an acknowledgement up to logical offset `to`; trims the acknowledged tail to
    /// `retain` bytes. Returns the new progress: the highest sequence number such that every
    /// event up to it is acknowledged (or was dropped), or `None` if nothing is yet.
    pub fn ack(&mut self, to: u64) -> Option<u64> {
        let to = to.min(self.end());
        if to > self.acked {
            self.acked = to;
        }
        // Trim whole frames off the front while the acknowledged tail is longer than `retain`.
        while let Some(f) = self.frames.front() {
            if f.end <= self.acked && self.acked - self.base > self.retain as u64 {
                self.head += (f.end - self.base) as usize;
                self.base = f.end;
                self.frames.pop_front();
            } else {
                break;
            }
        }
        if self.frames.is_empty() && self.acked == self.end() {
            // Nothing held that is needed: reuse the allocation from the start.
            self.base = self.end();
            self.data.clear();
            self.head = 0;
        } else if self.head > 1 << 20 && self.head > self.data.len() / 2 {
            self.data.drain(..self.head);
            self.head = 0;
        }
        self.progress()
    }

    /// The highest sequence number such that every event up to it is acknowledged or dropped.
    pub fn progress(&self) -> Option<u64> {
        let first_unacked = self.frames.partition_point(|f| f.end <= self.acked);
        let p = match self.frames.get(first_unacked) {
            Some(f) => f.seq.saturating_sub(1),
            None => self.last_seq,
        };
        (p > 0).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(b: &mut ReplayBuffer, seq: u64, len: usize) {
        b.tail_mut().extend(std::iter::repeat_n(b'x', len));
        b.commit_frame(seq);
    }

    #[test]
    fn progress_follows_whole_acknowledged_frames() {
        let mut b = ReplayBuffer::new(1000, 0);
        push(&mut b, 1, 10);
        push(&mut b, 2, 10);
        b.note_taken(3); // dropped oversize
        push(&mut b, 4, 10);
        assert_eq!(b.progress(), None);
        assert_eq!(b.ack(15), Some(1), "half of frame 2 is not frame 2");
        assert_eq!(b.ack(20), Some(3), "the dropped event 3 counts as done");
        assert_eq!(b.ack(30), Some(4));
        assert_eq!(b.unacked_bytes(), 0);
    }

    #[test]
    fn acknowledged_tail_is_kept_up_to_retain_then_trimmed_by_whole_frames() {
        let mut b = ReplayBuffer::new(1000, 25);
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
        assert_eq!(b.ack(50), Some(5));
        // keep at most 25 acknowledged bytes, in whole frames: frames 4 and 5 (20 bytes)
        assert_eq!(b.base(), 30);
        assert_eq!(b.held_bytes(), 20);
        assert_eq!(b.bytes_from(b.base(), 100).len(), 20);
        // a reconnect resends both frames: counted as duplicates
        assert_eq!(
            b.note_written(30, 50),
            WriteNote {
                new_frames: 0,
                new_bytes: 0,
                resent_frames: 2
            }
        );
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
        let mut b = ReplayBuffer::new(30, 1000);
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
    }

    #[test]
    fn partial_writes_count_duplicates_only_for_whole_frames() {
        let mut b = ReplayBuffer::new(1000, 1000);
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
