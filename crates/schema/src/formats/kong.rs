//! The kong adapter (spec/proxy-formats.md): not written yet; every record is refused.

use crate::error::{LineError, LineErrorKind};
use crate::formats::json::Node;
use crate::record::DecisionRecord;

/// The `source` value of kong rows.
pub const SOURCE: &str = "kong";

/// The format's signature fields.
pub fn matches(_r: &Node<'_>) -> bool {
    false
}

/// Decodes one kong record.
///
/// # Errors
/// Always, until the adapter is written.
pub fn decode<'a>(_line: &'a str, _out: &mut Vec<DecisionRecord<'a>>) -> Result<(), LineError> {
    Err(LineError::record(
        LineErrorKind::WrongType,
        "the kong adapter is not written yet",
    ))
}
