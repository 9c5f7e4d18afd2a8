//! The loaded, validated policy: the public [`Policy`] handle and the precompiled model the evaluator walks
//! (rule pointers, messages, compiled regexes, per-tool limit lists, counter ids). Parsing lives in `validate`.

use std::fmt;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::Arc;

use crate::cond::{ArgPath, Condition};
use crate::counters::short_eq;
use crate::error::{Error, Result};

/// The fast, randomly seeded hasher used for name lookups.
pub(crate) type FastState = foldhash::fast::RandomState;

/// What a policy does with a tool that is not listed under `tools`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefaultAction {
    /// Unlisted tools go on to the limit step with only `all_tools.limits`.
    Allow,
    /// Unlisted tools are denied with rule `(default deny)`.
    Deny,
}

/// A validated policy v1 document, precompiled for evaluation.
///
/// Load one with [`Policy::from_json_str`] or [`Policy::from_path`], then evaluate calls with an
/// [`Evaluator`](crate::Evaluator). A `Policy` is immutable and `Send + Sync`; share it with `Arc` if needed.
#[derive(Clone)]
pub struct Policy {
    pub(crate) source: String,
    pub(crate) default: DefaultAction,
    /// `hide` holds `"*"`.
    pub(crate) hide_all: bool,
    /// Every listed or hidden tool name.
    pub(crate) names: NameMap,
    /// Listed tools, in document order.
    pub(crate) tools: Vec<Tool>,
    /// The limits of an unlisted tool under `default: allow`: `all_tools.limits` only.
    pub(crate) unlisted: LimitSet,
    /// Counter definitions, indexed by counter id.
    pub(crate) counters: Vec<CounterDef>,
    /// Counter classes `(window, sliding)`, indexed by class id.
    pub(crate) classes: Vec<(Window, bool)>,
    pub(crate) texts: Texts,
}

impl Policy {
    /// Parses and validates a policy v1 document.
    ///
    /// # Errors
    /// [`Error::Syntax`] with line and column when the text is not JSON; [`Error::Invalid`] with every
    /// validation problem (each with its JSON Pointer) when it is not a valid policy.
    pub fn from_json_str(source: &str) -> Result<Self> {
        crate::validate::compile(source)
    }

    /// Reads, parses and validates a policy file. This is the crate's only I/O.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::File`] wrapping the error of
    /// [`Policy::from_json_str`] when its content does not load.
    pub fn from_path(path: &Path) -> Result<Self> {
        let source = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        // A UTF-8 byte order mark (some editors write one) is not part of the JSON.
        let source = source.strip_prefix('\u{feff}').unwrap_or(&source);
        Self::from_json_str(source).map_err(|e| Error::File {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// The JSON text the policy was loaded from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The `default` of the policy.
    pub fn default_action(&self) -> DefaultAction {
        self.default
    }

    /// The names listed under `tools`, in document order.
    pub fn tool_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.tools.iter().map(|t| &*t.name)
    }

    /// Whether `tool` is hidden (listed in `hide`, or `hide` holds `"*"`).
    pub fn is_hidden(&self, tool: &str) -> bool {
        self.hide_all || self.names.get(tool).is_some_and(|s| s.hidden)
    }

    /// The distinct counter names, in order of first declaration.
    pub fn counter_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.counters.iter().map(|c| &*c.name)
    }

    /// Whether `other` is this policy with only its limits changed: the two documents are equal once
    /// `all_tools.limits` and every `tools.<name>.limits` are set aside. Such policies screen every
    /// call alike (see [`crate::Evaluator::screen`]) as long as they list their tools in the same
    /// order, which is checked too; documents that do not parse are not alike.
    pub fn alike_but_limits(&self, other: &Policy) -> bool {
        fn without_limits(source: &str) -> Option<serde_json::Value> {
            let mut doc: serde_json::Value = serde_json::from_str(source).ok()?;
            if let Some(all) = doc.get_mut("all_tools").and_then(|v| v.as_object_mut()) {
                all.remove("limits");
            }
            if let Some(tools) = doc.get_mut("tools").and_then(|v| v.as_object_mut()) {
                for tool in tools.values_mut() {
                    if let Some(t) = tool.as_object_mut() {
                        t.remove("limits");
                    }
                }
            }
            Some(doc)
        }
        match (without_limits(&self.source), without_limits(&other.source)) {
            (Some(a), Some(b)) => a == b && self.tool_names().eq(other.tool_names()),
            _ => false,
        }
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("default", &self.default)
            .field("hide_all", &self.hide_all)
            .field("tools", &self.tools)
            .field("unlisted", &self.unlisted)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// Tool name -> [`ToolSlot`], looked up by `&str` without allocation or a `memcmp` call.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameMap {
    table: hashbrown::HashTable<(u64, Box<str>, ToolSlot)>,
    state: FastState,
}

impl NameMap {
    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<&ToolSlot> {
        let hash = self.state.hash_one(name);
        self.table
            .find(hash, |(h, n, _)| *h == hash && short_eq(n, name))
            .map(|(_, _, slot)| slot)
    }

    /// The slot of `name`, inserting `default` first if absent.
    pub(crate) fn get_or_insert(&mut self, name: &str, default: ToolSlot) -> &mut ToolSlot {
        let hash = self.state.hash_one(name);
        let entry = self
            .table
            .entry(hash, |(h, n, _)| *h == hash && **n == *name, |(h, _, _)| *h);
        &mut entry
            .or_insert((hash, Box::from(name), default))
            .into_mut()
            .2
    }
}

/// What the name map knows about one tool name.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ToolSlot {
    pub(crate) hidden: bool,
    /// Index into `Policy::tools` when the tool is listed.
    pub(crate) tool: Option<u32>,
}

/// A listed tool, precompiled.
#[derive(Debug, Clone)]
pub(crate) struct Tool {
    pub(crate) name: Arc<str>,
    pub(crate) require: Box<[Require]>,
    pub(crate) deny_if: Box<[DenyRule]>,
    /// The tool's limits, then `all_tools.limits`.
    pub(crate) limits: LimitSet,
    pub(crate) approval: bool,
    /// `/tools/<tool>/approval`.
    pub(crate) approval_rule: Arc<str>,
    /// Whether any step reads the arguments (a `require` path or a condition).
    pub(crate) reads_args: bool,
    /// The distinct top-level argument keys that `require` and the conditions read; each `ArgPath::top`
    /// indexes this list.
    pub(crate) arg_tops: Box<[Box<str>]>,
}

/// One `require` path.
#[derive(Debug, Clone)]
pub(crate) struct Require {
    pub(crate) path: ArgPath,
    /// `/tools/<tool>/require/<path>`.
    pub(crate) rule: Arc<str>,
    pub(crate) missing_message: Arc<str>,
    pub(crate) unknown_message: Arc<str>,
}

/// One `deny_if` rule.
#[derive(Debug, Clone)]
pub(crate) struct DenyRule {
    pub(crate) conditions: Box<[Condition]>,
    /// `/tools/<tool>/deny_if/<id>`.
    pub(crate) rule: Arc<str>,
    /// `on_deny`.
    pub(crate) message: Arc<str>,
}

/// The ordered limits that apply to one tool and the distinct counters they use.
#[derive(Debug, Clone, Default)]
pub(crate) struct LimitSet {
    /// In evaluation order: the tool's limits, then `all_tools.limits`.
    pub(crate) limits: Box<[LimitRef]>,
    /// Distinct counter ids, in order of first use; each is charged at most once per call.
    pub(crate) counters: Box<[u32]>,
    /// Bit `1 << scope as u8` for every scope the counters use.
    pub(crate) scopes: u8,
}

/// One limit as it applies to a tool.
#[derive(Debug, Clone)]
pub(crate) struct LimitRef {
    /// Index into the owning `LimitSet::counters`.
    pub(crate) slot: u32,
    pub(crate) max: u64,
    /// `/tools/<tool>/limits/<counter>` or `/all_tools/limits/<counter>`.
    pub(crate) rule: Arc<str>,
    pub(crate) message: Arc<str>,
}

/// A counter: every limit that shares its name shares its buckets.
#[derive(Debug, Clone)]
pub(crate) struct CounterDef {
    pub(crate) name: Arc<str>,
    pub(crate) scope: Scope,
    /// Index into `Policy::classes` (which gives the window and whether it slides).
    pub(crate) class: u32,
    /// For sliding counters: how many charge timestamps a bucket must keep to answer every limit of this
    /// counter exactly (the largest `max` plus one).
    pub(crate) keep: u64,
}

/// A limit window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Window {
    Second,
    Minute,
    Hour,
    Day,
}

impl Window {
    pub(crate) fn micros(self) -> i64 {
        match self {
            Window::Second => 1_000_000,
            Window::Minute => 60_000_000,
            Window::Hour => 3_600_000_000,
            Window::Day => 86_400_000_000,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Window::Second => "second",
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }
}

/// A limit scope; `identity` is parsed as `Grant` (the spec makes them the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    Grant,
    Session,
    Server,
    Global,
}

impl Scope {
    pub(crate) const ALL: [Scope; 4] = [Scope::Grant, Scope::Session, Scope::Server, Scope::Global];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Scope::Grant => "grant",
            Scope::Session => "session",
            Scope::Server => "server",
            Scope::Global => "global",
        }
    }
}

/// Fixed rule pointers and messages, allocated once per policy.
#[derive(Debug, Clone)]
pub(crate) struct Texts {
    pub(crate) empty: Arc<str>,
    pub(crate) hidden_rule: Arc<str>,
    pub(crate) hidden_message: Arc<str>,
    pub(crate) default_rule: Arc<str>,
    pub(crate) default_message: Arc<str>,
    pub(crate) approval_message: Arc<str>,
}

impl Default for Texts {
    fn default() -> Self {
        Self {
            empty: Arc::from(""),
            hidden_rule: Arc::from("(hidden)"),
            hidden_message: Arc::from("tool is hidden by the policy"),
            default_rule: Arc::from("(default deny)"),
            default_message: Arc::from("tool is not listed in the policy and the default is deny"),
            approval_message: Arc::from("tool requires human approval"),
        }
    }
}
