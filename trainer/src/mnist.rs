//! MNIST: the four standard IDX files of a directory, read and checked by the `idx` crate, as
//! training and test splits.

use std::path::Path;

use idx::find;
pub use idx::{parse_idx, read_images, read_labels, IdxError, PIXELS, SIDE};

/// One split of MNIST: `n` images of [`PIXELS`] u8 pixels, row-major, and their labels.
#[derive(Clone, Debug)]
pub struct Split {
    /// Pixels, `n * PIXELS` bytes.
    pub images: Vec<u8>,
    /// Labels 0-9, `n` bytes.
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`'s pixels.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// The first `n` images (all of them if `n` is larger).
    pub fn truncated(mut self, n: usize) -> Split {
        let n = n.min(self.len());
        self.images.truncate(n * PIXELS);
        self.labels.truncate(n);
        self
    }
}

/// MNIST's training and test splits.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// 60,000 training images.
    pub train: Split,
    /// 10,000 test images.
    pub test: Split,
}

impl Mnist {
    /// Loads the four standard files from `dir` (each as `name.gz` or plain `name`).
    pub fn load(dir: &Path) -> Result<Mnist, IdxError> {
        Ok(Mnist {
            train: load_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?,
            test: load_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?,
        })
    }
}

fn load_split(dir: &Path, images: &'static str, labels: &'static str) -> Result<Split, IdxError> {
    let images_path = find(dir, images)?;
    let labels_path = find(dir, labels)?;
    let images = read_images(&images_path)?;
    let labels = read_labels(&labels_path)?;
    let n_images = images.len() / PIXELS;
    if n_images != labels.len() {
        return Err(IdxError::CountMismatch {
            images: images_path,
            n_images,
            labels: labels_path,
            n_labels: labels.len(),
        });
    }
    Ok(Split { images, labels })
}
