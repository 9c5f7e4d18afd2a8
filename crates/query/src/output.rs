//! The one printer for every command: writes a [`QueryOutput`] as an aligned table, CSV, JSON
//! or NDJSON into any `Write`, or as a Parquet file. It never decides what to print (that is the
//! CLI's job, e.g. the "no decisions yet" message); it only formats.
//!
//! # Formats
//! - `table`: aligned columns (Markdown-style pipes), a header row; integers with thousands
//!   separators (`1,234`), numbers right-aligned, timestamps as `2026-11-02 09:15:02.412` (UTC,
//!   milliseconds), dates as `2026-11-02`, lists as `[a, b]`, nulls as empty cells.
//! - `csv`: RFC 4180, a header row, exact machine values as in JSON below (nulls are empty
//!   fields; lists and structs are JSON text in one field).
//! - `json`: one array of row objects, one object per line.
//! - `ndjson`: one row object per line, nothing else.
//!
//! # The JSON shape (stable)
//! ```text
//! [
//! {"identity":"alice","tool":"session_destroy","calls":3,"allow":1,"deny":2,...,"first_seen":"2026-11-02T09:15:02.412000Z"},
//! {"identity":"bob",...}
//! ]
//! ```
//! - Each row is an object whose keys are the column names, in the result's column order.
//! - Integers are JSON numbers (exact, never quoted); floats are JSON numbers (shortest
//!   round-trip form), or `null` when NaN or infinite; decimals are JSON numbers.
//! - Booleans are `true`/`false`; nulls are `null` (the key is always present).
//! - Timestamps are RFC 3339 strings in UTC with `Z` and the column's full precision:
//!   `2026-11-02T09:15:02Z` (s), `.412Z` (ms), `.412000Z` (µs, every verdict timestamp),
//!   `.412000000Z` (ns). Dates are `YYYY-MM-DD` strings.
//! - Lists are arrays; structs are objects; other types (durations, intervals, binary) are
//!   their Arrow display strings.
//! - An empty result is `[]` (JSON) or no line at all (NDJSON).

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, SchemaRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use comfy_table::{presets, CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::engine::{QueryOutput, QueryStream};
use crate::error::{Error, Result};

/// How to print a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OutputFormat {
    /// An aligned table for people.
    #[default]
    Table,
    /// Comma-separated values with a header.
    Csv,
    /// One JSON array of row objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

impl OutputFormat {
    /// `table`, `csv`, `json` or `ndjson`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Table => "table",
            OutputFormat::Csv => "csv",
            OutputFormat::Json => "json",
            OutputFormat::Ndjson => "ndjson",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        [
            OutputFormat::Table,
            OutputFormat::Csv,
            OutputFormat::Json,
            OutputFormat::Ndjson,
        ]
        .into_iter()
        .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| format!("unknown format `{s}` (expected table, csv, json or ndjson)"))
    }
}

/// Presentation options; machine formats ignore those that would change values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintOptions {
    /// Table: group integer digits by thousands (`1,234`). Default true.
    pub thousands_separators: bool,
    /// Table: cut longer text cells (strings, lists) to this many characters, ending in `…`.
    /// Numbers, timestamps and booleans are never cut. Default none.
    pub max_cell_width: Option<usize>,
    /// Table: fit this total width (e.g. the terminal's): text columns are narrowed and each
    /// row keeps one line, a cut cell ending in `...`. Default none (no fitting, so the output
    /// does not depend on the terminal).
    pub width: Option<u16>,
    /// CSV: write the header row. Default true.
    pub csv_header: bool,
    /// Table: show at most this many rows, then a line saying how many were left out (the
    /// rest of the result is still read, to count it). Default none (every row).
    pub max_rows: Option<usize>,
    /// Table: colour the values of a `decision` column (allow green, deny red, rate_limited
    /// yellow, approval_required cyan, error magenta) with ANSI codes. Default false.
    pub color: bool,
}

impl Default for PrintOptions {
    fn default() -> Self {
        Self {
            thousands_separators: true,
            max_cell_width: None,
            width: None,
            csv_header: true,
            max_rows: None,
            color: false,
        }
    }
}

/// Writes `out` in `format` to `w`.
///
/// # Errors
/// [`Error::Write`] when writing fails (a closed pipe included: see
/// [`Error::is_broken_pipe`]); [`Error::Arrow`] if a column cannot be read.
pub fn write_output(
    out: &QueryOutput,
    format: OutputFormat,
    w: &mut dyn Write,
    opts: &PrintOptions,
) -> Result<()> {
    let mut printer = BatchPrinter::new(Arc::clone(&out.schema), format, opts.clone());
    for batch in &out.batches {
        printer.write(w, batch)?;
    }
    printer.finish(w).map(|_| ())
}

/// Writes a [`QueryStream`] in `format` to `w` batch by batch, as the query produces them:
/// memory stays bounded by a few batches whatever the size of the result (the table format
/// keeps the rows it shows, at most [`PrintOptions::max_rows`]). A write that fails (a reader
/// that closed the pipe) drops the stream, which stops the query. Returns the rows printed and
/// those the table left out.
///
/// # Errors
/// As [`write_output`], and [`Error::DataFusion`] when the query fails while running.
pub async fn write_stream(
    stream: QueryStream,
    format: OutputFormat,
    w: &mut dyn Write,
    opts: &PrintOptions,
) -> Result<Printed> {
    use futures::StreamExt;
    let QueryStream {
        schema, mut stream, ..
    } = stream;
    let mut printer = BatchPrinter::new(schema, format, opts.clone());
    while let Some(batch) = stream.next().await {
        printer.write(w, &batch?)?;
        // Each batch reaches the reader as soon as it is formatted, so `| head` answers at once.
        w.flush().map_err(Error::Write)?;
    }
    printer.finish(w)
}

/// What a printer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Printed {
    /// Rows written.
    pub rows: u64,
    /// Rows the table format left out past [`PrintOptions::max_rows`].
    pub omitted: u64,
}

/// Writes batches one at a time in one format. CSV, JSON and NDJSON rows are written as each
/// batch arrives; the table keeps its rows (at most `max_rows`) to align them, and prints them
/// at [`BatchPrinter::finish`].
pub struct BatchPrinter {
    schema: SchemaRef,
    format: OutputFormat,
    opts: PrintOptions,
    started: bool,
    printed: Printed,
    table: TableRows,
}

/// The rows a table shows, as text, and the widest unbreakable cell of each column.
#[derive(Default)]
struct TableRows {
    rows: Vec<Vec<comfy_table::Cell>>,
    whole: Vec<usize>,
    /// The column whose values are coloured, if any.
    decision: Option<usize>,
}

impl BatchPrinter {
    /// A printer of rows of `schema`.
    pub fn new(schema: SchemaRef, format: OutputFormat, opts: PrintOptions) -> Self {
        let n = schema.fields().len();
        Self {
            started: false,
            printed: Printed::default(),
            table: TableRows {
                rows: Vec::new(),
                whole: vec![0; n],
                decision: opts
                    .color
                    .then(|| schema.index_of(verdict_schema::col::DECISION).ok())
                    .flatten(),
            },
            schema,
            format,
            opts,
        }
    }

    /// Writes (or, for the table, keeps) the rows of `batch`.
    ///
    /// # Errors
    /// [`Error::Write`] when writing fails; [`Error::Arrow`] if a column cannot be read.
    pub fn write(&mut self, w: &mut dyn Write, batch: &RecordBatch) -> Result<()> {
        let columns = normalise(batch)?;
        let io = |r: std::io::Result<()>| r.map_err(Error::Write);
        if !self.started {
            self.started = true;
            match self.format {
                OutputFormat::Csv if self.opts.csv_header => io(csv_header(&self.schema, w))?,
                OutputFormat::Json => io(w.write_all(b"["))?,
                _ => {}
            }
        }
        match self.format {
            OutputFormat::Table => {
                let rows = columns.first().map_or(0, |c| c.len());
                for row in 0..rows {
                    if self
                        .opts
                        .max_rows
                        .is_some_and(|max| self.table.rows.len() >= max)
                    {
                        self.printed.omitted += 1;
                        continue;
                    }
                    let cells = table_row(&columns, row, &self.opts, &mut self.table.whole)?;
                    let decision = self.table.decision;
                    self.table.rows.push(
                        cells
                            .into_iter()
                            .enumerate()
                            .map(|(i, text)| match decision {
                                Some(d) if d == i => decision_colour(text),
                                _ => comfy_table::Cell::new(text),
                            })
                            .collect(),
                    );
                    self.printed.rows += 1;
                }
                Ok(())
            }
            OutputFormat::Csv => {
                self.printed.rows += write_csv_rows(&columns, w)?;
                Ok(())
            }
            OutputFormat::Json | OutputFormat::Ndjson => {
                let ndjson = self.format == OutputFormat::Ndjson;
                let first = self.printed.rows == 0;
                self.printed.rows += write_json_rows(&self.schema, &columns, w, ndjson, first)?;
                Ok(())
            }
        }
    }

    /// Ends the output (the table itself, the closing bracket of JSON) and flushes `w`.
    ///
    /// # Errors
    /// [`Error::Write`] when writing fails.
    pub fn finish(mut self, w: &mut dyn Write) -> Result<Printed> {
        let io = |r: std::io::Result<()>| r.map_err(Error::Write);
        match self.format {
            OutputFormat::Table => {
                let rows = std::mem::take(&mut self.table);
                write_table(&self.schema, rows, w, &self.opts)?;
                if self.printed.omitted > 0 {
                    io(writeln!(
                        w,
                        "({} of {} rows shown; --max-rows 0 shows them all)",
                        group_thousands(&self.printed.rows.to_string()),
                        group_thousands(&(self.printed.rows + self.printed.omitted).to_string()),
                    ))?;
                }
            }
            OutputFormat::Csv if !self.started && self.opts.csv_header => {
                io(csv_header(&self.schema, w))?;
            }
            OutputFormat::Csv | OutputFormat::Ndjson => {}
            OutputFormat::Json => io(w.write_all(match (self.started, self.printed.rows) {
                (false, _) => b"[]\n".as_slice(),
                (true, 0) => b"]\n".as_slice(),
                (true, _) => b"\n]\n".as_slice(),
            }))?,
        }
        io(w.flush())?;
        Ok(self.printed)
    }
}

/// Writes `out` as a zstd-compressed Parquet file at `path` (created or truncated).
///
/// # Errors
/// [`Error::Io`] when the file cannot be created, [`Error::Parquet`] when writing fails.
pub fn write_parquet(out: &QueryOutput, path: &Path) -> Result<()> {
    let file = File::create(path).map_err(Error::io("creating", path))?;
    let schema = out
        .batches
        .first()
        .map(|b| b.schema())
        .unwrap_or_else(|| Arc::clone(&out.schema));
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let perr = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(perr)?;
    for batch in &out.batches {
        writer.write(batch).map_err(perr)?;
    }
    writer.close().map_err(perr)?;
    Ok(())
}

/// Writes a [`QueryStream`] as a zstd-compressed Parquet file at `path`, batch by batch.
/// Returns the number of rows written.
///
/// # Errors
/// As [`write_parquet`], and [`Error::DataFusion`] when the query fails while running.
pub async fn write_parquet_stream(stream: QueryStream, path: &Path) -> Result<u64> {
    use futures::StreamExt;
    let QueryStream {
        schema, mut stream, ..
    } = stream;
    let file = File::create(path).map_err(Error::io("creating", path))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let perr = |source| Error::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let mut writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(perr)?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(perr)?;
    }
    writer.close().map_err(perr)?;
    Ok(rows)
}

/// Casts dictionary and view/large string columns to plain types so that one code path reads
/// them.
fn normalise(batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    batch
        .columns()
        .iter()
        .map(|a| {
            let target = match a.data_type() {
                DataType::Dictionary(_, v) => Some(v.as_ref().clone()),
                DataType::Utf8View | DataType::LargeUtf8 => Some(DataType::Utf8),
                _ => None,
            };
            let target = match target {
                Some(DataType::Utf8View | DataType::LargeUtf8) => Some(DataType::Utf8),
                t => t,
            };
            Ok(match target {
                Some(t) => arrow::compute::cast(a, &t)?,
                None => Arc::clone(a),
            })
        })
        .collect()
}

/// One value, decoded from Arrow.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    /// A decimal, as its exact text.
    Decimal(String),
    Str(String),
    Ts(DateTime<Utc>, TimeUnit),
    Date(NaiveDate),
    List(Vec<Cell>),
    Struct(Vec<(String, Cell)>),
    /// Any other type, as Arrow displays it.
    Other(String),
}

fn display(array: &dyn Array, row: usize) -> Result<String> {
    let f = ArrayFormatter::try_new(array, &FormatOptions::default())?;
    Ok(f.value(row).to_string())
}

fn cell(array: &dyn Array, row: usize) -> Result<Cell> {
    if array.is_null(row) {
        return Ok(Cell::Null);
    }
    let ts = |v: i64, unit: TimeUnit| {
        let t = match unit {
            TimeUnit::Second => DateTime::from_timestamp(v, 0),
            TimeUnit::Millisecond => DateTime::from_timestamp_millis(v),
            TimeUnit::Microsecond => DateTime::from_timestamp_micros(v),
            TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(v)),
        };
        t.map_or_else(|| Cell::Other(v.to_string()), |t| Cell::Ts(t, unit))
    };
    Ok(match array.data_type() {
        DataType::Boolean => Cell::Bool(array.as_boolean().value(row)),
        DataType::Int8 => Cell::Int(array.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => Cell::Int(array.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => Cell::Int(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => Cell::Int(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Cell::UInt(array.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => Cell::UInt(array.as_primitive::<UInt16Type>().value(row).into()),
        DataType::UInt32 => Cell::UInt(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => Cell::UInt(array.as_primitive::<UInt64Type>().value(row)),
        DataType::Float32 => Cell::Float(array.as_primitive::<Float32Type>().value(row).into()),
        DataType::Float64 => Cell::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => Cell::Decimal(display(array, row)?),
        DataType::Utf8 => Cell::Str(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Cell::Str(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Cell::Str(array.as_string_view().value(row).to_string()),
        DataType::Timestamp(unit, _) => {
            let v = match unit {
                TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
                TimeUnit::Millisecond => {
                    array.as_primitive::<TimestampMillisecondType>().value(row)
                }
                TimeUnit::Microsecond => {
                    array.as_primitive::<TimestampMicrosecondType>().value(row)
                }
                TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
            };
            ts(v, *unit)
        }
        DataType::Date32 => {
            let d = array.as_primitive::<Date32Type>().value(row);
            match NaiveDate::from_epoch_days(d) {
                Some(d) => Cell::Date(d),
                None => Cell::Other(display(array, row)?),
            }
        }
        DataType::Date64 => {
            let ms = array.as_primitive::<Date64Type>().value(row);
            match DateTime::from_timestamp_millis(ms) {
                Some(t) => Cell::Date(t.date_naive()),
                None => Cell::Other(display(array, row)?),
            }
        }
        DataType::List(_) => list(array.as_list::<i32>().value(row))?,
        DataType::LargeList(_) => list(array.as_list::<i64>().value(row))?,
        DataType::FixedSizeList(..) => list(array.as_fixed_size_list().value(row))?,
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut out = Vec::with_capacity(fields.len());
            for (f, child) in fields.iter().zip(s.columns()) {
                out.push((f.name().clone(), cell(child.as_ref(), row)?));
            }
            Cell::Struct(out)
        }
        DataType::Dictionary(..) => {
            let one = array.slice(row, 1);
            let value_type = match array.data_type() {
                DataType::Dictionary(_, v) => v.as_ref().clone(),
                _ => DataType::Utf8,
            };
            let plain = arrow::compute::cast(&one, &value_type)?;
            cell(plain.as_ref(), 0)?
        }
        _ => Cell::Other(display(array, row)?),
    })
}

fn list(values: ArrayRef) -> Result<Cell> {
    let mut out = Vec::with_capacity(values.len());
    for i in 0..values.len() {
        out.push(cell(values.as_ref(), i)?);
    }
    Ok(Cell::List(out))
}

/// `1234567` -> `1,234,567` (a leading `-` is kept): the one thousands separator of verdict's
/// human-facing output.
pub fn group_thousands(digits: &str) -> String {
    let (sign, digits) = match digits.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", digits),
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    out.push_str(sign);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn rfc3339(t: &DateTime<Utc>, unit: TimeUnit) -> String {
    // chrono's RFC 3339 writer, not `format()`: a strftime pattern is parsed again for every
    // value, which made timestamps the larger part of printing a big report.
    let digits = match unit {
        TimeUnit::Second => SecondsFormat::Secs,
        TimeUnit::Millisecond => SecondsFormat::Millis,
        TimeUnit::Microsecond => SecondsFormat::Micros,
        TimeUnit::Nanosecond => SecondsFormat::Nanos,
    };
    t.to_rfc3339_opts(digits, true)
}

fn float_text(v: f64) -> String {
    if v.is_finite() {
        // Rust's shortest round-trip form; integral values keep no fraction (`12` not `12.0`).
        format!("{v}")
    } else if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

/// The people-facing text of a value in a table.
fn table_text(c: &Cell, opts: &PrintOptions) -> String {
    match c {
        Cell::Null => String::new(),
        Cell::Bool(b) => b.to_string(),
        Cell::Int(v) if opts.thousands_separators => group_thousands(&v.to_string()),
        Cell::UInt(v) if opts.thousands_separators => group_thousands(&v.to_string()),
        Cell::Int(v) => v.to_string(),
        Cell::UInt(v) => v.to_string(),
        Cell::Float(v) => float_text(*v),
        Cell::Decimal(s) | Cell::Str(s) | Cell::Other(s) => s.clone(),
        Cell::Ts(t, _) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        Cell::List(items) => {
            let parts: Vec<String> = items.iter().map(|i| table_text(i, opts)).collect();
            format!("[{}]", parts.join(", "))
        }
        Cell::Struct(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}: {}", table_text(v, opts)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn truncate(s: String, max: Option<usize>) -> String {
    match max {
        Some(max) if s.chars().count() > max => {
            let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
            out.push('…');
            out
        }
        _ => s,
    }
}

fn is_numeric(dt: &DataType) -> bool {
    dt.is_numeric() || matches!(dt, DataType::Dictionary(_, v) if v.is_numeric())
}

/// A decision's cell in its colour.
fn decision_colour(text: String) -> comfy_table::Cell {
    use comfy_table::Color;
    let colour = match text.as_str() {
        "allow" => Some(Color::Green),
        "deny" => Some(Color::Red),
        "rate_limited" => Some(Color::Yellow),
        "approval_required" => Some(Color::Cyan),
        "error" => Some(Color::Magenta),
        _ => None,
    };
    let cell = comfy_table::Cell::new(text);
    match colour {
        Some(c) => cell.fg(c),
        None => cell,
    }
}

/// The cells of one table row; widens `whole` (the widest number, time or boolean of each
/// column: such cells are never wrapped or cut).
fn table_row(
    columns: &[ArrayRef],
    row: usize,
    opts: &PrintOptions,
    whole: &mut [usize],
) -> Result<Vec<String>> {
    let mut cells = Vec::with_capacity(columns.len());
    for (i, c) in columns.iter().enumerate() {
        let value = cell(c.as_ref(), row)?;
        let text = table_text(&value, opts);
        // Only text is cut or wrapped; numbers, times and booleans are shown whole.
        cells.push(match value {
            Cell::Str(_) | Cell::List(_) | Cell::Struct(_) | Cell::Other(_) => {
                truncate(text, opts.max_cell_width)
            }
            _ => {
                if let Some(w) = whole.get_mut(i) {
                    *w = (*w).max(text.chars().count());
                }
                text
            }
        });
    }
    Ok(cells)
}

fn write_table(
    schema: &SchemaRef,
    rows: TableRows,
    w: &mut dyn Write,
    opts: &PrintOptions,
) -> Result<()> {
    let mut table = Table::new();
    table.load_preset(presets::ASCII_MARKDOWN);
    if opts.color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    match opts.width {
        Some(width) => {
            table
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(width);
        }
        None => {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    table.set_header(schema.fields().iter().map(|f| f.name().as_str()));
    let whole = rows.whole;
    for cells in rows.rows {
        let mut row = comfy_table::Row::from(cells);
        if opts.width.is_some() {
            // Fitting a width: one line per row, a cut cell ending in `...`.
            row.max_height(1);
        }
        table.add_row(row);
    }
    for (i, f) in schema.fields().iter().enumerate() {
        if let Some(column) = table.column_mut(i) {
            if is_numeric(f.data_type()) {
                column.set_cell_alignment(CellAlignment::Right);
            }
            let min = whole.get(i).copied().unwrap_or(0);
            if opts.width.is_some() && min > 0 {
                // The boundary counts the one-space padding on each side.
                let min = u16::try_from(min + 2).unwrap_or(u16::MAX);
                column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(min)));
            }
        }
    }
    writeln!(w, "{table}").map_err(Error::Write)
}

/// The exact machine text of a value (CSV); `None` for null.
fn machine_text(c: &Cell) -> Option<String> {
    Some(match c {
        Cell::Null => return None,
        Cell::Bool(b) => b.to_string(),
        Cell::Int(v) => v.to_string(),
        Cell::UInt(v) => v.to_string(),
        Cell::Float(v) => float_text(*v),
        Cell::Decimal(s) | Cell::Str(s) | Cell::Other(s) => s.clone(),
        Cell::Ts(t, unit) => rfc3339(t, *unit),
        Cell::Date(d) => d.format("%Y-%m-%d").to_string(),
        Cell::List(_) | Cell::Struct(_) => {
            let mut buf = Vec::new();
            // Writing into a Vec cannot fail.
            let _ = json_value(&mut buf, c);
            String::from_utf8_lossy(&buf).into_owned()
        }
    })
}

fn csv_field(w: &mut dyn Write, s: &str) -> std::io::Result<()> {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        write!(w, "\"{}\"", s.replace('"', "\"\""))
    } else {
        w.write_all(s.as_bytes())
    }
}

fn csv_header(schema: &SchemaRef, w: &mut dyn Write) -> std::io::Result<()> {
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        csv_field(w, f.name())?;
    }
    w.write_all(b"\n")
}

/// Writes the rows of one batch as CSV; returns how many.
fn write_csv_rows(columns: &[ArrayRef], w: &mut dyn Write) -> Result<u64> {
    let io = |r: std::io::Result<()>| r.map_err(Error::Write);
    let rows = columns.first().map_or(0, |c| c.len());
    for row in 0..rows {
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                io(w.write_all(b","))?;
            }
            if let Some(text) = machine_text(&cell(c.as_ref(), row)?) {
                io(csv_field(w, &text))?;
            }
        }
        io(w.write_all(b"\n"))?;
    }
    Ok(rows as u64)
}

fn json_str(w: &mut dyn Write, s: &str) -> std::io::Result<()> {
    serde_json::to_writer(&mut *w, s).map_err(std::io::Error::from)
}

fn json_value(w: &mut dyn Write, c: &Cell) -> std::io::Result<()> {
    match c {
        Cell::Null => w.write_all(b"null"),
        Cell::Bool(b) => write!(w, "{b}"),
        Cell::Int(v) => write!(w, "{v}"),
        Cell::UInt(v) => write!(w, "{v}"),
        Cell::Float(v) if v.is_finite() => {
            serde_json::to_writer(&mut *w, v).map_err(std::io::Error::from)
        }
        Cell::Float(_) => w.write_all(b"null"),
        Cell::Decimal(s) => w.write_all(s.as_bytes()),
        Cell::Str(s) | Cell::Other(s) => json_str(w, s),
        Cell::Ts(t, unit) => json_str(w, &rfc3339(t, *unit)),
        Cell::Date(d) => json_str(w, &d.format("%Y-%m-%d").to_string()),
        Cell::List(items) => {
            w.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                json_value(w, item)?;
            }
            w.write_all(b"]")
        }
        Cell::Struct(fields) => {
            w.write_all(b"{")?;
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                json_str(w, k)?;
                w.write_all(b":")?;
                json_value(w, v)?;
            }
            w.write_all(b"}")
        }
    }
}

/// Writes the rows of one batch as JSON array elements (`first`: no row was written before)
/// or NDJSON lines; returns how many.
fn write_json_rows(
    schema: &SchemaRef,
    columns: &[ArrayRef],
    w: &mut dyn Write,
    ndjson: bool,
    mut first: bool,
) -> Result<u64> {
    let io = |r: std::io::Result<()>| r.map_err(Error::Write);
    let rows = columns.first().map_or(0, |c| c.len());
    for row in 0..rows {
        if !ndjson {
            io(w.write_all(if first { b"\n" } else { b",\n" }))?;
        }
        first = false;
        io(w.write_all(b"{"))?;
        for (i, (f, c)) in schema.fields().iter().zip(columns).enumerate() {
            if i > 0 {
                io(w.write_all(b","))?;
            }
            io(json_str(w, f.name()))?;
            io(w.write_all(b":"))?;
            io(json_value(w, &cell(c.as_ref(), row)?))?;
        }
        io(w.write_all(b"}"))?;
        if ndjson {
            io(w.write_all(b"\n"))?;
        }
    }
    Ok(rows as u64)
}

#[cfg(test)]
mod tests;
