//! The GPU against the CPU trainer (feature `cuda`; README, "Training on a GPU"). Needs an
//! NVIDIA GPU with its driver, cuBLAS and NVRTC:
//!
//! ```text
//! cargo test -p trainer --release --features cuda --test cuda
//! ```
//!
//! `TRAINER_CUDA_DEVICE=N` picks GPU `N` (default 0). CI only builds these (`--no-run`);
//! `tests/device.rs` runs the same checks on the reference backend everywhere.

mod parity;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use trainer::gpu::backend::{Act, Backend, Buf, Gemm, Ids, Kernel, Sum};
use trainer::gpu::cuda::Cuda;
use trainer::gpu::host::Host;
use trainer::gpu::Session;
use trainer::layers::conv2d::Conv2dGeometry;
use trainer::layers::max_pool::MaxPoolGeometry;
use trainer::optim::adam::Adam;

fn gpu() -> Session {
    let ordinal =
        std::env::var("TRAINER_CUDA_DEVICE").map_or(0, |v| v.parse().expect("TRAINER_CUDA_DEVICE is a number"));
    trainer::gpu::cuda::open(ordinal).unwrap_or_else(|e| panic!("these tests need a GPU: {e}"))
}

#[test]
fn the_kernels_compile_with_nvrtc() {
    // Needs only the NVRTC library, not a GPU; with TRAINER_CUDA_PTX, checks that file instead.
    let ptx = trainer::gpu::cuda::kernels_ptx().unwrap_or_else(|e| panic!("{e}"));
    let text = ptx.to_src();
    for kernel in trainer::gpu::cuda::NAMES {
        assert!(text.contains(&format!(".entry {kernel}(")), "{kernel} is in the PTX");
    }
}

/// The same buffers on the GPU and on the reference backend (both number their buffers from 0,
/// so one handle names both).
struct Pair {
    host: Host,
    gpu: Cuda,
    rng: ChaCha8Rng,
}

impl Pair {
    fn new() -> Pair {
        let ordinal = std::env::var("TRAINER_CUDA_DEVICE").map_or(0, |v| v.parse().unwrap());
        let gpu = Cuda::open(ordinal).unwrap_or_else(|e| panic!("these tests need a GPU: {e}"));
        Pair {
            host: Host::new(),
            gpu,
            rng: ChaCha8Rng::seed_from_u64(17),
        }
    }

    fn put(&mut self, data: &[f32]) -> Buf {
        let (a, b) = (
            self.host.alloc(data.len()).unwrap(),
            self.gpu.alloc(data.len()).unwrap(),
        );
        assert_eq!(a, b);
        self.host.upload(a.start(), data).unwrap();
        self.gpu.upload(b.start(), data).unwrap();
        a
    }

    /// `n` values uniform in ±1, a few repeated (ties) when `ties`.
    fn random(&mut self, n: usize, ties: bool) -> Buf {
        let mut v: Vec<f32> = (0..n).map(|_| self.rng.random_range(-1.0f32..1.0)).collect();
        if ties {
            for i in (0..n).step_by(5) {
                v[i] = 0.25;
            }
        }
        self.put(&v)
    }

    fn ids(&mut self, data: &[u32]) -> Ids {
        let (a, b) = (
            self.host.alloc_ids(data.len()).unwrap(),
            self.gpu.alloc_ids(data.len()).unwrap(),
        );
        assert_eq!(a, b);
        self.host.upload_ids(a, data).unwrap();
        self.gpu.upload_ids(b, data).unwrap();
        a
    }

    fn run(&mut self, k: &Kernel) {
        self.host.run(k).unwrap();
        self.gpu.run(k).unwrap_or_else(|e| panic!("{k:?}: {e}"));
    }

    fn gemm(&mut self, g: &Gemm) {
        self.host.gemm(g).unwrap();
        self.gpu.gemm(g).unwrap_or_else(|e| panic!("{g:?}: {e}"));
    }

    /// Buffer `b`'s first `n` values agree within `tol` of their scale.
    fn same(&mut self, what: &str, b: Buf, n: usize, tol: f32) {
        let (mut x, mut y) = (vec![0.0; n], vec![0.0; n]);
        self.host.download(b.start(), &mut x).unwrap();
        self.gpu.download(b.start(), &mut y).unwrap();
        let scale = x.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (i, (a, g)) in x.iter().zip(&y).enumerate() {
            let same = (a.is_nan() && g.is_nan()) || (a - g).abs() <= tol * scale;
            assert!(same, "{what}: value {i} is {a} on the host, {g} on the GPU");
        }
    }

    fn same_ids(&mut self, what: &str, b: Ids, n: usize) {
        let (mut x, mut y) = (vec![0; n], vec![0; n]);
        self.host.download_ids(b, &mut x).unwrap();
        self.gpu.download_ids(b, &mut y).unwrap();
        assert_eq!(x, y, "{what}");
    }
}

#[test]
fn every_kernel_computes_what_the_reference_does() {
    let mut p = Pair::new();
    let (rows, cols, k) = (37, 29, 53);
    // Products: every transpose, overwriting and accumulating.
    for a_t in [false, true] {
        for b_t in [false, true] {
            for accumulate in [false, true] {
                let (a, b, c) = (
                    p.random(rows * k, false),
                    p.random(k * cols, false),
                    p.random(rows * cols, false),
                );
                let g = Gemm {
                    m: rows,
                    n: cols,
                    k,
                    a: a.start(),
                    a_t,
                    b: b.start(),
                    b_t,
                    c: c.start(),
                    accumulate,
                };
                p.gemm(&g);
                p.same(
                    &format!("gemm a_t {a_t} b_t {b_t} accumulate {accumulate}"),
                    c,
                    rows * cols,
                    1e-5,
                );
            }
        }
    }
    let n = rows * cols;
    let (x, y, z, t) = (
        p.random(n, true),
        p.random(n, false),
        p.random(n, false),
        p.random(n, false),
    );
    let bias = p.random(cols, false);
    p.run(&Kernel::Fill {
        x: y.at(3),
        n: 11,
        value: 2.5,
    });
    p.same("fill", y, n, 0.0);
    let data = p.random(50 * cols, false);
    let order = p.ids(&(0..50u32).rev().collect::<Vec<_>>());
    p.run(&Kernel::Gather {
        data,
        order,
        first: 7,
        rows,
        width: cols,
        out: y,
    });
    p.same("gather", y, n, 0.0);
    for act in [None, Some(Act::Leaky(0.01)), Some(Act::Sigmoid)] {
        for per in [1, 7] {
            p.run(&Kernel::BiasAct {
                y,
                bias: bias.start(),
                rows,
                cols,
                per,
                act: act.map(|a| (a, z)),
            });
            p.same(&format!("bias_act {act:?} per {per}"), y, n, 1e-6);
            p.same(&format!("bias_act {act:?} per {per}: activation"), z, n, 1e-6);
        }
    }
    for act in [Act::Leaky(0.01), Act::Sigmoid] {
        p.run(&Kernel::Activate { x, y, n, act });
        p.same(&format!("activation {act:?}"), y, n, 1e-6);
        p.run(&Kernel::ActBackward {
            y,
            dy: t,
            dx: z,
            n,
            act,
        });
        p.same(&format!("activation backward {act:?}"), z, n, 1e-6);
    }
    let mask = p.random(n, false);
    for kk in [0, 1, 5, cols, cols + 3] {
        p.run(&Kernel::TopK {
            x,
            mask,
            rows,
            cols,
            k: kk,
        });
        p.same(&format!("top-{kk}"), mask, n, 0.0);
    }
    for kk in [0, 1, 9, rows, rows + 2] {
        p.run(&Kernel::LifetimeTopK {
            x,
            mask,
            rows,
            cols,
            k: kk,
        });
        p.same(&format!("lifetime top-{kk}"), mask, n, 0.0);
    }
    p.run(&Kernel::MaskMul { x, mask, y, n });
    p.same("mask_mul", y, n, 0.0);
    p.run(&Kernel::MseGrad {
        y,
        t,
        dy: z,
        n,
        scale: 0.37,
    });
    p.same("mse_grad", z, n, 1e-6);
    let parts = p.random(rows, false);
    let out = p.random(3, false);
    for (sum, target) in [(Sum::SquaredError, Some(t)), (Sum::Abs, None), (Sum::Square, None)] {
        p.run(&Kernel::RowSums {
            x: x.start(),
            t: target,
            sum,
            rows,
            cols,
            out: parts,
        });
        p.same(&format!("row sums {sum:?}"), parts, rows, 1e-5);
        for accumulate in [false, true] {
            p.run(&Kernel::Total {
                parts,
                n: rows,
                scale: 0.5,
                out: out.at(1),
                accumulate,
            });
            p.same(&format!("total of {sum:?}, accumulate {accumulate}"), out, 3, 1e-6);
        }
    }
    p.run(&Kernel::L1Grad {
        c: x,
        dc: y,
        n,
        g: 0.01,
    });
    p.same("l1_grad", y, n, 1e-6);
    let sums = p.put(&(0..cols).map(|j| (j as f32 * 0.77) % rows as f32).collect::<Vec<_>>());
    p.run(&Kernel::Kl {
        sums,
        dc: y,
        rows,
        cols,
        rho: 0.05,
        lambda: 0.1,
        out: out.at(2),
    });
    p.same("kl gradient", y, n, 1e-6);
    p.same("kl value", out, 3, 1e-6);
    let shape = Conv2dGeometry::new(3, 11, 9, 7, 4);
    let (conv_rows, o) = (5, 7);
    let image = p.random(conv_rows * 3 * 11 * 9, false);
    let patches = p.random(conv_rows * shape.positions() * shape.patch_len(), false);
    p.run(&Kernel::Im2Col {
        x: image,
        cols: patches,
        rows: conv_rows,
        shape,
    });
    p.same(
        "im2col",
        patches,
        conv_rows * shape.positions() * shape.patch_len(),
        0.0,
    );
    p.run(&Kernel::Col2Im {
        dcols: patches,
        dx: image,
        rows: conv_rows,
        shape,
    });
    p.same("col2im", image, conv_rows * 3 * 11 * 9, 1e-6);
    let zz = p.random(conv_rows * shape.positions() * o, false);
    let out_rows = p.random(conv_rows * shape.positions() * o, false);
    let cb = p.random(o, false);
    p.run(&Kernel::ConvOut {
        z: zz,
        y: out_rows,
        bias: cb.start(),
        rows: conv_rows,
        channels: o,
        positions: shape.positions(),
    });
    p.same("conv_out", out_rows, conv_rows * shape.positions() * o, 1e-6);
    p.run(&Kernel::ConvGrad {
        dy: out_rows,
        dz: zz,
        rows: conv_rows,
        channels: o,
        positions: shape.positions(),
    });
    p.same("conv_grad", zz, conv_rows * shape.positions() * o, 0.0);
    let pool = MaxPoolGeometry::new(3, 11, 9);
    let pooled = 3 * 5 * 4;
    let (py, pdy) = (p.random(conv_rows * pooled, false), p.random(conv_rows * pooled, false));
    let argmax = p.ids(&vec![0; conv_rows * pooled]);
    p.run(&Kernel::MaxPool {
        x: image,
        y: py,
        argmax,
        rows: conv_rows,
        shape: pool,
    });
    p.same("max_pool", py, conv_rows * pooled, 0.0);
    p.same_ids("max_pool positions", argmax, conv_rows * pooled);
    p.run(&Kernel::MaxPoolBackward {
        dy: pdy,
        argmax,
        dx: image,
        rows: conv_rows,
        shape: pool,
    });
    p.same("max_pool backward", image, conv_rows * 3 * 11 * 9, 0.0);
    p.run(&Kernel::Axpy {
        x: x.start(),
        y: y.at(0),
        n,
        a: 0.3,
    });
    p.same("axpy", y, n, 1e-6);
    // Adam: a finite loss updates, a NaN one halts this and every later step.
    let mut adam = Adam::new(1e-3, [(1, n)]);
    let (pm, v, halted) = (p.random(n, false), p.put(&vec![0.01; n]), p.put(&[0.0]));
    let losses = p.put(&[0.5, f32::NAN, 0.5]);
    for (step, expect_halted) in [(0, 0.0), (1, 1.0), (2, 1.0)] {
        let k = adam.advance();
        p.run(&Kernel::Adam {
            p: y.start(),
            g: x.start(),
            m: pm.start(),
            v: v.start(),
            n,
            step: k,
            loss: losses.at(step),
            halted,
        });
        p.same(&format!("adam step {step}"), y, n, 1e-6);
        p.same(&format!("adam step {step}: moments"), pm, n, 1e-6);
        p.same(&format!("adam step {step}: halted"), halted, 1, 0.0);
        let mut h = [0.0];
        p.gpu.download(halted.start(), &mut h).unwrap();
        assert_eq!(h[0], expect_halted, "step {step}");
    }
}

#[test]
fn every_layer_matches_the_cpu() {
    parity::every_layer_matches_the_cpu(&gpu);
}

#[test]
fn one_epoch_of_each_recipe_matches_the_cpu() {
    // The whole training set, as the CPU's epochs.
    for variant in ["fc", "topk16", "lifetime5", "kl1e-2", "conv"] {
        parity::one_epoch_matches_the_cpu(&gpu, variant, None, 1e-3);
    }
}

#[test]
fn batch_coupled_layers_decide_over_the_whole_batch() {
    parity::batch_coupled_layers_decide_over_the_whole_batch(&gpu);
}

#[test]
fn semisup_matches_the_cpu() {
    parity::semisup_matches_the_cpu(&gpu);
}

#[test]
fn checkpoints_move_between_devices() {
    parity::checkpoints_move_between_devices(&gpu);
}

#[test]
fn divergence_is_reported() {
    parity::divergence_is_reported(&gpu);
}

#[test]
fn a_missing_gpu_is_named() {
    let err = trainer::gpu::cuda::open(999)
        .err()
        .expect("no machine has 1000 GPUs")
        .to_string();
    assert!(err.contains("--device cuda:999") && err.contains("sees"), "{err}");
}
