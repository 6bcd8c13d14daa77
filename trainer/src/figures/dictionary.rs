//! A dictionary: decoder weights (or any 28×28 tiles) as a near-square grid of images.

use super::canvas::{draw_title, ensure_font, render, text_width, Canvas, SIDE, TITLE_PT};
use super::colors::NON_FINITE;
use super::{input_error, FigureError};
use crate::mnist::PIXELS;
use ndarray::{ArrayView1, ArrayView2};
use std::path::Path;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::test_support::{decode, no_temp_left, pixel};
    use ndarray::Array2;

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
}
