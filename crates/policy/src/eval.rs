//! The evaluator: one `tools/call` at a time, in time order, through the spec's steps (hidden, default,
//! require, deny_if, limits, approval, allow), with counter state and the replay rules for indeterminate
//! calls and quota rollback. It does no I/O, reads no clock and allocates nothing per call once warm.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::cond::{ArgsKnown, Condition, Found, Tri, Values};
use crate::counters::{Counters, Key, Tag};
use crate::extract::extract;
use crate::policy::{DefaultAction, LimitSet, Policy, Scope, Tool};
use crate::set::PolicySet;

/// A borrowed view of one recorded `tools/call`, as the replay driver builds it from a row.
///
/// Start from [`Call::new`] and fill what the log holds:
/// `Call { identity: Some("alice"), ..Call::new(ts, "create_charge") }`.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// When the proxy decided, UTC microseconds since the epoch. Calls must be evaluated in
    /// non-decreasing `ts_micros` order; an earlier one is counted at the latest time seen.
    pub ts_micros: i64,
    /// The tool name.
    pub tool: &'a str,
    /// Who called (grant label, subject ...).
    pub identity: Option<&'a str>,
    /// A stable id of the identity (PolicyLayer grant id); preferred over `identity` for `grant` scope.
    pub identity_id: Option<&'a str>,
    /// Agent/MCP session id.
    pub session: Option<&'a str>,
    /// Upstream server.
    pub server: Option<&'a str>,
    /// Top-level argument keys known to the log; `None` when unknown. Any order. A replay driver can
    /// collect a batch's key strings once and hand each row a sub-slice, so no per-call allocation.
    pub arg_keys: Option<&'a [&'a str]>,
    /// Argument values; `None` when not logged (or redacted).
    pub args: Option<Args<'a>>,
    /// What the log recorded for this call, when known (used for charging indeterminate calls and rollback).
    pub recorded: Option<Recorded>,
}

impl<'a> Call<'a> {
    /// A call of `tool` at `ts_micros` about which nothing else is known.
    pub fn new(ts_micros: i64, tool: &'a str) -> Self {
        Self {
            ts_micros,
            tool,
            identity: None,
            identity_id: None,
            session: None,
            server: None,
            arg_keys: None,
            args: None,
            recorded: None,
        }
    }
}

/// The argument values of a call.
#[derive(Debug, Clone, Copy)]
pub enum Args<'a> {
    /// Already parsed.
    Value(&'a Value),
    /// JSON text, as stored in the decision table. Read only when the tool has a `require` path or a
    /// condition, and then only the top-level keys they use are built into values (no full parse); text
    /// that is not JSON counts as not logged.
    Json(&'a str),
}

impl<'a> From<&'a Value> for Args<'a> {
    fn from(v: &'a Value) -> Self {
        Args::Value(v)
    }
}

/// What the log recorded for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The recorded decision.
    pub decision: RecordedDecision,
    /// HTTP status the upstream returned; `None` when the call never reached it.
    pub upstream_status: Option<i32>,
}

impl Recorded {
    /// Whether the upstream failed (status 500 or above), so the gateway released the reserved quota.
    pub fn upstream_failed(&self) -> bool {
        self.upstream_status.is_some_and(|s| s >= 500)
    }

    /// Whether the live gateway, by this record, failed closed or left no usable outcome (`error`,
    /// `unknown`): nothing was forwarded, so no quota was kept.
    pub fn failed_closed(&self) -> bool {
        matches!(
            self.decision,
            RecordedDecision::Error | RecordedDecision::Unknown
        )
    }
}

/// A decision as the decision table records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordedDecision {
    /// `allow`
    Allow,
    /// `deny`
    Deny,
    /// `rate_limited`
    RateLimited,
    /// `approval_required`
    ApprovalRequired,
    /// `error`
    Error,
    /// `unknown`
    Unknown,
}

impl RecordedDecision {
    /// Maps the table's decision string; anything unrecognised is [`RecordedDecision::Unknown`].
    pub fn from_name(name: &str) -> Self {
        match name {
            "allow" => Self::Allow,
            "deny" => Self::Deny,
            "rate_limited" => Self::RateLimited,
            "approval_required" => Self::ApprovalRequired,
            "error" => Self::Error,
            _ => Self::Unknown,
        }
    }

    /// The table's decision string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::RateLimited => "rate_limited",
            Self::ApprovalRequired => "approval_required",
            Self::Error => "error",
            Self::Unknown => "unknown",
        }
    }

    /// The same decision as an [`Outcome`], to compare with a candidate; `None` for `error` and `unknown`
    /// (not comparable).
    pub fn as_outcome(self) -> Option<Outcome> {
        match self {
            Self::Allow => Some(Outcome::Allow),
            Self::Deny => Some(Outcome::Deny),
            Self::RateLimited => Some(Outcome::RateLimited),
            Self::ApprovalRequired => Some(Outcome::ApprovalRequired),
            Self::Error | Self::Unknown => None,
        }
    }
}

/// The candidate outcome of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every step passed.
    Allow,
    /// Hidden, default deny, a missing required argument or a matching `deny_if` rule.
    Deny,
    /// A limit would be exceeded.
    RateLimited,
    /// The tool has `approval: true`.
    ApprovalRequired,
    /// A step needed an argument value (or presence) that the log does not hold.
    Indeterminate,
}

impl Outcome {
    /// `allow`, `deny`, `rate_limited`, `approval_required` or `indeterminate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::RateLimited => "rate_limited",
            Self::ApprovalRequired => "approval_required",
            Self::Indeterminate => "indeterminate",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the steps before the limits found for a call: see [`Evaluator::screen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen<'p> {
    /// Decided without the counters: hidden, default deny, a missing required argument or a
    /// matching `deny_if` rule.
    Decided(Verdict<'p>),
    /// An argument step could not be decided (`indeterminate`).
    Unknown {
        /// Index into the policy's listed tools.
        tool: usize,
        /// The step that could not be decided.
        rule: &'p str,
        /// What was missing.
        message: &'p str,
    },
    /// On to the limits of the listed tool at this index, or of an unlisted tool (`None`).
    Limits(Option<usize>),
}

/// The result of evaluating one call. The strings borrow from the [`Policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict<'p> {
    /// The candidate outcome.
    pub outcome: Outcome,
    /// The rule that decided: `(hidden)`, `(default deny)`, `/tools/<tool>/require/<path>`,
    /// `/tools/<tool>/deny_if/<id>`, `/tools/<tool>/limits/<counter>`, `/all_tools/limits/<counter>`,
    /// `/tools/<tool>/approval`; for `indeterminate` the step that could not be decided; empty for allow.
    pub rule: &'p str,
    /// `on_deny` for a deny_if rule, a generated message otherwise (what was missing, for
    /// `indeterminate`); empty for allow.
    pub message: &'p str,
    /// Whether this call charged the counters: an allow, unless its record shows an upstream failure
    /// (status >= 500, quota rollback) or a recorded `error`/`unknown`; an indeterminate call recorded as
    /// allow without upstream failure.
    pub charged: bool,
}

impl Verdict<'static> {
    /// The verdict on a call of a grant that has no policy: `deny`, rule `(no policy)`.
    pub const NO_POLICY: Verdict<'static> = Verdict {
        outcome: Outcome::Deny,
        rule: "(no policy)",
        message: "the grant has no policy",
        charged: false,
    };
}

/// Evaluates calls against one [`Policy`] (or the members of a [`PolicySet`]), keeping the counter state between calls.
///
/// Feed calls in time order. Memory is proportional to the live counter buckets.
#[derive(Debug)]
pub struct Evaluator<'p> {
    /// The policy, or the members of a [`PolicySet`] (which share one counter space).
    members: &'p [Policy],
    counters: Counters,
    /// Per counter of the current call's limit set: what the limit step found.
    probes: Vec<Probe>,
    /// The argument values a tool reads, extracted from JSON text (reused across calls).
    scratch: Vec<Option<Value>>,
    now: i64,
}

impl<'p> Evaluator<'p> {
    /// An evaluator of one policy, with empty counters.
    pub fn new(policy: &'p Policy) -> Self {
        Self::over(std::slice::from_ref(policy))
    }

    /// An evaluator of every member of `set` over one counter space, with empty counters: a counter
    /// named by several members is one counter. Evaluate with [`Evaluator::evaluate_in`].
    pub fn for_set(set: &'p PolicySet) -> Self {
        Self::over(set.members())
    }

    fn over(members: &'p [Policy]) -> Self {
        let most = members
            .iter()
            .flat_map(|p| {
                p.tools
                    .iter()
                    .map(|t| t.limits.counters.len())
                    .chain([p.unlisted.counters.len()])
            })
            .max()
            .unwrap_or(0);
        let counters = match members.first() {
            Some(first) => Counters::new(first),
            None => Counters::empty(),
        };
        Self {
            members,
            counters,
            probes: Vec::with_capacity(most),
            scratch: Vec::new(),
            now: i64::MIN,
        }
    }

    /// The policy being evaluated (the first member of a set).
    ///
    /// # Panics
    /// Never for an evaluator made by [`Evaluator::new`]; for one made from an empty set.
    pub fn policy(&self) -> &'p Policy {
        &self.members[0]
    }

    /// Counter buckets currently held: the live ones, plus fixed-window buckets of the previous window kept
    /// for reuse.
    pub fn live_buckets(&self) -> usize {
        self.counters.len()
    }

    /// Empties every counter, as at the start of a replay range.
    pub fn reset(&mut self) {
        self.counters.clear();
        self.now = i64::MIN;
    }

    /// Evaluates one `tools/call` against the policy (the first member of a set) and updates the
    /// counters. Never fails.
    pub fn evaluate(&mut self, call: &Call<'_>) -> Verdict<'p> {
        self.evaluate_in(0, call)
    }

    /// Evaluates one `tools/call` against member `member` of the set and updates the shared counters.
    /// A member that does not exist is a grant without a policy: [`Verdict::NO_POLICY`].
    pub fn evaluate_in(&mut self, member: usize, call: &Call<'_>) -> Verdict<'p> {
        let Some(p) = self.members.get(member) else {
            return Verdict::NO_POLICY;
        };
        let screen = self.screen_with(p, call);
        self.finish_with(p, call, &screen)
    }

    /// Steps 1 to 4 of evaluating `call` against the policy (the first member of a set): hidden,
    /// listed, `require` and `deny_if`. They read only the call and the policy's rules, never the
    /// counters, and change nothing but a scratch buffer; [`Evaluator::finish`] takes it from there.
    ///
    /// Policies that differ only in their limits (the values [`crate::LimitTarget::apply`] writes)
    /// screen every call alike, so one screen serves the evaluators of all of them: this is how
    /// `tune` evaluates many values of one limit at the cost of one argument check per call.
    pub fn screen(&mut self, call: &Call<'_>) -> Screen<'p> {
        match self.members.first() {
            Some(p) => self.screen_with(p, call),
            None => Screen::Decided(Verdict::NO_POLICY),
        }
    }

    /// Steps 5 to 7 for `call` after `screen` (from this evaluator or from one of a policy that
    /// differs from this one only in its limits): advances the clock, applies the limits and
    /// approval, and charges the counters. `evaluate(call)` is `finish(call, &screen(call))`.
    pub fn finish(&mut self, call: &Call<'_>, screen: &Screen<'p>) -> Verdict<'p> {
        match self.members.first() {
            Some(p) => self.finish_with(p, call, screen),
            None => Verdict::NO_POLICY,
        }
    }

    fn screen_with(&mut self, p: &'p Policy, call: &Call<'_>) -> Screen<'p> {
        let slot = p.names.get(call.tool);
        if p.hide_all || slot.is_some_and(|s| s.hidden) {
            return Screen::Decided(decided(
                Outcome::Deny,
                &p.texts.hidden_rule,
                &p.texts.hidden_message,
            ));
        }
        let Some((index, tool)) = slot
            .and_then(|s| s.tool)
            .and_then(|i| p.tools.get(i as usize).map(|t| (i as usize, t)))
        else {
            return match p.default {
                DefaultAction::Deny => Screen::Decided(decided(
                    Outcome::Deny,
                    &p.texts.default_rule,
                    &p.texts.default_message,
                )),
                DefaultAction::Allow => Screen::Limits(None),
            };
        };

        let keys = call.arg_keys;
        let step = match call.args {
            Some(Args::Value(v)) => arg_steps(
                tool,
                &ArgsKnown {
                    values: Values::Full(v),
                    keys,
                },
            ),
            Some(Args::Json(text)) if tool.reads_args => {
                let values = match extract(text, &tool.arg_tops, &mut self.scratch) {
                    Ok(()) => Values::Extracted(&self.scratch),
                    Err(_) => Values::None,
                };
                arg_steps(tool, &ArgsKnown { values, keys })
            }
            _ => arg_steps(
                tool,
                &ArgsKnown {
                    values: Values::None,
                    keys,
                },
            ),
        };
        match step {
            ArgStep::Pass => Screen::Limits(Some(index)),
            ArgStep::Deny(rule, message) => Screen::Decided(decided(Outcome::Deny, rule, message)),
            ArgStep::Unknown(rule, message) => Screen::Unknown {
                tool: index,
                rule,
                message,
            },
        }
    }

    fn finish_with(&mut self, p: &'p Policy, call: &Call<'_>, screen: &Screen<'p>) -> Verdict<'p> {
        let t = call.ts_micros.max(self.now);
        self.now = t;
        self.counters.advance(t);
        match *screen {
            Screen::Decided(v) => v,
            Screen::Limits(None) => self.limit_step(p, &p.unlisted, None, call, t),
            Screen::Limits(Some(i)) => match p.tools.get(i) {
                Some(tool) => {
                    let approval = tool.approval.then_some(&tool.approval_rule);
                    self.limit_step(p, &tool.limits, approval, call, t)
                }
                None => Verdict::NO_POLICY,
            },
            Screen::Unknown {
                tool,
                rule,
                message,
            } => match p.tools.get(tool) {
                Some(tool) => self.indeterminate(p, tool, rule, message, call, t),
                None => Verdict::NO_POLICY,
            },
        }
    }

    /// The hash of the call's key for each scope in the mask `scopes`, indexed by `Scope as usize`.
    #[inline]
    fn key_hashes(&self, scopes: u8, call: &Call<'_>) -> [u64; 4] {
        let mut hashes = [0; 4];
        for scope in Scope::ALL {
            if scopes & (1 << scope as u8) != 0 {
                hashes[scope as usize] = self.counters.key_hash(scope_key(scope, call));
            }
        }
        hashes
    }

    /// Steps 5 to 7: limits, approval, allow.
    fn limit_step(
        &mut self,
        p: &'p Policy,
        set: &'p LimitSet,
        approval: Option<&'p Arc<str>>,
        call: &Call<'_>,
        t: i64,
    ) -> Verdict<'p> {
        let key_hashes = self.key_hashes(set.scopes, call);
        self.probes.clear();
        // One probe per counter, aligned with `set.counters` (counter ids are valid by construction).
        for &id in set.counters.iter() {
            let probe = match p.counters.get(id as usize) {
                Some(def) => {
                    let key = scope_key(def.scope, call);
                    let hash = Counters::bucket_hash(key_hashes[def.scope as usize], id);
                    let (count, index) = self.counters.probe(def, id, key, hash, t);
                    Probe { hash, count, index }
                }
                None => Probe {
                    hash: 0,
                    count: 0,
                    index: None,
                },
            };
            self.probes.push(probe);
        }
        for limit in set.limits.iter() {
            let count = self.probes.get(limit.slot as usize).map_or(0, |p| p.count);
            if count >= limit.max {
                return decided(Outcome::RateLimited, &limit.rule, &limit.message);
            }
        }
        if let Some(rule) = approval {
            return decided(Outcome::ApprovalRequired, rule, &p.texts.approval_message);
        }
        // Quota rollback (and no quota kept by a call the live gateway failed closed on).
        let charged = !call
            .recorded
            .is_some_and(|r| r.upstream_failed() || r.failed_closed());
        if charged {
            // Existing buckets first (by the index found above), then the new ones: an insertion may
            // move the buckets of its class.
            for (probe, &id) in self.probes.iter().zip(set.counters.iter()) {
                if let (Some(index), Some(def)) = (probe.index, p.counters.get(id as usize)) {
                    self.counters.charge_found(def, index, t);
                }
            }
            for (probe, &id) in self.probes.iter().zip(set.counters.iter()) {
                if let (None, Some(def)) = (probe.index, p.counters.get(id as usize)) {
                    let key = scope_key(def.scope, call);
                    self.counters.charge(def, id, key, probe.hash, t);
                }
            }
        }
        Verdict {
            outcome: Outcome::Allow,
            rule: &p.texts.empty,
            message: &p.texts.empty,
            charged,
        }
    }

    /// An undecidable step: charges every counter of the tool iff the log recorded an allow that the
    /// upstream did not fail.
    fn indeterminate(
        &mut self,
        p: &'p Policy,
        tool: &'p Tool,
        rule: &'p str,
        message: &'p str,
        call: &Call<'_>,
        t: i64,
    ) -> Verdict<'p> {
        let charged = call
            .recorded
            .is_some_and(|r| r.decision == RecordedDecision::Allow && !r.upstream_failed());
        if charged {
            let key_hashes = self.key_hashes(tool.limits.scopes, call);
            for &id in tool.limits.counters.iter() {
                let Some(def) = p.counters.get(id as usize) else {
                    continue;
                };
                let key = scope_key(def.scope, call);
                let hash = Counters::bucket_hash(key_hashes[def.scope as usize], id);
                self.counters.charge(def, id, key, hash, t);
            }
        }
        Verdict {
            outcome: Outcome::Indeterminate,
            rule,
            message,
            charged,
        }
    }
}

/// What the limit step found for one counter of the call.
#[derive(Debug, Clone, Copy)]
struct Probe {
    hash: u64,
    count: u64,
    /// Where the bucket is, if it exists.
    index: Option<usize>,
}

/// The decision of the steps that read arguments (require, deny_if).
enum ArgStep<'p> {
    /// Neither denies: go on to the limits.
    Pass,
    /// `(rule, message)` denies.
    Deny(&'p str, &'p str),
    /// `(rule, message)` cannot be decided: the outcome is indeterminate.
    Unknown(&'p str, &'p str),
}

/// Steps 3 and 4: `require` in order, then `deny_if` in order; the first that decides, or is
/// undecidable, ends them.
fn arg_steps<'p>(tool: &'p Tool, known: &ArgsKnown<'_>) -> ArgStep<'p> {
    for req in tool.require.iter() {
        match known.lookup(&req.path) {
            Found::Missing => return ArgStep::Deny(&req.rule, &req.missing_message),
            Found::Value(_) | Found::Present => {}
            Found::Unknown => return ArgStep::Unknown(&req.rule, &req.unknown_message),
        }
    }
    for rule in tool.deny_if.iter() {
        let mut unknown: Option<&Condition> = None;
        let mut holds = true;
        for c in rule.conditions.iter() {
            match c.eval(known) {
                Tri::True => {}
                Tri::False => {
                    holds = false;
                    break;
                }
                Tri::Unknown => unknown = unknown.or(Some(c)),
            }
        }
        if holds {
            return match unknown {
                Some(c) => ArgStep::Unknown(&rule.rule, &c.unknown_message),
                None => ArgStep::Deny(&rule.rule, &rule.message),
            };
        }
    }
    ArgStep::Pass
}

fn decided<'p>(outcome: Outcome, rule: &'p str, message: &'p str) -> Verdict<'p> {
    Verdict {
        outcome,
        rule,
        message,
        charged: false,
    }
}

/// The bucket key of `scope` for `call`: `grant` uses `identity_id`, else `identity`; `session` uses
/// `session`, else the grant key; `server` uses `server`; `global` is one key. Unknown: a shared key.
#[inline]
fn scope_key<'c>(scope: Scope, call: &Call<'c>) -> Key<'c> {
    match scope {
        Scope::Grant => grant_key(call),
        Scope::Session => match call.session {
            Some(s) => Key {
                tag: Tag::Session,
                text: s,
            },
            None => grant_key(call),
        },
        Scope::Server => match call.server {
            Some(s) => Key {
                tag: Tag::Server,
                text: s,
            },
            None => Key::UNKNOWN,
        },
        Scope::Global => Key::GLOBAL,
    }
}

#[inline]
fn grant_key<'c>(call: &Call<'c>) -> Key<'c> {
    match (call.identity_id, call.identity) {
        (Some(id), _) => Key {
            tag: Tag::IdentityId,
            text: id,
        },
        (None, Some(name)) => Key {
            tag: Tag::Identity,
            text: name,
        },
        (None, None) => Key::UNKNOWN,
    }
}

#[cfg(test)]
mod tests;
