//! `trainer export --safetensors`: a run's float weights in one `.safetensors` file, named and
//! laid out as the state dict of an equivalent PyTorch model, with a description of the forward
//! pass in the file's metadata that is enough to replay it exactly
//! (`tools/python/safetensors_mse.py` does, in numpy). A `.aeq` model file holds only the int8
//! weights; this is the way out for the float ones.
//!
//! # The equivalent PyTorch model
//!
//! Two `nn.Sequential`s: `encoder` (the model's first `code_after` layers; its output is the
//! code) and `decoder` (the rest). Every layer takes an index in its sequence, activations and
//! top-k too, as in PyTorch, so the tensors are `encoder.0.weight`, `encoder.0.bias`,
//! `decoder.0.weight`, ... Rows of the float model are one sample each, `(C, H, W)` flattened in
//! PyTorch's NCHW order wherever there are channels; where the model reads such a row as a flat
//! vector (a linear layer after a convolution or pooling) an `nn.Flatten` takes an index, and
//! where it reads a flat vector as `(C, H, W)` inside the chain, an `nn.Unflatten(1, (C, H, W))`.
//! A flatten at the code goes into the encoder, so the code is flat as the trainer holds it. A
//! model whose first layer is a convolution takes `(N, C, H, W)` inputs (`input_shape`).
//!
//! Layouts: linear weights `(out, in)`, convolution weights `(out_channels, in_channels, kH,
//! kW)`, biases `(out)`; all f32, little-endian, C-contiguous. A tied decoder layer (one that
//! uses an encoder weight transposed) is written with its own tensor, the transpose, so the file
//! loads without knowing about tying; its layer entry names the tensor it is the transpose of
//! (`transpose_of`) and the metadata's `tied` is `"true"`. Greedily grown and frozen models are
//! written as the final chain of layers; freezing leaves no trace.
//!
//! # Metadata (`__metadata__`, string to string)
//!
//! | key | value |
//! | --- | --- |
//! | `format` | [`FORMAT`], the version of this layout |
//! | `variant` | the run's variant |
//! | `tied` | `"true"` when a decoder weight was the transpose of an encoder weight |
//! | `input_shape` | JSON array: one sample as the first layer takes it, `[784]` or `[1, 28, 28]` |
//! | `input_scaling` | how a raw sample becomes the model's input ([`scaling_text`]): [`INPUT_SCALING`] for the MNIST runs, the u8 pixels (row-major 28x28) divided by 255 |
//! | `code_after` | how many entries of `layers` make up the encoder; the code is the output of the last of them |
//! | `code_shape`, `output_shape` | JSON arrays: one sample's code and output |
//! | `activations` | JSON object: for each linear or conv2d module, the activation after it (`leaky_relu(0.01)`, `sigmoid`, `identity` for a linear code) |
//! | `layers` | JSON array, the forward pass in order, one [`Step`] per module |
//!
//! Each entry of `layers` has `module` (`encoder.3`) and `kind`, and per kind:
//! - `linear`: `weight`, `bias`, `in_features`, `out_features`, and `transpose_of` for a tied
//!   layer: `y = x·Wᵀ + b`;
//! - `conv2d`: `weight`, `bias`, `in_channels`, `out_channels`, `kernel`, `stride` (1),
//!   `padding` (0), `in_shape`, `out_shape`: `y[o,i,j] = b[o] + Σ W[o,c,p,q]·x[c,i+p,j+q]`;
//! - `maxpool2d`: `kernel` and `stride` (2), `in_shape`, `out_shape`; a trailing odd row or
//!   column is dropped;
//! - `leaky_relu` with `slope`; `sigmoid`;
//! - `top_k` with `k`: per sample, over its values in flattened order, keep the `k` largest and
//!   zero the rest, a tie going to the lower index;
//! - `lifetime_top_k` with `fraction`: the identity at inference (`"inference": "identity"`);
//! - `flatten` (`in_shape`, `out_features`) and `unflatten` (`in_features`, `out_shape`), both
//!   `"layout": "NCHW"`.

use crate::checkpoint;
use crate::model::{Layer, Model};
use crate::train::State;
use anyhow::{Context, Result};
use autoencoder_core::model::{InputScaling, Owned};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The version of the names, layouts and metadata written here (the `format` metadata entry).
pub const FORMAT: &str = "trainer-autoencoder-safetensors/1";

/// How the model's input is made from MNIST's u8 pixels (the `input_scaling` metadata entry of a
/// model whose scaling is [`InputScaling::Unit`]).
pub const INPUT_SCALING: &str = "pixels / 255";

/// The `input_scaling` metadata entry for a model file's input scaling: [`INPUT_SCALING`] for
/// `Unit`, `as is` for `None`, and for `MinMax` and `Standard` a JSON object with the rule and
/// the per-value arrays: `{"kind":"min-max","rule":"(x - offset) / divisor","offset":[...],
/// "divisor":[...]}`.
pub fn scaling_text(scaling: &InputScaling<'static, Owned>) -> String {
    match scaling {
        InputScaling::None => "as is".to_string(),
        InputScaling::Unit => INPUT_SCALING.to_string(),
        InputScaling::MinMax { offset, divisor } | InputScaling::Standard { offset, divisor } => serde_json::json!({
            "kind": scaling.name(),
            "rule": "(x - offset) / divisor",
            "offset": offset.0,
            "divisor": divisor.0,
        })
        .to_string(),
    }
}

/// The extension of the files.
pub const EXTENSION: &str = "safetensors";

/// One module of the equivalent `nn.Sequential`s, in forward order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The module's name in the state dict, e.g. `encoder.2`.
    pub module: String,
    /// What it computes.
    #[serde(flatten)]
    pub op: Op,
}

/// What a [`Step`] computes; serialized with a `kind` tag.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Op {
    /// `y = x·Wᵀ + b`, `W` `(out, in)`.
    Linear {
        /// Name of the weight tensor, `(out_features, in_features)`.
        weight: String,
        /// Name of the bias tensor, `(out_features)`.
        bias: String,
        /// Input width.
        in_features: usize,
        /// Output width.
        out_features: usize,
        /// For a tied layer: the tensor whose transpose the weight is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transpose_of: Option<String>,
    },
    /// PyTorch's `nn.Conv2d` with the given stride and padding.
    Conv2d {
        /// Name of the weight tensor, `(out_channels, in_channels, kH, kW)`.
        weight: String,
        /// Name of the bias tensor, `(out_channels)`.
        bias: String,
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// `[kH, kW]`.
        kernel: [usize; 2],
        /// `[1, 1]`.
        stride: [usize; 2],
        /// `[0, 0]`.
        padding: [usize; 2],
        /// `[C, H, W]` of one sample in.
        in_shape: [usize; 3],
        /// `[C, H, W]` of one sample out.
        out_shape: [usize; 3],
    },
    /// PyTorch's `nn.MaxPool2d(2, 2)`: a trailing odd row or column is dropped.
    #[serde(rename = "maxpool2d")]
    MaxPool2d {
        /// `[2, 2]`.
        kernel: [usize; 2],
        /// `[2, 2]`.
        stride: [usize; 2],
        /// `[C, H, W]` of one sample in.
        in_shape: [usize; 3],
        /// `[C, H, W]` of one sample out.
        out_shape: [usize; 3],
    },
    /// `y = x` for `x > 0`, else `slope·x`.
    LeakyRelu {
        /// Slope for negative inputs.
        slope: f32,
    },
    /// `y = 1 / (1 + e^-x)`.
    Sigmoid,
    /// Per sample, keep the `k` largest values (flattened order; ties to the lower index) and
    /// zero the rest.
    TopK {
        /// Values kept per sample.
        k: usize,
        /// Always `lower_index`.
        ties: String,
    },
    /// Lifetime sparsity: a training-time layer, the identity at inference.
    LifetimeTopK {
        /// Fraction of the batch each unit kept in training.
        fraction: f64,
        /// Always `identity`.
        inference: String,
    },
    /// PyTorch's `nn.Flatten()`: `(C, H, W)` to `C·H·W`, NCHW order.
    Flatten {
        /// `[C, H, W]` of one sample in.
        in_shape: [usize; 3],
        /// `C·H·W`.
        out_features: usize,
        /// Always `NCHW`.
        layout: String,
    },
    /// PyTorch's `nn.Unflatten(1, (C, H, W))`: `C·H·W` to `(C, H, W)`, NCHW order.
    Unflatten {
        /// `C·H·W`.
        in_features: usize,
        /// `[C, H, W]` of one sample out.
        out_shape: [usize; 3],
        /// Always `NCHW`.
        layout: String,
    },
}

/// One f32 tensor of the state dict, values in C order.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Name, e.g. `encoder.0.weight`.
    pub name: String,
    /// PyTorch's shape.
    pub shape: Vec<usize>,
    /// Values, C-contiguous.
    pub values: Vec<f32>,
}

/// A model as the state dict of an equivalent PyTorch model plus its forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct StateDict {
    /// The tensors, in forward order.
    pub tensors: Vec<Tensor>,
    /// The modules, in forward order: the encoder's, then the decoder's.
    pub layers: Vec<Step>,
    /// Entries of `layers` that make up the encoder.
    pub code_after: usize,
    /// One sample as the first layer takes it.
    pub input_shape: Vec<usize>,
    /// One sample's code.
    pub code_shape: Vec<usize>,
    /// One sample's output.
    pub output_shape: Vec<usize>,
    /// Whether some decoder weight was an encoder weight transposed.
    pub tied: bool,
}

/// A layer of a model that this format cannot express.
#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    /// The model's layers do not fit together.
    #[error("the model is not a valid chain of layers: {0}")]
    Invalid(String),
    /// Layer `layer` has no counterpart in the format.
    #[error("layer {layer} ({what}) cannot be expressed in the safetensors export format {FORMAT}: {why}")]
    Unsupported {
        /// Index of the layer in the model.
        layer: usize,
        /// The layer, in words.
        what: String,
        /// Why not.
        why: String,
    },
}

/// The shape of one sample between two layers, as the float model holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A flat vector.
    Flat(usize),
    /// Channels, height, width (NCHW rows).
    Chw([usize; 3]),
}

impl Shape {
    fn dims(self) -> Vec<usize> {
        match self {
            Shape::Flat(n) => vec![n],
            Shape::Chw(s) => s.to_vec(),
        }
    }
}

/// Builds the two sequences layer by layer, tracking the shape between layers.
struct Builder<'m> {
    model: &'m Model,
    encoder: Vec<Step>,
    decoder: Vec<Step>,
    tensors: Vec<Tensor>,
    shape: Shape,
    /// Whether a layer that fixes the input's shape (linear, conv2d, max-pool) has been seen.
    input_fixed: bool,
    input_shape: Shape,
    /// Shape after the last encoder step.
    code_shape: Shape,
    /// Parameter index → the weight tensor of its first untransposed use.
    untransposed: HashMap<usize, String>,
    tied: bool,
}

impl<'m> Builder<'m> {
    fn new(model: &'m Model) -> Builder<'m> {
        let input = Shape::Flat(model.input);
        Builder {
            model,
            encoder: Vec::new(),
            decoder: Vec::new(),
            tensors: Vec::new(),
            shape: input,
            input_fixed: false,
            input_shape: input,
            code_shape: input,
            untransposed: HashMap::new(),
            tied: false,
        }
    }

    /// The name the next module of the encoder (or decoder) gets.
    fn next_module(&self, encoder: bool) -> String {
        if encoder {
            format!("encoder.{}", self.encoder.len())
        } else {
            format!("decoder.{}", self.decoder.len())
        }
    }

    /// Appends `op` to the encoder (or decoder); one sample leaves it as `out`.
    fn push(&mut self, encoder: bool, op: Op, out: Shape) {
        let module = self.next_module(encoder);
        self.shape = out;
        if encoder {
            self.encoder.push(Step { module, op });
            self.code_shape = out;
        } else {
            self.decoder.push(Step { module, op });
        }
    }

    fn tensor(&mut self, name: &str, shape: Vec<usize>, values: impl Iterator<Item = f32>) {
        let values: Vec<f32> = values.collect();
        debug_assert_eq!(values.len(), shape.iter().product::<usize>());
        self.tensors.push(Tensor {
            name: name.to_string(),
            shape,
            values,
        });
    }

    /// Makes the current sample flat for model layer `i` (a linear layer): a flatten, which at
    /// the code (`i == code_after`) belongs to the encoder.
    fn flat_for(&mut self, i: usize) {
        self.input_fixed = true;
        if let Shape::Chw(s) = self.shape {
            let n = s.iter().product();
            let op = Op::Flatten {
                in_shape: s,
                out_features: n,
                layout: "NCHW".into(),
            };
            self.push(i <= self.model.code_after, op, Shape::Flat(n));
        }
    }

    /// Makes the current sample `(C, H, W)` = `want` for model layer `i`: the input's shape
    /// before any layer fixed it, else an unflatten (which at the code belongs to the decoder).
    fn chw_for(&mut self, i: usize, want: [usize; 3], what: impl Fn() -> String) -> Result<(), DescribeError> {
        match self.shape {
            Shape::Chw(s) if s == want => {}
            Shape::Chw(s) => {
                return Err(DescribeError::Unsupported {
                    layer: i,
                    what: what(),
                    why: format!(
                        "it reads the {}x{}x{} output before it as {}x{}x{}, and the format has no reshape between two (C, H, W) shapes",
                        s[0],
                        s[1],
                        s[2],
                        want[0],
                        want[1],
                        want[2]
                    ),
                })
            }
            Shape::Flat(n) if !self.input_fixed => {
                debug_assert_eq!(n, want.iter().product::<usize>());
                self.input_shape = Shape::Chw(want);
                self.shape = Shape::Chw(want);
                if self.encoder.is_empty() {
                    self.code_shape = self.shape;
                }
            }
            Shape::Flat(n) => {
                let op = Op::Unflatten {
                    in_features: n,
                    out_shape: want,
                    layout: "NCHW".into(),
                };
                self.push(i < self.model.code_after, op, Shape::Chw(want));
            }
        }
        self.input_fixed = true;
        Ok(())
    }

    /// Adds model layer `i`.
    fn layer(&mut self, i: usize) -> Result<(), DescribeError> {
        let model = self.model;
        let encoder = i < model.code_after;
        let shape = self.shape;
        match model.layers[i] {
            Layer::Linear {
                weight,
                bias,
                transposed,
            } => {
                self.flat_for(i);
                let module = self.next_module(encoder);
                let (w_name, b_name) = (format!("{module}.weight"), format!("{module}.bias"));
                let w = &model.params[weight].value;
                // Stored (O, I), or (I, O) and used transposed: written (O, I) either way.
                let w = if transposed { w.t() } else { w.view() };
                let (o, n) = w.dim();
                self.tensor(&w_name, vec![o, n], w.iter().copied());
                self.tensor(&b_name, vec![o], model.params[bias].value.iter().copied());
                let transpose_of = if transposed {
                    self.tied = true;
                    self.untransposed.get(&weight).cloned()
                } else {
                    self.untransposed.entry(weight).or_insert_with(|| w_name.clone());
                    None
                };
                let op = Op::Linear {
                    weight: w_name,
                    bias: b_name,
                    in_features: n,
                    out_features: o,
                    transpose_of,
                };
                self.push(encoder, op, Shape::Flat(o));
            }
            Layer::Conv2d {
                weight,
                bias,
                geometry: g,
            } => {
                let in_shape = [g.in_channels, g.in_h, g.in_w];
                self.chw_for(i, in_shape, || format!("conv2d {g:?}"))?;
                let module = self.next_module(encoder);
                let (w_name, b_name) = (format!("{module}.weight"), format!("{module}.bias"));
                // (O, C·k·k) is PyTorch's (O, C, kH, kW) flattened.
                let (o, k) = (g.out_channels, g.kernel);
                let w = &model.params[weight].value;
                self.tensor(&w_name, vec![o, g.in_channels, k, k], w.iter().copied());
                self.tensor(&b_name, vec![o], model.params[bias].value.iter().copied());
                let out_shape = [o, g.out_h(), g.out_w()];
                let op = Op::Conv2d {
                    weight: w_name,
                    bias: b_name,
                    in_channels: g.in_channels,
                    out_channels: o,
                    kernel: [k, k],
                    stride: [1, 1],
                    padding: [0, 0],
                    in_shape,
                    out_shape,
                };
                self.push(encoder, op, Shape::Chw(out_shape));
            }
            Layer::MaxPool2d { geometry: g } => {
                let in_shape = [g.channels, g.in_h, g.in_w];
                self.chw_for(i, in_shape, || format!("maxpool2d {g:?}"))?;
                let out_shape = [g.channels, g.out_h(), g.out_w()];
                let op = Op::MaxPool2d {
                    kernel: [2, 2],
                    stride: [2, 2],
                    in_shape,
                    out_shape,
                };
                self.push(encoder, op, Shape::Chw(out_shape));
            }
            Layer::LeakyRelu { slope } => {
                if !slope.is_finite() {
                    return Err(DescribeError::Unsupported {
                        layer: i,
                        what: format!("leaky_relu with slope {slope}"),
                        why: "the layer description is JSON, which has no non-finite numbers".into(),
                    });
                }
                self.push(encoder, Op::LeakyRelu { slope }, shape);
            }
            Layer::Sigmoid => self.push(encoder, Op::Sigmoid, shape),
            Layer::TopK { k } => {
                let op = Op::TopK {
                    k,
                    ties: "lower_index".into(),
                };
                self.push(encoder, op, shape);
            }
            Layer::LifetimeTopK { fraction } => {
                if !fraction.is_finite() {
                    return Err(DescribeError::Unsupported {
                        layer: i,
                        what: format!("lifetime_top_k with fraction {fraction}"),
                        why: "the layer description is JSON, which has no non-finite numbers".into(),
                    });
                }
                let op = Op::LifetimeTopK {
                    fraction,
                    inference: "identity".into(),
                };
                self.push(encoder, op, shape);
            }
        }
        Ok(())
    }
}

/// The state dict and forward pass of `model`, or which layer the format cannot express.
pub fn state_dict(model: &Model) -> Result<StateDict, DescribeError> {
    model.widths().map_err(DescribeError::Invalid)?;
    if model.code_after > model.layers.len() {
        return Err(DescribeError::Invalid(format!(
            "the code follows layer {} of {}",
            model.code_after,
            model.layers.len()
        )));
    }
    let mut b = Builder::new(model);
    for i in 0..model.layers.len() {
        b.layer(i)?;
    }
    let code_after = b.encoder.len();
    let mut layers = b.encoder;
    layers.extend(b.decoder);
    Ok(StateDict {
        tensors: b.tensors,
        layers,
        code_after,
        input_shape: b.input_shape.dims(),
        code_shape: b.code_shape.dims(),
        output_shape: b.shape.dims(),
        tied: b.tied,
    })
}

impl StateDict {
    /// For each linear or conv2d module, in order, the activation that follows it:
    /// `leaky_relu(<slope>)`, `sigmoid`, or `identity` (a linear code, or the chain's end).
    pub fn activations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, step) in self.layers.iter().enumerate() {
            if !matches!(step.op, Op::Linear { .. } | Op::Conv2d { .. }) {
                continue;
            }
            let activation = match self.layers.get(i + 1).map(|s| &s.op) {
                Some(Op::LeakyRelu { slope }) => format!("leaky_relu({slope})"),
                Some(Op::Sigmoid) => "sigmoid".to_string(),
                _ => "identity".to_string(),
            };
            out.push((step.module.clone(), activation));
        }
        out
    }

    /// The `__metadata__` of the file (see the module documentation), for a model whose input
    /// is scaled by `scaling`.
    pub fn metadata(&self, variant: &str, scaling: &InputScaling<'static, Owned>) -> HashMap<String, String> {
        let json = |v: serde_json::Value| v.to_string();
        let activations: serde_json::Map<String, serde_json::Value> = self
            .activations()
            .into_iter()
            .map(|(module, a)| (module, a.into()))
            .collect();
        let layers = serde_json::to_value(&self.layers).expect("layers serialize: every number is finite");
        [
            ("format", FORMAT.to_string()),
            ("variant", variant.to_string()),
            ("tied", self.tied.to_string()),
            ("input_shape", json(self.input_shape.clone().into())),
            ("input_scaling", scaling_text(scaling)),
            ("code_after", self.code_after.to_string()),
            ("code_shape", json(self.code_shape.clone().into())),
            ("output_shape", json(self.output_shape.clone().into())),
            ("activations", json(activations.into())),
            ("layers", json(layers)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The `.safetensors` file: f32 little-endian tensors and the metadata, for a model whose
    /// input is scaled by `scaling`.
    pub fn to_bytes(&self, variant: &str, scaling: &InputScaling<'static, Owned>) -> Result<Vec<u8>> {
        let data: Vec<Vec<u8>> = self
            .tensors
            .iter()
            .map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
            .collect();
        let views = self
            .tensors
            .iter()
            .zip(&data)
            .map(|(t, bytes)| Ok((t.name.clone(), TensorView::new(Dtype::F32, t.shape.clone(), bytes)?)))
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        Ok(safetensors::serialize(views, Some(self.metadata(variant, scaling)))?)
    }

    /// Number of scalars over all tensors.
    pub fn num_values(&self) -> usize {
        self.tensors.iter().map(|t| t.values.len()).sum()
    }
}

/// What [`export`] wrote.
#[derive(Clone, Debug, Serialize)]
pub struct SafetensorsReport {
    /// Variant.
    pub variant: String,
    /// The file written.
    pub path: PathBuf,
    /// Its size.
    pub bytes: usize,
    /// Tensors in it.
    pub tensors: usize,
    /// Scalars over all tensors (a tied weight counts twice, as written).
    pub values: usize,
    /// Whether a decoder weight was tied to an encoder weight.
    pub tied: bool,
    /// Whether the run had finished all its phases.
    pub finished: bool,
}

/// Writes the float weights of a trained run ([`crate::export::load_run`]) to `out` (see the
/// module documentation). Nothing else is written; on failure no file is left at or beside `out`.
pub fn export(state: &State, out: &Path) -> Result<SafetensorsReport> {
    let variant = state.config.variant.clone();
    let dict = state_dict(&state.model).with_context(|| format!("exporting {variant} to {}", out.display()))?;
    // The runs are MNIST's: their input is what the int8 export writes into the model file.
    let bytes = dict.to_bytes(&variant, &crate::quantize::mnist_input().scaling)?;
    write_whole(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(SafetensorsReport {
        variant,
        path: out.to_path_buf(),
        bytes: bytes.len(),
        tensors: dict.tensors.len(),
        values: dict.num_values(),
        tied: dict.tied,
        finished: state.finished,
    })
}

/// Writes `bytes` to `path`, creating its directory, through a temporary file beside it that is
/// renamed into place ([`checkpoint::write_all_or_nothing`]): on any failure the temporary file
/// is removed, so nothing half-written is left, and a file already at `path` stays as it was.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    checkpoint::write_all_or_nothing(&[(path, bytes)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::conv2d::Conv2dGeometry;
    use crate::layers::leaky_relu::SLOPE;
    use crate::model::Param;
    use ndarray::Array2;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use safetensors::SafeTensors;

    const LEAKY: Layer = Layer::LeakyRelu { slope: SLOPE };

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn names(d: &StateDict) -> Vec<&str> {
        d.tensors.iter().map(|t| t.name.as_str()).collect()
    }

    fn kinds(d: &StateDict) -> Vec<String> {
        d.layers
            .iter()
            .map(|s| {
                let v = serde_json::to_value(s).unwrap();
                format!("{} {}", s.module, v["kind"].as_str().unwrap())
            })
            .collect()
    }

    fn tensor<'a>(d: &'a StateDict, name: &str) -> &'a Tensor {
        d.tensors.iter().find(|t| t.name == name).unwrap()
    }

    #[test]
    fn a_tied_model_writes_the_decoder_weight_as_the_transpose() {
        let m = Model::fc_tied(6, 3, &mut rng(1));
        let d = state_dict(&m).unwrap();
        assert_eq!(
            names(&d),
            [
                "encoder.0.weight",
                "encoder.0.bias",
                "decoder.0.weight",
                "decoder.0.bias"
            ]
        );
        assert_eq!(
            kinds(&d),
            [
                "encoder.0 linear",
                "encoder.1 leaky_relu",
                "decoder.0 linear",
                "decoder.1 leaky_relu"
            ]
        );
        assert!(d.tied);
        assert_eq!(d.code_after, 2);
        assert_eq!(
            (d.input_shape.clone(), d.code_shape.clone(), d.output_shape.clone()),
            (vec![6], vec![3], vec![6])
        );
        let enc = &m.params[0].value;
        let dec = tensor(&d, "decoder.0.weight");
        assert_eq!(dec.shape, [6, 3]);
        // decoder.0.weight[r][c] = encoder.0.weight[c][r], in C order.
        for r in 0..6 {
            for c in 0..3 {
                assert_eq!(dec.values[r * 3 + c], enc[[c, r]]);
            }
        }
        assert_eq!(
            tensor(&d, "encoder.0.weight").values,
            enc.iter().copied().collect::<Vec<_>>()
        );
        assert_eq!(tensor(&d, "decoder.0.bias").shape, [6]);
        match &d.layers[2].op {
            Op::Linear {
                transpose_of,
                in_features: 3,
                out_features: 6,
                ..
            } => assert_eq!(transpose_of.as_deref(), Some("encoder.0.weight")),
            other => panic!("{other:?}"),
        }
        // Untied: the same names, nothing tied.
        let mut u = m.clone();
        u.untie();
        let du = state_dict(&u).unwrap();
        assert!(!du.tied);
        assert_eq!(names(&du), names(&d));
        assert_eq!(tensor(&du, "decoder.0.weight"), dec);
    }

    #[test]
    fn top_k_and_a_grown_linear_code_take_indices_as_pytorch_modules() {
        let mut m = Model::tied(8, 4, LEAKY, &[Layer::TopK { k: 2 }], &mut rng(2));
        m.grow_linear(2, LEAKY, &mut rng(3));
        *m.layers.last_mut().unwrap() = Layer::Sigmoid;
        let d = state_dict(&m).unwrap();
        assert_eq!(
            kinds(&d),
            [
                "encoder.0 linear",
                "encoder.1 leaky_relu",
                "encoder.2 top_k",
                "encoder.3 linear",
                "decoder.0 linear",
                "decoder.1 leaky_relu",
                "decoder.2 linear",
                "decoder.3 sigmoid"
            ]
        );
        assert_eq!(d.code_after, 4);
        assert_eq!(d.code_shape, [2]);
        let a = d.activations();
        let a: Vec<(&str, &str)> = a.iter().map(|(m, a)| (m.as_str(), a.as_str())).collect();
        assert_eq!(
            a,
            [
                ("encoder.0", "leaky_relu(0.01)"),
                ("encoder.3", "identity"),
                ("decoder.0", "leaky_relu(0.01)"),
                ("decoder.2", "sigmoid")
            ]
        );
        // Both decoder linears are transposes of the encoder's.
        let transposes: Vec<_> = d
            .layers
            .iter()
            .filter_map(|s| match &s.op {
                Op::Linear { transpose_of, .. } => Some(transpose_of.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            transposes,
            [
                None,
                None,
                Some("encoder.3.weight".into()),
                Some("encoder.0.weight".into())
            ]
        );
    }

    #[test]
    fn conv_weights_are_oihw_and_a_flatten_ends_the_encoder() {
        let c = crate::recipe::find("conv").unwrap().config(0, 1);
        let m = c.architecture.build(&c.input_shape, &mut rng(4)).unwrap();
        let d = state_dict(&m).unwrap();
        assert_eq!(d.input_shape, [1, 28, 28]);
        assert_eq!(d.code_after, 10, "4 × (conv, leaky), maxpool, flatten");
        assert_eq!(d.code_shape, [128]);
        assert_eq!(d.layers[8].module, "encoder.8");
        assert!(matches!(
            d.layers[8].op,
            Op::MaxPool2d {
                in_shape: [8, 8, 8],
                out_shape: [8, 4, 4],
                ..
            }
        ));
        assert!(matches!(
            d.layers[9].op,
            Op::Flatten {
                in_shape: [8, 4, 4],
                out_features: 128,
                ..
            }
        ));
        assert_eq!(d.layers[10].module, "decoder.0");
        assert_eq!(tensor(&d, "encoder.0.weight").shape, [8, 1, 6, 6]);
        assert_eq!(tensor(&d, "encoder.6.weight").shape, [8, 8, 6, 6]);
        assert_eq!(tensor(&d, "decoder.0.weight").shape, [784, 128]);
        // W[o, c, p, q] is the trainer's w[o, (c·k + p)·k + q].
        let w = &m.params[2].value;
        let t = tensor(&d, "encoder.2.weight");
        let (o, c, p, q) = (5, 3, 4, 1);
        assert_eq!(t.values[((o * 8 + c) * 6 + p) * 6 + q], w[[o, (c * 6 + p) * 6 + q]]);
        assert!(!d.tied);
    }

    #[test]
    fn a_flat_vector_read_as_channels_becomes_an_unflatten() {
        // Linear 4 → 2·3·3, then a 2x2 max-pool of the (2, 3, 3) rows.
        let g = crate::layers::max_pool::MaxPoolGeometry::new(2, 3, 3);
        let m = Model {
            input: 4,
            layers: vec![
                Layer::Linear {
                    weight: 0,
                    bias: 1,
                    transposed: false,
                },
                Layer::MaxPool2d { geometry: g },
            ],
            params: vec![
                Param::new("w", Array2::zeros((18, 4))),
                Param::new("b", Array2::zeros((1, 18))),
            ],
            code_after: 1,
        };
        let d = state_dict(&m).unwrap();
        assert_eq!(
            kinds(&d),
            ["encoder.0 linear", "decoder.0 unflatten", "decoder.1 maxpool2d"]
        );
        assert_eq!(d.code_shape, [18]);
        assert_eq!(d.output_shape, [2, 1, 1]);
    }

    #[test]
    fn layers_the_format_cannot_express_are_named() {
        let mut m = Model::fc_tied(6, 3, &mut rng(5));
        m.layers[1] = Layer::LeakyRelu { slope: f32::NAN };
        let e = state_dict(&m).unwrap_err().to_string();
        assert!(e.contains("layer 1 (leaky_relu with slope NaN)"), "{e}");
        assert!(e.contains(FORMAT), "{e}");

        // A convolution that reads the previous one's (8, 4, 4) output as (4, 8, 4).
        let a = Conv2dGeometry::new(1, 6, 6, 8, 3);
        let b = Conv2dGeometry::new(4, 8, 4, 2, 3);
        assert_eq!(a.out_len(), b.in_len());
        let m = Model {
            input: 36,
            layers: vec![
                Layer::Conv2d {
                    weight: 0,
                    bias: 1,
                    geometry: a,
                },
                Layer::Conv2d {
                    weight: 2,
                    bias: 3,
                    geometry: b,
                },
            ],
            params: vec![
                Param::new("w0", Array2::zeros(a.weight_shape())),
                Param::new("b0", Array2::zeros((1, 8))),
                Param::new("w1", Array2::zeros(b.weight_shape())),
                Param::new("b1", Array2::zeros((1, 2))),
            ],
            code_after: 1,
        };
        let e = state_dict(&m).unwrap_err().to_string();
        assert!(e.starts_with("layer 1 (conv2d"), "{e}");
        assert!(
            e.contains(FORMAT) && e.contains("8x4x4 output before it as 4x8x4"),
            "{e}"
        );
    }

    #[test]
    fn the_input_scaling_entry_names_the_rule() {
        assert_eq!(scaling_text(&InputScaling::Unit), "pixels / 255");
        assert_eq!(scaling_text(&InputScaling::None), "as is");
        let text = scaling_text(&InputScaling::Standard {
            offset: vec![1.5, -2.0].into(),
            divisor: vec![0.5, 4.0].into(),
        });
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "kind": "standard",
                "rule": "(x - offset) / divisor",
                "offset": [1.5, -2.0],
                "divisor": [0.5, 4.0],
            })
        );
    }

    #[test]
    fn the_file_reads_back_with_the_safetensors_reader() {
        let mut m = Model::tied(
            5,
            3,
            Layer::Sigmoid,
            &[Layer::LifetimeTopK { fraction: 0.25 }],
            &mut rng(6),
        );
        m.params[1].value[[0, 2]] = -0.0;
        let d = state_dict(&m).unwrap();
        let bytes = d.to_bytes("toy", &InputScaling::Unit).unwrap();
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = header.metadata().as_ref().unwrap();
        assert_eq!(meta["format"], FORMAT);
        assert_eq!(meta["variant"], "toy");
        assert_eq!(meta["tied"], "true");
        assert_eq!(meta["input_scaling"], "pixels / 255");
        assert_eq!(meta["code_after"], "3");
        assert_eq!(meta["input_shape"], "[5]");
        assert_eq!(meta["activations"], r#"{"encoder.0":"sigmoid","decoder.0":"sigmoid"}"#);
        let layers: serde_json::Value = serde_json::from_str(&meta["layers"]).unwrap();
        assert_eq!(
            layers[2],
            serde_json::json!({"module": "encoder.2", "kind": "lifetime_top_k", "fraction": 0.25, "inference": "identity"})
        );
        assert_eq!(
            layers[0],
            serde_json::json!({"module": "encoder.0", "kind": "linear", "weight": "encoder.0.weight",
                "bias": "encoder.0.bias", "in_features": 5, "out_features": 3})
        );
        let back: Vec<Step> = serde_json::from_value(layers).unwrap();
        assert_eq!(back, d.layers);
        let file = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(file.len(), 4);
        for t in &d.tensors {
            let v = file.tensor(&t.name).unwrap();
            assert_eq!(v.dtype(), Dtype::F32);
            assert_eq!(v.shape(), t.shape.as_slice());
            let le: Vec<u8> = t.values.iter().flat_map(|x| x.to_le_bytes()).collect();
            assert_eq!(v.data(), le.as_slice(), "{}", t.name);
        }
        // Bit for bit: the negative zero survives.
        let bias = file.tensor("encoder.0.bias").unwrap();
        assert_eq!(&bias.data()[8..12], (-0.0f32).to_le_bytes());
    }

    #[test]
    fn a_failed_write_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let listing = || {
            let mut v: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            v.sort();
            v
        };
        // The target is a directory: the rename fails after the temporary file was written.
        let target = dir.path().join("out.safetensors");
        fs::create_dir(&target).unwrap();
        assert!(write_whole(&target, b"data").is_err());
        assert_eq!(listing(), ["out.safetensors"]);
        assert!(target.is_dir());
        // Under a regular file: nothing can be created.
        fs::write(dir.path().join("plain"), b"x").unwrap();
        assert!(write_whole(&dir.path().join("plain/out.safetensors"), b"data").is_err());
        assert_eq!(listing(), ["out.safetensors", "plain"]);
        // A good write replaces the file whole and leaves nothing else.
        let ok = dir.path().join("sub/ok.safetensors");
        write_whole(&ok, b"one").unwrap();
        write_whole(&ok, b"two").unwrap();
        assert_eq!(fs::read(&ok).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }
}
