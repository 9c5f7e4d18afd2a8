//! `verdict-gen LINES [SEED] [MEAN_GAP_MS]`: writes synthetic PolicyLayer traffic to stdout,
//! for benchmarks (`cargo run --release -p verdict-testkit --bin verdict-gen -- 1000000 42`).
#![allow(clippy::print_stderr)]

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use verdict_testkit::{GenOptions, Generator};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse()
                .map_err(|_| format!("argument {}: not a number: {s}", i + 1))
        })
    };
    let run = || -> Result<(), String> {
        let lines = parse(0, 1000)?;
        let seed = parse(1, 1)?;
        let gap_ms = parse(2, 250)?;
        let opts = GenOptions {
            seed,
            mean_gap_micros: (gap_ms * 1000) as i64,
            ..GenOptions::default()
        };
        let stdout = std::io::stdout();
        let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
        Generator::new(opts)
            .write_lines(lines, &mut w)
            .map_err(|e| e.to_string())?;
        w.flush().map_err(|e| e.to_string())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.contains("Broken pipe") => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verdict-gen: {e}");
            ExitCode::from(2)
        }
    }
}
