//! Decodes conformance corpus B (a byte stream of every record type, from the shared conformance
//! kit) and compares every decoded field with what the generator really encoded (`truth`).
//! eNcore decodes this corpus correctly except records 62, 98 and 106; we must match all of them.

use estreamer_cef::decode::json::record_fields;
use estreamer_cef::decode::stream::{StreamEvent, walk};
use estreamer_cef::decode::{Decoder, catalog};
use serde_json::Value;

const BIN: &[u8] = include_bytes!("data/corpus-b/corpus-B.bin");
const TRUTH: &str = include_str!("data/corpus-b/corpus-B.truth.jsonl");

/// eNcore's catalog leaves one field of record 106 unnamed; the truth stores it under "null".
fn normalise_truth(record_type: u64, mut t: Value) -> Value {
    if record_type == 106
        && let Some(o) = t.as_object_mut()
        && let Some(v) = o.remove("null")
    {
        o.insert("description".into(), v);
    }
    t
}

#[test]
fn every_record_of_corpus_b_decodes_to_the_truth() {
    let truth: Vec<Value> = TRUTH
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut decoder = Decoder::new(catalog());
    let mut n = 0usize;
    let mut mismatches = Vec::new();
    for ev in walk(BIN) {
        let r = match ev {
            StreamEvent::Record(r) => r,
            StreamEvent::Other { .. } => continue,
            other => panic!("stream problem: {other:?}"),
        };
        let t = &truth[r.index as usize];
        assert_eq!(t["index"].as_u64(), Some(r.index));
        let rt = t["recordType"].as_u64().unwrap();
        let expected = normalise_truth(rt, t["truth"].clone());
        let rec = decoder
            .decode(r.body)
            .unwrap_or_else(|e| panic!("record {} (type {rt}): {e}", r.index));
        let got = Value::Object(record_fields(&rec));
        if got != expected {
            let (g, e) = (got.as_object().unwrap(), expected.as_object().unwrap());
            let mut diff = Vec::new();
            for (k, ev) in e {
                if g.get(k) != Some(ev) {
                    diff.push(format!("{k}: want {ev} got {:?}", g.get(k)));
                }
            }
            for k in g.keys() {
                if !e.contains_key(k) {
                    diff.push(format!("{k}: extra"));
                }
            }
            mismatches.push(format!("#{} type {rt}: {}", r.index, diff.join("; ")));
        }
        n += 1;
    }
    assert_eq!(n, truth.len(), "record count");
    assert!(
        mismatches.is_empty(),
        "{} of {n} records differ:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
