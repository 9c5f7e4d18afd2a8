//! The collector's counters, shared by the sources and the commit loop, and their Prometheus
//! text rendering for `GET /metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the commit latency histogram.
pub const COMMIT_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Bytes of followed files the readers hand to the commit loop ahead of it, at most (unless
/// one batch is larger): a backlog (a large file met at start, a collector catching up after
/// a stop) is read as fast as the loop takes it, not into memory all at once. Four batches of
/// the default `read_bytes` (4 MiB): the loop takes one batch at a time, and reading is far
/// faster than decoding and committing.
pub const FILE_QUEUE_BYTES: u64 = 16 << 20;

/// Counters; every field only grows except `pending` and `file_bytes_queued`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Records received (file lines read, HTTP records accepted into the buffer).
    pub received: AtomicU64,
    /// Rows committed.
    pub committed: AtomicU64,
    /// Lines quarantined.
    pub quarantined: AtomicU64,
    /// Rows dropped as duplicates.
    pub duplicates: AtomicU64,
    /// HTTP requests refused (buffer full, stopping, bad request).
    pub rejected: AtomicU64,
    /// Bytes received (file bytes read, HTTP bodies after decompression).
    pub bytes: AtomicU64,
    /// HTTP requests refused for want of a valid credential.
    pub unauthorized: AtomicU64,
    /// HTTP records accepted and not committed yet.
    pub pending: AtomicU64,
    /// Bytes of followed files read and handed to the commit loop, not taken by it yet.
    pub file_bytes_queued: AtomicU64,
    /// The warehouse is open and commits can happen.
    pub ready: AtomicBool,
    /// A shutdown was asked: commit at once, accept nothing new.
    pub stopping: AtomicBool,
    commits: Mutex<Histogram>,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; COMMIT_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// Records one commit's duration.
    pub fn observe_commit(&self, secs: f64) {
        if let Ok(mut h) = self.commits.lock() {
            for (i, b) in COMMIT_BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.buckets[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            "verdict_collect_records_received_total",
            "Records received (file lines read, HTTP records accepted).",
            get(&self.received),
        );
        counter(
            "verdict_collect_rows_committed_total",
            "Rows committed to the warehouse.",
            get(&self.committed),
        );
        counter(
            "verdict_collect_records_quarantined_total",
            "Records quarantined as bad.",
            get(&self.quarantined),
        );
        counter(
            "verdict_collect_duplicates_total",
            "Rows dropped because their (source, event_id) was already stored.",
            get(&self.duplicates),
        );
        counter(
            "verdict_collect_requests_rejected_total",
            "HTTP requests refused (buffer full, stopping, bad request).",
            get(&self.rejected),
        );
        counter(
            "verdict_collect_requests_unauthorized_total",
            "HTTP requests refused with 401 (no or a wrong token or certificate).",
            get(&self.unauthorized),
        );
        counter(
            "verdict_collect_bytes_received_total",
            "Bytes received (after decompression).",
            get(&self.bytes),
        );
        let _ = writeln!(
            s,
            "# HELP verdict_collect_pending_records HTTP records accepted and not committed yet.\n# TYPE verdict_collect_pending_records gauge\nverdict_collect_pending_records {}",
            get(&self.pending)
        );
        let _ = writeln!(
            s,
            "# HELP verdict_collect_file_bytes_queued Bytes of followed files read and waiting for the commit loop (at most {FILE_QUEUE_BYTES} while the loop catches up).\n# TYPE verdict_collect_file_bytes_queued gauge\nverdict_collect_file_bytes_queued {}",
            get(&self.file_bytes_queued)
        );
        let h = self.commits.lock().map(|h| (h.buckets, h.count, h.sum));
        if let Ok((buckets, count, sum)) = h {
            let name = "verdict_collect_commit_seconds";
            let _ = writeln!(
                s,
                "# HELP {name} Time a commit takes (Parquet, intent, renames, manifest, checkpoints).\n# TYPE {name} histogram"
            );
            for (b, n) in COMMIT_BUCKETS.iter().zip(buckets) {
                let _ = writeln!(s, "{name}_bucket{{le=\"{b}\"}} {n}");
            }
            let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {count}");
            let _ = writeln!(s, "{name}_sum {sum:.6}\n{name}_count {count}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_the_histogram() {
        let m = Metrics::default();
        m.received.store(7, Ordering::Relaxed);
        m.file_bytes_queued.store(4096, Ordering::Relaxed);
        m.observe_commit(0.02);
        m.observe_commit(3.0);
        let text = m.render();
        assert!(
            text.contains("\nverdict_collect_records_received_total 7\n"),
            "{text}"
        );
        assert!(
            text.contains("\nverdict_collect_file_bytes_queued 4096\n"),
            "{text}"
        );
        assert!(text.contains("verdict_collect_commit_seconds_bucket{le=\"0.01\"} 0\n"));
        assert!(text.contains("verdict_collect_commit_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("verdict_collect_commit_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("verdict_collect_commit_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains(
            "verdict_collect_commit_seconds_sum 3.020000\nverdict_collect_commit_seconds_count 2\n"
        ));
    }
}
