//! Line envelopes around a proxy's record, the same for every format (JSON arrays are fanned out
//! by the caller):
//! - Docker's json-file driver (`{"log":"<json>\n",...}`);
//! - the CRI log prefix (`TS stdout F {json}`);
//! - a bracketed text prefix (`[auditLog] {json}`);
//! - `docker-compose logs` (`opa_1  | {json}`);
//! - fluentd's file output (`<time>\t<tag>\t{json}`);
//! - text logs of `key=value` pairs: agentgateway's default format (`TS\tinfo\trequest k=v ...`)
//!   and logfmt (`time="..." level=info k=v ...`, Tyk's default access log), turned into the flat
//!   JSON object the adapters read (an unquoted integer becomes a number, all else a string).
//!
//! A [`UserEnvelope`] (`--envelope`) handles the next prefix nobody foresaw: a regular expression
//! with a named group `json`, or `logfmt`.

use std::borrow::Cow;

use serde::Deserialize;

use crate::error::{LineError, LineErrorKind};

/// Which envelope a line came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// The record itself.
    Bare,
    /// Docker's json-file log driver.
    DockerJsonFile,
    /// The CRI (containerd, CRI-O) log line prefix.
    Cri,
    /// A bracketed tag such as `[auditLog] `.
    TextPrefix,
    /// `docker-compose logs`: `service_1  | `.
    DockerCompose,
    /// fluentd's file output: `<time>\t<tag>\t`.
    Fluentd,
    /// agentgateway's default text format.
    AgentGatewayText,
    /// `key=value` pairs (logfmt).
    Logfmt,
}

impl Envelope {
    /// A short name for summaries (`docker-compose prefix`, `text` ...); `None` for a bare record
    /// and the container runtimes' wrappers, which say nothing about the record's shape.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Envelope::Bare | Envelope::DockerJsonFile | Envelope::Cri | Envelope::TextPrefix => {
                None
            }
            Envelope::DockerCompose => Some("docker-compose prefix"),
            Envelope::Fluentd => Some("fluentd prefix"),
            Envelope::AgentGatewayText => Some("text"),
            Envelope::Logfmt => Some("logfmt text"),
        }
    }
}

#[derive(Deserialize)]
struct DockerLine<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(default)]
    stream: Option<&'a str>,
    #[serde(default)]
    time: Option<&'a str>,
}

/// Takes the record out of its envelope.
///
/// # Errors
/// A CRI partial line (`P`), whose record continues on the next line, is refused with
/// [`LineErrorKind::WrongType`]: verdict reads records line by line.
pub fn unwrap(line: &str) -> Result<(Cow<'_, str>, Envelope), LineError> {
    let t = line.trim_start();
    // Docker's json-file driver always writes `log` first: a prefix test keeps this free for
    // every other line.
    if t.starts_with("{\"log\":") {
        if let Ok(d) = serde_json::from_str::<DockerLine<'_>>(t) {
            if d.stream.is_some() || d.time.is_some() {
                let inner = match d.log {
                    Cow::Borrowed(s) => Cow::Borrowed(s.trim_end_matches(['\n', '\r'])),
                    Cow::Owned(s) => Cow::Owned(s.trim_end_matches(['\n', '\r']).to_string()),
                };
                let (inner, _) = match inner {
                    Cow::Borrowed(s) => unwrap(s)?,
                    Cow::Owned(s) => {
                        let (u, env) = unwrap(&s)?;
                        (Cow::Owned(u.into_owned()), env)
                    }
                };
                return Ok((inner, Envelope::DockerJsonFile));
            }
        }
        return Ok((Cow::Borrowed(line), Envelope::Bare));
    }
    // `[auditLog] {json}`: a bracketed word, not a JSON array.
    if let Some(rest) = t.strip_prefix('[') {
        if let Some(close) = rest.find(']') {
            let tag = &rest[..close];
            let after = rest[close + 1..].trim_start();
            if !tag.is_empty()
                && tag.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b' ')
                })
                && tag.bytes().any(|b| b.is_ascii_alphabetic())
                && after.starts_with('{')
            {
                return Ok((Cow::Borrowed(after), Envelope::TextPrefix));
            }
        }
    }
    if t.starts_with(['{', '[']) {
        return Ok((Cow::Borrowed(line), Envelope::Bare));
    }
    if let Some(rest) = cri(t)? {
        return Ok((Cow::Borrowed(rest), Envelope::Cri));
    }
    if let Some(found) = tab_separated(t) {
        return Ok(found);
    }
    if let Some(rest) = docker_compose(t) {
        let (inner, _) = unwrap(rest)?;
        return Ok((inner, Envelope::DockerCompose));
    }
    if let Some(json) = logfmt_to_json(t, None) {
        return Ok((Cow::Owned(json), Envelope::Logfmt));
    }
    Ok((Cow::Borrowed(line), Envelope::Bare))
}

/// Whether `s` starts like an RFC 3339 timestamp (`2025-07-10T18:10:46...`).
fn looks_like_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 19 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T'
}

/// fluentd (`<time>\t<tag>\t{json}`) and agentgateway's text format
/// (`<time>\t<level>\t<scope> k=v ...`).
fn tab_separated(t: &str) -> Option<(Cow<'_, str>, Envelope)> {
    let (time, rest) = t.split_once('\t')?;
    if !looks_like_time(time) {
        return None;
    }
    let (second, rest) = rest.split_once('\t')?;
    let rest = rest.trim_start();
    if rest.starts_with('{') {
        return Some((Cow::Borrowed(rest), Envelope::Fluentd));
    }
    let level = second.trim();
    if !matches!(
        level.to_ascii_lowercase().as_str(),
        "trace" | "debug" | "info" | "warn" | "warning" | "error"
    ) {
        return None;
    }
    let (scope, pairs) = match rest.find([' ', '\t']) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let head = [("time", time), ("level", level), ("scope", scope)];
    let json = logfmt_to_json(pairs, Some(&head)).unwrap_or_else(|| {
        let mut out = String::with_capacity(t.len() + 64);
        out.push('{');
        for (i, (k, v)) in head.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_json_str(&mut out, k);
            out.push(':');
            push_json_str(&mut out, v);
        }
        out.push_str(",\"message\":");
        push_json_str(&mut out, pairs.trim());
        out.push('}');
        out
    });
    Some((Cow::Owned(json), Envelope::AgentGatewayText))
}

/// `opa_1            | {json}` -> `{json}`: a compose service name, spaces, a bar.
fn docker_compose(t: &str) -> Option<&str> {
    let bar = t.find('|')?;
    let (name, rest) = (&t[..bar], &t[bar + 1..]);
    let name_trimmed = name.trim_end();
    if name_trimmed.is_empty()
        || name_trimmed.len() == name.len()
        || !name_trimmed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return None;
    }
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    rest.trim_start().starts_with(['{', '[']).then_some(rest)
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Whether an unquoted logfmt value is written as a JSON number: an integer without a leading
/// zero (`00000000` stays text: it is an id).
fn is_plain_integer(v: &str) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// `k=v k2="v 2"` as a flat JSON object (with `head` pairs first); `None` unless the text holds
/// at least two pairs (or one, after a head) and nothing but pairs.
pub fn logfmt_to_json(text: &str, head: Option<&[(&str, &str)]>) -> Option<String> {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 64);
    out.push('{');
    let mut n = 0;
    if let Some(head) = head {
        for (k, v) in head {
            if n > 0 {
                out.push(',');
            }
            push_json_str(&mut out, k);
            out.push(':');
            push_json_str(&mut out, v);
            n += 1;
        }
    }
    let first_pair = n;
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' && b[i] != b'\t' {
            i += 1;
        }
        if i == b.len() || b[i] != b'=' || i == key_start {
            return None;
        }
        let key = &text[key_start..i];
        if !key
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        {
            return None;
        }
        i += 1;
        if n > 0 {
            out.push(',');
        }
        push_json_str(&mut out, key);
        out.push(':');
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut value = String::new();
            let mut closed = false;
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() => {
                        value.push(b[i + 1] as char);
                        i += 2;
                    }
                    b'"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    _ => {
                        let ch = text[i..].chars().next()?;
                        value.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            if !closed {
                return None;
            }
            push_json_str(&mut out, &value);
        } else {
            let start = i;
            while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                i += 1;
            }
            let v = &text[start..i];
            if is_plain_integer(v) {
                out.push_str(v);
            } else {
                push_json_str(&mut out, v);
            }
        }
        n += 1;
    }
    let pairs = n - first_pair;
    if pairs == 0 || (head.is_none() && pairs < 2) {
        return None;
    }
    out.push('}');
    Some(out)
}

/// An envelope the user names on the command line (`--envelope`): a regular expression whose
/// named group `json` holds the record, or `logfmt` for `key=value` lines.
#[derive(Debug, Clone)]
pub enum UserEnvelope {
    /// A regular expression with a named group `json`.
    Regex(regex::Regex),
    /// `key=value` pairs.
    Logfmt,
}

impl UserEnvelope {
    /// Parses `logfmt` or a regular expression with a named group `json`.
    ///
    /// # Errors
    /// A message naming what is wrong with the expression.
    pub fn parse(spec: &str) -> Result<UserEnvelope, String> {
        if spec.trim() == "logfmt" {
            return Ok(UserEnvelope::Logfmt);
        }
        let re = regex::Regex::new(spec)
            .map_err(|e| format!("--envelope `{spec}` is not a regular expression: {e}"))?;
        if !re.capture_names().any(|n| n == Some("json")) {
            return Err(format!(
                "--envelope `{spec}` has no named group `json` (write `(?P<json>...)` around the record)"
            ));
        }
        Ok(UserEnvelope::Regex(re))
    }

    /// Detects the format of the records inside lines wrapped in this envelope, as
    /// [`crate::detect`] does for bare lines; a line that does not match counts as blank.
    ///
    /// # Errors
    /// As [`crate::detect`].
    pub fn detect<'l>(
        &self,
        lines: impl IntoIterator<Item = &'l str>,
        first_line: u64,
    ) -> Result<crate::Detected, crate::DetectError> {
        let inner: Vec<Cow<'l, str>> = lines
            .into_iter()
            .map(|l| self.unwrap(l).unwrap_or(Cow::Borrowed("")))
            .collect();
        crate::detect(inner.iter().map(|l| l.as_ref()), first_line)
    }

    /// Takes the record out of one line.
    ///
    /// # Errors
    /// [`LineErrorKind::EnvelopeMismatch`] when the line does not match.
    pub fn unwrap<'l>(&self, line: &'l str) -> Result<Cow<'l, str>, LineError> {
        let found = match self {
            UserEnvelope::Regex(re) => re
                .captures(line)
                .and_then(|c| c.name("json"))
                .map(|m| Cow::Borrowed(m.as_str())),
            UserEnvelope::Logfmt => logfmt_to_json(line.trim(), None).map(Cow::Owned),
        };
        found.ok_or_else(|| {
            LineError::record(
                LineErrorKind::EnvelopeMismatch,
                match self {
                    UserEnvelope::Regex(re) => {
                        format!("the line does not match --envelope `{}`", re.as_str())
                    }
                    UserEnvelope::Logfmt => {
                        "the line is not key=value pairs (--envelope logfmt)".into()
                    }
                },
            )
        })
    }
}

/// `2025-06-01T10:00:00.123456789Z stdout F {json}` -> `{json}`.
fn cri(t: &str) -> Result<Option<&str>, LineError> {
    let mut parts = t.splitn(4, ' ');
    let (Some(ts), Some(stream), Some(tag), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(None);
    };
    if !(stream == "stdout" || stream == "stderr")
        || ts.len() < 20
        || !ts.as_bytes()[0].is_ascii_digit()
        || !ts.contains('T')
    {
        return Ok(None);
    }
    match tag {
        "F" => Ok(Some(rest)),
        "P" => Err(LineError::record(
            LineErrorKind::WrongType,
            "CRI partial line (tag P): the record continues on the next line",
        )),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_json_file_lines_are_unwrapped() {
        let line = r#"{"log":"{\"a\":1}\n","stream":"stdout","time":"2025-10-01T12:00:00.1Z"}"#;
        let (inner, env) = unwrap(line).unwrap();
        assert_eq!(
            (inner.as_ref(), env),
            (r#"{"a":1}"#, Envelope::DockerJsonFile)
        );
        let crid = r#"{"log":"[auditLog] {\"b\":2}\n","stream":"stderr"}"#;
        assert_eq!(unwrap(crid).unwrap().0, r#"{"b":2}"#);
        // An object that merely has a `log` field stays as it is.
        let plain = r#"{"log":"x","level":"info"}"#;
        assert_eq!(
            unwrap(plain).unwrap(),
            (Cow::Borrowed(plain), Envelope::Bare)
        );
    }

    #[test]
    fn cri_and_text_prefixes() {
        let (inner, env) = unwrap(r#"2025-06-01T10:00:00.123456789Z stdout F {"a":1}"#).unwrap();
        assert_eq!((inner.as_ref(), env), (r#"{"a":1}"#, Envelope::Cri));
        let e = unwrap(r#"2025-06-01T10:00:00.123456789Z stdout P {"a":"#).unwrap_err();
        assert!(e.message.contains("partial"));
        let (inner, env) = unwrap(r#"[auditLog] {"a":1}"#).unwrap();
        assert_eq!((inner.as_ref(), env), (r#"{"a":1}"#, Envelope::TextPrefix));
        assert_eq!(unwrap("[1,2]").unwrap().1, Envelope::Bare);
        assert_eq!(unwrap("plain text").unwrap().1, Envelope::Bare);
    }

    #[test]
    fn compose_fluentd_and_text_formats() {
        let (inner, env) = unwrap(r#"opa_1            | {"a":1}"#).unwrap();
        assert_eq!(
            (inner.as_ref(), env),
            (r#"{"a":1}"#, Envelope::DockerCompose)
        );
        let (inner, env) = unwrap("2026-11-02T10:00:00+00:00\tsvc_opa_1\t{\"a\":1}").unwrap();
        assert_eq!((inner.as_ref(), env), (r#"{"a":1}"#, Envelope::Fluentd));
        let agw = "2026-11-02T10:00:00.5Z\tinfo\trequest gateway=a/b src.addr=[::1]:5 http.status=202 mcp.method=tools/list duration=10ms";
        let (inner, env) = unwrap(agw).unwrap();
        assert_eq!(env, Envelope::AgentGatewayText);
        assert_eq!(
            inner,
            r#"{"time":"2026-11-02T10:00:00.5Z","level":"info","scope":"request","gateway":"a/b","src.addr":"[::1]:5","http.status":202,"mcp.method":"tools/list","duration":"10ms"}"#
        );
        let tyk = r#"time="2026-11-02T10:00:00Z" level=info api_key=00000000 mcp_error_code=-32602 msg="a \"b\"""#;
        let (inner, env) = unwrap(tyk).unwrap();
        assert_eq!(env, Envelope::Logfmt);
        assert_eq!(
            inner,
            r#"{"time":"2026-11-02T10:00:00Z","level":"info","api_key":"00000000","mcp_error_code":-32602,"msg":"a \"b\""}"#
        );
        assert_eq!(unwrap("a=1").unwrap().1, Envelope::Bare);
        assert_eq!(unwrap("just | words").unwrap().1, Envelope::Bare);
    }

    #[test]
    fn user_envelopes() {
        let e = UserEnvelope::parse(r"^\S+ \S+ (?P<json>\{.*\})$").unwrap();
        assert_eq!(e.unwrap(r#"host app {"a":1}"#).unwrap(), r#"{"a":1}"#);
        let err = e.unwrap("nothing here").unwrap_err();
        assert_eq!(err.kind, LineErrorKind::EnvelopeMismatch);
        assert!(UserEnvelope::parse("(no group)")
            .unwrap_err()
            .contains("named group `json`"));
        assert!(UserEnvelope::parse("(")
            .unwrap_err()
            .contains("not a regular expression"));
        let l = UserEnvelope::parse("logfmt").unwrap();
        assert_eq!(l.unwrap("a=1 b=x").unwrap(), r#"{"a":1,"b":"x"}"#);
    }

    #[test]
    fn detection_looks_inside_a_user_envelope() {
        let e = UserEnvelope::parse(r"^\S+ \S+ (?P<json>\{.*\})$").unwrap();
        let rec = r#"{"timestamp":"2025-06-01T10:00:00Z","request_id":"r1","grant_label":"a","method":"tools/call","tool":"t","decision":"allow"}"#;
        let lines = [
            "starting up".to_string(),
            format!("gw-1 audit {rec}"),
            format!("gw-1 audit {rec}"),
        ];
        let d = e.detect(lines.iter().map(String::as_str), 1).unwrap();
        assert_eq!(d.format, crate::Format::PolicyLayer);
        // Bare, the same lines hold no record of a known format.
        assert!(crate::detect(lines.iter().map(String::as_str), 1).is_err());
    }
}
