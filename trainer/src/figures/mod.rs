//! The tutorial's figures, as PNG files.
//!
//! Everything is drawn in pure Rust: [`plotters`] renders into an RGB buffer (image grids are
//! written pixel by pixel first) and the `png` crate encodes it. All text uses DejaVu Sans,
//! embedded in the binary (`assets/fonts/`), registered once with plotters' `register_font`
//! and laid out by a thin wrapper of the bitmap backend (`figures/text.rs`) that fixes
//! plotters' letter spacing. No system font or package is read at run time.
//!
//! Each PNG is encoded in memory and written with [`crate::checkpoint::write_atomic`]: to a
//! temporary file in the target's directory, synced, then renamed over the target, so a reader
//! never sees half a figure.
//!
//! Degenerate inputs are refused with [`FigureError::Input`] naming the path and the problem,
//! never a panic: no rows, no images, no tiles, zero-row or zero-column codes, an empty history,
//! images that are not 784 = 28×28 wide, more than [`MAX_EXAMPLES_PER_ROW`] images in a row,
//! no ROC curve or one without points, or no finite anomaly score.
//! Odd *values* are drawn rather than refused: example pixels are clamped to [0, 1] (NaN is
//! black), non-finite code values and tile pixels are drawn in a marker colour, points of a
//! curve that cannot sit on a log axis (non-finite or ≤ 0) are left out, breaking the line, and
//! non-finite anomaly scores are left out of their histogram.
//!
//! One file per figure ([`examples`](fn@examples), [`dictionary`](fn@dictionary),
//! [`codes`](fn@codes), [`curves`](fn@curves), [`latent_map`](fn@latent_map),
//! [`accuracy_vs_labels`](fn@accuracy_vs_labels), [`roc`](fn@roc),
//! [`score_histogram`](fn@score_histogram)), over the pieces they share: `canvas.rs` (the font,
//! the RGB canvas, text styles, rendering with plotters and writing the PNG), `text.rs` (the
//! text backend), `ticks.rs` (tick positions and labels), `axis.rs` (an axis with exactly those
//! ticks) and `colors.rs` (the palettes).

mod accuracy_vs_labels;
mod axis;
mod canvas;
mod codes;
mod colors;
mod curves;
mod dictionary;
mod examples;
mod latent_map;
mod roc;
mod score_histogram;
#[cfg(test)]
mod test_support;
mod text;
mod ticks;

pub use accuracy_vs_labels::accuracy_vs_labels;
pub use codes::{codes, MAX_CODE_AXIS};
pub use colors::DIGIT_COLORS;
pub use curves::curves;
pub use dictionary::{dictionary, grid_shape};
pub use examples::{examples, MAX_EXAMPLES_PER_ROW};
pub use latent_map::latent_map;
pub use roc::{roc, RocSeries};
pub use score_histogram::score_histogram;

use std::path::{Path, PathBuf};

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

/// [`FigureError::Input`] for the figure at `path`.
fn input_error(path: &Path, reason: String) -> FigureError {
    FigureError::Input {
        path: path.to_path_buf(),
        reason,
    }
}

/// [`FigureError::Draw`] for the figure at `path`.
fn draw_error(path: &Path, e: impl std::fmt::Display) -> FigureError {
    FigureError::Draw {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}
