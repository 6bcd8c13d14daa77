//! The GPU backend (feature `cuda`): the CUDA driver, cuBLAS for the matrix products and the
//! kernels of `kernels.cu`, compiled by NVRTC for the GPU when the session opens. The
//! libraries are loaded at run time (cudarc's dynamic loading), so this builds anywhere; a
//! missing library, GPU or compiler is an error that names it.
//!
//! Everything runs in order on one stream, so no call waits for the GPU but the downloads.

use super::backend::{Act, At, Backend, Buf, Gemm, Ids, Kernel, Sum};
use super::{DeviceError, Session};
use cudarc::cublas::{sys::cublasOperation_t, CudaBlas};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The CUDA C source of the kernels.
pub const KERNELS: &str = include_str!("kernels.cu");

/// The kernels `kernels.cu` defines, by name.
pub const NAMES: &[&str] = &[
    "fill",
    "gather",
    "bias_act",
    "activation",
    "activation_backward",
    "mask_mul",
    "topk",
    "lifetime_topk",
    "mse_grad",
    "softmax_ce",
    "row_sums",
    "total",
    "l1_grad",
    "kl_grad",
    "kl_value",
    "im2col",
    "col2im",
    "conv_out",
    "conv_grad",
    "max_pool",
    "max_pool_backward",
    "axpy",
    "adam",
    "gemm_tiled",
];

/// Threads per block of the elementwise kernels and of the reductions (`THREADS` in
/// `kernels.cu`).
const THREADS: u32 = 256;

/// A kernel argument.
enum Arg {
    Ptr(u64),
    U32(u32),
    I32(i32),
    F32(f32),
    F64(f64),
}

/// A GPU with its stream, cuBLAS handle, kernels and buffers.
pub struct Cuda {
    device: String,
    name: String,
    stream: Arc<CudaStream>,
    /// cuBLAS, or `None` where it is missing: the kernels' own tiled product then.
    blas: Option<CudaBlas>,
    functions: HashMap<&'static str, CudaFunction>,
    f: Vec<(CudaSlice<f32>, u64)>,
    u: Vec<(CudaSlice<u32>, u64)>,
}

/// A call on `device` that failed, with the library's message.
fn failure(device: &str, what: &str, detail: &dyn std::fmt::Debug) -> DeviceError {
    DeviceError::Failed {
        device: device.into(),
        what: what.into(),
        detail: format!("{detail:?}"),
    }
}

/// Tries the names cudarc would load `lib` by; `Err` lists them when none loads.
fn loadable(lib: &str) -> Result<(), String> {
    let mut names = cudarc::get_lib_name_candidates(lib);
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    for name in &names {
        // SAFETY: loading a CUDA library runs only its initialisers, as cudarc's own loading does.
        if unsafe { libloading::Library::new(name) }.is_ok() {
            return Ok(());
        }
    }
    Err(names.join(", "))
}

/// [`loadable`] as the error of `--device`.
fn probe(device: &str, lib: &str, what: &'static str, toolkit: &'static str) -> Result<(), DeviceError> {
    loadable(lib).map_err(|tried| DeviceError::Library {
        device: device.into(),
        what,
        tried,
        toolkit,
    })
}

/// The kernels the GPU loads: the PTX file `TRAINER_CUDA_PTX` names, else [`compile`]'s.
pub fn kernels_ptx() -> Result<cudarc::nvrtc::Ptx, String> {
    match std::env::var_os(PTX_ENV) {
        Some(path) => std::fs::read_to_string(&path)
            .map(cudarc::nvrtc::Ptx::from_src)
            .map_err(|e| format!("reading {PTX_ENV}={}: {e}", Path::new(&path).display())),
        None => compile().map_err(|e| format!("compiling the kernels with NVRTC: {e}")),
    }
}

/// The environment variable that names a PTX file of the kernels to load instead of compiling
/// them: for a machine without NVRTC (`cargo run -p trainer --example cuda_ptx --features cuda`
/// writes one on any machine that has NVRTC, GPU or not).
pub const PTX_ENV: &str = "TRAINER_CUDA_PTX";

/// The kernels as PTX, compiled by NVRTC (needs only the NVRTC library, no GPU); compiled once
/// a process (the no-argument run opens the GPU for every recipe). An error, not a panic, where
/// NVRTC is missing.
pub fn compile() -> Result<cudarc::nvrtc::Ptx, String> {
    static PTX: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let text = PTX.get_or_init(|| {
        loadable("nvrtc").map_err(|tried| {
            format!(
                "the NVRTC library could not be loaded (tried {tried}); install CUDA 12's NVRTC \
                 (libnvrtc.so.12, or `pip install nvidia-cuda-nvrtc-cu12`) and put its directory on \
                 LD_LIBRARY_PATH (a later CUDA's, such as libnvrtc.so.13, loads as libnvrtc.so, the \
                 name its toolkit installs)"
            )
        })?;
        let options = cudarc::nvrtc::CompileOptions {
            name: Some("kernels.cu".into()),
            ..Default::default()
        };
        cudarc::nvrtc::compile_ptx_with_opts(KERNELS, options)
            .map(|ptx| ptx.to_src())
            .map_err(|e| format!("{e:?}"))
    });
    text.clone().map(cudarc::nvrtc::Ptx::from_src)
}

/// Opens GPU `ordinal` for training: a session that names the GPU.
pub fn open(ordinal: usize) -> Result<Session, DeviceError> {
    let backend = Cuda::open(ordinal)?;
    let name = backend.name.clone();
    Ok(Session::new(Box::new(backend), name))
}

impl Cuda {
    /// Opens GPU `ordinal`: checks the libraries, compiles (or loads) the kernels.
    pub fn open(ordinal: usize) -> Result<Cuda, DeviceError> {
        let device = format!("cuda:{ordinal}");
        let failed = |what: &str, e: &dyn std::fmt::Debug| failure(&device, what, e);
        probe(&device, "cuda", "driver", "")?;
        if std::env::var_os(PTX_ENV).is_none() {
            probe(
                &device,
                "nvrtc",
                "NVRTC",
                " and NVRTC (CUDA 12: libnvrtc.so.12; a later CUDA's as libnvrtc.so), or set \
                 TRAINER_CUDA_PTX to the kernels' PTX",
            )?;
        }
        let with_cublas = probe(&device, "cublas", "cuBLAS", "").is_ok();
        let count = CudaContext::device_count().map_err(|e| failed("counting the GPUs", &e))?;
        if ordinal >= count.max(0) as usize {
            let found = match count {
                0 => "the CUDA driver sees no GPU".to_string(),
                1 => "the CUDA driver sees one GPU, cuda:0".to_string(),
                n => format!("the CUDA driver sees {n} GPUs, cuda:0 to cuda:{}", n - 1),
            };
            return Err(DeviceError::NoDevice { device, found });
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| failed("creating a context", &e))?;
        // One stream orders everything: cudarc's events between streams are not needed.
        // SAFETY: no buffer of this context exists yet, and all work goes to one stream.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.default_stream();
        let blas = if with_cublas {
            Some(CudaBlas::new(stream.clone()).map_err(|e| failed("creating the cuBLAS handle", &e))?)
        } else {
            None
        };
        let ptx = kernels_ptx().map_err(|detail| DeviceError::Failed {
            device: device.clone(),
            what: "the kernels".into(),
            detail,
        })?;
        let module = ctx.load_module(ptx).map_err(|e| failed("loading the kernels", &e))?;
        let mut functions = HashMap::new();
        for &name in NAMES {
            let f = module
                .load_function(name)
                .map_err(|e| failed(&format!("kernel {name}"), &e))?;
            functions.insert(name, f);
        }
        let gpu = ctx.name().unwrap_or_else(|_| "unnamed GPU".into());
        let products = if blas.is_some() {
            ""
        } else {
            ", own products: no cuBLAS"
        };
        let name = format!("{device} ({gpu}{products})");
        Ok(Cuda {
            device,
            name,
            stream,
            blas,
            functions,
            f: Vec::new(),
            u: Vec::new(),
        })
    }

    /// The GPU as the log names it: `cuda:N (name)`.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn failed(&self, what: &str, detail: impl std::fmt::Debug) -> DeviceError {
        failure(&self.device, what, &detail)
    }

    /// The device address of `at`.
    fn ptr(&self, at: At) -> u64 {
        self.f[at.buf.0].1 + 4 * at.offset as u64
    }

    fn buf(&self, b: Buf) -> Arg {
        Arg::Ptr(self.f[b.0].1)
    }

    fn at(&self, at: At) -> Arg {
        Arg::Ptr(self.ptr(at))
    }

    fn ids(&self, i: Ids) -> Arg {
        Arg::Ptr(self.u[i.0].1)
    }

    /// Launches `name` on `blocks` blocks of [`THREADS`] threads.
    fn launch(&self, name: &'static str, blocks: u32, args: &[Arg]) -> Result<(), DeviceError> {
        if blocks == 0 {
            return Ok(());
        }
        let f = &self.functions[name];
        let mut builder = self.stream.launch_builder(f);
        for a in args {
            match a {
                Arg::Ptr(v) => builder.arg(v),
                Arg::U32(v) => builder.arg(v),
                Arg::I32(v) => builder.arg(v),
                Arg::F32(v) => builder.arg(v),
                Arg::F64(v) => builder.arg(v),
            };
        }
        let config = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: every pointer is a live allocation of this context, offset within it, and
        // each kernel's argument list matches its signature in kernels.cu.
        unsafe { builder.launch(config) }
            .map(|_| ())
            .map_err(|e| self.failed(&format!("kernel {name}"), e))
    }

    /// One thread per value of `n`.
    fn each(&self, name: &'static str, n: usize, args: &[Arg]) -> Result<(), DeviceError> {
        self.launch(name, (n as u32).div_ceil(THREADS), args)
    }
}

fn u(n: usize) -> Arg {
    Arg::U32(n as u32)
}

fn act_args(act: Option<Act>) -> [Arg; 2] {
    match act {
        None => [Arg::I32(0), Arg::F32(0.0)],
        Some(Act::Leaky(slope)) => [Arg::I32(1), Arg::F32(slope)],
        Some(Act::Sigmoid) => [Arg::I32(2), Arg::F32(0.0)],
    }
}

impl Backend for Cuda {
    fn alloc(&mut self, len: usize) -> Result<Buf, DeviceError> {
        let s = self
            .stream
            .alloc_zeros::<f32>(len.max(1))
            .map_err(|e| self.failed(&format!("allocating {len} floats"), e))?;
        let (ptr, _) = s.device_ptr(&self.stream);
        self.f.push((s, ptr));
        Ok(Buf(self.f.len() - 1))
    }

    fn alloc_ids(&mut self, len: usize) -> Result<Ids, DeviceError> {
        let s = self
            .stream
            .alloc_zeros::<u32>(len.max(1))
            .map_err(|e| self.failed(&format!("allocating {len} indices"), e))?;
        let (ptr, _) = s.device_ptr(&self.stream);
        self.u.push((s, ptr));
        Ok(Ids(self.u.len() - 1))
    }

    fn free_all(&mut self) {
        self.f.clear();
        self.u.clear();
    }

    fn upload(&mut self, to: At, data: &[f32]) -> Result<(), DeviceError> {
        let mut view = self.f[to.buf.0].0.slice_mut(to.offset..to.offset + data.len());
        let copied = self.stream.memcpy_htod(data, &mut view);
        copied.map_err(|e| self.failed("copying to the GPU", e))
    }

    fn upload_ids(&mut self, to: Ids, data: &[u32]) -> Result<(), DeviceError> {
        let mut view = self.u[to.0].0.slice_mut(..data.len());
        let copied = self.stream.memcpy_htod(data, &mut view);
        copied.map_err(|e| self.failed("copying to the GPU", e))
    }

    fn download(&mut self, from: At, out: &mut [f32]) -> Result<(), DeviceError> {
        let view = self.f[from.buf.0].0.slice(from.offset..from.offset + out.len());
        self.stream
            .memcpy_dtoh(&view, out)
            .and_then(|_| self.stream.synchronize())
            .map_err(|e| self.failed("copying from the GPU", e))
    }

    fn download_ids(&mut self, from: Ids, out: &mut [u32]) -> Result<(), DeviceError> {
        let view = self.u[from.0].0.slice(..out.len());
        self.stream
            .memcpy_dtoh(&view, out)
            .and_then(|_| self.stream.synchronize())
            .map_err(|e| self.failed("copying from the GPU", e))
    }

    fn gemm(&mut self, g: &Gemm) -> Result<(), DeviceError> {
        // cuBLAS is column-major: the row-major C = op(A)·op(B) is the column-major
        // Cᵀ = op(B)ᵀ·op(A)ᵀ, with each stored matrix read as its own transpose.
        let op = |t: bool| {
            if t {
                cublasOperation_t::CUBLAS_OP_T
            } else {
                cublasOperation_t::CUBLAS_OP_N
            }
        };
        let lda = if g.a_t { g.m } else { g.k };
        let ldb = if g.b_t { g.k } else { g.n };
        let (alpha, beta) = (1f32, if g.accumulate { 1f32 } else { 0f32 });
        if g.m == 0 || g.n == 0 {
            return Ok(());
        }
        let Some(blas) = &self.blas else {
            let tiles = g.m.div_ceil(16) * g.n.div_ceil(16);
            return self.launch(
                "gemm_tiled",
                tiles as u32,
                &[
                    self.at(g.a),
                    self.at(g.b),
                    self.at(g.c),
                    u(g.m),
                    u(g.n),
                    u(g.k),
                    Arg::I32(g.a_t as i32),
                    Arg::I32(g.b_t as i32),
                    Arg::I32(g.accumulate as i32),
                ],
            );
        };
        // SAFETY: the pointers address live allocations holding the matrices the sizes describe.
        unsafe {
            cudarc::cublas::result::sgemm(
                *blas.handle(),
                op(g.b_t),
                op(g.a_t),
                g.n as i32,
                g.m as i32,
                g.k as i32,
                &alpha,
                self.ptr(g.b) as *const f32,
                ldb.max(1) as i32,
                self.ptr(g.a) as *const f32,
                lda.max(1) as i32,
                &beta,
                self.ptr(g.c) as *mut f32,
                g.n.max(1) as i32,
            )
        }
        .map_err(|e| self.failed("cublasSgemm", e))
    }

    fn run(&mut self, kernel: &Kernel) -> Result<(), DeviceError> {
        match *kernel {
            Kernel::Fill { x, n, value } => self.each("fill", n, &[self.at(x), u(n), Arg::F32(value)]),
            Kernel::Gather {
                data,
                order,
                first,
                rows,
                width,
                out,
            } => self.each(
                "gather",
                rows * width,
                &[
                    self.buf(data),
                    self.ids(order),
                    u(first),
                    u(rows),
                    u(width),
                    self.buf(out),
                ],
            ),
            Kernel::BiasAct {
                y,
                bias,
                rows,
                cols,
                per,
                act,
            } => {
                let [kind, slope] = act_args(act.map(|a| a.0));
                let z = act.map_or(Arg::Ptr(0), |(_, z)| self.buf(z));
                self.each(
                    "bias_act",
                    rows * cols,
                    &[self.buf(y), self.at(bias), u(rows), u(cols), u(per), kind, slope, z],
                )
            }
            Kernel::Activate { x, y, n, act } => {
                let [kind, slope] = act_args(Some(act));
                self.each("activation", n, &[self.buf(x), self.buf(y), u(n), kind, slope])
            }
            Kernel::ActBackward { y, dy, dx, n, act } => {
                let [kind, slope] = act_args(Some(act));
                self.each(
                    "activation_backward",
                    n,
                    &[self.buf(y), self.buf(dy), self.buf(dx), u(n), kind, slope],
                )
            }
            Kernel::MaskMul { x, mask, y, n } => {
                self.each("mask_mul", n, &[self.buf(x), self.buf(mask), self.buf(y), u(n)])
            }
            Kernel::TopK { x, mask, rows, cols, k } => self.each(
                "topk",
                rows * cols,
                &[self.buf(x), self.buf(mask), u(rows), u(cols), u(k)],
            ),
            Kernel::LifetimeTopK { x, mask, rows, cols, k } => self.each(
                "lifetime_topk",
                rows * cols,
                &[self.buf(x), self.buf(mask), u(rows), u(cols), u(k)],
            ),
            Kernel::SoftmaxCe {
                z,
                labels,
                dz,
                rows,
                cols,
                total_rows,
                out,
            } => self.each(
                "softmax_ce",
                rows,
                &[
                    self.buf(z),
                    self.ids(labels),
                    self.buf(dz),
                    u(rows),
                    u(cols),
                    Arg::F64(1.0 / total_rows as f64),
                    self.buf(out),
                ],
            ),
            Kernel::MseGrad { y, t, dy, n, scale } => self.each(
                "mse_grad",
                n,
                &[self.buf(y), self.buf(t), self.buf(dy), u(n), Arg::F32(scale)],
            ),
            Kernel::RowSums {
                x,
                t,
                sum,
                rows,
                cols,
                out,
            } => {
                let kind = match sum {
                    Sum::SquaredError => 0,
                    Sum::Abs => 1,
                    Sum::Square => 2,
                };
                let t = t.map_or(Arg::Ptr(0), |t| self.buf(t));
                self.launch(
                    "row_sums",
                    rows as u32,
                    &[self.at(x), t, Arg::I32(kind), u(rows), u(cols), self.buf(out)],
                )
            }
            Kernel::Total {
                parts,
                n,
                scale,
                out,
                accumulate,
            } => self.launch(
                "total",
                1,
                &[
                    self.buf(parts),
                    u(n),
                    Arg::F64(scale),
                    self.at(out),
                    Arg::I32(accumulate as i32),
                ],
            ),
            Kernel::L1Grad { c, dc, n, g } => self.each("l1_grad", n, &[self.buf(c), self.buf(dc), u(n), Arg::F32(g)]),
            Kernel::Kl {
                sums,
                dc,
                rows,
                cols,
                rho,
                lambda,
                out,
            } => {
                self.each(
                    "kl_grad",
                    rows * cols,
                    &[
                        self.buf(sums),
                        self.buf(dc),
                        u(rows),
                        u(cols),
                        Arg::F64(rho),
                        Arg::F64(lambda),
                    ],
                )?;
                self.launch(
                    "kl_value",
                    1,
                    &[
                        self.buf(sums),
                        u(rows),
                        u(cols),
                        Arg::F64(rho),
                        Arg::F64(lambda),
                        self.at(out),
                    ],
                )
            }
            Kernel::Im2Col {
                x,
                cols,
                rows,
                shape: s,
            } => self.each(
                "im2col",
                rows * s.positions() * s.patch_len(),
                &[
                    self.buf(x),
                    self.buf(cols),
                    u(rows),
                    u(s.in_channels),
                    u(s.in_h),
                    u(s.in_w),
                    u(s.kernel),
                ],
            ),
            Kernel::Col2Im {
                dcols,
                dx,
                rows,
                shape: s,
            } => self.each(
                "col2im",
                rows * s.in_len(),
                &[
                    self.buf(dcols),
                    self.buf(dx),
                    u(rows),
                    u(s.in_channels),
                    u(s.in_h),
                    u(s.in_w),
                    u(s.kernel),
                ],
            ),
            Kernel::ConvOut {
                z,
                y,
                bias,
                rows,
                channels,
                positions,
            } => self.each(
                "conv_out",
                rows * channels * positions,
                &[
                    self.buf(z),
                    self.buf(y),
                    self.at(bias),
                    u(rows),
                    u(channels),
                    u(positions),
                ],
            ),
            Kernel::ConvGrad {
                dy,
                dz,
                rows,
                channels,
                positions,
            } => self.each(
                "conv_grad",
                rows * channels * positions,
                &[self.buf(dy), self.buf(dz), u(rows), u(channels), u(positions)],
            ),
            Kernel::MaxPool {
                x,
                y,
                argmax,
                rows,
                shape: s,
            } => self.each(
                "max_pool",
                rows * s.out_len(),
                &[
                    self.buf(x),
                    self.buf(y),
                    self.ids(argmax),
                    u(rows),
                    u(s.channels),
                    u(s.in_h),
                    u(s.in_w),
                ],
            ),
            Kernel::MaxPoolBackward {
                dy,
                argmax,
                dx,
                rows,
                shape: s,
            } => self.each(
                "max_pool_backward",
                rows * s.in_len(),
                &[
                    self.buf(dy),
                    self.ids(argmax),
                    self.buf(dx),
                    u(rows),
                    u(s.channels),
                    u(s.in_h),
                    u(s.in_w),
                ],
            ),
            Kernel::Axpy { x, y, n, a } => self.each("axpy", n, &[self.at(x), self.at(y), u(n), Arg::F32(a)]),
            Kernel::Adam {
                p,
                g,
                m,
                v,
                n,
                step,
                loss,
                halted,
            } => self.each(
                "adam",
                n,
                &[
                    self.at(p),
                    self.at(g),
                    self.at(m),
                    self.at(v),
                    u(n),
                    Arg::F32(step.one_minus_b1),
                    Arg::F32(step.b2),
                    Arg::F32(step.one_minus_b2),
                    Arg::F32(step.step_size),
                    Arg::F32(step.bc2_sqrt),
                    Arg::F32(step.eps),
                    self.at(loss),
                    self.buf(halted),
                ],
            ),
        }
    }
}
