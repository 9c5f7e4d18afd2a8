//! Edits of one limit of a loaded policy, for limit tuning: a pointer such as
//! `/tools/session_create/limits/session_create_rate` (a `limits` element named by its counter or its
//! index) resolves to a [`LimitTarget`], which makes a copy of the policy with another `max` or `window`.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::policy::Policy;

/// What to set on the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitField {
    /// Its `max`.
    Max(u64),
    /// Its `window` (`second`, `minute`, `hour`, `day`). A counter has one window, so every limit of
    /// the same counter gets it.
    Window(String),
}

/// One limit of a policy, found by a pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitTarget {
    /// `["tools", "<tool>", "limits", "<index>"]` or `["all_tools", "limits", "<index>"]`.
    path: Vec<String>,
    /// The limit's counter name.
    pub counter: String,
    /// Its `max` in the policy.
    pub max: u64,
    /// Its `window` in the policy.
    pub window: String,
    /// The rule pointer a call it rate-limits is reported with (`/tools/<tool>/limits/<counter>`).
    pub rule: String,
}

impl LimitTarget {
    /// Finds the limit `pointer` names in `policy`: `/tools/<tool>/limits/<counter or index>` or
    /// `/all_tools/limits/<counter or index>` (RFC 6901 escapes `~0` and `~1` allowed).
    ///
    /// # Errors
    /// [`Error::Pointer`] naming what the pointer misses.
    pub fn resolve(policy: &Policy, pointer: &str) -> Result<Self> {
        let bad = |message: String| Error::Pointer {
            pointer: pointer.to_string(),
            message,
        };
        let doc: Value = serde_json::from_str(policy.source())
            .map_err(|e| bad(format!("the policy text does not parse: {e}")))?;
        let segments: Vec<String> = match pointer.strip_prefix('/') {
            Some(rest) => rest
                .split('/')
                .map(|s| s.replace("~1", "/").replace("~0", "~"))
                .collect(),
            None => return Err(bad("a pointer starts with `/`".into())),
        };
        let (owner, rest): (Vec<String>, &[String]) = match segments.as_slice() {
            [tools, tool, rest @ ..] if tools == "tools" => {
                (vec![tools.clone(), tool.clone()], rest)
            }
            [all, rest @ ..] if all == "all_tools" => (vec![all.clone()], rest),
            _ => {
                return Err(bad(
                    "expected /tools/<tool>/limits/<counter> or /all_tools/limits/<counter>".into(),
                ))
            }
        };
        let [limits, which] = rest else {
            return Err(bad(
                "expected .../limits/<counter or index> after the tool".into()
            ));
        };
        if limits != "limits" {
            return Err(bad(format!("expected `limits`, found `{limits}`")));
        }
        let list = owner
            .iter()
            .try_fold(&doc, |v, k| v.get(k))
            .and_then(|o| o.get("limits"))
            .and_then(Value::as_array)
            .ok_or_else(|| bad(format!("the policy has no /{}/limits", owner.join("/"))))?;
        let index = match which.parse::<usize>() {
            Ok(i) if i < list.len() => i,
            _ => list
                .iter()
                .position(|l| l.get("counter").and_then(Value::as_str) == Some(which))
                .ok_or_else(|| {
                    bad(format!(
                        "no limit with counter or index `{which}` (the limits there: {})",
                        list.iter()
                            .filter_map(|l| l.get("counter").and_then(Value::as_str))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?,
        };
        let limit = &list[index];
        let counter = limit
            .get("counter")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let max = limit.get("max").and_then(as_whole).unwrap_or(0);
        let window = limit
            .get("window")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let rule = match owner.as_slice() {
            [_, tool] => format!("/tools/{tool}/limits/{counter}"),
            _ => format!("/all_tools/limits/{counter}"),
        };
        let mut path = owner;
        path.push("limits".into());
        path.push(index.to_string());
        Ok(Self {
            path,
            counter,
            max,
            window,
            rule,
        })
    }

    /// A copy of `policy` (the one this target was resolved in) with `field` set on the limit,
    /// validated again.
    ///
    /// # Errors
    /// The validation errors of the edited policy (a window that does not exist ...).
    pub fn apply(&self, policy: &Policy, field: &LimitField) -> Result<Policy> {
        let mut doc: Value = serde_json::from_str(policy.source()).map_err(|e| Error::Pointer {
            pointer: self.pointer(),
            message: format!("the policy text does not parse: {e}"),
        })?;
        match field {
            LimitField::Max(max) => {
                if let Some(limit) = self.locate(&mut doc) {
                    limit["max"] = Value::from(*max);
                }
            }
            LimitField::Window(window) => {
                let counter = Value::from(self.counter.as_str());
                for_each_limit(&mut doc, &mut |limit| {
                    if limit.get("counter") == Some(&counter) {
                        limit["window"] = Value::from(window.as_str());
                    }
                });
            }
        }
        let text = serde_json::to_string_pretty(&doc).map_err(|e| Error::Pointer {
            pointer: self.pointer(),
            message: e.to_string(),
        })?;
        Policy::from_json_str(&text)
    }

    /// The canonical pointer (`/tools/<tool>/limits/<index>`).
    pub fn pointer(&self) -> String {
        self.path
            .iter()
            .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
            .collect()
    }

    fn locate<'v>(&self, doc: &'v mut Value) -> Option<&'v mut Value> {
        let mut v = doc;
        for seg in &self.path {
            v = match v {
                Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?)?,
                Value::Object(o) => o.get_mut(seg)?,
                _ => return None,
            };
        }
        Some(v)
    }
}

fn for_each_limit(doc: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    let mut lists: Vec<&mut Value> = Vec::new();
    if let Some(v) = doc.get_mut("all_tools").and_then(|a| a.get_mut("limits")) {
        lists.push(v);
    }
    // `all_tools` and `tools` are distinct members, so borrow them one after the other.
    for list in lists {
        if let Some(a) = list.as_array_mut() {
            a.iter_mut().for_each(&mut *f);
        }
    }
    if let Some(tools) = doc.get_mut("tools").and_then(Value::as_object_mut) {
        for rule in tools.values_mut() {
            if let Some(a) = rule.get_mut("limits").and_then(Value::as_array_mut) {
                a.iter_mut().for_each(&mut *f);
            }
        }
    }
}

/// A whole, non-negative JSON number (`max` accepts `5.0`).
fn as_whole(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0)
            .map(|f| f as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = r#"{"version":"1","default":"deny",
      "all_tools":{"limits":[{"counter":"per-min","window":"minute","max":30}]},
      "tools":{"a":{"limits":[{"counter":"shared","window":"minute","max":5}]},
               "b":{"limits":[{"counter":"shared","window":"minute","max":2}]}}}"#;

    #[test]
    fn resolves_by_counter_or_index_and_edits() {
        let p = Policy::from_json_str(P).unwrap();
        let t = LimitTarget::resolve(&p, "/tools/a/limits/shared").unwrap();
        assert_eq!(
            (t.counter.as_str(), t.max, t.window.as_str()),
            ("shared", 5, "minute")
        );
        assert_eq!(t.rule, "/tools/a/limits/shared");
        assert_eq!(t.pointer(), "/tools/a/limits/0");
        assert_eq!(LimitTarget::resolve(&p, "/tools/a/limits/0").unwrap(), t);
        let all = LimitTarget::resolve(&p, "/all_tools/limits/per-min").unwrap();
        assert_eq!(
            (all.max, all.rule.as_str()),
            (30, "/all_tools/limits/per-min")
        );

        let edited = t.apply(&p, &LimitField::Max(9)).unwrap();
        let doc: Value = serde_json::from_str(edited.source()).unwrap();
        assert_eq!(doc["tools"]["a"]["limits"][0]["max"], 9);
        assert_eq!(
            doc["tools"]["b"]["limits"][0]["max"], 2,
            "only the named limit"
        );
        // A window is the counter's: both limits of `shared` move together, so the policy stays valid.
        let hourly = t.apply(&p, &LimitField::Window("hour".into())).unwrap();
        let doc: Value = serde_json::from_str(hourly.source()).unwrap();
        assert_eq!(doc["tools"]["b"]["limits"][0]["window"], "hour");
        assert_eq!(doc["all_tools"]["limits"][0]["window"], "minute");
        let e = t.apply(&p, &LimitField::Window("week".into())).unwrap_err();
        assert!(e.to_string().contains("/tools/a/limits/0/window"), "{e}");
    }

    #[test]
    fn bad_pointers_are_named() {
        let p = Policy::from_json_str(P).unwrap();
        for (ptr, want) in [
            ("tools/a/limits/0", "starts with `/`"),
            ("/tools/zz/limits/0", "no /tools/zz/limits"),
            (
                "/tools/a/limits/nope",
                "no limit with counter or index `nope` (the limits there: shared)",
            ),
            ("/tools/a/deny_if/0", "expected `limits`"),
            ("/default", "expected /tools/<tool>/limits/<counter>"),
        ] {
            let e = LimitTarget::resolve(&p, ptr).unwrap_err().to_string();
            assert!(e.starts_with(ptr) && e.contains(want), "{ptr}: {e}");
        }
    }
}
