//! Decode throughput on one core: connection statistics (71, block 163) and intrusion (400)
//! records from the simulator. The floor: 1,000,000 records/s for 71 on the project's
//! 2-vCPU machine. `estreamer-cef bench decode` prints the same figure without criterion.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use estreamer_cef::decode::{Decoder, catalog};
use estreamer_cef_sim::generate::{connection_records, intrusion_records};
use std::hint::black_box;

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, records) in [
        ("connection_71", connection_records(1000, 1)),
        ("intrusion_400", intrusion_records(1000, 1)),
    ] {
        let bodies: Vec<_> = records.iter().map(|r| r.body.clone()).collect();
        let mut decoder = Decoder::new(catalog());
        group.throughput(Throughput::Elements(bodies.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                for body in &bodies {
                    let rec = decoder.decode(body).unwrap();
                    black_box(rec.slots.len());
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
