//! The transition of one call: its candidate outcome against the other side (the record, or the
//! baseline), named as the replay semantics name them.

use std::fmt;
use std::str::FromStr;

use verdict_policy::Outcome;

use crate::report::TRANSITIONS;

/// How a call's outcome moved from the other side (record or baseline) to the candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // the names say it: `AllowDeny` is `allow->deny`
pub enum Transition {
    Unchanged,
    AllowDeny,
    AllowRateLimited,
    AllowApprovalRequired,
    DenyAllow,
    RateLimitedAllow,
    ApprovalRequiredAllow,
    DenyRateLimited,
    DenyApprovalRequired,
    RateLimitedDeny,
    RateLimitedApprovalRequired,
    ApprovalRequiredDeny,
    ApprovalRequiredRateLimited,
    /// Either side needs an argument value the log does not hold.
    Indeterminate,
    /// The recorded decision is `error` or `unknown`.
    NotComparable,
}

impl Transition {
    /// Every transition, in [`TRANSITIONS`] order (the order reports list them).
    pub const ALL: [Transition; 15] = [
        Transition::Unchanged,
        Transition::AllowDeny,
        Transition::AllowRateLimited,
        Transition::AllowApprovalRequired,
        Transition::DenyAllow,
        Transition::RateLimitedAllow,
        Transition::ApprovalRequiredAllow,
        Transition::DenyRateLimited,
        Transition::DenyApprovalRequired,
        Transition::RateLimitedDeny,
        Transition::RateLimitedApprovalRequired,
        Transition::ApprovalRequiredDeny,
        Transition::ApprovalRequiredRateLimited,
        Transition::Indeterminate,
        Transition::NotComparable,
    ];

    /// The transition from `other` (`None`: not comparable) to `candidate`.
    pub fn between(other: Option<Outcome>, candidate: Outcome) -> Self {
        use Outcome::{Allow, ApprovalRequired as Appr, Deny, Indeterminate, RateLimited as Rl};
        let Some(other) = other else {
            return Transition::NotComparable;
        };
        match (other, candidate) {
            (Indeterminate, _) | (_, Indeterminate) => Transition::Indeterminate,
            (a, b) if a == b => Transition::Unchanged,
            (Allow, Deny) => Transition::AllowDeny,
            (Allow, Rl) => Transition::AllowRateLimited,
            (Allow, Appr) => Transition::AllowApprovalRequired,
            (Deny, Allow) => Transition::DenyAllow,
            (Rl, Allow) => Transition::RateLimitedAllow,
            (Appr, Allow) => Transition::ApprovalRequiredAllow,
            (Deny, Rl) => Transition::DenyRateLimited,
            (Deny, Appr) => Transition::DenyApprovalRequired,
            (Rl, Deny) => Transition::RateLimitedDeny,
            (Rl, Appr) => Transition::RateLimitedApprovalRequired,
            (Appr, Deny) => Transition::ApprovalRequiredDeny,
            (Appr, Rl) => Transition::ApprovalRequiredRateLimited,
            // Equal pairs were matched above.
            _ => Transition::Unchanged,
        }
    }

    /// `unchanged`, `allow->deny` ...
    pub fn as_str(self) -> &'static str {
        TRANSITIONS[self as usize]
    }

    /// Its position in [`Transition::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// A determinate change of outcome (not `unchanged`, `indeterminate` nor `not_comparable`).
    pub fn is_change(self) -> bool {
        !matches!(
            self,
            Transition::Unchanged | Transition::Indeterminate | Transition::NotComparable
        )
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Transition {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Transition::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_report_order() {
        for (i, t) in Transition::ALL.iter().enumerate() {
            assert_eq!(t.index(), i);
            assert_eq!(t.as_str().parse::<Transition>(), Ok(*t));
        }
        let outcomes = [
            Outcome::Allow,
            Outcome::Deny,
            Outcome::RateLimited,
            Outcome::ApprovalRequired,
        ];
        for a in outcomes {
            for b in outcomes {
                let t = Transition::between(Some(a), b);
                let want = if a == b {
                    "unchanged".to_string()
                } else {
                    format!("{a}->{b}")
                };
                assert_eq!(t.as_str(), want);
                assert_eq!(t.is_change(), a != b);
            }
        }
        assert_eq!(
            Transition::between(Some(Outcome::Indeterminate), Outcome::Allow),
            Transition::Indeterminate
        );
        assert_eq!(
            Transition::between(None, Outcome::Indeterminate),
            Transition::NotComparable
        );
    }
}
