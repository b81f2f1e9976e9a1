//! One EventData body through everything a record meets: the service's transform (decoder,
//! metadata cache, record filter, mapping table, CEF encoder) and the JSON of `decode`. Any panic
//! is a bug.
#![no_main]

use std::sync::{Arc, LazyLock, RwLock};

use estreamer_cef::cef::CefHeader;
use estreamer_cef::decode::filter::RecordFilter;
use estreamer_cef::decode::json::record_fields;
use estreamer_cef::mapping::Mappings;
use estreamer_cef::metadata::{Cache, Limits};
use estreamer_cef::transform::{Outcome, Transform};
use libfuzzer_sys::fuzz_target;

/// The built-in mapping tables, compiled once per process: compiling them is what made this
/// target run 5 inputs a second. The transform around them is cheap and made fresh per input,
/// so that no state carries over from one input to the next (a crash reproduces from its file).
static MAPPINGS: LazyLock<Arc<Mappings>> = LazyLock::new(|| Arc::new(Mappings::builtin()));

fuzz_target!(|body: &[u8]| {
    let mut transform = Transform::new(
        RecordFilter::all(),
        MAPPINGS.clone(),
        CefHeader::default(),
        true,
    );
    let cache = RwLock::new(Cache::new(Limits::default()));
    let mut line = Vec::new();
    let (outcome, _) = transform.apply_inspect(0, body, &cache, &mut line, |rec, cache| {
        let _ = record_fields(rec);
        let _ = cache.resolve_all(rec);
    });
    if let Outcome::Event { .. } = outcome {
        assert!(std::str::from_utf8(&line).is_ok(), "CEF output is not UTF-8");
        assert!(
            !line.contains(&b'\n') && !line.contains(&b'\r'),
            "raw line break in CEF"
        );
    }
});
