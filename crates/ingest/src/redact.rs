//! Secret redaction: a post-decode step applied to `args`, `raw` and quarantined text of every
//! input format before anything reaches disk (README, "Security"). A redacted value becomes
//! `"[redacted:<16 hex digits>]"`, the prefix of HMAC-SHA256 of the value under the warehouse's
//! redaction key ([`verdict_table::Warehouse::redaction_key`]), so that equal secrets correlate across rows without being
//! recoverable. The JSON paths of the replaced values are listed in the `redacted` column.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use std::cell::RefCell;

use aho_corasick::packed;
use aho_corasick::AhoCorasick;
use hmac::{Hmac, Mac};
use regex::{Regex, RegexSet};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Sha256;

use crate::error::{Error, Result};

/// The marker's prefix; a string value starting with it and ending in `]` is a redacted value.
pub const MARKER_PREFIX: &str = "[redacted:";

/// Key names (whole key, case-insensitive) whose values are secrets.
const BUILTIN_KEYS: &str = r"(?i)^(?:.*[_.-])?(?:password|passwd|pwd|passphrase|secret|client[_-]?secret|token|access[_-]?token|refresh[_-]?token|id[_-]?token|auth[_-]?token|session[_-]?token|bearer[_-]?token|api[_-]?key|apikey|private[_-]?key|secret[_-]?key|access[_-]?key|secret[_-]?access[_-]?key|authorization|proxy[_-]authorization|cookie|set[_-]cookie|credentials?)$";

/// Values that are secrets wherever they appear.
const BUILTIN_VALUES: [&str; 7] = [
    // Bearer and Basic credentials (an Authorization header's value).
    r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9\-._~+/]{8,}=*",
    // JSON Web Tokens.
    r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
    // AWS access key ids.
    r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b",
    // GitHub tokens.
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",
    r"\bgithub_pat_[A-Za-z0-9_]{22,}",
    // Slack tokens.
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
    // PEM private keys (the whole block where it is there).
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?",
];

/// Text without any of these (case-insensitively) cannot match a built-in rule, which lets the
/// common line skip the JSON walk (the ingest bench measures the cost; see the README).
const PREFILTER: [&str; 31] = [
    "pass",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "private_key",
    "privatekey",
    "private-key",
    "access_key",
    "accesskey",
    "access-key",
    "authorization",
    "cookie",
    "credential",
    "bearer",
    "basic",
    "eyj",
    "akia",
    "asia",
    "aroa",
    "aida",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xox",
    "-----begin",
];

/// Whether a text holds any [`PREFILTER`] word, in any case. Every stored text goes through it,
/// so it is the costliest step of redaction: where the CPU has SIMD (SSSE3 or AVX2) the text is
/// lowercased into a per-thread buffer and searched with a packed (Teddy) searcher, about 2.5
/// times as fast as the case-insensitive automaton used elsewhere.
#[derive(Debug, Clone)]
enum Prefilter {
    Packed(packed::Searcher),
    Automaton(AhoCorasick),
}

thread_local! {
    static LOWERED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Prefilter {
    fn new() -> Self {
        match packed::Config::new().builder().extend(PREFILTER).build() {
            Some(s) => Prefilter::Packed(s),
            None => Prefilter::Automaton(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(PREFILTER)
                    .expect("the prefilter builds"),
            ),
        }
    }

    fn is_match(&self, text: &str) -> bool {
        match self {
            Prefilter::Packed(s) => LOWERED.with(|buf| {
                let mut buf = buf.borrow_mut();
                buf.clear();
                buf.extend(text.bytes().map(|b| b.to_ascii_lowercase()));
                let hit = s.find(&buf[..]).is_some();
                if buf.capacity() > 1 << 20 {
                    // One huge line must not keep its buffer for the rest of the run.
                    *buf = Vec::new();
                }
                hit
            }),
            Prefilter::Automaton(ac) => ac.is_match(text.as_bytes()),
        }
    }
}

/// What to redact: the built-in rules (on unless turned off) and the user's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactionRules {
    /// Apply the built-in key and value rules.
    pub builtins: bool,
    /// Regexes matched against whole key names (case-sensitive unless `(?i)`).
    pub keys: Vec<String>,
    /// Regexes matched against string values.
    pub values: Vec<String>,
    /// JSON paths of values to redact, as listed in `redacted` (`args.proxy.url`,
    /// `raw.input.headers.x-token`); `*` stands for one key or index, `**` for any run of them.
    pub paths: Vec<String>,
}

impl Default for RedactionRules {
    fn default() -> Self {
        Self {
            builtins: true,
            keys: Vec::new(),
            values: Vec::new(),
            paths: Vec::new(),
        }
    }
}

/// Applies [`RedactionRules`] under a key. The regexes are compiled on first need: most lines
/// never get past the prefilter, and a collector that restarts is ready sooner.
#[derive(Debug, Clone)]
pub struct Redactor {
    key: Arc<OnceLock<Vec<u8>>>,
    /// Where the key is read or created on the first marker (`None`: the key was given).
    warehouse: Option<verdict_table::Warehouse>,
    rules: RedactionRules,
    compiled: Arc<OnceLock<Compiled>>,
    /// `None`: every text is walked (user rules may match anything).
    prefilter: Option<Prefilter>,
}

#[derive(Debug)]
struct Compiled {
    keys: Vec<Regex>,
    values: RegexSet,
    value_res: Vec<Regex>,
    paths: Option<RegexSet>,
    /// `"key": "value"` pairs in text that is not JSON (a truncated or broken line).
    pair: Regex,
}

fn rule_error(rule: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("redaction rule `{rule}`: {e}"))
}

fn path_regex(p: &str) -> String {
    let p = p.strip_prefix("$.").unwrap_or(p);
    let mut out = String::from("^");
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("**") {
            out.push_str(".*");
            rest = r;
        } else if let Some(r) = rest.strip_prefix('*') {
            out.push_str(r"[^.\[\]]*");
            rest = r;
        } else {
            let c = rest.chars().next().expect("rest is not empty");
            out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
            rest = &rest[c.len_utf8()..];
        }
    }
    out.push('$');
    out
}

fn compile(rules: &RedactionRules) -> Result<Compiled> {
    let mut keys = Vec::new();
    let mut values: Vec<String> = Vec::new();
    if rules.builtins {
        keys.push(Regex::new(BUILTIN_KEYS).expect("the built-in key rule compiles"));
        values.extend(BUILTIN_VALUES.iter().map(|s| s.to_string()));
    }
    for k in &rules.keys {
        keys.push(Regex::new(&format!("^(?:{k})$")).map_err(|e| rule_error(k, e))?);
    }
    values.extend(rules.values.iter().cloned());
    let value_res = values
        .iter()
        .map(|v| Regex::new(v).map_err(|e| rule_error(v, e)))
        .collect::<Result<Vec<_>>>()?;
    let paths = if rules.paths.is_empty() {
        None
    } else {
        let res: Vec<String> = rules.paths.iter().map(|p| path_regex(p)).collect();
        Some(RegexSet::new(&res).map_err(|e| rule_error(&rules.paths.join(", "), e))?)
    };
    Ok(Compiled {
        keys,
        values: RegexSet::new(&values).map_err(|e| rule_error("values", e))?,
        value_res,
        paths,
        // The closing quote is optional: a line cut inside a value still has its secret.
        pair: Regex::new(r#""((?:[^"\\]|\\.){1,128})"\s*:\s*"((?:[^"\\]|\\.)*)"?"#)
            .expect("the pair pattern compiles"),
    })
}

impl Redactor {
    /// Checks the rules (user regexes are compiled here, to name a bad one at once) for use
    /// under `key` (see [`verdict_table::Warehouse::redaction_key`]).
    ///
    /// # Errors
    /// A user regex that does not compile, naming it.
    pub fn new(rules: &RedactionRules, key: &[u8]) -> Result<Self> {
        let user = !rules.keys.is_empty() || !rules.values.is_empty() || !rules.paths.is_empty();
        let compiled = Arc::new(OnceLock::new());
        if user {
            let _ = compiled.set(compile(rules)?);
        }
        let prefilter = (!user).then(Prefilter::new);
        Ok(Self {
            key: Arc::new(OnceLock::from(key.to_vec())),
            warehouse: None,
            rules: rules.clone(),
            compiled,
            prefilter,
        })
    }

    /// Like [`Redactor::new`], with the key of `warehouse` ([`verdict_table::Warehouse::redaction_key`]), read or
    /// created only when the first secret is found: a run without secrets leaves no key behind
    /// and starts sooner. Should the key file be impossible to create then, a key of this
    /// process alone is used (secrets are still never stored; markers then correlate within the
    /// run only).
    ///
    /// # Errors
    /// As [`Redactor::new`].
    pub fn for_warehouse(
        rules: &RedactionRules,
        warehouse: &verdict_table::Warehouse,
    ) -> Result<Self> {
        let mut r = Self::new(rules, b"")?;
        r.key = Arc::new(OnceLock::new());
        r.warehouse = Some(warehouse.clone());
        Ok(r)
    }

    fn key(&self) -> &[u8] {
        self.key.get_or_init(|| {
            let stored = self
                .warehouse
                .as_ref()
                .map(|w| verdict_table::block_on(w.redaction_key()));
            match stored {
                Some(Ok(k)) => k,
                _ => {
                    let mut k = vec![0u8; 32];
                    // Without any randomness the marker still hides the value (HMAC under a
                    // fixed key is a plain hash): never stored, only guessable.
                    let _ = getrandom::fill(&mut k);
                    k
                }
            }
        })
    }

    fn c(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            compile(&self.rules).expect("built-in rules compile; user rules were checked in new")
        })
    }

    /// Whether no rule at all is active.
    pub fn is_empty(&self) -> bool {
        !self.rules.builtins
            && self.rules.keys.is_empty()
            && self.rules.values.is_empty()
            && self.rules.paths.is_empty()
    }

    /// The marker that replaces `secret`.
    pub fn marker(&self, secret: &[u8]) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.key()).expect("HMAC takes a key of any length");
        mac.update(secret);
        let digest = mac.finalize().into_bytes();
        let mut s = String::with_capacity(MARKER_PREFIX.len() + 17);
        s.push_str(MARKER_PREFIX);
        for b in &digest[..8] {
            let _ = write!(s, "{b:02x}");
        }
        s.push(']');
        s
    }

    fn may_match(&self, text: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        self.prefilter.as_ref().is_none_or(|p| p.is_match(text))
    }

    fn key_is_secret(&self, key: &str) -> bool {
        self.c().keys.iter().any(|r| r.is_match(key))
    }

    fn path_is_listed(&self, path: &str) -> bool {
        self.c().paths.as_ref().is_some_and(|p| p.is_match(path))
    }

    /// Redacts a JSON text, naming paths from `root` (`args`, `raw`). Returns the new text when
    /// something was replaced (and pushes the paths), `Ok(None)` when nothing was.
    ///
    /// # Errors
    /// `Err(())` when `text` is not JSON (use [`Redactor::redact_text`] then).
    #[allow(clippy::result_unit_err)]
    pub fn redact_json(
        &self,
        text: &str,
        root: &str,
        paths: &mut Vec<String>,
    ) -> std::result::Result<Option<String>, ()> {
        if !self.may_match(text) {
            return Ok(None);
        }
        let node: &RawValue = serde_json::from_str(text).map_err(|_| ())?;
        let mut edits = Vec::new();
        let mut path = root.to_string();
        self.walk(text, node, &mut path, &mut edits, paths);
        Ok((!edits.is_empty()).then(|| apply(text, edits)))
    }

    /// Redacts text that may hold JSON: structurally when it is JSON, else with the value rules
    /// and `"key": "value"` pairs. Returns the new text when something was replaced.
    pub fn redact_any(&self, text: &str, root: &str, paths: &mut Vec<String>) -> Option<String> {
        match self.redact_json(text, root, paths) {
            Ok(r) => r,
            Err(()) => self.redact_text(text),
        }
    }

    /// Redacts text that is not (whole) JSON: every match of a value rule, and the value of every
    /// `"key": "value"` pair whose key is a secret key. Returns the new text when changed.
    pub fn redact_text(&self, text: &str) -> Option<String> {
        if !self.may_match(text) {
            return None;
        }
        let mut edits: Vec<(Range<usize>, String)> = Vec::new();
        for c in self.c().pair.captures_iter(text) {
            let (Some(k), Some(v)) = (c.get(1), c.get(2)) else {
                continue;
            };
            if !v.as_str().is_empty()
                && !v.as_str().starts_with(MARKER_PREFIX)
                && self.key_is_secret(k.as_str())
            {
                edits.push((v.range(), self.marker(v.as_str().as_bytes())));
            }
        }
        for re in &self.c().value_res {
            for m in re.find_iter(text) {
                if !edits.iter().any(|(r, _)| overlaps(r, &m.range())) {
                    edits.push((m.range(), self.marker(m.as_str().as_bytes())));
                }
            }
        }
        if edits.is_empty() {
            return None;
        }
        Some(apply(text, edits))
    }

    fn walk(
        &self,
        base: &str,
        node: &RawValue,
        path: &mut String,
        edits: &mut Vec<(Range<usize>, String)>,
        paths: &mut Vec<String>,
    ) {
        let text = node.get();
        let span = offset(base, text)..offset(base, text) + text.len();
        if self.path_is_listed(path) && !is_trivial(text) {
            edits.push((span, self.quoted_marker(text)));
            paths.push(path.clone());
            return;
        }
        match text.as_bytes().first() {
            Some(b'{') => {
                let Ok(Entries(entries)) = serde_json::from_str::<Entries<'_>>(text) else {
                    return;
                };
                for (k, v) in entries {
                    let len = path.len();
                    path.push('.');
                    path.push_str(&k);
                    if self.key_is_secret(&k) && !is_trivial(v.get()) {
                        let s = offset(base, v.get());
                        edits.push((s..s + v.get().len(), self.quoted_marker(v.get())));
                        paths.push(path.clone());
                    } else {
                        self.walk(base, v, path, edits, paths);
                    }
                    path.truncate(len);
                }
            }
            Some(b'[') => {
                let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(text) else {
                    return;
                };
                for (i, v) in items.into_iter().enumerate() {
                    let len = path.len();
                    let _ = write!(path, "[{i}]");
                    self.walk(base, v, path, edits, paths);
                    path.truncate(len);
                }
            }
            Some(b'"') => {
                let Ok(s) = serde_json::from_str::<Cow<'_, str>>(text) else {
                    return;
                };
                if s.starts_with(MARKER_PREFIX) {
                    return;
                }
                if self.c().values.is_match(&s) {
                    edits.push((span, quote(&self.marker(s.as_bytes()))));
                    paths.push(path.clone());
                    return;
                }
                // JSON inside a string (a container's `log` envelope, an encoded body).
                let inner = s.trim_start();
                if inner.starts_with('{') || inner.starts_with('[') {
                    let before = paths.len();
                    if let Ok(Some(new)) = self.redact_json(&s, path, paths) {
                        edits.push((span, quote(&new)));
                    } else {
                        paths.truncate(before);
                    }
                }
            }
            _ => {}
        }
    }

    /// The marker of a JSON value, as a JSON string: a string's contents are hashed (so that
    /// a secret correlates however it was escaped), any other value's text.
    fn quoted_marker(&self, json: &str) -> String {
        let secret = match serde_json::from_str::<Cow<'_, str>>(json) {
            Ok(s) => s,
            Err(_) => Cow::Borrowed(json),
        };
        quote(&self.marker(secret.as_bytes()))
    }
}

/// Whether a string value is a redaction marker (replay reads it as unknown).
pub fn is_marker(s: &str) -> bool {
    s.starts_with(MARKER_PREFIX) && s.ends_with(']')
}

fn is_trivial(json: &str) -> bool {
    matches!(json.trim(), "null" | "\"\"" | "true" | "false")
        || json.trim().starts_with(&format!("\"{MARKER_PREFIX}"))
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Where `part` (a slice of `base`) starts in `base`.
fn offset(base: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize)
}

fn apply(text: &str, mut edits: Vec<(Range<usize>, String)>) -> String {
    edits.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (r, m) in edits {
        if r.start < at {
            continue;
        }
        out.push_str(&text[at..r.start]);
        out.push_str(&m);
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

/// An object's members in order, values left as raw text borrowed from the input.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    out.push((k, m.next_value::<&'de RawValue>()?));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests;
