//! Auto-detection: which built-in format an input is, from its first records and each format's
//! signature fields. It refuses rather than guesses: a file whose records match no format, or
//! match different formats, is an error that says which lines looked like what.

use std::collections::BTreeMap;
use std::fmt;

use super::{envelope, Format};
use crate::json::{self, Node};

/// How many non-blank lines detection looks at.
pub const DETECT_LINES: usize = 50;

/// What detection found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// The format.
    pub format: Format,
    /// How many of the lines looked at match it.
    pub matching: usize,
    /// How many lines were looked at.
    pub looked_at: usize,
    /// The shapes (versions, variants, text envelopes) seen among the matching lines, in the
    /// order first seen: `2024 log_type`, `text`, `docker-compose prefix` ...; empty when every
    /// matching line has the format's current default shape.
    pub shapes: Vec<&'static str>,
}

impl Detected {
    /// The format's name with the shapes seen: `cedarling (2024 log_type)`.
    pub fn label(&self) -> String {
        if self.shapes.is_empty() {
            self.format.name().to_string()
        } else {
            format!("{} ({})", self.format.name(), self.shapes.join(", "))
        }
    }
}

/// Why detection refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetectError {
    /// The input has no non-blank line.
    Empty,
    /// No line matches a known format.
    Unknown {
        /// 1-based line numbers looked at, with the keys of each (first ones).
        first: Vec<(u64, String)>,
    },
    /// Lines match different formats.
    Mixed {
        /// Each format seen, with the first line numbers that match it.
        seen: Vec<(Format, Vec<u64>)>,
    },
}

impl fmt::Display for DetectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetectError::Empty => write!(f, "the input is empty, so its format cannot be detected"),
            DetectError::Unknown { first } => {
                write!(f, "no record matches a known format")?;
                if let Some((line, what)) = first.first() {
                    write!(f, " (line {line}: {what})")?;
                }
                write!(
                    f,
                    "; name one with --input-format or describe it with --mapping FILE"
                )
            }
            DetectError::Mixed { seen } => {
                write!(f, "records of several formats:")?;
                for (i, (format, lines)) in seen.iter().enumerate() {
                    let lines: Vec<String> = lines.iter().take(3).map(u64::to_string).collect();
                    let sep = if i == 0 { " " } else { ", " };
                    write!(f, "{sep}{format} (line {})", lines.join(", "))?;
                }
                write!(f, "; split the file or name the format with --input-format")
            }
        }
    }
}

impl std::error::Error for DetectError {}

/// Detects the format of an input from its first lines (`first_line` is the number of the first).
///
/// A line that matches no format (a proxy's startup message, a bad line) is neutral; the
/// format is the one every matching line agrees on. Lines that are not JSON are skipped.
///
/// # Errors
/// [`DetectError`] when no line matches, or lines match different formats.
pub fn detect<'l>(
    lines: impl IntoIterator<Item = &'l str>,
    first_line: u64,
) -> Result<Detected, DetectError> {
    let mut by_format: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let mut shapes: BTreeMap<usize, Vec<&'static str>> = BTreeMap::new();
    let mut looked_at = 0;
    let mut unknown = Vec::new();
    for (no, line) in (first_line..).zip(lines) {
        if line.trim().is_empty() {
            continue;
        }
        if looked_at == DETECT_LINES {
            break;
        }
        looked_at += 1;
        let Ok((text, env)) = envelope::unwrap(line) else {
            continue;
        };
        let Ok(node) = json::parse(&text) else {
            if unknown.len() < 3 {
                unknown.push((no, "not JSON".to_string()));
            }
            continue;
        };
        let record = match &node {
            Node::Arr(items) => match items.first() {
                Some(first) => first,
                None => continue,
            },
            other => other,
        };
        let hits: Vec<usize> = Format::ALL
            .iter()
            .enumerate()
            .filter(|(_, f)| f.matches(record))
            .map(|(i, _)| i)
            .collect();
        match hits.first() {
            // Signatures are disjoint; should two ever match, the first listed wins.
            Some(&i) => {
                by_format.entry(i).or_default().push(no);
                let seen = shapes.entry(i).or_default();
                for shape in [env.label(), Format::ALL[i].shape(record)]
                    .into_iter()
                    .flatten()
                {
                    if !seen.contains(&shape) {
                        seen.push(shape);
                    }
                }
            }
            None => {
                if unknown.len() < 3 {
                    unknown.push((no, describe(record)));
                }
            }
        }
    }
    if looked_at == 0 {
        return Err(DetectError::Empty);
    }
    match by_format.len() {
        0 => Err(DetectError::Unknown { first: unknown }),
        1 => {
            let (i, lines) = by_format.into_iter().next().ok_or(DetectError::Empty)?;
            Ok(Detected {
                format: Format::ALL[i],
                matching: lines.len(),
                looked_at,
                shapes: shapes.remove(&i).unwrap_or_default(),
            })
        }
        _ => Err(DetectError::Mixed {
            seen: by_format
                .into_iter()
                .map(|(i, l)| (Format::ALL[i], l))
                .collect(),
        }),
    }
}

fn describe(node: &Node<'_>) -> String {
    match node.as_object() {
        Some(entries) => {
            let keys: Vec<&str> = entries.iter().take(8).map(|(k, _)| k.as_ref()).collect();
            let more = if entries.len() > 8 { ", ..." } else { "" };
            format!("an object with keys {}{more}", keys.join(", "))
        }
        None => format!("{} rather than an object", node.type_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unrelated_json_is_refused() {
        let lines = [
            r#"{"name":"widget","price":3}"#,
            r#"{"name":"gadget","price":4}"#,
        ];
        let e = detect(lines, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no record matches a known format (line 1: an object with keys name, price); \
             name one with --input-format or describe it with --mapping FILE"
        );
        assert_eq!(detect(["", "  "], 1).unwrap_err(), DetectError::Empty);
    }

    #[test]
    fn policylayer_with_a_neutral_line() {
        let lines = [
            r#"{"timestamp":"2026-11-02T09:15:02Z","request_id":"r1","decision":"allow"}"#,
            "garbage",
            r#"{"timestamp":"2026-11-02T09:15:03Z","grant_label":"a","decision":"deny"}"#,
        ];
        let d = detect(lines, 1).unwrap();
        assert_eq!(
            (d.format, d.matching, d.looked_at),
            (Format::PolicyLayer, 2, 3)
        );
    }

    #[test]
    fn mixed_files_name_both_formats() {
        let lines = [
            r#"{"timestamp":"2026-11-02T09:15:02Z","request_id":"r1","decision":"allow"}"#,
            r#"{"decision_id":"d1","path":"mcp/allow","result":true,"timestamp":"2026-11-02T09:15:02Z"}"#,
        ];
        let e = detect(lines, 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "records of several formats: policylayer (line 10), opa (line 11); \
             split the file or name the format with --input-format"
        );
    }
}
