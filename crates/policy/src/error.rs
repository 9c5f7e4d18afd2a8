//! Errors of the policy crate: JSON syntax, validation (every problem, each with its JSON Pointer) and
//! file reading. Evaluation itself never fails.

use std::fmt;
use std::path::PathBuf;

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a policy could not be loaded. A policy that fails to load is never evaluated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not JSON. `line` and `column` are 1-based, as serde_json counts them.
    #[error("policy is not valid JSON: {message} at line {line}, column {column}")]
    Syntax {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error (0 at the very start of an empty input).
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The JSON is not a valid policy v1 document. Holds every problem found, in document order.
    #[error("invalid policy ({} error{}):{}", .errors.len(), if .errors.len() == 1 { "" } else { "s" }, ErrorList(.errors))]
    Invalid {
        /// Every validation problem, each naming the JSON Pointer of the offending value.
        errors: Vec<ValidationError>,
    },
    /// The policy file could not be read.
    #[error("cannot read policy file {}: {source}", .path.display())]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A policy file was read but its content did not load (a [`Error::Syntax`] or [`Error::Invalid`]).
    #[error("policy file {}: {source}", .path.display())]
    File {
        /// The policy file.
        path: PathBuf,
        /// What was wrong with its content.
        source: Box<Error>,
    },
    /// Two policies of one [`PolicySet`](crate::PolicySet) declare a counter name differently.
    #[error("counter {counter:?} is a {first_is} in {first} but a {second_is} in {second}: policies that share a counter must declare it alike")]
    CounterConflict {
        /// The counter name.
        counter: String,
        /// The member that declared it first.
        first: String,
        /// Its window and scope there.
        first_is: String,
        /// The member that disagrees.
        second: String,
        /// Its window and scope there.
        second_is: String,
    },
    /// A pointer to a limit (`/tools/<tool>/limits/<counter or index>`) does not name one.
    #[error("{pointer}: {message}")]
    Pointer {
        /// The pointer as given.
        pointer: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// The validation problems carried by this error (also through [`Error::File`]); empty for other kinds.
    pub fn validation_errors(&self) -> &[ValidationError] {
        match self {
            Error::Invalid { errors } => errors,
            Error::File { source, .. } => source.validation_errors(),
            _ => &[],
        }
    }
}

/// One validation problem: where (a JSON Pointer, RFC 6901, `""` for the whole document) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// JSON Pointer of the offending value, e.g. `/tools/create_charge/deny_if/0/conditions/0/op`. Names
    /// are escaped (`~` as `~0`, `/` as `~1`). A missing required field is named by the path it should have.
    pub path: String,
    /// What is wrong, e.g. `unknown op "gtt"`.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// Displays a list of validation errors, one per line.
struct ErrorList<'a>(&'a [ValidationError]);

impl fmt::Display for ErrorList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}
