//! `verdict verify` and the integrity chain: an untouched warehouse verifies; each kind of
//! tampering (a byte flipped, a file deleted, a file added, a commit edited, a link edited) is
//! named with exit 2; signatures hold under the right key only; authorised removals are listed;
//! history written before the chain is reported as unchained; the same on S3.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{committed, copy_dir, Output, TestDir};

/// A warehouse of three ingests (one sample file each: decisions versions 1 to 3), and the logs.
fn three_ingests(t: &TestDir, extra: &[&str]) -> PathBuf {
    let logs = t.copy_sample_logs();
    for f in [
        "gateway-2026-11-02.jsonl",
        "gateway-2026-11-03.jsonl",
        "gateway-2026-11-04.jsonl.gz",
    ] {
        let p = logs.join("policylayer").join(f);
        let mut args = vec!["ingest", p.to_str().unwrap(), "-q"];
        args.extend(extra);
        assert_exit!(t.cmd(&args).run(), 0);
    }
    t.join("verdict-warehouse")
}

fn verify_json(t: &TestDir, wh: &Path, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["-w", wh.to_str().unwrap(), "verify", "--format", "json"];
    args.extend(extra);
    let out = t.cmd(&args).run();
    let json = out.json();
    (out, json)
}

/// The one decisions file of a day, relative to the table directory.
fn day_file(wh: &Path, day: &str) -> String {
    let files: Vec<String> = committed(wh, "decisions")
        .iter()
        .map(|p| {
            p.strip_prefix(wh.join("decisions"))
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .filter(|p| p.starts_with(&format!("day={day}/")))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn commit_file(wh: &Path, version: u32) -> PathBuf {
    wh.join(format!("decisions/_delta_log/{version:020}.json"))
}

/// Asserts exit 2 with exactly one problem of `kind`, and returns it.
fn one_problem(out: &Output, json: &Value, kind: &str) -> Value {
    assert_exit!(out, 2);
    let problems = json["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{}", out.stdout);
    assert_eq!(problems[0]["kind"], kind, "{}", out.stdout);
    assert_eq!(json["ok"], false);
    problems[0].clone()
}

#[test]
fn an_untouched_warehouse_verifies_and_each_tampering_is_named() {
    let t = TestDir::new();
    let wh = three_ingests(&t, &[]);

    let out = t.cmd(&["verify"]).run();
    assert_exit!(out, 0);
    assert!(
        out.stdout.contains("decisions version 3: chain from version 1, 3 link(s) (0 signed), head version 3 sha256 "),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("  files reread: 3 ("), "{}", out.stdout);
    assert!(
        out.stdout
            .ends_with("OK: every link and every file matches\n"),
        "{}",
        out.stdout
    );
    let (out, json) = verify_json(&t, &wh, &[]);
    assert_exit!(out, 0);
    assert_eq!(json["ok"], true);
    let d = &json["tables"][0];
    assert_eq!(d["table"], "decisions");
    assert_eq!(d["links"], 3);
    assert_eq!(d["chain_start"], 1);
    assert_eq!(d["unchained_commits"], 0);
    assert_eq!(d["files_hashed"], 3);
    assert_eq!(json["problems"], serde_json::json!([]));
    // The head digest is the SHA-256 of the last record's canonical bytes, as jq -cjS prints it.
    let head = d["head"]["digest"].as_str().unwrap().to_string();
    assert_eq!(head.len(), 64);

    // Each tampering on its own copy of the warehouse.
    let copy = |name: &str| {
        let dst = t.join(name);
        copy_dir(&wh, &dst);
        dst
    };

    // One byte flipped (the size stays).
    let w = copy("flipped");
    let f = day_file(&w, "2026-11-03");
    let full = w.join("decisions").join(&f);
    let mut bytes = std::fs::read(&full).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&full, bytes).unwrap();
    let (out, json) = verify_json(&t, &w, &[]);
    let p = one_problem(&out, &json, "file_changed");
    assert_eq!(p["path"], f.as_str());
    assert_eq!(p["version"], 2);
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("digest mismatch: commit 2 recorded sha256 "),
        "{p}"
    );
    assert!(
        out.stderr.contains(&format!(
            "1 problem(s); the first: file changed: {f}: digest mismatch"
        )),
        "{}",
        out.stderr
    );

    // One file deleted.
    let w = copy("deleted");
    let f = day_file(&w, "2026-11-04");
    std::fs::remove_file(w.join("decisions").join(&f)).unwrap();
    let (out, json) = verify_json(&t, &w, &[]);
    let p = one_problem(&out, &json, "file_removed");
    assert_eq!(p["path"], f.as_str());
    assert_eq!(p["version"], 3);

    // One file added outside verdict.
    let w = copy("added");
    let f = day_file(&w, "2026-11-02");
    let extra = "day=2026-11-02/part-20261102T000000.000000-deadbeef-0000.parquet";
    std::fs::copy(
        w.join("decisions").join(&f),
        w.join("decisions").join(extra),
    )
    .unwrap();
    let (out, json) = verify_json(&t, &w, &[]);
    let p = one_problem(&out, &json, "file_added");
    assert_eq!(p["path"], extra);
    assert_eq!(p["version"], Value::Null);

    // One commit's actions edited (its statistics, which query pruning trusts).
    let w = copy("edited");
    let log = commit_file(&w, 2);
    let text = std::fs::read_to_string(&log).unwrap();
    let edited = text.replacen("\\\"numRecords\\\":193", "\\\"numRecords\\\":190", 1);
    assert_ne!(edited, text, "the stats of commit 2 name 193 rows");
    std::fs::write(&log, edited).unwrap();
    let (out, json) = verify_json(&t, &w, &[]);
    let p = one_problem(&out, &json, "commit_edited");
    assert_eq!(p["version"], 2);
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("the statistics of its add of day=2026-11-03/"),
        "{p}"
    );

    // One link edited: the next link no longer follows it.
    let w = copy("relinked");
    let log = commit_file(&w, 1);
    let text = std::fs::read_to_string(&log).unwrap();
    let edited = text.replacen("\"operation\":\"append\"", "\"operation\":\"erase\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&log, edited).unwrap();
    let (out, json) = verify_json(&t, &w, &[]);
    let p = one_problem(&out, &json, "chain_broken");
    assert_eq!(p["version"], 2);
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("commit 1 was edited or commit 2 inserted"),
        "{p}"
    );

    // The untouched original still verifies, with the same head.
    let (out, json) = verify_json(&t, &wh, &[]);
    assert_exit!(out, 0);
    assert_eq!(json["tables"][0]["head"]["digest"], head.as_str());
}

#[test]
fn signed_links_verify_under_their_key_and_fail_under_another() {
    let t = TestDir::new();
    let out = t.cmd(&["keygen", "--out", "signer.key"]).run();
    assert_exit!(out, 0);
    assert!(
        out.stdout.contains("-----BEGIN PUBLIC KEY-----"),
        "{}",
        out.stdout
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(t.join("signer.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        std::fs::read_to_string(t.join("signer.key.pub")).unwrap(),
        out.stdout
            .split_once("-----BEGIN")
            .map(|(_, r)| format!("-----BEGIN{r}"))
            .unwrap()
    );
    // keygen never overwrites.
    assert_exit!(t.cmd(&["keygen", "--out", "signer.key"]).run(), 2);
    assert_exit!(t.cmd(&["keygen", "--out", "other.key"]).run(), 0);

    let wh = three_ingests(&t, &["--signing-key", "signer.key"]);
    let w = wh.to_str().unwrap();
    // A compaction signed through the environment.
    let logs = t.join("sample-logs/policylayer/gateway-2026-11-02.jsonl");
    let again = t.write(
        "more.jsonl",
        std::fs::read_to_string(&logs)
            .unwrap()
            .replace("\"request_id\":\"", "\"request_id\":\"x"),
    );
    let out = t
        .cmd(&["ingest", again.to_str().unwrap(), "-q"])
        .env("VERDICT_SIGNING_KEY", "signer.key")
        .run();
    assert_exit!(out, 0);
    let out = t
        .cmd(&["compact"])
        .env("VERDICT_SIGNING_KEY", "signer.key")
        .run();
    assert_exit!(out, 0);

    let (out, json) = verify_json(&t, &wh, &["--public-key", "signer.key.pub"]);
    assert_exit!(out, 0);
    let d = &json["tables"][0];
    assert_eq!(d["links"], 5, "{}", out.stdout);
    assert_eq!(d["signed_links"], 5);
    assert_eq!(json["removals"][0]["operation"], "compact");
    assert_eq!(json["removals"][0]["files"], 2);
    let out = t
        .cmd(&["-w", w, "verify", "--public-key", "signer.key.pub"])
        .run();
    assert_exit!(out, 0);
    assert!(
        out.stdout
            .contains("authorised removal: decisions version 5 (compact): 2 file(s)\n"),
        "{}",
        out.stdout
    );

    // Under another key every link fails, the first named.
    let (out, json) = verify_json(&t, &wh, &["--public-key", "other.key.pub"]);
    assert_exit!(out, 2);
    let problems = json["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 5);
    assert!(problems.iter().all(|p| p["kind"] == "signature_wrong"));
    assert_eq!(problems[0]["version"], 1);
    assert!(
        out.stderr
            .contains("the first: signature wrong: commit 1: the signature is not by public key"),
        "{}",
        out.stderr
    );

    // An unsigned commit among signed ones fails under the key.
    let more = t.write(
        "more2.jsonl",
        std::fs::read_to_string(&again)
            .unwrap()
            .replace("\"request_id\":\"x", "\"request_id\":\"y"),
    );
    assert_exit!(t.cmd(&["ingest", more.to_str().unwrap(), "-q"]).run(), 0);
    let (out, json) = verify_json(&t, &wh, &["--public-key", "signer.key.pub"]);
    let p = one_problem(&out, &json, "signature_missing");
    assert_eq!(p["version"], 6);
    // A private key file is refused as a public key, with its name.
    let out = t.cmd(&["verify", "--public-key", "signer.key"]).run();
    assert_exit!(out, 2);
    assert!(
        out.stderr.contains("signer.key: not an Ed25519 public key"),
        "{}",
        out.stderr
    );
}

#[test]
fn restore_and_removal_of_damaged_files_are_authorised_removals() {
    let t = TestDir::new();
    let wh = three_ingests(&t, &[]);
    let out = t.cmd(&["restore", "--to", "1"]).run();
    assert_exit!(out, 0);
    assert!(
        out.stdout
            .contains("restored decisions to version 1 as version 4"),
        "{}",
        out.stdout
    );
    // The restored table holds the first day only, and verifies.
    let (out, json) = verify_json(&t, &wh, &[]);
    assert_exit!(out, 0);
    assert_eq!(json["tables"][0]["files_hashed"], 1);
    assert_eq!(
        json["removals"],
        serde_json::json!([{"table": "decisions", "version": 4, "operation": "restore", "files": 2}])
    );
    // Back to version 3: the files come back with the same digests.
    assert_exit!(t.cmd(&["restore", "--to", "3"]).run(), 0);
    let (out, json) = verify_json(&t, &wh, &[]);
    assert_exit!(out, 0);
    assert_eq!(json["tables"][0]["files_hashed"], 3);

    // A file lost, then removed with a recorded commit: no longer a problem.
    let f = day_file(&wh, "2026-11-03");
    std::fs::remove_file(wh.join("decisions").join(&f)).unwrap();
    let (out, _) = verify_json(&t, &wh, &[]);
    assert_exit!(out, 2);
    assert_exit!(t.cmd(&["doctor", "--remove-damaged"]).run(), 0);
    let (out, json) = verify_json(&t, &wh, &[]);
    assert_exit!(out, 0);
    let last = json["removals"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last,
        serde_json::json!({"table": "decisions", "version": 6, "operation": "remove_damaged", "files": 1})
    );
}

#[test]
fn history_written_before_the_chain_is_reported_as_unchained() {
    let t = TestDir::new();
    let logs = t.copy_sample_logs();
    let day = |f: &str| {
        logs.join("policylayer")
            .join(f)
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_exit!(
        t.cmd(&["ingest", &day("gateway-2026-11-02.jsonl"), "-q"])
            .run(),
        0
    );
    let wh = t.join("verdict-warehouse");
    // As an older verdict wrote it: commit 1 without its link.
    let log = commit_file(&wh, 1);
    let text: String = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            if let Some(ci) = v.get_mut("commitInfo").and_then(Value::as_object_mut) {
                assert!(ci.remove("verdict.chain").is_some());
            }
            format!("{}\n", serde_json::to_string(&v).unwrap())
        })
        .collect();
    std::fs::write(&log, text).unwrap();
    let (out, json) = verify_json(&t, &wh, &[]);
    assert_exit!(out, 0);
    let d = &json["tables"][0];
    assert_eq!(d["chain_start"], Value::Null);
    assert_eq!(d["unchained_commits"], 1);
    assert_eq!(d["unchained_files"], 1);

    // The chain starts at the next commit, anchored on the unchained one's bytes.
    assert_exit!(
        t.cmd(&["ingest", &day("gateway-2026-11-03.jsonl"), "-q"])
            .run(),
        0
    );
    let out = t.cmd(&["verify"]).run();
    assert_exit!(out, 0);
    assert!(
        out.stdout
            .contains("decisions version 2: chain from version 2, 1 link(s) (0 signed)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  unchained history: 1 commit(s) before the chain started; 1 live file(s) from them read, with no digest to compare\n"),
        "{}",
        out.stdout
    );
    // Editing the unchained commit now breaks the link that anchors on it.
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("\"WRITE\"", "\"WRITE \"", 1)).unwrap();
    let (out, json) = verify_json(&t, &wh, &[]);
    let p = one_problem(&out, &json, "chain_broken");
    assert_eq!(p["version"], 2);
}

#[test]
fn s3_warehouse_verifies_and_names_an_object_added_behind_its_back() {
    let Some(moto) = crate::s3::Moto::start() else {
        return;
    };
    let env = moto.env();
    let t = TestDir::new();
    let logs = t.copy_sample_logs();
    let pl = logs.join("policylayer");
    let w = "s3://verdict/signed";
    let out = crate::s3::run(&t, &env, &["-w", w, "ingest", pl.to_str().unwrap(), "-q"]);
    assert_exit!(out, 0);
    let out = crate::s3::run(&t, &env, &["-w", w, "verify", "--format", "json"]);
    assert_exit!(out, 0);
    let json = out.json();
    assert_eq!(json["tables"][0]["files_hashed"], 3);
    assert_eq!(json["tables"][0]["links"], 1);

    let path = "/verdict/signed/decisions/day=2026-11-02/part-planted.parquet";
    let r = moto.request_with("PUT", path, b"PAR1 not really").unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let out = crate::s3::run(&t, &env, &["-w", w, "verify", "--format", "json"]);
    let json = out.json();
    let p = one_problem(&out, &json, "file_added");
    assert_eq!(p["path"], "day=2026-11-02/part-planted.parquet");
}

#[test]
fn the_compliance_report_embeds_the_chain_head_and_is_reproduced_with_as_of() {
    let t = TestDir::new();
    let logs = t.copy_sample_logs();
    let day = |f: &str| {
        logs.join("policylayer")
            .join(f)
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_exit!(
        t.cmd(&["ingest", &day("gateway-2026-11-02.jsonl"), "-q"])
            .run(),
        0
    );
    assert_exit!(
        t.cmd(&["ingest", &day("gateway-2026-11-03.jsonl"), "-q"])
            .run(),
        0
    );
    let report = |out: &str, as_of: Option<&str>| {
        let mut args = vec![
            "report",
            "compliance",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-05",
            "-o",
            out,
        ];
        if let Some(v) = as_of {
            args.extend(["--as-of", v]);
        }
        assert_exit!(t.cmd(&args).run(), 0);
        std::fs::read(t.join(out)).unwrap()
    };
    let first = report("v1.html", Some("1"));
    let (out, json) = verify_json(&t, &t.join("verdict-warehouse"), &["--as-of", "1"]);
    assert_exit!(out, 0);
    let head1 = json["tables"][0]["head"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(json["tables"][0]["head"]["version"], 1);
    let html = String::from_utf8(first.clone()).unwrap();
    assert!(html.contains("Reads <code>decisions</code> version <strong>1</strong>: the same command with <code>--as-of 1</code> gives the same document."), "header");
    assert!(html.contains(
        "This report reads version <strong>1</strong> of the <code>decisions</code> table."
    ));
    assert!(html.contains(&format!("<code>decisions</code> version 1: chain head: version 1, SHA-256 <code>{head1}</code>; chain from version 1, 1 link(s), 0 signed. Files reread: 1 (")), "{html}");
    assert!(html.contains("<code>verdict verify</code> at generation time: <strong>OK</strong>: every link and every live file matched."));
    assert!(html.contains("<h2 id=\"integrity\"") || html.contains("id=\"integrity\""));

    // More data later: the latest report changes, the one as of version 1 is the same bytes.
    assert_exit!(
        t.cmd(&["ingest", &day("gateway-2026-11-04.jsonl.gz"), "-q"])
            .run(),
        0
    );
    let latest = String::from_utf8(report("latest.html", None)).unwrap();
    assert!(latest.contains("This report reads version <strong>3</strong>"));
    assert!(latest.contains("chain head: version 3, SHA-256 <code>"));
    let again = report("v1-again.html", Some("1"));
    assert!(again == first, "the report as of version 1 changed");
}
