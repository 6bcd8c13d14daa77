//! An axis whose ticks are exactly the ones given (from `ticks.rs`), linear or log.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::ops::Range;

/// An axis (`f64`, linear or log) whose ticks are exactly the given values and whose labels
/// come from the mesh's formatter (plotters' own ticks can be empty on a short log axis).
pub(super) struct Ticks<R> {
    inner: R,
    ticks: Vec<f64>,
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticks<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// A linear axis over `range` with ticks at `ticks`.
pub(super) fn linear_axis(range: Range<f64>, ticks: Vec<f64>) -> Ticks<RangedCoordf64> {
    Ticks {
        inner: range.into(),
        ticks,
    }
}

/// A log axis over `lo..hi` with ticks at `ticks`.
pub(super) fn log_axis(lo: f64, hi: f64, ticks: Vec<f64>) -> Ticks<LogCoord<f64>> {
    Ticks {
        inner: (lo..hi).log_scale().into(),
        ticks,
    }
}
