//! Limit tuning: one limit of a policy replayed at several values in a single pass over history,
//! each value with its own evaluator and counters, so every figure equals that of a separate
//! `replay` with the value written into the policy.

use std::fmt;
use std::str::FromStr;

use rustc_hash::FxHashSet;
use serde::Serialize;
use verdict_policy::{Evaluator, Outcome, Policy};
use verdict_schema::time::format_micros;

use verdict_table::Location;

use crate::calls;
use crate::error::{Error, Result};
use crate::report::{Outcomes, Transitions, TRANSITIONS};
use crate::transition::Transition;

/// The range to replay.
#[derive(Debug, Clone, Default)]
pub struct TuneOptions {
    /// The warehouse.
    pub warehouse: Location,
    /// Start (inclusive), UTC µs; counters start empty there.
    pub since: Option<i64>,
    /// End (exclusive), UTC µs.
    pub until: Option<i64>,
}

/// What a value must achieve: `rate_limited<0.1%`, `allow->rate_limited<=10` ...
#[derive(Debug, Clone, PartialEq)]
pub struct TuneTarget {
    /// `rate_limited` (calls the candidate rate-limits, any limit), `limited` (calls this limit
    /// rate-limits) or `allow->rate_limited` (recorded allows now rate-limited).
    pub metric: TuneMetric,
    /// `<` or `<=`.
    pub inclusive: bool,
    /// The bound: a count, or a percentage of the replayed calls.
    pub bound: f64,
    /// Whether `bound` is a percentage.
    pub percent: bool,
    text: String,
}

/// A figure a [`TuneTarget`] bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TuneMetric {
    /// Calls rate-limited by any limit.
    RateLimited,
    /// Calls rate-limited by the tuned limit.
    Limited,
    /// Recorded allows now rate-limited.
    AllowRateLimited,
}

impl FromStr for TuneTarget {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |m: &str| Error::Invalid {
            option: "--target",
            message: format!("`{s}`: {m} (e.g. rate_limited<0.1%, allow->rate_limited<=10)"),
        };
        let t = s.trim();
        let (lhs, inclusive, rhs) = match t.split_once("<=") {
            Some((l, r)) => (l, true, r),
            None => match t.split_once('<') {
                Some((l, r)) => (l, false, r),
                None => return Err(bad("expected METRIC<VALUE or METRIC<=VALUE")),
            },
        };
        let metric = match lhs.trim() {
            "rate_limited" => TuneMetric::RateLimited,
            "limited" => TuneMetric::Limited,
            "allow->rate_limited" => TuneMetric::AllowRateLimited,
            _ => {
                return Err(bad(
                    "the metric is rate_limited, limited or allow->rate_limited",
                ))
            }
        };
        let rhs = rhs.trim();
        let (num, percent) = match rhs.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (rhs, false),
        };
        let bound: f64 = num.parse().map_err(|_| bad("the bound is not a number"))?;
        if !bound.is_finite() || bound < 0.0 {
            return Err(bad("the bound must be 0 or more"));
        }
        Ok(Self {
            metric,
            inclusive,
            bound,
            percent,
            text: t.to_string(),
        })
    }
}

impl fmt::Display for TuneTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TuneTarget {
    fn met(&self, row: &TuneRow) -> bool {
        let n = match self.metric {
            TuneMetric::RateLimited => row.rate_limited,
            TuneMetric::Limited => row.limited,
            TuneMetric::AllowRateLimited => row.allow_to_rate_limited,
        } as f64;
        let v = if self.percent {
            if row.tool_calls == 0 {
                0.0
            } else {
                n * 100.0 / row.tool_calls as f64
            }
        } else {
            n
        };
        if self.inclusive {
            v <= self.bound
        } else {
            v < self.bound
        }
    }
}

/// The figures of one candidate value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuneRow {
    /// The value (`25`, `hour`).
    pub value: String,
    /// Calls replayed.
    pub tool_calls: u64,
    /// Calls rate-limited by any limit.
    pub rate_limited: u64,
    /// Calls rate-limited by the tuned limit.
    pub limited: u64,
    /// Identities with a call the tuned limit rate-limits.
    pub identities: u64,
    /// Tools with a call the tuned limit rate-limits.
    pub tools: u64,
    /// The UTC minute with the most calls the tuned limit rate-limits, and how many.
    pub worst_minute: Option<(String, u64)>,
    /// Recorded allows now rate-limited (any limit).
    pub allow_to_rate_limited: u64,
    /// Calls per candidate outcome.
    pub outcomes: Outcomes,
    /// Every transition against the record, as `replay` counts them.
    pub transitions: Transitions,
    /// Whether the value meets `--target`.
    pub meets_target: Option<bool>,
}

/// The result of a tuning run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TuneReport {
    /// The rule pointer of the tuned limit.
    pub rule: String,
    /// `max` or `window`.
    pub field: &'static str,
    /// Its value in the policy.
    pub current: String,
    /// The range replayed.
    pub first_event: Option<String>,
    /// The last call replayed.
    pub last_event: Option<String>,
    /// One row per candidate value, in the order given.
    pub rows: Vec<TuneRow>,
    /// The target, when given.
    pub target: Option<String>,
    /// The first value (in the order given: smallest first for a range) that meets the target.
    pub chosen: Option<String>,
}

/// Per-value running state.
struct Lane<'p> {
    evaluator: Evaluator<'p>,
    row: TuneRow,
    transitions: [u64; TRANSITIONS.len()],
    identities: FxHashSet<Box<str>>,
    tools: FxHashSet<Box<str>>,
    minute: i64,
    in_minute: u64,
    worst: Option<(i64, u64)>,
}

/// Replays each `(value, policy)` over the range and compares with the record. The values are split
/// over the available cores, each group reading history once with one evaluator per value, so the
/// figures are those of one `replay` per value. `rule` is the tuned limit's rule pointer; `field`
/// and `current` label the report.
///
/// # Errors
/// When the warehouse cannot be read.
pub fn tune(
    opts: &TuneOptions,
    values: &[(String, Policy)],
    rule: &str,
    field: &'static str,
    current: String,
    target: Option<&TuneTarget>,
) -> Result<TuneReport> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let per = values
        .len()
        .div_ceil(cores.clamp(1, values.len().max(1)))
        .max(1);
    let groups: Vec<Result<Pass>> = std::thread::scope(|s| {
        let handles: Vec<_> = values
            .chunks(per)
            .map(|chunk| s.spawn(move || run_lanes(opts, chunk, rule, target)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut rows = Vec::with_capacity(values.len());
    let (mut first, mut last) = (None, None);
    for g in groups {
        let g = g?;
        rows.extend(g.rows);
        (first, last) = (g.first, g.last);
    }
    let chosen = rows
        .iter()
        .find(|r| r.meets_target == Some(true))
        .map(|r| r.value.clone());
    Ok(TuneReport {
        rule: rule.to_string(),
        field,
        current,
        first_event: first.map(format_micros),
        last_event: last.map(format_micros),
        rows,
        target: target.map(ToString::to_string),
        chosen,
    })
}

/// What one read of history found for a group of values.
struct Pass {
    rows: Vec<TuneRow>,
    first: Option<i64>,
    last: Option<i64>,
}

/// One read of history, one evaluator per value of `values`.
fn run_lanes(
    opts: &TuneOptions,
    values: &[(String, Policy)],
    rule: &str,
    target: Option<&TuneTarget>,
) -> Result<Pass> {
    let mut lanes: Vec<Lane<'_>> = values
        .iter()
        .map(|(value, policy)| Lane::new(value, policy))
        .collect();
    let alike = values
        .split_first()
        .is_some_and(|((_, lead), rest)| rest.iter().all(|(_, p)| lead.alike_but_limits(p)));
    let (mut first, mut last) = (None, None);
    calls::for_each_row(
        &calls::snapshot(&opts.warehouse, None)?,
        opts.since,
        opts.until,
        |row| {
            let Some(call) = &row.call else {
                return Ok(());
            };
            first.get_or_insert(call.ts_micros);
            last = Some(call.ts_micros);
            let rec = row.recorded().decision.as_outcome();
            // The lanes' policies differ only in the tuned limit, so the steps before the limits
            // (hidden, require, deny_if: the argument checks) run once per call, not once per value.
            let screen = match (alike, lanes.first_mut()) {
                (true, Some(lead)) => Some(lead.evaluator.screen(call)),
                _ => None,
            };
            for lane in &mut lanes {
                let v = match &screen {
                    Some(screen) => lane.evaluator.finish(call, screen),
                    None => lane.evaluator.evaluate(call),
                };
                lane.row.outcomes.add(v.outcome);
                lane.transitions[Transition::between(rec, v.outcome).index()] += 1;
                if v.outcome == Outcome::RateLimited && v.rule == rule {
                    lane.limited(
                        call.ts_micros,
                        call.identity.or(call.identity_id),
                        call.tool,
                    );
                }
            }
            Ok(())
        },
    )?;
    let rows = lanes.into_iter().map(|l| l.finish(target)).collect();
    Ok(Pass { rows, first, last })
}

impl<'p> Lane<'p> {
    fn new(value: &str, policy: &'p Policy) -> Self {
        Self {
            evaluator: Evaluator::new(policy),
            row: TuneRow {
                value: value.to_string(),
                tool_calls: 0,
                rate_limited: 0,
                limited: 0,
                identities: 0,
                tools: 0,
                worst_minute: None,
                allow_to_rate_limited: 0,
                outcomes: Outcomes::default(),
                transitions: Transitions::default(),
                meets_target: None,
            },
            transitions: [0; TRANSITIONS.len()],
            identities: FxHashSet::default(),
            tools: FxHashSet::default(),
            minute: i64::MIN,
            in_minute: 0,
            worst: None,
        }
    }

    fn finish(self, target: Option<&TuneTarget>) -> TuneRow {
        let mut row = self.row;
        row.tool_calls = self.transitions.iter().sum();
        row.rate_limited = row.outcomes.rate_limited;
        row.identities = self.identities.len() as u64;
        row.tools = self.tools.len() as u64;
        row.worst_minute = self
            .worst
            .map(|(m, n)| (format_micros(m.saturating_mul(60_000_000)), n));
        row.allow_to_rate_limited = self.transitions[Transition::AllowRateLimited.index()];
        row.transitions = Transitions(TRANSITIONS.iter().copied().zip(self.transitions).collect());
        row.meets_target = target.map(|t| t.met(&row));
        row
    }

    /// A call the tuned limit rate-limited.
    fn limited(&mut self, ts: i64, who: Option<&str>, tool: &str) {
        self.row.limited += 1;
        if let Some(w) = who {
            if !self.identities.contains(w) {
                self.identities.insert(Box::from(w));
            }
        }
        if !self.tools.contains(tool) {
            self.tools.insert(Box::from(tool));
        }
        let m = ts.div_euclid(60_000_000);
        if m != self.minute {
            self.minute = m;
            self.in_minute = 0;
        }
        self.in_minute += 1;
        if self.worst.is_none_or(|(_, n)| self.in_minute > n) {
            self.worst = Some((m, self.in_minute));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_name_their_errors() {
        let t: TuneTarget = "rate_limited<0.1%".parse().unwrap();
        assert_eq!(
            (t.metric, t.inclusive, t.bound, t.percent),
            (TuneMetric::RateLimited, false, 0.1, true)
        );
        let t: TuneTarget = "allow->rate_limited <= 10".parse().unwrap();
        assert_eq!(
            (t.metric, t.inclusive, t.bound, t.percent),
            (TuneMetric::AllowRateLimited, true, 10.0, false)
        );
        for bad in ["rate_limited", "denied<1", "limited<x%", "limited<-1"] {
            let e = bad.parse::<TuneTarget>().unwrap_err().to_string();
            assert!(e.starts_with(&format!("--target: `{bad}`")), "{e}");
        }
    }
}
