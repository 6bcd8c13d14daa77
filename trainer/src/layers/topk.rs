//! Hard sparsity: per sample keep the `k` largest codes, zero the rest; gradients pass only
//! through the kept codes. A tie goes to the lower index (as the int8 core does).
//!
//! The kept positions are remembered as a 0/1 mask, which backward multiplies in.

use ndarray::{ArrayView2, ArrayViewMut2, Axis, Zip};

/// Marks each row's `k` largest entries with 1 and the rest with 0.
// x: (N, K) -> mask: (N, K)
pub fn select(x: ArrayView2<f32>, mut mask: ArrayViewMut2<f32>, k: usize) {
    let width = x.ncols();
    let mut order: Vec<usize> = Vec::with_capacity(width);
    for (row, mut m) in x.axis_iter(Axis(0)).zip(mask.axis_iter_mut(Axis(0))) {
        if k >= width {
            m.fill(1.0);
            continue;
        }
        m.fill(0.0);
        if k == 0 {
            continue;
        }
        order.clear();
        order.extend(0..width);
        // Larger value first; equal values: lower index first.
        order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        for &i in &order[..k] {
            m[i] = 1.0;
        }
    }
}

/// `y = x ⊙ mask` (forward), or `dx = dy ⊙ mask` (backward).
// x: (N, K), mask: (N, K) -> y: (N, K)
pub fn apply(x: ArrayView2<f32>, mask: ArrayView2<f32>, y: ArrayViewMut2<f32>) {
    Zip::from(y).and(x).and(mask).for_each(|y, &x, &m| *y = x * m);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, dot, random};
    use ndarray::{array, Array2};

    #[test]
    fn keeps_the_k_largest_with_ties_to_the_lower_index() {
        let x = array![[0.5, -1.0, 2.0, 0.5, 0.5], [3.0, 3.0, 3.0, 3.0, 3.0]];
        let mut mask = Array2::zeros((2, 5));
        select(x.view(), mask.view_mut(), 2);
        assert_eq!(mask, array![[1.0, 0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0, 0.0]]);
        select(x.view(), mask.view_mut(), 3);
        assert_eq!(mask.row(0), array![1.0, 0.0, 1.0, 1.0, 0.0]);
        let mut y = Array2::zeros((2, 5));
        apply(x.view(), mask.view(), y.view_mut());
        assert_eq!(y.row(0), array![0.5, 0.0, 2.0, 0.5, 0.0]);
    }

    #[test]
    fn k_zero_and_k_at_least_width() {
        let x = array![[1.0, 2.0]];
        let mut mask = Array2::zeros((1, 2));
        select(x.view(), mask.view_mut(), 0);
        assert_eq!(mask, array![[0.0, 0.0]]);
        select(x.view(), mask.view_mut(), 5);
        assert_eq!(mask, array![[1.0, 1.0]]);
    }

    #[test]
    fn gradient_flows_only_through_kept_codes() {
        // Distinct values: a small perturbation does not change which codes are kept.
        let x = random(41, (4, 9), 1.0);
        let r = random(42, (4, 9), 1.0);
        let k = 3;
        let loss = |x: &Array2<f32>| {
            let mut mask = Array2::zeros(x.dim());
            select(x.view(), mask.view_mut(), k);
            let mut y = Array2::zeros(x.dim());
            apply(x.view(), mask.view(), y.view_mut());
            dot(&y, &r)
        };
        let mut mask = Array2::zeros(x.dim());
        select(x.view(), mask.view_mut(), k);
        let mut dx = Array2::zeros(x.dim());
        apply(r.view(), mask.view(), dx.view_mut());
        check("topk dx", &x, &dx, loss);
        for row in dx.rows() {
            assert_eq!(row.iter().filter(|&&g| g != 0.0).count(), k);
        }
    }
}
