//! Times the `conv` recipe's training step on one batch shard, layer by layer, on
//! one thread and on two threads each running its own shard at once (as the trainer does).
//!
//! The model is the `conv` recipe's own network, built by the recipe: four Conv2d 6x6
//! (1→8→8→8→8 channels, stride 1, no padding), each followed by LeakyReLU, MaxPool 2x2
//! (8x8x8 → 128), Linear 128→784, LeakyReLU, MSE against the input.
//!
//! ```sh
//! cargo run -p trainer --release --example conv_bench [-- STEPS [SHARD]]
//! ```
//!
//! Prints per-layer milliseconds per shard and GFLOP/s, then the conv+pool stack and the whole
//! step, single-threaded and with two threads, and the projected epoch: 60,000 images in 118
//! batches of 512, each batch two concurrent shards of 256 (one thread doing both shards
//! back to back for the single-threaded figure). GFLOP/s count the direct convolution's
//! multiply-adds, 2 FLOPs each (layers 2–4 run Winograd and do fewer), so they read as
//! direct-convolution-equivalent rates. Other work on the machine shows in the medians first:
//! the minimum over steps is printed next to them.

use ndarray::{s, Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Barrier;
use std::time::Instant;
use trainer::layers::conv2d::{self, Conv2dGeometry};
use trainer::layers::max_pool::{self, MaxPoolGeometry};
use trainer::layers::{leaky_relu, linear, mse};
use trainer::matmul::matmul;
use trainer::model::Layer;
use trainer::recipe;

const BATCHES_PER_EPOCH: f64 = 118.0;
const SLOPE: f32 = leaky_relu::SLOPE;

struct Net {
    convs: Vec<(Conv2dGeometry, Array2<f32>, Array1<f32>)>,
    pool: MaxPoolGeometry,
    lin_w: Array2<f32>,
    lin_b: Array1<f32>,
}

impl Net {
    /// The `conv` recipe's network with its initial weights, as the trainer builds it.
    fn new(rng: &mut ChaCha8Rng) -> Net {
        let config = recipe::find("conv").expect("the conv recipe").config(0, 1);
        let model = config
            .architecture
            .build(&config.input_shape, rng)
            .expect("conv builds on MNIST");
        let (mut convs, mut pool, mut head) = (Vec::new(), None, None);
        for layer in &model.layers {
            let value = |i: usize| model.params[i].value.clone();
            match *layer {
                Layer::Conv2d { weight, bias, geometry } => {
                    convs.push((geometry, value(weight), value(bias).row(0).to_owned()))
                }
                Layer::MaxPool2d { geometry } => pool = Some(geometry),
                Layer::Linear {
                    weight,
                    bias,
                    transposed,
                } => {
                    assert!(!transposed, "the conv decoder is untied");
                    head = Some((value(weight), value(bias).row(0).to_owned()));
                }
                Layer::LeakyRelu { slope } => assert_eq!(slope, SLOPE),
                ref other => panic!("the conv recipe has no {other:?} layer"),
            }
        }
        assert_eq!(convs.len(), 4);
        let (lin_w, lin_b) = head.expect("a linear decoder");
        Net {
            convs,
            pool: pool.expect("a max-pool"),
            lin_w,
            lin_b,
        }
    }

    /// Multiply-adds of one sample's step: convs forward and dW, dx except the first conv's,
    /// linear forward, dW and dx.
    fn macs(&self) -> (usize, usize) {
        let convs = self
            .convs
            .iter()
            .enumerate()
            .map(|(i, (g, _, _))| g.macs() * if i == 0 { 2 } else { 3 })
            .sum();
        (convs, 3 * 128 * 784)
    }
}

/// One thread's buffers for a shard.
struct Shard {
    x: Array2<f32>,
    /// Conv outputs before and after LeakyReLU, per conv.
    z: Vec<Array2<f32>>,
    a: Vec<Array2<f32>>,
    pooled: Array2<f32>,
    logits: Array2<f32>,
    out: Array2<f32>,
    d_out: Array2<f32>,
    d_logits: Array2<f32>,
    d_pooled: Array2<f32>,
    da: Vec<Array2<f32>>,
    dz: Vec<Array2<f32>>,
    dw: Vec<Array2<f32>>,
    db: Vec<Array1<f32>>,
    lin_dw: Array2<f32>,
    lin_db: Array1<f32>,
    argmax: Vec<u32>,
    scratch: Vec<f32>,
}

impl Shard {
    fn new(net: &Net, rows: usize, seed: u64) -> Shard {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let widths: Vec<usize> = net.convs.iter().map(|(g, _, _)| g.out_len()).collect();
        let zeros = |w: &usize| Array2::zeros((rows, *w));
        Shard {
            x: Array2::from_shape_fn((rows, 784), |_| rng.random_range(0.0..1.0)),
            z: widths.iter().map(zeros).collect(),
            a: widths.iter().map(zeros).collect(),
            pooled: Array2::zeros((rows, 128)),
            logits: Array2::zeros((rows, 784)),
            out: Array2::zeros((rows, 784)),
            d_out: Array2::zeros((rows, 784)),
            d_logits: Array2::zeros((rows, 784)),
            d_pooled: Array2::zeros((rows, 128)),
            da: widths.iter().map(zeros).collect(),
            dz: widths.iter().map(zeros).collect(),
            dw: net
                .convs
                .iter()
                .map(|(g, _, _)| Array2::zeros(g.weight_shape()))
                .collect(),
            db: net.convs.iter().map(|_| Array1::zeros(8)).collect(),
            lin_dw: Array2::zeros((784, 128)),
            lin_db: Array1::zeros(784),
            argmax: Vec::new(),
            scratch: Vec::new(),
        }
    }
}

/// Names of the timed stages, in order.
const STAGES: [&str; 15] = [
    "conv1 fwd",
    "conv2 fwd",
    "conv3 fwd",
    "conv4 fwd",
    "leaky fwd (x4)",
    "pool fwd",
    "linear+leaky+mse fwd",
    "linear+leaky bwd",
    "pool bwd",
    "leaky bwd (x4)",
    "conv4 bwd",
    "conv3 bwd",
    "conv2 bwd",
    "conv1 bwd (dW only)",
    "zero grads",
];

/// One forward and backward of the shard; adds each stage's seconds into `t`.
fn step(net: &Net, sh: &mut Shard, t: &mut [f64; STAGES.len()], with_head: bool) {
    let mut clock = Instant::now();
    let mut lap = |t: &mut [f64; STAGES.len()], i: usize| {
        let now = Instant::now();
        t[i] += (now - clock).as_secs_f64();
        clock = now;
    };
    let n = sh.x.nrows();
    for i in 0..4 {
        let (g, w, b) = &net.convs[i];
        let input = if i == 0 { sh.x.view() } else { sh.a[i - 1].view() };
        conv2d::forward(input, w.view(), b.view(), sh.z[i].view_mut(), g, &mut sh.scratch);
        lap(t, i);
        leaky_relu::forward(sh.z[i].view(), sh.a[i].view_mut(), SLOPE);
        lap(t, 4);
    }
    max_pool::forward(sh.a[3].view(), sh.pooled.view_mut(), &mut sh.argmax, &net.pool);
    lap(t, 5);
    if with_head {
        linear::forward(
            sh.pooled.view(),
            net.lin_w.view(),
            net.lin_b.view(),
            sh.logits.view_mut(),
        );
        leaky_relu::forward(sh.logits.view(), sh.out.view_mut(), SLOPE);
        mse::forward_backward(sh.out.view(), sh.x.view(), sh.d_out.view_mut(), 2 * n * 784);
        lap(t, 6);
        leaky_relu::backward(sh.out.view(), sh.d_out.view(), sh.d_logits.view_mut(), SLOPE);
        linear::backward(
            sh.pooled.view(),
            net.lin_w.view(),
            sh.d_logits.view(),
            sh.lin_dw.view_mut(),
            sh.lin_db.view_mut(),
            Some(sh.d_pooled.view_mut()),
        );
        lap(t, 7);
    } else {
        // The stack alone: some gradient for the pooled features.
        sh.d_pooled.assign(&sh.pooled);
        lap(t, 7);
    }
    max_pool::backward(sh.d_pooled.view(), &sh.argmax, sh.da[3].view_mut(), &net.pool);
    lap(t, 8);
    for i in (0..4).rev() {
        leaky_relu::backward(sh.a[i].view(), sh.da[i].view(), sh.dz[i].view_mut(), SLOPE);
        lap(t, 9);
        let (g, w, _) = &net.convs[i];
        let input = if i == 0 { sh.x.view() } else { sh.a[i - 1].view() };
        let dx = sh.da[..i].last_mut().map(|d| d.view_mut());
        conv2d::backward(
            input,
            w.view(),
            sh.dz[i].view(),
            sh.dw[i].view_mut(),
            sh.db[i].view_mut(),
            dx,
            g,
            &mut sh.scratch,
        );
        lap(t, 13 - i);
    }
    for g in &mut sh.dw {
        g.fill(0.0);
    }
    for g in &mut sh.db {
        g.fill(0.0);
    }
    sh.lin_dw.fill(0.0);
    sh.lin_db.fill(0.0);
    lap(t, 14);
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median and minimum seconds per step of `threads` threads each stepping its own shard, in
/// lock step.
fn concurrent(net: &Net, threads: usize, rows: usize, steps: usize, with_head: bool) -> (f64, f64) {
    let barrier = Barrier::new(threads);
    let per_step: Vec<Vec<f64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|tid| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut sh = Shard::new(net, rows, 100 + tid as u64);
                    let mut t = [0.0; STAGES.len()];
                    let mut times = Vec::with_capacity(steps);
                    for s in 0..steps + 2 {
                        barrier.wait();
                        let start = Instant::now();
                        step(net, &mut sh, &mut t, with_head);
                        barrier.wait();
                        if s >= 2 {
                            times.push(start.elapsed().as_secs_f64());
                        }
                    }
                    times
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bench thread")).collect()
    });
    // A step ends when the slower thread is done: the latest end, from each thread's view.
    let mut worst: Vec<f64> = (0..steps)
        .map(|s| per_step.iter().map(|v| v[s]).fold(0.0, f64::max))
        .collect();
    (median(&mut worst), worst[0])
}

/// im2col + one GEMM `(16·OH·OW, C·k·k)·(C·k·k, O)` per 16 samples, for comparison with the
/// layer's kernels (forward only). Returns the seconds spent copying and multiplying.
fn im2col_forward(
    x: &Array2<f32>,
    w: &Array2<f32>,
    g: &Conv2dGeometry,
    col: &mut Array2<f32>,
    y: &mut Array2<f32>,
) -> (f64, f64) {
    let (k, oh, ow) = (g.kernel, g.out_h(), g.out_w());
    let per = oh * ow;
    let block = col.nrows() / per;
    let (mut t_copy, mut t_gemm) = (0.0, 0.0);
    for n0 in (0..x.nrows()).step_by(block) {
        let start = Instant::now();
        let rows = block.min(x.nrows() - n0);
        for r in 0..rows {
            let xr = x.row(n0 + r);
            let xr = xr.as_slice().expect("contiguous rows");
            for i in 0..oh {
                for j in 0..ow {
                    let mut cr = col.row_mut(r * per + i * ow + j);
                    let cr = cr.as_slice_mut().expect("contiguous rows");
                    for c in 0..g.in_channels {
                        for p in 0..k {
                            let src = (c * g.in_h + i + p) * g.in_w + j;
                            let dst = (c * k + p) * k;
                            cr[dst..dst + k].copy_from_slice(&xr[src..src + k]);
                        }
                    }
                }
            }
        }
        let mid = Instant::now();
        let m = rows * per;
        matmul(col.slice(s![..m, ..]), w.t(), y.slice_mut(s![..m, ..]), false);
        t_copy += (mid - start).as_secs_f64();
        t_gemm += mid.elapsed().as_secs_f64();
    }
    (t_copy, t_gemm)
}

/// The transposed form: `Yᵀ = W·colᵀ`, `(O, C·k·k)·(C·k·k, 16·OH·OW)` per 16 samples, where
/// colᵀ's rows are contiguous runs of input rows. Returns the seconds spent copying and
/// multiplying.
fn im2col_t_forward(
    x: &Array2<f32>,
    w: &Array2<f32>,
    g: &Conv2dGeometry,
    col_t: &mut Array2<f32>,
    y_t: &mut Array2<f32>,
) -> (f64, f64) {
    let (k, oh, ow) = (g.kernel, g.out_h(), g.out_w());
    let per = oh * ow;
    let block = col_t.ncols() / per;
    let (mut t_copy, mut t_gemm) = (0.0, 0.0);
    for n0 in (0..x.nrows()).step_by(block) {
        let start = Instant::now();
        let rows = block.min(x.nrows() - n0);
        for c in 0..g.in_channels {
            for p in 0..k {
                for q in 0..k {
                    let mut cr = col_t.row_mut((c * k + p) * k + q);
                    let cr = cr.as_slice_mut().expect("contiguous rows");
                    for r in 0..rows {
                        let xr = x.row(n0 + r);
                        let xr = xr.as_slice().expect("contiguous rows");
                        for i in 0..oh {
                            let src = (c * g.in_h + i + p) * g.in_w + q;
                            let dst = r * per + i * ow;
                            cr[dst..dst + ow].copy_from_slice(&xr[src..src + ow]);
                        }
                    }
                }
            }
        }
        let mid = Instant::now();
        let m = rows * per;
        matmul(w.view(), col_t.slice(s![.., ..m]), y_t.slice_mut(s![.., ..m]), false);
        t_copy += (mid - start).as_secs_f64();
        t_gemm += mid.elapsed().as_secs_f64();
    }
    (t_copy, t_gemm)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("STEPS [SHARD]"))
        .collect();
    let steps = args.first().copied().unwrap_or(30);
    let rows = args.get(1).copied().unwrap_or(256);
    let net = Net::new(&mut ChaCha8Rng::seed_from_u64(0));
    let (conv_macs, lin_macs) = net.macs();
    let stack_flop = 2.0 * (conv_macs * rows) as f64;
    let step_flop = 2.0 * ((conv_macs + lin_macs) * rows) as f64;
    println!(
        "conv_bench: shard of {rows} rows, {steps} timed steps, backend {}",
        trainer::matmul::backend_name()
    );
    println!(
        "multiply-adds per sample: convs {:.2}M (fwd + dW + dx but conv1's), linear {:.2}M",
        conv_macs as f64 / 1e6,
        lin_macs as f64 / 1e6
    );

    // Per stage, one thread: median and minimum over the steps (the minimum is the figure to
    // trust on a machine with other work on it).
    let mut sh = Shard::new(&net, rows, 1);
    let mut per_step = Vec::new();
    for s in 0..steps + 3 {
        let mut t = [0.0; STAGES.len()];
        step(&net, &mut sh, &mut t, true);
        if s >= 3 {
            per_step.push(t);
        }
    }
    println!("\nper stage, one thread, median / min over steps:");
    let conv_flop = |i: usize, fwd: bool| {
        let m = net.convs[i].0.macs() * rows;
        2.0 * if fwd || i == 0 { m } else { 2 * m } as f64
    };
    for (i, name) in STAGES.iter().enumerate() {
        let mut v: Vec<f64> = per_step.iter().map(|t| t[i]).collect();
        let (med, min) = (median(&mut v) * 1e3, v[0] * 1e3);
        let flop = match i {
            0..=3 => Some(conv_flop(i, true)),
            10..=13 => Some(conv_flop(13 - i, false)),
            _ => None,
        };
        match flop {
            Some(f) => println!(
                "  {name:<24} {med:7.3} / {min:7.3} ms  {:6.1} / {:6.1} GFLOP/s",
                f / (med * 1e-3) / 1e9,
                f / (min * 1e-3) / 1e9
            ),
            None => println!("  {name:<24} {med:7.3} / {min:7.3} ms"),
        }
    }
    let mut totals: Vec<f64> = per_step.iter().map(|t| t.iter().sum()).collect();
    let (med, min) = (median(&mut totals), totals[0]);
    println!(
        "  {:<24} {:7.3} / {:7.3} ms  {:6.1} / {:6.1} GFLOP/s",
        "whole step",
        med * 1e3,
        min * 1e3,
        step_flop / med / 1e9,
        step_flop / min / 1e9
    );
    // The stack alone (4 convs + LeakyReLU + pool), then the whole step; 1 and 2 threads.
    println!("\nsteps, median / min; projected epoch = {BATCHES_PER_EPOCH} batches of 2 shards of {rows}:");
    for (label, with_head, flop) in [("conv+pool stack", false, stack_flop), ("whole model", true, step_flop)] {
        for threads in [1, 2] {
            let (med, min) = concurrent(&net, threads, rows, steps, with_head);
            // One thread runs a batch's two shards back to back; two run them at once.
            let per_batch = 2.0 / threads as f64;
            println!(
                "  {label:<16} {threads} thread{}: {:7.2} / {:7.2} ms per step of {threads} shard{} {:6.1} / {:6.1} GFLOP/s -> epoch {:5.2} / {:5.2} s",
                if threads == 1 { " " } else { "s" },
                med * 1e3,
                min * 1e3,
                if threads == 1 { " " } else { "s" },
                threads as f64 * flop / med / 1e9,
                threads as f64 * flop / min / 1e9,
                BATCHES_PER_EPOCH * per_batch * med,
                BATCHES_PER_EPOCH * per_batch * min,
            );
        }
    }

    // For the record: the forward pass by im2col + GEMM.
    println!("\nfor comparison, forward by im2col + gemm, 16 samples per GEMM, one thread, min of 6:");
    let mut x = sh.x.clone();
    for (i, (g, w, _)) in net.convs.iter().enumerate() {
        let per = g.out_h() * g.out_w();
        let mut col = Array2::zeros((16 * per, g.weight_shape().1));
        let mut y = Array2::zeros((16 * per, 8));
        let mut col_t = Array2::zeros((g.weight_shape().1, 16 * per));
        let mut y_t = Array2::zeros((8, 16 * per));
        let (mut copy, mut gemm, mut copy_t, mut gemm_t) = (f64::INFINITY, f64::INFINITY, f64::INFINITY, f64::INFINITY);
        for _ in 0..6 {
            let (c, g1) = im2col_forward(&x, w, g, &mut col, &mut y);
            (copy, gemm) = (copy.min(c), gemm.min(g1));
            let (c, g1) = im2col_t_forward(&x, w, g, &mut col_t, &mut y_t);
            (copy_t, gemm_t) = (copy_t.min(c), gemm_t.min(g1));
        }
        let f = conv_flop(i, true);
        println!(
            "  conv{} fwd  (N·OH·OW, Ckk)·(Ckk, O): im2col {:6.2} ms + gemm {:6.2} ms = {:5.1} GFLOP/s (gemm alone {:5.1}) | (O, Ckk)·(Ckk, N·OH·OW): {:6.2} + {:6.2} ms = {:5.1} GFLOP/s (gemm alone {:5.1})",
            i + 1,
            copy * 1e3,
            gemm * 1e3,
            f / (copy + gemm) / 1e9,
            f / gemm / 1e9,
            copy_t * 1e3,
            gemm_t * 1e3,
            f / (copy_t + gemm_t) / 1e9,
            f / gemm_t / 1e9,
        );
        x = sh.a[i].clone();
    }
}
