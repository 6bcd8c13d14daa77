//! Fully connected layer, as PyTorch's `nn.Linear`: `y = x·Wᵀ + b` with `W` stored `(O, I)`.
//!
//! The tied decoder passes the encoder's `(K, D)` weight as the transposed view `Wᵀ`: the same
//! code then reads one matrix and adds its gradient into the same buffer, through a view.

use crate::matmul::matmul;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis};

/// `y = x·Wᵀ + b`.
// x: (N, I), w: (O, I), b: (O) -> y: (N, O)
pub fn forward(x: ArrayView2<f32>, w: ArrayView2<f32>, b: ArrayView1<f32>, y: ArrayViewMut2<f32>) {
    if x.nrows() <= NARROW_ROWS && w.strides()[1] == 1 && y.is_standard_layout() {
        forward_narrow(x, w, b, y);
    } else {
        forward_plain(x, w, b, y);
    }
}

/// Shards of at most this many rows take the narrow path (the product into `yᵀ`).
pub const NARROW_ROWS: usize = 64;

/// The reference: the bias into `y`, the product accumulated onto it (one pass over y fewer).
pub fn forward_plain(x: ArrayView2<f32>, w: ArrayView2<f32>, b: ArrayView1<f32>, mut y: ArrayViewMut2<f32>) {
    y.assign(&b.broadcast(y.dim()).expect("bias length equals output width"));
    matmul(x, w.t(), y, true);
}

thread_local! {
    /// `yᵀ` of [`forward_narrow`], kept between calls.
    static OUTPUT_T: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`forward_plain`] for few rows and a row-major `W`, bit for bit: the product is computed
/// into `yᵀ` and copied into `y`. Into a row-major `y`, the `gemm` crate packs all of `W`
/// (its rows are not contiguous along the output) for only a few rows of `x` to use it: 17 to
/// 30 % of the time on 64 rows. Into `yᵀ` it packs the few rows of `x` instead, and the copy
/// costs far less. The sums are the same, in the same order (one chain over the inputs per
/// output value, in the same blocks: the blocking depends on the input width only).
fn forward_narrow(x: ArrayView2<f32>, w: ArrayView2<f32>, b: ArrayView1<f32>, mut y: ArrayViewMut2<f32>) {
    let (n, o) = y.dim();
    OUTPUT_T.with_borrow_mut(|t| {
        t.resize(n * o, 0.0);
        // yᵀ as (O, N), row j starting at b[j]: y as an (N, O) view with strides (1, N).
        for (row, &bj) in t.chunks_exact_mut(n.max(1)).zip(b.iter()) {
            row.fill(bj);
        }
        let yt = ArrayViewMut2::from_shape((o, n), &mut t[..]).expect("n·o values");
        matmul(x, w.t(), yt.reversed_axes(), true);
        // Back to rows, 8 of them at a time: reads of 8 contiguous values, writes along rows.
        let out = y.as_slice_mut().expect("a standard-layout output");
        for r0 in (0..n).step_by(8) {
            let r1 = (r0 + 8).min(n);
            for (j, col) in t.chunks_exact(n.max(1)).enumerate() {
                for (r, &v) in (r0..r1).zip(&col[r0..r1]) {
                    out[r * o + j] = v;
                }
            }
        }
    });
}

/// Adds `dW += dyᵀ·x` and `db += Σₙ dy`; writes `dx = dy·W` when asked.
// x: (N, I), w: (O, I), dy: (N, O) -> dw: (O, I), db: (O), dx: (N, I)
pub fn backward(
    x: ArrayView2<f32>,
    w: ArrayView2<f32>,
    dy: ArrayView2<f32>,
    dw: ArrayViewMut2<f32>,
    mut db: ArrayViewMut1<f32>,
    dx: Option<ArrayViewMut2<f32>>,
) {
    matmul(dy.t(), x, dw, true);
    for row in dy.axis_iter(Axis(0)) {
        db += &row;
    }
    if let Some(dx) = dx {
        backward_input(w, dy, dx);
    }
}

/// Writes `dx = dy·W` alone: the backward pass through a frozen layer.
// w: (O, I), dy: (N, O) -> dx: (N, I)
pub fn backward_input(w: ArrayView2<f32>, dy: ArrayView2<f32>, dx: ArrayViewMut2<f32>) {
    matmul(dy, w, dx, false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, dot, random};
    use ndarray::{Array1, Array2};

    #[test]
    fn forward_by_hand() {
        // x = [1, 2], W = [[1, 0], [0.5, -1]], b = [0.25, 1] -> y = [1.25, 1 - 2 + 0.5]
        let x = Array2::from_shape_vec((1, 2), vec![1.0, 2.0]).unwrap();
        let w = Array2::from_shape_vec((2, 2), vec![1.0, 0.0, 0.5, -1.0]).unwrap();
        let b = Array1::from(vec![0.25, 1.0]);
        let mut y = Array2::zeros((1, 2));
        forward(x.view(), w.view(), b.view(), y.view_mut());
        assert_eq!(y.as_slice().unwrap(), &[1.25, -0.5]);
    }

    #[test]
    fn the_narrow_path_is_the_plain_one_bit_for_bit() {
        // Row counts up to NARROW_ROWS, odd ones among them; input widths past the 512 where
        // the product starts a second block of sums; a width of 1.
        for (seed, (n, i, o)) in [
            (64, 784, 1000),
            (64, 1000, 500),
            (37, 250, 30),
            (64, 30, 250),
            (1, 784, 64),
            (9, 1, 7),
        ]
        .into_iter()
        .enumerate()
        {
            let seed = seed as u64 * 10;
            let x = random(seed + 1, (n, i), 1.0);
            let w = random(seed + 2, (o, i), 0.1);
            let b = random(seed + 3, (1, o), 1.0);
            let mut plain = Array2::zeros((n, o));
            forward_plain(x.view(), w.view(), b.row(0), plain.view_mut());
            let mut narrow = Array2::from_elem((n, o), f32::NAN);
            forward_narrow(x.view(), w.view(), b.row(0), narrow.view_mut());
            let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&narrow), bits(&plain), "{n}x{i} -> {o}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let (n, i, o) = (5, 7, 3);
        let x = random(1, (n, i), 1.0);
        let w = random(2, (o, i), 1.0);
        let b = random(3, (1, o), 1.0);
        // Objective L = Σ y ⊙ r, so dL/dy = r.
        let r = random(4, (n, o), 1.0);
        let loss = |x: &Array2<f32>, w: &Array2<f32>, b: &Array2<f32>| {
            let mut y = Array2::zeros((n, o));
            forward(x.view(), w.view(), b.row(0), y.view_mut());
            dot(&y, &r)
        };
        let mut dw = Array2::zeros((o, i));
        let mut db = Array2::zeros((1, o));
        let mut dx = Array2::zeros((n, i));
        backward(
            x.view(),
            w.view(),
            r.view(),
            dw.view_mut(),
            db.row_mut(0),
            Some(dx.view_mut()),
        );
        check("linear dx", &x, &dx, |x| loss(x, &w, &b));
        check("linear dW", &w, &dw, |w| loss(&x, w, &b));
        check("linear db", &b, &db, |b| loss(&x, &w, b));
    }

    #[test]
    fn backward_accumulates_into_parameter_gradients() {
        let x = random(5, (4, 3), 1.0);
        let w = random(6, (2, 3), 1.0);
        let dy = random(7, (4, 2), 1.0);
        let mut once = Array2::zeros((2, 3));
        let mut db = Array1::zeros(2);
        backward(x.view(), w.view(), dy.view(), once.view_mut(), db.view_mut(), None);
        let mut twice = once.clone();
        backward(x.view(), w.view(), dy.view(), twice.view_mut(), db.view_mut(), None);
        for (a, b) in once.iter().zip(twice.iter()) {
            assert!((2.0 * a - b).abs() < 1e-6, "second backward must add: {a} then {b}");
        }
    }
}
