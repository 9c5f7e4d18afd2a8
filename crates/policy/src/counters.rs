//! Counter buckets for limits: one table per `(window, sliding)` class, keyed by (counter, scope key), with
//! borrowed-key lookups and amortised expiry. Knows nothing of tools or outcomes; `eval` decides what to charge.
//!
//! Fixed windows are aligned to UTC (the epoch is midnight UTC and Unix time has no leap seconds, so a
//! window is `ts.div_euclid(len)`). When time crosses a window boundary the class is swept: buckets last
//! charged before the previous window are dropped, so a key active in consecutive windows keeps its
//! allocation while memory stays within about twice the live buckets. Sliding classes are swept every
//! window length, dropping buckets whose newest charge is more than two windows old. A sweep visits only
//! buckets charged since the previous sweep or the one before, so its cost is amortised over those charges.

use std::collections::VecDeque;
use std::hash::BuildHasher;

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

use crate::policy::{CounterDef, FastState, Policy};

/// Where a scope key came from. Keys from different fields never share a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Tag {
    IdentityId,
    Identity,
    Session,
    Server,
    Global,
    /// The scope's field (and its fallbacks) is unknown: one shared bucket per counter.
    Unknown,
}

/// A borrowed scope key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key<'a> {
    pub(crate) tag: Tag,
    pub(crate) text: &'a str,
}

impl Key<'_> {
    pub(crate) const UNKNOWN: Key<'static> = Key {
        tag: Tag::Unknown,
        text: "",
    };
    pub(crate) const GLOBAL: Key<'static> = Key {
        tag: Tag::Global,
        text: "",
    };
}

/// Up to this many bytes of a key are stored inside the bucket, so that a lookup reads no other memory.
const INLINE: usize = 22;

/// An owned key text: inline when short (ids, labels, session ids usually are), boxed otherwise.
#[derive(Debug)]
enum KeyText {
    Inline(u8, [u8; INLINE]),
    Boxed(Box<str>),
}

impl KeyText {
    fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= INLINE => {
                let mut buf = [0; INLINE];
                buf[..bytes.len()].copy_from_slice(bytes);
                KeyText::Inline(len, buf)
            }
            _ => KeyText::Boxed(Box::from(text)),
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            KeyText::Inline(len, buf) => &buf[..usize::from(*len)],
            KeyText::Boxed(s) => s.as_bytes(),
        }
    }
}

/// The charges a bucket holds.
#[derive(Debug)]
enum Charges {
    /// Fixed window: `count` charges in window `window`.
    Fixed { window: i64, count: u64 },
    /// Sliding window: charge times, oldest first, at most `CounterDef::keep` of them. Boxed so that a
    /// bucket stays within a cache line (see the test `bucket_fits_a_cache_line`).
    #[allow(clippy::box_collection)]
    Sliding(Box<VecDeque<i64>>),
}

#[derive(Debug)]
struct Bucket {
    hash: u64,
    counter: u32,
    tag: Tag,
    key: KeyText,
    charges: Charges,
}

impl Bucket {
    #[inline]
    fn is(&self, counter: u32, key: Key<'_>) -> bool {
        self.counter == counter
            && self.tag == key.tag
            && bytes_eq(self.key.as_bytes(), key.text.as_bytes())
    }

    /// The charges that count at time `t`.
    #[inline]
    fn count(&self, class: &Class, t: i64) -> u64 {
        match &self.charges {
            Charges::Fixed { window, count } => {
                if *window == class.current {
                    *count
                } else {
                    0
                }
            }
            Charges::Sliding(times) => {
                let horizon = t.saturating_sub(class.len);
                (times.len() - times.partition_point(|&c| c <= horizon)) as u64
            }
        }
    }

    #[inline]
    fn charge(&mut self, keep: u64, len: i64, current: i64, t: i64) {
        match &mut self.charges {
            Charges::Fixed { window, count } => {
                if *window != current {
                    *window = current;
                    *count = 0;
                }
                *count = count.saturating_add(1);
            }
            Charges::Sliding(times) => {
                let horizon = t.saturating_sub(len);
                while times.front().is_some_and(|&c| c <= horizon) {
                    times.pop_front();
                }
                if times.len() as u64 >= keep {
                    times.pop_front();
                }
                times.push_back(t);
            }
        }
    }

    /// Whether the bucket must be kept at a sweep of `class` at time `t`.
    fn keep(&self, class_len: i64, current: i64, t: i64) -> bool {
        match &self.charges {
            Charges::Fixed { window, .. } => *window >= current.saturating_sub(1),
            Charges::Sliding(times) => {
                let horizon = t.saturating_sub(class_len.saturating_mul(2));
                times.back().is_some_and(|&last| last > horizon)
            }
        }
    }
}

/// Byte equality without a call to `memcmp` for the short keys and names of a log (ids, labels, tool
/// names): two overlapping word loads for 4 to 16 bytes.
#[inline]
pub(crate) fn short_eq(a: &str, b: &str) -> bool {
    bytes_eq(a.as_bytes(), b.as_bytes())
}

#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if (8..=16).contains(&n) {
        word8(a, 0) == word8(b, 0) && word8(a, n - 8) == word8(b, n - 8)
    } else if (4..8).contains(&n) {
        word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4)
    } else {
        a == b
    }
}

#[inline]
fn word8(s: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(w)
}

#[inline]
fn word4(s: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u32::from_ne_bytes(w)
}

#[derive(Debug)]
struct Class {
    /// Window length in microseconds.
    len: i64,
    sliding: bool,
    /// Fixed: the current window index.
    current: i64,
    /// When the next sweep is due (µs); `i64::MIN` before the first call.
    next: i64,
    table: HashTable<Bucket>,
}

impl Class {
    #[cold]
    fn roll(&mut self, t: i64) {
        if self.sliding {
            self.next = t.saturating_add(self.len);
        } else {
            self.current = t.div_euclid(self.len);
            self.next = self.current.saturating_add(1).saturating_mul(self.len);
        }
        let (len, current) = (self.len, self.current);
        self.table.retain(|b| b.keep(len, current, t));
        let live = self.table.len();
        if self.table.capacity() > 4 * live.max(16) {
            self.table.shrink_to(2 * live, |b| b.hash);
        }
    }
}

/// Every counter bucket of one evaluator.
#[derive(Debug)]
pub(crate) struct Counters {
    classes: Vec<Class>,
    state: FastState,
}

impl Counters {
    pub(crate) fn new(policy: &Policy) -> Self {
        let classes = policy
            .classes
            .iter()
            .map(|&(window, sliding)| Class {
                len: window.micros(),
                sliding,
                current: 0,
                next: i64::MIN,
                table: HashTable::new(),
            })
            .collect();
        Self {
            classes,
            state: FastState::default(),
        }
    }

    /// Counters of no class (an evaluator of an empty set).
    pub(crate) fn empty() -> Self {
        Self {
            classes: Vec::new(),
            state: FastState::default(),
        }
    }

    /// Moves every class to time `t` (never earlier than any previous `t`), sweeping expired buckets when
    /// a boundary is crossed. Costs one comparison per class otherwise.
    #[inline]
    pub(crate) fn advance(&mut self, t: i64) {
        for class in &mut self.classes {
            if t >= class.next {
                class.roll(t);
            }
        }
    }

    /// The hash of a scope key (computed once per call and scope).
    #[inline]
    pub(crate) fn key_hash(&self, key: Key<'_>) -> u64 {
        self.state.hash_one((key.tag as u8, key.text))
    }

    /// The hash of `counter`'s bucket for a key whose hash is `key_hash`.
    #[inline]
    pub(crate) fn bucket_hash(key_hash: u64, counter: u32) -> u64 {
        let x = (key_hash ^ u64::from(counter).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^ (x >> 29)
    }

    /// Finds `key`'s bucket of `def`: the charges that count at time `t`, and where the bucket is (for
    /// [`Counters::charge_found`]) if it exists.
    #[inline]
    pub(crate) fn probe(
        &self,
        def: &CounterDef,
        counter: u32,
        key: Key<'_>,
        hash: u64,
        t: i64,
    ) -> (u64, Option<usize>) {
        let Some(class) = self.classes.get(def.class as usize) else {
            return (0, None);
        };
        let Some(index) = class.table.find_bucket_index(hash, |b| b.is(counter, key)) else {
            return (0, None);
        };
        match class.table.get_bucket(index) {
            Some(b) => (b.count(class, t), Some(index)),
            None => (0, None),
        }
    }

    /// Charges the bucket that [`Counters::probe`] found at `index`, by one at time `t`. Valid only while
    /// no bucket was inserted in the class since the probe.
    #[inline]
    pub(crate) fn charge_found(&mut self, def: &CounterDef, index: usize, t: i64) {
        let Some(class) = self.classes.get_mut(def.class as usize) else {
            return;
        };
        let (len, current) = (class.len, class.current);
        if let Some(bucket) = class.table.get_bucket_mut(index) {
            bucket.charge(def.keep, len, current, t);
        }
    }

    /// Charges `key`'s bucket of `def` by one at time `t`, creating it if needed.
    #[inline]
    pub(crate) fn charge(
        &mut self,
        def: &CounterDef,
        counter: u32,
        key: Key<'_>,
        hash: u64,
        t: i64,
    ) {
        let Some(class) = self.classes.get_mut(def.class as usize) else {
            return;
        };
        let (sliding, len, current) = (class.sliding, class.len, class.current);
        let entry = class.table.entry(hash, |b| b.is(counter, key), |b| b.hash);
        let bucket = match entry {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v
                .insert(Bucket {
                    hash,
                    counter,
                    tag: key.tag,
                    key: KeyText::new(key.text),
                    charges: if sliding {
                        Charges::Sliding(Box::default())
                    } else {
                        Charges::Fixed {
                            window: current,
                            count: 0,
                        }
                    },
                })
                .into_mut(),
        };
        bucket.charge(def.keep, len, current, t);
    }

    /// Buckets currently held (live ones, plus recently expired ones kept for reuse).
    pub(crate) fn len(&self) -> usize {
        self.classes.iter().map(|c| c.table.len()).sum()
    }

    /// Drops every bucket and forgets the time.
    pub(crate) fn clear(&mut self) {
        for class in &mut self.classes {
            class.table = HashTable::new();
            class.next = i64::MIN;
            class.current = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_keys() {
        for text in [
            "",
            "a",
            "abc",
            "abcd",
            "abcdefg",
            "abcdefgh",
            "0123456789abcdef",
            "0123456789abcdefghijkl",
            "0123456789abcdefghijklm",
        ] {
            let k = KeyText::new(text);
            assert_eq!(k.as_bytes(), text.as_bytes());
            assert_eq!(
                matches!(k, KeyText::Inline(..)),
                text.len() <= INLINE,
                "{text}"
            );
        }
        assert!(short_eq("sess-01-2", "sess-01-2"));
        assert!(!short_eq("sess-01-2", "sess-01-3"));
        assert!(!short_eq("sess-01-2", "tess-01-2"));
        assert!(!short_eq("abcde", "abcdf"));
        assert!(!short_eq("abcde", "bbcde"));
        assert!(!short_eq("abcdefghijklmnopq", "abcdefghijklmnopr"));
        assert!(short_eq("é", "é"));
        assert!(!short_eq("ab", "abc"));
    }

    #[test]
    fn bucket_fits_a_cache_line() {
        assert!(
            std::mem::size_of::<Bucket>() <= 64,
            "{}",
            std::mem::size_of::<Bucket>()
        );
    }
}
