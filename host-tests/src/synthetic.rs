//! Valid model files with random parameters, shaped like the project's variants, to test the
//! firmware and the harness on every layer type whatever models are shipped; and one that is no
//! MNIST model at all ([`Shape::Sensor`]: 64 standardized float readings, a fused LeakyReLU
//! layer, a linear output).
//!
//! The scales are chosen so that activations spread over the int8 range and some saturate; the
//! effective requantization scale of each output channel is drawn from a range, so multipliers
//! and shifts vary too.

use autoencoder_core::model::{
    encoded_len_bound, write, Activation, Anomaly, InputScaling, Layer, ModelBody, ModelKind, Quant, Weights,
};
use autoencoder_core::table_s8::{leaky_relu_table, logistic_table};
use autoencoder_core::{quantize_multiplier, Conv2dGeometry, PIXELS};

/// A dimension of a synthetic layer as the model file holds it.
fn narrow(n: usize) -> u16 {
    u16::try_from(n).expect("a synthetic layer's dimensions fit u16")
}

/// The shapes [`model`] can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `fc`: 784-64-784, LeakyReLU tables.
    Fc,
    /// `topk16` with sigmoid outputs: 784-64, LeakyReLU, top-16, 64-784, logistic table.
    TopK,
    /// `deep`: 784-128-64-128-784 (two channel chunks in the 128-wide layers).
    Deep,
    /// `conv`: four 6x6 convolutions (1→8→8→8→8), 2x2 max-pool to 128 codes, 128-784.
    Conv,
    /// Not MNIST: 64 float readings (input shape `[64]`) with `Standard` scaling (a mean and a
    /// standard deviation per feature) and an input zero point of 17; 64-32 with a fused
    /// LeakyReLU, 32-16 and a LeakyReLU table to the code, 16-32 fused, 32-64 linear.
    Sensor,
    /// MLPerf Tiny's anomaly-detection autoencoder (its dense shape, not its weights):
    /// 640-128-128-128-128-8-128-128-128-128-640, every layer but the last with a fused ReLU (a
    /// fused LeakyReLU of slope 0), 264,192 multiply-accumulates per inference. It takes 640
    /// values as u8 (`Unit` scaling, input shape `[640]`).
    MlperfAnomaly,
}

impl Shape {
    /// Every shape.
    pub const ALL: [Shape; 6] = [
        Shape::Fc,
        Shape::TopK,
        Shape::Deep,
        Shape::Conv,
        Shape::Sensor,
        Shape::MlperfAnomaly,
    ];

    /// The shapes that take MNIST's 784 pixels as u8 (`Unit` scaling, scale 1/255, zero point
    /// -128).
    pub const MNIST: [Shape; 4] = [Shape::Fc, Shape::TopK, Shape::Deep, Shape::Conv];

    /// A short name (`synthetic-fc`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Shape::Fc => "synthetic-fc",
            Shape::TopK => "synthetic-topk",
            Shape::Deep => "synthetic-deep",
            Shape::Conv => "synthetic-conv",
            Shape::Sensor => "synthetic-sensor",
            Shape::MlperfAnomaly => "synthetic-mlperf-anomaly",
        }
    }

    /// The shape called `name` (as [`Shape::name`] or without the `synthetic-` prefix).
    pub fn from_name(name: &str) -> Option<Shape> {
        Shape::ALL
            .into_iter()
            .find(|s| s.name() == name || s.name().strip_prefix("synthetic-") == Some(name))
    }
}

/// The core's SplitMix64, seeded: small, good enough for test parameters.
type Rng = autoencoder_core::testutil::SplitMix64;

/// The arrays of one weighted layer, owned until the body borrows them.
struct Params {
    weights: Vec<u8>,
    weight_scales: Vec<u8>,
    bias: Vec<u8>,
    multipliers: Vec<u8>,
    shifts: Vec<u8>,
    output: Quant,
}

impl Params {
    /// `channels` output channels of `fan_in` weights each; `spread` is the expected magnitude
    /// of an accumulator, which the requantization maps to about 48 output steps.
    fn new(rng: &mut Rng, channels: usize, fan_in: usize, spread: f64) -> Params {
        let weights = (0..channels * fan_in)
            .map(|_| rng.range_i32(-127, 127) as i8 as u8)
            .collect();
        let mut p = Params {
            weights,
            weight_scales: Vec::new(),
            bias: Vec::new(),
            multipliers: Vec::new(),
            shifts: Vec::new(),
            output: Quant {
                scale: 0.05,
                zero_point: rng.range_i32(-30, 30),
            },
        };
        for _ in 0..channels {
            p.weight_scales.extend(0.01f32.to_le_bytes());
            let bias = rng.range_i32(-(spread as i32), spread as i32);
            p.bias.extend(bias.to_le_bytes());
            // Effective scale 48 / spread, times 2^[-1.5, 1.5].
            let scale = 48.0 / spread * 2f64.powf(3.0 * rng.next_f64() - 1.5);
            let (multiplier, shift) = quantize_multiplier(scale).expect("a valid scale");
            p.multipliers.extend(multiplier.to_le_bytes());
            p.shifts.push(shift as i8 as u8);
        }
        p
    }

    fn weights(&self) -> Weights<'_> {
        Weights {
            weights: &self.weights,
            weight_scales: &self.weight_scales,
            bias: &self.bias,
            multipliers: &self.multipliers,
            shifts: &self.shifts,
            output: self.output,
        }
    }
}

/// A table layer's owned entries.
struct TableParams {
    activation: Activation,
    table: Vec<u8>,
    output: Quant,
}

impl TableParams {
    /// LeakyReLU (slope 0.01) of an input quantized as `input`; the output's zero point is
    /// `out_zero_point`.
    fn leaky(input: Quant, out_zero_point: i32) -> TableParams {
        let output = Quant {
            scale: input.scale,
            zero_point: out_zero_point,
        };
        let table = leaky_relu_table(0.01, input.scale, input.zero_point, output.scale, output.zero_point)
            .expect("valid LeakyReLU quantization");
        TableParams {
            activation: Activation::LeakyRelu { slope: 0.01 },
            table: table.entries().iter().map(|&e| e as u8).collect(),
            output,
        }
    }

    fn logistic(input: Quant) -> TableParams {
        let table = logistic_table(input.scale, input.zero_point).expect("valid logistic quantization");
        TableParams {
            activation: Activation::Logistic,
            table: table.entries().iter().map(|&e| e as u8).collect(),
            output: Quant {
                scale: 1.0 / 256.0,
                zero_point: -128,
            },
        }
    }

    fn layer(&self) -> Layer<'_> {
        Layer::Table {
            activation: self.activation,
            table: &self.table,
            output: self.output,
        }
    }
}

/// One layer of a synthetic model, owning its arrays.
enum Owned {
    Fc {
        inputs: u32,
        outputs: u32,
        params: Params,
    },
    Conv {
        geometry: Conv2dGeometry,
        params: Params,
    },
    /// A convolution with a fused LeakyReLU, its negative side as in [`Owned::FcLeaky`].
    ConvLeaky {
        geometry: Conv2dGeometry,
        slope: f32,
        params: Params,
        negative_multipliers: Vec<u8>,
        negative_shifts: Vec<u8>,
    },
    Pool {
        side: u16,
        channels: u16,
    },
    Table(TableParams),
    TopK(u32),
    /// A fully connected layer with a fused LeakyReLU: `params` requantize accumulators >= 0,
    /// the negative pair those below 0.
    FcLeaky {
        inputs: u32,
        outputs: u32,
        slope: f32,
        params: Params,
        negative_multipliers: Vec<u8>,
        negative_shifts: Vec<u8>,
    },
}

/// A fully connected layer with a fused LeakyReLU of `slope` (0: a ReLU): the negative side's
/// requantization is the positive side's times the slope (up to the multipliers' rounding), as
/// `fused_negative_scale` makes it.
fn fused(inputs: usize, outputs: usize, slope: f32, params: Params) -> Owned {
    let (negative_multipliers, negative_shifts) = negative_side(&params, slope);
    Owned::FcLeaky {
        inputs: inputs as u32,
        outputs: outputs as u32,
        slope,
        params,
        negative_multipliers,
        negative_shifts,
    }
}

/// The negative side's multipliers and shifts of a fused LeakyReLU of `slope` over `params`.
fn negative_side(params: &Params, slope: f32) -> (Vec<u8>, Vec<u8>) {
    let (mut negative_multipliers, mut negative_shifts) = (Vec::new(), Vec::new());
    for (m, &s) in params.multipliers.chunks_exact(4).zip(&params.shifts) {
        let positive =
            f64::from(i32::from_le_bytes(m.try_into().expect("4 bytes"))) * 2f64.powi(i32::from(s as i8) - 31);
        let (multiplier, shift) = quantize_multiplier(positive * f64::from(slope)).expect("a valid scale");
        negative_multipliers.extend(multiplier.to_le_bytes());
        negative_shifts.push(shift as i8 as u8);
    }
    (negative_multipliers, negative_shifts)
}

/// A square convolution of `CONV_CHANNELS` filters of side `KERNEL`, as the `conv` variant's.
fn square(side: u16, in_channels: u16) -> Conv2dGeometry {
    Conv2dGeometry {
        height: usize::from(side),
        width: usize::from(side),
        in_channels: usize::from(in_channels),
        out_channels: usize::from(CONV_CHANNELS),
        kernel: usize::from(KERNEL),
    }
}

/// MNIST's input shape, 28 x 28, as the model file stores it (u32 little-endian).
const MNIST_SHAPE: [u8; 8] = [28, 0, 0, 0, 28, 0, 0, 0];

/// Readings of [`Shape::Sensor`]'s input.
pub const SENSOR_FEATURES: usize = 64;

/// [`Shape::Sensor`]'s input quantization: 255 steps over about [-4.5, 3.5] standard deviations,
/// zero point 17 (not MNIST's -128).
pub const SENSOR_INPUT: Quant = Quant {
    scale: 0.031_4,
    zero_point: 17,
};

/// The widths of [`Shape::MlperfAnomaly`], input to output.
pub const MLPERF_ANOMALY_WIDTHS: [usize; 11] = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640];

/// The negative slope of [`Shape::Sensor`]'s fused LeakyReLU layers.
const SENSOR_SLOPE: f32 = 0.1;

/// Output channels of the synthetic convolutions.
const CONV_CHANNELS: u16 = 8;
/// Kernel side of the synthetic convolutions.
const KERNEL: u16 = 6;

/// A valid model file of the given shape, its parameters drawn from `seed`.
pub fn model(shape: Shape, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ 0x5eed_ae08);
    // Accumulator magnitudes: MNIST images have ~150 lit pixels (255 steps above the zero point),
    // hidden activations are spread over the int8 range.
    let image_spread = 150f64.sqrt() * 73.0 * 255.0;
    let hidden_spread = |fan_in: usize| (fan_in as f64).sqrt() * 73.0 * 90.0;
    let mut layers = Vec::new();
    let fc = |layers: &mut Vec<Owned>, rng: &mut Rng, inputs: usize, outputs: usize, spread: f64| {
        let params = Params::new(rng, outputs, inputs, spread);
        let quant = params.output;
        layers.push(Owned::Fc {
            inputs: inputs as u32,
            outputs: outputs as u32,
            params,
        });
        quant
    };
    let fc_leaky = |layers: &mut Vec<Owned>, rng: &mut Rng, inputs: usize, outputs: usize, spread: f64| {
        let params = Params::new(rng, outputs, inputs, spread);
        layers.push(fused(inputs, outputs, SENSOR_SLOPE, params));
    };
    let pixel_zero_point = -128;
    let code_after = match shape {
        Shape::Fc => {
            let q = fc(&mut layers, &mut rng, PIXELS, 64, image_spread);
            layers.push(Owned::Table(TableParams::leaky(q, -100)));
            let q = fc(&mut layers, &mut rng, 64, PIXELS, hidden_spread(64));
            layers.push(Owned::Table(TableParams::leaky(q, pixel_zero_point)));
            2
        }
        Shape::TopK => {
            let q = fc(&mut layers, &mut rng, PIXELS, 64, image_spread);
            layers.push(Owned::Table(TableParams::leaky(q, -110)));
            layers.push(Owned::TopK(16));
            let q = fc(&mut layers, &mut rng, 64, PIXELS, hidden_spread(16));
            layers.push(Owned::Table(TableParams::logistic(q)));
            3
        }
        Shape::Deep => {
            let q = fc(&mut layers, &mut rng, PIXELS, 128, image_spread);
            layers.push(Owned::Table(TableParams::leaky(q, -90)));
            let q = fc(&mut layers, &mut rng, 128, 64, hidden_spread(128));
            layers.push(Owned::Table(TableParams::leaky(q, -100)));
            let q = fc(&mut layers, &mut rng, 64, 128, hidden_spread(64));
            layers.push(Owned::Table(TableParams::leaky(q, -90)));
            let q = fc(&mut layers, &mut rng, 128, PIXELS, hidden_spread(128));
            layers.push(Owned::Table(TableParams::leaky(q, pixel_zero_point)));
            4
        }
        Shape::Conv => {
            let mut side = 28u16;
            let mut in_channels = 1u16;
            for _ in 0..4 {
                let fan_in = usize::from(KERNEL * KERNEL * in_channels);
                let spread = if in_channels == 1 {
                    (fan_in as f64 / 5.0).sqrt() * 73.0 * 255.0
                } else {
                    hidden_spread(fan_in)
                };
                let params = Params::new(&mut rng, usize::from(CONV_CHANNELS), fan_in, spread);
                let q = params.output;
                layers.push(Owned::Conv {
                    geometry: square(side, in_channels),
                    params,
                });
                layers.push(Owned::Table(TableParams::leaky(q, -100)));
                side = side - KERNEL + 1;
                in_channels = CONV_CHANNELS;
            }
            layers.push(Owned::Pool {
                side,
                channels: CONV_CHANNELS,
            });
            let codes = usize::from(side / 2) * usize::from(side / 2) * usize::from(CONV_CHANNELS);
            let q = fc(&mut layers, &mut rng, codes, PIXELS, hidden_spread(codes));
            layers.push(Owned::Table(TableParams::leaky(q, pixel_zero_point)));
            9
        }
        Shape::Sensor => {
            // Standardized readings are mostly within 3 deviations: about 32 steps each.
            let input_spread = (SENSOR_FEATURES as f64).sqrt() * 73.0 * 32.0 * 3.0;
            fc_leaky(&mut layers, &mut rng, SENSOR_FEATURES, 32, input_spread);
            let q = fc(&mut layers, &mut rng, 32, 16, hidden_spread(32));
            layers.push(Owned::Table(TableParams::leaky(q, -20)));
            fc_leaky(&mut layers, &mut rng, 16, 32, hidden_spread(16));
            fc(&mut layers, &mut rng, 32, SENSOR_FEATURES, hidden_spread(32));
            3
        }
        Shape::MlperfAnomaly => {
            // Random u8 values: 147 steps above the zero point (root mean square).
            let input_spread = (MLPERF_ANOMALY_WIDTHS[0] as f64).sqrt() * 73.0 * 147.0;
            let last = MLPERF_ANOMALY_WIDTHS.len() - 2;
            for (i, pair) in MLPERF_ANOMALY_WIDTHS.windows(2).enumerate() {
                let (inputs, outputs) = (pair[0], pair[1]);
                let spread = if i == 0 { input_spread } else { hidden_spread(inputs) };
                if i == last {
                    fc(&mut layers, &mut rng, inputs, outputs, spread);
                } else {
                    let params = Params::new(&mut rng, outputs, inputs, spread);
                    layers.push(fused(inputs, outputs, 0.0, params));
                }
            }
            5
        }
    };

    // Each reading's mean in [-100, 300] and standard deviation in [0.05, 50] (log-uniform).
    let (mut offset, mut divisor) = (Vec::new(), Vec::new());
    if shape == Shape::Sensor {
        for _ in 0..SENSOR_FEATURES {
            offset.extend(((rng.next_f64() * 400.0 - 100.0) as f32).to_le_bytes());
            divisor.extend(((0.05 * 1000f64.powf(rng.next_f64())) as f32).to_le_bytes());
        }
    }
    let sensor_shape = (SENSOR_FEATURES as u32).to_le_bytes();
    let mlperf_shape = (MLPERF_ANOMALY_WIDTHS[0] as u32).to_le_bytes();
    let (input_shape, input_scaling, input) = match shape {
        Shape::Sensor => (
            &sensor_shape[..],
            InputScaling::Standard {
                offset: &offset[..],
                divisor: &divisor[..],
            },
            SENSOR_INPUT,
        ),
        Shape::MlperfAnomaly => (
            &mlperf_shape[..],
            InputScaling::Unit,
            Quant {
                scale: 1.0 / 255.0,
                zero_point: -128,
            },
        ),
        _ => (
            &MNIST_SHAPE[..],
            InputScaling::Unit,
            Quant {
                scale: 1.0 / 255.0,
                zero_point: -128,
            },
        ),
    };
    let kind = match shape {
        Shape::Conv => ModelKind::Convolutional,
        _ => ModelKind::FullyConnected,
    };
    write_model(
        shape.name(),
        kind,
        Input {
            shape: input_shape,
            scaling: input_scaling,
            quant: input,
        },
        code_after,
        &layers,
    )
}

/// A model's input: its shape (u32 little-endian), scaling and quantization.
struct Input<'a> {
    shape: &'a [u8],
    scaling: InputScaling<'a>,
    quant: Quant,
}

/// The model file of `layers` (the code after layer `code_after`).
fn write_model<'a>(name: &'a str, kind: ModelKind, input: Input<'a>, code_after: u16, layers: &'a [Owned]) -> Vec<u8> {
    let mut body = ModelBody {
        name,
        source: "",
        float_test_mse: f32::NAN,
        input_shape: input.shape,
        input_scaling: input.scaling,
        input: input.quant,
        code_after,
        layers: heapless::Vec::new(),
        anomaly: Anomaly::derive(input.quant, input.quant).expect("a valid input quantization"),
    };
    for layer in layers {
        let layer = match layer {
            Owned::Fc {
                inputs,
                outputs,
                params,
            } => Layer::FullyConnected {
                inputs: *inputs,
                outputs: *outputs,
                params: params.weights(),
            },
            Owned::Conv { geometry, params } => Layer::Conv2d {
                height: narrow(geometry.height),
                width: narrow(geometry.width),
                in_channels: narrow(geometry.in_channels),
                out_channels: narrow(geometry.out_channels),
                kernel: narrow(geometry.kernel),
                params: params.weights(),
            },
            Owned::ConvLeaky {
                geometry,
                slope,
                params,
                negative_multipliers,
                negative_shifts,
            } => Layer::Conv2dLeakyRelu {
                height: narrow(geometry.height),
                width: narrow(geometry.width),
                in_channels: narrow(geometry.in_channels),
                out_channels: narrow(geometry.out_channels),
                kernel: narrow(geometry.kernel),
                slope: *slope,
                params: params.weights(),
                negative_multipliers,
                negative_shifts,
            },
            Owned::Pool { side, channels } => Layer::MaxPool2d {
                height: *side,
                width: *side,
                channels: *channels,
            },
            Owned::Table(table) => table.layer(),
            Owned::TopK(k) => Layer::TopK { k: *k },
            Owned::FcLeaky {
                inputs,
                outputs,
                slope,
                params,
                negative_multipliers,
                negative_shifts,
            } => Layer::FullyConnectedLeakyRelu {
                inputs: *inputs,
                outputs: *outputs,
                slope: *slope,
                params: params.weights(),
                negative_multipliers,
                negative_shifts,
            },
        };
        body.layers.push(layer).expect("at most MAX_LAYERS layers");
    }
    body.anomaly = Anomaly::of(&body).expect("a valid output quantization");
    let mut out = vec![0u8; encoded_len_bound(&body)];
    let len = write(kind, &body, &mut out).expect("a synthetic model is valid");
    out.truncate(len);
    out
}

/// Widths that reach every edge of the fully connected kernels: 1-wide, fewer than 4, not a
/// multiple of 4 (odd and even), multiples of 4, and more than 1024 (wider than the DSP path's
/// packed inputs).
pub const EDGE_WIDTHS: [usize; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 30, 33, 64, 67, 130, 1030];

/// Zero points: both ends of int8 and a few between.
pub const EDGE_ZERO_POINTS: [i32; 5] = [-128, 127, -1, 0, 37];

/// A random stack of fully connected layers, from `seed`, to hold the fully connected kernels
/// to the host at their edges: widths from [`EDGE_WIDTHS`] (the input's, whose `N` values are
/// raw f32 with no scaling, is width `seed mod 16`), two to four layers, each plain, plain with a LeakyReLU table, or
/// with a fused LeakyReLU (slope 0, 0.1 or 0.5); input and output zero points from
/// [`EDGE_ZERO_POINTS`]; in about half of the layers, weights of -128 (one whole row and one
/// weight in eight) and channels whose requantization has the extreme shifts -31 and 30 or a
/// zero multiplier.
pub fn random_dense(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ 0xd5b0_0de5);
    let pick = |rng: &mut Rng, n: usize| rng.below(n as u64) as usize;
    let edge_width = |rng: &mut Rng| EDGE_WIDTHS[pick(rng, EDGE_WIDTHS.len())];
    let edge_zero_point = |rng: &mut Rng| EDGE_ZERO_POINTS[pick(rng, EDGE_ZERO_POINTS.len())];
    // The widest only now and then: its QEMU time.
    let narrow = |rng: &mut Rng| loop {
        let w = edge_width(rng);
        if w < 1000 || rng.below(4) == 0 {
            break w;
        }
    };
    // The input (and output) width goes through the list with the seed: any 16 seeds in a row
    // give every width to a first layer's inputs.
    let n = EDGE_WIDTHS[(seed % EDGE_WIDTHS.len() as u64) as usize];
    let depth = 2 + pick(&mut rng, 3);
    let mut widths = vec![n];
    widths.extend((1..depth).map(|_| narrow(&mut rng)));
    widths.push(n);
    let input = Quant {
        scale: 0.05,
        zero_point: edge_zero_point(&mut rng),
    };
    let mut layers = Vec::new();
    let mut code_after = 0;
    for (i, pair) in widths.windows(2).enumerate() {
        let (inputs, outputs) = (pair[0], pair[1]);
        let extreme = rng.below(2) == 0;
        let mut params = Params::new(&mut rng, outputs, inputs, (inputs as f64).sqrt() * 73.0 * 128.0);
        params.output.zero_point = edge_zero_point(&mut rng);
        if extreme {
            make_extreme(&mut rng, &mut params, inputs);
        }
        match rng.below(3) {
            0 => layers.push(Owned::Fc {
                inputs: inputs as u32,
                outputs: outputs as u32,
                params,
            }),
            1 => {
                let q = params.output;
                layers.push(Owned::Fc {
                    inputs: inputs as u32,
                    outputs: outputs as u32,
                    params,
                });
                layers.push(Owned::Table(TableParams::leaky(q, edge_zero_point(&mut rng))));
            }
            _ => {
                let slope = [0.0, 0.1, 0.5][pick(&mut rng, 3)];
                layers.push(fused(inputs, outputs, slope, params));
            }
        }
        if i + 1 == depth / 2 {
            code_after = layers.len() as u16;
        }
    }
    let shape = (n as u32).to_le_bytes();
    let input = Input {
        shape: &shape,
        scaling: InputScaling::None,
        quant: input,
    };
    write_model("synthetic-dense", ModelKind::FullyConnected, input, code_after, &layers)
}

/// Puts the kernels' extremes into `params` (rows of `fan_in` weights): the whole first row and
/// one weight in eight of -128, and channels whose requantization has the shift -31 or 30 or a
/// zero multiplier.
fn make_extreme(rng: &mut Rng, params: &mut Params, fan_in: usize) {
    for (j, w) in params.weights.iter_mut().enumerate() {
        if j < fan_in || rng.below(8) == 0 {
            *w = -128i8 as u8;
        }
    }
    for c in 0..params.shifts.len() {
        let (multiplier, shift) = match rng.below(4) {
            0 => ((1 << 30) + rng.below(1 << 30) as i32, -31),
            1 => ((1 << 30) + rng.below(1 << 30) as i32, 30),
            2 => (0, 0),
            _ => continue,
        };
        params.multipliers[4 * c..4 * c + 4].copy_from_slice(&multiplier.to_le_bytes());
        params.shifts[c] = shift as i8 as u8;
    }
}

/// Input channels of [`random_conv`]'s first convolution: one, fewer than 4, not a multiple of
/// 4, multiples of 4, and 32 (with a 6 x 6 kernel, a window of 1,152 values: wider than the DSP
/// path's packed inputs).
pub const CONV_EDGE_CHANNELS: [usize; 7] = [1, 2, 3, 4, 5, 8, 32];

/// A random convolutional model, from `seed`, to hold the convolutions to the host at their
/// edges: a first convolution of [`CONV_EDGE_CHANNELS`]`[seed mod 7]` input channels, a kernel
/// of 1 to 6 (6 for 32 channels), 1 to 9 filters (a last pass of one to three filters), input
/// sides of the kernel to the kernel + 5 (so window rows of whole groups of four values and
/// not); sometimes a second convolution; each plain, plain with a LeakyReLU table, or with a
/// fused LeakyReLU (slope 0, 0.1 or 0.5); then a fully connected layer back to the input's
/// values (raw f32, no scaling). Zero points from [`EDGE_ZERO_POINTS`]; in about half of the
/// convolutions, weights of -128 and the extreme shifts, as [`random_dense`].
pub fn random_conv(seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ 0xc0_2d5e);
    let pick = |rng: &mut Rng, n: usize| rng.below(n as u64) as usize;
    let edge_zero_point = |rng: &mut Rng| EDGE_ZERO_POINTS[pick(rng, EDGE_ZERO_POINTS.len())];
    let in_channels = CONV_EDGE_CHANNELS[(seed % CONV_EDGE_CHANNELS.len() as u64) as usize];
    let kernel = if in_channels > 8 { 6 } else { 1 + pick(&mut rng, 6) };
    let (height, width) = if in_channels > 8 {
        (6, 6)
    } else {
        (kernel + pick(&mut rng, 6), kernel + pick(&mut rng, 6))
    };
    let n = height * width * in_channels;
    let input = Quant {
        scale: 0.05,
        zero_point: edge_zero_point(&mut rng),
    };
    let mut layers = Vec::new();
    let mut geometry = Conv2dGeometry {
        height,
        width,
        in_channels,
        out_channels: 1 + pick(&mut rng, 9),
        kernel,
    };
    let convolutions = if geometry.output_height().unwrap() > 1 && rng.below(2) == 0 {
        2
    } else {
        1
    };
    for i in 0..convolutions {
        if i > 0 {
            let (h, w) = (geometry.output_height().unwrap(), geometry.output_width().unwrap());
            geometry = Conv2dGeometry {
                height: h,
                width: w,
                in_channels: geometry.out_channels,
                out_channels: 1 + pick(&mut rng, 9),
                kernel: 1 + pick(&mut rng, h.min(w)),
            };
        }
        let fan_in = geometry.kernel * geometry.kernel * geometry.in_channels;
        let spread = (fan_in as f64).sqrt() * 73.0 * 128.0;
        let mut params = Params::new(&mut rng, geometry.out_channels, fan_in, spread);
        params.output.zero_point = edge_zero_point(&mut rng);
        if rng.below(2) == 0 {
            make_extreme(&mut rng, &mut params, fan_in);
        }
        match rng.below(3) {
            0 => layers.push(Owned::Conv { geometry, params }),
            1 => {
                let q = params.output;
                layers.push(Owned::Conv { geometry, params });
                layers.push(Owned::Table(TableParams::leaky(q, edge_zero_point(&mut rng))));
            }
            _ => {
                let slope = [0.0, 0.1, 0.5][pick(&mut rng, 3)];
                let (negative_multipliers, negative_shifts) = negative_side(&params, slope);
                layers.push(Owned::ConvLeaky {
                    geometry,
                    slope,
                    params,
                    negative_multipliers,
                    negative_shifts,
                });
            }
        }
    }
    let code_after = layers.len() as u16;
    let codes = geometry.output_len().unwrap();
    let mut params = Params::new(&mut rng, n, codes, (codes as f64).sqrt() * 73.0 * 90.0);
    params.output.zero_point = edge_zero_point(&mut rng);
    layers.push(Owned::Fc {
        inputs: codes as u32,
        outputs: n as u32,
        params,
    });
    let shape: Vec<u8> = [height, width, in_channels]
        .iter()
        .flat_map(|&d| (d as u32).to_le_bytes())
        .collect();
    let input = Input {
        shape: &shape,
        scaling: InputScaling::None,
        quant: input,
    };
    write_model(
        "synthetic-conv-edges",
        ModelKind::Convolutional,
        input,
        code_after,
        &layers,
    )
}
