//! The result of a replay: counts, transitions, the identity x tool matrix, the rules behind the
//! changes, samples, fidelity and gates. Plain data, serialisable as the `--format json` shape.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::gate::GateResult;

/// Transition names in the order reports list them (README "Replay semantics and exit codes", Replay).
pub const TRANSITIONS: [&str; 15] = [
    "unchanged",
    "allow->deny",
    "allow->rate_limited",
    "allow->approval_required",
    "deny->allow",
    "rate_limited->allow",
    "approval_required->allow",
    "deny->rate_limited",
    "deny->approval_required",
    "rate_limited->deny",
    "rate_limited->approval_required",
    "approval_required->deny",
    "approval_required->rate_limited",
    "indeterminate",
    "not_comparable",
];

/// The replayed time range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Range {
    /// `--since` (inclusive), RFC 3339, or null for the first event.
    pub since: Option<String>,
    /// `--until` (exclusive), RFC 3339, or null for the last event.
    pub until: Option<String>,
    /// The first replayed call.
    pub first_event: Option<String>,
    /// The last replayed call.
    pub last_event: Option<String>,
    /// Calls before `since` that only charged counters (`--warmup`).
    pub warmup_from: Option<String>,
    /// Counters start empty at the start of the range (or of the warm-up).
    pub counters_start_empty: bool,
}

/// Counts of a replay.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Rows read in the range that match the filters (all methods).
    pub events: u64,
    /// `tools/call` rows replayed and reported.
    pub tool_calls: u64,
    /// Rows of other methods (`initialize`, `tools/list` ...), never compared.
    pub skipped_non_tool: u64,
    /// Calls with a determinate outcome on both sides and a comparable recorded decision.
    pub compared: u64,
    /// Of those, calls whose decision changed.
    pub changed: u64,
    /// Calls whose candidate outcome needs argument values the log does not hold.
    pub indeterminate: u64,
    /// Calls whose recorded decision was `error` or `unknown`.
    pub not_comparable: u64,
    /// Calls of destructive tools that the candidate allows and the other side did not.
    pub destructive_newly_allowed: u64,
    /// Rows read only to warm the counters up (before `since`).
    pub warmup_calls: u64,
    /// Rows outside the filters that were simulated (they share counters) but not reported.
    pub filtered_out: u64,
}

/// Reported tool calls per candidate outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    /// `allow`.
    pub allow: u64,
    /// `deny` (`(no policy)` included).
    pub deny: u64,
    /// `rate_limited`.
    pub rate_limited: u64,
    /// `approval_required`.
    pub approval_required: u64,
    /// `indeterminate`.
    pub indeterminate: u64,
}

impl Outcomes {
    /// Counts one outcome.
    pub fn add(&mut self, o: verdict_policy::Outcome) {
        use verdict_policy::Outcome;
        *match o {
            Outcome::Allow => &mut self.allow,
            Outcome::Deny => &mut self.deny,
            Outcome::RateLimited => &mut self.rate_limited,
            Outcome::ApprovalRequired => &mut self.approval_required,
            Outcome::Indeterminate => &mut self.indeterminate,
        } += 1;
    }
}

/// One cell of the identity x tool matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityToolRow {
    /// The identity (null when unknown).
    pub identity: Option<String>,
    /// The tool.
    pub tool: String,
    /// Calls per transition (changed and indeterminate only).
    pub transitions: BTreeMap<String, u64>,
    /// Their sum.
    pub total: u64,
}

/// A rule that caused changes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleRow {
    /// The rule pointer.
    pub rule: String,
    /// `candidate` when the candidate's rule now decides; `recorded` or `baseline` when the
    /// earlier rule no longer fires (a call now allowed).
    pub side: &'static str,
    /// The transition.
    pub transition: String,
    /// Calls.
    pub calls: u64,
}

/// An example event of a transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// The transition it illustrates.
    pub transition: String,
    /// The event id.
    pub event_id: String,
    /// When, RFC 3339.
    pub ts: String,
    /// Who.
    pub identity: Option<String>,
    /// The session.
    pub session: Option<String>,
    /// The server.
    pub server: Option<String>,
    /// The tool.
    pub tool: String,
    /// The recorded decision.
    pub recorded_decision: String,
    /// The recorded rule.
    pub recorded_rule: Option<String>,
    /// The baseline's decision, when a baseline was simulated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_decision: Option<String>,
    /// The baseline's rule, when a baseline was simulated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_rule: Option<String>,
    /// The candidate's outcome.
    pub candidate_decision: String,
    /// The candidate's rule.
    pub candidate_rule: String,
    /// The candidate's message.
    pub candidate_message: String,
}

/// How well a policy reproduces the recorded decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fidelity {
    /// `candidate` (compared with the recorded decisions) or `baseline`.
    pub policy: &'static str,
    /// Calls with a determinate outcome and a comparable recorded decision.
    pub determinate: u64,
    /// Of those, calls whose recorded decision was reproduced.
    pub reproduced: u64,
    /// `reproduced / determinate` (1 when there is nothing to compare).
    pub share: f64,
}

/// The full result of a replay.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The `decisions` version read (`None`: an empty warehouse).
    pub table_version: Option<i64>,
    /// `recorded` or `baseline`: what the candidate was compared with.
    pub compared_with: &'static str,
    /// The range.
    pub range: Range,
    /// The counts.
    pub counts: Counts,
    /// Reported calls per candidate outcome.
    pub candidate_outcomes: Outcomes,
    /// Calls per transition, every name present (zeros included), in [`TRANSITIONS`] order.
    pub transitions: Transitions,
    /// The identity x tool matrix of changed and indeterminate calls, largest first.
    pub by_identity_tool: Vec<IdentityToolRow>,
    /// The rules behind the changes, largest first.
    pub by_rule: Vec<RuleRow>,
    /// Up to N examples per transition.
    pub samples: Vec<Sample>,
    /// The fidelity self-check.
    pub fidelity: Option<Fidelity>,
    /// The gates asked for.
    pub gates: Vec<GateResult>,
    /// Where the changed events were written, and how many.
    pub changes: Option<ChangesFile>,
}

/// Calls per transition in [`TRANSITIONS`] order; serialised as a JSON object in that order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transitions(pub Vec<(&'static str, u64)>);

impl Transitions {
    /// The count of a transition (0 when unknown).
    pub fn get(&self, name: &str) -> u64 {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(0, |(_, n)| *n)
    }

    /// `(name, count)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().copied()
    }
}

impl std::ops::Index<&str> for Transitions {
    type Output = u64;
    fn index(&self, name: &str) -> &u64 {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map_or(&0, |(_, n)| n)
    }
}

impl Serialize for Transitions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The `--changes` Parquet file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangesFile {
    /// Its path.
    pub path: String,
    /// Rows written (changed and indeterminate events).
    pub rows: u64,
}

impl ReplayReport {
    /// Changed calls as a share of compared calls (0 when none were compared).
    pub fn changed_share(&self) -> f64 {
        if self.counts.compared == 0 {
            0.0
        } else {
            self.counts.changed as f64 / self.counts.compared as f64
        }
    }

    /// Whether any gate tripped.
    pub fn gate_tripped(&self) -> bool {
        self.gates.iter().any(|g| g.tripped)
    }
}
