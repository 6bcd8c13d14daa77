//! A model: a chain of layers over a store of named parameter tensors.
//!
//! Layers refer to parameters by index, so one weight can serve two layers: the tied decoder is
//! a [`Layer::Linear`] that uses the encoder's weight transposed. [`Model::untie`] gives each
//! such layer its own copy.

use crate::layers::conv2d::Conv2dGeometry;
use crate::layers::leaky_relu;
use crate::layers::lifetime_topk::LifetimeTopK;
use crate::layers::max_pool::MaxPoolGeometry;
use crate::layers::whole_batch::BatchMask;
use ndarray::Array2;
use rand::distr::{Distribution, Uniform};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One layer of the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Layer {
    /// `y = x·Wᵀ + b`. `weight` is stored `(O, I)`, or `(I, O)` and used transposed when
    /// `transposed` (a tied decoder reusing an encoder weight). `bias` is stored `(1, O)`.
    Linear {
        /// Index of the weight in [`Model::params`].
        weight: usize,
        /// Index of the bias in [`Model::params`].
        bias: usize,
        /// Use the stored weight transposed.
        transposed: bool,
    },
    /// LeakyReLU with this negative slope.
    LeakyRelu {
        /// Slope for negative inputs.
        slope: f32,
    },
    /// Logistic sigmoid.
    Sigmoid,
    /// Per sample, keep the `k` largest values and zero the rest.
    TopK {
        /// Values kept per sample.
        k: usize,
    },
    /// Per unit, keep the `ceil(fraction · batch size)` largest values across the batch (all of
    /// a smaller last batch's; training only, the identity at evaluation).
    LifetimeTopK {
        /// Fraction of the batch kept per unit.
        fraction: f64,
    },
    /// 2-D convolution on rows of `(C, H, W)`; weight `(O, C·k·k)`, bias `(1, O)`.
    Conv2d {
        /// Index of the weight in [`Model::params`].
        weight: usize,
        /// Index of the bias in [`Model::params`].
        bias: usize,
        /// Shapes.
        geometry: Conv2dGeometry,
    },
    /// 2x2 max-pooling with stride 2 on rows of `(C, H, W)`.
    MaxPool2d {
        /// Shapes.
        geometry: MaxPoolGeometry,
    },
}

impl Layer {
    /// Whether the layer's forward pass needs every row of the batch at once.
    pub fn couples_batch(&self) -> bool {
        self.batch_mask().is_some()
    }

    /// How the layer chooses its mask over the whole batch, if its forward pass needs every row
    /// of the batch at once (lifetime top-k).
    pub fn batch_mask(&self) -> Option<Box<dyn BatchMask>> {
        match *self {
            Layer::LifetimeTopK { fraction } => Some(Box::new(LifetimeTopK { fraction })),
            _ => None,
        }
    }

    /// Whether the layer keeps a 0/1 mask between forward and backward.
    pub fn has_mask(&self) -> bool {
        matches!(self, Layer::TopK { .. } | Layer::LifetimeTopK { .. })
    }
}

/// A named parameter tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// Name, e.g. `enc.weight`.
    pub name: String,
    /// Value; biases are `(1, O)`.
    pub value: Array2<f32>,
    /// A frozen parameter is not updated and keeps no optimiser state.
    pub frozen: bool,
}

impl Param {
    /// A trainable parameter.
    pub fn new(name: impl Into<String>, value: Array2<f32>) -> Param {
        Param {
            name: name.into(),
            value,
            frozen: false,
        }
    }
}

/// A chain of layers; `layers[..code_after]` is the encoder, whose output is the code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Input width (D).
    pub input: usize,
    /// The layers, in order.
    pub layers: Vec<Layer>,
    /// The parameter store.
    pub params: Vec<Param>,
    /// Number of layers that make up the encoder.
    pub code_after: usize,
}

/// Uniform in ±1/√fan_in, PyTorch's `nn.Linear` default for weights and biases.
pub(crate) fn init(rng: &mut impl Rng, shape: (usize, usize), fan_in: usize) -> Array2<f32> {
    let bound = 1.0 / (fan_in as f32).sqrt();
    let dist = Uniform::new_inclusive(-bound, bound).expect("finite bound");
    Array2::from_shape_simple_fn(shape, || dist.sample(rng))
}

impl Model {
    /// The tutorial's fully connected autoencoder `D-K-D` with LeakyReLU after both layers and
    /// the decoder tied to the encoder's weight.
    pub fn fc_tied(input: usize, code: usize, rng: &mut impl Rng) -> Model {
        Model::tied(
            input,
            code,
            Layer::LeakyRelu {
                slope: leaky_relu::SLOPE,
            },
            &[],
            rng,
        )
    }

    /// A tied `D-K-D` autoencoder: `Linear, activation, sparsity..., Linearᵀ, activation`. The
    /// code is the output of the last sparsity layer when there are any, else of the activation.
    pub fn tied(input: usize, code: usize, activation: Layer, sparsity: &[Layer], rng: &mut impl Rng) -> Model {
        let params = vec![
            Param::new("enc.weight", init(rng, (code, input), input)),
            Param::new("enc.bias", init(rng, (1, code), input)),
            Param::new("dec.bias", init(rng, (1, input), code)),
        ];
        let mut layers = vec![
            Layer::Linear {
                weight: 0,
                bias: 1,
                transposed: false,
            },
            activation.clone(),
        ];
        layers.extend_from_slice(sparsity);
        let code_after = layers.len();
        layers.push(Layer::Linear {
            weight: 0,
            bias: 2,
            transposed: true,
        });
        layers.push(activation);
        Model {
            input,
            layers,
            params,
            code_after,
        }
    }

    /// Gives every transposed (tied) linear layer its own weight, a copy of the shared one laid
    /// out `(O, I)`. Returns how many layers were untied.
    pub fn untie(&mut self) -> usize {
        let mut untied = 0;
        for i in 0..self.layers.len() {
            if let Layer::Linear {
                weight,
                bias,
                transposed: true,
            } = self.layers[i]
            {
                let source = &self.params[weight];
                let copy = Param::new(
                    format!("{}.untied{i}", source.name),
                    source.value.t().as_standard_layout().into_owned(),
                );
                self.params.push(copy);
                self.layers[i] = Layer::Linear {
                    weight: self.params.len() - 1,
                    bias,
                    transposed: false,
                };
                untied += 1;
            }
        }
        untied
    }

    /// Output width of every layer, in order, checking that the chain fits together.
    pub fn widths(&self) -> Result<Vec<usize>, String> {
        let mut width = self.input;
        let mut out = Vec::with_capacity(self.layers.len());
        let param = |i: usize, p: usize| {
            self.params
                .get(p)
                .map(|p| &p.value)
                .ok_or(format!("layer {i}: no parameter {p}"))
        };
        for (i, layer) in self.layers.iter().enumerate() {
            match *layer {
                Layer::Linear {
                    weight,
                    bias,
                    transposed,
                } => {
                    let w = param(i, weight)?;
                    let (o, fan_in) = if transposed { (w.ncols(), w.nrows()) } else { w.dim() };
                    if fan_in != width {
                        return Err(format!("layer {i}: weight takes {fan_in} inputs, gets {width}"));
                    }
                    if param(i, bias)?.dim() != (1, o) {
                        return Err(format!(
                            "layer {i}: bias {:?}, expected (1, {o})",
                            param(i, bias)?.dim()
                        ));
                    }
                    width = o;
                }
                Layer::Conv2d {
                    weight,
                    bias,
                    geometry: g,
                } => {
                    if !g.is_valid() || g.in_len() != width {
                        return Err(format!("layer {i}: convolution {g:?} does not take {width} inputs"));
                    }
                    if param(i, weight)?.dim() != g.weight_shape() || param(i, bias)?.dim() != (1, g.out_channels) {
                        return Err(format!("layer {i}: convolution parameters do not fit {g:?}"));
                    }
                    width = g.out_len();
                }
                Layer::MaxPool2d { geometry: g } => {
                    if !g.is_valid() || g.in_len() != width {
                        return Err(format!("layer {i}: max-pool {g:?} does not take {width} inputs"));
                    }
                    width = g.out_len();
                }
                Layer::LeakyRelu { .. } | Layer::Sigmoid | Layer::TopK { .. } | Layer::LifetimeTopK { .. } => {}
            }
            out.push(width);
        }
        Ok(out)
    }

    /// Whether codes are sigmoid outputs (then "zero" means below 0.01).
    pub fn sigmoid_codes(&self) -> bool {
        self.layers[..self.code_after]
            .iter()
            .rev()
            .find(|l| !l.has_mask())
            .is_some_and(|l| *l == Layer::Sigmoid)
    }

    /// The decoder's dictionary: column `j` of the last linear layer's weight, the image code
    /// unit `j` writes, one row per unit.
    // -> (K, D)
    pub fn dictionary(&self) -> Array2<f32> {
        let (weight, transposed) = self
            .layers
            .iter()
            .rev()
            .find_map(|l| match *l {
                Layer::Linear { weight, transposed, .. } => Some((weight, transposed)),
                _ => None,
            })
            .expect("a model has a linear layer");
        let w = &self.params[weight].value;
        // Stored (O, I) the columns are w.t()'s rows; stored transposed (I, O) they are w's rows.
        if transposed {
            w.to_owned()
        } else {
            w.t().as_standard_layout().into_owned()
        }
    }

    /// Code width (K).
    pub fn code_width(&self) -> usize {
        let widths = self.widths().expect("a valid model");
        if self.code_after == 0 {
            self.input
        } else {
            widths[self.code_after - 1]
        }
    }

    /// Multiply-adds ×2 of one training step per sample: forward, the weight gradient, and the
    /// input gradient of every linear layer but the first.
    pub fn train_flops_per_sample(&self) -> u64 {
        let widths = self.widths().expect("a valid model");
        let mut flops = 0u64;
        let mut first = true;
        for (i, layer) in self.layers.iter().enumerate() {
            let macs = match *layer {
                Layer::Linear { .. } => {
                    let fan_in = if i == 0 { self.input } else { widths[i - 1] };
                    (fan_in * widths[i]) as u64
                }
                Layer::Conv2d { geometry, .. } => geometry.macs() as u64,
                _ => continue,
            };
            flops += 2 * macs * if first { 2 } else { 3 };
            first = false;
        }
        flops
    }

    /// The parameters layer `i` uses.
    pub fn layer_params(&self, i: usize) -> Vec<usize> {
        match self.layers[i] {
            Layer::Linear { weight, bias, .. } | Layer::Conv2d { weight, bias, .. } => vec![weight, bias],
            _ => Vec::new(),
        }
    }

    /// Index of the first layer with a trainable parameter (the layer count if none): no
    /// gradient needs to reach the layers below it.
    pub fn first_trainable_layer(&self) -> usize {
        (0..self.layers.len())
            .find(|&i| self.layer_params(i).iter().any(|&p| !self.params[p].frozen))
            .unwrap_or(self.layers.len())
    }

    /// Which parameters a backward pass writes a gradient into: both of a linear layer's
    /// unless both are frozen (a frozen layer only passes the gradient down), and a
    /// convolution's always. The others' gradients stay as they were.
    pub fn gradients_written(&self) -> Vec<bool> {
        let mut written = vec![false; self.params.len()];
        for layer in &self.layers {
            match *layer {
                Layer::Linear { weight, bias, .. } if !(self.params[weight].frozen && self.params[bias].frozen) => {
                    written[weight] = true;
                    written[bias] = true;
                }
                Layer::Conv2d { weight, bias, .. } => {
                    written[weight] = true;
                    written[bias] = true;
                }
                _ => {}
            }
        }
        written
    }

    /// Freezes every parameter there is now.
    pub fn freeze_all(&mut self) {
        for p in &mut self.params {
            p.frozen = true;
        }
    }

    /// Makes every parameter trainable.
    pub fn unfreeze_all(&mut self) {
        for p in &mut self.params {
            p.frozen = false;
        }
    }

    /// Grows the network by a stage, greedy layer-wise training's step: a new tied pair
    /// `Linear(K → width), activation` / `Linearᵀ(width → K), activation` goes in the middle,
    /// around the code, and its output becomes the code. PyTorch's initialisation.
    pub fn grow(&mut self, width: usize, activation: Layer, rng: &mut impl Rng) {
        self.grow_pair(width, Some(activation.clone()), activation, rng);
    }

    /// Grows the network by a stage whose code is linear, as the code layer of Hinton &
    /// Salakhutdinov's deep autoencoders: `Linear(K → width)` (no activation: its output is the
    /// code) / `Linearᵀ(width → K), activation`. The encoder then ends in a linear layer that the
    /// decoder's first linear layer follows directly.
    pub fn grow_linear(&mut self, width: usize, activation: Layer, rng: &mut impl Rng) {
        self.grow_pair(width, None, activation, rng);
    }

    /// A new tied pair around the code: `Linear(K → width), code_activation` (when given) and
    /// `Linearᵀ(width → K), activation`.
    fn grow_pair(&mut self, width: usize, code_activation: Option<Layer>, activation: Layer, rng: &mut impl Rng) {
        let k = self.code_width();
        self.params
            .push(Param::new(format!("stage{width}.weight"), init(rng, (width, k), k)));
        self.params
            .push(Param::new(format!("stage{width}.enc_bias"), init(rng, (1, width), k)));
        self.params
            .push(Param::new(format!("stage{width}.dec_bias"), init(rng, (1, k), width)));
        let w = self.params.len() - 3;
        let mut stage = vec![Layer::Linear {
            weight: w,
            bias: w + 1,
            transposed: false,
        }];
        stage.extend(code_activation);
        let encoder = stage.len();
        stage.push(Layer::Linear {
            weight: w,
            bias: w + 2,
            transposed: true,
        });
        stage.push(activation);
        let at = self.code_after;
        self.layers.splice(at..at, stage);
        self.code_after += encoder;
    }

    /// L2 weight decay: adds `λ·w` to `grads` for every trainable weight of a linear or
    /// convolution layer (a weight a tied pair shares, once) and returns the penalty
    /// `λ/2 · Σ w²`. Biases are not decayed.
    pub fn weight_decay(&self, grads: &mut [Array2<f32>], lambda: f32) -> f64 {
        let mut seen = vec![false; self.params.len()];
        let mut squares = 0.0;
        for layer in &self.layers {
            if let Layer::Linear { weight, .. } | Layer::Conv2d { weight, .. } = *layer {
                if seen[weight] || self.params[weight].frozen {
                    continue;
                }
                seen[weight] = true;
                let w = &self.params[weight].value;
                grads[weight].scaled_add(lambda, w);
                squares += sum_of_squares(w.as_slice().expect("parameters are standard arrays"));
            }
        }
        0.5 * lambda as f64 * squares
    }

    /// Total number of scalars in the parameter store.
    pub fn num_params(&self) -> usize {
        self.params.iter().map(|p| p.value.len()).sum()
    }
}

/// Elements per parallel task of [`sum_of_squares`].
const SQUARES_CHUNK: usize = 64 * 1024;

/// Partial sums per chunk of [`sum_of_squares`].
const SQUARES_LANES: usize = 8;

/// `Σ v²` in f64, the same value on any number of threads: fixed chunks of [`SQUARES_CHUNK`]
/// values on the calling rayon pool, each summed in [`SQUARES_LANES`] interleaved partial sums
/// (element `i` into sum `i mod 8`, so no chain of dependent additions runs through the chunk),
/// the partial sums and then the chunks' sums added in order.
fn sum_of_squares(values: &[f32]) -> f64 {
    use rayon::prelude::*;
    let chunk_sum = |chunk: &[f32]| {
        let mut lanes = [0f64; SQUARES_LANES];
        let groups = chunk.chunks_exact(SQUARES_LANES);
        let tail = groups.remainder();
        for group in groups {
            for (lane, &v) in lanes.iter_mut().zip(group) {
                *lane += f64::from(v) * f64::from(v);
            }
        }
        for (lane, &v) in lanes.iter_mut().zip(tail) {
            *lane += f64::from(v) * f64::from(v);
        }
        lanes.iter().sum::<f64>()
    };
    let sums: Vec<f64> = values.par_chunks(SQUARES_CHUNK).map(chunk_sum).collect();
    sums.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn a_greedy_stage_writes_the_gradients_of_its_new_pair_only() {
        let mut m = Model::fc_tied(12, 6, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(m.gradients_written(), vec![true; 3]);
        m.freeze_all();
        assert_eq!(m.gradients_written(), vec![false; 3]);
        m.grow(4, Layer::Sigmoid, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(m.gradients_written(), vec![false, false, false, true, true, true]);
        // A layer with one trainable tensor writes both of its gradients.
        m.params[2].frozen = false;
        assert_eq!(m.gradients_written(), vec![true, false, true, true, true, true]);
    }

    #[test]
    fn fc_shapes_and_pytorch_init_bounds() {
        let m = Model::fc_tied(784, 64, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(m.widths().unwrap(), vec![64, 64, 784, 784]);
        assert_eq!(m.code_width(), 64);
        let enc = 1.0 / 784f32.sqrt();
        let dec = 1.0 / 64f32.sqrt();
        assert!(m.params[0].value.iter().all(|v| v.abs() <= enc));
        assert!(m.params[1].value.iter().all(|v| v.abs() <= enc));
        assert!(m.params[2].value.iter().all(|v| v.abs() <= dec));
        // The bound is reached closely: it is uniform over the whole interval, not a narrower one.
        assert!(m.params[0].value.iter().any(|v| v.abs() > 0.99 * enc));
        // 784·64 + 64 + 784 parameters while tied.
        assert_eq!(m.num_params(), 784 * 64 + 64 + 784);
    }

    #[test]
    fn tie_untie_round_trip() {
        let mut m = Model::fc_tied(12, 3, &mut ChaCha8Rng::seed_from_u64(1));
        let shared = m.params[0].value.clone();
        assert_eq!(m.untie(), 1);
        assert_eq!(m.untie(), 0, "nothing left to untie");
        let Layer::Linear { weight, transposed, .. } = m.layers[2] else {
            panic!()
        };
        assert!(!transposed);
        assert_ne!(weight, 0);
        assert_eq!(m.params[weight].value, shared.t());
        assert_eq!(m.params[0].value, shared, "the encoder keeps its weight");
        assert_eq!(m.widths().unwrap(), vec![3, 3, 12, 12]);
    }

    #[test]
    fn a_linear_code_stage_has_no_activation_between_encoder_and_decoder() {
        let leaky = Layer::LeakyRelu {
            slope: leaky_relu::SLOPE,
        };
        let mut m = Model::fc_tied(12, 6, &mut ChaCha8Rng::seed_from_u64(2));
        m.grow_linear(3, leaky.clone(), &mut ChaCha8Rng::seed_from_u64(3));
        // Linear 12→6, LeakyReLU, Linear 6→3 (the code), Linearᵀ 3→6, LeakyReLU, Linearᵀ 6→12, LeakyReLU.
        assert_eq!(m.widths().unwrap(), vec![6, 6, 3, 6, 6, 12, 12]);
        assert_eq!(m.code_after, 3);
        assert_eq!(m.code_width(), 3);
        assert!(matches!(m.layers[2], Layer::Linear { transposed: false, .. }));
        assert!(matches!(
            m.layers[3],
            Layer::Linear {
                weight: 3,
                transposed: true,
                ..
            }
        ));
        assert_eq!(m.layers[4], leaky);
        assert!(!m.sigmoid_codes());
        // The ordinary stage keeps its activation at the code.
        let mut g = Model::fc_tied(12, 6, &mut ChaCha8Rng::seed_from_u64(2));
        g.grow(3, leaky, &mut ChaCha8Rng::seed_from_u64(3));
        assert_eq!(g.widths().unwrap(), vec![6, 6, 3, 3, 6, 6, 12, 12]);
        assert_eq!(g.code_after, 4);
        // Both draw the new pair's parameters the same way.
        assert_eq!(g.params[3..], m.params[3..]);
    }

    #[test]
    fn a_linear_code_passes_negative_codes_through_and_its_gradients_check() {
        let mut m = Model::fc_tied(12, 6, &mut ChaCha8Rng::seed_from_u64(4));
        m.grow_linear(
            3,
            Layer::LeakyRelu {
                slope: leaky_relu::SLOPE,
            },
            &mut ChaCha8Rng::seed_from_u64(5),
        );
        m.untie();
        let rows = 6;
        let images: Vec<Vec<u8>> = (0..rows)
            .map(|r| (0..12).map(|c| ((r * 53 + c * 29) % 256) as u8).collect())
            .collect();
        let mut ws = crate::workspace::Workspace::new(&m, rows);
        ws.load(images.iter());
        ws.forward(&m, true);
        // The code is the linear layer's output: negative codes are not squashed by a slope.
        assert!(matches!(m.layers[m.code_after - 1], Layer::Linear { .. }));
        let code = ws.act(m.code_after - 1);
        assert!(code.iter().any(|&v| v < -0.05), "{code}");
        let loss = |m: &Model, ws: &mut crate::workspace::Workspace| {
            ws.forward(m, true);
            ws.reconstruction_loss(rows) / (rows * 12) as f64
        };
        loss(&m, &mut ws);
        ws.backward(&m);
        let analytic = ws.grads.clone();
        for (p, grad) in analytic.iter().enumerate() {
            let value = m.params[p].value.clone();
            let name = m.params[p].name.clone();
            crate::layers::gradcheck::check(&format!("linear code {name}"), &value, grad, |v| {
                m.params[p].value.assign(v);
                let l = loss(&m, &mut ws);
                m.params[p].value.assign(&value);
                l
            });
        }
    }

    #[test]
    fn sum_of_squares_is_the_plain_sum_and_the_same_on_any_number_of_threads() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for len in [0, 1, 7, 8, 9, SQUARES_CHUNK - 1, SQUARES_CHUNK, 3 * SQUARES_CHUNK + 5] {
            let values: Vec<f32> = (0..len).map(|_| rng.random_range(-2.0f32..2.0)).collect();
            let plain: f64 = values.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            let on = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| sum_of_squares(&values))
            };
            let one = on(1);
            assert!((one - plain).abs() <= 1e-12 * plain.max(1.0), "{len}: {one} vs {plain}");
            for threads in [2, 3] {
                assert_eq!(
                    on(threads).to_bits(),
                    one.to_bits(),
                    "{len} values on {threads} threads"
                );
            }
        }
    }

    #[test]
    fn weight_decay_is_the_gradient_of_its_penalty_on_trainable_weights_only() {
        let mut m = Model::fc_tied(5, 3, &mut ChaCha8Rng::seed_from_u64(6));
        m.grow(2, Layer::Sigmoid, &mut ChaCha8Rng::seed_from_u64(7));
        // params: 0 enc.weight (tied), 1 enc.bias, 2 dec.bias, 3 stage weight (tied), 4, 5 biases.
        m.params[3].frozen = true;
        let lambda = 0.25f32;
        let mut grads: Vec<Array2<f32>> = m.params.iter().map(|p| Array2::ones(p.value.dim())).collect();
        let penalty = m.weight_decay(&mut grads, lambda);
        let w = &m.params[0].value;
        let expected = 0.5 * lambda as f64 * w.iter().map(|&v| v as f64 * v as f64).sum::<f64>();
        assert!((penalty - expected).abs() < 1e-9, "{penalty} vs {expected}");
        // The tied weight is decayed once, though two layers use it.
        for (g, &v) in grads[0].iter().zip(w.iter()) {
            assert_eq!(*g, 1.0 + lambda * v);
        }
        for (i, g) in grads.iter().enumerate().take(6).skip(1) {
            assert!(g.iter().all(|&g| g == 1.0), "parameter {i} is a bias or frozen");
        }
        // The analytic gradient matches the penalty's finite differences.
        let mut probe = m.clone();
        crate::layers::gradcheck::check("weight decay", &w.clone(), &(&grads[0] - 1.0), |v| {
            probe.params[0].value.assign(v);
            let mut scratch: Vec<Array2<f32>> = probe.params.iter().map(|p| Array2::zeros(p.value.dim())).collect();
            probe.weight_decay(&mut scratch, lambda)
        });
    }

    #[test]
    fn fc_flops_per_epoch_match_the_hand_count() {
        // Encoder: forward + dW; decoder: forward + dW + dX; each 2·784·64 per sample.
        let m = Model::fc_tied(784, 64, &mut ChaCha8Rng::seed_from_u64(0));
        assert_eq!(m.train_flops_per_sample(), 5 * 2 * 784 * 64);
        assert_eq!(m.train_flops_per_sample() * 60_000, 30_105_600_000);
    }
}
