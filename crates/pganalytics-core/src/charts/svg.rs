//! Drawing a [`ChartData`] as a self-contained SVG document with `plotters`.
//!
//! Layout, top to bottom: the title, a one-line legend (above the plot so it never hides
//! data), then the plot with a Y axis naming its unit and a time axis naming its UTC offset.
//! Text is emitted as SVG `<text>` (no font files or system font libraries: the viewer's
//! fonts render it) and plotters escapes every text and attribute, so names read from a
//! server (standbys are named by the server's clients) cannot inject markup.

use super::series::{ChartData, ChartKind, Series};
use crate::error::{Error, Result};
use chrono::{DateTime, FixedOffset};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Size and time zone of a rendered chart.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub width: u32,
    pub height: u32,
    /// Times on the X axis are shown at this offset from UTC (the viewer's local time).
    pub utc_offset: FixedOffset,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            width: 560,
            height: 260,
            utc_offset: FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("0 is valid")),
        }
    }
}

const FONT: &str = "DejaVu Sans, Liberation Sans, Arial, sans-serif";
const TEXT: RGBColor = RGBColor(0x1c, 0x25, 0x30);
const MUTED: RGBColor = RGBColor(0x5f, 0x6d, 0x7c);
const GRID: RGBColor = RGBColor(0xe3, 0xe8, 0xee);
const AXIS: RGBColor = RGBColor(0xa9, 0xb4, 0xc0);
const HEADER_HEIGHT: u32 = 46;
// plotters writes `font-size` as the given size / 1.24 (it sizes fonts by line height):
// these give 14.5, 12 and 11 px text.
const TITLE_SIZE: f64 = 18.0;
const LEGEND_SIZE: f64 = 15.0;
const LABEL_SIZE: f64 = 13.6;

/// The chart as an SVG document (UTF-8 text, `<svg …>` root).
pub fn render(chart: &ChartData, options: &RenderOptions) -> Result<String> {
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (options.width, options.height)).into_drawing_area();
        draw(&root, chart, options)
            .and_then(|()| root.present())
            .map_err(|e| Error::internal(format!("draw the `{}` chart: {e}", chart.id)))?;
    }
    Ok(svg)
}

fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
    RGBColor(r, g, b)
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartData,
    options: &RenderOptions,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let title = (FONT, TITLE_SIZE)
        .into_font()
        .style(FontStyle::Bold)
        .color(&TEXT);
    root.draw(&Text::new(chart.title.clone(), (12, 8), title))?;
    legend(root, &chart.series)?;
    let (_, plot) = root.split_vertically(HEADER_HEIGHT);
    if let Some(message) = &chart.empty_message {
        return empty(&plot, message);
    }

    let (x0, x1) = chart.x_range;
    let x1 = if x1 > x0 { x1 } else { x0 + 60.0 };
    let max = chart
        .series
        .iter()
        .flat_map(Series::samples)
        .map(|s| s.value)
        .fold(0.0, f64::max);
    // Headroom above the highest value; a flat zero line still gets a readable 0–1 axis.
    let y_max = if max > 0.0 { max * 1.12 } else { 1.0 };
    let span = x1 - x0;
    let offset = options.utc_offset;
    let time_label = move |x: &f64| format_time(*x, span, offset);
    let value_label = |y: &f64| format_value(*y);
    let x_desc = if offset.local_minus_utc() == 0 {
        "time (UTC)".to_string()
    } else {
        format!("time (UTC{offset})")
    };

    let mut c = ChartBuilder::on(&plot)
        .margin_left(10)
        .margin_right(18)
        .margin_top(4)
        .margin_bottom(4)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0.0..y_max)?;
    c.configure_mesh()
        .disable_x_mesh()
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&time_label)
        .y_label_formatter(&value_label)
        .x_desc(x_desc)
        .y_desc(chart.y_desc.as_str())
        .label_style((FONT, LABEL_SIZE).into_font().color(&MUTED))
        .axis_desc_style((FONT, LABEL_SIZE).into_font().color(&MUTED))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS)
        .draw()?;

    match chart.kind {
        ChartKind::Bars => {
            // Series side by side within each interval, a sliver of space between intervals.
            let n = chart.series.len().max(1) as f64;
            for (k, s) in chart.series.iter().enumerate() {
                let color = rgb(s.color);
                c.draw_series(s.samples().filter(|p| p.value > 0.0).map(|p| {
                    let slot = (p.to - p.from) / n;
                    let left = p.from + slot * k as f64 + slot * 0.08;
                    let right = p.from + slot * (k as f64 + 1.0) - slot * 0.08;
                    Rectangle::new([(left, 0.0), (right, p.value)], color.filled())
                }))?;
            }
        }
        ChartKind::Lines => {
            for s in &chart.series {
                let color = rgb(s.color);
                for segment in &s.segments {
                    // A rate holds over its whole interval: drawn as a step (flat from the
                    // interval's start to its end). A gauge is a point in time.
                    let path: Vec<(f64, f64)> = segment
                        .iter()
                        .flat_map(|p| {
                            let step = (p.from < p.to).then_some((p.from, p.value));
                            step.into_iter().chain(std::iter::once((p.to, p.value)))
                        })
                        .collect();
                    if let [only] = path.as_slice() {
                        // A lone gauge value between gaps: a dot, or it would be invisible.
                        c.draw_series(std::iter::once(Circle::new(*only, 3, color.filled())))?;
                    } else {
                        c.draw_series(LineSeries::new(path, color.stroke_width(2)))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// One line under the title: a colour swatch and the name of each series.
fn legend<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, series: &[Series]) -> DrawResult<DB> {
    let style = (FONT, LEGEND_SIZE).into_font().color(&MUTED);
    let mut x = 12;
    for s in series {
        root.draw(&Rectangle::new(
            [(x, 31), (x + 14, 35)],
            rgb(s.color).filled(),
        ))?;
        root.draw(&Text::new(
            s.name.clone(),
            (x + 19, 33),
            style.pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        let (w, _) = root.estimate_text_size(&s.name, &style)?;
        x += 19 + i32::try_from(w).unwrap_or(200) + 16;
    }
    Ok(())
}

/// The plot's frame with a message instead of data.
fn empty<DB: DrawingBackend>(plot: &DrawingArea<DB, Shift>, message: &str) -> DrawResult<DB> {
    let (w, h) = plot.dim_in_pixel();
    let (w, h) = (
        i32::try_from(w).unwrap_or(560),
        i32::try_from(h).unwrap_or(200),
    );
    plot.draw(&Rectangle::new(
        [(12, 4), (w - 12, h - 12)],
        RGBColor(0xf6, 0xf8, 0xfa).filled(),
    ))?;
    plot.draw(&Rectangle::new(
        [(12, 4), (w - 12, h - 12)],
        ShapeStyle::from(&GRID).stroke_width(1),
    ))?;
    plot.draw(&Text::new(
        message.to_string(),
        (w / 2, (h - 8) / 2),
        (FONT, LEGEND_SIZE)
            .into_font()
            .color(&MUTED)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

/// A time axis label: seconds when the window is minutes long, the date when it spans days.
fn format_time(x: f64, span: f64, offset: FixedOffset) -> String {
    let Some(t) = DateTime::from_timestamp(x.floor() as i64, 0) else {
        return String::new();
    };
    let t = t.with_timezone(&offset);
    let format = if span <= 600.0 {
        "%H:%M:%S"
    } else if span <= 86_400.0 {
        "%H:%M"
    } else {
        "%m-%d %H:%M"
    };
    t.format(format).to_string()
}

/// A value axis label: few digits, thousands as k and millions as M.
fn format_value(y: f64) -> String {
    let a = y.abs();
    if a >= 1e6 {
        format!("{:.1}M", y / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", y / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", y / 1e3)
    } else if a >= 10.0 || a == 0.0 || (y - y.round()).abs() < 1e-9 {
        format!("{y:.0}")
    } else if a >= 1.0 {
        format!("{y:.1}")
    } else {
        format!("{y:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_labels_are_short() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(2.5), "2.5");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_value(1500.0), "1.5k");
        assert_eq!(format_value(25_000.0), "25k");
        assert_eq!(format_value(3_200_000.0), "3.2M");
    }

    #[test]
    fn time_labels_follow_the_offset() {
        let plus2 = FixedOffset::east_opt(7200).unwrap();
        assert_eq!(format_time(0.0, 3600.0, plus2), "02:00");
        assert_eq!(format_time(30.0, 300.0, plus2), "02:00:30");
        assert_eq!(format_time(0.0, 200_000.0, plus2), "01-01 02:00");
    }
}
