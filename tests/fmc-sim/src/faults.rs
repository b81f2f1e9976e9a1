//! Faults the simulated FMC can be told to commit, to show that the client survives what real
//! FMCs and networks do (reference section 9). Written on the command line as `name[:args]`.
//!
//! "Message N" counts the data messages (MessageBundles or EventData) of one session, from 1.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `close-after:N` — write part of message N, then close the connection, in the first
    /// session that reaches message N only (a broken pipe mid-stream).
    CloseAfter(u32),
    /// `close-every:N` — the same in every session.
    CloseEvery(u32),
    /// `error-after:N[:CODE[:TEXT]]` — after message N send an Error message and close, in the
    /// first session that gets there.
    ErrorAfter { after: u32, code: i32, text: String },
    /// `stall-after:N:SECS` — after message N send nothing at all (not even keepalives) for
    /// SECS seconds, in the first session that gets there; then carry on.
    StallAfter { after: u32, duration: Duration },
    /// `unknown-record-every:N` — after every Nth event record insert a record of type 9999,
    /// which no catalog knows.
    UnknownRecordEvery(u32),
    /// `bad-version` — the first message of every session has header version 2 (defect
    /// CSCve44987).
    BadVersion,
    /// `close-after-handshake` — close every connection right after the TLS handshake without
    /// a message, as the FMC does when the certificate CN does not match the client's address.
    CloseAfterHandshake,
    /// `no-estreamer-service` — StreamingInformation lists services 5001 and 5000 but not 6667.
    NoEstreamerService,
    /// `exit-after:N` — after message N, in the first session that gets there, stop like an
    /// FMC that dies: close every connection (no TLS goodbye) and the listening socket
    /// (connections are refused afterwards); `estreamer-cef-sim simulate` then exits.
    ExitAfter(u32),
}

/// The default code and text of `error-after:N`.
pub const DEFAULT_ERROR_CODE: i32 = 19;
pub const DEFAULT_ERROR_TEXT: &str = "simulated FMC error";

/// The accepted syntax, for error messages and `--help`.
pub const SYNTAX: &str = "close-after:N, close-every:N, error-after:N[:CODE[:TEXT]], \
    stall-after:N:SECS, exit-after:N, unknown-record-every:N, bad-version, \
    close-after-handshake, no-estreamer-service";

impl Fault {
    /// Whether the fault fires once per simulator run (the first session that gets there)
    /// rather than in every session.
    pub fn once(&self) -> bool {
        matches!(
            self,
            Fault::CloseAfter(_)
                | Fault::ErrorAfter { .. }
                | Fault::StallAfter { .. }
                | Fault::ExitAfter(_)
        )
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Fault, String> {
        let s = s.trim();
        let mut parts = s.splitn(4, ':');
        let name = parts.next().unwrap_or_default();
        let args: Vec<&str> = parts.collect();
        let bad = |why: &str| format!("invalid fault {s:?}: {why} (faults: {SYNTAX})");
        let count = |i: usize| -> Result<u32, String> {
            let a = args
                .get(i)
                .ok_or_else(|| bad("a message count N ≥ 1 is missing"))?;
            match a.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(bad(&format!("{a:?} is not a count ≥ 1"))),
            }
        };
        let no_args = |f: Fault| {
            if args.is_empty() {
                Ok(f)
            } else {
                Err(bad("this fault takes no arguments"))
            }
        };
        let at_most = |n: usize| {
            if args.len() > n {
                Err(bad("too many arguments"))
            } else {
                Ok(())
            }
        };
        match name {
            "close-after" => at_most(1).and(count(0)).map(Fault::CloseAfter),
            "close-every" => at_most(1).and(count(0)).map(Fault::CloseEvery),
            "error-after" => {
                let after = count(0)?;
                let code = match args.get(1) {
                    None => DEFAULT_ERROR_CODE,
                    Some(c) => c
                        .parse()
                        .map_err(|_| bad(&format!("{c:?} is not an error code (an integer)")))?,
                };
                let text = args
                    .get(2)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| DEFAULT_ERROR_TEXT.to_string());
                Ok(Fault::ErrorAfter { after, code, text })
            }
            "stall-after" => {
                at_most(2)?;
                let after = count(0)?;
                let secs = args
                    .get(1)
                    .ok_or_else(|| bad("the stall's length in seconds is missing"))?;
                let secs: f64 = secs
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e7)
                    .ok_or_else(|| bad(&format!("{secs:?} is not a number of seconds")))?;
                Ok(Fault::StallAfter {
                    after,
                    duration: Duration::from_secs_f64(secs),
                })
            }
            "exit-after" => at_most(1).and(count(0)).map(Fault::ExitAfter),
            "unknown-record-every" => at_most(1).and(count(0)).map(Fault::UnknownRecordEvery),
            "bad-version" => no_args(Fault::BadVersion),
            "close-after-handshake" => no_args(Fault::CloseAfterHandshake),
            "no-estreamer-service" => no_args(Fault::NoEstreamerService),
            _ => Err(bad("unknown fault")),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::CloseAfter(n) => write!(f, "close-after:{n}"),
            Fault::CloseEvery(n) => write!(f, "close-every:{n}"),
            Fault::ErrorAfter { after, code, text } => {
                write!(f, "error-after:{after}:{code}:{text}")
            }
            Fault::StallAfter { after, duration } => {
                write!(f, "stall-after:{after}:{}", duration.as_secs_f64())
            }
            Fault::ExitAfter(n) => write!(f, "exit-after:{n}"),
            Fault::UnknownRecordEvery(n) => write!(f, "unknown-record-every:{n}"),
            Fault::BadVersion => f.write_str("bad-version"),
            Fault::CloseAfterHandshake => f.write_str("close-after-handshake"),
            Fault::NoEstreamerService => f.write_str("no-estreamer-service"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_print_back() {
        for text in [
            "close-after:3",
            "close-every:1",
            "error-after:2:19:No space: really",
            "stall-after:4:2.5",
            "exit-after:5",
            "unknown-record-every:10",
            "bad-version",
            "close-after-handshake",
            "no-estreamer-service",
        ] {
            let f: Fault = text.parse().unwrap();
            assert_eq!(f.to_string(), text);
        }
        assert!("exit-after:1".parse::<Fault>().unwrap().once());
        assert_eq!(
            "error-after:2".parse::<Fault>().unwrap(),
            Fault::ErrorAfter {
                after: 2,
                code: DEFAULT_ERROR_CODE,
                text: DEFAULT_ERROR_TEXT.into()
            }
        );
    }

    #[test]
    fn bad_faults_say_what_is_accepted() {
        for (text, says) in [
            ("close-after", "missing"),
            ("close-after:0", "not a count"),
            ("close-after:x", "not a count"),
            ("close-after:1:2", "too many"),
            ("stall-after:3", "seconds is missing"),
            ("exit-after", "missing"),
            ("exit-after:0", "not a count"),
            ("exit-after:2:3", "too many"),
            ("stall-after:3:-1", "not a number of seconds"),
            ("error-after:1:abc", "not an error code"),
            ("bad-version:1", "no arguments"),
            ("explode", "unknown fault"),
        ] {
            let e = text.parse::<Fault>().unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
            assert!(e.contains("close-after:N"), "{e}");
        }
    }
}
