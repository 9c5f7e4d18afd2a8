//! Input formats: each turns one input line into decision records.
//! A closed enum and a `match`, so that adding a format is one variant and one module.

use std::fmt;
use std::str::FromStr;

use xxhash_rust::xxh3::Xxh3;

use crate::error::LineError;
use crate::record::DecisionRecord;

pub mod policylayer;

/// A proxy log format verdict can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// The PolicyLayer MCP gateway's JSONL decision log (the home format).
    PolicyLayer,
}

impl Format {
    /// Every built-in format.
    pub const ALL: [Format; 1] = [Format::PolicyLayer];

    /// The name used on the command line and stored in the `source` column.
    pub fn name(self) -> &'static str {
        match self {
            Format::PolicyLayer => "policylayer",
        }
    }

    /// One line describing the format.
    pub fn description(self) -> &'static str {
        match self {
            Format::PolicyLayer => "PolicyLayer MCP gateway decision log (one JSON object a line)",
        }
    }

    /// Decodes one line (without its line terminator) into records appended to `out`.
    /// Most formats yield one record a line; formats that fan out may yield several or none.
    ///
    /// # Errors
    /// A [`LineError`] naming the field at fault; nothing is appended then.
    pub fn decode<'a>(
        self,
        line: &'a str,
        out: &mut Vec<DecisionRecord<'a>>,
    ) -> Result<(), LineError> {
        match self {
            Format::PolicyLayer => out.push(policylayer::decode(line)?),
        }
        Ok(())
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format `{s}` (known: {})", names.join(", "))
            })
    }
}

/// The id of a record whose proxy wrote none: a stable hash of the source and the raw record,
/// so that ingesting the same record twice yields the same id.
pub fn stable_event_id(source: &str, raw: &str) -> String {
    let mut h = Xxh3::new();
    h.update(source.as_bytes());
    h.update(&[0]);
    h.update(raw.trim().as_bytes());
    format!("h{:032x}", h.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        assert!("nope"
            .parse::<Format>()
            .unwrap_err()
            .contains("policylayer"));
    }

    #[test]
    fn stable_ids_depend_on_source_and_content_only() {
        let a = stable_event_id("policylayer", "{\"a\":1}");
        assert_eq!(a, stable_event_id("policylayer", "{\"a\":1}  "));
        assert_ne!(a, stable_event_id("opa", "{\"a\":1}"));
        assert_eq!(a.len(), 33);
    }
}
