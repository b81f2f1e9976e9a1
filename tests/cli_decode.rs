//! `estreamer-cef decode` as users run it: one JSON object per record with the resolved names,
//! the record-type filter, standard input, and a broken stream.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_estreamer-cef");
const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/corpus-b/corpus-B.bin"
);

fn decode(args: &[&str], stdin: Option<&[u8]>) -> (i32, Vec<Value>, String) {
    let mut child = Command::new(BIN)
        .arg("decode")
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code().unwrap_or(-1),
        lines,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_record_with_its_resolved_names() {
    let (code, records, err) = decode(&[CORPUS], None);
    assert_eq!(code, 0, "{err}");
    assert_eq!(records.len(), 1211, "every record, metadata included");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["index"], i as u64);
        assert!(
            r["recordName"].is_string() && r["recordCategory"].is_string(),
            "{r}"
        );
    }
    let intrusion = records
        .iter()
        .find(|r| r["recordType"] == 400 && r["@computed"]["message"].is_string())
        .unwrap();
    let c = &intrusion["@computed"];
    assert!(c["sensor"].as_str().unwrap().starts_with("ftd-"), "{c}");
    assert!(
        c["classificationName"].is_string() && c["priority"].is_string() && c["impact"].is_u64()
    );
    // User names resolve (eNcore never resolves them).
    let users: Vec<&Value> = records
        .iter()
        .filter(|r| r["recordType"] == 71)
        .map(|r| &r["@computed"]["user"])
        .collect();
    assert!(
        users.iter().any(|u| u
            .as_str()
            .is_some_and(|s| s != "Unknown" && s.parse::<u64>().is_err())),
        "{users:?}"
    );
}

#[test]
fn record_type_filter_and_standard_input() {
    let bytes = std::fs::read(CORPUS).unwrap();
    let (code, records, err) = decode(&["--record-types", "71,400", "-"], Some(&bytes));
    assert_eq!(code, 0, "{err}");
    assert_eq!(records.len(), 200);
    assert!(
        records
            .iter()
            .all(|r| r["recordType"] == 71 || r["recordType"] == 400)
    );
    // Metadata was still read: names resolve.
    assert!(records.iter().any(|r| {
        r["@computed"]["firewallRule"]
            .as_str()
            .is_some_and(|s| !s.contains(':'))
    }));
}

#[test]
fn a_broken_stream_says_where() {
    let mut bytes = std::fs::read(CORPUS).unwrap();
    bytes.truncate(1000);
    let (code, records, err) = decode(&["-"], Some(&bytes));
    assert_eq!(code, 1);
    assert!(
        !records.is_empty(),
        "the records before the break are printed"
    );
    assert!(err.contains("cannot be read past byte"), "{err}");
}

#[test]
fn cef_lines_carry_the_stream_index() {
    let out = Command::new(BIN)
        .args(["decode", "--cef", CORPUS])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().find(|l| l.contains("|RNA:1003:1|")).unwrap();
    let (index, cef) = first.split_once('\t').unwrap();
    assert_eq!(
        index, "450",
        "the first connection record of corpus B is record #450"
    );
    assert!(cef.starts_with("CEF:0|Cisco|Firepower|6.0|RNA:1003:1|CONNECTION STATISTICS|"));
}

/// Warnings go to stderr without colour codes when stderr is not a terminal (a pipe, a file,
/// journald).
#[test]
fn warnings_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    // A metadata cache that cannot be read is a warning.
    let out = Command::new(BIN)
        .args(["decode", "--cache", "/dev/null", CORPUS])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("WARN"), "a warning is expected: {stderr}");
    assert!(!out.stderr.contains(&0x1b), "colour codes in: {stderr:?}");
}
