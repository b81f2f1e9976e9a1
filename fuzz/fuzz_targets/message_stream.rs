//! A byte stream as it comes from the FMC after the handshake: framing, bundles, records.
#![no_main]

use estreamer_cef::decode::stream::{StreamEvent, walk};
use estreamer_cef::decode::{Decoder, catalog};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let mut decoder = Decoder::new(catalog());
    for ev in walk(bytes) {
        if let StreamEvent::Record(r) = ev {
            let _ = decoder.decode(r.body);
        }
    }
});
