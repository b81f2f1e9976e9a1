//! Errors found while setting up an output or the tap (bad values, unreadable files, TLS material).
//! Errors while running (a receiver going away) are not errors of this kind: outputs retry forever
//! and report them through logs and counters.

use std::path::PathBuf;

/// A setup problem, worded to say what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    /// A config value is invalid.
    #[error("{key} {problem}")]
    Config { key: String, problem: String },
    /// A file named in the config cannot be used.
    #[error("{key}: cannot {action} {path}: {source}{hint}", path = path.display())]
    File {
        key: String,
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
        /// Starts with "; " when present.
        hint: String,
    },
    /// TLS material (CA, client certificate, fingerprint) is unusable.
    #[error("{key}: {problem}")]
    Tls { key: String, problem: String },
}

impl From<crate::config::output::InvalidKey> for SyslogError {
    fn from(e: crate::config::output::InvalidKey) -> Self {
        SyslogError::Config {
            key: e.key,
            problem: e.problem,
        }
    }
}

impl SyslogError {
    pub(crate) fn file(
        key: impl Into<String>,
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        let hint = match source.kind() {
            std::io::ErrorKind::NotFound => "; check the path (relative paths start at the working directory)".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "; the service runs unprivileged: give its user read access (or write access for outputs)".to_string()
            }
            _ => String::new(),
        };
        SyslogError::File {
            key: key.into(),
            action,
            path: path.into(),
            source,
            hint,
        }
    }
}
