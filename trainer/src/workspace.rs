//! One thread's buffers for a shard of a batch: the input (and the clean target when the input
//! is corrupted), every layer's output, the gradient of every layer's output, the masks of the
//! sparsity layers, and its own parameter gradients. Allocated once for the largest shard and
//! reused; a smaller shard uses the leading rows.
//!
//! Forward and backward run over a range of layers, so that the trainer can stop at a layer
//! that needs the whole batch (lifetime top-k), decide for all shards, and go on.

use crate::layers::{conv2d, leaky_relu, linear, max_pool, mse, sigmoid, topk};
use crate::model::{Layer, Model};
use crate::noise::Noise;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};
use rand_chacha::ChaCha8Rng;
use std::ops::Range;

/// A value of a sample as stored, and the network's input value it becomes: a u8 pixel `p` is
/// `p / 255` (MNIST's unit scaling), an f32 is already scaled.
pub trait InputValue: Copy {
    /// The network's input value.
    fn input(self) -> f32;
}

impl InputValue for u8 {
    fn input(self) -> f32 {
        self as f32 / 255.0
    }
}

impl InputValue for f32 {
    fn input(self) -> f32 {
        self
    }
}

/// Buffers of one shard.
pub struct Workspace {
    /// Input rows as the network sees them (scaled: MNIST's pixels in [0, 1]).
    pub x: Array2<f32>,
    /// The clean rows when `x` is corrupted (empty otherwise).
    pub clean: Array2<f32>,
    /// Output of each layer.
    pub acts: Vec<Array2<f32>>,
    /// Gradient of the loss with respect to each layer's output.
    pub dacts: Vec<Array2<f32>>,
    /// 0/1 mask of each sparsity layer (empty for other layers).
    pub masks: Vec<Array2<f32>>,
    /// Gradient of each parameter, summed over this shard.
    pub grads: Vec<Array2<f32>>,
    /// Each max-pool layer's argmax indices (empty for other layers).
    pub argmax: Vec<Vec<u32>>,
    /// Scratch of the convolutions, reused by all of them.
    pub scratch: Vec<f32>,
    /// Rows in use.
    pub rows: usize,
    noisy: bool,
}

impl Workspace {
    /// Buffers for up to `capacity` rows of `model`.
    pub fn new(model: &Model, capacity: usize) -> Workspace {
        let widths = model.widths().expect("a valid model");
        Workspace {
            x: Array2::zeros((capacity, model.input)),
            clean: Array2::zeros((0, model.input)),
            acts: widths.iter().map(|&w| Array2::zeros((capacity, w))).collect(),
            dacts: widths.iter().map(|&w| Array2::zeros((capacity, w))).collect(),
            masks: model
                .layers
                .iter()
                .zip(&widths)
                .map(|(l, &w)| Array2::zeros(if l.has_mask() { (capacity, w) } else { (0, 0) }))
                .collect(),
            grads: model.params.iter().map(|p| Array2::zeros(p.value.dim())).collect(),
            argmax: vec![Vec::new(); model.layers.len()],
            scratch: Vec::new(),
            rows: 0,
            noisy: false,
        }
    }

    /// Rows the buffers hold.
    pub fn capacity(&self) -> usize {
        self.x.nrows()
    }

    /// Fills the input with samples, row after row: u8 pixels scaled to [0, 1] as `p / 255`, or
    /// scaled f32 values as they are ([`InputValue`]).
    pub fn load<T: InputValue>(&mut self, samples: impl Iterator<Item = impl AsRef<[T]>>) {
        let mut rows = 0;
        let width = self.x.ncols();
        // Slices, not ndarray rows: the copy (or conversion) of a row vectorises.
        let x = self.x.as_slice_mut().expect("the input buffer is a standard array");
        let mut samples = samples.peekable();
        for dst in x.chunks_exact_mut(width.max(1)) {
            let Some(src) = samples.next() else { break };
            if let Some(next) = samples.peek() {
                prefetch(next.as_ref());
            }
            for (d, &p) in dst.iter_mut().zip(src.as_ref()) {
                *d = p.input();
            }
            rows += 1;
        }
        self.rows = rows;
        self.noisy = false;
    }

    /// Fills the input with samples (as [`Workspace::load`]) corrupted by `noise`, each with its
    /// own generator, and keeps the clean samples as the target.
    pub fn load_noisy<T: InputValue, P: AsRef<[T]>>(
        &mut self,
        images: impl Iterator<Item = (P, ChaCha8Rng)>,
        noise: &Noise,
    ) {
        if self.clean.nrows() != self.x.nrows() {
            self.clean = Array2::zeros(self.x.dim());
        }
        let mut rows = 0;
        for ((mut dst, mut clean), (src, mut rng)) in
            self.x.rows_mut().into_iter().zip(self.clean.rows_mut()).zip(images)
        {
            for ((d, c), &p) in dst.iter_mut().zip(clean.iter_mut()).zip(src.as_ref()) {
                *c = p.input();
                *d = *c;
            }
            noise.apply(
                dst.as_slice_mut().expect("rows of a standard array are contiguous"),
                &mut rng,
            );
            rows += 1;
        }
        self.rows = rows;
        self.noisy = true;
    }

    /// Sets the output of layer `i` for the rows loaded, in their order, so that a forward pass
    /// can start at layer `i + 1` (the frozen layers' output kept for a greedy stage).
    pub fn set_act<'a>(&mut self, i: usize, rows: impl Iterator<Item = &'a [f32]>) {
        let width = self.acts[i].ncols();
        let act = self.acts[i]
            .as_slice_mut()
            .expect("a layer's buffer is a standard array");
        for (dst, src) in act.chunks_exact_mut(width.max(1)).take(self.rows).zip(rows) {
            dst.copy_from_slice(src);
        }
    }

    /// The input rows in use, as the network sees them.
    pub fn input(&self) -> ArrayView2<'_, f32> {
        self.x.slice(s![..self.rows, ..])
    }

    /// The rows the output is compared with: the clean images.
    pub fn target(&self) -> ArrayView2<'_, f32> {
        if self.noisy {
            self.clean.slice(s![..self.rows, ..])
        } else {
            self.input()
        }
    }

    /// The last layer's output rows in use.
    pub fn output(&self) -> ArrayView2<'_, f32> {
        self.act(self.acts.len() - 1)
    }

    /// Output of layer `i` (rows in use).
    pub fn act(&self, i: usize) -> ArrayView2<'_, f32> {
        self.acts[i].slice(s![..self.rows, ..])
    }

    /// Input of layer `i` and its mask (rows in use), for choosing a batch-coupled mask.
    pub fn input_and_mask(&mut self, i: usize) -> (ArrayView2<'_, f32>, ArrayViewMut2<'_, f32>) {
        let n = self.rows;
        let input = if i == 0 {
            self.x.slice(s![..n, ..])
        } else {
            self.acts[i - 1].slice(s![..n, ..])
        };
        (input, self.masks[i].slice_mut(s![..n, ..]))
    }

    /// Runs every layer on the loaded rows; `train` selects the training behaviour of layers
    /// that differ (lifetime top-k, which must have its mask set first).
    pub fn forward(&mut self, model: &Model, train: bool) {
        self.forward_range(model, 0..model.layers.len(), train);
    }

    /// Runs layers `range` on the loaded rows.
    pub fn forward_range(&mut self, model: &Model, range: Range<usize>, train: bool) {
        let n = self.rows;
        for i in range {
            let (done, rest) = self.acts.split_at_mut(i);
            let input = if i == 0 {
                self.x.slice(s![..n, ..])
            } else {
                done[i - 1].slice(s![..n, ..])
            };
            let out = rest[0].slice_mut(s![..n, ..]);
            match model.layers[i] {
                Layer::Linear {
                    weight,
                    bias,
                    transposed,
                } => {
                    let w = &model.params[weight].value;
                    let w = if transposed { w.t() } else { w.view() };
                    linear::forward(input, w, model.params[bias].value.row(0), out);
                }
                Layer::LeakyRelu { slope } => leaky_relu::forward(input, out, slope),
                Layer::Sigmoid => sigmoid::forward(input, out),
                Layer::TopK { k } => {
                    let mut mask = self.masks[i].slice_mut(s![..n, ..]);
                    topk::select(input, mask.view_mut(), k);
                    topk::apply(input, mask.view(), out);
                }
                Layer::Conv2d { weight, bias, geometry } => conv2d::forward(
                    input,
                    model.params[weight].value.view(),
                    model.params[bias].value.row(0),
                    out,
                    &geometry,
                    &mut self.scratch,
                ),
                Layer::MaxPool2d { geometry } => max_pool::forward(input, out, &mut self.argmax[i], &geometry),
                Layer::LifetimeTopK { .. } => {
                    if train {
                        topk::apply(input, self.masks[i].slice(s![..n, ..]), out);
                    } else {
                        let mut out = out;
                        out.assign(&input);
                    }
                }
            }
        }
    }

    /// MSE of the output against the target; sets the output gradient for a batch of
    /// `batch_rows` rows in all and returns this shard's sum of squared errors.
    pub fn reconstruction_loss(&mut self, batch_rows: usize) -> f64 {
        let n = self.rows;
        let last = self.acts.len() - 1;
        let total = batch_rows * self.x.ncols();
        let target = if self.noisy { &self.clean } else { &self.x };
        mse::forward_backward(
            self.acts[last].slice(s![..n, ..]),
            target.slice(s![..n, ..]),
            self.dacts[last].slice_mut(s![..n, ..]),
            total,
        )
    }

    /// The last layer's output and its gradient (rows in use), for losses other than MSE.
    pub fn output_and_grad(&mut self) -> (ArrayView2<'_, f32>, ArrayViewMut2<'_, f32>) {
        let (i, n) = (self.acts.len() - 1, self.rows);
        (self.acts[i].slice(s![..n, ..]), self.dacts[i].slice_mut(s![..n, ..]))
    }

    /// The code (output of the encoder's last layer) and its gradient, for penalties.
    pub fn code_and_grad(&mut self, model: &Model) -> (ArrayView2<'_, f32>, ArrayViewMut2<'_, f32>) {
        let i = model.code_after - 1;
        let n = self.rows;
        (self.acts[i].slice(s![..n, ..]), self.dacts[i].slice_mut(s![..n, ..]))
    }

    /// Clears the parameter gradients before a backward pass.
    pub fn zero_grads(&mut self) {
        for g in &mut self.grads {
            g.fill(0.0);
        }
    }

    /// Clears only the gradients a backward pass will write (`written`, from
    /// [`Model::gradients_written`]): the others are zero already, or unused.
    pub fn zero_written_grads(&mut self, written: &[bool]) {
        for (g, _) in self.grads.iter_mut().zip(written).filter(|(_, &w)| w) {
            g.fill(0.0);
        }
    }

    /// Back-propagates the output gradient through every layer.
    pub fn backward(&mut self, model: &Model) {
        self.zero_grads();
        self.backward_range(model, 0..model.layers.len());
    }

    /// Back-propagates through layers `range`, last first, from the gradient of the last one's
    /// output; parameter gradients add up.
    pub fn backward_range(&mut self, model: &Model, range: Range<usize>) {
        let n = self.rows;
        // A layer's input gradient is needed only if a layer below it has something to learn.
        let lowest = model.first_trainable_layer();
        for i in range.rev() {
            let input = if i == 0 {
                self.x.slice(s![..n, ..])
            } else {
                self.acts[i - 1].slice(s![..n, ..])
            };
            let output = self.acts[i].slice(s![..n, ..]);
            let (before, rest) = self.dacts.split_at_mut(i);
            let dy = rest[0].slice(s![..n, ..]);
            let dx: Option<ArrayViewMut2<f32>> = if i > lowest {
                Some(before[i - 1].slice_mut(s![..n, ..]))
            } else {
                None
            };
            match model.layers[i] {
                Layer::Linear {
                    weight,
                    bias,
                    transposed,
                } => {
                    let w = &model.params[weight].value;
                    if model.params[weight].frozen && model.params[bias].frozen {
                        if let Some(dx) = dx {
                            linear::backward_input(if transposed { w.t() } else { w.view() }, dy, dx);
                        }
                        continue;
                    }
                    // Weight and bias are distinct tensors: lend the bias gradient out so both
                    // can be borrowed mutably at once.
                    let mut db = std::mem::take(&mut self.grads[bias]);
                    let (w, dw) = if transposed {
                        (w.t(), self.grads[weight].view_mut().reversed_axes())
                    } else {
                        (w.view(), self.grads[weight].view_mut())
                    };
                    linear::backward(input, w, dy, dw, db.row_mut(0), dx);
                    self.grads[bias] = db;
                }
                Layer::LeakyRelu { slope } => {
                    if let Some(dx) = dx {
                        leaky_relu::backward(output, dy, dx, slope);
                    }
                }
                Layer::Sigmoid => {
                    if let Some(dx) = dx {
                        sigmoid::backward(output, dy, dx);
                    }
                }
                Layer::TopK { .. } | Layer::LifetimeTopK { .. } => {
                    if let Some(dx) = dx {
                        topk::apply(dy, self.masks[i].slice(s![..n, ..]), dx);
                    }
                }
                Layer::Conv2d { weight, bias, geometry } => {
                    let mut db = std::mem::take(&mut self.grads[bias]);
                    conv2d::backward(
                        input,
                        model.params[weight].value.view(),
                        dy,
                        self.grads[weight].view_mut(),
                        db.row_mut(0),
                        dx,
                        &geometry,
                        &mut self.scratch,
                    );
                    self.grads[bias] = db;
                }
                Layer::MaxPool2d { geometry } => {
                    if let Some(dx) = dx {
                        max_pool::backward(dy, &self.argmax[i], dx, &geometry);
                    }
                }
            }
        }
    }
}

/// Asks the CPU to fetch `row` into the cache, line by line, while the current row is copied:
/// the rows of a batch sit at random places in the samples, past what its prefetcher guesses.
fn prefetch<T>(row: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = std::mem::size_of_val(row);
        let base = row.as_ptr().cast::<i8>();
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch only hints; the address is inside `row`.
            unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(base.add(off)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn batch(seed: u64, rows: usize, width: usize) -> Vec<Vec<u8>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..rows).map(|_| (0..width).map(|_| rng.random()).collect()).collect()
    }

    fn loss(model: &Model, ws: &mut Workspace, rows: usize) -> f64 {
        ws.forward(model, true);
        ws.reconstruction_loss(rows) / (rows * model.input) as f64
    }

    /// The whole tied autoencoder: the shared weight's gradient sums the encoder's and the
    /// decoder's uses, and the MSE, LeakyReLU and bias gradients chain correctly.
    fn check_model(mut model: Model, label: &str) {
        let rows = 5;
        let images = batch(3, rows, model.input);
        let mut ws = Workspace::new(&model, 8);
        ws.load(images.iter());
        loss(&model, &mut ws, rows);
        ws.backward(&model);
        let analytic = ws.grads.clone();
        for (p, grad) in analytic.iter().enumerate() {
            let name = model.params[p].name.clone();
            let value = model.params[p].value.clone();
            crate::layers::gradcheck::check(&format!("{label} {name}"), &value, grad, |v| {
                model.params[p].value.assign(v);
                let l = loss(&model, &mut ws, rows);
                model.params[p].value.assign(&value);
                l
            });
        }
    }

    #[test]
    fn tied_autoencoder_gradients_match_finite_differences() {
        let model = Model::fc_tied(12, 4, &mut ChaCha8Rng::seed_from_u64(5));
        check_model(model, "tied");
    }

    #[test]
    fn untied_autoencoder_gradients_match_finite_differences() {
        let mut model = Model::fc_tied(12, 4, &mut ChaCha8Rng::seed_from_u64(6));
        model.untie();
        check_model(model, "untied");
    }

    #[test]
    fn tied_gradient_is_the_sum_of_both_uses() {
        // Untying copies the weight, so the untied model computes the same function; its two
        // weight gradients must add up to the tied model's one.
        let tied = Model::fc_tied(10, 3, &mut ChaCha8Rng::seed_from_u64(7));
        let mut untied = tied.clone();
        untied.untie();
        let images = batch(8, 4, 10);
        let grads = |m: &Model| {
            let mut ws = Workspace::new(m, 4);
            ws.load(images.iter());
            loss(m, &mut ws, 4);
            ws.backward(m);
            ws.grads
        };
        let g_tied = grads(&tied);
        let g_untied = grads(&untied);
        let summed = &g_untied[0] + &g_untied[3].t();
        for ((i, j), &v) in g_tied[0].indexed_iter() {
            assert!(
                (v - summed[[i, j]]).abs() <= 1e-6,
                "({i},{j}): tied {v}, encoder+decoder {}",
                summed[[i, j]]
            );
        }
    }
}
