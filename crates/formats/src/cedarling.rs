//! Cedarling (Janssen) decision logs (README "Input formats"): JSON lines with a `log_kind`;
//! only `Decision` entries are rows, the `System`, `Metric` and debug entries are skipped as
//! `server_log`. Four shapes are in the field, each read:
//! - current builds: `log_kind`, RFC 3339 `timestamp`, `policystore_id`, one `decision`, the
//!   principals as entity objects (`"principal":"User & Workload"` with `User` and `Workload`
//!   objects) or as a list of type names (`["Jans::User"]`);
//! - `2024 log_type` (builds of late 2024): `log_type` instead of `log_kind`, `decision_time_ms`;
//! - `2024 epoch time` (October 2024): epoch-seconds `time`, no policy store, the principal as
//!   an entity uid (`Jans::Workload::"5b44..."`), diagnostics as plain ids;
//! - `2024 per-principal decisions` (November 2024): `person_principal`/`person_decision` and
//!   `workload_principal`/`workload_decision` with the combined `authorized` bool.
//!
//! Mapping choices:
//! - event_id ← `id` (the log entry, unique per decision), else `request_id`, else the hash.
//! - decision ← `decision` `ALLOW`/`DENY` (any case; a bool is accepted too), else
//!   `authorized`, else both per-principal decisions (allow only when both allow).
//! - identity ← the person's id where there is one, else the workload's: the `User` object's
//!   `sub` (else `username`, `email`), the `Workload` object's `client_id`, the id inside an
//!   entity uid (`Jans::User::"qzxn..."` gives `qzxn...`). A bare type name (`Jans::User`) or
//!   the label `User & Workload` is never an identity; without an id the first `tokens.*.jti`
//!   stands in (multi-issuer mode). When both a person and a workload are logged the workload's
//!   id stays in `raw` (the `Workload` object, `workload_principal`).
//! - tool ← the id of the Cedar action: `Jans::Action::"Update"` gives `Update` (the text after
//!   the last `::`, without its quotes); method stays null, Cedarling knows no JSON-RPC method.
//! - server ← `resource` as logged (`Jans::Issue::"random_id"`: the entity the action is on).
//! - rule ← `diagnostics.reason[]`, each `id: description` (older builds: plain ids), joined
//!   with `; ` (per-principal builds: the person's, then the workload's); message ←
//!   `diagnostics.errors[]` likewise.
//! - policy_id / policy_version ← `policystore_id` / `policystore_version`.
//! - latency ← `decision_time_micro_sec` (µs), else the older `decision_time_ms`.

use std::borrow::Cow;

use crate::common::{duration_ms, event_id, text, text_or_json, timestamp, unrecognised, Unit};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of Cedarling rows.
pub const SOURCE: &str = "cedarling";

/// The entry kind: `log_kind`, or `log_type` in late-2024 builds.
fn kind<'n, 'a>(r: &'n Node<'a>) -> Option<&'n str> {
    r.get("log_kind")
        .or_else(|| r.get("log_type"))
        .and_then(Node::as_str)
}

/// `log_kind` (or `log_type`) with a `pdp_id`, a `decision`, a per-principal decision or a
/// `policystore_id`.
pub fn matches(r: &Node<'_>) -> bool {
    kind(r).is_some()
        && [
            "pdp_id",
            "decision",
            "policystore_id",
            "person_decision",
            "workload_decision",
        ]
        .iter()
        .any(|k| r.get(k).is_some())
}

/// The shape of one entry (see the module documentation); `None` for current builds.
pub fn shape(r: &Node<'_>) -> Option<&'static str> {
    if r.get("log_kind").is_none() && r.get("log_type").is_some() {
        Some("2024 log_type")
    } else if r.get("person_decision").is_some() || r.get("workload_decision").is_some() {
        Some("2024 per-principal decisions")
    } else if r.get("timestamp").is_none() && r.get("time").is_some() {
        Some("2024 epoch time")
    } else {
        None
    }
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

/// The id inside an entity uid (`Jans::User::"qzxn"` gives `qzxn`); `None` for a bare type
/// name (`Jans::User`) or a label, which name no one.
fn principal_id(uid: &str) -> Option<Cow<'_, str>> {
    uid.contains("::\"")
        .then(|| entity_id(uid))
        .filter(|id| !id.is_empty())
}

/// `ALLOW`/`DENY` (any case) or a bool.
fn decision_of(node: &Node<'_>, field: &str) -> Result<Decision, LineError> {
    match node {
        Node::Bool(true) => Ok(Decision::Allow),
        Node::Bool(false) => Ok(Decision::Deny),
        Node::Str(s) if s.eq_ignore_ascii_case("allow") => Ok(Decision::Allow),
        Node::Str(s) if s.eq_ignore_ascii_case("deny") => Ok(Decision::Deny),
        other => Err(LineError::field(
            LineErrorKind::UnknownDecision,
            field,
            format!("expected ALLOW or DENY, got {}", other.to_json()),
        )),
    }
}

/// The entry's decision: `decision`, else `authorized`, else both per-principal decisions.
fn decide(r: &Node<'_>) -> Result<Decision, LineError> {
    for key in ["decision", "authorized"] {
        if let Some(v) = r.get(key).filter(|v| !v.is_null()) {
            return decision_of(v, key);
        }
    }
    let mut any = false;
    let mut all_allow = true;
    for key in ["person_decision", "workload_decision"] {
        if let Some(v) = r.get(key).filter(|v| !v.is_null()) {
            any = true;
            all_allow &= decision_of(v, key)? == Decision::Allow;
        }
    }
    if !any {
        return Err(LineError::field(
            LineErrorKind::MissingField,
            "decision",
            "a Decision entry without a decision",
        ));
    }
    Ok(if all_allow {
        Decision::Allow
    } else {
        Decision::Deny
    })
}

/// The caller's id: the person's where logged, else the workload's (see the module docs).
fn identity<'a>(r: &Node<'a>) -> Option<Cow<'a, str>> {
    let user = r.get("User").or_else(|| r.get("user"));
    let from_user = user.and_then(|u| {
        ["sub", "username", "user_id", "email"]
            .iter()
            .find_map(|k| u.get(k).and_then(Node::scalar_text))
    });
    let from_person = r
        .get("person_principal")
        .and_then(Node::as_str)
        .and_then(principal_id)
        .map(|c| Cow::Owned(c.into_owned()));
    let from_principal = match r.get("principal") {
        Some(Node::Str(s)) => principal_id(s).map(|c| Cow::Owned(c.into_owned())),
        Some(Node::Arr(items)) => items
            .iter()
            .filter_map(Node::as_str)
            .find_map(principal_id)
            .map(|c| Cow::Owned(c.into_owned())),
        _ => None,
    };
    let workload = r.get("Workload").or_else(|| r.get("workload"));
    let from_workload = workload.and_then(|w| {
        ["client_id", "id", "sub"]
            .iter()
            .find_map(|k| w.get(k).and_then(Node::scalar_text))
    });
    let from_workload_principal = r
        .get("workload_principal")
        .and_then(Node::as_str)
        .and_then(principal_id)
        .map(|c| Cow::Owned(c.into_owned()));
    from_user
        .or(from_person)
        .or(from_principal)
        .or(from_workload)
        .or(from_workload_principal)
        .filter(|id| !id.is_empty())
        .or_else(|| token_jti(r))
}

/// Decodes one Cedarling log entry.
///
/// # Errors
/// Invalid JSON, a missing `log_kind`, a missing or bad `timestamp`, a missing or unknown
/// `decision`, or a field of the wrong type, each naming the field.
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    match kind(&r) {
        Some("Decision") => {}
        Some("System" | "Metric" | "Debug" | "Info" | "Error" | "Warn") => {
            return Ok(Outcome::Skipped(Skip::ServerLog))
        }
        _ => {
            return Err(unrecognised(
                &r,
                "not a Cedarling entry of a known kind (`log_kind` Decision, System, Metric ...)",
            ))
        }
    }
    let ts = match r.get("timestamp") {
        Some(t) if !t.is_null() => timestamp(Some(t), "timestamp", Unit::Auto)?,
        _ => timestamp(r.get("time"), "timestamp", Unit::Seconds)?,
    };
    let decision = decide(&r)?;
    let id = match text(r.get("id"), "id")? {
        Some(id) => Some(id),
        None => text(r.get("request_id"), "request_id")?,
    };
    let mut rec = DecisionRecord::new(event_id(id, SOURCE, line), ts, SOURCE, decision);
    rec.identity = identity(&r);
    rec.tool = match text(r.get("action"), "action")? {
        Some(Cow::Borrowed(a)) => Some(entity_id(a)),
        Some(Cow::Owned(a)) => Some(Cow::Owned(entity_id(&a).into_owned())),
        None => None,
    }
    .filter(|t| !t.is_empty());
    rec.server = text_or_json(r.get("resource"));
    let reasons: Vec<Cow<'a, str>> = ["diagnostics", "person_diagnostics", "workload_diagnostics"]
        .iter()
        .filter_map(|k| joined(r.get(k).and_then(|d| d.get("reason")), &["description"]))
        .collect();
    rec.rule = (!reasons.is_empty()).then(|| Cow::Owned(reasons.join("; ")));
    let errors: Vec<Cow<'a, str>> = ["diagnostics", "person_diagnostics", "workload_diagnostics"]
        .iter()
        .filter_map(|k| {
            joined(
                r.get(k).and_then(|d| d.get("errors")),
                &["error", "message"],
            )
        })
        .collect();
    rec.message = (!errors.is_empty()).then(|| Cow::Owned(errors.join("; ")));
    rec.policy_id = text(r.get("policystore_id"), "policystore_id")?;
    rec.policy_version = text(r.get("policystore_version"), "policystore_version")?;
    rec.latency_ms = match r.get("decision_time_micro_sec") {
        Some(n) if !n.is_null() => duration_ms(Some(n), "decision_time_micro_sec", Unit::Micros)?,
        _ => duration_ms(r.get("decision_time_ms"), "decision_time_ms", Unit::Millis)?,
    };
    out.push(rec);
    Ok(Outcome::Rows)
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
        // A type name names no one: no identity (and no token to stand in).
        assert_eq!(r.identity, None);
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
