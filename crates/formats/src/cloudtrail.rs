//! Amazon Verified Permissions decisions in CloudTrail (README "Input formats"): data events
//! `IsAuthorized`, `IsAuthorizedWithToken` and their `Batch…` forms. A record is one event, or
//! the `{"Records":[…]}` object CloudTrail delivers to S3 (gzip), fanned out here: each row keeps
//! its own event's text as `raw`. Events of other services, and AVP management events
//! (`CreatePolicy` …), yield no row.
//!
//! Mapping choices:
//! - event_id ← `requestID` (else `eventID`); a batch gives one row per request, `<id>:<index>`.
//! - identity ← the principal's `entityId` (`alice`); identity_id ← its Cedar uid
//!   `PhotoFlash::User::"alice"`. `userIdentity` is the PEP calling AVP, not the caller.
//! - tool ← `action.actionId`; method stays null (AVP knows no JSON-RPC method).
//! - server ← the resource's Cedar uid `PhotoFlash::Photo::"VacationPhoto94.jpg"`.
//! - policy_id ← `policyStoreId`; rule ← `determiningPolicies[].policyId` where logged.
//! - decision ← `additionalEventData.decision` (batch: `additionalEventData.results[i].decision`)
//!   `ALLOW`/`DENY`; an `errorCode` (the AVP call failed, throttling included) is an error with
//!   `errorCode: errorMessage` as message; no decision and no error: unknown.
//! - A bad event inside `Records` rejects the line, naming `Records[i].<field>`.
//! - A digest file's object (`digestStartTime`) yields no row; any other object without
//!   `eventSource` or `Records` is an error.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::common::{at, event_id, text, timestamp, unrecognised, Unit};
use crate::error::{LineError, LineErrorKind};
use crate::json::{self, Node};
use crate::{Outcome, Skip};
use verdict_schema::Decision;
use verdict_schema::DecisionRecord;

/// The `source` value of CloudTrail rows.
pub const SOURCE: &str = "cloudtrail";

const AVP: &str = "verifiedpermissions.amazonaws.com";

/// The decision events of AVP.
const DECISION_EVENTS: &[&str] = &[
    "IsAuthorized",
    "IsAuthorizedWithToken",
    "BatchIsAuthorized",
    "BatchIsAuthorizedWithToken",
];

/// An AVP event (`eventSource` + `additionalEventData`), or a `Records` array holding one.
pub fn matches(r: &Node<'_>) -> bool {
    is_avp(r)
        || r.get("Records")
            .and_then(Node::as_array)
            .is_some_and(|items| items.iter().any(is_avp))
}

fn is_avp(r: &Node<'_>) -> bool {
    r.get("eventSource").and_then(Node::as_str) == Some(AVP)
        && r.get("additionalEventData").is_some()
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<&'a RawValue>,
}

/// Decodes one CloudTrail event, or every AVP decision event of a `Records` object.
///
/// # Errors
/// Invalid JSON, a missing or bad `eventTime`, an unknown decision, or a field of the wrong
/// type, each naming the field (prefixed `Records[i].` inside an envelope).
pub fn decode<'a>(line: &'a str, out: &mut Vec<DecisionRecord<'a>>) -> Result<Outcome, LineError> {
    let r = json::object(line)?;
    if r.get("eventSource").is_none() {
        if let Some(records) = r.get("Records").filter(|v| !v.is_null()) {
            if records.as_array().is_none() {
                return Err(LineError::field(
                    LineErrorKind::WrongType,
                    "Records",
                    format!("expected an array, got {}", records.type_name()),
                ));
            }
            let env: Envelope<'a> = serde_json::from_str(line)
                .map_err(|e| LineError::record(LineErrorKind::InvalidJson, e.to_string()))?;
            let mut rows = Vec::new();
            for (i, raw) in env.records.iter().enumerate() {
                let text = raw.get();
                let node = json::parse(text)?;
                let before = rows.len();
                event(&node, text, &mut rows).map_err(|mut e| {
                    e.field = Some(match e.field.take() {
                        Some(f) => format!("Records[{i}].{f}"),
                        None => format!("Records[{i}]"),
                    });
                    e
                })?;
                for row in &mut rows[before..] {
                    row.element = Some(Cow::Borrowed(text));
                }
            }
            if rows.is_empty() {
                // Only management events and other services' calls in this file.
                return Ok(Outcome::Skipped(Skip::Management));
            }
            out.append(&mut rows);
            return Ok(Outcome::Rows);
        }
        if r.get("digestStartTime").is_some() {
            // A digest file of the same trail (`CloudTrail-Digest/`): not an event.
            return Ok(Outcome::Skipped(Skip::Management));
        }
        return Err(unrecognised(
            &r,
            "not a CloudTrail event: `eventSource` is missing",
        ));
    }
    event(&r, line, out)
}

/// Rows of one event; a management event of AVP or another service's call is skipped as
/// `management`.
fn event<'a>(
    r: &Node<'a>,
    raw: &'a str,
    out: &mut Vec<DecisionRecord<'a>>,
) -> Result<Outcome, LineError> {
    if r.as_object().is_none() {
        return Err(LineError::record(
            LineErrorKind::WrongType,
            "expected a JSON object",
        ));
    }
    if r.get("eventSource").and_then(Node::as_str) != Some(AVP) {
        return Ok(Outcome::Skipped(Skip::Management));
    }
    let name = text(r.get("eventName"), "eventName")?;
    if !name
        .as_deref()
        .is_some_and(|n| DECISION_EVENTS.contains(&n))
    {
        return Ok(Outcome::Skipped(Skip::Management));
    }
    let ts = timestamp(r.get("eventTime"), "eventTime", Unit::Auto)?;
    let id = match text(r.get("requestID"), "requestID")? {
        Some(id) => Some(id),
        None => text(r.get("eventID"), "eventID")?,
    };
    let id = event_id(id, SOURCE, raw);
    let failure = match text(r.get("errorCode"), "errorCode")? {
        Some(code) => Some(match text(r.get("errorMessage"), "errorMessage")? {
            Some(m) => Cow::Owned(format!("{code}: {m}")),
            None => code,
        }),
        None => None,
    };
    let params = r.get("requestParameters");
    let store = text(
        params.and_then(|p| p.get("policyStoreId")),
        "requestParameters.policyStoreId",
    )?;
    let extra = r.get("additionalEventData");
    let source_ip = r.get("sourceIPAddress").and_then(Node::as_cow);
    let row = |id: Cow<'a, str>,
               req: Option<&Node<'a>>,
               res: Option<&Node<'a>>,
               req_path: &str,
               res_path: &str|
     -> Result<DecisionRecord<'a>, LineError> {
        let decision = match &failure {
            Some(_) => Decision::Error,
            None => decision_of(res.and_then(|n| n.get("decision")), res_path)?,
        };
        let mut rec = DecisionRecord::new(id, ts, SOURCE, decision);
        let request = req.or_else(|| res.and_then(|n| n.get("request")));
        if let Some(p) = request.and_then(|q| q.get("principal")) {
            rec.identity = text(p.get("entityId"), &format!("{req_path}.principal.entityId"))?;
            rec.identity_id = uid(p);
        }
        rec.tool = text(
            request.and_then(|q| at(q, "action.actionId")),
            &format!("{req_path}.action.actionId"),
        )?;
        rec.server = request.and_then(|q| q.get("resource")).and_then(uid);
        rec.policy_id = store.clone();
        rec.client_addr = source_ip.clone();
        rec.rule = determining(res).or_else(|| determining(extra));
        rec.message = failure.clone();
        Ok(rec)
    };
    if name.as_deref().is_some_and(|n| n.starts_with("Batch")) {
        let requests = params
            .and_then(|p| p.get("requests"))
            .and_then(Node::as_array)
            .unwrap_or(&[]);
        let results = extra
            .and_then(|e| e.get("results"))
            .and_then(Node::as_array)
            .unwrap_or(&[]);
        let n = requests.len().max(results.len());
        if n == 0 {
            if failure.is_some() {
                out.push(row(
                    id,
                    None,
                    None,
                    "requestParameters",
                    "additionalEventData",
                )?);
                return Ok(Outcome::Rows);
            }
            return Err(LineError::field(
                LineErrorKind::MissingField,
                "requestParameters.requests",
                "a batch authorization without requests or results",
            ));
        }
        for i in 0..n {
            out.push(row(
                Cow::Owned(format!("{id}:{i}")),
                requests.get(i),
                results.get(i),
                &format!("requestParameters.requests[{i}]"),
                &format!("additionalEventData.results[{i}]"),
            )?);
        }
    } else {
        out.push(row(
            id,
            params,
            extra,
            "requestParameters",
            "additionalEventData",
        )?);
    }
    Ok(Outcome::Rows)
}

fn decision_of(node: Option<&Node<'_>>, parent: &str) -> Result<Decision, LineError> {
    Ok(match node {
        None | Some(Node::Null) => Decision::Unknown,
        Some(Node::Str(s)) if s.eq_ignore_ascii_case("allow") => Decision::Allow,
        Some(Node::Str(s)) if s.eq_ignore_ascii_case("deny") => Decision::Deny,
        Some(other) => {
            return Err(LineError::field(
                LineErrorKind::UnknownDecision,
                format!("{parent}.decision"),
                format!("expected ALLOW or DENY, got {}", other.to_json()),
            ))
        }
    })
}

/// A Cedar entity as its uid text, `Type::"id"` (a bare id when the type is missing).
fn uid<'a>(entity: &Node<'a>) -> Option<Cow<'a, str>> {
    let id = entity.get("entityId").and_then(Node::scalar_text)?;
    match entity.get("entityType").and_then(Node::as_str) {
        Some(t) if !t.is_empty() => Some(Cow::Owned(format!(
            "{t}::{}",
            serde_json::Value::from(id.as_ref())
        ))),
        _ => Some(id),
    }
}

/// `determiningPolicies[].policyId` joined with `; `.
fn determining<'a>(n: Option<&Node<'a>>) -> Option<Cow<'a, str>> {
    let list = n?.get("determiningPolicies")?.as_array()?;
    let ids: Vec<String> = list
        .iter()
        .filter_map(|p| match p {
            Node::Str(s) => Some(s.to_string()),
            _ => p
                .get("policyId")
                .and_then(Node::scalar_text)
                .map(Cow::into_owned),
        })
        .collect();
    (!ids.is_empty()).then(|| Cow::Owned(ids.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{"eventVersion":"1.09","eventTime":"2026-11-05T22:55:03Z","eventSource":"verifiedpermissions.amazonaws.com","eventName":"IsAuthorized","userIdentity":{"arn":"arn:aws:iam::1234:role/Pep"},"requestParameters":{"principal":{"entityType":"PhotoFlash::User","entityId":"alice"},"action":{"actionType":"PhotoFlash::Action","actionId":"ViewPhoto"},"resource":{"entityType":"PhotoFlash::Photo","entityId":"VacationPhoto94.jpg"},"policyStoreId":"PSEXAMPLEabcdefg111111"},"responseElements":null,"additionalEventData":{"decision":"ALLOW"},"requestID":"346c0b0e-1111","eventID":"e-1","eventType":"AwsApiCall"}"#;

    fn rows(line: &str) -> Vec<DecisionRecord<'static>> {
        crate::decode_all(crate::Format::CloudTrail, line)
    }

    #[test]
    fn the_spec_example_maps_every_column() {
        let r = rows(SPEC).pop().unwrap();
        assert_eq!(r.event_id, "346c0b0e-1111");
        assert_eq!(r.ts_micros, 1_793_919_303_000_000);
        assert_eq!(r.identity.as_deref(), Some("alice"));
        assert_eq!(
            r.identity_id.as_deref(),
            Some(r#"PhotoFlash::User::"alice""#)
        );
        assert_eq!(r.tool.as_deref(), Some("ViewPhoto"));
        assert_eq!(
            r.server.as_deref(),
            Some(r#"PhotoFlash::Photo::"VacationPhoto94.jpg""#)
        );
        assert_eq!(r.policy_id.as_deref(), Some("PSEXAMPLEabcdefg111111"));
        assert_eq!(r.decision, Decision::Allow);
        assert_eq!(r.element, None);
        assert!(matches(&json::parse(SPEC).unwrap()));
    }

    #[test]
    fn records_fan_out_and_skip_other_services() {
        let s3 = r#"{"eventTime":"2026-11-05T22:55:04Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","requestID":"x"}"#;
        let deny = SPEC
            .replace("\"ALLOW\"", "\"DENY\"")
            .replace("346c0b0e-1111", "r2");
        let line = format!(r#"{{"Records":[{SPEC}, {s3},{deny}]}}"#);
        let out = rows(&line);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].element.as_deref(), Some(SPEC));
        assert_eq!(out[1].element.as_deref(), Some(deny.as_str()));
        assert_eq!(
            (out[1].event_id.as_ref(), out[1].decision),
            ("r2", Decision::Deny)
        );
        assert!(matches(&json::parse(&line).unwrap()));
        assert!(!matches(
            &json::parse(&format!(r#"{{"Records":[{s3}]}}"#)).unwrap()
        ));
        let bad = format!(
            r#"{{"Records":[{s3},{}]}}"#,
            SPEC.replace("2026-11-05T22:55:03Z", "x")
        );
        let e = decode(&bad, &mut Vec::new()).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("Records[1].eventTime"))
        );
    }

    #[test]
    fn batches_fan_out_per_request() {
        let line = r#"{"eventTime":"2026-11-05T22:55:03Z","eventSource":"verifiedpermissions.amazonaws.com","eventName":"BatchIsAuthorized","requestParameters":{"policyStoreId":"PS1","requests":[{"principal":{"entityType":"U","entityId":"a"},"action":{"actionType":"A","actionId":"read"},"resource":{"entityType":"D","entityId":"1"}},{"principal":{"entityType":"U","entityId":"a"},"action":{"actionType":"A","actionId":"delete"},"resource":{"entityType":"D","entityId":"1"}}]},"additionalEventData":{"results":[{"decision":"ALLOW"},{"decision":"DENY"}]},"requestID":"b1"}"#;
        let out = rows(line);
        let got: Vec<_> = out
            .iter()
            .map(|r| (r.event_id.as_ref(), r.tool.as_deref(), r.decision))
            .collect();
        assert_eq!(
            got,
            [
                ("b1:0", Some("read"), Decision::Allow),
                ("b1:1", Some("delete"), Decision::Deny)
            ]
        );
        let failed = SPEC.replace(
            "\"requestID\"",
            "\"errorCode\":\"ThrottlingException\",\"errorMessage\":\"Rate exceeded\",\"requestID\"",
        );
        let r = rows(&failed).pop().unwrap();
        assert_eq!(
            (r.decision, r.message.as_deref()),
            (Decision::Error, Some("ThrottlingException: Rate exceeded"))
        );
        let mut none = Vec::new();
        decode(
            r#"{"awsAccountId":"1234","digestStartTime":"2026-11-05T22:00:00Z","logFiles":[]}"#,
            &mut none,
        )
        .unwrap();
        assert!(none.is_empty());
        let e = decode(r#"{"name":"widget"}"#, &mut none).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::UnrecognisedEvent, None)
        );
        let e = decode(&SPEC.replace("\"ALLOW\"", "\"PERMIT\""), &mut Vec::new()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("additionalEventData.decision"));
    }
}
