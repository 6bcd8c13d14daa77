//! A run's buffers on a device and the training step there: the whole batch forward, the loss
//! and any code penalty, backward, weight decay and Adam, with nothing read back until the
//! epoch ends. Forward and backward of each layer sit side by side, as in
//! [`crate::workspace`], whose arithmetic they repeat.
//!
//! Each batch's loss goes to its own slot of a device buffer; Adam skips a step whose loss is
//! NaN or infinite, and every step after it (the `halted` flag), so the weights stay those of
//! the last good step, and the host reports the divergence when it reads the losses.

use super::backend::{Act, At, Backend, Buf, Gemm, Ids, Kernel, Sum};
use super::DeviceError;
use crate::layers::lifetime_topk;
use crate::model::{Layer, Model};
use crate::optim::adam::{Adam, Constants};
use crate::recipe::{Config, Penalty};

/// What a step needs of a run's configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepConfig {
    /// Rows of a full batch (lifetime top-k keeps a fraction of it).
    pub batch_size: usize,
    /// A penalty on the codes.
    pub penalty: Option<Penalty>,
    /// L2 weight decay (0 for none).
    pub weight_decay: f32,
}

impl From<&Config> for StepConfig {
    fn from(c: &Config) -> StepConfig {
        StepConfig {
            batch_size: c.batch_size,
            penalty: c.penalty,
            weight_decay: c.weight_decay,
        }
    }
}

/// What a step's loss compares the network's output with.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// The input rows, gathered on the device from the training samples (mean squared error).
    Input,
    /// The corrupted input rows and the clean ones, drawn on the host (mean squared error
    /// against the clean rows).
    Noisy(&'a [f32], &'a [f32]),
    /// One class label a row (softmax cross-entropy; a batch's loss is the sum over its rows).
    Classes(&'a [u32]),
}

/// A device and, once a model is on it, the model's buffers.
pub struct Session {
    backend: Box<dyn Backend>,
    name: String,
    on: Option<Layout>,
}

/// The buffers of one model on the device.
struct Layout {
    /// Rows of the largest batch.
    capacity: usize,
    /// Input width.
    width: usize,
    /// The training samples, scaled, row after row.
    data: Buf,
    /// The epoch's order of the training samples.
    order: Ids,
    x: Buf,
    /// The clean rows of a denoising run (its input is corrupted on the host).
    clean: Option<Buf>,
    /// A batch's class labels.
    labels: Ids,
    acts: Vec<Buf>,
    dacts: Vec<Buf>,
    masks: Vec<Option<Buf>>,
    argmax: Vec<Option<Ids>>,
    /// Output width of every layer.
    widths: Vec<usize>,
    /// Every parameter, one after another (`offsets`, `values` in all), and their gradients
    /// and moments.
    params: Buf,
    grads: Buf,
    m: Buf,
    v: Buf,
    offsets: Vec<usize>,
    values: usize,
    /// What Adam updates: runs of neighbouring trainable parameters, `(offset, values)`.
    trainable: Vec<(usize, usize)>,
    /// What weight decay reaches: each trainable weight of a linear or convolution layer once,
    /// `(offset, rows, columns)`.
    decayed: Vec<(usize, usize, usize)>,
    /// Ones, for column sums as products.
    ones: Buf,
    /// Row sums before their total.
    partial: Buf,
    /// Column sums of the codes (KL).
    code_sums: Buf,
    /// Patches, their gradient and the product's two layouts for the convolutions.
    cols: Option<Buf>,
    dcols: Option<Buf>,
    z: Option<Buf>,
    /// One loss per batch of the epoch.
    losses: Buf,
    halted: Buf,
    /// Batches the loss buffer holds.
    batches: usize,
}

impl Layout {
    /// The input of layer `i`.
    fn input_of(&self, i: usize) -> Buf {
        if i == 0 {
            self.x
        } else {
            self.acts[i - 1]
        }
    }
}

/// A parameter's (or moment's) values in order.
fn values(a: &ndarray::Array2<f32>) -> &[f32] {
    a.as_slice().expect("parameters are standard arrays")
}

/// [`values`], to write.
fn values_mut(a: &mut ndarray::Array2<f32>) -> &mut [f32] {
    a.as_slice_mut().expect("parameters are standard arrays")
}

fn too_big(what: &str) -> DeviceError {
    DeviceError::Unsupported(format!("{what} does not fit the device's 32-bit sizes"))
}

impl Session {
    /// A session on `backend`, which the log and metrics call `name`.
    pub fn new(backend: Box<dyn Backend>, name: String) -> Session {
        Session {
            backend,
            name,
            on: None,
        }
    }

    /// The device as the log and `metrics.json` name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Forgets the model on the device: the next [`Session::load`] puts it there anew (a new
    /// phase changed the model, or the host changed the weights).
    pub fn invalidate(&mut self) {
        self.on = None;
        self.backend.free_all();
    }

    /// Whether a model is on the device.
    pub fn is_loaded(&self) -> bool {
        self.on.is_some()
    }

    /// Puts `model`, Adam's moments and the training samples `train` (scaled, `width` values a
    /// row) on the device, with buffers for `model` and batches of `capacity` rows (and their
    /// clean rows when `noisy`).
    pub fn load(
        &mut self,
        model: &Model,
        adam: &Adam,
        capacity: usize,
        noisy: bool,
        train: &[f32],
        width: usize,
    ) -> Result<(), DeviceError> {
        self.invalidate();
        // The convolutions' patch and product rows, `capacity · P` for the largest of them.
        let (mut patches, mut products, mut conv_rows) = (0, 0, 0);
        for layer in &model.layers {
            if let Layer::Conv2d { geometry: g, .. } = layer {
                conv_rows = conv_rows.max(capacity * g.positions());
                patches = patches.max(capacity * g.positions() * g.patch_len());
                products = products.max(capacity * g.positions() * g.out_channels);
            }
        }
        if patches > u32::MAX as usize {
            return Err(too_big("a convolution's patches"));
        }
        if train.len() > u32::MAX as usize || model.num_params() > u32::MAX as usize {
            return Err(too_big("the training set or the model"));
        }
        let widths = model.widths().map_err(DeviceError::Unsupported)?;
        let rows = train.len() / width.max(1);
        let batches = rows.div_ceil(capacity).max(1);
        let b = &mut self.backend;
        let data = b.alloc(train.len())?;
        b.upload(data.start(), train)?;
        let order = b.alloc_ids(rows)?;
        let x = b.alloc(capacity * width)?;
        let clean = if noisy { Some(b.alloc(capacity * width)?) } else { None };
        let labels = b.alloc_ids(capacity)?;
        let mut acts = Vec::new();
        let mut dacts = Vec::new();
        let mut masks = Vec::new();
        let mut argmax = Vec::new();
        for (layer, &w) in model.layers.iter().zip(&widths) {
            acts.push(b.alloc(capacity * w)?);
            dacts.push(b.alloc(capacity * w)?);
            masks.push(if layer.has_mask() {
                Some(b.alloc(capacity * w)?)
            } else {
                None
            });
            argmax.push(match layer {
                Layer::MaxPool2d { .. } => Some(b.alloc_ids(capacity * w)?),
                _ => None,
            });
        }
        let mut offsets = Vec::new();
        let mut total = 0;
        for p in &model.params {
            offsets.push(total);
            total += p.value.len();
        }
        let mut trainable: Vec<(usize, usize)> = Vec::new();
        for (param, &start) in model.params.iter().zip(&offsets).filter(|(p, _)| !p.frozen) {
            match trainable.last_mut() {
                Some(run) if run.0 + run.1 == start => run.1 += param.value.len(),
                _ => trainable.push((start, param.value.len())),
            }
        }
        let mut decayed: Vec<(usize, usize, usize)> = Vec::new();
        for layer in &model.layers {
            if let Layer::Linear { weight, .. } | Layer::Conv2d { weight, .. } = *layer {
                let (rows, cols) = model.params[weight].value.dim();
                let entry = (offsets[weight], rows, cols);
                if !model.params[weight].frozen && !decayed.contains(&entry) {
                    decayed.push(entry);
                }
            }
        }
        let params = b.alloc(total.max(1))?;
        let grads = b.alloc(total.max(1))?;
        let m = b.alloc(total.max(1))?;
        let v = b.alloc(total.max(1))?;
        // Scratch: the convolutions' patches and products, the largest of them.
        let scratch = |b: &mut Box<dyn Backend>, n: usize| -> Result<Option<Buf>, DeviceError> {
            if n == 0 {
                Ok(None)
            } else {
                b.alloc(n).map(Some)
            }
        };
        let cols = scratch(b, patches)?;
        let dcols = scratch(b, patches)?;
        let z = scratch(b, products)?;
        let ones_len = capacity.max(conv_rows);
        let ones = b.alloc(ones_len)?;
        b.run(&Kernel::Fill {
            x: ones.start(),
            n: ones_len,
            value: 1.0,
        })?;
        let widest_param = model.params.iter().map(|p| p.value.nrows()).max().unwrap_or(1);
        let partial = b.alloc(capacity.max(widest_param))?;
        let code_sums = b.alloc(model.code_width().max(1))?;
        let losses = b.alloc(batches)?;
        let halted = b.alloc(1)?;
        self.on = Some(Layout {
            widths,
            capacity,
            width,
            data,
            order,
            x,
            clean,
            labels,
            acts,
            dacts,
            masks,
            argmax,
            params,
            grads,
            m,
            v,
            offsets,
            values: total,
            trainable,
            decayed,
            ones,
            partial,
            code_sums,
            cols,
            dcols,
            z,
            losses,
            halted,
            batches,
        });
        self.put(model, adam)
    }

    /// Copies the weights of `model` and Adam's moments to the device: the host's copy is the
    /// one that counts at the start of every epoch.
    pub fn put(&mut self, model: &Model, adam: &Adam) -> Result<(), DeviceError> {
        let (b, l) = self.parts();
        let (ms, vs) = adam.moments();
        for (((p, mh), vh), &off) in model.params.iter().zip(ms).zip(vs).zip(&l.offsets) {
            b.upload(l.params.at(off), values(&p.value))?;
            b.upload(l.m.at(off), values(mh))?;
            b.upload(l.v.at(off), values(vh))?;
        }
        Ok(())
    }

    fn layout(&self) -> &Layout {
        self.on.as_ref().expect("a model is loaded")
    }

    /// The backend and the loaded model's buffers, to use together.
    fn parts(&mut self) -> (&mut dyn Backend, &Layout) {
        (self.backend.as_mut(), self.on.as_ref().expect("a model is loaded"))
    }

    /// Starts an epoch: the order of the training samples, losses cleared.
    pub fn begin_epoch(&mut self, order: &[u32]) -> Result<(), DeviceError> {
        let (ids, losses, batches, halted) = {
            let l = self.layout();
            (l.order, l.losses, l.batches, l.halted)
        };
        self.backend.upload_ids(ids, order)?;
        self.backend.run(&Kernel::Fill {
            x: losses.start(),
            n: batches,
            value: 0.0,
        })?;
        self.backend.run(&Kernel::Fill {
            x: halted.start(),
            n: 1,
            value: 0.0,
        })
    }

    /// The losses of the epoch's first `n` batches (waits for the device).
    pub fn losses(&mut self, n: usize) -> Result<Vec<f32>, DeviceError> {
        let losses = self.layout().losses;
        let mut out = vec![0.0; n];
        self.backend.download(losses.start(), &mut out)?;
        Ok(out)
    }

    /// Copies the weights and Adam's moments back into `model` and `adam`.
    pub fn store(&mut self, model: &mut Model, adam: &mut Adam) -> Result<(), DeviceError> {
        let (b, l) = self.parts();
        let (ms, vs) = adam.moments_mut();
        for (((p, mh), vh), &off) in model.params.iter_mut().zip(ms).zip(vs).zip(&l.offsets) {
            b.download(l.params.at(off), values_mut(&mut p.value))?;
            b.download(l.m.at(off), values_mut(mh))?;
            b.download(l.v.at(off), values_mut(vh))?;
        }
        Ok(())
    }

    /// The parameter gradients of the last step, one array per parameter.
    pub fn gradients(&mut self, model: &Model) -> Result<Vec<ndarray::Array2<f32>>, DeviceError> {
        let (b, l) = self.parts();
        let mut out = Vec::new();
        for (p, &off) in model.params.iter().zip(&l.offsets) {
            let mut g = ndarray::Array2::zeros(p.value.dim());
            b.download(l.grads.at(off), g.as_slice_mut().expect("a standard array"))?;
            out.push(g);
        }
        Ok(out)
    }

    /// One training step on rows `first..first + rows` of the epoch's order, batch `batch` of
    /// the epoch, its loss against `target`: loss and gradients, then Adam with `adam` unless
    /// `adam` is `None` (the gradients alone).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        model: &Model,
        config: &StepConfig,
        batch: usize,
        first: usize,
        rows: usize,
        target: Target<'_>,
        adam: Option<Constants>,
    ) -> Result<(), DeviceError> {
        let (b, l) = self.parts();
        assert!(rows <= l.capacity && batch < l.batches, "a batch the buffers hold");
        let (width, x, loss) = (l.width, l.x, l.losses.at(batch));
        // The input: drawn on the host for denoising, else gathered from the samples on the
        // device. A reconstruction's reference: the clean rows, or the input itself.
        let reference = match target {
            Target::Noisy(input, clean_rows) => {
                let clean = l.clean.expect("a session loaded for noise");
                b.upload(x.start(), input)?;
                b.upload(clean.start(), clean_rows)?;
                clean
            }
            Target::Input | Target::Classes(_) => {
                b.run(&Kernel::Gather {
                    data: l.data,
                    order: l.order,
                    first,
                    rows,
                    width,
                    out: x,
                })?;
                x
            }
        };
        b.run(&Kernel::Fill {
            x: l.grads.start(),
            n: l.values,
            value: 0.0,
        })?;
        let n_layers = model.layers.len();
        self.forward(model, config, rows)?;

        // The loss and its gradient.
        let (b, l) = self.parts();
        let (out, dout, partial) = (l.acts[n_layers - 1], l.dacts[n_layers - 1], l.partial);
        match target {
            Target::Classes(classes) => {
                b.upload_ids(l.labels, classes)?;
                b.run(&Kernel::SoftmaxCe {
                    z: out,
                    labels: l.labels,
                    dz: dout,
                    rows,
                    cols: l.widths[n_layers - 1],
                    total_rows: rows,
                    out: partial,
                })?;
                b.run(&Kernel::Total {
                    parts: partial,
                    n: rows,
                    scale: 1.0,
                    out: loss,
                    accumulate: false,
                })?;
            }
            Target::Input | Target::Noisy(..) => {
                let (t, values) = (reference, rows * width);
                b.run(&Kernel::RowSums {
                    x: out.start(),
                    t: Some(t),
                    sum: Sum::SquaredError,
                    rows,
                    cols: width,
                    out: partial,
                })?;
                b.run(&Kernel::Total {
                    parts: partial,
                    n: rows,
                    scale: 1.0 / values as f64,
                    out: loss,
                    accumulate: false,
                })?;
                b.run(&Kernel::MseGrad {
                    y: out,
                    t,
                    dy: dout,
                    n: values,
                    scale: 2.0 / values as f32,
                })?;
            }
        }

        // Decoder, the penalty's gradient on the codes, encoder.
        let code = model.code_after;
        let lowest = model.first_trainable_layer();
        self.backward(model, code..n_layers, rows)?;
        if let Some(penalty) = config.penalty {
            self.penalty(model, penalty, rows, loss)?;
        }
        self.backward(model, lowest.min(code)..code, rows)?;
        if config.weight_decay > 0.0 {
            self.weight_decay(config.weight_decay, loss)?;
        }
        if let Some(step) = adam {
            self.adam(step, loss)?;
        }
        Ok(())
    }

    /// Every layer forward on the loaded rows, in training mode.
    fn forward(&mut self, model: &Model, config: &StepConfig, rows: usize) -> Result<(), DeviceError> {
        let (b, l) = self.parts();
        let widths = &l.widths;
        let mut i = 0;
        while i < model.layers.len() {
            let input = l.input_of(i);
            let in_width = if i == 0 { model.input } else { widths[i - 1] };
            let (out, mask, offsets, params) = (l.acts[i], l.masks[i], &l.offsets, l.params);
            let n = rows * widths[i];
            // An activation right after a linear layer runs in the same kernel as its bias.
            let fused = |next: Option<&Layer>| match next {
                Some(Layer::LeakyRelu { slope }) => Some(Act::Leaky(*slope)),
                Some(Layer::Sigmoid) => Some(Act::Sigmoid),
                _ => None,
            };
            match model.layers[i] {
                Layer::Linear {
                    weight,
                    bias,
                    transposed,
                } => {
                    let (w, bias) = (params.at(offsets[weight]), params.at(offsets[bias]));
                    let act = fused(model.layers.get(i + 1)).map(|a| (a, l.acts[i + 1]));
                    b.gemm(&Gemm {
                        m: rows,
                        n: widths[i],
                        k: in_width,
                        a: input.start(),
                        a_t: false,
                        b: w,
                        b_t: !transposed,
                        c: out.start(),
                        accumulate: false,
                    })?;
                    b.run(&Kernel::BiasAct {
                        y: out,
                        bias,
                        rows,
                        cols: widths[i],
                        per: 1,
                        act,
                    })?;
                    if act.is_some() {
                        i += 1;
                    }
                }
                Layer::LeakyRelu { slope } => b.run(&Kernel::Activate {
                    x: input,
                    y: out,
                    n,
                    act: Act::Leaky(slope),
                })?,
                Layer::Sigmoid => b.run(&Kernel::Activate {
                    x: input,
                    y: out,
                    n,
                    act: Act::Sigmoid,
                })?,
                Layer::TopK { k } => {
                    let mask = mask.expect("a top-k layer has a mask");
                    let cols = widths[i];
                    b.run(&Kernel::TopK {
                        x: input,
                        mask,
                        rows,
                        cols,
                        k,
                    })?;
                    b.run(&Kernel::MaskMul {
                        x: input,
                        mask,
                        y: out,
                        n,
                    })?;
                }
                Layer::LifetimeTopK { fraction } => {
                    // The whole batch is on the device: the mask is chosen over all of it.
                    let mask = mask.expect("a lifetime top-k layer has a mask");
                    let k = lifetime_topk::kept(fraction, config.batch_size, rows);
                    b.run(&Kernel::LifetimeTopK {
                        x: input,
                        mask,
                        rows,
                        cols: widths[i],
                        k,
                    })?;
                    b.run(&Kernel::MaskMul {
                        x: input,
                        mask,
                        y: out,
                        n,
                    })?;
                }
                Layer::Conv2d {
                    weight,
                    bias,
                    geometry: g,
                } => {
                    let (w, bias) = (params.at(offsets[weight]), params.at(offsets[bias]));
                    let (cols, z) = (l.cols.expect("patch buffer"), l.z.expect("product buffer"));
                    let positions = g.positions();
                    b.run(&Kernel::Im2Col {
                        x: input,
                        cols,
                        rows,
                        shape: g,
                    })?;
                    b.gemm(&Gemm {
                        m: rows * positions,
                        n: g.out_channels,
                        k: g.patch_len(),
                        a: cols.start(),
                        a_t: false,
                        b: w,
                        b_t: true,
                        c: z.start(),
                        accumulate: false,
                    })?;
                    b.run(&Kernel::ConvOut {
                        z,
                        y: out,
                        bias,
                        rows,
                        channels: g.out_channels,
                        positions,
                    })?;
                }
                Layer::MaxPool2d { geometry: g } => {
                    let argmax = l.argmax[i].expect("a max-pool layer has positions");
                    b.run(&Kernel::MaxPool {
                        x: input,
                        y: out,
                        argmax,
                        rows,
                        shape: g,
                    })?;
                }
            }
            i += 1;
        }
        Ok(())
    }

    /// Back-propagates through layers `range`, last first, from the gradient of the last one's
    /// output; parameter gradients add up.
    fn backward(&mut self, model: &Model, range: std::ops::Range<usize>, rows: usize) -> Result<(), DeviceError> {
        let (b, l) = self.parts();
        let widths = &l.widths;
        let lowest = model.first_trainable_layer();
        for i in range.rev() {
            let input = l.input_of(i);
            let in_width = if i == 0 { model.input } else { widths[i - 1] };
            let (out, dy) = (l.acts[i], l.dacts[i]);
            let dx = (i > lowest).then(|| l.dacts[i - 1]);
            let (params, grads, offsets, ones) = (l.params, l.grads, &l.offsets, l.ones);
            let n = rows * widths[i];
            match model.layers[i] {
                Layer::Linear {
                    weight,
                    bias,
                    transposed,
                } => {
                    let (w, dw, db) = (
                        params.at(offsets[weight]),
                        grads.at(offsets[weight]),
                        grads.at(offsets[bias]),
                    );
                    let frozen = model.params[weight].frozen && model.params[bias].frozen;
                    if !frozen {
                        // dW += dyᵀ·x, stored (O, I); or xᵀ·dy for a weight stored (I, O).
                        let (a, bm, m, nn) = if transposed {
                            (input, dy, in_width, widths[i])
                        } else {
                            (dy, input, widths[i], in_width)
                        };
                        b.gemm(&Gemm {
                            m,
                            n: nn,
                            k: rows,
                            a: a.start(),
                            a_t: true,
                            b: bm.start(),
                            b_t: false,
                            c: dw,
                            accumulate: true,
                        })?;
                        // db += Σ rows of dy.
                        b.gemm(&Gemm {
                            m: 1,
                            n: widths[i],
                            k: rows,
                            a: ones.start(),
                            a_t: false,
                            b: dy.start(),
                            b_t: false,
                            c: db,
                            accumulate: true,
                        })?;
                    }
                    if let Some(dx) = dx {
                        // dx = dy·W.
                        b.gemm(&Gemm {
                            m: rows,
                            n: in_width,
                            k: widths[i],
                            a: dy.start(),
                            a_t: false,
                            b: w,
                            b_t: transposed,
                            c: dx.start(),
                            accumulate: false,
                        })?;
                    }
                }
                Layer::LeakyRelu { slope } => {
                    if let Some(dx) = dx {
                        b.run(&Kernel::ActBackward {
                            y: out,
                            dy,
                            dx,
                            n,
                            act: Act::Leaky(slope),
                        })?;
                    }
                }
                Layer::Sigmoid => {
                    if let Some(dx) = dx {
                        b.run(&Kernel::ActBackward {
                            y: out,
                            dy,
                            dx,
                            n,
                            act: Act::Sigmoid,
                        })?;
                    }
                }
                Layer::TopK { .. } | Layer::LifetimeTopK { .. } => {
                    if let Some(dx) = dx {
                        let mask = l.masks[i].expect("a top-k layer has a mask");
                        b.run(&Kernel::MaskMul { x: dy, mask, y: dx, n })?;
                    }
                }
                Layer::Conv2d {
                    weight,
                    bias,
                    geometry: g,
                } => {
                    let positions = g.positions();
                    let (w, dw, db) = (
                        params.at(offsets[weight]),
                        grads.at(offsets[weight]),
                        grads.at(offsets[bias]),
                    );
                    let (cols, dcols, dz) = (
                        l.cols.expect("patch buffer"),
                        l.dcols.expect("patch buffer"),
                        l.z.expect("product buffer"),
                    );
                    let (o, patch) = (g.out_channels, g.patch_len());
                    b.run(&Kernel::ConvGrad {
                        dy,
                        dz,
                        rows,
                        channels: o,
                        positions,
                    })?;
                    b.run(&Kernel::Im2Col {
                        x: input,
                        cols,
                        rows,
                        shape: g,
                    })?;
                    // dW += dzᵀ·patches; db += Σ rows of dz.
                    b.gemm(&Gemm {
                        m: o,
                        n: patch,
                        k: rows * positions,
                        a: dz.start(),
                        a_t: true,
                        b: cols.start(),
                        b_t: false,
                        c: dw,
                        accumulate: true,
                    })?;
                    b.gemm(&Gemm {
                        m: 1,
                        n: o,
                        k: rows * positions,
                        a: ones.start(),
                        a_t: false,
                        b: dz.start(),
                        b_t: false,
                        c: db,
                        accumulate: true,
                    })?;
                    if let Some(dx) = dx {
                        b.gemm(&Gemm {
                            m: rows * positions,
                            n: patch,
                            k: o,
                            a: dz.start(),
                            a_t: false,
                            b: w,
                            b_t: false,
                            c: dcols.start(),
                            accumulate: false,
                        })?;
                        b.run(&Kernel::Col2Im {
                            dcols,
                            dx,
                            rows,
                            shape: g,
                        })?;
                    }
                }
                Layer::MaxPool2d { geometry: g } => {
                    if let Some(dx) = dx {
                        let argmax = l.argmax[i].expect("a max-pool layer has positions");
                        b.run(&Kernel::MaxPoolBackward {
                            dy,
                            argmax,
                            dx,
                            rows,
                            shape: g,
                        })?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A code penalty: its gradient into the codes' and its value into `loss`.
    fn penalty(&mut self, model: &Model, penalty: Penalty, rows: usize, loss: At) -> Result<(), DeviceError> {
        let (b, l) = self.parts();
        let i = model.code_after - 1;
        let (c, dc, partial, ones, sums) = (l.acts[i], l.dacts[i], l.partial, l.ones, l.code_sums);
        let k = model.code_width();
        match penalty {
            Penalty::L1 { lambda } => {
                let total = rows * k;
                b.run(&Kernel::RowSums {
                    x: c.start(),
                    t: None,
                    sum: Sum::Abs,
                    rows,
                    cols: k,
                    out: partial,
                })?;
                b.run(&Kernel::Total {
                    parts: partial,
                    n: rows,
                    scale: f64::from(lambda) / total as f64,
                    out: loss,
                    accumulate: true,
                })?;
                b.run(&Kernel::L1Grad {
                    c,
                    dc,
                    n: total,
                    g: lambda / total as f32,
                })
            }
            Penalty::Kl { lambda, rho } => {
                b.gemm(&Gemm {
                    m: 1,
                    n: k,
                    k: rows,
                    a: ones.start(),
                    a_t: false,
                    b: c.start(),
                    b_t: false,
                    c: sums.start(),
                    accumulate: false,
                })?;
                b.run(&Kernel::Kl {
                    sums,
                    dc,
                    rows,
                    cols: k,
                    rho,
                    lambda,
                    out: loss,
                })
            }
        }
    }

    /// L2 weight decay as [`Model::weight_decay`]: `λ·w` into the gradient of every trainable
    /// weight of a linear or convolution layer (once for a tied one), `λ/2 · Σ w²` into `loss`.
    fn weight_decay(&mut self, lambda: f32, loss: At) -> Result<(), DeviceError> {
        let (b, l) = self.parts();
        for &(at, rows, cols) in &l.decayed {
            b.run(&Kernel::Axpy {
                x: l.params.at(at),
                y: l.grads.at(at),
                n: rows * cols,
                a: lambda,
            })?;
            b.run(&Kernel::RowSums {
                x: l.params.at(at),
                t: None,
                sum: Sum::Square,
                rows,
                cols,
                out: l.partial,
            })?;
            b.run(&Kernel::Total {
                parts: l.partial,
                n: rows,
                scale: 0.5 * f64::from(lambda),
                out: loss,
                accumulate: true,
            })?;
        }
        Ok(())
    }

    /// Adam on every trainable parameter: one kernel per run of neighbouring trainable tensors
    /// (found when the model was loaded).
    fn adam(&mut self, step: Constants, loss: At) -> Result<(), DeviceError> {
        let (b, l) = self.parts();
        for &(start, n) in &l.trainable {
            b.run(&Kernel::Adam {
                p: l.params.at(start),
                g: l.grads.at(start),
                m: l.m.at(start),
                v: l.v.at(start),
                n,
                step,
                loss,
                halted: l.halted,
            })?;
        }
        Ok(())
    }
}
