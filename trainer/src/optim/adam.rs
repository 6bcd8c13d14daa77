//! Adam as PyTorch implements it (`torch.optim.Adam`, no weight decay, no amsgrad):
//!
//! ```text
//! t += 1
//! m += (1 - β1)·(g - m)            # exp_avg.lerp_(grad, 1 - β1)
//! v  = β2·v + (1 - β2)·g²
//! p -= lr / (1 - β1ᵗ) · m / (√v / √(1 - β2ᵗ) + ε)
//! ```
//! Scalars in f64 as Python computes them; tensors in f32.

use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Adam's hyperparameters and state for a list of parameter tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Adam {
    /// Learning rate; the plateau scheduler lowers it.
    pub lr: f64,
    /// β1, default 0.9.
    pub beta1: f64,
    /// β2, default 0.999.
    pub beta2: f64,
    /// ε, default 1e-8.
    pub eps: f64,
    /// Steps taken.
    pub step: u64,
    m: Vec<Array2<f32>>,
    v: Vec<Array2<f32>>,
}

impl Adam {
    /// Fresh state, PyTorch defaults, for parameters of these shapes.
    pub fn new(lr: f64, shapes: impl IntoIterator<Item = (usize, usize)>) -> Adam {
        let (m, v) = shapes.into_iter().map(|s| (Array2::zeros(s), Array2::zeros(s))).unzip();
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            m,
            v,
        }
    }

    /// Counts a step and returns its scalars, as [`Adam::step`] uses them: what a device that
    /// keeps the moments itself needs (`crate::gpu`).
    pub fn advance(&mut self) -> Constants {
        self.step += 1;
        let t = self.step as i32;
        let bias_correction1 = 1.0 - self.beta1.powi(t);
        let bias_correction2_sqrt = (1.0 - self.beta2.powi(t)).sqrt();
        let step_size = (self.lr / bias_correction1) as f32;
        // PyTorch forms `1 - β` in Python floats and hands the tensor ops f32 scalars.
        let (one_minus_b1, b2, one_minus_b2) =
            ((1.0 - self.beta1) as f32, self.beta2 as f32, (1.0 - self.beta2) as f32);
        let (bc2_sqrt, eps) = (bias_correction2_sqrt as f32, self.eps as f32);
        Constants {
            one_minus_b1,
            b2,
            one_minus_b2,
            step_size,
            bc2_sqrt,
            eps,
        }
    }

    /// The first and second moments of every parameter, in parameter order.
    pub fn moments(&self) -> (&[Array2<f32>], &[Array2<f32>]) {
        (&self.m, &self.v)
    }

    /// The moments, to write (a device hands its copy back).
    pub fn moments_mut(&mut self) -> (&mut [Array2<f32>], &mut [Array2<f32>]) {
        (&mut self.m, &mut self.v)
    }

    /// One update of every parameter `i` with `trainable[i]`, from its gradient. A frozen
    /// parameter and its moments stay untouched.
    pub fn step(&mut self, params: &mut [&mut Array2<f32>], grads: &[Array2<f32>], trainable: &[bool]) {
        assert!(params.len() == self.m.len() && grads.len() == self.m.len() && trainable.len() == self.m.len());
        let k = self.advance();
        // Every element's update is independent: chunks of every trainable tensor, in parallel
        // (on the caller's rayon pool), each vectorised at the CPU's SIMD level. Same bits as
        // one sequential pass: no operation is reordered or fused.
        let mut chunks = Vec::new();
        let tensors = params
            .iter_mut()
            .zip(grads)
            .zip(self.m.iter_mut().zip(self.v.iter_mut()));
        for (((p, g), (m, v)), _) in tensors.zip(trainable).filter(|(_, &t)| t) {
            let p = p.as_slice_mut().expect("parameters are standard arrays");
            let g = g.as_slice().expect("gradients are standard arrays");
            let m = m.as_slice_mut().expect("moments are standard arrays");
            let v = v.as_slice_mut().expect("moments are standard arrays");
            chunks.extend(
                p.chunks_mut(CHUNK)
                    .zip(g.chunks(CHUNK))
                    .zip(m.chunks_mut(CHUNK))
                    .zip(v.chunks_mut(CHUNK))
                    .map(|(((p, g), m), v)| (p, g, m, v)),
            );
        }
        chunks.into_par_iter().for_each(|(p, g, m, v)| update(p, g, m, v, &k));
    }
}

/// Elements per parallel task.
const CHUNK: usize = 16 * 1024;

/// The f32 scalars of one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constants {
    /// `1 − β1`.
    pub one_minus_b1: f32,
    /// `β2`.
    pub b2: f32,
    /// `1 − β2`.
    pub one_minus_b2: f32,
    /// `lr / (1 − β1ᵗ)`.
    pub step_size: f32,
    /// `√(1 − β2ᵗ)`.
    pub bc2_sqrt: f32,
    /// `ε`.
    pub eps: f32,
}

/// [`update_scalar`], compiled for AVX2 where the CPU runs it ([`crate::simd::active`]).
fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &Constants) {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::active() >= crate::simd::Level::Avx2 {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &Constants) {
            update_scalar(p, g, m, v, k);
        }
        // SAFETY: the CPU has AVX2 and FMA (the active level is at least AVX2).
        return unsafe { avx2(p, g, m, v, k) };
    }
    update_scalar(p, g, m, v, k);
}

/// Adam's element update, as PyTorch writes it.
#[inline(always)]
pub(crate) fn update_scalar(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], k: &Constants) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m += k.one_minus_b1 * (g - *m);
        *v = *v * k.b2 + k.one_minus_b2 * g * g;
        *p -= k.step_size * *m / (v.sqrt() / k.bc2_sqrt + k.eps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_parallel_steps_are_one_sequential_pass_bit_for_bit() {
        // Tensors longer than a chunk, one frozen; the reference is PyTorch's update written
        // out element by element.
        let shapes = [(300, 70), (1, 33), (5, 5)];
        let mut adam = Adam::new(1e-3, shapes);
        let mut params: Vec<Array2<f32>> = shapes
            .iter()
            .enumerate()
            .map(|(i, &s)| Array2::from_shape_fn(s, |(r, c)| ((r * 31 + c * 7 + i) % 97) as f32 / 50.0 - 1.0))
            .collect();
        let trainable = [true, true, false];
        let (mut want, mut m, mut v) = (params.clone(), Vec::new(), Vec::new());
        for p in &params {
            m.push(Array2::<f32>::zeros(p.dim()));
            v.push(Array2::<f32>::zeros(p.dim()));
        }
        for t in 1..=3 {
            let grads: Vec<Array2<f32>> = params.iter().map(|p| p.mapv(|x| (x * 3.7 + t as f32).sin())).collect();
            let mut refs: Vec<&mut Array2<f32>> = params.iter_mut().collect();
            adam.step(&mut refs, &grads, &trainable);
            let step_size = (1e-3 / (1.0 - 0.9f64.powi(t))) as f32;
            let bc2 = (1.0 - 0.999f64.powi(t)).sqrt() as f32;
            for i in 0..shapes.len() {
                if !trainable[i] {
                    continue;
                }
                for ((p, &g), (m, v)) in want[i]
                    .iter_mut()
                    .zip(&grads[i])
                    .zip(m[i].iter_mut().zip(v[i].iter_mut()))
                {
                    *m += (1.0 - 0.9f64) as f32 * (g - *m);
                    *v = *v * 0.999f64 as f32 + (1.0 - 0.999f64) as f32 * g * g;
                    *p -= step_size * *m / (v.sqrt() / bc2 + 1e-8f64 as f32);
                }
            }
        }
        for (got, want) in params.iter().zip(&want) {
            let bits = |a: &Array2<f32>| a.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(got), bits(want));
        }
    }

    fn scalar(v: f32) -> Array2<f32> {
        Array2::from_elem((1, 1), v)
    }

    #[test]
    fn hand_worked_sequence() {
        // lr 0.1, p0 = 1, gradients +1 then -1.
        // Step 1: m = 0.1, v = 0.001, m̂ = 1, v̂ = 1 -> p1 = 1 - 0.1·1/(1 + 1e-8).
        // Step 2: m = 0.09 - 0.1 = -0.01, v = 0.000999 + 0.001 = 0.001999,
        //         m̂ = -0.01/0.19, v̂ = 0.001999/0.001999 = 1 -> p2 = p1 + 0.1·0.01/0.19.
        let mut adam = Adam::new(0.1, [(1, 1)]);
        let mut p = scalar(1.0);
        adam.step(&mut [&mut p], &[scalar(1.0)], &[true]);
        let p1 = 1.0 - 0.1 / (1.0 + 1e-8);
        assert!((p[[0, 0]] as f64 - p1).abs() < 1e-7, "p1 = {}", p[[0, 0]]);
        adam.step(&mut [&mut p], &[scalar(-1.0)], &[true]);
        let p2 = p1 + 0.1 * 0.01 / 0.19;
        assert!((p[[0, 0]] as f64 - p2).abs() < 1e-6, "p2 = {} expected {p2}", p[[0, 0]]);
        assert_eq!(adam.step, 2);
    }

    #[test]
    fn first_step_moves_by_lr_whatever_the_gradient_scale() {
        // (For |g| near ε = 1e-8 the step shrinks; these are far from it.)
        for g in [1e-3f32, 3.0, -250.0] {
            let mut adam = Adam::new(1e-3, [(1, 1)]);
            let mut p = scalar(0.0);
            adam.step(&mut [&mut p], &[scalar(g)], &[true]);
            assert!((p[[0, 0]] + 1e-3 * g.signum()).abs() < 1e-6, "g {g}: p {}", p[[0, 0]]);
        }
    }

    #[test]
    fn frozen_parameters_and_their_moments_stay_untouched() {
        let mut adam = Adam::new(0.1, [(1, 1), (1, 1)]);
        let mut a = scalar(1.0);
        let mut b = scalar(1.0);
        for _ in 0..3 {
            adam.step(&mut [&mut a, &mut b], &[scalar(1.0), scalar(1.0)], &[true, false]);
        }
        assert!(a[[0, 0]] < 1.0);
        assert_eq!(b[[0, 0]], 1.0);
        assert_eq!((adam.m[1][[0, 0]], adam.v[1][[0, 0]]), (0.0, 0.0));
    }
}
