//! The open transaction's new keys of one bucket of the dedup index, with bounded memory.
//!
//! The latest keys are in a hash map. Once it holds `spill_at` keys, they are sorted into a run
//! file (24 bytes a key) in a spill directory and the map is emptied for reuse. Of a run only a
//! sparse index stays in memory (the first key of every [`BLOCK`] keys: a quarter of a byte a
//! key), and of all runs of the bucket one filter (two bits of one word set per key, 16 bits
//! per key at capacity: about 2 bytes a key). A key the filter turns away, nearly every new
//! record's, costs one memory access; one that passes costs a positioned read of one block per
//! run. Runs are merged into one once there are more than [`MAX_RUNS`], so that such a key
//! costs a few reads at most. Keys are uniform 128-bit hashes and a pending key is inserted
//! only once, so the runs of a bucket hold disjoint keys.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};

/// A key: the `(high, low)` halves of its 128-bit hash.
pub(super) type Key = (u64, u64);

/// Bytes of a key and its content hash in a run file.
const ENTRY: usize = 24;
/// Keys per block of a run: what a key passing the filter reads of each run.
const BLOCK: usize = 64;
/// Runs of one bucket before they are merged into one.
const MAX_RUNS: usize = 4;

/// The new keys of one bucket of the open transaction.
#[derive(Default)]
pub(super) struct PendingBucket {
    /// Keys since the last spill (all of them when the bucket never spilled).
    pub(super) recent: FxHashMap<Key, u64>,
    spilled: Option<Spilled>,
}

struct Spilled {
    runs: Vec<Run>,
    filter: SpillFilter,
    keys: usize,
}

/// A sorted run of keys on disk and its sparse index. The file is removed with the run.
struct Run {
    path: PathBuf,
    file: File,
    len: usize,
    /// The first key of each block.
    firsts: Vec<Key>,
}

impl Drop for Run {
    fn drop(&mut self) {
        // A spill file is scratch: the staging directory it is in goes too.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl PendingBucket {
    /// The stored keys of a bucket moved out of memory (see [`super::KeyIndex`]): `entries`,
    /// sorted by key and `len` of them, as one run at `path` with its filter; keys committed
    /// later are added with [`PendingBucket::insert`], as a transaction's new keys are.
    ///
    /// # Errors
    /// When the run file cannot be written.
    pub(super) fn cold(
        path: &Path,
        len: usize,
        entries: impl Iterator<Item = (Key, u64)>,
    ) -> Result<Self> {
        let mut filter = SpillFilter::for_keys(len * 2);
        let run = Run::write(
            path,
            entries.map(|(k, c)| {
                filter.set(k.1);
                Ok((k, c))
            }),
        )?;
        Ok(PendingBucket {
            recent: FxHashMap::default(),
            spilled: Some(Spilled {
                keys: run.len,
                runs: vec![run],
                filter,
            }),
        })
    }

    /// Keys held, in memory and spilled.
    pub(super) fn len(&self) -> usize {
        self.recent.len() + self.spilled.as_ref().map_or(0, |s| s.keys)
    }

    /// Whether some keys went to run files.
    pub(super) fn is_spilled(&self) -> bool {
        self.spilled.is_some()
    }

    /// The content hash of `k`, when pending.
    ///
    /// # Errors
    /// When a run file cannot be read.
    pub(super) fn get(&self, k: Key) -> Result<Option<u64>> {
        if let Some(&c) = self.recent.get(&k) {
            return Ok(Some(c));
        }
        let Some(s) = &self.spilled else {
            return Ok(None);
        };
        if !s.filter.may_hold(k.1) {
            return Ok(None);
        }
        for run in &s.runs {
            if let Some(c) = run.get(k)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Adds a key not pending yet; once `spill_at` keys are in memory they go to a run file
    /// `path` (a new name each time).
    ///
    /// # Errors
    /// When a run file cannot be written or read.
    pub(super) fn insert(
        &mut self,
        k: Key,
        content: u64,
        spill_at: usize,
        path: impl FnOnce() -> Result<PathBuf>,
    ) -> Result<()> {
        self.recent.insert(k, content);
        if self.recent.len() >= spill_at.max(1) {
            self.spill(&path()?)?;
        }
        Ok(())
    }

    /// Moves the keys in memory to a new run at `path`. Should any step fail, every key is
    /// still found: the map is emptied only once its run is written, and the filter holds the
    /// run's keys before it is rebuilt larger.
    fn spill(&mut self, path: &Path) -> Result<()> {
        let mut sorted: Vec<(Key, u64)> = self.recent.iter().map(|(&k, &c)| (k, c)).collect();
        sorted.sort_unstable_by_key(|(k, _)| *k);
        let run = Run::write(path, sorted.iter().map(|&e| Ok(e)))?;
        self.recent.clear();
        let s = self.spilled.get_or_insert_with(|| Spilled {
            runs: Vec::new(),
            filter: SpillFilter::for_keys(sorted.len() * 4),
            keys: 0,
        });
        for (k, _) in &sorted {
            s.filter.set(k.1);
        }
        s.keys += run.len;
        s.runs.push(run);
        if s.keys > s.filter.capacity() {
            // Sized for the keys held and as many again: read every run back once.
            let mut f = SpillFilter::for_keys(s.keys * 2);
            for r in &s.runs {
                for e in r.entries()? {
                    f.set(e?.0 .1);
                }
            }
            s.filter = f;
        }
        if s.runs.len() > MAX_RUNS {
            let merged_path = path.with_extension("merged");
            let mut merged = Run::write(&merged_path, merge(&s.runs, Vec::new())?)?;
            // The old runs go (their files with them); the merged one takes the new name.
            s.runs.clear();
            std::fs::rename(&merged_path, path).map_err(Error::io("renaming", &merged_path))?;
            merged.path = path.to_path_buf();
            s.runs.push(merged);
        }
        Ok(())
    }

    /// Every key held and its content hash, sorted by key.
    ///
    /// # Errors
    /// When a run file cannot be read.
    pub(super) fn sorted(&self) -> Result<impl Iterator<Item = Result<(Key, u64)>> + '_> {
        let mut recent: Vec<(Key, u64)> = self.recent.iter().map(|(&k, &c)| (k, c)).collect();
        recent.sort_unstable_by_key(|(k, _)| *k);
        let runs: &[Run] = self.spilled.as_ref().map_or(&[], |s| &s.runs);
        merge(runs, recent)
    }
}

impl Run {
    /// Writes sorted entries to a new file at `path`.
    fn write(path: &Path, entries: impl Iterator<Item = Result<(Key, u64)>>) -> Result<Run> {
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(Error::io("creating", path))?;
        let mut firsts = Vec::new();
        let mut len = 0usize;
        let mut w = BufWriter::with_capacity(64 << 10, &file);
        for e in entries {
            let (k, c) = e?;
            if len.is_multiple_of(BLOCK) {
                firsts.push(k);
            }
            w.write_all(&encode(k, c))
                .map_err(Error::io("writing", path))?;
            len += 1;
        }
        w.flush().map_err(Error::io("writing", path))?;
        drop(w);
        Ok(Run {
            path: path.to_path_buf(),
            file,
            len,
            firsts,
        })
    }

    /// The content hash of `k` in this run: one positioned read of the block that would hold it.
    fn get(&self, k: Key) -> Result<Option<u64>> {
        let blk = self.firsts.partition_point(|f| *f <= k);
        if blk == 0 {
            return Ok(None);
        }
        let start = (blk - 1) * BLOCK;
        let n = (self.len - start).min(BLOCK);
        let mut buf = [0u8; BLOCK * ENTRY];
        let buf = &mut buf[..n * ENTRY];
        self.file
            .read_exact_at(buf, (start * ENTRY) as u64)
            .map_err(Error::io("reading", &self.path))?;
        let (mut a, mut b) = (0usize, n);
        while a < b {
            let mid = (a + b) / 2;
            let (key, c) = decode(&buf[mid * ENTRY..(mid + 1) * ENTRY]);
            match key.cmp(&k) {
                std::cmp::Ordering::Equal => return Ok(Some(c)),
                std::cmp::Ordering::Less => a = mid + 1,
                std::cmp::Ordering::Greater => b = mid,
            }
        }
        Ok(None)
    }

    /// The run's entries in order, read from its file.
    fn entries(&self) -> Result<RunReader> {
        let file = File::open(&self.path).map_err(Error::io("opening", &self.path))?;
        Ok(RunReader {
            path: self.path.clone(),
            inner: BufReader::with_capacity(64 << 10, file),
            left: self.len,
        })
    }
}

struct RunReader {
    path: PathBuf,
    inner: BufReader<File>,
    left: usize,
}

impl Iterator for RunReader {
    type Item = Result<(Key, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut e = [0u8; ENTRY];
        Some(
            self.inner
                .read_exact(&mut e)
                .map(|()| decode(&e))
                .map_err(Error::io("reading", &self.path)),
        )
    }
}

/// Entries in key order, from a run file or from memory.
type Source = Box<dyn Iterator<Item = Result<(Key, u64)>>>;

/// The entries of `runs` and of `extra` (sorted), in key order. The sources hold disjoint keys;
/// were a key in two, both entries would come out, the earlier source's first. A read error is
/// the last item: nothing follows it, so no consumer can take a partial merge for a whole one.
fn merge(runs: &[Run], extra: Vec<(Key, u64)>) -> Result<impl Iterator<Item = Result<(Key, u64)>>> {
    let mut sources: Vec<Source> = Vec::new();
    for r in runs {
        sources.push(Box::new(r.entries()?));
    }
    sources.push(Box::new(extra.into_iter().map(Ok)));
    let mut heads: Vec<Option<(Key, u64)>> = Vec::with_capacity(sources.len());
    let mut failed: Option<Error> = None;
    for s in &mut sources {
        match s.next().transpose() {
            Ok(h) => heads.push(h),
            Err(e) => {
                failed = Some(e);
                heads.push(None);
            }
        }
    }
    let mut ended = false;
    Ok(std::iter::from_fn(move || {
        if ended {
            return None;
        }
        if let Some(e) = failed.take() {
            ended = true;
            return Some(Err(e));
        }
        // A handful of sources: a linear scan for the least head.
        let (i, _) = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|(k, _)| (i, k)))
            .min_by_key(|&(i, k)| (k, i))?;
        let out = heads[i].take();
        match sources[i].next().transpose() {
            Ok(h) => heads[i] = h,
            Err(e) => failed = Some(e),
        }
        out.map(Ok)
    }))
}

fn encode(k: Key, c: u64) -> [u8; ENTRY] {
    let mut e = [0u8; ENTRY];
    e[..8].copy_from_slice(&k.0.to_le_bytes());
    e[8..16].copy_from_slice(&k.1.to_le_bytes());
    e[16..].copy_from_slice(&c.to_le_bytes());
    e
}

fn decode(e: &[u8]) -> (Key, u64) {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&e[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    };
    ((word(0), word(1)), word(2))
}

/// A filter over the spilled keys of a bucket: each key sets two bits of one 64-bit word, all
/// taken from its low half (the bucket is chosen by the high half). At 16 bits per key a key
/// not held passes about 2% of the time.
struct SpillFilter {
    words: Vec<u64>,
}

impl SpillFilter {
    fn for_keys(keys: usize) -> Self {
        let words = (keys.max(4096) / 4).next_power_of_two();
        SpillFilter {
            words: vec![0; words],
        }
    }

    fn capacity(&self) -> usize {
        self.words.len() * 4
    }

    fn slot(&self, lo: u64) -> (usize, u64) {
        let word = ((lo >> 12) as usize) & (self.words.len() - 1);
        (word, (1u64 << (lo & 63)) | (1u64 << ((lo >> 6) & 63)))
    }

    fn set(&mut self, lo: u64) {
        let (w, bits) = self.slot(lo);
        self.words[w] |= bits;
    }

    fn may_hold(&self, lo: u64) -> bool {
        let (w, bits) = self.slot(lo);
        self.words[w] & bits == bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::tests::keys;

    /// A bucket holding `ks` (the content of a key: its position), spilling past `spill_at`
    /// to files in `dir`, and the number of spills. Each key is absent before it is added.
    fn fill(ks: &[Key], spill_at: usize, dir: &Path) -> (PendingBucket, usize) {
        let mut p = PendingBucket::default();
        let mut n = 0;
        for (i, &k) in ks.iter().enumerate() {
            assert_eq!(p.get(k).unwrap(), None, "key {i} before it was added");
            p.insert(k, i as u64, spill_at, || {
                n += 1;
                Ok(dir.join(format!("run-{n}")))
            })
            .unwrap();
        }
        (p, n)
    }

    fn files(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn spilled_keys_are_found_merged_and_listed_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ks = keys(11, 10_000);
        let (p, n) = fill(&ks, 700, dir.path());
        // 14 spills of 700 keys, merged whenever a fifth run came: at most 4 runs, and 200 keys
        // still in memory.
        assert_eq!(n, 14);
        assert!(p.is_spilled());
        assert_eq!((p.recent.len(), p.len()), (200, 10_000));
        let runs = p.spilled.as_ref().unwrap().runs.len();
        assert!((1..=MAX_RUNS).contains(&runs), "{runs} runs");
        assert_eq!(files(dir.path()), runs);
        for (i, &k) in ks.iter().enumerate() {
            assert_eq!(p.get(k).unwrap(), Some(i as u64), "key {i}");
        }
        // Absent keys, among them one sharing a held key's high half, are not found; the filter
        // turns most of them away before any read.
        let absent = keys(12, 10_000);
        assert!(absent.iter().all(|&k| p.get(k).unwrap().is_none()));
        assert_eq!(p.get((ks[5].0, ks[5].1 ^ 1)).unwrap(), None);
        let s = p.spilled.as_ref().unwrap();
        let passed = absent.iter().filter(|k| s.filter.may_hold(k.1)).count();
        assert!(passed < 500, "{passed} of 10,000 absent keys passed");
        // Listed sorted, each key once with its content.
        let listed: Vec<(Key, u64)> = p.sorted().unwrap().map(|e| e.unwrap()).collect();
        let mut want: Vec<(Key, u64)> =
            ks.iter().enumerate().map(|(i, &k)| (k, i as u64)).collect();
        want.sort_unstable();
        assert_eq!(listed, want);
        // The files go with the bucket.
        drop(p);
        assert_eq!(files(dir.path()), 0);
    }

    #[test]
    fn the_filter_grows_with_the_spilled_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ks = keys(3, 60_000);
        let (p, _) = fill(&ks, 2_000, dir.path());
        let s = p.spilled.as_ref().unwrap();
        assert_eq!(s.keys, 60_000);
        assert!(s.filter.capacity() >= s.keys, "{}", s.filter.capacity());
        for (i, &k) in ks.iter().enumerate().step_by(7) {
            assert_eq!(p.get(k).unwrap(), Some(i as u64), "key {i}");
        }
    }

    #[test]
    fn an_unspilled_bucket_lists_its_map() {
        let mut p = PendingBucket::default();
        for (i, &k) in keys(4, 100).iter().enumerate() {
            p.insert(k, i as u64, 1_000, || {
                unreachable!("no spill below the threshold")
            })
            .unwrap();
        }
        assert!(!p.is_spilled());
        let listed: Vec<(Key, u64)> = p.sorted().unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(listed.len(), 100);
        assert!(listed.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn a_missing_run_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (p, n) = fill(&keys(5, 300), 100, dir.path());
        assert_eq!(n, 3);
        let run = dir.path().join("run-2");
        std::fs::remove_file(&run).unwrap();
        let err = p
            .sorted()
            .err()
            .expect("listing needs every run")
            .to_string();
        assert!(err.contains("run-2"), "{err}");
    }

    #[test]
    fn a_run_cut_short_ends_the_listing_with_its_error() {
        let dir = tempfile::tempdir().unwrap();
        let (p, _) = fill(&keys(6, 300), 100, dir.path());
        // Half of run 2's entries are gone: its reader fails midway.
        let run = dir.path().join("run-2");
        let len = std::fs::metadata(&run).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&run)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let items: Vec<Result<(Key, u64)>> = p.sorted().unwrap().collect();
        let last = items.last().expect("some items");
        assert!(last
            .as_ref()
            .is_err_and(|e| e.to_string().contains("run-2")));
        assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
        assert!(
            items.len() < 300,
            "{} items: nothing follows the error",
            items.len()
        );
    }

    #[test]
    fn a_spill_that_fails_keeps_every_key() {
        let dir = tempfile::tempdir().unwrap();
        let ks = keys(8, 250);
        let (mut p, n) = fill(&ks[..200], 100, dir.path());
        assert_eq!((n, p.recent.len()), (2, 0));
        for (i, &k) in ks[200..249].iter().enumerate() {
            p.insert(k, 200 + i as u64, 100, || unreachable!("no spill yet"))
                .unwrap();
        }
        // The 100th key in memory cannot go to a file: the error is returned, and every key,
        // spilled or in memory, is still found with its content.
        let missing = dir.path().join("no-such-dir").join("run");
        let err = p
            .insert(ks[249], 249, 50, || Ok(missing))
            .expect_err("the run cannot be written");
        assert!(err.to_string().contains("no-such-dir"), "{err}");
        for (i, &k) in ks.iter().enumerate() {
            assert_eq!(p.get(k).unwrap(), Some(i as u64), "key {i}");
        }
        assert_eq!(p.len(), 250);
    }
}
