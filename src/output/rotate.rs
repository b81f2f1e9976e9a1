//! An append-only file with size-based rotation (`path` → `path.1` → … → `path.N`), used by file
//! outputs and the tap. Blocking I/O: callers run it on a blocking thread.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    /// 0 = never rotate.
    rotate_bytes: u64,
    keep: u32,
    file: Option<File>,
    size: u64,
}

impl RotatingFile {
    /// Opens (creating if needed) `path` for appending.
    pub fn open(path: &Path, rotate_bytes: u64, keep: u32) -> io::Result<RotatingFile> {
        let mut f = RotatingFile {
            path: path.to_path_buf(),
            rotate_bytes,
            keep,
            file: None,
            size: 0,
        };
        f.reopen()?;
        Ok(f)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn reopen(&mut self) -> io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    /// Appends `bytes` as one write (rotating first if they would not fit) and flushes them to
    /// the operating system. After an error the next call reopens the file.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.reopen()?;
        }
        if self.rotate_bytes > 0
            && self.size > 0
            && self.size + bytes.len() as u64 > self.rotate_bytes
        {
            self.rotate()?;
        }
        let file = self.file.as_mut().expect("opened above");
        match file.write_all(bytes).and_then(|_| file.flush()) {
            Ok(()) => {
                self.size += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.file = None;
                Err(e)
            }
        }
    }

    fn numbered(&self, n: u32) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            std::fs::remove_file(&self.path).or_else(ignore_missing)?;
        } else {
            std::fs::remove_file(self.numbered(self.keep)).or_else(ignore_missing)?;
            for n in (1..self.keep).rev() {
                std::fs::rename(self.numbered(n), self.numbered(n + 1)).or_else(ignore_missing)?;
            }
            std::fs::rename(&self.path, self.numbered(1)).or_else(ignore_missing)?;
        }
        self.reopen()
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.log");
        let mut f = RotatingFile::open(&p, 25, 2).unwrap();
        for i in 0..7 {
            f.write_all(format!("line {i} 0123456789\n").as_bytes())
                .unwrap(); // 18 bytes: one per file
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "line 6 0123456789\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.log.1")).unwrap(),
            "line 5 0123456789\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.log.2")).unwrap(),
            "line 4 0123456789\n"
        );
        assert!(!dir.path().join("out.log.3").exists());
    }

    #[test]
    fn appends_to_an_existing_file_and_counts_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.log");
        std::fs::write(&p, "0123456789012345678901234\n").unwrap();
        let mut f = RotatingFile::open(&p, 30, 1).unwrap();
        f.write_all(b"next\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "next\n");
        assert!(
            std::fs::read_to_string(dir.path().join("out.log.1"))
                .unwrap()
                .starts_with("0123")
        );
    }
}
