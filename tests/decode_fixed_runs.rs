//! The interpreter's fast paths (runs of fixed-width fields, string blocks) must decode exactly
//! like the ops one by one: the same slots, the same trailing bytes, the same error, for every
//! record type, for records cut short at every length (older, shorter layouts end in the middle
//! of a run) and for records with a corrupted byte (a string length that overruns its block).

use estreamer_cef::decode::catalog::Catalog;
use estreamer_cef::decode::{Decoder, RecordHeader, catalog};
use estreamer_cef_sim::generate::{GenOptions, generate};

/// The embedded catalog with every run and string block removed: the interpreter runs each op
/// on its own.
fn without_runs() -> &'static Catalog {
    let mut c = Catalog::from_json(include_str!("../src/decode/catalog.json")).unwrap();
    for s in &mut c.scopes {
        assert_eq!(s.runs.len(), s.ops.len(), "runs are parallel to ops");
        assert_eq!(s.string_blocks.len(), s.ops.len(), "string blocks too");
        s.runs.iter_mut().for_each(|r| r.count = 0);
        s.string_blocks.iter_mut().for_each(|b| *b = None);
    }
    Box::leak(Box::new(c))
}

#[test]
fn fast_paths_decode_like_single_ops_at_every_length_and_corruption() {
    let g = generate(&GenOptions::default());
    let mut fast = Decoder::new(catalog());
    let mut slow = Decoder::new(without_runs());
    let (mut records, mut ok, mut shorter) = (0, 0, 0);
    let run_count: usize = catalog()
        .scopes
        .iter()
        .map(|s| s.runs.iter().filter(|r| r.count > 0).count())
        .sum();
    assert!(run_count > 50, "the catalog has runs ({run_count})");
    let string_blocks: usize = catalog()
        .scopes
        .iter()
        .map(|s| s.string_blocks.iter().flatten().count())
        .sum();
    assert!(
        string_blocks > 50,
        "the catalog has string blocks ({string_blocks})"
    );
    let mut corrupted = 0;
    // Both decoders on the same bytes: the same slots and trailing bytes, or the same error.
    let mut both = |b: &[u8], what: &dyn Fn() -> String| {
        let a = fast.decode(b).map(|r| (r.slots.to_vec(), r.trailing));
        let s = slow.decode(b).map(|r| (r.slots.to_vec(), r.trailing));
        assert_eq!(a, s, "{}", what());
        a.is_ok()
    };
    for r in g.records() {
        let body = &r.body[..];
        let h = RecordHeader::parse(body).unwrap();
        let data_len = body.len() - h.header_len;
        records += 1;
        // Every length for the first records of a type, a sample of lengths for the others.
        let step = if records % 8 == 0 { 1 } else { 7 };
        for keep in (0..=data_len).step_by(step).chain([data_len]) {
            let mut b = body[..h.header_len + keep].to_vec();
            b[4..8].copy_from_slice(&(keep as u32).to_be_bytes());
            let decoded = both(&b, &|| {
                format!(
                    "record type {} cut to {keep} of {data_len} bytes",
                    r.record_type
                )
            });
            if decoded {
                ok += 1;
                if keep < data_len {
                    shorter += 1;
                }
            }
        }
        // One byte corrupted at a time (lengths among them), at a sample of positions.
        for at in (h.header_len..body.len()).step_by(step) {
            let mut b = body.to_vec();
            b[at] ^= 0x81;
            both(&b, &|| {
                format!("record type {} with byte {at} corrupted", r.record_type)
            });
            corrupted += 1;
        }
    }
    assert!(corrupted > 1000, "{corrupted}");
    assert!(
        records > 100 && ok > 1000 && shorter > 100,
        "{records} {ok} {shorter}"
    );
}
