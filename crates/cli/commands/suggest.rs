//! `verdict suggest`: drafts least-privilege policies from history, writes them (one file, or a
//! directory of policies with the grants.toml that maps them) and prints the report explaining them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use verdict_query::{Catalog, Risk};
use verdict_replay::{grants_toml, suggest, Suggestion};

use crate::args::{Cli, SuggestArgs};
use crate::output;
use crate::settings::{self, Env};
use crate::Outcome;

/// Runs `verdict suggest`.
pub async fn run(cli: &Cli, a: &SuggestArgs, env: &Env, out: &mut dyn Write) -> Result<Outcome> {
    let opts = settings::suggest(cli, a, env)?;
    let catalog = Catalog::load(a.catalog.as_deref()).context("--catalog")?;
    let warehouse = opts.warehouse.clone();
    let task_opts = opts.clone();
    let drafts = tokio::task::spawn_blocking(move || {
        let is_destructive = |tool: &str| catalog.classify(None, tool).risk == Risk::Destructive;
        suggest(&task_opts, &is_destructive)
    })
    .await
    .context("the suggest task stopped")?
    .with_context(|| format!("suggest over {}", warehouse))?;
    for want in &opts.identities {
        let found = drafts
            .iter()
            .any(|d| &d.identity == want || d.identity_id.as_ref() == Some(want));
        if !found {
            bail!("identity {want} made no tools/call in the drafting period");
        }
    }
    if drafts.is_empty() {
        bail!("no identity made a tools/call in the drafting period");
    }
    let written = match (&a.out, a.all) {
        (Some(dir), true) => write_all(dir, &drafts)?,
        (Some(file), false) => {
            let [one] = drafts.as_slice() else {
                bail!("--out FILE takes one identity; use --all --out DIR for several");
            };
            write_policy(file, one)?;
            vec![file.display().to_string()]
        }
        (None, _) => Vec::new(),
    };
    output::policy::suggest_report(out, &drafts, &written, a.format)?;
    Ok(Outcome::Ok)
}

fn write_policy(path: &Path, s: &Suggestion) -> Result<()> {
    let mut text = serde_json::to_string_pretty(&s.policy)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// One `<identity>.json` per draft and `grants.toml` in `dir`; returns the files written.
fn write_all(dir: &Path, drafts: &[Suggestion]) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut used: Vec<String> = Vec::new();
    let mut entries = Vec::new();
    let mut written = Vec::new();
    for s in drafts {
        let name = file_name(&s.identity, &used);
        used.push(name.clone());
        let path: PathBuf = dir.join(&name);
        write_policy(&path, s)?;
        written.push(path.display().to_string());
        entries.push((s.identity.clone(), name));
    }
    let grants = dir.join("grants.toml");
    std::fs::write(&grants, grants_toml(&entries, None))
        .with_context(|| format!("writing {}", grants.display()))?;
    written.push(grants.display().to_string());
    Ok(written)
}

/// A file name for an identity: letters, digits, `.`, `-` and `_` kept, anything else `_`; a name
/// already used gets `-2`, `-3` ...
fn file_name(identity: &str, used: &[String]) -> String {
    let base: String = identity
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = match base.trim_start_matches('.') {
        "" => "identity".to_string(),
        b => b.to_string(),
    };
    let mut name = format!("{base}.json");
    let mut n = 1;
    while used.contains(&name) || name == "grants.toml" {
        n += 1;
        name = format!("{base}-{n}.json");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_file_names_are_safe_and_distinct() {
        assert_eq!(file_name("alice-laptop", &[]), "alice-laptop.json");
        assert_eq!(file_name("../etc/x y", &[]), "_etc_x_y.json");
        assert_eq!(file_name("a/b", &["a_b.json".into()]), "a_b-2.json");
        assert_eq!(file_name("", &[]), "identity.json");
    }
}
