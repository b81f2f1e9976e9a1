//! File output (lines, rotation) and the tap (JSON and wire formats).

#[path = "support/syslog_events.rs"]
mod syslog_events;

use std::time::Duration;

use estreamer_cef::output::{
    FrameEncoder, Output, OutputConfig, TapConfig, TapRecord, WireReader, spawn_tap,
};
use syslog_events::*;
use syslog_loose::{Variant, parse_message};

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn file_output_writes_cef_lines_and_rotates_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.cef");
    let out = Running::start(&format!(
        "transport = \"file\"\npath = \"{}\"\nrotate_bytes = 2000\nkeep = 2",
        path.display()
    ));
    out.send_all(batches(1, 30, 3)).await;
    let (progress, stats) = out.finish(Duration::from_secs(10)).await;
    assert_eq!(progress, 30);
    assert_eq!(stats.snapshot().sent, 30);

    let current = lines(&path);
    let one = lines(&dir.path().join("events.cef.1"));
    let two = lines(&dir.path().join("events.cef.2"));
    assert!(
        !dir.path().join("events.cef.3").exists(),
        "only `keep` rotated files remain"
    );
    for f in [&current, &one, &two] {
        assert!(!f.is_empty());
        assert!(
            f.iter().map(|l| l.len() + 1).sum::<usize>() <= 2000,
            "no file grows past rotate_bytes"
        );
    }
    // Oldest to newest, the kept files hold the most recent events, contiguous, whole lines.
    let kept: Vec<String> = two.into_iter().chain(one).chain(current).collect();
    let first = 30 - kept.len() as u64 + 1;
    let expected: Vec<String> = (first..=30).map(cef).collect();
    assert_eq!(kept, expected);
}

#[tokio::test]
async fn file_output_in_rfc5424_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.log");
    let out = Running::start(&format!(
        "transport = \"file\"\npath = \"{}\"\nformat = \"rfc5424\"\nhostname = \"fwd01\"",
        path.display()
    ));
    out.send_all(batches(1, 5, 5)).await;
    out.finish(Duration::from_secs(10)).await;
    let got = lines(&path);
    assert_eq!(got.len(), 5);
    for (i, l) in got.iter().enumerate() {
        let m = parse_message(l, Variant::RFC5424);
        assert_eq!(m.hostname, Some("fwd01"));
        assert_eq!(m.msgid, Some("INTRUSION"));
        assert_eq!(m.msg.trim_start_matches('\u{feff}'), cef(i as u64 + 1));
    }
}

#[test]
fn an_unwritable_file_is_a_setup_error_naming_key_and_path() {
    let cfg: OutputConfig =
        toml::from_str("transport = \"file\"\npath = \"/nonexistent-dir/events.cef\"").unwrap();
    let e = Output::new(&cfg, "outputs[3]", "h")
        .err()
        .expect("must fail")
        .to_string();
    assert!(e.starts_with("outputs[3].path"), "{e}");
    assert!(
        e.contains("/nonexistent-dir/events.cef") && e.contains("check the path"),
        "{e}"
    );
}

fn tap_config(path: &std::path::Path, format: &str) -> TapConfig {
    toml::from_str(&format!(
        "path = \"{}\"\nformat = \"{format}\"",
        path.display()
    ))
    .unwrap()
}

#[tokio::test]
async fn json_tap_writes_one_object_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tap.jsonl");
    let (tap, task) = spawn_tap(&tap_config(&path, "json"), "tap").unwrap();
    let records: Vec<TapRecord> = (1..=3u64)
        .map(|s| TapRecord {
            record_type: 400,
            fields: serde_json::json!({ "eventId": s, "ruleMessage": "a | b = c" }),
            cef: if s == 2 { None } else { Some(cef(s)) },
            warnings: if s == 3 {
                vec!["unknown block type 999 skipped".into()]
            } else {
                vec![]
            },
            wire: vec![],
        })
        .collect();
    for r in &records {
        assert!(tap.send(r.clone()));
    }
    let stats = tap.stats().clone();
    drop(tap);
    task.await.unwrap();
    let got: Vec<serde_json::Value> = lines(&path)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<serde_json::Value> = records
        .iter()
        .map(|r| serde_json::json!({ "record_type": r.record_type, "fields": r.fields, "cef": r.cef, "warnings": r.warnings }))
        .collect();
    assert_eq!(got, want);
    assert_eq!(stats.written.load(std::sync::atomic::Ordering::Relaxed), 3);
}

#[tokio::test]
async fn wire_tap_holds_a_copy_of_exactly_what_the_output_framed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tap.wire");
    let tls = output_config(
        "transport = \"tls\"\nhost = \"arcsight.example\"\nframing = \"octet-counting\"\nhostname = \"fwd01\"",
    );
    let mut enc = FrameEncoder::for_output(&tls, "h");
    let (tap, task) = spawn_tap(&tap_config(&path, "wire"), "tap").unwrap();
    enc.copy_to(tap.clone());
    drop(tap);
    // What the output sends: its frames, as it makes them.
    let mut sent = Vec::new();
    for s in 1..=20u64 {
        enc.encode(&event(s), &mut sent);
    }
    drop(enc);
    task.await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        bytes, sent,
        "the tap holds the output's bytes, timestamps included"
    );
    assert!(
        bytes.starts_with(b"3"),
        "octet counting, as the TLS output frames: {:?}",
        &bytes[..10]
    );
    let mut reader = WireReader::new(&bytes[..]);
    let mut n = 0;
    while let Some(msg) = reader.next_message().unwrap() {
        n += 1;
        let text = String::from_utf8(msg).unwrap();
        let m = parse_message(&text, Variant::RFC5424);
        assert_eq!(m.hostname, Some("fwd01"));
        assert_eq!(m.msg.trim_start_matches('\u{feff}'), cef(n));
    }
    assert_eq!(n, 20);
}
