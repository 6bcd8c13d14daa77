//! The reference backend: every buffer a `Vec` in host memory, every kernel the CPU trainer's
//! own layer where it has one (activations, top-k, lifetime top-k, max-pooling, softmax, KL,
//! Adam's update) and a plain loop where the device's step differs (patches, layouts, sums). The device training step runs on it in the
//! tests of any machine, against the CPU trainer; on a GPU the parity tests hold the CUDA
//! backend to the same figures.

use super::backend::{Act, At, Backend, Buf, Gemm, Ids, Kernel, Sum};
use super::DeviceError;
use crate::layers::conv2d::Conv2dGeometry;
use crate::layers::{kl, leaky_relu, lifetime_topk, max_pool, sigmoid, softmax_ce, topk};
use ndarray::{ArrayView2, ArrayViewMut2};

/// Buffers in host memory.
#[derive(Default)]
pub struct Host {
    f: Vec<Vec<f32>>,
    u: Vec<Vec<u32>>,
}

/// `y = act(x)` over `n` values, by the CPU's layer.
fn activate(act: Act, x: &[f32], y: &mut [f32], n: usize) {
    let (x, y) = (rows_of(x, 1, n), rows_of_mut(y, 1, n));
    match act {
        Act::Leaky(slope) => leaky_relu::forward(x, y, slope),
        Act::Sigmoid => sigmoid::forward(x, y),
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

/// The first `rows` rows of `width` values of a buffer, as the CPU layers take them.
fn rows_of(values: &[f32], rows: usize, width: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((rows, width), &values[..rows * width]).expect("the buffer holds the rows")
}

/// [`rows_of`], to write.
fn rows_of_mut(values: &mut [f32], rows: usize, width: usize) -> ArrayViewMut2<'_, f32> {
    ArrayViewMut2::from_shape((rows, width), &mut values[..rows * width]).expect("the buffer holds the rows")
}

/// Patch index of input `(c, ky, kx)`: channel, kernel row, kernel column.
fn patch_index(g: &Conv2dGeometry, c: usize, ky: usize, kx: usize) -> usize {
    (c * g.kernel + ky) * g.kernel + kx
}

fn im2col(x: &[f32], cols: &mut [f32], rows: usize, g: &Conv2dGeometry) {
    let (p, patch, len, (w, k)) = (g.positions(), g.patch_len(), g.in_len(), (g.in_w, g.kernel));
    for n in 0..rows {
        for oy in 0..g.out_h() {
            for ox in 0..g.out_w() {
                let row = &mut cols[(n * p + oy * g.out_w() + ox) * patch..][..patch];
                for c in 0..g.in_channels {
                    for ky in 0..k {
                        for kx in 0..k {
                            row[patch_index(g, c, ky, kx)] = x[n * len + (c * g.in_h + oy + ky) * w + ox + kx];
                        }
                    }
                }
            }
        }
    }
}

fn col2im(dcols: &[f32], dx: &mut [f32], rows: usize, g: &Conv2dGeometry) {
    let (p, patch, len, k) = (g.positions(), g.patch_len(), g.in_len(), g.kernel);
    for n in 0..rows {
        for c in 0..g.in_channels {
            for i in 0..g.in_h {
                for j in 0..g.in_w {
                    let mut sum = 0f32;
                    for ky in 0..k {
                        for kx in 0..k {
                            let (Some(oy), Some(ox)) = (i.checked_sub(ky), j.checked_sub(kx)) else {
                                continue;
                            };
                            if oy < g.out_h() && ox < g.out_w() {
                                sum += dcols[(n * p + oy * g.out_w() + ox) * patch + patch_index(g, c, ky, kx)];
                            }
                        }
                    }
                    dx[n * len + (c * g.in_h + i) * g.in_w + j] = sum;
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
                    self.with(z, |dev, z| activate(act, &dev.f[y.0], z, rows * cols));
                }
            }
            Kernel::Activate { x, y, n, act } => self.with(y, |dev, y| activate(act, &dev.f[x.0], y, n)),
            Kernel::ActBackward { y, dy, dx, n, act } => self.with(dx, |dev, dx| {
                let (y, dy, dx) = (
                    rows_of(&dev.f[y.0], 1, n),
                    rows_of(&dev.f[dy.0], 1, n),
                    rows_of_mut(dx, 1, n),
                );
                match act {
                    Act::Leaky(slope) => leaky_relu::backward(y, dy, dx, slope),
                    Act::Sigmoid => sigmoid::backward(y, dy, dx),
                }
            }),
            Kernel::MaskMul { x, mask, y, n } => self.with(y, |dev, y| {
                for ((y, &x), &m) in y[..n].iter_mut().zip(&dev.f[x.0]).zip(&dev.f[mask.0]) {
                    *y = x * m;
                }
            }),
            Kernel::TopK { x, mask, rows, cols, k } => self.with(mask, |dev, mask| {
                topk::select(rows_of(&dev.f[x.0], rows, cols), rows_of_mut(mask, rows, cols), k)
            }),
            Kernel::LifetimeTopK { x, mask, rows, cols, k } => self.with(mask, |dev, mask| {
                let x = rows_of(&dev.f[x.0], rows, cols);
                lifetime_topk::select(&[x], &mut [rows_of_mut(mask, rows, cols)], k)
            }),
            Kernel::SoftmaxCe {
                z,
                labels,
                dz,
                rows,
                cols,
                total_rows,
                out,
            } => {
                // Row by row, for each row's loss.
                let mut losses = std::mem::take(&mut self.f[out.0]);
                self.with(dz, |dev, dz| {
                    let (z, labels) = (&dev.f[z.0], &dev.u[labels.0]);
                    for (r, loss) in losses[..rows].iter_mut().enumerate() {
                        let label = u8::try_from(labels[r]).expect("a class below 256");
                        let (z, dz) = (
                            rows_of(&z[r * cols..], 1, cols),
                            rows_of_mut(&mut dz[r * cols..], 1, cols),
                        );
                        *loss = softmax_ce::forward_backward(z, &[label], dz, total_rows) as f32;
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
                let sums: Vec<f64> = self.f[sums.0][..cols].iter().map(|&v| f64::from(v)).collect();
                let q = kl::rho_hat(&sums, rows);
                kl::backward(rows_of_mut(&mut self.f[dc.0], rows, cols), &q, rho, lambda, rows);
                let o = &mut self.f[out.buf.0][out.offset];
                *o = (f64::from(*o) + kl::penalty(&q, rho, lambda)) as f32;
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
                let mut idx = Vec::new();
                self.with(y, |dev, y| {
                    let (x, y) = (
                        rows_of(&dev.f[x.0], rows, shape.in_len()),
                        rows_of_mut(y, rows, shape.out_len()),
                    );
                    max_pool::forward(x, y, &mut idx, &shape)
                });
                self.u[argmax.0][..idx.len()].copy_from_slice(&idx);
            }
            Kernel::MaxPoolBackward {
                dy,
                argmax,
                dx,
                rows,
                shape,
            } => self.with(dx, |dev, dx| {
                max_pool::backward(
                    rows_of(&dev.f[dy.0], rows, shape.out_len()),
                    &dev.u[argmax.0],
                    rows_of_mut(dx, rows, shape.in_len()),
                    &shape,
                )
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
    fn im2col_and_col2im_are_adjoint() {
        // <im2col(x), d> = <x, col2im(d)> for any x and d: col2im is im2col's transpose.
        let s = Conv2dGeometry::new(2, 5, 4, 1, 3);
        let rows = 2;
        let x: Vec<f32> = (0..rows * s.in_len()).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let d: Vec<f32> = (0..rows * s.positions() * s.patch_len())
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
