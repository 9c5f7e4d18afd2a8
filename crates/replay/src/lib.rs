//! verdict-replay: re-evaluates historical `tools/call` traffic against a candidate policy and
//! reports exactly which calls would change, for whom and why. Reads the warehouse; never calls
//! a proxy, a server or a tool.
#![deny(missing_docs)]

//! # Overview
//! - [`replay`] with [`ReplayOptions`] streams the warehouse in `(ts, event_id)` order through a
//!   [`verdict_policy::Evaluator`] (and a baseline one) and returns a [`ReplayReport`]: counts,
//!   transitions named as in README "Replay semantics and exit codes", the identity x tool matrix, the rules behind the
//!   changes, samples, the fidelity self-check and the [`Gate`]s' results.
//! - `--changes` writes every changed or indeterminate event to Parquet ([`changes_schema`]).
//!
//! ```
//! use verdict_ingest::{ingest, IngestOptions, NoProgress};
//! use verdict_policy::Policy;
//! use verdict_replay::{replay, ReplayOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = dir.path().join("gw.jsonl");
//! std::fs::write(&log, concat!(
//!   r#"{"timestamp":"2026-11-02T09:00:00Z","request_id":"r1","grant_label":"alice","method":"tools/call","tool":"navigate","arg_keys":["url"],"decision":"allow"}"#, "\n",
//!   r#"{"timestamp":"2026-11-02T09:00:01Z","request_id":"r2","grant_label":"alice","method":"tools/call","tool":"session_destroy","arg_keys":["session_id"],"decision":"deny","rule":"(hidden)"}"#, "\n",
//! )).unwrap();
//! let wh = dir.path().join("wh");
//! ingest(&IngestOptions::new(&wh, vec![log.display().to_string()]), &verdict_schema::time::SystemClock, &NoProgress).unwrap();
//!
//! let candidate = Policy::from_json_str(r#"{"version":"1","default":"deny","tools":{"navigate":{},"session_destroy":{}}}"#).unwrap();
//! let opts = ReplayOptions::new(&wh);
//! let report = replay(&opts, &candidate.into(), None, &|t| t.contains("destroy")).unwrap();
//! assert_eq!(report.transitions["unchanged"], 1);
//! assert_eq!(report.transitions["deny->allow"], 1);
//! assert_eq!(report.counts.destructive_newly_allowed, 1);
//! ```

mod calls;
mod changes;
mod error;
mod gate;
mod grants;
mod replay;
mod report;
mod scan;
mod suggest;
mod transition;
mod tune;
mod usage;

pub use changes::changes_schema;
pub use error::{Error, Result};
pub use gate::{Gate, GateResult};
pub use grants::{grants_toml, Policies};
pub use replay::{replay, ReplayOptions};
pub use report::{
    ChangesFile, Counts, Fidelity, IdentityToolRow, Outcomes, Range, ReplayReport, RuleRow, Sample,
    Transitions, TRANSITIONS,
};
pub use suggest::{
    suggest, Holdout, SuggestOptions, Suggestion, ToolLine, WindowPeak, WINDOW_MIN_PEAK,
};
pub use transition::Transition;
pub use tune::{tune, TuneMetric, TuneOptions, TuneReport, TuneRow, TuneTarget};
pub use usage::{usage, DiffChange, DiffGate, DiffGateResult, DiffReport, DiffTool, Usage};
