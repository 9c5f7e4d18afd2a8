//! Replays the sample PolicyLayer logs against `sample-logs/policies/{live,candidate}.json` with the
//! evaluator alone and asserts the oracle in `sample-logs/policylayer/expected.json`: the live policy
//! reproduces every determinate recorded decision (with the same rule), and the candidate's transitions
//! match request by request. Shows how a driver builds a [`Call`] from a decision row.
//!
//! Run: `cargo run -p verdict-policy --example replay_sample`

// An example prints what it found; the workspace lint is for library code.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::error::Error;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use verdict_policy::{Args, Call, Evaluator, Outcome, Policy, Recorded, RecordedDecision};

/// One decision row, as the decision table holds it.
struct Row {
    ts: i64,
    request_id: String,
    identity: Option<String>,
    identity_id: Option<String>,
    session: Option<String>,
    server: Option<String>,
    method: String,
    tool: Option<String>,
    arg_keys: Vec<String>,
    /// JSON text, as in the table's `args` column.
    args: Option<String>,
    decision: RecordedDecision,
    rule: String,
    upstream_status: Option<i32>,
}

fn read_rows(dir: &Path) -> Result<Vec<Row>, Box<dyn Error>> {
    let mut rows = Vec::new();
    for name in [
        "gateway-2026-11-02.jsonl",
        "gateway-2026-11-03.jsonl",
        "gateway-2026-11-04.jsonl.gz",
    ] {
        let bytes = std::fs::read(dir.join(name))?;
        let text = if name.ends_with(".gz") {
            let mut out = String::new();
            flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut out)?;
            out
        } else {
            String::from_utf8(bytes)?
        };
        for line in text.lines() {
            let r: Value = serde_json::from_str(line)?;
            let s = |k: &str| r[k].as_str().map(str::to_owned);
            let rule = s("rule").unwrap_or_default();
            // PolicyLayer writes a rate limit as a deny whose rule points into a `limits` array.
            let decision = match s("decision").as_deref() {
                Some("deny") if rule.contains("/limits/") => RecordedDecision::RateLimited,
                Some(d) => RecordedDecision::from_name(d),
                None => RecordedDecision::Unknown,
            };
            let ts = chrono::DateTime::parse_from_rfc3339(r["timestamp"].as_str().unwrap_or(""))?
                .timestamp_micros();
            rows.push(Row {
                ts,
                request_id: s("request_id").unwrap_or_default(),
                identity: s("grant_label"),
                identity_id: s("grant_id"),
                session: s("session_id"),
                server: s("server"),
                method: s("method").unwrap_or_default(),
                tool: s("tool"),
                arg_keys: r["arg_keys"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|k| k.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                args: r.get("args").filter(|a| !a.is_null()).map(Value::to_string),
                decision,
                rule,
                upstream_status: r["upstream_status"]
                    .as_i64()
                    .and_then(|v| i32::try_from(v).ok()),
            });
        }
    }
    rows.sort_by(|a, b| (a.ts, &a.request_id).cmp(&(b.ts, &b.request_id)));
    Ok(rows)
}

/// Replays every `tools/call` row; returns request ids by transition, and how many recorded rules of
/// unchanged calls the replay did not reproduce.
fn replay(policy: &Policy, rows: &[Row]) -> (BTreeMap<String, Vec<String>>, usize) {
    let mut evaluator = Evaluator::new(policy);
    let mut transitions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut other_rules = 0;
    for r in rows.iter().filter(|r| r.method == "tools/call") {
        let Some(tool) = r.tool.as_deref() else {
            continue;
        };
        let keys: Vec<&str> = r.arg_keys.iter().map(String::as_str).collect();
        let call = Call {
            identity: r.identity.as_deref(),
            identity_id: r.identity_id.as_deref(),
            session: r.session.as_deref(),
            server: r.server.as_deref(),
            arg_keys: Some(&keys),
            args: r.args.as_deref().map(Args::Json),
            recorded: Some(Recorded {
                decision: r.decision,
                upstream_status: r.upstream_status,
            }),
            ..Call::new(r.ts, tool)
        };
        let verdict = evaluator.evaluate(&call);
        let transition = match r.decision.as_outcome() {
            None => "not_comparable".to_owned(),
            Some(_) if verdict.outcome == Outcome::Indeterminate => "indeterminate".to_owned(),
            Some(recorded) if recorded == verdict.outcome => {
                other_rules += usize::from(verdict.rule != r.rule);
                "unchanged".to_owned()
            }
            Some(recorded) => format!("{recorded}->{}", verdict.outcome),
        };
        transitions
            .entry(transition)
            .or_default()
            .push(r.request_id.clone());
    }
    (transitions, other_rules)
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn main() -> Result<(), Box<dyn Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-logs");
    let rows = read_rows(&root.join("policylayer"))?;
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(
        root.join("policylayer/expected.json"),
    )?)?;

    let live = Policy::from_path(&root.join("policies/live.json"))?;
    let (t, other_rules) = replay(&live, &rows);
    let count = |k: &str| t.get(k).map_or(0, Vec::len);
    let determinate: usize =
        t.values().map(Vec::len).sum::<usize>() - count("indeterminate") - count("not_comparable");
    let exp = &expected["live_replay"];
    assert_eq!(Some(count("unchanged") as u64), exp["reproduced"].as_u64());
    assert_eq!(Some(determinate as u64), exp["determinate"].as_u64());
    assert_eq!(other_rules, 0, "a reproduced decision with another rule");
    assert_eq!(
        t.get("indeterminate").cloned().unwrap_or_default(),
        ids(&exp["indeterminate_request_ids"])
    );
    println!(
        "live: {} of {} determinate calls reproduced, {} indeterminate, {} not comparable",
        count("unchanged"),
        determinate,
        count("indeterminate"),
        count("not_comparable")
    );

    let candidate = Policy::from_path(&root.join("policies/candidate.json"))?;
    let (t, _) = replay(&candidate, &rows);
    let exp = expected["candidate_replay"]["request_ids"]
        .as_object()
        .ok_or("expected.json has no candidate_replay.request_ids")?;
    assert_eq!(
        t.keys().collect::<Vec<_>>(),
        exp.keys().collect::<Vec<_>>(),
        "transitions"
    );
    for (name, want) in exp {
        assert_eq!(
            t.get(name).cloned().unwrap_or_default(),
            ids(want),
            "{name}"
        );
    }
    for (name, got) in &t {
        println!("candidate: {name:<26} {}", got.len());
    }
    Ok(())
}
