//! The saved bookmark, `bookmark.json`: the archive second of the newest delivered record plus
//! the identities of the records already delivered at that second (the FMC resumes
//! inclusively). Written atomically.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cursor::Cursor;
use crate::metadata::store::write_atomic;

pub const FILE_NAME: &str = "bookmark.json";

/// The saved bookmark.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bookmark {
    /// Archive second to resume from (0: nothing delivered yet).
    pub second: u32,
    /// HA pair: the peer (`host:port`) whose archive clock `second` is on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer: String,
    /// Identities (hex) of the records already delivered at `second`.
    pub delivered_at_second: Vec<String>,
    /// When it was written (RFC 3339), for people reading the file.
    #[serde(default)]
    pub saved_at: String,
}

impl Bookmark {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE_NAME)
    }

    /// Reads the bookmark. Missing → None (first start); damaged → an error that says what to do.
    pub fn load(dir: &Path) -> Result<Option<Bookmark>, String> {
        let path = Bookmark::path(dir);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read the bookmark {}: {e}", path.display())),
        };
        serde_json::from_slice(&data).map(Some).map_err(|e| {
            format!(
                "the bookmark {} is damaged ({e}); move it away to start from fmc.start, or fix it",
                path.display()
            )
        })
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<PathBuf> {
        let mut b = self.clone();
        b.saved_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let data = serde_json::to_vec_pretty(&b).map_err(std::io::Error::other)?;
        write_atomic(&Bookmark::path(dir), &data)
    }

    /// The resume cursor this bookmark describes.
    pub fn cursor(&self) -> Cursor {
        Cursor::new(
            self.second,
            self.delivered_at_second
                .iter()
                .filter_map(|h| u64::from_str_radix(h, 16).ok()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookmark_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Bookmark::load(dir.path()).unwrap(), None);
        let b = Bookmark {
            second: 42,
            peer: String::new(),
            delivered_at_second: vec!["00000000000000ff".into()],
            saved_at: String::new(),
        };
        b.save(dir.path()).unwrap();
        let back = Bookmark::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.second, 42);
        let mut c = back.cursor();
        assert!(!c.admit(42, 0xff));
        assert!(c.admit(42, 0xfe));
        std::fs::write(Bookmark::path(dir.path()), b"{").unwrap();
        assert!(Bookmark::load(dir.path()).unwrap_err().contains("damaged"));
    }
}
