//! `verdict completions SHELL` and `verdict man [--out DIR]`: generated from the clap
//! definitions, so they never drift from the real flags.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::args::Cli;
use crate::output;

/// Writes the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> Result<()> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "verdict", out);
    Ok(())
}

/// Writes `verdict.1` to `out`, or every page (`verdict.1`, `verdict-ingest.1`, ...) into `dir`.
pub fn man(dir: Option<&Path>, out: &mut dyn Write) -> Result<()> {
    let cmd = Cli::command();
    let Some(dir) = dir else {
        clap_mangen::Man::new(cmd).render(out)?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir).with_context(|| format!("writing {}", dir.display()))?;
    let mut pages = 0;
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        if e?.path().extension().is_some_and(|x| x == "1") {
            pages += 1;
        }
    }
    output::note(&format!("wrote {pages} man pages to {}", dir.display()));
    Ok(())
}
