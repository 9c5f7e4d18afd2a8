//! The interactive SQL shell: `verdict sql` on a terminal with no query. Line editing and
//! history (rustyline; the history lives in the user's data directory), statements spanning
//! lines until a `;`, completion of table, column and function names, and dot commands:
//! `.tables`, `.schema [TABLE]`, `.timer on|off`, `.mode table|csv|json|ndjson`,
//! `.output [FILE]`, `.help`, `.quit`.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{anyhow, Context as _, Result};
use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use verdict_query::{Engine, OutputFormat, PrintOptions};

use crate::output;

const PROMPT: &str = "verdict> ";
const MORE: &str = "     ...> ";
const HELP: &str = "\
Statements end with `;` and may span lines. Tab completes table, column and function names.
.tables                 list the tables
.schema [TABLE]         the columns of a table (all tables without one)
.timer on|off           print how long each statement took
.mode table|csv|json|ndjson
.output [FILE]          write results to FILE (no FILE: back to the terminal)
.help                   this text
.quit                   leave (also Ctrl-D)";

/// Where the shell's state stands between statements.
struct Shell<'a> {
    engine: &'a Engine,
    mode: OutputFormat,
    timer: bool,
    file: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    width: Option<u16>,
}

/// Runs the shell until `.quit` or end of input. `history` is the history file, if any.
pub async fn run(engine: &Engine, history: Option<PathBuf>, out: &mut dyn Write) -> Result<()> {
    let words = names(engine).await?;
    let mut editor: Editor<Words, FileHistory> =
        Editor::new().context("starting the line editor")?;
    editor.set_helper(Some(Words(words)));
    if let Some(h) = &history {
        // A first run has no history yet.
        let _ = editor.load_history(h);
    }
    let mut shell = Shell {
        engine,
        mode: OutputFormat::Table,
        timer: false,
        file: None,
        width: terminal_size::terminal_size().map(|(w, _)| w.0),
    };
    writeln!(
        out,
        "verdict {} SQL shell; .help for help, .quit to leave",
        env!("CARGO_PKG_VERSION")
    )?;
    out.flush()?;
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { PROMPT } else { MORE };
        let line = match editor.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading a line"),
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('.') {
            let _ = editor.add_history_entry(trimmed);
            match shell.dot(trimmed, out).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => output::error(&e),
            }
            continue;
        }
        if !buffer.is_empty() {
            buffer.push('\n');
        }
        buffer.push_str(&line);
        if !buffer.trim_end().ends_with(';') {
            continue;
        }
        let statement = std::mem::take(&mut buffer);
        let _ = editor.add_history_entry(statement.trim());
        if let Err(e) = shell.statement(statement.trim(), out).await {
            if output::is_broken_pipe(&e) {
                return Err(e);
            }
            output::error(&e);
        }
    }
    if let Some(h) = &history {
        if let Some(dir) = h.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = editor.save_history(h) {
            output::note(&format!(
                "could not save the history to {}: {e}",
                h.display()
            ));
        }
    }
    Ok(())
}

impl Shell<'_> {
    /// Runs one statement and prints its result in the current mode.
    async fn statement(&mut self, sql: &str, out: &mut dyn Write) -> Result<()> {
        let started = Instant::now();
        let stream = self.engine.sql_stream(sql.trim_end_matches(';')).await?;
        let mut opts = PrintOptions::default();
        let printed = match &mut self.file {
            Some((_, w)) => verdict_query::write_stream(stream, self.mode, w, &opts).await?,
            None => {
                opts.width = self.width;
                opts.max_rows = Some(crate::settings::TERMINAL_MAX_ROWS);
                opts.color = output::style().color;
                verdict_query::write_stream(stream, self.mode, out, &opts).await?
            }
        };
        if self.timer {
            writeln!(
                out,
                "{} rows in {:.3} s",
                output::thousands(printed.rows + printed.omitted),
                started.elapsed().as_secs_f64()
            )?;
            out.flush()?;
        }
        Ok(())
    }

    /// Runs a dot command; true means leave.
    async fn dot(&mut self, line: &str, out: &mut dyn Write) -> Result<bool> {
        let mut parts = line.split_whitespace();
        let command = parts.next().unwrap_or_default();
        let arg = parts.next();
        match (command, arg) {
            (".quit" | ".exit", _) => return Ok(true),
            (".help", _) => writeln!(out, "{HELP}")?,
            (".tables", _) => {
                self.statement(
                    "SELECT table_name AS name FROM information_schema.tables \
                     WHERE table_schema = 'public' ORDER BY 1",
                    out,
                )
                .await?
            }
            (".schema", Some(table)) => {
                let sql = format!(
                    "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
                     WHERE table_schema = 'public' AND table_name = '{}' ORDER BY ordinal_position",
                    table.replace('\'', "''")
                );
                self.statement(&sql, out).await?
            }
            (".schema", None) => {
                self.statement(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns \
                     WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
                    out,
                )
                .await?
            }
            (".timer", Some("on")) => self.timer = true,
            (".timer", Some("off")) => self.timer = false,
            (".mode", Some(mode)) => self.mode = mode.parse().map_err(|e: String| anyhow!(e))?,
            (".output", Some(path)) => {
                let file =
                    std::fs::File::create(path).with_context(|| format!("creating {path}"))?;
                self.file = Some((PathBuf::from(path), std::io::BufWriter::new(file)));
            }
            (".output", None) => {
                if let Some((path, mut w)) = self.file.take() {
                    w.flush()
                        .with_context(|| format!("writing {}", path.display()))?;
                }
            }
            _ => return Err(anyhow!("unknown command `{line}`; .help lists them")),
        }
        out.flush()?;
        Ok(false)
    }
}

/// Table, column and function names, and SQL keywords, for completion.
async fn names(engine: &Engine) -> Result<BTreeSet<String>> {
    let mut words: BTreeSet<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
    for sql in [
        "SELECT table_name FROM information_schema.tables",
        "SELECT column_name FROM information_schema.columns",
        "SELECT routine_name FROM information_schema.routines",
    ] {
        let out = engine.sql(sql).await?;
        for b in &out.batches {
            let col = arrow::compute::cast(b.column(0), &DataType::Utf8)?;
            let col = col.as_string::<i32>();
            for i in 0..col.len() {
                if !col.is_null(i) {
                    words.insert(col.value(i).to_string());
                }
            }
        }
    }
    Ok(words)
}

const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "GROUP", "BY", "ORDER", "LIMIT", "HAVING", "DISTINCT", "COUNT",
    "AND", "OR", "NOT", "NULL", "IS", "AS", "ON", "JOIN", "LEFT", "WITH", "DESC", "ASC", "BETWEEN",
    "LIKE", "IN", "CASE", "WHEN", "THEN", "ELSE", "END", "EXPLAIN", "DESCRIBE",
];

/// The completion helper: completes the word under the cursor from the known names.
struct Words(BTreeSet<String>);

impl Completer for Words {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        Ok((start, complete_word(&self.0, word)))
    }
}

/// The names that start with `word` (case-insensitively), each once.
fn complete_word(words: &BTreeSet<String>, word: &str) -> Vec<Pair> {
    let lower = word.to_lowercase();
    words
        .iter()
        .filter(|w| w.to_lowercase().starts_with(&lower))
        .map(|w| Pair {
            display: w.clone(),
            replacement: w.clone(),
        })
        .collect()
}

impl Hinter for Words {
    type Hint = String;
}

impl Highlighter for Words {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Validator for Words {}

impl Helper for Words {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_is_case_insensitive_and_keeps_the_name() {
        let words: BTreeSet<String> = ["identity", "ingest_txn", "SELECT", "tool_risk"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got: Vec<String> = complete_word(&words, "iDen")
            .into_iter()
            .map(|p| p.replacement)
            .collect();
        assert_eq!(got, ["identity"]);
        let got: Vec<String> = complete_word(&words, "sel")
            .into_iter()
            .map(|p| p.replacement)
            .collect();
        assert_eq!(got, ["SELECT"]);
        assert_eq!(complete_word(&words, "I").len(), 2);
    }
}
