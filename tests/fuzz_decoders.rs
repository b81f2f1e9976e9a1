//! Fuzzing the decoders with proptest, bounded so CI runs it in seconds: no input, random or
//! derived from valid records by mutation, makes the message framer, the stream walker, the
//! record decoder, the JSON renderer, the metadata cache or the CEF mapping panic.
//! (`fuzz/` has the same targets for cargo-fuzz, for longer runs.)

use std::sync::{Arc, OnceLock, RwLock};

use estreamer_cef::cef::CefHeader;
use estreamer_cef::decode::catalog;
use estreamer_cef::decode::filter::RecordFilter;
use estreamer_cef::decode::json::record_fields;
use estreamer_cef::decode::stream::{StreamEvent, walk};
use estreamer_cef::estreamer::message::{self, Bundle, DEFAULT_MAX_BODY};
use estreamer_cef::mapping::Mappings;
use estreamer_cef::metadata::{Cache, Limits};
use estreamer_cef::transform::{Outcome, Transform};
use estreamer_cef_sim::generate::{GenOptions, generate};
use proptest::prelude::*;

/// One valid record of every catalog type (and its metadata), to mutate.
fn seeds() -> &'static Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let g = generate(&GenOptions {
            seed: 7,
            events_per_type: 1,
            metadata_per_type: 1,
            ..GenOptions::default()
        });
        g.scenario
            .metadata
            .iter()
            .chain(&g.scenario.events)
            .map(|r| r.body.to_vec())
            .collect()
    })
}

/// The service's transform with the built-in tables (compiled once).
fn transform() -> Transform {
    static M: OnceLock<Arc<Mappings>> = OnceLock::new();
    let mappings = M.get_or_init(|| Arc::new(Mappings::builtin())).clone();
    Transform::new(RecordFilter::all(), mappings, CefHeader::default(), true)
}

/// Everything a record goes through after the wire: the service's transform and `decode`'s JSON.
fn exercise_record(transform: &mut Transform, cache: &RwLock<Cache>, body: &[u8]) {
    let mut buf = Vec::new();
    let (outcome, _) = transform.apply_inspect(0, body, cache, &mut buf, |rec, cache| {
        let _ = record_fields(rec);
        let _ = cache.resolve_all(rec);
    });
    if let Outcome::Event { .. } = outcome {
        assert!(std::str::from_utf8(&buf).is_ok(), "CEF output is not UTF-8");
        assert!(
            !buf.contains(&b'\n') && !buf.contains(&b'\r'),
            "raw newline in CEF"
        );
    }
}

/// A mutation of a valid record: flip, overwrite, cut or extend bytes, or rewrite a length.
#[derive(Clone, Debug)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, byte: u8 },
    Cut { at: usize },
    Extend { bytes: Vec<u8> },
    Word { at: usize, value: u32 },
}

fn apply(body: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = body.to_vec();
    for m in muts {
        if b.is_empty() {
            break;
        }
        match m {
            Mutation::Flip { at, bit } => {
                let i = at % b.len();
                b[i] ^= 1 << (bit % 8);
            }
            Mutation::Set { at, byte } => {
                let i = at % b.len();
                b[i] = *byte;
            }
            Mutation::Cut { at } => b.truncate(at % b.len()),
            Mutation::Extend { bytes } => b.extend_from_slice(bytes),
            Mutation::Word { at, value } => {
                // Lengths and types are 4-byte words on 4-byte boundaries more often than not.
                let i = (at % b.len()) & !3;
                if i + 4 <= b.len() {
                    b[i..i + 4].copy_from_slice(&value.to_be_bytes());
                }
            }
        }
    }
    b
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Cut { at }),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| Mutation::Extend { bytes }),
        (
            any::<usize>(),
            prop_oneof![
                Just(0u32),
                Just(8),
                Just(0xffff_ffff),
                Just(0x7fff_ffff),
                0u32..4096,
                any::<u32>()
            ]
        )
            .prop_map(|(at, value)| Mutation::Word { at, value }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    /// The framer and the stream walker on arbitrary bytes.
    #[test]
    fn framer_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = message::check(&bytes, DEFAULT_MAX_BODY);
        for ev in walk(&bytes) {
            if let StreamEvent::Record(r) = ev {
                let _ = r.body.len();
            }
        }
        if let Ok(b) = Bundle::parse(&bytes) {
            for item in b.items() {
                let _ = item;
            }
        }
        let _ = message::streaming_information(&bytes);
        let _ = message::ErrorBody::parse(&bytes);
    }

    /// Well-framed messages with arbitrary bodies (the framer passes them on to the decoder).
    #[test]
    fn framed_garbage_never_panics(kind in prop_oneof![Just(4u16), Just(4002u16), any::<u16>()],
                                   body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let wire = message::encode(kind, &body);
        let mut transform = transform();
        let cache = RwLock::new(Cache::new(Limits::default()));
        for ev in walk(&wire) {
            if let StreamEvent::Record(r) = ev {
                exercise_record(&mut transform, &cache, r.body);
            }
        }
    }

    /// Arbitrary bodies behind a valid record header of every known type.
    #[test]
    fn record_decoder_never_panics_on_random_bodies(
        t in prop::sample::select(catalog().record_types()),
        data in proptest::collection::vec(any::<u8>(), 0..400),
        archive in any::<bool>(),
    ) {
        let mut body = Vec::new();
        body.extend_from_slice(&t.to_be_bytes());
        body.extend_from_slice(&(data.len() as u32).to_be_bytes());
        if archive {
            body.extend_from_slice(&1_700_000_000u32.to_be_bytes());
            body.extend_from_slice(&0u32.to_be_bytes());
        }
        body.extend_from_slice(&data);
        let mut transform = transform();
        let cache = RwLock::new(Cache::new(Limits::default()));
        exercise_record(&mut transform, &cache, &body);
    }

    /// Valid records of every type, mutated: the inputs that reach deep into the layouts.
    #[test]
    fn record_decoder_never_panics_on_mutated_records(
        which in any::<prop::sample::Index>(),
        muts in proptest::collection::vec(mutation(), 1..6),
    ) {
        let seeds = seeds();
        let body = &seeds[which.index(seeds.len())];
        let mutated = apply(body, &muts);
        let mut transform = transform();
        let cache = RwLock::new(Cache::new(Limits::default()));
        exercise_record(&mut transform, &cache, &mutated);
    }
}
