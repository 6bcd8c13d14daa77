//! Anomaly scores of normal and anomalous samples: two overlaid histograms and the threshold.

use super::axis::linear_axis;
use super::canvas::{desc, draw_title, ensure_font, render, text_width, Canvas, LABEL_PT, TICK_PT, TITLE_PT};
use super::colors::{GRID, SERIES_COLORS};
use super::ticks::{linear_ticks, nice_step, scientific, thousands, tick_label};
use super::{input_error, FigureError};
use plotters::prelude::*;
use std::path::Path;

const HIST_W: u32 = 900;
const HIST_H: u32 = 600;
const HIST_TITLE: u32 = 44;
const HIST_X_AREA: u32 = 56;
const HIST_Y_AREA: u32 = 84;
/// The number of bins, shared by both histograms.
const BINS: usize = 40;
/// Opacity of the bars' fill; each histogram's outline is drawn opaque over both fills.
const FILL_ALPHA: f64 = 0.3;
const NORMAL_COLOR: RGBColor = SERIES_COLORS[0];
const ANOMALY_COLOR: RGBColor = SERIES_COLORS[1];
const THRESHOLD_COLOR: RGBColor = SERIES_COLORS[3];

/// `BINS` equal bins over `lo..hi` (`hi` > `lo`): the number of `values` in each, a value
/// equal to `hi` counting in the last bin and values outside the range in neither.
fn histogram(values: &[f64], lo: f64, hi: f64) -> [usize; BINS] {
    let mut counts = [0; BINS];
    let width = (hi - lo) / BINS as f64;
    for &v in values {
        if (lo..=hi).contains(&v) {
            let bin = (((v - lo) / width).floor() as usize).min(BINS - 1);
            counts[bin] += 1;
        }
    }
    counts
}

/// The bins' range: the scores and the threshold, widened to a span of at least 1 (or 1 % of
/// their magnitude) when they are all equal or nearly so.
fn bin_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    let min_span = (lo.abs().max(hi.abs()) * 0.01).max(1.0);
    if hi - lo < min_span {
        let c = lo / 2.0 + hi / 2.0;
        (c - min_span / 2.0, c + min_span / 2.0)
    } else {
        (lo, hi)
    }
}

/// A bar chart's outline over bins `width` wide from `lo`, `heights` high: up and down the bins'
/// edges from the first bar to the last, from and back to 0 (empty bins at either end are left
/// to the axis); no points when every height is 0.
fn outline(heights: &[f64], lo: f64, width: f64) -> Vec<(f64, f64)> {
    let (Some(first), Some(last)) = (
        heights.iter().position(|&h| h > 0.0),
        heights.iter().rposition(|&h| h > 0.0),
    ) else {
        return Vec::new();
    };
    let edge = |i: usize| lo + i as f64 * width;
    let mut points = vec![(edge(first), 0.0)];
    for (i, &h) in heights.iter().enumerate().take(last + 1).skip(first) {
        points.extend([(edge(i), h), (edge(i + 1), h)]);
    }
    points.push((edge(last + 1), 0.0));
    points
}

/// The scores of normal and of anomalous samples as two histograms over the same 40 bins,
/// spanning both sets and the threshold: each bar's height is the percentage of its own set in
/// that bin (so sets of very different sizes compare; the legend gives each set's size), filled
/// semi-transparent and outlined, normal samples in blue and anomalies in orange. A threshold,
/// when given, is a dashed red vertical line with its value in the legend. The x axis is
/// "anomaly score". Non-finite scores are left out (and not counted in the legend's sizes).
/// Refused: no finite score in either set, a non-finite threshold, scores spanning more than
/// an `f64` holds.
pub fn score_histogram(
    path: &Path,
    title: &str,
    normal: &[f64],
    anomalous: &[f64],
    threshold: Option<f64>,
) -> Result<(), FigureError> {
    let finite = |v: &[f64]| v.iter().copied().filter(|s| s.is_finite()).collect::<Vec<f64>>();
    let (normal, anomalous) = (finite(normal), finite(anomalous));
    if normal.is_empty() && anomalous.is_empty() {
        return Err(input_error(
            path,
            "no finite scores to plot, normal or anomalous".into(),
        ));
    }
    if let Some(t) = threshold.filter(|t| !t.is_finite()) {
        return Err(input_error(path, format!("the threshold is {t}; it must be finite")));
    }
    let font = ensure_font(path)?;
    let (lo, hi) = bin_range(normal.iter().chain(&anomalous).chain(&threshold).copied());
    if !(hi - lo).is_finite() {
        return Err(input_error(
            path,
            format!("the scores span {lo} to {hi}, too wide to divide into bins"),
        ));
    }
    let width = (hi - lo) / BINS as f64;
    let shares = |v: &[f64]| -> Vec<f64> {
        let counts = histogram(v, lo, hi);
        counts
            .iter()
            .map(|&c| 100.0 * c as f64 / v.len().max(1) as f64)
            .collect()
    };
    let sets = [
        (
            shares(&normal),
            NORMAL_COLOR,
            format!("normal (n = {})", thousands(normal.len())),
        ),
        (
            shares(&anomalous),
            ANOMALY_COLOR,
            format!("anomalous (n = {})", thousands(anomalous.len())),
        ),
    ];
    let top = sets.iter().flat_map(|s| &s.0).fold(0.0f64, |a, &b| a.max(b));
    let step = nice_step(top * 1.12, 6);
    let y_hi = (top * 1.12 / step).ceil() * step;
    let pad = (hi - lo) * 0.03;
    let x_range = lo - pad..hi + pad;
    let x_ticks = linear_ticks(x_range.start, x_range.end, 8);
    let sci = scientific(&x_ticks);
    let title_w = text_width(font, title, TITLE_PT) as u32;
    let w = HIST_W.max(title_w + 40);

    render(path, font, Canvas::new(w, HIST_H), |root| {
        draw_title(root, title, (HIST_TITLE / 2 + 4) as i32)?;
        let area = root.split_vertically(HIST_TITLE).1;
        let mut chart = ChartBuilder::on(&area)
            .margin_top(12)
            .margin_left(12)
            .margin_right(36)
            .margin_bottom(12)
            .x_label_area_size(HIST_X_AREA)
            .y_label_area_size(HIST_Y_AREA)
            .build_cartesian_2d(
                linear_axis(x_range.clone(), x_ticks.clone()),
                linear_axis(0.0..y_hi, linear_ticks(0.0, y_hi, 6)),
            )?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_desc("anomaly score")
            .y_desc("share of its samples (%)")
            .label_style(desc(TICK_PT))
            .axis_desc_style(desc(LABEL_PT))
            .x_label_formatter(&|v| tick_label(*v, sci))
            .y_label_formatter(&|v| tick_label(*v, false))
            .draw()?;
        for (heights, color, _) in &sets {
            chart.draw_series(heights.iter().enumerate().filter(|(_, &h)| h > 0.0).map(|(i, &h)| {
                let x0 = lo + i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, h)], color.mix(FILL_ALPHA).filled())
            }))?;
        }
        for (heights, color, label) in &sets {
            let color = *color;
            chart
                .draw_series(LineSeries::new(outline(heights, lo, width), color.stroke_width(2)))?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + Rectangle::new([(0, -7), (24, 7)], color.mix(FILL_ALPHA).filled())
                        + Rectangle::new([(0, -7), (24, 7)], color.stroke_width(2))
                });
        }
        if let Some(t) = threshold {
            chart
                .draw_series(DashedLineSeries::new(
                    [(t, 0.0), (t, y_hi)],
                    8,
                    5,
                    THRESHOLD_COLOR.stroke_width(2),
                ))?
                .label(format!("threshold {}", tick_label(t, scientific(&[t]))))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], THRESHOLD_COLOR.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(desc(TICK_PT))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.4))
            .margin(14)
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::test_support::{decode, no_temp_left};

    #[test]
    fn bins_count_by_hand() {
        // Bins of width 0.25 over 0..10: [0, 0.25) holds 0 and 0.2; 0.25 opens the second; 10
        // closes the last with 9.9; -1 and 11 lie outside.
        let counts = histogram(&[0.0, 0.2, 0.25, 5.0, 9.9, 10.0, -1.0, 11.0], 0.0, 10.0);
        let mut want = [0; BINS];
        (want[0], want[1], want[20], want[39]) = (2, 1, 1, 2);
        assert_eq!(counts, want);
        assert_eq!(bin_range([3.0, 7.0, 5.0].into_iter()), (3.0, 7.0));
        assert_eq!(bin_range([2.0, 2.0].into_iter()), (1.5, 2.5));
        // 1 % of 1000 when every score is 1000.
        assert_eq!(bin_range([1000.0].into_iter()), (995.0, 1005.0));
        assert_eq!(
            outline(&[1.0, 3.0], 0.0, 0.5),
            vec![(0.0, 0.0), (0.0, 1.0), (0.5, 1.0), (0.5, 3.0), (1.0, 3.0), (1.0, 0.0)]
        );
        // Empty bins at the ends are left out, those between kept.
        assert_eq!(
            outline(&[0.0, 2.0, 0.0, 1.0, 0.0], 10.0, 1.0),
            vec![
                (11.0, 0.0),
                (11.0, 2.0),
                (12.0, 2.0),
                (12.0, 0.0),
                (13.0, 0.0),
                (13.0, 1.0),
                (14.0, 1.0),
                (14.0, 0.0)
            ]
        );
        assert!(outline(&[0.0; 3], 0.0, 1.0).is_empty());
    }

    fn count(img: &(u32, u32, Vec<u8>), c: RGBColor) -> usize {
        img.2.chunks(3).filter(|p| p == &[c.0, c.1, c.2]).count()
    }

    #[test]
    fn score_histogram_draws_both_sets_and_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hist.png");
        // Integer scores as an int8 model gives them; a few non-finite ones to leave out.
        let mut normal: Vec<f64> = (0..1000).map(|i| f64::from(1000 + (i * 37) % 400)).collect();
        normal.extend([f64::NAN, f64::INFINITY]);
        let anomalous: Vec<f64> = (0..60).map(|i| f64::from(1300 + (i * 11) % 500)).collect();
        score_histogram(&path, "reconstruction error", &normal, &anomalous, Some(1395.0)).unwrap();
        let img = decode(&path);
        assert_eq!((img.0, img.1), (HIST_W, HIST_H));
        assert!(
            count(&img, NORMAL_COLOR) > 300,
            "normal outline: {}",
            count(&img, NORMAL_COLOR)
        );
        assert!(
            count(&img, ANOMALY_COLOR) > 300,
            "anomalous outline: {}",
            count(&img, ANOMALY_COLOR)
        );
        let with_line = count(&img, THRESHOLD_COLOR);
        assert!(with_line > 300, "threshold line: {with_line}");

        // Without a threshold, no line; one set empty is still a figure.
        score_histogram(&path, "no threshold", &normal, &[], None).unwrap();
        let img = decode(&path);
        assert_eq!(count(&img, THRESHOLD_COLOR), 0);
        assert!(count(&img, NORMAL_COLOR) > 300);
        score_histogram(&path, "equal scores", &[], &[5.0; 3], Some(5.0)).unwrap();
        assert_eq!(decode(&path).1, HIST_H);
        no_temp_left(dir.path());
    }

    #[test]
    fn score_histogram_refuses_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.png");
        let err = |normal: &[f64], anomalous: &[f64], threshold: Option<f64>| {
            let e = score_histogram(&path, "t", normal, anomalous, threshold).unwrap_err();
            assert!(matches!(e, FigureError::Input { .. }), "{e}");
            assert!(e.to_string().contains("h.png"), "{e}");
            e.to_string()
        };
        assert!(err(&[], &[], None).contains("no finite scores"));
        assert!(err(&[f64::NAN], &[f64::NEG_INFINITY], Some(1.0)).contains("no finite scores"));
        assert!(err(&[1.0], &[2.0], Some(f64::NAN)).contains("threshold is NaN"));
        assert!(err(&[-f64::MAX], &[f64::MAX], None).contains("too wide"));
        assert!(!path.exists());
    }
}
