//! The identities of delivered events of an FMC HA pair, kept so that what the new peer sends
//! again after a switch is recognized and dropped. Bounded (the oldest are forgotten first: a
//! duplicate then, never a loss) and saved in the state folder, delivered ones only: an event
//! taken but not yet delivered when the forwarder stopped must come again.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashSet;

use crate::metadata::store::write_atomic;

pub const FILE_NAME: &str = "identities.bin";
const MAGIC: &[u8; 8] = b"ECIDW01\n";

#[derive(Debug)]
pub struct Window {
    ids: FxHashSet<u64>,
    /// (identity, event sequence number) in the order emitted; loaded ones have seq 0.
    order: VecDeque<(u64, u64)>,
    capacity: usize,
}

impl Window {
    pub fn new(capacity: usize) -> Window {
        Window {
            ids: FxHashSet::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE_NAME)
    }

    /// The window saved in `dir` (empty when there is none). A damaged file is an error that
    /// names it.
    pub fn load(dir: &Path, capacity: usize) -> Result<Window, String> {
        let mut w = Window::new(capacity);
        let path = Window::path(dir);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(w),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let body = data
            .strip_prefix(MAGIC.as_slice())
            .filter(|b| b.len() % 8 == 0)
            .ok_or_else(|| {
                format!(
                    "{} is damaged; move it away (after an HA switch some events may then be \
                     sent twice)",
                    path.display()
                )
            })?;
        for c in body.chunks_exact(8) {
            w.insert(u64::from_le_bytes(c.try_into().unwrap_or_default()), 0);
        }
        Ok(w)
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn contains(&self, id: u64) -> bool {
        self.ids.contains(&id)
    }

    /// Remembers an identity emitted as event `seq`; false when it was already known.
    pub fn insert(&mut self, id: u64, seq: u64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back((id, seq));
        while self.order.len() > self.capacity {
            if let Some((old, _)) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }

    /// Saves the identities of events up to `delivered` (every output has them).
    pub fn save(&self, dir: &Path, delivered: u64) -> std::io::Result<()> {
        let mut data = Vec::with_capacity(MAGIC.len() + self.order.len() * 8);
        data.extend_from_slice(MAGIC);
        for (id, seq) in &self.order {
            if *seq <= delivered {
                data.extend_from_slice(&id.to_le_bytes());
            }
        }
        write_atomic(&Window::path(dir), &data).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_delivered_identities_are_saved_and_the_oldest_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Window::new(3);
        assert!(w.insert(1, 1) && w.insert(2, 2) && w.insert(3, 3));
        assert!(!w.insert(2, 4), "known");
        assert!(w.insert(4, 5));
        assert!(!w.contains(1), "forgotten past the capacity");
        w.save(dir.path(), 3).unwrap();
        let back = Window::load(dir.path(), 10).unwrap();
        assert!(back.contains(2) && back.contains(3));
        assert!(
            !back.contains(4),
            "not delivered: must come again after a restart"
        );
        std::fs::write(Window::path(dir.path()), b"junk").unwrap();
        assert!(Window::load(dir.path(), 3).unwrap_err().contains("damaged"));
    }
}
