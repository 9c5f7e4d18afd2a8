//! Everything verdict shows: summaries and reports written to an injected writer, and the
//! progress bar on stderr. The only module allowed to print.
#![allow(clippy::print_stderr)]

use std::io::Write;

use anyhow::Result;
use comfy_table::{presets, CellAlignment, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use verdict_ingest::{IngestSummary, Progress};

use crate::args::SummaryFormat;

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t
}

/// Writes the summary of an ingest.
pub fn ingest_summary(w: &mut dyn Write, s: &IngestSummary, format: SummaryFormat) -> Result<()> {
    if format == SummaryFormat::Json {
        serde_json::to_writer_pretty(&mut *w, s)?;
        writeln!(w)?;
        return Ok(());
    }
    for txn in &s.recovery.rolled_forward {
        writeln!(w, "recovered: finished the interrupted commit {txn}")?;
    }
    for txn in &s.recovery.rolled_back {
        writeln!(w, "recovered: discarded the uncommitted ingest {txn}")?;
    }
    let what = match s.txns.as_slice() {
        [] => "nothing new to commit".to_string(),
        [one] => format!("committed {one}"),
        many => format!("{} commits", many.len()),
    };
    writeln!(w, "ingest into {}: {what}", s.warehouse)?;
    let mut t = table();
    t.set_header(vec!["file", "lines", "rows", "quarantined", "duplicates"]);
    for f in &s.files {
        t.add_row(vec![
            f.file.clone(),
            thousands(f.lines),
            thousands(f.rows),
            thousands(f.quarantined),
            thousands(f.duplicates),
        ]);
    }
    right_align(&mut t, 1..5);
    writeln!(w, "{t}")?;
    if !s.rows_per_day.is_empty() {
        let mut t = table();
        t.set_header(vec!["day", "rows written"]);
        for (day, n) in &s.rows_per_day {
            t.add_row(vec![day.clone(), thousands(*n)]);
        }
        right_align(&mut t, 1..2);
        writeln!(w, "{t}")?;
    }
    writeln!(
        w,
        "files {}, lines {}, rows written {}, quarantined {}{}, duplicates skipped {}{}",
        thousands(s.files.len() as u64),
        thousands(s.lines),
        thousands(s.rows_written),
        thousands(s.quarantined),
        if s.already_quarantined > 0 {
            format!(
                " (+{} already in quarantine)",
                thousands(s.already_quarantined)
            )
        } else {
            String::new()
        },
        thousands(s.duplicates),
        if s.blank_lines > 0 {
            format!(", blank lines {}", thousands(s.blank_lines))
        } else {
            String::new()
        },
    )?;
    writeln!(
        w,
        "elapsed {:.2} s, {:.1} MB/s, {} events/s",
        s.elapsed_secs,
        s.mb_per_s,
        thousands(s.events_per_s.round() as u64)
    )?;
    for q in &s.quarantine_files {
        writeln!(w, "quarantined lines: {}/{q}", s.warehouse)?;
    }
    Ok(())
}

fn right_align(t: &mut Table, cols: std::ops::Range<usize>) {
    for c in cols {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// Prints an error the way every command does.
pub fn error(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
}

/// A progress bar on stderr, in bytes.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar drawn on stderr.
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        Self(bar)
    }
}

impl Progress for Bar {
    fn start(&self, total: Option<u64>) {
        let style = match total {
            Some(t) => {
                self.0.set_length(t);
                ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
            }
            None => ProgressStyle::with_template("{spinner} {bytes} {bytes_per_sec}"),
        };
        if let Ok(s) = style {
            self.0.set_style(s);
        }
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
