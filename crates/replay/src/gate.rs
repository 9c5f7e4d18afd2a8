//! CI gates of a replay (`--fail-on`): parsing and evaluation against a finished report.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::Error;
use crate::report::ReplayReport;
use crate::transition::Transition;

/// A condition that makes the replay exit 1 when it holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Any call with this transition (`deny->allow`, `allow->deny`, `indeterminate` ...).
    Transition(Transition),
    /// The candidate allows a call of a destructive tool that was not allowed before.
    DestructiveAllowed,
    /// More than this percentage of the compared (determinate) calls changed.
    ChangedAbove(f64),
    /// Any determinate change at all.
    AnyChange,
}

impl FromStr for Gate {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |message: &str| Error::Gate {
            gate: s.to_string(),
            message: message.to_string(),
        };
        let t = s.trim();
        if t == "destructive-allowed" {
            return Ok(Gate::DestructiveAllowed);
        }
        if t == "any-change" {
            return Ok(Gate::AnyChange);
        }
        if let Some(rest) = t.strip_prefix("changed>") {
            let num = rest
                .strip_suffix('%')
                .ok_or_else(|| bad("expected a percentage such as changed>5%"))?;
            let v: f64 = num
                .trim()
                .parse()
                .map_err(|_| bad("expected a number before %"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(bad("the percentage must be between 0 and 100"));
            }
            return Ok(Gate::ChangedAbove(v));
        }
        if t.contains("->") || t == "indeterminate" {
            return match t.parse::<Transition>() {
                Ok(tr) if tr.is_change() || tr == Transition::Indeterminate => {
                    Ok(Gate::Transition(tr))
                }
                _ => Err(bad(
                    "unknown transition (e.g. deny->allow, allow->rate_limited, indeterminate)",
                )),
            };
        }
        Err(bad("expected a transition (deny->allow ...), destructive-allowed, changed>N% or any-change"))
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gate::Transition(t) => f.write_str(t.as_str()),
            Gate::DestructiveAllowed => f.write_str("destructive-allowed"),
            Gate::ChangedAbove(p) => write!(f, "changed>{p}%"),
            Gate::AnyChange => f.write_str("any-change"),
        }
    }
}

/// Whether a gate held, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    /// The gate as written.
    pub gate: String,
    /// Whether it holds (the replay exits 1).
    pub tripped: bool,
    /// The figure it was decided on.
    pub detail: String,
}

impl Gate {
    /// Evaluates the gate on a finished report.
    pub fn check(&self, r: &ReplayReport) -> GateResult {
        let (tripped, detail) = match self {
            Gate::Transition(t) => {
                let n = r.transitions.get(t.as_str());
                (n > 0, format!("{n} calls {t}"))
            }
            Gate::DestructiveAllowed => {
                let n = r.counts.destructive_newly_allowed;
                (
                    n > 0,
                    format!("{n} calls of destructive tools newly allowed"),
                )
            }
            Gate::ChangedAbove(p) => {
                let share = r.changed_share() * 100.0;
                (
                    share > *p,
                    format!(
                        "{share:.2}% of {} compared calls changed",
                        r.counts.compared
                    ),
                )
            }
            Gate::AnyChange => {
                let n = r.counts.changed;
                (n > 0, format!("{n} calls changed"))
            }
        };
        GateResult {
            gate: self.to_string(),
            tripped,
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "deny->allow".parse::<Gate>().unwrap(),
            Gate::Transition(Transition::DenyAllow)
        );
        assert_eq!(
            "rate_limited->deny".parse::<Gate>().unwrap(),
            Gate::Transition(Transition::RateLimitedDeny)
        );
        assert_eq!(
            "destructive-allowed".parse::<Gate>().unwrap(),
            Gate::DestructiveAllowed
        );
        assert_eq!(
            "changed>2.5%".parse::<Gate>().unwrap(),
            Gate::ChangedAbove(2.5)
        );
        assert_eq!("any-change".parse::<Gate>().unwrap(), Gate::AnyChange);
        for bad in [
            "deny->deny",
            "allow->maybe",
            "changed>5",
            "changed>x%",
            "changed>101%",
            "unchanged",
            "sometimes",
        ] {
            let e = bad.parse::<Gate>().unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid gate `{bad}`")), "{e}");
        }
    }
}
