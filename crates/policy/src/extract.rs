//! Targeted extraction of argument values from JSON text: walks the whole text (so invalid JSON is still
//! rejected as a full parse would) but builds values only for the top-level keys a tool's rules read,
//! into a scratch buffer reused across calls. Knows nothing of conditions or steps.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::counters::short_eq;

/// Fills `out` (resized to `tops.len()`) with the values of the top-level keys `tops` found in the JSON
/// object `text`; `None` where absent. For a duplicated key the last value wins, as in a full parse. Text
/// that is valid JSON but not an object leaves every entry `None` (no path exists in it).
///
/// # Errors
/// When `text` is not valid JSON.
pub(crate) fn extract(
    text: &str,
    tops: &[Box<str>],
    out: &mut Vec<Option<Value>>,
) -> Result<(), serde_json::Error> {
    out.clear();
    out.resize(tops.len(), None);
    let mut de = serde_json::Deserializer::from_str(text);
    Root { tops, out }.deserialize(&mut de)?;
    de.end()
}

struct Root<'s> {
    tops: &'s [Box<str>],
    out: &'s mut [Option<Value>],
}

impl<'de> DeserializeSeed<'de> for Root<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Root<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(found) = map.next_key_seed(TopKey { tops: self.tops })? {
            match found.and_then(|i| self.out.get_mut(i)) {
                Some(slot) => *slot = Some(map.next_value::<Value>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A top-level key: its index in `tops`, or `None` when no rule reads it. Borrows, never allocates.
struct TopKey<'s> {
    tops: &'s [Box<str>],
}

impl<'de> DeserializeSeed<'de> for TopKey<'_> {
    type Value = Option<usize>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Option<usize>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TopKey<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.tops.iter().position(|t| short_eq(t, key)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(text: &str, tops: &[&str]) -> Result<Vec<Option<Value>>, serde_json::Error> {
        let tops: Vec<Box<str>> = tops.iter().map(|&t| Box::from(t)).collect();
        let mut out = vec![Some(json!("stale"))];
        extract(text, &tops, &mut out).map(|()| out)
    }

    #[test]
    fn extracts_only_the_keys_read() {
        let got = run(
            r#"{"amount": 12.5, "memo": {"a": [1, {"b": null}]}, "reason": "x\"y", "other": [1,2]}"#,
            &["reason", "amount", "missing"],
        )
        .unwrap();
        assert_eq!(got, [Some(json!("x\"y")), Some(json!(12.5)), None]);
    }

    #[test]
    fn escaped_keys_and_duplicates() {
        let got = run(r#"{"re\u0061son": 1, "reason": 2}"#, &["reason"]).unwrap();
        assert_eq!(got, [Some(json!(2))]);
        let got = run(r#"{"a": null}"#, &["a"]).unwrap();
        assert_eq!(got, [Some(Value::Null)]);
    }

    #[test]
    fn non_objects_hold_no_keys() {
        for text in ["[1, {\"a\": 1}]", "\"a\"", "3", "null", "true"] {
            assert_eq!(run(text, &["a"]).unwrap(), [None], "{text}");
        }
    }

    #[test]
    fn invalid_json_is_an_error() {
        for text in ["{\"a\": 1", "{\"a\": 1} x", "", "{\"b\": [1,}"] {
            assert!(run(text, &["a"]).is_err(), "{text}");
        }
    }
}
