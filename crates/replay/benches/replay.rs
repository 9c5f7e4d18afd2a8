//! Replay throughput end to end: a warehouse of 200,000 generated lines (built once, with the real
//! ingest) replayed against `bench/policies/bench.json`, reading the Parquet files included.
//! Run: `cargo bench -p verdict-replay --bench replay`. bench/replay.py measures 10M calls.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use verdict_ingest::{ingest, IngestOptions, NoProgress};
use verdict_policy::Policy;
use verdict_replay::{replay, ReplayOptions};
use verdict_schema::time::FixedClock;
use verdict_testkit::{GenOptions, Generator};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("gen.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&log).expect("create"));
    Generator::new(GenOptions {
        seed: 9,
        mean_gap_micros: 60_000,
        ..GenOptions::default()
    })
    .write_lines(200_000, &mut file)
    .expect("generate");
    drop(file);
    let wh = dir.path().join("wh");
    let opts = IngestOptions::new(&wh, vec![log.display().to_string()]);
    ingest(&opts, &FixedClock(0), &NoProgress).expect("ingest");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/policies/bench.json");
    let policy: verdict_replay::Policies = Policy::from_path(&root).expect("bench policy").into();
    let opts = ReplayOptions {
        samples: 3,
        ..ReplayOptions::new(wh)
    };
    let calls = replay(&opts, &policy, None, &|_| false)
        .expect("replay")
        .counts
        .tool_calls;
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(calls));
    group.sample_size(20);
    group.bench_function("bench_policy_200k_lines", |b| {
        b.iter(|| black_box(replay(&opts, &policy, None, &|_| false).expect("replay")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
