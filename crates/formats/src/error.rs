//! Errors of the formats crate: why one input record could not become a decision row.
//! Carries the field or JSON path at fault; file and line are added by the caller that knows them.

use std::fmt;

/// What was wrong with one input record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineErrorKind {
    /// The line is not valid JSON.
    InvalidJson,
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The line is longer than the configured bound.
    TooLong,
    /// A required column could not be filled.
    MissingField,
    /// A timestamp could not be parsed.
    BadTimestamp,
    /// The decision value is not one the format defines.
    UnknownDecision,
    /// A field has the wrong JSON type.
    WrongType,
    /// The record looks like the detected format but matches none of its known shapes.
    UnrecognisedEvent,
    /// A decision without a timestamp (never given a guessed time).
    MissingTimestamp,
    /// The line does not match the envelope the user named (`--envelope`).
    EnvelopeMismatch,
    /// A latency that is not a finite, non-negative number.
    BadLatency,
}

impl LineErrorKind {
    /// A short stable code for reports and the quarantine (`invalid_json`, `missing_field` ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::TooLong => "too_long",
            Self::MissingField => "missing_field",
            Self::BadTimestamp => "bad_timestamp",
            Self::UnknownDecision => "unknown_decision",
            Self::WrongType => "wrong_type",
            Self::UnrecognisedEvent => "unrecognised_event",
            Self::MissingTimestamp => "missing_timestamp",
            Self::EnvelopeMismatch => "envelope_mismatch",
            Self::BadLatency => "bad_latency",
        }
    }

    /// The kind whose [`code`](Self::code) this is.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "invalid_json" => Self::InvalidJson,
            "invalid_utf8" => Self::InvalidUtf8,
            "too_long" => Self::TooLong,
            "missing_field" => Self::MissingField,
            "bad_timestamp" => Self::BadTimestamp,
            "unknown_decision" => Self::UnknownDecision,
            "wrong_type" => Self::WrongType,
            "unrecognised_event" => Self::UnrecognisedEvent,
            "missing_timestamp" => Self::MissingTimestamp,
            "envelope_mismatch" => Self::EnvelopeMismatch,
            "bad_latency" => Self::BadLatency,
            _ => return None,
        })
    }
}

/// Why one record was rejected: the kind, the field (JSON path in the input) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The kind of failure.
    pub kind: LineErrorKind,
    /// The input field (JSON path) at fault, when one is.
    pub field: Option<String>,
    /// A human-readable explanation.
    pub message: String,
}

impl LineError {
    /// Builds an error about a field.
    pub fn field(
        kind: LineErrorKind,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Builds an error about the whole record.
    pub fn record(kind: LineErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            field: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: field `{field}`: {}", self.kind.code(), self.message),
            None => write!(f, "{}: {}", self.kind.code(), self.message),
        }
    }
}

impl std::error::Error for LineError {}
