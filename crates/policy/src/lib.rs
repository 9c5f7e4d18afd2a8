//! verdict-policy: the PolicyLayer-style `policy.json` v1 model, its validation, and a pure evaluator that
//! replays recorded `tools/call` events against it. No I/O (except [`Policy::from_path`]), no printing, no clock.
//!
//! # Overview
//!
//! - [`Policy`] is a validated, precompiled policy. [`Policy::from_json_str`] rejects anything the spec
//!   (README "Replay semantics and exit codes") does not allow and reports *every* problem at once, each with the JSON Pointer of
//!   the offending value ([`ValidationError`]); a JSON syntax error gives line and column ([`Error::Syntax`]).
//!   Loading compiles regexes, builds rule pointers and messages, orders each tool's limits and numbers the
//!   counters, so evaluation allocates nothing.
//! - [`Evaluator`] holds a `&Policy` and the counter buckets. [`Evaluator::evaluate`] takes one [`Call`] (a
//!   borrowed view of a recorded row, fed in time order) and returns a [`Verdict`]: the [`Outcome`], the rule
//!   pointer that decided, its message, and whether the call charged the counters. Arguments come as a
//!   parsed `serde_json::Value` or as the log's JSON text ([`Args`]); from text, only the top-level keys the
//!   tool's rules read are built into values, and only for tools that read arguments.
//! - [`PolicySet`] holds several policies (one per grant) over one counter space: a counter name is one
//!   counter across them; [`Evaluator::for_set`] and [`Evaluator::evaluate_in`] evaluate a call with its
//!   grant's member, and [`Verdict::NO_POLICY`] is the verdict on a grant that has none.
//! - [`diff`] compares two policies tool by tool ([`PolicyDiff`]); [`LimitTarget`] finds one limit by
//!   pointer and makes copies of the policy with another `max` or `window` (for limit tuning).
//! - Counter buckets are kept per `(window, sliding)` class and expire as time passes: memory follows the
//!   live buckets, not the length of the replay.
//!
//! # Semantics the spec leaves open
//!
//! - A limit bucket whose scope key is entirely unknown (no identity for `grant`, no session nor identity
//!   for `session`, no server for `server`) is one shared "unknown" bucket per counter.
//! - Scope keys taken from different fields never share a bucket (an `identity_id` "a" and an `identity`
//!   "a", or a session "a" and the identity "a" a session-less call falls back to).
//! - `identity` scope is the same as `grant`, so two limits sharing a counter with those two scopes agree.
//! - Counters are charged only when the final outcome is `allow`: a tool with `approval: true` never
//!   charges (except an indeterminate call recorded as allow).
//! - An allowed call whose recorded decision is `error` or `unknown` charges nothing, like a quota
//!   rollback: the live gateway failed closed, so it forwarded nothing and kept no quota.
//! - A present-but-null argument is missing, for `require` and for every condition (so `eq null` never holds).
//!   With only `arg_keys`, a listed key counts as present, and a nested path under an unlisted key is missing.
//! - A path segment never indexes into an array. `exists` without `value` means `"value": true`.
//! - Rule pointers use the raw tool and counter names (unescaped); validation paths are RFC 6901 pointers.
//! - Duplicate object keys and duplicate tools are validation errors; `id` and `counter` must not be empty.
//! - `max` accepts a whole-valued float such as `5.0`.
//! - Calls must come in non-decreasing time; an earlier timestamp is counted at the latest time seen.
//! - Argument text that is not valid JSON counts as not logged (only `arg_keys`, if any, is used).
//! - In `deny_if`, a rule with a determinately false condition does not match even if another of its
//!   conditions is undecidable; an undecidable rule is reported by its own pointer, with the message of its
//!   first undecidable condition.
//!
//! # Example
//!
//! ```
//! use verdict_policy::{Call, Evaluator, Outcome, Policy};
//!
//! let policy = Policy::from_json_str(r#"{
//!   "version": "1",
//!   "default": "deny",
//!   "all_tools": {"limits": [{"counter": "per-minute", "window": "minute", "max": 1}]},
//!   "tools": {
//!     "create_charge": {"deny_if": [{"conditions": [{"path": "args.amount", "op": "gt", "value": 10000}],
//!                                    "on_deny": "Charges over 10000 need finance sign-off."}]}
//!   }
//! }"#)?;
//! let mut evaluator = Evaluator::new(&policy);
//!
//! let big = serde_json::json!({"amount": 25000});
//! let call = Call { identity: Some("alice"), args: Some((&big).into()), ..Call::new(0, "create_charge") };
//! let verdict = evaluator.evaluate(&call);
//! assert_eq!(verdict.outcome, Outcome::Deny);
//! assert_eq!(verdict.rule, "/tools/create_charge/deny_if/args.amount-gt");
//! assert_eq!(verdict.message, "Charges over 10000 need finance sign-off.");
//!
//! let small = serde_json::json!({"amount": 5});
//! let call = Call { identity: Some("alice"), args: Some((&small).into()), ..Call::new(1, "create_charge") };
//! assert_eq!(evaluator.evaluate(&call).outcome, Outcome::Allow);
//! assert_eq!(evaluator.evaluate(&call).rule, "/all_tools/limits/per-minute");
//! # Ok::<(), verdict_policy::Error>(())
//! ```

#![deny(missing_docs)]

mod cond;
mod counters;
mod diff;
mod edit;
mod error;
mod eval;
mod extract;
mod json;
mod policy;
mod set;
mod validate;

pub use diff::{diff, Access, Change, ChangeKind, PolicyDiff, ToolDiff};
pub use edit::{LimitField, LimitTarget};
pub use error::{Error, Result, ValidationError};
pub use eval::{Args, Call, Evaluator, Outcome, Recorded, RecordedDecision, Screen, Verdict};
pub use policy::{DefaultAction, Policy};
pub use set::PolicySet;
