//! verdict-document: renders self-contained HTML documents from query and replay results: the
//! compliance report of a period ([`compliance`]) and the what-if report of a replay
//! ([`whatif`]) and the tuning report of a limit ([`tune_report`]); [`print_pdf`] prints one to PDF through a headless Chromium.
//!
//! Every document is one HTML file with inline CSS and inline SVG charts (drawn by `plotters`),
//! no script and no reference to any network resource; it prints cleanly (print CSS, a page per
//! section, a table of contents). The output is deterministic: the same warehouse state and
//! options give the same bytes (nothing is timestamped unless the caller passes a time).
//! Figures are defined in the README ("The compliance report").
#![deny(missing_docs)]

mod chart;
mod compliance;
mod error;
pub mod html;
mod pdf;
mod tune;
mod whatif;

pub use chart::{heatmap, stacked_bars, Chart, Series};
pub use compliance::{
    compliance, silent_hours, ComplianceOptions, Fidelity, Integrity, SilentHours, CHANGES_TABLE,
};
pub use error::{Error, Result};
pub use pdf::{print_pdf, PDF_FLAGS};
pub use tune::tune_report;
pub use whatif::{read_changes, whatif, ChangeEvent, WhatIfOptions};
