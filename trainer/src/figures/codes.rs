//! The codes of a batch as a heatmap, exact zeros white, with a colour bar.

use super::axis::linear_axis;
use super::canvas::{
    desc, draw_title, ensure_font, frame, render, text, text_width, Canvas, LABEL_PT, TICK_PT, TITLE_PT,
};
use super::colors::code_color;
use super::ticks::{integer_ticks, linear_ticks, scientific, tick_label};
use super::{input_error, FigureError};
use ndarray::ArrayView2;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

/// The most samples (rows) or code units (columns) [`codes`] shows; beyond it the first ones
/// are shown and the axis label says so.
pub const MAX_CODE_AXIS: usize = 1024;

/// Where [`codes`] puts things.
#[derive(Debug, PartialEq)]
struct CodesLayout {
    w: usize,
    h: usize,
    /// Heatmap: top left and size in pixels, and the size of one cell.
    x0: usize,
    y0: usize,
    cell_w: usize,
    cell_h: usize,
    plot_w: usize,
    plot_h: usize,
    /// Colour bar: left edge (same top and height as the heatmap).
    bar_x: usize,
}

const CODES_PAD: usize = 12;
const CODES_TITLE: usize = 44;
const CODES_Y_AREA: usize = 84;
const CODES_X_AREA: usize = 56;
const CODES_BAR_GAP: usize = 28;
const CODES_BAR_W: usize = 24;
const CODES_BAR_LABELS: usize = 76;

impl CodesLayout {
    /// The layout for `samples` × `units` shown cells and a title `title_w` pixels wide.
    fn new(samples: usize, units: usize, title_w: usize) -> CodesLayout {
        // Cells of whole pixels, the heatmap at least 480 × 320.
        let cell_w = 480usize.div_ceil(units.max(1));
        let cell_h = 320usize.div_ceil(samples.max(1));
        let (plot_w, plot_h) = (units * cell_w, samples * cell_h);
        let x0 = CODES_PAD + CODES_Y_AREA;
        let y0 = CODES_PAD + CODES_TITLE;
        let bar_x = x0 + plot_w + CODES_BAR_GAP;
        let w = (bar_x + CODES_BAR_W + CODES_BAR_LABELS + CODES_PAD).max(title_w + 2 * CODES_PAD);
        let h = y0 + plot_h + CODES_X_AREA + CODES_PAD;
        CodesLayout {
            w,
            h,
            x0,
            y0,
            cell_w,
            cell_h,
            plot_w,
            plot_h,
            bar_x,
        }
    }
}

/// The codes of a batch (`samples × units`) as a heatmap under `title`: one row per sample
/// (sample 0 at the top), one column per code unit. Exact zeros are white; non-zero values are
/// red (positive) or blue (negative), darker with magnitude, on a scale to the largest finite
/// |value| shown in a colour bar with an "exactly 0" swatch; NaN is green. At most
/// [`MAX_CODE_AXIS`] samples and units are shown (the first ones; the axis label then says so).
pub fn codes(path: &Path, title: &str, codes: ArrayView2<f32>) -> Result<(), FigureError> {
    let (all_samples, all_units) = codes.dim();
    if all_samples == 0 {
        return Err(input_error(path, "no codes to draw (zero samples)".into()));
    }
    if all_units == 0 {
        return Err(input_error(path, "no codes to draw (zero code units)".into()));
    }
    let samples = all_samples.min(MAX_CODE_AXIS);
    let units = all_units.min(MAX_CODE_AXIS);
    let shown = codes.slice(ndarray::s![..samples, ..units]);
    let font = ensure_font(path)?;

    let finite = || shown.iter().copied().filter(|v| v.is_finite());
    let m = finite().fold(0f32, |m, v| m.max(v.abs()));
    let any_neg = finite().any(|v| v < 0.0);
    let any_pos = finite().any(|v| v > 0.0) || !any_neg;
    let m = if m > 0.0 { m } else { 1.0 };
    let lo = if any_neg { -f64::from(m) } else { 0.0 };
    let hi = if any_pos { f64::from(m) } else { 0.0 };

    let title_w = text_width(font, title, TITLE_PT);
    let lay = CodesLayout::new(samples, units, title_w);
    let mut canvas = Canvas::new(lay.w as u32, lay.h as u32);
    for ((s, u), &v) in shown.indexed_iter() {
        let rgb = code_color(v, m);
        for dy in 0..lay.cell_h {
            for dx in 0..lay.cell_w {
                canvas.put(lay.x0 + u * lay.cell_w + dx, lay.y0 + s * lay.cell_h + dy, rgb);
            }
        }
    }

    let y_desc = if samples < all_samples {
        format!("sample (first {samples} of {all_samples})")
    } else {
        "sample".to_string()
    };
    let x_desc = if units < all_units {
        format!("code unit (first {units} of {all_units})")
    } else {
        "code unit".to_string()
    };
    render(path, font, canvas, |root| {
        draw_title(root, title, (CODES_PAD + CODES_TITLE / 2 - 4) as i32)?;

        // Axes of the heatmap; its plotting area is exactly the painted cells.
        let (w, h) = (lay.w as i32, lay.h as i32);
        let (x0, y0) = (lay.x0 as i32, lay.y0 as i32);
        let (pw, ph) = (lay.plot_w as i32, lay.plot_h as i32);
        let unit_ticks: Vec<f64> = integer_ticks(0, units, 8).into_iter().map(|u| u as f64).collect();
        let sample_ticks: Vec<f64> = integer_ticks(0, samples, 8)
            .into_iter()
            .map(|s| (samples - s) as f64)
            .collect();
        let mut chart = ChartBuilder::on(root)
            .margin_left(x0 - CODES_Y_AREA as i32)
            .margin_top(y0)
            .margin_right(w - x0 - pw)
            .margin_bottom(h - y0 - ph - CODES_X_AREA as i32)
            .x_label_area_size(CODES_X_AREA as i32)
            .y_label_area_size(CODES_Y_AREA as i32)
            .build_cartesian_2d(
                linear_axis(0.0..units as f64, unit_ticks),
                linear_axis(0.0..samples as f64, sample_ticks),
            )?;
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        if xr != (x0..x0 + pw) || yr != (y0..y0 + ph) {
            return Err(format!("heatmap layout mismatch: {xr:?} x {yr:?}").into());
        }
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(x_desc.as_str())
            .y_desc(y_desc.as_str())
            .label_style(desc(TICK_PT))
            .axis_desc_style(desc(LABEL_PT))
            .x_label_formatter(&|v| format!("{}", v.round()))
            .y_label_formatter(&|v| format!("{}", (samples as f64 - v).round()))
            .draw()?;
        frame(root, (x0, y0), (pw, ph))?;

        // Colour bar beside it, same height.
        let bar_x = lay.bar_x as i32;
        let mut bar = ChartBuilder::on(root)
            .margin_left(bar_x)
            .margin_top(y0)
            .margin_right(w - bar_x - CODES_BAR_W as i32)
            .margin_bottom(h - y0 - ph)
            .build_cartesian_2d(0.0..1.0, lo..hi)?;
        const SLICES: usize = 256;
        bar.draw_series((0..SLICES).map(|i| {
            let a = lo + (hi - lo) * i as f64 / SLICES as f64;
            let b = lo + (hi - lo) * (i + 1) as f64 / SLICES as f64;
            let [r, g, bl] = code_color(((a + b) / 2.0) as f32, m);
            Rectangle::new([(0.0, a), (1.0, b)], RGBColor(r, g, bl).filled())
        }))?;
        // Its scale: tick marks and labels (with a real minus sign) to the right.
        let bar_ticks = linear_ticks(lo, hi, 6);
        let sci = scientific(&bar_ticks);
        let bar_right = bar_x + CODES_BAR_W as i32;
        for t in bar_ticks {
            let (_, py) = bar.backend_coord(&(1.0, t));
            root.draw(&PathElement::new(
                [(bar_right, py), (bar_right + 5, py)],
                BLACK.stroke_width(1),
            ))?;
            root.draw_text(
                &tick_label(t, sci).replace('-', "\u{2212}"),
                &text(TICK_PT, HPos::Left, VPos::Center),
                (bar_right + 9, py),
            )?;
        }
        frame(root, (bar_x, y0), (CODES_BAR_W as i32, ph))?;
        // The exact-zero swatch under the bar.
        let sy = y0 + ph + 18;
        root.draw(&Rectangle::new(
            [(bar_x, sy), (bar_x + 16, sy + 16)],
            BLACK.stroke_width(1),
        ))?;
        root.draw_text(
            "exactly 0",
            &text(TICK_PT, HPos::Left, VPos::Center),
            (bar_x + 24, sy + 8),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::colors::{NON_FINITE, REDS, ZERO};
    use crate::figures::test_support::{decode, ink, no_temp_left, pixel};
    use ndarray::Array2;

    #[test]
    fn codes_shows_zeros_white_and_values_colored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("codes.png");
        let mut c = Array2::<f32>::zeros((512, 64));
        c[[0, 0]] = 5.0;
        c[[100, 10]] = -2.0;
        c[[300, 40]] = 0.01;
        codes(&path, "codes: 99.99 % zeros", c.view()).unwrap();
        let img = decode(&path);
        let lay = CodesLayout::new(512, 64, 0);
        assert_eq!((lay.cell_w, lay.cell_h), (8, 1));
        assert_eq!(img.1 as usize, lay.h);
        let at = |s: usize, u: usize| {
            pixel(
                &img,
                lay.x0 + u * lay.cell_w + lay.cell_w / 2,
                lay.y0 + s * lay.cell_h + lay.cell_h / 2,
            )
        };
        assert_eq!(at(5, 5), ZERO);
        assert_eq!(at(511, 63), ZERO);
        let big = at(0, 0);
        assert_eq!(big, REDS[3], "the largest value gets the darkest red");
        let neg = at(100, 10);
        assert!(neg[2] > neg[0], "negative is blue: {neg:?}");
        assert_ne!(at(300, 40), ZERO, "a tiny non-zero value is not white");
        let (colored, dark) = ink(&img);
        assert!(colored > 1000 && dark > 500, "bar, labels: {colored} {dark}");
        no_temp_left(dir.path());
    }

    #[test]
    fn codes_handles_odd_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let err = codes(&path, "t", Array2::zeros((0, 64)).view()).unwrap_err();
        assert!(matches!(err, FigureError::Input { .. }), "{err}");
        assert!(err.to_string().contains("c.png") && err.to_string().contains("zero samples"));
        let err = codes(&path, "t", Array2::zeros((8, 0)).view()).unwrap_err();
        assert!(err.to_string().contains("zero code units"), "{err}");
        assert!(!path.exists());
        // One sample, all zero, a NaN; 128 units; more samples than shown.
        codes(&path, "one", Array2::zeros((1, 3)).view()).unwrap();
        let mut c = Array2::<f32>::zeros((2000, 128));
        c[[0, 0]] = f32::NAN;
        codes(&path, "many", c.view()).unwrap();
        let img = decode(&path);
        let lay = CodesLayout::new(MAX_CODE_AXIS, 128, 0);
        assert_eq!((img.0 as usize, img.1 as usize), (lay.w, lay.h));
        assert_eq!(pixel(&img, lay.x0, lay.y0), NON_FINITE);
    }
}
