//! User mappings (`--mapping FILE`, TOML): for any proxy, which field path fills each column,
//! how its decision values read, and the units of its timestamps and durations. A mapping may
//! extend a built-in format (`base = "opa"`), overriding only the columns it names.
//! Loading validates everything and names the TOML key at fault; decoding never panics.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::common::{
    decision_from_status, duration_ms, event_id, status, text_or_json, timestamp, Unit,
};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node, Path};
use crate::{Format, Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// A mapping file that cannot be used, with the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingError {
    /// The TOML key (`columns.identity`, `decision.map.ok` ...), when one is at fault.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for MappingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "`{k}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for MappingError {}

fn err(key: impl Into<String>, message: impl Into<String>) -> MappingError {
    MappingError {
        key: Some(key.into()),
        message: message.into(),
    }
}

/// One path or several (the first that holds a value wins).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn paths(&self, key: &str) -> Result<Vec<Path>, MappingError> {
        let list: Vec<&String> = match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v.iter().collect(),
        };
        if list.is_empty() {
            return Err(err(key, "an empty list of paths"));
        }
        list.into_iter()
            .map(|s| Path::parse(s).map_err(|m| err(key, m)))
            .collect()
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ColumnsFile {
    event_id: Option<OneOrMany>,
    ts: Option<OneOrMany>,
    identity: Option<OneOrMany>,
    identity_id: Option<OneOrMany>,
    session: Option<OneOrMany>,
    server: Option<OneOrMany>,
    method: Option<OneOrMany>,
    tool: Option<OneOrMany>,
    arg_keys: Option<OneOrMany>,
    args: Option<OneOrMany>,
    rule: Option<OneOrMany>,
    message: Option<OneOrMany>,
    policy_id: Option<OneOrMany>,
    policy_version: Option<OneOrMany>,
    client_addr: Option<OneOrMany>,
    upstream_status: Option<OneOrMany>,
    latency_ms: Option<OneOrMany>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UnitFile {
    unit: Option<String>,
    format: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionFile {
    path: Option<OneOrMany>,
    #[serde(default)]
    map: BTreeMap<String, String>,
    status: Option<OneOrMany>,
    default: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlyFile {
    path: String,
    values: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    name: Option<String>,
    base: Option<String>,
    records: Option<String>,
    only: Option<OnlyFile>,
    #[serde(default)]
    columns: ColumnsFile,
    #[serde(default)]
    timestamp: UnitFile,
    #[serde(default)]
    latency: UnitFile,
    decision: Option<DecisionFile>,
}

/// A string column a mapping can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextCol {
    EventId,
    Identity,
    IdentityId,
    Session,
    Server,
    Method,
    Tool,
    Rule,
    Message,
    PolicyId,
    PolicyVersion,
    ClientAddr,
}

/// How decision values are read.
#[derive(Debug, Clone)]
struct DecisionSpec {
    paths: Vec<Path>,
    map: Vec<(String, Decision)>,
    status: Vec<Path>,
    default: Option<Decision>,
}

/// A loaded, validated mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    name: String,
    base: Option<Format>,
    records: Option<Path>,
    only: Option<(Path, Vec<String>)>,
    texts: Vec<(TextCol, Vec<Path>)>,
    ts: Option<Vec<Path>>,
    ts_unit: Unit,
    ts_format: Option<String>,
    arg_keys: Option<Vec<Path>>,
    args: Option<Vec<Path>>,
    upstream_status: Option<Vec<Path>>,
    latency: Option<Vec<Path>>,
    latency_unit: Unit,
    decision: Option<DecisionSpec>,
}

/// A commented template of every key, printed by `verdict formats --template`.
pub const TEMPLATE: &str = r#"# verdict mapping: how one proxy's JSON records fill the decisions table.
# Paths are dotted (`user.email`); a literal dotted key (`"mcp.method"`) is tried before splitting;
# `a["x.y"]` is a quoted key, `a[0]` an index, `*` any key or element; `$.` starts at the whole
# record when `records` fans out. A list of paths means: the first that holds a value.

name = "my-proxy"          # the `source` value of the rows (defaults to `base`)
# base = "opa"             # start from a built-in format and override only the columns below
# records = "events[]"     # one row per element of this array (`[]` marks the fan-out)
# only = { path = "kind", values = ["decision"] }   # other records are not decisions: skipped

[columns]
event_id = "id"            # without one: a stable hash of the record
ts = ["time", "timestamp"] # required
identity = "user.email"
identity_id = "user.id"
session = "session_id"
server = "upstream"
method = "rpc.method"
tool = "rpc.params.name"
args = "rpc.params.arguments"   # an object (or a JSON string); its keys fill arg_keys
# arg_keys = "arg_names"        # an object's keys or an array of names
rule = "policy.rule"
message = "reason"
policy_id = "policy.id"
policy_version = "policy.version"
client_addr = "client.ip"       # the network address the proxy saw; never the identity
upstream_status = "upstream.status"
latency_ms = "duration"

[timestamp]
unit = "auto"              # for epoch numbers: auto (by magnitude), s, ms, us, ns
# format = "%d/%b/%Y:%H:%M:%S %z"   # strftime, for text that is not RFC 3339

[latency]
unit = "ms"                # of bare numbers: s, ms, us, ns ("3ms", "1.5s" carry their own)

[decision]
path = "outcome"           # its value, looked up in `map` (any case), then in verdict's own
                           # vocabulary (allow, deny, rate_limited, approval_required, error)
map = { ok = "allow", blocked = "deny", throttled = "rate_limited", true = "allow", false = "deny" }
status = "status"          # without a decision value: 429 rate_limited, 401/403 deny, 5xx error, 2xx allow
default = "unknown"        # when neither says anything
"#;

impl Mapping {
    /// Parses and validates a mapping from TOML text.
    ///
    /// # Errors
    /// A [`MappingError`] naming the key at fault (TOML syntax errors carry line and column).
    pub fn from_toml(text: &str) -> Result<Mapping, MappingError> {
        let file: MappingFile = toml::from_str(text).map_err(|e| MappingError {
            key: None,
            message: e.to_string().trim_end().to_string(),
        })?;
        let base = file
            .base
            .as_deref()
            .map(|b| b.parse::<Format>().map_err(|m| err("base", m)))
            .transpose()?;
        let name = match (&file.name, base) {
            (Some(n), _) if !n.trim().is_empty() => n.trim().to_string(),
            (_, Some(b)) => b.name().to_string(),
            _ => {
                return Err(err(
                    "name",
                    "a mapping without `base` needs a `name` (the rows' source)",
                ))
            }
        };
        let records = file
            .records
            .as_deref()
            .map(|r| Path::parse(r).map_err(|m| err("records", m)))
            .transpose()?;
        if base.is_some() && records.is_some() {
            return Err(err(
                "records",
                "fan-out is the base format's; drop `records` or `base`",
            ));
        }
        let only = file
            .only
            .map(|o| {
                Ok::<_, MappingError>((
                    Path::parse(&o.path).map_err(|m| err("only.path", m))?,
                    o.values,
                ))
            })
            .transpose()?;
        let c = &file.columns;
        let p = |v: &Option<OneOrMany>, key: &str| {
            v.as_ref()
                .map(|x| x.paths(&format!("columns.{key}")))
                .transpose()
        };
        let mut texts = Vec::new();
        for (col, v, key) in [
            (TextCol::EventId, &c.event_id, "event_id"),
            (TextCol::Identity, &c.identity, "identity"),
            (TextCol::IdentityId, &c.identity_id, "identity_id"),
            (TextCol::Session, &c.session, "session"),
            (TextCol::Server, &c.server, "server"),
            (TextCol::Method, &c.method, "method"),
            (TextCol::Tool, &c.tool, "tool"),
            (TextCol::Rule, &c.rule, "rule"),
            (TextCol::Message, &c.message, "message"),
            (TextCol::PolicyId, &c.policy_id, "policy_id"),
            (TextCol::PolicyVersion, &c.policy_version, "policy_version"),
            (TextCol::ClientAddr, &c.client_addr, "client_addr"),
        ] {
            if let Some(paths) = p(v, key)? {
                texts.push((col, paths));
            }
        }
        let ts = p(&c.ts, "ts")?;
        if base.is_none() && ts.is_none() {
            return Err(err(
                "columns.ts",
                "required: the path of the record's timestamp",
            ));
        }
        let unit_of = |u: &Option<String>, key: &str, default: Unit| {
            u.as_deref()
                .map_or(Ok(default), |s| Unit::parse(s).map_err(|m| err(key, m)))
        };
        let latency_unit = unit_of(&file.latency.unit, "latency.unit", Unit::Millis)?;
        if latency_unit == Unit::Auto {
            return Err(err(
                "latency.unit",
                "a duration needs a unit: s, ms, us or ns",
            ));
        }
        if file.latency.format.is_some() {
            return Err(err(
                "latency.format",
                "durations take a `unit`, not a `format`",
            ));
        }
        let decision = match file.decision {
            None => None,
            Some(d) => {
                let mut map = Vec::new();
                for (k, v) in &d.map {
                    let dec = v
                        .parse::<Decision>()
                        .map_err(|e| err(format!("decision.map.{k}"), e.to_string()))?;
                    map.push((k.to_ascii_lowercase(), dec));
                }
                let default = d
                    .default
                    .as_deref()
                    .map(|s| {
                        s.parse::<Decision>()
                            .map_err(|e| err("decision.default", e.to_string()))
                    })
                    .transpose()?;
                let paths = d
                    .path
                    .as_ref()
                    .map(|x| x.paths("decision.path"))
                    .transpose()?
                    .unwrap_or_default();
                let status = d
                    .status
                    .as_ref()
                    .map(|x| x.paths("decision.status"))
                    .transpose()?
                    .unwrap_or_default();
                if paths.is_empty() && status.is_empty() && default.is_none() {
                    return Err(err("decision", "give a `path`, a `status` or a `default`"));
                }
                Some(DecisionSpec {
                    paths,
                    map,
                    status,
                    default,
                })
            }
        };
        if base.is_none() && decision.is_none() {
            return Err(err(
                "decision",
                "required: where the decision is (`[decision] path = ...`)",
            ));
        }
        Ok(Mapping {
            name,
            base,
            records,
            only,
            texts,
            ts,
            ts_unit: unit_of(&file.timestamp.unit, "timestamp.unit", Unit::Auto)?,
            ts_format: file.timestamp.format,
            arg_keys: p(&c.arg_keys, "arg_keys")?,
            args: p(&c.args, "args")?,
            upstream_status: p(&c.upstream_status, "upstream_status")?,
            latency: p(&c.latency_ms, "latency_ms")?,
            latency_unit,
            decision,
        })
    }

    /// The `source` name of the rows.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The built-in format this mapping extends, if any.
    pub fn base(&self) -> Option<Format> {
        self.base
    }

    /// Decodes one record: with a base format, the base's rows with this mapping's columns on
    /// top; otherwise the mapping alone.
    ///
    /// # Errors
    /// Invalid JSON, a required column (`ts`, the decision) missing, or a value of the wrong
    /// type, naming the mapping's path.
    pub fn decode<'a>(
        &'a self,
        text: &'a str,
        out: &mut Vec<DecisionRecord<'a>>,
    ) -> Result<Outcome, LineError> {
        let start = out.len();
        if let Some(base) = self.base {
            if let Outcome::Skipped(why) = base.decode(text, out)? {
                return Ok(Outcome::Skipped(why));
            }
            let root = json::parse(text)?;
            for rec in &mut out[start..] {
                let element = rec.element.clone();
                let parsed = match &element {
                    Some(e) => Some(json::parse(e)?),
                    None => None,
                };
                let node = parsed.as_ref().unwrap_or(&root);
                self.fill(rec, node, &root)?;
                rec.source = &self.name;
            }
            return Ok(Outcome::Rows);
        }
        let root = json::object(text)?;
        let mut elements = Vec::new();
        match &self.records {
            Some(p) => p.get_all(&root, &mut elements),
            None => elements.push(&root),
        }
        let fanned = self.records.is_some();
        let mut rows = Vec::with_capacity(elements.len());
        let mut left_out = 0;
        for (i, el) in elements.into_iter().enumerate() {
            if let Some((path, values)) = &self.only {
                let v = if path.is_root() {
                    path.get(&root)
                } else {
                    path.get(el)
                };
                let v = v.and_then(Node::scalar_text);
                if !v.is_some_and(|v| values.iter().any(|want| *want == v)) {
                    left_out += 1;
                    continue;
                }
            }
            let get = |paths: &Option<Vec<Path>>| resolve(paths.as_deref(), el, &root);
            let ts_paths = self.ts.as_deref().unwrap_or_default();
            let ts_field = path_names(ts_paths);
            let ts = match (&self.ts_format, get(&self.ts)) {
                (Some(fmt), Some(Node::Str(s))) => parse_with_format(s, fmt).ok_or_else(|| {
                    LineError::field(
                        LineErrorKind::BadTimestamp,
                        ts_field.clone(),
                        format!("`{s}` does not match the format `{fmt}`"),
                    )
                })?,
                (_, v) => timestamp(v, &ts_field, self.ts_unit)?,
            };
            let element_text: Option<Cow<'a, str>> = fanned.then(|| Cow::Owned(el.to_json()));
            let decision = self.decide(el, &root)?.ok_or_else(|| {
                let spec = self.decision.as_ref();
                let names = spec.map_or_else(String::new, |d| path_names(&d.paths));
                LineError::field(
                    LineErrorKind::MissingField,
                    names,
                    "no decision value and no `default` in the mapping",
                )
            })?;
            let hash_text = match &element_text {
                Some(e) => Cow::Owned(format!("{text}#{i}:{e}")),
                None => Cow::Borrowed(text),
            };
            let mut rec = DecisionRecord::new(Cow::Borrowed(""), ts, &self.name, decision);
            self.fill(&mut rec, el, &root)?;
            if rec.event_id.is_empty() {
                rec.event_id = event_id(None, &self.name, &hash_text);
            }
            rec.element = element_text;
            rows.push(rec);
        }
        if rows.is_empty() && left_out > 0 {
            return Ok(Outcome::Skipped(Skip::MappingOnly));
        }
        out.extend(rows);
        Ok(Outcome::Rows)
    }

    /// Sets every column the mapping names (over a base format's values).
    fn fill<'a>(
        &self,
        rec: &mut DecisionRecord<'a>,
        el: &Node<'_>,
        root: &Node<'_>,
    ) -> Result<(), LineError> {
        for (col, paths) in &self.texts {
            let v = resolve(Some(paths), el, root).and_then(|v| text_or_json(Some(v)));
            let Some(v) = v.map(|c| Cow::Owned(c.into_owned())) else {
                continue;
            };
            match col {
                TextCol::EventId => rec.event_id = v,
                TextCol::Identity => rec.identity = Some(v),
                TextCol::IdentityId => rec.identity_id = Some(v),
                TextCol::Session => rec.session = Some(v),
                TextCol::Server => rec.server = Some(v),
                TextCol::Method => rec.method = Some(v),
                TextCol::Tool => rec.tool = Some(v),
                TextCol::Rule => rec.rule = Some(v),
                TextCol::Message => rec.message = Some(v),
                TextCol::PolicyId => rec.policy_id = Some(v),
                TextCol::PolicyVersion => rec.policy_version = Some(v),
                TextCol::ClientAddr => rec.client_addr = Some(v),
            }
        }
        if self.base.is_some() {
            if let Some(paths) = &self.ts {
                if let Some(v) = resolve(Some(paths), el, root) {
                    rec.ts_micros = timestamp(Some(v), &path_names(paths), self.ts_unit)?;
                }
            }
            if let Some(d) = self.decide(el, root)? {
                rec.decision = d;
            }
        }
        if let Some(paths) = &self.args {
            if let Some(v) = resolve(Some(paths), el, root) {
                let parsed;
                let obj = match v {
                    Node::Str(s) => {
                        parsed = json::parse(s).ok();
                        parsed.as_ref()
                    }
                    other => Some(other),
                };
                if let Some(o @ Node::Obj(_)) = obj {
                    rec.args = Some(Cow::Owned(o.to_json()));
                    rec.arg_keys = o.sorted_keys().map(owned_keys);
                }
            }
        }
        if let Some(paths) = &self.arg_keys {
            if let Some(v) = resolve(Some(paths), el, root) {
                rec.arg_keys = match v {
                    Node::Obj(_) => v.sorted_keys().map(owned_keys),
                    Node::Arr(items) => {
                        let mut keys: Vec<Cow<'a, str>> = items
                            .iter()
                            .filter_map(Node::scalar_text)
                            .map(|k| Cow::Owned(k.into_owned()))
                            .collect();
                        keys.sort();
                        keys.dedup();
                        Some(keys)
                    }
                    _ => {
                        return Err(LineError::field(
                            LineErrorKind::WrongType,
                            path_names(paths),
                            format!(
                                "expected an object or an array of names, got {}",
                                v.type_name()
                            ),
                        ))
                    }
                };
            }
        }
        if let Some(paths) = &self.upstream_status {
            rec.upstream_status = status(resolve(Some(paths), el, root), &path_names(paths))?;
        }
        if let Some(paths) = &self.latency {
            rec.latency_ms = duration_ms(
                resolve(Some(paths), el, root),
                &path_names(paths),
                self.latency_unit,
            )?;
        }
        Ok(())
    }

    /// The decision per the `[decision]` table; `None` when it has nothing to say.
    fn decide(&self, el: &Node<'_>, root: &Node<'_>) -> Result<Option<Decision>, LineError> {
        let Some(spec) = &self.decision else {
            return Ok(None);
        };
        if let Some(v) = resolve(Some(&spec.paths), el, root) {
            let Some(text) = v.scalar_text() else {
                return Err(LineError::field(
                    LineErrorKind::WrongType,
                    path_names(&spec.paths),
                    format!("expected a decision value, got {}", v.type_name()),
                ));
            };
            let lower = text.to_ascii_lowercase();
            if let Some((_, d)) = spec.map.iter().find(|(k, _)| *k == lower) {
                return Ok(Some(*d));
            }
            if let Some(d) = vocabulary(&lower) {
                return Ok(Some(d));
            }
            return Err(LineError::field(
                LineErrorKind::UnknownDecision,
                path_names(&spec.paths),
                format!("`{text}` is not in the mapping's `decision.map` nor a known decision"),
            ));
        }
        if !spec.status.is_empty() {
            let code = status(
                resolve(Some(&spec.status), el, root),
                &path_names(&spec.status),
            )?;
            if code.is_some() {
                return Ok(Some(decision_from_status(code)));
            }
        }
        Ok(spec.default)
    }
}

fn owned_keys<'a>(keys: Vec<Cow<'_, str>>) -> Vec<Cow<'a, str>> {
    keys.into_iter()
        .map(|k| Cow::Owned(k.into_owned()))
        .collect()
}

fn resolve<'n>(
    paths: Option<&[Path]>,
    el: &'n Node<'n>,
    root: &'n Node<'n>,
) -> Option<&'n Node<'n>> {
    paths?
        .iter()
        .find_map(|p| if p.is_root() { p.get(root) } else { p.get(el) })
}

fn path_names(paths: &[Path]) -> String {
    paths
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

fn vocabulary(s: &str) -> Option<Decision> {
    Some(match s {
        "allow" | "allowed" | "permit" | "success" => Decision::Allow,
        "deny" | "denied" | "forbid" | "blocked" => Decision::Deny,
        "rate_limited" | "ratelimited" | "rate-limited" | "throttled" => Decision::RateLimited,
        "approval_required" | "pending_approval" => Decision::ApprovalRequired,
        "error" => Decision::Error,
        "unknown" => Decision::Unknown,
        _ => return None,
    })
}

/// Parses text with a strftime format; without an offset in the format, the time is UTC.
fn parse_with_format(s: &str, fmt: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_str(s, fmt) {
        return Some(t.timestamp_micros());
    }
    chrono::NaiveDateTime::parse_from_str(s, fmt)
        .ok()
        .map(|t| t.and_utc().timestamp_micros())
}
