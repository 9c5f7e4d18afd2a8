//! Legal holds: named ranges of time and/or identities whose rows retention and erasure must not
//! touch. Each hold is one JSON object `_verdict/holds/<name>.json` under the warehouse root,
//! created with an exclusive create (a conditional put on object stores), so two users placing
//! the same name at once cannot both win. Lifting a hold keeps a copy with who lifted it and
//! when under `_verdict/holds-lifted/`.

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::warehouse::Warehouse;

const HOLDS_DIR: &str = "_verdict/holds";
const LIFTED_DIR: &str = "_verdict/holds-lifted";

/// One legal hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hold {
    /// Its name (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// The first instant it covers (RFC 3339), if bounded.
    #[serde(default)]
    pub since: Option<String>,
    /// The first instant after it (RFC 3339, exclusive), if bounded.
    #[serde(default)]
    pub until: Option<String>,
    /// The identities it covers (matched on `identity` or `identity_id`); empty: everyone.
    #[serde(default)]
    pub identities: Vec<String>,
    /// Why it was placed.
    pub reason: String,
    /// Who placed it.
    #[serde(default)]
    pub placed_by: Option<String>,
    /// When (RFC 3339).
    pub placed_at: String,
    /// When it was lifted (only in the copy kept after lifting).
    #[serde(default)]
    pub lifted_at: Option<String>,
}

impl Hold {
    fn bound(v: Option<&String>) -> Option<i64> {
        v.and_then(|s| verdict_schema::time::parse_rfc3339_micros(s))
    }

    /// Whether the hold's time range holds the instant `ts` (UTC microseconds).
    pub fn covers_time(&self, ts: i64) -> bool {
        Self::bound(self.since.as_ref()).is_none_or(|s| ts >= s)
            && Self::bound(self.until.as_ref()).is_none_or(|u| ts < u)
    }

    /// Whether the hold's time range meets the span `[start, end)`.
    pub fn covers_span(&self, start: i64, end: i64) -> bool {
        Self::bound(self.since.as_ref()).is_none_or(|s| s < end)
            && Self::bound(self.until.as_ref()).is_none_or(|u| u > start)
    }

    /// Whether the hold covers a decision at `ts` by a caller known by `ids` (identity,
    /// identity_id).
    pub fn covers(&self, ts: i64, ids: &[Option<&str>]) -> bool {
        self.covers_time(ts)
            && (self.identities.is_empty()
                || ids
                    .iter()
                    .flatten()
                    .any(|id| self.identities.iter().any(|h| h == id)))
    }

    /// Whether the hold covers a quarantined line of `text` quarantined at `at`: its time range
    /// holds `at`, and it names no identity or `text` contains one it names.
    pub fn covers_text(&self, at: i64, text: &str) -> bool {
        self.covers_time(at)
            && (self.identities.is_empty()
                || self
                    .identities
                    .iter()
                    .any(|h| !h.is_empty() && text.contains(h.as_str())))
    }

    /// Checks the name and the bounds.
    ///
    /// # Errors
    /// [`Error::Hold`] naming what is wrong.
    pub fn check(&self) -> Result<()> {
        let bad = |message: String| Error::Hold {
            name: self.name.clone(),
            message,
        };
        let ok_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !self.name.starts_with('.');
        if !ok_name {
            return Err(bad(
                "a hold name is 1 to 64 letters, digits, `.`, `_` or `-`, not starting with `.`"
                    .into(),
            ));
        }
        for (what, v) in [("since", &self.since), ("until", &self.until)] {
            if let Some(s) = v {
                if Self::bound(Some(s)).is_none() {
                    return Err(bad(format!("{what} `{s}` is not an RFC 3339 time")));
                }
            }
        }
        if let (Some(s), Some(u)) = (
            Self::bound(self.since.as_ref()),
            Self::bound(self.until.as_ref()),
        ) {
            if s >= u {
                return Err(bad("since must be before until".into()));
            }
        }
        if self.reason.trim().is_empty() {
            return Err(bad("a hold needs a reason".into()));
        }
        Ok(())
    }
}

fn hold_path(dir: &str, file: &str) -> Path {
    Path::from(dir).join(file)
}

impl Warehouse {
    /// Every hold in place, by name.
    ///
    /// # Errors
    /// When the holds cannot be listed or one of them is not a hold.
    pub async fn holds(&self) -> Result<Vec<Hold>> {
        use futures::TryStreamExt;
        let store = self.root_store();
        let metas: Vec<_> = store
            .list(Some(&Path::from(HOLDS_DIR)))
            .try_collect()
            .await
            .map_err(Error::store("listing", HOLDS_DIR))?;
        let mut out = Vec::new();
        for m in metas {
            if !m.location.as_ref().ends_with(".json") {
                continue;
            }
            let shown = format!("{}{}", self.location().url(), m.location);
            let bytes = store
                .get(&m.location)
                .await
                .map_err(Error::store("reading", &shown))?
                .bytes()
                .await
                .map_err(Error::store("reading", &shown))?;
            let hold: Hold = serde_json::from_slice(&bytes).map_err(|e| Error::Hold {
                name: shown.clone(),
                message: format!("not a hold: {e}"),
            })?;
            out.push(hold);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Places a hold; refused when one of that name is in place.
    ///
    /// # Errors
    /// [`Error::Hold`] for a bad hold or a name in use; a store failure.
    pub async fn add_hold(&self, hold: &Hold) -> Result<()> {
        hold.check()?;
        let body = serde_json::to_vec_pretty(hold)
            .map_err(|e| Error::Internal(format!("hold {}: {e}", hold.name)))?;
        let path = hold_path(HOLDS_DIR, &format!("{}.json", hold.name));
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .root_store()
            .put_opts(&path, PutPayload::from(body), opts)
            .await
        {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => Err(Error::Hold {
                name: hold.name.clone(),
                message: "a hold of this name is in place (`verdict hold list`)".into(),
            }),
            Err(e) => Err(Error::store("writing", path)(e)),
        }
    }

    /// Lifts a hold: keeps a copy stamped `lifted_at` under `_verdict/holds-lifted/`, then
    /// removes it. Returns the hold as it was.
    ///
    /// # Errors
    /// [`Error::Hold`] when no hold has that name; a store failure.
    pub async fn remove_hold(&self, name: &str, now: &str) -> Result<Hold> {
        let Some(mut hold) = self.holds().await?.into_iter().find(|h| h.name == name) else {
            return Err(Error::Hold {
                name: name.into(),
                message: "no hold of this name is in place".into(),
            });
        };
        let store = self.root_store();
        hold.lifted_at = Some(now.to_string());
        let stamp = now.replace([':', '-', '.'], "");
        let copy = hold_path(LIFTED_DIR, &format!("{name}-{stamp}.json"));
        let body = serde_json::to_vec_pretty(&hold)
            .map_err(|e| Error::Internal(format!("hold {name}: {e}")))?;
        store
            .put(&copy, PutPayload::from(body))
            .await
            .map_err(Error::store("writing", &copy))?;
        let path = hold_path(HOLDS_DIR, &format!("{name}.json"));
        store
            .delete(&path)
            .await
            .map_err(Error::store("removing", &path))?;
        hold.lifted_at = None;
        Ok(hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Location;

    fn hold(name: &str) -> Hold {
        Hold {
            name: name.into(),
            since: Some("2025-01-01T00:00:00Z".into()),
            until: Some("2025-02-01T00:00:00Z".into()),
            identities: vec!["alice".into()],
            reason: "case 7".into(),
            placed_by: None,
            placed_at: "2026-11-30T10:00:00Z".into(),
            lifted_at: None,
        }
    }

    #[test]
    fn a_hold_covers_its_range_and_identities() {
        let h = hold("h");
        let t = |s: &str| verdict_schema::time::parse_rfc3339_micros(s).unwrap();
        assert!(h.covers(t("2025-01-15T00:00:00Z"), &[Some("x"), Some("alice")]));
        assert!(!h.covers(t("2025-01-15T00:00:00Z"), &[Some("bob"), None]));
        assert!(!h.covers(t("2025-02-01T00:00:00Z"), &[Some("alice"), None]));
        assert!(h.covers_text(t("2025-01-01T00:00:00Z"), "{\"user\":\"alice\"}"));
        assert!(!h.covers_text(t("2024-12-31T23:59:59Z"), "{\"user\":\"alice\"}"));
    }

    #[test]
    fn holds_are_placed_once_listed_and_lifted() {
        let wh = Warehouse::new(Location::parse("memory:///wh", []).unwrap()).unwrap();
        crate::block_on(wh.add_hold(&hold("case-7"))).unwrap();
        let err = crate::block_on(wh.add_hold(&hold("case-7")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hold case-7: a hold of this name is in place"),
            "{err}"
        );
        let err = crate::block_on(wh.add_hold(&hold("../x")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a hold name is"), "{err}");
        assert_eq!(crate::block_on(wh.holds()).unwrap(), vec![hold("case-7")]);
        let lifted = crate::block_on(wh.remove_hold("case-7", "2026-11-30T11:00:00Z")).unwrap();
        assert_eq!(lifted, hold("case-7"));
        assert!(crate::block_on(wh.holds()).unwrap().is_empty());
        let err = crate::block_on(wh.remove_hold("case-7", "x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no hold of this name"), "{err}");
    }
}
