//! Test scaffolding: a temporary directory, a command runner for the real binary, and a reader
//! of the warehouse's Parquet files that does not use verdict's own code.

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
            .env_remove("VERDICT_ABORT_AT");
        TestCmd {
            cmd: c,
            stdin: None,
        }
    }
}

fn copy_dir(src: &Path, dst: &Path) {
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
    let mut out = Vec::new();
    let Ok(days) = std::fs::read_dir(wh.join("decisions")) else {
        return out;
    };
    for d in days {
        let d = d.unwrap();
        for f in std::fs::read_dir(d.path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
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
pub fn quarantine(wh: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(wh.join("quarantine")) else {
        return out;
    };
    let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    for p in paths {
        for line in std::fs::read_to_string(p).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
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
