//! Everything verdict shows: summaries and reports written to an injected writer, and the
//! progress bar on stderr. The only module allowed to print.
#![allow(clippy::print_stderr)]

use std::io::Write;

use anyhow::Result;
use comfy_table::{presets, CellAlignment, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use verdict_ingest::{IngestSummary, Preview, Progress, PREVIEW_COLUMNS};
use verdict_replay::ReplayReport;

use crate::args::SummaryFormat;

/// How the printer speaks, set once at start from `--color`, `NO_COLOR` and `--quiet`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    /// Colour stdout (decisions, gates).
    pub color: bool,
    /// No notes on stderr.
    pub quiet: bool,
}

static STYLE: std::sync::OnceLock<Style> = std::sync::OnceLock::new();

/// Sets the style for the whole run (the first call wins).
pub fn set_style(style: Style) {
    let _ = STYLE.set(style);
}

/// The style of this run.
pub fn style() -> Style {
    STYLE.get().copied().unwrap_or_default()
}

/// `text` in `colour` when the run is coloured.
fn paint(text: &str, colour: anstyle::AnsiColor) -> String {
    if style().color {
        let s = anstyle::Style::new().fg_color(Some(colour.into())).bold();
        format!("{s}{text}{s:#}")
    } else {
        text.to_string()
    }
}

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
    t.load_preset(presets::ASCII_MARKDOWN);
    t
}

/// Writes the figures of a `verdict collect` run, at its end.
pub fn collect_summary(
    w: &mut dyn Write,
    warehouse: &verdict_table::Location,
    s: &verdict_collect::CollectSummary,
    format: SummaryFormat,
) -> Result<()> {
    if format == SummaryFormat::Json {
        serde_json::to_writer_pretty(&mut *w, s)?;
        writeln!(w)?;
        return Ok(());
    }
    writeln!(
        w,
        "collect into {}: commits {}, rows {}, duplicates skipped {}, quarantined {}, checkpoints written {}",
        warehouse,
        thousands(s.commits),
        thousands(s.rows),
        thousands(s.duplicates),
        thousands(s.quarantined),
        thousands(s.checkpoints_written)
    )?;
    Ok(())
}

/// Writes what `verdict compact` did, one line per day.
pub fn compact_summary(
    w: &mut dyn Write,
    s: &verdict_ingest::CompactSummary,
    format: SummaryFormat,
) -> Result<()> {
    if format == SummaryFormat::Json {
        serde_json::to_writer_pretty(&mut *w, s)?;
        writeln!(w)?;
        return Ok(());
    }
    for d in &s.days {
        match &d.version {
            Some(t) => writeln!(
                w,
                "day {}: {} files -> {} ({} rows), committed as version {t}",
                d.day,
                d.files_before,
                d.files_after,
                thousands(d.rows)
            )?,
            None => writeln!(
                w,
                "day {}: {} file(s), nothing to merge ({} rows)",
                d.day,
                d.files_before,
                thousands(d.rows)
            )?,
        }
    }
    for x in &s.indexes {
        if let Some(v) = x.version {
            writeln!(
                w,
                "{}: {} files -> {} ({} keys), committed as version {v}",
                x.table,
                x.files_before,
                x.files_after,
                thousands(x.keys)
            )?;
        }
    }
    if s.days.is_empty() {
        writeln!(w, "{}: no day partitions", s.warehouse)?;
    }
    Ok(())
}

/// Writes what `ingest --dry-run` found: per input, its format and each record's columns.
pub fn previews(w: &mut dyn Write, previews: &[Preview], format: SummaryFormat) -> Result<()> {
    if format == SummaryFormat::Json {
        serde_json::to_writer_pretty(&mut *w, previews)?;
        writeln!(w)?;
        return Ok(());
    }
    for p in previews {
        let how = if p.detected { "detected" } else { "as named" };
        writeln!(w, "{}: {} ({how}), nothing written", p.file, p.format)?;
        for row in &p.rows {
            let line = row
                .get("line")
                .map_or_else(String::new, ToString::to_string);
            writeln!(w, "  line {line}")?;
            for (k, v) in PREVIEW_COLUMNS
                .iter()
                .filter_map(|k| row.get(*k).map(|v| (k, v)))
            {
                let shown = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                writeln!(w, "    {k:<16}{shown}")?;
            }
        }
        for r in &p.rejected {
            let field = r
                .field
                .as_deref()
                .map_or_else(String::new, |f| format!(" field `{f}`:"));
            writeln!(
                w,
                "  line {}: would be quarantined: {}:{field} {}",
                r.line, r.error, r.message
            )?;
        }
        if p.skipped > 0 {
            writeln!(
                w,
                "  {} record(s) hold no decision and would be skipped: {}",
                p.skipped,
                reasons(&p.skipped_by)
            )?;
        }
    }
    Ok(())
}

/// `server_log 3, response 1`: skipped records by reason.
fn reasons(by: &std::collections::BTreeMap<String, u64>) -> String {
    by.iter()
        .map(|(reason, n)| format!("{reason} {}", thousands(*n)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes the list of built-in input formats.
pub fn formats(w: &mut dyn Write, format: SummaryFormat) -> Result<()> {
    use verdict_formats::Format;
    if format == SummaryFormat::Json {
        let list: Vec<serde_json::Value> = Format::ALL
            .iter()
            .map(|f| {
                serde_json::json!({"name": f.name(), "description": f.description(), "signature": f.signature()})
            })
            .collect();
        serde_json::to_writer_pretty(&mut *w, &list)?;
        writeln!(w)?;
        return Ok(());
    }
    let mut t = table();
    t.set_header(vec!["format", "what", "detected by"]);
    for f in Format::ALL {
        t.add_row(vec![f.name(), f.description(), f.signature()]);
    }
    writeln!(w, "{t}")?;
    writeln!(
        w,
        "`--input-format auto` (the default) detects these per file; any other proxy: \
         `verdict formats --template > my-proxy.toml`, then `verdict ingest --mapping my-proxy.toml`."
    )?;
    Ok(())
}

/// Writes the summary of an ingest.
pub fn ingest_summary(w: &mut dyn Write, s: &IngestSummary, format: SummaryFormat) -> Result<()> {
    if format == SummaryFormat::Json {
        serde_json::to_writer_pretty(&mut *w, s)?;
        writeln!(w)?;
        return Ok(());
    }
    for t in &s.recovery.caught_up {
        writeln!(
            w,
            "recovered: brought {t} up to date after a write cut short"
        )?;
    }
    let what = match s.txns.as_slice() {
        [] => "nothing new to commit".to_string(),
        [one] => format!("committed {one} (decisions version {})", s.version),
        many => format!("{} commits (decisions version {})", many.len(), s.version),
    };
    writeln!(w, "ingest into {}: {what}", s.warehouse)?;
    let mut t = table();
    t.set_header(vec![
        "file",
        "format",
        "lines",
        "rows",
        "quarantined",
        "skipped",
        "duplicates",
    ]);
    for f in &s.files {
        let format = if f.detected {
            format!("{} (detected)", f.format)
        } else {
            f.format.clone()
        };
        t.add_row(vec![
            f.file.clone(),
            format,
            thousands(f.lines),
            thousands(f.rows),
            thousands(f.quarantined),
            thousands(f.skipped),
            thousands(f.duplicates),
        ]);
    }
    right_align(&mut t, 2..7);
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
    for d in &s.damaged {
        writeln!(
            w,
            "damaged: {} at byte {}: {} (the lines before it were ingested)",
            d.file, d.offset, d.error
        )?;
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
    if s.skipped > 0 {
        writeln!(
            w,
            "skipped {} (not decisions): {}",
            thousands(s.skipped),
            reasons(&s.skipped_by)
        )?;
    }
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
    if s.conflicting_duplicates > 0 {
        writeln!(
            w,
            "warning: {} record(s) reuse a stored (source, event_id) with other content: quarantined as conflicting_duplicate, the stored record kept",
            thousands(s.conflicting_duplicates)
        )?;
    }
    Ok(())
}

/// Tells on stderr which `decisions` version a report or query read.
/// Every reader says which version it read (the evidence an audit reproduces with `--as-of`),
/// unless `--quiet`.
pub fn read_version(version: Option<i64>) {
    if style().quiet {
        return;
    }
    match version {
        Some(v) => to_stderr(&format!("read decisions version {v}")),
        None => to_stderr("read an empty warehouse"),
    }
}

/// Writes `verdict history`.
pub fn history(
    w: &mut dyn Write,
    h: &[verdict_table::HistoryEntry],
    format: SummaryFormat,
) -> Result<()> {
    if format == SummaryFormat::Json {
        serde_json::to_writer_pretty(&mut *w, h)?;
        writeln!(w)?;
        return Ok(());
    }
    let mut t = table();
    t.set_header(vec![
        "version",
        "time",
        "operation",
        "rows added",
        "files +/-",
        "inputs",
        "verdict",
    ]);
    for e in h {
        t.add_row(vec![
            e.version.to_string(),
            e.time.clone().unwrap_or_default(),
            e.operation.clone(),
            thousands(e.rows_added),
            format!("+{} -{}", e.files_added, e.files_removed),
            e.inputs.join(", "),
            e.verdict_version.clone().unwrap_or_default(),
        ]);
    }
    right_align(&mut t, 3..4);
    writeln!(w, "{t}")?;
    Ok(())
}

/// Writes the JSON of a summary, pretty.
fn json<T: serde::Serialize>(w: &mut dyn Write, v: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut *w, v)?;
    writeln!(w)?;
    Ok(())
}

/// The per-table changes of a retention or erasure.
fn table_changes(
    w: &mut dyn Write,
    tables: &[verdict_ingest::lifecycle::TableChange],
) -> Result<()> {
    let mut t = table();
    t.set_header(vec![
        "table",
        "files removed",
        "files added",
        "rows removed",
        "rows rewritten",
        "version",
    ]);
    for c in tables {
        t.add_row(vec![
            c.table.to_string(),
            c.files_removed.to_string(),
            c.files_added.to_string(),
            thousands(c.rows_removed),
            thousands(c.rows_rewritten),
            c.version.map_or_else(|| "-".into(), |v| v.to_string()),
        ]);
    }
    right_align(&mut t, 1..6);
    writeln!(w, "{t}")?;
    Ok(())
}

/// Writes what `verdict retention` did (or would do).
pub fn retention(
    w: &mut dyn Write,
    s: &verdict_ingest::lifecycle::RetentionSummary,
    format: SummaryFormat,
) -> Result<()> {
    if format == SummaryFormat::Json {
        return json(w, s);
    }
    let verb = if s.dry_run { "would remove" } else { "removed" };
    let days = match (s.days_removed.first(), s.days_removed.last()) {
        (Some(a), Some(b)) if a == b => format!(" ({a})"),
        (Some(a), Some(b)) => format!(" ({a} .. {b})"),
        _ => String::new(),
    };
    writeln!(
        w,
        "retention keeps {} onwards: {verb} {} day(s){days}, {} decision row(s), {} quarantined line(s)",
        s.keep_from,
        s.days_removed.len(),
        thousands(s.rows_removed),
        thousands(s.quarantined_removed)
    )?;
    for h in &s.held {
        writeln!(w, "kept {} (held by {})", h.day, h.holds.join(", "))?;
    }
    if !s.dry_run && !s.days_removed.is_empty() || s.quarantined_removed > 0 {
        table_changes(w, &s.tables)?;
    }
    if !s.dry_run && (s.rows_removed > 0 || s.quarantined_removed > 0) {
        writeln!(w, "the files stay until `verdict vacuum` deletes them")?;
    }
    Ok(())
}

/// Writes what `verdict erase` did (or would do).
pub fn erase(
    w: &mut dyn Write,
    s: &verdict_ingest::lifecycle::EraseSummary,
    format: SummaryFormat,
) -> Result<()> {
    if format == SummaryFormat::Json {
        return json(w, s);
    }
    let verb = match (s.dry_run, s.pseudonymised) {
        (true, true) => "would pseudonymise",
        (true, false) => "would erase",
        (false, true) => "pseudonymised",
        (false, false) => "erased",
    };
    writeln!(
        w,
        "{verb} {} decision row(s) and {} quarantined line(s) of subject {} over {} day(s)",
        thousands(s.rows),
        thousands(s.quarantined),
        s.subject,
        s.days.len()
    )?;
    table_changes(w, &s.tables)?;
    if !s.dry_run && s.rows + s.quarantined > 0 {
        writeln!(
            w,
            "the old files stay until `verdict vacuum --retention 0d` deletes them"
        )?;
    }
    Ok(())
}

/// Writes the legal holds in place.
pub fn holds(
    w: &mut dyn Write,
    holds: &[verdict_table::Hold],
    format: SummaryFormat,
) -> Result<()> {
    if format == SummaryFormat::Json {
        return json(w, &holds);
    }
    if holds.is_empty() {
        writeln!(w, "no holds in place")?;
        return Ok(());
    }
    let mut t = table();
    t.set_header(vec![
        "name",
        "since",
        "until",
        "identities",
        "reason",
        "placed by",
        "placed at",
    ]);
    for h in holds {
        t.add_row(vec![
            h.name.clone(),
            h.since.clone().unwrap_or_else(|| "-".into()),
            h.until.clone().unwrap_or_else(|| "-".into()),
            if h.identities.is_empty() {
                "(everyone)".into()
            } else {
                h.identities.join(", ")
            },
            h.reason.clone(),
            h.placed_by.clone().unwrap_or_default(),
            h.placed_at.clone(),
        ]);
    }
    writeln!(w, "{t}")?;
    Ok(())
}

/// Writes what `verdict doctor` found, with how to recover from each problem.
pub fn doctor(
    w: &mut dyn Write,
    r: &verdict_table::DoctorReport,
    removed: Option<i64>,
    format: SummaryFormat,
) -> Result<()> {
    if format == SummaryFormat::Json {
        serde_json::to_writer_pretty(&mut *w, r)?;
        writeln!(w)?;
        return Ok(());
    }
    writeln!(
        w,
        "checked {} files ({} rows) at decisions version {}",
        thousands(r.files_checked),
        thousands(r.rows_checked),
        r.version.map_or("-".into(), |v| v.to_string())
    )?;
    for p in &r.problems {
        let added = p
            .added_in
            .map_or("an unknown version".into(), |v| format!("version {v}"));
        writeln!(
            w,
            "damaged: {}/{} (added in {added}): {}",
            p.table, p.path, p.message
        )?;
        if let Some(v) = p.added_in.filter(|v| *v > 0 && p.table == "decisions") {
            writeln!(
                w,
                "  recover: restore the file from a backup, or `verdict restore --to {}` (the table before it was added), or `verdict doctor --remove-damaged` (its rows are lost, recorded in history)",
                v - 1
            )?;
        } else {
            writeln!(w, "  recover: restore the file from a backup, or `verdict doctor --remove-damaged` (a derived table is recomputed by the next write)")?;
        }
    }
    if let Some(v) = removed {
        writeln!(w, "removed the damaged files in decisions version {v}")?;
    }
    if r.problems.is_empty() {
        writeln!(w, "no problem found")?;
    }
    Ok(())
}

/// Writes what `verdict verify` found: per table the version, the chain and what was reread,
/// the authorised removals, then every problem (the first found first), or OK.
pub fn verify(
    w: &mut dyn Write,
    r: &verdict_table::VerifyReport,
    format: SummaryFormat,
) -> Result<()> {
    if format == SummaryFormat::Json {
        serde_json::to_writer_pretty(&mut *w, r)?;
        writeln!(w)?;
        return Ok(());
    }
    for t in &r.tables {
        let chain = match (&t.chain_start, &t.head) {
            (None, _) if t.unchained_commits == 0 => "no data committed yet".to_string(),
            (None, _) => "no chained commit (written before the integrity chain)".to_string(),
            (Some(s), Some(h)) => format!(
                "chain from version {s}, {} link(s) ({} signed), head version {} sha256 {}",
                thousands(t.links),
                thousands(t.signed_links),
                h.version,
                h.digest
            ),
            (Some(s), None) => format!(
                "chain from version {s}, {} link(s) ({} signed), version {} has no link",
                thousands(t.links),
                thousands(t.signed_links),
                t.version
            ),
        };
        writeln!(w, "{} version {}: {chain}", t.table, t.version)?;
        writeln!(
            w,
            "  files reread: {} ({} bytes){}",
            thousands(t.files_hashed),
            thousands(t.bytes_hashed),
            if t.files_listed_only > 0 {
                format!(
                    ", {} older than --since checked for presence and size",
                    thousands(t.files_listed_only)
                )
            } else {
                String::new()
            }
        )?;
        if t.unchained_commits > 0 || t.unchained_files > 0 {
            writeln!(
                w,
                "  unchained history: {} commit(s) before the chain started; {} live file(s) \
                 from them read, with no digest to compare",
                thousands(t.unchained_commits),
                thousands(t.unchained_files)
            )?;
        }
        if t.expired_commits > 0 {
            writeln!(
                w,
                "  {} early commit(s) no longer in the log (cleaned up after a checkpoint)",
                thousands(t.expired_commits)
            )?;
        }
    }
    for m in &r.removals {
        writeln!(
            w,
            "authorised removal: {} version {} ({}): {} file(s)",
            m.table, m.version, m.operation, m.files
        )?;
    }
    if r.problems.is_empty() {
        writeln!(w, "OK: every link and every file matches")?;
        return Ok(());
    }
    writeln!(w, "FAILED: {} problem(s)", r.problems.len())?;
    for p in &r.problems {
        writeln!(w, "{}: {}: {}", p.kind.label(), p.table, p.message)?;
    }
    Ok(())
}

/// The policy files a replay compared, for the report's title.
pub struct ReplayNames {
    /// The candidate's path.
    pub candidate: String,
    /// The baseline's path, when one was given.
    pub baseline: Option<String>,
}

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "0.00%".into()
    } else {
        format!("{:.2}%", n as f64 * 100.0 / of as f64)
    }
}

/// Writes a replay report.
pub fn replay_report(
    w: &mut dyn Write,
    r: &ReplayReport,
    names: &ReplayNames,
    format: SummaryFormat,
) -> Result<()> {
    if format == SummaryFormat::Json {
        #[derive(serde::Serialize)]
        struct WithNames<'a> {
            candidate: &'a str,
            baseline: Option<&'a str>,
            #[serde(flatten)]
            report: &'a ReplayReport,
        }
        let v = WithNames {
            candidate: &names.candidate,
            baseline: names.baseline.as_deref(),
            report: r,
        };
        serde_json::to_writer_pretty(&mut *w, &v)?;
        writeln!(w)?;
        return Ok(());
    }
    let against = match &names.baseline {
        Some(b) => format!("the baseline {b} (simulated)"),
        None => "the recorded decisions".to_string(),
    };
    writeln!(w, "replay of {} against {against}", names.candidate)?;
    let rg = &r.range;
    let from = rg
        .since
        .clone()
        .or_else(|| rg.first_event.clone())
        .unwrap_or_else(|| "-".into());
    let to = rg
        .until
        .clone()
        .or_else(|| rg.last_event.clone())
        .unwrap_or_else(|| "-".into());
    let warm = rg
        .warmup_from
        .as_ref()
        .map_or(String::new(), |f| format!(", warmed up from {f}"));
    writeln!(w, "range {from} .. {to} (counters start empty{warm})")?;
    let c = &r.counts;
    writeln!(
        w,
        "events {}, tool calls replayed {}, non-tool methods skipped {}{}",
        thousands(c.events),
        thousands(c.tool_calls),
        thousands(c.skipped_non_tool),
        if c.filtered_out > 0 {
            format!(", outside the filters {}", thousands(c.filtered_out))
        } else {
            String::new()
        },
    )?;
    writeln!(
        w,
        "compared {}, changed {} ({}), indeterminate {}, not comparable {}",
        thousands(c.compared),
        thousands(c.changed),
        pct(c.changed, c.compared),
        thousands(c.indeterminate),
        thousands(c.not_comparable),
    )?;
    if let Some(f) = &r.fidelity {
        let who = if f.policy == "baseline" {
            "baseline"
        } else {
            "candidate"
        };
        writeln!(
            w,
            "fidelity: the {who} reproduces {} of {} determinate recorded decisions ({})",
            thousands(f.reproduced),
            thousands(f.determinate),
            pct(f.reproduced, f.determinate),
        )?;
    }
    writeln!(w)?;
    let mut t = table();
    t.set_header(vec!["transition", "calls"]);
    for (name, n) in r.transitions.iter() {
        if n > 0 || name == "unchanged" {
            t.add_row(vec![name.to_string(), thousands(n)]);
        }
    }
    right_align(&mut t, 1..2);
    writeln!(w, "{t}")?;
    if !r.by_identity_tool.is_empty() {
        let mut t = table();
        t.set_header(vec!["identity", "tool", "calls", "transitions"]);
        for row in &r.by_identity_tool {
            let detail: Vec<String> = r
                .transitions
                .iter()
                .filter_map(|(k, _)| {
                    row.transitions
                        .get(k)
                        .map(|n| format!("{k} {}", thousands(*n)))
                })
                .collect();
            t.add_row(vec![
                row.identity.clone().unwrap_or_else(|| "(unknown)".into()),
                row.tool.clone(),
                thousands(row.total),
                detail.join(", "),
            ]);
        }
        right_align(&mut t, 2..3);
        writeln!(w, "\nchanged and indeterminate calls by identity and tool")?;
        writeln!(w, "{t}")?;
    }
    if !r.by_rule.is_empty() {
        let mut t = table();
        t.set_header(vec!["rule", "side", "transition", "calls"]);
        for row in &r.by_rule {
            t.add_row(vec![
                row.rule.clone(),
                row.side.to_string(),
                row.transition.clone(),
                thousands(row.calls),
            ]);
        }
        right_align(&mut t, 3..4);
        writeln!(w, "\nrules behind the changes (candidate: its rule now decides; recorded/baseline: that rule no longer fires)")?;
        writeln!(w, "{t}")?;
    }
    if !r.samples.is_empty() {
        let mut t = table();
        t.set_header(vec![
            "transition",
            "event",
            "time",
            "identity",
            "tool",
            "was",
            "now",
            "candidate rule / message",
        ]);
        for s in &r.samples {
            let was = match (&s.baseline_decision, &s.baseline_rule) {
                (Some(d), Some(rule)) if !rule.is_empty() => format!("{d} {rule}"),
                (Some(d), _) => d.clone(),
                (None, _) => match &s.recorded_rule {
                    Some(rule) => format!("{} {rule}", s.recorded_decision),
                    None => s.recorded_decision.clone(),
                },
            };
            let why = match (s.candidate_rule.is_empty(), s.candidate_message.is_empty()) {
                (true, _) => String::new(),
                (false, true) => s.candidate_rule.clone(),
                (false, false) => format!("{}: {}", s.candidate_rule, s.candidate_message),
            };
            t.add_row(vec![
                s.transition.clone(),
                s.event_id.clone(),
                s.ts.clone(),
                s.identity.clone().unwrap_or_default(),
                s.tool.clone(),
                was,
                s.candidate_decision.clone(),
                why,
            ]);
        }
        writeln!(w, "\nsamples")?;
        writeln!(w, "{t}")?;
    }
    if let Some(ch) = &r.changes {
        writeln!(
            w,
            "\n{} changed or indeterminate events written to {}",
            thousands(ch.rows),
            ch.path
        )?;
    }
    if !r.gates.is_empty() {
        writeln!(w)?;
        for g in &r.gates {
            let state = if g.tripped {
                paint("TRIPPED", anstyle::AnsiColor::Red)
            } else {
                paint("ok", anstyle::AnsiColor::Green)
            };
            writeln!(w, "gate {}: {state} ({})", g.gate, g.detail)?;
        }
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

/// Writes a query result as the query produces it: to `out` in `format`, or to the `--output`
/// file; `None` is Parquet. An empty warehouse gets a note on stderr, not an error.
pub async fn query_result(
    r: verdict_query::QueryStream,
    format: Option<verdict_query::OutputFormat>,
    file: Option<&std::path::Path>,
    out: &mut dyn Write,
    opts: &verdict_query::PrintOptions,
) -> Result<verdict_query::Printed> {
    use anyhow::Context;
    if r.warehouse_empty {
        note("the warehouse holds no decisions yet; run `verdict ingest` first");
    }
    Ok(match (format, file) {
        (None, Some(path)) => {
            let rows = verdict_query::write_parquet_stream(r, path)
                .await
                .with_context(|| format!("writing {}", path.display()))?;
            note(&format!(
                "wrote {} rows to {}",
                thousands(rows),
                path.display()
            ));
            verdict_query::Printed { rows, omitted: 0 }
        }
        (None, None) => anyhow::bail!("--format parquet needs --output FILE"),
        (Some(f), Some(path)) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let printed = verdict_query::write_stream(r, f, &mut w, opts)
                .await
                .with_context(|| format!("writing {}", path.display()))?;
            w.flush()
                .with_context(|| format!("writing {}", path.display()))?;
            printed
        }
        (Some(f), None) => verdict_query::write_stream(r, f, out, opts).await?,
    })
}

/// Prints an error the way every command does: the chain of contexts joined by `: `, like
/// `{:#}`, leaving out a cause whose text its parent already quoted.
pub fn error(e: &anyhow::Error) {
    to_stderr(&format!("error: {}", error_text(e)));
}

/// Writes `note: MSG` on stderr, unless `--quiet`.
pub fn note(msg: &str) {
    if !style().quiet {
        to_stderr(&format!("note: {msg}"));
    }
}

/// Writes one line on stderr. A closed or full stderr is ignored: there is nowhere left to say
/// so, and the exit code still tells (`eprintln!` would panic).
fn to_stderr(line: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
    let _ = e.flush();
}

/// Whether `e` (or any of its causes) is a write to a closed pipe: the reader (`head`, `less`)
/// has had enough, which is not an error of the command.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<verdict_query::Error>()
                .is_some_and(verdict_query::Error::is_broken_pipe)
            // serde_json's error hides its io::Error from the chain.
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// The text [`error`] prints.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.last().is_some_and(|p| p.contains(text.trim())) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
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
    fn error_chains_do_not_repeat_quoted_causes() {
        let inner = std::io::Error::other("disk full");
        let e = anyhow::Error::new(inner)
            .context("writing x: disk full")
            .context("ingest into wh");
        assert_eq!(error_text(&e), "ingest into wh: writing x: disk full");
        let e = anyhow::anyhow!("root").context("outer");
        assert_eq!(error_text(&e), "outer: root");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}

pub mod policy;
pub mod replay_ci;

/// Says where a document was written.
pub fn document_written(w: &mut dyn Write, path: &std::path::Path, bytes: u64) -> Result<()> {
    writeln!(w, "wrote {} ({} bytes)", path.display(), thousands(bytes))?;
    Ok(())
}
