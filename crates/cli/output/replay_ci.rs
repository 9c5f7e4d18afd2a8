//! `verdict replay --format markdown|junit`: the replay report shaped for pull requests and CI
//! systems (README, "Replay in CI").

use std::fmt::Write as _;
use std::io::Write;

use anyhow::Result;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use verdict_replay::ReplayReport;

use super::{thousands, ReplayNames};

/// The markdown stays under this many bytes: GitHub refuses a pull-request comment over 65,536
/// characters, and a step summary over 1 MiB.
pub const MARKDOWN_LIMIT: usize = 60_000;

/// Rows of the identity x tool matrix and samples shown before the size check cuts further.
const MAX_MATRIX_ROWS: usize = 50;

/// A table cell: pipes escaped, line breaks flattened, so that no value breaks the table.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// `code` in backticks, safe when it holds backticks itself.
fn code(s: &str) -> String {
    if s.contains('`') {
        format!("`` {} ``", cell(s))
    } else {
        format!("`{}`", cell(s))
    }
}

fn against(names: &ReplayNames) -> String {
    match &names.baseline {
        Some(b) => format!("the baseline {} (simulated)", code(b)),
        None => "the recorded decisions".to_string(),
    }
}

/// The replay report as GitHub-flavoured markdown: the verdict of the gates first, then the
/// counts, the gates, the transitions, the identity x tool matrix and the rules, with the
/// samples in a collapsed list. Kept under [`MARKDOWN_LIMIT`] bytes: the longest tables are cut
/// with a note saying how many rows were left out.
pub fn markdown(w: &mut dyn Write, r: &ReplayReport, names: &ReplayNames) -> Result<()> {
    let text = render_markdown(r, names, MAX_MATRIX_ROWS);
    w.write_all(text.as_bytes())?;
    Ok(())
}

fn render_markdown(r: &ReplayReport, names: &ReplayNames, max_rows: usize) -> String {
    let mut rows = max_rows;
    loop {
        let text = markdown_with(r, names, rows);
        if text.len() <= MARKDOWN_LIMIT || rows == 0 {
            return text;
        }
        rows /= 2;
    }
}

fn markdown_with(r: &ReplayReport, names: &ReplayNames, max_rows: usize) -> String {
    let mut s = String::new();
    let tripped = r.gates.iter().filter(|g| g.tripped).count();
    let _ = writeln!(
        s,
        "### verdict replay: {} against {}\n",
        code(&names.candidate),
        against(names)
    );
    let result = if r.gates.is_empty() {
        "no gates asked (`--fail-on`)".to_string()
    } else if tripped == 0 {
        format!("**PASS**: all {} gates hold", r.gates.len())
    } else {
        format!("**FAIL**: {tripped} of {} gates tripped", r.gates.len())
    };
    let rg = &r.range;
    let from = rg
        .since
        .as_deref()
        .or(rg.first_event.as_deref())
        .unwrap_or("-");
    let to = rg
        .until
        .as_deref()
        .or(rg.last_event.as_deref())
        .unwrap_or("-");
    let version = r
        .table_version
        .map_or("an empty warehouse".to_string(), |v| {
            format!("decisions version {v}")
        });
    let _ = writeln!(
        s,
        "{result}. Range {from} .. {to} (UTC), read from {version}.\n"
    );

    let c = &r.counts;
    let _ = writeln!(s, "| figure | calls |\n|---|---:|");
    for (name, n) in [
        ("tool calls replayed", c.tool_calls),
        ("compared with the record", c.compared),
        ("changed", c.changed),
        ("indeterminate", c.indeterminate),
        ("not comparable", c.not_comparable),
        (
            "destructive tools newly allowed",
            c.destructive_newly_allowed,
        ),
    ] {
        let _ = writeln!(s, "| {name} | {} |", thousands(n));
    }
    s.push('\n');

    if !r.gates.is_empty() {
        let _ = writeln!(s, "#### Gates\n\n| gate | result | figure |\n|---|---|---|");
        for g in &r.gates {
            let result = if g.tripped { "**tripped**" } else { "holds" };
            let _ = writeln!(s, "| {} | {result} | {} |", code(&g.gate), cell(&g.detail));
        }
        s.push('\n');
    }

    let moved: Vec<(&str, u64)> = r
        .transitions
        .iter()
        .filter(|(t, n)| *n > 0 && *t != "unchanged")
        .collect();
    let _ = writeln!(s, "#### Transitions\n");
    if moved.is_empty() {
        let _ = writeln!(s, "No call changes its outcome.\n");
    } else {
        let _ = writeln!(s, "| transition | calls |\n|---|---:|");
        for (t, n) in moved {
            let _ = writeln!(s, "| {} | {} |", code(t), thousands(n));
        }
        s.push('\n');
    }

    if !r.by_identity_tool.is_empty() {
        let _ = writeln!(
            s,
            "#### Changes by identity x tool\n\n| identity | tool | transitions | calls |\n|---|---|---|---:|"
        );
        for row in r.by_identity_tool.iter().take(max_rows) {
            let t: Vec<String> = row
                .transitions
                .iter()
                .map(|(k, v)| format!("{k} {}", thousands(*v)))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                cell(row.identity.as_deref().unwrap_or("(none)")),
                code(&row.tool),
                cell(&t.join(", ")),
                thousands(row.total)
            );
        }
        left_out(&mut s, r.by_identity_tool.len(), max_rows);
    }

    if !r.by_rule.is_empty() {
        let _ = writeln!(
            s,
            "#### Rules behind the changes\n\n| policy | rule | transition | calls |\n|---|---|---|---:|"
        );
        for row in r.by_rule.iter().take(max_rows) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                row.side,
                code(&row.rule),
                code(&row.transition),
                thousands(row.calls)
            );
        }
        left_out(&mut s, r.by_rule.len(), max_rows);
    }

    if let Some(f) = &r.fidelity {
        let _ = writeln!(
            s,
            "Fidelity: the {} policy reproduces {} of {} recorded decisions ({:.2}%).\n",
            f.policy,
            thousands(f.reproduced),
            thousands(f.determinate),
            f.share * 100.0
        );
    }

    if !r.samples.is_empty() {
        let shown = r.samples.len().min(max_rows);
        let _ = writeln!(
            s,
            "<details><summary>Samples ({shown} of {})</summary>\n\n| transition | time (UTC) | identity | tool | recorded | candidate | candidate rule |\n|---|---|---|---|---|---|---|",
            r.samples.len()
        );
        for x in r.samples.iter().take(max_rows) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                code(&x.transition),
                cell(&x.ts),
                cell(x.identity.as_deref().unwrap_or("(none)")),
                code(&x.tool),
                cell(&x.recorded_decision),
                cell(&x.candidate_decision),
                code(&x.candidate_rule)
            );
        }
        s.push_str("\n</details>\n");
    }
    s
}

fn left_out(s: &mut String, total: usize, shown: usize) {
    if total > shown {
        let _ = writeln!(
            s,
            "\n_{} more rows not shown; `--format json` has them all._",
            thousands((total - shown) as u64)
        );
    }
    s.push('\n');
}

/// The replay as a JUnit XML report: one test suite, one test case per gate (a tripped gate is a
/// failure whose message is its figure), the counts as suite properties.
pub fn junit(w: &mut dyn Write, r: &ReplayReport, names: &ReplayNames) -> Result<()> {
    let mut report = Report::new("verdict replay");
    let mut suite = TestSuite::new(format!("replay of {}", names.candidate));
    let c = &r.counts;
    for (k, v) in [
        ("tool_calls", c.tool_calls),
        ("compared", c.compared),
        ("changed", c.changed),
        ("indeterminate", c.indeterminate),
        ("destructive_newly_allowed", c.destructive_newly_allowed),
    ] {
        suite.add_property((k, v.to_string().as_str()));
    }
    if let Some(v) = r.table_version {
        suite.add_property(("table_version", v.to_string().as_str()));
    }
    for g in &r.gates {
        let status = if g.tripped {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
            st.set_message(format!("gate {} tripped: {}", g.gate, g.detail));
            st.set_type("gate");
            st
        } else {
            TestCaseStatus::success()
        };
        let mut case = TestCase::new(format!("gate {}", g.gate), status);
        case.set_classname("verdict.replay.gates");
        case.set_system_out(g.detail.clone());
        suite.add_test_case(case);
    }
    let mut summary = Vec::new();
    super::replay_report(&mut summary, r, names, crate::args::SummaryFormat::Table)?;
    suite.set_system_out(String::from_utf8_lossy(&summary).into_owned());
    report.add_test_suite(suite);
    report.serialize(&mut *w)?;
    writeln!(w)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdict_replay::{GateResult, IdentityToolRow};

    fn names() -> ReplayNames {
        ReplayNames {
            candidate: "candidate.json".into(),
            baseline: None,
        }
    }

    #[test]
    fn cells_never_break_a_table() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(code("x`y"), "`` x`y ``");
    }

    #[test]
    fn a_tripped_gate_fails_and_says_so_first() {
        let mut r = ReplayReport::default();
        r.gates = vec![
            GateResult {
                gate: "deny->allow".into(),
                tripped: true,
                detail: "3 calls deny->allow".into(),
            },
            GateResult {
                gate: "destructive-allowed".into(),
                tripped: false,
                detail: "0 destructive calls newly allowed".into(),
            },
        ];
        let md = render_markdown(&r, &names(), MAX_MATRIX_ROWS);
        assert!(md.contains("**FAIL**: 1 of 2 gates tripped"), "{md}");
        assert!(
            md.contains("| `deny->allow` | **tripped** | 3 calls deny->allow |"),
            "{md}"
        );
        let mut xml = Vec::new();
        junit(&mut xml, &r, &names()).unwrap();
        let xml = String::from_utf8(xml).unwrap();
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(
            xml.contains("gate deny-&gt;allow tripped: 3 calls deny-&gt;allow"),
            "{xml}"
        );
    }

    #[test]
    fn a_huge_matrix_is_cut_under_the_limit_with_a_note() {
        let mut r = ReplayReport::default();
        r.by_identity_tool = (0..5_000)
            .map(|i| IdentityToolRow {
                identity: Some(format!("identity-{i:05}-{}", "x".repeat(40))),
                tool: format!("tool_{i}"),
                transitions: [("allow->deny".to_string(), 1)].into_iter().collect(),
                total: 1,
            })
            .collect();
        let md = render_markdown(&r, &names(), MAX_MATRIX_ROWS);
        assert!(md.len() <= MARKDOWN_LIMIT, "{}", md.len());
        assert!(md.contains("4,950 more rows not shown"), "{md}");
    }
}
