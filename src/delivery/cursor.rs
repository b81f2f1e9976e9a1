//! Where the stream stands: the newest archive second received and the identities of the records
//! already seen at that second. The FMC resumes inclusively from a second (reference 2.3), so
//! after a reconnect or a restart the records of that second come again; the cursor lets exactly
//! the ones already handled be skipped, and nothing else.
//!
//! Records without an archive timestamp (metadata) are never skipped: they only refresh the cache.
//!
//! A record identical to one already seen at the newest second is always a duplicate. Records
//! *older* than the newest second are skipped only while replaying (from a resume until the
//! stream passes the resume second): the FMC may restart an archive file before the requested
//! second, but a live stream whose archive timestamps are not in order must lose nothing.

use rustc_hash::FxHashSet;

/// A record's identity: a 64-bit hash (XXH3) of its whole EventData body. Stable across versions
/// and restarts, so it can be persisted with the bookmark.
pub fn identity(body: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(body)
}

/// Upper bound of identities kept for one second (a very busy FMC second). Past it the oldest are
/// forgotten and a replay could repeat some of them: duplicates, never loss.
pub const MAX_IDENTITIES: usize = 1_000_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    second: u32,
    ids: FxHashSet<u64>,
    replaying: bool,
}

impl Cursor {
    pub fn new(second: u32, ids: impl IntoIterator<Item = u64>) -> Cursor {
        Cursor {
            second,
            ids: ids.into_iter().collect(),
            replaying: second > 0,
        }
    }

    /// A new connection resumes from `second()`: skip what comes again.
    pub fn begin_replay(&mut self) {
        self.replaying = self.second > 0;
    }

    /// The second to resume from.
    pub fn second(&self) -> u32 {
        self.second
    }

    pub fn identities(&self) -> impl Iterator<Item = u64> + '_ {
        self.ids.iter().copied()
    }

    /// Whether a record is new (and records it).
    pub fn admit(&mut self, archive_second: u32, identity: u64) -> bool {
        if archive_second == 0 {
            return true;
        }
        if archive_second < self.second {
            return !self.replaying;
        }
        if archive_second > self.second {
            self.second = archive_second;
            self.ids.clear();
            self.replaying = false;
        }
        if self.ids.len() >= MAX_IDENTITIES {
            self.ids.clear();
        }
        self.ids.insert(identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayed_records_of_the_resume_second_are_skipped_once() {
        let mut c = Cursor::default();
        assert!(c.admit(100, 1));
        assert!(c.admit(100, 2));
        assert!(c.admit(101, 3));
        // Reconnect from 101: the FMC may restart its archive file before 101, then sends 101's
        // records again, then new ones.
        c.begin_replay();
        assert!(!c.admit(100, 2));
        assert!(!c.admit(101, 3));
        assert!(c.admit(101, 4));
        assert!(c.admit(102, 5));
        // Live again: an out-of-order archive second is not a duplicate.
        assert!(c.admit(99, 6));
        assert!(
            !c.admit(102, 5),
            "the same record twice at the newest second is"
        );
        // Metadata has no archive second and always passes.
        assert!(c.admit(0, 9) && c.admit(0, 9));
    }
}
