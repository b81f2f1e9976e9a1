//! The `encore` profile (`[cef] profile = "encore"`) measured against Cisco eNcore's own CEF lines
//! for conformance corpus B: of the keys eNcore sends with a real value (not `None`, not a Python
//! repr, not a label without its value), at least 99 % must be in our line and at least 98 % of
//! their values must agree; every other value must be one where the corpus's truth (what the
//! generator encoded) shows eNcore wrong. Every connection line carries eNcore's `bytesIn` /
//! `bytesOut`, and every line is valid CEF for two independent parsers. The figures are printed
//! (`--nocapture`) and are in every failure message.
//!
//! Also: `profile = "standard"` is byte-identical to no profile, an unknown profile is refused
//! with the valid names, `mappings show` names the profile's file on every line it changed, and
//! only a shipped profile may send keys `verbatim`.

#[path = "support/cef_parsers.rs"]
mod cef_parsers;
#[path = "support/encore_corpus.rs"]
mod encore_corpus;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::process::{Command, Output};

use encore_corpus::{TRUTH, as_our_encoder_writes, digits, encore_lines, ours, parse_encore};
use estreamer_cef::mapping::{LoadOptions, Mappings};
use serde_json::Value as Json;

/// The record types eNcore maps.
const ENCORE_TYPES: &str = "2,71,110,112,125,400,500,502";

/// Runs the binary with a configuration holding `config` (TOML) and `args`.
fn run(config: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("estreamer-cef.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(env!("CARGO_BIN_EXE_estreamer-cef"))
        .arg("-c")
        .arg(&path)
        .args(args)
        .output()
        .unwrap()
}

use encore_corpus::decode_cef;

const ENCORE: &str = "[cef]\nprofile = \"encore\"\n";

/// What the generator encoded (`corpus-B.truth.jsonl`), by record index, and the user names of
/// its user records (98).
struct Truth {
    records: HashMap<usize, Json>,
    users: HashMap<u64, String>,
}

impl Truth {
    fn load() -> Truth {
        let mut records = HashMap::new();
        let mut users = HashMap::new();
        for line in std::fs::read_to_string(TRUTH).unwrap().lines() {
            let v: Json = serde_json::from_str(line).unwrap();
            let truth = v["truth"].clone();
            if v["recordType"] == 98
                && let (Some(id), Some(name)) =
                    (truth["id"].as_u64(), truth["name"]["data"].as_str())
            {
                users.insert(id, name.to_string());
            }
            records.insert(v["index"].as_u64().unwrap() as usize, truth);
        }
        Truth { records, users }
    }

    /// Why a value of ours that differs from eNcore's is right and eNcore's wrong, when the truth
    /// shows it (`e`: eNcore's value, `o`: ours).
    fn shows_encore_wrong(
        &self,
        i: usize,
        t: u32,
        key: &str,
        e: &str,
        o: &str,
    ) -> Option<&'static str> {
        let truth = &self.records[&i];
        match (t, key) {
            (_, "suser" | "duser") => {
                // eNcore's metadata cache never stored user names: it sent the id.
                let name = self.users.get(&digits(e)?)?;
                (as_our_encoder_writes(name) == o)
                    .then_some("user names, which eNcore never cached (it sent the id)")
            }
            (2, "cs1") => {
                // eNcore cut every frame at IPv4 offsets; for an IPv6 frame that is inside the
                // IPv6 header. Ours is the payload: the end of the frame's ASCII bytes.
                let frame = hex_bytes(truth["packetData"].as_str()?)?;
                let ascii: String = frame
                    .iter()
                    .filter(|b| b.is_ascii())
                    .map(|&b| b as char)
                    .collect();
                (frame.get(12..14) == Some(&[0x86, 0xdd][..])
                    && as_our_encoder_writes(&ascii).ends_with(o))
                .then_some("payloads of IPv6 frames, which eNcore read at IPv4 offsets")
            }
            (110, "data") => {
                // An original-client address (types 1, 2) whose bytes happen to be valid UTF-8:
                // eNcore sent them as text (its decode drops the NULs); ours is their hex.
                let ty = truth["type"].as_u64()?;
                let bytes = hex_bytes(o)?;
                let as_text: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
                ((ty == 1 || ty == 2)
                    && matches!(bytes.len(), 4 | 16)
                    && truth["blob"]["data"].as_str() == std::str::from_utf8(&as_text).ok())
                .then_some("original-client addresses garbled into text by eNcore")
            }
            _ => None,
        }
    }
}

fn hex_bytes(h: &str) -> Option<Vec<u8>> {
    (h.len().is_multiple_of(2) && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
        (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    })
}

/// A value eNcore really sent: not `None`, not a Python repr (110's `blob`), not a label whose
/// value it did not send.
fn real_value(key: &str, value: &str, line: &BTreeMap<String, String>) -> bool {
    if value == "None" || value.starts_with("{'") {
        return false;
    }
    match key.strip_suffix("Label") {
        Some(base) => line.get(base).is_some_and(|v| real_value(base, v, line)),
        None => true,
    }
}

/// The same value: equal once our encoder's rules for control characters are applied to
/// eNcore's (which wrote them raw), or the same address in another spelling.
fn same_value(e: &str, o: &str) -> bool {
    as_our_encoder_writes(e) == o
        || matches!((e.parse::<IpAddr>(), o.parse::<IpAddr>()), (Ok(a), Ok(b)) if a == b)
}

#[test]
fn encore_profile_sends_encores_keys_with_encores_values() {
    let encore = encore_lines();
    assert_eq!(encore.len(), 380, "eNcore's corpus-B CEF lines");
    let lines = decode_cef(ENCORE, Some(ENCORE_TYPES));
    let truth = Truth::load();
    let (mut sent, mut present, mut agree) = (0usize, 0usize, 0usize);
    let mut missing: BTreeMap<String, usize> = BTreeMap::new();
    let mut explained: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for (i, (t, raw)) in &encore {
        let e = parse_encore(*t, raw);
        let line = lines
            .get(i)
            .unwrap_or_else(|| panic!("no line of ours for record #{i} (type {t})"));
        let o = ours(line);
        // The header: eNcore's class id (but for its `None` rule id) and severity.
        if !e.class_id.ends_with(":None") {
            assert_eq!(e.class_id, o.class_id, "class id of record #{i}");
        }
        assert_eq!(e.severity, o.severity, "severity of record #{i}");
        for (k, ev) in &e.ext {
            if !real_value(k, ev, &e.ext) {
                continue;
            }
            sent += 1;
            let Some(ov) = o.ext.get(k) else {
                *missing.entry(format!("{t} {k}")).or_default() += 1;
                continue;
            };
            present += 1;
            if same_value(ev, ov) {
                agree += 1;
                continue;
            }
            match truth.shows_encore_wrong(*i, *t, k, ev, ov) {
                Some(why) => *explained.entry(why).or_default() += 1,
                None => unexplained.push(format!("#{i} ({t}) {k}: eNcore {ev:?}, ours {ov:?}")),
            }
        }
    }
    let pct = |n: usize| n as f64 * 100.0 / sent as f64;
    let figures = format!(
        "encore profile on corpus B: {sent} values eNcore sent; {present} keys there ({:.2} %), \
         {agree} values agree ({:.2} %); missing {missing:?}; differences where the truth shows \
         eNcore wrong: {explained:?}",
        pct(present),
        pct(agree)
    );
    println!("{figures}");
    assert!(
        present * 100 >= sent * 99,
        "fewer than 99 % of eNcore's keys: {figures}"
    );
    assert!(
        agree * 100 >= sent * 98,
        "fewer than 98 % of eNcore's values: {figures}"
    );
    assert!(
        unexplained.is_empty(),
        "{} values differ from eNcore's where the truth does not show eNcore wrong:\n{}\n{figures}",
        unexplained.len(),
        unexplained.join("\n")
    );
}

#[test]
fn every_encore_connection_line_has_encores_byte_counters() {
    let lines = decode_cef(ENCORE, Some("71"));
    let truth = Truth::load();
    assert_eq!(lines.len(), 100, "corpus B's connection records");
    for (i, line) in &lines {
        let ext = ours(line).ext;
        let t = &truth.records[i];
        // eNcore's direction: bytesIn is what the responder sent, bytesOut the initiator; exact.
        for (key, field) in [
            ("bytesIn", "responderTransmittedBytes"),
            ("bytesOut", "initiatorTransmittedBytes"),
        ] {
            assert_eq!(
                ext.get(key).and_then(|v| digits(v)),
                t[field].as_u64(),
                "{key} of connection #{i}: {line}"
            );
        }
        // The dictionary's in/out mean the opposite direction: not both in one line.
        assert!(
            !ext.contains_key("in") && !ext.contains_key("out"),
            "{line}"
        );
    }
}

#[test]
fn every_encore_line_is_valid_cef_for_independent_parsers() {
    let lines = decode_cef(ENCORE, None);
    assert!(lines.len() > 380, "every mapped record of corpus B");
    let texts: Vec<&String> = lines.values().collect();
    // Both parsers accept every line and agree (parse_strict panics with the line otherwise),
    // and they read every key and value as we wrote it.
    let parsed = cef_parsers::parse_strict(&texts);
    for (p, line) in parsed.iter().zip(&texts) {
        let o = ours(line);
        assert_eq!(
            (&p.class_id, &p.name, &p.severity),
            (&o.class_id, &o.name, &o.severity),
            "{line}"
        );
        assert_eq!(p.extension, o.ext, "{line}");
    }
}

#[test]
fn standard_profile_is_byte_identical_to_no_profile() {
    let none = decode_cef("", None);
    let standard = decode_cef("[cef]\nprofile = \"standard\"\n", None);
    assert!(none.len() > 380, "every mapped record of corpus B");
    assert_eq!(none, standard);
    // And the encore profile does change lines (the comparison above could not fail otherwise).
    assert_ne!(none, decode_cef(ENCORE, None));
}

#[test]
fn unknown_profile_is_refused_with_the_valid_ones() {
    let out = run("[cef]\nprofile = \"arcsight\"\n", &["check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted an unknown profile: {err}");
    for want in ["cef.profile", "\"arcsight\"", "\"standard\"", "\"encore\""] {
        assert!(err.contains(want), "the error does not name {want}: {err}");
    }
    let loaded = Mappings::load(&LoadOptions {
        profile: "Encore".into(),
        ..LoadOptions::default()
    });
    let errors = loaded
        .expect_err("an unknown profile loads")
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        errors.contains("`Encore` is not a profile") && errors.contains("\"encore\""),
        "{errors}"
    );
}

#[test]
fn mappings_show_names_the_profile_file_of_each_changed_line() {
    let out = run(ENCORE, &["mappings", "show", "71"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no `{key}` line in:\n{text}"))
            .to_string()
    };
    assert!(line("bytesIn").contains("patch builtin:profiles/encore/connection.toml:"));
    assert!(line("bytesIn").contains("verbatim"));
    assert!(line("proto").contains("profiles/encore/connection.toml"));
    assert!(line("src").contains("builtin:connection.toml:"));
    assert!(
        text.contains("# in: removed by patch builtin:profiles/encore/connection.toml:"),
        "{text}"
    );
}

#[test]
fn only_a_shipped_profile_sends_keys_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("local.toml"),
        "[[patch]]\nrecord = 71\nverbatim = [\"bytesIn\"]\nset.bytesIn = \"responderTransmittedBytes\"\n",
    )
    .unwrap();
    let errors = Mappings::load(&LoadOptions {
        dir: Some(dir.path().to_path_buf()),
        ..LoadOptions::default()
    })
    .expect_err("a user patch sent bytesIn verbatim");
    let text = errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("local.toml:3: `verbatim` is only for the profiles shipped"),
        "{text}"
    );
}
