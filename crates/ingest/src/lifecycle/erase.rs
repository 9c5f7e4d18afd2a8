//! [`erase`]: one identity's rows deleted from `decisions` (or pseudonymised in place), the
//! rollups of the days touched recomputed, and the quarantined lines that name it removed (or
//! rewritten). Refused whole when a legal hold covers any of those rows.

use std::collections::BTreeSet;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::compute::{filter_record_batch, not};
use arrow::datatypes::{DataType, TimestampMicrosecondType};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::Value;
use sha2::Sha256;
use verdict_schema::idx;
use verdict_schema::time::{day_number, day_string, Clock};
use verdict_table::{quarantine_col, quarantine_schema, Hold, Location, Operation, Table};

use super::{covers, opt, read, Held, Run, TableChange, Trace, Work};
use crate::compact::write_batches;
use crate::error::{Error, Result};
use crate::writer::{writer_properties, StagedPart};

/// What to erase.
#[derive(Debug, Clone)]
pub struct EraseOptions {
    /// The warehouse.
    pub warehouse: Location,
    /// The identity: rows whose `identity` or `identity_id` equals it.
    pub identity: String,
    /// Only rows at or after this instant (UTC microseconds).
    pub since: Option<i64>,
    /// Only rows before this instant.
    pub until: Option<i64>,
    /// Replace the identity by its keyed pseudonym instead of deleting the rows.
    pub pseudonymise: bool,
    /// Count what would change; write nothing.
    pub dry_run: bool,
    /// Who asked and why.
    pub trace: Trace,
    /// Signs the change's links of the integrity chain (`--signing-key`).
    pub signing_key: Option<verdict_table::SigningKey>,
}

/// What an erasure did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EraseSummary {
    /// The identity's pseudonym (what the commits record instead of the identity).
    pub subject: String,
    /// Whether rows were pseudonymised rather than deleted.
    pub pseudonymised: bool,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Decisions rows deleted or pseudonymised.
    pub rows: u64,
    /// Quarantined lines removed or rewritten.
    pub quarantined: u64,
    /// The days whose files changed.
    pub days: Vec<String>,
    /// Per table.
    pub tables: Vec<TableChange>,
}

/// Keyed pseudonyms: `pseudonym:` and the first 8 bytes of HMAC-SHA256 under the warehouse's
/// redaction key, in hex. The same value always gets the same pseudonym in one warehouse.
struct Pseudonyms(Vec<u8>);

impl Pseudonyms {
    fn of(&self, value: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(value.as_bytes());
        let d = mac.finalize().into_bytes();
        let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("pseudonym:{hex}")
    }

    /// Replaces every occurrence of `values` (and their JSON-escaped forms) by their
    /// pseudonyms, longest first, in one pass.
    fn replacer(&self, values: &[&str]) -> Replacer {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for v in values.iter().filter(|v| !v.is_empty()) {
            let p = self.of(v);
            let escaped = serde_json::to_string(v).unwrap_or_default();
            let escaped = escaped.trim_matches('"').to_string();
            if escaped != *v {
                pairs.push((escaped, p.clone()));
            }
            pairs.push(((*v).to_string(), p));
        }
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(pairs.iter().map(|p| &p.0))
            .expect("literal patterns build");
        Replacer { ac, pairs }
    }
}

struct Replacer {
    ac: AhoCorasick,
    pairs: Vec<(String, String)>,
}

impl Replacer {
    fn apply(&self, text: &str) -> String {
        let with: Vec<&str> = self.pairs.iter().map(|p| p.1.as_str()).collect();
        self.ac.replace_all(text, &with)
    }

    fn apply_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let with: Vec<&[u8]> = self.pairs.iter().map(|p| p.1.as_bytes()).collect();
        self.ac.replace_all_bytes(bytes, &with)
    }
}

/// Deletes (or pseudonymises) one identity's rows; see the module docs.
///
/// # Errors
/// An empty identity; a warehouse with nothing in it; a hold covering a row to change
/// ([`Error::Held`], nothing written); a file that cannot be read; a failed commit.
pub fn erase(opts: &EraseOptions, clock: &dyn Clock) -> Result<EraseSummary> {
    if opts.identity.trim().is_empty() {
        return Err(Error::Config("--identity must not be empty".into()));
    }
    let operation = if opts.pseudonymise {
        "pseudonymise"
    } else {
        "erase"
    };
    let mut run = Run::open(
        &opts.warehouse,
        opts.signing_key.clone(),
        clock,
        operation,
        &opts.trace,
    )?;
    let keys = Pseudonyms(verdict_table::block_on(run.wh.redaction_key())?);
    let subject = keys.of(&opts.identity);
    run.info
        .insert("verdict.subject".into(), Value::from(subject.as_str()));
    let holds = verdict_table::block_on(run.wh.holds())?;
    let mut held = Held::default();
    let (decisions, days) = erase_decisions(&run, opts, &keys, &holds, &mut held)?;
    let quarantine = erase_quarantine(&run, opts, &keys, &holds, &mut held)?;
    held.refuse(if opts.pseudonymise {
        "pseudonymisation"
    } else {
        "erasure"
    })?;
    let mut summary = EraseSummary {
        subject,
        pseudonymised: opts.pseudonymise,
        dry_run: opts.dry_run,
        rows: decisions.rows_removed + decisions.rows_rewritten,
        quarantined: quarantine.rows_removed + quarantine.rows_rewritten,
        days: days.iter().cloned().collect(),
        tables: Vec::new(),
    };
    if opts.dry_run || (decisions.is_empty() && quarantine.is_empty()) {
        summary.tables = vec![decisions.summary(None), quarantine.summary(None)];
        return Ok(summary);
    }
    let op = if opts.pseudonymise {
        Operation::Pseudonymise
    } else {
        Operation::Erase
    };
    if !decisions.is_empty() {
        let base = run.latest(Table::Decisions)?.ok_or_else(no_table)?;
        summary
            .tables
            .push(run.commit(&base, op, &decisions, Vec::new())?);
        let after = run.latest(Table::Decisions)?.ok_or_else(no_table)?;
        summary
            .tables
            .extend(run.recompute_rollups(&after, &days, op)?);
        // The dedup index keeps the keys of erased rows (hashes, no value of theirs): a
        // re-ingest of the original logs does not bring them back.
        if let Some(base) = run.latest(Table::EventKeys)? {
            run.commit(
                &base,
                op,
                &Work::new(Table::EventKeys),
                covers(after.version),
            )?;
        }
    }
    if !quarantine.is_empty() {
        let base = run.latest(Table::Quarantine)?.ok_or_else(no_table)?;
        summary
            .tables
            .push(run.commit(&base, op, &quarantine, Vec::new())?);
    }
    Ok(summary)
}

fn no_table() -> Error {
    Error::Internal("a table vanished during the erasure".into())
}

/// Which rows of `b` belong to the identity within the range.
fn matching(b: &RecordBatch, opts: &EraseOptions) -> Result<BooleanArray> {
    let col = |i: usize, name: &str| {
        b.column(i)
            .as_string_opt::<i32>()
            .ok_or_else(|| Error::Internal(format!("decisions column {name} is not text")))
    };
    let identity = col(idx::IDENTITY, "identity")?;
    let identity_id = col(idx::IDENTITY_ID, "identity_id")?;
    let ts = b
        .column(idx::TS)
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| Error::Internal("decisions column ts is not a timestamp".into()))?;
    let want = opts.identity.as_str();
    Ok((0..b.num_rows())
        .map(|r| {
            let t = ts.value(r);
            let who = (identity.is_valid(r) && identity.value(r) == want)
                || (identity_id.is_valid(r) && identity_id.value(r) == want);
            Some(who && opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t < u))
        })
        .collect())
}

fn day_in_range(day: Option<&str>, opts: &EraseOptions) -> bool {
    let Some(d) = day else { return true };
    let lo = opts.since.map(|s| day_string(day_number(s)));
    let hi = opts.until.map(|u| day_string(day_number(u - 1)));
    lo.is_none_or(|l| d >= l.as_str()) && hi.is_none_or(|h| d <= h.as_str())
}

fn count_held(b: &RecordBatch, m: &BooleanArray, holds: &[Hold], held: &mut Held) {
    if holds.is_empty() {
        return;
    }
    let identity = b.column(idx::IDENTITY).as_string::<i32>();
    let identity_id = b.column(idx::IDENTITY_ID).as_string::<i32>();
    let ts = b.column(idx::TS).as_primitive::<TimestampMicrosecondType>();
    for h in holds {
        let n = (0..b.num_rows())
            .filter(|&r| m.value(r))
            .filter(|&r| h.covers(ts.value(r), &[opt(identity, r), opt(identity_id, r)]))
            .count() as u64;
        if n > 0 {
            held.add(h, n);
        }
    }
}

fn erase_decisions(
    run: &Run,
    opts: &EraseOptions,
    keys: &Pseudonyms,
    holds: &[Hold],
    held: &mut Held,
) -> Result<(Work, BTreeSet<String>)> {
    let mut w = Work::new(Table::Decisions);
    let mut days = BTreeSet::new();
    let Some(snap) = run.latest(Table::Decisions)? else {
        return Ok((w, days));
    };
    let props = writer_properties(1, 64 * 1024)?;
    for (n, f) in snap.files.iter().enumerate() {
        if !day_in_range(f.partition.as_deref(), opts) {
            continue;
        }
        let (sha, batches) = read(&run.wh, Table::Decisions, &f.path)?;
        let mut out = Vec::with_capacity(batches.len());
        let mut matched = 0u64;
        for b in batches {
            let m = matching(&b, opts)?;
            let k = m.true_count() as u64;
            if k == 0 {
                out.push(b);
                continue;
            }
            count_held(&b, &m, holds, held);
            matched += k;
            out.push(if opts.pseudonymise {
                pseudonymise_rows(&b, &m, keys, &opts.identity)?
            } else {
                filter_record_batch(&b, &not(&m)?)?
            });
        }
        if matched == 0 {
            continue;
        }
        days.extend(f.partition.clone());
        w.remove(f, sha);
        if opts.pseudonymise {
            w.rows_rewritten += matched;
        } else {
            w.rows_removed += matched;
        }
        let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
        if opts.dry_run || rows == 0 {
            continue;
        }
        let all = arrow::compute::concat_batches(&Table::Decisions.file_schema(), &out)?;
        let rel = Table::Decisions.file_path(f.partition.as_deref(), &run.id, Some(n));
        let path = run.staged_path(Table::Decisions, &rel);
        write_batches(&path, &all, &props, 64 * 1024)?;
        let bytes = std::fs::metadata(&path)
            .map_err(Error::io("reading", &path))?
            .len();
        w.adds.push(StagedPart {
            staged: path,
            table: Table::Decisions,
            rel_final: rel,
            day: f.partition.clone().unwrap_or_default(),
            rows: rows as u64,
            bytes,
            min_ts: 0,
            max_ts: 0,
        });
    }
    Ok((w, days))
}

/// The rows of `b` with the identity's values replaced by pseudonyms in every text column but
/// `event_id` (the dedup key), where `m` is set.
fn pseudonymise_rows(
    b: &RecordBatch,
    m: &BooleanArray,
    keys: &Pseudonyms,
    subject: &str,
) -> Result<RecordBatch> {
    let identity = b.column(idx::IDENTITY).as_string::<i32>();
    let identity_id = b.column(idx::IDENTITY_ID).as_string::<i32>();
    let replacers: Vec<Option<Replacer>> = (0..b.num_rows())
        .map(|r| {
            m.value(r).then(|| {
                let mut v = vec![subject];
                for a in [identity, identity_id] {
                    if a.is_valid(r) {
                        v.push(a.value(r));
                    }
                }
                keys.replacer(&v)
            })
        })
        .collect();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(b.num_columns());
    for (i, c) in b.columns().iter().enumerate() {
        if i == idx::EVENT_ID || c.data_type() != &DataType::Utf8 {
            cols.push(c.clone());
            continue;
        }
        let s = c.as_string::<i32>();
        let new: StringArray = (0..s.len())
            .map(|r| {
                if !s.is_valid(r) {
                    return None;
                }
                Some(match &replacers[r] {
                    Some(rep) => rep.apply(s.value(r)),
                    None => s.value(r).to_string(),
                })
            })
            .collect();
        cols.push(Arc::new(new));
    }
    Ok(RecordBatch::try_new(b.schema(), cols)?)
}

fn erase_quarantine(
    run: &Run,
    opts: &EraseOptions,
    keys: &Pseudonyms,
    holds: &[Hold],
    held: &mut Held,
) -> Result<Work> {
    use quarantine_col as q;
    let mut w = Work::new(Table::Quarantine);
    // A quarantined line has no trusted time of its call: only a request for every row of the
    // identity reaches the quarantine.
    if opts.since.is_some() || opts.until.is_some() {
        return Ok(w);
    }
    let Some(snap) = run.latest(Table::Quarantine)? else {
        return Ok(w);
    };
    let schema = quarantine_schema();
    let ci = |name: &str| schema.index_of(name).expect("a quarantine column");
    let (raw_i, msg_i, b64_i, at_i) = (
        ci(q::RAW),
        ci(q::MESSAGE),
        ci(q::RAW_BASE64),
        ci(q::QUARANTINED_AT),
    );
    let rep = keys.replacer(&[opts.identity.as_str()]);
    let b64 = base64::engine::general_purpose::STANDARD;
    let names = |text: &str| text.contains(opts.identity.as_str());
    for (n, f) in snap.files.iter().enumerate() {
        let (sha, batches) = read(&run.wh, Table::Quarantine, &f.path)?;
        let mut out = Vec::with_capacity(batches.len());
        let mut matched = 0u64;
        for b in batches {
            let raw = b.column(raw_i).as_string::<i32>();
            let msg = b.column(msg_i).as_string::<i32>();
            let enc = b.column(b64_i).as_string::<i32>();
            let at = b.column(at_i).as_primitive::<TimestampMicrosecondType>();
            let decoded = |r: usize| {
                enc.is_valid(r)
                    .then(|| b64.decode(enc.value(r)).unwrap_or_default())
            };
            let m: BooleanArray = (0..b.num_rows())
                .map(|r| {
                    Some(
                        names(raw.value(r))
                            || (msg.is_valid(r) && names(msg.value(r)))
                            || decoded(r).is_some_and(|d| {
                                memchr::memmem::find(&d, opts.identity.as_bytes()).is_some()
                            }),
                    )
                })
                .collect();
            let k = m.true_count() as u64;
            if k == 0 {
                out.push(b);
                continue;
            }
            for h in holds {
                let c = (0..b.num_rows())
                    .filter(|&r| m.value(r) && h.covers_text(at.value(r), raw.value(r)))
                    .count() as u64;
                if c > 0 {
                    held.add(h, c);
                }
            }
            matched += k;
            if !opts.pseudonymise {
                out.push(filter_record_batch(&b, &not(&m)?)?);
                continue;
            }
            let mut cols: Vec<ArrayRef> = b.columns().to_vec();
            let text = |a: &StringArray| -> StringArray {
                (0..a.len())
                    .map(|r| {
                        a.is_valid(r).then(|| {
                            if m.value(r) {
                                rep.apply(a.value(r))
                            } else {
                                a.value(r).to_string()
                            }
                        })
                    })
                    .collect()
            };
            cols[raw_i] = Arc::new(text(raw));
            cols[msg_i] = Arc::new(text(msg));
            cols[b64_i] = Arc::new(
                (0..b.num_rows())
                    .map(|r| {
                        decoded(r).map(|d| {
                            if m.value(r) {
                                b64.encode(rep.apply_bytes(&d))
                            } else {
                                enc.value(r).to_string()
                            }
                        })
                    })
                    .collect::<StringArray>(),
            );
            out.push(RecordBatch::try_new(b.schema(), cols)?);
        }
        if matched == 0 {
            continue;
        }
        w.remove(f, sha);
        if opts.pseudonymise {
            w.rows_rewritten += matched;
        } else {
            w.rows_removed += matched;
        }
        if opts.dry_run {
            continue;
        }
        w.adds.extend(run.stage_quarantine(n, &schema, &out)?);
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_keyed_stable_and_replace_longest_first() {
        let k = Pseudonyms(vec![7; 32]);
        let p = k.of("alice");
        assert!(p.starts_with("pseudonym:") && p.len() == 26, "{p}");
        assert_eq!(p, k.of("alice"));
        assert_ne!(p, Pseudonyms(vec![8; 32]).of("alice"));
        let r = k.replacer(&["alice", "gr_alice", "a\"b"]);
        assert_eq!(
            r.apply(r#"{"grant_id":"gr_alice","grant_label":"alice","x":"a\"b"}"#),
            format!(
                r#"{{"grant_id":"{}","grant_label":"{p}","x":"{}"}}"#,
                k.of("gr_alice"),
                k.of("a\"b")
            )
        );
    }

    #[test]
    fn a_range_reaches_the_days_it_overlaps() {
        let opts = |since: Option<&str>, until: Option<&str>| EraseOptions {
            warehouse: Location::from(std::path::Path::new("/nowhere")),
            identity: "x".into(),
            since: since.and_then(verdict_schema::time::parse_rfc3339_micros),
            until: until.and_then(verdict_schema::time::parse_rfc3339_micros),
            pseudonymise: false,
            dry_run: true,
            trace: Trace::default(),
            signing_key: None,
        };
        let o = opts(Some("2026-11-02T10:00:00Z"), Some("2026-11-04T00:00:00Z"));
        let days: Vec<bool> = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
            .iter()
            .map(|d| day_in_range(Some(d), &o))
            .collect();
        assert_eq!(days, [false, true, true, false]);
        assert!(day_in_range(Some("1999-01-01"), &opts(None, None)));
    }
}
