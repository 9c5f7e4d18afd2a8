//! The semantic difference between two policies, tool by tool: what each tool's access becomes, and
//! which `require`, `deny_if` and limit rules were added, removed or changed. Works on validated
//! policies, so every shape it reads is known to be well formed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use crate::policy::Policy;

/// What a policy lets a tool do, before any argument or limit is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// In `hide` (or `hide` holds `"*"`): denied `(hidden)`.
    Hidden,
    /// Not listed under `default: deny`: denied `(default deny)`.
    DefaultDenied,
    /// Listed, but a `deny_if` rule without conditions denies every call.
    Denied,
    /// Listed with `approval: true`: every call that passes waits for a human.
    Approval,
    /// Listed with `require` or `deny_if` rules: allowed when the arguments pass them.
    AllowedWithConditions,
    /// Listed without argument rules, or unlisted under `default: allow`.
    Allowed,
}

impl Access {
    /// `hidden`, `default-denied`, `denied`, `approval`, `allowed-with-conditions`, `allowed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Hidden => "hidden",
            Access::DefaultDenied => "default-denied",
            Access::Denied => "denied",
            Access::Approval => "approval",
            Access::AllowedWithConditions => "allowed-with-conditions",
            Access::Allowed => "allowed",
        }
    }

    /// 0: no call gets through; 1: through a human approval; 2: through argument rules; 3: always.
    pub fn rank(self) -> u8 {
        match self {
            Access::Hidden | Access::DefaultDenied | Access::Denied => 0,
            Access::Approval => 1,
            Access::AllowedWithConditions => 2,
            Access::Allowed => 3,
        }
    }

    /// Whether a call can be allowed without a human (`allowed` or `allowed-with-conditions`).
    pub fn allows(self) -> bool {
        self.rank() >= 2
    }
}

/// What kind of change a [`Change`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// The tool's access changed.
    Access,
    /// A `require` path was added.
    RequireAdded,
    /// A `require` path was removed.
    RequireRemoved,
    /// A `deny_if` rule was added.
    DenyIfAdded,
    /// A `deny_if` rule was removed.
    DenyIfRemoved,
    /// A `deny_if` rule (same id) has other conditions or another message.
    DenyIfChanged,
    /// A limit was added.
    LimitAdded,
    /// A limit was removed.
    LimitRemoved,
    /// A limit allows fewer calls (lower max, longer window, sliding, broader scope).
    LimitTightened,
    /// A limit allows more calls.
    LimitLoosened,
    /// A limit changed in ways that tighten and loosen at once (say a higher max per a longer window
    /// at the same rate, or a narrower scope with a lower max).
    LimitChanged,
    /// The tools and places that share a limit's counter changed.
    CounterSharing,
}

impl ChangeKind {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Access => "access",
            ChangeKind::RequireAdded => "require-added",
            ChangeKind::RequireRemoved => "require-removed",
            ChangeKind::DenyIfAdded => "deny_if-added",
            ChangeKind::DenyIfRemoved => "deny_if-removed",
            ChangeKind::DenyIfChanged => "deny_if-changed",
            ChangeKind::LimitAdded => "limit-added",
            ChangeKind::LimitRemoved => "limit-removed",
            ChangeKind::LimitTightened => "limit-tightened",
            ChangeKind::LimitLoosened => "limit-loosened",
            ChangeKind::LimitChanged => "limit-changed",
            ChangeKind::CounterSharing => "counter-sharing",
        }
    }
}

/// One change of one tool.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// What changed.
    pub kind: ChangeKind,
    /// The rule pointer in the new policy (or the old one, for a removal): `/tools/<tool>/require/<path>` ...
    pub rule: String,
    /// Before and after, in words.
    pub detail: String,
    /// The change lets calls through that did not get through before (access rank rises).
    pub new_access: bool,
}

/// Every change of one tool (`*`: unlisted tools, `default`, `hide: ["*"]` and `all_tools`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDiff {
    /// The tool name, or `*`.
    pub tool: String,
    /// Access under the old policy.
    pub before: Access,
    /// Access under the new policy.
    pub after: Access,
    /// The changes, access first; empty when the tool is treated alike.
    pub changes: Vec<Change>,
}

/// The semantic difference between two policies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyDiff {
    /// `*` first, then every tool either policy names (under `tools` or `hide`), by name.
    pub tools: Vec<ToolDiff>,
}

impl PolicyDiff {
    /// The number of changes.
    pub fn change_count(&self) -> usize {
        self.tools.iter().map(|t| t.changes.len()).sum()
    }

    /// The rule pointer of the first change of `kind` to `tool`.
    pub fn rule_of(&self, tool: &str, kind: ChangeKind) -> Option<&str> {
        self.tools
            .iter()
            .filter(|t| t.tool == tool)
            .flat_map(|t| &t.changes)
            .find(|c| c.kind == kind)
            .map(|c| c.rule.as_str())
    }
}

/// Compares `old` with `new`, tool by tool.
pub fn diff(old: &Policy, new: &Policy) -> PolicyDiff {
    let (a, b) = (Doc::of(old), Doc::of(new));
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for d in [&a, &b] {
        names.extend(d.tools.keys().map(String::as_str));
        names.extend(d.hide.iter().map(String::as_str).filter(|h| *h != "*"));
    }
    let mut tools = vec![tool_diff("*", &a, &b)];
    tools.extend(names.into_iter().map(|n| tool_diff(n, &a, &b)));
    PolicyDiff { tools }
}

/// The parts of a validated policy the diff reads.
struct Doc {
    default_allow: bool,
    hide: BTreeSet<String>,
    tools: BTreeMap<String, Value>,
    all_limits: Vec<Value>,
    /// Counter name -> the places (`*` for all_tools, else tool names) with a limit on it.
    counter_places: BTreeMap<String, BTreeSet<String>>,
}

impl Doc {
    fn of(p: &Policy) -> Self {
        // A loaded policy's source is valid JSON of the validated shape.
        let v: Value = serde_json::from_str(p.source()).unwrap_or(Value::Null);
        let hide = v["hide"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let tools: BTreeMap<String, Value> = v["tools"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let all_limits = v["all_tools"]["limits"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut counter_places: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for l in &all_limits {
            counter_places
                .entry(counter(l))
                .or_default()
                .insert("*".into());
        }
        for (name, rule) in &tools {
            for l in rule["limits"].as_array().into_iter().flatten() {
                counter_places
                    .entry(counter(l))
                    .or_default()
                    .insert(name.clone());
            }
        }
        Self {
            default_allow: v["default"] == "allow",
            hide,
            tools,
            all_limits,
            counter_places,
        }
    }

    fn access(&self, tool: &str) -> Access {
        if self.hide.contains("*") || self.hide.contains(tool) {
            return Access::Hidden;
        }
        let Some(rule) = self.tools.get(tool) else {
            return if self.default_allow {
                Access::Allowed
            } else {
                Access::DefaultDenied
            };
        };
        let deny_if = rule["deny_if"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let require = rule["require"].as_array().map_or(0, Vec::len);
        if deny_if
            .iter()
            .any(|d| d["conditions"].as_array().is_none_or(Vec::is_empty))
        {
            Access::Denied
        } else if rule["approval"] == true {
            Access::Approval
        } else if require > 0 || !deny_if.is_empty() {
            Access::AllowedWithConditions
        } else {
            Access::Allowed
        }
    }

    fn star_access(&self) -> Access {
        if self.hide.contains("*") {
            Access::Hidden
        } else if self.default_allow {
            Access::Allowed
        } else {
            Access::DefaultDenied
        }
    }

    /// The tool's own limits (`*`: `all_tools.limits`), keyed by counter (a repeated counter gets `#2` ...).
    fn limits(&self, tool: &str) -> BTreeMap<String, Value> {
        let list: &[Value] = if tool == "*" {
            &self.all_limits
        } else {
            self.tools
                .get(tool)
                .and_then(|r| r["limits"].as_array())
                .map_or(&[], Vec::as_slice)
        };
        keyed(list, |l, _| counter(l))
    }

    fn sharing(&self, counter: &str, place: &str) -> BTreeSet<String> {
        let mut s = self
            .counter_places
            .get(counter)
            .cloned()
            .unwrap_or_default();
        s.remove(place);
        s
    }
}

fn counter(l: &Value) -> String {
    l["counter"].as_str().unwrap_or_default().to_string()
}

/// Items keyed by `key`, repeated keys numbered `#2`, `#3` ...
fn keyed(list: &[Value], key: impl Fn(&Value, usize) -> String) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (i, item) in list.iter().enumerate() {
        let base = key(item, i);
        let mut k = base.clone();
        let mut n = 1;
        while out.contains_key(&k) {
            n += 1;
            k = format!("{base}#{n}");
        }
        out.insert(k, item.clone());
    }
    out
}

fn tool_diff(tool: &str, a: &Doc, b: &Doc) -> ToolDiff {
    let (before, after) = if tool == "*" {
        (a.star_access(), b.star_access())
    } else {
        (a.access(tool), b.access(tool))
    };
    let mut changes = Vec::new();
    if before != after {
        changes.push(Change {
            kind: ChangeKind::Access,
            rule: if tool == "*" {
                "/default".into()
            } else {
                format!("/tools/{tool}")
            },
            detail: format!("{} -> {}", before.as_str(), after.as_str()),
            new_access: after.rank() > before.rank(),
        });
    }
    if tool != "*" {
        let empty = Value::Null;
        let (ra, rb) = (
            a.tools.get(tool).unwrap_or(&empty),
            b.tools.get(tool).unwrap_or(&empty),
        );
        require_changes(tool, ra, rb, &mut changes);
        deny_if_changes(tool, ra, rb, &mut changes);
    }
    limit_changes(tool, a, b, &mut changes);
    ToolDiff {
        tool: tool.to_string(),
        before,
        after,
        changes,
    }
}

fn require_changes(tool: &str, a: &Value, b: &Value, out: &mut Vec<Change>) {
    let set = |v: &Value| -> BTreeSet<String> {
        v["require"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|p| p.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (sa, sb) = (set(a), set(b));
    for (kind, paths, word) in [
        (
            ChangeKind::RequireRemoved,
            sa.difference(&sb),
            "no longer required",
        ),
        (ChangeKind::RequireAdded, sb.difference(&sa), "now required"),
    ] {
        for p in paths {
            out.push(Change {
                kind,
                rule: format!("/tools/{tool}/require/{p}"),
                detail: format!("{p} {word}"),
                new_access: kind == ChangeKind::RequireRemoved,
            });
        }
    }
}

/// The id a `deny_if` rule is reported by: its `id`, else `<path>-<op>` of its first condition, else
/// its index (the evaluator's rule pointer).
fn deny_if_id(rule: &Value, index: usize) -> String {
    if let Some(id) = rule["id"].as_str() {
        return id.to_string();
    }
    match rule["conditions"].as_array().and_then(|c| c.first()) {
        Some(c) => format!(
            "{}-{}",
            c["path"].as_str().unwrap_or_default(),
            c["op"].as_str().unwrap_or_default()
        ),
        None => index.to_string(),
    }
}

fn deny_if_changes(tool: &str, a: &Value, b: &Value, out: &mut Vec<Change>) {
    let rules = |v: &Value| {
        keyed(
            v["deny_if"].as_array().map_or(&[], Vec::as_slice),
            deny_if_id,
        )
    };
    let (ra, rb) = (rules(a), rules(b));
    let text = |r: &Value| {
        let conds: Vec<String> = r["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                format!(
                    "{} {} {}",
                    c["path"].as_str().unwrap_or_default(),
                    c["op"].as_str().unwrap_or_default(),
                    c.get("value").map_or(String::new(), Value::to_string)
                )
                .trim_end()
                .to_string()
            })
            .collect();
        if conds.is_empty() {
            "always".to_string()
        } else {
            conds.join(" and ")
        }
    };
    for (id, r) in &ra {
        match rb.get(id) {
            None => out.push(Change {
                kind: ChangeKind::DenyIfRemoved,
                rule: format!("/tools/{tool}/deny_if/{id}"),
                detail: format!("no longer denies when {}", text(r)),
                new_access: true,
            }),
            Some(n) if n != r => {
                let detail = if text(n) == text(r) {
                    format!("message {} -> {}", r["on_deny"], n["on_deny"])
                } else {
                    format!("denies when {} (was: {})", text(n), text(r))
                };
                out.push(Change {
                    kind: ChangeKind::DenyIfChanged,
                    rule: format!("/tools/{tool}/deny_if/{id}"),
                    detail,
                    new_access: false,
                });
            }
            Some(_) => {}
        }
    }
    for (id, r) in &rb {
        if !ra.contains_key(id) {
            out.push(Change {
                kind: ChangeKind::DenyIfAdded,
                rule: format!("/tools/{tool}/deny_if/{id}"),
                detail: format!("denies when {}", text(r)),
                new_access: false,
            });
        }
    }
}

/// A limit's fields, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
struct LimitShape {
    max: u64,
    window: String,
    secs: u64,
    scope: String,
    sliding: bool,
}

impl LimitShape {
    fn of(l: &Value) -> Self {
        let window = l["window"].as_str().unwrap_or("minute").to_string();
        let secs = match window.as_str() {
            "second" => 1,
            "minute" => 60,
            "hour" => 3_600,
            _ => 86_400,
        };
        let scope = match l["scope"].as_str().unwrap_or("grant") {
            "identity" => "grant",
            s => s,
        }
        .to_string();
        Self {
            max: l["max"]
                .as_u64()
                .or_else(|| l["max"].as_f64().map(|f| f as u64))
                .unwrap_or(0),
            window,
            secs,
            scope,
            sliding: l["sliding"] == true,
        }
    }

    fn text(&self) -> String {
        let sliding = if self.sliding { "sliding " } else { "" };
        format!(
            "{} per {sliding}{} per {}",
            self.max, self.window, self.scope
        )
    }

    /// How broad a bucket of the scope is: more callers share one, so the limit is tighter.
    fn scope_rank(&self) -> u8 {
        match self.scope.as_str() {
            "session" => 0,
            "grant" => 1,
            "server" => 2,
            _ => 3,
        }
    }
}

fn limit_changes(tool: &str, a: &Doc, b: &Doc, out: &mut Vec<Change>) {
    let (la, lb) = (a.limits(tool), b.limits(tool));
    let rule = |key: &str| {
        let c = key.split('#').next().unwrap_or(key);
        if tool == "*" {
            format!("/all_tools/limits/{c}")
        } else {
            format!("/tools/{tool}/limits/{c}")
        }
    };
    for (key, old) in &la {
        let Some(new) = lb.get(key) else {
            out.push(Change {
                kind: ChangeKind::LimitRemoved,
                rule: rule(key),
                detail: format!("{key}: {} removed", LimitShape::of(old).text()),
                new_access: false,
            });
            continue;
        };
        let (o, n) = (LimitShape::of(old), LimitShape::of(new));
        if o != n {
            // Tighter: a lower rate (max per second of window), sliding, or a broader scope.
            let mut tighter = 0;
            let mut looser = 0;
            let rate = (u128::from(n.max) * u128::from(o.secs))
                .cmp(&(u128::from(o.max) * u128::from(n.secs)));
            match rate {
                std::cmp::Ordering::Less => tighter += 1,
                std::cmp::Ordering::Greater => looser += 1,
                std::cmp::Ordering::Equal if o.max != n.max => {
                    // Same rate over a longer window allows longer bursts.
                    if n.max > o.max {
                        looser += 1;
                    } else {
                        tighter += 1;
                    }
                }
                std::cmp::Ordering::Equal => {}
            }
            if n.sliding != o.sliding {
                if n.sliding {
                    tighter += 1;
                } else {
                    looser += 1;
                }
            }
            match n.scope_rank().cmp(&o.scope_rank()) {
                std::cmp::Ordering::Greater => tighter += 1,
                std::cmp::Ordering::Less => looser += 1,
                std::cmp::Ordering::Equal => {}
            }
            let kind = match (tighter > 0, looser > 0) {
                (true, false) => ChangeKind::LimitTightened,
                (false, true) => ChangeKind::LimitLoosened,
                _ => ChangeKind::LimitChanged,
            };
            out.push(Change {
                kind,
                rule: rule(key),
                detail: format!("{key}: {} -> {}", o.text(), n.text()),
                new_access: false,
            });
        }
        let c = counter(new);
        let place = if tool == "*" { "*" } else { tool };
        let (sa, sb) = (a.sharing(&c, place), b.sharing(&c, place));
        if sa != sb {
            let list = |s: &BTreeSet<String>| {
                if s.is_empty() {
                    "no other tool".to_string()
                } else {
                    s.iter().cloned().collect::<Vec<_>>().join(", ")
                }
            };
            out.push(Change {
                kind: ChangeKind::CounterSharing,
                rule: rule(key),
                detail: format!("counter {c} shared with {} (was: {})", list(&sb), list(&sa)),
                new_access: false,
            });
        }
    }
    for (key, new) in &lb {
        if !la.contains_key(key) {
            let c = counter(new);
            let place = if tool == "*" { "*" } else { tool };
            let shared = b.sharing(&c, place);
            let with = if shared.is_empty() {
                String::new()
            } else {
                format!(
                    ", counter shared with {}",
                    shared.into_iter().collect::<Vec<_>>().join(", ")
                )
            };
            out.push(Change {
                kind: ChangeKind::LimitAdded,
                rule: rule(key),
                detail: format!("{key}: {}{with}", LimitShape::of(new).text()),
                new_access: false,
            });
        }
    }
}

#[cfg(test)]
mod tests;
