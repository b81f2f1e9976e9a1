//! Maps records to CEF lines the way the service does: each EventData body through the decode
//! stage (metadata fills the cache), then the mapping table's plan, then the CEF encoder. Tests of
//! the mapping tables use it with records from the simulator's generator.
//!
//! Use from a test file with
//! `#[path = "support/mapping_run.rs"] mod mapping_run;`
#![allow(dead_code)]

use std::sync::Arc;

use estreamer_cef::cef::{CefEncoder, CefHeader};
use estreamer_cef::decode::filter::RecordFilter;
use estreamer_cef::decode::json::record_fields;
use estreamer_cef::mapping::Mappings;
use estreamer_cef::metadata::{Cache, Limits};
use estreamer_cef::transform::{Outcome, Transform};
use estreamer_cef_sim::scenario::SimRecord;
use serde_json::{Map, Value as Json};

/// One record that a table mapped.
#[derive(Clone, Debug)]
pub struct Mapped {
    /// Position in the input (every record counts, metadata included).
    pub index: usize,
    pub record_type: u32,
    /// The CEF line (no syslog header).
    pub line: String,
    /// The severity the plan computed.
    pub severity: u8,
    /// The syslog MSGID of the table.
    pub msgid: String,
    /// The decoded fields, as `decode` prints them.
    pub fields: Map<String, Json>,
    /// The resolved names, as `decode` prints them under "@computed".
    pub computed: Map<String, Json>,
    /// What mapping noted (missing metadata, absent fields, encoder warnings).
    pub notes: Vec<String>,
}

/// The encoder's default header (`Cisco|Firepower|6.0`, as eNcore).
pub fn encoder() -> CefEncoder {
    CefEncoder::new(CefHeader::default())
}

/// Decodes every record in order and maps those a table maps. Metadata records (no table by
/// default maps them... unless `mappings` does) fill the cache first, as on the wire.
pub fn map_records(mappings: &Mappings, records: &[SimRecord]) -> Vec<Mapped> {
    map_bodies(mappings, records.iter().map(|r| &r.body[..]))
}

/// [`map_records`] for raw EventData bodies.
pub fn map_bodies<'a>(mappings: &Mappings, bodies: impl Iterator<Item = &'a [u8]>) -> Vec<Mapped> {
    let mut transform = Transform::new(
        RecordFilter::all(),
        Arc::new(mappings.clone()),
        CefHeader::default(),
        true,
    );
    let cache = std::sync::RwLock::new(Cache::new(Limits::default()));
    let mut out = Vec::new();
    for (index, body) in bodies.enumerate() {
        let mut buf = Vec::new();
        let (outcome, seen) =
            transform.apply_inspect(index as u64, body, &cache, &mut buf, |record, cache| {
                (
                    record.record_type(),
                    record_fields(record),
                    cache.resolve_all(record),
                )
            });
        match (outcome, seen) {
            (Outcome::Event { severity, msgid }, Some((record_type, fields, computed))) => out
                .push(Mapped {
                    index,
                    record_type,
                    line: String::from_utf8(buf).expect("CEF lines are UTF-8"),
                    severity,
                    msgid: msgid.to_string(),
                    fields,
                    computed,
                    notes: transform.notes().to_strings(),
                }),
            (Outcome::Malformed(error), _) => panic!("record #{index} is malformed: {error}"),
            _ => {}
        }
    }
    out
}

pub fn split_line(line: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut header = Vec::new();
    let mut cur = String::new();
    let mut chars = line.char_indices();
    let mut ext_start = line.len();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, n)) = chars.next() {
                    cur.push(n);
                }
            }
            '|' => {
                header.push(std::mem::take(&mut cur));
                if header.len() == 7 {
                    ext_start = i + 1;
                    break;
                }
            }
            c => cur.push(c),
        }
    }
    assert_eq!(
        header.len(),
        7,
        "a CEF line has seven header fields: {line}"
    );
    (header, split_extension(&line[ext_start..]))
}

/// The extension's pairs with raw (still escaped) values.
pub fn split_extension(ext: &str) -> Vec<(String, String)> {
    let b = ext.as_bytes();
    // Positions of unescaped '='.
    let mut eqs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'=' => {
                eqs.push(i);
                i += 1
            }
            _ => i += 1,
        }
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut key_starts = Vec::new();
    for &e in &eqs {
        let start = ext[..e].rfind(' ').map_or(0, |s| s + 1);
        key_starts.push((start, e));
    }
    for (n, &(ks, e)) in key_starts.iter().enumerate() {
        let end = key_starts
            .get(n + 1)
            .map_or(ext.len(), |&(next, _)| next - 1);
        pairs.push((ext[ks..e].to_string(), ext[e + 1..end].to_string()));
    }
    pairs
}

/// A CEF extension value with its escapes undone (`\\`, `\=`, `\n`, `\r`).
pub fn unescape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The line's extension as key → unescaped value.
pub fn extension_map(line: &str) -> std::collections::BTreeMap<String, String> {
    let (_, pairs) = split_line(line);
    pairs
        .into_iter()
        .map(|(k, v)| (k, unescape_value(&v)))
        .collect()
}
