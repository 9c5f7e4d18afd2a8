//! Test scaffolding: a temporary directory, a command runner for the real binary, and a reader
//! of the warehouse's Delta tables (their JSON log and Parquet files) that does not use
//! verdict's own code.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use arrow::array::{Array, AsArray};
use arrow::util::display::array_value_to_string;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A temporary directory that is deleted at the end of the test.
pub struct TestDir {
    dir: tempfile::TempDir,
}

/// What a command did.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\n--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl TestDir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Writes a file (creating parent directories) and returns its path.
    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Writes a gzip-compressed file.
    pub fn write_gz(&self, name: &str, content: &str) -> PathBuf {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(content.as_bytes()).unwrap();
        self.write(name, enc.finish().unwrap())
    }

    /// Writes a zstd-compressed file.
    pub fn write_zst(&self, name: &str, content: &str) -> PathBuf {
        self.write(name, zstd::encode_all(content.as_bytes(), 1).unwrap())
    }

    /// Copies the repository's `sample-logs/` into this directory.
    pub fn copy_sample_logs(&self) -> PathBuf {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-logs");
        let dst = self.join("sample-logs");
        copy_dir(&src, &dst);
        dst
    }

    /// A command running the real binary in this directory, with a clean environment.
    pub fn cmd(&self, args: &[&str]) -> TestCmd {
        let mut c = Command::new(env!("CARGO_BIN_EXE_verdict"));
        c.current_dir(self.path())
            .args(args)
            .env_remove("VERDICT_WAREHOUSE")
            .env_remove("VERDICT_ABORT_AT")
            .env_remove("VERDICT_SIGNING_KEY");
        TestCmd {
            cmd: c,
            stdin: None,
        }
    }
}

pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

pub struct TestCmd {
    pub cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl TestCmd {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    pub fn run(mut self) -> Output {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        self.cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = self.cmd.spawn().unwrap();
        if let Some(data) = self.stdin.take() {
            let mut si = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = si.write_all(&data);
            });
        }
        let out = child.wait_with_output().unwrap();
        Output {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// One row of the warehouse, every value rendered as text (null as `None`), plus its file.
pub type Row = BTreeMap<String, Option<String>>;

/// Every Parquet file under `decisions/`, sorted.
pub fn parquet_files(wh: &Path) -> Vec<PathBuf> {
    committed(wh, "decisions")
}

/// The actions of every commit of a table, in version order (each a JSON object).
pub fn log_actions(wh: &Path, table: &str) -> Vec<(u64, serde_json::Value)> {
    let log = wh.join(table).join("_delta_log");
    let Ok(entries) = std::fs::read_dir(&log) else {
        return Vec::new();
    };
    let mut commits: Vec<(u64, PathBuf)> = entries
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let v = name.strip_suffix(".json")?.parse::<u64>().ok()?;
            Some((v, p))
        })
        .collect();
    commits.sort();
    let mut out = Vec::new();
    for (v, p) in commits {
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            if !line.trim().is_empty() {
                out.push((v, serde_json::from_str(line).unwrap()));
            }
        }
    }
    out
}

/// The data files a table's log names at its latest version (adds not removed since), with the
/// rows their statistics record.
pub fn committed_with_rows(wh: &Path, table: &str) -> BTreeMap<String, u64> {
    let mut live = BTreeMap::new();
    for (_, a) in log_actions(wh, table) {
        if let Some(add) = a.get("add") {
            let rows = add["stats"]
                .as_str()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                .and_then(|s| s["numRecords"].as_u64())
                .unwrap_or(0);
            live.insert(add["path"].as_str().unwrap().to_string(), rows);
        } else if let Some(rm) = a.get("remove") {
            live.remove(rm["path"].as_str().unwrap());
        }
    }
    live
}

/// The data files of a table at its latest version.
pub fn committed(wh: &Path, table: &str) -> Vec<PathBuf> {
    committed_with_rows(wh, table)
        .into_keys()
        .map(|p| wh.join(table).join(p))
        .collect()
}

/// Rows of a table by its log's statistics (cheap enough to poll).
pub fn log_rows(wh: &Path, table: &str) -> u64 {
    committed_with_rows(wh, table).values().sum()
}

/// The log of `decisions` counts `rows` rows, its files hold exactly those rows, with no
/// `(source, event_id)` twice.
pub fn assert_log_exact(wh: &Path, rows: u64, when: &str) {
    assert_eq!(
        log_rows(wh, "decisions"),
        rows,
        "{when}: the log counts every row once"
    );
    let read = read_rows(wh);
    assert_eq!(
        read.len() as u64,
        rows,
        "{when}: the committed files hold the rows"
    );
    let mut keys: Vec<(String, String)> = read
        .iter()
        .map(|r| {
            (
                val(r, "source").unwrap_or("").to_string(),
                val(r, "event_id").unwrap_or("").to_string(),
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        keys.len() as u64,
        rows,
        "{when}: no (source, event_id) twice"
    );
}

/// Reads every row of the warehouse with the parquet crate alone, adding `day` from the path.
pub fn read_rows(wh: &Path) -> Vec<Row> {
    let mut rows = Vec::new();
    for path in parquet_files(wh) {
        let day = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("day=")
            .to_string();
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let schema = batch.schema();
            for r in 0..batch.num_rows() {
                let mut row = Row::new();
                for (i, f) in schema.fields().iter().enumerate() {
                    let col = batch.column(i);
                    let v = if col.is_null(r) {
                        None
                    } else if let Some(list) = col.as_list_opt::<i32>() {
                        let items = list.value(r);
                        let items = items.as_string::<i32>();
                        Some(
                            items
                                .iter()
                                .map(|s| s.unwrap_or(""))
                                .collect::<Vec<_>>()
                                .join(","),
                        )
                    } else {
                        Some(array_value_to_string(col, r).unwrap())
                    };
                    row.insert(f.name().clone(), v);
                }
                row.insert("day".into(), Some(day.clone()));
                rows.push(row);
            }
        }
    }
    rows
}

/// The value of a column in a row.
pub fn val<'a>(row: &'a Row, col: &str) -> Option<&'a str> {
    row.get(col)
        .unwrap_or_else(|| panic!("no column {col}"))
        .as_deref()
}

/// Lines of the quarantine files, parsed.
/// `stderr` without the line every reader starts it with (`read decisions version N`).
pub fn after_version(stderr: &str) -> &str {
    match stderr.split_once('\n') {
        Some((first, rest))
            if first.starts_with("read decisions version ")
                || first == "read an empty warehouse" =>
        {
            rest
        }
        _ => stderr,
    }
}

pub fn quarantine(wh: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for path in committed(wh, "quarantine") {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let schema = batch.schema();
            for r in 0..batch.num_rows() {
                let mut o = serde_json::Map::new();
                for (i, f) in schema.fields().iter().enumerate() {
                    let col = batch.column(i);
                    let v = if col.is_null(r) {
                        serde_json::Value::Null
                    } else if let Some(b) = col.as_boolean_opt() {
                        b.value(r).into()
                    } else if let Some(n) = col.as_primitive_opt::<arrow::datatypes::Int64Type>() {
                        n.value(r).into()
                    } else {
                        array_value_to_string(col, r).unwrap().into()
                    };
                    o.insert(f.name().clone(), v);
                }
                out.push(serde_json::Value::Object(o));
            }
        }
    }
    out.sort_by_key(|v| {
        (
            v["file"].as_str().unwrap_or("").to_string(),
            v["line"].as_i64(),
        )
    });
    out
}

/// A PolicyLayer line with the given id, timestamp and decision, and a few common fields.
pub fn pl_line(
    id: &str,
    ts: &str,
    identity: &str,
    tool: &str,
    decision: &str,
    rule: Option<&str>,
) -> String {
    let rule = rule.map_or("null".to_string(), |r| format!("\"{r}\""));
    format!(
        r#"{{"timestamp":"{ts}","request_id":"{id}","grant_id":"gr_{identity}","grant_label":"{identity}","server":"leapfrog","method":"tools/call","tool":"{tool}","arg_keys":["session_id"],"policy":"leapfrog-prod","policy_version":"12","decision":"{decision}","rule":{rule},"message":null,"upstream_status":null,"latency_ms":null,"session_id":"mcp_s_1"}}"#
    )
}
