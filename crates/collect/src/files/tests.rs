//! Tests of the files source: fingerprint grouping, rotation by rename and by copy-truncate,
//! truncation in place, gzip read once, partial last lines, batches bounded in lines, a
//! backlog read no further ahead of the loop than the byte budget.

use std::io::Write;

use super::*;
use crate::config::FilesConfig;

fn line(id: &str) -> String {
    format!(
        "{{\"timestamp\":\"2026-11-02T09:15:02Z\",\"request_id\":\"{id}\",\"grant_label\":\"alice\",\"method\":\"tools/call\",\"tool\":\"navigate\",\"decision\":\"allow\"}}\n"
    )
}

struct Rig {
    dir: tempfile::TempDir,
    tailer: Tailer,
    rx: crossbeam_channel::Receiver<Batch>,
}

impl Rig {
    fn new(pattern: &str) -> Self {
        Self::reading(pattern, FilesConfig::default().read_bytes)
    }

    /// A rig whose reads take at most `read_bytes` bytes at a time.
    fn reading(pattern: &str, read_bytes: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let src = FilesConfig {
            paths: vec![dir.path().join(pattern).display().to_string()],
            fingerprint_bytes: 64,
            read_bytes,
            ..Default::default()
        }
        .build()
        .unwrap();
        let tailer = Tailer::new(src, HashMap::new(), tx, Arc::new(Metrics::default()));
        Self { dir, tailer, rx }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn append(&self, name: &str, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// The request ids read by one poll, in order, and the last checkpoint per file.
    fn poll(&mut self) -> (Vec<String>, Vec<Checkpoint>) {
        assert!(self.tailer.poll().unwrap());
        let mut ids = Vec::new();
        let mut cps: BTreeMap<String, Checkpoint> = BTreeMap::new();
        while let Ok(b) = self.rx.try_recv() {
            let text = String::from_utf8(b.bytes).unwrap();
            for l in text.lines() {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                ids.push(v["request_id"].as_str().unwrap().to_string());
            }
            let cp = b.checkpoint.unwrap();
            cps.insert(cp.fingerprint.clone(), cp);
        }
        (ids, cps.into_values().collect())
    }
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn resume_and_choice_rules() {
    assert_eq!(resume_at(100, 250), (100, false));
    assert_eq!(resume_at(100, 100), (100, false));
    assert_eq!(resume_at(100, 40), (0, true));
    let c = |p: &str, ino, len, gzip| Candidate {
        path: p.into(),
        dev: 1,
        ino,
        len,
        gzip,
    };
    let cands = [
        c("a.1.gz", 3, 900, true),
        c("a", 1, 500, false),
        c("a.1", 2, 500, false),
    ];
    assert_eq!(
        choose(&cands, Some((1, 2))).unwrap().path,
        PathBuf::from("a.1")
    );
    assert_eq!(
        choose(&cands, Some((1, 1))).unwrap().path,
        PathBuf::from("a")
    );
    assert_eq!(
        choose(&cands[..1], None).unwrap().path,
        PathBuf::from("a.1.gz")
    );
}

#[test]
fn partial_lines_wait_and_short_files_have_no_fingerprint_yet() {
    let mut r = Rig::new("app.log*");
    // A short PolicyLayer line (a record of an unknown format would be held until one follows).
    let short = "{\"timestamp\":1,\"request_id\":\"a0\",\"decision\":\"allow\"}\n";
    assert!(short.len() < 64);
    r.append("app.log", short);
    assert!(r.tailer.poll().unwrap());
    assert!(r.rx.try_recv().is_err(), "under 64 bytes: not read yet");
    let l = line("a1");
    r.append("app.log", &l[..l.len() - 1]);
    assert!(r.tailer.poll().unwrap());
    let b = r.rx.try_recv().unwrap();
    assert_eq!(b.bytes, short.as_bytes(), "only the complete line");
    let cp = b.checkpoint.unwrap();
    assert_eq!((cp.offset, cp.line), (short.len() as u64, 2));
    assert!(r.rx.try_recv().is_err());
    r.append("app.log", "\n");
    assert_eq!(r.poll().0, ids(&["a1"]));
    let l2 = line("a2");
    r.append("app.log", &l2[..50]);
    assert_eq!(
        r.poll().0,
        Vec::<String>::new(),
        "a partial last line waits"
    );
    r.append("app.log", &l2[50..]);
    let (got, cps) = r.poll();
    assert_eq!(got, ids(&["a2"]));
    assert_eq!(
        (cps[0].offset, cps[0].line),
        ((short.len() + 2 * l.len()) as u64, 4)
    );
}

#[test]
fn rotation_by_rename_and_by_copy_truncate_reads_every_line_once() {
    let mut r = Rig::new("app.log*");
    r.append("app.log", &(line("a1") + &line("a2")));
    assert_eq!(r.poll().0, ids(&["a1", "a2"]));
    // Rename: lines written to the old file before the rename are read from app.log.1.
    r.append("app.log", &line("a3"));
    std::fs::rename(r.path("app.log"), r.path("app.log.1")).unwrap();
    r.append("app.log", &line("b1"));
    let (got, cps) = r.poll();
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(sorted, ids(&["a3", "b1"]));
    assert_eq!(cps.len(), 2);
    // Copy-truncate: the copy has app.log's fingerprint, so its unread tail is read from it.
    r.append("app.log", &line("b2"));
    std::fs::copy(r.path("app.log"), r.path("app.log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(r.path("app.log"))
        .unwrap()
        .set_len(0)
        .unwrap();
    r.append("app.log", &line("c1"));
    let (mut got, _) = r.poll();
    got.sort();
    assert_eq!(got, ids(&["b2", "c1"]));
    // gzip of a file already read adds nothing; a new gzip is read once.
    let gz = |name: &str, text: &str| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(text.as_bytes()).unwrap();
        std::fs::write(r.path(name), enc.finish().unwrap()).unwrap();
    };
    let old = std::fs::read_to_string(r.path("app.log.1")).unwrap();
    std::fs::remove_file(r.path("app.log.1")).unwrap();
    gz("app.log.1.gz", &old);
    gz("app.log.9.gz", &(line("z1") + line("z2").trim_end()));
    let (mut got, _) = r.poll();
    got.sort();
    assert_eq!(got, ids(&["z1", "z2"]));
    assert_eq!(r.poll().0, Vec::<String>::new(), "gzip files are read once");
}

#[test]
fn truncation_in_place_rereads_and_a_deleted_file_is_drained() {
    let mut r = Rig::new("app.log");
    r.append("app.log", &(line("a1") + &line("a2") + &line("a3")));
    assert_eq!(r.poll().0, ids(&["a1", "a2", "a3"]));
    let keep = line("a1").len() as u64;
    std::fs::OpenOptions::new()
        .write(true)
        .open(r.path("app.log"))
        .unwrap()
        .set_len(keep)
        .unwrap();
    let (got, cps) = r.poll();
    assert_eq!(got, ids(&["a1"]), "read again from the start");
    assert_eq!((cps[0].offset, cps[0].line), (keep, 2));
    r.append("app.log", &line("a4"));
    assert_eq!(r.poll().0, ids(&["a4"]));
    // Written, then deleted before the next poll: the open handle still has it.
    r.append("app.log", &line("a5"));
    std::fs::remove_file(r.path("app.log")).unwrap();
    assert_eq!(r.poll().0, ids(&["a5"]));
    assert_eq!(r.poll().0, Vec::<String>::new());
}

#[test]
fn tiny_lines_are_handed_on_in_batches_bounded_in_lines() {
    // 4096-byte reads: at most 64 lines a batch, however short the lines.
    let mut r = Rig::reading("app.log*", 4096);
    let text = line("a1") + &"{}\n".repeat(5_000) + &line("a2");
    r.append("app.log", &text);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all((line("z1") + &"[]\n".repeat(3_000) + line("z2").trim_end()).as_bytes())
        .unwrap();
    std::fs::write(r.path("app.log.1.gz"), gz.finish().unwrap()).unwrap();
    assert!(r.tailer.poll().unwrap());
    let mut per_file: BTreeMap<String, (u64, Vec<u8>)> = BTreeMap::new();
    let mut batches = 0;
    while let Ok(b) = r.rx.try_recv() {
        let lines = memchr::memchr_iter(b'\n', &b.bytes).count() as u64;
        assert!(lines <= 64, "a batch of {lines} lines");
        let cp = b.checkpoint.unwrap();
        let (next, bytes) = per_file
            .entry(cp.fingerprint.clone())
            .or_insert((1, Vec::new()));
        assert_eq!(b.first_line, *next, "batches follow each other");
        *next += lines;
        bytes.extend_from_slice(&b.bytes);
        batches += 1;
    }
    assert!(batches >= (5_002 + 3_002) / 64);
    let mut got: Vec<_> = per_file.into_values().map(|(n, b)| (n - 1, b)).collect();
    got.sort();
    let gz_text = line("z1") + &"[]\n".repeat(3_000) + &line("z2");
    assert_eq!(
        got,
        [(3_002, gz_text.into_bytes()), (5_002, text.into_bytes())]
    );
}

#[test]
fn a_backlog_is_read_no_further_ahead_of_the_loop_than_the_budget() {
    let mut r = Rig::reading("app.log", 4096);
    r.tailer.queue_bytes = 8192;
    let text: String = (0..400).map(|i| line(&format!("b{i}"))).collect();
    assert!(text.len() > 4 * 8192);
    r.append("app.log", &text);
    let metrics = r.tailer.metrics.clone();
    let rx = r.rx.clone();
    let Rig {
        dir, mut tailer, ..
    } = r;
    let poller = std::thread::spawn(move || tailer.poll().unwrap());
    // The loop is slow to start: the reader must stop at the budget meanwhile.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let queued = || metrics.file_bytes_queued.load(Ordering::SeqCst);
    assert!(queued() > 4096 && queued() <= 8192, "{}", queued());
    let mut got = Vec::new();
    let mut most = 0;
    while got.len() < text.len() {
        most = most.max(queued());
        let b = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the reader goes on as batches are taken");
        got.extend_from_slice(&b.bytes);
    }
    assert!(poller.join().unwrap());
    assert_eq!(String::from_utf8(got).unwrap(), text);
    assert!(most <= 8192, "{most}");
    assert_eq!(queued(), 0, "every batch taken");
    drop(dir);
}
