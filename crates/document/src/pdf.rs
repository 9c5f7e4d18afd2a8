//! Printing a document to PDF through a headless Chromium: the browser's own print engine
//! honours the document's print CSS (page size, page breaks). The browser runs with a fresh
//! profile in a temporary directory and every background network feature switched off; the
//! document itself references nothing outside the file.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};

/// The flags Chromium runs with (plus `--user-data-dir` and `--print-to-pdf`).
pub const PDF_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-pdf-header-footer",
    "--run-all-compositor-stages-before-draw",
];

/// Prints the HTML file `html` to the PDF file `pdf` with the Chromium binary `browser`.
///
/// # Errors
/// [`Error::Pdf`] when the browser cannot start, exits with a failure, or writes no PDF.
pub fn print_pdf(browser: &Path, html: &Path, pdf: &Path) -> Result<()> {
    let fail = |message: String| Error::Pdf {
        browser: browser.to_path_buf(),
        message,
    };
    let profile = tempfile::tempdir().map_err(|e| fail(format!("a temporary profile: {e}")))?;
    let html = std::fs::canonicalize(html).map_err(Error::io("reading", html))?;
    let url = format!("file://{}", html.display());
    let out = Command::new(browser)
        .args(PDF_FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(url)
        .output()
        .map_err(|e| fail(format!("cannot start it: {e}")))?;
    let written = std::fs::metadata(pdf).map(|m| m.len()).unwrap_or(0);
    if !out.status.success() || written == 0 {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(fail(format!(
            "{} and {} bytes written; its last messages: {}",
            out.status,
            written,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    Ok(())
}
