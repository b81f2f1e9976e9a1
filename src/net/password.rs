//! PKCS12 passwords: given inline (`pkcs12_password`) or read from a file
//! (`pkcs12_password_file`), the same way for the FMC and for `tls` outputs.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::secret::Secret;

/// A password file that cannot be read. The message names the file and the key that names it.
#[derive(Debug)]
pub struct PasswordFileError {
    pub key: String,
    pub path: PathBuf,
    pub source: io::Error,
}

impl PasswordFileError {
    /// The message without the key in front, for callers that print the key themselves.
    pub fn problem(&self) -> String {
        format!(
            "cannot read the password file {}: {}{}",
            self.path.display(),
            self.source,
            hint(&self.source)
        )
    }
}

impl fmt::Display for PasswordFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem())
    }
}

impl std::error::Error for PasswordFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound => {
            "; check the path (relative paths start at the working directory)"
        }
        io::ErrorKind::PermissionDenied => {
            "; the service runs unprivileged: give its user read access (mode 0640, group estreamer-cef)"
        }
        io::ErrorKind::InvalidData => "; the file must hold the password as UTF-8 text",
        _ => "",
    }
}

/// Reads a password file: its first line, without the line end (LF or CRLF), so that
/// `echo secret > file` and a file saved on Windows both work. An empty file is an empty
/// password, which the FMC allows. `key` names the setting in errors (`fmc.pkcs12_password_file`).
pub fn read_password_file(path: &Path, key: &str) -> Result<Secret, PasswordFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| PasswordFileError {
        key: key.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    let first = text.split('\n').next().unwrap_or_default();
    Ok(Secret::new(first.strip_suffix('\r').unwrap_or(first)))
}

/// The PKCS12 password from the two keys: the inline one wins, then the file, else empty.
/// `file_key` names the file's key in errors.
pub fn pkcs12_password(
    inline: Option<&Secret>,
    file: Option<&Path>,
    file_key: &str,
) -> Result<Secret, PasswordFileError> {
    match (inline, file) {
        (Some(p), _) => Ok(p.clone()),
        (None, Some(f)) => read_password_file(f, file_key),
        (None, None) => Ok(Secret::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pass");
        std::fs::write(&p, bytes).unwrap();
        read_password_file(&p, "k").unwrap().expose().to_string()
    }

    #[test]
    fn first_line_without_its_line_end() {
        assert_eq!(read(b"s3cret\n"), "s3cret");
        assert_eq!(read(b"s3cret\r\n"), "s3cret");
        assert_eq!(read(b"s3cret"), "s3cret");
        assert_eq!(read(b"s3cret\nsecond line\n"), "s3cret");
        assert_eq!(read(b" spaced pass \n"), " spaced pass ");
        assert_eq!(read(b""), "");
        assert_eq!(read(b"\n"), "");
    }

    #[test]
    fn missing_file_names_the_file_and_the_key() {
        let e = read_password_file(
            Path::new("/nonexistent/client.pass"),
            "output[2].pkcs12_password_file",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("output[2].pkcs12_password_file: "), "{e}");
        assert!(e.contains("/nonexistent/client.pass"), "{e}");
        assert!(e.contains("check the path"), "{e}");
    }

    #[test]
    fn inline_password_wins_over_the_file() {
        let inline = Secret::new("inline");
        let p = pkcs12_password(Some(&inline), Some(Path::new("/nonexistent")), "k").unwrap();
        assert_eq!(p.expose(), "inline");
        assert_eq!(pkcs12_password(None, None, "k").unwrap().expose(), "");
        assert!(pkcs12_password(None, Some(Path::new("/nonexistent")), "k").is_err());
    }
}
