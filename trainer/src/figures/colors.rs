//! The figures' colours: grey levels of images, the diverging scale of codes, the digits'
//! palette and the colours of lines.

use plotters::style::RGBColor;

/// Grey level of a pixel value, clamped to [0, 1]; NaN is black.
pub(super) fn gray(v: f32) -> [u8; 3] {
    let g = if v.is_nan() {
        0
    } else {
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    [g, g, g]
}

/// Marker colour for non-finite values where a colour scale is used.
pub(super) const NON_FINITE: [u8; 3] = [0, 200, 0];

/// Colour of an exact zero code.
pub(super) const ZERO: [u8; 3] = [255, 255, 255];
/// Positive codes, light to dark (ColorBrewer Reds without its near-white end).
pub(super) const REDS: [[u8; 3]; 4] = [[252, 187, 161], [251, 106, 74], [203, 24, 29], [103, 0, 13]];
/// Negative codes, light to dark (ColorBrewer Blues without its near-white end).
const BLUES: [[u8; 3]; 4] = [[198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];

/// Piecewise-linear colour ramp at `t` in [0, 1].
fn ramp(stops: &[[u8; 3]], t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0) * (stops.len() - 1) as f32;
    let i = (t.floor() as usize).min(stops.len() - 2);
    let f = t - i as f32;
    let (a, b) = (stops[i], stops[i + 1]);
    std::array::from_fn(|c| (a[c] as f32 + (b[c] as f32 - a[c] as f32) * f).round() as u8)
}

/// Colour of code value `v` on a scale whose ends are ±`m` (`m` > 0): white for exactly 0,
/// reds for positive, blues for negative, darker with magnitude; green for NaN.
pub(super) fn code_color(v: f32, m: f32) -> [u8; 3] {
    if v == 0.0 {
        ZERO
    } else if v.is_nan() {
        NON_FINITE
    } else if v > 0.0 {
        ramp(&REDS, v / m)
    } else {
        ramp(&BLUES, -v / m)
    }
}

/// The ten digit colours of [`latent_map`](super::latent_map) (matplotlib's tab10), digit 0
/// first.
pub const DIGIT_COLORS: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// Series colours of [`accuracy_vs_labels`](super::accuracy_vs_labels) (tab10's first ones),
/// repeated past the last.
pub(super) const SERIES_COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The lines of [`curves`](super::curves): training loss, validation MSE, learning rate.
pub(super) const LOSS_COLOR: RGBColor = RGBColor(31, 119, 180);
pub(super) const VAL_COLOR: RGBColor = RGBColor(230, 120, 20);
pub(super) const LR_COLOR: RGBColor = RGBColor(44, 140, 44);
/// Grid lines of the line charts.
pub(super) const GRID: RGBColor = RGBColor(225, 225, 225);
/// The dashed line at a phase change in [`curves`](super::curves).
pub(super) const BOUNDARY: RGBColor = RGBColor(110, 110, 110);
