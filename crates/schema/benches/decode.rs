//! JSONL -> Arrow decode throughput: 20,000 generated PolicyLayer lines decoded and built into
//! record batches (one thread). Run: `cargo bench -p verdict-schema --bench decode`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use verdict_schema::{DecisionBatchBuilder, Format};
use verdict_testkit::{GenOptions, Generator};

fn bench(c: &mut Criterion) {
    let mut text = Vec::new();
    Generator::new(GenOptions {
        seed: 5,
        ..GenOptions::default()
    })
    .write_lines(20_000, &mut text)
    .expect("generate");
    let text = String::from_utf8(text).expect("utf-8");
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("policylayer_20k_lines_to_arrow", |b| {
        b.iter(|| {
            let mut builder = DecisionBatchBuilder::with_raw_bytes(20_000, text.len(), true);
            let mut records = Vec::with_capacity(1);
            for line in text.lines() {
                records.clear();
                Format::PolicyLayer
                    .decode(line, &mut records)
                    .expect("valid line");
                builder.append(&records[0], line, Some("bench.jsonl"), Some(1));
            }
            black_box(builder.finish().expect("batch"))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
