//! Policy-intelligence timings end to end from the warehouse (reading the Parquet files included):
//! `suggest` for every identity and `tune` over 10 values of one limit of `bench/policies/bench.json`.
//! Not criterion: each operation runs 3 times and the best and worst are printed, since one run over
//! 10M rows takes seconds.
//!
//! Run: `VERDICT_INTEL_LINES=11500000 VERDICT_INTEL_WORK=/tmp/intel cargo bench -p verdict-replay --bench intel`
//! (the warehouse is generated with the real ingest once per work directory and kept). Targets:
//! suggest for all identities under 5 s and tune over 10 values under 10 s on 10M calls.

use std::path::{Path, PathBuf};
use std::time::Instant;

use verdict_ingest::{ingest, IngestOptions, NoProgress};
use verdict_policy::{LimitField, LimitTarget, Policy};
use verdict_replay::{suggest, tune, SuggestOptions, TuneOptions};
use verdict_schema::time::FixedClock;
use verdict_testkit::{GenOptions, Generator};

fn warehouse(work: &Path, lines: u64) -> PathBuf {
    let wh = work.join(format!("wh-{lines}"));
    if wh.join("decisions").exists() {
        return wh;
    }
    std::fs::create_dir_all(work).expect("work dir");
    let log = work.join(format!("gen-{lines}.jsonl"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&log).expect("create"));
    Generator::new(GenOptions {
        seed: 7,
        mean_gap_micros: 60_000,
        ..GenOptions::default()
    })
    .write_lines(lines, &mut file)
    .expect("generate");
    drop(file);
    let mut opts = IngestOptions::new(&wh, vec![log.display().to_string()]);
    opts.commit_rows = Some(2_000_000);
    ingest(&opts, &FixedClock(0), &NoProgress).expect("ingest");
    std::fs::remove_file(&log).expect("remove the generated log");
    wh
}

/// Runs `f` 3 times; prints and returns (best, worst) seconds.
fn time<T>(name: &str, mut f: impl FnMut() -> T, describe: impl Fn(&T) -> String) {
    let mut secs = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let start = Instant::now();
        let out = f();
        secs.push(start.elapsed().as_secs_f64());
        last = Some(out);
    }
    secs.sort_by(f64::total_cmp);
    let what = last.as_ref().map(describe).unwrap_or_default();
    println!(
        "{name}: best {:.2} s, worst {:.2} s ({what})",
        secs[0], secs[2]
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument other than that is not used.
    let lines: u64 = std::env::var("VERDICT_INTEL_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let work = std::env::var("VERDICT_INTEL_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("verdict-intel-bench"));
    let start = Instant::now();
    let wh = warehouse(&work, lines);
    println!(
        "warehouse of {lines} generated lines ready in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let opts = SuggestOptions {
        warehouse: wh.clone().into(),
        ..SuggestOptions::default()
    };
    time(
        "suggest, every identity",
        || suggest(&opts, &|t| t.contains("destroy")).expect("suggest"),
        |s| {
            let calls: u64 = s.iter().map(|x| x.tool_calls).sum();
            format!("{} identities, {calls} tool calls", s.len())
        },
    );

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/policies/bench.json");
    let policy = Policy::from_path(&root).expect("bench policy");
    let target = LimitTarget::resolve(&policy, "/tools/session_create/limits/session_create_rate")
        .expect("limit");
    let values: Vec<(String, Policy)> = (1..=10)
        .map(|m| {
            (
                m.to_string(),
                target.apply(&policy, &LimitField::Max(m)).expect("edit"),
            )
        })
        .collect();
    let topts = TuneOptions {
        warehouse: wh.into(),
        ..TuneOptions::default()
    };
    time(
        "tune, 10 values",
        || tune(&topts, &values, &target.rule, "max", "3".into(), None).expect("tune"),
        |r| {
            let limited: Vec<u64> = r.rows.iter().map(|x| x.limited).collect();
            format!(
                "{} tool calls, limited per value {limited:?}",
                r.rows[0].tool_calls
            )
        },
    );
}
