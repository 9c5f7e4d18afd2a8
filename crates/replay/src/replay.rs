//! The replay driver: streams the warehouse's `tools/call` rows in `(ts, event_id)` order through
//! the candidate (and the baseline) evaluator, classifies each call's transition and aggregates.
//! Pure: reads the warehouse and the policies, never calls a proxy, a server or a tool.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use rustc_hash::FxHashMap;
use verdict_policy::{Args, Call, Evaluator, Outcome, Policy, Recorded};
use verdict_schema::time::format_micros;
use verdict_table::{AsOf, Location, Warehouse};

use crate::changes::{ChangeRow, ChangesWriter};
use crate::error::Result;
use crate::gate::Gate;
use crate::report::{
    ChangesFile, Counts, Fidelity, IdentityToolRow, Range, ReplayReport, RuleRow, Sample,
    Transitions, TRANSITIONS,
};
use crate::scan::{for_each_row, plan, BatchView};

/// What to replay and what to report.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The warehouse.
    pub warehouse: Location,
    /// Read `decisions` as of this version or instant instead of the latest.
    pub as_of: Option<AsOf>,
    /// Start of the range (inclusive), UTC µs; `None`: the first event.
    pub since: Option<i64>,
    /// End of the range (exclusive), UTC µs; `None`: after the last event.
    pub until: Option<i64>,
    /// Calls in `[since - warmup, since)` charge the counters but are not reported.
    pub warmup: Option<i64>,
    /// Report only these identities (matched against `identity` or `identity_id`); empty: all.
    pub identities: Vec<String>,
    /// Report only these tools; empty: all.
    pub tools: Vec<String>,
    /// Report only these servers; empty: all.
    pub servers: Vec<String>,
    /// Example events per transition.
    pub samples: usize,
    /// Write every changed or indeterminate event to this Parquet file.
    pub changes: Option<PathBuf>,
    /// CI gates.
    pub gates: Vec<Gate>,
}

impl ReplayOptions {
    /// Replays everything in `warehouse`, with one sample per transition.
    pub fn new(warehouse: impl Into<Location>) -> Self {
        Self {
            warehouse: warehouse.into(),
            as_of: None,
            since: None,
            until: None,
            warmup: None,
            identities: Vec::new(),
            tools: Vec::new(),
            servers: Vec::new(),
            samples: 1,
            changes: None,
            gates: Vec::new(),
        }
    }
}

const fn tidx(name: &str) -> usize {
    let mut i = 0;
    while i < TRANSITIONS.len() {
        if const_eq(TRANSITIONS[i], name) {
            return i;
        }
        i += 1;
    }
    usize::MAX
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const UNCHANGED: usize = tidx("unchanged");
const INDETERMINATE: usize = tidx("indeterminate");
const NOT_COMPARABLE: usize = tidx("not_comparable");

fn oidx(o: Outcome) -> usize {
    match o {
        Outcome::Allow => 0,
        Outcome::Deny => 1,
        Outcome::RateLimited => 2,
        Outcome::ApprovalRequired => 3,
        Outcome::Indeterminate => 4,
    }
}

/// `PAIRS[from][to]`: the transition index of a determinate change.
const PAIRS: [[usize; 4]; 4] = [
    [
        UNCHANGED,
        tidx("allow->deny"),
        tidx("allow->rate_limited"),
        tidx("allow->approval_required"),
    ],
    [
        tidx("deny->allow"),
        UNCHANGED,
        tidx("deny->rate_limited"),
        tidx("deny->approval_required"),
    ],
    [
        tidx("rate_limited->allow"),
        tidx("rate_limited->deny"),
        UNCHANGED,
        tidx("rate_limited->approval_required"),
    ],
    [
        tidx("approval_required->allow"),
        tidx("approval_required->deny"),
        tidx("approval_required->rate_limited"),
        UNCHANGED,
    ],
];

struct Agg<'f> {
    counts: Counts,
    transitions: [u64; TRANSITIONS.len()],
    matrix: FxHashMap<(Option<String>, String), [u64; TRANSITIONS.len()]>,
    rules: FxHashMap<(String, &'static str, usize), u64>,
    samples: Vec<Vec<Sample>>,
    fid_determinate: u64,
    fid_reproduced: u64,
    first: Option<i64>,
    last: Option<i64>,
    destructive: FxHashMap<String, bool>,
    is_destructive: &'f dyn Fn(&str) -> bool,
    changes: Option<ChangesWriter>,
    error: Option<crate::error::Error>,
}

/// Replays the warehouse against `candidate`, compared with the recorded decisions or with
/// `baseline` simulated the same way. `is_destructive` classifies tools for the
/// `destructive-allowed` gate.
///
/// # Errors
/// When the warehouse or the changes file cannot be read or written.
pub fn replay(
    opts: &ReplayOptions,
    candidate: &Policy,
    baseline: Option<&Policy>,
    is_destructive: &dyn Fn(&str) -> bool,
) -> Result<ReplayReport> {
    let wh = Warehouse::new(opts.warehouse.clone())?;
    let snapshot = verdict_table::block_on(wh.snapshot(opts.as_of.as_ref()))?;
    let lo = match (opts.since, opts.warmup) {
        (Some(s), Some(w)) => Some(s - w),
        (s, _) => s,
    };
    let days = plan(&snapshot, lo, opts.until);
    let mut cand = Evaluator::new(candidate);
    let mut base = baseline.map(Evaluator::new);
    let ids: HashSet<&str> = opts.identities.iter().map(String::as_str).collect();
    let tools: HashSet<&str> = opts.tools.iter().map(String::as_str).collect();
    let servers: HashSet<&str> = opts.servers.iter().map(String::as_str).collect();
    let since = opts.since.unwrap_or(i64::MIN);
    let (lo, hi) = (lo.unwrap_or(i64::MIN), opts.until.unwrap_or(i64::MAX));
    let changes = opts
        .changes
        .as_deref()
        .map(|p| ChangesWriter::create(p, baseline.is_some()))
        .transpose()?;
    let mut agg = Agg {
        counts: Counts::default(),
        transitions: [0; TRANSITIONS.len()],
        matrix: FxHashMap::default(),
        rules: FxHashMap::default(),
        samples: vec![Vec::new(); TRANSITIONS.len()],
        fid_determinate: 0,
        fid_reproduced: 0,
        first: None,
        last: None,
        destructive: FxHashMap::default(),
        is_destructive,
        changes,
        error: None,
    };
    let mut keys: Vec<&str> = Vec::with_capacity(16);
    for_each_row(&snapshot, &days, |v: &BatchView, i: usize| {
        let ts = v.ts[i];
        if ts < lo || ts >= hi {
            return;
        }
        let identity = v.identity(i);
        let identity_id = v.identity_id(i);
        let tool = v.tool(i);
        let server = v.server(i);
        let reported = ts >= since
            && (ids.is_empty()
                || identity.is_some_and(|x| ids.contains(x))
                || identity_id.is_some_and(|x| ids.contains(x)))
            && (tools.is_empty() || tool.is_some_and(|x| tools.contains(x)))
            && (servers.is_empty() || server.is_some_and(|x| servers.contains(x)));
        if reported {
            agg.counts.events += 1;
            agg.first.get_or_insert(ts);
            agg.last = Some(ts);
        }
        let is_call = matches!((v.method(i), tool), (Some("tools/call") | None, Some(_)));
        let Some(tool) = tool.filter(|_| is_call) else {
            if reported {
                agg.counts.skipped_non_tool += 1;
            }
            return;
        };
        let mut kbuf = recycle(std::mem::take(&mut keys));
        let has_keys = v.arg_keys_into(i, &mut kbuf);
        let recorded = Recorded {
            decision: v.decisions[i],
            upstream_status: v.upstream(i),
        };
        let call = Call {
            ts_micros: ts,
            tool,
            identity,
            identity_id,
            session: v.session(i),
            server,
            arg_keys: if has_keys { Some(&kbuf) } else { None },
            args: v.args(i).map(Args::Json),
            recorded: Some(recorded),
        };
        let c = cand.evaluate(&call);
        let b = base.as_mut().map(|e| e.evaluate(&call));
        keys = recycle(kbuf);
        if !reported {
            if ts < since {
                agg.counts.warmup_calls += 1;
            } else {
                agg.counts.filtered_out += 1;
            }
            return;
        }
        agg.counts.tool_calls += 1;
        let rec = recorded.decision.as_outcome();
        // Fidelity: the live side (baseline if given, else the candidate) against the record.
        let live = b.as_ref().map_or(c.outcome, |b| b.outcome);
        if let Some(r) = rec {
            if live != Outcome::Indeterminate {
                agg.fid_determinate += 1;
                agg.fid_reproduced += u64::from(live == r);
            }
        }
        let other = match &b {
            Some(b) => rec.map(|_| b.outcome),
            None => rec,
        };
        let t = match other {
            None => NOT_COMPARABLE,
            Some(o) if o == Outcome::Indeterminate || c.outcome == Outcome::Indeterminate => {
                INDETERMINATE
            }
            Some(o) => PAIRS[oidx(o)][oidx(c.outcome)],
        };
        agg.transitions[t] += 1;
        match t {
            NOT_COMPARABLE => agg.counts.not_comparable += 1,
            INDETERMINATE => agg.counts.indeterminate += 1,
            UNCHANGED => agg.counts.compared += 1,
            _ => {
                agg.counts.compared += 1;
                agg.counts.changed += 1;
            }
        }
        if t == UNCHANGED || t == NOT_COMPARABLE {
            return;
        }
        let rec_rule = v.rule(i);
        let (other_rule, side) = match &b {
            Some(b) => (Some(b.rule).filter(|r| !r.is_empty()), "baseline"),
            None => (rec_rule, "recorded"),
        };
        if c.outcome == Outcome::Allow && other != Some(Outcome::Allow) {
            let d = *agg
                .destructive
                .entry(tool.to_string())
                .or_insert_with(|| (agg.is_destructive)(tool));
            if d {
                agg.counts.destructive_newly_allowed += 1;
            }
        }
        let cell = agg
            .matrix
            .entry((identity.map(str::to_string), tool.to_string()))
            .or_insert([0; TRANSITIONS.len()]);
        cell[t] += 1;
        let (rule, rule_side) = if c.outcome == Outcome::Allow {
            (other_rule.unwrap_or("(none)"), side)
        } else {
            (c.rule, "candidate")
        };
        *agg.rules
            .entry((rule.to_string(), rule_side, t))
            .or_default() += 1;
        let recorded_decision = recorded.decision.as_str();
        if agg.samples[t].len() < opts.samples {
            agg.samples[t].push(Sample {
                transition: TRANSITIONS[t].to_string(),
                event_id: v.event_id.value(i).to_string(),
                ts: format_micros(ts),
                identity: identity.map(str::to_string),
                session: v.session(i).map(str::to_string),
                server: server.map(str::to_string),
                tool: tool.to_string(),
                recorded_decision: recorded_decision.to_string(),
                recorded_rule: rec_rule.map(str::to_string),
                baseline_decision: b.as_ref().map(|b| b.outcome.as_str().to_string()),
                baseline_rule: b.as_ref().map(|b| b.rule.to_string()),
                candidate_decision: c.outcome.as_str().to_string(),
                candidate_rule: c.rule.to_string(),
                candidate_message: c.message.to_string(),
            });
        }
        if let Some(w) = agg.changes.as_mut() {
            let row = ChangeRow {
                event_id: v.event_id.value(i),
                ts,
                identity,
                session: v.session(i),
                server,
                tool,
                recorded_decision,
                recorded_rule: rec_rule,
                candidate_decision: c.outcome.as_str(),
                candidate_rule: c.rule,
                candidate_message: c.message,
                transition: TRANSITIONS[t],
                baseline: b.as_ref().map(|b| (b.outcome.as_str(), b.rule)),
            };
            if let Err(e) = w.push(&row) {
                agg.error.get_or_insert(e);
            }
        }
    })?;
    if let Some(e) = agg.error.take() {
        return Err(e);
    }
    let changes = match (agg.changes.take(), &opts.changes) {
        (Some(w), Some(p)) => Some(ChangesFile {
            path: p.display().to_string(),
            rows: w.finish()?,
        }),
        _ => None,
    };
    let mut report = ReplayReport {
        table_version: snapshot.version(),
        compared_with: if baseline.is_some() {
            "baseline"
        } else {
            "recorded"
        },
        range: Range {
            since: opts.since.map(format_micros),
            until: opts.until.map(format_micros),
            first_event: agg.first.map(format_micros),
            last_event: agg.last.map(format_micros),
            warmup_from: match (opts.since, opts.warmup) {
                (Some(s), Some(w)) => Some(format_micros(s - w)),
                _ => None,
            },
            counters_start_empty: true,
        },
        counts: agg.counts,
        transitions: Transitions(TRANSITIONS.iter().copied().zip(agg.transitions).collect()),
        by_identity_tool: Vec::new(),
        by_rule: Vec::new(),
        samples: agg.samples.into_iter().flatten().collect(),
        fidelity: Some(Fidelity {
            policy: if baseline.is_some() {
                "baseline"
            } else {
                "candidate"
            },
            determinate: agg.fid_determinate,
            reproduced: agg.fid_reproduced,
            share: if agg.fid_determinate == 0 {
                1.0
            } else {
                agg.fid_reproduced as f64 / agg.fid_determinate as f64
            },
        }),
        gates: Vec::new(),
        changes,
    };
    let mut matrix: Vec<IdentityToolRow> = agg
        .matrix
        .into_iter()
        .map(|((identity, tool), cells)| {
            let transitions: BTreeMap<String, u64> = TRANSITIONS
                .iter()
                .zip(cells)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.to_string(), n))
                .collect();
            IdentityToolRow {
                identity,
                tool,
                total: transitions.values().sum(),
                transitions,
            }
        })
        .collect();
    matrix.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| (&a.identity, &a.tool).cmp(&(&b.identity, &b.tool)))
    });
    report.by_identity_tool = matrix;
    let mut rules: Vec<RuleRow> = agg
        .rules
        .into_iter()
        .map(|((rule, side, t), calls)| RuleRow {
            rule,
            side,
            transition: TRANSITIONS[t].to_string(),
            calls,
        })
        .collect();
    rules.sort_by(|a, b| {
        b.calls
            .cmp(&a.calls)
            .then_with(|| (&a.rule, &a.transition).cmp(&(&b.rule, &b.transition)))
    });
    report.by_rule = rules;
    report.gates = opts.gates.iter().map(|g| g.check(&report)).collect();
    Ok(report)
}

/// Empties a vector of borrowed strings and gives its allocation a new lifetime.
fn recycle<'b>(mut v: Vec<&str>) -> Vec<&'b str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}
