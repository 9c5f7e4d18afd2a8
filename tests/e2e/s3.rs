//! The warehouse in an S3 bucket: a local S3-compatible server (`moto_server`, from the PyPI
//! package `moto[server]`, which `.ci/run` installs) is started on 127.0.0.1 for each test and
//! stopped after it. Where it is not installed the tests say so and return.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::collect::{files_survive_sigkill, free_port};
use crate::util::TestDir;

pub(crate) struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts the server with a bucket `verdict`, or `None` (with the reason printed) when
    /// `moto_server` is not installed.
    pub(crate) fn start() -> Option<Moto> {
        let port = free_port();
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("skipping the S3 test: moto_server is not installed ({e}); pip install 'moto[server]'");
                return None;
            }
        };
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if moto
                .request("PUT", "/verdict")
                .is_some_and(|s| s.starts_with("HTTP/1.1 200"))
            {
                return Some(moto);
            }
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn request(&self, method: &str, path: &str) -> Option<String> {
        self.request_with(method, path, b"")
    }

    /// Sends one request with a body (an object written behind verdict's back).
    pub fn request_with(&self, method: &str, path: &str, body: &[u8]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        )
        .ok()?;
        s.write_all(body).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// The environment that points verdict at the server.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", format!("http://127.0.0.1:{}", self.port)),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

pub fn run(t: &TestDir, env: &[(String, String)], args: &[&str]) -> crate::util::Output {
    let mut c = t.cmd(args);
    for (k, v) in env {
        c = c.env(k, v);
    }
    c.run()
}

const S3: &str = "s3://verdict/audit";

#[test]
fn s3_ingest_report_replay_time_travel_compact_vacuum() {
    let Some(moto) = Moto::start() else { return };
    let env = moto.env();
    let t = TestDir::new();
    let logs = t.copy_sample_logs();
    let pl = logs.join("policylayer");
    let pl = pl.to_str().unwrap();
    let cand = logs.join("policies/candidate.json");
    let cand = cand.to_str().unwrap();

    // The same ingest into a local warehouse and into the bucket answers the same.
    let local = t.cmd(&["ingest", pl]).run();
    assert_exit!(local, 0);
    let out = run(&t, &env, &["-w", S3, "ingest", pl, "--format", "json"]);
    assert_exit!(out, 0);
    assert_eq!(out.json()["rows_written"], 617, "{}", out.stdout);
    let report = |w: &str, extra: &[&str]| {
        let mut a = vec![
            "-w", w, "report", "volume", "--by", "identity", "--format", "csv",
        ];
        a.extend(extra);
        let out = run(&t, &env, &a);
        assert_exit!(out, 0);
        out.stdout
    };
    let local_volume = report("verdict-warehouse", &[]);
    assert_eq!(report(S3, &[]), local_volume);
    assert_eq!(report(S3, &["--no-rollup"]), local_volume);
    let replay = |w: &str| {
        let out = run(
            &t,
            &env,
            &["-w", w, "replay", "--policy", cand, "--format", "json"],
        );
        assert_exit!(out, 0);
        let mut v = out.json();
        v.as_object_mut().unwrap().remove("table_version");
        v
    };
    assert_eq!(replay(S3), replay("verdict-warehouse"));
    // Nothing was written on local disk for the bucket's warehouse.
    assert!(!t.join("s3:").exists());

    // A second commit; time travel reads the first; compact and vacuum keep the rows.
    t.write(
        "more.jsonl",
        (0..20)
            .map(|i| format!("{}\n", crate::collect::line(&format!("m{i}"), i)))
            .collect::<String>(),
    );
    assert_exit!(run(&t, &env, &["-w", S3, "ingest", "more.jsonl"]), 0);
    let count = |extra: &[&str]| {
        let mut a = vec![
            "-w",
            S3,
            "sql",
            "SELECT count(*) AS n FROM decisions",
            "--format",
            "csv",
        ];
        a.extend(extra);
        let out = run(&t, &env, &a);
        assert_exit!(out, 0);
        out.stdout
    };
    assert_eq!(count(&[]), "n\n637\n");
    assert_eq!(count(&["--as-of", "1"]), "n\n617\n");

    // Bad lines are quarantined once: the second run finds their keys in the bucket's quarantine
    // (read by range, the key column only).
    t.write(
        "bad.jsonl",
        format!("{}\nnot json\n{{\"oops\":\n", crate::collect::line("m0", 0)),
    );
    for (quarantined, already) in [(2, 0), (0, 2)] {
        let out = run(
            &t,
            &env,
            &["-w", S3, "ingest", "bad.jsonl", "--format", "json"],
        );
        assert_exit!(out, 0);
        let v = out.json();
        assert_eq!(
            (v["quarantined"].as_u64(), v["already_quarantined"].as_u64()),
            (Some(quarantined), Some(already)),
            "{}",
            out.stdout
        );
    }
    assert_eq!(count(&[]), "n\n637\n");
    let c = run(&t, &env, &["-w", S3, "compact"]);
    assert_exit!(c, 0);
    assert_exit!(run(&t, &env, &["-w", S3, "vacuum", "--retention", "0s"]), 0);
    assert_eq!(count(&[]), "n\n637\n");
    let h = run(&t, &env, &["-w", S3, "history", "--format", "json"]);
    assert_exit!(h, 0);
    assert!(h.json().as_array().unwrap().len() >= 4, "{}", h.stdout);
    assert_exit!(run(&t, &env, &["-w", S3, "doctor"]), 0);
}

/// The files crash test (20+ SIGKILLs while a writer appends and rotates) with the warehouse in
/// the bucket.
#[test]
fn s3_collect_files_survive_sigkill() {
    let Some(moto) = Moto::start() else { return };
    let mut env = moto.env();
    env.push(("VERDICT_WAREHOUSE".into(), format!("{S3}-collect")));
    let t = TestDir::new();
    let ids = || {
        let mut c = t.cmd(&[
            "sql",
            "SELECT event_id FROM decisions ORDER BY 1",
            "--format",
            "csv",
        ]);
        for (k, v) in &env {
            c = c.env(k, v);
        }
        let out = c.run();
        if out.code != Some(0) {
            return Vec::new();
        }
        out.stdout.lines().skip(1).map(str::to_string).collect()
    };
    files_survive_sigkill(&t, &env, &ids);
}
