//! The compliance report of a period: one section per question a compliance team hands an
//! auditor, each with its figures, a chart where one reads better, and the SQL that reproduces
//! them. Definitions of every figure: README, "The compliance report".

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use datafusion::prelude::ParquetReadOptions;
use verdict_query::{Engine, Rollup, DECISIONS_TABLE, ROLLUP_HOUR_TABLE};

use crate::chart::{heatmap, stacked_bars, Series};
use crate::error::{Error, Result};
use crate::html::{
    esc, figure, group_thousands, query_block, sql_details, Cell, Page, Section, Table,
};

/// The table name the replay changes file is registered under for the fidelity query.
pub const CHANGES_TABLE: &str = "replay_changes";

/// Decisions in the order charts stack them, with their colours.
const DECISIONS: [(&str, (u8, u8, u8)); 6] = [
    ("allow", (46, 139, 87)),
    ("deny", (200, 55, 55)),
    ("rate_limited", (232, 140, 30)),
    ("approval_required", (60, 110, 200)),
    ("error", (130, 70, 160)),
    ("unknown", (150, 150, 150)),
];

/// A fixed palette for sources (cycled).
const PALETTE: [(u8, u8, u8); 8] = [
    (31, 95, 168),
    (232, 140, 30),
    (46, 139, 87),
    (200, 55, 55),
    (130, 70, 160),
    (140, 86, 75),
    (220, 110, 180),
    (110, 110, 110),
];

/// Heatmap size limits: the identities and tools with the most denials and rate-limit hits.
const HEATMAP_MAX: usize = 40;

/// What the fidelity section needs: the replay of the period against the live policy.
#[derive(Debug, Clone)]
pub struct Fidelity {
    /// The policy file as the user named it.
    pub policy: String,
    /// The replay's report (its overall fidelity figure is shown beside the per-version table).
    pub report: verdict_replay::ReplayReport,
    /// The replay's changes file (every changed or indeterminate call).
    pub changes: PathBuf,
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct ComplianceOptions {
    /// Start of the period, inclusive (UTC microseconds).
    pub since: i64,
    /// End of the period, exclusive (UTC microseconds).
    pub until: i64,
    /// The title.
    pub title: String,
    /// A generation time to print; none by default so that the output is deterministic.
    pub generated_at: Option<String>,
    /// The live-policy replay of the period, for the fidelity figure.
    pub fidelity: Option<Fidelity>,
    /// The version read and what `verify` found, for the integrity section.
    pub integrity: Option<Integrity>,
}

/// The warehouse's integrity when the report was generated.
#[derive(Debug, Clone)]
pub struct Integrity {
    /// The `decisions` version the report reads.
    pub version: Option<i64>,
    /// What `verdict verify` found at that version.
    pub verify: verdict_table::VerifyReport,
}

/// `2026-11-02T00:00:00Z` (fractions only when present): a literal for SQL and for people.
fn instant(micros: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
    if t.nanosecond() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

fn date_of(micros: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .unwrap_or_default()
        .date_naive()
}

/// The period filter of every query: `ts` in `[since, until)`, plus the `day` partitions that
/// can hold such rows (so that other days are never read).
struct Period {
    since: i64,
    until: i64,
}

impl Period {
    fn filter(&self) -> String {
        self.filter_on("ts")
    }

    /// The period on the time column `ts` (and the `day` partitions it spans).
    fn filter_on(&self, ts: &str) -> String {
        format!(
            "{ts} >= TIMESTAMP '{}' AND {ts} < TIMESTAMP '{}' AND day BETWEEN DATE '{}' AND DATE '{}'",
            instant(self.since),
            instant(self.until),
            date_of(self.since),
            date_of(self.until - 1)
        )
    }

    /// Every UTC day of the period, in order.
    fn days(&self) -> Vec<String> {
        let (first, last) = (date_of(self.since), date_of(self.until - 1));
        first
            .iter_days()
            .take_while(|d| *d <= last)
            .map(|d| d.to_string())
            .collect()
    }

    /// Hourly buckets up to 14 days, daily past that.
    fn hourly(&self) -> bool {
        self.until - self.since <= 14 * 86_400_000_000
    }

    /// Every bucket label of the period at the chosen grain (`YYYY-MM-DD HH:00` or the day).
    fn buckets(&self) -> Vec<String> {
        if !self.hourly() {
            return self.days();
        }
        let start = DateTime::<Utc>::from_timestamp_micros(
            self.since - self.since.rem_euclid(3_600_000_000),
        )
        .unwrap_or_default();
        let end = DateTime::<Utc>::from_timestamp_micros(self.until).unwrap_or_default();
        let mut out = Vec::new();
        let mut t = start;
        while t < end {
            out.push(t.format("%Y-%m-%d %H:00").to_string());
            t += Duration::hours(1);
        }
        out
    }
}

const TS_FMT: &str = "'%Y-%m-%d %H:%M:%S'";

async fn run(engine: &Engine, sql: &str) -> Result<Table> {
    Table::from_output(&engine.sql(sql).await?)
}

fn section(id: &str, title: &str, body: String) -> Section {
    Section {
        id: id.into(),
        title: title.into(),
        body,
    }
}

fn para(text: &str) -> String {
    format!("<p>{text}</p>")
}

/// Builds the compliance report of a period over `engine`'s snapshot of the warehouse.
///
/// # Errors
/// [`Error::EmptyPeriod`], a failed query, or a chart that cannot
/// be drawn.
pub async fn compliance(engine: &Engine, opts: &ComplianceOptions) -> Result<String> {
    if opts.since >= opts.until {
        return Err(Error::EmptyPeriod {
            since: instant(opts.since),
            until: instant(opts.until),
        });
    }
    let p = Period {
        since: opts.since,
        until: opts.until,
    };
    // The sections' queries run a few at a time: each has phases on one core (a final merge, a
    // sort, formatting), so together they keep the cores busy, in two groups so that memory stays
    // that of a few queries. The order of the document is fixed.
    let (a, b, c, d, e, f) = futures::try_join!(
        period_section(engine, &p),
        inputs_section(engine, &p),
        completeness_section(engine, &p),
        calls_section(engine, &p),
        denials_section(engine, &p),
        rules_section(engine, &p),
    )?;
    let (g, h, i, j, k) = futures::try_join!(
        rate_limit_section(engine, &p),
        destructive_section(engine, &p),
        first_seen_section(engine, &p),
        unused_section(engine, &p),
        policy_section(engine, &p, opts.fidelity.as_ref()),
    )?;
    let mut sections = vec![a, b, c, d, e, f, g, h, i, j, k];
    if let Some(i) = &opts.integrity {
        sections.push(integrity_section(i));
    }
    let mut header = vec![
        format!(
            "Period: <strong>{}</strong> (inclusive) to <strong>{}</strong> (exclusive). All times are UTC.",
            esc(&instant(opts.since)),
            esc(&instant(opts.until))
        ),
        "Every figure can be reproduced with <code>verdict sql</code>: each section carries its query, collapsed under the table.".to_string(),
    ];
    if let Some(v) = opts.integrity.as_ref().and_then(|i| i.version) {
        header.push(format!(
            "Reads <code>decisions</code> version <strong>{v}</strong>: the same command with \
             <code>--as-of {v}</code> gives the same document."
        ));
    }
    if let Some(g) = &opts.generated_at {
        header.push(format!("Generated at {} (UTC).", esc(g)));
    }
    Ok(Page {
        title: opts.title.clone(),
        header,
        sections,
    }
    .render())
}

/// The integrity section: the version read, the chain's head, and what `verify` found.
fn integrity_section(i: &Integrity) -> Section {
    let r = &i.verify;
    let mut body = para(&match i.version {
        Some(v) => format!(
            "This report reads version <strong>{v}</strong> of the <code>decisions</code> table."
        ),
        None => "The warehouse holds no decisions yet.".to_string(),
    });
    for t in &r.tables {
        let head = match (&t.head, t.chain_start) {
            (Some(h), _) => format!(
                "chain head: version {}, SHA-256 <code>{}</code>; chain from version {}, \
                 {} link(s), {} signed",
                h.version,
                esc(&h.digest),
                t.chain_start.unwrap_or(h.version),
                group_thousands(t.links),
                group_thousands(t.signed_links)
            ),
            (None, Some(s)) => format!(
                "version {} carries no link (chain from version {s})",
                t.version
            ),
            (None, None) if t.unchained_commits == 0 => "no data committed yet".to_string(),
            (None, None) => "no chained commit (written before the integrity chain)".to_string(),
        };
        body.push_str(&para(&format!(
            "<code>{}</code> version {}: {head}. Files reread: {} ({} bytes).{}",
            t.table,
            t.version,
            group_thousands(t.files_hashed),
            group_thousands(t.bytes_hashed),
            if t.unchained_commits > 0 {
                format!(
                    " Unchained history: {} commit(s) before the chain started.",
                    group_thousands(t.unchained_commits)
                )
            } else {
                String::new()
            }
        )));
    }
    let verdict = if r.ok {
        "<strong>OK</strong>: every link and every live file matched.".to_string()
    } else {
        format!(
            "<strong>FAILED</strong>: {} problem(s); the first: {}.",
            group_thousands(r.problems.len()),
            r.problems
                .first()
                .map(|p| esc(&format!("{}: {}", p.kind.label(), p.message)))
                .unwrap_or_default()
        )
    };
    body.push_str(&para(&format!(
        "<code>verdict verify</code> at generation time: {verdict} \
         Run <code>verdict verify --as-of VERSION</code> to check again."
    )));
    if !r.problems.is_empty() {
        let rows = r
            .problems
            .iter()
            .map(|p| {
                vec![
                    Cell::text(p.kind.label()),
                    Cell::text(p.table),
                    p.version.map_or(Cell::Text(None), Cell::Int),
                    Cell::Text(p.path.clone()),
                    Cell::text(p.message.clone()),
                ]
            })
            .collect();
        let t = Table {
            columns: ["problem", "table", "version", "file", "what"]
                .map(String::from)
                .to_vec(),
            rows,
        };
        body.push_str(&t.html("data"));
    }
    if !r.removals.is_empty() {
        body.push_str(&para(
            "Files removed by recorded, chained commits (authorised):",
        ));
        let rows = r
            .removals
            .iter()
            .map(|m| {
                vec![
                    Cell::text(m.table),
                    Cell::Int(m.version),
                    Cell::text(m.operation.clone()),
                    Cell::Int(m.files as i64),
                ]
            })
            .collect();
        let t = Table {
            columns: ["table", "version", "operation", "files"]
                .map(String::from)
                .to_vec(),
            rows,
        };
        body.push_str(&t.html("data"));
    }
    section("integrity", "Integrity", body)
}

async fn period_section(engine: &Engine, p: &Period) -> Result<Section> {
    let sql = format!(
        "SELECT count(*) AS calls, count(DISTINCT identity) AS identities, \
         count(DISTINCT tool) AS tools, count(DISTINCT session) AS sessions, \
         count(DISTINCT source) AS sources, count(DISTINCT day) AS days_with_calls, \
         to_char(min(ts), {TS_FMT}) AS first_call, to_char(max(ts), {TS_FMT}) AS last_call\n\
         FROM decisions\nWHERE {}",
        p.filter()
    );
    let t = run(engine, &sql).await?;
    let body = format!(
        "{}{}",
        para(&format!(
            "The report covers every decision recorded from {} to {} (UTC), {} calendar days. \
             A <em>call</em> is one row of the <code>decisions</code> table: one decision a \
             gateway logged, whatever the method.",
            esc(&instant(p.since)),
            esc(&instant(p.until)),
            group_thousands(p.days().len())
        )),
        query_block(&sql, &t)
    );
    Ok(section("period", "Period and scope", body))
}

async fn inputs_section(engine: &Engine, p: &Period) -> Result<Section> {
    let sql = format!(
        "SELECT CAST(source AS VARCHAR) AS source, ingest_file AS file, count(*) AS calls, \
         to_char(min(ts), {TS_FMT}) AS first_call, to_char(max(ts), {TS_FMT}) AS last_call\n\
         FROM decisions\nWHERE {}\nGROUP BY 1, 2\nORDER BY 1, 2 NULLS LAST",
        p.filter()
    );
    let t = run(engine, &sql).await?;
    let body = format!(
        "{}{}",
        para(
            "Where the period's rows came from: each input format (<em>source</em>) and the file \
             each row was read from (<code>-</code> for standard input, <code>http</code> for \
             the collector's receiver), as recorded at ingest with every row."
        ),
        query_block(&sql, &t)
    );
    Ok(section("inputs", "Inputs and provenance", body))
}

async fn completeness_section(engine: &Engine, p: &Period) -> Result<Section> {
    let sql = format!(
        "SELECT CAST(day AS VARCHAR) AS day, CAST(source AS VARCHAR) AS source, count(*) AS calls\n\
         FROM decisions\nWHERE {}\nGROUP BY 1, 2\nORDER BY 1, 2",
        p.filter()
    );
    let t = run(engine, &sql).await?;
    let days = p.days();
    let sources: BTreeSet<String> = (0..t.rows.len()).map(|i| t.text(i, "source")).collect();
    let day_index: BTreeMap<&str, usize> = days
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i))
        .collect();
    let series: Vec<Series> = sources
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let mut values = vec![0u64; days.len()];
            for i in 0..t.rows.len() {
                if &t.text(i, "source") == s {
                    if let Some(&d) = day_index.get(t.text(i, "day").as_str()) {
                        values[d] = t.int(i, "calls") as u64;
                    }
                }
            }
            Series {
                name: s.clone(),
                color: PALETTE[k % PALETTE.len()],
                values,
            }
        })
        .collect();
    let chart = stacked_bars(&days, &series, 31)?;
    let mut body = para(
        "Rows per source per UTC day. A day without a bar is a day on which no source logged.",
    );
    body.push_str(&figure(
        &chart,
        "Calls per day, stacked by source (UTC days)",
        &series,
    ));
    body.push_str(&query_block(&sql, &t));

    body.push_str("<h3>Quarantined records by code</h3>");
    body.push_str(&quarantine_html(engine).await?);

    body.push_str("<h3>Skipped records</h3>");
    body.push_str(&para(
        "verdict does not store records it skips: a record already in the warehouse (the same \
         source and event id) is dropped at ingest and only counted in that ingest's summary. \
         Skipped records by reason are therefore not part of the warehouse and cannot be \
         reported here; every record that could not be read is in the quarantine above.",
    ));

    body.push_str("<h3>Silent hours</h3>");
    body.push_str(&silent_html(engine, p).await?);
    Ok(section("completeness", "Data completeness", body))
}

async fn quarantine_html(engine: &Engine) -> Result<String> {
    let sql = "SELECT error AS code, file, count(*) AS records\nFROM quarantine\nGROUP BY 1, 2\nORDER BY 1, 2";
    let t = run(engine, sql).await?;
    Ok(format!(
        "{}{}{}",
        para(
            "Every line ingest could not turn into a decision is kept in the warehouse's \
             <code>quarantine</code> table (one row per line with its <code>error</code> code, \
             <code>file</code>, <code>line</code>, <code>message</code> and raw text). A record \
             that could not be read has no trusted time, so this table counts the whole \
             quarantine of the version read, not only the period."
        ),
        t.html("data quarantine"),
        query_block(sql, &t)
    ))
}

/// A source's silent hours: hours of day in which it usually logs, on days of its active span
/// in the period, in which it logged nothing (definition: README, "Silent hours").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilentHours {
    /// The source.
    pub source: String,
    /// Days from its first to its last day with rows in the period.
    pub span_days: usize,
    /// Its usual hours of day (0-23).
    pub usual: Vec<u32>,
    /// The silent hours, `YYYY-MM-DD HH:00`, in order.
    pub silent: Vec<String>,
}

/// Finds silent hours from `(source, "YYYY-MM-DD HH:00")` pairs of hours with at least one row.
/// An hour of day is usual for a source when the source logged in it on at least two days and
/// on at least half of the days from its first to its last day; a silent hour is a usual hour of
/// day, on one of those days, in which it logged nothing.
pub fn silent_hours(active: &[(String, String)]) -> Vec<SilentHours> {
    let mut by_source: BTreeMap<&str, BTreeSet<(NaiveDate, u32)>> = BTreeMap::new();
    for (source, hour) in active {
        let Some((d, h)) = hour.split_once(' ') else {
            continue;
        };
        let (Ok(d), Ok(h)) = (
            NaiveDate::parse_from_str(d, "%Y-%m-%d"),
            h.trim_end_matches(":00").parse::<u32>(),
        ) else {
            continue;
        };
        by_source.entry(source).or_default().insert((d, h));
    }
    let mut out = Vec::new();
    for (source, hours) in by_source {
        let (Some(first), Some(last)) = (hours.first(), hours.last()) else {
            continue;
        };
        let days: Vec<NaiveDate> = first.0.iter_days().take_while(|d| *d <= last.0).collect();
        let usual: Vec<u32> = (0..24)
            .filter(|h| {
                let n = hours.iter().filter(|(_, x)| x == h).count();
                n >= 2 && n * 2 >= days.len()
            })
            .collect();
        let mut silent = Vec::new();
        for d in &days {
            for h in &usual {
                if !hours.contains(&(*d, *h)) {
                    silent.push(format!("{d} {h:02}:00"));
                }
            }
        }
        out.push(SilentHours {
            source: source.to_string(),
            span_days: days.len(),
            usual,
            silent,
        });
    }
    out
}

async fn silent_html(engine: &Engine, p: &Period) -> Result<String> {
    let sql = format!(
        "SELECT source, to_char(h, '%Y-%m-%d %H:00') AS hour, calls\n\
         FROM (SELECT CAST(source AS VARCHAR) AS source, date_bin(INTERVAL '1 hour', ts) AS h, count(*) AS calls\n\
         FROM decisions\nWHERE {}\nGROUP BY 1, 2)\nORDER BY 1, 2",
        p.filter()
    );
    let t = run(engine, &sql).await?;
    let active: Vec<(String, String)> = (0..t.rows.len())
        .map(|i| (t.text(i, "source"), t.text(i, "hour")))
        .collect();
    let found = silent_hours(&active);
    let table = Table {
        columns: vec![
            "source".into(),
            "days".into(),
            "usual hours (UTC)".into(),
            "silent hours".into(),
            "first silent hours".into(),
        ],
        rows: found
            .iter()
            .map(|s| {
                let usual: Vec<String> = s.usual.iter().map(|h| format!("{h:02}")).collect();
                let mut first: Vec<String> = s.silent.iter().take(12).cloned().collect();
                if s.silent.len() > 12 {
                    first.push(format!("… {} more", group_thousands(s.silent.len() - 12)));
                }
                vec![
                    Cell::text(&s.source),
                    Cell::Int(s.span_days as i64),
                    Cell::text(usual.join(" ")),
                    Cell::Int(s.silent.len() as i64),
                    Cell::text(first.join(", ")),
                ]
            })
            .collect(),
    };
    Ok(format!(
        "{}{}{}",
        para(
            "An hour of day is <em>usual</em> for a source when the source logged in that hour \
             (UTC) on at least two days and on at least half of the days from its first to its \
             last day with rows in the period. A <em>silent hour</em> is a usual hour, on one of \
             those days, in which the source logged nothing: a gap worth explaining (an outage, \
             a lost file, a collector that stopped). The query lists the hours with rows; the \
             rule above is applied to its result."
        ),
        table.html("data silent"),
        sql_details(&sql)
    ))
}

/// Where the sections that only count calls (and find first calls) per time, identity, tool,
/// decision, rule and message read: `rollup_hour` (one row per UTC hour x identity x tool x
/// server x decision x rule x message, `calls` rows each) when it answers the period exactly
/// ([`Engine::rollup_answers`], the rule the reports follow too), giving the figures of
/// `decisions` from far fewer rows; `decisions` otherwise. Each section's query names the table
/// it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counts {
    Decisions,
    HourRollup,
}

impl Counts {
    async fn choose(engine: &Engine, p: &Period) -> Result<Self> {
        Ok(
            if engine
                .rollup_answers(Rollup::Hour, Some(p.since), Some(p.until))
                .await?
            {
                Counts::HourRollup
            } else {
                Counts::Decisions
            },
        )
    }

    fn table(self) -> &'static str {
        match self {
            Counts::Decisions => DECISIONS_TABLE,
            Counts::HourRollup => ROLLUP_HOUR_TABLE,
        }
    }

    /// The time column: a call's `ts`, or the rollup row's hour.
    fn ts(self) -> &'static str {
        match self {
            Counts::Decisions => "ts",
            Counts::HourRollup => "bucket",
        }
    }

    /// What one row counts for.
    fn weight(self) -> &'static str {
        match self {
            Counts::Decisions => "1",
            Counts::HourRollup => "calls",
        }
    }

    /// The number of calls of a group.
    fn count(self) -> &'static str {
        match self {
            Counts::Decisions => "count(*)",
            Counts::HourRollup => "sum(calls)",
        }
    }

    /// The first call of a group.
    fn first(self) -> &'static str {
        match self {
            Counts::Decisions => "min(ts)",
            Counts::HourRollup => "min(first_ts)",
        }
    }

    /// The decision as text.
    fn decision(self) -> &'static str {
        match self {
            Counts::Decisions => "CAST(decision AS VARCHAR)",
            Counts::HourRollup => "decision",
        }
    }

    /// The period's rows (the rollup's hours lie inside it exactly when the calls do).
    fn filter(self, p: &Period) -> String {
        p.filter_on(self.ts())
    }
}

fn decision_sums(src: Counts) -> String {
    let w = src.weight();
    DECISIONS
        .iter()
        .map(|(d, _)| format!("sum(CASE WHEN decision = '{d}' THEN {w} ELSE 0 END) AS {d}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn calls_section(engine: &Engine, p: &Period) -> Result<Section> {
    let src = Counts::choose(engine, p).await?;
    let sql = format!(
        "SELECT CAST(day AS VARCHAR) AS day, {} AS calls, {}\nFROM {}\nWHERE {}\n\
         GROUP BY 1\nORDER BY 1",
        src.count(),
        decision_sums(src),
        src.table(),
        src.filter(p)
    );
    let t = run(engine, &sql).await?;
    let days = p.days();
    let idx: BTreeMap<String, usize> = (0..t.rows.len()).map(|i| (t.text(i, "day"), i)).collect();
    let series: Vec<Series> = DECISIONS
        .iter()
        .map(|(d, color)| Series {
            name: (*d).to_string(),
            color: *color,
            values: days
                .iter()
                .map(|day| idx.get(day).map_or(0, |&i| t.int(i, d) as u64))
                .collect(),
        })
        .collect();
    let chart = stacked_bars(&days, &series, 31)?;
    let body = format!(
        "{}{}{}",
        para("Calls per UTC day, stacked by decision."),
        figure(&chart, "Calls per day by decision (UTC days)", &series),
        query_block(&sql, &t)
    );
    Ok(section("calls", "Calls per day by decision", body))
}

async fn denials_section(engine: &Engine, p: &Period) -> Result<Section> {
    let src = Counts::choose(engine, p).await?;
    let (w, n) = (src.weight(), src.count());
    let sql = format!(
        "SELECT COALESCE(identity, '(unknown)') AS identity, COALESCE(tool, '(no tool)') AS tool, \
         sum(CASE WHEN decision = 'deny' THEN {w} ELSE 0 END) AS denials, \
         sum(CASE WHEN decision = 'rate_limited' THEN {w} ELSE 0 END) AS rate_limited, \
         {n} AS total\nFROM {}\nWHERE {} AND decision IN ('deny', 'rate_limited')\n\
         GROUP BY 1, 2\nORDER BY total DESC, identity, tool",
        src.table(),
        src.filter(p)
    );
    let t = run(engine, &sql).await?;
    let mut id_tot: BTreeMap<String, i64> = BTreeMap::new();
    let mut tool_tot: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..t.rows.len() {
        *id_tot.entry(t.text(i, "identity")).or_default() += t.int(i, "total");
        *tool_tot.entry(t.text(i, "tool")).or_default() += t.int(i, "total");
    }
    let top = |m: BTreeMap<String, i64>| -> (Vec<String>, usize) {
        let n = m.len();
        let mut v: Vec<(String, i64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(HEATMAP_MAX);
        let mut names: Vec<String> = v.into_iter().map(|(k, _)| k).collect();
        names.sort();
        (names, n)
    };
    let (ids, n_ids) = top(id_tot);
    let (tools, n_tools) = top(tool_tot);
    let mut values = vec![vec![0u64; tools.len()]; ids.len()];
    for i in 0..t.rows.len() {
        let (Ok(r), Ok(c)) = (
            ids.binary_search(&t.text(i, "identity")),
            tools.binary_search(&t.text(i, "tool")),
        ) else {
            continue;
        };
        values[r][c] = t.int(i, "total") as u64;
    }
    let chart = heatmap(&ids, &tools, &values, (200, 55, 55))?;
    let mut body = para(
        "Denied and rate-limited calls (<code>deny</code> + <code>rate_limited</code>) per \
         identity and tool; the darker the cell, the more calls.",
    );
    if n_ids > ids.len() || n_tools > tools.len() {
        let _ = write!(
            body,
            "<p class=\"note\">The heatmap shows the {} identities and {} tools with the most \
             such calls (of {} and {}); the table lists all.</p>",
            ids.len(),
            tools.len(),
            group_thousands(n_ids),
            group_thousands(n_tools)
        );
    }
    body.push_str(&figure(
        &chart,
        "Denials and rate-limit hits, identity x tool",
        &[],
    ));
    body.push_str(&query_block(&sql, &t));
    Ok(section(
        "denials",
        "Denials and rate-limit hits by identity and tool",
        body,
    ))
}

async fn rules_section(engine: &Engine, p: &Period) -> Result<Section> {
    let src = Counts::choose(engine, p).await?;
    let sql = format!(
        "SELECT rule, {} AS decision, message, {} AS calls\n\
         FROM {}\nWHERE {} AND decision <> 'allow' AND rule IS NOT NULL AND rule <> ''\n\
         GROUP BY 1, 2, 3\nORDER BY calls DESC, rule, decision, message NULLS LAST\nLIMIT 25",
        src.decision(),
        src.count(),
        src.table(),
        src.filter(p)
    );
    let t = run(engine, &sql).await?;
    let body = format!(
        "{}{}",
        para(
            "The 25 rules that decided the most calls other than allows, with the message \
             the gateway returned (one row per rule, decision and message)."
        ),
        query_block(&sql, &t)
    );
    Ok(section("rules", "Top rules and their messages", body))
}

async fn rate_limit_section(engine: &Engine, p: &Period) -> Result<Section> {
    let (grain, fmt, unit) = if p.hourly() {
        ("hour", "%Y-%m-%d %H:00", "UTC hour")
    } else {
        ("day", "%Y-%m-%d", "UTC day")
    };
    let src = Counts::choose(engine, p).await?;
    let sql = format!(
        "SELECT to_char(t, '{fmt}') AS {grain}, rate_limited\n\
         FROM (SELECT date_bin(INTERVAL '1 {grain}', {}) AS t, {} AS rate_limited\n\
         FROM {}\nWHERE {} AND decision = 'rate_limited'\nGROUP BY 1)\nORDER BY 1",
        src.ts(),
        src.count(),
        src.table(),
        src.filter(p)
    );
    let t = run(engine, &sql).await?;
    let buckets = p.buckets();
    let idx: BTreeMap<String, i64> = (0..t.rows.len())
        .map(|i| (t.text(i, grain), t.int(i, "rate_limited")))
        .collect();
    let series = vec![Series {
        name: "rate_limited".into(),
        color: DECISIONS[2].1,
        values: buckets
            .iter()
            .map(|b| idx.get(b).copied().unwrap_or(0) as u64)
            .collect(),
    }];
    let chart = stacked_bars(&buckets, &series, 28)?;
    let body = format!(
        "{}{}{}",
        para(&format!(
            "Calls refused by a rate limit (<code>rate_limited</code>) per {unit} \
             (hours for periods up to 14 days, days beyond). The table lists the {}s with hits.",
            grain
        )),
        figure(&chart, &format!("Rate-limit hits per {unit}"), &[]),
        query_block(&sql, &t)
    );
    Ok(section("rate-limits", "Rate-limit hits over time", body))
}

async fn destructive_section(engine: &Engine, p: &Period) -> Result<Section> {
    let sql = format!(
        "SELECT to_char(ts, '%Y-%m-%d %H:%M:%S%.3f') AS time, identity, session, tool, server, \
         CAST(decision AS VARCHAR) AS decision, rule, event_id\nFROM decisions\n\
         WHERE {} AND tool_risk(tool, server) = 'destructive'\n\
         ORDER BY CASE WHEN decision = 'allow' THEN 0 ELSE 1 END, time, event_id",
        p.filter()
    );
    let t = run(engine, &sql).await?;
    let allowed = (0..t.rows.len())
        .filter(|&i| t.text(i, "decision") == "allow")
        .count();
    let body = format!(
        "{}{}",
        para(&format!(
            "Every call of a tool the catalogue classifies as destructive \
             (<code>tool_risk(tool, server) = 'destructive'</code>: explicit catalogue entries \
             first, then verb heuristics on the name), allowed calls first, then in time order. \
             {} calls, {} of them allowed.",
            group_thousands(t.rows.len()),
            group_thousands(allowed)
        )),
        query_block(&sql, &t)
    );
    Ok(section("destructive", "Calls of destructive tools", body))
}

async fn first_seen_section(engine: &Engine, p: &Period) -> Result<Section> {
    let mut body = para(
        "Identities and tools whose first call in the whole warehouse falls in the period \
         (nothing earlier is recorded for them).",
    );
    let src = Counts::choose(engine, p).await?;
    let (table, ts, first, n) = (src.table(), src.ts(), src.first(), src.count());
    for (col, title) in [("identity", "Identities"), ("tool", "Tools")] {
        let sql = format!(
            "SELECT {col}, to_char({first}, {TS_FMT}) AS first_seen, {n} AS calls\n\
             FROM {table}\nWHERE {col} IS NOT NULL AND {ts} < TIMESTAMP '{}'\nGROUP BY 1\n\
             HAVING {first} >= TIMESTAMP '{}'\nORDER BY first_seen, {col}",
            instant(p.until),
            instant(p.since)
        );
        let t = run(engine, &sql).await?;
        let _ = write!(body, "<h3>{title} seen for the first time</h3>");
        body.push_str(&query_block(&sql, &t));
    }
    Ok(section("first-seen", "New identities and tools", body))
}

async fn unused_section(engine: &Engine, p: &Period) -> Result<Section> {
    let src = Counts::choose(engine, p).await?;
    let sql = format!(
        "SELECT tool, tool_risk(tool) AS risk\nFROM (SELECT DISTINCT tool FROM tools) AS t\n\
         WHERE tool NOT IN (SELECT DISTINCT tool FROM {} WHERE {} AND tool IS NOT NULL)\n\
         ORDER BY tool",
        src.table(),
        src.filter(p)
    );
    let t = run(engine, &sql).await?;
    let body = format!(
        "{}{}",
        para(
            "Tools the catalogue knows (its explicit entries and every tool ever seen in the \
             warehouse: the <code>tools</code> table) that no call in the period used: \
             candidates for removal from grants."
        ),
        query_block(&sql, &t)
    );
    Ok(section("unused", "Tools never used in the period", body))
}

async fn policy_section(engine: &Engine, p: &Period, fid: Option<&Fidelity>) -> Result<Section> {
    let sql = format!(
        "SELECT policy_id, policy_version, count(*) AS calls, \
         to_char(min(ts), {TS_FMT}) AS first_call, to_char(max(ts), {TS_FMT}) AS last_call\n\
         FROM decisions\nWHERE {}\nGROUP BY 1, 2\n\
         ORDER BY first_call, policy_id NULLS LAST, policy_version NULLS LAST",
        p.filter()
    );
    let t = run(engine, &sql).await?;
    let mut body = para(
        "The policies in force as the gateways logged them (<code>policy_id</code>, \
         <code>policy_version</code>; empty where the gateway does not log one).",
    );
    body.push_str(&query_block(&sql, &t));
    body.push_str("<h3>Fidelity of the live policy</h3>");
    match fid {
        None => body.push_str(&para(
            "Pass <code>--policy live.json</code> to measure how many of the period's \
             decisions the live policy reproduces, per policy version.",
        )),
        Some(f) => body.push_str(&fidelity_html(engine, p, f).await?),
    }
    Ok(section("policies", "Policy versions and fidelity", body))
}

async fn fidelity_html(engine: &Engine, p: &Period, f: &Fidelity) -> Result<String> {
    engine
        .context()
        .register_parquet(
            CHANGES_TABLE,
            f.changes.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        )
        .await?;
    let sql = format!(
        "SELECT d.policy_version, count(*) AS comparable, \
         sum(CASE WHEN c.transition = 'indeterminate' THEN 1 ELSE 0 END) AS indeterminate, \
         sum(CASE WHEN c.transition IS NOT NULL AND c.transition <> 'indeterminate' THEN 1 ELSE 0 END) AS changed\n\
         FROM (SELECT * FROM decisions WHERE {} AND tool IS NOT NULL \
         AND (method = 'tools/call' OR method IS NULL) \
         AND decision IN ('allow', 'deny', 'rate_limited', 'approval_required')) AS d\n\
         LEFT JOIN {CHANGES_TABLE} AS c ON d.event_id = c.event_id AND d.ts = c.ts\n\
         GROUP BY 1\nORDER BY 1 NULLS LAST",
        p.filter()
    );
    let t = run(engine, &sql).await?;
    let mut table = Table {
        columns: vec![
            "policy_version".into(),
            "comparable".into(),
            "indeterminate".into(),
            "changed".into(),
            "determinate".into(),
            "reproduced".into(),
            "fidelity".into(),
        ],
        rows: Vec::new(),
    };
    for i in 0..t.rows.len() {
        let (n, ind, ch) = (
            t.int(i, "comparable"),
            t.int(i, "indeterminate"),
            t.int(i, "changed"),
        );
        let det = n - ind;
        let rep = det - ch;
        table.rows.push(vec![
            t.rows[i][0].clone(),
            Cell::Int(n),
            Cell::Int(ind),
            Cell::Int(ch),
            Cell::Int(det),
            Cell::Int(rep),
            Cell::Num(percent(rep, det)),
        ]);
    }
    let overall = f.report.fidelity.as_ref().map_or(String::new(), |o| {
        format!(
            " Over the whole period the live policy reproduces {} of {} determinate decisions ({}).",
            group_thousands(o.reproduced),
            group_thousands(o.determinate),
            percent(o.reproduced as i64, o.determinate as i64)
        )
    });
    Ok(format!(
        "{}{}{}",
        para(&format!(
            "The period replayed against <code>{}</code> (counters start empty at the start \
             of the period). <em>comparable</em>: tool calls whose recorded decision is allow, \
             deny, rate_limited or approval_required; <em>determinate</em>: those the policy can \
             decide from what the log holds; <em>reproduced</em>: determinate calls on which the \
             policy decides as recorded; fidelity = reproduced / determinate.{overall} \
             The query joins the decisions with the replay's changes file \
             (<code>verdict replay --policy {} --since {} --until {} --changes changes.parquet</code>, \
             registered as <code>{CHANGES_TABLE}</code>).",
            esc(&f.policy),
            esc(&f.policy),
            esc(&instant(p.since)),
            esc(&instant(p.until)),
        )),
        table.html("data fidelity"),
        sql_details(&sql)
    ))
}

/// `rep / det` as a percentage with two decimals (`100.00%` when nothing was compared).
fn percent(rep: i64, det: i64) -> String {
    if det == 0 {
        "100.00%".into()
    } else {
        format!("{:.2}%", rep as f64 * 100.0 / det as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str, hour: &str) -> (String, String) {
        (s.to_string(), hour.to_string())
    }

    #[test]
    fn silent_hours_are_usual_hours_without_rows() {
        // opa logs at 09 and 10 on three days, except 10:00 on the second day; 23:00 once.
        let active = vec![
            h("opa", "2026-11-02 09:00"),
            h("opa", "2026-11-02 10:00"),
            h("opa", "2026-11-03 09:00"),
            h("opa", "2026-11-04 09:00"),
            h("opa", "2026-11-04 10:00"),
            h("opa", "2026-11-04 23:00"),
            h("kong", "2026-11-02 12:00"),
        ];
        let s = silent_hours(&active);
        assert_eq!(
            s,
            vec![
                SilentHours {
                    source: "kong".into(),
                    span_days: 1,
                    usual: vec![],
                    silent: vec![],
                },
                SilentHours {
                    source: "opa".into(),
                    span_days: 3,
                    usual: vec![9, 10],
                    silent: vec!["2026-11-03 10:00".into()],
                },
            ]
        );
    }

    #[test]
    fn a_day_with_no_row_counts_all_usual_hours_silent() {
        let active = vec![
            h("opa", "2026-11-02 09:00"),
            h("opa", "2026-11-04 09:00"),
            h("opa", "2026-11-05 09:00"),
        ];
        let s = silent_hours(&active);
        assert_eq!(s[0].usual, vec![9]);
        assert_eq!(s[0].silent, vec!["2026-11-03 09:00".to_string()]);
    }

    #[test]
    fn period_days_and_buckets_cover_the_range() {
        let since = 1_793_577_600_000_000; // 2026-11-02T00:00:00Z
        let p = Period {
            since,
            until: since + 2 * 86_400_000_000,
        };
        assert_eq!(p.days(), vec!["2026-11-02", "2026-11-03"]);
        assert_eq!(p.buckets().len(), 48);
        assert_eq!(p.buckets()[0], "2026-11-02 00:00");
        assert!(p
            .filter()
            .contains("DATE '2026-11-02' AND DATE '2026-11-03'"));
        assert_eq!(percent(1, 3), "33.33%");
    }
}
