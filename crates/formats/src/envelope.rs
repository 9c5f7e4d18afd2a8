//! Line envelopes around a proxy's JSON record: Docker's json-file driver (`{"log":"<json>\n",...}`),
//! the CRI log prefix (`TS stdout F {json}`) and a bracketed text prefix (`[auditLog] {json}`).
//! Unwrapping is the same for every format; JSON arrays are fanned out by the caller.

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
    Ok((Cow::Borrowed(line), Envelope::Bare))
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
}
