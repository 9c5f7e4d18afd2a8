//! `verdict report compliance` and `verdict replay --format html`: the figures in the HTML are
//! exactly what `verdict sql` answers, the documents reference nothing outside themselves, are
//! byte-for-byte reproducible, and render in a real headless Chromium (charts included).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::TestDir;

/// The sample logs of every format plus the broken file (for the quarantine), ingested.
fn sample_warehouse() -> TestDir {
    let t = TestDir::new();
    t.copy_sample_logs();
    for dir in [
        "policylayer",
        "opa",
        "envoy",
        "kong",
        "agentgateway",
        "toolhive",
        "tyk",
        "broken",
    ] {
        let out = t.cmd(&["ingest", &format!("sample-logs/{dir}")]).run();
        assert!(
            out.code == Some(0) || out.code == Some(1),
            "ingest {dir}: {out:?}"
        );
    }
    t
}

const PERIOD: [&str; 4] = ["--since", "2026-11-01", "--until", "2026-12-01"];

fn compliance(t: &TestDir, out: &str, extra: &[&str]) -> String {
    compliance_over(t, PERIOD, out, extra)
}

/// `report compliance` over `period` (`--since A --until B`) to `out`; its HTML.
fn compliance_over(t: &TestDir, period: [&str; 4], out: &str, extra: &[&str]) -> String {
    let mut args = vec!["report", "compliance"];
    args.extend(period);
    args.extend(["--output", out]);
    args.extend(extra);
    let o = t.cmd(&args).run();
    assert_exit!(o, 0);
    assert!(
        o.stdout.starts_with(&format!("wrote {out} (")),
        "{}",
        o.stdout
    );
    std::fs::read_to_string(t.join(out)).unwrap()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Every `<tag ...>...</tag>` element's inner HTML in `s`, in order (no nesting of the same tag).
fn elements<'a>(s: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        let start = after.find('>').map_or(0, |j| j + 1);
        let end = after.find(close).expect("closed element");
        out.push(&after[start..end]);
        rest = &after[end + close.len()..];
    }
    out
}

/// The body rows of a result table as text cells (thousands separators removed from numbers).
fn table_rows(table: &str) -> Vec<Vec<(bool, String)>> {
    let body = elements(table, "<tbody", "</tbody>")[0];
    elements(body, "<tr", "</tr>")
        .into_iter()
        .filter(|r| !r.contains("class=\"empty\""))
        .map(|r| {
            let mut cells = Vec::new();
            let mut rest = r;
            while let Some(i) = rest.find("<td") {
                let after = &rest[i..];
                let numeric = after.starts_with("<td class=\"n\"");
                let start = after.find('>').unwrap() + 1;
                let end = after.find("</td>").unwrap();
                let text = unescape(&after[start..end]);
                cells.push((numeric, if numeric { text.replace(',', "") } else { text }));
                rest = &after[end + 5..];
            }
            cells
        })
        .collect()
}

fn json_cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn compliance_report_figures_equal_sql_and_the_file_is_self_contained_and_reproducible() {
    let t = sample_warehouse();
    let live = ["--policy", "sample-logs/policies/live.json"];
    let html = compliance(&t, "report.html", &live);

    // Every query block: its table is exactly `verdict sql` of its query.
    let blocks = elements(&html, "<div class=\"query\"", "</details></div>");
    assert_eq!(blocks.len(), 13, "query blocks");
    let mut non_empty = 0;
    for block in &blocks {
        let sql = unescape(elements(block, "<pre class=\"sql\"", "</pre>")[0]);
        let header: Vec<String> =
            elements(elements(block, "<thead", "</thead>")[0], "<th", "</th>")
                .into_iter()
                .map(unescape)
                .collect();
        let o = t.cmd(&["sql", "--format", "json", &sql]).run();
        assert_exit!(o, 0);
        let want: Vec<Vec<String>> = o
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let row = row.as_object().unwrap();
                assert_eq!(row.len(), header.len(), "columns of\n{sql}");
                header.iter().map(|h| json_cell(&row[h])).collect()
            })
            .collect();
        let got: Vec<Vec<String>> = table_rows(block)
            .into_iter()
            .map(|r| r.into_iter().map(|(_, c)| c).collect())
            .collect();
        assert_eq!(got, want, "figures of\n{sql}");
        non_empty += usize::from(!want.is_empty());
    }
    assert!(non_empty >= 10, "most sections hold rows: {non_empty}");

    // The headline figure (numbers are grouped by thousands: unit tests of html.rs).
    let o = t
        .cmd(&[
            "sql",
            "--format",
            "csv",
            "SELECT count(*) AS n FROM decisions WHERE ts >= TIMESTAMP '2026-11-01T00:00:00Z' AND ts < TIMESTAMP '2026-12-01T00:00:00Z'",
        ])
        .run();
    let calls: u64 = o.stdout.lines().nth(1).unwrap().parse().unwrap();
    assert!(calls > 600, "{calls}");
    let grouped = verdict_query::output::group_thousands(&calls.to_string());
    assert!(html.contains(&format!("<td class=\"n\">{grouped}</td>")));

    // The calls chart draws one bar segment per (day, decision) with calls.
    let o = t
        .cmd(&[
            "sql",
            "--format",
            "csv",
            "SELECT count(*) FROM (SELECT DISTINCT day, decision FROM decisions WHERE ts >= TIMESTAMP '2026-11-01T00:00:00Z' AND ts < TIMESTAMP '2026-12-01T00:00:00Z')",
        ])
        .run();
    let segments: usize = o.stdout.lines().nth(1).unwrap().parse().unwrap();
    let calls_section = elements(&html, "<section id=\"calls\"", "</section>")[0];
    assert!(
        calls_section.contains(&format!(
            "<figure class=\"chart\" data-marks=\"{segments}\">"
        )),
        "calls chart marks"
    );

    // The quarantine table counts every quarantined line by code.
    let quarantined = crate::util::quarantine(&t.join("verdict-warehouse")).len();
    assert!(quarantined > 0);
    let q = elements(&html, "<table class=\"data quarantine\"", "</table>")[0];
    let counted: usize = table_rows(q)
        .iter()
        .map(|r| r[2].1.parse::<usize>().unwrap())
        .sum();
    assert_eq!(counted, quarantined);

    // Fidelity per version adds up to the replay's own fidelity figure.
    let o = t
        .cmd(&[
            "replay",
            "--policy",
            "sample-logs/policies/live.json",
            "--since",
            "2026-11-01",
            "--until",
            "2026-12-01",
            "--format",
            "json",
        ])
        .run();
    let fid = &o.json()["fidelity"];
    let f = elements(&html, "<table class=\"data fidelity\"", "</table>")[0];
    let rows = table_rows(f);
    let sum = |i: usize| {
        rows.iter()
            .map(|r| r[i].1.parse::<u64>().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum(4), fid["determinate"].as_u64().unwrap());
    assert_eq!(sum(5), fid["reproduced"].as_u64().unwrap());

    // Self-contained: no URL, no external resource, no script.
    for bad in [
        "http://", "https://", "<script", "<link", "<img", "url(", "@import", "<iframe",
    ] {
        assert!(!html.contains(bad), "the report holds `{bad}`");
    }
    assert!(html.contains("@media print") && html.contains("break-before: page"));
    assert!(html.contains("All times are UTC"));

    // Deterministic: regenerated, the same bytes.
    let again = compliance(&t, "again.html", &live);
    assert!(again == html, "a second run differs");

    // The counting sections read the hour rollup over a period of whole hours; over one that is
    // not (a microsecond earlier, before any call) they read `decisions`, with the same figures.
    let unaligned = compliance_over(
        &t,
        [
            "--since",
            "2026-10-31T23:59:59.999999Z",
            "--until",
            "2026-12-01",
        ],
        "unaligned.html",
        &[],
    );
    let mut compared = 0;
    for id in [
        "calls",
        "denials",
        "rules",
        "rate-limits",
        "first-seen",
        "unused",
    ] {
        let blocks = |page: &str| -> Vec<(String, Vec<Vec<(bool, String)>>)> {
            let open = format!("<section id=\"{id}\"");
            let section = elements(page, &open, "</section>")[0];
            elements(section, "<div class=\"query\"", "</details></div>")
                .into_iter()
                .map(|q| {
                    let sql = unescape(elements(q, "<pre class=\"sql\"", "</pre>")[0]);
                    (sql, table_rows(q))
                })
                .collect()
        };
        for ((rollup_sql, from_rollup), (decisions_sql, from_decisions)) in
            blocks(&html).into_iter().zip(blocks(&unaligned))
        {
            assert!(rollup_sql.contains("rollup_hour"), "{rollup_sql}");
            assert!(decisions_sql.contains("FROM decisions"), "{decisions_sql}");
            assert!(!decisions_sql.contains("rollup_hour"), "{decisions_sql}");
            assert_eq!(from_rollup, from_decisions, "{id}");
            compared += usize::from(!from_rollup.is_empty());
        }
    }
    // The unused tools may be none; every other block holds rows.
    assert!(compared >= 6, "{compared} blocks with rows");
}

#[test]
fn compliance_report_of_an_empty_period_and_bad_periods() {
    let t = sample_warehouse();
    let o = t
        .cmd(&[
            "report",
            "compliance",
            "--since",
            "2020-01-01",
            "--until",
            "2020-01-03",
            "-o",
            "empty.html",
        ])
        .run();
    assert_exit!(o, 0);
    let html = std::fs::read_to_string(t.join("empty.html")).unwrap();
    assert!(html.contains("no rows"));
    let o = t
        .cmd(&[
            "report",
            "compliance",
            "--since",
            "2026-11-03",
            "--until",
            "2026-11-02",
            "-o",
            "x.html",
        ])
        .run();
    assert_exit!(o, 2);
    assert!(o.stderr.contains("--until"), "{}", o.stderr);
    // The table reports keep working beside the document.
    let o = t.cmd(&["report", "volume", "--format", "csv"]).run();
    assert_exit!(o, 0);
}

#[test]
fn pdf_without_a_browser_says_how_to_get_one() {
    let t = TestDir::new();
    let o = t
        .cmd(&[
            "report",
            "compliance",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-02",
            "-o",
            "r.pdf",
            "--format",
            "pdf",
        ])
        .env("PATH", "")
        .env("VERDICT_CHROMIUM", "")
        .run();
    assert_exit!(o, 2);
    assert!(
        o.stderr.contains("needs a headless Chromium"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("apt-get install chromium"),
        "{}",
        o.stderr
    );
    assert!(!t.join("r.pdf").exists());
}

fn whatif(t: &TestDir) -> String {
    let o = t
        .cmd(&[
            "replay",
            "--policy",
            "sample-logs/policies/candidate.json",
            "--format",
            "html",
            "--output",
            "whatif.html",
        ])
        .run();
    assert_exit!(o, 0);
    std::fs::read_to_string(t.join("whatif.html")).unwrap()
}

#[test]
fn whatif_report_matches_the_json_replay() {
    let t = sample_warehouse();
    let html = whatif(&t);
    let o = t
        .cmd(&[
            "replay",
            "--policy",
            "sample-logs/policies/candidate.json",
            "--format",
            "json",
        ])
        .run();
    let r = o.json();
    let tr = elements(&html, "<table class=\"data transitions\"", "</table>")[0];
    for row in table_rows(tr) {
        assert_eq!(
            row[1].1.parse::<u64>().unwrap(),
            r["transitions"][&row[0].1].as_u64().unwrap(),
            "{}",
            row[0].1
        );
    }
    let changed_kinds = r["transitions"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, v)| k.as_str() != "unchanged" && v.as_u64().unwrap() > 0)
        .count();
    assert!(html.contains(&format!(
        "<figure class=\"chart\" data-marks=\"{changed_kinds}\">"
    )));
    let over = elements(&html, "<table class=\"data over-time\"", "</table>")[0];
    let total: u64 = table_rows(over)
        .iter()
        .map(|r| r[1].1.parse::<u64>().unwrap())
        .sum();
    let c = &r["counts"];
    assert_eq!(
        total,
        c["changed"].as_u64().unwrap() + c["indeterminate"].as_u64().unwrap()
    );
    for bad in ["http://", "https://", "<script", "<link", "<img", "url("] {
        assert!(!html.contains(bad), "the what-if report holds `{bad}`");
    }
    assert_eq!(whatif(&t), html, "deterministic");
}

/// The Chromium to test with: `VERDICT_CHROMIUM` or `chromium` on PATH (`.ci/run` installs it).
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("VERDICT_CHROMIUM").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!("this test needs a headless Chromium: apt-get install chromium (.ci/run does it)");
}

fn browser(profile: &Path, args: &[String]) -> (String, String) {
    let out = Command::new(chromium())
        .args(verdict_document::PDF_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--enable-logging=stderr", "--v=0"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Opens `file` in headless Chromium: no console message, every chart rendered with its
/// rectangles; saves a screenshot and a PDF under the target's test directory.
fn check_in_browser(t: &TestDir, file: &str, name: &str, min_charts: usize) {
    let url = format!("file://{}", t.join(file).display());
    let (dom, log) = browser(
        &t.join(&format!("profile-{name}")),
        &["--dump-dom".into(), url.clone()],
    );
    assert!(!log.contains(":CONSOLE"), "console messages:\n{log}");
    let figures = elements(&dom, "<figure class=\"chart\"", "</figure>");
    assert!(figures.len() >= min_charts, "{} charts", figures.len());
    let marks: Vec<usize> = dom
        .match_indices("<figure class=\"chart\" data-marks=\"")
        .map(|(i, m)| {
            let rest = &dom[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    for (fig, want) in figures.iter().zip(&marks) {
        assert!(
            fig.contains("<svg") && fig.contains("</svg>"),
            "a chart without SVG"
        );
        assert_eq!(fig.matches("<rect").count(), *want, "rectangles of a chart");
        assert!(fig.contains("<text"), "a chart without axis labels");
    }
    assert!(
        marks.iter().filter(|m| **m > 0).count() >= min_charts,
        "{marks:?}"
    );

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join(format!("{name}.png"));
    let pdf = dir.join(format!("{name}.pdf"));
    let _ = std::fs::remove_file(&png);
    let _ = std::fs::remove_file(&pdf);
    browser(
        &t.join(&format!("profile-{name}-png")),
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2400".into(),
            url.clone(),
        ],
    );
    browser(
        &t.join(&format!("profile-{name}-pdf")),
        &[format!("--print-to-pdf={}", pdf.display()), url],
    );
    let png_bytes = std::fs::read(&png).unwrap();
    assert!(png_bytes.starts_with(b"\x89PNG") && png_bytes.len() > 10_000);
    let pdf_bytes = std::fs::read(&pdf).unwrap();
    assert!(pdf_bytes.starts_with(b"%PDF") && pdf_bytes.len() > 10_000);
    eprintln!("artefacts: {} {}", png.display(), pdf.display());
}

#[test]
fn reports_render_in_headless_chromium() {
    let t = sample_warehouse();
    compliance(&t, "report.html", &[]);
    check_in_browser(&t, "report.html", "compliance", 4);
    whatif(&t);
    check_in_browser(&t, "whatif.html", "whatif", 3);

    // --format pdf prints through the same browser.
    let browser = chromium();
    let o = t
        .cmd(&[
            "report",
            "compliance",
            "--since",
            "2026-11-01",
            "--until",
            "2026-12-01",
            "-o",
            "report.pdf",
            "--format",
            "pdf",
        ])
        .env("VERDICT_CHROMIUM", browser.to_str().unwrap())
        .run();
    assert_exit!(o, 0);
    let pdf = std::fs::read(t.join("report.pdf")).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
}
