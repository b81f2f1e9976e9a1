//! Persistence of the metadata cache: `metadata.cache` in the state directory, written atomically
//! (temporary file, fsync, rename, fsync of the directory) so a crash leaves the old or the new
//! file, never half of one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cache::Cache;
use super::key::Key;

pub const FILE_NAME: &str = "metadata.cache";
const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Stored {
    format: u32,
    /// (map name, key as hex, value), oldest first.
    entries: Vec<(String, String, String)>,
}

/// Writes the cache. Called when it changed, every few seconds at most, and at shutdown.
pub fn save(cache: &Cache, dir: &Path) -> std::io::Result<PathBuf> {
    let stored = Stored {
        format: FORMAT,
        entries: cache
            .entries()
            .map(|(map, key, value)| (map.to_string(), hex(key.as_bytes()), value.to_string()))
            .collect(),
    };
    let data = serde_json::to_vec(&stored).map_err(std::io::Error::other)?;
    write_atomic(&dir.join(FILE_NAME), &data)
}

/// Loads a saved cache into `cache`. A missing file is not an error (first start); a damaged one
/// is reported and ignored, so metadata is simply relearned from the FMC.
pub fn load(cache: &mut Cache, dir: &Path) -> Result<usize, String> {
    let path = dir.join(FILE_NAME);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let stored: Stored = serde_json::from_slice(&data).map_err(|e| {
        format!(
            "{}: not a metadata cache ({e}); it will be rebuilt",
            path.display()
        )
    })?;
    if stored.format != FORMAT {
        return Err(format!(
            "{}: cache format {} is not {FORMAT}; it will be rebuilt",
            path.display(),
            stored.format
        ));
    }
    let rules = cache.rules();
    let mut n = 0;
    for (map, key, value) in stored.entries {
        let (Some(map), Some(key)) = (
            rules.map_id(&map),
            unhex(&key).and_then(|b| Key::from_bytes(&b)),
        ) else {
            continue;
        };
        cache.insert(map, key, &value);
        n += 1;
    }
    cache.take_dirty();
    Ok(n)
}

/// Writes `data` to `path` atomically.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path.to_path_buf())
}

/// `s` with everything but ASCII letters, digits, `.` and `-` replaced by `_`: safe as (part of)
/// a file name.
pub fn safe_file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
