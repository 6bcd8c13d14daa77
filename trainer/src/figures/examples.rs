//! Labelled rows of MNIST-sized images: inputs, reconstructions, noisy inputs.

use super::canvas::{ensure_font, render, text, text_width, Canvas, LABEL_PT, SIDE};
use super::colors::gray;
use super::{input_error, FigureError};
use crate::mnist::PIXELS;
use ndarray::ArrayView2;
use plotters::style::text_anchor::{HPos, VPos};
use std::path::Path;

/// The most images [`examples`] draws in one row.
pub const MAX_EXAMPLES_PER_ROW: usize = 32;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::test_support::{decode, digits, no_temp_left, pixel};
    use ndarray::Array2;

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
}
