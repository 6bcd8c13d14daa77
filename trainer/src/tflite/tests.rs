//! Tests of [`convert`] and [`table_model`]: the graphs they write, read back field by field,
//! and every refusal. (That TFLM runs the files bit-exactly as the core runs the model files is
//! checked against TFLM itself, with `tools/python/tflm_run.py`.)

use super::read::{Root, Table};
use super::*;
use crate::quantize::{mnist_input, QLayer, QWeights, QuantParams, Quantized, LOGISTIC_QUANT};
use autoencoder_core::model::{Activation as Act, Anomaly, InputScaling, ModelBody, Weights};
use autoencoder_core::table_s8::{leaky_relu_table, logistic_table};
use autoencoder_core::{effective_scale, fused_negative_scale, multiply_by_quantized_multiplier, quantize_multiplier};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// TFLite enum values the tests look for.
const INT8: i8 = 9;
const INT32: i8 = 2;
const FULLY_CONNECTED: i32 = 9;
const CONV_2D: i32 = 3;
const MAX_POOL_2D: i32 = 17;
const LOGISTIC: i32 = 14;
const LEAKY_RELU: i32 = 98;
const MAXIMUM: i32 = 55;
const RESHAPE: i32 = 22;

fn q(scale: f32, zero_point: i32) -> QuantParams {
    QuantParams { scale, zero_point }
}

/// Weights with random values and scales, and the requantization TFLM derives for them.
fn weights(
    rng: &mut ChaCha8Rng,
    channels: usize,
    per_channel: usize,
    input: QuantParams,
    output: QuantParams,
) -> QWeights {
    let weight_scales: Vec<f32> = (0..channels).map(|_| rng.random_range(1e-3f32..2e-2)).collect();
    let (multipliers, shifts): (Vec<i32>, Vec<i8>) = weight_scales
        .iter()
        .map(|&w| quantize_multiplier(effective_scale(input.scale, w, output.scale)).unwrap())
        .map(|(m, s)| (m, s as i8))
        .unzip();
    Weights {
        weights: (0..channels * per_channel)
            .map(|_| rng.random_range(-127i8..=127))
            .collect(),
        weight_scales: weight_scales.into(),
        bias: (0..channels).map(|_| rng.random_range(-5000..5000)).collect(),
        multipliers: multipliers.into(),
        shifts,
        output,
    }
}

/// The negative side of a fused LeakyReLU for `params`, as TFLM derives it.
fn negative_side(params: &QWeights, input: QuantParams, slope: f32) -> (autoencoder_core::model::Words<i32>, Vec<i8>) {
    let scale = fused_negative_scale(params.output.scale, slope);
    let (m, s): (Vec<i32>, Vec<i8>) = params
        .weight_scales
        .iter()
        .map(|&w| quantize_multiplier(effective_scale(input.scale, w, scale)).unwrap())
        .map(|(m, s)| (m, s as i8))
        .unzip();
    (m.into(), s)
}

fn fc(rng: &mut ChaCha8Rng, inputs: usize, outputs: usize, input: QuantParams, output: QuantParams) -> QLayer {
    QLayer::FullyConnected {
        inputs: inputs as u32,
        outputs: outputs as u32,
        params: weights(rng, outputs, inputs, input, output),
    }
}

fn fc_leaky(rng: &mut ChaCha8Rng, inputs: usize, outputs: usize, input: QuantParams, output: QuantParams) -> QLayer {
    let params = weights(rng, outputs, inputs, input, output);
    let (negative_multipliers, negative_shifts) = negative_side(&params, input, 0.01);
    QLayer::FullyConnectedLeakyRelu {
        inputs: inputs as u32,
        outputs: outputs as u32,
        slope: 0.01,
        params,
        negative_multipliers,
        negative_shifts,
    }
}

fn leaky_table(input: QuantParams, output: QuantParams) -> QLayer {
    let table = leaky_relu_table(0.01, input.scale, input.zero_point, output.scale, output.zero_point).unwrap();
    QLayer::Table {
        activation: Act::LeakyRelu { slope: 0.01 },
        table: table.entries().to_vec(),
        output,
    }
}

fn logistic(input: QuantParams) -> QLayer {
    let table = logistic_table(input.scale, input.zero_point).unwrap();
    QLayer::Table {
        activation: Act::Logistic,
        table: table.entries().to_vec(),
        output: LOGISTIC_QUANT,
    }
}

/// An MNIST model of `layers`.
fn model(name: &str, code_after: u16, layers: Vec<QLayer>) -> Quantized {
    let input = mnist_input();
    let mut body = ModelBody {
        name: name.to_string(),
        source: String::new(),
        float_test_mse: f32::NAN,
        input_shape: input.shape.into(),
        input_scaling: input.scaling,
        input: input.quant,
        code_after,
        layers: layers.into_iter().collect(),
        anomaly: Anomaly::derive(input.quant, input.quant).unwrap(),
    };
    body.anomaly = Anomaly::of(&body).unwrap();
    Quantized::new(body)
}

const Q1: QuantParams = QuantParams {
    scale: 0.05,
    zero_point: -20,
};
const Q2: QuantParams = QuantParams {
    scale: 0.041_37,
    zero_point: -127,
};
const Q3: QuantParams = QuantParams {
    scale: 0.06,
    zero_point: 3,
};

/// FC, LeakyReLU table, top-k | FC, logistic table.
fn with_tables() -> Quantized {
    let rng = &mut ChaCha8Rng::seed_from_u64(1);
    let input = mnist_input().quant;
    model(
        "tables",
        3,
        vec![
            fc(rng, 784, 16, input, Q1),
            leaky_table(Q1, Q2),
            QLayer::TopK { k: 4 },
            fc(rng, 16, 784, Q2, Q3),
            logistic(Q3),
        ],
    )
}

/// Fused FC | fused FC.
fn fused() -> Quantized {
    let rng = &mut ChaCha8Rng::seed_from_u64(2);
    let input = mnist_input().quant;
    model(
        "fused",
        1,
        vec![fc_leaky(rng, 784, 8, input, Q1), fc_leaky(rng, 8, 784, Q1, Q2)],
    )
}

/// Conv 5x5, LeakyReLU table, max-pool, fused conv 3x3 | FC.
fn convolutional() -> Quantized {
    let rng = &mut ChaCha8Rng::seed_from_u64(3);
    let input = mnist_input().quant;
    let conv = QLayer::Conv2d {
        height: 28,
        width: 28,
        in_channels: 1,
        out_channels: 4,
        kernel: 5,
        params: weights(rng, 4, 25, input, Q1),
    };
    let params = weights(rng, 3, 9 * 4, Q2, Q3);
    let (negative_multipliers, negative_shifts) = negative_side(&params, Q2, 0.01);
    let conv_leaky = QLayer::Conv2dLeakyRelu {
        height: 12,
        width: 12,
        in_channels: 4,
        out_channels: 3,
        kernel: 3,
        slope: 0.01,
        params,
        negative_multipliers,
        negative_shifts,
    };
    model(
        "conv-test",
        4,
        vec![
            conv,
            leaky_table(Q1, Q2),
            QLayer::MaxPool2d {
                height: 24,
                width: 24,
                channels: 4,
            },
            conv_leaky,
            fc(rng, 300, 784, Q3, Q1),
        ],
    )
}

/// The opcodes of a model's operators, in order.
fn ops(model: &Table<'_>) -> Vec<i32> {
    let codes: Vec<i32> = model.tables(1).iter().map(|c| c.i32(3).unwrap()).collect();
    let graph = model.tables(2)[0];
    graph
        .tables(3)
        .iter()
        .map(|op| codes[op.u32(0).unwrap_or(0) as usize])
        .collect()
}

/// A tensor's name, shape, type and (per-tensor or per-channel) quantization.
fn tensor_quant(t: &Table<'_>) -> (Vec<f32>, Vec<i64>, i32) {
    let q = t.table(4).expect("quantized");
    (q.f32s(2), q.i64s(3), q.i32(6).unwrap_or(0))
}

#[test]
fn fully_connected_layers_and_tables_become_their_ops() {
    let m = with_tables();
    let c = convert(&m).unwrap();
    assert_eq!(c.top_k, Some(4));

    let root = Root::new(&c.encoder);
    let enc = root.model();
    assert_eq!(&c.encoder[4..8], b"TFL3");
    assert_eq!(enc.u32(0), Some(3));
    let description = enc.string(3).unwrap();
    assert!(description.contains("tables encoder"), "{description}");
    assert!(description.contains("keep the 4 largest codes"), "{description}");
    assert_eq!(ops(&enc), vec![FULLY_CONNECTED, LEAKY_RELU]);
    let graph = enc.tables(2)[0];
    assert_eq!(graph.string(4).as_deref(), Some("encoder"));
    let tensors = graph.tables(0);
    let names: Vec<String> = tensors.iter().map(|t| t.string(3).unwrap()).collect();
    assert_eq!(
        names,
        ["input", "layer0.fc.weights", "layer0.fc.bias", "layer0.fc", "code"]
    );
    let buffers = enc.tables(4);
    assert!(buffers[0].bytes(0).is_none(), "buffer 0 is the empty sentinel");

    // Input: [1, 784] int8, the model's input quantization.
    let input = tensors[graph.i32s(1)[0] as usize];
    assert_eq!(input.string(3).as_deref(), Some("input"));
    assert_eq!(input.i32s(0), vec![1, 784]);
    assert_eq!(input.i8(1), Some(INT8));
    assert_eq!(input.u32(2).unwrap_or(0), 0);
    assert_eq!(tensor_quant(&input), (vec![1.0 / 255.0], vec![-128], 0));

    // The FC op: input, weights, bias; no fused activation, keep_num_dims false.
    let op = graph.tables(3)[0];
    assert_eq!(op.i32s(1), vec![0, 1, 2]);
    assert_eq!(op.i32s(2), vec![3]);
    assert_eq!(op.u8(3), Some(8), "FullyConnectedOptions");
    let options = op.table(4).unwrap();
    assert_eq!((options.i8(0), options.u8(2)), (Some(0), Some(0)));
    let QLayer::FullyConnected { ref params, .. } = m.layers[0] else {
        unreachable!()
    };
    let w = tensors[1];
    assert_eq!(w.i32s(0), vec![16, 784]);
    assert_eq!(w.i8(1), Some(INT8));
    assert_eq!(tensor_quant(&w), (params.weight_scales.to_vec(), vec![0; 16], 0));
    let data = buffers[w.u32(2).unwrap() as usize].bytes(0).unwrap();
    assert_eq!(data, params.weights.iter().map(|&v| v as u8).collect::<Vec<_>>());
    let b = tensors[2];
    assert_eq!(b.i32s(0), vec![16]);
    assert_eq!(b.i8(1), Some(INT32));
    let data = buffers[b.u32(2).unwrap() as usize].bytes(0).unwrap();
    assert_eq!(
        data,
        params.bias.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()
    );
    let (bias_scales, bias_zero_points, dim) = tensor_quant(&b);
    assert_eq!((bias_zero_points, dim), (vec![0; 16], 0));
    for (s, w) in bias_scales.iter().zip(&params.weight_scales) {
        assert_eq!(*s, (f64::from(1.0f32 / 255.0) * f64::from(*w)) as f32);
    }
    assert_eq!(
        tensor_quant(&tensors[3]),
        (vec![Q1.scale], vec![i64::from(Q1.zero_point)], 0)
    );

    // LEAKY_RELU with the slope, into the code: the table's output quantization.
    let op = graph.tables(3)[1];
    assert_eq!(op.u8(3), Some(75));
    assert_eq!(op.table(4).unwrap().f32(0), Some(0.01));
    assert_eq!(graph.i32s(2), vec![4]);
    assert_eq!(tensors[4].i32s(0), vec![1, 16]);
    assert_eq!(
        tensor_quant(&tensors[4]),
        (vec![Q2.scale], vec![i64::from(Q2.zero_point)], 0)
    );

    // The decoder starts from the code's quantization and ends in the logistic's.
    let root = Root::new(&c.decoder);
    let dec = root.model();
    assert!(dec.string(3).unwrap().contains("tables decoder"));
    assert_eq!(ops(&dec), vec![FULLY_CONNECTED, LOGISTIC]);
    let graph = dec.tables(2)[0];
    let tensors = graph.tables(0);
    let input = tensors[graph.i32s(1)[0] as usize];
    assert_eq!(input.string(3).as_deref(), Some("code"));
    assert_eq!(input.i32s(0), vec![1, 16]);
    assert_eq!(
        tensor_quant(&input),
        (vec![Q2.scale], vec![i64::from(Q2.zero_point)], 0)
    );
    let output = tensors[graph.i32s(2)[0] as usize];
    assert_eq!(output.string(3).as_deref(), Some("output"));
    assert_eq!(output.i32s(0), vec![1, 784]);
    assert_eq!(tensor_quant(&output), (vec![1.0 / 256.0], vec![-128], 0));
    assert!(graph.tables(3)[1].table(4).is_none(), "LOGISTIC has no options");
}

#[test]
fn a_fused_layer_is_two_ops_on_shared_weights_and_a_maximum() {
    let m = fused();
    let c = convert(&m).unwrap();
    assert_eq!(c.top_k, None);
    let root = Root::new(&c.encoder);
    let enc = root.model();
    assert_eq!(ops(&enc), vec![FULLY_CONNECTED, FULLY_CONNECTED, MAXIMUM]);
    let graph = enc.tables(2)[0];
    let tensors = graph.tables(0);
    let names: Vec<String> = tensors.iter().map(|t| t.string(3).unwrap()).collect();
    assert_eq!(
        names,
        [
            "input",
            "layer0.fc.weights",
            "layer0.fc.bias",
            "layer0.fc.positive",
            "layer0.fc.negative",
            "code"
        ]
    );
    let operators = graph.tables(3);
    assert_eq!(operators[0].i32s(1), vec![0, 1, 2]);
    assert_eq!(operators[1].i32s(1), vec![0, 1, 2], "the same weights and bias");
    assert_eq!(operators[0].i32s(2), vec![3]);
    assert_eq!(operators[1].i32s(2), vec![4]);
    assert_eq!(operators[2].i32s(1), vec![3, 4]);
    assert_eq!(operators[2].i32s(2), vec![5]);
    assert_eq!(operators[2].u8(3), Some(39), "MaximumMinimumOptions");
    let negative = fused_negative_scale(Q1.scale, 0.01);
    assert_eq!(
        tensor_quant(&tensors[3]),
        (vec![Q1.scale], vec![i64::from(Q1.zero_point)], 0)
    );
    assert_eq!(
        tensor_quant(&tensors[4]),
        (vec![negative], vec![i64::from(Q1.zero_point)], 0)
    );
    assert_eq!(
        tensor_quant(&tensors[5]),
        (vec![Q1.scale], vec![i64::from(Q1.zero_point)], 0)
    );
    assert_eq!(enc.tables(4).len(), 3, "the empty buffer, weights, bias");

    let root = Root::new(&c.decoder);
    let dec = root.model();
    assert_eq!(ops(&dec), vec![FULLY_CONNECTED, FULLY_CONNECTED, MAXIMUM]);
    let names: Vec<String> = dec.tables(2)[0]
        .tables(0)
        .iter()
        .map(|t| t.string(3).unwrap())
        .collect();
    assert_eq!(names[0], "code");
    assert_eq!(names[1], "layer1.fc.weights");
    assert_eq!(names.last().unwrap(), "output");
}

#[test]
fn convolutions_pool_and_reshape_in_nhwc() {
    let m = convolutional();
    let c = convert(&m).unwrap();
    let root = Root::new(&c.encoder);
    let enc = root.model();
    assert_eq!(
        ops(&enc),
        vec![CONV_2D, LEAKY_RELU, MAX_POOL_2D, CONV_2D, CONV_2D, MAXIMUM, RESHAPE]
    );
    let graph = enc.tables(2)[0];
    let tensors = graph.tables(0);
    let shape = |name: &str| {
        tensors
            .iter()
            .find(|t| t.string(3).as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no tensor {name}"))
            .i32s(0)
    };
    assert_eq!(shape("input"), vec![1, 28, 28, 1]);
    assert_eq!(shape("layer0.conv2d.weights"), vec![4, 5, 5, 1]);
    assert_eq!(shape("layer0.conv2d"), vec![1, 24, 24, 4]);
    assert_eq!(shape("layer2.max_pool_2d"), vec![1, 12, 12, 4]);
    assert_eq!(shape("layer3.conv2d.weights"), vec![3, 3, 3, 4]);
    assert_eq!(shape("layer3.conv2d.negative"), vec![1, 10, 10, 3]);
    assert_eq!(shape("layer3.leaky_relu"), vec![1, 10, 10, 3]);
    assert_eq!(shape("code"), vec![1, 300]);
    assert_eq!(shape("code.shape"), vec![2]);
    let operators = graph.tables(3);
    let conv = operators[0].table(4).unwrap();
    assert_eq!(operators[0].u8(3), Some(1), "Conv2DOptions");
    // padding VALID, stride 1, no activation, dilation 1.
    assert_eq!(
        (
            conv.i8(0),
            conv.i32(1),
            conv.i32(2),
            conv.i8(3),
            conv.i32(4),
            conv.i32(5)
        ),
        (Some(1), Some(1), Some(1), Some(0), Some(1), Some(1))
    );
    let pool = operators[2].table(4).unwrap();
    assert_eq!(operators[2].u8(3), Some(5), "Pool2DOptions");
    assert_eq!(
        (pool.i8(0), pool.i32(1), pool.i32(2), pool.i32(3), pool.i32(4)),
        (Some(1), Some(2), Some(2), Some(2), Some(2))
    );
    // The pool keeps its input's quantization.
    let pool_out = operators[2].i32s(2)[0] as usize;
    assert_eq!(
        tensor_quant(&tensors[pool_out]),
        (vec![Q2.scale], vec![i64::from(Q2.zero_point)], 0)
    );
    // The reshape's shape is in the options and in a constant int32 tensor.
    let reshape = operators[6];
    assert_eq!(reshape.table(4).unwrap().i32s(0), vec![1, 300]);
    let shape_tensor = tensors[reshape.i32s(1)[1] as usize];
    assert_eq!(shape_tensor.i8(1), Some(INT32));
    let data = enc.tables(4)[shape_tensor.u32(2).unwrap() as usize].bytes(0).unwrap();
    assert_eq!(
        data,
        [1i32, 300].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>()
    );

    let root = Root::new(&c.decoder);
    let dec = root.model();
    assert_eq!(ops(&dec), vec![FULLY_CONNECTED]);
    let graph = dec.tables(2)[0];
    assert_eq!(graph.tables(0)[0].i32s(0), vec![1, 300]);
}

#[test]
fn every_buffer_is_16_byte_aligned_in_the_file() {
    for m in [with_tables(), fused(), convolutional()] {
        let c = convert(&m).unwrap();
        for bytes in [&c.encoder, &c.decoder] {
            assert_eq!(bytes.len() % DATA_ALIGN, 0);
            let root = Root::new(bytes);
            for buffer in root.model().tables(4) {
                if let Some(data) = buffer.bytes(0) {
                    assert_eq!((data.as_ptr() as usize - bytes.as_ptr() as usize) % DATA_ALIGN, 0);
                }
            }
        }
    }
}

/// `convert`'s error message for `m`.
fn refusal(m: &Quantized) -> String {
    let e = convert(m).expect_err("should be refused");
    let message = e.to_string();
    assert!(message.contains(".tflite"), "{message}");
    message
}

#[test]
fn top_k_anywhere_but_at_the_end_of_the_encoder_is_refused() {
    let mut m = with_tables();
    m.layers.swap(1, 2); // FC, top-k, LeakyReLU | ...
    let message = refusal(&m);
    assert!(
        message.contains("layer 1 (top_k): no exact TFLite form: top-k in the middle of the encoder"),
        "{message}"
    );

    let mut m = with_tables();
    m.layers.insert(4, QLayer::TopK { k: 3 }).unwrap();
    let message = refusal(&m);
    assert!(message.contains("layer 4 (top_k)"), "{message}");
    assert!(message.contains("top-k in the decoder"), "{message}");

    let mut m = with_tables();
    m.layers = m.layers[2..].iter().cloned().collect();
    m.code_after = 1; // top-k alone | FC, logistic
    let message = refusal(&m);
    assert!(message.contains("layer 0 (top_k)"), "{message}");
}

#[test]
fn a_model_without_an_encoder_and_a_decoder_is_refused() {
    for code_after in [0, 5, 6] {
        let mut m = with_tables();
        m.code_after = code_after;
        assert!(
            matches!(convert(&m), Err(ConvertError::Model(_))),
            "code after {code_after}"
        );
    }
}

#[test]
fn stale_multipliers_are_refused_naming_the_layer_and_channel() {
    let mut m = with_tables();
    if let QLayer::FullyConnected { ref mut params, .. } = m.layers[3] {
        params.multipliers[5] += 1;
    }
    let e = convert(&m).unwrap_err();
    assert!(
        matches!(
            e,
            ConvertError::StaleMultipliers {
                layer: 3,
                channel: 5,
                side: "positive",
                ..
            }
        ),
        "{e:?}"
    );
    let message = e.to_string();
    assert!(message.contains("layer 3 (fully_connected)"), "{message}");
    assert!(message.contains("stored multipliers are not the ones TFLM derives from the scales"));
    assert!(message.contains("run `trainer upgrade` on the model file"));

    // The negative side of a fused layer, held to the fused_negative_scale rule: the older
    // rule (the positive effective scale times the slope) is refused.
    let mut m = fused();
    if let QLayer::FullyConnectedLeakyRelu {
        ref params,
        ref mut negative_multipliers,
        ref mut negative_shifts,
        slope,
        ..
    } = m.layers[1]
    {
        let old: (Vec<i32>, Vec<i32>) = params
            .weight_scales
            .iter()
            .map(|&w| quantize_multiplier(effective_scale(Q1.scale, w, Q2.scale) * f64::from(slope)).unwrap())
            .unzip();
        let differ = old
            .0
            .iter()
            .zip(negative_multipliers.iter())
            .filter(|(a, b)| a != b)
            .count();
        assert!(differ > 0, "the two rules differ somewhere");
        *negative_multipliers = old.0.into();
        *negative_shifts = old.1.iter().map(|&s| s as i8).collect();
    }
    let e = convert(&m).unwrap_err();
    assert!(
        matches!(
            e,
            ConvertError::StaleMultipliers {
                layer: 1,
                side: "negative",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("layer 1 (fully_connected_leaky_relu)"));

    // Shifts count as much as multipliers.
    let mut m = convolutional();
    if let QLayer::Conv2d { ref mut params, .. } = m.layers[0] {
        params.shifts[2] -= 1;
    }
    let e = convert(&m).unwrap_err();
    assert!(
        matches!(
            e,
            ConvertError::StaleMultipliers {
                layer: 0,
                channel: 2,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn stale_tables_are_refused_naming_the_entry() {
    let mut m = with_tables();
    if let QLayer::Table { ref mut table, .. } = m.layers[1] {
        table[200] = table[200].wrapping_add(1);
    }
    let e = convert(&m).unwrap_err();
    assert!(
        matches!(
            e,
            ConvertError::StaleTable {
                layer: 1,
                input: 72,
                ..
            }
        ),
        "{e:?}"
    );
    let message = e.to_string();
    assert!(message.contains("layer 1 (leaky_relu_table)"), "{message}");
    assert!(message.contains("run `trainer upgrade`"), "{message}");

    let mut m = with_tables();
    if let QLayer::Table { ref mut table, .. } = m.layers[4] {
        table[0] = table[0].wrapping_add(1);
    }
    let e = convert(&m).unwrap_err();
    assert!(
        matches!(
            e,
            ConvertError::StaleTable {
                layer: 4,
                input: -128,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn fused_slopes_outside_zero_to_a_half_are_refused() {
    for slope in [0.0, -0.01, 0.6, 1.0, f32::NAN] {
        let mut m = fused();
        if let QLayer::FullyConnectedLeakyRelu { slope: ref mut s, .. } = m.layers[0] {
            *s = slope;
        }
        let message = refusal(&m);
        assert!(
            message.contains("layer 0 (fully_connected_leaky_relu): no exact TFLite form"),
            "{message}"
        );
        assert!(message.contains("slope"), "{message}");
    }
}

#[test]
fn a_logistic_off_tflms_output_quantization_is_refused() {
    let mut m = with_tables();
    if let QLayer::Table { ref mut output, .. } = m.layers[4] {
        output.zero_point = -127;
    }
    let message = refusal(&m);
    assert!(
        message.contains("layer 4 (logistic_table): no exact TFLite form"),
        "{message}"
    );
}

#[test]
fn layers_that_do_not_fit_together_are_refused() {
    let mut m = with_tables();
    if let QLayer::FullyConnected { ref mut params, .. } = m.layers[0] {
        params.weights.pop();
    }
    let e = convert(&m).unwrap_err();
    assert!(matches!(e, ConvertError::Malformed { layer: 0, .. }), "{e:?}");

    let mut m = with_tables();
    if let QLayer::FullyConnected { ref mut inputs, .. } = m.layers[3] {
        *inputs = 17;
    }
    let e = convert(&m).unwrap_err();
    assert!(matches!(e, ConvertError::Malformed { layer: 3, .. }), "{e:?}");

    let mut m = convolutional();
    if let QLayer::MaxPool2d { ref mut channels, .. } = m.layers[2] {
        *channels = 5;
    }
    let e = convert(&m).unwrap_err();
    assert!(matches!(e, ConvertError::Malformed { layer: 2, .. }), "{e:?}");
}

#[test]
fn table_models_are_one_op_on_256_codes() {
    let m = with_tables();
    let bytes = table_model(&m.layers[1], Q1).unwrap();
    let root = Root::new(&bytes);
    let model = root.model();
    assert_eq!(ops(&model), vec![LEAKY_RELU]);
    let graph = model.tables(2)[0];
    let tensors = graph.tables(0);
    let (input, output) = (tensors[graph.i32s(1)[0] as usize], tensors[graph.i32s(2)[0] as usize]);
    assert_eq!(input.i32s(0), vec![1, 256]);
    assert_eq!(output.i32s(0), vec![1, 256]);
    assert_eq!(
        tensor_quant(&input),
        (vec![Q1.scale], vec![i64::from(Q1.zero_point)], 0)
    );
    assert_eq!(
        tensor_quant(&output),
        (vec![Q2.scale], vec![i64::from(Q2.zero_point)], 0)
    );
    assert_eq!(graph.tables(3)[0].table(4).unwrap().f32(0), Some(0.01));

    // The core's Quant works as well as the trainer's.
    let core_quant = autoencoder_core::model::Quant {
        scale: Q3.scale,
        zero_point: Q3.zero_point,
    };
    let bytes = table_model(&m.layers[4], core_quant).unwrap();
    let root = Root::new(&bytes);
    assert_eq!(ops(&root.model()), vec![LOGISTIC]);

    // A stale table still gets its model: that is what the model is for.
    let mut stale = m.layers[1].clone();
    if let QLayer::Table { ref mut table, .. } = stale {
        table[0] = 99;
    }
    assert!(table_model(&stale, Q1).is_ok());

    for layer in [&m.layers[0], &m.layers[2]] {
        let e = table_model(layer, Q1).unwrap_err();
        assert!(matches!(e, ConvertError::TableModel { .. }), "{e:?}");
        assert!(e.to_string().contains(".tflite"));
    }
    assert!(table_model(&m.layers[1], q(0.1, 128)).is_err());
}

#[test]
fn max_of_the_two_sides_is_the_fused_layer() {
    // The identity the fused layers' conversion rests on: for 0 < slope <= 0.5,
    // max(requantize(acc, positive), requantize(acc, negative)) equals the core's fused rule,
    // requantize(acc, acc >= 0 ? positive : negative), where requantize is TFLM's
    // clamp(zp + mbqm(acc, m, shift)) and the negative pair is derived against the output
    // scale divided by the slope.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let requantize =
        |acc: i32, (m, s): (i32, i32), zp: i32| (multiply_by_quantized_multiplier(acc, m, s) + zp).clamp(-128, 127);
    for case in 0..20_000 {
        let slope = match case % 4 {
            0 => 0.5,
            1 => 0.01,
            _ => rng.random_range(1e-3f32..=0.5),
        };
        // Effective scales from 2^-20 to 2: small ones as in the models, large ones where the
        // second rounding step is short or absent.
        let input_scale = rng.random_range(1e-3f32..1e-1);
        let weight_scale = rng.random_range(1e-4f32..1e-1);
        let output_scale = input_scale * weight_scale / 2f32.powf(rng.random_range(-20.0..1.0));
        let zp = rng.random_range(-128..=127);
        let positive = quantize_multiplier(effective_scale(input_scale, weight_scale, output_scale)).unwrap();
        let negative_scale = fused_negative_scale(output_scale, slope);
        let negative = quantize_multiplier(effective_scale(input_scale, weight_scale, negative_scale)).unwrap();
        // Accumulators around where the outputs change: near the multiples of one output step
        // (`step` accumulator units on the positive side, `step / slope` on the negative side).
        let step = f64::from(output_scale) / (f64::from(input_scale) * f64::from(weight_scale));
        for _ in 0..20 {
            let steps = rng.random_range(-300.0..300.0f64);
            let unit = if steps < 0.0 { step / f64::from(slope) } else { step };
            let jitter = rng.random_range(-3..=3);
            let acc = ((steps * unit).round() as i64 + jitter).clamp(-(1 << 24), 1 << 24) as i32;
            let fused = requantize(acc, if acc >= 0 { positive } else { negative }, zp);
            let max = requantize(acc, positive, zp).max(requantize(acc, negative, zp));
            assert_eq!(
                max, fused,
                "case {case}: acc {acc}, slope {slope}, positive {positive:?}, negative {negative:?}, zp {zp}"
            );
        }
        // And every small accumulator.
        for acc in -64..=64 {
            let fused = requantize(acc, if acc >= 0 { positive } else { negative }, zp);
            let max = requantize(acc, positive, zp).max(requantize(acc, negative, zp));
            assert_eq!(max, fused, "case {case}: acc {acc}, slope {slope}");
        }
    }
}

#[test]
fn a_model_of_any_shape_converts_with_its_own_input_quantization() {
    // Six sensor values, min-max scaled, input zero point 7: the encoder takes the quantized
    // input, [1, 6], with the model's scale and zero point; the decoder gives 6 values.
    let rng = &mut ChaCha8Rng::seed_from_u64(9);
    let input = q(0.05, 7);
    let mut m = model("sensors", 1, vec![fc(rng, 6, 2, input, Q1), fc(rng, 2, 6, Q1, Q3)]);
    m.input_shape = vec![2, 3].into();
    m.input_scaling = InputScaling::MinMax {
        offset: vec![0.5; 6].into(),
        divisor: vec![3.0; 6].into(),
    };
    m.input = input;
    m.to_bytes().expect("a valid model file");
    let c = convert(&m).unwrap();
    let root = Root::new(&c.encoder);
    let enc = root.model();
    let description = enc.string(3).unwrap();
    assert!(
        description.contains("the 6 int8 input values") && description.contains("min-max"),
        "{description}"
    );
    let graph = enc.tables(2)[0];
    let input_tensor = graph.tables(0)[graph.i32s(1)[0] as usize];
    assert_eq!(input_tensor.i32s(0), vec![1, 6]);
    assert_eq!(tensor_quant(&input_tensor), (vec![0.05], vec![7], 0));
    let root = Root::new(&c.decoder);
    let dec = root.model();
    let graph = dec.tables(2)[0];
    let output = graph.tables(0)[graph.i32s(2)[0] as usize];
    assert_eq!(output.i32s(0), vec![1, 6]);

    // A convolutional model of 10 x 10 x 3 images takes them as [1, 10, 10, 3].
    let input = q(0.02, -3);
    let conv = QLayer::Conv2d {
        height: 10,
        width: 10,
        in_channels: 3,
        out_channels: 2,
        kernel: 3,
        params: weights(rng, 2, 27, input, Q1),
    };
    let mut m = model("rgb", 1, vec![conv, fc(rng, 128, 300, Q1, Q3)]);
    m.input_shape = vec![10, 10, 3].into();
    m.input_scaling = InputScaling::None;
    m.input = input;
    m.to_bytes().expect("a valid model file");
    let c = convert(&m).unwrap();
    let root = Root::new(&c.encoder);
    let enc = root.model();
    assert_eq!(ops(&enc), vec![CONV_2D, RESHAPE]);
    let graph = enc.tables(2)[0];
    let input_tensor = graph.tables(0)[graph.i32s(1)[0] as usize];
    assert_eq!(input_tensor.i32s(0), vec![1, 10, 10, 3]);
    assert_eq!(tensor_quant(&input_tensor), (vec![0.02], vec![-3], 0));
}

#[test]
fn float_models_are_one_quantize_or_dequantize_between_float32_and_int8() {
    const QUANTIZE: i32 = 114;
    const DEQUANTIZE: i32 = 6;
    const FLOAT32: i8 = 0;
    for (op, code) in [(FloatOp::Quantize, QUANTIZE), (FloatOp::Dequantize, DEQUANTIZE)] {
        let bytes = float_model(op, 5, q(0.25, -7)).unwrap();
        let root = Root::new(&bytes);
        let m = root.model();
        assert_eq!(ops(&m), vec![code]);
        let graph = m.tables(2)[0];
        let tensors = graph.tables(0);
        let (input, output) = (tensors[graph.i32s(1)[0] as usize], tensors[graph.i32s(2)[0] as usize]);
        let (float, int8) = if op == FloatOp::Quantize {
            (input, output)
        } else {
            (output, input)
        };
        assert_eq!(float.i8(1).unwrap_or(FLOAT32), FLOAT32);
        assert!(float.table(4).is_none(), "the float side has no quantization");
        assert_eq!(int8.i8(1), Some(INT8));
        assert_eq!(tensor_quant(&int8), (vec![0.25], vec![-7], 0));
        assert_eq!((input.i32s(0), output.i32s(0)), (vec![1, 5], vec![1, 5]));
    }
    assert!(float_model(FloatOp::Quantize, 5, q(0.25, 128)).is_err());
}
