//! Retention, legal holds, erasure and pseudonymisation, end to end: exact counts before and
//! after (through `verdict sql` and the reports), the trace in the Delta log, and no byte of an
//! erased value anywhere under the warehouse once vacuumed.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::trust::warehouse_text;
use crate::util::{log_actions, pl_line, TestDir};

const NOW: &str = "2026-11-30T12:00:00Z";

/// Lines of `identity` on `day`, `n` of them, ids unique per (day, identity) and opaque (an
/// event id is the dedup key: erasure leaves it as it is, README "Limitations").
fn lines(day: &str, identity: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            let decision = if i % 3 == 0 { "deny" } else { "allow" };
            let mut l = pl_line(
                &format!("{day}-{}{}-{i}", identity.len(), &identity[..1]),
                &format!("{day}T{:02}:15:00.000Z", 8 + i),
                identity,
                "navigate",
                decision,
                None,
            );
            l.push('\n');
            l
        })
        .collect()
}

fn cmd(t: &TestDir, args: &[&str]) -> crate::util::Output {
    t.cmd(args).env("VERDICT_NOW", NOW).run()
}

/// `(day, identity) -> rows` through `verdict sql`.
fn counts(t: &TestDir) -> BTreeMap<(String, String), u64> {
    let o = cmd(
        t,
        &[
            "sql",
            "--format",
            "json",
            "SELECT CAST(day AS VARCHAR) AS d, identity, COUNT(*) AS n FROM decisions GROUP BY 1, 2 ORDER BY 1, 2",
        ],
    );
    assert_exit!(o, 0);
    o.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["d"].as_str().unwrap().to_string(),
                    r["identity"].as_str().unwrap().to_string(),
                ),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `identity -> calls` of `verdict report volume --by identity`.
fn volume(t: &TestDir) -> BTreeMap<String, u64> {
    let o = cmd(
        t,
        &["report", "volume", "--by", "identity", "--format", "json"],
    );
    assert_exit!(o, 0);
    o.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["identity"].as_str().unwrap().to_string(),
                r["calls"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The commit info of the latest commit of a table.
fn last_info(wh: &std::path::Path, table: &str) -> Value {
    log_actions(wh, table)
        .into_iter()
        .rev()
        .find_map(|(_, a)| a.get("commitInfo").cloned())
        .unwrap()
}

fn files_naming(t: &TestDir, needle: &str) -> Vec<String> {
    let mut files = Vec::new();
    warehouse_text(&t.join("verdict-warehouse"), &mut files);
    files
        .into_iter()
        .filter(|(_, text)| text.contains(needle))
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn retention_removes_exactly_the_old_days_and_nothing_held() {
    let t = TestDir::new();
    let days = [
        ("2025-01-10", 3),
        ("2025-03-03", 2),
        ("2025-06-15", 4),
        ("2025-12-01", 2),
        ("2026-03-01", 3),
        ("2026-11-29", 5),
    ];
    let mut log = String::new();
    for (day, n) in days {
        log.push_str(&lines(day, "bob", n));
    }
    log.push_str(&lines("2025-03-03", "carol", 1));
    t.write("gw.jsonl", &log);
    assert_exit!(cmd(&t, &["ingest", "gw.jsonl"]), 0);
    let before = counts(&t);
    assert_eq!(before.values().sum::<u64>(), 20);
    for (name, extra) in [
        (
            "case-1",
            vec!["--since", "2025-06-01", "--until", "2025-07-01"],
        ),
        ("carol-hold", vec!["--identity", "carol"]),
    ] {
        let mut args = vec!["hold", "add", "--name", name, "--reason", "litigation"];
        args.extend(extra);
        assert_exit!(cmd(&t, &args), 0);
    }
    // 400 days before 2026-11-30T12:00 is 2025-10-26T12:00: every day before 2025-10-26 is
    // older than the period; two of the three are held.
    let dry = cmd(
        &t,
        &[
            "retention",
            "--keep",
            "400d",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    assert_exit!(dry, 0);
    let s = dry.json();
    assert_eq!(s["keep_from"], "2025-10-26");
    assert_eq!(s["days_removed"], serde_json::json!(["2025-01-10"]));
    assert_eq!(s["rows_removed"], 3);
    assert_eq!(
        s["held"],
        serde_json::json!([
            {"day": "2025-03-03", "holds": ["carol-hold"]},
            {"day": "2025-06-15", "holds": ["case-1"]}
        ])
    );
    assert_eq!(counts(&t), before, "a dry run changes nothing");
    let o = cmd(
        &t,
        &["retention", "--keep", "400d", "--reason", "policy R-7"],
    );
    assert_exit!(o, 0);
    assert!(
        o.stdout.contains("kept 2025-06-15 (held by case-1)"),
        "{}",
        o.stdout
    );
    let mut want = before.clone();
    want.remove(&("2025-01-10".into(), "bob".into()));
    assert_eq!(counts(&t), want);
    // The rollups lost exactly the same rows.
    assert_eq!(
        volume(&t),
        BTreeMap::from([("bob".into(), 16), ("carol".into(), 1)])
    );
    let wh = t.join("verdict-warehouse");
    let info = last_info(&wh, "decisions");
    assert_eq!(info["operation"], "DELETE");
    assert_eq!(info["verdict.operation"], "retention");
    assert_eq!(info["verdict.reason"], "policy R-7");
    assert_eq!(info["verdict.rows_removed"], 3);
    let removed = info["verdict.removed"].as_array().unwrap();
    assert_eq!(removed.len(), 1);
    let path = removed[0]["path"].as_str().unwrap();
    assert!(path.starts_with("day=2025-01-10/"), "{path}");
    let bytes = std::fs::read(wh.join("decisions").join(path)).unwrap();
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(removed[0]["sha256"], digest.as_str());
    assert_eq!(
        last_info(&wh, "rollup_hour")["verdict.operation"],
        "retention"
    );
    // A second run finds nothing more to remove.
    let again = cmd(&t, &["retention", "--keep", "400d", "--format", "json"]);
    assert_exit!(again, 0);
    assert_eq!(again.json()["rows_removed"], 0);
    assert_exit!(cmd(&t, &["vacuum", "--retention", "0d"]), 0);
    assert!(!wh.join("decisions").join(path).exists());
    // The Delta log keeps statistics of event ids; the data files of the day are gone.
    let parquet = |id: &str| {
        files_naming(&t, id)
            .into_iter()
            .filter(|f| f.ends_with(".parquet"))
            .count()
    };
    assert_eq!(parquet("2025-01-10-3b"), 0);
    assert!(parquet("2025-06-15-3b") > 0);
    // Re-ingesting the old log adds the removed day again (its index entries went with it).
    let re = cmd(&t, &["ingest", "gw.jsonl", "--format", "json"]);
    assert_exit!(re, 0);
    assert_eq!(re.json()["rows_written"], 3);
}

/// A warehouse with alice (3 days), bob, and a quarantined line of each.
fn two_people(t: &TestDir) {
    let mut log = String::new();
    for day in ["2026-11-02", "2026-11-03", "2026-11-04"] {
        log.push_str(&lines(day, "alice", 4));
        log.push_str(&lines(day, "bob", 3));
    }
    for who in ["alice", "bob"] {
        log.push_str(&pl_line(
            &format!("bad-{who}"),
            "not a time",
            who,
            "navigate",
            "allow",
            None,
        ));
        log.push('\n');
    }
    t.write("gw.jsonl", &log);
    let o = cmd(t, &["ingest", "gw.jsonl", "--format", "json"]);
    assert_exit!(o, 0);
    assert_eq!(o.json()["quarantined"], 2, "{}", o.stdout);
}

fn quarantined(t: &TestDir) -> Vec<String> {
    let o = cmd(
        t,
        &[
            "sql",
            "--format",
            "json",
            "SELECT raw FROM quarantine ORDER BY raw",
        ],
    );
    assert_exit!(o, 0);
    o.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["raw"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn erasure_removes_one_identity_everywhere_with_a_trace() {
    let t = TestDir::new();
    two_people(&t);
    assert_eq!(
        volume(&t),
        BTreeMap::from([("alice".into(), 12), ("bob".into(), 9)])
    );
    assert!(!files_naming(&t, "alice").is_empty());
    let dry = cmd(
        &t,
        &[
            "erase",
            "--identity",
            "alice",
            "--reason",
            "request 42",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    assert_exit!(dry, 0);
    assert_eq!(
        (
            dry.json()["rows"].as_u64(),
            dry.json()["quarantined"].as_u64()
        ),
        (Some(12), Some(1))
    );
    assert_eq!(volume(&t)["alice"], 12, "a dry run changes nothing");
    let o = cmd(
        &t,
        &[
            "erase",
            "--identity",
            "alice",
            "--reason",
            "GDPR Art. 17 request 42",
            "--requested-by",
            "dpo@example.com",
            "--format",
            "json",
        ],
    );
    assert_exit!(o, 0);
    let s = o.json();
    assert_eq!(s["rows"], 12);
    assert_eq!(s["quarantined"], 1);
    assert_eq!(
        s["days"],
        serde_json::json!(["2026-11-02", "2026-11-03", "2026-11-04"])
    );
    let subject = s["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("pseudonym:") && subject.len() == 26,
        "{subject}"
    );
    let counts = counts(&t);
    assert_eq!(counts.values().sum::<u64>(), 9);
    assert!(counts.keys().all(|(_, who)| who == "bob"));
    assert_eq!(volume(&t), BTreeMap::from([("bob".into(), 9)]));
    assert_eq!(quarantined(&t).len(), 1);
    assert!(
        quarantined(&t)[0].contains("\"grant_label\":\"bob\""),
        "{:?}",
        quarantined(&t)
    );
    let wh = t.join("verdict-warehouse");
    let info = last_info(&wh, "decisions");
    assert_eq!(info["verdict.operation"], "erase");
    assert_eq!(info["verdict.requested_by"], "dpo@example.com");
    assert_eq!(info["verdict.reason"], "GDPR Art. 17 request 42");
    assert_eq!(info["verdict.rows_removed"], 12);
    assert_eq!(info["verdict.subject"], subject);
    let removed = info["verdict.removed"].as_array().unwrap();
    assert_eq!(removed.len(), 3);
    assert!(removed
        .iter()
        .all(|r| r["sha256"].as_str().unwrap().len() == 64));
    assert_eq!(last_info(&wh, "quarantine")["verdict.rows_removed"], 1);
    assert_eq!(
        last_info(&wh, "rollup_minute")["verdict.operation"],
        "erase"
    );
    // Until vacuum the removed files are still there; after it, no byte of alice anywhere.
    assert!(!files_naming(&t, "alice").is_empty());
    assert_exit!(cmd(&t, &["vacuum", "--retention", "0d"]), 0);
    assert_eq!(files_naming(&t, "alice"), Vec::<String>::new());
    // Re-ingesting the original log does not bring the erased rows back.
    let re = cmd(&t, &["ingest", "gw.jsonl", "--format", "json"]);
    assert_exit!(re, 0);
    assert_eq!(re.json()["rows_written"], 0);
}

#[test]
fn pseudonymisation_keeps_every_count() {
    let t = TestDir::new();
    two_people(&t);
    let before = volume(&t);
    let o = cmd(
        &t,
        &[
            "erase",
            "--identity",
            "alice",
            "--pseudonymise",
            "--reason",
            "request 43",
            "--format",
            "json",
        ],
    );
    assert_exit!(o, 0);
    let subject = o.json()["subject"].as_str().unwrap().to_string();
    assert_eq!(o.json()["rows"], 12);
    let after = volume(&t);
    assert_eq!(after.values().sum::<u64>(), before.values().sum::<u64>());
    assert_eq!(
        after,
        BTreeMap::from([(subject.clone(), 12), ("bob".into(), 9)])
    );
    assert_eq!(quarantined(&t).len(), 2);
    let info = last_info(&t.join("verdict-warehouse"), "decisions");
    assert_eq!(info["operation"], "UPDATE");
    assert_eq!(info["verdict.rows_rewritten"], 12);
    assert_exit!(cmd(&t, &["vacuum", "--retention", "0d"]), 0);
    assert_eq!(files_naming(&t, "alice"), Vec::<String>::new());
    assert!(!files_naming(&t, &subject).is_empty());
}

#[test]
fn a_hold_stops_erasure_and_names_itself() {
    let t = TestDir::new();
    two_people(&t);
    let o = cmd(
        &t,
        &[
            "hold",
            "add",
            "--name",
            "case-9",
            "--identity",
            "alice",
            "--since",
            "2026-11-03",
            "--reason",
            "litigation hold 9",
        ],
    );
    assert_exit!(o, 0);
    let again = cmd(&t, &["hold", "add", "--name", "case-9", "--reason", "x"]);
    assert_exit!(again, 2);
    assert!(
        again
            .stderr
            .contains("hold case-9: a hold of this name is in place"),
        "{}",
        again.stderr
    );
    let list = cmd(&t, &["hold", "list", "--format", "json"]);
    assert_exit!(list, 0);
    assert_eq!(list.json()[0]["name"], "case-9");
    assert_eq!(list.json()[0]["since"], "2026-11-03T00:00:00.000000Z");
    let o = cmd(
        &t,
        &["erase", "--identity", "alice", "--reason", "request 44"],
    );
    assert_exit!(o, 2);
    assert!(
        o.stderr.contains(
            "erasure refused, nothing was changed: 9 row(s) under hold case-9 (litigation hold 9)"
        ),
        "{}",
        o.stderr
    );
    assert_eq!(volume(&t)["alice"], 12);
    // Rows before the hold's range can go (a range leaves quarantined lines alone: they carry
    // no trusted time).
    let o = cmd(
        &t,
        &[
            "erase",
            "--identity",
            "alice",
            "--until",
            "2026-11-03",
            "--reason",
            "request 44",
            "--format",
            "json",
        ],
    );
    assert_exit!(o, 0);
    assert_eq!(o.json()["rows"], 4);
    assert_eq!(volume(&t)["alice"], 8);
    let o = cmd(&t, &["hold", "remove", "case-9"]);
    assert_exit!(o, 0);
    assert_eq!(cmd(&t, &["hold", "list"]).stdout, "no holds in place\n");
    let o = cmd(
        &t,
        &[
            "erase",
            "--identity",
            "alice",
            "--reason",
            "request 44",
            "--format",
            "json",
        ],
    );
    assert_exit!(o, 0);
    assert_eq!(o.json()["rows"], 8);
}

#[test]
fn the_collector_applies_its_retention_setting_once_a_day() {
    let t = TestDir::new();
    let mut log = lines("2001-01-01", "bob", 2);
    log.push_str(&lines("2001-01-02", "bob", 3));
    t.write("old.jsonl", &log);
    assert_exit!(t.cmd(&["ingest", "old.jsonl"]).run(), 0);
    let o = t
        .cmd(&[
            "hold",
            "add",
            "--name",
            "audit",
            "--since",
            "2001-01-02",
            "--until",
            "2001-01-03",
            "--reason",
            "audit 2001",
        ])
        .run();
    assert_exit!(o, 0);
    std::fs::create_dir_all(t.join("incoming")).unwrap();
    t.write(
        "collect.toml",
        "[commit]\nretention = \"400d\"\ninterval = \"100ms\"\n[[files]]\npaths = [\"incoming/*.jsonl\"]\n",
    );
    let retention_commits = || {
        log_actions(&t.join("verdict-warehouse"), "decisions")
            .iter()
            .filter(|(_, a)| a["commitInfo"]["verdict.operation"] == "retention")
            .count()
    };
    for _ in 0..2 {
        let run = crate::collect::Running::start(&t, &["--config", "collect.toml"]).started();
        crate::collect::wait_for(20, "the retention run", || {
            run.stderr().contains("retention")
        });
        let (code, _, err) = run.term();
        assert_eq!(code, Some(0), "{err}");
    }
    // Once: the second run found today's retention recorded in the warehouse.
    assert_eq!(retention_commits(), 1);
    let info = last_retention(&t);
    assert_eq!(info["verdict.requested_by"], "verdict collect");
    assert_eq!(info["verdict.reason"], "retention setting: keep 400d");
    let o = t
        .cmd(&[
            "sql",
            "--format",
            "json",
            "SELECT CAST(day AS VARCHAR) AS d, COUNT(*) AS n FROM decisions GROUP BY 1",
        ])
        .run();
    assert_exit!(o, 0);
    assert_eq!(o.json(), serde_json::json!([{"d": "2001-01-02", "n": 3}]));
}

fn last_retention(t: &TestDir) -> Value {
    log_actions(&t.join("verdict-warehouse"), "decisions")
        .into_iter()
        .rev()
        .find_map(|(_, a)| {
            let ci = a.get("commitInfo")?;
            (ci["verdict.operation"] == "retention").then(|| ci.clone())
        })
        .unwrap()
}

/// Erasure and pseudonymisation are links of the integrity chain: signed with the writers' key,
/// `verify` passes under the public key and lists them as authorised removals.
#[test]
fn a_signed_erasure_verifies_and_is_listed_as_authorised() {
    let t = TestDir::new();
    assert_exit!(cmd(&t, &["keygen", "--out", "signer.key"]), 0);
    let log = format!(
        "{}{}{}",
        lines("2026-11-02", "alice", 4),
        lines("2026-11-02", "bob", 3),
        lines("2026-11-02", "carol", 2)
    );
    t.write("gw.jsonl", &log);
    let signed = |args: &[&str]| {
        t.cmd(args)
            .env("VERDICT_NOW", NOW)
            .env("VERDICT_SIGNING_KEY", "signer.key")
            .run()
    };
    assert_exit!(signed(&["ingest", "gw.jsonl", "-q"]), 0);
    assert_exit!(
        signed(&["erase", "--identity", "alice", "--reason", "request 42"]),
        0
    );
    assert_exit!(
        signed(&[
            "erase",
            "--identity",
            "bob",
            "--pseudonymise",
            "--reason",
            "request 43"
        ]),
        0
    );
    assert_eq!(volume(&t).values().sum::<u64>(), 5);
    let v = cmd(
        &t,
        &[
            "verify",
            "--public-key",
            "signer.key.pub",
            "--format",
            "json",
        ],
    );
    assert_exit!(v, 0);
    let json = v.json();
    let ops: Vec<&str> = json["removals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["table"] == "decisions")
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["erase", "pseudonymise"], "{}", v.stdout);
    let d = &json["tables"][0];
    assert_eq!(d["links"], d["signed_links"], "{}", v.stdout);
    // An unsigned erasure fails under the key.
    assert_exit!(
        cmd(
            &t,
            &["erase", "--identity", "carol", "--reason", "request 44"]
        ),
        0
    );
    let v = cmd(&t, &["verify", "--public-key", "signer.key.pub"]);
    assert_exit!(v, 2);
}
