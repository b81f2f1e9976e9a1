//! `estreamer-cef replay`, the real binary: the shipped sample through the configured outputs to
//! a real receiver (syslog-ng, the CEF parsed by `cefp`), an output whose receiver is down, the
//! pace of `--rate`, a file that is not a stream, and no state touched.

#[path = "support/replay.rs"]
mod replay;
#[path = "support/syslog_ng.rs"]
mod syslog_ng;

use std::path::Path;
use std::time::Duration;

use replay::{decoded_cef, replay, sample, text};
use syslog_ng::{SyslogNg, free_port};

/// A configuration with these `[[output]]` tables and a state folder in `dir`.
fn config(dir: &Path, outputs: &str) -> std::path::PathBuf {
    let p = dir.join("estreamer-cef.toml");
    std::fs::write(
        &p,
        format!(
            "[fmc]\nhost = \"fmc.example.org\"\n\n[state]\ndir = \"{}\"\n\n{outputs}",
            dir.join("state").display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn syslog_ng_gets_every_event_of_the_sample_once_and_no_state_is_written() {
    let sng = SyslogNg::start();
    let dir = tempfile::tempdir().unwrap();
    let file = sample(dir.path());
    let cfg = config(
        dir.path(),
        &format!(
            "[[output]]\ntransport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\n\
             framing = \"octet-counting\"\nhostname = \"fwd01.example\"\n",
            sng.tcp_port
        ),
    );
    let expected = decoded_cef(&cfg, &file);
    assert!(
        expected.len() > 50,
        "the sample maps to {} events",
        expected.len()
    );

    let (out, _) = replay(&cfg, &[file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "replay failed:\n{stderr}");
    let n = expected.len();
    assert!(
        stderr.contains(&format!(
            "output[0] tcp://127.0.0.1:{}: {n} of {n} events delivered",
            sng.tcp_port
        )),
        "{stderr}"
    );

    let records = sng.wait_for(n, Duration::from_secs(60));
    let mut got: Vec<String> = records
        .iter()
        .map(|r| {
            assert!(r["cef"].get("error").is_none(), "cefp rejected: {r}");
            assert_eq!(r["syslog"]["host"], "fwd01.example", "{r}");
            r["syslog"]["msg"]
                .as_str()
                .unwrap()
                .trim_start_matches('\u{feff}')
                .to_string()
        })
        .collect();
    let mut want = expected.clone();
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len(), "events received by syslog-ng");
    assert_eq!(
        got, want,
        "syslog-ng got other events than decode --cef shows"
    );
    assert!(
        !dir.path().join("state").exists(),
        "replay wrote into the state folder"
    );
}

#[test]
fn a_receiver_that_refuses_connections_fails_the_replay_after_the_bounded_wait() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample(dir.path());
    let port = free_port(); // nothing listens there
    let cfg = config(
        dir.path(),
        &format!(
            "[[output]]\ntransport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             shutdown_timeout = \"2s\"\n\n\
             [[output]]\ntransport = \"file\"\npath = \"{}\"\n",
            dir.path().join("events.log").display()
        ),
    );
    let (out, took) = replay(&cfg, &[file.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "no reason given:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("output[0] tcp://127.0.0.1:{port} delivered 0 of"))
            && stderr.contains("within 2 s (shutdown_timeout)"),
        "{stderr}"
    );
    // The other output delivered everything all the same.
    let lines = std::fs::read_to_string(dir.path().join("events.log")).unwrap();
    assert!(
        stderr.contains(&format!(
            "output[1] file:{}: {n} of {n} events delivered",
            dir.path().join("events.log").display(),
            n = lines.lines().count()
        )),
        "{stderr}"
    );
    // Bounded: the 2 s wait, not a retry forever (generous for a loaded machine).
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(!dir.path().join("state").exists());
}

#[test]
fn rate_spaces_the_events() {
    let dir = tempfile::tempdir().unwrap();
    let file = sample(dir.path());
    let log = dir.path().join("events.log");
    let cfg = config(
        dir.path(),
        &format!(
            "[[output]]\ntransport = \"file\"\npath = \"{}\"\n",
            log.display()
        ),
    );
    let events = decoded_cef(&cfg, &file).len();
    let rate = 40;
    let (out, took) = replay(&cfg, &[file.to_str().unwrap(), "--rate", "40"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().lines().count(),
        events
    );
    // Event k leaves no earlier than k/rate s after the start (a slow machine only adds).
    let least = Duration::from_secs_f64((events - 1) as f64 / rate as f64);
    assert!(
        took >= least,
        "{events} events at {rate}/s took {took:?}, under {least:?}"
    );
}

#[test]
fn a_file_that_is_not_a_stream_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "these are not eStreamer messages\n").unwrap();
    let log = dir.path().join("events.log");
    let cfg = config(
        dir.path(),
        &format!(
            "[[output]]\ntransport = \"file\"\npath = \"{}\"\n",
            log.display()
        ),
    );
    let (out, _) = replay(&cfg, &[notes.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("notes.txt: not a recorded eStreamer stream past byte 0"),
        "{stderr}"
    );
    let (out, _) = replay(&cfg, &[dir.path().join("missing").to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("cannot read") && text(&out.stderr).contains("missing"),
        "{}",
        text(&out.stderr)
    );
}
