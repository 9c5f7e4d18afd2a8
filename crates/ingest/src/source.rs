//! Input resolution and reading: files, directories, globs and stdin; gzip and zstd detected by
//! their magic bytes; content cut into chunks of whole lines. Decoding lines is not done here.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, Result};

/// File name endings picked up when a directory is given.
/// Plain `.json` is left out: a directory of logs often holds JSON that is not a log (policies,
/// oracles); compressed JSON (OPA uploads, CloudTrail objects) and `.log` files are logs.
pub const DIR_SUFFIXES: [&str; 12] = [
    ".jsonl",
    ".jsonl.gz",
    ".jsonl.zst",
    ".ndjson",
    ".ndjson.gz",
    ".ndjson.zst",
    ".json.gz",
    ".json.zst",
    ".log",
    ".log.gz",
    ".log.zst",
    ".jsonl.log",
];

/// One resolved input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input, named `-`.
    Stdin,
    /// A file on disk.
    File(PathBuf),
}

impl Input {
    /// The name stored in `ingest_file` and shown in messages.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::File(p) => p.display().to_string(),
        }
    }
}

/// Resolves what the user named (files, directories, globs, `-`) into inputs, in a stable order
/// and without repeats.
///
/// # Errors
/// A path that does not exist, a glob that matches nothing, or an invalid glob.
pub fn resolve(specs: &[String]) -> Result<Vec<Input>> {
    let (inputs, unreadable) = resolve_all(specs)?;
    match unreadable.into_iter().next() {
        Some((path, source)) => Err(Error::Read {
            file: path.display().to_string(),
            source,
        }),
        None => Ok(inputs),
    }
}

/// Like [`resolve`], but a directory below a named one that cannot be listed is returned with
/// its error instead of failing the whole resolution.
///
/// # Errors
/// As [`resolve`], except for those directories.
pub fn resolve_all(specs: &[String]) -> Result<(Vec<Input>, Vec<(PathBuf, io::Error)>)> {
    let mut unreadable = Vec::new();
    let mut out: Vec<Input> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf, out: &mut Vec<Input>| {
        let key = p.canonicalize().unwrap_or_else(|_| p.clone());
        if !seen.contains(&key) {
            seen.push(key);
            out.push(Input::File(p));
        }
    };
    for spec in specs {
        if spec == "-" {
            if !out.contains(&Input::Stdin) {
                out.push(Input::Stdin);
            }
            continue;
        }
        let path = Path::new(spec);
        if path.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files, &mut unreadable, true).map_err(|source| Error::Read {
                file: spec.clone(),
                source,
            })?;
            files.sort();
            for f in files {
                push(f, &mut out);
            }
        } else if path.exists() {
            push(path.to_path_buf(), &mut out);
        } else if spec.contains(['*', '?', '[']) {
            let opts = glob::MatchOptions {
                require_literal_leading_dot: true,
                ..Default::default()
            };
            let paths = glob::glob_with(spec, opts).map_err(|e| Error::GlobPattern {
                pattern: spec.clone(),
                message: e.to_string(),
            })?;
            let mut files: Vec<PathBuf> = paths
                .filter_map(|p| p.ok())
                .filter(|p| p.is_file())
                .collect();
            if files.is_empty() {
                return Err(Error::GlobEmpty {
                    pattern: spec.clone(),
                });
            }
            files.sort();
            for f in files {
                push(f, &mut out);
            }
        } else {
            return Err(Error::InputNotFound { path: spec.clone() });
        }
    }
    Ok((out, unreadable))
}

/// Lists `dir` into `out`; a subdirectory that cannot be listed goes to `unreadable`.
fn walk(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    unreadable: &mut Vec<(PathBuf, io::Error)>,
    top: bool,
) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if !top => {
            unreadable.push((dir.to_path_buf(), e));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if entry.file_type()?.is_dir() {
            // A warehouse under the directory is output, not input: its quarantine holds JSONL.
            if name.starts_with('_') || path.join("_verdict").is_dir() {
                continue;
            }
            walk(&path, out, unreadable, false)?;
        } else if DIR_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            out.push(path);
        }
    }
    Ok(())
}

/// Opens an input, detecting gzip and zstd by their magic bytes, whatever the file is called.
///
/// # Errors
/// When the file cannot be opened or its first bytes read.
pub fn open(input: &Input) -> Result<Box<dyn Read + Send>> {
    let (raw, name): (Box<dyn Read + Send>, String) = match input {
        Input::Stdin => (Box::new(io::stdin()), "-".into()),
        Input::File(p) => {
            let f = File::open(p).map_err(|source| Error::Read {
                file: p.display().to_string(),
                source,
            })?;
            (Box::new(f), p.display().to_string())
        }
    };
    open_reader(raw, &name)
}

/// Wraps an already opened reader in the decompressor its magic bytes call for.
///
/// # Errors
/// When its first bytes cannot be read.
pub fn open_reader(raw: Box<dyn Read + Send>, name: &str) -> Result<Box<dyn Read + Send>> {
    let name = name.to_string();
    let mut buf = BufReader::with_capacity(1 << 20, raw);
    let head = buf.fill_buf().map_err(|source| Error::Read {
        file: name.clone(),
        source,
    })?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(buf))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::Decoder::with_buffer(buf).map_err(|source| Error::Read { file: name, source })?,
        )
    } else {
        Box::new(buf)
    })
}

/// A content fingerprint: a hash of the first 4 KiB (after decompression) and the total size.
pub fn fingerprint(head: &[u8], size: u64) -> String {
    let n = head.len().min(4096);
    format!("{:016x}-{size}", xxh3_64(&head[..n]))
}

/// The UTF-8 byte order mark, skipped at the start of an input.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A run of whole lines from one input.
#[derive(Debug)]
pub struct Chunk {
    /// Position of the chunk in the whole ingest (for ordering).
    pub seq: u64,
    /// Index of the input in the resolved list.
    pub input: usize,
    /// 1-based number of the first line in the chunk.
    pub first_line: u64,
    /// The bytes: whole lines, each ending in `\n` except perhaps the input's last.
    pub bytes: Vec<u8>,
    /// Lines longer than the bound, replaced by their first bytes: (line number, prefix, length).
    pub oversized: Vec<(u64, Vec<u8>, u64)>,
}

/// The most lines a piece of `bytes` bytes of input is decoded at once as: one per 64 bytes.
///
/// What a piece of input costs once decoded grows with its lines, not its bytes (a quarantined
/// line becomes a record of its own, a hundred bytes or more however short the line), so the
/// pieces that readers hand to decoders are bounded in lines as well: a file of tiny lines (`{}`,
/// 3 bytes each) is cut into pieces of as many lines as one of 64-byte lines. No decision record
/// is that short, so real logs are cut by bytes alone.
pub fn max_lines_for(bytes: usize) -> usize {
    (bytes / 64).max(1)
}

/// Where the first `max_lines` whole lines of `bytes` end (all its whole lines, if fewer), how
/// many lines that is, and whether another whole line follows them. `None` when `bytes` holds
/// no whole line (no `\n`).
pub fn whole_lines(bytes: &[u8], max_lines: usize) -> Option<(usize, u64, bool)> {
    let max = max_lines.max(1) as u64;
    let mut end = None;
    let mut lines = 0u64;
    for pos in memchr::memchr_iter(b'\n', bytes) {
        lines += 1;
        end = Some(pos + 1);
        if lines == max {
            break;
        }
    }
    let end = end?;
    let more = lines == max && memchr::memchr(b'\n', &bytes[end..]).is_some();
    Some((end, lines, more))
}

/// Cuts a reader into [`Chunk`]s of about `chunk_bytes`, never splitting a line, and replaces a
/// line longer than `max_line` by a record of it (so one huge line cannot exhaust memory).
///
/// A chunk also holds at most [`max_lines_for`]`(chunk_bytes)` lines: a 2 MiB chunk of `{}`
/// lines would otherwise be 700,000 quarantine records at once.
pub struct Chunker<R> {
    reader: R,
    input: usize,
    chunk_bytes: usize,
    max_line: usize,
    max_lines: usize,
    /// Bytes read and not yet handed out: whole lines (when `whole` is set) and the start of an
    /// unfinished line.
    carry: Vec<u8>,
    /// Whether `carry` holds at least one whole line: the last chunk stopped at `max_lines`.
    whole: bool,
    next_line: u64,
    skipping: Option<(u64, Vec<u8>, u64)>,
    eof: bool,
    /// Bytes read so far.
    pub bytes_read: u64,
    /// The first bytes of the input, for the fingerprint.
    pub head: Vec<u8>,
    /// A read error met after some bytes of the same read: those bytes are cut into chunks
    /// first, the error is returned by the next call.
    pending: Option<io::Error>,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader`, the `input`-th input.
    pub fn new(reader: R, input: usize, chunk_bytes: usize, max_line: usize) -> Self {
        Self {
            reader,
            input,
            chunk_bytes: chunk_bytes.max(1024),
            max_line: max_line.max(16),
            max_lines: max_lines_for(chunk_bytes.max(1024)),
            carry: Vec::new(),
            whole: false,
            next_line: 1,
            skipping: None,
            eof: false,
            bytes_read: 0,
            head: Vec::new(),
            pending: None,
        }
    }

    /// Lines counted so far (the number of the next line minus one).
    pub fn lines(&self) -> u64 {
        self.next_line - 1
    }

    /// The most lines a chunk holds.
    pub fn max_lines(&self) -> usize {
        self.max_lines
    }

    /// See [`whole_lines`], on the carry.
    fn cut(&self) -> Option<(usize, u64, bool)> {
        whole_lines(&self.carry, self.max_lines)
    }

    /// The carry's first `end` bytes, removed from it. When much follows them (`more`: the chunk
    /// stopped at `max_lines`), they are copied out and the carry keeps its buffer; otherwise
    /// the little that follows is what is copied.
    fn split_carry(&mut self, end: usize, more: bool) -> Vec<u8> {
        if more {
            let bytes = self.carry[..end].to_vec();
            self.carry.drain(..end);
            bytes
        } else {
            let rest = self.carry.split_off(end);
            std::mem::replace(&mut self.carry, rest)
        }
    }

    /// The carry's first whole lines (at most `max_lines`) as a chunk; what follows them stays.
    /// When no whole line remains, the rest is an unfinished line, checked against the bound.
    fn take_lines(
        &mut self,
        end: usize,
        lines: u64,
        more: bool,
        oversized: Vec<(u64, Vec<u8>, u64)>,
    ) -> Chunk {
        let bytes = self.split_carry(end, more);
        let first_line = self.next_line;
        self.next_line += lines;
        self.whole = more;
        if !more {
            self.check_carry();
        }
        Chunk {
            seq: 0,
            input: self.input,
            first_line,
            bytes,
            oversized,
        }
    }

    /// The next chunk, or `None` at the end of the input. `seq` is left at 0 for the caller.
    ///
    /// # Errors
    /// When reading fails.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        let mut oversized = Vec::new();
        loop {
            if self.whole && !self.eof {
                // Lines left by a chunk that stopped at `max_lines`: handed out before any read.
                if let Some((end, lines, more)) = self.cut() {
                    return Ok(Some(self.take_lines(end, lines, more, oversized)));
                }
                self.whole = false;
            }
            if self.eof {
                if self.carry.is_empty() && oversized.is_empty() {
                    return Ok(None);
                }
                if let Some((end, lines, true)) = self.cut() {
                    // More whole lines than a chunk holds; the input's last line (perhaps
                    // without a newline) goes with the final chunk.
                    return Ok(Some(self.take_lines(end, lines, true, oversized)));
                }
                let bytes = std::mem::take(&mut self.carry);
                let first_line = self.next_line;
                if !bytes.is_empty() {
                    self.next_line += 1 + memchr::memchr_iter(b'\n', &bytes).count() as u64;
                    if bytes.last() == Some(&b'\n') {
                        self.next_line -= 1;
                    }
                }
                return Ok(Some(Chunk {
                    seq: 0,
                    input: self.input,
                    first_line,
                    bytes,
                    oversized,
                }));
            }
            if let Some(e) = self.pending.take() {
                // The unfinished line at the damage is not a line: it is dropped.
                self.carry.clear();
                self.skipping = None;
                return Err(e);
            }
            let start = self.carry.len();
            self.carry.resize(start + self.chunk_bytes, 0);
            let mut n = match read_full(&mut self.reader, &mut self.carry[start..]) {
                (n, None) => n,
                (0, Some(e)) => {
                    self.carry.truncate(start);
                    self.carry.clear();
                    return Err(e);
                }
                (n, Some(e)) => {
                    self.pending = Some(e);
                    n
                }
            };
            self.carry.truncate(start + n);
            self.bytes_read += n as u64;
            // A UTF-8 byte order mark at the start of the input is not part of its first line.
            if self.bytes_read == n as u64 && self.carry.starts_with(UTF8_BOM) {
                self.carry.drain(..UTF8_BOM.len());
                n -= UTF8_BOM.len();
            }
            if self.head.len() < 4096 {
                let take = (4096 - self.head.len()).min(n);
                self.head
                    .extend_from_slice(&self.carry[start..start + take]);
            }
            if n == 0 {
                self.eof = true;
                if let Some((line, prefix, len)) = self.skipping.take() {
                    oversized.push((line, prefix, len));
                    self.next_line += 1;
                }
                continue;
            }
            if let Some((line, prefix, len)) = &mut self.skipping {
                match memchr::memchr(b'\n', &self.carry[start..]) {
                    Some(pos) => {
                        *len += pos as u64;
                        oversized.push((*line, std::mem::take(prefix), *len));
                        self.skipping = None;
                        self.next_line += 1;
                        self.carry.drain(..start + pos + 1);
                    }
                    None => {
                        *len += n as u64;
                        self.carry.truncate(start);
                        continue;
                    }
                }
            }
            match self.cut() {
                Some((end, lines, more)) => {
                    // Whole lines; a line in them may still exceed the bound, which the decoder
                    // checks. The unfinished line after them must not grow past the bound either.
                    return Ok(Some(self.take_lines(end, lines, more, oversized)));
                }
                None => {
                    self.check_carry();
                    if !oversized.is_empty() {
                        return Ok(Some(Chunk {
                            seq: 0,
                            input: self.input,
                            first_line: self.next_line,
                            bytes: Vec::new(),
                            oversized,
                        }));
                    }
                }
            }
        }
    }

    /// A carry (the start of an unfinished line) longer than the bound becomes an oversized line.
    fn check_carry(&mut self) {
        if self.carry.len() > self.max_line {
            let prefix = self.carry[..self.carry.len().min(4096)].to_vec();
            self.skipping = Some((self.next_line, prefix, self.carry.len() as u64));
            self.carry.clear();
        }
    }
}

/// Fills `buf` as far as the reader goes; returns the bytes read and the error that stopped it
/// early, if one did (the bytes before it are good).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (filled, Some(e)),
        }
    }
    (filled, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_chunks(data: &[u8], chunk: usize, max_line: usize) -> Vec<Chunk> {
        let mut c = Chunker::new(data, 0, chunk, max_line);
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push(ch);
        }
        out
    }

    fn lines_of(chunks: &[Chunk]) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for c in chunks {
            for (n, l) in (c.first_line..).zip(c.bytes.split(|&b| b == b'\n')) {
                if !l.is_empty() {
                    out.push((n, String::from_utf8_lossy(l).into_owned()));
                }
            }
        }
        out
    }

    #[test]
    fn chunks_keep_lines_whole_and_numbered() {
        let data: String = (1..=500).map(|i| format!("line-{i}\n")).collect();
        let chunks = all_chunks(data.as_bytes(), 1024, 1 << 20);
        assert!(chunks.len() > 2);
        let lines = lines_of(&chunks);
        assert_eq!(lines.len(), 500);
        assert_eq!(lines[0], (1, "line-1".to_string()));
        assert_eq!(lines[499], (500, "line-500".to_string()));
        assert!(lines
            .iter()
            .enumerate()
            .all(|(i, (n, l))| *n == i as u64 + 1 && *l == format!("line-{n}")));
    }

    #[test]
    fn last_line_without_newline_is_kept() {
        let lines = lines_of(&all_chunks(b"a\nb\nc", 1024, 1 << 20));
        assert_eq!(lines, [(1, "a".into()), (2, "b".into()), (3, "c".into())]);
    }

    #[test]
    fn oversized_lines_are_cut_out_and_numbering_continues() {
        let mut data = b"short\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 5000));
        data.extend_from_slice(b"\nafter\n");
        let chunks = all_chunks(&data, 1024, 2048);
        let over: Vec<_> = chunks.iter().flat_map(|c| c.oversized.iter()).collect();
        assert_eq!(over.len(), 1);
        assert_eq!(over[0].0, 2);
        assert_eq!(over[0].2, 5000);
        let lines = lines_of(&chunks);
        assert_eq!(lines, [(1, "short".into()), (3, "after".into())]);
    }

    #[test]
    fn oversized_last_line_at_eof() {
        let mut data = b"ok\n".to_vec();
        data.extend(std::iter::repeat_n(b'y', 3000));
        let chunks = all_chunks(&data, 1024, 2048);
        let over: Vec<_> = chunks.iter().flat_map(|c| c.oversized.iter()).collect();
        assert_eq!(over.len(), 1);
        assert_eq!((over[0].0, over[0].2), (2, 3000));
    }

    /// Lines in a chunk, counting a last line without its newline.
    fn line_count(c: &Chunk) -> usize {
        let n = memchr::memchr_iter(b'\n', &c.bytes).count();
        n + usize::from(!c.bytes.is_empty() && c.bytes.last() != Some(&b'\n'))
    }

    #[test]
    fn tiny_lines_are_cut_at_max_lines() {
        let mut data = b"{}\n".repeat(10_000);
        data.extend_from_slice(b"{}");
        let chunks = all_chunks(&data, 1024, 1 << 20);
        assert_eq!(Chunker::new(&b""[..], 0, 1024, 1 << 20).max_lines(), 16);
        assert!(chunks
            .iter()
            .all(|c| line_count(c) <= 16 && c.oversized.is_empty()));
        assert!(chunks.len() >= 10_001 / 16);
        let lines = lines_of(&chunks);
        assert_eq!(lines.len(), 10_001);
        assert!(lines
            .iter()
            .enumerate()
            .all(|(i, (n, l))| *n == i as u64 + 1 && l == "{}"));
        let bytes: Vec<u8> = chunks
            .iter()
            .flat_map(|c| c.bytes.iter().copied())
            .collect();
        assert_eq!(bytes, data);
    }

    #[test]
    fn tiny_lines_around_an_oversized_line() {
        let mut data = b"{}\n".repeat(100);
        data.extend(std::iter::repeat_n(b'x', 5000));
        data.push(b'\n');
        data.extend(b"[]\n".repeat(100));
        let chunks = all_chunks(&data, 1024, 2048);
        assert!(chunks.iter().all(|c| line_count(c) <= 16));
        let over: Vec<_> = chunks.iter().flat_map(|c| c.oversized.iter()).collect();
        assert_eq!(over.len(), 1);
        assert_eq!((over[0].0, over[0].2), (101, 5000));
        let lines = lines_of(&chunks);
        assert_eq!(lines.len(), 200);
        assert_eq!(lines[99], (100, "{}".into()));
        assert_eq!(lines[100], (102, "[]".into()));
        assert_eq!(lines[199], (201, "[]".into()));
    }

    /// Hands out `data` in one read, then fails.
    struct FailsAfter<'a>(&'a [u8]);

    impl Read for FailsAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk went away"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn whole_lines_before_a_read_error_are_all_handed_out() {
        let mut data = b"{}\n".repeat(300);
        data.extend_from_slice(b"{\"unfinish");
        let mut c = Chunker::new(FailsAfter(&data), 0, 1024, 1 << 20);
        let mut chunks = Vec::new();
        let err = loop {
            match c.next_chunk() {
                Ok(Some(ch)) => chunks.push(ch),
                Ok(None) => panic!("the error must be returned"),
                Err(e) => break e,
            }
        };
        assert_eq!(err.to_string(), "disk went away");
        assert!(chunks.iter().all(|c| line_count(c) <= 16));
        let lines = lines_of(&chunks);
        assert_eq!(lines.len(), 300);
        assert_eq!(lines[299], (300, "{}".into()));
    }

    #[test]
    fn gzip_and_zstd_are_detected_by_magic() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("a.log");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let zs = dir.path().join("b.jsonl.zst");
        std::fs::write(&zs, zstd::encode_all(&b"world\n"[..], 1).unwrap()).unwrap();
        for (p, want) in [(gz, "hello\n"), (zs, "world\n")] {
            let mut s = String::new();
            open(&Input::File(p))
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            assert_eq!(s, want);
        }
    }

    #[test]
    fn resolve_dirs_globs_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::create_dir_all(d.join("verdict-warehouse/_verdict")).unwrap();
        std::fs::create_dir_all(d.join("verdict-warehouse/quarantine")).unwrap();
        for f in [
            "b.jsonl",
            "a.jsonl.gz",
            "sub/c.jsonl.zst",
            "notes.txt",
            ".hidden.jsonl",
            "verdict-warehouse/quarantine/t.jsonl",
        ] {
            std::fs::write(d.join(f), b"").unwrap();
        }
        let got = resolve(&[d.display().to_string()]).unwrap();
        let names: Vec<_> = got
            .iter()
            .map(|i| i.name().replace(&d.display().to_string(), ""))
            .collect();
        assert_eq!(names, ["/a.jsonl.gz", "/b.jsonl", "/sub/c.jsonl.zst"]);
        let globbed = resolve(&[
            format!("{}/*.jsonl", d.display()),
            format!("{}/b.jsonl", d.display()),
        ])
        .unwrap();
        assert_eq!(globbed.len(), 1, "a file named twice is read once");
        let e = resolve(&[format!("{}/*.nope", d.display())])
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("*.nope: the pattern matched no files"), "{e}");
        let e = resolve(&["/no/such/file.jsonl".into()])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "/no/such/file.jsonl: no such file or directory");
        assert_eq!(resolve(&["-".into(), "-".into()]).unwrap(), [Input::Stdin]);
    }
}
