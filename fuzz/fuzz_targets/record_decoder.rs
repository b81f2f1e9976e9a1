//! One EventData body through everything a record meets: the service's transform (decoder,
//! metadata cache, record filter, mapping table, CEF encoder) and the JSON of `decode`. Any panic
//! is a bug.
#![no_main]

use estreamer_cef::decode::json::record_fields;
use estreamer_cef::metadata::{Cache, Limits};
use estreamer_cef::transform::{Outcome, Transform};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let mut transform = Transform::builtin();
    let cache = std::sync::RwLock::new(Cache::new(Limits::default()));
    let mut line = Vec::new();
    let (outcome, _) = transform.apply_inspect(0, body, &cache, &mut line, |rec, cache| {
        let _ = record_fields(rec);
        let _ = cache.resolve_all(rec);
    });
    if let Outcome::Event { .. } = outcome {
        assert!(!line.contains(&b'\n'));
    }
});
