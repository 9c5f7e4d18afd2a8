//! JSONL -> Arrow decode throughput on one thread: 20,000 generated calls, as PolicyLayer,
//! agentgateway and OPA lines (the same traffic rendered by verdict-testkit), decoded through
//! `Decoder::decode_line` (envelope check included) and built into record batches.
//! Run: `cargo bench -p verdict-formats --bench decode`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use verdict_formats::{Decoder, Sink};
use verdict_formats::{Format, LineError, Skip};
use verdict_schema::{DecisionBatchBuilder, DecisionRecord};
use verdict_testkit::{render, GenOptions, Generator, Target};

struct Build(DecisionBatchBuilder);

impl Sink for Build {
    fn row(&mut self, r: &DecisionRecord<'_>, raw: &str) {
        self.0.append(r, raw, Some("bench.jsonl"), Some(1));
    }
    fn skipped(&mut self, reason: Skip, raw: &str) {
        panic!("bench line skipped ({reason}): {raw}");
    }
    fn bad(&mut self, e: LineError, raw: &str) {
        panic!("bench line rejected: {e}: {raw}");
    }
}

fn lines(target: Target) -> String {
    let mut text = Vec::new();
    Generator::new(GenOptions {
        seed: 5,
        ..GenOptions::default()
    })
    .write_lines(20_000, &mut text)
    .expect("generate");
    let text = String::from_utf8(text).expect("utf-8");
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        let mut records = Vec::new();
        Format::PolicyLayer
            .decode(line, &mut records)
            .expect("valid line");
        render(target, &records[0], line, &mut out);
        out.push('\n');
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, target, format) in [
        ("policylayer", Target::PolicyLayer, Format::PolicyLayer),
        ("agentgateway", Target::AgentGateway, Format::AgentGateway),
        ("opa", Target::Opa, Format::Opa),
    ] {
        let text = lines(target);
        let decoder = Decoder::Builtin(format);
        group.throughput(Throughput::Elements(20_000));
        group.bench_function(format!("{name}_20k_lines_to_arrow"), |b| {
            b.iter(|| {
                let mut sink = Build(DecisionBatchBuilder::with_raw_bytes(
                    20_000,
                    text.len(),
                    true,
                ));
                for line in text.lines() {
                    decoder.decode_line(line, &mut sink);
                }
                black_box(sink.0.finish().expect("batch"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
