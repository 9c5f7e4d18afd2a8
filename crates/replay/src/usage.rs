//! Historical use per tool, and the policy diff annotated with it: how many recorded calls each
//! change touches, which access it grants to tools history never exercised, and the diff's gates.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use rustc_hash::FxHashMap;
use serde::Serialize;
use verdict_policy::{ChangeKind, PolicyDiff};

use verdict_table::Location;

use crate::calls;
use crate::error::{Error, Result};

/// Recorded `tools/call` rows per tool in a time range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Every call.
    pub calls: u64,
    /// Calls per tool.
    pub per_tool: BTreeMap<String, u64>,
}

/// Counts the calls per tool in `[since, until)`, in one pass.
///
/// # Errors
/// When the warehouse cannot be read.
pub fn usage(warehouse: &Location, since: Option<i64>, until: Option<i64>) -> Result<Usage> {
    let mut per: FxHashMap<Box<str>, u64> = FxHashMap::default();
    let mut total = 0;
    calls::for_each_row(&calls::snapshot(warehouse, None)?, since, until, |row| {
        if let Some(call) = &row.call {
            total += 1;
            match per.get_mut(call.tool) {
                Some(n) => *n += 1,
                None => {
                    per.insert(Box::from(call.tool), 1);
                }
            }
        }
        Ok(())
    })?;
    Ok(Usage {
        calls: total,
        per_tool: per.into_iter().map(|(k, v)| (k.into(), v)).collect(),
    })
}

/// A gate of `policy diff`: exit 1 when it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffGate {
    /// Some tool's access rises (denied to approval or allowed, approval to allowed, a rule removed).
    NewAccess,
    /// A destructive tool becomes allowed without approval where it was not.
    DestructiveAccess,
}

impl FromStr for DiffGate {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "new-access" => Ok(DiffGate::NewAccess),
            "destructive-access" => Ok(DiffGate::DestructiveAccess),
            other => Err(Error::Gate {
                gate: other.to_string(),
                message: "expected new-access or destructive-access".into(),
            }),
        }
    }
}

impl fmt::Display for DiffGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DiffGate::NewAccess => "new-access",
            DiffGate::DestructiveAccess => "destructive-access",
        })
    }
}

/// One change, with its history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffChange {
    /// What kind of change.
    pub kind: &'static str,
    /// The rule pointer.
    pub rule: String,
    /// Before and after.
    pub detail: String,
    /// It lets calls through that did not get through before.
    pub new_access: bool,
    /// A destructive tool (by the catalogue) becomes allowed without approval.
    pub destructive_access: bool,
    /// Recorded calls the changed rule applies to (with a warehouse).
    pub calls: Option<u64>,
    /// It grants access to tools with no recorded call: replay cannot show its effect.
    pub unexercised: bool,
}

/// One tool of the diff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffTool {
    /// The tool, or `*` (unlisted tools, `default`, `all_tools`).
    pub tool: String,
    /// Access under the old policy.
    pub before: &'static str,
    /// Access under the new policy.
    pub after: &'static str,
    /// Recorded calls of the tool (`*`: of tools neither policy names), with a warehouse.
    pub calls: Option<u64>,
    /// Its changes.
    pub changes: Vec<DiffChange>,
}

/// Whether a diff gate held.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffGateResult {
    /// The gate.
    pub gate: String,
    /// Whether it holds (exit 1).
    pub tripped: bool,
    /// The changes behind it.
    pub detail: String,
}

/// The diff as `policy diff` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffReport {
    /// Every tool either policy names, `*` first.
    pub tools: Vec<DiffTool>,
    /// The number of changes.
    pub changes: usize,
    /// Recorded calls in the range, with a warehouse.
    pub history_calls: Option<u64>,
    /// The gates asked for.
    pub gates: Vec<DiffGateResult>,
}

impl DiffReport {
    /// Builds the report: `usage` adds the historical counts, `is_destructive` classifies tools.
    pub fn new(
        diff: &PolicyDiff,
        usage: Option<&Usage>,
        is_destructive: &dyn Fn(&str) -> bool,
        gates: &[DiffGate],
    ) -> Self {
        let named: BTreeSet<&str> = diff.tools.iter().map(|t| t.tool.as_str()).collect();
        let unnamed = usage.map(|u| {
            u.per_tool
                .iter()
                .filter(|(t, _)| !named.contains(t.as_str()))
                .map(|(_, n)| n)
                .sum::<u64>()
        });
        let tools: Vec<DiffTool> = diff
            .tools
            .iter()
            .map(|t| {
                let star = t.tool == "*";
                let tool_calls = if star {
                    unnamed
                } else {
                    usage.map(|u| u.per_tool.get(&t.tool).copied().unwrap_or(0))
                };
                let destructive =
                    !star && is_destructive(&t.tool) && !t.before.allows() && t.after.allows();
                let changes = t
                    .changes
                    .iter()
                    .map(|c| {
                        // A limit of `all_tools` applies to every call; any other change of `*`
                        // to the tools neither policy names.
                        let calls = if star && c.kind != ChangeKind::Access {
                            usage.map(|u| u.calls)
                        } else {
                            tool_calls
                        };
                        DiffChange {
                            kind: c.kind.as_str(),
                            rule: c.rule.clone(),
                            detail: c.detail.clone(),
                            new_access: c.new_access,
                            destructive_access: destructive && c.kind == ChangeKind::Access,
                            calls,
                            unexercised: c.new_access && calls == Some(0),
                        }
                    })
                    .collect();
                DiffTool {
                    tool: t.tool.clone(),
                    before: t.before.as_str(),
                    after: t.after.as_str(),
                    calls: tool_calls,
                    changes,
                }
            })
            .collect();
        let mut report = DiffReport {
            changes: diff.change_count(),
            history_calls: usage.map(|u| u.calls),
            tools,
            gates: Vec::new(),
        };
        report.gates = gates.iter().map(|g| report.check(*g)).collect();
        report
    }

    fn check(&self, gate: DiffGate) -> DiffGateResult {
        let hits: Vec<String> = self
            .tools
            .iter()
            .flat_map(|t| t.changes.iter().map(move |c| (t, c)))
            .filter(|(_, c)| match gate {
                DiffGate::NewAccess => c.new_access,
                DiffGate::DestructiveAccess => c.destructive_access,
            })
            .map(|(t, c)| format!("{} {}", t.tool, c.rule))
            .collect();
        let what = match gate {
            DiffGate::NewAccess => "changes grant new access",
            DiffGate::DestructiveAccess => "destructive tools newly allowed",
        };
        DiffGateResult {
            gate: gate.to_string(),
            tripped: !hits.is_empty(),
            detail: if hits.is_empty() {
                format!("0 {what}")
            } else {
                format!("{} {what}: {}", hits.len(), hits.join(", "))
            },
        }
    }

    /// Whether any gate held.
    pub fn gate_tripped(&self) -> bool {
        self.gates.iter().any(|g| g.tripped)
    }
}
