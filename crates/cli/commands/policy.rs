//! `verdict policy check`: validates a policy file and says what it holds.

use std::io::Write;

use anyhow::Result;

use crate::commands::replay::load_policy;

/// Runs `verdict policy check FILE`: exit 0 when valid, an error (exit 2) listing every problem.
pub fn check(file: &std::path::Path, out: &mut dyn Write) -> Result<()> {
    let policy = load_policy(file)?;
    let tools = policy.tool_names().count();
    let counters = policy.counter_names().count();
    writeln!(
        out,
        "{}: valid policy (default {}, {tools} tools listed, {counters} counters)",
        file.display(),
        match policy.default_action() {
            verdict_policy::DefaultAction::Allow => "allow",
            verdict_policy::DefaultAction::Deny => "deny",
        }
    )?;
    Ok(())
}
