//! The bundled MNIST test images (`data/mnist/t10k-images-idx3-ubyte.gz`, IDX, gzip).

use anyhow::{bail, Result};
use autoencoder_core::PIXELS;
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
    if count > TEST_IMAGES {
        bail!("asked for {count} test images; MNIST has {TEST_IMAGES}");
    }
    Ok(idx::read_first_images(&path, count)?)
}
