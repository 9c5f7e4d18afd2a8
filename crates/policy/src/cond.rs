//! Argument paths, deny_if conditions and their three-valued evaluation against what the log holds about a
//! call's arguments (values, only top-level keys, or nothing). Knows nothing of tools, limits or counters.

use std::cmp::Ordering;
use std::sync::Arc;

use regex::Regex;
use serde_json::{Number, Value};

use crate::counters::short_eq;

/// A validated argument path such as `args.customer.id`, split into its segments after `args.`.
#[derive(Debug, Clone)]
pub(crate) struct ArgPath {
    /// The path as written, e.g. `args.customer.id`.
    pub(crate) text: Arc<str>,
    /// `["customer", "id"]`: never empty, no segment is empty.
    segments: Box<[Box<str>]>,
    /// Index of the first segment in the owning tool's `Tool::arg_tops` (set when the tool is built).
    pub(crate) top: u32,
}

impl ArgPath {
    /// Parses `args.a.b`. The error says what is wrong, without the JSON path.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix("args.") else {
            return Err(format!("path {text:?} does not start with \"args.\""));
        };
        let segments: Box<[Box<str>]> = rest.split('.').map(Box::from).collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(format!("path {text:?} has an empty segment"));
        }
        Ok(Self {
            text: Arc::from(text),
            segments,
            top: 0,
        })
    }

    /// The top-level argument key the path starts with.
    pub(crate) fn first(&self) -> &str {
        self.segments.first().map_or("", |s| s)
    }
}

/// A condition operator with its validated, precompiled value.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Eq(Value),
    Neq(Value),
    In(Box<[Value]>),
    NotIn(Box<[Value]>),
    Lt(Number),
    Lte(Number),
    Gt(Number),
    Gte(Number),
    Regex(Regex),
    Contains(Value),
    Exists(bool),
}

/// Every operator name, in the spec's order (for error messages).
pub(crate) const OP_NAMES: &[&str] = &[
    "eq", "neq", "in", "not_in", "lt", "lte", "gt", "gte", "regex", "contains", "exists",
];

/// One `deny_if` condition.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) path: ArgPath,
    pub(crate) op: Op,
    /// Message of an `indeterminate` outcome caused by this condition, e.g. `args.amount value not logged`.
    pub(crate) unknown_message: Arc<str>,
}

/// A three-valued truth: `Unknown` when the log does not hold what the condition needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    False,
    True,
    Unknown,
}

/// What the log tells about the argument at one path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Found<'v> {
    /// Determinately absent (or null).
    Missing,
    /// Present with this (non-null) value.
    Value(&'v Value),
    /// Present (a top-level key listed in `arg_keys`) but its value was not logged.
    Present,
    /// Not even presence is known.
    Unknown,
}

/// The argument values of one call, as far as they were logged.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Values<'v> {
    /// Not logged.
    None,
    /// The whole arguments value.
    Full(&'v Value),
    /// The values of the tool's `arg_tops`, by index (`None`: absent), from `extract`.
    Extracted(&'v [Option<Value>]),
}

/// What the log holds about one call's arguments.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArgsKnown<'v> {
    /// The argument values, when logged. Take precedence over `keys`.
    pub(crate) values: Values<'v>,
    /// The top-level argument keys, when logged.
    pub(crate) keys: Option<&'v [&'v str]>,
}

impl<'v> ArgsKnown<'v> {
    /// Looks `path` up. A null value counts as missing; a segment never indexes an array.
    pub(crate) fn lookup(&self, path: &ArgPath) -> Found<'v> {
        let (start, rest) = match self.values {
            Values::Full(v) => (v, &path.segments[..]),
            Values::Extracted(tops) => match tops.get(path.top as usize) {
                Some(Some(v)) => (v, path.segments.get(1..).unwrap_or_default()),
                _ => return Found::Missing,
            },
            Values::None => return self.lookup_keys(path),
        };
        let mut cur = start;
        for seg in rest {
            if is_redacted(cur) {
                return Found::Unknown;
            }
            match cur.as_object().and_then(|m| m.get(&**seg)) {
                Some(v) => cur = v,
                None => return Found::Missing,
            }
        }
        if is_redacted(cur) {
            return Found::Unknown;
        }
        if cur.is_null() {
            Found::Missing
        } else {
            Found::Value(cur)
        }
    }

    /// Looks `path` up in the top-level keys alone.
    fn lookup_keys(&self, path: &ArgPath) -> Found<'v> {
        let Some(keys) = self.keys else {
            return Found::Unknown;
        };
        let top = path.first();
        if !keys.iter().any(|k| short_eq(k, top)) {
            Found::Missing
        } else if path.segments.len() == 1 {
            Found::Present
        } else {
            Found::Unknown
        }
    }
}

/// Whether a logged value is a redaction marker (`"[redacted:<hash>]"`, README "Security"):
/// the secret it stood for is unknown, so a condition on it (or below it) is unknown too.
fn is_redacted(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.starts_with("[redacted:") && s.ends_with(']'))
}

impl Condition {
    /// Evaluates the condition against what the log holds.
    pub(crate) fn eval(&self, args: &ArgsKnown<'_>) -> Tri {
        match args.lookup(&self.path) {
            Found::Missing => match self.op {
                Op::Exists(want) => Tri::from(!want),
                _ => Tri::False,
            },
            Found::Present => match self.op {
                Op::Exists(want) => Tri::from(want),
                _ => Tri::Unknown,
            },
            Found::Unknown => Tri::Unknown,
            Found::Value(v) => Tri::from(self.op.holds(v)),
        }
    }
}

impl From<bool> for Tri {
    fn from(b: bool) -> Self {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

impl Op {
    /// The operator's name as written in a policy.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Eq(_) => "eq",
            Op::Neq(_) => "neq",
            Op::In(_) => "in",
            Op::NotIn(_) => "not_in",
            Op::Lt(_) => "lt",
            Op::Lte(_) => "lte",
            Op::Gt(_) => "gt",
            Op::Gte(_) => "gte",
            Op::Regex(_) => "regex",
            Op::Contains(_) => "contains",
            Op::Exists(_) => "exists",
        }
    }

    /// Whether the operator holds for a present, non-null value.
    fn holds(&self, v: &Value) -> bool {
        match self {
            Op::Eq(x) => json_eq(v, x),
            Op::Neq(x) => !json_eq(v, x),
            Op::In(xs) => xs.iter().any(|x| json_eq(v, x)),
            Op::NotIn(xs) => !xs.iter().any(|x| json_eq(v, x)),
            Op::Lt(x) => num_cmp_value(v, x) == Some(Ordering::Less),
            Op::Lte(x) => matches!(num_cmp_value(v, x), Some(Ordering::Less | Ordering::Equal)),
            Op::Gt(x) => num_cmp_value(v, x) == Some(Ordering::Greater),
            Op::Gte(x) => matches!(
                num_cmp_value(v, x),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            Op::Regex(re) => v.as_str().is_some_and(|s| re.is_match(s)),
            Op::Contains(x) => match v {
                Value::String(s) => x.as_str().is_some_and(|needle| s.contains(needle)),
                Value::Array(items) => items.iter().any(|item| json_eq(item, x)),
                _ => false,
            },
            Op::Exists(want) => *want,
        }
    }
}

/// Compares a value with a number: `None` unless the value is a JSON number.
fn num_cmp_value(v: &Value, x: &Number) -> Option<Ordering> {
    match v {
        Value::Number(n) => num_cmp(n, x),
        _ => None,
    }
}

/// Compares two JSON numbers by value: integers exactly, otherwise as `f64` (so `1` equals `1.0`).
pub(crate) fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    fn int(n: &Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`), recursively.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Some(Ordering::Equal),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| json_eq(p, q)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
