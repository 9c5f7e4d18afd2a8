//! The printers of the policy-intelligence commands: `suggest`, `policy diff` and `tune`.

use std::io::Write;

use anyhow::Result;
use verdict_replay::{DiffReport, Suggestion, TuneReport};

use super::{pct, right_align, table, thousands};
use crate::args::{DiffFormat, SummaryFormat};

/// Writes what `suggest` drafted: each policy's explanation, the holdout, and the files written
/// (the policy itself when no file was).
pub fn suggest_report(
    w: &mut dyn Write,
    drafts: &[Suggestion],
    written: &[String],
    format: SummaryFormat,
) -> Result<()> {
    if format == SummaryFormat::Json {
        let v = serde_json::json!({"suggestions": drafts, "written": written});
        serde_json::to_writer_pretty(&mut *w, &v)?;
        writeln!(w)?;
        return Ok(());
    }
    for s in drafts {
        let from = s.drafted_from.as_deref().unwrap_or("the first event");
        let until = s.drafted_until.as_deref().unwrap_or("the last event");
        writeln!(
            w,
            "suggested policy for {} from {} calls ({from} .. {until})",
            s.identity,
            thousands(s.tool_calls)
        )?;
        let mut t = table();
        t.set_header(vec![
            "tool",
            "calls",
            "recorded",
            "policy",
            "peak m/h/d",
            "why",
        ]);
        for l in &s.tools {
            let recorded: Vec<String> = l
                .decisions
                .iter()
                .map(|(d, n)| format!("{d} {}", thousands(*n)))
                .collect();
            let peak = |name: &str| {
                l.peaks
                    .iter()
                    .find(|p| p.window == name)
                    .map_or("0".to_string(), |p| thousands(p.peak))
            };
            let policy = match (&l.limit, l.listed, l.approval) {
                (_, false, _) => "default deny".to_string(),
                (Some((_, win, max)), true, approval) => {
                    format!("{}{max}/{win}", if approval { "approval, " } else { "" })
                }
                (None, true, true) => "approval".to_string(),
                (None, true, false) => "allowed".to_string(),
            };
            t.add_row(vec![
                l.tool.clone(),
                thousands(l.calls),
                recorded.join(", "),
                policy,
                format!("{}/{}/{}", peak("minute"), peak("hour"), peak("day")),
                l.why.clone(),
            ]);
        }
        right_align(&mut t, 1..2);
        writeln!(w, "{t}")?;
        if let Some(h) = &s.holdout {
            writeln!(
                w,
                "holdout {} .. {}: {} calls replayed, {} would have broken",
                h.from,
                h.until,
                thousands(h.tool_calls),
                thousands(h.total_broken)
            )?;
            if !h.broken.is_empty() {
                let mut t = table();
                t.set_header(vec![
                    "tool",
                    "allow->deny",
                    "allow->rate_limited",
                    "allow->approval_required",
                ]);
                for (tool, by) in &h.broken {
                    let n = |k: &str| thousands(by.get(k).copied().unwrap_or(0));
                    t.add_row(vec![
                        tool.clone(),
                        n("allow->deny"),
                        n("allow->rate_limited"),
                        n("allow->approval_required"),
                    ]);
                }
                right_align(&mut t, 1..4);
                writeln!(w, "{t}")?;
            }
        }
        if written.is_empty() {
            writeln!(w, "{}", serde_json::to_string_pretty(&s.policy)?)?;
        }
        writeln!(w)?;
    }
    for f in written {
        writeln!(w, "wrote {f}")?;
    }
    Ok(())
}

/// Writes a policy diff.
pub fn diff_report(
    w: &mut dyn Write,
    r: &DiffReport,
    (old, new): &(String, String),
    format: DiffFormat,
) -> Result<()> {
    if format == DiffFormat::Json {
        let v = serde_json::json!({"old": old, "new": new, "diff": r});
        serde_json::to_writer_pretty(&mut *w, &v)?;
        writeln!(w)?;
        return Ok(());
    }
    let md = format == DiffFormat::Markdown;
    let history = match r.history_calls {
        Some(n) => format!(", calls counted over {} recorded tool calls", thousands(n)),
        None => String::new(),
    };
    if md {
        writeln!(w, "### Policy diff: `{old}` -> `{new}`\n")?;
        writeln!(w, "{} changes{history}.\n", r.changes)?;
        writeln!(
            w,
            "| tool | access | change | rule | detail | calls | flags |"
        )?;
        writeln!(w, "|---|---|---|---|---|---:|---|")?;
    } else {
        writeln!(
            w,
            "policy diff {old} -> {new}: {} changes{history}",
            r.changes
        )?;
    }
    let mut t = table();
    t.set_header(vec![
        "tool", "access", "change", "rule", "detail", "calls", "flags",
    ]);
    let mut unchanged = Vec::new();
    for tool in &r.tools {
        if tool.changes.is_empty() {
            unchanged.push(format!("{} ({})", tool.tool, tool.after));
            continue;
        }
        let access = if tool.before == tool.after {
            tool.after.to_string()
        } else {
            format!("{} -> {}", tool.before, tool.after)
        };
        for c in &tool.changes {
            let mut flags = Vec::new();
            if c.new_access {
                flags.push("new access");
            }
            if c.destructive_access {
                flags.push("DESTRUCTIVE");
            }
            if c.unexercised {
                flags.push("UNEXERCISED: no recorded call");
            }
            let calls = c.calls.map_or("-".to_string(), thousands);
            let cells = [
                tool.tool.clone(),
                access.clone(),
                c.kind.to_string(),
                c.rule.clone(),
                c.detail.clone(),
                calls,
                flags.join(", "),
            ];
            if md {
                let esc: Vec<String> = cells.iter().map(|x| x.replace('|', "\\|")).collect();
                writeln!(w, "| {} |", esc.join(" | "))?;
            } else {
                t.add_row(cells.to_vec());
            }
        }
    }
    if !md {
        right_align(&mut t, 5..6);
        writeln!(w, "{t}")?;
    }
    if !unchanged.is_empty() {
        writeln!(
            w,
            "{}unchanged: {}",
            if md { "\n" } else { "" },
            unchanged.join(", ")
        )?;
    }
    if !r.gates.is_empty() {
        writeln!(w)?;
        for g in &r.gates {
            let state = if g.tripped { "TRIPPED" } else { "ok" };
            writeln!(w, "gate {}: {state} ({})", g.gate, g.detail)?;
        }
    }
    Ok(())
}

/// Writes a tuning report.
pub fn tune_report(
    w: &mut dyn Write,
    r: &TuneReport,
    policy: &str,
    format: SummaryFormat,
) -> Result<()> {
    if format == SummaryFormat::Json {
        let v = serde_json::json!({"policy": policy, "tune": r});
        serde_json::to_writer_pretty(&mut *w, &v)?;
        writeln!(w)?;
        return Ok(());
    }
    writeln!(
        w,
        "tune {} {} of {policy} (now {}), {} .. {}, counters start empty",
        r.rule,
        r.field,
        r.current,
        r.first_event.as_deref().unwrap_or("-"),
        r.last_event.as_deref().unwrap_or("-"),
    )?;
    let mut t = table();
    let mut header = vec![
        r.field.to_string(),
        "calls".into(),
        "rate_limited".into(),
        "share".into(),
        "by this limit".into(),
        "identities".into(),
        "tools".into(),
        "worst minute".into(),
        "allow->rate_limited".into(),
    ];
    if r.target.is_some() {
        header.push("meets target".into());
    }
    t.set_header(header);
    for row in &r.rows {
        let mut cells = vec![
            row.value.clone(),
            thousands(row.tool_calls),
            thousands(row.rate_limited),
            pct(row.rate_limited, row.tool_calls),
            thousands(row.limited),
            thousands(row.identities),
            thousands(row.tools),
            row.worst_minute
                .as_ref()
                .map_or("-".to_string(), |(m, n)| format!("{m} ({})", thousands(*n))),
            thousands(row.allow_to_rate_limited),
        ];
        if let Some(m) = row.meets_target {
            cells.push(if m { "yes" } else { "no" }.into());
        }
        t.add_row(cells);
    }
    right_align(&mut t, 1..7);
    right_align(&mut t, 8..9);
    writeln!(w, "{t}")?;
    if let Some(target) = &r.target {
        match &r.chosen {
            Some(v) => writeln!(
                w,
                "target {target}: {} {v} is the first value that meets it",
                r.field
            )?,
            None => writeln!(w, "target {target}: no value tried meets it")?,
        }
    }
    Ok(())
}
