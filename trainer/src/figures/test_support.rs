//! What the figures' tests share: decoding a written PNG, looking at its pixels, and small
//! synthetic inputs.

use super::canvas::SIDE;
use crate::epoch::EpochRecord;
use crate::mnist::PIXELS;
use ndarray::Array2;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::Path;

/// A decoded figure: width, height and RGB bytes.
pub(super) type Image = (u32, u32, Vec<u8>);

/// Decodes the PNG at `path`: width, height and RGB bytes.
pub(super) fn decode(path: &Path) -> Image {
    let file = BufReader::new(File::open(path).expect("figure exists"));
    let mut reader = png::Decoder::new(file).read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("PNG data");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// The colour of the pixel at (`x`, `y`).
pub(super) fn pixel(img: &Image, x: usize, y: usize) -> [u8; 3] {
    let i = (y * img.0 as usize + x) * 3;
    [img.2[i], img.2[i + 1], img.2[i + 2]]
}

/// Counts pixels that are neither white nor black, and dark ones (text, lines, images).
pub(super) fn ink(img: &Image) -> (usize, usize) {
    let px = img.2.chunks(3);
    let colored = px.clone().filter(|p| p != &[255, 255, 255] && p != &[0, 0, 0]).count();
    let dark = px.filter(|p| p.iter().all(|&c| c < 100)).count();
    (colored, dark)
}

/// Fails if a temporary file is left in `dir`.
pub(super) fn no_temp_left(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// `n` ring-shaped 28×28 images, the rings' radii varying with `seed`.
pub(super) fn digits(n: usize, seed: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, PIXELS), |(i, p)| {
        let (y, x) = ((p / SIDE) as f32 - 13.5, (p % SIDE) as f32 - 13.5);
        let r = (x * x + y * y).sqrt();
        let ring = 8.0 + ((i + seed) % 4) as f32;
        (1.0 - (r - ring).abs() / 2.5).max(0.0) * 1.2
    })
}

/// One epoch of a history, its validation MSE 5 % above the training loss.
pub(super) fn record(phase: &str, epoch: usize, loss: f64, lr: f64) -> EpochRecord {
    EpochRecord {
        phase: phase.into(),
        epoch,
        train_loss: loss,
        val_mse: loss * 1.05,
        lr,
        seconds: 0.25,
    }
}
