//! Charts, drawn with the `plotters` crate's SVG backend: stacked bars over categories (days,
//! hours) and a heatmap. Every chart draws exactly one `<rect>` per non-zero data mark and no
//! other rectangle (no background fill, legends are HTML), so that a reader of the page can
//! check that a chart rendered by counting its rectangles; [`Chart::marks`] is that count.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::html::group_thousands;

/// An SVG chart and the number of data rectangles it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// The `<svg>` element (without an XML namespace URL: it is inlined in HTML5).
    pub svg: String,
    /// Rectangles drawn, one per non-zero data mark.
    pub marks: usize,
}

/// One series of a stacked bar chart: its name, colour (RGB) and one value per category.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Fill colour.
    pub color: (u8, u8, u8),
    /// One value per category.
    pub values: Vec<u64>,
}

/// Axis labels under the x axis, turned a quarter and starting at the tick, so that a long label
/// runs down the label area instead of into the plot.
fn x_label_style() -> TextStyle<'static> {
    TextStyle::from(
        ("sans-serif", 12)
            .into_font()
            .transform(FontTransform::Rotate90),
    )
    .pos(Pos::new(HPos::Left, VPos::Center))
}

fn draw_err(e: impl std::fmt::Display) -> Error {
    Error::Chart(e.to_string())
}

/// Removes the namespace attribute plotters writes: inline SVG in HTML needs none, and the
/// document then holds no URL at all.
fn inline(svg: String) -> String {
    svg.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "")
}

/// Keeps a label short enough for an axis.
fn short(label: &str, max: usize) -> String {
    if label.chars().count() <= max {
        label.to_string()
    } else {
        let mut s: String = label.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Stacked bars: one bar per category, one segment per series with a non-zero value, series in
/// the given order from the bottom. Labels of the x axis are thinned to at most `max_labels`.
pub fn stacked_bars(categories: &[String], series: &[Series], max_labels: usize) -> Result<Chart> {
    let n = categories.len().max(1) as u32;
    let totals: Vec<u64> = (0..categories.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let top = totals.iter().copied().max().unwrap_or(0).max(1);
    let width = (160 + 14 * categories.len() as u32).clamp(640, 1000);
    // Horizontal labels, thinned so that they do not overlap (about 7 px a character).
    let plot = width.saturating_sub(100).max(1) as usize;
    let longest = categories
        .iter()
        .map(|c| c.chars().count().min(22))
        .max()
        .unwrap_or(1);
    let per_label = (longest * 7 + 10).div_ceil((plot / categories.len().max(1)).max(1));
    let step = categories
        .len()
        .div_ceil(max_labels.max(1))
        .max(per_label)
        .max(1);
    let mut svg = String::new();
    let mut marks = 0;
    {
        let root = SVGBackend::with_string(&mut svg, (width, 320)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(70)
            .build_cartesian_2d((0u32..n).into_segmented(), 0u64..top + top / 10 + 1)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_labels(categories.len().max(1))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if (*i as usize).is_multiple_of(step) => categories
                    .get(*i as usize)
                    .map(|c| short(c, 22))
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .y_label_formatter(&|y| group_thousands(*y))
            .x_label_style(("sans-serif", 12))
            .y_label_style(("sans-serif", 12))
            .draw()
            .map_err(draw_err)?;
        for (i, _) in categories.iter().enumerate() {
            let mut base = 0u64;
            for s in series {
                let v = s.values.get(i).copied().unwrap_or(0);
                if v == 0 {
                    continue;
                }
                let (r, g, b) = s.color;
                let x0 = SegmentValue::Exact(i as u32);
                let x1 = SegmentValue::Exact(i as u32 + 1);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, base), (x1, base + v)],
                        RGBColor(r, g, b).filled(),
                    )))
                    .map_err(draw_err)?;
                base += v;
                marks += 1;
            }
        }
        root.present().map_err(draw_err)?;
    }
    Ok(Chart {
        svg: inline(svg),
        marks,
    })
}

/// A heatmap of `values[row][col]`: one cell per non-zero value, darker for larger values
/// (linear from a light to a dark `color`).
pub fn heatmap(
    rows: &[String],
    cols: &[String],
    values: &[Vec<u64>],
    color: (u8, u8, u8),
) -> Result<Chart> {
    let (nr, nc) = (rows.len().max(1) as u32, cols.len().max(1) as u32);
    let top = values.iter().flatten().copied().max().unwrap_or(0).max(1);
    let cell = 22u32;
    let width = 180 + nc * cell + 20;
    let height = 130 + nr * cell + 10;
    let mut svg = String::new();
    let mut marks = 0;
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(120)
            .y_label_area_size(170)
            .build_cartesian_2d((0u32..nc).into_segmented(), (0u32..nr).into_segmented())
            .map_err(draw_err)?;
        let label = |names: &[String], v: &SegmentValue<u32>| match v {
            SegmentValue::CenterOf(i) => names
                .get(*i as usize)
                .map(|c| short(c, 24))
                .unwrap_or_default(),
            _ => String::new(),
        };
        // Rows are drawn top-down: row 0 at the top.
        let rev: Vec<String> = rows.iter().rev().cloned().collect();
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(cols.len().max(1))
            .y_labels(rows.len().max(1))
            .x_label_formatter(&|v| label(cols, v))
            .y_label_formatter(&|v| label(&rev, v))
            .x_label_style(x_label_style())
            .y_label_style(("sans-serif", 12))
            .draw()
            .map_err(draw_err)?;
        for (r, row) in values.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                if v == 0 {
                    continue;
                }
                // Light (10%) to full colour, by the value's share of the largest cell.
                let t = 0.15 + 0.85 * (v as f64 / top as f64);
                let mix = |full: u8| (255.0 - (255.0 - full as f64) * t).round() as u8;
                let y = nr - 1 - r as u32;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [
                            (SegmentValue::Exact(c as u32), SegmentValue::Exact(y)),
                            (
                                SegmentValue::Exact(c as u32 + 1),
                                SegmentValue::Exact(y + 1),
                            ),
                        ],
                        RGBColor(mix(color.0), mix(color.1), mix(color.2)).filled(),
                    )))
                    .map_err(draw_err)?;
                marks += 1;
            }
        }
        root.present().map_err(draw_err)?;
    }
    Ok(Chart {
        svg: inline(svg),
        marks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rects(svg: &str) -> usize {
        svg.matches("<rect").count()
    }

    #[test]
    fn stacked_bars_draw_one_rect_per_non_zero_segment_and_no_url() {
        let cats = vec!["2026-11-02".to_string(), "2026-11-03".to_string()];
        let series = vec![
            Series {
                name: "allow".into(),
                color: (40, 160, 80),
                values: vec![5, 0],
            },
            Series {
                name: "deny".into(),
                color: (200, 40, 40),
                values: vec![2, 7],
            },
        ];
        let c = stacked_bars(&cats, &series, 20).unwrap();
        assert_eq!(c.marks, 3);
        assert_eq!(rects(&c.svg), 3, "{}", c.svg);
        assert!(c.svg.starts_with("<svg"));
        assert!(!c.svg.contains("http"));
        assert!(c.svg.contains("2026-11-02"));
    }

    #[test]
    fn heatmap_draws_non_zero_cells_only() {
        let rows = vec!["alice".to_string(), "bob".to_string()];
        let cols = vec!["navigate".to_string(), "session_destroy".to_string()];
        let c = heatmap(&rows, &cols, &[vec![1, 0], vec![3, 4]], (200, 40, 40)).unwrap();
        assert_eq!(c.marks, 3);
        assert_eq!(rects(&c.svg), 3, "{}", c.svg);
        assert!(c.svg.contains("session_destroy") && c.svg.contains("alice"));
    }

    #[test]
    fn empty_charts_render() {
        let c = stacked_bars(&[], &[], 10).unwrap();
        assert_eq!((c.marks, rects(&c.svg)), (0, 0));
        let h = heatmap(&[], &[], &[], (0, 0, 0)).unwrap();
        assert_eq!((h.marks, rects(&h.svg)), (0, 0));
    }
}
