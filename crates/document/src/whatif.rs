//! The what-if report of a replay: what a candidate policy would change, for whom, when and
//! why, with charts (transitions, the identity x tool matrix, changes over time), as one
//! self-contained HTML file for a pull request or a review.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::TimestampMicrosecondType;
use chrono::{DateTime, Utc};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use verdict_replay::{ReplayReport, TRANSITIONS};

use crate::chart::{heatmap, stacked_bars, Series};
use crate::error::{Error, Result};
use crate::html::{esc, figure, group_thousands, Cell, Page, Section, Table};

/// One changed or indeterminate call, as the replay's changes file holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// When the call was made (UTC microseconds).
    pub ts: i64,
    /// Its transition (`deny->allow`, `indeterminate` ...).
    pub transition: String,
}

/// Names shown in the report.
#[derive(Debug, Clone, Default)]
pub struct WhatIfOptions {
    /// The title.
    pub title: String,
    /// The candidate policy as the user named it.
    pub candidate: String,
    /// The baseline policy, when one was simulated.
    pub baseline: Option<String>,
}

/// Reads the `ts` and `transition` columns of a replay changes file.
///
/// # Errors
/// [`Error::Changes`] when the file cannot be read or lacks those columns.
pub fn read_changes(path: &Path) -> Result<Vec<ChangeEvent>> {
    let fail = |message: String| Error::Changes {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| fail(e.to_string()))?;
        let ts = batch
            .column_by_name("ts")
            .and_then(|a| a.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or_else(|| fail("no `ts` timestamp column".into()))?;
        let tr = batch
            .column_by_name("transition")
            .and_then(|a| a.as_string_opt::<i32>())
            .ok_or_else(|| fail("no `transition` text column".into()))?;
        for i in 0..batch.num_rows() {
            if ts.is_null(i) || tr.is_null(i) {
                return Err(fail(format!(
                    "row {}: empty ts or transition",
                    out.len() + 1
                )));
            }
            out.push(ChangeEvent {
                ts: ts.value(i),
                transition: tr.value(i).to_string(),
            });
        }
    }
    Ok(out)
}

fn colour(transition: &str) -> (u8, u8, u8) {
    match transition {
        t if t.ends_with("->allow") => (200, 55, 55),
        t if t.starts_with("allow->") => (232, 140, 30),
        "indeterminate" => (150, 150, 150),
        _ => (60, 110, 200),
    }
}

fn section(id: &str, title: &str, body: String) -> Section {
    Section {
        id: id.into(),
        title: title.into(),
        body,
    }
}

/// Renders the what-if report of `report`; `changes` are the rows of its changes file (for the
/// chart over time).
///
/// # Errors
/// When a chart cannot be drawn.
pub fn whatif(
    report: &ReplayReport,
    changes: &[ChangeEvent],
    opts: &WhatIfOptions,
) -> Result<String> {
    let sections = vec![
        summary(report, opts),
        transitions(report)?,
        matrix(report)?,
        over_time(changes)?,
        rules(report),
        samples(report),
    ];
    let against = match &opts.baseline {
        Some(b) => format!(
            "the baseline policy <code>{}</code> simulated the same way",
            esc(b)
        ),
        None => "the decisions the gateways recorded".to_string(),
    };
    let header = vec![
        format!(
            "Candidate policy <code>{}</code> compared with {against}. All times are UTC.",
            esc(&opts.candidate)
        ),
        format!(
            "Replayed calls from {} to {}.",
            esc(report.range.first_event.as_deref().unwrap_or("(none)")),
            esc(report.range.last_event.as_deref().unwrap_or("(none)"))
        ),
    ];
    Ok(Page {
        title: opts.title.clone(),
        header,
        sections,
    }
    .render())
}

fn summary(r: &ReplayReport, opts: &WhatIfOptions) -> Section {
    let c = &r.counts;
    let int = |n: u64| Cell::Int(n as i64);
    let mut rows = vec![
        vec![Cell::text("rows read"), int(c.events)],
        vec![Cell::text("tool calls replayed"), int(c.tool_calls)],
        vec![Cell::text("compared"), int(c.compared)],
        vec![Cell::text("changed"), int(c.changed)],
        vec![
            Cell::text("changed share of compared"),
            Cell::Num(format!("{:.2}%", r.changed_share() * 100.0)),
        ],
        vec![Cell::text("indeterminate"), int(c.indeterminate)],
        vec![
            Cell::text("not comparable (recorded error/unknown)"),
            int(c.not_comparable),
        ],
        vec![
            Cell::text("destructive calls newly allowed"),
            int(c.destructive_newly_allowed),
        ],
    ];
    if let Some(f) = &r.fidelity {
        rows.push(vec![
            Cell::text(format!("fidelity of the {} policy", f.policy)),
            Cell::Num(format!(
                "{:.2}% ({} of {})",
                f.share * 100.0,
                group_thousands(f.reproduced),
                group_thousands(f.determinate)
            )),
        ]);
    }
    let counts = Table {
        columns: vec!["figure".into(), "value".into()],
        rows,
    };
    let mut body = format!(
        "<p>What <code>{}</code> would decide differently. <em>changed</em>: compared calls \
         whose decision differs; <em>indeterminate</em>: calls whose outcome needs argument \
         values the log does not hold.</p>{}",
        esc(&opts.candidate),
        counts.html("data summary")
    );
    if !r.gates.is_empty() {
        let gates = Table {
            columns: vec!["gate".into(), "result".into(), "figure".into()],
            rows: r
                .gates
                .iter()
                .map(|g| {
                    vec![
                        Cell::text(&g.gate),
                        Cell::text(if g.tripped { "FAIL" } else { "pass" }),
                        Cell::text(&g.detail),
                    ]
                })
                .collect(),
        };
        body.push_str("<h3>Gates</h3>");
        body.push_str(&gates.html("data gates"));
    }
    section("summary", "Summary", body)
}

fn transitions(r: &ReplayReport) -> Result<Section> {
    let shown: Vec<(&str, u64)> = r
        .transitions
        .iter()
        .filter(|(t, n)| *t != "unchanged" && *n > 0)
        .collect();
    let cats: Vec<String> = shown.iter().map(|(t, _)| (*t).to_string()).collect();
    let series: Vec<Series> = shown
        .iter()
        .enumerate()
        .map(|(i, (t, n))| {
            let mut values = vec![0; shown.len()];
            values[i] = *n;
            Series {
                name: (*t).to_string(),
                color: colour(t),
                values,
            }
        })
        .collect();
    let chart = stacked_bars(&cats, &series, 20)?;
    let table = Table {
        columns: vec!["transition".into(), "calls".into()],
        rows: r
            .transitions
            .iter()
            .map(|(t, n)| vec![Cell::text(t), Cell::Int(n as i64)])
            .collect(),
    };
    let body = format!(
        "<p>Calls per transition (recorded or baseline decision -> candidate decision); the \
         chart leaves out unchanged calls.</p>{}{}",
        figure(
            &chart,
            "Changed and indeterminate calls per transition",
            &[]
        ),
        table.html("data transitions")
    );
    Ok(section("transitions", "Transitions", body))
}

fn matrix(r: &ReplayReport) -> Result<Section> {
    let name = |i: &Option<String>| i.clone().unwrap_or_else(|| "(unknown)".into());
    let ids: Vec<String> = r
        .by_identity_tool
        .iter()
        .map(|row| name(&row.identity))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let tools: Vec<String> = r
        .by_identity_tool
        .iter()
        .map(|row| row.tool.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut values = vec![vec![0u64; tools.len()]; ids.len()];
    for row in &r.by_identity_tool {
        if let (Ok(i), Ok(t)) = (
            ids.binary_search(&name(&row.identity)),
            tools.binary_search(&row.tool),
        ) {
            values[i][t] += row.total;
        }
    }
    let chart = heatmap(&ids, &tools, &values, (200, 55, 55))?;
    let present: Vec<&str> = TRANSITIONS
        .iter()
        .copied()
        .filter(|t| {
            r.by_identity_tool
                .iter()
                .any(|row| row.transitions.contains_key(*t))
        })
        .collect();
    let mut columns = vec![
        "identity".to_string(),
        "tool".to_string(),
        "total".to_string(),
    ];
    columns.extend(present.iter().map(|t| (*t).to_string()));
    let table = Table {
        columns,
        rows: r
            .by_identity_tool
            .iter()
            .map(|row| {
                let mut cells = vec![
                    Cell::Text(row.identity.clone()),
                    Cell::text(&row.tool),
                    Cell::Int(row.total as i64),
                ];
                cells.extend(
                    present
                        .iter()
                        .map(|t| Cell::Int(row.transitions.get(*t).copied().unwrap_or(0) as i64)),
                );
                cells
            })
            .collect(),
    };
    let body = format!(
        "<p>Changed and indeterminate calls per identity and tool.</p>{}{}",
        figure(&chart, "Changes, identity x tool", &[]),
        table.html("data matrix")
    );
    Ok(section("matrix", "Who is affected", body))
}

fn over_time(changes: &[ChangeEvent]) -> Result<Section> {
    const HOUR: i64 = 3_600_000_000;
    let (lo, hi) = match (
        changes.iter().map(|c| c.ts).min(),
        changes.iter().map(|c| c.ts).max(),
    ) {
        (Some(lo), Some(hi)) => (lo, hi),
        _ => (0, -1),
    };
    let width = if hi - lo <= 14 * 24 * HOUR {
        HOUR
    } else {
        24 * HOUR
    };
    let (fmt, unit) = if width == HOUR {
        ("%Y-%m-%d %H:00", "UTC hour")
    } else {
        ("%Y-%m-%d", "UTC day")
    };
    let first = lo - lo.rem_euclid(width);
    let n = if hi < lo {
        0
    } else {
        ((hi - first) / width + 1) as usize
    };
    let cats: Vec<String> = (0..n)
        .map(|i| {
            DateTime::<Utc>::from_timestamp_micros(first + i as i64 * width)
                .unwrap_or_default()
                .format(fmt)
                .to_string()
        })
        .collect();
    let mut counts: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for c in changes {
        let b = ((c.ts - first) / width) as usize;
        counts
            .entry(c.transition.as_str())
            .or_insert_with(|| vec![0; n])[b] += 1;
    }
    let series: Vec<Series> = TRANSITIONS
        .iter()
        .filter_map(|t| {
            counts.get(*t).map(|v| Series {
                name: (*t).to_string(),
                color: colour(t),
                values: v.clone(),
            })
        })
        .collect();
    let chart = stacked_bars(&cats, &series, 28)?;
    let table = Table {
        columns: vec![unit.replace("UTC ", ""), "changes".into()],
        rows: cats
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let total: u64 = series.iter().map(|s| s.values[i]).sum();
                (total > 0).then(|| vec![Cell::text(c), Cell::Int(total as i64)])
            })
            .collect(),
    };
    let body = format!(
        "<p>Changed and indeterminate calls per {unit}, stacked by transition (hours when the \
         changes span up to 14 days, days beyond). The table lists the {}s with changes.</p>{}{}",
        unit.replace("UTC ", ""),
        figure(&chart, &format!("Changes per {unit}"), &series),
        table.html("data over-time")
    );
    Ok(section("over-time", "Changes over time", body))
}

fn rules(r: &ReplayReport) -> Section {
    let table = Table {
        columns: vec![
            "rule".into(),
            "side".into(),
            "transition".into(),
            "calls".into(),
        ],
        rows: r
            .by_rule
            .iter()
            .map(|row| {
                vec![
                    Cell::text(&row.rule),
                    Cell::text(row.side),
                    Cell::text(&row.transition),
                    Cell::Int(row.calls as i64),
                ]
            })
            .collect(),
    };
    let body = format!(
        "<p>The rules behind the changes: <em>candidate</em> when the candidate's rule now \
         decides, <em>recorded</em> or <em>baseline</em> when the earlier rule no longer \
         fires.</p>{}",
        table.html("data rules")
    );
    section("rules", "Rules behind the changes", body)
}

fn samples(r: &ReplayReport) -> Section {
    let table = Table {
        columns: [
            "transition",
            "time",
            "identity",
            "session",
            "tool",
            "recorded",
            "candidate",
            "candidate rule",
            "message",
            "event_id",
        ]
        .map(String::from)
        .to_vec(),
        rows: r
            .samples
            .iter()
            .map(|s| {
                vec![
                    Cell::text(&s.transition),
                    Cell::text(&s.ts),
                    Cell::Text(s.identity.clone()),
                    Cell::Text(s.session.clone()),
                    Cell::text(&s.tool),
                    Cell::text(&s.recorded_decision),
                    Cell::text(&s.candidate_decision),
                    Cell::text(&s.candidate_rule),
                    Cell::text(&s.candidate_message),
                    Cell::text(&s.event_id),
                ]
            })
            .collect(),
    };
    section(
        "samples",
        "Examples",
        format!(
            "<p>Example calls per transition.</p>{}",
            table.html("data samples")
        ),
    )
}
