//! The tyk adapter (spec/proxy-formats.md): not written yet; every record is refused.

use crate::error::{LineError, LineErrorKind};
use crate::formats::json::Node;
use crate::record::DecisionRecord;

/// The `source` value of tyk rows.
pub const SOURCE: &str = "tyk";

/// The format's signature fields.
pub fn matches(_r: &Node<'_>) -> bool {
    false
}

/// Decodes one tyk record.
///
/// # Errors
/// Always, until the adapter is written.
pub fn decode<'a>(_line: &'a str, _out: &mut Vec<DecisionRecord<'a>>) -> Result<(), LineError> {
    Err(LineError::record(
        LineErrorKind::WrongType,
        "the tyk adapter is not written yet",
    ))
}
