//! The simulator's generator and the decoder agree: every record type of the catalog, encoded
//! with random values (every layout variant, both discovery header forms, both forms of block-166
//! list items), decodes to exactly the JSON the generator says it wrote; and a whole generated
//! scenario survives framing as EventData messages and MessageBundles.

use estreamer_cef::decode::json::record_fields;
use estreamer_cef::decode::stream::{StreamEvent, walk};
use estreamer_cef::decode::{Decoder, catalog};
use estreamer_cef_sim::generate::{
    GenOptions, RecordOptions, StreamOptions, encode_record, generate, to_stream, to_stream_with,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

/// Field-by-field differences, for a readable failure.
fn diff(path: &str, want: &Value, got: &Value, out: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                match g.get(k) {
                    Some(gv) => diff(&format!("{path}.{k}"), wv, gv, out),
                    None => out.push(format!("{path}.{k}: missing, want {wv}")),
                }
            }
            for k in g.keys().filter(|k| !w.contains_key(*k)) {
                out.push(format!("{path}.{k}: unexpected {}", g[k]));
            }
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            for (i, (wv, gv)) in w.iter().zip(g).enumerate() {
                diff(&format!("{path}[{i}]"), wv, gv, out);
            }
        }
        _ if want != got => out.push(format!("{path}: want {want}, got {got}")),
        _ => {}
    }
}

/// Decodes a body and compares it with the truth; returns the differences.
fn check(decoder: &mut Decoder, body: &[u8], truth: &Value) -> Result<(), String> {
    let rec = decoder
        .decode(body)
        .map_err(|e| format!("does not decode: {e}"))?;
    let got = Value::Object(record_fields(&rec));
    let mut d = Vec::new();
    diff("", truth, &got, &mut d);
    if d.is_empty() {
        Ok(())
    } else {
        Err(d.join("\n"))
    }
}

/// Every way a record type can be laid out: its variants × discovery header forms × item header
/// forms.
fn layouts(record_type: u32) -> Vec<RecordOptions> {
    let schema = catalog().record(record_type).unwrap();
    let mut v = Vec::new();
    for variant in &schema.variants {
        for ipv6 in [true, false] {
            for items in [true, false] {
                v.push(RecordOptions {
                    variant: variant.selector,
                    ipv6_header: Some(ipv6),
                    item_headers: Some(items),
                    archive_header: None,
                });
            }
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_record_type_decodes_to_what_was_encoded(seed in any::<u64>(), second in 1_600_000_000u32..1_900_000_000) {
        let mut decoder = Decoder::new(catalog());
        let mut rng = StdRng::seed_from_u64(seed);
        let mut failures = Vec::new();
        for t in catalog().record_types() {
            for opts in layouts(t) {
                let (body, truth) = encode_record(t, &opts, &mut rng, second).unwrap();
                if let Err(e) = check(&mut decoder, &body, &truth) {
                    failures.push(format!("record {t} {opts:?}:\n{e}"));
                }
            }
        }
        prop_assert!(failures.is_empty(), "seed {seed}: {} layouts differ:\n{}", failures.len(),
            failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n\n"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Whole scenarios (metadata made to resolve the events' ids, forced keys and names
    /// included) decode to their truth too.
    #[test]
    fn generated_scenarios_decode_to_their_truth(seed in any::<u64>()) {
        let g = generate(&GenOptions { seed, events_per_type: 2, metadata_per_type: 1, ..GenOptions::default() });
        let mut decoder = Decoder::new(catalog());
        let mut failures = Vec::new();
        for (i, (r, (t, truth))) in g.records().zip(&g.truth).enumerate() {
            prop_assert_eq!(r.record_type, *t);
            if let Err(e) = check(&mut decoder, &r.body, truth) {
                failures.push(format!("#{i} record {t}:\n{e}"));
            }
        }
        prop_assert!(failures.is_empty(), "seed {seed}:\n{}", failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n\n"));
    }
}

#[test]
fn both_record_71_variants_and_header_forms_are_encoded() {
    let mut rng = StdRng::seed_from_u64(7);
    for variant in [160u32, 163] {
        for ipv6 in [true, false] {
            let opts = RecordOptions {
                variant: Some(variant),
                ipv6_header: Some(ipv6),
                ..RecordOptions::default()
            };
            let (body, truth) = encode_record(71, &opts, &mut rng, 1_750_000_000).unwrap();
            // The block type right after the discovery header selects the variant.
            let at = 16 + 40 + if ipv6 { 16 } else { 0 };
            assert_eq!(
                u32::from_be_bytes(body[at..at + 4].try_into().unwrap()),
                variant
            );
            assert_eq!(body[16 + 14], ipv6 as u8, "hasIpv6 flag");
            assert_eq!(truth["blockType"], variant);
            assert_eq!(truth["archiveTimestamp"], 1_750_000_000);
            let mut d = Decoder::new(catalog());
            check(&mut d, &body, &truth).unwrap();
        }
    }
}

#[test]
fn vpn_session_items_come_with_and_without_a_block_header() {
    // Record 170: userLogin (block 167) holds a list of block-166 items, which the catalog
    // defines without a header.
    let mut seen = [false; 2];
    let mut rng = StdRng::seed_from_u64(3);
    let mut decoder = Decoder::new(catalog());
    for i in 0..40 {
        let headers = i % 2 == 0;
        let opts = RecordOptions {
            item_headers: Some(headers),
            ..RecordOptions::default()
        };
        let (body, truth) = encode_record(170, &opts, &mut rng, 1_750_000_000).unwrap();
        check(&mut decoder, &body, &truth).unwrap();
        let list = &truth["userLogin"]["vpnSession"];
        let items = list["items"].as_array().unwrap();
        if items.is_empty() {
            continue;
        }
        // Item bytes: the list length minus its 8-byte header, against the items' own fields.
        let item_bytes = list["listLength"].as_u64().unwrap() - 8;
        let bare: u64 = items.iter().map(item_len).sum();
        if headers {
            assert_eq!(item_bytes, bare + 8 * items.len() as u64);
        } else {
            assert_eq!(item_bytes, bare);
        }
        seen[headers as usize] = true;
    }
    assert_eq!(seen, [true, true]);
}

/// Bytes of a block-166 item without header: index, vpnType, 2 string blocks, clientIP,
/// countryCode, 2 string blocks, duration, 2 counters.
fn item_len(item: &Value) -> u64 {
    let s = |k: &str| item[k]["blockLength"].as_u64().unwrap();
    4 + 1
        + s("groupPolicy")
        + s("vpnConnectionProfile")
        + 16
        + 2
        + s("clientOS")
        + s("clientApplication")
        + 4
        + 8
        + 8
}

#[test]
fn a_scenario_survives_messages_and_bundles_in_order() {
    let g = generate(&GenOptions {
        seed: 11,
        events_per_type: 2,
        ..GenOptions::default()
    });
    let records: Vec<_> = g.records().cloned().collect();
    assert_eq!(records.len(), g.truth.len());
    let mut decoder = Decoder::new(catalog());
    for (bundle_size, null_every) in [(0usize, 0usize), (0, 5), (1, 0), (7, 3), (64, 0)] {
        let wire = to_stream_with(
            &records,
            &StreamOptions {
                bundle_size,
                connection_id: 42,
                null_every,
            },
        );
        if null_every == 0 {
            assert_eq!(wire, to_stream(&records, bundle_size, 42));
        }
        let mut n = 0usize;
        let mut nulls = 0usize;
        let mut sequences = Vec::new();
        for ev in walk(&wire) {
            match ev {
                StreamEvent::Record(r) => {
                    assert_eq!(r.index as usize, n, "records are counted one by one");
                    assert_eq!(r.body, &records[n].body[..]);
                    if let Some((seq, pos)) = r.bundle {
                        assert_eq!(pos as usize, n % bundle_size);
                        if pos == 0 {
                            sequences.push(seq);
                        }
                    } else {
                        assert_eq!(bundle_size, 0);
                    }
                    let (t, truth) = &g.truth[n];
                    assert_eq!(records[n].record_type, *t);
                    check(&mut decoder, r.body, truth)
                        .unwrap_or_else(|e| panic!("record {n} (type {t}):\n{e}"));
                    n += 1;
                }
                StreamEvent::Other { kind: 0, .. } => nulls += 1,
                other => panic!("bundle {bundle_size}: {other:?}"),
            }
        }
        assert_eq!(n, records.len());
        if bundle_size > 0 {
            let want: Vec<u32> = (1..=records.len().div_ceil(bundle_size) as u32).collect();
            assert_eq!(sequences, want, "bundle sequence numbers run from 1");
        }
        if null_every > 0 {
            assert!(nulls > 0, "keepalives between messages");
        }
    }
}
