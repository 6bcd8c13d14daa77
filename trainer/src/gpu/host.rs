//! The reference backend: every buffer a `Vec` in host memory, every kernel a plain loop that
//! says what the CUDA C of `kernels.cu` computes. The device training step runs on it in the
//! tests of any machine, against the CPU trainer; on a GPU the parity tests hold the CUDA
//! backend to the same figures.

use super::backend::{Act, At, Backend, Buf, ConvShape, Gemm, Ids, Kernel, PoolShape, Sum};
use super::DeviceError;

/// Buffers in host memory.
#[derive(Default)]
pub struct Host {
    f: Vec<Vec<f32>>,
    u: Vec<Vec<u32>>,
}

/// The order [`f32::total_cmp`] gives, as an unsigned key: larger key, larger value.
pub fn order_key(v: f32) -> u32 {
    let u = v.to_bits();
    if u & 0x8000_0000 != 0 {
        !u
    } else {
        u | 0x8000_0000
    }
}

/// Leaky ReLU or sigmoid of `x`, as the CPU layers compute them.
fn activate(act: Act, x: f32) -> f32 {
    match act {
        Act::Leaky(slope) => {
            if x > 0.0 {
                x
            } else {
                slope * x
            }
        }
        Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
    }
}

/// The activation's derivative times `dy`, from its output `y`.
fn activate_backward(act: Act, y: f32, dy: f32) -> f32 {
    match act {
        Act::Leaky(slope) => {
            if y > 0.0 {
                dy
            } else {
                slope * dy
            }
        }
        Act::Sigmoid => dy * y * (1.0 - y),
    }
}

impl Host {
    /// An empty device.
    pub fn new() -> Host {
        Host::default()
    }

    fn get(&self, at: At) -> &[f32] {
        &self.f[at.buf.0][at.offset..]
    }

    /// Runs `body` on buffer `out` taken out of the store (it must not be read by `body`).
    fn with<R>(&mut self, out: Buf, body: impl FnOnce(&Host, &mut [f32]) -> R) -> R {
        let mut taken = std::mem::take(&mut self.f[out.0]);
        let r = body(self, &mut taken);
        self.f[out.0] = taken;
        r
    }
}

/// `P·k·k` patch index of input `(c, ky, kx)`.
fn patch_index(s: &ConvShape, c: usize, ky: usize, kx: usize) -> usize {
    (c * s.k + ky) * s.k + kx
}

fn im2col(x: &[f32], cols: &mut [f32], rows: usize, s: &ConvShape) {
    let (p, patch, len) = (s.positions(), s.patch(), s.c * s.h * s.w);
    for n in 0..rows {
        for oy in 0..s.oh() {
            for ox in 0..s.ow() {
                let row = &mut cols[(n * p + oy * s.ow() + ox) * patch..][..patch];
                for c in 0..s.c {
                    for ky in 0..s.k {
                        for kx in 0..s.k {
                            row[patch_index(s, c, ky, kx)] = x[n * len + (c * s.h + oy + ky) * s.w + ox + kx];
                        }
                    }
                }
            }
        }
    }
}

fn col2im(dcols: &[f32], dx: &mut [f32], rows: usize, s: &ConvShape) {
    let (p, patch, len) = (s.positions(), s.patch(), s.c * s.h * s.w);
    for n in 0..rows {
        for c in 0..s.c {
            for i in 0..s.h {
                for j in 0..s.w {
                    let mut sum = 0f32;
                    for ky in 0..s.k {
                        for kx in 0..s.k {
                            let (Some(oy), Some(ox)) = (i.checked_sub(ky), j.checked_sub(kx)) else {
                                continue;
                            };
                            if oy < s.oh() && ox < s.ow() {
                                sum += dcols[(n * p + oy * s.ow() + ox) * patch + patch_index(s, c, ky, kx)];
                            }
                        }
                    }
                    dx[n * len + (c * s.h + i) * s.w + j] = sum;
                }
            }
        }
    }
}

fn max_pool(x: &[f32], y: &mut [f32], argmax: &mut [u32], rows: usize, s: &PoolShape) {
    let (oh, ow) = (s.h / 2, s.w / 2);
    let (len, out) = (s.c * s.h * s.w, s.c * oh * ow);
    for n in 0..rows {
        for c in 0..s.c {
            for i in 0..oh {
                for j in 0..ow {
                    let at = (c * s.h + 2 * i) * s.w + 2 * j;
                    let window = [at, at + 1, at + s.w, at + s.w + 1];
                    let mut best = window[0];
                    let mut nan = None;
                    for &q in &window {
                        if x[n * len + q].is_nan() {
                            nan = Some(q);
                        }
                    }
                    for &q in &window[1..] {
                        if x[n * len + q] > x[n * len + best] {
                            best = q;
                        }
                    }
                    let best = nan.unwrap_or(best);
                    let o = n * out + (c * oh + i) * ow + j;
                    y[o] = x[n * len + best];
                    argmax[o] = best as u32;
                }
            }
        }
    }
}

impl Backend for Host {
    fn alloc(&mut self, len: usize) -> Result<Buf, DeviceError> {
        self.f.push(vec![0.0; len]);
        Ok(Buf(self.f.len() - 1))
    }

    fn alloc_ids(&mut self, len: usize) -> Result<Ids, DeviceError> {
        self.u.push(vec![0; len]);
        Ok(Ids(self.u.len() - 1))
    }

    fn free_all(&mut self) {
        self.f.clear();
        self.u.clear();
    }

    fn upload(&mut self, to: At, data: &[f32]) -> Result<(), DeviceError> {
        self.f[to.buf.0][to.offset..to.offset + data.len()].copy_from_slice(data);
        Ok(())
    }

    fn upload_ids(&mut self, to: Ids, data: &[u32]) -> Result<(), DeviceError> {
        self.u[to.0][..data.len()].copy_from_slice(data);
        Ok(())
    }

    fn download(&mut self, from: At, out: &mut [f32]) -> Result<(), DeviceError> {
        out.copy_from_slice(&self.get(from)[..out.len()]);
        Ok(())
    }

    fn download_ids(&mut self, from: Ids, out: &mut [u32]) -> Result<(), DeviceError> {
        out.copy_from_slice(&self.u[from.0][..out.len()]);
        Ok(())
    }

    fn gemm(&mut self, g: &Gemm) -> Result<(), DeviceError> {
        assert!(g.c.buf != g.a.buf && g.c.buf != g.b.buf, "gemm: C aliases an input");
        let Gemm { m, n, k, .. } = *g;
        self.with(g.c.buf, |dev, c| {
            let (a, b) = (dev.get(g.a), dev.get(g.b));
            let c = &mut c[g.c.offset..];
            for i in 0..m {
                for j in 0..n {
                    let mut sum = 0f32;
                    for l in 0..k {
                        let av = if g.a_t { a[l * m + i] } else { a[i * k + l] };
                        let bv = if g.b_t { b[j * k + l] } else { b[l * n + j] };
                        sum += av * bv;
                    }
                    let cv = &mut c[i * n + j];
                    *cv = if g.accumulate { *cv + sum } else { sum };
                }
            }
        });
        Ok(())
    }

    fn run(&mut self, kernel: &Kernel) -> Result<(), DeviceError> {
        match *kernel {
            Kernel::Fill { x, n, value } => self.f[x.buf.0][x.offset..x.offset + n].fill(value),
            Kernel::Gather {
                data,
                order,
                first,
                rows,
                width,
                out,
            } => {
                self.with(out, |dev, rows_out| {
                    let (data, order) = (&dev.f[data.0], &dev.u[order.0]);
                    for (r, dst) in rows_out.chunks_exact_mut(width).take(rows).enumerate() {
                        let i = order[first + r] as usize;
                        dst.copy_from_slice(&data[i * width..(i + 1) * width]);
                    }
                });
            }
            Kernel::BiasAct {
                y,
                bias,
                rows,
                cols,
                per,
                act,
            } => {
                self.with(y, |dev, y| {
                    let b = dev.get(bias);
                    for (i, v) in y[..rows * cols].iter_mut().enumerate() {
                        *v += b[(i % cols) / per];
                    }
                });
                if let Some((act, z)) = act {
                    self.with(z, |dev, z| {
                        for (z, &y) in z.iter_mut().zip(&dev.f[y.0][..rows * cols]) {
                            *z = activate(act, y);
                        }
                    });
                }
            }
            Kernel::Activate { x, y, n, act } => self.with(y, |dev, y| {
                for (y, &x) in y[..n].iter_mut().zip(&dev.f[x.0]) {
                    *y = activate(act, x);
                }
            }),
            Kernel::ActBackward { y, dy, dx, n, act } => self.with(dx, |dev, dx| {
                for ((dx, &y), &dy) in dx[..n].iter_mut().zip(&dev.f[y.0]).zip(&dev.f[dy.0]) {
                    *dx = activate_backward(act, y, dy);
                }
            }),
            Kernel::MaskMul { x, mask, y, n } => self.with(y, |dev, y| {
                for ((y, &x), &m) in y[..n].iter_mut().zip(&dev.f[x.0]).zip(&dev.f[mask.0]) {
                    *y = x * m;
                }
            }),
            Kernel::TopK { x, mask, rows, cols, k } => self.with(mask, |dev, mask| {
                let x = &dev.f[x.0];
                for r in 0..rows {
                    let row = &x[r * cols..(r + 1) * cols];
                    for j in 0..cols {
                        let key = order_key(row[j]);
                        let rank = (0..cols)
                            .filter(|&i| {
                                let other = order_key(row[i]);
                                other > key || (other == key && i < j)
                            })
                            .count();
                        mask[r * cols + j] = if rank < k { 1.0 } else { 0.0 };
                    }
                }
            }),
            Kernel::LifetimeTopK { x, mask, rows, cols, k } => self.with(mask, |dev, mask| {
                let x = &dev.f[x.0];
                for j in 0..cols {
                    for r in 0..rows {
                        let key = order_key(x[r * cols + j]);
                        let rank = (0..rows)
                            .filter(|&q| {
                                let other = order_key(x[q * cols + j]);
                                other > key || (other == key && q < r)
                            })
                            .count();
                        mask[r * cols + j] = if rank < k { 1.0 } else { 0.0 };
                    }
                }
            }),
            Kernel::SoftmaxCe {
                z,
                labels,
                dz,
                rows,
                cols,
                scale,
                out,
            } => {
                let mut losses = std::mem::take(&mut self.f[out.0]);
                self.with(dz, |dev, dz| {
                    let (z, labels) = (&dev.f[z.0], &dev.u[labels.0]);
                    for r in 0..rows {
                        let row = &z[r * cols..(r + 1) * cols];
                        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
                        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
                        let log_sum = sum.ln() + max;
                        let y = labels[r] as usize;
                        losses[r] = (log_sum - row[y] as f64) as f32;
                        for (c, &v) in row.iter().enumerate() {
                            let target = if c == y { 1.0 } else { 0.0 };
                            dz[r * cols + c] = (((v as f64 - log_sum).exp() - target) * scale) as f32;
                        }
                    }
                });
                self.f[out.0] = losses;
            }
            Kernel::MseGrad { y, t, dy, n, scale } => self.with(dy, |dev, dy| {
                for ((d, &y), &t) in dy[..n].iter_mut().zip(&dev.f[y.0]).zip(&dev.f[t.0]) {
                    *d = scale * (y - t);
                }
            }),
            Kernel::RowSums {
                x,
                t,
                sum,
                rows,
                cols,
                out,
            } => self.with(out, |dev, out| {
                let x = dev.get(x);
                for (r, o) in out[..rows].iter_mut().enumerate() {
                    let row = &x[r * cols..(r + 1) * cols];
                    *o = match (sum, t) {
                        (Sum::SquaredError, Some(t)) => {
                            let t = &dev.f[t.0][r * cols..(r + 1) * cols];
                            row.iter().zip(t).map(|(&x, &t)| (x - t) * (x - t)).sum()
                        }
                        (Sum::Abs, _) => row.iter().map(|x| x.abs()).sum(),
                        (Sum::Square, _) => row.iter().map(|x| x * x).sum(),
                        (Sum::SquaredError, None) => panic!("a squared error needs a target"),
                    };
                }
            }),
            Kernel::Total {
                parts,
                n,
                scale,
                out,
                accumulate,
            } => {
                let total: f64 = self.f[parts.0][..n].iter().map(|&v| f64::from(v)).sum();
                let o = &mut self.f[out.buf.0][out.offset];
                let value = scale * total;
                *o = if accumulate {
                    (f64::from(*o) + value) as f32
                } else {
                    value as f32
                };
            }
            Kernel::L1Grad { c, dc, n, g } => self.with(dc, |dev, dc| {
                for (d, &c) in dc[..n].iter_mut().zip(&dev.f[c.0]) {
                    if c != 0.0 {
                        *d += g * c.signum();
                    }
                }
            }),
            Kernel::Kl {
                sums,
                dc,
                rows,
                cols,
                rho,
                lambda,
                out,
            } => {
                let q: Vec<f64> = self.f[sums.0][..cols]
                    .iter()
                    .map(|&s| (f64::from(s) / rows as f64).clamp(1e-6, 1.0 - 1e-6))
                    .collect();
                let kf = cols as f64;
                let grad: Vec<f32> = q
                    .iter()
                    .map(|&q| (lambda / kf * (-rho / q + (1.0 - rho) / (1.0 - q)) / rows as f64) as f32)
                    .collect();
                for (i, d) in self.f[dc.0][..rows * cols].iter_mut().enumerate() {
                    *d += grad[i % cols];
                }
                let kl: f64 = q
                    .iter()
                    .map(|&q| rho * (rho / q).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - q)).ln())
                    .sum();
                let o = &mut self.f[out.buf.0][out.offset];
                *o = (f64::from(*o) + lambda * kl / kf) as f32;
            }
            Kernel::Im2Col { x, cols, rows, shape } => self.with(cols, |dev, c| im2col(&dev.f[x.0], c, rows, &shape)),
            Kernel::Col2Im { dcols, dx, rows, shape } => {
                self.with(dx, |dev, dx| col2im(&dev.f[dcols.0], dx, rows, &shape))
            }
            Kernel::ConvOut {
                z,
                y,
                bias,
                rows,
                channels,
                positions,
            } => self.with(y, |dev, y| {
                let (z, b) = (&dev.f[z.0], dev.get(bias));
                for n in 0..rows {
                    for o in 0..channels {
                        for p in 0..positions {
                            y[(n * channels + o) * positions + p] = z[(n * positions + p) * channels + o] + b[o];
                        }
                    }
                }
            }),
            Kernel::ConvGrad {
                dy,
                dz,
                rows,
                channels,
                positions,
            } => self.with(dz, |dev, dz| {
                let dy = &dev.f[dy.0];
                for n in 0..rows {
                    for o in 0..channels {
                        for p in 0..positions {
                            dz[(n * positions + p) * channels + o] = dy[(n * channels + o) * positions + p];
                        }
                    }
                }
            }),
            Kernel::MaxPool {
                x,
                y,
                argmax,
                rows,
                shape,
            } => {
                let mut idx = std::mem::take(&mut self.u[argmax.0]);
                self.with(y, |dev, y| max_pool(&dev.f[x.0], y, &mut idx, rows, &shape));
                self.u[argmax.0] = idx;
            }
            Kernel::MaxPoolBackward {
                dy,
                argmax,
                dx,
                rows,
                shape,
            } => self.with(dx, |dev, dx| {
                let (len, out) = (shape.c * shape.h * shape.w, shape.c * (shape.h / 2) * (shape.w / 2));
                dx[..rows * len].fill(0.0);
                let (dy, idx) = (&dev.f[dy.0], &dev.u[argmax.0]);
                for n in 0..rows {
                    for o in 0..out {
                        dx[n * len + idx[n * out + o] as usize] = dy[n * out + o];
                    }
                }
            }),
            Kernel::Axpy { x, y, n, a } => {
                assert!(x.buf != y.buf, "axpy: y aliases x");
                self.with(y.buf, |dev, yv| {
                    for (y, &x) in yv[y.offset..y.offset + n].iter_mut().zip(dev.get(x)) {
                        *y += a * x;
                    }
                })
            }
            Kernel::Adam {
                p,
                g,
                m,
                v,
                n,
                step,
                loss,
                halted,
            } => {
                let bad = !self.get(loss)[0].is_finite() || self.f[halted.0][0] != 0.0;
                if bad {
                    self.f[halted.0][0] = 1.0;
                    return Ok(());
                }
                let grads = self.get(g)[..n].to_vec();
                let mut pm = std::mem::take(&mut self.f[m.buf.0]);
                let mut pv = std::mem::take(&mut self.f[v.buf.0]);
                let params = &mut self.f[p.buf.0][p.offset..p.offset + n];
                crate::optim::adam::update_scalar(
                    params,
                    &grads,
                    &mut pm[m.offset..m.offset + n],
                    &mut pv[v.offset..v.offset + n],
                    &step,
                );
                self.f[m.buf.0] = pm;
                self.f[v.buf.0] = pv;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_key_sorts_as_total_cmp() {
        let values = [-f32::INFINITY, -2.5, -0.0, 0.0, 1e-30, 3.0, f32::INFINITY];
        for a in values {
            for b in values {
                assert_eq!(order_key(a).cmp(&order_key(b)), a.total_cmp(&b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn im2col_and_col2im_are_adjoint() {
        // <im2col(x), d> = <x, col2im(d)> for any x and d: col2im is im2col's transpose.
        let s = ConvShape { c: 2, h: 5, w: 4, k: 3 };
        let rows = 2;
        let x: Vec<f32> = (0..rows * s.c * s.h * s.w)
            .map(|i| ((i * 7) % 13) as f32 - 6.0)
            .collect();
        let d: Vec<f32> = (0..rows * s.positions() * s.patch())
            .map(|i| ((i * 5) % 11) as f32 - 5.0)
            .collect();
        let mut cols = vec![0.0; d.len()];
        im2col(&x, &mut cols, rows, &s);
        let mut dx = vec![0.0; x.len()];
        col2im(&d, &mut dx, rows, &s);
        let lhs: f32 = cols.iter().zip(&d).map(|(a, b)| a * b).sum();
        let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
    }
}
