//! Follows records from the moment they are taken from the FMC until every output reports them
//! delivered; only then does the bookmark move.

use std::collections::VecDeque;

use super::bookmark::Bookmark;

/// A position of admission (see [`Tracker::mark`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    peer: u16,
    second: u32,
    ids: usize,
}

/// A point in the stream: everything taken up to emitted event `seq` (events the outputs see) and
/// every record admitted so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Checkpoint {
    seq: u64,
    peer: u16,
    second: u32,
    /// How many identities of `second` were admitted up to here.
    ids: usize,
}

/// The identities admitted at one archive second: `count` of them, from `start` (a position in
/// the tracker's `ids`, counted from the first identity ever admitted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Second {
    /// The HA peer whose archive clock `second` is on (0 for a single FMC).
    peer: u16,
    second: u32,
    start: u64,
    count: usize,
}

/// Follows admitted records until every output has delivered them.
///
/// The identities live in one queue for all seconds (no allocation per second: archive seconds
/// often change with every record), trimmed from the front as delivery moves on.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Seconds still referenced by a pending or the delivered checkpoint, oldest first.
    seconds: VecDeque<Second>,
    /// Their identities in the order admitted; `ids[0]` has position `ids_base`.
    ids: VecDeque<u64>,
    ids_base: u64,
    pending: VecDeque<Checkpoint>,
    delivered: Option<Checkpoint>,
    /// The bookmark we started from (kept until something newer is delivered).
    start: Bookmark,
    changed: bool,
    /// Peer names, for the bookmark (empty names for a single FMC).
    peers: Vec<String>,
}

impl Tracker {
    pub fn new(start: Bookmark) -> Tracker {
        Tracker::with_peers(start, vec![String::new()])
    }

    /// A tracker for an FMC with these peers (an HA pair): the bookmark names the peer its
    /// archive second is from.
    pub fn with_peers(start: Bookmark, peers: Vec<String>) -> Tracker {
        Tracker {
            start,
            peers,
            ..Tracker::default()
        }
    }

    /// A record was admitted (it will be emitted, or was filtered out; either way it is behind
    /// us once the events before it are delivered).
    pub fn admitted(&mut self, second: u32, identity: u64) {
        self.admitted_from(0, second, identity);
    }

    /// [`admitted`](Self::admitted), from HA peer `peer`: seconds of another peer's clock start
    /// a new run, whatever their value.
    pub fn admitted_from(&mut self, peer: u16, second: u32, identity: u64) {
        if second == 0 {
            return;
        }
        match self.seconds.back_mut() {
            Some(s) if s.peer == peer && s.second == second => s.count += 1,
            // An out-of-order (older) second: the bookmark stays at the newest second; a resume
            // from there does not ask for this record again.
            Some(s) if s.peer == peer && s.second > second => return,
            _ => self.seconds.push_back(Second {
                peer,
                second,
                start: self.ids_base + self.ids.len() as u64,
                count: 1,
            }),
        }
        self.ids.push_back(identity);
    }

    /// Everything admitted so far is covered once events up to `seq` are delivered.
    pub fn checkpoint(&mut self, seq: u64) {
        self.checkpoint_at(seq, self.mark());
    }

    /// Where admission stands now: what a checkpoint would cover. Lets records be admitted
    /// ahead of the events they become (they are transformed in parallel).
    pub fn mark(&self) -> Option<Mark> {
        self.seconds.back().map(|s| Mark {
            peer: s.peer,
            second: s.second,
            ids: s.count,
        })
    }

    /// Everything admitted up to `mark` is covered once events up to `seq` are delivered.
    pub fn checkpoint_at(&mut self, seq: u64, mark: Option<Mark>) {
        let Some(m) = mark else {
            return;
        };
        let cp = Checkpoint {
            seq,
            peer: m.peer,
            second: m.second,
            ids: m.ids,
        };
        match self.pending.back_mut() {
            Some(last) if last.seq == seq => *last = cp,
            _ => self.pending.push_back(cp),
        }
    }

    /// Every output has delivered events up to `seq`.
    pub fn delivered(&mut self, seq: u64) {
        while let Some(cp) = self.pending.front() {
            if cp.seq > seq {
                break;
            }
            self.delivered = self.pending.pop_front();
            self.changed = true;
        }
        if let Some(d) = self.delivered {
            // Seconds before the delivered one are no longer needed.
            while self
                .seconds
                .front()
                .is_some_and(|s| (s.peer, s.second) != (d.peer, d.second))
            {
                self.seconds.pop_front();
            }
            let keep_from = self
                .seconds
                .front()
                .map_or(self.ids_base + self.ids.len() as u64, |s| s.start);
            let drop = (keep_from - self.ids_base) as usize;
            if drop > 0 {
                self.ids.drain(..drop);
                self.ids_base = keep_from;
            }
        }
    }

    /// Events taken but not yet delivered by every output.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The bookmark, if it changed since the last call.
    pub fn take_changed(&mut self) -> Option<Bookmark> {
        if !std::mem::replace(&mut self.changed, false) {
            return None;
        }
        Some(self.bookmark())
    }

    pub fn bookmark(&self) -> Bookmark {
        let Some(d) = self.delivered else {
            return self.start.clone();
        };
        let peer = self.peers.get(d.peer as usize).cloned().unwrap_or_default();
        let mut delivered_at_second: Vec<String> = match self
            .seconds
            .iter()
            .find(|s| (s.peer, s.second) == (d.peer, d.second))
        {
            Some(s) => {
                let from = (s.start - self.ids_base) as usize;
                self.ids
                    .range(from..from + d.ids.min(s.count))
                    .map(|i| format!("{i:016x}"))
                    .collect()
            }
            None => Vec::new(),
        };
        if d.second == self.start.second && peer == self.start.peer {
            // Resumed inside the bookmark second: the earlier deliveries still count.
            for h in &self.start.delivered_at_second {
                if !delivered_at_second.contains(h) {
                    delivered_at_second.push(h.clone());
                }
            }
        }
        Bookmark {
            second: d.second,
            peer,
            delivered_at_second,
            saved_at: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bookmark_moves_only_past_delivered_events() {
        let mut t = Tracker::new(Bookmark::default());
        t.admitted(100, 1);
        t.checkpoint(1);
        t.admitted(100, 2);
        t.checkpoint(2);
        t.admitted(101, 3);
        t.checkpoint(3);
        assert_eq!(t.take_changed(), None);
        t.delivered(2);
        let b = t.take_changed().unwrap();
        assert_eq!(b.second, 100);
        assert_eq!(
            b.delivered_at_second,
            vec![format!("{:016x}", 1), format!("{:016x}", 2)]
        );
        t.delivered(3);
        let b = t.take_changed().unwrap();
        assert_eq!((b.second, b.delivered_at_second.len()), (101, 1));
        // A filtered record after the last event is covered by that event's delivery.
        t.admitted(102, 4);
        t.checkpoint(3);
        t.delivered(3);
        assert_eq!(t.bookmark().second, 102);
    }

    #[test]
    fn identities_of_passed_seconds_are_let_go() {
        let mut t = Tracker::new(Bookmark::default());
        // A new second with every record, as archive timestamps often are.
        for i in 0..10_000u64 {
            t.admitted(1000 + i as u32, i);
            t.checkpoint(i + 1);
        }
        t.admitted(20_000, 7);
        t.admitted(20_000, 8);
        t.checkpoint(10_001);
        t.admitted(20_000, 9);
        t.checkpoint(10_002);
        t.delivered(10_001);
        assert_eq!(t.seconds.len(), 1);
        assert_eq!(
            t.ids.len(),
            3,
            "only the delivered second's identities stay"
        );
        let b = t.bookmark();
        assert_eq!(b.second, 20_000);
        assert_eq!(
            b.delivered_at_second,
            [format!("{:016x}", 7), format!("{:016x}", 8)]
        );
        t.delivered(10_002);
        assert_eq!(t.bookmark().delivered_at_second.len(), 3);
        t.admitted(20_001, 10);
        t.checkpoint(10_003);
        t.delivered(10_003);
        assert_eq!((t.ids.len(), t.pending()), (1, 0));
        assert_eq!(t.bookmark().delivered_at_second, [format!("{:016x}", 10)]);
    }
}
