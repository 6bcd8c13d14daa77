//! The tutorial's figures, as PNG files.
//!
//! Everything is drawn in pure Rust: [`plotters`] renders into an RGB buffer (image grids are
//! written pixel by pixel first) and the `png` crate encodes it. All text uses DejaVu Sans,
//! embedded in the binary (`assets/fonts/`), registered once with plotters' `register_font`
//! and laid out by a thin wrapper of the bitmap backend (`figures/text.rs`) that fixes
//! plotters' letter spacing. No system font or package is read at run time.
//!
//! Each PNG is written atomically: rendered to a temporary file in the target's directory,
//! synced, then renamed over the target, so a reader never sees half a figure.
//!
//! Degenerate inputs are refused with [`FigureError::Input`] naming the path and the problem,
//! never a panic: no rows, no images, no tiles, zero-row or zero-column codes, an empty history,
//! images that are not 784 = 28×28 wide, or more than [`MAX_EXAMPLES_PER_ROW`] images in a row.
//! Odd *values* are drawn rather than refused: example pixels are clamped to [0, 1] (NaN is
//! black), non-finite code values and tile pixels are drawn in a marker colour, and points of a
//! curve that cannot sit on a log axis (non-finite or ≤ 0) are left out, breaking the line.

mod text;

use crate::epoch::EpochRecord;
use crate::mnist::PIXELS;
use ab_glyph::FontRef;
use ndarray::{ArrayView1, ArrayView2};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// Side of an MNIST image in pixels.
const SIDE: usize = 28;

/// The most images [`examples`] draws in one row.
pub const MAX_EXAMPLES_PER_ROW: usize = 32;

/// The most samples (rows) or code units (columns) [`codes`] shows; beyond it the first ones
/// are shown and the axis label says so.
pub const MAX_CODE_AXIS: usize = 1024;

/// DejaVu Sans (Bitstream Vera license, `assets/fonts/LICENSE`).
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// The family the font is registered under; every text style names it.
const FAMILY: &str = "sans-serif";

/// Why a figure could not be written.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// The data cannot make this figure (empty, wrong shape).
    #[error("figure {}: {reason}", path.display())]
    Input {
        /// The figure's path.
        path: PathBuf,
        /// What is wrong with the data.
        reason: String,
    },
    /// The embedded font could not be registered.
    #[error("figure {}: the embedded font could not be loaded", path.display())]
    Font {
        /// The figure's path.
        path: PathBuf,
    },
    /// Drawing failed.
    #[error("figure {}: drawing failed: {reason}", path.display())]
    Draw {
        /// The figure's path.
        path: PathBuf,
        /// The drawing library's message.
        reason: String,
    },
    /// Encoding the PNG failed.
    #[error("figure {}: PNG encoding failed: {source}", path.display())]
    Encode {
        /// The figure's path.
        path: PathBuf,
        /// The encoder's error.
        source: png::EncodingError,
    },
    /// Writing the file failed.
    #[error("figure {}: cannot write: {source}", path.display())]
    Io {
        /// The figure's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Rows and columns of a near-square grid holding `n` items: the divisor pair closest to
/// square with at most twice as many columns as rows (64 → 8×8, 128 → 8×16, 32 → 4×8), else
/// `ceil(√n)` columns and as many rows as needed (10 → 3×4). `(0, 0)` for 0.
pub fn grid_shape(n: usize) -> (usize, usize) {
    if n == 0 {
        return (0, 0);
    }
    let mut rows = n.isqrt();
    while !n.is_multiple_of(rows) {
        rows -= 1;
    }
    let cols = n / rows;
    if cols <= 2 * rows {
        return (rows, cols);
    }
    let cols = n.isqrt() + usize::from(n.isqrt() * n.isqrt() < n);
    (n.div_ceil(cols), cols)
}

// ----------------------------------------------------------------------------------------------
// Font, canvas, rendering and the atomic write.

static REGISTER: Once = Once::new();
static PARSED: OnceLock<FontRef<'static>> = OnceLock::new();

/// Registers the embedded font with plotters and parses it for the text backend
/// ([`mod@text`]), once per process; every figure calls this before drawing.
fn ensure_font(path: &Path) -> Result<&'static FontRef<'static>, FigureError> {
    REGISTER.call_once(|| {
        if let Ok(font) = FontRef::try_from_slice(FONT) {
            if register_font(FAMILY, FontStyle::Normal, FONT).is_ok() {
                let _ = PARSED.set(font);
            }
        }
    });
    PARSED.get().ok_or_else(|| FigureError::Font {
        path: path.to_path_buf(),
    })
}

/// Text sizes in pixels (the font's ascent-to-descent height).
const TITLE_PT: f64 = 24.0;
const LABEL_PT: f64 = 19.0;
const TICK_PT: f64 = 16.0;

fn desc(size: f64) -> FontDesc<'static> {
    (FAMILY, size).into_font()
}

/// A text style anchored at `h`/`v`.
fn text(size: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    desc(size).color(&BLACK).pos(Pos::new(h, v))
}

/// Width in pixels of `s` in the embedded font at `size`.
fn text_width(font: &FontRef<'static>, s: &str, size: f64) -> usize {
    text::layout(font, size, s).width.ceil() as usize
}

fn draw_error(path: &Path, e: impl std::fmt::Display) -> FigureError {
    FigureError::Draw {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn input_error(path: &Path, reason: String) -> FigureError {
    FigureError::Input {
        path: path.to_path_buf(),
        reason,
    }
}

/// A white RGB image to paint on before plotters draws the text and axes.
struct Canvas {
    w: u32,
    h: u32,
    buf: Vec<u8>,
}

impl Canvas {
    fn new(w: u32, h: u32) -> Canvas {
        Canvas {
            w,
            h,
            buf: vec![255; w as usize * h as usize * 3],
        }
    }

    fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.w as usize && y < self.h as usize {
            let i = (y * self.w as usize + x) * 3;
            self.buf[i..i + 3].copy_from_slice(&rgb);
        }
    }

    /// One 28×28 image, each pixel a `scale`×`scale` square, top left at (`x0`, `y0`);
    /// `color` maps a pixel index (row-major, 0..784) to its colour.
    fn image(&mut self, x0: usize, y0: usize, scale: usize, color: impl Fn(usize) -> [u8; 3]) {
        for py in 0..SIDE * scale {
            for px in 0..SIDE * scale {
                self.put(x0 + px, y0 + py, color((py / scale) * SIDE + px / scale));
            }
        }
    }
}

type Area<'a> = DrawingArea<text::Backend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws `title` centred across `root`, its middle `y` pixels from the top.
fn draw_title(root: &Area<'_>, title: &str, y: i32) -> DrawResult {
    let (w, _) = root.dim_in_pixel();
    root.draw_text(title, &text(TITLE_PT, HPos::Center, VPos::Center), ((w / 2) as i32, y))?;
    Ok(())
}

/// A one-pixel black frame just outside the `w` × `h` pixels whose top left is (`x`, `y`).
fn frame(root: &Area<'_>, (x, y): (i32, i32), (w, h): (i32, i32)) -> DrawResult {
    root.draw(&Rectangle::new([(x - 1, y - 1), (x + w, y + h)], BLACK.stroke_width(1)))?;
    Ok(())
}

/// Lets plotters draw over `canvas`, then writes it to `path` as a PNG.
fn render(
    path: &Path,
    font: &'static FontRef<'static>,
    mut canvas: Canvas,
    draw: impl FnOnce(&Area<'_>) -> DrawResult,
) -> Result<(), FigureError> {
    {
        let bitmap = BitMapBackend::with_buffer(&mut canvas.buf, (canvas.w, canvas.h));
        let root = text::Backend::new(bitmap, font).into_drawing_area();
        draw(&root).map_err(|e| draw_error(path, e))?;
        root.present().map_err(|e| draw_error(path, e))?;
    }
    write_png(path, &canvas)
}

/// Encodes `canvas` to a temporary file next to `path`, syncs it and renames it to `path`.
fn write_png(path: &Path, canvas: &Canvas) -> Result<(), FigureError> {
    static SERIAL: AtomicUsize = AtomicUsize::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| input_error(path, "the path names no file".into()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    ));
    let io = |source| FigureError::Io {
        path: path.to_path_buf(),
        source,
    };
    let encode = |source| FigureError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let result = (|| {
        let mut out = BufWriter::new(File::create(&tmp).map_err(io)?);
        let mut encoder = png::Encoder::new(&mut out, canvas.w, canvas.h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(encode)?;
        writer.write_image_data(&canvas.buf).map_err(encode)?;
        writer.finish().map_err(encode)?;
        out.flush().map_err(io)?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        drop(file);
        fs::rename(&tmp, path).map_err(io)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

// ----------------------------------------------------------------------------------------------
// Ticks and their labels.

/// The smallest of 1, 2, 5 × 10^k that cuts `span` into at most `max_ticks` steps.
fn nice_step(span: f64, max_ticks: usize) -> f64 {
    let raw = (span / max_ticks.max(1) as f64).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// An axis (`f64`, linear or log) whose ticks are exactly the given values and whose labels
/// come from the mesh's formatter (plotters' own ticks can be empty on a short log axis).
struct Ticks<R> {
    inner: R,
    ticks: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticks<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// A linear axis over `range` with ticks at `ticks`.
fn linear_axis(range: Range<f64>, ticks: Vec<f64>) -> Ticks<RangedCoordf64> {
    Ticks {
        inner: range.into(),
        ticks,
    }
}

/// A log axis over `lo..hi` with ticks at `ticks`.
fn log_axis(lo: f64, hi: f64, ticks: Vec<f64>) -> Ticks<LogCoord<f64>> {
    Ticks {
        inner: (lo..hi).log_scale().into(),
        ticks,
    }
}

/// Multiples of a nice step within `lo..=hi`, at most about `max_ticks` of them.
fn linear_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    let step = nice_step(hi - lo, max_ticks);
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Integer ticks (multiples of a nice integer step) within `lo..=hi`.
fn integer_ticks(lo: usize, hi: usize, max_ticks: usize) -> Vec<usize> {
    let step = nice_step((hi - lo) as f64, max_ticks).max(1.0).round() as usize;
    (lo.div_ceil(step)..=hi / step).map(|k| k * step).collect()
}

/// Ticks for a log axis over `lo..=hi` (both > 0): decades when the range spans three or more,
/// else 1, 2, 5 × 10^k, else every integer mantissa.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let e0 = lo.log10().floor() as i32 - 1;
    let e1 = hi.log10().ceil() as i32 + 1;
    let within = |mantissas: &[f64]| -> Vec<f64> {
        (e0..=e1)
            .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
            .filter(|v| *v >= lo * (1.0 - 1e-9) && *v <= hi * (1.0 + 1e-9))
            .collect()
    };
    let decades = within(&[1.0]);
    if decades.len() >= 3 {
        let every = decades.len().div_ceil(8);
        return decades.into_iter().step_by(every).collect();
    }
    let coarse = within(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 3 {
        return coarse;
    }
    within(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
}

/// Whether an axis with these ticks labels them in `2.5e-5` style: when any non-zero tick is
/// below 0.001 or from 10⁴ up (then all of them, so one axis never mixes styles).
fn scientific(ticks: &[f64]) -> bool {
    ticks.iter().any(|t| t.abs() > 1e-12 && !(1e-3..1e4).contains(&t.abs()))
}

/// A tick label: `2.5e-5` style if `sci`, else plain decimals with three significant digits
/// at most (`0.005`, `0.0015`, `150`).
fn tick_label(v: f64, sci: bool) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    if sci {
        let s = format!("{v:.2e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        format!("{mantissa}e{exp}")
    } else {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Image grids.

/// Grey level of a pixel value, clamped to [0, 1]; NaN is black.
fn gray(v: f32) -> [u8; 3] {
    let g = if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    [g, g, g]
}

/// Marker colour for non-finite values where a colour scale is used.
const NON_FINITE: [u8; 3] = [0, 200, 0];

/// Layout of [`examples`].
const EX_SCALE: usize = 3;
const EX_GAP: usize = 4;
const EX_ROW_GAP: usize = 8;
const EX_PAD: usize = 12;
const EX_LABEL_GAP: usize = 14;

/// Labelled rows of MNIST-sized images, one row per entry of `rows` (e.g. "input",
/// "reconstruction"), each `n × 784` with values nominally in [0, 1] (clamped), drawn white on
/// black, 3× upscaled with thin gaps, the label on the left. Pass 8–10 images per row; rows
/// may differ in length (at most [`MAX_EXAMPLES_PER_ROW`]).
pub fn examples(path: &Path, rows: &[(&str, ArrayView2<f32>)]) -> Result<(), FigureError> {
    if rows.is_empty() {
        return Err(input_error(path, "no rows of examples to draw".into()));
    }
    for (label, images) in rows {
        if images.ncols() != PIXELS {
            return Err(input_error(
                path,
                format!(
                    "row '{label}' has images of {} pixels, expected {PIXELS} (28x28)",
                    images.ncols()
                ),
            ));
        }
        if images.nrows() > MAX_EXAMPLES_PER_ROW {
            return Err(input_error(
                path,
                format!(
                    "row '{label}' has {} images, at most {MAX_EXAMPLES_PER_ROW} fit a row",
                    images.nrows()
                ),
            ));
        }
    }
    let n = rows.iter().map(|(_, a)| a.nrows()).max().unwrap_or(0);
    if n == 0 {
        return Err(input_error(path, "every row of examples is empty".into()));
    }
    let font = ensure_font(path)?;
    let label_w = rows
        .iter()
        .map(|(label, _)| text_width(font, label, LABEL_PT))
        .max()
        .unwrap_or(0);
    let tile = SIDE * EX_SCALE;
    let x_images = EX_PAD + label_w + EX_LABEL_GAP;
    let w = x_images + n * tile + (n - 1) * EX_GAP + EX_PAD;
    let h = 2 * EX_PAD + rows.len() * tile + (rows.len() - 1) * EX_ROW_GAP;
    let mut canvas = Canvas::new(w as u32, h as u32);
    for (r, (_, images)) in rows.iter().enumerate() {
        let y0 = EX_PAD + r * (tile + EX_ROW_GAP);
        for (i, image) in images.outer_iter().enumerate() {
            canvas.image(x_images + i * (tile + EX_GAP), y0, EX_SCALE, |p| gray(image[p]));
        }
    }
    render(path, font, canvas, |root| {
        let style = text(LABEL_PT, HPos::Right, VPos::Center);
        for (r, (label, _)) in rows.iter().enumerate() {
            let y = EX_PAD + r * (tile + EX_ROW_GAP) + tile / 2;
            root.draw_text(label, &style, ((x_images - EX_LABEL_GAP) as i32, y as i32))?;
        }
        Ok(())
    })
}

/// Layout of [`dictionary`].
const DICT_GAP: usize = 2;
const DICT_PAD: usize = 12;
const DICT_TITLE: usize = 44;

/// Upscaling of dictionary tiles: as large as fits about 1440 pixels across, 1 to 4.
fn dict_scale(cols: usize) -> usize {
    (1440 / (cols * 30).max(1)).clamp(1, 4)
}

/// Size of the grid of `k` dictionary tiles, without title and padding.
fn dict_grid_size(k: usize) -> (usize, usize) {
    let (rows, cols) = grid_shape(k);
    let tile = SIDE * dict_scale(cols);
    (cols * tile + (cols - 1) * DICT_GAP, rows * tile + (rows - 1) * DICT_GAP)
}

/// `K` tiles (`K × 784`, e.g. decoder columns) as a near-square grid ([`grid_shape`]) of
/// 28×28 greyscale images under `title`, each normalised to its own min..max (a constant tile
/// is mid-grey; non-finite pixels are green), upscaled (4× up to 8 columns, 3× up to 16) with
/// thin white gaps.
pub fn dictionary(path: &Path, title: &str, tiles: ArrayView2<f32>) -> Result<(), FigureError> {
    let k = tiles.nrows();
    if k == 0 {
        return Err(input_error(path, "no tiles to draw".into()));
    }
    if tiles.ncols() != PIXELS {
        return Err(input_error(
            path,
            format!("tiles have {} pixels, expected {PIXELS} (28x28)", tiles.ncols()),
        ));
    }
    let font = ensure_font(path)?;
    let (_, cols) = grid_shape(k);
    let scale = dict_scale(cols);
    let tile = SIDE * scale;
    let (grid_w, grid_h) = dict_grid_size(k);
    let title_w = text_width(font, title, TITLE_PT);
    let w = grid_w.max(title_w) + 2 * DICT_PAD;
    let h = DICT_PAD + DICT_TITLE + grid_h + DICT_PAD;
    let x_grid = (w - grid_w) / 2;
    let mut canvas = Canvas::new(w as u32, h as u32);
    for (i, t) in tiles.outer_iter().enumerate() {
        let (lo, hi) = finite_range(t);
        let x0 = x_grid + (i % cols) * (tile + DICT_GAP);
        let y0 = DICT_PAD + DICT_TITLE + (i / cols) * (tile + DICT_GAP);
        canvas.image(x0, y0, scale, |p| {
            let v = t[p];
            if !v.is_finite() {
                NON_FINITE
            } else if hi > lo {
                let g = ((v - lo) / (hi - lo) * 255.0).round().clamp(0.0, 255.0) as u8;
                [g, g, g]
            } else {
                [128, 128, 128]
            }
        });
    }
    render(path, font, canvas, |root| {
        draw_title(root, title, (DICT_PAD + DICT_TITLE / 2) as i32)
    })
}

/// Min and max of the finite values (0, 0 when there are none).
fn finite_range(v: ArrayView1<f32>) -> (f32, f32) {
    let (lo, hi) = v
        .iter()
        .filter(|x| x.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    if lo > hi {
        (0.0, 0.0)
    } else {
        (lo, hi)
    }
}

// ----------------------------------------------------------------------------------------------
// Codes heatmap.

/// Colour of an exact zero code.
const ZERO: [u8; 3] = [255, 255, 255];
/// Positive codes, light to dark (ColorBrewer Reds without its near-white end).
const REDS: [[u8; 3]; 4] = [[252, 187, 161], [251, 106, 74], [203, 24, 29], [103, 0, 13]];
/// Negative codes, light to dark (ColorBrewer Blues without its near-white end).
const BLUES: [[u8; 3]; 4] = [[198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];

/// Piecewise-linear colour ramp at `t` in [0, 1].
fn ramp(stops: &[[u8; 3]], t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0) * (stops.len() - 1) as f32;
    let i = (t.floor() as usize).min(stops.len() - 2);
    let f = t - i as f32;
    let (a, b) = (stops[i], stops[i + 1]);
    std::array::from_fn(|c| (a[c] as f32 + (b[c] as f32 - a[c] as f32) * f).round() as u8)
}

/// Colour of code value `v` on a scale whose ends are ±`m` (`m` > 0): white for exactly 0,
/// reds for positive, blues for negative, darker with magnitude; green for NaN.
fn code_color(v: f32, m: f32) -> [u8; 3] {
    if v == 0.0 {
        ZERO
    } else if v.is_nan() {
        NON_FINITE
    } else if v > 0.0 {
        ramp(&REDS, v / m)
    } else {
        ramp(&BLUES, -v / m)
    }
}

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

// ----------------------------------------------------------------------------------------------
// Training curves.

const CURVES_W: u32 = 1000;
const CURVES_TITLE: u32 = 44;
const CURVES_TOP_H: u32 = 490;
const CURVES_LR_H: u32 = 300;
const CURVES_PHASES: u32 = 34;
const CURVES_X_AREA: u32 = 50;
const CURVES_Y_AREA: u32 = 96;

const LOSS_COLOR: RGBColor = RGBColor(31, 119, 180);
const VAL_COLOR: RGBColor = RGBColor(230, 120, 20);
const LR_COLOR: RGBColor = RGBColor(44, 140, 44);
const GRID: RGBColor = RGBColor(225, 225, 225);
const BOUNDARY: RGBColor = RGBColor(110, 110, 110);

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

// ----------------------------------------------------------------------------------------------
// Latent map.

/// The ten digit colours of [`latent_map`] (matplotlib's tab10), digit 0 first.
pub const DIGIT_COLORS: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

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

/// Blends `rgb` over the pixel at (`x`, `y`) with opacity `alpha`.
fn blend(canvas: &mut Canvas, x: usize, y: usize, rgb: [u8; 3], alpha: f32) {
    if x < canvas.w as usize && y < canvas.h as usize {
        let i = (y * canvas.w as usize + x) * 3;
        for (old, new) in canvas.buf[i..i + 3].iter_mut().zip(rgb) {
            let o = f32::from(*old);
            *old = (o + (f32::from(new) - o) * alpha).round() as u8;
        }
    }
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
                blend(canvas, x as usize, y as usize, rgb, MAP_DOT_ALPHA * coverage);
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

/// `n` with commas between groups of three digits: 60,000.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A tick label with a real minus sign.
fn signed_label(v: f64, sci: bool) -> String {
    tick_label(v, sci).replace('-', "\u{2212}")
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

// ----------------------------------------------------------------------------------------------
// Accuracy against the number of labels.

const ACC_W: u32 = 900;
const ACC_H: u32 = 600;
const ACC_TITLE: u32 = 44;
const ACC_X_AREA: u32 = 56;
const ACC_Y_AREA: u32 = 84;

/// Series colours of [`accuracy_vs_labels`] (tab10's first ones), repeated past the last.
const SERIES_COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

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

/// Of the sorted tick values at pixel positions `px` (labels `widths` wide), the ones whose
/// centred labels do not overlap, keeping the first and last.
fn spaced_ticks(px: &[i32], widths: &[usize], gap: i32) -> Vec<usize> {
    let fits = |a: usize, b: usize| px[b] - px[a] >= (widths[a] + widths[b]) as i32 / 2 + gap;
    let mut kept: Vec<usize> = Vec::new();
    for i in 0..px.len() {
        match kept.last() {
            Some(&j) if !fits(j, i) => {
                if i == px.len() - 1 && kept.len() > 1 {
                    kept.pop();
                    if kept.last().is_none_or(|&j| fits(j, i)) {
                        kept.push(i);
                    }
                }
            }
            _ => kept.push(i),
        }
    }
    kept
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
    use ndarray::Array2;
    use std::io::BufReader;

    /// Decodes the PNG at `path`: width, height and RGB bytes.
    fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
        let file = BufReader::new(File::open(path).expect("figure exists"));
        let mut reader = png::Decoder::new(file).read_info().expect("PNG header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("PNG data");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn pixel(img: &(u32, u32, Vec<u8>), x: usize, y: usize) -> [u8; 3] {
        let i = (y * img.0 as usize + x) * 3;
        [img.2[i], img.2[i + 1], img.2[i + 2]]
    }

    /// Counts pixels that are neither white nor black, and dark ones (text, lines, images).
    fn ink(img: &(u32, u32, Vec<u8>)) -> (usize, usize) {
        let px = img.2.chunks(3);
        let colored = px.clone().filter(|p| p != &[255, 255, 255] && p != &[0, 0, 0]).count();
        let dark = px.filter(|p| p.iter().all(|&c| c < 100)).count();
        (colored, dark)
    }

    fn no_temp_left(dir: &Path) {
        let left: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    fn digits(n: usize, seed: usize) -> Array2<f32> {
        Array2::from_shape_fn((n, PIXELS), |(i, p)| {
            let (y, x) = ((p / SIDE) as f32 - 13.5, (p % SIDE) as f32 - 13.5);
            let r = (x * x + y * y).sqrt();
            let ring = 8.0 + ((i + seed) % 4) as f32;
            (1.0 - (r - ring).abs() / 2.5).max(0.0) * 1.2
        })
    }

    fn record(phase: &str, epoch: usize, loss: f64, lr: f64) -> EpochRecord {
        EpochRecord {
            phase: phase.into(),
            epoch,
            train_loss: loss,
            val_mse: loss * 1.05,
            lr,
            seconds: 0.25,
        }
    }

    #[test]
    fn grid_shapes_are_near_square() {
        assert_eq!(grid_shape(0), (0, 0));
        assert_eq!(grid_shape(1), (1, 1));
        assert_eq!(grid_shape(64), (8, 8));
        assert_eq!(grid_shape(128), (8, 16));
        assert_eq!(grid_shape(32), (4, 8));
        assert_eq!(grid_shape(100), (10, 10));
        assert_eq!(grid_shape(10), (3, 4));
        assert_eq!(grid_shape(7), (3, 3));
        for n in 1..300 {
            let (r, c) = grid_shape(n);
            assert!(r * c >= n && (r - 1) * c < n, "{n}: {r}x{c}");
            assert!(c >= r && c <= 2 * r + 1, "{n}: {r}x{c}");
        }
    }

    #[test]
    fn ticks_and_labels() {
        assert_eq!(log_ticks(0.8e-5, 1.2e-3), vec![1e-5, 1e-4, 1e-3]);
        assert_eq!(log_ticks(0.004, 0.06).len(), 4); // 0.005, 0.01, 0.02, 0.05
        assert!(log_ticks(0.0051, 0.0153).len() >= 2);
        assert_eq!(integer_ticks(1, 150, 10), (1..=7).map(|k| k * 20).collect::<Vec<_>>());
        assert_eq!(integer_ticks(1, 1, 10), vec![1]);
        assert_eq!(integer_ticks(0, 512, 8), (0..=5).map(|k| k * 100).collect::<Vec<_>>());
        assert_eq!(linear_ticks(-2.0, 2.0, 6), vec![-2.0, -1.0, 0.0, 1.0, 2.0]);
        for (v, sci, s) in [
            (1e-5, true, "1e-5"),
            (2.5e-5, true, "2.5e-5"),
            (3.0 * 1e-4, true, "3e-4"),
            (1e-3, true, "1e-3"),
            (0.005, false, "0.005"),
            (0.01, false, "0.01"),
            (0.0015, false, "0.0015"),
            (150.0, false, "150"),
            (-1.5, false, "-1.5"),
            (0.0, false, "0"),
            (0.0, true, "0"),
        ] {
            assert_eq!(tick_label(v, sci), s);
        }
        assert!(scientific(&[1e-5, 1e-4, 1e-3]));
        assert!(!scientific(&[0.0, 0.005, 0.01]));
    }

    #[test]
    fn examples_draws_labelled_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("examples.png");
        let (a, b, c) = (digits(10, 0), digits(10, 1), digits(8, 2));
        let rows = [
            ("noisy input", a.view()),
            ("reconstruction", b.view()),
            ("clean target", c.view()),
        ];
        examples(&path, &rows).unwrap();
        let img = decode(&path);
        let tile = SIDE * EX_SCALE;
        assert_eq!(img.1 as usize, 2 * EX_PAD + 3 * tile + 2 * EX_ROW_GAP);
        assert!(img.0 as usize > 10 * tile + 9 * EX_GAP + 100, "room for the labels");
        // The right-most image of the first row: its corner is black, its ring bright.
        let x0 = img.0 as usize - EX_PAD - tile;
        assert_eq!(pixel(&img, x0, EX_PAD), [0, 0, 0]);
        assert!(pixel(&img, x0 + tile / 2, EX_PAD + 5 * EX_SCALE)[0] > 200);
        // Label text left of the images: anti-aliased grey pixels, not just white.
        let label_ink = (0..img.1 as usize)
            .flat_map(|y| (0..EX_PAD + 60).map(move |x| (x, y)))
            .filter(|&(x, y)| pixel(&img, x, y)[0] < 128)
            .count();
        assert!(label_ink > 50, "labels drawn: {label_ink}");
        no_temp_left(dir.path());
    }

    #[test]
    fn examples_refuses_degenerate_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.png");
        let err = examples(&path, &[]).unwrap_err().to_string();
        assert!(err.contains("e.png") && err.contains("no rows"), "{err}");
        let empty = Array2::<f32>::zeros((0, PIXELS));
        let err = examples(&path, &[("input", empty.view())]).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let wrong = Array2::<f32>::zeros((4, 100));
        let err = examples(&path, &[("input", wrong.view())]).unwrap_err();
        assert!(err.to_string().contains("100 pixels"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn dictionary_has_the_expected_size_and_tiles() {
        let dir = tempfile::tempdir().unwrap();
        for (k, size) in [(64, (934, 978)), (128, (1398, 754))] {
            // 64: 8x8 tiles of 28*4 = 112 px, 2 px gaps: 910 square, plus 12 px padding and
            // a 44 px title band. 128: 8 rows x 16 columns of 84 px (3x).
            let path = dir.path().join(format!("dict{k}.png"));
            let mut tiles =
                Array2::from_shape_fn((k, PIXELS), |(i, p)| (p % SIDE) as f32 * 0.01 * (i + 1) as f32 - 3.0);
            tiles.row_mut(1).fill(0.5); // constant: mid-grey
            dictionary(&path, &format!("decoder weights, {k} units"), tiles.view()).unwrap();
            let img = decode(&path);
            assert_eq!((img.0, img.1), size, "{k} tiles");
            let (grid_w, _) = dict_grid_size(k);
            let scale = dict_scale(grid_shape(k).1);
            let (x0, y0) = ((img.0 as usize - grid_w) / 2, DICT_PAD + DICT_TITLE);
            // Tile 0 runs from its own min (black, left) to max (white, right).
            assert_eq!(pixel(&img, x0, y0), [0, 0, 0]);
            assert_eq!(pixel(&img, x0 + SIDE * scale - 1, y0), [255, 255, 255]);
            let x1 = x0 + SIDE * scale + DICT_GAP;
            assert_eq!(pixel(&img, x1 + 5, y0 + 5), [128, 128, 128]);
            // The gap is white and the title has ink.
            assert_eq!(pixel(&img, x1 - 1, y0 + 5), [255, 255, 255]);
            let title_ink = (0..DICT_PAD + DICT_TITLE)
                .flat_map(|y| (0..img.0 as usize).map(move |x| (x, y)))
                .filter(|&(x, y)| pixel(&img, x, y)[0] < 128)
                .count();
            assert!(title_ink > 100, "title drawn: {title_ink}");
        }
        let err = dictionary(&dir.path().join("d.png"), "t", Array2::zeros((0, PIXELS)).view()).unwrap_err();
        assert!(matches!(err, FigureError::Input { .. }) && err.to_string().contains("no tiles"));
        no_temp_left(dir.path());
    }

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

    #[test]
    fn unwritable_paths_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir/fig.png");
        let tiles = digits(4, 0);
        let err = dictionary(&missing, "t", tiles.view()).unwrap_err();
        assert!(matches!(err, FigureError::Io { .. }), "{err}");
        assert!(err.to_string().contains(&missing.display().to_string()), "{err}");
        // A directory where the file should go: the rename fails, nothing is left behind.
        let taken = dir.path().join("taken.png");
        fs::create_dir(&taken).unwrap();
        let err = curves(&taken, "t", &[record("tied", 1, 0.1, 1e-3)]).unwrap_err();
        assert!(err.to_string().contains("taken.png"), "{err}");
        no_temp_left(dir.path());
        let err = examples(Path::new("/"), &[("x", tiles.view())]).unwrap_err();
        assert!(err.to_string().contains("names no file"), "{err}");
    }

    #[test]
    fn rewriting_a_figure_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.png");
        dictionary(&path, "four", digits(4, 0).view()).unwrap();
        let first = decode(&path);
        dictionary(&path, "sixty-four", digits(64, 0).view()).unwrap();
        let second = decode(&path);
        assert!(second.0 > first.0);
        no_temp_left(dir.path());
    }

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

    #[test]
    fn helpers_for_the_new_figures() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(100), "100");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(60_000), "60,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        // Labels 40 px wide at 30 px spacing: every other one, the last kept.
        assert_eq!(spaced_ticks(&[0, 30, 60, 90, 120], &[40; 5], 8), vec![0, 2, 4]);
        assert_eq!(spaced_ticks(&[0, 100, 110], &[40; 3], 8), vec![0, 2]);
        assert_eq!(spaced_ticks(&[0, 5], &[40; 2], 8), vec![0]);
        let v = map_view((0..1000).map(f64::from).chain([1e6]).collect());
        assert!(v.start < 5.0 && v.end > 995.0 && v.end < 1100.0, "{v:?}");
        assert_eq!(map_view(vec![2.0; 5]), 1.0..3.0);
        assert_eq!(map_view(vec![]), -1.0..1.0);
    }
}
