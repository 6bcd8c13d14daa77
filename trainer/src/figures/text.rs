//! Text for the figures: a bitmap backend whose text is laid out with `ab_glyph` directly.
//!
//! plotters 0.3.7 draws `ab_glyph` text without the glyphs' left side bearings (each glyph's
//! pixels start at its advance origin), which gives uneven letter spacing ("0. 05",
//! "ep ochs"), and anchors text about a quarter of its size too high. [`Backend`] wraps the
//! bitmap backend, passes every drawing call through and draws text itself: glyphs at their
//! kerned advance positions, anchored on the font's ascent and descent, rotated with the
//! style's transform. The font is the embedded DejaVu Sans, the same one registered with
//! plotters.

use ab_glyph::{point, Font, FontRef, Glyph, PxScale, ScaleFont};
use plotters::backend::BitMapBackend;
use plotters::prelude::DrawingBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind};

/// One line of text laid out on a baseline at y = 0, starting at x = 0.
pub(super) struct Line {
    glyphs: Vec<Glyph>,
    /// Advance width in pixels.
    pub width: f32,
    /// Above the baseline (positive), in pixels.
    pub ascent: f32,
    /// Below the baseline (negative), in pixels.
    pub descent: f32,
}

/// Lays out `text` at `size` pixels (the font's ascent-to-descent height, as plotters uses it).
pub(super) fn layout(font: &FontRef<'static>, size: f64, text: &str) -> Line {
    let scale = PxScale::from(size as f32);
    let scaled = font.as_scaled(scale);
    let mut glyphs = Vec::with_capacity(text.len());
    let mut caret = 0.0;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            caret += scaled.kern(p, id);
        }
        glyphs.push(id.with_scale_and_position(scale, point(caret, 0.0)));
        caret += scaled.h_advance(id);
        prev = Some(id);
    }
    Line {
        glyphs,
        width: caret,
        ascent: scaled.ascent(),
        descent: scaled.descent(),
    }
}

/// The bitmap backend with its text drawn by [`layout`].
pub(super) struct Backend<'a> {
    inner: BitMapBackend<'a>,
    font: &'static FontRef<'static>,
}

impl<'a> Backend<'a> {
    pub(super) fn new(inner: BitMapBackend<'a>, font: &'static FontRef<'static>) -> Self {
        Backend { inner, font }
    }
}

type Error<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> DrawingBackend for Backend<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), Error<'a>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), Error<'a>> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Error<'a>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, style: &S) -> Result<(), Error<'a>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Result<(), Error<'a>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(&self, text: &str, style: &S) -> Result<(u32, u32), Error<'a>> {
        let line = layout(self.font, style.size(), text);
        Ok((line.width.ceil() as u32, (line.ascent - line.descent).ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, style: &S, pos: BackendCoord) -> Result<(), Error<'a>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let line = layout(self.font, style.size(), text);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -line.width / 2.0,
            HPos::Right => -line.width,
        }
        .round() as i32;
        // Where the baseline sits below the anchor point.
        let dy = match anchor.v_pos {
            VPos::Top => line.ascent,
            VPos::Center => (line.ascent + line.descent) / 2.0,
            VPos::Bottom => line.descent,
        }
        .round() as i32;
        let transform = style.transform();
        let mut pixels = Vec::new();
        for glyph in line.glyphs {
            if let Some(outline) = self.font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                let (bx, by) = (bounds.min.x as i32 + dx, bounds.min.y as i32 + dy);
                outline.draw(|x, y, coverage| {
                    if coverage > 0.0 {
                        pixels.push((bx + x as i32, by + y as i32, coverage));
                    }
                });
            }
        }
        let (w, h) = self.inner.get_size();
        for (x, y, coverage) in pixels {
            let (tx, ty) = transform.transform(x, y);
            let (px, py) = (pos.0 + tx, pos.1 + ty);
            if px >= 0 && py >= 0 && (px as u32) < w && (py as u32) < h {
                let alpha = color.alpha * f64::from(coverage.min(1.0));
                self.inner
                    .draw_pixel((px, py), BackendColor { alpha, rgb: color.rgb })?;
            }
        }
        Ok(())
    }
}
