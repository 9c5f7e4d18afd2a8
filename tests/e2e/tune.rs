//! `verdict tune`: the figures for each value equal those of a separate `replay` of the policy
//! with that value written in.

use crate::util::TestDir;

const CAND: &str = "sample-logs/policies/candidate.json";
const LIMIT: &str = "/tools/session_create/limits/session_create_rate";

#[test]
fn each_value_matches_a_separate_replay() {
    let t = TestDir::new();
    t.copy_sample_logs();
    assert_exit!(t.cmd(&["ingest", "sample-logs/policylayer"]).run(), 0);
    let out = t
        .cmd(&[
            "tune", "--policy", CAND, "--limit", LIMIT, "--max", "1..9/2", "--format", "json",
        ])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    let tune = &r["tune"];
    assert_eq!(tune["rule"], LIMIT);
    assert_eq!(tune["current"], "5");
    let rows = tune["rows"].as_array().unwrap();
    let values: Vec<&str> = rows.iter().map(|x| x["value"].as_str().unwrap()).collect();
    assert_eq!(values, ["1", "3", "5", "7", "9"]);
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(t.join(CAND)).unwrap()).unwrap();
    let mut limited = Vec::new();
    for row in rows {
        let mut p = original.clone();
        p["tools"]["session_create"]["limits"][0]["max"] = row["value"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            .into();
        let file = format!("max-{}.json", row["value"].as_str().unwrap());
        t.write(&file, serde_json::to_string(&p).unwrap());
        let rep = t
            .cmd(&["replay", "--policy", &file, "--format", "json"])
            .run();
        assert_exit!(rep, 0);
        let rep = rep.json();
        assert_eq!(row["transitions"], rep["transitions"], "{file}");
        assert_eq!(row["outcomes"], rep["candidate_outcomes"], "{file}");
        assert_eq!(row["tool_calls"], rep["counts"]["tool_calls"], "{file}");
        assert_eq!(
            row["rate_limited"], rep["candidate_outcomes"]["rate_limited"],
            "{file}"
        );
        assert_eq!(
            row["allow_to_rate_limited"], rep["transitions"]["allow->rate_limited"],
            "{file}"
        );
        limited.push(row["limited"].as_u64().unwrap());
    }
    // A lower max never limits fewer calls of session_create.
    assert!(limited.windows(2).all(|w| w[0] >= w[1]), "{limited:?}");
    assert!(limited[0] > 0);

    // The HTML report charts the same figures: one bar segment per non-zero count of calls
    // limited by this limit and by the others, and the same table.
    let html = t
        .cmd(&[
            "tune",
            "--policy",
            CAND,
            "--limit",
            LIMIT,
            "--max",
            "1..9/2",
            "--format",
            "html",
            "--output",
            "tune.html",
        ])
        .run();
    assert_exit!(html, 0);
    assert!(
        html.stdout.starts_with("wrote tune.html ("),
        "{}",
        html.stdout
    );
    let page = std::fs::read_to_string(t.join("tune.html")).unwrap();
    let marks: u64 = rows
        .iter()
        .map(|r| {
            let (all, own) = (
                r["rate_limited"].as_u64().unwrap(),
                r["limited"].as_u64().unwrap(),
            );
            u64::from(own > 0) + u64::from(all > own)
        })
        .sum();
    assert!(
        page.contains(&format!("<figure class=\"chart\" data-marks=\"{marks}\">")),
        "{marks} marks"
    );
    assert!(
        page.contains("<td>5 (current)</td>"),
        "the current value is marked"
    );
    assert!(!page.contains("http://") && !page.contains("https://"));
    // Only bob-ci calls session_create more than once a minute: its bursts are what max 1 limits.
    assert_eq!(rows[0]["identities"], 1);
    assert_eq!(rows[0]["tools"], 1);

    // The first value that meets a target; a window instead of a max.
    let out = t
        .cmd(&[
            "tune",
            "--policy",
            CAND,
            "--limit",
            LIMIT,
            "--max",
            "1..9/2",
            "--target",
            "limited<=0",
        ])
        .run();
    assert_exit!(out, 0);
    let first_zero = rows
        .iter()
        .find(|x| x["limited"] == 0)
        .map(|x| x["value"].as_str().unwrap());
    assert_eq!(first_zero, Some("5"));
    assert!(
        out.stdout
            .contains("target limited<=0: max 5 is the first value that meets it"),
        "{}",
        out.stdout
    );
    let out = t
        .cmd(&[
            "tune",
            "--policy",
            CAND,
            "--limit",
            "/all_tools/limits/calls-per-minute",
            "--window",
            "second,minute,hour",
            "--format",
            "json",
        ])
        .run();
    assert_exit!(out, 0);
    let r = out.json();
    let w: Vec<u64> = r["tune"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["limited"].as_u64().unwrap())
        .collect();
    assert_eq!(w.len(), 3);
    assert!(
        w[0] <= w[1] && w[1] <= w[2],
        "a longer window limits more: {w:?}"
    );
    let bad = t
        .cmd(&[
            "tune",
            "--policy",
            CAND,
            "--limit",
            "/tools/session_create/limits/nope",
            "--max",
            "1,2",
        ])
        .run();
    assert_exit!(bad, 2);
    assert!(
        bad.stderr.contains("no limit with counter or index `nope`"),
        "{}",
        bad.stderr
    );
}
