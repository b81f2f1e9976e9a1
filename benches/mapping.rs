//! Mapping speed: decoded eStreamer records through their built-in mapping table into CEF lines,
//! on one core.
//!
//! - `map+encode`: records decoded beforehand (their slots kept), then plan + CEF encoder per
//!   record: connection events (71) and intrusion events (400), with all their ids resolved
//!   through the metadata cache.
//! - `decode+map+encode`: the same from the EventData bytes, as the service does it.
//!
//! The floor: 1,000,000 records/s map+encode and 500,000/s decode+map+encode for 71.
//! Run: `cargo bench --bench mapping`; criterion reports records/s as "elem/s".

use std::hint::black_box;

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use estreamer_cef::cef::{CefEncoder, CefHeader};
use estreamer_cef::decode::filter::RecordFilter;
use estreamer_cef::decode::{Decoder, Record, RecordHeader, RecordSchema, Scope, Slot, catalog};
use estreamer_cef::mapping::Mappings;
use estreamer_cef::mapping::plan::Scratch;
use estreamer_cef::metadata::{Cache, Limits};
use estreamer_cef::transform::{Outcome, Transform};
use estreamer_cef_sim::generate::{bench_metadata, connection_records, intrusion_records};
use estreamer_cef_sim::scenario::SimRecord;

/// Records per iteration: few enough that the decoded records of `map+encode` stay in the CPU
/// caches, as a record being mapped right after its decoding does.
const N: usize = 256;
const SEED: u64 = 7;

/// A decoded record whose slots are kept, so that mapping can be measured alone.
struct Decoded {
    header: RecordHeader,
    body: Vec<u8>,
    data_at: usize,
    schema: Option<&'static RecordSchema>,
    scope: Option<&'static Scope>,
    slots: Vec<Slot>,
    trailing: usize,
}

impl Decoded {
    fn record(&self) -> Record<'_> {
        Record {
            header: self.header,
            body: &self.body,
            data: &self.body[self.data_at..],
            schema: self.schema,
            scope: self.scope,
            slots: &self.slots,
            trailing: self.trailing,
        }
    }
}

/// The metadata cache the events resolve through.
fn cache() -> Cache {
    let cache = std::sync::RwLock::new(Cache::new(Limits::default()));
    let mut transform = Transform::builtin();
    for (i, r) in bench_metadata(SEED).iter().enumerate() {
        let _ = transform.apply(i as u64, &r.body, &cache, &mut Vec::new());
    }
    cache.into_inner().unwrap()
}

fn decoded(records: &[SimRecord]) -> Vec<Decoded> {
    let mut decoder = Decoder::new(catalog());
    records
        .iter()
        .map(|r| {
            let rec = decoder.decode(&r.body).expect("bench records decode");
            Decoded {
                header: rec.header,
                body: r.body.to_vec(),
                data_at: r.body.len() - rec.data.len(),
                schema: rec.schema,
                scope: rec.scope,
                slots: rec.slots.to_vec(),
                trailing: rec.trailing,
            }
        })
        .collect()
}

fn map_encode(c: &mut Criterion) {
    let mappings = Mappings::builtin();
    let cache = cache();
    let mut g = c.benchmark_group("map+encode");
    g.throughput(Throughput::Elements(N as u64));
    for (name, records) in [
        ("71 connection", connection_records(N, SEED)),
        ("400 intrusion", intrusion_records(N, SEED)),
    ] {
        let recs = decoded(&records);
        // Every id resolves: no "metadata missing" note on any record.
        let mut scratch = Scratch::default();
        scratch.collect_notes = true;
        let mut enc = CefEncoder::new(CefHeader::default());
        let mut buf = Vec::with_capacity(4096);
        for d in &recs {
            let rec = d.record();
            let plan = mappings.plan_for(&rec).expect("a table maps it");
            buf.clear();
            plan.encode(&rec, &cache, &mut enc, &mut buf, &mut scratch);
            assert!(
                scratch.notes.missing_metadata.is_empty(),
                "{name}: {:?}",
                scratch.notes.missing_metadata
            );
        }
        let mut scratch = Scratch::default();
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut bytes = 0;
                for d in &recs {
                    let rec = d.record();
                    let plan = mappings.plan_for(&rec).unwrap();
                    buf.clear();
                    plan.encode(&rec, &cache, &mut enc, &mut buf, &mut scratch);
                    bytes += buf.len();
                }
                black_box(bytes)
            })
        });
    }
    g.finish();
}

/// The whole transform, as the worker runs it.
fn decode_map_encode(c: &mut Criterion) {
    let cache = std::sync::RwLock::new(cache());
    let mut g = c.benchmark_group("decode+map+encode");
    g.throughput(Throughput::Elements(N as u64));
    for (name, records) in [
        ("71 connection", connection_records(N, SEED)),
        ("400 intrusion", intrusion_records(N, SEED)),
    ] {
        let mut transform = Transform::new(
            RecordFilter::all(),
            Arc::new(Mappings::builtin()),
            CefHeader::default(),
            false,
        );
        let mut buf = Vec::with_capacity(4096);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut bytes = 0;
                for (i, r) in records.iter().enumerate() {
                    buf.clear();
                    let outcome = transform.apply(i as u64, &r.body, &cache, &mut buf);
                    assert!(matches!(outcome, Outcome::Event { .. }));
                    bytes += buf.len();
                }
                black_box(bytes)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, map_encode, decode_map_encode);
criterion_main!(benches);
