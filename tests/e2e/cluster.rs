//! `verdict cluster` and `--cluster`: one scheduler and two executors run as separate `verdict`
//! processes on 127.0.0.1 (free ports), over a warehouse on local disk and, where `moto_server`
//! is installed, in an S3 bucket. Every question must answer exactly as the local run, and an
//! executor killed mid-query must give a clear failure or the complete answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::collect::{free_port, free_ports};
use crate::util::{Output, TestDir};

/// A `verdict cluster ...` process, killed when dropped; its stderr goes to a file.
struct Node {
    child: Child,
    log: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn start(t: &TestDir, name: &str, env: &[(String, String)], args: &[&str]) -> Node {
        let log = t.join(&format!("{name}.log"));
        let mut c = Command::new(env!("CARGO_BIN_EXE_verdict"));
        c.current_dir(t.path())
            .arg("cluster")
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        Node {
            child: c.spawn().unwrap(),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A scheduler and two executors, each serving its metrics on a port of its own.
struct Cluster {
    port: u16,
    scheduler: Node,
    executors: Vec<Node>,
    /// The metrics ports: the scheduler's, then each executor's.
    metrics: Vec<u16>,
}

impl Cluster {
    fn start(t: &TestDir, env: &[(String, String)]) -> Cluster {
        // The scheduler's port and the three metrics ports, all different.
        let ports = free_ports(4);
        let (port, metrics) = (ports[0], ports[1..].to_vec());
        let bind = format!("127.0.0.1:{port}");
        let at = |i: usize| format!("127.0.0.1:{}", metrics[i]);
        let scheduler = Node::start(
            t,
            "scheduler",
            env,
            &["scheduler", "--bind", &bind, "--metrics-bind", &at(0)],
        );
        let executors = (0..2)
            .map(|i| {
                Node::start(
                    t,
                    &format!("executor-{i}"),
                    env,
                    &[
                        "executor",
                        "--scheduler",
                        &bind,
                        "--concurrency",
                        "2",
                        "--metrics-bind",
                        &at(i + 1),
                    ],
                )
            })
            .collect();
        let cluster = Cluster {
            port,
            scheduler,
            executors,
            metrics,
        };
        cluster.wait_ready(2);
        cluster
    }

    fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.port)
    }

    /// The scheduler's `/readyz` answer, if it answers.
    fn readyz(&self) -> Option<String> {
        http_get(self.port, "/readyz")
    }

    /// The value of the sample `name` (with its labels) on the metrics port `port`.
    fn metric(port: u16, name: &str) -> f64 {
        let text = http_get(port, "/metrics").expect("the metrics port answers");
        let prefix = format!("{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }

    /// The sum of the sample `name` over both executors.
    fn executors_metric(&self, name: &str) -> f64 {
        self.metrics[1..]
            .iter()
            .map(|&p| Self::metric(p, name))
            .sum()
    }

    fn wait_ready(&self, executors: usize) {
        let want = format!("ready: {executors} executors registered");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.readyz().is_some_and(|a| a.contains(&want)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not become ready ({want})\n--- scheduler\n{}\n--- executor 0\n{}\n--- executor 1\n{}",
                self.scheduler.log(),
                self.executors[0].log(),
                self.executors[1].log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A plain HTTP GET on 127.0.0.1: the whole answer (status line, headers, body), if any.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Runs verdict with `env`, failing the test past `limit`.
fn run_bounded(t: &TestDir, env: &[(String, String)], args: &[&str], limit: Duration) -> Output {
    let mut c = t.cmd(args);
    for (k, v) in env {
        c = c.env(k, v);
    }
    let mut cmd = c.cmd;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`verdict {}` ran past {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        code: status.code(),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// The questions asked of both runs: (name, arguments).
fn questions(catalog: &str) -> Vec<(String, Vec<String>)> {
    let mut q: Vec<(String, Vec<String>)> = Vec::new();
    let sql = [
        "SELECT identity, tool, tool_risk(tool) AS risk, tool_risk_source(tool, server) AS source, \
         count(*) AS calls FROM decisions GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        "SELECT identity, weighted_mode(tool, 1)['value'] AS top_tool, \
         weighted_mode(tool, 1)['weight'] AS top_calls FROM decisions WHERE tool IS NOT NULL \
         GROUP BY identity ORDER BY identity",
        "SELECT * FROM tools ORDER BY tool, server",
        "SELECT day, date_trunc('hour', ts) AS hour, identity, tool, count(*) AS calls \
         FROM decisions WHERE day >= '2026-11-03' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
        "SELECT d.identity, t.risk, count(*) AS calls FROM decisions d JOIN tools t \
         ON d.tool = t.tool AND t.server IS NULL GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT count(*) AS lines, count(DISTINCT event_id) AS events FROM decisions",
    ];
    for (i, s) in sql.iter().enumerate() {
        q.push((format!("sql #{i}"), vec!["sql".into(), (*s).into()]));
    }
    for kind in [
        "volume",
        "denials",
        "rate-limits",
        "identities",
        "tools",
        "destructive",
    ] {
        for extra in [
            &[][..],
            &["--no-rollup"][..],
            &["--by", "identity,tool"][..],
        ] {
            let mut a: Vec<String> = vec!["report".into(), kind.into()];
            a.extend(extra.iter().map(|s| s.to_string()));
            q.push((format!("report {kind} {}", extra.join(" ")), a));
        }
    }
    q.push((
        "report destructive with a user catalogue".into(),
        vec![
            "report".into(),
            "destructive".into(),
            "--catalog".into(),
            catalog.into(),
        ],
    ));
    q.push((
        "timeline".into(),
        vec!["timeline".into(), "--identity".into(), "bob-ci".into()],
    ));
    q.push((
        "timeline around".into(),
        vec![
            "timeline".into(),
            "--identity".into(),
            "carol-agent".into(),
            "--around".into(),
            "2026-11-03T12:00:00Z".into(),
            "--window".into(),
            "6h".into(),
        ],
    ));
    q
}

/// Asks every question locally and on the cluster, with `-w warehouse`, and compares the JSON.
fn same_answers(t: &TestDir, env: &[(String, String)], warehouse: &str, cluster: &Cluster) {
    let catalog = t.write(
        "catalog.json",
        r#"{"tools": {"navigate": "destructive", "leapfrog/screenshot": "write"}}"#,
    );
    let catalog = catalog.to_str().unwrap();
    let limit = Duration::from_secs(120);
    let mut asked = 0;
    for (name, args) in questions(catalog) {
        let mut a: Vec<&str> = vec!["-w", warehouse];
        a.extend(args.iter().map(String::as_str));
        a.extend(["--format", "json"]);
        let local = run_bounded(t, env, &a, limit);
        assert_exit!(local, 0);
        let url = cluster.url();
        let mut c = a.clone();
        c.extend(["--cluster", &url]);
        let remote = run_bounded(t, env, &c, limit);
        assert_exit!(remote, 0);
        let (l, r) = (local.json(), remote.json());
        assert!(
            l.as_array().is_some_and(|rows| !rows.is_empty()),
            "{name}: no rows locally: {l}"
        );
        assert_eq!(r, l, "{name}: the cluster's answer differs");
        asked += 1;
    }
    assert_eq!(asked, 27);
    // VERDICT_CLUSTER does what --cluster does.
    let mut e = env.to_vec();
    e.push(("VERDICT_CLUSTER".into(), cluster.url()));
    let out = run_bounded(
        t,
        &e,
        &[
            "-w",
            warehouse,
            "sql",
            "SELECT count(*) AS n FROM decisions",
            "--format",
            "json",
        ],
        limit,
    );
    assert_exit!(out, 0);
    assert_eq!(out.json(), serde_json::json!([{"n": 617}]));
}

/// The nodes' metrics ports before and after one query: the scheduler counts one job submitted
/// and completed, the executors the tasks that ran it, none failed, none left running.
fn metrics_count_one_query(t: &TestDir, cluster: &Cluster) {
    let (s, e) = (cluster.metrics[0], cluster.metrics[1]);
    let health = http_get(s, "/healthz").unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let ready = http_get(e, "/readyz").unwrap();
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert_eq!(Cluster::metric(s, "job_submitted_total"), 0.0);
    assert_eq!(
        cluster.executors_metric("verdict_executor_tasks_total{outcome=\"succeeded\"}"),
        0.0
    );
    let url = cluster.url();
    let out = run_bounded(
        t,
        &[],
        &[
            "sql",
            "SELECT count(*) AS n FROM decisions",
            "--format",
            "json",
            "--cluster",
            &url,
        ],
        Duration::from_secs(120),
    );
    assert_exit!(out, 0);
    assert_eq!(out.json(), serde_json::json!([{"n": 617}]));
    assert_eq!(Cluster::metric(s, "job_submitted_total"), 1.0);
    assert_eq!(Cluster::metric(s, "job_completed_total"), 1.0);
    assert_eq!(Cluster::metric(s, "job_failed_total"), 0.0);
    let tasks = cluster.executors_metric("verdict_executor_tasks_total{outcome=\"succeeded\"}");
    assert!(tasks >= 1.0, "no task counted");
    assert_eq!(
        cluster.executors_metric("verdict_executor_task_seconds_count"),
        tasks
    );
    assert_eq!(
        cluster.executors_metric("verdict_executor_tasks_total{outcome=\"failed\"}"),
        0.0
    );
    assert_eq!(
        cluster.executors_metric("verdict_executor_tasks_running"),
        0.0
    );
    // The last stage writes the one result row for the client.
    assert!(cluster.executors_metric("verdict_executor_output_rows_total") >= 1.0);
}

#[test]
fn cluster_answers_as_the_local_run_and_survives_a_lost_executor() {
    let t = TestDir::new();
    let logs = t.copy_sample_logs();
    let pl = logs.join("policylayer");
    assert_exit!(t.cmd(&["ingest", pl.to_str().unwrap()]).run(), 0);
    let mut cluster = Cluster::start(&t, &[]);
    metrics_count_one_query(&t, &cluster);
    same_answers(&t, &[], "verdict-warehouse", &cluster);

    // A query the cluster cannot plan is an error (exit 2) that says why; nothing is printed.
    let url = cluster.url();
    let out = t
        .cmd(&[
            "sql",
            "SELECT no_such_function(tool) FROM decisions",
            "--cluster",
            &url,
        ])
        .run();
    assert_exit!(out, 2);
    assert!(out.stderr.contains("no_such_function"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    // A scheduler that is not there is a clear error, not a local run.
    let gone = format!("df://127.0.0.1:{}", free_port());
    let out = run_bounded(
        &t,
        &[],
        &["sql", "SELECT count(*) FROM decisions", "--cluster", &gone],
        Duration::from_secs(60),
    );
    assert_exit!(out, 2);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.contains("error"), "{}", out.stderr);

    // An executor killed while a heavy query runs: the answer is complete and exact, or the
    // command fails clearly; never a partial answer with exit 0.
    let heavy = "SELECT a.identity, count(*) AS pairs, sum(length(b.tool)) AS letters \
                 FROM decisions a JOIN decisions b ON a.identity <> b.identity \
                 GROUP BY a.identity ORDER BY a.identity";
    let local = run_bounded(
        &t,
        &[],
        &["sql", heavy, "--format", "json"],
        Duration::from_secs(120),
    );
    assert_exit!(local, 0);
    let mut query = t
        .cmd(&["sql", heavy, "--format", "json", "--cluster", &url])
        .cmd;
    let query = query
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut lost = cluster.executors.remove(1);
    lost.child.kill().unwrap();
    lost.child.wait().unwrap();
    // The scheduler notices the loss when the executor's heartbeats stop (30 s).
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut query = query;
    let status = loop {
        if let Some(s) = query.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the query hung after an executor was lost"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    query
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    query
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    match status.code() {
        Some(0) => {
            let got: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(
                got,
                local.json(),
                "a complete answer after the loss: {stderr}"
            );
        }
        Some(2) => {
            assert!(stderr.starts_with("error"), "{stderr}");
            assert!(stdout.is_empty(), "a failed query printed rows: {stdout}");
        }
        other => panic!("exit {other:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"),
    }
    // The surviving executor answers alone once the scheduler has dropped the lost one.
    let out = run_bounded(
        &t,
        &[],
        &["sql", heavy, "--format", "json", "--cluster", &url],
        Duration::from_secs(150),
    );
    assert_exit!(out, 0);
    assert_eq!(out.json(), local.json());
    drop(lost);
}

#[test]
fn cluster_over_an_s3_warehouse() {
    let Some(moto) = crate::s3::Moto::start() else {
        return;
    };
    let env = moto.env();
    let t = TestDir::new();
    let logs = t.copy_sample_logs();
    let pl = logs.join("policylayer");
    let s3 = "s3://verdict/cluster";
    let mut c = t.cmd(&["-w", s3, "ingest", pl.to_str().unwrap()]);
    for (k, v) in &env {
        c = c.env(k, v);
    }
    assert_exit!(c.run(), 0);
    let cluster = Cluster::start(&t, &env);
    same_answers(&t, &env, s3, &cluster);
}

#[test]
fn nodes_refuse_open_addresses_and_stop_on_sigterm() {
    let t = TestDir::new();
    let port = free_port().to_string();
    for args in [
        vec!["cluster", "scheduler", "--bind", "0.0.0.0:1"],
        vec![
            "cluster",
            "executor",
            "--scheduler",
            "127.0.0.1:1",
            "--bind",
            "0.0.0.0:0",
        ],
        // The metrics port too.
        vec!["cluster", "scheduler", "--metrics-bind", "0.0.0.0:9464"],
        vec![
            "cluster",
            "executor",
            "--scheduler",
            "127.0.0.1:1",
            "--metrics-bind",
            "0.0.0.0:9465",
        ],
    ] {
        let out = t.cmd(&args).run();
        assert_exit!(out, 2);
        assert!(
            out.stderr.contains("refusing to listen on 0.0.0.0:")
                && out.stderr.contains("--insecure-bind"),
            "{}",
            out.stderr
        );
    }
    // A scheduler stops cleanly on SIGTERM.
    let bind = format!("127.0.0.1:{port}");
    let mut node = Node::start(&t, "scheduler", &[], &["scheduler", "--bind", &bind]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err() {
        assert!(Instant::now() < deadline, "no scheduler: {}", node.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = node.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = node.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the scheduler ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0), "{}", node.log());
    assert!(node.log().contains("scheduler stopping"), "{}", node.log());
}
