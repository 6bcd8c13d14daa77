//! Lowering: the float model's layers as the core's int8 layers (NHWC activations and OHWI
//! filters, per-channel weights and requantization, a fused LeakyReLU's negative side, tables).

use super::{InputSpec, QLayer, QWeights, QuantizeError, Quantized, LOGISTIC_QUANT};
use crate::model::{Layer, Model};
use autoencoder_core::model::{Activation, Anomaly, Fused, ModelBody, Quant, WeightShape, Weights};
use autoencoder_core::table_s8::{leaky_relu_table, logistic_table};
use autoencoder_core::{effective_scale, fused_negative_scale, quantize_multiplier, Conv2dGeometry};
use ndarray::{Array2, ArrayView2};

/// Layout of the activation between two layers, as the float model holds it.
#[derive(Clone, Copy)]
enum Layout {
    /// A flat vector.
    Flat(usize),
    /// Channels, height, width: the trainer's NCHW rows; the int8 model holds them NHWC.
    Chw(usize, usize, usize),
}

impl Layout {
    fn len(self) -> usize {
        match self {
            Layout::Flat(n) => n,
            Layout::Chw(c, h, w) => c * h * w,
        }
    }
}

/// The int8 model of `model`, whose input is `spec`, with layer `i`'s output quantized by
/// `quants[i]` (ignored for layers that keep their input's quantization); a Linear or Conv2d
/// layer `i` with `fuse[i]` takes the LeakyReLU after it in (one fused layer, quantized as that
/// LeakyReLU's output).
pub(super) fn build(
    model: &Model,
    name: &str,
    spec: &InputSpec,
    quants: &[Quant],
    fuse: &[bool],
    float_test_mse: f64,
) -> Result<Quantized, QuantizeError> {
    let mut layers: heapless::Vec<QLayer, { autoencoder_core::model::MAX_LAYERS }> = heapless::Vec::new();
    let mut code_after = None;
    let mut input: Quant = spec.quant;
    let mut layout = Layout::Flat(spec.len());
    let mut skip = false;
    for (i, layer) in model.layers.iter().enumerate() {
        if i == model.code_after {
            code_after = Some(layers.len());
        }
        if std::mem::take(&mut skip) {
            continue;
        }
        let at = layers.len();
        let arithmetic = |what: &'static str| {
            move |source| QuantizeError::Arithmetic {
                layer: at,
                what,
                source,
            }
        };
        let lowered = match *layer {
            Layer::Linear { .. } | Layer::Conv2d { .. } => {
                let (shape, w, b, next_layout) = lower_weighted(model, layer, layout);
                layout = next_layout;
                let fused_slope = match model.layers.get(i + 1) {
                    Some(&Layer::LeakyRelu { slope }) if fuse[i] => Some(slope),
                    _ => None,
                };
                // A fused layer is quantized as the LeakyReLU's output, which it replaces.
                let output = quants[i + usize::from(fused_slope.is_some())];
                let params = quantize_weights(&w, &b, input, output, at)?;
                let fused = match fused_slope {
                    Some(slope) => {
                        skip = true;
                        Some(negative_side(&params, input, output, slope, at)?)
                    }
                    None => None,
                };
                input = output;
                QLayer::from_weighted(shape, params, fused).map_err(arithmetic("layer size"))?
            }
            Layer::MaxPool2d { geometry: g } => {
                layout = Layout::Chw(g.channels, g.out_h(), g.out_w());
                QLayer::MaxPool2d {
                    height: narrow(g.in_h)?,
                    width: narrow(g.in_w)?,
                    channels: narrow(g.channels)?,
                }
            }
            Layer::LeakyRelu { slope } => {
                let output = quants[i];
                let table = leaky_relu_table(slope, input.scale, input.zero_point, output.scale, output.zero_point)
                    .map_err(arithmetic("LeakyReLU table"))?;
                input = output;
                QLayer::Table {
                    activation: Activation::LeakyRelu { slope },
                    table: table.entries().to_vec(),
                    output,
                }
            }
            Layer::Sigmoid => {
                let table = logistic_table(input.scale, input.zero_point).map_err(arithmetic("logistic table"))?;
                input = LOGISTIC_QUANT;
                QLayer::Table {
                    activation: Activation::Logistic,
                    table: table.entries().to_vec(),
                    output: LOGISTIC_QUANT,
                }
            }
            Layer::TopK { k } => QLayer::TopK {
                k: u32::try_from(k.min(layout.len()))
                    .map_err(|_| QuantizeError::Unsupported(format!("top-k of {k}")))?,
            },
            Layer::LifetimeTopK { .. } => continue,
        };
        layers
            .push(lowered)
            .map_err(|_| QuantizeError::Unsupported(format!("more than {} layers", layers.capacity())))?;
    }
    let code_after = code_after.unwrap_or(layers.len());
    // The score's requantization: from the last layer's output quantization into the input's.
    let output = layers.iter().rev().find_map(QLayer::output_quant).unwrap_or(spec.quant);
    let anomaly = Anomaly::derive(spec.quant, output).map_err(|source| QuantizeError::Arithmetic {
        layer: layers.len(),
        what: "anomaly score requantization",
        source,
    })?;
    let body = ModelBody {
        name: name.to_string(),
        source: spec.source.clone(),
        float_test_mse: float_test_mse as f32,
        input_shape: spec.shape.clone().into(),
        input_scaling: spec.scaling.clone(),
        input: spec.quant,
        code_after: narrow(code_after)?,
        layers,
        anomaly,
    };
    Ok(Quantized::new(body))
}

/// A size as a u16 field of the model format.
fn narrow(x: usize) -> Result<u16, QuantizeError> {
    u16::try_from(x).map_err(|_| QuantizeError::Unsupported(format!("size {x} exceeds 65535")))
}

/// A Linear or Conv2d layer as the int8 model holds it: its shape, its float weights with one
/// row per output channel (columns in NHWC order, filters OHWI), its bias, and the layout of
/// its output.
fn lower_weighted(model: &Model, layer: &Layer, layout: Layout) -> (WeightShape, Array2<f32>, Vec<f32>, Layout) {
    match *layer {
        Layer::Linear {
            weight,
            bias,
            transposed,
        } => {
            let w = &model.params[weight].value;
            let w = if transposed { w.t() } else { w.view() };
            let w = nhwc_columns(w, layout);
            let b = model.params[bias].value.row(0).to_vec();
            let (inputs, outputs) = (w.ncols(), w.nrows());
            (WeightShape::Dense { inputs, outputs }, w, b, Layout::Flat(outputs))
        }
        Layer::Conv2d {
            weight,
            bias,
            geometry: g,
        } => {
            // (O, C·k·k) in C, kh, kw order → OHWI.
            let w = &model.params[weight].value;
            let k = g.kernel;
            let ohwi = Array2::from_shape_fn((g.out_channels, k * k * g.in_channels), |(o, j)| {
                let (kh, rest) = (j / (k * g.in_channels), j % (k * g.in_channels));
                let (kw, c) = (rest / g.in_channels, rest % g.in_channels);
                w[[o, c * k * k + kh * k + kw]]
            });
            let b = model.params[bias].value.row(0).to_vec();
            let shape = WeightShape::Conv(Conv2dGeometry {
                height: g.in_h,
                width: g.in_w,
                in_channels: g.in_channels,
                out_channels: g.out_channels,
                kernel: k,
            });
            (shape, ohwi, b, Layout::Chw(g.out_channels, g.out_h(), g.out_w()))
        }
        _ => unreachable!("only Linear and Conv2d are weighted"),
    }
}

/// `w` with its columns reordered from the float activation's layout to the int8 one (NHWC).
fn nhwc_columns(w: ArrayView2<f32>, layout: Layout) -> Array2<f32> {
    match layout {
        Layout::Flat(_) => w.to_owned(),
        Layout::Chw(c, h, wd) => Array2::from_shape_fn((w.nrows(), w.ncols()), |(o, j)| {
            // NHWC index j = (y·W + x)·C + ch holds NCHW element ch·H·W + y·W + x.
            let (pixel, ch) = (j / c, j % c);
            w[[o, ch * h * wd + pixel]]
        }),
    }
}

/// The negative-side requantization of a fused LeakyReLU: each channel's effective scale
/// against the output scale divided by the slope ([`fused_negative_scale`]), which is what TFLM
/// derives for the second of the two ops the layer converts to.
fn negative_side(
    params: &QWeights,
    input: Quant,
    output: Quant,
    slope: f32,
    layer: usize,
) -> Result<Fused<autoencoder_core::model::Words<i32>, Vec<i8>>, QuantizeError> {
    let pairs = params
        .weight_scales
        .iter()
        .map(|&scale| {
            let effective = effective_scale(input.scale, scale, fused_negative_scale(output.scale, slope));
            quantize_multiplier(effective).map_err(|source| QuantizeError::Arithmetic {
                layer,
                what: "negative-side multiplier",
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Fused {
        slope,
        negative_multipliers: pairs.iter().map(|&(m, _)| m).collect(),
        negative_shifts: pairs.iter().map(|&(_, s)| shift(s)).collect(),
    })
}

/// A shift from [`quantize_multiplier`] (always in [-31, 30]) as the format's i8.
fn shift(s: i32) -> i8 {
    s as i8
}

/// Symmetric per-channel int8 weights, int32 biases and requantization for rows of `w`.
fn quantize_weights(
    w: &Array2<f32>,
    b: &[f32],
    input: Quant,
    output: Quant,
    layer: usize,
) -> Result<QWeights, QuantizeError> {
    let mut q: QWeights = Weights {
        weights: Vec::with_capacity(w.len()),
        weight_scales: Vec::new().into(),
        bias: Vec::new().into(),
        multipliers: Vec::new().into(),
        shifts: Vec::new(),
        output,
    };
    for (row, &bias) in w.rows().into_iter().zip(b) {
        let max = row.iter().fold(0f32, |m, &x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        q.weights
            .extend(row.iter().map(|&x| (x / scale).round().clamp(-127.0, 127.0) as i8));
        q.weight_scales.push(scale);
        let bias_scale = f64::from(input.scale) * f64::from(scale);
        q.bias.push(
            (f64::from(bias) / bias_scale)
                .round()
                .clamp(i32::MIN as f64, i32::MAX as f64) as i32,
        );
        let effective = effective_scale(input.scale, scale, output.scale);
        let (m, s) = quantize_multiplier(effective).map_err(|source| QuantizeError::Arithmetic {
            layer,
            what: "requantization multiplier",
            source,
        })?;
        q.multipliers.push(m);
        q.shifts.push(shift(s));
    }
    Ok(q)
}
