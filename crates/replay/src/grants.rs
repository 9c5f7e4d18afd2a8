//! Which policy decides a call: one policy for every call, or a policy per grant read from a
//! `grants.toml`. A grant is named by its identity id (PolicyLayer's grant id) or its identity label;
//! the id is looked up first. A grant with no entry gets the `default` entry's policy, or none: then
//! every call is denied with rule `(no policy)`. All the policies share one counter space
//! ([`PolicySet`]), so a `server` or `global` counter named in several of them is one bucket.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;
use serde::Deserialize;
use verdict_policy::{Call, Evaluator, Policy, PolicySet, Verdict};

use crate::error::{Error, Result};

/// The policies of a replay side and how calls find theirs.
#[derive(Debug, Clone)]
pub struct Policies {
    set: PolicySet,
    by_grant: FxHashMap<String, usize>,
    default: Option<usize>,
}

/// The `grants.toml` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsFile {
    /// The policy of grants without an entry; without it they have no policy.
    default: Option<PathBuf>,
    /// Grant (identity id or identity label) -> policy file.
    #[serde(default)]
    grants: BTreeMap<String, PathBuf>,
}

impl From<Policy> for Policies {
    fn from(policy: Policy) -> Self {
        Self::single(policy)
    }
}

impl Policies {
    /// One policy for every call.
    pub fn single(policy: Policy) -> Self {
        Self {
            set: PolicySet::single(policy),
            by_grant: FxHashMap::default(),
            default: Some(0),
        }
    }

    /// Reads a `grants.toml`:
    ///
    /// ```toml
    /// default = "policies/default.json"   # optional
    /// [grants]
    /// "alice-laptop" = "policies/alice.json"
    /// gr_19c2 = "policies/bob.json"
    /// ```
    ///
    /// Relative policy paths are relative to the file's directory. Each policy file is loaded once.
    ///
    /// # Errors
    /// [`Error::Grants`] for a file that cannot be read or parsed (unknown keys included),
    /// [`Error::Policy`] for a policy that does not load, and a counter declared differently by two of
    /// the policies.
    pub fn from_grants_file(path: &Path) -> Result<Self> {
        let bad = |message: String| Error::Grants {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: GrantsFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let entries = file
            .grants
            .into_iter()
            .map(|(grant, p)| (grant, base.join(p)))
            .collect();
        Self::from_files(entries, file.default.map(|p| base.join(p))).map_err(|e| match e {
            Error::Policy { .. } => e,
            other => bad(other.to_string()),
        })
    }

    /// Policies per grant from `(grant, policy)` pairs (each its own member) and an optional default.
    ///
    /// # Errors
    /// A counter declared differently by two of the policies.
    pub fn per_grant(entries: Vec<(String, Policy)>, default: Option<Policy>) -> Result<Self> {
        let mut by_grant = FxHashMap::default();
        let mut members = Vec::with_capacity(entries.len() + 1);
        for (i, (grant, policy)) in entries.into_iter().enumerate() {
            by_grant.insert(grant.clone(), i);
            members.push((grant, policy));
        }
        let default = default.map(|p| {
            members.push(("(default)".to_string(), p));
            members.len() - 1
        });
        let set = PolicySet::new(members).map_err(|source| Error::PolicySet { source })?;
        Ok(Self {
            set,
            by_grant,
            default,
        })
    }

    /// Policies per grant from `(grant, policy file)` entries and an optional default file.
    ///
    /// # Errors
    /// As [`Policies::from_grants_file`].
    pub fn from_files(entries: Vec<(String, PathBuf)>, default: Option<PathBuf>) -> Result<Self> {
        let mut files: Vec<PathBuf> = Vec::new();
        let mut member = |p: &PathBuf| match files.iter().position(|f| f == p) {
            Some(i) => i,
            None => {
                files.push(p.clone());
                files.len() - 1
            }
        };
        let by_grant: FxHashMap<String, usize> = entries
            .iter()
            .map(|(grant, p)| (grant.clone(), member(p)))
            .collect();
        let default = default.as_ref().map(&mut member);
        let members = files
            .iter()
            .map(|p| {
                Policy::from_path(p)
                    .map(|policy| (p.display().to_string(), policy))
                    .map_err(|source| Error::Policy {
                        path: p.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let set = PolicySet::new(members).map_err(|source| Error::PolicySet { source })?;
        Ok(Self {
            set,
            by_grant,
            default,
        })
    }

    /// The member of the set that decides a call of this grant; `None`: the grant has no policy.
    #[inline]
    pub fn member_for(&self, identity_id: Option<&str>, identity: Option<&str>) -> Option<usize> {
        if self.by_grant.is_empty() {
            return self.default;
        }
        identity_id
            .and_then(|k| self.by_grant.get(k))
            .or_else(|| identity.and_then(|k| self.by_grant.get(k)))
            .copied()
            .or(self.default)
    }

    /// The policies, sharing one counter space.
    pub fn set(&self) -> &PolicySet {
        &self.set
    }

    /// Whether this is one policy for every call.
    pub fn is_single(&self) -> bool {
        self.by_grant.is_empty() && self.set.len() == 1
    }
}

/// An evaluator over [`Policies`]: each call goes to its grant's policy, over shared counters.
pub(crate) struct Side<'p> {
    policies: &'p Policies,
    evaluator: Evaluator<'p>,
}

impl<'p> Side<'p> {
    pub(crate) fn new(policies: &'p Policies) -> Self {
        Self {
            policies,
            evaluator: Evaluator::for_set(&policies.set),
        }
    }

    #[inline]
    pub(crate) fn evaluate(&mut self, call: &Call<'_>) -> Verdict<'p> {
        match self.policies.member_for(call.identity_id, call.identity) {
            Some(m) => self.evaluator.evaluate_in(m, call),
            None => Verdict::NO_POLICY,
        }
    }
}

/// Writes the text of a `grants.toml` mapping each grant to its policy file (paths as given).
pub fn grants_toml(entries: &[(String, String)], default: Option<&str>) -> String {
    // A JSON string is a TOML basic string (the same escapes), so serde_json quotes both sides.
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""));
    let mut out = String::from(
        "# grant (identity id or identity label) -> policy file, relative to this file\n",
    );
    if let Some(d) = default {
        out.push_str(&format!("default = {}\n", q(d)));
    }
    out.push_str("\n[grants]\n");
    for (grant, file) in entries {
        out.push_str(&format!("{} = {}\n", q(grant), q(file)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_file_maps_ids_then_labels_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let p =
            |tool: &str| format!(r#"{{"version":"1","default":"deny","tools":{{"{tool}":{{}}}}}}"#);
        std::fs::create_dir(dir.path().join("p")).unwrap();
        std::fs::write(dir.path().join("p/a.json"), p("a")).unwrap();
        std::fs::write(dir.path().join("p/b.json"), p("b")).unwrap();
        let text = grants_toml(
            &[
                ("gr_1".into(), "p/a.json".into()),
                ("bob \"the\" bot".into(), "p/b.json".into()),
                ("carol".into(), "p/a.json".into()),
            ],
            Some("p/b.json"),
        );
        let path = dir.path().join("grants.toml");
        std::fs::write(&path, &text).unwrap();
        let ps = Policies::from_grants_file(&path).unwrap();
        assert_eq!(ps.set().len(), 2, "p/a.json is loaded once");
        let file = |m: Option<usize>| {
            let name = ps.set().name(m.unwrap()).unwrap();
            name.rsplit('/').next().unwrap().to_string()
        };
        assert_eq!(
            file(ps.member_for(Some("gr_1"), Some("bob \"the\" bot"))),
            "a.json"
        );
        assert_eq!(
            file(ps.member_for(Some("gr_x"), Some("bob \"the\" bot"))),
            "b.json"
        );
        assert_eq!(file(ps.member_for(None, Some("carol"))), "a.json");
        assert_eq!(
            file(ps.member_for(None, Some("dave"))),
            "b.json",
            "the default"
        );
        assert!(!ps.is_single());

        std::fs::write(&path, "[grants]\ncarol = \"p/a.json\"\n").unwrap();
        let ps = Policies::from_grants_file(&path).unwrap();
        assert_eq!(
            ps.member_for(None, Some("dave")),
            None,
            "no default: no policy"
        );

        std::fs::write(&path, "defaults = \"p/a.json\"\n").unwrap();
        let e = Policies::from_grants_file(&path).unwrap_err().to_string();
        assert!(
            e.contains("grants.toml") && e.contains("unknown field `defaults`"),
            "{e}"
        );
        std::fs::write(&path, "[grants]\ncarol = \"p/none.json\"\n").unwrap();
        let e = Policies::from_grants_file(&path).unwrap_err().to_string();
        assert!(e.contains("none.json"), "{e}");
    }
}
