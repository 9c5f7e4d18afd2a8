//! A borrowed JSON tree ([`Node`]) and field paths ([`Path`]) for the adapters and user mappings.
//! Strings borrow from the input line where they hold no escape; objects keep their key order.
//! Paths try a literal dotted key (`"mcp.method"`) before splitting on dots.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::{LineError, LineErrorKind};

/// One JSON value, borrowing its strings from the text it was parsed from.
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// Any other number.
    Float(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// An array.
    Arr(Vec<Node<'a>>),
    /// An object, keys in input order.
    Obj(Vec<(Cow<'a, str>, Node<'a>)>),
}

/// Parses one JSON text into a [`Node`].
///
/// # Errors
/// [`LineErrorKind::InvalidJson`] with serde_json's message (line and column).
pub fn parse(text: &str) -> Result<Node<'_>, LineError> {
    serde_json::from_str(text)
        .map_err(|e| LineError::record(LineErrorKind::InvalidJson, e.to_string()))
}

/// Parses one record that must be a JSON object: the first step of every adapter.
///
/// # Errors
/// [`LineErrorKind::InvalidJson`], or [`LineErrorKind::WrongType`] for any other JSON value.
pub fn object(text: &str) -> Result<Node<'_>, LineError> {
    let node = parse(text)?;
    if node.as_object().is_none() {
        return Err(LineError::record(
            LineErrorKind::WrongType,
            format!("expected a JSON object, got {}", node.type_name()),
        ));
    }
    Ok(node)
}

impl<'a> Node<'a> {
    /// The value under `key` of an object (the first such key).
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        match self {
            Node::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Node::Null)
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string as a borrowed-or-owned text tied to the input.
    pub fn as_cow(&self) -> Option<Cow<'a, str>> {
        match self {
            Node::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// A string, or a number / bool rendered as text; `None` for null, arrays and objects.
    pub fn scalar_text(&self) -> Option<Cow<'a, str>> {
        match self {
            Node::Str(s) => Some(s.clone()),
            Node::Int(i) => Some(Cow::Owned(i.to_string())),
            Node::UInt(u) => Some(Cow::Owned(u.to_string())),
            Node::Float(f) => Some(Cow::Owned(f.to_string())),
            Node::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            _ => None,
        }
    }

    /// A number, or a string holding one (`"41.5"`); `None` for anything else, `""` and `"-"`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Node::Int(i) => Some(*i as f64),
            Node::UInt(u) => Some(*u as f64),
            Node::Float(f) => Some(*f),
            Node::Str(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
    }

    /// The bool, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Node::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Node<'a>]> {
        match self {
            Node::Arr(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, if this is an object.
    pub fn as_object(&self) -> Option<&[(Cow<'a, str>, Node<'a>)]> {
        match self {
            Node::Obj(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value as compact JSON text.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write_json(&mut s);
        s
    }

    fn write_json(&self, out: &mut String) {
        match self {
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Int(i) => out.push_str(&i.to_string()),
            Node::UInt(u) => out.push_str(&u.to_string()),
            Node::Float(f) => out.push_str(&serde_json::Value::from(*f).to_string()),
            Node::Str(s) => out.push_str(&serde_json::Value::from(s.as_ref()).to_string()),
            Node::Arr(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            Node::Obj(entries) => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::from(k.as_ref()).to_string());
                    out.push(':');
                    v.write_json(out);
                }
                out.push('}');
            }
        }
    }

    /// The top-level keys of an object, sorted and without repeats (the `arg_keys` column).
    pub fn sorted_keys(&self) -> Option<Vec<Cow<'a, str>>> {
        let entries = self.as_object()?;
        let mut keys: Vec<Cow<'a, str>> = entries.iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        Some(keys)
    }

    /// A short description of the JSON type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a bool",
            Node::Int(_) | Node::UInt(_) | Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Arr(_) => "an array",
            Node::Obj(_) => "an object",
        }
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(if v >= 0 {
            Node::UInt(v as u64)
        } else {
            Node::Int(v)
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Node::UInt(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Node::Float(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Node::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Node::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Node::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element::<Node<'de>>()? {
            items.push(v);
        }
        Ok(Node::Arr(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let v = map.next_value::<Node<'de>>()?;
            entries.push((k, v));
        }
        Ok(Node::Obj(entries))
    }
}

impl<'de> Deserialize<'de> for Node<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

/// An object key that borrows from the input when it can.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V).map_err(de::Error::custom)
    }
}

/// One step of a [`Path`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A dotted name part (may join its neighbours as one literal dotted key).
    Name(String),
    /// A quoted key (`["envoy.filters.http.jwt_authn"]`), never split nor joined.
    Quoted(String),
    /// An array index (`[0]`).
    Index(usize),
    /// Any key or element (`*` or `[*]`): the first that yields a value.
    Any,
    /// Every element of an array (`[]`): only meaningful where records fan out.
    Each,
}

/// A field path such as `input.parsed_body.params.name`, `jwt.sub`, `rpc[0].tool_name`,
/// `filterMetadata["envoy.filters.http.jwt_authn"].*.sub` or `Records[]`; `$.` at the start
/// addresses the whole record rather than the fanned-out element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    text: String,
    root: bool,
    steps: Vec<Step>,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Path {
    /// Parses a path.
    ///
    /// # Errors
    /// A message naming the position of an unbalanced bracket, an empty part or a bad index.
    pub fn parse(text: &str) -> Result<Path, String> {
        let mut rest = text.trim();
        let mut root = false;
        if let Some(r) = rest.strip_prefix("$.") {
            root = true;
            rest = r;
        } else if rest == "$" {
            return Ok(Path {
                text: text.to_string(),
                root: true,
                steps: Vec::new(),
            });
        }
        let mut steps = Vec::new();
        let b = rest.as_bytes();
        let mut i = 0;
        let mut expect_name = true;
        while i < b.len() {
            match b[i] {
                b'.' => {
                    if expect_name {
                        return Err(format!("path `{text}`: empty part at byte {i}"));
                    }
                    expect_name = true;
                    i += 1;
                }
                b'[' => {
                    let close = rest[i..]
                        .find(']')
                        .map(|p| i + p)
                        .ok_or_else(|| format!("path `{text}`: `[` at byte {i} is not closed"))?;
                    let inner = rest[i + 1..close].trim();
                    let step = if inner.is_empty() {
                        Step::Each
                    } else if inner == "*" {
                        Step::Any
                    } else if let Some(q) = inner
                        .strip_prefix('"')
                        .and_then(|s| s.strip_suffix('"'))
                        .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
                    {
                        Step::Quoted(q.to_string())
                    } else {
                        Step::Index(inner.parse::<usize>().map_err(|_| {
                            format!("path `{text}`: `[{inner}]` is not an index, `*`, `[]` or a quoted key")
                        })?)
                    };
                    steps.push(step);
                    expect_name = false;
                    i = close + 1;
                }
                _ => {
                    let end = rest[i..].find(['.', '[']).map_or(rest.len(), |p| i + p);
                    let name = &rest[i..end];
                    steps.push(if name == "*" {
                        Step::Any
                    } else {
                        Step::Name(name.to_string())
                    });
                    expect_name = false;
                    i = end;
                }
            }
        }
        if steps.is_empty() || expect_name {
            return Err(format!("path `{text}`: empty or ends with `.`"));
        }
        Ok(Path {
            text: text.to_string(),
            root,
            steps,
        })
    }

    /// Whether the path starts with `$.` (the whole record, not the element).
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The value at this path in `node`, ignoring `$` and treating `[]` like `*`.
    /// A null found on the way counts as absent, so alternatives further on can be tried.
    pub fn get<'n, 'a>(&self, node: &'n Node<'a>) -> Option<&'n Node<'a>> {
        lookup(node, &self.steps)
    }

    /// Every value at this path, fanning out at each `[]` (an absent or null value yields none).
    pub fn get_all<'n, 'a>(&self, node: &'n Node<'a>, out: &mut Vec<&'n Node<'a>>) {
        collect(node, &self.steps, out);
    }
}

/// Whether the dotted names `steps` spell `key` exactly (`["mcp", "method"]` spells `mcp.method`).
fn spells(key: &str, steps: &[Step]) -> bool {
    let mut rest = key;
    for (i, s) in steps.iter().enumerate() {
        let Step::Name(n) = s else { return false };
        let Some(r) = rest.strip_prefix(n.as_str()) else {
            return false;
        };
        if i + 1 == steps.len() {
            return r.is_empty();
        }
        let Some(r) = r.strip_prefix('.') else {
            return false;
        };
        rest = r;
    }
    false
}

/// How many of the dotted names `steps` the key spells exactly (`mcp.method` spells two of
/// `mcp`, `method`, `x`; `mcp` one; `mcpx` and `mcp.other` none).
fn spelled(key: &str, steps: &[Step]) -> usize {
    let mut rest = key;
    for (i, s) in steps.iter().enumerate() {
        let Step::Name(name) = s else { return 0 };
        let Some(r) = rest.strip_prefix(name.as_str()) else {
            return 0;
        };
        if r.is_empty() {
            return i + 1;
        }
        let Some(r) = r.strip_prefix('.') else {
            return 0;
        };
        rest = r;
    }
    0
}

fn lookup<'n, 'a>(node: &'n Node<'a>, steps: &[Step]) -> Option<&'n Node<'a>> {
    let Some(first) = steps.first() else {
        return (!node.is_null()).then_some(node);
    };
    match (first, node) {
        (Step::Name(_), Node::Obj(entries)) => {
            // The longest literal dotted key first, then shorter ones. One pass finds how many
            // steps each key spells; almost always one key spells exactly one step.
            let names = steps
                .iter()
                .take_while(|s| matches!(s, Step::Name(_)))
                .count();
            let mut single = None;
            let mut longer = false;
            for (k, v) in entries {
                match spelled(k, &steps[..names]) {
                    0 => {}
                    1 if single.is_none() => single = Some(v),
                    1 => {}
                    _ => longer = true,
                }
            }
            if !longer {
                return single.and_then(|v| lookup(v, &steps[1..]));
            }
            for take in (1..=names).rev() {
                for (k, v) in entries {
                    if spells(k, &steps[..take]) {
                        if let Some(found) = lookup(v, &steps[take..]) {
                            return Some(found);
                        }
                    }
                }
            }
            None
        }
        (Step::Quoted(q), Node::Obj(entries)) => entries
            .iter()
            .filter(|(k, _)| k == q)
            .find_map(|(_, v)| lookup(v, &steps[1..])),
        (Step::Index(i), Node::Arr(items)) => items.get(*i).and_then(|v| lookup(v, &steps[1..])),
        (Step::Any | Step::Each, Node::Obj(entries)) => {
            entries.iter().find_map(|(_, v)| lookup(v, &steps[1..]))
        }
        (Step::Any | Step::Each, Node::Arr(items)) => {
            items.iter().find_map(|v| lookup(v, &steps[1..]))
        }
        _ => None,
    }
}

fn collect<'n, 'a>(node: &'n Node<'a>, steps: &[Step], out: &mut Vec<&'n Node<'a>>) {
    let Some(pos) = steps.iter().position(|s| matches!(s, Step::Each)) else {
        if let Some(v) = lookup(node, steps) {
            out.push(v);
        }
        return;
    };
    let Some(arr) = lookup_allow_empty(node, &steps[..pos]) else {
        return;
    };
    match arr {
        Node::Arr(items) => {
            for item in items {
                collect(item, &steps[pos + 1..], out);
            }
        }
        Node::Null => {}
        // A single object where an array was expected is one element.
        other => collect(other, &steps[pos + 1..], out),
    }
}

fn lookup_allow_empty<'n, 'a>(node: &'n Node<'a>, steps: &[Step]) -> Option<&'n Node<'a>> {
    if steps.is_empty() {
        Some(node)
    } else {
        lookup(node, steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let n = parse(r#"{"a":"plain","b":"esc\"aped","c":[1,-2,2.5,true,null]}"#).unwrap();
        assert!(matches!(
            n.get("a"),
            Some(Node::Str(Cow::Borrowed("plain")))
        ));
        assert!(matches!(n.get("b"), Some(Node::Str(Cow::Owned(_)))));
        assert_eq!(
            n.get("c").unwrap().as_array().unwrap(),
            &[
                Node::UInt(1),
                Node::Int(-2),
                Node::Float(2.5),
                Node::Bool(true),
                Node::Null
            ]
        );
        assert_eq!(
            n.to_json(),
            r#"{"a":"plain","b":"esc\"aped","c":[1,-2,2.5,true,null]}"#
        );
    }

    #[test]
    fn literal_dotted_keys_come_first() {
        let n =
            parse(r#"{"mcp.method":"tools/call","mcp":{"method":"other"},"http":{"status":403}}"#)
                .unwrap();
        assert_eq!(
            p("mcp.method").get(&n).unwrap().as_str(),
            Some("tools/call")
        );
        assert_eq!(p("http.status").get(&n).unwrap().as_f64(), Some(403.0));
        let n = parse(r#"{"a":{"b.c":{"d":1}},"a.b":{"c":{"d":2}}}"#).unwrap();
        assert_eq!(p("a.b.c.d").get(&n).unwrap().as_f64(), Some(2.0));
    }

    #[test]
    fn quoted_keys_wildcards_and_indexes() {
        let n = parse(
            r#"{"m":{"envoy.filters.http.jwt_authn":{"verified_jwt":{"sub":"alice"}}},"xs":[{"v":null},{"v":7}]}"#,
        )
        .unwrap();
        assert_eq!(
            p(r#"m["envoy.filters.http.jwt_authn"].*.sub"#)
                .get(&n)
                .unwrap()
                .as_str(),
            Some("alice")
        );
        assert_eq!(p("xs[1].v").get(&n).unwrap().as_f64(), Some(7.0));
        assert_eq!(
            p("xs[*].v").get(&n).unwrap().as_f64(),
            Some(7.0),
            "null is skipped"
        );
        assert_eq!(p("xs[0].v").get(&n), None);
        let mut all = Vec::new();
        p("xs[].v").get_all(&n, &mut all);
        assert_eq!(all, [&Node::UInt(7)]);
    }

    #[test]
    fn bad_paths_are_explained() {
        assert!(Path::parse("a..b").unwrap_err().contains("empty part"));
        assert!(Path::parse("a[0").unwrap_err().contains("not closed"));
        assert!(Path::parse("a[x]").unwrap_err().contains("not an index"));
        assert!(Path::parse("").is_err());
        assert!(p("$.a").is_root());
    }
}
