//! `verdict collect` and `verdict compact`: the real binary follows files and receives HTTP
//! while tests rotate, truncate, delete, corrupt checkpoints and SIGKILL it; the warehouse must
//! end with every line exactly once. Every wait polls with a deadline.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    assert_log_exact, committed, log_rows, parquet_files, pl_line, quarantine, read_rows, val,
    TestDir,
};

/// A small seeded generator (xorshift64*), so that kill moments are random but reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Polls `f` every 20 ms until it holds; panics with `what` after `secs` seconds.
pub(crate) fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn line(id: &str, i: usize) -> String {
    let ts = format!(
        "2026-11-0{}T10:{:02}:{:02}.{:03}Z",
        2 + i % 2,
        (i / 60) % 60,
        i % 60,
        i % 1000
    );
    pl_line(
        id,
        &ts,
        ["alice", "bob", "carol"][i % 3],
        "navigate",
        "allow",
        None,
    )
}

fn event_ids(wh: &Path) -> Vec<String> {
    let mut ids: Vec<String> = read_rows(wh)
        .iter()
        .map(|r| val(r, "event_id").unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// Rows in the warehouse, by the log of `decisions` (cheap enough to poll).
fn manifest_rows(wh: &Path) -> u64 {
    log_rows(wh, "decisions")
}

fn assert_manifest_exact(wh: &Path, rows: u64) {
    assert_log_exact(wh, rows, "collect");
}

/// The upload token every collector of these tests accepts (named `test`).
pub(crate) const TOKEN: &str = "test-token-0123456789";

/// A running collector whose stdout and stderr go to files in the test directory.
pub(crate) struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Running {
    pub(crate) fn start(t: &TestDir, args: &[&str]) -> Self {
        Self::start_with(t, args, &[])
    }

    /// As [`Running::start`], with more environment variables.
    pub(crate) fn start_with(t: &TestDir, args: &[&str], env: &[(String, String)]) -> Self {
        let mut cmd = t.cmd(&[&["collect"], args].concat()).cmd;
        cmd.env("VERDICT_COLLECT_TOKENS", format!("test:{TOKEN}"));
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        Self::spawn(t, cmd)
    }

    /// Starts `cmd` (a `verdict collect` command) with its output in files.
    pub(crate) fn spawn(t: &TestDir, mut cmd: std::process::Command) -> Self {
        let n = std::fs::read_dir(t.path()).unwrap().count();
        let stdout = t.join(&format!("collect-{n}.out"));
        let stderr = t.join(&format!("collect-{n}.err"));
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout).unwrap())
            .stderr(File::create(&stderr).unwrap());
        Self {
            child: cmd.spawn().unwrap(),
            stdout,
            stderr,
        }
    }

    /// Waits until the collector has installed its signal handlers and started its sources.
    pub(crate) fn started(self) -> Self {
        wait_for(20, "the collector to start", || {
            let e = self.stderr();
            e.contains("following files") || e.contains("listening")
        });
        self
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit code and stdout.
    pub(crate) fn term(mut self) -> (Option<i32>, String, String) {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the collector did not stop on SIGTERM:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (
            status.code(),
            std::fs::read_to_string(&self.stdout).unwrap(),
            self.stderr(),
        )
    }

    pub(crate) fn exit_within(mut self, secs: u64) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s.code(), self.stderr());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the collector did not exit:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub(crate) fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` different free ports on 127.0.0.1: every probe is held until all are known, so that two
/// of them cannot be the same port released and handed out again.
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// An HTTP answer: status, headers (names lower-cased), body.
pub(crate) type Response = (u16, Vec<(String, String)>, String);

/// One HTTP/1.1 exchange over a fresh connection: (status, headers lower-cased, body). Sends
/// the test token unless the headers hold an `Authorization` of their own (or `Authorization:`
/// with an empty value, which sends none).
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    exchange(s, method, path, headers, body)
}

/// One HTTP/1.1 exchange over an open stream (plain or TLS); see [`http`].
pub(crate) fn exchange(
    mut s: impl Read + Write,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    {
        req.push_str(&format!("Authorization: Bearer {TOKEN}\r\n"));
    }
    for (k, v) in headers {
        if !v.is_empty() {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    // A TLS peer may close without close_notify after a full answer: keep what was read.
    if let Err(e) = s.read_to_end(&mut resp) {
        if resp.is_empty() {
            return Err(e);
        }
    }
    let text = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no complete response"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, body.to_string()))
}

pub(crate) fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The value of one metric in `/metrics`.
pub(crate) fn metric(port: u16, name: &str) -> Option<u64> {
    let (_, _, body) = http(port, "GET", "/metrics", &[], b"").ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
}

/// A writer appends lines to logs/app.log and rotates it (rename, copy-truncate, rename then
/// gzip) while the collector is SIGKILLed at 20+ seeded random moments and restarted; after a
/// clean final run every line is in the warehouse exactly once.
#[test]
fn collect_files_survive_sigkill_and_rotation() {
    let t = TestDir::new();
    let wh = t.join("verdict-warehouse");
    files_survive_sigkill(&t, &[], &|| event_ids(&wh));
    assert_manifest_exact(&wh, 2400);
}

/// A writer appends 2,400 lines and rotates (rename, copy-truncate, gzip) while the collector
/// is SIGKILLed 20+ times; after each kill the committed rows (`ids`) hold no row twice, and at
/// the end every line exactly once. `env` points at the warehouse (a local one by default).
pub(crate) fn files_survive_sigkill(
    t: &TestDir,
    env: &[(String, String)],
    ids: &dyn Fn() -> Vec<String>,
) {
    const LINES: usize = 2400;
    std::fs::create_dir_all(t.join("logs")).unwrap();
    let logs = t.join("logs");
    let writer = std::thread::spawn(move || {
        let app = logs.join("app.log");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&app)
            .unwrap();
        for i in 0..LINES {
            f.write_all(format!("{}\n", line(&format!("w{i:05}"), i)).as_bytes())
                .unwrap();
            if i % 10 == 9 {
                std::thread::sleep(Duration::from_millis(25));
            }
            if i % 200 == 199 {
                let k = i / 200;
                let rotated = logs.join(format!("app.log.{k}"));
                match k % 3 {
                    0 => {
                        std::fs::rename(&app, &rotated).unwrap();
                        f = OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&app)
                            .unwrap();
                    }
                    1 => {
                        std::fs::copy(&app, &rotated).unwrap();
                        f.set_len(0).unwrap();
                    }
                    _ => {
                        std::fs::rename(&app, &rotated).unwrap();
                        f = OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&app)
                            .unwrap();
                        let text = std::fs::read(&rotated).unwrap();
                        let gz = logs.join(format!("app.log.{k}.gz"));
                        let mut enc =
                            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                        enc.write_all(&text).unwrap();
                        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
                        std::fs::remove_file(&rotated).unwrap();
                    }
                }
            }
        }
    });
    let args = [
        "--follow",
        "logs/app.log*",
        "--commit-interval",
        "100ms",
        "--poll-interval",
        "20ms",
    ];
    let mut rng = Rng(0x5eed_c011_ec70_0001);
    let mut kills = 0;
    while kills < 20 || !writer.is_finished() {
        let run = Running::start_with(t, &args, env);
        std::thread::sleep(Duration::from_millis(rng.range(80, 400)));
        run.kill();
        kills += 1;
        // Whatever is on disk is whole commits: no row twice.
        let ids = ids();
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "after kill {kills}: a row is doubled"
        );
        assert!(kills < 200, "the writer never finished");
    }
    writer.join().unwrap();
    let run = Running::start_with(t, &args, env).started();
    wait_for(60, "every line committed", || ids().len() >= LINES);
    let (code, stdout, stderr) = run.term();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("collect into "), "{stdout}");
    let expected: Vec<String> = (0..LINES).map(|i| format!("w{i:05}")).collect();
    assert_eq!(
        ids(),
        expected,
        "every line exactly once after {kills} kills"
    );
}

/// A client posts batches (retrying on 429/503, 500 and connection errors) while the receiver
/// is SIGKILLed and restarted 20+ times; every batch answered 2xx is stored exactly once, and
/// batches posted again after their 2xx are not doubled.
#[test]
fn collect_http_survives_sigkill_with_retrying_clients() {
    http_sigkill(&[]);
}

/// The same with `--ack spool`: a batch is answered once it is synced to the spool, before its
/// commit, so kills land between answers and commits; the next start commits what the spool
/// holds, and every batch answered 200 is stored exactly once all the same.
#[test]
fn collect_http_spool_survives_sigkill_with_retrying_clients() {
    http_sigkill(&["--ack", "spool"]);
}

fn http_sigkill(extra: &[&str]) {
    const BATCHES: usize = 60;
    const PER: usize = 40;
    let spool = extra.contains(&"spool");
    let t = TestDir::new();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "--listen",
        listen.as_str(),
        "--commit-interval",
        "100ms",
        "--max-pending",
        "400",
    ];
    args.extend_from_slice(extra);
    let args = args;
    // Answers with 200 so far: a run that saw none makes the next window longer.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let answered_in_client = answered.clone();
    let client = std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut duplicates_seen = 0;
        for b in 0..BATCHES {
            let body: String = (0..PER)
                .map(|i| format!("{}\n", line(&format!("b{b:03}-{i:02}"), b * PER + i)))
                .collect();
            // Every fifth batch is sent again after its 2xx, as a client that lost the answer would.
            let sends = if b % 5 == 0 { 2 } else { 1 };
            for s in 0..sends {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    assert!(Instant::now() < deadline, "batch {b} never accepted");
                    match http(
                        port,
                        "POST",
                        "/ingest?format=policylayer",
                        &[],
                        body.as_bytes(),
                    ) {
                        Ok((200, _, resp)) => {
                            answered_in_client.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            let v: serde_json::Value = serde_json::from_str(&resp).unwrap();
                            assert_eq!(v["records"], PER as u64);
                            if spool {
                                // Answered before dedup: its duplicates are not known yet.
                                assert_eq!(v["spooled"], true, "{resp}");
                                assert_eq!(v["quarantined"], 0, "{resp}");
                                duplicates_seen += s;
                            } else if s == 1 {
                                assert_eq!(v["duplicates"], PER as u64, "a resend adds nothing");
                                duplicates_seen += 1;
                            }
                            break;
                        }
                        Ok((429 | 503, h, _)) => {
                            assert_eq!(header(&h, "retry-after"), Some("1"));
                            std::thread::sleep(Duration::from_millis(30));
                        }
                        Ok((500, _, _)) | Err(_) => std::thread::sleep(Duration::from_millis(30)),
                        Ok((code, _, resp)) => panic!("unexpected {code}: {resp}"),
                    }
                }
            }
            acked.push(b);
        }
        (acked, duplicates_seen)
    });
    let mut rng = Rng(0x5eed_0000_4477_0002);
    let mut kills = 0;
    // Each kill lands at a random moment after the receiver is listening (a run killed before it
    // listens tests nothing about the receiver; start-up crashes are covered by the file test).
    // On a loaded machine a commit can take longer than the window: a run that answered nothing
    // doubles the next window (up to 8x), so the client always progresses and the kills still
    // land mid-commit.
    let mut stretch = 1;
    while kills < 20 || !client.is_finished() {
        let before = answered.load(std::sync::atomic::Ordering::SeqCst);
        let run = Running::start(&t, &args).started();
        std::thread::sleep(Duration::from_millis(stretch * rng.range(100, 450)));
        run.kill();
        kills += 1;
        stretch = if answered.load(std::sync::atomic::Ordering::SeqCst) == before {
            (stretch * 2).min(8)
        } else {
            1
        };
        assert!(
            kills < 300,
            "the client never finished: {} answers after {kills} kills",
            answered.load(std::sync::atomic::Ordering::SeqCst)
        );
    }
    let (acked, duplicates_seen) = client.join().unwrap();
    assert_eq!(acked.len(), BATCHES);
    assert_eq!(duplicates_seen, BATCHES / 5);
    // A clean run recovers anything cut short and stops.
    let run = Running::start(&t, &args).started();
    wait_for(20, "the receiver to be healthy", || {
        http(port, "GET", "/healthz", &[], b"").is_ok_and(|r| r.0 == 200)
    });
    let (code, _, stderr) = run.term();
    assert_eq!(code, Some(0), "{stderr}");
    let wh = t.join("verdict-warehouse");
    if spool {
        // Everything answered is committed now: the spool keeps no file of committed requests.
        let left: Vec<_> = std::fs::read_dir(wh.join("_verdict/collect/spool"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    let mut expected: Vec<String> = acked
        .iter()
        .flat_map(|b| (0..PER).map(move |i| format!("b{b:03}-{i:02}")))
        .collect();
    expected.sort();
    assert_eq!(
        event_ids(&wh),
        expected,
        "each acknowledged record once, after {kills} kills"
    );
    assert_manifest_exact(&wh, (BATCHES * PER) as u64);
}

/// `--ack spool` answers before the commit: requests answered by a collector killed before any
/// commit are committed by the next start, with their sender and their bad line, once each; a
/// request past its quarantine budget is refused before it is spooled; the spool's files go
/// once committed.
#[test]
fn collect_spool_answers_before_the_commit_and_the_next_start_commits() {
    let t = TestDir::new();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let spool_dir = t.join("verdict-warehouse/_verdict/collect/spool");
    let spool_files = || std::fs::read_dir(&spool_dir).map_or(0, |d| d.count());
    // A commit only after an hour or a million rows: none before the kill.
    let run = Running::start(
        &t,
        &[
            "--listen",
            &listen,
            "--ack",
            "spool",
            "--commit-interval",
            "1h",
            "--commit-rows",
            "1000000",
        ],
    )
    .started();
    let batch = |k: usize| -> String {
        (0..5)
            .map(|i| format!("{}\n", line(&format!("s{k}-{i}"), k * 5 + i)))
            .collect()
    };
    let (code, _, resp) = http(
        port,
        "POST",
        "/ingest?format=policylayer",
        &[],
        batch(0).as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (code, resp.as_str()),
        (200, "{\"records\":5,\"quarantined\":0,\"spooled\":true}\n")
    );
    // A secret in a record's arguments and in a bad line: replaced before the spool.
    let secret = line("s1-0", 5).replace(
        "\"arg_keys\"",
        "\"args\":{\"password\":\"hunter2-spool\"},\"arg_keys\"",
    );
    let with_bad = format!(
        "{secret}\n{}{{\"not\":\"a decision\",\"token\":\"hunter3-spool\"}}\n",
        batch(1).split_once('\n').unwrap().1
    );
    let (code, _, resp) = http(
        port,
        "POST",
        "/ingest?format=policylayer",
        &[],
        with_bad.as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (code, resp.as_str()),
        (200, "{\"records\":6,\"quarantined\":1,\"spooled\":true}\n")
    );
    // Past the budget of 1,000 bad records: refused whole, nothing spooled.
    let hostile = "{}\n".repeat(1_001);
    let (code, _, resp) = http(
        port,
        "POST",
        "/ingest?format=policylayer",
        &[],
        hostile.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 422, "{resp}");
    assert!(resp.starts_with("refused, nothing stored"), "{resp}");
    assert_eq!(
        metric(port, "verdict_collect_rows_committed_total"),
        Some(0)
    );
    assert_eq!(metric(port, "verdict_collect_pending_records"), Some(11));
    assert_eq!(spool_files(), 1);
    let spooled = std::fs::read_dir(&spool_dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect::<Vec<_>>()
        .concat();
    assert!(!spooled.is_empty());
    for secret in ["hunter2-spool", "hunter3-spool"] {
        assert!(
            !spooled
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "{secret} reached the spool"
        );
    }
    run.kill();
    let wh = t.join("verdict-warehouse");
    assert!(
        event_ids(&wh).is_empty(),
        "nothing was committed before the kill"
    );
    // The next start commits the two spooled requests before anything else, once.
    let run = Running::start(
        &t,
        &[
            "--listen",
            &listen,
            "--ack",
            "spool",
            "--commit-interval",
            "50ms",
        ],
    )
    .started();
    wait_for(20, "the spooled rows", || {
        metric(port, "verdict_collect_rows_committed_total") == Some(10)
    });
    // A third request, and the first sent again (its answer lost, say): added once.
    for body in [batch(2), batch(0)] {
        let (code, _, resp) = http(
            port,
            "POST",
            "/ingest?format=policylayer",
            &[],
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(code, 200, "{resp}");
    }
    wait_for(20, "the third request's rows", || {
        metric(port, "verdict_collect_rows_committed_total") == Some(15)
    });
    assert_eq!(metric(port, "verdict_collect_duplicates_total"), Some(5));
    let (code, _, stderr) = run.term();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("committing spooled requests a previous run answered"),
        "{stderr}"
    );
    let mut want: Vec<String> = (0..3)
        .flat_map(|k| (0..5).map(move |i| format!("s{k}-{i}")))
        .collect();
    want.sort();
    assert_eq!(event_ids(&wh), want);
    let rows = read_rows(&wh);
    assert!(
        rows.iter()
            .all(|r| val(r, "ingest_principal") == Some("test")
                && val(r, "ingest_file") == Some("http")),
        "the sender is kept through the spool"
    );
    let s1 = rows
        .iter()
        .find(|r| val(r, "event_id") == Some("s1-0"))
        .unwrap();
    assert!(
        val(s1, "args").is_some_and(|a| a.contains("[redacted:") && !a.contains("hunter2")),
        "{:?}",
        val(s1, "args")
    );
    let q = quarantine(&wh);
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(!q[0].to_string().contains("hunter3"), "{q:?}");
    assert_eq!(spool_files(), 0, "committed requests leave no spool file");
}

/// A spool that cannot be written answers 500 with the reason and keeps nothing: the request's
/// records leave the pending count, and `--ack` without a receiver is refused.
#[test]
fn collect_spool_that_cannot_be_written_refuses_and_keeps_nothing() {
    let t = TestDir::new();
    let out = t
        .cmd(&["collect", "--follow", "x.jsonl", "--ack", "spool"])
        .run();
    assert_exit!(out, 2);
    assert!(
        out.stderr
            .contains("--ack and --spool-dir are about HTTP uploads"),
        "{}",
        out.stderr
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let spool = t.join("spool");
    let spool_arg = spool.display().to_string();
    let run = Running::start(
        &t,
        &[
            "--listen",
            &listen,
            "--ack",
            "spool",
            "--spool-dir",
            &spool_arg,
        ],
    )
    .started();
    // Its directory replaced by a file: the first request cannot start a spool file.
    std::fs::remove_dir_all(&spool).unwrap();
    std::fs::write(&spool, "not a directory").unwrap();
    let body = format!("{}\n", line("w0", 0));
    let (code, _, resp) = http(
        port,
        "POST",
        "/ingest?format=policylayer",
        &[],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 500, "{resp}");
    assert!(resp.contains("the spool could not be written"), "{resp}");
    assert!(resp.contains("nothing of this request is stored"), "{resp}");
    assert_eq!(metric(port, "verdict_collect_pending_records"), Some(0));
    let (code, _, stderr) = run.term();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(event_ids(&t.join("verdict-warehouse")).is_empty());
}

/// Rotation by rename and by copy-truncate, a file truncated to a shorter length, and a deleted
/// file, each on a running collector; the count after each step is exact.
#[test]
fn collect_follows_rotation_truncation_and_deletion() {
    let t = TestDir::new();
    std::fs::create_dir_all(t.join("logs")).unwrap();
    let wh = t.join("verdict-warehouse");
    let append = |name: &str, from: usize, to: usize| {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(t.join(name))
            .unwrap();
        for i in from..to {
            f.write_all(format!("{}\n", line(&format!("r{i:04}"), i)).as_bytes())
                .unwrap();
        }
    };
    let cps = t.join("cps");
    let run = Running::start(
        &t,
        &[
            "--follow",
            "logs/app.log*",
            "logs/other.log",
            "--commit-interval",
            "50ms",
            "--poll-interval",
            "20ms",
            "--checkpoints",
            cps.to_str().unwrap(),
        ],
    )
    .started();
    append("logs/app.log", 0, 10);
    wait_for(20, "10 rows", || manifest_rows(&wh) == 10);
    // Rename: two lines land in the old file after the collector's last look, then a new file.
    append("logs/app.log", 10, 12);
    std::fs::rename(t.join("logs/app.log"), t.join("logs/app.log.1")).unwrap();
    append("logs/app.log", 12, 15);
    wait_for(20, "15 rows after a rename", || manifest_rows(&wh) == 15);
    // Copy-truncate.
    append("logs/app.log", 15, 18);
    std::fs::copy(t.join("logs/app.log"), t.join("logs/app.log.2")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(t.join("logs/app.log"))
        .unwrap()
        .set_len(0)
        .unwrap();
    append("logs/app.log", 18, 20);
    wait_for(20, "20 rows after a copy-truncate", || {
        manifest_rows(&wh) == 20
    });
    // Truncated to a shorter length, keeping its first line: read again from the start (the
    // first line is a duplicate), then new lines.
    append("logs/other.log", 100, 105);
    wait_for(20, "25 rows", || manifest_rows(&wh) == 25);
    let first = line("r0100", 100).len() as u64 + 1;
    OpenOptions::new()
        .write(true)
        .open(t.join("logs/other.log"))
        .unwrap()
        .set_len(first)
        .unwrap();
    wait_for(20, "the checkpoint to move back", || {
        std::fs::read_dir(&cps).unwrap().any(|e| {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap_or_default();
            text.contains(&format!("\"offset\": {first},")) && text.contains("other.log")
        })
    });
    append("logs/other.log", 105, 107);
    wait_for(20, "27 rows after a truncation", || {
        manifest_rows(&wh) == 27
    });
    // Deleted right after a write: the lines are still read.
    append("logs/other.log", 107, 109);
    std::fs::remove_file(t.join("logs/other.log")).unwrap();
    wait_for(20, "29 rows after a deletion", || manifest_rows(&wh) == 29);
    let (code, stdout, stderr) = run.term();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("file truncated in place"), "{stderr}");
    assert!(
        stderr.contains(" INFO commit txn="),
        "one info line per commit: {stderr}"
    );
    assert!(stdout.contains(", duplicates skipped 1,"), "{stdout}");
    let expected: Vec<String> = (0..20)
        .chain(100..109)
        .map(|i| format!("r{i:04}"))
        .collect();
    assert_eq!(event_ids(&wh), expected);
    assert_manifest_exact(&wh, 29);
}

/// A file that starts with a proxy's start-up chatter is not guessed at: reading waits for a
/// record of a known format, then the whole file is decoded with it (the chatter skipped).
#[test]
fn collect_waits_for_a_detectable_record_before_choosing_a_format() {
    let t = TestDir::new();
    std::fs::create_dir_all(t.join("logs")).unwrap();
    let wh = t.join("verdict-warehouse");
    let write = |text: &str| {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(t.join("logs/agw.log"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    // Long enough for a fingerprint (256 bytes), and no decision in it.
    let chatter = r#"{"level":"info","time":"2026-11-05T08:00:00.000Z","scope":"agentgateway","message":"started bind","bind":"3000"}"#;
    write(&format!("{chatter}\n{chatter}\n{chatter}\n"));
    let run = Running::start(
        &t,
        &[
            "--follow",
            "logs/agw.log",
            "--commit-interval",
            "50ms",
            "--poll-interval",
            "20ms",
        ],
    )
    .started();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(manifest_rows(&wh), 0);
    let request = |id: &str| {
        format!(
            r#"{{"level":"info","time":"2026-11-05T08:01:00.120Z","scope":"request","http.method":"POST","http.path":"/mcp","http.status":200,"trace.id":"{id}","jwt.sub":"alice","mcp.method":"tools/call","mcp.target":"everything","mcp.resource.name":"echo","duration":"12ms"}}"#
        )
    };
    write(&format!("{}\n{}\n", request("t-1"), request("t-2")));
    wait_for(20, "2 rows", || manifest_rows(&wh) == 2);
    let (code, _stdout, stderr) = run.term();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("waiting for a record of a known format"),
        "{stderr}"
    );
    let rows = read_rows(&wh);
    let got: Vec<_> = rows
        .iter()
        .map(|r| (val(r, "event_id"), val(r, "source")))
        .collect();
    assert_eq!(
        got,
        [
            (Some("t-1"), Some("agentgateway")),
            (Some("t-2"), Some("agentgateway"))
        ]
    );
    assert!(crate::util::quarantine(&wh).is_empty());
}

/// `--envelope` takes each followed line's record out of a prefix verdict does not know, as
/// ingest does: the format is detected inside the envelope, and a line that does not match is
/// quarantined as `envelope_mismatch`. A collect.toml names a mapping and an envelope per source.
#[test]
fn collect_reads_records_out_of_a_user_envelope_and_a_mapping() {
    let t = TestDir::new();
    std::fs::create_dir_all(t.join("logs")).unwrap();
    let wh = t.join("verdict-warehouse");
    let text = format!(
        "gw-7 audit {}\nnot a record at all, but long enough to count as a line of text\ngw-7 audit {}\n",
        line("env-1", 0),
        line("env-2", 1)
    );
    std::fs::write(t.join("logs/gw.log"), text).unwrap();
    let run = Running::start(
        &t,
        &[
            "--follow",
            "logs/gw.log",
            "--envelope",
            r"^\S+ audit (?P<json>\{.*\})$",
            "--commit-interval",
            "50ms",
            "--poll-interval",
            "20ms",
        ],
    )
    .started();
    wait_for(20, "2 rows", || manifest_rows(&wh) == 2);
    let (code, _stdout, stderr) = run.term();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(event_ids(&wh), ["env-1", "env-2"]);
    let q = crate::util::quarantine(&wh);
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(
        (q[0]["line"].as_u64(), q[0]["error"].as_str()),
        (Some(2), Some("envelope_mismatch"))
    );

    // A mapping and a logfmt envelope from collect.toml, for a proxy with no built-in format.
    let wh2 = t.join("wh-mapped");
    t.write(
        "m.toml",
        r#"name = "tinyproxy"
[columns]
ts = "at"
event_id = "id"
identity = "who"
tool = "tool"

[decision]
path = "verdict"
"#,
    );
    std::fs::write(
        t.join("logs/tiny.log"),
        "at=2026-11-02T10:00:00Z id=m-1 who=alice tool=navigate verdict=allow note=padding-to-reach-the-fingerprint-size-of-the-file-0123456789\n\
         at=2026-11-02T10:00:01Z id=m-2 who=bob tool=navigate verdict=deny note=padding-to-reach-the-fingerprint-size-of-the-file-0123456789\n",
    )
    .unwrap();
    t.write(
        "collect.toml",
        &format!(
            "warehouse = {:?}\n[commit]\ninterval = \"50ms\"\n[[files]]\npaths = [\"logs/tiny.log\"]\nmapping = \"m.toml\"\nenvelope = \"logfmt\"\npoll_interval = \"20ms\"\n",
            wh2.display().to_string()
        ),
    );
    let run = Running::start(&t, &["--config", "collect.toml"]).started();
    wait_for(20, "2 mapped rows", || manifest_rows(&wh2) == 2);
    let (code, _stdout, stderr) = run.term();
    assert_eq!(code, Some(0), "{stderr}");
    let mut got: Vec<_> = read_rows(&wh2)
        .iter()
        .map(|r| {
            (
                val(r, "event_id").map(str::to_string),
                val(r, "identity").map(str::to_string),
                val(r, "decision").map(str::to_string),
                val(r, "source").map(str::to_string),
            )
        })
        .collect();
    got.sort();
    let row = |id: &str, who: &str, d: &str| {
        (
            Some(id.to_string()),
            Some(who.to_string()),
            Some(d.to_string()),
            Some("tinyproxy".to_string()),
        )
    };
    assert_eq!(
        got,
        [row("m-1", "alice", "allow"), row("m-2", "bob", "deny")]
    );
    assert!(crate::util::quarantine(&wh2).is_empty());
}

/// A corrupt checkpoint stops the collector with an error naming the file; with
/// --reset-checkpoints it reads the files again and the warehouse drops what it holds.
#[test]
fn collect_corrupt_checkpoint_is_an_error_until_reset() {
    let t = TestDir::new();
    let text: String = (0..5)
        .map(|i| format!("{}\n", line(&format!("c{i}"), i)))
        .collect();
    t.write("gw.jsonl", &text);
    let wh = t.join("verdict-warehouse");
    let args = [
        "--follow",
        "gw.jsonl",
        "--commit-interval",
        "50ms",
        "--poll-interval",
        "20ms",
    ];
    let run = Running::start(&t, &args).started();
    wait_for(20, "5 rows", || manifest_rows(&wh) == 5);
    let (code, _, _) = run.term();
    assert_eq!(code, Some(0));
    let dir = wh.join("_verdict/collect/checkpoints");
    let cp = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&cp, b"{\"version\": 1, \"offs").unwrap();
    let (code, stderr) = Running::start(&t, &args).exit_within(20);
    assert_eq!(code, Some(2));
    let want = format!(
        "collect into verdict-warehouse: verdict-warehouse/_verdict/collect/checkpoints/{}: corrupt checkpoint: EOF while parsing a string at line 1 column 20 (remove it, or run with --reset-checkpoints to start over)",
        cp.file_name().unwrap().to_string_lossy()
    );
    assert!(stderr.contains(&want), "{stderr}");
    let mut reset = args.to_vec();
    reset.push("--reset-checkpoints");
    let run = Running::start(&t, &reset).started();
    wait_for(20, "a checkpoint again", || {
        std::fs::read_to_string(&cp).is_ok_and(|s| s.contains("\"offset\""))
    });
    let (code, stdout, _) = run.term();
    assert_eq!(code, Some(0));
    assert!(stdout.contains("rows 0, duplicates skipped 5,"), "{stdout}");
    assert_eq!(event_ids(&wh).len(), 5);
}

/// SIGTERM with a long commit interval: what was accepted (file lines and an HTTP request
/// waiting for its answer) is committed, the request answered 200, and the exit code is 0.
/// Meanwhile: /healthz, /metrics, 429 with Retry-After when the buffer is full, and an OPA
/// gzip upload on /logs/<partition>.
#[test]
fn collect_sigterm_commits_what_was_accepted_and_http_endpoints() {
    let t = TestDir::new();
    let samples = t.copy_sample_logs();
    let upload = std::fs::read(samples.join("opa/upload-2026-11-05.json.gz")).unwrap();
    t.write(
        "gw.jsonl",
        (0..3)
            .map(|i| format!("{}\n", line(&format!("f{i}"), i)))
            .collect::<String>(),
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let run = Running::start(
        &t,
        &[
            "--follow",
            "gw.jsonl",
            "--listen",
            &listen,
            "--commit-interval",
            "10m",
            "--commit-rows",
            "1000000",
            "--max-pending",
            "10",
            "--poll-interval",
            "20ms",
        ],
    )
    .started();
    wait_for(20, "/healthz", || {
        http(port, "GET", "/healthz", &[], b"").is_ok_and(|r| r.0 == 200 && r.2 == "ok\n")
    });
    let body: String = (0..8)
        .map(|i| format!("{}\n", line(&format!("h{i}"), i)))
        .collect();
    let waiting = std::thread::spawn(move || {
        http(
            port,
            "POST",
            "/ingest?format=policylayer",
            &[],
            body.as_bytes(),
        )
        .unwrap()
    });
    wait_for(20, "8 pending records", || {
        metric(port, "verdict_collect_pending_records") == Some(8)
    });
    let more: String = (0..5)
        .map(|i| format!("{}\n", line(&format!("x{i}"), i)))
        .collect();
    let (code, h, msg) = http(port, "POST", "/ingest", &[], more.as_bytes()).unwrap();
    assert_eq!(code, 429, "{msg}");
    assert_eq!(header(&h, "retry-after"), Some("1"));
    assert_eq!(
        msg,
        "the buffer holds 8 uncommitted records (at most 10); retry later\n"
    );
    let (code, _, msg) = http(port, "POST", "/ingest?format=nope", &[], b"{}").unwrap();
    assert_eq!(code, 400);
    assert!(msg.starts_with("unknown format `nope`"), "{msg}");
    wait_for(20, "the file's lines", || {
        metric(port, "verdict_collect_records_received_total") == Some(11)
    });
    let (_, h, text) = http(port, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(
        header(&h, "content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for want in [
        "verdict_collect_records_received_total 11\n",
        "verdict_collect_rows_committed_total 0\n",
        "verdict_collect_records_quarantined_total 0\n",
        "verdict_collect_requests_rejected_total 2\n",
        "verdict_collect_pending_records 8\n",
        "verdict_collect_commit_seconds_count 0\n",
        "# TYPE verdict_collect_commit_seconds histogram\n",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    // The OPA upload is in the same buffer: 8 + 3 > 10, refused until a commit frees room.
    let gz = [
        ("Content-Encoding", "gzip"),
        ("Content-Type", "application/json"),
    ];
    let (code, _, _) = http(port, "POST", "/logs/prod/mcp", &gz, &upload).unwrap();
    assert_eq!(code, 429);
    let (code, _, stdout, stderr) = {
        let (c, o, e) = run.term();
        (c, (), o, e)
    };
    assert_eq!(code, Some(0), "{stderr}");
    let (status, _, resp) = waiting.join().unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        resp,
        "{\"records\":8,\"rows\":8,\"duplicates\":0,\"quarantined\":0}\n"
    );
    // One commit on stopping, or two when the file's last lines reach the commit loop just
    // after the stop's commit of the HTTP records (a busy machine): either way all 11 rows.
    assert!(
        stdout.starts_with("collect into verdict-warehouse: commits 1, rows 11,")
            || stdout.starts_with("collect into verdict-warehouse: commits 2, rows 11,"),
        "{stdout}"
    );
    let wh = t.join("verdict-warehouse");
    assert_eq!(event_ids(&wh).len(), 11);
    // A fresh receiver takes the OPA upload.
    let run = Running::start(&t, &["--listen", &listen, "--commit-interval", "50ms"]).started();
    wait_for(20, "/healthz", || {
        http(port, "GET", "/healthz", &[], b"").is_ok_and(|r| r.0 == 200)
    });
    let (code, _, resp) = http(port, "POST", "/logs/prod/mcp", &gz, &upload).unwrap();
    assert_eq!(
        (code, resp.as_str()),
        (
            200,
            "{\"records\":3,\"rows\":3,\"duplicates\":0,\"quarantined\":0}\n"
        )
    );
    let (code, _, _) = run.term();
    assert_eq!(code, Some(0));
    let rows = read_rows(&wh);
    let mut opa: Vec<_> = rows
        .iter()
        .filter(|r| val(r, "source") == Some("opa"))
        .map(|r| (val(r, "event_id").unwrap(), val(r, "ingest_file").unwrap()))
        .collect();
    opa.sort();
    assert_eq!(
        opa,
        [("u-0001", "http"), ("u-0002", "http"), ("u-0003", "http")]
    );
}

/// Many small commits into two days; compaction leaves one sorted file per day with exactly
/// the same rows, the log exact, and a compaction killed before its commit changes nothing
/// (the next one does the whole job).
#[test]
fn compact_merges_each_day_into_one_file_with_the_same_rows() {
    let t = TestDir::new();
    for k in 0..4 {
        let text: String = (0..10)
            .map(|i| format!("{}\n", line(&format!("k{k}-{i}"), k * 10 + i)))
            .collect();
        t.write(&format!("gw{k}.jsonl"), text);
        let out = t.cmd(&["ingest", &format!("gw{k}.jsonl")]).run();
        assert_exit!(out, 0);
    }
    let wh = t.join("verdict-warehouse");
    assert_eq!(parquet_files(&wh).len(), 8);
    let mut before = read_rows(&wh);
    before.sort_by(|a, b| val(a, "event_id").cmp(&val(b, "event_id")));
    // Killed with its merged file in place but not committed: readers still see the 8 files.
    let out = t
        .cmd(&["compact", "--day", "2026-11-02"])
        .env("VERDICT_ABORT_AT", "placed")
        .run();
    assert_eq!(out.code, None, "aborted");
    assert_eq!(parquet_files(&wh).len(), 8);
    let out = t.cmd(&["compact", "--format", "json"]).run();
    assert_exit!(out, 0);
    let s = out.json();
    assert_eq!(s["days"][0]["files_before"], 4, "{s}");
    assert_eq!(s["days"][1]["files_before"], 4, "{s}");
    assert_eq!(s["days"][1]["files_after"], 1, "{s}");
    assert_eq!(s["days"][1]["rows"], 20, "{s}");
    // The dedup index: one file per bucket (40 keys in at most 16 buckets), the same keys.
    let ix = &s["indexes"][0];
    assert_eq!(ix["table"], "event_keys", "{s}");
    assert_eq!(ix["keys"], 40, "{s}");
    let (files_before, files_after) = (
        ix["files_before"].as_u64().unwrap(),
        ix["files_after"].as_u64().unwrap(),
    );
    assert!(files_after <= 16 && files_before > files_after, "{s}");
    assert_eq!(committed(&wh, "event_keys").len() as u64, files_after);
    assert_eq!(
        s["indexes"].as_array().unwrap().len(),
        1,
        "no quarantine_keys yet: {s}"
    );
    let files = parquet_files(&wh);
    assert_eq!(files.len(), 2, "one file per day: {files:?}");
    let mut after = read_rows(&wh);
    // Within each day file, rows are sorted by time.
    for day in ["2026-11-02", "2026-11-03"] {
        let ts: Vec<_> = after
            .iter()
            .filter(|r| val(r, "day") == Some(day))
            .map(|r| val(r, "ts").unwrap().to_string())
            .collect();
        let mut sorted = ts.clone();
        sorted.sort();
        assert_eq!(ts, sorted, "{day} sorted");
    }
    after.sort_by(|a, b| val(a, "event_id").cmp(&val(b, "event_id")));
    assert_eq!(after, before, "exactly the same rows");
    assert_manifest_exact(&wh, 40);
    let out = t.cmd(&["compact"]).run();
    assert_exit!(out, 0);
    assert_eq!(
        out.stdout,
        "day 2026-11-02: 1 file(s), nothing to merge (20 rows)\nday 2026-11-03: 1 file(s), nothing to merge (20 rows)\n"
    );
    // The merged index still knows every key: the first file again adds nothing.
    let again = t
        .cmd(&["ingest", "gw0.jsonl", "--format", "json"])
        .run()
        .json();
    assert_eq!(
        (again["rows_written"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(10))
    );
}
