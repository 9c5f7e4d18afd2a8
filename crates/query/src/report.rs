//! The fixed reports (`volume`, `denials`, `rate-limits`, `identities`, `tools`, `destructive`):
//! their specification and their DataFrame plans. No user value is spliced into SQL text: filters
//! are DataFusion expressions over literals. Running and printing are the engine's and printer's.
//!
//! Shared rules:
//! - grouping columns come first, always in the canonical order identity, tool, server, session,
//!   decision, rule, day, hour, minute, whatever order the caller gave;
//! - `day` is a Date32, `hour` and `minute` are UTC timestamps truncated to the hour / minute;
//! - rows are ordered by their time buckets first (oldest first) when grouped by time, then by the
//!   report's count (largest first), then by the grouping columns (nulls last), so the order is
//!   total and deterministic; `top` keeps the first N rows of that order;
//! - `since` (inclusive) and `until` (exclusive) filter `ts` and also the `day` partition column,
//!   so whole day partitions outside the range are never read;
//! - `volume`, `denials` and `rate-limits` read a rollup instead of `decisions` when it answers
//!   the question exactly (see [`ReportSource`]): the same plan, with counts summed from
//!   `calls` and first/last times from `first_ts`/`last_ts`.

use arrow::datatypes::DataType;
use arrow::datatypes::TimeUnit;
use datafusion::common::ScalarValue;
use datafusion::dataframe::DataFrame;
use datafusion::functions::core::expr_fn::get_field;
use datafusion::functions_aggregate::expr_fn::{count, count_distinct, first_value, max, min, sum};
use datafusion::functions_aggregate::sum::sum_udaf;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::{
    cast, col, lit, when, Expr, ExprFunctionExt, SortExpr, WindowFunctionDefinition,
};
use datafusion::prelude::coalesce;
use std::fmt;
use std::str::FromStr;
use verdict_schema::{col as c, time, Decision};

use crate::catalog::Risk;
use crate::engine::{Engine, QueryOutput, QueryStream, Rollup, DECISIONS_TABLE};
use crate::error::{Error, Result};
use crate::udaf::{self, weighted_mode};
use verdict_schema::rollup_col as rc;

/// A grouping column of a report. The declaration order is the canonical output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupBy {
    /// The caller (`identity`).
    Identity,
    /// The tool name (`tool`).
    Tool,
    /// The upstream server (`server`).
    Server,
    /// The agent session (`session`).
    Session,
    /// The outcome (`decision`).
    Decision,
    /// The deciding rule (`rule`).
    Rule,
    /// The UTC day of `ts` (`day`, Date32).
    Day,
    /// `ts` truncated to the UTC hour (`hour`).
    Hour,
    /// `ts` truncated to the UTC minute (`minute`).
    Minute,
}

impl GroupBy {
    /// Every grouping column, in canonical order.
    pub const ALL: [GroupBy; 9] = [
        GroupBy::Identity,
        GroupBy::Tool,
        GroupBy::Server,
        GroupBy::Session,
        GroupBy::Decision,
        GroupBy::Rule,
        GroupBy::Day,
        GroupBy::Hour,
        GroupBy::Minute,
    ];

    /// The output column name (also the accepted spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Identity => "identity",
            GroupBy::Tool => "tool",
            GroupBy::Server => "server",
            GroupBy::Session => "session",
            GroupBy::Decision => "decision",
            GroupBy::Rule => "rule",
            GroupBy::Day => "day",
            GroupBy::Hour => "hour",
            GroupBy::Minute => "minute",
        }
    }

    /// Whether the column is a time bucket of `ts`.
    pub fn is_time(self) -> bool {
        matches!(self, GroupBy::Day | GroupBy::Hour | GroupBy::Minute)
    }

    /// The expression computing the column from a row of `source`, aliased to its name.
    fn expr(self, source: ReportSource) -> Expr {
        let ts = || col(source.time_column());
        match (self, source) {
            (GroupBy::Identity, _) => col(c::IDENTITY),
            (GroupBy::Tool, _) => col(c::TOOL),
            (GroupBy::Server, _) => col(c::SERVER),
            (GroupBy::Session, _) => col(c::SESSION),
            (GroupBy::Decision, _) => cast(col(c::DECISION), DataType::Utf8).alias(c::DECISION),
            (GroupBy::Rule, _) => col(c::RULE),
            (GroupBy::Day, _) => cast(ts(), DataType::Date32).alias("day"),
            (GroupBy::Hour, ReportSource::Rollup(Rollup::Hour)) => ts().alias("hour"),
            (GroupBy::Hour, _) => bucket(Rollup::Hour, ts()).alias("hour"),
            (GroupBy::Minute, ReportSource::Rollup(Rollup::Minute)) => ts().alias("minute"),
            (GroupBy::Minute, _) => bucket(Rollup::Minute, ts()).alias("minute"),
        }
    }
}

/// `ts` floored to the start of its UTC minute or hour. `date_bin` with a fixed stride gives the
/// same instants as `date_trunc` (UTC has no offset to apply) at a third of the cost: DataFusion's
/// `date_trunc` converts each value of a zoned timestamp through its time zone.
fn bucket(grain: Rollup, ts: Expr) -> Expr {
    let stride = ScalarValue::new_interval_mdn(0, 0, grain.micros() * 1_000);
    let binned = datafusion::functions::datetime::date_bin().call(vec![lit(stride), ts]);
    // `date_bin` answers in nanoseconds; the column keeps `ts`'s type.
    cast(
        binned,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    )
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        GroupBy::ALL
            .into_iter()
            .find(|g| g.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown group `{s}` (expected identity, tool, server, session, decision, \
                     rule, day, hour or minute)"
                )
            })
    }
}

/// Which report to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// Calls per group with a count per decision.
    Volume,
    /// Denied calls per group with the top rule and message.
    Denials,
    /// Rate-limited calls per group with the counter (rule) and the peak per minute.
    RateLimits,
    /// One row per identity (plus any extra groups).
    Identities,
    /// One row per tool (plus any extra groups) with its risk class.
    Tools,
    /// Every call of a destructive tool; ignores `by`.
    Destructive,
}

impl ReportKind {
    /// Every report.
    pub const ALL: [ReportKind; 6] = [
        ReportKind::Volume,
        ReportKind::Denials,
        ReportKind::RateLimits,
        ReportKind::Identities,
        ReportKind::Tools,
        ReportKind::Destructive,
    ];

    /// The report's name (`volume`, `rate-limits` ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::Volume => "volume",
            ReportKind::Denials => "denials",
            ReportKind::RateLimits => "rate-limits",
            ReportKind::Identities => "identities",
            ReportKind::Tools => "tools",
            ReportKind::Destructive => "destructive",
        }
    }

    /// The grouping used when the caller gives none.
    pub fn default_by(self) -> &'static [GroupBy] {
        match self {
            ReportKind::Volume | ReportKind::Denials | ReportKind::RateLimits => {
                &[GroupBy::Identity, GroupBy::Tool]
            }
            ReportKind::Identities => &[GroupBy::Identity],
            ReportKind::Tools => &[GroupBy::Tool],
            ReportKind::Destructive => &[],
        }
    }

    /// The group column every row of the report always has (`identity` for identities, `tool`
    /// for tools).
    fn required_group(self) -> Option<GroupBy> {
        match self {
            ReportKind::Identities => Some(GroupBy::Identity),
            ReportKind::Tools => Some(GroupBy::Tool),
            _ => None,
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReportKind {
    type Err = String;

    /// Accepts the names of [`ReportKind::as_str`] (`rate_limits` too).
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        ReportKind::ALL
            .into_iter()
            .find(|k| k.as_str() == norm)
            .ok_or_else(|| {
                format!(
                    "unknown report `{s}` (expected volume, denials, rate-limits, identities, \
                     tools or destructive)"
                )
            })
    }
}

/// Where a report reads its rows from.
///
/// `volume`, `denials` and `rate-limits` are answered from a rollup (the committed rows
/// aggregated per UTC minute or hour x identity x tool x server x decision x rule x message)
/// when that gives exactly the answer of the `decisions` table: the rollup covers every
/// decisions part (see [`Engine`]), no session is filtered or grouped on, `since` and `until`
/// fall on bucket boundaries, and the hour rollup only when neither `minute` is grouped on nor
/// the report is `rate-limits` (its peak is per minute). The hour rollup is preferred, being the
/// smaller. Every other question reads `decisions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportSource {
    /// The `decisions` table, one row per call.
    Decisions,
    /// A rollup table.
    Rollup(Rollup),
}

impl ReportSource {
    /// The table read.
    pub fn table(self) -> &'static str {
        match self {
            ReportSource::Decisions => DECISIONS_TABLE,
            ReportSource::Rollup(r) => r.table(),
        }
    }

    fn time_column(self) -> &'static str {
        match self {
            ReportSource::Decisions => c::TS,
            ReportSource::Rollup(_) => rc::BUCKET,
        }
    }

    fn is_rollup(self) -> bool {
        matches!(self, ReportSource::Rollup(_))
    }

    /// The number of calls of a group.
    fn count(self) -> Expr {
        match self {
            ReportSource::Decisions => count(lit(1i64)),
            ReportSource::Rollup(_) => sum(col(rc::CALLS)),
        }
    }

    /// The number of calls of a group that match `pred`.
    fn count_if(self, pred: Expr) -> Result<Expr> {
        let one = match self {
            ReportSource::Decisions => lit(1i64),
            ReportSource::Rollup(_) => col(rc::CALLS),
        };
        Ok(sum(when(pred, one).otherwise(lit(0i64))?))
    }

    /// The weight of a row in call counts: 1 per decision, `calls` per rollup row.
    fn weight(self) -> Expr {
        match self {
            ReportSource::Decisions => lit(1i64),
            ReportSource::Rollup(_) => col(rc::CALLS),
        }
    }

    /// The first `ts` of a group.
    fn first(self) -> Expr {
        match self {
            ReportSource::Decisions => min(col(c::TS)),
            ReportSource::Rollup(_) => min(col(rc::FIRST_TS)),
        }
    }

    /// The last `ts` of a group.
    fn last(self) -> Expr {
        match self {
            ReportSource::Decisions => max(col(c::TS)),
            ReportSource::Rollup(_) => max(col(rc::LAST_TS)),
        }
    }
}

/// The source that answers `spec` exactly with the fewest rows (see [`ReportSource`]).
async fn choose_source(engine: &Engine, spec: &ReportSpec) -> Result<ReportSource> {
    let by = spec.effective_by();
    if spec.raw
        || !matches!(
            spec.kind,
            ReportKind::Volume | ReportKind::Denials | ReportKind::RateLimits
        )
        || !spec.sessions.is_empty()
        || by.contains(&GroupBy::Session)
    {
        return Ok(ReportSource::Decisions);
    }
    for r in [Rollup::Hour, Rollup::Minute] {
        if r == Rollup::Hour
            && (by.contains(&GroupBy::Minute) || spec.kind == ReportKind::RateLimits)
        {
            continue;
        }
        if engine.rollup_answers(r, spec.since, spec.until).await? {
            return Ok(ReportSource::Rollup(r));
        }
    }
    Ok(ReportSource::Decisions)
}

/// What to report on: the kind, the grouping, and the filters.
///
/// Filters: each list matches any of its values (OR); different filters all apply (AND); an
/// empty list does not filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    /// The report.
    pub kind: ReportKind,
    /// Grouping columns in any order (output is canonical); empty means the report's default.
    pub by: Vec<GroupBy>,
    /// Only calls at or after this instant (UTC microseconds).
    pub since: Option<i64>,
    /// Only calls before this instant (UTC microseconds, exclusive).
    pub until: Option<i64>,
    /// Only these identities.
    pub identities: Vec<String>,
    /// Only these tools.
    pub tools: Vec<String>,
    /// Only these servers.
    pub servers: Vec<String>,
    /// Only these sessions.
    pub sessions: Vec<String>,
    /// Only these decisions.
    pub decisions: Vec<Decision>,
    /// Keep only the first N rows of the report's order.
    pub top: Option<usize>,
    /// Read the `decisions` table even when a rollup could answer (same result, more rows
    /// read; for checking the rollup).
    pub raw: bool,
}

impl ReportSpec {
    /// A spec of `kind` with the default grouping and no filter.
    pub fn new(kind: ReportKind) -> Self {
        Self {
            kind,
            by: Vec::new(),
            since: None,
            until: None,
            identities: Vec::new(),
            tools: Vec::new(),
            servers: Vec::new(),
            sessions: Vec::new(),
            decisions: Vec::new(),
            top: None,
            raw: false,
        }
    }

    /// The grouping columns the report will output, in canonical order: the given ones (or the
    /// default), plus the report's own key (`identity` / `tool`), deduplicated and sorted.
    pub fn effective_by(&self) -> Vec<GroupBy> {
        if self.kind == ReportKind::Destructive {
            return Vec::new();
        }
        let mut by: Vec<GroupBy> = if self.by.is_empty() {
            self.kind.default_by().to_vec()
        } else {
            self.by.clone()
        };
        by.extend(self.kind.required_group());
        by.sort();
        by.dedup();
        by
    }

    fn validate(&self) -> Result<()> {
        if let (Some(s), Some(u)) = (self.since, self.until) {
            if u <= s {
                return Err(Error::InvalidSpec {
                    what: "time range",
                    message: format!(
                        "`until` ({}) is not after `since` ({})",
                        time::format_micros(u),
                        time::format_micros(s)
                    ),
                });
            }
        }
        if self.top == Some(0) {
            return Err(Error::InvalidSpec {
                what: "top",
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}

pub(crate) fn ts_lit(micros: i64) -> Expr {
    lit(ScalarValue::TimestampMicrosecond(
        Some(micros),
        Some("UTC".into()),
    ))
}

fn day_lit(micros: i64) -> Expr {
    lit(ScalarValue::Date32(Some(time::day_number(micros))))
}

/// `ts >= since AND day >= day(since)`, `ts < until AND day <= day(until - 1µs)`.
pub(crate) fn time_filters(since: Option<i64>, until_exclusive: Option<i64>) -> Vec<Expr> {
    time_filters_on(c::TS, since, until_exclusive)
}

/// [`time_filters`] on another timestamp column (a rollup's `bucket`: exact when `since` and
/// `until` fall on bucket boundaries).
fn time_filters_on(ts: &str, since: Option<i64>, until_exclusive: Option<i64>) -> Vec<Expr> {
    let mut out = Vec::new();
    if let Some(s) = since {
        out.push(col(ts).gt_eq(ts_lit(s)));
        out.push(col(c::DAY).gt_eq(day_lit(s)));
    }
    if let Some(u) = until_exclusive {
        out.push(col(ts).lt(ts_lit(u)));
        out.push(col(c::DAY).lt_eq(day_lit(u.saturating_sub(1))));
    }
    out
}

pub(crate) fn in_list(column: &str, values: &[String]) -> Option<Expr> {
    match values {
        [] => None,
        [one] => Some(col(column).eq(lit(one.as_str()))),
        many => Some(col(column).in_list(many.iter().map(|v| lit(v.as_str())).collect(), false)),
    }
}

pub(crate) fn and_all(preds: Vec<Expr>) -> Option<Expr> {
    preds.into_iter().reduce(Expr::and)
}

fn count_if(pred: Expr) -> Result<Expr> {
    Ok(sum(when(pred, lit(1i64)).otherwise(lit(0i64))?))
}

fn window_sum(e: Expr, partition_by: Vec<Expr>) -> Result<Expr> {
    Ok(Expr::from(WindowFunction::new(
        WindowFunctionDefinition::AggregateUDF(sum_udaf()),
        vec![e],
    ))
    .partition_by(partition_by)
    .build()?)
}

fn asc(e: Expr) -> SortExpr {
    e.sort(true, false)
}

fn desc(e: Expr) -> SortExpr {
    e.sort(false, false)
}

fn cols(names: &[&str]) -> Vec<Expr> {
    names.iter().map(|n| col(*n)).collect()
}

/// Counts per decision, in the table's order of [`Decision::ALL`].
fn decision_counts(source: ReportSource) -> Result<Vec<Expr>> {
    Decision::ALL
        .into_iter()
        .map(|d| {
            Ok(source
                .count_if(col(c::DECISION).eq(lit(d.as_str())))?
                .alias(d.as_str()))
        })
        .collect()
}

const CALLS: &str = "calls";

/// Builds a report's DataFrame (unexecuted), so that it can be run or explained.
pub(crate) async fn report_frame(engine: &Engine, spec: &ReportSpec) -> Result<DataFrame> {
    spec.validate()?;
    let by = spec.effective_by();
    let group_names: Vec<&str> = by.iter().map(|g| g.as_str()).collect();
    let source = choose_source(engine, spec).await?;

    let mut preds = time_filters_on(source.time_column(), spec.since, spec.until);
    preds.extend(in_list(c::IDENTITY, &spec.identities));
    preds.extend(in_list(c::TOOL, &spec.tools));
    preds.extend(in_list(c::SERVER, &spec.servers));
    preds.extend(in_list(c::SESSION, &spec.sessions));
    if !spec.decisions.is_empty() {
        let names: Vec<String> = spec.decisions.iter().map(|d| d.to_string()).collect();
        preds.extend(in_list(c::DECISION, &names));
    }
    let risk_expr = || {
        engine
            .tool_risk_udf()
            .call(vec![col(c::TOOL), col(c::SERVER)])
    };
    match spec.kind {
        ReportKind::Denials => preds.push(col(c::DECISION).eq(lit(Decision::Deny.as_str()))),
        ReportKind::RateLimits => {
            preds.push(col(c::DECISION).eq(lit(Decision::RateLimited.as_str())))
        }
        ReportKind::Tools => preds.push(col(c::TOOL).is_not_null()),
        ReportKind::Destructive => preds.push(risk_expr().eq(lit(Risk::Destructive.as_str()))),
        ReportKind::Volume | ReportKind::Identities => {}
    }
    let mut df = engine.table(source.table()).await?;
    if let Some(p) = and_all(preds) {
        df = df.filter(p)?;
    }

    // The base projection: grouping columns plus the raw columns the report reads.
    let rollup_needs: &[&str] = match spec.kind {
        ReportKind::Volume => &[c::DECISION, rc::CALLS],
        ReportKind::Denials => &[rc::FIRST_TS, rc::LAST_TS, rc::CALLS, c::RULE, c::MESSAGE],
        _ => &[rc::FIRST_TS, rc::LAST_TS, rc::CALLS, c::RULE],
    };
    let needs: &[&str] = match spec.kind {
        _ if source.is_rollup() => rollup_needs,
        ReportKind::Volume => &[c::DECISION],
        ReportKind::Denials => &[c::TS, c::RULE, c::MESSAGE],
        ReportKind::RateLimits => &[c::TS, c::RULE],
        ReportKind::Identities => &[c::TS, c::DECISION, c::TOOL, c::SESSION, c::SERVER],
        ReportKind::Tools => &[c::TS, c::DECISION, c::IDENTITY, c::SESSION],
        ReportKind::Destructive => &[
            c::EVENT_ID,
            c::TS,
            c::IDENTITY,
            c::SESSION,
            c::SERVER,
            c::TOOL,
            c::DECISION,
            c::RULE,
            c::MESSAGE,
        ],
    };
    let mut select: Vec<Expr> = by.iter().map(|g| g.expr(source)).collect();
    for &n in needs {
        if !group_names.contains(&n) {
            // Counting reports compare the dictionary-encoded decision in place (per dictionary
            // value, not per row); only a report that prints it casts it to text.
            select.push(
                if n == c::DECISION && spec.kind == ReportKind::Destructive {
                    cast(col(c::DECISION), DataType::Utf8).alias(c::DECISION)
                } else {
                    col(n)
                },
            );
        }
    }
    match spec.kind {
        ReportKind::Identities => select.push(risk_expr().alias("risk")),
        ReportKind::RateLimits => select.push(match source {
            ReportSource::Rollup(Rollup::Minute) => col(rc::BUCKET).alias("_minute"),
            _ => bucket(Rollup::Minute, col(source.time_column())).alias("_minute"),
        }),
        _ => {}
    }
    let base = df.select(select)?;
    let groups = cols(&group_names);

    let (df, metric) = match spec.kind {
        ReportKind::Volume => {
            let mut aggs = vec![source.count().alias(CALLS)];
            aggs.extend(decision_counts(source)?);
            (base.aggregate(groups.clone(), aggs)?, CALLS)
        }
        ReportKind::Denials => (denials(base, source, &by, &group_names)?, "denied"),
        ReportKind::RateLimits => (
            rate_limits(base, source, &by, &group_names)?,
            "rate_limited",
        ),
        ReportKind::Identities => {
            let mut aggs = vec![count(lit(1i64)).alias(CALLS)];
            aggs.extend(decision_counts(source)?);
            let destructive = col("risk").eq(lit(Risk::Destructive.as_str()));
            aggs.extend([
                count_distinct(col(c::TOOL)).alias("tools"),
                count_distinct(col(c::SESSION)).alias("sessions"),
                count_if(destructive.clone())?.alias("destructive"),
                count_if(destructive.and(col(c::DECISION).eq(lit(Decision::Allow.as_str()))))?
                    .alias("destructive_allowed"),
                min(col(c::TS)).alias("first_seen"),
                max(col(c::TS)).alias("last_seen"),
            ]);
            (base.aggregate(groups.clone(), aggs)?, CALLS)
        }
        ReportKind::Tools => {
            let mut aggs = vec![count(lit(1i64)).alias(CALLS)];
            aggs.extend(decision_counts(source)?);
            aggs.extend([
                count_distinct(col(c::IDENTITY)).alias("identities"),
                count_distinct(col(c::SESSION)).alias("sessions"),
                min(col(c::TS)).alias("first_seen"),
                max(col(c::TS)).alias("last_seen"),
            ]);
            let agg = base.aggregate(groups.clone(), aggs)?;
            // The risk class is a property of the group's tool (and server when grouped by it).
            let mut args = vec![col(c::TOOL)];
            if by.contains(&GroupBy::Server) {
                args.push(col(c::SERVER));
            }
            let mut out = groups.clone();
            out.push(engine.tool_risk_udf().call(args.clone()).alias("risk"));
            out.push(
                engine
                    .tool_risk_source_udf()
                    .call(args)
                    .alias("risk_source"),
            );
            out.extend(cols(&[CALLS]));
            out.extend(Decision::ALL.iter().map(|d| col(d.as_str())));
            out.extend(cols(&["identities", "sessions", "first_seen", "last_seen"]));
            (agg.select(out)?, CALLS)
        }
        ReportKind::Destructive => {
            let allowed = col(c::DECISION).eq(lit(Decision::Allow.as_str()));
            let mut df = base.sort(vec![desc(allowed), asc(col(c::TS)), asc(col(c::EVENT_ID))])?;
            if let Some(n) = spec.top {
                df = df.limit(0, Some(n))?;
            }
            let df = df.select(cols(&[
                c::TS,
                c::IDENTITY,
                c::SESSION,
                c::SERVER,
                c::TOOL,
                c::DECISION,
                c::RULE,
                c::MESSAGE,
            ]))?;
            return Ok(df);
        }
    };

    let mut order: Vec<SortExpr> = by
        .iter()
        .filter(|g| g.is_time())
        .map(|g| asc(col(g.as_str())))
        .collect();
    order.push(desc(col(metric)));
    order.extend(
        by.iter()
            .filter(|g| !g.is_time())
            .map(|g| asc(col(g.as_str()))),
    );
    let mut df = df.sort(order)?;
    if let Some(n) = spec.top {
        df = df.limit(0, Some(n))?;
    }
    Ok(df)
}

/// Denied calls per group: `denied`, and unless grouped by rule `rules` (distinct),
/// `top_rule` and `top_rule_calls`; then `top_message` (the most frequent message of the top
/// rule), `first_seen`, `last_seen`. Ties pick the smallest rule / message.
fn denials(
    base: DataFrame,
    source: ReportSource,
    by: &[GroupBy],
    groups: &[&str],
) -> Result<DataFrame> {
    let by_rule = by.contains(&GroupBy::Rule);
    let mut keys = cols(groups);
    if !by_rule {
        keys.push(col(c::RULE));
    }
    let mut keys_msg = keys.clone();
    keys_msg.push(col(c::MESSAGE));
    let per_message = base.aggregate(
        keys_msg,
        vec![
            source.count().alias("n"),
            source.first().alias("f"),
            source.last().alias("l"),
        ],
    )?;
    let with_rule_calls =
        per_message.window(vec![window_sum(col("n"), keys)?.alias("rule_calls")])?;
    let order = || {
        vec![
            desc(col("rule_calls")),
            asc(col(c::RULE)),
            desc(col("n")),
            asc(col(c::MESSAGE)),
        ]
    };
    let mut aggs = vec![sum(col("n")).alias("denied")];
    if !by_rule {
        aggs.extend([
            count_distinct(col(c::RULE)).alias("rules"),
            first_value(col(c::RULE), order()).alias("top_rule"),
            first_value(col("rule_calls"), order()).alias("top_rule_calls"),
        ]);
    }
    aggs.extend([
        first_value(col(c::MESSAGE), order()).alias("top_message"),
        min(col("f")).alias("first_seen"),
        max(col("l")).alias("last_seen"),
    ]);
    Ok(with_rule_calls.aggregate(cols(groups), aggs)?)
}

/// Rate-limited calls per group: `rate_limited`, unless grouped by rule `counter` (the most
/// frequent rule, i.e. the limit's counter) and `counter_calls`; `peak_per_minute` (the most
/// hits in one UTC minute within the group) and `peak_minute` (the first such minute),
/// `first_seen`, `last_seen`.
fn rate_limits(
    base: DataFrame,
    source: ReportSource,
    by: &[GroupBy],
    groups: &[&str],
) -> Result<DataFrame> {
    let by_rule = by.contains(&GroupBy::Rule);
    if by.contains(&GroupBy::Minute) && by_rule {
        // Each group is one rule in one minute: a single aggregation answers everything.
        return Ok(base.aggregate(
            cols(groups),
            vec![
                source.count().alias("rate_limited"),
                source.count().alias("peak_per_minute"),
                max(col(GroupBy::Minute.as_str())).alias("peak_minute"),
                source.first().alias("first_seen"),
                source.last().alias("last_seen"),
            ],
        )?);
    }
    if by.contains(&GroupBy::Minute) {
        // Each group lies within one minute: its peak is its total, its peak minute its
        // minute, and the counter is the rule with the most calls: one aggregation.
        let agg = base.aggregate(
            cols(groups),
            vec![
                source.count().alias("rate_limited"),
                weighted_mode(col(c::RULE), source.weight()).alias("_counter"),
                source.first().alias("first_seen"),
                source.last().alias("last_seen"),
            ],
        )?;
        let mut out = cols(groups);
        out.extend([
            col("rate_limited"),
            get_field(col("_counter"), udaf::VALUE).alias("counter"),
            get_field(col("_counter"), udaf::WEIGHT).alias("counter_calls"),
            col("rate_limited").alias("peak_per_minute"),
            col(GroupBy::Minute.as_str()).alias("peak_minute"),
            col("first_seen"),
            col("last_seen"),
        ]);
        return Ok(agg.select(out)?);
    }
    let mut rule_keys = cols(groups);
    if !by_rule {
        rule_keys.push(col(c::RULE));
    }
    let mut minute_keys = cols(groups);
    minute_keys.push(col("_minute"));
    let mut keys = rule_keys.clone();
    keys.push(col("_minute"));
    let per_minute = base.aggregate(
        keys,
        vec![
            source.count().alias("n"),
            source.first().alias("f"),
            source.last().alias("l"),
        ],
    )?;
    let windowed = per_minute.window(vec![
        window_sum(col("n"), minute_keys)?.alias("minute_calls")
    ])?;
    let mut aggs = vec![sum(col("n")).alias("rate_limited")];
    if !by_rule {
        aggs.push(weighted_mode(col(c::RULE), col("n")).alias("_counter"));
    }
    aggs.extend([
        max(col("minute_calls")).alias("peak_per_minute"),
        first_value(
            col("_minute"),
            vec![desc(col("minute_calls")), asc(col("_minute"))],
        )
        .alias("peak_minute"),
        min(col("f")).alias("first_seen"),
        max(col("l")).alias("last_seen"),
    ]);
    let agg = windowed.aggregate(cols(groups), aggs)?;
    if by_rule {
        return Ok(agg);
    }
    let mut out = cols(groups);
    out.extend([
        col("rate_limited"),
        get_field(col("_counter"), udaf::VALUE).alias("counter"),
        get_field(col("_counter"), udaf::WEIGHT).alias("counter_calls"),
    ]);
    out.extend(cols(&[
        "peak_per_minute",
        "peak_minute",
        "first_seen",
        "last_seen",
    ]));
    Ok(agg.select(out)?)
}

impl Engine {
    /// Where [`Engine::report`] reads `spec`'s rows from (see [`ReportSource`]).
    ///
    /// # Errors
    /// When a table read on first use cannot be read.
    pub async fn report_source(&self, spec: &ReportSpec) -> Result<ReportSource> {
        choose_source(self, spec).await
    }

    /// Runs a report.
    ///
    /// Columns, after the grouping columns (see the module docs):
    /// - `volume`: `calls, allow, deny, rate_limited, approval_required, error, unknown`;
    /// - `denials`: `denied, rules, top_rule, top_rule_calls, top_message, first_seen, last_seen`
    ///   (without `rules, top_rule, top_rule_calls` when grouped by `rule`);
    /// - `rate-limits`: `rate_limited, counter, counter_calls, peak_per_minute, peak_minute,
    ///   first_seen, last_seen` (without `counter, counter_calls` when grouped by `rule`);
    /// - `identities`: `calls`, the six decision counts, `tools, sessions, destructive,
    ///   destructive_allowed, first_seen, last_seen`;
    /// - `tools`: `risk, risk_source, calls`, the six decision counts, `identities, sessions,
    ///   first_seen, last_seen`;
    /// - `destructive` (no grouping): `ts, identity, session, server, tool, decision, rule,
    ///   message`, allowed calls first, then by time.
    ///
    /// Counts are Int64, `first_seen`/`last_seen`/`peak_minute` UTC timestamps (µs).
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] for an empty time range or `top = 0`; [`Error::DataFusion`] if
    /// the query fails (for example on an unreadable Parquet file).
    pub async fn report(&self, spec: &ReportSpec) -> Result<QueryOutput> {
        let df = report_frame(self, spec).await?;
        self.collect(df).await
    }

    /// [`Engine::report`] as a stream of batches, produced as the query runs.
    ///
    /// # Errors
    /// As [`Engine::report`], for what is known before the first batch.
    pub async fn report_stream(&self, spec: &ReportSpec) -> Result<QueryStream> {
        let df = report_frame(self, spec).await?;
        self.stream(df).await
    }

    /// The physical plan of a report, as DataFusion's indented text (files read included).
    ///
    /// # Errors
    /// As [`Engine::report`].
    pub async fn explain_report(&self, spec: &ReportSpec) -> Result<String> {
        let df = report_frame(self, spec).await?;
        let plan = df.create_physical_plan().await?;
        let text = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        Ok(text)
    }
}

/// `coalesce(expr, false)`, for marker columns.
pub(crate) fn or_false(e: Expr) -> Expr {
    coalesce(vec![e, lit(false)])
}

#[cfg(test)]
mod rollup_tests;
#[cfg(test)]
mod tests;
