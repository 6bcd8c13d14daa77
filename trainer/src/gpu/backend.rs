//! What the device training step asks of a device: buffers, copies, a matrix product and a
//! fixed list of kernels ([`Kernel`]), each described by what it computes. Two backends answer:
//! `crate::gpu::cuda` (feature `cuda`: the GPU, cuBLAS and the CUDA C of `kernels.cu`) and
//! [`crate::gpu::host`] (plain Rust, the reference the step is tested against on any machine).
//!
//! Matrices are row-major and dense: a `(rows, cols)` matrix at [`At`] occupies `rows · cols`
//! consecutive values from there.

use super::DeviceError;
use crate::layers::conv2d::Conv2dGeometry;
use crate::layers::max_pool::MaxPoolGeometry;
use crate::optim::adam::Constants as AdamStep;

/// A buffer of `f32` on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buf(pub(crate) usize);

/// A buffer of `u32` on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids(pub(crate) usize);

/// A place in an `f32` buffer: the buffer and an offset in values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    /// The buffer.
    pub buf: Buf,
    /// Values before the place.
    pub offset: usize,
}

impl Buf {
    /// The buffer's first value.
    pub fn start(self) -> At {
        At { buf: self, offset: 0 }
    }

    /// The buffer's value `offset`.
    pub fn at(self, offset: usize) -> At {
        At { buf: self, offset }
    }
}

/// `C = op(A)·op(B)`, or `C += op(A)·op(B)` when `accumulate`; `op(A)` is `(m, k)`, `op(B)` is
/// `(k, n)`, `C` is `(m, n)`. `A` is stored `(m, k)`, or `(k, m)` and used transposed when `a_t`;
/// `B` is stored `(k, n)`, or `(n, k)` when `b_t`.
#[derive(Clone, Copy, Debug)]
pub struct Gemm {
    /// Rows of `C`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// The inner dimension.
    pub k: usize,
    /// `A`.
    pub a: At,
    /// `A` is stored transposed.
    pub a_t: bool,
    /// `B`.
    pub b: At,
    /// `B` is stored transposed.
    pub b_t: bool,
    /// `C`.
    pub c: At,
    /// Add to `C` instead of overwriting it.
    pub accumulate: bool,
}

/// An elementwise activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// `x` for `x > 0`, else `slope · x`.
    Leaky(f32),
    /// `1 / (1 + e^−x)`.
    Sigmoid,
}

/// What a row reduction sums: `f(x)` or `f(x − t)` for every value of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sum {
    /// `(x − t)²`.
    SquaredError,
    /// `|x|`.
    Abs,
    /// `x²`.
    Square,
}

/// The kernels. Each names its buffers; sizes are in values.
#[derive(Clone, Copy, Debug)]
pub enum Kernel {
    /// `x[i] = value` for `i < n`.
    Fill { x: At, n: usize, value: f32 },
    /// Row `r` of `out` is row `order[first + r]` of `data` (`width` values a row).
    Gather {
        data: Buf,
        order: Ids,
        first: usize,
        rows: usize,
        width: usize,
        out: Buf,
    },
    /// `y[r, j] += bias[j / per]` over a `(rows, cols)` `y`; then `z = act(y)` when given.
    BiasAct {
        y: Buf,
        bias: At,
        rows: usize,
        cols: usize,
        per: usize,
        act: Option<(Act, Buf)>,
    },
    /// `y = act(x)` over `n` values.
    Activate { x: Buf, y: Buf, n: usize, act: Act },
    /// `dx = dy · act'` over `n` values, from the activation's output `y`.
    ActBackward {
        y: Buf,
        dy: Buf,
        dx: Buf,
        n: usize,
        act: Act,
    },
    /// `y = x ⊙ mask` over `n` values.
    MaskMul { x: Buf, mask: Buf, y: Buf, n: usize },
    /// Per row of a `(rows, cols)` `x`, 1 in `mask` for its `k` largest values (ties to the
    /// lower column), 0 elsewhere.
    TopK {
        x: Buf,
        mask: Buf,
        rows: usize,
        cols: usize,
        k: usize,
    },
    /// Per column, 1 in `mask` for its `k` largest values over the rows (ties to the earlier
    /// row), 0 elsewhere.
    LifetimeTopK {
        x: Buf,
        mask: Buf,
        rows: usize,
        cols: usize,
        k: usize,
    },
    /// Softmax cross-entropy of `(rows, cols)` logits `z` against class `labels`, as
    /// [`crate::layers::softmax_ce`]: `out[r] = −log softmax(z_r)[label_r]` and
    /// `dz = (softmax(z) − onehot(label)) / total_rows`.
    SoftmaxCe {
        z: Buf,
        labels: Ids,
        dz: Buf,
        rows: usize,
        cols: usize,
        total_rows: usize,
        out: Buf,
    },
    /// `dy = scale · (y − t)` over `n` values.
    MseGrad {
        y: Buf,
        t: Buf,
        dy: Buf,
        n: usize,
        scale: f32,
    },
    /// `out[r] = Σⱼ f(x[r, j] (− t[r, j]))` over a `(rows, cols)` `x`.
    RowSums {
        x: At,
        t: Option<Buf>,
        sum: Sum,
        rows: usize,
        cols: usize,
        out: Buf,
    },
    /// `out = scale · Σ parts[..n]`, or `out += …` when `accumulate`, summed in f64.
    Total {
        parts: Buf,
        n: usize,
        scale: f64,
        out: At,
        accumulate: bool,
    },
    /// `dc += g · sign(c)` where `c ≠ 0`, over `n` values (the L1 penalty's gradient).
    L1Grad { c: Buf, dc: Buf, n: usize, g: f32 },
    /// The KL sparsity penalty from the column sums `sums` of a `(rows, cols)` code: `dc` gains
    /// its gradient and `out` its value, `λ/K · Σⱼ KL(ρ ‖ ρ̂ⱼ)` with `ρ̂ⱼ = sumⱼ / rows` clamped
    /// to `[1e−6, 1 − 1e−6]`.
    Kl {
        sums: Buf,
        dc: Buf,
        rows: usize,
        cols: usize,
        rho: f64,
        lambda: f64,
        out: At,
    },
    /// The patches of a convolution: row `n·P + p` of `cols` holds the `C·k·k` input values
    /// under output position `p` of sample `n` (channel, kernel row, kernel column order).
    Im2Col {
        x: Buf,
        cols: Buf,
        rows: usize,
        shape: Conv2dGeometry,
    },
    /// `dx[n, c, i, j] = Σ` of the patch gradients `dcols` that read input `(c, i, j)`.
    Col2Im {
        dcols: Buf,
        dx: Buf,
        rows: usize,
        shape: Conv2dGeometry,
    },
    /// `y[n, o·P + p] = z[n·P + p, o] + bias[o]`: the product of patches and weights, laid out
    /// as the layer's `(O, OH, OW)` rows.
    ConvOut {
        z: Buf,
        y: Buf,
        bias: At,
        rows: usize,
        channels: usize,
        positions: usize,
    },
    /// `dz[n·P + p, o] = dy[n, o·P + p]`: the layout back.
    ConvGrad {
        dy: Buf,
        dz: Buf,
        rows: usize,
        channels: usize,
        positions: usize,
    },
    /// 2×2 max-pooling; `argmax` gets each output's input position in its row (a NaN wins,
    /// else the first largest in the order top-left, top-right, bottom-left, bottom-right).
    MaxPool {
        x: Buf,
        y: Buf,
        argmax: Ids,
        rows: usize,
        shape: MaxPoolGeometry,
    },
    /// `dx = 0`, then each output's gradient to its `argmax` position.
    MaxPoolBackward {
        dy: Buf,
        argmax: Ids,
        dx: Buf,
        rows: usize,
        shape: MaxPoolGeometry,
    },
    /// `y += a · x` over `n` values.
    Axpy { x: At, y: At, n: usize, a: f32 },
    /// PyTorch's Adam on `n` values (see [`crate::optim::adam`]), unless `loss` is NaN or
    /// infinite or `halted[0]` is set: then nothing changes and `halted[0]` is set.
    Adam {
        p: At,
        g: At,
        m: At,
        v: At,
        n: usize,
        step: AdamStep,
        loss: At,
        halted: Buf,
    },
}

/// A device the training step runs on. `Send`, so that a trainer holding one can run its epoch
/// on one of its own threads.
pub trait Backend: Send {
    /// Zeroed `f32` buffer of `len` values.
    fn alloc(&mut self, len: usize) -> Result<Buf, DeviceError>;
    /// Zeroed `u32` buffer of `len` values.
    fn alloc_ids(&mut self, len: usize) -> Result<Ids, DeviceError>;
    /// Frees every buffer; handles given out before are invalid after.
    fn free_all(&mut self);
    /// Copies `data` to `to`.
    fn upload(&mut self, to: At, data: &[f32]) -> Result<(), DeviceError>;
    /// Copies `data` to the start of `to`.
    fn upload_ids(&mut self, to: Ids, data: &[u32]) -> Result<(), DeviceError>;
    /// Copies `out.len()` values from `from` once all work before has finished.
    fn download(&mut self, from: At, out: &mut [f32]) -> Result<(), DeviceError>;
    /// Copies the start of `from` into `out` once all work before has finished.
    fn download_ids(&mut self, from: Ids, out: &mut [u32]) -> Result<(), DeviceError>;
    /// A matrix product.
    fn gemm(&mut self, g: &Gemm) -> Result<(), DeviceError>;
    /// A kernel.
    fn run(&mut self, k: &Kernel) -> Result<(), DeviceError>;
}
