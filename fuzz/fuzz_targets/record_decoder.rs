//! One EventData body through everything a record meets: decoder, JSON, metadata cache, CEF
//! mapping. Any panic is a bug.
#![no_main]

use std::sync::OnceLock;

use estreamer_cef::cef::CefEncoder;
use estreamer_cef::decode::json::record_fields;
use estreamer_cef::decode::{Decoder, catalog};
use estreamer_cef::mapping::Mappings;
use estreamer_cef::mapping::plan::Scratch;
use estreamer_cef::metadata::{Cache, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    static MAPPINGS: OnceLock<Mappings> = OnceLock::new();
    let mappings = MAPPINGS.get_or_init(Mappings::builtin);
    let mut decoder = Decoder::new(catalog());
    let mut cache = Cache::new(Limits::default());
    if let Ok(rec) = decoder.decode(body) {
        let _ = record_fields(&rec);
        cache.ingest(&rec);
        let _ = cache.resolve_all(&rec);
        if let Some(plan) = mappings.plan_for(&rec) {
            let mut buf = Vec::new();
            plan.encode(&rec, &cache, &mut CefEncoder::default(), &mut buf, &mut Scratch::new(true));
            assert!(!buf.contains(&b'\n'));
        }
    }
});
