//! Why an answer is empty: an unknown identity (with the closest known ones), a window or
//! session that holds none of its calls, filters that match nothing. Said on stderr as a note,
//! so that the answer itself (an empty CSV, `[]`) stays what scripts expect.

use anyhow::Result;
use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use verdict_query::{Engine, ReportSpec, TimelineSpec};

use crate::output::thousands;

/// How many close names an explanation lists.
const SUGGESTIONS: usize = 5;

/// The distinct non-null values of `column` in `decisions`, with their call counts.
async fn known(engine: &Engine, column: &str) -> Result<Vec<(String, u64)>> {
    let out = engine
        .sql(&format!(
            "SELECT CAST({column} AS VARCHAR) AS v, count(*) AS n FROM decisions \
             WHERE {column} IS NOT NULL GROUP BY 1"
        ))
        .await?;
    let mut values = Vec::new();
    for b in &out.batches {
        let v = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
        let v = v.as_string::<i32>();
        let n = b.column(1).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            if !v.is_null(i) {
                values.push((v.value(i).to_string(), n.value(i).max(0) as u64));
            }
        }
    }
    Ok(values)
}

/// The known names closest to `wanted`, best first (Jaro-Winkler, case-insensitive; ties by
/// name).
pub fn closest<'a>(wanted: &str, known: &'a [(String, u64)], n: usize) -> Vec<&'a str> {
    let w = wanted.to_lowercase();
    let mut scored: Vec<(f64, &str)> = known
        .iter()
        .map(|(k, _)| (strsim::jaro_winkler(&w, &k.to_lowercase()), k.as_str()))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(n).map(|(_, k)| k).collect()
}

/// `no calls by identity "X" in the warehouse; known identities: a, b (closest first, 2 of 9)`.
fn unknown(what: &str, wanted: &str, known: &[(String, u64)]) -> String {
    let plural = match what.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{what}s"),
    };
    if known.is_empty() {
        return format!(
            "no calls by {what} \"{wanted}\" in the warehouse, which names no {plural}"
        );
    }
    let near = closest(wanted, known, SUGGESTIONS);
    let of = if known.len() > near.len() {
        format!(
            " (closest first, {} of {})",
            near.len(),
            thousands(known.len() as u64)
        )
    } else {
        " (closest first)".to_string()
    };
    format!(
        "no calls by {what} \"{wanted}\" in the warehouse; known {plural}: {}{of}",
        near.join(", ")
    )
}

/// Why the timeline of `spec` is empty.
pub async fn timeline(engine: &Engine, spec: &TimelineSpec) -> Result<String> {
    let ids = known(engine, "identity").await?;
    let Some((_, n)) = ids.iter().find(|(k, _)| *k == spec.identity) else {
        return Ok(unknown("identity", &spec.identity, &ids));
    };
    let mut why = Vec::new();
    if let Some(s) = &spec.session {
        why.push(format!("in session \"{s}\""));
    }
    if spec.around.is_some() {
        why.push("in the window asked (widen --window or move --around)".to_string());
    }
    Ok(format!(
        "identity \"{}\" made {} calls, none {}",
        spec.identity,
        thousands(*n),
        why.join(" and ")
    ))
}

/// Why a report is empty: names in its filters that the warehouse does not hold, or filters
/// that together match nothing.
pub async fn report(engine: &Engine, spec: &ReportSpec) -> Result<String> {
    for (column, what, wanted) in [
        ("identity", "identity", &spec.identities),
        ("tool", "tool", &spec.tools),
        ("server", "server", &spec.servers),
        ("session", "session", &spec.sessions),
    ] {
        if wanted.is_empty() {
            continue;
        }
        let values = known(engine, column).await?;
        if let Some(w) = wanted.iter().find(|w| !values.iter().any(|(k, _)| k == *w)) {
            return Ok(unknown(what, w, &values));
        }
    }
    Ok("no decisions match these filters together (time range, names, decisions)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_come_first_and_the_message_says_how_many_there_are() {
        let known: Vec<(String, u64)> = [
            "alice", "bob", "bob-ci", "carol", "mallory", "alicia", "dave",
        ]
        .iter()
        .map(|s| (s.to_string(), 1))
        .collect();
        assert_eq!(closest("Alise", &known, 2), ["alice", "alicia"]);
        assert_eq!(
            unknown("identity", "bob-cj", &known),
            "no calls by identity \"bob-cj\" in the warehouse; known identities: \
             bob-ci, bob, alice, carol, alicia (closest first, 5 of 7)"
        );
        assert_eq!(
            unknown("tool", "x", &[]),
            "no calls by tool \"x\" in the warehouse, which names no tools"
        );
    }
}
