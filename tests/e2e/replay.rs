//! `verdict replay` and `verdict policy check` on the sample logs, asserted against the
//! independent oracle in `sample-logs/policylayer/expected.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow::array::AsArray;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::util::TestDir;

fn sample_warehouse() -> (TestDir, serde_json::Value) {
    let t = TestDir::new();
    t.copy_sample_logs();
    let out = t.cmd(&["ingest", "sample-logs/policylayer"]).run();
    assert_exit!(out, 0);
    let expected =
        std::fs::read_to_string(t.join("sample-logs/policylayer/expected.json")).unwrap();
    (t, serde_json::from_str(&expected).unwrap())
}

/// `transition -> event ids` from a changes file.
fn changes(path: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    for batch in reader {
        let batch = batch.unwrap();
        let ids = batch
            .column_by_name("event_id")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let tr = batch
            .column_by_name("transition")
            .unwrap()
            .as_string::<i32>()
            .clone();
        for i in 0..batch.num_rows() {
            out.entry(tr.value(i).to_string())
                .or_default()
                .insert(ids.value(i).to_string());
        }
    }
    out
}

fn ids(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn live_policy_reproduces_every_determinate_recorded_decision() {
    let (t, exp) = sample_warehouse();
    let live = &exp["live_replay"];
    let out = t
        .cmd(&[
            "replay",
            "--policy",
            "sample-logs/policies/live.json",
            "--format",
            "json",
            "--changes",
            "live.parquet",
        ])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    assert_eq!(r["compared_with"], "recorded");
    assert_eq!(r["counts"]["tool_calls"], live["tools_call"]);
    assert_eq!(
        r["counts"]["skipped_non_tool"],
        live["skipped_other_methods"]
    );
    assert_eq!(r["counts"]["not_comparable"], live["not_comparable"]);
    assert_eq!(r["counts"]["indeterminate"], live["indeterminate"]);
    assert_eq!(r["counts"]["compared"], live["determinate"]);
    assert_eq!(r["counts"]["changed"], 0);
    assert_eq!(r["fidelity"]["determinate"], live["determinate"]);
    assert_eq!(r["fidelity"]["reproduced"], live["reproduced"]);
    assert_eq!(r["fidelity"]["share"], 1.0);
    assert_eq!(r["range"]["first_event"], "2026-11-02T01:20:31.500000Z");
    assert_eq!(r["range"]["last_event"], "2026-11-04T17:07:52.763000Z");
    let written = changes(&t.join("live.parquet"));
    assert_eq!(written.keys().collect::<Vec<_>>(), ["indeterminate"]);
    assert_eq!(
        written["indeterminate"],
        ids(&live["indeterminate_request_ids"])
    );
}

#[test]
fn candidate_shows_every_transition_exactly_as_the_oracle() {
    let (t, exp) = sample_warehouse();
    let cand = &exp["candidate_replay"];
    let out = t
        .cmd(&[
            "replay",
            "--policy",
            "sample-logs/policies/candidate.json",
            "--format",
            "json",
            "--changes",
            "c.parquet",
            "--samples",
            "2",
        ])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    let nonzero: BTreeMap<String, u64> = r["transitions"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.as_u64() != Some(0))
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    let want: BTreeMap<String, u64> = cand["transitions"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(nonzero, want);
    // Every transition name of the spec is present, in the spec's order, zeros included.
    assert_eq!(r["transitions"].as_object().unwrap().len(), 15);
    let section = &out.stdout[out.stdout.find("\"transitions\"").unwrap()..];
    let pos = |k: &str| section.find(&format!("\"{k}\": ")).unwrap();
    assert!(pos("unchanged") < pos("allow->deny") && pos("allow->deny") < pos("deny->allow"));
    assert!(
        pos("approval_required->rate_limited") < pos("indeterminate")
            && pos("indeterminate") < pos("not_comparable")
    );
    // The changes file holds exactly the oracle's events per changed transition.
    let written = changes(&t.join("c.parquet"));
    for (name, list) in cand["request_ids"].as_object().unwrap() {
        if name == "unchanged" || name == "not_comparable" {
            assert!(!written.contains_key(name));
            continue;
        }
        assert_eq!(written[name], ids(list), "{name}");
    }
    // At most 2 samples per transition, one row per changed transition kind at least.
    let samples = r["samples"].as_array().unwrap();
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for s in samples {
        *per.entry(s["transition"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(
        per.len(),
        want.len() - 2,
        "every changed transition and indeterminate has samples"
    );
    assert!(per.values().all(|n| *n == 2));
    for key in [
        "range",
        "counts",
        "transitions",
        "by_identity_tool",
        "by_rule",
        "samples",
        "fidelity",
    ] {
        assert!(r.get(key).is_some(), "{key}");
    }
    let top = &r["by_identity_tool"][0];
    assert_eq!(
        (
            top["identity"].as_str(),
            top["tool"].as_str(),
            top["total"].as_u64()
        ),
        (Some("bob-ci"), Some("navigate"), Some(44))
    );
}

#[test]
fn baseline_mode_simulates_both_sides() {
    let (t, exp) = sample_warehouse();
    let out = t
        .cmd(&[
            "replay",
            "--policy",
            "sample-logs/policies/candidate.json",
            "--baseline",
            "sample-logs/policies/live.json",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    assert_eq!(r["compared_with"], "baseline");
    assert_eq!(r["fidelity"]["policy"], "baseline");
    assert_eq!(
        r["fidelity"]["reproduced"],
        exp["live_replay"]["reproduced"]
    );
    assert_eq!(r["fidelity"]["share"], 1.0);
    // The live policy reproduces every determinate record, so the transitions are the same.
    for (k, v) in exp["candidate_replay"]["transitions"].as_object().unwrap() {
        assert_eq!(&r["transitions"][k], v, "{k}");
    }
}

#[test]
fn gates_and_exit_codes() {
    let (t, _) = sample_warehouse();
    let run = |policy: &str, gates: &[&str]| {
        let mut args = vec!["replay", "--policy", policy, "--samples", "0"];
        for g in gates {
            args.extend(["--fail-on", g]);
        }
        t.cmd(&args).run()
    };
    let cand = "sample-logs/policies/candidate.json";
    let out = run(cand, &["deny->allow"]);
    assert_exit!(out, 1);
    assert!(
        out.stdout
            .contains("gate deny->allow: TRIPPED (6 calls deny->allow)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("| unchanged"),
        "the full report is printed first"
    );
    let out = run(cand, &["changed>10%"]);
    assert_exit!(out, 1);
    assert!(
        out.stdout
            .contains("gate changed>10%: TRIPPED (11.60% of 431 compared calls changed)"),
        "{}",
        out.stdout
    );
    let out = run(cand, &["changed>20%", "destructive-allowed"]);
    assert_exit!(out, 0);
    assert!(
        out.stdout.contains("gate changed>20%: ok"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("gate destructive-allowed: ok (0 calls"),
        "{}",
        out.stdout
    );
    let out = run(cand, &["any-change"]);
    assert_exit!(out, 1);
    let out = run(
        "sample-logs/policies/live.json",
        &["any-change", "deny->allow", "changed>0%"],
    );
    assert_exit!(out, 0);
    // Un-hiding session_destroy newly allows a destructive tool.
    let live = std::fs::read_to_string(t.join("sample-logs/policies/live.json")).unwrap();
    let mut p: serde_json::Value = serde_json::from_str(&live).unwrap();
    p["hide"] = serde_json::json!([]);
    p["tools"]["session_destroy"] = serde_json::json!({});
    t.write("unhide.json", serde_json::to_string(&p).unwrap());
    let out = t
        .cmd(&[
            "replay",
            "--policy",
            "unhide.json",
            "--fail-on",
            "destructive-allowed",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 1);
    let r = out.json();
    // The 11 hidden session_destroy calls: 10 now allowed, 1 caught by bob-ci's calls-per-minute burst.
    assert_eq!(r["transitions"]["deny->rate_limited"], 1);
    assert_eq!(r["counts"]["destructive_newly_allowed"], 10);
    assert_eq!(
        r["gates"][0],
        serde_json::json!({"gate": "destructive-allowed", "tripped": true, "detail": "10 calls of destructive tools newly allowed"})
    );
    let bad = run(cand, &["deny->deny"]);
    assert_exit!(bad, 2);
    assert!(
        bad.stderr.contains("invalid gate `deny->deny`"),
        "{}",
        bad.stderr
    );
}

#[test]
fn filters_report_a_subset_without_changing_the_simulation() {
    let (t, _) = sample_warehouse();
    let cand = "sample-logs/policies/candidate.json";
    assert_exit!(
        t.cmd(&["replay", "--policy", cand, "--changes", "all.parquet"])
            .run(),
        0
    );
    let out = t
        .cmd(&[
            "replay",
            "--policy",
            cand,
            "--identity",
            "bob-ci",
            "--changes",
            "bob.parquet",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    assert!(r["by_identity_tool"]
        .as_array()
        .unwrap()
        .iter()
        .all(|row| row["identity"] == "bob-ci"));
    let all = changes(&t.join("all.parquet"));
    let bob = changes(&t.join("bob.parquet"));
    // Every bob-ci change is one the full run found too, with the same transition.
    let mut n = 0;
    for (tr, set) in &bob {
        assert!(set.is_subset(&all[tr]), "{tr}");
        n += set.len();
    }
    assert_eq!(
        n as u64,
        r["counts"]["changed"].as_u64().unwrap() + r["counts"]["indeterminate"].as_u64().unwrap()
    );
    assert!(r["counts"]["filtered_out"].as_u64().unwrap() > 0);
    // A range: only 2026-11-03, counters empty at its start.
    let out = t
        .cmd(&[
            "replay",
            "--policy",
            cand,
            "--since",
            "2026-11-03",
            "--until",
            "2026-11-04",
            "--format",
            "json",
        ])
        .run();
    let r = out.json();
    assert_eq!(r["range"]["since"], "2026-11-03T00:00:00.000000Z");
    assert_eq!(r["counts"]["events"], 193);
    let out = t
        .cmd(&[
            "replay",
            "--policy",
            cand,
            "--since",
            "2026-11-04",
            "--until",
            "2026-11-03",
        ])
        .run();
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("--until (2026-11-03T00:00:00.000000Z) must be after --since"),
        "{}",
        out.stderr
    );
}

#[test]
fn policy_check_names_json_paths() {
    let t = TestDir::new();
    t.copy_sample_logs();
    let ok = t
        .cmd(&["policy", "check", "sample-logs/policies/candidate.json"])
        .run();
    assert_exit!(ok, 0);
    assert!(
        ok.stdout
            .starts_with("sample-logs/policies/candidate.json: valid policy (default deny"),
        "{}",
        ok.stdout
    );
    t.write(
        "bad.json",
        r#"{"version":"1","default":"deny","tools":{"create_charge":{"deny_if":[{"conditions":[{"path":"args.amount","op":"greater","value":1}],"on_deny":"x"}],"limits":[{"counter":"c","window":"fortnight","max":1.5}]}}}"#,
    );
    let bad = t.cmd(&["policy", "check", "bad.json"]).run();
    assert_exit!(bad, 2);
    for path in [
        "/tools/create_charge/deny_if/0/conditions/0/op",
        "/tools/create_charge/limits/0/window",
        "/tools/create_charge/limits/0/max",
    ] {
        assert!(bad.stderr.contains(path), "{path} in {}", bad.stderr);
    }
    t.write(
        "syntax.json",
        "{\n  \"version\": \"1\",\n  \"default\": deny\n}",
    );
    let syn = t.cmd(&["policy", "check", "syntax.json"]).run();
    assert_exit!(syn, 2);
    assert!(
        syn.stderr.contains("line 3") && syn.stderr.contains("column"),
        "{}",
        syn.stderr
    );
    // A policy that fails validation is never evaluated.
    let out = t.cmd(&["replay", "--policy", "bad.json"]).run();
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("/tools/create_charge/limits/0/window"),
        "{}",
        out.stderr
    );
}

/// A markdown table's rows: every line between the header and a blank line, split on the pipes
/// that are not escaped.
fn md_tables(md: &str) -> Vec<Vec<Vec<String>>> {
    let split = |l: &str| -> Vec<String> {
        let mut cells = vec![String::new()];
        let mut chars = l.trim().trim_start_matches('|').chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        cells.last_mut().unwrap().push(n);
                    }
                }
                '|' => cells.push(String::new()),
                _ => cells.last_mut().unwrap().push(c),
            }
        }
        if cells.last().is_some_and(|c| c.trim().is_empty()) {
            cells.pop();
        }
        cells.into_iter().map(|c| c.trim().to_string()).collect()
    };
    let mut tables = Vec::new();
    let mut current: Vec<Vec<String>> = Vec::new();
    for line in md.lines() {
        if line.starts_with('|') {
            current.push(split(line));
        } else if !current.is_empty() {
            tables.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        tables.push(current);
    }
    tables
}

#[test]
fn replay_for_pull_requests_markdown_and_junit() {
    let (t, _) = sample_warehouse();
    let cand = "sample-logs/policies/candidate.json";
    let md = t
        .cmd(&[
            "replay",
            "--policy",
            cand,
            "--fail-on",
            "deny->allow",
            "--fail-on",
            "changed>20%",
            "--format",
            "markdown",
        ])
        .run();
    assert_exit!(md, 1);
    let text = &md.stdout;
    assert!(
        text.starts_with(
            "### verdict replay: `sample-logs/policies/candidate.json` against the recorded decisions\n\n**FAIL**: 1 of 2 gates tripped."
        ),
        "{text}"
    );
    // Every table renders: each row has its header's number of cells, the second row is the
    // alignment row.
    let tables = md_tables(text);
    assert!(tables.len() >= 4, "{text}");
    for table in &tables {
        let width = table[0].len();
        assert!(
            table[1].iter().all(|c| c.chars().all(|x| "-:".contains(x))),
            "{table:?}"
        );
        for row in table {
            assert_eq!(row.len(), width, "{table:?}");
        }
    }
    let gates = tables
        .iter()
        .find(|t| t[0] == ["gate", "result", "figure"])
        .unwrap();
    assert_eq!(
        gates[2..],
        [
            vec![
                "`deny->allow`".to_string(),
                "**tripped**".into(),
                "6 calls deny->allow".into()
            ],
            vec![
                "`changed>20%`".to_string(),
                "holds".into(),
                "11.60% of 431 compared calls changed".into()
            ],
        ]
    );
    let counts = tables.iter().find(|t| t[0] == ["figure", "calls"]).unwrap();
    assert!(
        counts.contains(&vec!["compared with the record".to_string(), "431".into()]),
        "{counts:?}"
    );
    assert!(text.contains("<details><summary>Samples"), "{text}");

    // JUnit: a parser accepts it; one test case per gate, the tripped one a failure.
    let junit = t
        .cmd(&[
            "replay",
            "--policy",
            cand,
            "--fail-on",
            "deny->allow",
            "--fail-on",
            "changed>20%",
            "--format",
            "junit",
            "--output",
            "replay.xml",
        ])
        .run();
    assert_exit!(junit, 1);
    let parsed = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as ET\n\
             root = ET.parse(sys.argv[1]).getroot()\n\
             suite = root.find('testsuite')\n\
             print(root.tag, suite.get('tests'), suite.get('failures'))\n\
             for c in suite.findall('testcase'):\n\
             \x20   f = c.find('failure')\n\
             \x20   print(c.get('name'), '|', f.get('message') if f is not None else 'ok')\n",
        )
        .arg(t.join("replay.xml"))
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout),
        "testsuites 2 1\n\
         gate deny->allow | gate deny->allow tripped: 6 calls deny->allow\n\
         gate changed>20% | ok\n"
    );
}
