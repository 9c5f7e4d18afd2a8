//! The `decision` column's closed set of values and their parsing.
//! Mapping a proxy's own vocabulary onto it is the formats' job, not this file's.

use std::fmt;
use std::str::FromStr;

/// One of the six outcomes the decisions table knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Decision {
    /// The call was forwarded.
    Allow,
    /// The call was refused by a rule (hidden tool, default deny, argument predicate ...).
    Deny,
    /// The call was refused by a quota or rate limit.
    RateLimited,
    /// The call waits for a human.
    ApprovalRequired,
    /// The policy engine or the proxy failed.
    Error,
    /// The record says nothing usable about the outcome.
    Unknown,
}

impl Decision {
    /// All values, in the order reports list them.
    pub const ALL: [Decision; 6] = [
        Decision::Allow,
        Decision::Deny,
        Decision::RateLimited,
        Decision::ApprovalRequired,
        Decision::Error,
        Decision::Unknown,
    ];

    /// The value as stored in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::RateLimited => "rate_limited",
            Self::ApprovalRequired => "approval_required",
            Self::Error => "error",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of the six stored values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownDecision(pub String);

impl fmt::Display for UnknownDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown decision `{}` (expected allow, deny, rate_limited, approval_required, error or unknown)",
            self.0
        )
    }
}

impl std::error::Error for UnknownDecision {}

impl FromStr for Decision {
    type Err = UnknownDecision;

    /// Parses a stored value exactly (`allow`, `rate_limited` ...).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decision::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| UnknownDecision(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_value() {
        for d in Decision::ALL {
            assert_eq!(d.as_str().parse::<Decision>().unwrap(), d);
        }
        assert!("allowed".parse::<Decision>().is_err());
    }
}
