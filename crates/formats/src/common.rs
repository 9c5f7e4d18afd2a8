//! Helpers every adapter shares: reading typed columns out of a [`Node`] with errors that name
//! the JSON path, timestamps in any form and unit, durations with units, status codes, and the
//! last-resort decision from an HTTP status.

use std::borrow::Cow;

use crate::error::{LineError, LineErrorKind};
use crate::json::Node;
use verdict_schema::time::{epoch_int_to_micros, epoch_to_micros, parse_rfc3339_micros};
use verdict_schema::Decision;

/// A required timestamp written without a zone (`2025-01-09 17:30:15,123`, Python's `asctime`;
/// `2025-04-17 17:12:48.233126`), read as UTC; RFC 3339 text with a zone is read as it is.
///
/// # Errors
/// [`LineErrorKind::MissingTimestamp`] when absent, [`LineErrorKind::BadTimestamp`] naming
/// `field` when unparsable.
pub fn naive_utc_timestamp(node: Option<&Node<'_>>, field: &str) -> Result<i64, LineError> {
    match node {
        Some(Node::Str(s)) => {
            let t = s.trim();
            parse_rfc3339_micros(t)
                .or_else(|| parse_rfc3339_micros(&format!("{}Z", t.replacen(',', ".", 1))))
                .ok_or_else(|| {
                    LineError::field(
                        LineErrorKind::BadTimestamp,
                        field,
                        format!("cannot parse timestamp `{s}`: expected `YYYY-MM-DD HH:MM:SS[.f]`"),
                    )
                })
        }
        other => timestamp(other, field, Unit::Auto),
    }
}

/// The unit of an epoch number or a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Guess an epoch's unit by its magnitude (not for durations).
    Auto,
    /// Seconds.
    Seconds,
    /// Milliseconds.
    Millis,
    /// Microseconds.
    Micros,
    /// Nanoseconds.
    Nanos,
}

impl Unit {
    /// Parses `auto`, `s`, `ms`, `us`/`µs`, `ns`.
    ///
    /// # Errors
    /// A message listing the accepted units.
    pub fn parse(s: &str) -> Result<Unit, String> {
        Ok(match s.trim() {
            "auto" => Unit::Auto,
            "s" | "sec" | "seconds" => Unit::Seconds,
            "ms" | "millis" | "milliseconds" => Unit::Millis,
            "us" | "µs" | "micros" | "microseconds" => Unit::Micros,
            "ns" | "nanos" | "nanoseconds" => Unit::Nanos,
            other => {
                return Err(format!(
                    "unknown unit `{other}` (expected auto, s, ms, us or ns)"
                ))
            }
        })
    }

    /// Milliseconds per unit (`Auto` counts as milliseconds).
    pub fn to_ms_factor(self) -> f64 {
        match self {
            Unit::Seconds => 1e3,
            Unit::Auto | Unit::Millis => 1.0,
            Unit::Micros => 1e-3,
            Unit::Nanos => 1e-6,
        }
    }
}

/// The first path of `paths` that holds a non-null value in `root`.
pub fn first<'n, 'a>(root: &'n Node<'a>, paths: &[&str]) -> Option<&'n Node<'a>> {
    paths.iter().find_map(|p| at(root, p))
}

/// The value at a dotted path literal written in an adapter: the literal remainder as one key
/// first (`"mcp.method"`), then split at each dot from the longest prefix down. Null is absent.
pub fn at<'n, 'a>(node: &'n Node<'a>, path: &str) -> Option<&'n Node<'a>> {
    if let Some(v) = node.get(path) {
        if !v.is_null() {
            return Some(v);
        }
    }
    let mut cut = path.len();
    while let Some(d) = path[..cut].rfind('.') {
        if let Some(child) = node.get(&path[..d]) {
            if let Some(v) = at(child, &path[d + 1..]) {
                return Some(v);
            }
        }
        cut = d;
    }
    None
}

/// A string column: a JSON string, or a number rendered as text.
///
/// # Errors
/// [`LineErrorKind::WrongType`] naming `field` for an array, object or bool.
pub fn text<'a>(node: Option<&Node<'a>>, field: &str) -> Result<Option<Cow<'a, str>>, LineError> {
    match node {
        None | Some(Node::Null) => Ok(None),
        Some(Node::Str(s)) if s.is_empty() => Ok(None),
        Some(n @ (Node::Str(_) | Node::Int(_) | Node::UInt(_) | Node::Float(_))) => {
            Ok(n.scalar_text())
        }
        Some(other) => Err(LineError::field(
            LineErrorKind::WrongType,
            field,
            format!("expected a string, got {}", other.type_name()),
        )),
    }
}

/// Like [`text`], but an object or array is kept as its JSON text (ids, resources).
pub fn text_or_json<'a>(node: Option<&Node<'a>>) -> Option<Cow<'a, str>> {
    match node {
        None | Some(Node::Null) => None,
        Some(Node::Str(s)) if s.is_empty() => None,
        Some(n @ (Node::Arr(_) | Node::Obj(_))) => Some(Cow::Owned(n.to_json())),
        Some(n) => n.scalar_text(),
    }
}

/// A required timestamp: RFC 3339 text, or an epoch number (or numeric string) in `unit`.
///
/// # Errors
/// [`LineErrorKind::MissingTimestamp`] when absent, [`LineErrorKind::BadTimestamp`] when unparsable,
/// both naming `field`.
pub fn timestamp(node: Option<&Node<'_>>, field: &str, unit: Unit) -> Result<i64, LineError> {
    let bad = |why: String| LineError::field(LineErrorKind::BadTimestamp, field, why);
    match node {
        None | Some(Node::Null) => Err(LineError::field(
            LineErrorKind::MissingTimestamp,
            field,
            "required timestamp is missing",
        )),
        Some(Node::Str(s)) => {
            if let Some(t) = parse_rfc3339_micros(s.trim()) {
                return Ok(t);
            }
            match s.trim().parse::<f64>() {
                Ok(v) => epoch(v, unit).ok_or_else(|| bad(format!("`{s}` is not a valid epoch"))),
                Err(_) => Err(bad(format!(
                    "cannot parse timestamp `{s}`: expected RFC 3339 or an epoch number"
                ))),
            }
        }
        Some(Node::UInt(u)) => match (unit, i64::try_from(*u)) {
            (Unit::Auto, Ok(i)) => {
                epoch_int_to_micros(i).ok_or_else(|| bad(format!("{u} is not a valid epoch")))
            }
            _ => epoch(*u as f64, unit).ok_or_else(|| bad(format!("{u} is not a valid epoch"))),
        },
        Some(Node::Float(f)) => {
            epoch(*f, unit).ok_or_else(|| bad(format!("{f} is not a valid epoch")))
        }
        Some(other) => Err(bad(format!(
            "expected a string or a number, got {}",
            other.type_name()
        ))),
    }
}

fn epoch(v: f64, unit: Unit) -> Option<i64> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let micros = match unit {
        Unit::Auto => return epoch_to_micros(v),
        Unit::Seconds => v * 1e6,
        Unit::Millis => v * 1e3,
        Unit::Micros => v,
        Unit::Nanos => v / 1e3,
    };
    (micros < 9.2e18).then(|| micros.floor() as i64)
}

/// A duration in milliseconds: a number in `unit`, or a string with its own unit (`"3804ms"`,
/// `"1.5s"`, `"250us"`, `"12ns"`, a bare number in `unit`). `null`, `""`, `"-"` and negative
/// values (Kong's `-1` for "never proxied") are absent.
///
/// # Errors
/// [`LineErrorKind::WrongType`] naming `field` for anything else.
pub fn duration_ms(
    node: Option<&Node<'_>>,
    field: &str,
    unit: Unit,
) -> Result<Option<f64>, LineError> {
    let bad = |got: String| {
        LineError::field(
            LineErrorKind::WrongType,
            field,
            format!("expected a duration, got {got}"),
        )
    };
    let v = match node {
        None | Some(Node::Null) => return Ok(None),
        Some(Node::Int(_)) => return Ok(None),
        Some(Node::UInt(u)) => *u as f64 * unit.to_ms_factor(),
        Some(Node::Float(f)) => f * unit.to_ms_factor(),
        Some(Node::Str(s)) => {
            let s = s.trim();
            if s.is_empty() || s == "-" {
                return Ok(None);
            }
            let split = s
                .find(|c: char| {
                    !(c.is_ascii_digit()
                        || c == '.'
                        || c == '-'
                        || c == 'e'
                        || c == 'E'
                        || c == '+')
                })
                .unwrap_or(s.len());
            let (num, suffix) = s.split_at(split);
            let n: f64 = num.parse().map_err(|_| bad(format!("`{s}`")))?;
            let factor = match suffix.trim() {
                "" => unit.to_ms_factor(),
                "ns" => 1e-6,
                "us" | "µs" => 1e-3,
                "ms" => 1.0,
                "s" => 1e3,
                "m" | "min" => 60e3,
                _ => return Err(bad(format!("`{s}`"))),
            };
            n * factor
        }
        Some(other) => return Err(bad(other.type_name().to_string())),
    };
    Ok((v.is_finite() && v >= 0.0).then_some(v))
}

/// An HTTP status code from a number or a numeric string; `""`, `"-"`, `0` and null are absent.
///
/// # Errors
/// [`LineErrorKind::WrongType`] naming `field` for anything that is not a status code.
pub fn status(node: Option<&Node<'_>>, field: &str) -> Result<Option<i32>, LineError> {
    let bad = |got: String| {
        LineError::field(
            LineErrorKind::WrongType,
            field,
            format!("expected an HTTP status code, got {got}"),
        )
    };
    let v = match node {
        None | Some(Node::Null) => return Ok(None),
        Some(Node::Str(s)) if s.trim().is_empty() || s.trim() == "-" => return Ok(None),
        Some(n @ (Node::UInt(_) | Node::Int(_) | Node::Float(_) | Node::Str(_))) => {
            n.as_f64().ok_or_else(|| bad(n.to_json()))?
        }
        Some(other) => return Err(bad(other.type_name().to_string())),
    };
    if v == 0.0 {
        return Ok(None);
    }
    if v.fract() != 0.0 || !(100.0..=999.0).contains(&v) {
        return Err(bad(v.to_string()));
    }
    Ok(Some(v as i32))
}

/// The last-resort decision of an HTTP status the proxy itself answered: 429 rate-limited,
/// 401/403 deny, 5xx error, 2xx/3xx allow, anything else unknown.
pub fn decision_from_status(code: Option<i32>) -> Decision {
    match code {
        Some(429) => Decision::RateLimited,
        Some(401 | 403) => Decision::Deny,
        Some(c) if (500..600).contains(&c) => Decision::Error,
        Some(c) if (200..400).contains(&c) => Decision::Allow,
        _ => Decision::Unknown,
    }
}

/// The event id: the proxy's own, else the stable hash of (source, raw record).
pub fn event_id<'a>(id: Option<Cow<'a, str>>, source: &str, raw: &str) -> Cow<'a, str> {
    match id {
        Some(id) if !id.is_empty() => id,
        _ => Cow::Owned(super::stable_event_id(source, raw)),
    }
}

/// The error of a record that looks like its format but matches none of the shapes the adapter
/// knows: `unrecognised_event`, naming `what` was expected and listing the record's keys.
pub fn unrecognised(r: &Node<'_>, what: &str) -> LineError {
    let keys: Vec<&str> = r
        .as_object()
        .unwrap_or_default()
        .iter()
        .map(|(k, _)| k.as_ref())
        .collect();
    LineError::record(
        LineErrorKind::UnrecognisedEvent,
        format!("{what}; the record's keys: {}", keys.join(", ")),
    )
}

/// Argument keys and values from an `arguments` object: sorted keys and the JSON text.
pub fn args_of<'a>(node: Option<&Node<'a>>) -> (Option<Vec<Cow<'a, str>>>, Option<Cow<'a, str>>) {
    match node {
        Some(n @ Node::Obj(_)) => (n.sorted_keys(), Some(Cow::Owned(n.to_json()))),
        Some(Node::Str(s)) => match crate::json::parse(s) {
            Ok(n @ Node::Obj(_)) => {
                let keys = n
                    .sorted_keys()
                    .map(|ks| ks.into_iter().map(|k| Cow::Owned(k.into_owned())).collect());
                (keys, Some(Cow::Owned(n.to_json())))
            }
            _ => (None, None),
        },
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    #[test]
    fn dotted_access_prefers_literal_keys() {
        let n = parse(r#"{"jwt.sub":"alice","a":{"b":{"c":1}},"input":{"x.y":{"z":2}}}"#).unwrap();
        assert_eq!(at(&n, "jwt.sub").unwrap().as_str(), Some("alice"));
        assert_eq!(at(&n, "a.b.c").unwrap().as_f64(), Some(1.0));
        assert_eq!(at(&n, "input.x.y.z").unwrap().as_f64(), Some(2.0));
        assert_eq!(at(&n, "a.b.d"), None);
    }

    #[test]
    fn timestamps_in_every_unit() {
        let t = |v: &str, u| timestamp(Some(&parse(v).unwrap()), "ts", u).unwrap();
        assert_eq!(t("1767000000000", Unit::Auto), 1_767_000_000_000_000);
        assert_eq!(t("1767000000", Unit::Seconds), 1_767_000_000_000_000);
        assert_eq!(t("1767000000.5", Unit::Auto), 1_767_000_000_500_000);
        assert_eq!(t("\"1767000000000\"", Unit::Millis), 1_767_000_000_000_000);
        assert_eq!(
            t("\"2025-09-04T20:01:40.493Z\"", Unit::Auto),
            1_757_016_100_493_000
        );
        let e = timestamp(Some(&parse("\"noon\"").unwrap()), "time", Unit::Auto).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (LineErrorKind::BadTimestamp, Some("time"))
        );
        let e = timestamp(None, "time", Unit::Auto).unwrap_err();
        assert_eq!(e.kind, LineErrorKind::MissingTimestamp);
    }

    #[test]
    fn durations_with_units() {
        let d = |v: &str, u| duration_ms(Some(&parse(v).unwrap()), "d", u).unwrap();
        assert_eq!(d("\"3804ms\"", Unit::Millis), Some(3804.0));
        assert_eq!(d("\"1.5s\"", Unit::Millis), Some(1500.0));
        assert_eq!(d("4795661", Unit::Nanos), Some(4.795661));
        assert_eq!(d("3", Unit::Micros), Some(0.003));
        assert_eq!(d("-1", Unit::Millis), None);
        assert_eq!(d("\"-\"", Unit::Millis), None);
        assert!(duration_ms(Some(&parse("\"soon\"").unwrap()), "d", Unit::Millis).is_err());
    }

    #[test]
    fn statuses_and_fallback_decisions() {
        let s = |v: &str| status(Some(&parse(v).unwrap()), "s").unwrap();
        assert_eq!(s("403"), Some(403));
        assert_eq!(s("\"429\""), Some(429));
        assert_eq!(s("\"\""), None);
        assert!(status(Some(&parse("\"x\"").unwrap()), "s").is_err());
        assert_eq!(decision_from_status(Some(429)), Decision::RateLimited);
        assert_eq!(decision_from_status(Some(403)), Decision::Deny);
        assert_eq!(decision_from_status(Some(503)), Decision::Error);
        assert_eq!(decision_from_status(Some(200)), Decision::Allow);
        assert_eq!(decision_from_status(None), Decision::Unknown);
    }
}
