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
pub mod family;
pub mod tracker;
pub mod window;

use std::path::{Path, PathBuf};

pub use bookmark::Bookmark;
pub use cursor::{Cursor, identity};
pub use tracker::{Mark, Tracker};
pub use window::Window;

use crate::decode::RecordHeader;
use crate::estreamer::session::ResumePoint;

/// How an FMC HA pair is followed across a switch of peers.
#[derive(Clone, Debug)]
pub struct HaOptions {
    /// The peers' names (`host:port`), as the bookmark names them.
    pub peers: Vec<String>,
    /// Identities of delivered events kept.
    pub window: usize,
    /// How far before the old peer's resume second the new one is asked to start.
    pub overlap_secs: u32,
}

/// One FMC's delivery state. See the module documentation.
#[derive(Debug)]
pub struct Delivery {
    /// Where the bookmark and the identity window are saved (`None`: nowhere, a replay).
    dir: Option<PathBuf>,
    cursor: Cursor,
    tracker: Tracker,
    /// The peer the cursor's seconds are from (`usize::MAX`: none of the configured peers).
    peer: usize,
    /// Where a new connection resumes: the newest second received, and its peer.
    resume: ResumePoint,
    ha: Option<Ha>,
    /// Events up to here are delivered by every output.
    delivered_seq: u64,
    window_saved: std::time::Instant,
}

/// How often the HA identity window is saved while running (and at every clean stop).
const WINDOW_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// HA state: the identity window, and whether what comes now may have been delivered before.
#[derive(Debug)]
struct Ha {
    window: Window,
    overlap: u32,
    check: Check,
}

/// De-duplication by identity after a switch of peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    Off,
    /// Switched: on from the new peer's first record.
    Armed,
    /// Until the new peer's archive second passes this.
    Until(u32),
}

impl Delivery {
    /// The state in folder `dir`: resumes from its bookmark when `resume` (a missing bookmark is a
    /// first start), else starts afresh. A damaged bookmark is an error that names the file.
    pub fn open(dir: &Path, resume: bool) -> Result<Delivery, String> {
        Delivery::open_ha(dir, resume, None)
    }

    /// [`open`](Self::open) for an FMC that may be an HA pair (`ha`), with its identity window.
    pub fn open_ha(dir: &Path, resume: bool, ha: Option<HaOptions>) -> Result<Delivery, String> {
        let bookmark = if resume { Bookmark::load(dir)? } else { None };
        let bookmark = bookmark.unwrap_or_default();
        let peers = ha
            .as_ref()
            .map(|h| h.peers.clone())
            .unwrap_or_else(|| vec![String::new()]);
        let peer = if bookmark.peer.is_empty() {
            0
        } else {
            peers
                .iter()
                .position(|p| *p == bookmark.peer)
                .unwrap_or(usize::MAX)
        };
        let (cursor, resume_point) = if peer == usize::MAX {
            tracing::warn!(
                "the bookmark in {} is from FMC {}, which is not among this FMC's hosts any \
                 more: resuming from the first host as after a switch of peers",
                dir.display(),
                bookmark.peer
            );
            (
                Cursor::default(),
                ResumePoint {
                    peer: usize::MAX,
                    second: bookmark.second,
                },
            )
        } else {
            (
                bookmark.cursor(),
                ResumePoint {
                    peer,
                    second: bookmark.second,
                },
            )
        };
        let ha = match ha {
            Some(h) if resume => Some(Ha {
                window: Window::load(dir, h.window)?,
                overlap: h.overlap_secs,
                check: Check::Off,
            }),
            Some(h) => Some(Ha {
                window: Window::new(h.window),
                overlap: h.overlap_secs,
                check: Check::Off,
            }),
            None => None,
        };
        Ok(Delivery {
            dir: Some(dir.to_path_buf()),
            cursor,
            tracker: Tracker::with_peers(bookmark, peers),
            peer,
            resume: resume_point,
            ha,
            delivered_seq: 0,
            window_saved: std::time::Instant::now(),
        })
    }

    /// Delivery followed in memory only: no bookmark is read or saved (`estreamer-cef replay`
    /// of a recorded stream must leave the service's state as it is).
    pub fn in_memory() -> Delivery {
        let peers = vec![String::new()];
        Delivery {
            dir: None,
            cursor: Cursor::default(),
            tracker: Tracker::with_peers(Bookmark::default(), peers),
            peer: 0,
            resume: ResumePoint::default(),
            ha: None,
            delivered_seq: 0,
            window_saved: std::time::Instant::now(),
        }
    }

    /// The archive second a restart resumes from (0: no bookmark).
    pub fn bookmark_second(&self) -> u32 {
        self.tracker.bookmark().second
    }

    /// The newest archive second received: where a new connection resumes.
    pub fn resume_second(&self) -> u32 {
        self.resume.second
    }

    /// Where a new connection resumes, and on which peer's clock.
    pub fn resume_point(&self) -> ResumePoint {
        self.resume
    }

    /// A new connection to the FMC, to peer `peer`. The same peer resumes from
    /// [`resume_second`](Self::resume_second): the records of that second it sends again are
    /// skipped. Another peer (an HA switch) has its own archive clock: its records are
    /// admitted, and the events among them already delivered are recognized by identity.
    pub fn reconnected(&mut self, peer: usize) {
        if peer == self.peer {
            self.cursor.begin_replay();
            return;
        }
        self.peer = peer;
        self.cursor = Cursor::default();
        if let Some(ha) = &mut self.ha {
            ha.check = Check::Armed;
        }
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
        if second > 0 {
            self.resume = ResumePoint {
                peer: self.peer,
                second: self.cursor.second(),
            };
            if let Some(ha) = &mut self.ha {
                ha.check = match ha.check {
                    // The new peer was asked from `overlap` before the old resume second: what
                    // it may repeat lies within twice that of its first record.
                    Check::Armed => Check::Until(second.saturating_add(2 * ha.overlap)),
                    Check::Until(end) if second > end => Check::Off,
                    c => c,
                };
            }
        }
        self.tracker
            .admitted_from(self.peer.min(u16::MAX as usize) as u16, second, id);
        true
    }

    /// An HA pair: event identities should be computed (to remember them, or to check them).
    pub fn wants_identities(&self) -> bool {
        self.ha.is_some()
    }

    /// Whether events admitted now must be checked against the identity window (after a
    /// switch of peers).
    pub fn checking(&self) -> bool {
        self.ha
            .as_ref()
            .is_some_and(|h| !matches!(h.check, Check::Off))
    }

    /// Whether an event with device identity `id` was delivered before and must be dropped.
    /// `check`: it was admitted while [`checking`](Self::checking).
    pub fn is_repeat(&self, id: u64, check: bool) -> bool {
        check && self.ha.as_ref().is_some_and(|h| h.window.contains(id))
    }

    /// An event with device identity `id` was handed to the outputs as event `seq`.
    pub fn remember(&mut self, id: u64, seq: u64) {
        if let Some(ha) = &mut self.ha {
            ha.window.insert(id, seq);
        }
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
        self.delivered_seq = seq;
        self.tracker.delivered(seq);
    }

    /// Saves the bookmark if it moved since the last save; returns its second then.
    pub fn save_if_moved(&mut self) -> std::io::Result<Option<u32>> {
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        match self.tracker.take_changed() {
            Some(b) => {
                b.save(dir)?;
                // The window is larger: saved less often (a crash between two saves can only
                // cause duplicates after an HA switch, never a loss).
                if self.window_saved.elapsed() >= WINDOW_EVERY {
                    self.save_window()?;
                    self.window_saved = std::time::Instant::now();
                }
                Ok(Some(b.second))
            }
            None => Ok(None),
        }
    }

    /// The bookmark as it stands, saved (at shutdown) unless nothing was ever delivered.
    pub fn save(&self) -> std::io::Result<Bookmark> {
        let b = self.tracker.bookmark();
        if b.second > 0
            && let Some(dir) = &self.dir
        {
            b.save(dir)?;
            self.save_window()?;
        }
        Ok(b)
    }

    fn save_window(&self) -> std::io::Result<()> {
        match (&self.ha, &self.dir) {
            (Some(ha), Some(dir)) => ha.window.save(dir, self.delivered_seq),
            _ => Ok(()),
        }
    }

    /// The state folder (`None`: [`in_memory`](Self::in_memory), nothing is saved).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
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

    #[test]
    fn an_ha_switch_admits_the_new_peers_clock_and_drops_repeats_by_identity() {
        let dir = tempfile::tempdir().unwrap();
        let ha = HaOptions {
            peers: vec!["a:8302".into(), "b:8302".into()],
            window: 100,
            overlap_secs: 60,
        };
        let mut d = Delivery::open_ha(dir.path(), true, Some(ha.clone())).unwrap();
        d.reconnected(0);
        assert!(d.admit(&body(1000, 1)));
        assert!(!d.checking(), "no switch yet");
        d.remember(0xa1, 1);
        d.emitted(1);
        d.delivered(1);
        assert_eq!(
            d.resume_point(),
            ResumePoint {
                peer: 0,
                second: 1000
            }
        );
        // Switch to b, whose clock is behind: its records are admitted, the bookmark and the
        // resume point stay on a's second until b's are delivered.
        d.reconnected(1);
        assert!(
            d.admit(&body(950, 1)),
            "another peer's clock: no archive-second skip"
        );
        assert!(d.checking());
        assert!(d.is_repeat(0xa1, true), "delivered before the switch");
        assert!(!d.is_repeat(0xb2, true));
        d.remember(0xb2, 2);
        d.emitted(2);
        assert_eq!(
            d.resume_point(),
            ResumePoint {
                peer: 1,
                second: 950
            }
        );
        assert_eq!(
            d.save().unwrap().peer,
            "a:8302",
            "b's record is not delivered yet"
        );
        d.delivered(2);
        let b = d.save().unwrap();
        assert_eq!((b.peer.as_str(), b.second), ("b:8302", 950));
        // Past twice the overlap on b's clock, identities are no longer compared.
        assert!(d.admit(&body(950 + 121, 3)));
        assert!(!d.checking());
        drop(d);

        // A restart resumes on b, with the delivered identities.
        let d = Delivery::open_ha(dir.path(), true, Some(ha)).unwrap();
        assert_eq!(
            d.resume_point(),
            ResumePoint {
                peer: 1,
                second: 950
            }
        );
        assert!(d.is_repeat(0xa1, true) && d.is_repeat(0xb2, true));
    }
}
