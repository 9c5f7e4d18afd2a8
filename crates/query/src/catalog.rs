//! The tool catalogue: the risk class of each tool, from explicit entries (a user file over the
//! built-in one) and then verb heuristics on the tool name. Classes are derived at query time and
//! never stored; the SQL side (UDFs and the `tools` table) lives in `udf.rs` and `engine.rs`.
//!
//! # Catalogue files
//! JSON (`.json`) or TOML (`.toml`), chosen by extension, with one table `tools` mapping a tool
//! name, optionally qualified by its server as `server/tool`, to `destructive`, `write`, `read` or
//! `unknown` (the last one switches the heuristics off for that tool):
//! ```json
//! {"tools": {"purge_cache": "destructive", "leapfrog/navigate": "read"}}
//! ```
//! ```toml
//! [tools]
//! purge_cache = "destructive"
//! "leapfrog/navigate" = "read"
//! ```
//! Lookup order for a call of `tool` on `server`: user `server/tool`, user `tool`, built-in
//! `server/tool`, built-in `tool`, heuristics. Names match exactly (case-sensitive).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use rustc_hash::FxHashMap;
use serde::Deserialize;

use crate::error::{Error, Result};

/// How much damage a tool call can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Risk {
    /// Deletes or destroys state (`session_destroy`, `delete_session`).
    Destructive,
    /// Creates or changes state (`session_create`, `close_session`, `send_message`).
    Write,
    /// Only reads (`session_list`, `knowledge_search`).
    Read,
    /// Nothing known about the tool.
    Unknown,
}

impl Risk {
    /// All classes, most dangerous first.
    pub const ALL: [Risk; 4] = [Risk::Destructive, Risk::Write, Risk::Read, Risk::Unknown];

    /// The class as shown in tables and returned by `tool_risk()`.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Destructive => "destructive",
            Risk::Write => "write",
            Risk::Read => "read",
            Risk::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Risk {
    type Err = String;

    /// Parses `destructive`, `write`, `read` or `unknown` (ASCII case-insensitive).
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Risk::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown risk class `{s}` (expected destructive, write, read or unknown)")
            })
    }
}

/// Where a tool's risk class came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RiskSource {
    /// The built-in catalogue of the seeds' servers.
    Builtin,
    /// A user catalogue file (or [`Catalog::insert`]).
    Catalog,
    /// Verb heuristics on the tool name.
    Heuristic,
}

impl RiskSource {
    /// `builtin`, `catalog` or `heuristic`.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskSource::Builtin => "builtin",
            RiskSource::Catalog => "catalog",
            RiskSource::Heuristic => "heuristic",
        }
    }
}

impl fmt::Display for RiskSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tool's class and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Classification {
    /// The risk class.
    pub risk: Risk,
    /// Its origin.
    pub source: RiskSource,
}

/// One explicit catalogue entry, as listed by [`Catalog::entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The tool name.
    pub tool: String,
    /// The server qualifier, when the entry was written `server/tool`.
    pub server: Option<String>,
    /// The class.
    pub risk: Risk,
    /// [`RiskSource::Builtin`] or [`RiskSource::Catalog`].
    pub source: RiskSource,
}

type Key = (Option<String>, String);

/// Explicit tool classes plus the heuristics that cover every other tool.
///
/// [`Catalog::builtin`] knows the seeds' servers (leapfrog, mcacp, weknora, payments);
/// [`Catalog::with_file`] layers a user file on top; [`Catalog::classify`] answers for any tool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    builtin: BTreeMap<Key, Risk>,
    user: BTreeMap<Key, Risk>,
}

/// The built-in entries: the seeds' own classes (README "Data layout" is the reference).
const BUILTIN: &[(&str, Risk)] = &[
    // leapfrog (browser sessions)
    ("session_create", Risk::Write),
    ("session_create_batch", Risk::Write),
    ("session_destroy", Risk::Destructive),
    ("session_list", Risk::Read),
    ("navigate", Risk::Write),
    ("click", Risk::Write),
    ("type_text", Risk::Write),
    ("evaluate_js", Risk::Write),
    ("download_file", Risk::Write),
    ("screenshot", Risk::Read),
    // mcacp (agent sessions)
    ("open_session", Risk::Write),
    ("close_session", Risk::Write),
    ("send_message", Risk::Write),
    ("list_sessions", Risk::Read),
    ("get_transcript", Risk::Read),
    ("purge_sessions", Risk::Destructive),
    // weknora (knowledge bases)
    ("knowledge_search", Risk::Read),
    ("create_session", Risk::Write),
    ("delete_session", Risk::Destructive),
    ("get_document", Risk::Read),
    ("list_knowledge_bases", Risk::Read),
    ("upload_document", Risk::Write),
    ("delete_knowledge_base", Risk::Destructive),
    ("export_knowledge_base", Risk::Read),
    // payments
    ("create_charge", Risk::Write),
    ("create_refund", Risk::Write),
    ("list_charges", Risk::Read),
    ("get_balance", Risk::Read),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    tools: BTreeMap<String, String>,
}

impl Catalog {
    /// A catalogue with no explicit entries: every tool is classified by the heuristics.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in catalogue of the seeds' servers.
    pub fn builtin() -> Self {
        let builtin = BUILTIN
            .iter()
            .map(|&(tool, risk)| ((None, tool.to_string()), risk))
            .collect();
        Self {
            builtin,
            user: BTreeMap::new(),
        }
    }

    /// The built-in catalogue plus, when given, the user file at `path`.
    ///
    /// # Errors
    /// See [`Catalog::with_file`].
    pub fn load(user_file: Option<&Path>) -> Result<Self> {
        match user_file {
            Some(path) => Self::builtin().with_file(path),
            None => Ok(Self::builtin()),
        }
    }

    /// Adds the entries of a user catalogue file (JSON or TOML by extension; see the module
    /// docs for the shape). User entries win over built-in ones.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::Catalog`] naming the file (and the
    /// entry) when the extension, the syntax, a key or a class is not valid.
    pub fn with_file(self, path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io("reading", path))?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let format = match ext.as_deref() {
            Some("json") => FileFormat::Json,
            Some("toml") => FileFormat::Toml,
            _ => {
                return Err(Error::Catalog {
                    path: path.to_path_buf(),
                    entry: None,
                    message: "unsupported file type (use a `.json` or `.toml` file)".into(),
                })
            }
        };
        self.with_text(&text, format, path)
    }

    fn with_text(mut self, text: &str, format: FileFormat, path: &Path) -> Result<Self> {
        let err = |entry: Option<&str>, message: String| Error::Catalog {
            path: path.to_path_buf(),
            entry: entry.map(str::to_string),
            message,
        };
        let file: CatalogFile = match format {
            FileFormat::Json => {
                serde_json::from_str(text).map_err(|e| err(None, format!("invalid JSON: {e}")))?
            }
            FileFormat::Toml => {
                toml::from_str(text).map_err(|e| err(None, format!("invalid TOML: {e}")))?
            }
        };
        for (key, class) in &file.tools {
            let risk: Risk = class.parse().map_err(|m| err(Some(key), m))?;
            let (server, tool) = split_key(key).map_err(|m| err(Some(key), m))?;
            self.user.insert((server, tool), risk);
        }
        Ok(self)
    }

    /// Adds one user entry (source `catalog`), optionally qualified by server.
    pub fn insert(&mut self, server: Option<&str>, tool: &str, risk: Risk) {
        self.user
            .insert((server.map(str::to_string), tool.to_string()), risk);
    }

    /// Classifies a call of `tool` on `server` (see the module docs for the lookup order).
    pub fn classify(&self, server: Option<&str>, tool: &str) -> Classification {
        for (map, source) in [
            (&self.user, RiskSource::Catalog),
            (&self.builtin, RiskSource::Builtin),
        ] {
            if let Some(server) = server {
                // Avoids allocating a key for the common unqualified case.
                if let Some(&risk) = map.iter().find_map(|((s, t), r)| {
                    (s.as_deref() == Some(server) && t == tool).then_some(r)
                }) {
                    return Classification { risk, source };
                }
            }
            if let Some(&risk) = map.get(&(None, tool.to_string())) {
                return Classification { risk, source };
            }
        }
        Classification {
            risk: heuristic_risk(tool),
            source: RiskSource::Heuristic,
        }
    }

    /// The explicit entries in effect: user entries, then the built-in ones they do not
    /// override, each sorted by tool then server.
    pub fn entries(&self) -> Vec<CatalogEntry> {
        let mut out: Vec<CatalogEntry> = self
            .user
            .iter()
            .map(|((server, tool), &risk)| CatalogEntry {
                tool: tool.clone(),
                server: server.clone(),
                risk,
                source: RiskSource::Catalog,
            })
            .collect();
        out.extend(
            self.builtin
                .iter()
                .filter(|(k, _)| !self.user.contains_key(*k))
                .map(|((server, tool), &risk)| CatalogEntry {
                    tool: tool.clone(),
                    server: server.clone(),
                    risk,
                    source: RiskSource::Builtin,
                }),
        );
        out.sort_by(|a, b| (&a.tool, &a.server).cmp(&(&b.tool, &b.server)));
        out
    }
}

/// The catalogue as shipped to a cluster's scheduler and executors with the functions that use
/// it (`tool_risk()` classifies a row where it runs): both layers of entries, so that a node
/// classifies every tool exactly as the client would.
#[derive(serde::Serialize, Deserialize)]
struct WireCatalog {
    builtin: Vec<(Option<String>, String, String)>,
    user: Vec<(Option<String>, String, String)>,
}

impl Catalog {
    /// The catalogue as bytes, for [`Catalog::from_wire`] on another node.
    pub(crate) fn to_wire(&self) -> Vec<u8> {
        let layer = |m: &BTreeMap<Key, Risk>| {
            m.iter()
                .map(|((s, t), r)| (s.clone(), t.clone(), r.as_str().to_string()))
                .collect()
        };
        let wire = WireCatalog {
            builtin: layer(&self.builtin),
            user: layer(&self.user),
        };
        serde_json::to_vec(&wire).expect("a catalogue of strings always serialises")
    }

    /// The catalogue [`Catalog::to_wire`] wrote.
    ///
    /// # Errors
    /// A message when the bytes are not such a catalogue.
    pub(crate) fn from_wire(bytes: &[u8]) -> std::result::Result<Self, String> {
        let wire: WireCatalog = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let layer = |v: Vec<(Option<String>, String, String)>| {
            v.into_iter()
                .map(|(s, t, r)| Ok(((s, t), r.parse::<Risk>()?)))
                .collect::<std::result::Result<BTreeMap<Key, Risk>, String>>()
        };
        Ok(Self {
            builtin: layer(wire.builtin)?,
            user: layer(wire.user)?,
        })
    }
}

#[derive(Clone, Copy)]
enum FileFormat {
    Json,
    Toml,
}

fn split_key(key: &str) -> std::result::Result<(Option<String>, String), String> {
    let (server, tool) = match key.split_once('/') {
        Some((s, t)) => (Some(s), t),
        None => (None, key),
    };
    if tool.trim().is_empty() || server.is_some_and(|s| s.trim().is_empty()) {
        return Err("expected `tool` or `server/tool`".into());
    }
    Ok((server.map(str::to_string), tool.to_string()))
}

/// Verbs that delete or destroy state.
#[rustfmt::skip]
const DESTRUCTIVE_VERBS: &[&str] = &[
    "delete", "del", "destroy", "drop", "purge", "remove", "rm", "rmdir", "revoke", "terminate",
    "wipe", "truncate", "erase", "kill", "reset", "clear", "unlink", "uninstall", "shred", "prune",
    "teardown", "deprovision", "expunge", "obliterate", "nuke",
];

/// Verbs that create or change state and are rarely nouns.
#[rustfmt::skip]
const WRITE_VERBS: &[&str] = &[
    "create", "add", "insert", "update", "upsert", "write", "send", "upload", "execute", "exec",
    "eval", "evaluate", "invoke", "rename", "modify", "edit", "save", "submit", "approve", "reject",
    "assign", "enable", "disable", "cancel", "deploy", "publish", "push", "merge", "install",
    "register", "login", "logout", "navigate", "click", "fill", "press", "scroll", "pay", "refund",
    "grant", "invite", "attach", "detach", "connect", "disconnect", "replace", "resize",
    "subscribe", "unsubscribe", "append", "restart", "reboot", "upgrade", "downgrade", "mv", "cp",
];

/// Verbs that change state but are often nouns too (`get_post`, `list_open_sessions`): they
/// count when they start the name or when the name has no read verb.
#[rustfmt::skip]
const WEAK_WRITE_VERBS: &[&str] = &[
    "set", "put", "patch", "post", "close", "open", "move", "copy", "run", "call", "start", "stop",
    "commit", "apply", "change", "store", "archive", "restore", "import", "type", "charge",
    "schedule", "sync", "reply", "comment", "share", "lock", "unlock", "scale", "mark", "tag",
    "label", "book", "order", "trigger", "transfer", "generate",
];

/// Verbs that only read.
#[rustfmt::skip]
const READ_VERBS: &[&str] = &[
    "get", "list", "ls", "read", "cat", "search", "describe", "fetch", "query", "show", "find",
    "count", "view", "lookup", "inspect", "check", "status", "browse", "explore", "download",
    "export", "screenshot", "snapshot", "watch", "monitor", "stat", "info", "preview", "peek",
    "scan", "summarize", "summarise", "analyze", "analyse", "validate", "verify", "compare", "diff",
    "explain", "retrieve", "ping", "echo", "health", "version", "whoami", "help", "head", "tail",
    "grep", "poll",
];

/// Classifies a tool by the verbs in its name alone (no catalogue). The name is split on
/// `_ - . /`, spaces and camelCase boundaries and lower-cased; then
/// 1. any destructive verb (`delete`, `destroy`, `drop`, `purge`, `remove`, `revoke` ...) gives
///    `destructive`;
/// 2. else any write verb (`create`, `update`, `send`, `upload`, `execute` ...) gives `write`, and
///    so does a verb that is often a noun (`post`, `run`, `open`, `close`, `set` ...) when it starts
///    the name or the name has no read verb (`close_session` is write, `get_post` is read);
/// 3. else any read verb (`get`, `list`, `search`, `describe`, `fetch` ...) gives `read`;
/// 4. else `unknown`.
///
/// ```
/// use verdict_query::{heuristic_risk, Risk};
/// assert_eq!(heuristic_risk("session_destroy"), Risk::Destructive);
/// assert_eq!(heuristic_risk("createSession"), Risk::Write);
/// assert_eq!(heuristic_risk("kb.search"), Risk::Read);
/// assert_eq!(heuristic_risk("weather"), Risk::Unknown);
/// ```
pub fn heuristic_risk(tool: &str) -> Risk {
    let tokens = tokenize(tool);
    let has = |verbs: &[&str]| tokens.iter().any(|t| verbs.contains(&t.as_str()));
    if has(DESTRUCTIVE_VERBS) {
        return Risk::Destructive;
    }
    let read = has(READ_VERBS);
    let weak_write = tokens
        .iter()
        .enumerate()
        .any(|(i, t)| WEAK_WRITE_VERBS.contains(&t.as_str()) && (i == 0 || !read));
    if has(WRITE_VERBS) || weak_write {
        Risk::Write
    } else if read {
        Risk::Read
    } else {
        Risk::Unknown
    }
}

/// Splits a tool name into lower-case words: on `_ - . /`, whitespace and other punctuation,
/// and at camelCase boundaries (`getHTTPStatus` -> `get`, `http`, `status`).
pub(crate) fn tokenize(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if c.is_uppercase() && !cur.is_empty() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            // aB -> a|B ; ABc -> A|Bc ; 1B -> 1|B
            if prev.is_lowercase() || prev.is_numeric() || (prev.is_uppercase() && next_lower) {
                out.push(std::mem::take(&mut cur));
            }
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A per-call memo of classifications, used by the UDFs over one batch.
pub(crate) struct ClassifyCache<'a> {
    catalog: &'a Catalog,
    /// Tool -> the servers it was seen with and their classification: a lookup borrows the row's
    /// strings (no allocation per row); a tool has few servers, so they are scanned.
    memo: FxHashMap<Box<str>, Vec<(Option<Box<str>>, Classification)>>,
}

impl<'a> ClassifyCache<'a> {
    pub(crate) fn new(catalog: &'a Catalog) -> Self {
        Self {
            catalog,
            memo: FxHashMap::default(),
        }
    }

    pub(crate) fn classify(&mut self, server: Option<&str>, tool: &str) -> Classification {
        if let Some(seen) = self.memo.get(tool) {
            if let Some((_, c)) = seen.iter().find(|(s, _)| s.as_deref() == server) {
                return *c;
            }
        }
        let c = self.catalog.classify(server, tool);
        self.memo
            .entry(Box::from(tool))
            .or_default()
            .push((server.map(Box::from), c));
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_separators_and_camel_case() {
        assert_eq!(
            tokenize("session_create_batch"),
            ["session", "create", "batch"]
        );
        assert_eq!(tokenize("kb-search.v2/run"), ["kb", "search", "v2", "run"]);
        assert_eq!(tokenize("deleteSession"), ["delete", "session"]);
        assert_eq!(tokenize("getHTTPStatus"), ["get", "http", "status"]);
        assert_eq!(tokenize("S3Upload"), ["s3", "upload"]);
        assert_eq!(tokenize("__x__"), ["x"]);
        assert!(tokenize("").is_empty());
    }

    #[test]
    fn heuristics_classify_the_seed_tools() {
        for (tool, risk) in [
            ("session_destroy", Risk::Destructive),
            ("delete_session", Risk::Destructive),
            ("session_create", Risk::Write),
            ("session_create_batch", Risk::Write),
            ("close_session", Risk::Write),
            ("session_list", Risk::Read),
            ("knowledge_search", Risk::Read),
            ("purge_sessions", Risk::Destructive),
            ("send_message", Risk::Write),
        ] {
            assert_eq!(heuristic_risk(tool), risk, "{tool}");
        }
    }

    #[test]
    fn heuristics_precedence_destructive_over_write_over_read() {
        assert_eq!(heuristic_risk("list_and_delete"), Risk::Destructive);
        assert_eq!(heuristic_risk("getOrCreateUser"), Risk::Write);
        assert_eq!(heuristic_risk("create-then-drop"), Risk::Destructive);
        assert_eq!(heuristic_risk("get_user"), Risk::Read);
        assert_eq!(heuristic_risk("RevokeToken"), Risk::Destructive);
        assert_eq!(heuristic_risk("weather_forecast"), Risk::Unknown);
        // Whole words only: `deleted` is not a verb here.
        assert_eq!(heuristic_risk("deleted_items"), Risk::Unknown);
        // Verbs that are often nouns count when they lead or nothing reads.
        assert_eq!(heuristic_risk("get_post"), Risk::Read);
        assert_eq!(heuristic_risk("list_open_sessions"), Risk::Read);
        assert_eq!(heuristic_risk("post_comment"), Risk::Write);
        assert_eq!(heuristic_risk("run_query"), Risk::Write);
        assert_eq!(heuristic_risk("session_close"), Risk::Write);
    }

    #[test]
    fn builtin_entries_match_the_spec() {
        let c = Catalog::builtin();
        for (tool, risk) in [
            ("session_destroy", Risk::Destructive),
            ("delete_session", Risk::Destructive),
            ("session_create", Risk::Write),
            ("session_create_batch", Risk::Write),
            ("close_session", Risk::Write),
            ("session_list", Risk::Read),
            ("screenshot", Risk::Read),
            ("create_refund", Risk::Write),
        ] {
            let got = c.classify(Some("any"), tool);
            assert_eq!(got.risk, risk, "{tool}");
            assert_eq!(got.source, RiskSource::Builtin, "{tool}");
        }
        assert_eq!(
            c.classify(None, "purge_cache"),
            Classification {
                risk: Risk::Destructive,
                source: RiskSource::Heuristic
            }
        );
    }

    #[test]
    fn user_entries_win_and_server_qualified_entries_win_over_plain_ones() {
        let mut c = Catalog::builtin();
        c.insert(Some("leapfrog"), "navigate", Risk::Read);
        c.insert(None, "screenshot", Risk::Write);
        c.insert(None, "weather", Risk::Read);
        // An explicit `unknown` switches the heuristics off.
        c.insert(None, "drop_pin", Risk::Unknown);
        let cls = |server: Option<&str>, tool: &str| {
            let x = c.classify(server, tool);
            (x.risk, x.source)
        };
        assert_eq!(
            cls(Some("leapfrog"), "navigate"),
            (Risk::Read, RiskSource::Catalog)
        );
        assert_eq!(
            cls(Some("other"), "navigate"),
            (Risk::Write, RiskSource::Builtin)
        );
        assert_eq!(cls(None, "navigate"), (Risk::Write, RiskSource::Builtin));
        assert_eq!(cls(None, "screenshot"), (Risk::Write, RiskSource::Catalog));
        assert_eq!(cls(None, "weather"), (Risk::Read, RiskSource::Catalog));
        assert_eq!(cls(None, "drop_pin"), (Risk::Unknown, RiskSource::Catalog));
    }

    #[test]
    fn loads_json_and_toml_files() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("tools.json");
        std::fs::write(
            &json,
            r#"{"tools": {"purge_cache": "destructive", "leapfrog/navigate": "read"}}"#,
        )
        .unwrap();
        let toml = dir.path().join("tools.TOML");
        std::fs::write(
            &toml,
            "[tools]\nfetch_page = \"write\"\n\"weknora/get_document\" = \"Destructive\"\n",
        )
        .unwrap();
        let c = Catalog::builtin()
            .with_file(&json)
            .unwrap()
            .with_file(&toml)
            .unwrap();
        assert_eq!(c.classify(None, "purge_cache").source, RiskSource::Catalog);
        assert_eq!(c.classify(Some("leapfrog"), "navigate").risk, Risk::Read);
        assert_eq!(c.classify(None, "fetch_page").risk, Risk::Write);
        assert_eq!(
            c.classify(Some("weknora"), "get_document").risk,
            Risk::Destructive
        );
        assert_eq!(c.classify(None, "get_document").risk, Risk::Read);
        let entries = c.entries();
        assert_eq!(entries.len(), BUILTIN.len() + 4);
        assert_eq!(
            entries[0],
            CatalogEntry {
                tool: "click".into(),
                server: None,
                risk: Risk::Write,
                source: RiskSource::Builtin
            }
        );
        assert!(entries.contains(&CatalogEntry {
            tool: "navigate".into(),
            server: Some("leapfrog".into()),
            risk: Risk::Read,
            source: RiskSource::Catalog
        }));
    }

    #[test]
    fn file_errors_name_the_file_and_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let bad_class = write("a.json", r#"{"tools": {"purge_cache": "dangerous"}}"#);
        let e = Catalog::builtin().with_file(&bad_class).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "tool catalogue `{}`: entry `purge_cache`: unknown risk class `dangerous` \
                 (expected destructive, write, read or unknown)",
                bad_class.display()
            )
        );
        let bad_key = write("b.toml", "[tools]\n\"leapfrog/\" = \"read\"\n");
        let e = Catalog::builtin().with_file(&bad_key).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("entry `leapfrog/`: expected `tool` or `server/tool`"),
            "{e}"
        );
        let bad_json = write("c.json", r#"{"tool": {}}"#);
        let e = Catalog::builtin().with_file(&bad_json).unwrap_err();
        assert!(
            e.to_string()
                .contains("c.json`: invalid JSON: unknown field `tool`"),
            "{e}"
        );
        let bad_toml = write("d.toml", "[tools\n");
        let e = Catalog::builtin().with_file(&bad_toml).unwrap_err();
        assert!(e.to_string().contains("d.toml`: invalid TOML"), "{e}");
        let bad_ext = write("e.yaml", "tools: {}");
        let e = Catalog::builtin().with_file(&bad_ext).unwrap_err();
        assert!(e.to_string().contains("unsupported file type"), "{e}");
        let missing = dir.path().join("missing.json");
        let e = Catalog::builtin().with_file(&missing).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert!(e.to_string().contains("missing.json"), "{e}");
    }
}
