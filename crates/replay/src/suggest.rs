//! Least-privilege policies drafted from what identities actually did: `default: deny`, the tools
//! an identity was allowed listed, destructive ones behind `approval: true`, a rate limit per tool at
//! the observed peak times a headroom, and `require` for the argument keys present in every call.
//! Every line of a draft is explained by a [`ToolLine`]; a holdout period replays the draft on the
//! calls it was not drafted from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rustc_hash::FxHashMap;
use serde::de::IgnoredAny;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use verdict_policy::{Policy, RecordedDecision};
use verdict_schema::time::format_micros;

use verdict_table::Location;

use crate::calls;
use crate::error::{Error, Result};
use crate::grants::Policies;
use crate::replay::{replay, ReplayOptions};
use crate::transition::Transition;

/// What to draft from.
#[derive(Debug, Clone)]
pub struct SuggestOptions {
    /// The warehouse.
    pub warehouse: Location,
    /// Start of the period (inclusive), UTC µs; `None`: the first event.
    pub since: Option<i64>,
    /// End of the period (exclusive), UTC µs; `None`: after the last event.
    pub until: Option<i64>,
    /// Draft for these identities (label or id); empty: every identity.
    pub identities: Vec<String>,
    /// Hold the period's last part of this length (µs) out: draft from the rest, replay on it.
    pub holdout: Option<i64>,
    /// Limits are the observed peak times this, rounded up.
    pub headroom: f64,
    /// List destructive tools without `approval: true`.
    pub allow_destructive: bool,
}

impl Default for SuggestOptions {
    fn default() -> Self {
        Self {
            warehouse: Location::default(),
            since: None,
            until: None,
            identities: Vec::new(),
            holdout: None,
            headroom: 2.0,
            allow_destructive: false,
        }
    }
}

/// The windows a limit can have, shortest first, with their lengths in µs.
const WINDOWS: [(&str, i64); 4] = [
    ("second", 1_000_000),
    ("minute", 60_000_000),
    ("hour", 3_600_000_000),
    ("day", 86_400_000_000),
];

/// A limit's window is the shortest of minute, hour and day whose peak reaches this many calls (a
/// quota over fewer calls is noise); below it everywhere, the day.
pub const WINDOW_MIN_PEAK: u64 = 5;

/// The most calls an identity made to a tool in one UTC-aligned window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowPeak {
    /// `second`, `minute`, `hour` or `day`.
    pub window: &'static str,
    /// The peak.
    pub peak: u64,
    /// When that window started.
    pub at: String,
}

/// One tool an identity called: what the draft does with it, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolLine {
    /// The tool.
    pub tool: String,
    /// Calls in the drafting period.
    pub calls: u64,
    /// Calls per recorded decision.
    pub decisions: BTreeMap<&'static str, u64>,
    /// Whether the draft lists it.
    pub listed: bool,
    /// Whether the catalogue classifies it destructive.
    pub destructive: bool,
    /// Whether the draft puts it behind `approval: true`.
    pub approval: bool,
    /// Peaks of the calls a listed tool would be charged for (not failed upstream, not `error`).
    pub peaks: Vec<WindowPeak>,
    /// The limit drafted: `(counter, window, max)`.
    pub limit: Option<(String, &'static str, u64)>,
    /// `require` paths drafted.
    pub require: Vec<String>,
    /// Why the tool is in or out, and why its limit and requirements are what they are.
    pub why: String,
}

/// The holdout replay: what the draft would have broken on calls it was not drafted from.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Holdout {
    /// Start of the holdout (inclusive).
    pub from: String,
    /// End of the holdout (exclusive).
    pub until: String,
    /// The identity's calls replayed.
    pub tool_calls: u64,
    /// Per tool: `allow->deny`, `allow->rate_limited` and `allow->approval_required` calls.
    pub broken: Vec<(String, BTreeMap<String, u64>)>,
    /// Those three transitions, summed.
    pub total_broken: u64,
}

/// A drafted policy and its explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// The identity (its label, else its id).
    pub identity: String,
    /// Its id (PolicyLayer grant id), when the log holds one.
    pub identity_id: Option<String>,
    /// The drafting period, `[from, until)`.
    pub drafted_from: Option<String>,
    /// End of the drafting period (exclusive).
    pub drafted_until: Option<String>,
    /// The identity's calls in it.
    pub tool_calls: u64,
    /// The policy.json (v1), valid by `policy check`.
    pub policy: Value,
    /// One line per tool the identity called, by name.
    pub tools: Vec<ToolLine>,
    /// The holdout replay, when asked for.
    pub holdout: Option<Holdout>,
}

/// Per-window running count and peak of one (identity, tool), in time order.
#[derive(Debug, Clone, Copy, Default)]
struct Peak {
    window: i64,
    count: u64,
    peak: u64,
    peak_window: i64,
}

/// What one identity did with one tool.
#[derive(Debug, Default)]
struct ToolUse {
    calls: u64,
    decisions: [u64; 6],
    peaks: [Peak; 4],
    /// Argument keys present in every call so far; `None` before the first call.
    keys: Option<Vec<Box<str>>>,
    /// Whether every call logged its argument keys.
    all_keys_logged: bool,
}

impl ToolUse {
    fn add(
        &mut self,
        ts: i64,
        decision: RecordedDecision,
        chargeable: bool,
        keys: Option<&[&str]>,
        args: Option<&str>,
    ) {
        self.calls += 1;
        self.decisions[decision as usize] += 1;
        if chargeable {
            for (p, (_, len)) in self.peaks.iter_mut().zip(WINDOWS) {
                let w = ts.div_euclid(len);
                if w != p.window || p.count == 0 {
                    p.window = w;
                    p.count = 0;
                }
                p.count += 1;
                if p.count > p.peak {
                    p.peak = p.count;
                    p.peak_window = w;
                }
            }
        }
        match keys {
            None => {
                self.all_keys_logged = false;
                self.keys = Some(Vec::new());
            }
            Some(ks) => match &mut self.keys {
                None => {
                    self.all_keys_logged = true;
                    let mut v: Vec<Box<str>> = ks.iter().map(|k| Box::from(*k)).collect();
                    v.sort();
                    v.dedup();
                    self.keys = Some(v);
                }
                Some(v) => v.retain(|k| ks.contains(&&**k)),
            },
        }
        // Where values are logged, `require` reads them, not the keys: a key must hold a non-null
        // value (a valid JSON text that is not an object holds none; invalid text counts as not logged).
        if let (Some(v), Some(text)) = (&mut self.keys, args) {
            if !v.is_empty() {
                match serde_json::from_str::<BTreeMap<String, &RawValue>>(text) {
                    Ok(values) => v.retain(|k| values.get(&**k).is_some_and(|x| x.get() != "null")),
                    Err(_) if serde_json::from_str::<IgnoredAny>(text).is_ok() => v.clear(),
                    Err(_) => {}
                }
            }
        }
    }
}

const DECISIONS: [RecordedDecision; 6] = [
    RecordedDecision::Allow,
    RecordedDecision::Deny,
    RecordedDecision::RateLimited,
    RecordedDecision::ApprovalRequired,
    RecordedDecision::Error,
    RecordedDecision::Unknown,
];

/// Drafts a policy for each identity (or the chosen ones) from the warehouse, in one pass; with a
/// holdout, replays every draft on the held-out calls in one more pass.
///
/// # Errors
/// When the warehouse cannot be read, the options make no sense (headroom not above 0, an empty
/// drafting period), or a draft does not validate (a bug, reported rather than written).
pub fn suggest(
    opts: &SuggestOptions,
    is_destructive: &dyn Fn(&str) -> bool,
) -> Result<Vec<Suggestion>> {
    if !(opts.headroom > 0.0 && opts.headroom.is_finite()) {
        return Err(Error::Invalid {
            option: "--headroom",
            message: format!("must be a number above 0, not {}", opts.headroom),
        });
    }
    let (draft_until, holdout) = match opts.holdout {
        None => (opts.until, None),
        Some(len) => {
            let end = match opts.until {
                Some(u) => u,
                None => last_event(opts)?.map_or(0, |t| t + 1),
            };
            let cut = end - len;
            if opts.since.is_some_and(|s| cut <= s) {
                return Err(Error::Invalid {
                    option: "--holdout",
                    message: "leaves nothing of the period to draft from".into(),
                });
            }
            (Some(cut), Some((cut, end)))
        }
    };
    let uses = collect(opts, draft_until)?;
    let mut out = Vec::with_capacity(uses.len());
    for (identity, (id, tools)) in uses {
        let mut s = draft(opts, identity, tools, draft_until, is_destructive)?;
        s.identity_id = id;
        out.push(s);
    }
    if let Some((from, until)) = holdout {
        replay_holdout(opts, &mut out, from, until)?;
    }
    Ok(out)
}

/// The time of the last call in the period, for a holdout without `until`.
fn last_event(opts: &SuggestOptions) -> Result<Option<i64>> {
    let mut last = None;
    calls::for_each_row(
        &calls::snapshot(&opts.warehouse, None)?,
        opts.since,
        opts.until,
        |row| {
            last = Some(row.ts());
            Ok(())
        },
    )?;
    Ok(last)
}

/// Identity -> (its id, tool -> use).
type Uses = BTreeMap<String, (Option<String>, BTreeMap<String, ToolUse>)>;

/// One pass: what each identity did with each tool in `[since, until)`.
fn collect(opts: &SuggestOptions, until: Option<i64>) -> Result<Uses> {
    // identity -> index into `per`, tool -> ToolUse; borrowed-str lookups, no allocation per call.
    let mut index: FxHashMap<Box<str>, usize> = FxHashMap::default();
    let mut per: Vec<(String, Option<String>, FxHashMap<Box<str>, ToolUse>)> = Vec::new();
    let wanted = |id: Option<&str>, label: Option<&str>| {
        opts.identities.is_empty()
            || [id, label]
                .iter()
                .flatten()
                .any(|x| opts.identities.iter().any(|w| w == x))
    };
    calls::for_each_row(
        &calls::snapshot(&opts.warehouse, None)?,
        opts.since,
        until,
        |row| {
            let Some(call) = &row.call else {
                return Ok(());
            };
            let Some(who) = call.identity.or(call.identity_id) else {
                return Ok(());
            };
            if !wanted(call.identity_id, call.identity) {
                return Ok(());
            }
            let i = match index.get(who) {
                Some(&i) => i,
                None => {
                    index.insert(Box::from(who), per.len());
                    let id = call.identity_id.map(str::to_string);
                    per.push((who.to_string(), id, FxHashMap::default()));
                    per.len() - 1
                }
            };
            let tools = &mut per[i].2;
            let usage = match tools.get_mut(call.tool) {
                Some(u) => u,
                None => tools.entry(Box::from(call.tool)).or_default(),
            };
            let rec = row.recorded();
            let chargeable = !rec.upstream_failed() && !rec.failed_closed();
            let args = match call.args {
                Some(verdict_policy::Args::Json(text)) => Some(text),
                _ => None,
            };
            usage.add(
                call.ts_micros,
                rec.decision,
                chargeable,
                call.arg_keys,
                args,
            );
            Ok(())
        },
    )?;
    Ok(per
        .into_iter()
        .map(|(who, id, tools)| {
            let tools = tools.into_iter().map(|(k, v)| (k.into(), v)).collect();
            (who, (id, tools))
        })
        .collect())
}

/// Builds one identity's policy and its explanation.
fn draft(
    opts: &SuggestOptions,
    identity: String,
    tools: BTreeMap<String, ToolUse>,
    until: Option<i64>,
    is_destructive: &dyn Fn(&str) -> bool,
) -> Result<Suggestion> {
    let mut rules = Map::new();
    let mut lines = Vec::with_capacity(tools.len());
    let mut total = 0;
    for (tool, u) in tools {
        total += u.calls;
        let (line, rule) = tool_line(opts, tool, &u, is_destructive);
        if let Some(rule) = rule {
            rules.insert(line.tool.clone(), rule);
        }
        lines.push(line);
    }
    let policy = json!({"version": "1", "default": "deny", "tools": rules});
    let text = serde_json::to_string_pretty(&policy).unwrap_or_default();
    Policy::from_json_str(&text).map_err(|source| Error::Policy {
        path: PathBuf::from(format!("(the draft for {identity})")),
        source,
    })?;
    Ok(Suggestion {
        identity,
        identity_id: None,
        drafted_from: opts.since.map(format_micros),
        drafted_until: until.map(format_micros),
        tool_calls: total,
        policy,
        tools: lines,
        holdout: None,
    })
}

/// The report line of one tool and, when listed, its rule.
fn tool_line(
    opts: &SuggestOptions,
    tool: String,
    u: &ToolUse,
    is_destructive: &dyn Fn(&str) -> bool,
) -> (ToolLine, Option<Value>) {
    let decisions: BTreeMap<&'static str, u64> = DECISIONS
        .iter()
        .map(|d| (d.as_str(), u.decisions[*d as usize]))
        .filter(|(_, n)| *n > 0)
        .collect();
    let allowed = u.decisions[RecordedDecision::Allow as usize];
    let destructive = is_destructive(&tool);
    let peaks: Vec<WindowPeak> = u
        .peaks
        .iter()
        .zip(WINDOWS)
        .filter(|(p, _)| p.peak > 0)
        .map(|(p, (name, len))| WindowPeak {
            window: name,
            peak: p.peak,
            at: format_micros(p.peak_window.saturating_mul(len)),
        })
        .collect();
    let mut line = ToolLine {
        tool,
        calls: u.calls,
        decisions,
        listed: false,
        destructive,
        approval: false,
        peaks,
        limit: None,
        require: Vec::new(),
        why: String::new(),
    };
    if allowed == 0 || line.tool == "*" {
        line.why = format!(
            "never allowed in {} calls: left to the default (deny)",
            u.calls
        );
        return (line, None);
    }
    line.listed = true;
    let mut why = vec![format!("allowed {allowed} of {} calls: listed", u.calls)];
    let mut rule = Map::new();
    if destructive && !opts.allow_destructive {
        line.approval = true;
        rule.insert("approval".into(), Value::Bool(true));
        why.push(
            "destructive by the catalogue: behind approval (--allow-destructive lists it plainly)"
                .into(),
        );
    }
    // Require the keys every call carried, when every call logged its keys and a key is a plain name.
    if u.all_keys_logged {
        let keys: Vec<String> = u
            .keys
            .iter()
            .flatten()
            .filter(|k| !k.is_empty() && !k.contains('.'))
            .map(|k| format!("args.{k}"))
            .collect();
        if !keys.is_empty() {
            why.push(format!(
                "{} present in every call: required",
                keys.join(", ")
            ));
            rule.insert("require".into(), json!(keys));
        }
    } else {
        why.push("argument keys not logged for every call: nothing required".into());
    }
    if let Some((i, p)) = u
        .peaks
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, p)| p.peak >= WINDOW_MIN_PEAK)
        .or_else(|| u.peaks.iter().enumerate().last())
    {
        let window = WINDOWS[i].0;
        let max = ((p.peak as f64) * opts.headroom).ceil().max(1.0) as u64;
        let counter = format!("{}-per-{window}", line.tool);
        let reason = if p.peak >= WINDOW_MIN_PEAK {
            format!("the shortest window whose peak reaches {WINDOW_MIN_PEAK}")
        } else {
            format!("no window's peak reaches {WINDOW_MIN_PEAK}")
        };
        why.push(format!(
            "peak {} per {window} ({reason}) x headroom {}: max {max}",
            p.peak, opts.headroom
        ));
        rule.insert(
            "limits".into(),
            json!([{"counter": counter, "window": window, "max": max, "scope": "grant"}]),
        );
        line.limit = Some((counter, window, max));
    }
    line.require = rule
        .get("require")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    line.why = why.join("; ");
    (line, Some(Value::Object(rule)))
}

/// Replays every draft on `[from, until)` in one pass (a policy per grant), and fills each
/// suggestion's holdout from the identity x tool matrix.
fn replay_holdout(
    opts: &SuggestOptions,
    out: &mut [Suggestion],
    from: i64,
    until: i64,
) -> Result<()> {
    let mut members = Vec::with_capacity(out.len());
    for s in out.iter() {
        let text = serde_json::to_string(&s.policy).unwrap_or_default();
        let policy = Policy::from_json_str(&text).map_err(|source| Error::Policy {
            path: PathBuf::from(format!("(the draft for {})", s.identity)),
            source,
        })?;
        members.push((s.identity.clone(), policy));
    }
    let policies = Policies::per_grant(members, None)?;
    let ropts = ReplayOptions {
        warehouse: opts.warehouse.clone(),
        since: Some(from),
        until: Some(until),
        identities: out.iter().map(|s| s.identity.clone()).collect(),
        ..ReplayOptions::default()
    };
    let report = replay(&ropts, &policies, None, &|_| false)?;
    const BROKEN: [Transition; 3] = [
        Transition::AllowDeny,
        Transition::AllowRateLimited,
        Transition::AllowApprovalRequired,
    ];
    for s in out.iter_mut() {
        let mut h = Holdout {
            from: format_micros(from),
            until: format_micros(until),
            ..Holdout::default()
        };
        let mut broken: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for row in report
            .by_identity_tool
            .iter()
            .filter(|r| r.identity.as_deref() == Some(s.identity.as_str()))
        {
            for t in BROKEN {
                if let Some(&n) = row.transitions.get(t.as_str()) {
                    *broken
                        .entry(row.tool.clone())
                        .or_default()
                        .entry(t.as_str().to_string())
                        .or_default() += n;
                    h.total_broken += n;
                }
            }
        }
        h.broken = broken.into_iter().collect();
        s.holdout = Some(h);
    }
    // Calls per identity in the holdout come from a count over the same range.
    let counts = holdout_calls(opts, from, until)?;
    for s in out.iter_mut() {
        if let Some(h) = s.holdout.as_mut() {
            h.tool_calls = counts.get(&s.identity).copied().unwrap_or(0);
        }
    }
    Ok(())
}

fn holdout_calls(opts: &SuggestOptions, from: i64, until: i64) -> Result<FxHashMap<String, u64>> {
    let mut counts: FxHashMap<String, u64> = FxHashMap::default();
    calls::for_each_row(
        &calls::snapshot(&opts.warehouse, None)?,
        Some(from),
        Some(until),
        |row| {
            if let Some(who) = row.call.as_ref().and_then(|c| c.identity.or(c.identity_id)) {
                match counts.get_mut(who) {
                    Some(n) => *n += 1,
                    None => {
                        counts.insert(who.to_string(), 1);
                    }
                }
            }
            Ok(())
        },
    )?;
    Ok(counts)
}
