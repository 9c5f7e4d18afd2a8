//! The report of `verdict tune --format html`: one limit of a policy replayed at several values,
//! with a chart of the calls each value rate-limits, as one self-contained HTML file.

use verdict_replay::TuneReport;

use crate::chart::{stacked_bars, Series};
use crate::error::Result;
use crate::html::{esc, figure, group_thousands, Cell, Page, Section, Table};

/// Calls the tuned limit itself rate-limits.
const LIMITED: (u8, u8, u8) = (200, 55, 55);
/// Calls other limits of the policy rate-limit.
const OTHERS: (u8, u8, u8) = (232, 160, 60);

/// Renders the tuning report of `report`; `policy` is the policy file as the user named it.
///
/// # Errors
/// When the chart cannot be drawn.
pub fn tune_report(report: &TuneReport, policy: &str) -> Result<String> {
    let cats: Vec<String> = report.rows.iter().map(|r| r.value.clone()).collect();
    let series = vec![
        Series {
            name: "rate-limited by this limit".into(),
            color: LIMITED,
            values: report.rows.iter().map(|r| r.limited).collect(),
        },
        Series {
            name: "rate-limited by other limits".into(),
            color: OTHERS,
            values: report
                .rows
                .iter()
                .map(|r| r.rate_limited.saturating_sub(r.limited))
                .collect(),
        },
    ];
    let chart = stacked_bars(&cats, &series, 60)?;
    let pct = |n: u64, of: u64| {
        if of == 0 {
            "0.00%".to_string()
        } else {
            format!("{:.2}%", n as f64 * 100.0 / of as f64)
        }
    };
    let table = Table {
        columns: [
            report.field,
            "calls",
            "rate-limited",
            "share",
            "by this limit",
            "identities",
            "tools",
            "worst minute",
            "allow->rate_limited",
            "meets target",
        ]
        .iter()
        .map(|c| (*c).to_string())
        .collect(),
        rows: report
            .rows
            .iter()
            .map(|r| {
                let int = |n: u64| Cell::Int(n as i64);
                vec![
                    Cell::text(if r.value == report.current {
                        format!("{} (current)", r.value)
                    } else {
                        r.value.clone()
                    }),
                    int(r.tool_calls),
                    int(r.rate_limited),
                    Cell::Num(pct(r.rate_limited, r.tool_calls)),
                    int(r.limited),
                    int(r.identities),
                    int(r.tools),
                    match &r.worst_minute {
                        Some((m, n)) => Cell::text(format!("{m} ({})", group_thousands(n))),
                        None => Cell::Text(None),
                    },
                    int(r.allow_to_rate_limited),
                    match r.meets_target {
                        Some(true) => Cell::text("yes"),
                        Some(false) => Cell::text("no"),
                        None => Cell::Text(None),
                    },
                ]
            })
            .collect(),
    };
    let verdict = match (&report.target, &report.chosen) {
        (Some(t), Some(v)) => format!(
            "<p>Target <code>{}</code>: the first value that meets it is <strong>{}</strong>.</p>",
            esc(t),
            esc(v)
        ),
        (Some(t), None) => format!(
            "<p>Target <code>{}</code>: <strong>no value tried meets it</strong>.</p>",
            esc(t)
        ),
        _ => String::new(),
    };
    let body = format!(
        "{verdict}<p>Each value replays the whole range with counters of its own, so every \
         figure equals that of a separate <code>verdict replay</code> with the value written \
         into the policy. A bar is the calls rate-limited at that value: by this limit, and by \
         the policy's other limits.</p>{}{}",
        figure(
            &chart,
            &format!("Calls rate-limited per value of {}", report.field),
            &series
        ),
        table.html("data tune")
    );
    let header = vec![
        format!(
            "Policy <code>{}</code>, limit <code>{}</code>, field <code>{}</code> (now {}).",
            esc(policy),
            esc(&report.rule),
            report.field,
            esc(&report.current)
        ),
        format!(
            "Replayed calls from {} to {}. All times are UTC.",
            esc(report.first_event.as_deref().unwrap_or("(none)")),
            esc(report.last_event.as_deref().unwrap_or("(none)"))
        ),
    ];
    Ok(Page {
        title: "Limit tuning".into(),
        header,
        sections: vec![Section {
            id: "values".into(),
            title: "Values tried".into(),
            body,
        }],
    }
    .render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use verdict_replay::TuneRow;

    fn row(value: &str, rate_limited: u64, limited: u64) -> TuneRow {
        TuneRow {
            value: value.into(),
            tool_calls: 100,
            rate_limited,
            limited,
            identities: 1,
            tools: 1,
            worst_minute: None,
            allow_to_rate_limited: limited,
            outcomes: Default::default(),
            transitions: Default::default(),
            meets_target: Some(limited == 0),
        }
    }

    #[test]
    fn one_bar_segment_per_non_zero_figure_and_the_chosen_value() {
        let report = TuneReport {
            rule: "/tools/a/limits/0".into(),
            field: "max",
            current: "5".into(),
            first_event: None,
            last_event: None,
            rows: vec![row("1", 9, 7), row("5", 3, 1), row("10", 2, 0)],
            target: Some("limited<1".into()),
            chosen: Some("10".into()),
        };
        let html = tune_report(&report, "p.json").unwrap();
        // 3 bars of this limit's calls, minus the zero one; 3 of others'.
        assert!(
            html.contains("<figure class=\"chart\" data-marks=\"5\">"),
            "{html}"
        );
        assert!(html.contains("the first value that meets it is <strong>10</strong>"));
        assert!(html.contains("5 (current)"));
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}
