//! Cedarling (Janssen) decision logs (spec/proxy-formats.md 4): JSON lines with a `log_kind`;
//! only `Decision` entries are rows, the `System`, `Metric` and debug entries yield none.
//!
//! Mapping choices:
//! - event_id ← `id` (the log entry, unique per decision), else `request_id`, else the hash.
//! - decision ← `decision` `ALLOW`/`DENY` (any case; a bool is accepted too).
//! - identity ← `principal`: a string, or the entries of a non-empty array joined with `, `;
//!   when it is `[]` (multi-issuer mode) or absent, the first `tokens.*.jti`.
//! - tool ← the id of the Cedar action: `Jans::Action::"Update"` gives `Update` (the text after
//!   the last `::`, without its quotes); method stays null, Cedarling knows no JSON-RPC method.
//! - server ← `resource` as logged (`Jans::Issue::"random_id"`: the entity the action is on).
//! - rule ← `diagnostics.reason[]`, each `id: description` (older builds: plain ids), joined
//!   with `; `; message ← `diagnostics.errors[]` likewise.
//! - policy_id / policy_version ← `policystore_id` / `policystore_version`.
//! - latency ← `decision_time_micro_sec` (µs), else the older `decision_time_ms`.

use std::borrow::Cow;

use crate::common::{duration_ms, event_id, text, text_or_json, timestamp, Unit};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of Cedarling rows.
pub const SOURCE: &str = "cedarling";

/// `log_kind` with a `decision` and a `policystore_id`.
pub fn matches(r: &Node<'_>) -> bool {
    r.get("log_kind").and_then(Node::as_str).is_some()
        && r.get("decision").is_some()
        && r.get("policystore_id").is_some()
}

/// The id of a Cedar entity uid: `Jans::Action::"Update"` gives `Update`. The type path holds
/// no quote, so the id's literal starts at the first `::"`; a bare name is kept as it is.
pub fn entity_id(uid: &str) -> Cow<'_, str> {
    let uid = uid.trim();
    if let Some(start) = uid.find("::\"") {
        if let Some(lit) = uid[start + 3..].strip_suffix('"') {
            return if lit.contains('\\') {
                Cow::Owned(lit.replace("\\\"", "\"").replace("\\\\", "\\"))
            } else {
                Cow::Borrowed(lit)
            };
        }
    }
    match uid.rfind("::") {
        Some(i) => Cow::Borrowed(&uid[i + 2..]),
        None => Cow::Borrowed(uid),
    }
}

/// Decodes one Cedarling log entry.
///
/// # Errors
/// Invalid JSON, a missing `log_kind`, a missing or bad `timestamp`, a missing or unknown
/// `decision`, or a field of the wrong type, each naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<(), LineError> {
    let r = json::parse(line)?;
    if r.as_object().is_none() {
        return Err(LineError::record(
            LineErrorKind::WrongType,
            "expected a JSON object",
        ));
    }
    match text(r.get("log_kind"), "log_kind")? {
        Some(k) if k == "Decision" => {}
        Some(_) => return Ok(()),
        None => {
            return Err(LineError::field(
                LineErrorKind::MissingField,
                "log_kind",
                "not a Cedarling log entry: `log_kind` is missing",
            ))
        }
    }
    let ts = timestamp(r.get("timestamp"), "timestamp", Unit::Auto)?;
    let decision = match r.get("decision") {
        None | Some(Node::Null) => {
            return Err(LineError::field(
                LineErrorKind::MissingField,
                "decision",
                "a Decision entry without a decision",
            ))
        }
        Some(Node::Bool(true)) => Decision::Allow,
        Some(Node::Bool(false)) => Decision::Deny,
        Some(Node::Str(s)) if s.eq_ignore_ascii_case("allow") => Decision::Allow,
        Some(Node::Str(s)) if s.eq_ignore_ascii_case("deny") => Decision::Deny,
        Some(other) => {
            return Err(LineError::field(
                LineErrorKind::UnknownDecision,
                "decision",
                format!("expected ALLOW or DENY, got {}", other.to_json()),
            ))
        }
    };
    let id = match text(r.get("id"), "id")? {
        Some(id) => Some(id),
        None => text(r.get("request_id"), "request_id")?,
    };
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    rec.identity = match r.get("principal") {
        Some(Node::Arr(items)) if !items.is_empty() => {
            let names: Vec<String> = items
                .iter()
                .filter_map(|v| text_or_json(Some(v)).map(Cow::into_owned))
                .collect();
            (!names.is_empty()).then(|| Cow::Owned(names.join(", ")))
        }
        Some(n @ Node::Str(_)) => text(Some(n), "principal")?,
        _ => None,
    };
    if rec.identity.is_none() {
        rec.identity = token_jti(&r);
    }
    rec.tool = match text(r.get("action"), "action")? {
        Some(Cow::Borrowed(a)) => Some(entity_id(a)),
        Some(Cow::Owned(a)) => Some(Cow::Owned(entity_id(&a).into_owned())),
        None => None,
    }
    .filter(|t| !t.is_empty());
    rec.server = text_or_json(r.get("resource"));
    let diagnostics = r.get("diagnostics");
    rec.rule = joined(diagnostics.and_then(|d| d.get("reason")), &["description"]);
    rec.message = joined(
        diagnostics.and_then(|d| d.get("errors")),
        &["error", "message"],
    );
    rec.policy_id = text(r.get("policystore_id"), "policystore_id")?;
    rec.policy_version = text(r.get("policystore_version"), "policystore_version")?;
    rec.latency_ms = match r.get("decision_time_micro_sec") {
        Some(n) if !n.is_null() => duration_ms(Some(n), "decision_time_micro_sec", Unit::Micros)?,
        _ => duration_ms(r.get("decision_time_ms"), "decision_time_ms", Unit::Millis)?,
    };
    out.push(rec);
    Ok(())
}

/// The first `jti` of the `tokens` object.
fn token_jti<'a>(r: &Node<'a>) -> Option<Cow<'a, str>> {
    r.get("tokens")?
        .as_object()?
        .iter()
        .find_map(|(_, t)| t.get("jti").and_then(Node::scalar_text))
        .filter(|j| !j.is_empty())
}

/// Diagnostics entries as text: a plain id, or `id: <detail>` from the first of `detail_keys`.
fn joined<'a>(list: Option<&Node<'a>>, detail_keys: &[&str]) -> Option<Cow<'a, str>> {
    let items = list?.as_array()?;
    let texts: Vec<String> = items
        .iter()
        .filter_map(|item| match item {
            Node::Obj(_) => {
                let id = item.get("id").and_then(Node::scalar_text);
                let detail = detail_keys
                    .iter()
                    .find_map(|k| item.get(k).and_then(Node::scalar_text))
                    .filter(|d| !d.is_empty());
                match (id, detail) {
                    (Some(i), Some(d)) => Some(format!("{i}: {d}")),
                    (Some(i), None) => Some(i.into_owned()),
                    (None, Some(d)) => Some(d.into_owned()),
                    (None, None) => Some(item.to_json()),
                }
            }
            other => text_or_json(Some(other)).map(Cow::into_owned),
        })
        .filter(|t| !t.is_empty())
        .collect();
    (!texts.is_empty()).then(|| Cow::Owned(texts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"id":"0193414e-8a1c-7f3b-9c2e-1a2b3c4d5e6f","request_id":"0193414e-8a1b-7000-8000-000000000001","timestamp":"2026-11-05T05:27:43.403Z","log_kind":"Decision","policystore_id":"a1bf93115de8","policystore_version":"1.6.15","principal":["Jans::User"],"action":"Jans::Action::\"Update\"","resource":"Jans::Issue::\"random_id\"","decision":"DENY","diagnostics":{"reason":[{"id":"840da5d85403f35ea76519ed1a18a33989f855bf1cf8","description":"policy for user"}],"errors":[]},"decision_time_micro_sec":3}"#;

    fn one(line: &str) -> DecisionRecord<'static> {
        crate::decode_one(crate::Format::Cedarling, line)
    }

    #[test]
    fn the_spec_example_maps_every_column() {
        let r = one(SPEC);
        assert_eq!(r.event_id, "0193414e-8a1c-7f3b-9c2e-1a2b3c4d5e6f");
        assert_eq!(r.ts_micros, 1_793_856_463_403_000);
        assert_eq!(r.identity.as_deref(), Some("Jans::User"));
        assert_eq!(r.tool.as_deref(), Some("Update"));
        assert_eq!(r.method, None);
        assert_eq!(r.server.as_deref(), Some("Jans::Issue::\"random_id\""));
        assert_eq!(r.decision, Decision::Deny);
        assert_eq!(
            r.rule.as_deref(),
            Some("840da5d85403f35ea76519ed1a18a33989f855bf1cf8: policy for user")
        );
        assert_eq!(r.message, None);
        assert_eq!(r.policy_id.as_deref(), Some("a1bf93115de8"));
        assert_eq!(r.policy_version.as_deref(), Some("1.6.15"));
        assert_eq!(r.latency_ms, Some(0.003));
        assert!(matches(&json::parse(SPEC).unwrap()));
    }

    #[test]
    fn older_builds_and_multi_issuer_principals() {
        let old = SPEC
            .replace(
                r#"[{"id":"840da5d85403f35ea76519ed1a18a33989f855bf1cf8","description":"policy for user"}]"#,
                r#"["p1","p2"]"#,
            )
            .replace("\"decision_time_micro_sec\":3", "\"decision_time_ms\":2");
        let r = one(&old);
        assert_eq!(
            (r.rule.as_deref(), r.latency_ms),
            (Some("p1; p2"), Some(2.0))
        );
        let multi = SPEC.replace(
            "\"principal\":[\"Jans::User\"]",
            r#""principal":[],"tokens":{"access_token":{"jti":"at-1"},"id_token":{"jti":"it-1"}}"#,
        );
        assert_eq!(one(&multi).identity.as_deref(), Some("at-1"));
        assert_eq!(
            one(&SPEC.replace("\"DENY\"", "\"allow\"")).decision,
            Decision::Allow
        );
        let e = decode(&SPEC.replace("\"DENY\"", "\"MAYBE\""), &mut Vec::new()).unwrap_err();
        assert_eq!(e.kind, LineErrorKind::UnknownDecision);
    }

    #[test]
    fn other_log_kinds_are_skipped() {
        let mut out = Vec::new();
        decode(
            r#"{"id":"1","timestamp":"2026-11-05T05:27:43Z","log_kind":"System","level":"INFO","msg":"Cedarling Authz initialized successfully"}"#,
            &mut out,
        )
        .unwrap();
        assert!(out.is_empty());
        let e = decode(&SPEC.replace("2026-11-05T05:27:43.403Z", "later"), &mut out).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("timestamp"))
        );
        assert_eq!(entity_id("Update"), "Update");
        assert_eq!(entity_id("Jans::Action::Read"), "Read");
        assert_eq!(entity_id(r#"A::B::"x::y""#), "x::y");
        assert_eq!(entity_id(r#"A::"say \"hi\"""#), r#"say "hi""#);
    }
}
