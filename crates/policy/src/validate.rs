//! Parsing and validation of a policy v1 document into the precompiled [`Policy`]: collects every problem
//! with its JSON Pointer before giving up. Evaluation semantics live in `eval` and `cond`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use regex::Regex;
use serde_json::Number;

use crate::cond::{ArgPath, Condition, Op, OP_NAMES};
use crate::error::{Error, Result, ValidationError};
use crate::json::{escape_token, Json};
use crate::policy::{
    CounterDef, DefaultAction, DenyRule, LimitRef, LimitSet, NameMap, Policy, Require, Scope,
    Texts, Tool, ToolSlot, Window,
};

/// Parses, validates and precompiles `source`.
pub(crate) fn compile(source: &str) -> Result<Policy> {
    let json: Json = serde_json::from_str(source).map_err(syntax_error)?;
    let mut cx = Cx::default();
    let doc = cx.document(&json);
    match doc {
        Some(doc) if cx.errors.is_empty() => Ok(build(source, doc)),
        _ => Err(Error::Invalid { errors: cx.errors }),
    }
}

fn syntax_error(e: serde_json::Error) -> Error {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    Error::Syntax {
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// The document after validation, before precompilation.
struct Doc {
    default: DefaultAction,
    hide: Vec<String>,
    all_tools: Vec<ParsedLimit>,
    tools: Vec<ParsedTool>,
    /// Counter names in order of first declaration (document order).
    counter_order: Vec<String>,
}

struct ParsedTool {
    name: String,
    require: Vec<ArgPath>,
    deny_if: Vec<ParsedDenyRule>,
    limits: Vec<ParsedLimit>,
    approval: bool,
}

struct ParsedDenyRule {
    index: usize,
    id: Option<String>,
    conditions: Vec<Condition>,
    on_deny: String,
}

#[derive(Clone)]
struct ParsedLimit {
    counter: String,
    window: Window,
    scope: Scope,
    sliding: bool,
    max: u64,
}

/// A counter's first declaration, to check that later limits sharing its name agree.
struct Declared {
    window: Window,
    scope: Scope,
    sliding: bool,
    path: String,
}

#[derive(Default)]
struct Cx {
    errors: Vec<ValidationError>,
    declared: HashMap<String, Declared>,
    counter_order: Vec<String>,
}

/// `parent/token`, with the token escaped.
fn child(parent: &str, token: &str) -> String {
    format!("{parent}/{}", escape_token(token))
}

fn index(parent: &str, i: usize) -> String {
    format!("{parent}/{i}")
}

impl Cx {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(ValidationError {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn wrong_type(&mut self, path: &str, expected: &str, found: &Json) {
        self.error(path, format!("expected {expected}, found {}", found.kind()));
    }

    /// Checks that `j` is an object whose members are all among `allowed`, each at most once, and returns
    /// them in the order of `allowed`. Reports a wrong type, unknown and duplicate fields.
    fn object<'j, const N: usize>(
        &mut self,
        path: &str,
        j: &'j Json,
        allowed: [&str; N],
    ) -> Option<[Option<&'j Json>; N]> {
        let Json::Object(members) = j else {
            self.wrong_type(path, "an object", j);
            return None;
        };
        let mut out = [None; N];
        for (key, value) in members {
            match allowed.iter().position(|a| a == key) {
                Some(i) if out[i].is_some() => {
                    self.error(&child(path, key), format!("duplicate field {key:?}"));
                }
                Some(i) => out[i] = Some(value),
                None => self.error(
                    &child(path, key),
                    format!(
                        "unknown field {key:?} (expected one of {})",
                        allowed.join(", ")
                    ),
                ),
            }
        }
        Some(out)
    }

    fn required<'j>(&mut self, path: &str, field: &str, j: Option<&'j Json>) -> Option<&'j Json> {
        if j.is_none() {
            self.error(
                &child(path, field),
                format!("missing required field {field:?}"),
            );
        }
        j
    }

    fn string<'j>(&mut self, path: &str, j: &'j Json) -> Option<&'j str> {
        match j {
            Json::String(s) => Some(s),
            _ => {
                self.wrong_type(path, "a string", j);
                None
            }
        }
    }

    fn boolean(&mut self, path: &str, j: &Json) -> Option<bool> {
        match j {
            Json::Bool(b) => Some(*b),
            _ => {
                self.wrong_type(path, "a boolean", j);
                None
            }
        }
    }

    fn array<'j>(&mut self, path: &str, j: &'j Json) -> Option<&'j [Json]> {
        match j {
            Json::Array(a) => Some(a),
            _ => {
                self.wrong_type(path, "an array", j);
                None
            }
        }
    }

    /// A string among `choices`.
    fn choice<T: Copy>(
        &mut self,
        path: &str,
        j: &Json,
        what: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let s = self.string(path, j)?;
        match choices.iter().find(|(name, _)| *name == s) {
            Some((_, v)) => Some(*v),
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                self.error(
                    path,
                    format!(
                        "unknown {what} {s:?} (expected one of {})",
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn document(&mut self, j: &Json) -> Option<Doc> {
        let [version, default, hide, all_tools, tools] =
            self.object("", j, ["version", "default", "hide", "all_tools", "tools"])?;

        if let Some(v) = self.required("", "version", version) {
            if let Some(s) = self.string("/version", v) {
                if s != "1" {
                    self.error(
                        "/version",
                        format!("unsupported version {s:?} (expected \"1\")"),
                    );
                }
            }
        }
        let default = self.required("", "default", default).and_then(|d| {
            self.choice(
                "/default",
                d,
                "default",
                &[
                    ("allow", DefaultAction::Allow),
                    ("deny", DefaultAction::Deny),
                ],
            )
        });

        let mut hide_names = Vec::new();
        if let Some(h) = hide {
            for (i, item) in self
                .array("/hide", h)
                .unwrap_or_default()
                .iter()
                .enumerate()
            {
                if let Some(s) = self.string(&index("/hide", i), item) {
                    hide_names.push(s.to_owned());
                }
            }
        }

        // Counters are declared in document order, so visit `all_tools` and `tools` in that order.
        let tools_first = match (j, all_tools.is_some() && tools.is_some()) {
            (Json::Object(members), true) => {
                members.iter().position(|(k, _)| k == "tools")
                    < members.iter().position(|(k, _)| k == "all_tools")
            }
            _ => false,
        };
        let (parsed_all, parsed_tools) = if tools_first {
            let t = self.tools(tools);
            (self.all_tools(all_tools), t)
        } else {
            let a = self.all_tools(all_tools);
            (a, self.tools(tools))
        };

        Some(Doc {
            default: default?,
            hide: hide_names,
            all_tools: parsed_all,
            tools: parsed_tools,
            counter_order: std::mem::take(&mut self.counter_order),
        })
    }

    fn all_tools(&mut self, j: Option<&Json>) -> Vec<ParsedLimit> {
        let Some(j) = j else { return Vec::new() };
        let Some([limits]) = self.object("/all_tools", j, ["limits"]) else {
            return Vec::new();
        };
        limits.map_or_else(Vec::new, |l| self.limits("/all_tools/limits", l))
    }

    fn tools(&mut self, j: Option<&Json>) -> Vec<ParsedTool> {
        let mut out = Vec::new();
        let Some(j) = j else { return out };
        let Json::Object(members) = j else {
            self.wrong_type("/tools", "an object", j);
            return out;
        };
        let mut seen: HashSet<&str> = HashSet::new();
        for (name, rule) in members {
            let path = child("/tools", name);
            if !seen.insert(name) {
                self.error(&path, format!("duplicate tool {name:?}"));
                continue;
            }
            if let Some(tool) = self.tool(&path, name, rule) {
                out.push(tool);
            }
        }
        out
    }

    fn tool(&mut self, path: &str, name: &str, j: &Json) -> Option<ParsedTool> {
        let [require, deny_if, limits, approval] =
            self.object(path, j, ["require", "deny_if", "limits", "approval"])?;
        let mut tool = ParsedTool {
            name: name.to_owned(),
            require: Vec::new(),
            deny_if: Vec::new(),
            limits: Vec::new(),
            approval: false,
        };
        if let Some(r) = require {
            let rpath = child(path, "require");
            for (i, item) in self.array(&rpath, r).unwrap_or_default().iter().enumerate() {
                if let Some(p) = self.arg_path(&index(&rpath, i), item) {
                    tool.require.push(p);
                }
            }
        }
        if let Some(d) = deny_if {
            let dpath = child(path, "deny_if");
            for (i, item) in self.array(&dpath, d).unwrap_or_default().iter().enumerate() {
                if let Some(rule) = self.deny_rule(&index(&dpath, i), i, item) {
                    tool.deny_if.push(rule);
                }
            }
        }
        if let Some(l) = limits {
            tool.limits = self.limits(&child(path, "limits"), l);
        }
        if let Some(a) = approval {
            tool.approval = self.boolean(&child(path, "approval"), a).unwrap_or(false);
        }
        Some(tool)
    }

    fn arg_path(&mut self, path: &str, j: &Json) -> Option<ArgPath> {
        let s = self.string(path, j)?;
        match ArgPath::parse(s) {
            Ok(p) => Some(p),
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }

    fn deny_rule(&mut self, path: &str, i: usize, j: &Json) -> Option<ParsedDenyRule> {
        let [conditions, on_deny, id] = self.object(path, j, ["conditions", "on_deny", "id"])?;
        let cpath = child(path, "conditions");
        let conditions = self.required(path, "conditions", conditions).and_then(|c| {
            let items = self.array(&cpath, c)?;
            let parsed: Vec<Option<Condition>> = items
                .iter()
                .enumerate()
                .map(|(k, item)| self.condition(&index(&cpath, k), item))
                .collect();
            parsed.into_iter().collect::<Option<Vec<_>>>()
        });
        let on_deny = self
            .required(path, "on_deny", on_deny)
            .and_then(|m| self.string(&child(path, "on_deny"), m));
        let id = match id {
            None => Some(None),
            Some(j) => {
                let ipath = child(path, "id");
                match self.string(&ipath, j) {
                    Some("") => {
                        self.error(&ipath, "rule id must not be empty");
                        None
                    }
                    Some(s) => Some(Some(s.to_owned())),
                    None => None,
                }
            }
        };
        Some(ParsedDenyRule {
            index: i,
            id: id?,
            conditions: conditions?,
            on_deny: on_deny?.to_owned(),
        })
    }

    fn condition(&mut self, path: &str, j: &Json) -> Option<Condition> {
        let [p, op, value] = self.object(path, j, ["path", "op", "value"])?;
        let arg = self
            .required(path, "path", p)
            .and_then(|p| self.arg_path(&child(path, "path"), p));
        let op_path = child(path, "op");
        let op_name = self.required(path, "op", op).and_then(|o| {
            let s = self.string(&op_path, o)?;
            if OP_NAMES.contains(&s) {
                Some(s)
            } else {
                self.error(
                    &op_path,
                    format!("unknown op {s:?} (expected one of {})", OP_NAMES.join(", ")),
                );
                None
            }
        });
        let op = op_name.and_then(|name| self.op_value(path, name, value));
        let (arg, op) = (arg?, op?);
        let what = if matches!(op, Op::Exists(_)) {
            "presence"
        } else {
            "value"
        };
        let unknown_message = Arc::from(format!("{} {what} not logged", arg.text));
        Some(Condition {
            path: arg,
            op,
            unknown_message,
        })
    }

    /// Checks the `value` of a condition against its op.
    fn op_value(&mut self, path: &str, op: &str, value: Option<&Json>) -> Option<Op> {
        let vpath = child(path, "value");
        let Some(v) = value else {
            if op == "exists" {
                return Some(Op::Exists(true));
            }
            self.error(&vpath, "missing required field \"value\"");
            return None;
        };
        let number = |cx: &mut Self| -> Option<Number> {
            match v {
                Json::Number(n) => Some(n.clone()),
                _ => {
                    cx.error(
                        &vpath,
                        format!("value of {op:?} must be a number, found {}", v.kind()),
                    );
                    None
                }
            }
        };
        let list = |cx: &mut Self| -> Option<Box<[serde_json::Value]>> {
            match v {
                Json::Array(items) => Some(items.iter().map(Json::to_value).collect()),
                _ => {
                    cx.error(
                        &vpath,
                        format!("value of {op:?} must be an array, found {}", v.kind()),
                    );
                    None
                }
            }
        };
        Some(match op {
            "eq" => Op::Eq(v.to_value()),
            "neq" => Op::Neq(v.to_value()),
            "contains" => Op::Contains(v.to_value()),
            "in" => Op::In(list(self)?),
            "not_in" => Op::NotIn(list(self)?),
            "lt" => Op::Lt(number(self)?),
            "lte" => Op::Lte(number(self)?),
            "gt" => Op::Gt(number(self)?),
            "gte" => Op::Gte(number(self)?),
            "exists" => match v {
                Json::Bool(b) => Op::Exists(*b),
                _ => {
                    self.error(
                        &vpath,
                        format!("value of \"exists\" must be a boolean, found {}", v.kind()),
                    );
                    return None;
                }
            },
            "regex" => {
                let Json::String(s) = v else {
                    self.error(
                        &vpath,
                        format!("value of \"regex\" must be a string, found {}", v.kind()),
                    );
                    return None;
                };
                match Regex::new(s) {
                    Ok(re) => Op::Regex(re),
                    Err(e) => {
                        self.error(&vpath, format!("invalid regex: {e}"));
                        return None;
                    }
                }
            }
            _ => return None,
        })
    }

    fn limits(&mut self, path: &str, j: &Json) -> Vec<ParsedLimit> {
        let mut out = Vec::new();
        for (i, item) in self.array(path, j).unwrap_or_default().iter().enumerate() {
            if let Some(limit) = self.limit(&index(path, i), item) {
                out.push(limit);
            }
        }
        out
    }

    fn limit(&mut self, path: &str, j: &Json) -> Option<ParsedLimit> {
        let [counter, window, max, scope, sliding] =
            self.object(path, j, ["counter", "window", "max", "scope", "sliding"])?;
        let counter = self.required(path, "counter", counter).and_then(|c| {
            let cpath = child(path, "counter");
            let s = self.string(&cpath, c)?;
            if s.is_empty() {
                self.error(&cpath, "counter name must not be empty");
                return None;
            }
            Some(s)
        });
        let window = self.required(path, "window", window).and_then(|w| {
            self.choice(
                &child(path, "window"),
                w,
                "window",
                &[
                    ("second", Window::Second),
                    ("minute", Window::Minute),
                    ("hour", Window::Hour),
                    ("day", Window::Day),
                ],
            )
        });
        let max = self
            .required(path, "max", max)
            .and_then(|m| self.max(&child(path, "max"), m));
        let scope = match scope {
            None => Some(Scope::Grant),
            Some(s) => self.choice(
                &child(path, "scope"),
                s,
                "scope",
                &[
                    ("grant", Scope::Grant),
                    ("identity", Scope::Grant),
                    ("session", Scope::Session),
                    ("server", Scope::Server),
                    ("global", Scope::Global),
                ],
            ),
        };
        let sliding = match sliding {
            None => Some(false),
            Some(s) => self.boolean(&child(path, "sliding"), s),
        };
        let (counter, window, scope, sliding) = (counter?, window?, scope?, sliding?);
        self.declare(path, counter, window, scope, sliding);
        Some(ParsedLimit {
            counter: counter.to_owned(),
            window,
            scope,
            sliding,
            max: max?,
        })
    }

    fn max(&mut self, path: &str, j: &Json) -> Option<u64> {
        let Json::Number(n) = j else {
            self.wrong_type(path, "a non-negative integer", j);
            return None;
        };
        if let Some(u) = n.as_u64() {
            return Some(u);
        }
        if n.as_i64().is_some() {
            self.error(path, format!("max must not be negative, found {n}"));
            return None;
        }
        let f = n.as_f64().unwrap_or(f64::NAN);
        if f < 0.0 {
            self.error(path, format!("max must not be negative, found {n}"));
            None
        } else if f.fract() != 0.0 || !f.is_finite() {
            self.error(path, format!("max must be a whole number, found {n}"));
            None
        } else {
            // A whole float such as `5.0`; saturates above u64::MAX.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Some(f as u64)
        }
    }

    /// Records a counter declaration; a later one with the same name must agree on window, scope and sliding.
    fn declare(&mut self, path: &str, name: &str, window: Window, scope: Scope, sliding: bool) {
        if let Some(first) = self.declared.get(name) {
            if (first.window, first.scope, first.sliding) != (window, scope, sliding) {
                let message = format!(
                    "counter {name:?} is declared at {} with window {}, scope {}, sliding {}; \
                     this limit has window {}, scope {}, sliding {}",
                    first.path,
                    first.window.name(),
                    first.scope.name(),
                    first.sliding,
                    window.name(),
                    scope.name(),
                    sliding
                );
                self.error(path, message);
            }
            return;
        }
        self.declared.insert(
            name.to_owned(),
            Declared {
                window,
                scope,
                sliding,
                path: path.to_owned(),
            },
        );
        self.counter_order.push(name.to_owned());
    }
}

/// Precompiles a validated document.
fn build(source: &str, doc: Doc) -> Policy {
    // Counters, in order of first declaration, with their classes.
    let mut counter_ids: HashMap<&str, u32> = HashMap::new();
    let mut counters: Vec<CounterDef> = Vec::new();
    let mut classes: Vec<(Window, bool)> = Vec::new();
    let all_limits = doc
        .all_tools
        .iter()
        .chain(doc.tools.iter().flat_map(|t| t.limits.iter()));
    for name in &doc.counter_order {
        let Some(l) = all_limits.clone().find(|l| &l.counter == name) else {
            continue;
        };
        let class = match classes.iter().position(|c| *c == (l.window, l.sliding)) {
            Some(c) => c,
            None => {
                classes.push((l.window, l.sliding));
                classes.len() - 1
            }
        };
        let largest = all_limits
            .clone()
            .filter(|m| &m.counter == name)
            .map(|m| m.max)
            .max()
            .unwrap_or(0);
        counter_ids.insert(name, to_u32(counters.len()));
        counters.push(CounterDef {
            name: Arc::from(name.as_str()),
            scope: l.scope,
            class: to_u32(class),
            keep: largest.saturating_add(1),
        });
    }

    let limit_set = |own: &[(Arc<str>, &ParsedLimit)]| -> LimitSet {
        let mut slots: Vec<u32> = Vec::new();
        let mut limits = Vec::new();
        for (rule, l) in own {
            let id = counter_ids.get(l.counter.as_str()).copied().unwrap_or(0);
            let slot = match slots.iter().position(|&c| c == id) {
                Some(s) => s,
                None => {
                    slots.push(id);
                    slots.len() - 1
                }
            };
            limits.push(LimitRef {
                slot: to_u32(slot),
                max: l.max,
                rule: rule.clone(),
                message: Arc::from(limit_message(l)),
            });
        }
        let scopes = slots
            .iter()
            .filter_map(|&id| counters.get(id as usize))
            .fold(0, |mask, c| mask | (1 << c.scope as u8));
        LimitSet {
            limits: limits.into(),
            counters: slots.into(),
            scopes,
        }
    };
    let all_rules: Vec<(Arc<str>, &ParsedLimit)> = doc
        .all_tools
        .iter()
        .map(|l| (Arc::from(format!("/all_tools/limits/{}", l.counter)), l))
        .collect();
    let unlisted = limit_set(&all_rules);

    let mut names = NameMap::default();
    let mut tools = Vec::with_capacity(doc.tools.len());
    for t in &doc.tools {
        let name = t.name.as_str();
        let mut own: Vec<(Arc<str>, &ParsedLimit)> = t
            .limits
            .iter()
            .map(|l| (Arc::from(format!("/tools/{name}/limits/{}", l.counter)), l))
            .collect();
        own.extend(all_rules.iter().cloned());
        let mut tops: Vec<Box<str>> = Vec::new();
        let mut top_of = |path: &ArgPath| -> ArgPath {
            let first = path.first();
            let index = match tops.iter().position(|t| **t == *first) {
                Some(i) => i,
                None => {
                    tops.push(Box::from(first));
                    tops.len() - 1
                }
            };
            let mut path = path.clone();
            path.top = to_u32(index);
            path
        };
        let require: Box<[Require]> = t
            .require
            .iter()
            .map(|p| Require {
                rule: Arc::from(format!("/tools/{name}/require/{}", p.text)),
                missing_message: Arc::from(format!("missing required argument {}", p.text)),
                unknown_message: Arc::from(format!("{} presence not logged", p.text)),
                path: top_of(p),
            })
            .collect();
        let deny_if: Box<[DenyRule]> = t
            .deny_if
            .iter()
            .map(|r| {
                let id = match (&r.id, r.conditions.first()) {
                    (Some(id), _) => id.clone(),
                    (None, Some(c)) => format!("{}-{}", c.path.text, c.op.name()),
                    (None, None) => r.index.to_string(),
                };
                DenyRule {
                    conditions: r
                        .conditions
                        .iter()
                        .map(|c| Condition {
                            path: top_of(&c.path),
                            ..c.clone()
                        })
                        .collect(),
                    rule: Arc::from(format!("/tools/{name}/deny_if/{id}")),
                    message: Arc::from(r.on_deny.as_str()),
                }
            })
            .collect();
        let reads_args = !tops.is_empty();
        *names.get_or_insert(name, ToolSlot::default()) = ToolSlot {
            hidden: false,
            tool: Some(to_u32(tools.len())),
        };
        tools.push(Tool {
            name: Arc::from(name),
            require,
            deny_if,
            limits: limit_set(&own),
            approval: t.approval,
            approval_rule: Arc::from(format!("/tools/{name}/approval")),
            reads_args,
            arg_tops: tops.into(),
        });
    }
    let mut hide_all = false;
    for h in &doc.hide {
        if h == "*" {
            hide_all = true;
        }
        names.get_or_insert(h, ToolSlot::default()).hidden = true;
    }

    Policy {
        source: source.to_owned(),
        default: doc.default,
        hide_all,
        names,
        tools,
        unlisted,
        counters,
        classes,
        texts: Texts::default(),
    }
}

fn limit_message(l: &ParsedLimit) -> String {
    let sliding = if l.sliding { "sliding " } else { "" };
    let per = match l.scope {
        Scope::Grant => " per identity",
        Scope::Session => " per session",
        Scope::Server => " per server",
        Scope::Global => " in total",
    };
    format!(
        "rate limit {:?} exceeded: at most {} calls per {sliding}{}{per}",
        l.counter,
        l.max,
        l.window.name()
    )
}

/// Policy sizes (tools, counters, limits) are far below `u32::MAX`; saturate rather than wrap.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
