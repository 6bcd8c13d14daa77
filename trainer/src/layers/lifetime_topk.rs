//! Lifetime (winner-take-all) sparsity: per code unit, keep the `k` largest values across the
//! batch and zero the rest; gradients pass only through the kept values. Training only: at
//! evaluation the layer is the identity.
//!
//! The choice couples the rows of a batch, so it is made once over all shards of the batch
//! ([`select`]), which then apply their masks independently ([`crate::layers::topk::apply`]).
//! A tie goes to the earlier row of the batch.

use super::whole_batch::BatchMask;
use ndarray::{ArrayView2, ArrayViewMut2};

/// The layer's choice of mask, as the training step sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LifetimeTopK {
    /// Fraction of the batch kept per unit.
    pub fraction: f64,
}

impl BatchMask for LifetimeTopK {
    fn choose(&self, inputs: &[ArrayView2<f32>], masks: &mut [ArrayViewMut2<f32>], batch_size: usize, rows: usize) {
        select(inputs, masks, kept(self.fraction, batch_size, rows));
    }
}

/// Values kept per unit: `ceil(fraction · batch_size)`, at most the `rows` present. As in the
/// tutorial, `k` is fixed by the batch size, so the epoch's last, partial batch keeps more of
/// its rows (all of them when it has fewer than `k`).
pub fn kept(fraction: f64, batch_size: usize, rows: usize) -> usize {
    ((fraction * batch_size as f64).ceil() as usize).min(rows)
}

/// Marks, in each column, the `k` largest entries over all shards with 1 (the rest 0).
/// Shards are in batch order: a tie goes to the lower shard, then the lower row.
// shards[s]: (N_s, K) -> masks[s]: (N_s, K)
pub fn select(shards: &[ArrayView2<f32>], masks: &mut [ArrayViewMut2<f32>], k: usize) {
    let width = shards.first().map_or(0, |s| s.ncols());
    let rows: usize = shards.iter().map(|s| s.nrows()).sum();
    for m in masks.iter_mut() {
        m.fill(if k >= rows { 1.0 } else { 0.0 });
    }
    if k == 0 || k >= rows {
        return;
    }
    // (value, shard, row) of one column, in batch order.
    let mut column: Vec<(f32, usize, usize)> = Vec::with_capacity(rows);
    for j in 0..width {
        column.clear();
        for (s, shard) in shards.iter().enumerate() {
            column.extend(shard.column(j).iter().enumerate().map(|(i, &v)| (v, s, i)));
        }
        column.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
        for &(_, s, i) in &column[..k] {
            masks[s][[i, j]] = 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::gradcheck::{check, dot, random};
    use crate::layers::topk::apply;
    use ndarray::{array, s, Array2};

    #[test]
    fn kept_counts() {
        assert_eq!(kept(0.25, 512, 512), 128);
        assert_eq!(kept(0.05, 512, 512), 26); // 25.6 rounds up
                                              // The last batch of an epoch (60,000 = 117·512 + 96) keeps min(k, rows).
        assert_eq!(kept(0.25, 512, 96), 96);
        assert_eq!(kept(0.05, 512, 96), 26);
        assert_eq!(kept(0.05, 512, 1), 1);
    }

    #[test]
    fn keeps_each_columns_largest_across_shards_with_ties_to_earlier_rows() {
        // Column 0: 1, 5, 5, 2 -> the two largest are rows 1 and 2.
        // Column 1: all 7 -> a tie: the two earliest rows, 0 and 1 (across the shard border).
        let a = array![[1.0, 7.0], [5.0, 7.0]];
        let b = array![[5.0, 7.0], [2.0, 7.0]];
        let mut ma = Array2::zeros((2, 2));
        let mut mb = Array2::zeros((2, 2));
        select(&[a.view(), b.view()], &mut [ma.view_mut(), mb.view_mut()], 2);
        assert_eq!(ma, array![[0.0, 1.0], [1.0, 1.0]]);
        assert_eq!(mb, array![[1.0, 0.0], [0.0, 0.0]]);
    }

    #[test]
    fn shards_choose_as_the_whole_batch_does() {
        let x = random(51, (10, 6), 1.0);
        let mut whole = Array2::zeros((10, 6));
        select(&[x.view()], &mut [whole.view_mut()], 3);
        let mut parts = Array2::zeros((10, 6));
        let (p, q) = parts.view_mut().split_at(ndarray::Axis(0), 4);
        select(&[x.slice(s![..4, ..]), x.slice(s![4.., ..])], &mut [p, q], 3);
        assert_eq!(whole, parts);
        for col in whole.columns() {
            assert_eq!(col.sum(), 3.0);
        }
    }

    #[test]
    fn gradient_flows_only_through_kept_values() {
        let x = random(52, (8, 5), 1.0);
        let r = random(53, (8, 5), 1.0);
        let k = kept(0.25, 8, 8);
        let loss = |x: &Array2<f32>| {
            let mut mask = Array2::zeros(x.dim());
            select(&[x.view()], &mut [mask.view_mut()], k);
            let mut y = Array2::zeros(x.dim());
            apply(x.view(), mask.view(), y.view_mut());
            dot(&y, &r)
        };
        let mut mask = Array2::zeros(x.dim());
        select(&[x.view()], &mut [mask.view_mut()], k);
        let mut dx = Array2::zeros(x.dim());
        apply(r.view(), mask.view(), dx.view_mut());
        check("lifetime dx", &x, &dx, loss);
    }

    #[test]
    fn tied_values_route_the_gradient_to_the_earlier_rows() {
        // Every value equal: finite differences cannot see a tie, so check the routing itself.
        let x = Array2::from_elem((6, 2), 0.5f32);
        let mut mask = Array2::zeros((6, 2));
        select(&[x.view()], &mut [mask.view_mut()], 2);
        let dy = Array2::from_elem((6, 2), 1.0f32);
        let mut dx = Array2::zeros((6, 2));
        apply(dy.view(), mask.view(), dx.view_mut());
        assert_eq!(dx.column(0).to_vec(), vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(dx.column(1).to_vec(), vec![1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
