//! The samples every reader returns: `N` samples of one shape, as f32 values row-major in one
//! buffer, with the source's element type and, when the file has them, integer labels.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::error::{DataError, Origin};

/// The element type the values were stored as in the file. It decides the default scaling
/// ([`ScalingKind::default_for`](super::ScalingKind::default_for)): `u8` → `unit`, every other
/// type → `minmax`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Element {
    /// Unsigned byte (IDX `0x08`, numpy `|u1`).
    U8,
    /// Signed byte (IDX `0x09`, numpy `|i1`).
    I8,
    /// numpy `<u2`.
    U16,
    /// IDX `0x0B`, numpy `<i2`.
    I16,
    /// numpy `<u4`.
    U32,
    /// IDX `0x0C`, numpy `<i4`.
    I32,
    /// numpy `<i8`.
    I64,
    /// IDX `0x0D`, numpy `<f4`.
    F32,
    /// IDX `0x0E`, numpy `<f8`.
    F64,
    /// Decimal text (CSV), parsed straight to f32.
    Text,
}

impl Element {
    /// The Rust name (`u8`, `f32`, ...), `text` for CSV.
    pub fn name(self) -> &'static str {
        match self {
            Element::U8 => "u8",
            Element::I8 => "i8",
            Element::U16 => "u16",
            Element::I16 => "i16",
            Element::U32 => "u32",
            Element::I32 => "i32",
            Element::I64 => "i64",
            Element::F32 => "f32",
            Element::F64 => "f64",
            Element::Text => "text",
        }
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `N` samples of one shape: `N × F` f32 values, row-major, sample after sample.
///
/// Invariants (kept by every constructor): the shape has at least one dimension and `F`, its
/// product, is at least 1; the values are a whole number of samples; labels, when present,
/// number one per sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    values: Vec<f32>,
    shape: Vec<usize>,
    labels: Option<Vec<i64>>,
    element: Element,
    origin: Origin,
}

impl Samples {
    /// Samples of `shape` (one sample's shape: `[64]`, `[28, 28]`, `[32, 32, 3]`) from `values`
    /// (`N × F`, row-major), unlabelled. `origin` names them in errors.
    ///
    /// Errors: an empty shape ([`DataError::OneDimensional`]), a shape with a zero
    /// ([`DataError::NoFeatures`]), values not a whole number of samples ([`DataError::Layout`]).
    pub fn new(values: Vec<f32>, shape: Vec<usize>, element: Element, origin: Origin) -> Result<Samples, DataError> {
        if shape.is_empty() {
            return Err(DataError::OneDimensional {
                at: origin,
                shape: vec![values.len()],
            });
        }
        let features = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if features == Some(0) {
            return Err(DataError::NoFeatures { at: origin, shape });
        }
        // A shape whose product overflows holds no whole number of samples either.
        if !features.is_some_and(|f| values.len().is_multiple_of(f)) {
            return Err(DataError::Layout {
                at: origin,
                values: values.len(),
                shape,
            });
        }
        Ok(Samples {
            values,
            shape,
            labels: None,
            element,
            origin,
        })
    }

    /// The same samples with one label each; `labels_at` names the labels in the error
    /// ([`DataError::LabelCount`]) when they count differently.
    pub fn with_labels(mut self, labels: Vec<i64>, labels_at: Origin) -> Result<Samples, DataError> {
        let n = self.len();
        if labels.len() != n {
            return Err(DataError::LabelCount {
                samples_at: self.origin,
                samples: n,
                labels_at,
                labels: labels.len(),
            });
        }
        self.labels = Some(labels);
        Ok(self)
    }

    /// Number of samples, `N`.
    pub fn len(&self) -> usize {
        self.values.len() / self.features()
    }

    /// True when there is no sample.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Values per sample, `F`: the product of [`shape`](Self::shape).
    pub fn features(&self) -> usize {
        self.shape.iter().product()
    }

    /// One sample's shape: `[F]` for tables, `[H, W]` or `[H, W, C]` for images.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Every value, `N × F`, row-major.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// Every value, writable (a scaling applies in place).
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }

    /// The values, giving the samples up.
    pub fn into_values(self) -> Vec<f32> {
        self.values
    }

    /// Sample `i`'s `F` values. Panics when `i >= len()`.
    pub fn row(&self, i: usize) -> &[f32] {
        let f = self.features();
        &self.values[i * f..(i + 1) * f]
    }

    /// The samples in order, `F` values each.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.values.chunks_exact(self.features())
    }

    /// The labels, one per sample, when the file had them (integers: classes, fault kinds or
    /// anomaly flags, as the file stores them).
    pub fn labels(&self) -> Option<&[i64]> {
        self.labels.as_deref()
    }

    /// The element type the file stored.
    pub fn element(&self) -> Element {
        self.element
    }

    /// Where the samples come from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The first `n` samples (all of them if `n` is larger).
    pub fn truncated(mut self, n: usize) -> Samples {
        let n = n.min(self.len());
        self.values.truncate(n * self.features());
        if let Some(labels) = &mut self.labels {
            labels.truncate(n);
        }
        self
    }

    /// The samples at `indices`, in that order, with their labels. Panics on an index out of
    /// range.
    pub fn select(&self, indices: &[usize]) -> Samples {
        let mut values = Vec::with_capacity(indices.len() * self.features());
        for &i in indices {
            values.extend_from_slice(self.row(i));
        }
        Samples {
            values,
            shape: self.shape.clone(),
            labels: self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect()),
            element: self.element,
            origin: self.origin.clone(),
        }
    }
}

/// Checks that test samples fit a model trained on `train`: the same sample shape.
pub fn check_compatible(train: &Samples, test: &Samples) -> Result<(), DataError> {
    if train.shape != test.shape {
        return Err(DataError::Incompatible {
            train_at: train.origin.clone(),
            train_shape: train.shape.clone().into(),
            test_at: test.origin.clone(),
            test_shape: test.shape.clone().into(),
        });
    }
    Ok(())
}
