//! `verdict-gen LINES [SEED] [MEAN_GAP_MS] [FORMAT]`: writes synthetic traffic to stdout, as
//! PolicyLayer lines or rendered as `opa` / `agentgateway` lines, for benchmarks
//! (`cargo run --release -p verdict-testkit --bin verdict-gen -- 1000000 42 250 opa`).
#![allow(clippy::print_stderr)]

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use verdict_testkit::{render, GenOptions, Generator, Target};

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
        let target: Target = args.get(3).map_or(Ok(Target::PolicyLayer), |s| s.parse())?;
        let stdout = std::io::stdout();
        let mut w = BufWriter::with_capacity(1 << 20, stdout.lock());
        let mut generator = Generator::new(opts);
        if target == Target::PolicyLayer {
            generator
                .write_lines(lines, &mut w)
                .map_err(|e| e.to_string())?;
            return w.flush().map_err(|e| e.to_string());
        }
        let (mut line, mut out) = (String::new(), String::new());
        for _ in 0..lines {
            line.clear();
            out.clear();
            generator.next_line(&mut line);
            let mut records = Vec::with_capacity(1);
            verdict_formats::Format::PolicyLayer
                .decode(&line, &mut records)
                .map_err(|e| e.to_string())?;
            if let Some(r) = records.first() {
                render(target, r, &line, &mut out);
            }
            out.push('\n');
            w.write_all(out.as_bytes()).map_err(|e| e.to_string())?;
        }
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
