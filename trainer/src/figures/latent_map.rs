//! A latent map: 2-D codes as a scatter plot coloured by digit.

use super::axis::linear_axis;
use super::canvas::{
    desc, draw_title, ensure_font, frame, render, text, text_width, Area, Canvas, DrawResult, LABEL_PT, TICK_PT,
    TITLE_PT,
};
use super::colors::DIGIT_COLORS;
use super::ticks::{linear_ticks, scientific, signed_label, thousands};
use super::{input_error, FigureError};
use ndarray::ArrayView2;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;
use std::path::Path;

/// Where [`latent_map`] puts things; every map has the same size (unless its title is wider),
/// so two of them sit side by side with their plots aligned.
#[derive(Debug, PartialEq)]
struct MapLayout {
    w: usize,
    h: usize,
    /// The square plot: top left and side in pixels.
    x0: usize,
    y0: usize,
    side: usize,
    /// The legend box: top left and size.
    legend_x: usize,
    legend_y: usize,
    legend_w: usize,
    legend_h: usize,
}

const MAP_PAD: usize = 12;
const MAP_TITLE: usize = 44;
const MAP_SIDE: usize = 600;
const MAP_Y_AREA: usize = 84;
const MAP_X_AREA: usize = 56;
const MAP_NOTE: usize = 30;
const MAP_LEGEND_GAP: usize = 20;
const MAP_LEGEND_W: usize = 92;
const MAP_LEGEND_ROW: usize = 28;
const MAP_LEGEND_HEAD: usize = 36;
/// Dot radius and opacity of a point.
const MAP_DOT_R: f32 = 1.6;
const MAP_DOT_ALPHA: f32 = 0.7;
/// The view covers these percentiles of each coordinate, plus a margin of this share of the span.
const MAP_PERCENTILES: (f64, f64) = (0.005, 0.995);
const MAP_MARGIN: f64 = 0.04;

impl MapLayout {
    fn new(title_w: usize) -> MapLayout {
        let x0 = MAP_PAD + MAP_Y_AREA;
        let y0 = MAP_PAD + MAP_TITLE;
        let legend_x = x0 + MAP_SIDE + MAP_LEGEND_GAP;
        let w = (legend_x + MAP_LEGEND_W + MAP_PAD).max(title_w + 2 * MAP_PAD);
        let h = y0 + MAP_SIDE + MAP_X_AREA + MAP_NOTE + MAP_PAD;
        MapLayout {
            w,
            h,
            x0,
            y0,
            side: MAP_SIDE,
            legend_x,
            legend_y: y0,
            legend_w: MAP_LEGEND_W,
            legend_h: MAP_LEGEND_HEAD + 10 * MAP_LEGEND_ROW + 8,
        }
    }
}

/// The `q`-quantile (nearest rank) of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The view of one coordinate: its 0.5–99.5 percentiles plus a margin; a constant coordinate
/// gets a unit-wide view around it, no values at all −1..1.
fn map_view(mut values: Vec<f64>) -> Range<f64> {
    if values.is_empty() {
        return -1.0..1.0;
    }
    values.sort_by(f64::total_cmp);
    let (lo, hi) = (
        quantile(&values, MAP_PERCENTILES.0),
        quantile(&values, MAP_PERCENTILES.1),
    );
    let span = hi - lo;
    if span <= f64::EPSILON * lo.abs().max(hi.abs()).max(1e-30) {
        let c = (lo + hi) / 2.0;
        let half = (c.abs() * 0.5).max(0.5);
        return c - half..c + half;
    }
    lo - span * MAP_MARGIN..hi + span * MAP_MARGIN
}

/// A small anti-aliased translucent dot centred at (`cx`, `cy`) (pixel centres at +0.5),
/// painted only inside the columns `xs` and rows `ys`.
fn dot(canvas: &mut Canvas, (cx, cy): (f32, f32), rgb: [u8; 3], xs: Range<usize>, ys: Range<usize>) {
    let reach = MAP_DOT_R.ceil() as i64 + 1;
    let (px, py) = (cx.floor() as i64, cy.floor() as i64);
    for y in py - reach..=py + reach {
        for x in px - reach..=px + reach {
            if x < 0 || y < 0 || !xs.contains(&(x as usize)) || !ys.contains(&(y as usize)) {
                continue;
            }
            let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
            let coverage = (MAP_DOT_R + 0.5 - d).clamp(0.0, 1.0);
            if coverage > 0.0 {
                canvas.blend(x as usize, y as usize, rgb, MAP_DOT_ALPHA * coverage);
            }
        }
    }
}

/// Draws `s` with a white halo (for labels over the points).
fn halo_text(root: &Area<'_>, s: &str, size: f64, (x, y): (i32, i32)) -> DrawResult {
    let halo = desc(size).color(&WHITE).pos(Pos::new(HPos::Center, VPos::Center));
    for (dx, dy) in [(-2, 0), (2, 0), (0, -2), (0, 2), (-1, -1), (1, 1), (-1, 1), (1, -1)] {
        root.draw_text(s, &halo, (x + dx, y + dy))?;
    }
    root.draw_text(s, &text(size, HPos::Center, VPos::Center), (x, y))?;
    Ok(())
}

/// A latent map: the 2-D codes of a set of images (`points`, `N × 2`) as a scatter plot under
/// `title`, each point a small translucent dot coloured by its digit (`labels`, 0–9, one per
/// point) in the tab10 palette ([`DIGIT_COLORS`]), with a legend and each digit also written
/// at its median position. The plot is a square 600 × 600 pixels, x is "code 1", y "code 2",
/// each axis scaled to its own 0.5–99.5 percentiles plus a small margin; points outside that
/// view, and points with non-finite codes, are left out and a note under the plot counts them.
/// Points are drawn in a fixed pseudo-random order, so no digit always lies on top. Every map
/// has the same size, so two (say deep 2-D codes and PCA-2) compare side by side.
pub fn latent_map(path: &Path, title: &str, points: ArrayView2<f32>, labels: &[u8]) -> Result<(), FigureError> {
    let (n, dims) = points.dim();
    if dims != 2 {
        return Err(input_error(
            path,
            format!("a latent map needs 2-D codes (N x 2), got {n} x {dims}"),
        ));
    }
    if n == 0 {
        return Err(input_error(path, "no points to draw".into()));
    }
    if labels.len() != n {
        return Err(input_error(
            path,
            format!("{n} points but {} labels; one label per point is needed", labels.len()),
        ));
    }
    if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| **l > 9) {
        return Err(input_error(path, format!("label {l} of point {i} is not a digit 0-9")));
    }
    let font = ensure_font(path)?;
    let finite: Vec<usize> = (0..n)
        .filter(|&i| points[[i, 0]].is_finite() && points[[i, 1]].is_finite())
        .collect();
    let coord = |c: usize| finite.iter().map(|&i| f64::from(points[[i, c]])).collect::<Vec<_>>();
    let (xv, yv) = (map_view(coord(0)), map_view(coord(1)));
    let inside = |x: f64, y: f64| xv.contains(&x) && yv.contains(&y);
    let outside = finite
        .iter()
        .filter(|&&i| !inside(f64::from(points[[i, 0]]), f64::from(points[[i, 1]])))
        .count();
    let non_finite = n - finite.len();
    let mut notes = Vec::new();
    if outside > 0 {
        notes.push(format!(
            "{} of {} points outside the 0.5\u{2013}99.5 percentile view are not shown",
            thousands(outside),
            thousands(n)
        ));
    }
    if non_finite > 0 {
        notes.push(format!(
            "{} points with non-finite codes are not shown",
            thousands(non_finite)
        ));
    }
    let note = notes.join("; ");
    let note_w = text_width(font, &note, TICK_PT);
    let lay = MapLayout::new(text_width(font, title, TITLE_PT).max(note_w));
    let side = lay.side as f64;
    // Pixel position of a point (sub-pixel, in canvas coordinates); y grows upwards.
    let to_px = |x: f64, y: f64| {
        (
            lay.x0 as f64 + (x - xv.start) / (xv.end - xv.start) * side,
            lay.y0 as f64 + (yv.end - y) / (yv.end - yv.start) * side,
        )
    };

    let mut canvas = Canvas::new(lay.w as u32, lay.h as u32);
    let mut order = finite.clone();
    order.sort_by_key(|&i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29));
    for &i in &order {
        let (x, y) = (f64::from(points[[i, 0]]), f64::from(points[[i, 1]]));
        if !inside(x, y) {
            continue;
        }
        let (px, py) = to_px(x, y);
        let rgb = DIGIT_COLORS[labels[i] as usize];
        let (xs, ys) = (lay.x0..lay.x0 + lay.side, lay.y0..lay.y0 + lay.side);
        dot(&mut canvas, (px as f32, py as f32), rgb, xs, ys);
    }

    // Median position of each digit's points in view, for the labels on the plot.
    let mut medians = Vec::new();
    for d in 0..10u8 {
        let mine: Vec<(f64, f64)> = finite
            .iter()
            .filter(|&&i| labels[i] == d)
            .map(|&i| (f64::from(points[[i, 0]]), f64::from(points[[i, 1]])))
            .filter(|&(x, y)| inside(x, y))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut xs: Vec<f64> = mine.iter().map(|p| p.0).collect();
        let mut ys: Vec<f64> = mine.iter().map(|p| p.1).collect();
        xs.sort_by(f64::total_cmp);
        ys.sort_by(f64::total_cmp);
        medians.push((d, quantile(&xs, 0.5), quantile(&ys, 0.5)));
    }

    render(path, font, canvas, |root| {
        draw_title(root, title, (MAP_PAD + MAP_TITLE / 2 - 4) as i32)?;
        let (w, h) = (lay.w as i32, lay.h as i32);
        let (x0, y0, s) = (lay.x0 as i32, lay.y0 as i32, lay.side as i32);
        let x_ticks = linear_ticks(xv.start, xv.end, 8);
        let y_ticks = linear_ticks(yv.start, yv.end, 8);
        let (x_sci, y_sci) = (scientific(&x_ticks), scientific(&y_ticks));
        let mut chart = ChartBuilder::on(root)
            .margin_left(x0 - MAP_Y_AREA as i32)
            .margin_top(y0)
            .margin_right(w - x0 - s)
            .margin_bottom(h - y0 - s - MAP_X_AREA as i32)
            .x_label_area_size(MAP_X_AREA as i32)
            .y_label_area_size(MAP_Y_AREA as i32)
            .build_cartesian_2d(linear_axis(xv.clone(), x_ticks), linear_axis(yv.clone(), y_ticks))?;
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        if xr != (x0..x0 + s) || yr != (y0..y0 + s) {
            return Err(format!("latent map layout mismatch: {xr:?} x {yr:?}").into());
        }
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("code 1")
            .y_desc("code 2")
            .label_style(desc(TICK_PT))
            .axis_desc_style(desc(LABEL_PT))
            .x_label_formatter(&|v| signed_label(*v, x_sci))
            .y_label_formatter(&|v| signed_label(*v, y_sci))
            .draw()?;
        frame(root, (x0, y0), (s, s))?;
        for &(d, x, y) in &medians {
            let (px, py) = to_px(x, y);
            halo_text(
                root,
                &d.to_string(),
                LABEL_PT + 3.0,
                (px.round() as i32, py.round() as i32),
            )?;
        }

        // Legend: a heading and one row per digit.
        let (lx, ly) = (lay.legend_x as i32, lay.legend_y as i32);
        root.draw(&Rectangle::new(
            [(lx, ly), (lx + lay.legend_w as i32, ly + lay.legend_h as i32)],
            BLACK.mix(0.4).stroke_width(1),
        ))?;
        root.draw_text(
            "digit",
            &text(LABEL_PT, HPos::Center, VPos::Center),
            (lx + lay.legend_w as i32 / 2, ly + MAP_LEGEND_HEAD as i32 / 2 + 2),
        )?;
        for (d, &[r, g, b]) in DIGIT_COLORS.iter().enumerate() {
            let cy = ly + (MAP_LEGEND_HEAD + d * MAP_LEGEND_ROW + MAP_LEGEND_ROW / 2) as i32;
            root.draw(&Circle::new((lx + 30, cy), 7, RGBColor(r, g, b).filled()))?;
            root.draw_text(&d.to_string(), &text(LABEL_PT, HPos::Left, VPos::Center), (lx + 50, cy))?;
        }
        if !note.is_empty() {
            root.draw_text(
                &note,
                &desc(TICK_PT)
                    .color(&RGBColor(90, 90, 90))
                    .pos(Pos::new(HPos::Left, VPos::Center)),
                (MAP_PAD as i32, h - MAP_PAD as i32 - MAP_NOTE as i32 / 2),
            )?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::test_support::{decode, no_temp_left, pixel};
    use ndarray::Array2;

    /// Ten clusters on a circle, `per` points each, labelled by cluster.
    fn clusters(per: usize) -> (Array2<f32>, Vec<u8>) {
        let n = 10 * per;
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let points = Array2::from_shape_fn((n, 2), |(i, c)| {
            let a = (i % 10) as f32 * std::f32::consts::TAU / 10.0;
            // A deterministic spread around the cluster's centre.
            let j = (i / 10) as f32;
            let (dx, dy) = (((j * 0.618).fract() - 0.5) * 0.4, ((j * 0.414).fract() - 0.5) * 0.4);
            if c == 0 {
                5.0 * a.cos() + dx
            } else {
                5.0 * a.sin() + dy
            }
        });
        (points, labels)
    }

    fn near(p: [u8; 3], c: [u8; 3], tol: i32) -> bool {
        (0..3).all(|k| (i32::from(p[k]) - i32::from(c[k])).abs() <= tol)
    }

    #[test]
    fn latent_map_colours_every_digit_and_has_a_legend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latent.png");
        let (mut points, labels) = clusters(200);
        points[[0, 0]] = 1000.0; // an outlier outside the view
        latent_map(&path, "deep2d: codes of 2,000 test images", points.view(), &labels).unwrap();
        let img = decode(&path);
        let lay = MapLayout::new(0);
        assert_eq!((img.0 as usize, img.1 as usize), (lay.w, lay.h));
        assert_eq!(lay.side, MAP_SIDE, "square plot");
        // Each digit's colour appears in the plot (dense clusters reach it), near its cluster.
        let (xv, yv) = {
            let col = |c: usize| points.column(c).iter().map(|&v| f64::from(v)).collect();
            (map_view(col(0)), map_view(col(1)))
        };
        assert!(xv.end < 100.0, "the outlier does not stretch the view: {xv:?}");
        for (d, &color) in DIGIT_COLORS.iter().enumerate() {
            let a = d as f64 * std::f64::consts::TAU / 10.0;
            let cx = lay.x0 as f64 + (5.0 * a.cos() - xv.start) / (xv.end - xv.start) * lay.side as f64;
            let cy = lay.y0 as f64 + (yv.end - 5.0 * a.sin()) / (yv.end - yv.start) * lay.side as f64;
            let hits = (cy as usize - 25..cy as usize + 25)
                .flat_map(|y| (cx as usize - 25..cx as usize + 25).map(move |x| (x, y)))
                .filter(|&(x, y)| near(pixel(&img, x, y), color, 12))
                .count();
            assert!(hits > 30, "digit {d}: {hits} pixels of its colour near its cluster");
        }
        // The legend: exact swatches of every colour, and its digits in dark ink.
        let legend = |x: usize, y: usize| {
            (lay.legend_x..lay.legend_x + lay.legend_w).contains(&x)
                && (lay.legend_y..lay.legend_y + lay.legend_h).contains(&y)
        };
        let in_legend: Vec<[u8; 3]> = (0..img.1 as usize)
            .flat_map(|y| (0..img.0 as usize).map(move |x| (x, y)))
            .filter(|&(x, y)| legend(x, y))
            .map(|(x, y)| pixel(&img, x, y))
            .collect();
        for (d, c) in DIGIT_COLORS.iter().enumerate() {
            let n = in_legend.iter().filter(|p| *p == c).count();
            assert!(n > 50, "legend swatch of digit {d}: {n} pixels");
        }
        let dark = in_legend.iter().filter(|p| p.iter().all(|&c| c < 100)).count();
        assert!(dark > 200, "legend text: {dark}");
        // Outside the plot and legend there is no point colour, only text and frame.
        assert_eq!(pixel(&img, lay.x0 - 2, lay.y0 + 5), [255, 255, 255]);
        // The note about the outlier sits in the bottom band.
        let note_ink = (lay.h - MAP_PAD - MAP_NOTE..lay.h)
            .flat_map(|y| (0..lay.w).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(&img, x, y)[0] < 160)
            .count();
        assert!(note_ink > 100, "note drawn: {note_ink}");
        no_temp_left(dir.path());
    }

    #[test]
    fn latent_maps_have_one_size_and_cope_with_odd_values() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        let (points, labels) = clusters(50);
        latent_map(&a, "deep2d", points.view(), &labels).unwrap();
        let scaled = points.mapv(|v| v * 1e-4 + 3.0);
        latent_map(&b, "pca2", scaled.view(), &labels).unwrap();
        let (ia, ib) = (decode(&a), decode(&b));
        assert_eq!((ia.0, ia.1), (ib.0, ib.1), "side by side maps have one size");
        // One point; constant codes; NaN codes: still a figure.
        latent_map(&a, "one", Array2::from_elem((1, 2), 0.5).view(), &[3]).unwrap();
        let mut odd = Array2::<f32>::zeros((20, 2));
        odd[[0, 0]] = f32::NAN;
        odd[[1, 1]] = f32::INFINITY;
        latent_map(&a, "constant", odd.view(), &[7; 20]).unwrap();
        latent_map(&a, "nan", Array2::from_elem((3, 2), f32::NAN).view(), &[1, 2, 3]).unwrap();
        no_temp_left(dir.path());
    }

    #[test]
    fn latent_map_refuses_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.png");
        let err = |points: Array2<f32>, labels: &[u8]| {
            let e = latent_map(&path, "t", points.view(), labels).unwrap_err();
            assert!(matches!(e, FigureError::Input { .. }), "{e}");
            assert!(e.to_string().contains("m.png"), "{e}");
            e.to_string()
        };
        assert!(err(Array2::zeros((0, 2)), &[]).contains("no points"));
        assert!(err(Array2::zeros((4, 3)), &[0; 4]).contains("4 x 3"));
        assert!(err(Array2::zeros((4, 1)), &[0; 4]).contains("N x 2"));
        assert!(err(Array2::zeros((4, 2)), &[0; 3]).contains("3 labels"));
        assert!(err(Array2::zeros((4, 2)), &[0, 1, 10, 2]).contains("label 10 of point 2"));
        assert!(!path.exists());
    }

    #[test]
    fn map_view_leaves_outliers_out() {
        let v = map_view((0..1000).map(f64::from).chain([1e6]).collect());
        assert!(v.start < 5.0 && v.end > 995.0 && v.end < 1100.0, "{v:?}");
        assert_eq!(map_view(vec![2.0; 5]), 1.0..3.0);
        assert_eq!(map_view(vec![]), -1.0..1.0);
    }
}
