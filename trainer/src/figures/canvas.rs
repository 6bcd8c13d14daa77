//! The drawing surface every figure shares: the embedded font, text styles, an RGB canvas to
//! paint images on, plotters drawing over it, and the PNG written atomically.

use super::text;
use super::{draw_error, input_error, FigureError};
use crate::checkpoint::write_atomic;
use ab_glyph::FontRef;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};
use std::path::Path;
use std::sync::{Once, OnceLock};

/// Side of an MNIST image in pixels.
pub(super) const SIDE: usize = 28;

/// DejaVu Sans (Bitstream Vera license, `assets/fonts/LICENSE`).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family the font is registered under; every text style names it.
const FAMILY: &str = "sans-serif";

static REGISTER: Once = Once::new();
static PARSED: OnceLock<FontRef<'static>> = OnceLock::new();

/// Registers the embedded font with plotters and parses it for the text backend
/// ([`mod@text`]), once per process; every figure calls this before drawing.
pub(super) fn ensure_font(path: &Path) -> Result<&'static FontRef<'static>, FigureError> {
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
pub(super) const TITLE_PT: f64 = 24.0;
pub(super) const LABEL_PT: f64 = 19.0;
pub(super) const TICK_PT: f64 = 16.0;

/// The embedded font at `size`.
pub(super) fn desc(size: f64) -> FontDesc<'static> {
    (FAMILY, size).into_font()
}

/// A text style anchored at `h`/`v`.
pub(super) fn text(size: f64, h: HPos, v: VPos) -> TextStyle<'static> {
    desc(size).color(&BLACK).pos(Pos::new(h, v))
}

/// Width in pixels of `s` in the embedded font at `size`.
pub(super) fn text_width(font: &FontRef<'static>, s: &str, size: f64) -> usize {
    text::layout(font, size, s).width.ceil() as usize
}

/// A white RGB image to paint on before plotters draws the text and axes.
pub(super) struct Canvas {
    w: u32,
    h: u32,
    buf: Vec<u8>,
}

impl Canvas {
    /// A white canvas `w` × `h` pixels.
    pub(super) fn new(w: u32, h: u32) -> Canvas {
        Canvas {
            w,
            h,
            buf: vec![255; w as usize * h as usize * 3],
        }
    }

    /// Sets the pixel at (`x`, `y`) to `rgb`; pixels outside the canvas are ignored.
    pub(super) fn put(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        if x < self.w as usize && y < self.h as usize {
            let i = (y * self.w as usize + x) * 3;
            self.buf[i..i + 3].copy_from_slice(&rgb);
        }
    }

    /// Blends `rgb` over the pixel at (`x`, `y`) with opacity `alpha`; pixels outside the
    /// canvas are ignored.
    pub(super) fn blend(&mut self, x: usize, y: usize, rgb: [u8; 3], alpha: f32) {
        if x < self.w as usize && y < self.h as usize {
            let i = (y * self.w as usize + x) * 3;
            for (old, new) in self.buf[i..i + 3].iter_mut().zip(rgb) {
                let o = f32::from(*old);
                *old = (o + (f32::from(new) - o) * alpha).round() as u8;
            }
        }
    }

    /// One 28×28 image, each pixel a `scale`×`scale` square, top left at (`x0`, `y0`);
    /// `color` maps a pixel index (row-major, 0..784) to its colour.
    pub(super) fn image(&mut self, x0: usize, y0: usize, scale: usize, color: impl Fn(usize) -> [u8; 3]) {
        for py in 0..SIDE * scale {
            for px in 0..SIDE * scale {
                self.put(x0 + px, y0 + py, color((py / scale) * SIDE + px / scale));
            }
        }
    }
}

/// The drawing area plotters draws a figure on.
pub(super) type Area<'a> = DrawingArea<text::Backend<'a>, Shift>;
/// What drawing with plotters returns.
pub(super) type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws `title` centred across `root`, its middle `y` pixels from the top.
pub(super) fn draw_title(root: &Area<'_>, title: &str, y: i32) -> DrawResult {
    let (w, _) = root.dim_in_pixel();
    root.draw_text(title, &text(TITLE_PT, HPos::Center, VPos::Center), ((w / 2) as i32, y))?;
    Ok(())
}

/// A one-pixel black frame just outside the `w` × `h` pixels whose top left is (`x`, `y`).
pub(super) fn frame(root: &Area<'_>, (x, y): (i32, i32), (w, h): (i32, i32)) -> DrawResult {
    root.draw(&Rectangle::new([(x - 1, y - 1), (x + w, y + h)], BLACK.stroke_width(1)))?;
    Ok(())
}

/// Lets plotters draw over `canvas`, then writes it to `path` as a PNG.
pub(super) fn render(
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

/// Encodes `canvas` as an 8-bit RGB PNG and writes it to `path` with [`write_atomic`].
fn write_png(path: &Path, canvas: &Canvas) -> Result<(), FigureError> {
    path.file_name()
        .ok_or_else(|| input_error(path, "the path names no file".into()))?;
    let encode = |source| FigureError::Encode {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, canvas.w, canvas.h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(&canvas.buf).map_err(encode)?;
    writer.finish().map_err(encode)?;
    // `write_atomic` leaves nothing behind when it fails (e.g. over a directory).
    write_atomic(path, &bytes).map_err(|source| FigureError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use crate::figures::test_support::{decode, digits, no_temp_left, record};
    use crate::figures::{curves, dictionary, examples, FigureError};
    use std::fs;
    use std::path::Path;

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
}
