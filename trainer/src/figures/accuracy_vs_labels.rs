//! Test accuracy against the number of labelled training images, one line per series.

use super::axis::{linear_axis, log_axis};
use super::canvas::{desc, draw_title, ensure_font, render, text, text_width, Canvas, LABEL_PT, TICK_PT, TITLE_PT};
use super::colors::{GRID, SERIES_COLORS};
use super::ticks::{linear_ticks, nice_step, spaced_ticks, thousands, tick_label};
use super::{input_error, FigureError};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

const ACC_W: u32 = 900;
const ACC_H: u32 = 600;
const ACC_TITLE: u32 = 44;
const ACC_X_AREA: u32 = 56;
const ACC_Y_AREA: u32 = 84;

/// A series' marker: circle, square, triangle, diamond, by series index.
fn marker<DB: DrawingBackend>(k: usize, (x, y): (i32, i32), color: RGBColor) -> DynElement<'static, DB, (i32, i32)> {
    let style = color.filled();
    match k % 4 {
        0 => Circle::new((x, y), 5, style).into_dyn(),
        1 => Rectangle::new([(x - 5, y - 5), (x + 5, y + 5)], style).into_dyn(),
        2 => Polygon::new(vec![(x, y - 6), (x + 6, y + 5), (x - 6, y + 5)], style).into_dyn(),
        _ => Polygon::new(vec![(x, y - 7), (x + 6, y), (x, y + 7), (x - 6, y)], style).into_dyn(),
    }
}

/// Test accuracy against the number of labelled training images: one line with markers per
/// series (`(name, [(labels, accuracy)])`, e.g. "pretrained encoder, frozen", "from scratch"),
/// a legend, and `title`. Accuracies are fractions in [0, 1], drawn as percent (the y axis,
/// from a round number below the lowest to at most 100 %); the number of labels is on a log
/// axis with a tick at every x value of the data (1,000 style), thinned only where labels would
/// overlap. Points are joined in order of x; a non-finite accuracy is left out, breaking the
/// line. Refused: no series, a series without points, zero labels, an accuracy outside [0, 1]
/// (percent passed as a fraction).
pub fn accuracy_vs_labels(path: &Path, title: &str, series: &[(&str, Vec<(usize, f64)>)]) -> Result<(), FigureError> {
    if series.is_empty() {
        return Err(input_error(path, "no series to plot".into()));
    }
    for (name, points) in series {
        if points.is_empty() {
            return Err(input_error(path, format!("series '{name}' has no points")));
        }
        if points.iter().any(|p| p.0 == 0) {
            return Err(input_error(
                path,
                format!("series '{name}' has a point at 0 labels; the label axis is logarithmic and needs x > 0"),
            ));
        }
        if let Some(p) = points.iter().find(|p| p.1.is_finite() && !(0.0..=1.0).contains(&p.1)) {
            return Err(input_error(
                path,
                format!(
                    "series '{name}' has accuracy {} at {} labels; accuracies are fractions in [0, 1]",
                    p.1, p.0
                ),
            ));
        }
    }
    let font = ensure_font(path)?;
    let runs: Vec<Vec<Vec<(f64, f64)>>> = series
        .iter()
        .map(|(_, points)| {
            let mut sorted = points.clone();
            sorted.sort_by_key(|p| p.0);
            let mut runs = vec![Vec::new()];
            for (x, acc) in sorted {
                if acc.is_finite() {
                    runs.last_mut().expect("never empty").push((x as f64, acc * 100.0));
                } else if !runs.last().expect("never empty").is_empty() {
                    runs.push(Vec::new());
                }
            }
            runs.retain(|r| !r.is_empty());
            runs
        })
        .collect();
    let mut xs: Vec<usize> = series.iter().flat_map(|(_, p)| p.iter().map(|p| p.0)).collect();
    xs.sort_unstable();
    xs.dedup();
    let (x_min, x_max) = (xs[0] as f64, xs[xs.len() - 1] as f64);
    // Log x range: the data plus 6 % of its span each side, at least half a decade each side
    // of a single value.
    let (l, h) = (x_min.log10(), x_max.log10());
    let pad = ((h - l) * 0.06).max(if h > l { 0.0 } else { 0.5 });
    let x_range = (10f64.powf(l - pad), 10f64.powf(h + pad));
    let ys = || runs.iter().flatten().flatten().map(|p| p.1);
    let (y_lo, y_hi) = (
        ys().fold(f64::INFINITY, f64::min),
        ys().fold(f64::NEG_INFINITY, f64::max),
    );
    let empty = y_lo > y_hi;
    let y_range = if empty {
        (0.0, 100.0)
    } else {
        let span = (y_hi - y_lo).max(5.0);
        let step = nice_step(span * 1.1, 6);
        let lo = (((y_lo - span * 0.06) / step).floor() * step).max(0.0);
        let hi = (((y_hi + span * 0.06) / step).ceil() * step).min(100.0);
        (lo, hi)
    };
    let x_labels: Vec<String> = xs.iter().map(|&x| thousands(x)).collect();
    let x_widths: Vec<usize> = x_labels.iter().map(|s| text_width(font, s, TICK_PT)).collect();
    let title_w = text_width(font, title, TITLE_PT) as u32;
    let w = ACC_W.max(title_w + 40);

    render(path, font, Canvas::new(w, ACC_H), |root| {
        draw_title(root, title, (ACC_TITLE / 2 + 4) as i32)?;
        let area = root.split_vertically(ACC_TITLE).1;
        // Where the data's x values land, to drop ticks whose labels would overlap.
        let probe = ChartBuilder::on(&area)
            .margin_top(12)
            .margin_left(12)
            .margin_right(36)
            .margin_bottom(12)
            .x_label_area_size(ACC_X_AREA)
            .y_label_area_size(ACC_Y_AREA)
            .build_cartesian_2d((x_range.0..x_range.1).log_scale(), y_range.0..y_range.1)?;
        let px: Vec<i32> = xs.iter().map(|&x| probe.backend_coord(&(x as f64, 0.0)).0).collect();
        let kept = spaced_ticks(&px, &x_widths, 10);
        let x_ticks: Vec<f64> = kept.iter().map(|&i| xs[i] as f64).collect();
        let y_ticks = linear_ticks(y_range.0, y_range.1, 8);
        let mut chart = ChartBuilder::on(&area)
            .margin_top(12)
            .margin_left(12)
            .margin_right(36)
            .margin_bottom(12)
            .x_label_area_size(ACC_X_AREA)
            .y_label_area_size(ACC_Y_AREA)
            .build_cartesian_2d(
                log_axis(x_range.0, x_range.1, x_ticks),
                linear_axis(y_range.0..y_range.1, y_ticks),
            )?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_desc("labelled training images (log scale)")
            .y_desc("test accuracy (%)")
            .label_style(desc(TICK_PT))
            .axis_desc_style(desc(LABEL_PT))
            .x_label_formatter(&|v| thousands(v.round() as usize))
            .y_label_formatter(&|v| tick_label(*v, false))
            .draw()?;
        for (k, ((name, _), runs)) in series.iter().zip(&runs).enumerate() {
            let color = SERIES_COLORS[k % SERIES_COLORS.len()];
            for (r, run) in runs.iter().enumerate() {
                let line = chart.draw_series(LineSeries::new(run.iter().copied(), color.stroke_width(2)))?;
                if r == 0 {
                    line.label(*name).legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new([(-2, 0), (26, 0)], color.stroke_width(2))
                            + marker(k, (12, 0), color)
                    });
                }
                for &p in run {
                    let c = chart.backend_coord(&p);
                    root.draw(&marker(k, c, color))?;
                }
            }
        }
        if empty {
            let (xr, yr) = chart.plotting_area().get_pixel_range();
            root.draw_text(
                "no finite accuracies to plot",
                &text(LABEL_PT, HPos::Center, VPos::Center),
                ((xr.start + xr.end) / 2, (yr.start + yr.end) / 2),
            )?;
        } else {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font(desc(TICK_PT))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK.mix(0.4))
                .margin(14)
                .draw()?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::test_support::{decode, ink, no_temp_left};

    #[test]
    fn accuracy_vs_labels_draws_every_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acc.png");
        let xs = [100, 1_000, 10_000, 60_000];
        let series = [
            ("pretrained encoder, frozen", vec![0.7, 0.85, 0.9, 0.91]),
            ("pretrained encoder, fine-tuned", vec![0.75, 0.9, 0.96, 0.98]),
            ("from scratch", vec![0.6, 0.85, 0.95, f64::NAN]),
        ]
        .map(|(name, acc)| (name, xs.iter().copied().zip(acc).collect::<Vec<_>>()));
        accuracy_vs_labels(&path, "accuracy against labels", &series).unwrap();
        let img = decode(&path);
        assert_eq!((img.0, img.1), (ACC_W, ACC_H));
        let count = |c: RGBColor| img.2.chunks(3).filter(|p| p == &[c.0, c.1, c.2]).count();
        for c in &SERIES_COLORS[..3] {
            assert!(count(*c) > 300, "series {c:?} drawn: {}", count(*c));
        }
        let (colored, dark) = ink(&img);
        assert!(colored > 2000 && dark > 1000, "lines, labels: {colored} {dark}");
        // One point, unordered x, a single series: still a figure.
        accuracy_vs_labels(&path, "one", &[("one point", vec![(500, 0.5)])]).unwrap();
        accuracy_vs_labels(&path, "unordered", &[("s", vec![(1000, 0.9), (100, 0.7), (300, 0.8)])]).unwrap();
        accuracy_vs_labels(&path, "all NaN", &[("s", vec![(100, f64::NAN)])]).unwrap();
        no_temp_left(dir.path());
    }

    #[test]
    fn accuracy_vs_labels_refuses_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let err = |series: &[(&str, Vec<(usize, f64)>)]| {
            let e = accuracy_vs_labels(&path, "t", series).unwrap_err();
            assert!(matches!(e, FigureError::Input { .. }), "{e}");
            assert!(e.to_string().contains("a.png"), "{e}");
            e.to_string()
        };
        assert!(err(&[]).contains("no series"));
        assert!(err(&[("s", vec![])]).contains("'s' has no points"));
        assert!(err(&[("s", vec![(0, 0.5)])]).contains("0 labels"));
        assert!(err(&[("s", vec![(100, 97.5)])]).contains("fractions in [0, 1]"));
        assert!(!path.exists());
    }
}
