//! The recorded stream the packages ship (`/usr/share/estreamer-cef/examples/sample.estreamer`,
//! written by `estreamer-cef-sim sample`): one event of every type at least, mostly the everyday
//! families, and the metadata that names them, so that `decode --cef` and `replay` on it show
//! what the product sends.

use std::collections::BTreeMap;
use std::sync::RwLock;

use estreamer_cef::decode::stream::{StreamEvent, walk};
use estreamer_cef::decode::{RecordHeader, catalog};
use estreamer_cef::metadata::{Cache, Limits};
use estreamer_cef::transform::{Outcome, Transform};
use estreamer_cef_sim::generate::is_event;
use estreamer_cef_sim::sample;

/// Records of each type in the sample, read back from its bytes.
fn types_in(bytes: &[u8]) -> BTreeMap<u32, usize> {
    let mut types = BTreeMap::new();
    for ev in walk(bytes) {
        match ev {
            StreamEvent::Record(r) => {
                let h = RecordHeader::parse(r.body).expect("a record header");
                *types.entry(h.record_type).or_default() += 1;
            }
            StreamEvent::Other { .. } => {}
            other => panic!("the sample is not a clean stream: {other:?}"),
        }
    }
    types
}

#[test]
fn has_every_event_type_mostly_the_everyday_ones_in_a_few_hundred_records() {
    let types = types_in(&sample::stream());
    let total: usize = types.values().sum();
    assert!((200..=1000).contains(&total), "{total} records");
    let cat = catalog();
    for t in cat.record_types() {
        let schema = cat.record(t).unwrap();
        if is_event(schema) {
            assert!(
                types.contains_key(&t),
                "no record of event type {t} ({})",
                schema.name
            );
        }
    }
    let events: usize = types
        .iter()
        .filter(|(t, _)| is_event(cat.record(**t).unwrap()))
        .map(|(_, n)| n)
        .sum();
    // One each of the ~60 discovery and other types; the everyday four are the bulk beside them.
    let everyday: usize = [71, 400, 500, 502].iter().map(|t| types[t]).sum();
    assert!(
        everyday * 5 >= events * 2,
        "connections, intrusions, files and malware are {everyday} of {events} events"
    );
    let others_max = types
        .iter()
        .filter(|(t, _)| is_event(cat.record(**t).unwrap()) && ![71, 400, 500, 502].contains(*t))
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    assert!(
        types[&71] > others_max && types[&400] > others_max,
        "connections ({}) and intrusions ({}) must outnumber any other type ({others_max})",
        types[&71],
        types[&400]
    );
}

#[test]
fn every_event_becomes_cef_with_its_names_resolved_from_the_sample_s_own_metadata() {
    let bytes = sample::stream();
    let mut transform = Transform::builtin();
    let cache = RwLock::new(Cache::new(Limits::default()));
    let mut line = Vec::new();
    let mut lines = 0;
    for ev in walk(&bytes) {
        let StreamEvent::Record(r) = ev else { continue };
        line.clear();
        if matches!(
            transform.apply(r.index, r.body, &cache, &mut line),
            Outcome::Event { .. }
        ) {
            assert!(
                line.starts_with(b"CEF:0|"),
                "{}",
                String::from_utf8_lossy(&line)
            );
            lines += 1;
        }
    }
    let c = transform.counters();
    assert_eq!((c.malformed, c.unknown), (0, 0), "{c:?}");
    assert_eq!(c.unmapped, 0, "events without a mapping table: {c:?}");
    assert_eq!(
        c.metadata_missing, 0,
        "names sent as ids because the sample lacks their metadata: {c:?}"
    );
    assert!(lines > 50, "{lines} CEF lines");
}
