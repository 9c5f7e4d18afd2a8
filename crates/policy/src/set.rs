//! Several policies evaluated over one counter space: a [`PolicySet`] rewrites its members' counter ids
//! so that a counter name means one counter across all of them, as PolicyLayer shares the buckets of a
//! `server` or `global` counter between every grant whose policy names it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::policy::{CounterDef, LimitSet, Policy, Window};

/// Policies that share their counters by name: the policies attached to the grants of one gateway.
///
/// A counter bucket is keyed by (counter name, scope key) across the whole set, so a `server` or
/// `global` counter named in two members is one bucket, and a `grant` counter is still one bucket per
/// identity. Every member must declare a shared counter name with the same window, scope and sliding
/// flag (the rule one policy already follows for its own limits). A member's
/// [`Policy::counter_names`] lists the counters of the whole set.
#[derive(Debug, Clone)]
pub struct PolicySet {
    members: Vec<Policy>,
    names: Vec<String>,
}

impl PolicySet {
    /// Builds a set from `(name, policy)` members; the names (file paths, usually) only label errors.
    ///
    /// # Errors
    /// [`Error::CounterConflict`] when two members declare one counter name with a different window,
    /// scope or sliding flag.
    pub fn new(members: Vec<(String, Policy)>) -> Result<Self> {
        let mut counters: Vec<CounterDef> = Vec::new();
        let mut owner: Vec<usize> = Vec::new();
        let mut classes: Vec<(Window, bool)> = Vec::new();
        let mut by_name: HashMap<Arc<str>, u32> = HashMap::new();
        let mut remaps: Vec<Vec<u32>> = Vec::with_capacity(members.len());
        for (m, (name, policy)) in members.iter().enumerate() {
            let mut remap = Vec::with_capacity(policy.counters.len());
            for def in &policy.counters {
                let class = policy.classes[def.class as usize];
                let id = match by_name.get(&def.name) {
                    Some(&id) => {
                        let shared = &mut counters[id as usize];
                        let shared_class = classes[shared.class as usize];
                        if shared.scope != def.scope || shared_class != class {
                            return Err(Error::CounterConflict {
                                counter: def.name.to_string(),
                                first: members[owner[id as usize]].0.clone(),
                                first_is: describe(shared.scope.name(), shared_class),
                                second: name.clone(),
                                second_is: describe(def.scope.name(), class),
                            });
                        }
                        shared.keep = shared.keep.max(def.keep);
                        id
                    }
                    None => {
                        let class_id = match classes.iter().position(|c| *c == class) {
                            Some(c) => c,
                            None => {
                                classes.push(class);
                                classes.len() - 1
                            }
                        };
                        let id = u32::try_from(counters.len()).unwrap_or(u32::MAX);
                        counters.push(CounterDef {
                            class: u32::try_from(class_id).unwrap_or(u32::MAX),
                            ..def.clone()
                        });
                        owner.push(m);
                        by_name.insert(def.name.clone(), id);
                        id
                    }
                };
                remap.push(id);
            }
            remaps.push(remap);
        }
        let mut out = Vec::with_capacity(members.len());
        let mut names = Vec::with_capacity(members.len());
        for ((name, mut policy), remap) in members.into_iter().zip(remaps) {
            let rewrite = |set: &mut LimitSet| {
                let ids: Vec<u32> = set.counters.iter().map(|&id| remap[id as usize]).collect();
                set.counters = ids.into();
            };
            rewrite(&mut policy.unlisted);
            for tool in &mut policy.tools {
                rewrite(&mut tool.limits);
            }
            policy.counters = counters.clone();
            policy.classes = classes.clone();
            out.push(policy);
            names.push(name);
        }
        Ok(Self {
            members: out,
            names,
        })
    }

    /// A set of one policy.
    pub fn single(policy: Policy) -> Self {
        Self {
            members: vec![policy],
            names: vec![String::new()],
        }
    }

    /// The members, in the order given; member `i` is evaluated by
    /// [`Evaluator::evaluate_in`](crate::Evaluator::evaluate_in)`(i, ..)`.
    pub fn members(&self) -> &[Policy] {
        &self.members
    }

    /// The name given to member `i`.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i).map(String::as_str)
    }

    /// How many policies the set holds.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the set is empty (every call is then denied `(no policy)`).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

fn describe(scope: &str, (window, sliding): (Window, bool)) -> String {
    let sliding = if sliding { "sliding " } else { "" };
    format!("{sliding}{} window, {scope} scope", window.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Call, Evaluator, Outcome};

    fn policy(tool: &str, counter: &str, scope: &str, max: u64) -> Policy {
        Policy::from_json_str(&format!(
            r#"{{"version":"1","default":"deny","tools":{{"{tool}":{{"limits":[
                {{"counter":"{counter}","window":"minute","max":{max},"scope":"{scope}"}}]}}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn a_counter_name_is_one_counter_across_members() {
        let set = PolicySet::new(vec![
            ("a.json".into(), policy("a", "g", "global", 2)),
            ("b.json".into(), policy("b", "g", "global", 3)),
        ])
        .unwrap();
        let mut ev = Evaluator::for_set(&set);
        let call = |ts, tool, who| Call {
            identity: Some(who),
            ..Call::new(ts, tool)
        };
        let outcomes: Vec<Outcome> = [
            (0, "a", "alice"),
            (1, "b", "bob"),
            (2, "a", "alice"), // the global bucket holds 2: a's max 2 is reached
            (3, "b", "bob"),   // b's max is 3
            (4, "b", "bob"),
        ]
        .iter()
        .map(|&(ts, tool, who)| {
            let member = usize::from(tool == "b");
            ev.evaluate_in(member, &call(ts, tool, who)).outcome
        })
        .collect();
        use Outcome::*;
        assert_eq!(outcomes, [Allow, Allow, RateLimited, Allow, RateLimited]);
        // A member that does not exist: (no policy).
        let v = ev.evaluate_in(7, &call(5, "a", "carol"));
        assert_eq!((v.outcome, v.rule), (Deny, "(no policy)"));
        // The members' own policies are unchanged otherwise.
        assert_eq!(set.members()[1].tool_names().collect::<Vec<_>>(), ["b"]);
        assert_eq!(set.name(1), Some("b.json"));
    }

    #[test]
    fn grant_counters_stay_per_identity_and_conflicts_are_named() {
        let set = PolicySet::new(vec![
            ("a.json".into(), policy("a", "g", "grant", 1)),
            ("b.json".into(), policy("b", "g", "grant", 1)),
        ])
        .unwrap();
        let mut ev = Evaluator::for_set(&set);
        let a = Call {
            identity: Some("alice"),
            ..Call::new(0, "a")
        };
        let b = Call {
            identity: Some("bob"),
            ..Call::new(0, "b")
        };
        assert_eq!(ev.evaluate_in(0, &a).outcome, Outcome::Allow);
        assert_eq!(ev.evaluate_in(1, &b).outcome, Outcome::Allow);
        assert_eq!(ev.evaluate_in(0, &a).outcome, Outcome::RateLimited);
        let e = PolicySet::new(vec![
            ("a.json".into(), policy("a", "g", "grant", 1)),
            ("b.json".into(), policy("b", "g", "server", 1)),
        ])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "counter \"g\" is a minute window, grant scope in a.json but a minute window, server scope in b.json: policies that share a counter must declare it alike"
        );
    }
}
