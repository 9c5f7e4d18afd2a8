//! The replay driver: streams the warehouse's `tools/call` rows in `(ts, event_id)` order through
//! the candidate (and the baseline) policies, classifies each call's [`Transition`] and aggregates.
//! Pure: reads the warehouse and the policies, never calls a proxy, a server or a tool.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use hashbrown::Equivalent;
use rustc_hash::{FxBuildHasher, FxHashMap};
use verdict_policy::{Call, Outcome, Verdict};
use verdict_schema::time::format_micros;
use verdict_table::{AsOf, Location};

use crate::calls::{self, Row};
use crate::changes::{ChangeRow, ChangesWriter};
use crate::error::Result;
use crate::gate::Gate;
use crate::grants::{Policies, Side};
use crate::report::{
    ChangesFile, Counts, Fidelity, IdentityToolRow, Outcomes, Range, ReplayReport, RuleRow, Sample,
    Transitions, TRANSITIONS,
};
use crate::transition::Transition;

/// Counts under owned keys, looked up by borrowed ones ([`CellRef`], [`RuleRef`]): a changed
/// call allocates its key's strings only the first time the key is seen, where `entry` would
/// build them for every call.
type Counted<K, V> = hashbrown::HashMap<K, V, FxBuildHasher>;

/// A borrowed `(identity, tool)` key of the identity x tool matrix; hashes as the owned tuple.
#[derive(Hash)]
struct CellRef<'a>(Option<&'a str>, &'a str);

impl Equivalent<(Option<String>, String)> for CellRef<'_> {
    fn equivalent(&self, key: &(Option<String>, String)) -> bool {
        self.0 == key.0.as_deref() && self.1 == key.1
    }
}

/// A borrowed `(rule, side, transition)` key of the rules behind the changes; hashes as the
/// owned tuple.
#[derive(Hash)]
struct RuleRef<'a>(&'a str, &'static str, Transition);

impl Equivalent<(String, &'static str, Transition)> for RuleRef<'_> {
    fn equivalent(&self, key: &(String, &'static str, Transition)) -> bool {
        self.0 == key.0 && self.1 == key.1 && self.2 == key.2
    }
}

/// What to replay and what to report.
#[derive(Debug, Clone, Default)]
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
            samples: 1,
            ..Self::default()
        }
    }

    /// The first instant read: `since`, or `since - warmup`.
    pub(crate) fn read_from(&self) -> Option<i64> {
        match (self.since, self.warmup) {
            (Some(s), Some(w)) => Some(s - w),
            (s, _) => s,
        }
    }
}

/// Replays the warehouse against `candidate`, compared with the recorded decisions or with
/// `baseline` simulated the same way. Either side is one policy or a policy per grant
/// ([`Policies`]). `is_destructive` classifies tools for the `destructive-allowed` gate.
///
/// # Errors
/// When the warehouse or the changes file cannot be read or written.
pub fn replay(
    opts: &ReplayOptions,
    candidate: &Policies,
    baseline: Option<&Policies>,
    is_destructive: &dyn Fn(&str) -> bool,
) -> Result<ReplayReport> {
    let filter = Filter::new(opts);
    let mut cand = Side::new(candidate);
    let mut base = baseline.map(Side::new);
    let mut agg = Agg::new(opts, baseline.is_some(), is_destructive)?;
    let snapshot = calls::snapshot(&opts.warehouse, opts.as_of.as_ref())?;
    calls::for_each_row(&snapshot, opts.read_from(), opts.until, |row| {
        let reported = filter.reports(row);
        let Some(call) = &row.call else {
            agg.non_tool(reported, row.ts());
            return Ok(());
        };
        // Every call is simulated, reported or not: the counters see all traffic.
        let c = cand.evaluate(call);
        let b = base.as_mut().map(|e| e.evaluate(call));
        if reported {
            agg.call(row, call, &c, b.as_ref())
        } else {
            agg.unreported(row.ts() < filter.since);
            Ok(())
        }
    })?;
    agg.finish(opts, snapshot.version())
}

/// Which rows are reported: in `[since, until)` and matching the identity, tool and server filters.
struct Filter<'o> {
    since: i64,
    ids: HashSet<&'o str>,
    tools: HashSet<&'o str>,
    servers: HashSet<&'o str>,
}

impl<'o> Filter<'o> {
    fn new(opts: &'o ReplayOptions) -> Self {
        let set = |v: &'o [String]| v.iter().map(String::as_str).collect();
        Self {
            since: opts.since.unwrap_or(i64::MIN),
            ids: set(&opts.identities),
            tools: set(&opts.tools),
            servers: set(&opts.servers),
        }
    }

    fn reports(&self, row: &Row<'_>) -> bool {
        let (v, i) = (row.view, row.i);
        // A filter's columns are read only when it is set.
        let hit = |set: &HashSet<&str>, x: Option<&str>| x.is_some_and(|x| set.contains(x));
        row.ts() >= self.since
            && (self.ids.is_empty()
                || hit(&self.ids, v.identity(i))
                || hit(&self.ids, v.identity_id(i)))
            && (self.tools.is_empty() || hit(&self.tools, v.tool(i)))
            && (self.servers.is_empty() || hit(&self.servers, v.server(i)))
    }
}

/// The running totals of a replay.
struct Agg<'f> {
    compared_with_baseline: bool,
    samples_per: usize,
    counts: Counts,
    outcomes: Outcomes,
    transitions: [u64; TRANSITIONS.len()],
    matrix: Counted<(Option<String>, String), [u64; TRANSITIONS.len()]>,
    rules: Counted<(String, &'static str, Transition), u64>,
    samples: Vec<Vec<Sample>>,
    fid_determinate: u64,
    fid_reproduced: u64,
    first: Option<i64>,
    last: Option<i64>,
    destructive: FxHashMap<String, bool>,
    is_destructive: &'f dyn Fn(&str) -> bool,
    changes: Option<ChangesWriter>,
}

impl<'f> Agg<'f> {
    fn new(
        opts: &ReplayOptions,
        with_baseline: bool,
        is_destructive: &'f dyn Fn(&str) -> bool,
    ) -> Result<Self> {
        let changes = opts
            .changes
            .as_deref()
            .map(|p| ChangesWriter::create(p, with_baseline))
            .transpose()?;
        Ok(Self {
            compared_with_baseline: with_baseline,
            samples_per: opts.samples,
            counts: Counts::default(),
            outcomes: Outcomes::default(),
            transitions: [0; TRANSITIONS.len()],
            matrix: Counted::default(),
            rules: Counted::default(),
            samples: vec![Vec::new(); TRANSITIONS.len()],
            fid_determinate: 0,
            fid_reproduced: 0,
            first: None,
            last: None,
            destructive: FxHashMap::default(),
            is_destructive,
            changes,
        })
    }

    fn event(&mut self, ts: i64) {
        self.counts.events += 1;
        self.first.get_or_insert(ts);
        self.last = Some(ts);
    }

    /// A row of another method (or without a tool): counted, never compared.
    fn non_tool(&mut self, reported: bool, ts: i64) {
        if reported {
            self.event(ts);
            self.counts.skipped_non_tool += 1;
        }
    }

    /// A simulated call outside the report: warm-up or filtered out.
    fn unreported(&mut self, before_since: bool) {
        if before_since {
            self.counts.warmup_calls += 1;
        } else {
            self.counts.filtered_out += 1;
        }
    }

    /// A reported call: its transition, and the details of a change.
    fn call(
        &mut self,
        row: &Row<'_>,
        call: &Call<'_>,
        c: &Verdict<'_>,
        b: Option<&Verdict<'_>>,
    ) -> Result<()> {
        self.event(call.ts_micros);
        self.counts.tool_calls += 1;
        self.outcomes.add(c.outcome);
        let rec = row.recorded().decision.as_outcome();
        // Fidelity: the live side (baseline if given, else the candidate) against the record.
        let live = b.map_or(c.outcome, |b| b.outcome);
        if let Some(r) = rec.filter(|_| live != Outcome::Indeterminate) {
            self.fid_determinate += 1;
            self.fid_reproduced += u64::from(live == r);
        }
        let other = match b {
            Some(b) => rec.map(|_| b.outcome),
            None => rec,
        };
        let t = Transition::between(other, c.outcome);
        self.transitions[t.index()] += 1;
        match t {
            Transition::NotComparable => self.counts.not_comparable += 1,
            Transition::Indeterminate => self.counts.indeterminate += 1,
            Transition::Unchanged => self.counts.compared += 1,
            _ => {
                self.counts.compared += 1;
                self.counts.changed += 1;
            }
        }
        if matches!(t, Transition::Unchanged | Transition::NotComparable) {
            return Ok(());
        }
        if c.outcome == Outcome::Allow
            && other != Some(Outcome::Allow)
            && self.destructive(call.tool)
        {
            self.counts.destructive_newly_allowed += 1;
        }
        self.changed(row, call, t, c, b)
    }

    fn destructive(&mut self, tool: &str) -> bool {
        if let Some(&d) = self.destructive.get(tool) {
            return d;
        }
        let d = (self.is_destructive)(tool);
        self.destructive.insert(tool.to_string(), d);
        d
    }

    /// A changed or indeterminate call: the matrix, the rule behind it, a sample, the changes file.
    fn changed(
        &mut self,
        row: &Row<'_>,
        call: &Call<'_>,
        t: Transition,
        c: &Verdict<'_>,
        b: Option<&Verdict<'_>>,
    ) -> Result<()> {
        let cell = CellRef(call.identity, call.tool);
        match self.matrix.get_mut(&cell) {
            Some(counts) => counts[t.index()] += 1,
            None => {
                let mut counts = [0; TRANSITIONS.len()];
                counts[t.index()] = 1;
                self.matrix
                    .insert((cell.0.map(str::to_string), cell.1.to_string()), counts);
            }
        }
        let rec_rule = row.recorded_rule();
        let (rule, side) = match (c.outcome, b) {
            (Outcome::Allow, Some(b)) => (Some(b.rule).filter(|r| !r.is_empty()), "baseline"),
            (Outcome::Allow, None) => (rec_rule, "recorded"),
            _ => (Some(c.rule), "candidate"),
        };
        let rule = RuleRef(rule.unwrap_or("(none)"), side, t);
        match self.rules.get_mut(&rule) {
            Some(n) => *n += 1,
            None => {
                self.rules.insert((rule.0.to_string(), side, t), 1);
            }
        }
        let recorded_decision = row.recorded().decision.as_str();
        if self.samples[t.index()].len() < self.samples_per {
            self.samples[t.index()].push(Sample {
                transition: t.as_str().to_string(),
                event_id: row.event_id().to_string(),
                ts: format_micros(call.ts_micros),
                identity: call.identity.map(str::to_string),
                session: call.session.map(str::to_string),
                server: call.server.map(str::to_string),
                tool: call.tool.to_string(),
                recorded_decision: recorded_decision.to_string(),
                recorded_rule: rec_rule.map(str::to_string),
                baseline_decision: b.map(|b| b.outcome.as_str().to_string()),
                baseline_rule: b.map(|b| b.rule.to_string()),
                candidate_decision: c.outcome.as_str().to_string(),
                candidate_rule: c.rule.to_string(),
                candidate_message: c.message.to_string(),
            });
        }
        let Some(w) = self.changes.as_mut() else {
            return Ok(());
        };
        w.push(&ChangeRow {
            event_id: row.event_id(),
            ts: call.ts_micros,
            identity: call.identity,
            session: call.session,
            server: call.server,
            tool: call.tool,
            recorded_decision,
            recorded_rule: rec_rule,
            candidate_decision: c.outcome.as_str(),
            candidate_rule: c.rule,
            candidate_message: c.message,
            transition: t.as_str(),
            baseline: b.map(|b| (b.outcome.as_str(), b.rule)),
        })
    }

    fn finish(mut self, opts: &ReplayOptions, table_version: Option<i64>) -> Result<ReplayReport> {
        let changes = match (self.changes.take(), &opts.changes) {
            (Some(w), Some(p)) => Some(ChangesFile {
                path: p.display().to_string(),
                rows: w.finish()?,
            }),
            _ => None,
        };
        let (compared_with, fidelity_of) = if self.compared_with_baseline {
            ("baseline", "baseline")
        } else {
            ("recorded", "candidate")
        };
        let mut report = ReplayReport {
            table_version,
            compared_with,
            range: Range {
                since: opts.since.map(format_micros),
                until: opts.until.map(format_micros),
                first_event: self.first.map(format_micros),
                last_event: self.last.map(format_micros),
                warmup_from: opts.warmup.and(opts.read_from()).map(format_micros),
                counters_start_empty: true,
            },
            counts: self.counts,
            candidate_outcomes: self.outcomes,
            transitions: Transitions(TRANSITIONS.iter().copied().zip(self.transitions).collect()),
            by_identity_tool: matrix_rows(self.matrix),
            by_rule: rule_rows(self.rules),
            samples: self.samples.into_iter().flatten().collect(),
            fidelity: Some(Fidelity {
                policy: fidelity_of,
                determinate: self.fid_determinate,
                reproduced: self.fid_reproduced,
                share: if self.fid_determinate == 0 {
                    1.0
                } else {
                    self.fid_reproduced as f64 / self.fid_determinate as f64
                },
            }),
            gates: Vec::new(),
            changes,
        };
        report.gates = opts.gates.iter().map(|g| g.check(&report)).collect();
        Ok(report)
    }
}

/// The identity x tool matrix, largest cell first.
fn matrix_rows(
    matrix: Counted<(Option<String>, String), [u64; TRANSITIONS.len()]>,
) -> Vec<IdentityToolRow> {
    let mut rows: Vec<IdentityToolRow> = matrix
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
    rows.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| (&a.identity, &a.tool).cmp(&(&b.identity, &b.tool)))
    });
    rows
}

/// The rules behind the changes, most calls first.
fn rule_rows(rules: Counted<(String, &'static str, Transition), u64>) -> Vec<RuleRow> {
    let mut rows: Vec<RuleRow> = rules
        .into_iter()
        .map(|((rule, side, t), calls)| RuleRow {
            rule,
            side,
            transition: t.as_str().to_string(),
            calls,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.calls
            .cmp(&a.calls)
            .then_with(|| (&a.rule, &a.transition).cmp(&(&b.rule, &b.transition)))
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::BatchView;
    use arrow::array::{Int32Array, StringViewArray};
    use arrow::buffer::{OffsetBuffer, ScalarBuffer};
    use verdict_policy::RecordedDecision;

    /// Rows of `(ts, identity, identity_id, tool, server)`.
    fn view(rows: &[(i64, Option<&str>, Option<&str>, &str, Option<&str>)]) -> BatchView {
        let n = rows.len();
        let strings =
            |f: &dyn Fn(usize) -> Option<String>| StringViewArray::from_iter((0..n).map(f));
        let none = || StringViewArray::from(vec![None::<&str>; n]);
        BatchView {
            event_id: strings(&|i| Some(format!("e{i}"))),
            ts: ScalarBuffer::from(rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            identity: strings(&|i| rows[i].1.map(str::to_string)),
            identity_id: strings(&|i| rows[i].2.map(str::to_string)),
            session: none(),
            server: strings(&|i| rows[i].4.map(str::to_string)),
            method: none(),
            tool: strings(&|i| Some(rows[i].3.to_string())),
            arg_keys_offsets: OffsetBuffer::new_zeroed(n),
            arg_keys_nulls: None,
            arg_key_values: StringViewArray::from(Vec::<Option<&str>>::new()),
            args: none(),
            decisions: vec![RecordedDecision::Allow; n],
            rule: none(),
            upstream: Int32Array::from(vec![None; n]),
            rows: n,
        }
    }

    #[test]
    fn filters_match_identity_or_its_id_tool_server_and_since() {
        let v = view(&[
            (10, Some("ana"), Some("gr_1"), "nav", Some("web")),
            (20, Some("bob"), None, "click", None),
            (30, None, Some("gr_2"), "nav", Some("db")),
        ]);
        let rows = |opts: &ReplayOptions| -> Vec<usize> {
            let f = Filter::new(opts);
            (0..v.rows)
                .filter(|&i| {
                    f.reports(&Row {
                        view: &v,
                        i,
                        call: None,
                    })
                })
                .collect()
        };
        let with = |edit: &dyn Fn(&mut ReplayOptions)| {
            let mut o = ReplayOptions::default();
            edit(&mut o);
            rows(&o)
        };
        assert_eq!(with(&|_| {}), [0, 1, 2], "no filter reports every row");
        assert_eq!(with(&|o| o.since = Some(20)), [1, 2]);
        assert_eq!(with(&|o| o.identities = vec!["ana".into()]), [0]);
        assert_eq!(
            with(&|o| o.identities = vec!["gr_2".into(), "bob".into()]),
            [1, 2],
            "an identity matches the label or the id"
        );
        assert_eq!(with(&|o| o.tools = vec!["nav".into()]), [0, 2]);
        assert_eq!(with(&|o| o.servers = vec!["db".into()]), [2]);
        assert_eq!(
            with(&|o| {
                o.tools = vec!["nav".into()];
                o.servers = vec!["web".into(), "db".into()];
                o.identities = vec!["gr_2".into()];
            }),
            [2],
            "filters combine"
        );
    }

    #[test]
    fn borrowed_keys_find_and_count_the_owned_ones() {
        let mut matrix: Counted<(Option<String>, String), u64> = Counted::default();
        matrix.insert((Some("ana".into()), "nav".into()), 1);
        matrix.insert((None, "nav".into()), 2);
        assert_eq!(matrix.get(&CellRef(Some("ana"), "nav")), Some(&1));
        assert_eq!(matrix.get(&CellRef(None, "nav")), Some(&2));
        assert_eq!(matrix.get(&CellRef(Some("nav"), "ana")), None);
        assert_eq!(matrix.get(&CellRef(Some(""), "nav")), None);
        let mut rules: Counted<(String, &'static str, Transition), u64> = Counted::default();
        rules.insert(("/r".into(), "candidate", Transition::AllowDeny), 3);
        assert_eq!(
            rules.get(&RuleRef("/r", "candidate", Transition::AllowDeny)),
            Some(&3)
        );
        assert_eq!(
            rules.get(&RuleRef("/r", "baseline", Transition::AllowDeny)),
            None
        );
    }
}
