//! The bundled MNIST test images (`data/mnist/t10k-images-idx3-ubyte.gz`, IDX, gzip).

use anyhow::{bail, Context, Result};
use autoencoder_core::PIXELS;
use std::io::Read;
use std::path::PathBuf;

/// Number of MNIST test images.
pub const TEST_IMAGES: usize = 10_000;

/// The MNIST test image file.
pub fn test_images_path() -> PathBuf {
    crate::repo_root().join("data/mnist/t10k-images-idx3-ubyte.gz")
}

/// The first `count` MNIST test images (at most [`TEST_IMAGES`]), one after the other.
pub fn test_images(count: usize) -> Result<Vec<[u8; PIXELS]>> {
    let path = test_images_path();
    let file = std::fs::File::open(&path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut data = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut data)
        .with_context(|| format!("{}: corrupt gzip stream", path.display()))?;
    let word = |i: usize| {
        data.get(4 * i..4 * i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    if (word(0), word(2), word(3)) != (Some(0x803), Some(28), Some(28)) {
        bail!("{}: not an IDX file of 28x28 images", path.display());
    }
    let available = word(1).unwrap_or(0) as usize;
    if count > available || data.len() != 16 + available * PIXELS {
        bail!(
            "{}: asked for {count} images, the file holds {available} in {} bytes",
            path.display(),
            data.len()
        );
    }
    Ok(data[16..16 + count * PIXELS]
        .chunks_exact(PIXELS)
        .map(|image| image.try_into().expect("chunks of PIXELS"))
        .collect())
}
