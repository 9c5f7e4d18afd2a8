//! verdict-testkit: deterministic fixtures for tests and benchmarks.
//! Owns the synthetic traffic generator (PolicyLayer lines, rendered in other proxies' formats
//! on demand); knows nothing of the warehouse.
#![deny(missing_docs)]

//! # Overview
//! [`Generator`] writes realistic PolicyLayer proxy log lines (the seeds' servers and tools,
//! many grants and sessions, allows, hidden-tool and default denials, `deny_if` denials,
//! rate-limit hits, approvals, upstream 5xx, non-tool methods) from a seed, byte for byte the
//! same on every machine.
//!
//! ```
//! use verdict_testkit::{Generator, GenOptions};
//!
//! let mut out = Vec::new();
//! Generator::new(GenOptions { seed: 7, ..GenOptions::default() }).write_lines(3, &mut out).unwrap();
//! let text = String::from_utf8(out).unwrap();
//! assert_eq!(text.lines().count(), 3);
//! let mut records = Vec::new();
//! for line in text.lines() {
//!     verdict_formats::Format::PolicyLayer.decode(line, &mut records).unwrap();
//! }
//! assert_eq!(records.len(), 3);
//! ```

mod gen;
mod render;

pub use gen::{GenOptions, Generator, SplitMix64};
pub use render::{render, Target};
