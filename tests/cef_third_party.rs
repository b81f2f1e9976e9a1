//! Our CEF lines as consumers nobody here wrote read them: Vector's VRL `parse_cef` (VRL 0.15,
//! the PyPI wheel `pyVRL` 0.0.2) and the ArcSight extension dictionary as the PyPI package
//! `cefevent` 0.5.6 transcribes it. The corpus is varied on purpose:
//!
//! - conformance corpus B through `estreamer-cef decode --cef` (every record it maps, as a user
//!   would run it on a capture),
//! - the simulator's generator, whose strings carry `=`, `\`, `|`, tabs, line breaks, non-ASCII
//!   text, NUL padding and invalid UTF-8, mapped by every built-in table.
//!
//! Every line must parse; every header field and every key/value must read back as the line
//! wrote it (its escapes undone); and no key may be outside cefevent's dictionary, except the
//! few ArcSight dictionary keys cefevent leaves out (checked to be exactly that).
//!
//! Two known VRL misreadings are noted (printed), not failed, when they are the only difference:
//! VRL 0.15 unescapes `\r` as a line feed (the standard's `\r` is a carriage return), and newer
//! VRL builds drop a `|` that ends a value right before the next key.
//!
//! Needs `tests/install-deps.sh` (pyVRL and cefevent in `.test-deps/pylib`).

#[path = "support/cef_parsers.rs"]
mod cef_parsers;
#[path = "support/encore_corpus.rs"]
mod encore_corpus;

use std::collections::{BTreeMap, BTreeSet};

use cef_parsers::{ParsedCef, Parser, cefevent_dictionary};
use encore_corpus::mapping_run::{map_records, split_line, unescape_value};
use estreamer_cef::cef::{KeyCheck, check_key};
use estreamer_cef::mapping::Mappings;
use estreamer_cef_sim::generate::{GenOptions, generate, unknown_record};

/// Keys of ArcSight's extension dictionary (reference cef-and-syslog 1.13) that cefevent 0.5.6
/// does not list, with their full names. The test checks both halves of that claim.
const DICTIONARY_KEYS_CEFEVENT_LACKS: &[(&str, &str)] = &[
    ("outcome", "eventOutcome"),
    ("requestContext", "requestContext"),
    ("sproc", "sourceProcessName"),
];

/// One line of the corpus and where it comes from (for failure messages).
struct Sample {
    origin: String,
    line: String,
}

/// Every line `decode --cef` prints for corpus B, with no configuration and no overrides.
fn corpus_b_lines() -> Vec<Sample> {
    encore_corpus::decode_cef("", None)
        .into_iter()
        .map(|(i, line)| Sample {
            origin: format!("corpus B record #{i}"),
            line,
        })
        .collect()
}

/// Records of every type the catalog knows (and two it does not), from three generator seeds,
/// mapped by the built-in tables.
fn generated_lines() -> Vec<Sample> {
    let m = Mappings::builtin();
    let mut out = Vec::new();
    for seed in [31, 32, 33] {
        let g = generate(&GenOptions {
            seed,
            events_per_type: 5,
            ..GenOptions::default()
        });
        let mut records: Vec<_> = g.records().cloned().collect();
        records.push(unknown_record(9999, 1_735_689_600, 40));
        for r in map_records(&m, &records) {
            out.push(Sample {
                origin: format!(
                    "generator seed {seed}, record #{} (type {})",
                    r.index, r.record_type
                ),
                line: r.line,
            });
        }
    }
    out
}

/// The line as it was written: header fields and extension values with CEF's escapes undone.
fn as_written(line: &str) -> ParsedCef {
    let (header, pairs) = split_line(line);
    ParsedCef {
        version: header[0].trim_start_matches("CEF:").to_owned(),
        vendor: header[1].clone(),
        product: header[2].clone(),
        device_version: header[3].clone(),
        class_id: header[4].clone(),
        name: header[5].clone(),
        severity: header[6].clone(),
        extension: pairs
            .into_iter()
            .map(|(k, v)| (k, unescape_value(&v)))
            .collect(),
    }
}

/// True when the only differences are values that end in `|` and come back without it (the
/// newer-VRL behaviour the module documentation describes).
fn only_trailing_pipes_dropped(written: &ParsedCef, read: &ParsedCef) -> bool {
    let mut w = written.clone();
    let r = read;
    let mut any = false;
    for (k, v) in w.extension.iter_mut() {
        if v.ends_with('|') && r.extension.get(k).map(String::as_str) == Some(&v[..v.len() - 1]) {
            v.pop();
            any = true;
        }
    }
    any && w == *r
}

/// What VRL 0.15 makes of a line: the written values with every carriage return read as a line
/// feed.
fn as_vrl_reads_cr(written: &ParsedCef) -> ParsedCef {
    let mut w = written.clone();
    for v in w.extension.values_mut() {
        *v = v.replace('\r', "\n");
    }
    w
}

fn corpus() -> Vec<Sample> {
    let mut lines = corpus_b_lines();
    assert!(lines.len() > 700, "corpus B gave {} lines", lines.len());
    lines.extend(generated_lines());
    lines
}

#[test]
fn vrl_parse_cef_reads_every_line_as_written() {
    let samples = corpus();
    let lines: Vec<&str> = samples.iter().map(|s| s.line.as_str()).collect();
    let read = Parser::Vrl.parse(&lines);
    let mut failures = Vec::new();
    let mut noted_pipe = Vec::new();
    let mut noted_cr = Vec::new();
    for (s, r) in samples.iter().zip(read) {
        let written = as_written(&s.line);
        match r {
            Err(e) => failures.push(format!(
                "{}: VRL rejected the line ({e})\n  {}",
                s.origin, s.line
            )),
            Ok(r) if r == written => {}
            Ok(r) if r == as_vrl_reads_cr(&written) => noted_cr.push(&s.origin),
            Ok(r) if only_trailing_pipes_dropped(&written, &r) => noted_pipe.push(&s.origin),
            Ok(r) => {
                let keys: BTreeSet<&String> =
                    written.extension.keys().chain(r.extension.keys()).collect();
                let mut diff: Vec<String> = keys
                    .into_iter()
                    .filter(|k| written.extension.get(*k) != r.extension.get(*k))
                    .map(|k| {
                        format!(
                            "{k}: wrote {:?}, VRL read {:?}",
                            written.extension.get(k),
                            r.extension.get(k)
                        )
                    })
                    .collect();
                let (mut w, mut rr) = (written.clone(), r.clone());
                w.extension.clear();
                rr.extension.clear();
                if w != rr {
                    diff.push(format!("header: wrote {w:?}, VRL read {rr:?}"));
                }
                failures.push(format!("{}: {}\n  {}", s.origin, diff.join("; "), s.line));
            }
        }
    }
    if !noted_pipe.is_empty() {
        eprintln!(
            "{} lines with a value ending in `|` that VRL read without it: {noted_pipe:?}",
            noted_pipe.len()
        );
    }
    if !noted_cr.is_empty() {
        eprintln!(
            "{} lines with a carriage return (`\\r`) that VRL read as a line feed: {noted_cr:?}",
            noted_cr.len()
        );
    }
    // The noted lines are the exception: most of the corpus reads back exactly.
    assert!(
        (noted_pipe.len() + noted_cr.len()) * 10 < samples.len(),
        "{} of {} lines only noted",
        noted_pipe.len() + noted_cr.len(),
        samples.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} lines not read back as written by VRL:\n{}",
        failures.len(),
        samples.len(),
        failures.join("\n")
    );
}

#[test]
fn no_key_outside_the_arcsight_dictionary_as_cefevent_knows_it() {
    let dictionary = cefevent_dictionary();
    assert!(
        dictionary.len() > 100,
        "cefevent's dictionary: {dictionary:?}"
    );
    // The exceptions are ArcSight dictionary keys that cefevent simply does not list.
    for &(key, full) in DICTIONARY_KEYS_CEFEVENT_LACKS {
        assert!(
            !dictionary.contains_key(key) && !dictionary.values().any(|f| f == full),
            "cefevent lists `{key}` ({full}) now: remove it from the exceptions"
        );
        match check_key(key) {
            Ok(KeyCheck::Predefined(info)) => assert_eq!(info.full_name, full, "{key}"),
            other => panic!("`{key}` is not an ArcSight dictionary key: {other:?}"),
        }
    }
    let exceptions: BTreeSet<&str> = DICTIONARY_KEYS_CEFEVENT_LACKS.iter().map(|e| e.0).collect();
    let mut outside: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let samples = corpus();
    for s in &samples {
        for key in as_written(&s.line).extension.keys() {
            if !dictionary.contains_key(key) && !exceptions.contains(key.as_str()) {
                let e = outside.entry(key.clone()).or_insert((0, s.origin.clone()));
                e.0 += 1;
            }
        }
    }
    assert!(
        outside.is_empty(),
        "keys outside the CEF dictionary (count, first line): {outside:#?}"
    );
}
