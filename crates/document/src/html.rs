//! The HTML of a document: escaping, numbers with thousands separators, tables built from query
//! results, the collapsed SQL of a figure, figures around charts, and the page itself (inline
//! CSS for screen and print, a table of contents). Nothing here refers to a network resource.

use std::fmt::Write as _;

use arrow::array::{Array, AsArray};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use verdict_query::QueryOutput;

use crate::chart::{Chart, Series};
use crate::error::Result;

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An integer with thousands separators (`1,234`).
pub fn group_thousands(n: impl std::fmt::Display) -> String {
    verdict_query::output::group_thousands(&n.to_string())
}

/// One cell of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// An integer, shown with thousands separators, right-aligned.
    Int(i64),
    /// A number with decimals, shown as given.
    Num(String),
    /// Text; `None` is SQL NULL, shown as an empty cell.
    Text(Option<String>),
}

impl Cell {
    /// A text cell.
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(Some(s.into()))
    }

    fn html(&self) -> String {
        match self {
            Cell::Int(v) => format!("<td class=\"n\">{}</td>", group_thousands(v)),
            Cell::Num(v) => format!("<td class=\"n\">{}</td>", esc(v)),
            Cell::Text(Some(s)) => format!("<td>{}</td>", esc(s)),
            Cell::Text(None) => "<td class=\"null\"></td>".to_string(),
        }
    }
}

/// A result table: column names and rows of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// Converts a query result: integers become [`Cell::Int`], floats [`Cell::Num`], everything
    /// else text (the document's queries format times as text themselves).
    ///
    /// # Errors
    /// When a column cannot be cast (a type the queries never produce).
    pub fn from_output(out: &QueryOutput) -> Result<Table> {
        let columns = out
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batch = concat_batches(&out.schema, &out.batches)?;
        let mut rows = vec![Vec::with_capacity(batch.num_columns()); batch.num_rows()];
        for array in batch.columns() {
            match array.data_type() {
                t if t.is_integer() => {
                    let a = cast(array, &DataType::Int64)?;
                    let a = a.as_primitive::<Int64Type>();
                    for (i, row) in rows.iter_mut().enumerate() {
                        row.push(if a.is_null(i) {
                            Cell::Text(None)
                        } else {
                            Cell::Int(a.value(i))
                        });
                    }
                }
                t if t.is_floating() => {
                    let a = cast(array, &DataType::Float64)?;
                    let a = a.as_primitive::<Float64Type>();
                    for (i, row) in rows.iter_mut().enumerate() {
                        row.push(if a.is_null(i) {
                            Cell::Text(None)
                        } else {
                            Cell::Num(a.value(i).to_string())
                        });
                    }
                }
                _ => {
                    let a = cast(array, &DataType::Utf8)?;
                    let a = a.as_string::<i32>();
                    for (i, row) in rows.iter_mut().enumerate() {
                        row.push(Cell::Text((!a.is_null(i)).then(|| a.value(i).to_string())));
                    }
                }
            }
        }
        Ok(Table { columns, rows })
    }

    /// The index of a column.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The integer at `row` of column `name` (0 for a missing or non-integer cell).
    pub fn int(&self, row: usize, name: &str) -> i64 {
        match self.col(name).and_then(|c| self.rows.get(row)?.get(c)) {
            Some(Cell::Int(v)) => *v,
            _ => 0,
        }
    }

    /// The text at `row` of column `name` (empty for NULL or a number).
    pub fn text(&self, row: usize, name: &str) -> String {
        match self.col(name).and_then(|c| self.rows.get(row)?.get(c)) {
            Some(Cell::Text(Some(s))) => s.clone(),
            Some(Cell::Int(v)) => v.to_string(),
            Some(Cell::Num(v)) => v.clone(),
            _ => String::new(),
        }
    }

    /// The table as HTML, `class` on the `<table>`.
    pub fn html(&self, class: &str) -> String {
        let mut s = format!("<table class=\"{class}\"><thead><tr>");
        for c in &self.columns {
            let _ = write!(s, "<th>{}</th>", esc(c));
        }
        s.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            s.push_str("<tr>");
            for cell in row {
                s.push_str(&cell.html());
            }
            s.push_str("</tr>");
        }
        if self.rows.is_empty() {
            let _ = write!(
                s,
                "<tr><td class=\"empty\" colspan=\"{}\">no rows</td></tr>",
                self.columns.len().max(1)
            );
        }
        s.push_str("</tbody></table>");
        s
    }
}

/// A query and its result, shown as the result table with the query collapsed below it; the
/// table is exactly what `verdict sql` prints for the query (numbers grouped by thousands).
pub fn query_block(sql: &str, table: &Table) -> String {
    format!(
        "<div class=\"query\">{}{}</div>",
        table.html("data"),
        sql_details(sql)
    )
}

/// A collapsed `<details>` with a query that reproduces a figure.
pub fn sql_details(sql: &str) -> String {
    format!(
        "<details><summary>SQL (run with <code>verdict sql</code>)</summary><pre class=\"sql\">{}</pre></details>",
        esc(sql)
    )
}

/// A chart in a `<figure>` with its caption and a legend of its series. `data-marks` holds the
/// number of data rectangles drawn, for checks of the rendered page.
pub fn figure(chart: &Chart, caption: &str, legend: &[Series]) -> String {
    let mut s = format!(
        "<figure class=\"chart\" data-marks=\"{}\">{}<figcaption>{}",
        chart.marks,
        chart.svg,
        esc(caption)
    );
    if !legend.is_empty() {
        s.push_str("<span class=\"legend\">");
        for l in legend {
            let (r, g, b) = l.color;
            let _ = write!(
                s,
                "<span><i style=\"background:rgb({r},{g},{b})\"></i>{}</span>",
                esc(&l.name)
            );
        }
        s.push_str("</span>");
    }
    s.push_str("</figcaption></figure>");
    s
}

/// A section of a document.
#[derive(Debug, Clone)]
pub struct Section {
    /// The anchor id.
    pub id: String,
    /// The heading.
    pub title: String,
    /// The HTML body.
    pub body: String,
}

/// A document: title, lines under it, sections; rendered with a table of contents.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The title.
    pub title: String,
    /// Facts shown under the title (already HTML).
    pub header: Vec<String>,
    /// The sections, in order.
    pub sections: Vec<Section>,
}

const CSS: &str = r#"
:root { --fg:#1d2430; --muted:#5b6575; --line:#d9dee6; --accent:#1f5fa8; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--fg); margin: 0 auto; max-width: 1080px; padding: 24px 32px; line-height: 1.45; font-size: 14px; }
h1 { font-size: 26px; margin: 0 0 8px; }
h2 { font-size: 20px; border-bottom: 2px solid var(--line); padding-bottom: 4px; margin-top: 36px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.meta { color: var(--muted); margin: 2px 0; }
nav.toc { border: 1px solid var(--line); padding: 8px 16px; margin: 16px 0; background: #f7f9fc; }
nav.toc ol { margin: 4px 0; padding-left: 22px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12.5px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.null { background: #fafafa; }
td.empty { color: var(--muted); font-style: italic; }
figure.chart { margin: 12px 0; overflow-x: auto; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12.5px; }
.legend span { margin-left: 12px; white-space: nowrap; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; }
details { margin: 4px 0 12px; }
summary { cursor: pointer; color: var(--accent); font-size: 12.5px; }
pre.sql { background: #f4f6f9; border: 1px solid var(--line); padding: 8px; white-space: pre-wrap; font-size: 12px; }
.note { color: var(--muted); }
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { max-width: none; padding: 0; font-size: 11px; }
  section { break-before: page; }
  section:first-of-type { break-before: auto; }
  h2, h3 { break-after: avoid; }
  tr, figure { break-inside: avoid; }
  thead { display: table-header-group; }
  details { display: none; }
  nav.toc a { color: inherit; text-decoration: none; }
}
"#;

impl Page {
    /// The whole HTML document.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(64 * 1024);
        let _ = write!(
            s,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{}</title><style>{}</style></head><body>\n<header><h1>{}</h1>",
            esc(&self.title),
            CSS,
            esc(&self.title)
        );
        for h in &self.header {
            let _ = write!(s, "<p class=\"meta\">{h}</p>");
        }
        s.push_str("</header>\n<nav class=\"toc\"><strong>Contents</strong><ol>");
        for sec in &self.sections {
            let _ = write!(
                s,
                "<li><a href=\"#{}\">{}</a></li>",
                esc(&sec.id),
                esc(&sec.title)
            );
        }
        s.push_str("</ol></nav>\n");
        for (i, sec) in self.sections.iter().enumerate() {
            let _ = write!(
                s,
                "<section id=\"{}\"><h2>{}. {}</h2>\n{}</section>\n",
                esc(&sec.id),
                i + 1,
                esc(&sec.title),
                sec.body
            );
        }
        s.push_str("</body></html>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn tables_group_thousands_and_show_null_empty() {
        let t = Table {
            columns: vec!["who".into(), "calls".into()],
            rows: vec![vec![Cell::Text(None), Cell::Int(1234567)]],
        };
        assert_eq!(
            t.html("data"),
            "<table class=\"data\"><thead><tr><th>who</th><th>calls</th></tr></thead><tbody>\
             <tr><td class=\"null\"></td><td class=\"n\">1,234,567</td></tr></tbody></table>"
        );
    }

    #[test]
    fn page_has_a_toc_and_no_url() {
        let p = Page {
            title: "T".into(),
            header: vec!["h".into()],
            sections: vec![Section {
                id: "a".into(),
                title: "A & B".into(),
                body: "<p>x</p>".into(),
            }],
        };
        let html = p.render();
        assert!(html.contains("<li><a href=\"#a\">A &amp; B</a></li>"));
        assert!(html.contains("<section id=\"a\"><h2>1. A &amp; B</h2>"));
        assert!(!html.contains("http"));
    }
}
