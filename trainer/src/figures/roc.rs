//! ROC curves: true positive rate against false positive rate, one line per model.

use super::axis::linear_axis;
use super::canvas::{desc, draw_title, ensure_font, render, text_width, Canvas, LABEL_PT, TICK_PT, TITLE_PT};
use super::colors::{BOUNDARY, GRID, SERIES_COLORS};
use super::ticks::{linear_ticks, tick_label};
use super::{input_error, FigureError};
use plotters::prelude::*;
use std::path::Path;

const ROC_TITLE: u32 = 44;
const ROC_X_AREA: u32 = 56;
const ROC_Y_AREA: u32 = 84;
const ROC_MARGIN: u32 = 12;
const ROC_MARGIN_RIGHT: u32 = 28;
/// Side of the square plotting area in pixels.
const ROC_PLOT: u32 = 640;
const ROC_W: u32 = ROC_Y_AREA + ROC_MARGIN + ROC_MARGIN_RIGHT + ROC_PLOT;
const ROC_H: u32 = ROC_TITLE + 2 * ROC_MARGIN + ROC_X_AREA + ROC_PLOT;
/// Both axes run a little past [0, 1] so that a curve along an edge stays visible.
const ROC_PAD: f64 = 0.02;

/// One curve of [`roc`]: its legend label, its points (false positive rate, true positive rate)
/// as [`crate::anomaly::roc_curve`] gives them, and its AUROC, shown in the legend.
#[derive(Debug, Clone, Copy)]
pub struct RocSeries<'a> {
    /// The legend's name for the curve.
    pub label: &'a str,
    /// (false positive rate, true positive rate) in drawing order, both in [0, 1].
    pub points: &'a [(f64, f64)],
    /// The area under the curve, written in the legend as "label (AUROC 0.953)".
    pub auroc: f64,
}

/// ROC curves on the unit square: one line per series (tab10 colours, repeated past six) joining
/// its points in order, the chance diagonal dashed in grey, and a legend in the lower right
/// naming each series with its AUROC to three decimals. Refused: no series, a series without
/// points, a coordinate or an AUROC that is not a number in [0, 1].
pub fn roc(path: &Path, title: &str, curves: &[RocSeries<'_>]) -> Result<(), FigureError> {
    if curves.is_empty() {
        return Err(input_error(path, "no ROC curves to plot".into()));
    }
    let unit = |v: f64| (0.0..=1.0).contains(&v);
    for c in curves {
        if c.points.is_empty() {
            return Err(input_error(path, format!("ROC curve '{}' has no points", c.label)));
        }
        if let Some(p) = c.points.iter().find(|p| !unit(p.0) || !unit(p.1)) {
            return Err(input_error(
                path,
                format!(
                    "ROC curve '{}' has the point ({}, {}); rates are fractions in [0, 1]",
                    c.label, p.0, p.1
                ),
            ));
        }
        if !unit(c.auroc) {
            return Err(input_error(
                path,
                format!(
                    "ROC curve '{}' has AUROC {}; it is a fraction in [0, 1]",
                    c.label, c.auroc
                ),
            ));
        }
    }
    let font = ensure_font(path)?;
    let title_w = text_width(font, title, TITLE_PT) as u32;
    let w = ROC_W.max(title_w + 40);
    let ticks = linear_ticks(0.0, 1.0, 5);

    render(path, font, Canvas::new(w, ROC_H), |root| {
        draw_title(root, title, (ROC_TITLE / 2 + 4) as i32)?;
        let area = root.split_vertically(ROC_TITLE).1;
        let range = -ROC_PAD..1.0 + ROC_PAD;
        let mut chart = ChartBuilder::on(&area)
            .margin_top(ROC_MARGIN)
            .margin_bottom(ROC_MARGIN)
            .margin_left(ROC_MARGIN)
            .margin_right(ROC_MARGIN_RIGHT + w - ROC_W)
            .x_label_area_size(ROC_X_AREA)
            .y_label_area_size(ROC_Y_AREA)
            .build_cartesian_2d(
                linear_axis(range.clone(), ticks.clone()),
                linear_axis(range, ticks.clone()),
            )?;
        chart
            .configure_mesh()
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_desc("false positive rate")
            .y_desc("true positive rate")
            .label_style(desc(TICK_PT))
            .axis_desc_style(desc(LABEL_PT))
            .x_label_formatter(&|v| tick_label(*v, false))
            .y_label_formatter(&|v| tick_label(*v, false))
            .draw()?;
        chart.draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            8,
            6,
            BOUNDARY.stroke_width(1),
        ))?;
        for (k, c) in curves.iter().enumerate() {
            let color = SERIES_COLORS[k % SERIES_COLORS.len()];
            chart
                .draw_series(LineSeries::new(c.points.iter().copied(), color.stroke_width(2)))?
                .label(format!("{} (AUROC {:.3})", c.label, c.auroc))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
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
    use crate::figures::test_support::{decode, ink, no_temp_left, pixel};

    #[test]
    fn roc_draws_every_curve_and_the_diagonal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roc.png");
        let good = [(0.0, 0.0), (0.0, 0.6), (0.05, 0.9), (0.3, 1.0), (1.0, 1.0)];
        let fair = [(0.0, 0.0), (0.2, 0.5), (0.5, 0.8), (1.0, 1.0)];
        let curves = [
            RocSeries {
                label: "int8",
                points: &good,
                auroc: 0.953,
            },
            RocSeries {
                label: "float",
                points: &fair,
                auroc: 0.7,
            },
        ];
        roc(&path, "ROC on the test set", &curves).unwrap();
        let img = decode(&path);
        assert_eq!((img.0, img.1), (ROC_W, ROC_H));
        assert_eq!(
            ROC_W - ROC_Y_AREA - ROC_MARGIN - ROC_MARGIN_RIGHT,
            ROC_H - ROC_TITLE - 2 * ROC_MARGIN - ROC_X_AREA
        );
        let count = |c: RGBColor| img.2.chunks(3).filter(|p| p == &[c.0, c.1, c.2]).count();
        for c in &SERIES_COLORS[..2] {
            assert!(count(*c) > 500, "curve {c:?} drawn: {}", count(*c));
        }
        assert!(count(SERIES_COLORS[2]) == 0, "only two curves");
        assert!(count(BOUNDARY) > 200, "diagonal drawn: {}", count(BOUNDARY));
        let (colored, dark) = ink(&img);
        assert!(colored > 2000 && dark > 1000, "lines, labels: {colored} {dark}");
        // The first curve climbs the left edge: at x = 0, a third of the way up, its colour.
        let plot_left = (ROC_Y_AREA + ROC_MARGIN) as f64;
        let plot_top = (ROC_TITLE + ROC_MARGIN) as f64;
        let span = 1.0 + 2.0 * ROC_PAD;
        let px = |v: f64| plot_left + (v + ROC_PAD) / span * ROC_PLOT as f64;
        let py = |v: f64| plot_top + (1.0 + ROC_PAD - v) / span * ROC_PLOT as f64;
        let (x, y) = (px(0.0).round() as usize, py(0.3).round() as usize);
        let first = SERIES_COLORS[0];
        let near = (x - 2..=x + 2).any(|x| pixel(&img, x, y) == [first.0, first.1, first.2]);
        assert!(near, "curve on the left edge at ({x}, {y})");

        // A long title widens the figure; a single point is still a figure.
        let long = "a title long enough to need more room than the square plot leaves for it, really";
        roc(&path, long, &curves[..1]).unwrap();
        assert!(decode(&path).0 > ROC_W);
        let one = [(0.5, 0.5)];
        roc(
            &path,
            "one point",
            &[RocSeries {
                label: "x",
                points: &one,
                auroc: 0.5,
            }],
        )
        .unwrap();
        no_temp_left(dir.path());
    }

    #[test]
    fn roc_refuses_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.png");
        let err = |curves: &[RocSeries<'_>]| {
            let e = roc(&path, "t", curves).unwrap_err();
            assert!(matches!(e, FigureError::Input { .. }), "{e}");
            assert!(e.to_string().contains("r.png"), "{e}");
            e.to_string()
        };
        let series = |points: &'static [(f64, f64)], auroc: f64| RocSeries {
            label: "s",
            points,
            auroc,
        };
        assert!(err(&[]).contains("no ROC curves"));
        assert!(err(&[series(&[], 0.5)]).contains("'s' has no points"));
        assert!(err(&[series(&[(0.0, 0.0), (1.0, 1.5)], 0.5)]).contains("(1, 1.5)"));
        assert!(err(&[series(&[(0.0, f64::NAN)], 0.5)]).contains("[0, 1]"));
        assert!(err(&[series(&[(0.0, 0.0)], f64::NAN)]).contains("AUROC NaN"));
        assert!(err(&[series(&[(0.0, 0.0)], 95.3)]).contains("AUROC 95.3"));
        assert!(!path.exists());
    }
}
