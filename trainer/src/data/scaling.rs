//! The input scaling, part of the model: fit on the training samples only, stored with the
//! model, and applied the same way on the host and on the microcontroller, per feature `i`:
//!
//! ```text
//! v = (x - offset[i]) / divisor[i]
//! ```
//!
//! one f32 subtraction then one f32 division, each rounded to nearest (Rust never fuses them),
//! so a device doing the same two f32 operations on raw sensor input gets the same bits.
//!
//! | kind | offset | divisor |
//! |---|---|---|
//! | `unit` | 0 | 255 |
//! | `minmax` | min | max - min (an f32 subtraction) |
//! | `standard` | mean | population standard deviation (both computed in f64, stored as f32) |
//! | `none` | 0 | 1 |
//!
//! A feature that is constant over the training samples (a divisor of 0) gets divisor 1 and a
//! [`ConstantFeature`] warning, which the caller shows: it scales to 0 everywhere it keeps its
//! training value.

use autoencoder_core::quantize_f32::{scale_value, unscale_value};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use super::error::DataError;
use super::samples::{Element, Samples};

/// How the inputs are scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalingKind {
    /// `x / 255`: bytes to [0, 1]. The default for u8 data.
    Unit,
    /// `(x - min) / (max - min)`: the training range to [0, 1]. The default for every other
    /// element type.
    MinMax,
    /// `(x - mean) / std`: zero mean, unit (population) standard deviation.
    Standard,
    /// The values as they are.
    None,
}

impl ScalingKind {
    /// Every kind, in the order the names are listed.
    pub const ALL: [ScalingKind; 4] = [
        ScalingKind::Unit,
        ScalingKind::MinMax,
        ScalingKind::Standard,
        ScalingKind::None,
    ];

    /// The name parsed and printed: `unit`, `minmax`, `standard`, `none`.
    pub fn name(self) -> &'static str {
        match self {
            ScalingKind::Unit => "unit",
            ScalingKind::MinMax => "minmax",
            ScalingKind::Standard => "standard",
            ScalingKind::None => "none",
        }
    }

    /// The default for data stored as `element`: `unit` for u8, `minmax` for every other type.
    pub fn default_for(element: Element) -> ScalingKind {
        match element {
            Element::U8 => ScalingKind::Unit,
            _ => ScalingKind::MinMax,
        }
    }
}

impl fmt::Display for ScalingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScalingKind {
    type Err = DataError;

    fn from_str(s: &str) -> Result<ScalingKind, DataError> {
        ScalingKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| DataError::UnknownScaling { name: s.to_string() })
    }
}

/// A fitted scaling: one offset and one divisor per feature (`F` each).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    /// How it was fit.
    pub kind: ScalingKind,
    /// Subtracted from each feature first.
    pub offset: Vec<f32>,
    /// Then divided into it; never 0.
    pub divisor: Vec<f32>,
}

/// A feature that holds one value in every training sample: its divisor is set to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConstantFeature {
    /// The feature's index in a flattened sample, `0..F`.
    pub feature: usize,
    /// The value it holds.
    pub value: f32,
}

impl fmt::Display for ConstantFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "feature {} holds {} in every training sample: its divisor is set to 1 (it scales to 0)",
            self.feature, self.value
        )
    }
}

impl Scaling {
    /// Fits `kind` on the training samples (never on validation or test samples), returning
    /// the scaling and the features found constant. `minmax` and `standard` need at least one
    /// sample ([`DataError::NoSamples`]).
    pub fn fit(kind: ScalingKind, train: &Samples) -> Result<(Scaling, Vec<ConstantFeature>), DataError> {
        let f = train.features();
        let uniform = |offset: f32, divisor: f32| Scaling {
            kind,
            offset: vec![offset; f],
            divisor: vec![divisor; f],
        };
        let (offset, spread) = match kind {
            ScalingKind::Unit => return Ok((uniform(0.0, 255.0), Vec::new())),
            ScalingKind::None => return Ok((uniform(0.0, 1.0), Vec::new())),
            _ if train.is_empty() => {
                return Err(DataError::NoSamples {
                    at: train.origin().clone(),
                })
            }
            ScalingKind::MinMax => min_and_range(train),
            ScalingKind::Standard => mean_and_std(train),
        };
        let mut constant = Vec::new();
        let divisor = spread
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                if d == 0.0 {
                    constant.push(ConstantFeature {
                        feature: i,
                        value: train.row(0)[i],
                    });
                    1.0
                } else {
                    d
                }
            })
            .collect();
        Ok((Scaling { kind, offset, divisor }, constant))
    }

    /// Values per sample, `F`.
    pub fn features(&self) -> usize {
        self.offset.len()
    }

    /// Feature `i` of one raw value: `(x - offset[i]) / divisor[i]` in f32.
    pub fn apply_value(&self, i: usize, x: f32) -> f32 {
        scale_value(x, self.offset[i], self.divisor[i])
    }

    /// Scales one sample in place. Panics when `row` is not `F` long.
    pub fn apply_row(&self, row: &mut [f32]) {
        assert_eq!(row.len(), self.features(), "a row of the scaling's width");
        for ((x, &o), &d) in row.iter_mut().zip(&self.offset).zip(&self.divisor) {
            *x = scale_value(*x, o, d);
        }
    }

    /// Scales every sample in place.
    pub fn apply(&self, samples: &mut Samples) -> Result<(), DataError> {
        if samples.features() != self.features() {
            return Err(DataError::ScalingWidth {
                at: samples.origin().clone(),
                expected: self.features(),
                found: samples.features(),
            });
        }
        let f = self.features();
        for row in samples.values_mut().chunks_exact_mut(f) {
            self.apply_row(row);
        }
        Ok(())
    }

    /// A scaled value back in the units of the input, `v * divisor[i] + offset[i]` (for showing
    /// reconstructions; rounding makes it approximate, not an exact inverse).
    pub fn restore_value(&self, i: usize, v: f32) -> f32 {
        unscale_value(v, self.offset[i], self.divisor[i])
    }
}

/// Per feature, the minimum and `max - min` (an f32 subtraction).
// train: (N, F) -> (F), (F)
fn min_and_range(train: &Samples) -> (Vec<f32>, Vec<f32>) {
    let f = train.features();
    let mut min = vec![f32::INFINITY; f];
    let mut max = vec![f32::NEG_INFINITY; f];
    for row in train.rows() {
        for ((lo, hi), &x) in min.iter_mut().zip(&mut max).zip(row) {
            *lo = lo.min(x);
            *hi = hi.max(x);
        }
    }
    let range = max.iter().zip(&min).map(|(&hi, &lo)| hi - lo).collect();
    (min, range)
}

/// Per feature, the mean and the population standard deviation, computed in f64 (two passes)
/// and rounded to f32.
// train: (N, F) -> (F), (F)
fn mean_and_std(train: &Samples) -> (Vec<f32>, Vec<f32>) {
    let n = train.len() as f64;
    let f = train.features();
    let mut sum = vec![0.0f64; f];
    for row in train.rows() {
        for (s, &x) in sum.iter_mut().zip(row) {
            *s += f64::from(x);
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let mut squares = vec![0.0f64; f];
    for row in train.rows() {
        for ((s, &m), &x) in squares.iter_mut().zip(&mean).zip(row) {
            let d = f64::from(x) - m;
            *s += d * d;
        }
    }
    let std = squares.iter().map(|s| (s / n).sqrt() as f32).collect();
    (mean.iter().map(|&m| m as f32).collect(), std)
}
