//! The encoder and decoder graphs, built layer by layer from a model file's owned form.

use super::schema::{self, BuiltinOperator, BuiltinOptions, Operator, Padding, Quantization, Tensor, TensorType};
use super::{ConvertError, Converted};
use crate::quantize::{QLayer, QuantParams, Quantized, LOGISTIC_QUANT};
use autoencoder_core::model::{Activation as Act, ModelKind, Owned, WeightShape, Weighted};
use autoencoder_core::quantize_f32::is_unit_pixels;
use autoencoder_core::table_s8::{leaky_relu_table, logistic_table, TABLE_LEN};
use autoencoder_core::{effective_scale, fused_negative_scale, quantize_multiplier};

/// The kind of a layer, as `inspect` and the core name it.
fn kind(layer: &QLayer) -> &'static str {
    layer.type_name()
}

/// The shape of an activation (batch 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// `[1, n]`.
    Flat(usize),
    /// `[1, height, width, channels]`.
    Nhwc(usize, usize, usize),
}

impl Shape {
    fn len(self) -> usize {
        match self {
            Shape::Flat(n) => n,
            Shape::Nhwc(h, w, c) => h * w * c,
        }
    }

    fn dims(self) -> Vec<i32> {
        match self {
            Shape::Flat(n) => dims(&[1, n]),
            Shape::Nhwc(h, w, c) => dims(&[1, h, w, c]),
        }
    }
}

/// Tensor dimensions as the schema stores them. Every size here comes from a model file's
/// arrays, far below `i32::MAX`.
fn dims(sizes: &[usize]) -> Vec<i32> {
    sizes
        .iter()
        .map(|&s| i32::try_from(s).expect("tensor dimensions fit i32"))
        .collect()
}

/// Where a graph has got to: the tensor holding the current activation.
#[derive(Clone, Copy, Debug)]
struct Activation {
    tensor: i32,
    quant: QuantParams,
    shape: Shape,
}

/// Per-tensor affine quantization.
fn per_tensor(q: QuantParams) -> Quantization {
    Quantization {
        scale: vec![q.scale],
        zero_point: vec![i64::from(q.zero_point)],
        quantized_dimension: 0,
    }
}

/// One graph being built: its tensors, ops, the operator codes they use and the constant data.
struct Graph {
    operator_codes: Vec<BuiltinOperator>,
    tensors: Vec<Tensor>,
    operators: Vec<Operator>,
    buffers: Vec<Vec<u8>>,
}

impl Graph {
    fn new() -> Graph {
        Graph {
            operator_codes: Vec::new(),
            tensors: Vec::new(),
            operators: Vec::new(),
            // Buffer 0 is the empty sentinel that every tensor computed at run time refers to.
            buffers: vec![Vec::new()],
        }
    }

    fn push_tensor(&mut self, tensor: Tensor) -> i32 {
        self.tensors.push(tensor);
        i32::try_from(self.tensors.len() - 1).expect("fewer than 2^31 tensors")
    }

    /// A tensor computed at run time.
    fn activation(&mut self, name: String, shape: Shape, quant: QuantParams) -> Activation {
        let tensor = self.push_tensor(Tensor {
            name,
            shape: shape.dims(),
            tensor_type: TensorType::Int8,
            buffer: 0,
            quantization: Some(per_tensor(quant)),
        });
        Activation { tensor, quant, shape }
    }

    /// A constant tensor with its own buffer.
    fn constant(
        &mut self,
        name: String,
        shape: Vec<i32>,
        tensor_type: TensorType,
        data: Vec<u8>,
        quantization: Option<Quantization>,
    ) -> i32 {
        self.buffers.push(data);
        let buffer = u32::try_from(self.buffers.len() - 1).expect("fewer than 2^32 buffers");
        self.push_tensor(Tensor {
            name,
            shape,
            tensor_type,
            buffer,
            quantization,
        })
    }

    fn op(&mut self, op: BuiltinOperator, inputs: Vec<i32>, outputs: Vec<i32>, options: BuiltinOptions) {
        let opcode_index = match self.operator_codes.iter().position(|&o| o == op) {
            Some(i) => i,
            None => {
                self.operator_codes.push(op);
                self.operator_codes.len() - 1
            }
        };
        self.operators.push(Operator {
            opcode_index: opcode_index as u32,
            inputs,
            outputs,
            options,
        });
    }

    /// `x` as `shape` (same number of values): `x` itself, or a `RESHAPE` of it into a new
    /// tensor named `name`.
    fn reshaped(&mut self, x: Activation, shape: Shape, name: String) -> Activation {
        if x.shape == shape {
            return x;
        }
        let new_shape = shape.dims();
        let data = new_shape.iter().flat_map(|d| d.to_le_bytes()).collect();
        let shape_tensor = self.constant(
            format!("{name}.shape"),
            dims(&[new_shape.len()]),
            TensorType::Int32,
            data,
            None,
        );
        let y = self.activation(name, shape, x.quant);
        self.op(
            BuiltinOperator::Reshape,
            vec![x.tensor, shape_tensor],
            vec![y.tensor],
            BuiltinOptions::Reshape { new_shape },
        );
        y
    }

    /// The finished model: `input` to `output`, the output tensor renamed `output_name`.
    fn finish(
        mut self,
        graph_name: &str,
        description: String,
        input: Activation,
        output: Activation,
        output_name: &str,
    ) -> Vec<u8> {
        self.tensors[output.tensor as usize].name = output_name.to_string();
        schema::Model {
            operator_codes: self.operator_codes,
            subgraph: schema::SubGraph {
                tensors: self.tensors,
                inputs: vec![input.tensor],
                outputs: vec![output.tensor],
                operators: self.operators,
                name: graph_name.to_string(),
            },
            description,
            buffers: self.buffers,
        }
        .to_bytes()
    }
}

/// Turns a model file's owned form into its encoder and decoder as `.tflite` flatbuffers (see
/// the [module documentation](super)).
///
/// # Errors
/// [`ConvertError::NoExactForm`] for a layer TFLite cannot compute exactly (a top-k anywhere
/// but at the end of the encoder, a fused LeakyReLU with a slope outside (0, 0.5], a logistic
/// whose output is not TFLM's fixed quantization); [`ConvertError::StaleMultipliers`] and
/// [`ConvertError::StaleTable`] where the stored requantization or table is not what TFLM
/// derives from the scales (a model file of an older rule: `trainer upgrade` it);
/// [`ConvertError::Arithmetic`], [`ConvertError::Malformed`] and [`ConvertError::Model`] for
/// a model whose values or shapes do not fit together.
pub fn convert(model: &Quantized) -> Result<Converted, ConvertError> {
    let layers = &model.layers;
    let code_after = usize::from(model.code_after);
    if code_after == 0 || code_after >= layers.len() {
        return Err(ConvertError::Model(format!(
            "the code after layer {code_after} does not split {} layers into an encoder and a decoder",
            layers.len()
        )));
    }
    for (index, layer) in layers.iter().enumerate() {
        if let QLayer::TopK { .. } = layer {
            let reason = if index >= code_after {
                "top-k in the decoder"
            } else if index + 1 < code_after {
                "top-k in the middle of the encoder"
            } else {
                continue;
            };
            return Err(no_exact_form(index, layer, reason));
        }
    }
    let (encoder_end, top_k) = match layers[code_after - 1] {
        QLayer::TopK { k } => (code_after - 1, Some(k as usize)),
        _ => (code_after, None),
    };
    if encoder_end == 0 {
        return Err(no_exact_form(
            0,
            &layers[0],
            "the encoder is only a top-k layer, which leaves no op for the .tflite encoder",
        ));
    }
    check_zero_point(model.input.zero_point).map_err(|reason| ConvertError::Model(format!("the input {reason}")))?;

    // The encoder.
    let mut encoder = Graph::new();
    // A convolutional model with an image-shaped input takes it as `[1, H, W, C]` (one channel
    // for `[H, W]`); every other input is flat, reshaped where a layer reads another shape.
    let n = model.input_len();
    let input_shape = match (model.model_kind(), model.input_shape.as_slice()) {
        (ModelKind::Convolutional, &[h, w]) => Shape::Nhwc(h as usize, w as usize, 1),
        (ModelKind::Convolutional, &[h, w, c]) => Shape::Nhwc(h as usize, w as usize, c as usize),
        _ => Shape::Flat(n),
    };
    let input = encoder.activation("input".to_string(), input_shape, model.input);
    let mut x = input;
    for (index, layer) in layers[..encoder_end].iter().enumerate() {
        x = add_layer(&mut encoder, index, layer, x)?;
    }
    let code_len = x.shape.len();
    let code = encoder.reshaped(x, Shape::Flat(code_len), "code".to_string());
    let input_text = if is_unit_pixels(&model.input_scaling, model.input) {
        "the int8 input pixels (p - 128)".to_string()
    } else {
        format!(
            "the {n} int8 input values (the raw samples scaled ({}) and quantized with scale {:e}, zero point {})",
            model.input_scaling.name(),
            model.input.scale,
            model.input.zero_point
        )
    };
    let mut description = format!(
        "{name} encoder: {input_text} to the {code_len}-value int8 code; from the autoencoder model file \
         `{name}` (format version {version}), converted exactly for TFLM",
        name = model.name,
        version = model.format_version,
    );
    if let Some(k) = top_k {
        description.push_str(&format!(
            "; then keep the {k} largest codes (ties to the lower index) and set the others to the zero \
             point {}",
            code.quant.zero_point
        ));
    }
    let encoder = encoder.finish("encoder", description, input, code, "code");

    // The decoder.
    let mut decoder = Graph::new();
    let input = decoder.activation("code".to_string(), Shape::Flat(code_len), code.quant);
    let mut x = input;
    for (offset, layer) in layers[code_after..].iter().enumerate() {
        x = add_layer(&mut decoder, code_after + offset, layer, x)?;
    }
    if x.shape.len() != n {
        return Err(ConvertError::Model(format!(
            "the decoder's output is {} values, not the input's {n}",
            x.shape.len()
        )));
    }
    let output = decoder.reshaped(x, Shape::Flat(n), "output".to_string());
    let description = format!(
        "{name} decoder: the {code_len}-value int8 code to the {n} int8 output values; from the \
         autoencoder model file `{name}` (format version {version}), converted exactly for TFLM",
        name = model.name,
        version = model.format_version,
    );
    let decoder = decoder.finish("decoder", description, input, output, "output");
    Ok(Converted {
        encoder,
        decoder,
        top_k,
    })
}

/// A one-op model of a stored table layer's op, to check the table against TFLM's own op on all
/// 256 inputs: input `[1, 256]` int8 with quantization `input` (the quantization of the layer's
/// input) to output `[1, 256]` int8 with the table's output quantization, through `LEAKY_RELU`
/// (alpha = the slope) or `LOGISTIC`. Entry `i` of the table is then TFLM's output for the input
/// code `i - 128`. The table itself is not consulted: a stale table is what this is for.
///
/// `input` is the trainer's [`QuantParams`] or the core's `Quant`.
///
/// # Errors
/// [`ConvertError::TableModel`] for a layer that is not a table, a logistic whose output is not
/// TFLM's fixed quantization (scale 1/256, zero point -128), or a zero point outside int8.
pub fn table_model(layer: &QLayer, input: impl Into<QuantParams>) -> Result<Vec<u8>, ConvertError> {
    let input = input.into();
    let refuse = |reason: String| ConvertError::TableModel {
        kind: kind(layer),
        reason,
    };
    let (op, options, output, what) = match *layer {
        QLayer::Table {
            activation: Act::LeakyRelu { slope },
            output,
            ..
        } => (
            BuiltinOperator::LeakyRelu,
            BuiltinOptions::LeakyRelu { alpha: slope },
            output,
            format!("LEAKY_RELU (alpha {slope})"),
        ),
        QLayer::Table {
            activation: Act::Logistic,
            output,
            ..
        } => {
            check_logistic_output(output).map_err(refuse)?;
            (
                BuiltinOperator::Logistic,
                BuiltinOptions::None,
                output,
                "LOGISTIC".to_string(),
            )
        }
        _ => {
            return Err(refuse(
                "only a LeakyReLU or Logistic table has a table model".to_string(),
            ))
        }
    };
    check_zero_point(input.zero_point).map_err(|reason| refuse(format!("the input {reason}")))?;
    check_zero_point(output.zero_point).map_err(|reason| refuse(format!("the output {reason}")))?;
    let mut g = Graph::new();
    let x = g.activation("input".to_string(), Shape::Flat(TABLE_LEN), input);
    let y = g.activation("output".to_string(), Shape::Flat(TABLE_LEN), output);
    g.op(op, vec![x.tensor], vec![y.tensor], options);
    let description = format!(
        "{what} alone: the 256 int8 input codes -128..=127 to a stored {} layer's table entries",
        kind(layer)
    );
    Ok(g.finish("table", description, x, y, "output"))
}

/// Which of TFLite's float conversions [`float_model`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatOp {
    /// `QUANTIZE`: float32 in, int8 out.
    Quantize,
    /// `DEQUANTIZE`: int8 in, float32 out.
    Dequantize,
}

/// A one-op model of TFLite's own float input or output, to hold the core's
/// `autoencoder_core::quantize_f32` against TFLM: `QUANTIZE` from float32 `[1, n]` to int8
/// `[1, n]` quantized with `quant`, or `DEQUANTIZE` back.
///
/// # Errors
/// [`ConvertError::Model`] for a zero point outside int8.
pub fn float_model(op: FloatOp, n: usize, quant: QuantParams) -> Result<Vec<u8>, ConvertError> {
    check_zero_point(quant.zero_point).map_err(|reason| ConvertError::Model(format!("the int8 side's {reason}")))?;
    let mut g = Graph::new();
    let float = |g: &mut Graph, name: &str| Activation {
        tensor: g.push_tensor(Tensor {
            name: name.to_string(),
            shape: Shape::Flat(n).dims(),
            tensor_type: TensorType::Float32,
            buffer: 0,
            quantization: None,
        }),
        quant,
        shape: Shape::Flat(n),
    };
    let (x, y, builtin, what) = match op {
        FloatOp::Quantize => {
            let x = float(&mut g, "input");
            let y = g.activation("output".to_string(), Shape::Flat(n), quant);
            (x, y, BuiltinOperator::Quantize, "QUANTIZE")
        }
        FloatOp::Dequantize => {
            let x = g.activation("input".to_string(), Shape::Flat(n), quant);
            let y = float(&mut g, "output");
            (x, y, BuiltinOperator::Dequantize, "DEQUANTIZE")
        }
    };
    g.op(builtin, vec![x.tensor], vec![y.tensor], BuiltinOptions::None);
    let description = format!(
        "{what} alone: {n} values, int8 side scale {:e} zero point {}",
        quant.scale, quant.zero_point
    );
    Ok(g.finish("float", description, x, y, "output"))
}

/// `Err` with a reason unless `zero_point` is an int8 code.
fn check_zero_point(zero_point: i32) -> Result<(), String> {
    if (-128..=127).contains(&zero_point) {
        Ok(())
    } else {
        Err(format!("zero point {zero_point} is outside int8"))
    }
}

/// `Err` with a reason unless `output` is TFLM's fixed quantization of an int8 LOGISTIC.
fn check_logistic_output(output: QuantParams) -> Result<(), String> {
    if output == LOGISTIC_QUANT {
        Ok(())
    } else {
        Err(format!(
            "TFLM's int8 LOGISTIC has output scale 1/256 and zero point -128, the table's output has scale \
             {} and zero point {}",
            output.scale, output.zero_point
        ))
    }
}

fn no_exact_form(layer: usize, l: &QLayer, reason: impl Into<String>) -> ConvertError {
    ConvertError::NoExactForm {
        layer,
        kind: kind(l),
        reason: reason.into(),
    }
}

fn malformed(layer: usize, l: &QLayer, reason: impl Into<String>) -> ConvertError {
    ConvertError::Malformed {
        layer,
        kind: kind(l),
        reason: reason.into(),
    }
}

/// Dimensions of a weighted layer's weight tensor: `[out, in]` or OHWI.
fn weight_dims(w: WeightShape) -> Vec<usize> {
    match w {
        WeightShape::Dense { inputs, outputs } => vec![outputs, inputs],
        WeightShape::Conv(g) => vec![g.out_channels, g.kernel, g.kernel, g.in_channels],
    }
}

/// The input shape a weighted layer's op reads.
fn input_shape(w: WeightShape) -> Shape {
    match w {
        WeightShape::Dense { inputs, .. } => Shape::Flat(inputs),
        WeightShape::Conv(g) => Shape::Nhwc(g.height, g.width, g.in_channels),
    }
}

/// The output shape (`VALID`, stride 1 for a convolution); `None` if the kernel does not fit.
fn output_shape(w: WeightShape) -> Option<Shape> {
    match w {
        WeightShape::Dense { outputs, .. } => Some(Shape::Flat(outputs)),
        WeightShape::Conv(g) => (g.kernel >= 1 && g.kernel <= g.height && g.kernel <= g.width)
            .then(|| Shape::Nhwc(g.height + 1 - g.kernel, g.width + 1 - g.kernel, g.out_channels)),
    }
}

/// The op of a weighted layer: its short name in tensor names, the operator and its options.
fn weighted_op(w: WeightShape) -> (&'static str, BuiltinOperator, BuiltinOptions) {
    match w {
        WeightShape::Dense { .. } => ("fc", BuiltinOperator::FullyConnected, BuiltinOptions::FullyConnected),
        WeightShape::Conv(_) => (
            "conv2d",
            BuiltinOperator::Conv2d,
            BuiltinOptions::Conv2d {
                padding: Padding::Valid,
                stride_w: 1,
                stride_h: 1,
            },
        ),
    }
}

/// Adds layer `index` to `g` after the activation `x`; returns the layer's output.
fn add_layer(g: &mut Graph, index: usize, layer: &QLayer, x: Activation) -> Result<Activation, ConvertError> {
    if let Some(w) = layer.weighted() {
        return add_weighted(g, index, layer, &w, x);
    }
    match *layer {
        QLayer::MaxPool2d {
            height,
            width,
            channels,
        } => {
            let (height, width, channels) = (usize::from(height), usize::from(width), usize::from(channels));
            let shape = Shape::Nhwc(height, width, channels);
            let x = input_as(g, index, layer, x, shape)?;
            if height < 2 || width < 2 {
                return Err(malformed(
                    index,
                    layer,
                    format!("a 2x2 pool does not fit {height}x{width}"),
                ));
            }
            let y = g.activation(
                format!("layer{index}.max_pool_2d"),
                Shape::Nhwc(height / 2, width / 2, channels),
                x.quant,
            );
            g.op(
                BuiltinOperator::MaxPool2d,
                vec![x.tensor],
                vec![y.tensor],
                BuiltinOptions::Pool2d {
                    padding: Padding::Valid,
                    stride_w: 2,
                    stride_h: 2,
                    filter_width: 2,
                    filter_height: 2,
                },
            );
            Ok(y)
        }
        QLayer::Table {
            activation: Act::LeakyRelu { slope },
            ref table,
            output,
        } => {
            check_zero_point(output.zero_point).map_err(|r| malformed(index, layer, format!("the output {r}")))?;
            let derived = leaky_relu_table(
                slope,
                x.quant.scale,
                x.quant.zero_point,
                output.scale,
                output.zero_point,
            )
            .map_err(|source| ConvertError::Arithmetic {
                layer: index,
                kind: kind(layer),
                what: "TFLM's LEAKY_RELU requantization",
                source,
            })?;
            check_table(index, layer, table, derived.entries())?;
            let y = g.activation(format!("layer{index}.leaky_relu"), x.shape, output);
            g.op(
                BuiltinOperator::LeakyRelu,
                vec![x.tensor],
                vec![y.tensor],
                BuiltinOptions::LeakyRelu { alpha: slope },
            );
            Ok(y)
        }
        QLayer::Table {
            activation: Act::Logistic,
            ref table,
            output,
        } => {
            check_logistic_output(output).map_err(|reason| no_exact_form(index, layer, reason))?;
            let derived =
                logistic_table(x.quant.scale, x.quant.zero_point).map_err(|source| ConvertError::Arithmetic {
                    layer: index,
                    kind: kind(layer),
                    what: "TFLM's LOGISTIC input rescaling",
                    source,
                })?;
            check_table(index, layer, table, derived.entries())?;
            let y = g.activation(format!("layer{index}.logistic"), x.shape, output);
            g.op(
                BuiltinOperator::Logistic,
                vec![x.tensor],
                vec![y.tensor],
                BuiltinOptions::None,
            );
            Ok(y)
        }
        // `convert` has placed (or refused) every top-k before building a graph.
        QLayer::TopK { .. } => Err(no_exact_form(index, layer, "top-k has no TFLite op")),
        _ => Err(no_exact_form(index, layer, "no TFLite form is known for this layer")),
    }
}

/// `x` in the shape a layer reads: reshaped if it holds the same number of values, else an
/// error naming the layer.
fn input_as(
    g: &mut Graph,
    index: usize,
    layer: &QLayer,
    x: Activation,
    shape: Shape,
) -> Result<Activation, ConvertError> {
    if x.shape.len() != shape.len() {
        return Err(malformed(
            index,
            layer,
            format!(
                "its input is {} values, the previous layer's output {}",
                shape.len(),
                x.shape.len()
            ),
        ));
    }
    Ok(g.reshaped(x, shape, format!("layer{index}.input")))
}

/// Checks a stored table against what TFLM computes.
fn check_table(index: usize, layer: &QLayer, stored: &[i8], derived: &[i8; TABLE_LEN]) -> Result<(), ConvertError> {
    if stored.len() != TABLE_LEN {
        return Err(malformed(
            index,
            layer,
            format!("its table has {} entries, not {TABLE_LEN}", stored.len()),
        ));
    }
    match stored
        .iter()
        .zip(derived)
        .zip(i8::MIN..=i8::MAX)
        .find(|((s, d), _)| s != d)
    {
        None => Ok(()),
        Some(((&stored, &derived), input)) => Err(ConvertError::StaleTable {
            layer: index,
            kind: kind(layer),
            input,
            stored,
            derived,
        }),
    }
}

/// Checks each channel's stored `(multiplier, shift)` against `quantize_multiplier` of
/// `effective_scale(input_scale, weight_scale, output_scale)`, which is what TFLM computes when
/// it prepares the op.
fn check_multipliers(
    index: usize,
    layer: &QLayer,
    side: &'static str,
    input_scale: f32,
    weight_scales: &[f32],
    output_scale: f32,
    (multipliers, shifts): (&[i32], &[i8]),
) -> Result<(), ConvertError> {
    for (channel, ((&w, &m), &s)) in weight_scales.iter().zip(multipliers).zip(shifts).enumerate() {
        let s = i32::from(s);
        let derived = quantize_multiplier(effective_scale(input_scale, w, output_scale)).map_err(|source| {
            ConvertError::Arithmetic {
                layer: index,
                kind: kind(layer),
                what: if side == "negative" {
                    "the negative side's requantization"
                } else {
                    "the requantization"
                },
                source,
            }
        })?;
        if derived != (m, s) {
            return Err(ConvertError::StaleMultipliers {
                layer: index,
                kind: kind(layer),
                channel,
                side,
                stored: (m, s),
                derived,
            });
        }
    }
    Ok(())
}

/// Adds a fully connected or convolution layer, with its fused LeakyReLU if any.
fn add_weighted(
    g: &mut Graph,
    index: usize,
    layer: &QLayer,
    weighted: &Weighted<'_, 'static, Owned>,
    x: Activation,
) -> Result<Activation, ConvertError> {
    let (w, params, fused) = (weighted.shape, weighted.params, weighted.fused.as_ref());
    let Some(output_shape) = output_shape(w) else {
        return Err(malformed(index, layer, "the kernel does not fit the input"));
    };
    let x = input_as(g, index, layer, x, input_shape(w))?;
    let channels = w.channels();
    let weight_dims = weight_dims(w);
    let (op_name, op, options) = weighted_op(w);
    let lengths = [
        ("weights", params.weights.len(), weight_dims.iter().product()),
        ("weight scales", params.weight_scales.len(), channels),
        ("biases", params.bias.len(), channels),
        ("multipliers", params.multipliers.len(), channels),
        ("shifts", params.shifts.len(), channels),
    ];
    let negative_lengths = fused
        .as_ref()
        .map(|f| {
            [
                ("negative multipliers", f.negative_multipliers.len(), channels),
                ("negative shifts", f.negative_shifts.len(), channels),
            ]
        })
        .into_iter()
        .flatten();
    for (what, actual, expected) in lengths.into_iter().chain(negative_lengths) {
        if actual != expected {
            return Err(malformed(index, layer, format!("{actual} {what}, expected {expected}")));
        }
    }
    if let Some(&scale) = params.weight_scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(malformed(index, layer, format!("weight scale {scale} is not positive")));
    }
    let output = params.output;
    check_zero_point(output.zero_point).map_err(|r| malformed(index, layer, format!("the output {r}")))?;
    check_multipliers(
        index,
        layer,
        "positive",
        x.quant.scale,
        &params.weight_scales,
        output.scale,
        (&params.multipliers, &params.shifts),
    )?;
    // The negative side's output tensor: the LeakyReLU's output scale divided by the slope, the
    // same zero point.
    let negative = match fused {
        None => None,
        Some(f) => {
            if !(f.slope > 0.0 && f.slope <= 0.5) {
                return Err(no_exact_form(
                    index,
                    layer,
                    format!(
                        "the fused LeakyReLU's slope {} is outside (0, 0.5], where MAXIMUM of its two \
                         requantizations is exact",
                        f.slope
                    ),
                ));
            }
            let scale = fused_negative_scale(output.scale, f.slope);
            check_multipliers(
                index,
                layer,
                "negative",
                x.quant.scale,
                &params.weight_scales,
                scale,
                (f.negative_multipliers, f.negative_shifts),
            )?;
            Some(QuantParams {
                scale,
                zero_point: output.zero_point,
            })
        }
    };

    let name = format!("layer{index}.{op_name}");
    let zeros = vec![0i64; channels];
    let weights = g.constant(
        format!("{name}.weights"),
        dims(&weight_dims),
        TensorType::Int8,
        params.weights.iter().map(|&v| v as u8).collect(),
        Some(Quantization {
            scale: params.weight_scales.to_vec(),
            zero_point: zeros.clone(),
            quantized_dimension: 0,
        }),
    );
    let bias = g.constant(
        format!("{name}.bias"),
        dims(&[channels]),
        TensorType::Int32,
        params.bias.iter().flat_map(|b| b.to_le_bytes()).collect(),
        Some(Quantization {
            // TFLM does not read the bias scale (it requantizes with the input and weight
            // scales); it is written as the product it stands for.
            scale: params
                .weight_scales
                .iter()
                .map(|&s| (f64::from(x.quant.scale) * f64::from(s)) as f32)
                .collect(),
            zero_point: zeros,
            quantized_dimension: 0,
        }),
    );
    let inputs = vec![x.tensor, weights, bias];
    let Some(negative) = negative else {
        let y = g.activation(name, output_shape, output);
        g.op(op, inputs, vec![y.tensor], options);
        return Ok(y);
    };
    // A fused LeakyReLU: y = MAXIMUM(layer into `output`, layer into `negative`). Why this is
    // exact for 0 < slope <= 0.5:
    //
    // The core computes y = clamp(zp + R_p(acc)) for acc >= 0 and clamp(zp + R_n(acc)) for
    // acc < 0, where R_p and R_n are TFLM's requantizations with the positive and negative
    // (multiplier, shift), checked above to be exactly what TFLM derives for the two ops here.
    // The two ops compute clamp(zp + R_p(acc)) and clamp(zp + R_n(acc)), same zero point, and
    // clamping commutes with the maximum; so it is enough that R_p(acc) >= R_n(acc) for
    // acc >= 0 and R_n(acc) >= R_p(acc) for acc < 0. Both requantizations are monotone in acc
    // and 0 at acc = 0, so their signs agree with acc. Their effective scales are M and
    // M * slope <= M / 2 (up to the rounding of the scales), so the exact products p = acc * M
    // and n = acc * M * slope have the same sign and |n| <= |p| / 2. TFLM rounds twice (the high
    // multiply, ties up; the right shift by r, ties away from zero), which keeps R(x) within 3/4
    // of x; and as +-2^(r-1) is an integer, R(x) >= 1 once x >= 1/2 and R(x) = 1 needs x >= 1/4
    // (for x < 0: R(x) <= -1 once x < -1/2, and R(x) = -1 needs x < -1/4). If |R_n| = k >= 2
    // then |n| >= k - 3/4, |p| >= 2k - 3/2 and |R_p| >= 2k - 9/4 > k - 1, so |R_p| >= k; if
    // |R_n| = 1 then n is past 1/4, p past 1/2, and |R_p| >= 1. So |R_n| <= |R_p|: the positive
    // side is the larger for acc >= 0, the negative side (nearer zero) for acc < 0. For slopes
    // above 1/2 this argument no longer holds, so they are refused above (every variant here
    // uses 0.01). `max_of_the_two_sides_is_the_fused_layer` checks the identity over random
    // scales and accumulators, and TFLM agrees with the core on every shipped fused layer.
    let positive = g.activation(format!("{name}.positive"), output_shape, output);
    let negative = g.activation(format!("{name}.negative"), output_shape, negative);
    g.op(op, inputs.clone(), vec![positive.tensor], options.clone());
    g.op(op, inputs, vec![negative.tensor], options);
    let y = g.activation(format!("layer{index}.leaky_relu"), output_shape, output);
    g.op(
        BuiltinOperator::Maximum,
        vec![positive.tensor, negative.tensor],
        vec![y.tensor],
        BuiltinOptions::MaximumMinimum,
    );
    Ok(y)
}
