//! Training curves: losses and learning rate per epoch, phases marked.

use super::axis::{linear_axis, log_axis, Ticks};
use super::canvas::{
    desc, draw_title, ensure_font, render, text, text_width, Area, Canvas, DrawResult, LABEL_PT, TICK_PT, TITLE_PT,
};
use super::colors::{BOUNDARY, GRID, LOSS_COLOR, LR_COLOR, VAL_COLOR};
use super::text;
use super::ticks::{integer_ticks, log_ticks, scientific, tick_label};
use super::{input_error, FigureError};
use crate::epoch::EpochRecord;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::ops::Range;
use std::path::Path;

const CURVES_W: u32 = 1000;
const CURVES_TITLE: u32 = 44;
const CURVES_TOP_H: u32 = 490;
const CURVES_LR_H: u32 = 300;
const CURVES_PHASES: u32 = 34;
const CURVES_X_AREA: u32 = 50;
const CURVES_Y_AREA: u32 = 96;

/// A phase's run of epochs: name, first and last index into the history.
struct Segment<'a> {
    name: &'a str,
    first: usize,
    last: usize,
}

fn segments(history: &[EpochRecord]) -> Vec<Segment<'_>> {
    let mut out: Vec<Segment<'_>> = Vec::new();
    for (i, r) in history.iter().enumerate() {
        match out.last_mut() {
            Some(s) if s.name == r.phase => s.last = i,
            _ => out.push(Segment {
                name: &r.phase,
                first: i,
                last: i,
            }),
        }
    }
    out
}

/// Runs of consecutive points that can sit on a log axis (finite, > 0).
fn log_runs(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![Vec::new()];
    for (x, y) in points {
        if y.is_finite() && y > 0.0 {
            runs.last_mut().expect("never empty").push((x, y));
        } else if !runs.last().expect("never empty").is_empty() {
            runs.push(Vec::new());
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// A log-axis range around the plottable values, padded by 6 % of the span each way and
/// widened to at least a decade (so a constant series sits mid-axis between ticks); `None` when there is nothing to plot.
fn log_range(runs: &[&[Vec<(f64, f64)>]]) -> Option<(f64, f64)> {
    let ys = || runs.iter().flat_map(|r| r.iter()).flatten().map(|p| p.1);
    let lo = ys().fold(f64::INFINITY, f64::min);
    let hi = ys().fold(f64::NEG_INFINITY, f64::max);
    if lo > hi {
        return None;
    }
    let (mut l, mut h) = (lo.log10(), hi.log10());
    let pad = (h - l) * 0.06;
    (l, h) = (l - pad, h + pad);
    let min_span = 1.0;
    if h - l < min_span {
        let c = (l + h) / 2.0;
        (l, h) = (c - min_span / 2.0, c + min_span / 2.0);
    }
    Some((10f64.powf(l), 10f64.powf(h)))
}

/// The x axis of both [`curves`] panels: epochs 1..=n, each a unit wide.
struct EpochAxis {
    range: Range<f64>,
    ticks: Vec<f64>,
}

/// A [`curves`] panel: epochs across, a log scale up.
type LogPanel<'a, 'b> = ChartContext<'a, text::Backend<'b>, Cartesian2d<Ticks<RangedCoordf64>, Ticks<LogCoord<f64>>>>;

/// Builds a [`curves`] panel on `area`, `margin_top` pixels below its top, with a log y axis
/// over `lo..hi` described as `y_desc`, and draws its grid, ticks and axis labels.
fn epoch_log_panel<'a, 'b>(
    area: &'a Area<'b>,
    margin_top: u32,
    epochs: &EpochAxis,
    (lo, hi): (f64, f64),
    y_desc: &str,
) -> Result<LogPanel<'a, 'b>, Box<dyn std::error::Error>> {
    let y_ticks = log_ticks(lo, hi);
    let sci = scientific(&y_ticks);
    let mut chart = ChartBuilder::on(area)
        .margin_top(margin_top)
        .margin_left(12)
        .margin_right(28)
        .margin_bottom(6)
        .x_label_area_size(CURVES_X_AREA)
        .y_label_area_size(CURVES_Y_AREA)
        .build_cartesian_2d(
            linear_axis(epochs.range.clone(), epochs.ticks.clone()),
            log_axis(lo, hi, y_ticks),
        )?;
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .x_desc("epoch")
        .y_desc(y_desc)
        .label_style(desc(TICK_PT))
        .axis_desc_style(desc(LABEL_PT))
        .x_label_formatter(&|v| format!("{}", v.round()))
        .y_label_formatter(&|v| tick_label(*v, sci))
        .draw()?;
    Ok(chart)
}

/// A dashed vertical line from `lo` to `hi` at each phase change.
fn draw_boundaries(chart: &mut LogPanel<'_, '_>, segs: &[Segment<'_>], (lo, hi): (f64, f64)) -> DrawResult {
    for s in &segs[1..] {
        let x = s.first as f64 + 0.5;
        chart.draw_series(DashedLineSeries::new(
            [(x, lo), (x, hi)],
            6,
            4,
            BOUNDARY.stroke_width(1),
        ))?;
    }
    Ok(())
}

/// Training curves of a run, two panels: training loss and validation MSE per epoch (log y,
/// with a legend), and the learning rate per epoch (log y, drawn as steps). The x axis counts
/// epochs across all phases in history order; each phase change is a dashed vertical line and
/// each phase is named (with its epoch count) above the top panel. One-epoch histories get
/// markers; constant series get a padded range.
pub fn curves(path: &Path, title: &str, history: &[EpochRecord]) -> Result<(), FigureError> {
    if history.is_empty() {
        return Err(input_error(path, "the history is empty: no epochs to plot".into()));
    }
    let font = ensure_font(path)?;
    let n = history.len();
    let x_of = |i: usize| (i + 1) as f64;
    let loss = log_runs(history.iter().enumerate().map(|(i, r)| (x_of(i), r.train_loss)));
    let val = log_runs(history.iter().enumerate().map(|(i, r)| (x_of(i), r.val_mse)));
    let lr = log_runs(
        history
            .iter()
            .enumerate()
            .flat_map(|(i, r)| [(x_of(i) - 0.5, r.lr), (x_of(i) + 0.5, r.lr)]),
    );
    let segs = segments(history);
    let epochs = EpochAxis {
        range: 0.5..n as f64 + 0.5,
        ticks: integer_ticks(1, n, 10).into_iter().map(|e| e as f64).collect(),
    };
    let markers = n <= 30;
    let title_w = text_width(font, title, TITLE_PT) as u32;
    let w = CURVES_W.max(title_w + 40);
    let h = CURVES_TITLE + CURVES_TOP_H + CURVES_LR_H;

    render(path, font, Canvas::new(w, h), |root| {
        draw_title(root, title, (CURVES_TITLE / 2 + 4) as i32)?;
        let (top, bottom) = root.split_vertically(CURVES_TITLE).1.split_vertically(CURVES_TOP_H);

        // Panel 1: losses.
        let (lo, hi, empty) = match log_range(&[&loss, &val]) {
            Some((lo, hi)) => (lo, hi, false),
            None => (1e-3, 1.0, true),
        };
        let mut chart = epoch_log_panel(&top, CURVES_PHASES, &epochs, (lo, hi), "MSE (log scale)")?;
        draw_boundaries(&mut chart, &segs, (lo, hi))?;
        for (runs, color, label) in [
            (&loss, LOSS_COLOR, "training loss"),
            (&val, VAL_COLOR, "validation MSE"),
        ] {
            for (k, run) in runs.iter().enumerate() {
                let series = chart.draw_series(LineSeries::new(run.iter().copied(), color.stroke_width(2)))?;
                if k == 0 {
                    series
                        .label(label)
                        .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
                }
                if markers || run.len() == 1 {
                    chart.draw_series(run.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
                }
            }
        }
        if empty {
            let (xr, yr) = chart.plotting_area().get_pixel_range();
            root.draw_text(
                "no finite positive values to plot",
                &text(LABEL_PT, HPos::Center, VPos::Center),
                ((xr.start + xr.end) / 2, (yr.start + yr.end) / 2),
            )?;
        } else {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(desc(TICK_PT))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK.mix(0.4))
                .margin(12)
                .draw()?;
        }
        // Phase names above the panel, centred over their epochs when they fit.
        let (_, yr) = chart.plotting_area().get_pixel_range();
        for s in &segs {
            let (left, _) = chart.backend_coord(&(s.first as f64 + 0.5, hi));
            let (right, _) = chart.backend_coord(&(s.last as f64 + 1.5, hi));
            let epochs = s.last - s.first + 1;
            let plural = if epochs == 1 { "" } else { "s" };
            let long = format!("{} ({epochs} epoch{plural})", s.name);
            let width = right - left;
            let label = if (text_width(font, &long, LABEL_PT) as i32) < width - 8 {
                long
            } else {
                s.name.to_string()
            };
            let label_w = text_width(font, &label, LABEL_PT) as i32;
            let (x, anchor) = if label_w < width - 8 {
                ((left + right) / 2, HPos::Center)
            } else {
                (left + 4, HPos::Left)
            };
            root.draw_text(&label, &text(LABEL_PT, anchor, VPos::Bottom), (x, yr.start - 6))?;
        }

        // Panel 2: learning rate.
        let (lo, hi) = log_range(&[&lr]).unwrap_or((1e-6, 1e-2));
        let mut chart = epoch_log_panel(&bottom, 12, &epochs, (lo, hi), "learning rate")?;
        draw_boundaries(&mut chart, &segs, (lo, hi))?;
        for run in &lr {
            chart.draw_series(LineSeries::new(run.iter().copied(), LR_COLOR.stroke_width(2)))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::test_support::{decode, no_temp_left, record};

    #[test]
    fn curves_draws_phases_and_copes_with_tiny_histories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let mut history = Vec::new();
        for e in 1..=30 {
            history.push(record("tied", e, 0.05 / e as f64, if e < 20 { 1e-3 } else { 1e-4 }));
        }
        for e in 1..=10 {
            history.push(record("finetune", e, 0.004, 1e-3 / e as f64));
        }
        curves(&path, "fc: training", &history).unwrap();
        let img = decode(&path);
        assert_eq!((img.0, img.1), (CURVES_W, CURVES_TITLE + CURVES_TOP_H + CURVES_LR_H));
        let count = |c: RGBColor| img.2.chunks(3).filter(|p| p == &[c.0, c.1, c.2]).count();
        assert!(count(LOSS_COLOR) > 200, "loss curve drawn");
        assert!(count(VAL_COLOR) > 200, "validation curve drawn");
        assert!(count(LR_COLOR) > 200, "lr curve drawn");
        assert!(count(BOUNDARY) > 50, "phase boundary drawn");

        // One epoch, constant values, a NaN lr: still a figure.
        let one = [record("tied", 1, 0.01, f64::NAN)];
        curves(&path, "one epoch", &one).unwrap();
        let img = decode(&path);
        let count = |c: RGBColor| img.2.chunks(3).filter(|p| p == &[c.0, c.1, c.2]).count();
        assert!(count(LOSS_COLOR) > 20, "a marker for the single epoch");

        let err = curves(&path, "t", &[]).unwrap_err();
        assert!(matches!(err, FigureError::Input { .. }), "{err}");
        assert!(err.to_string().contains("history is empty"), "{err}");
        no_temp_left(dir.path());
    }
}
