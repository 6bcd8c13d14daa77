//! Trains the tutorial's autoencoders on MNIST.
//!
//! Shape legend used in comments throughout: `N` rows of a batch (or shard), `D` input pixels
//! (784), `K` code units, `I`/`O` a layer's input/output width, `F` any feature width.
//! Matrices are row-major `(rows, columns)`; a weight is `(O, I)` as in PyTorch's `nn.Linear`.
//!
//! Where the compute lives: the layers ([`layers`]) do their arithmetic through
//! [`matmul::matmul`] and elementwise loops over ndarray views; [`workspace::Workspace`] holds
//! one thread's buffers and runs a shard forward and backward; [`train::Trainer`] splits each
//! batch into shards and sums their gradients. On a GPU ([`gpu`], the `cuda` feature) a
//! [`gpu::Session`] runs the whole batch's step instead, leaving recipes, the phase machine,
//! validation and checkpoints as they are.
//!
//! The rooms, each using only those before it: data ([`mnist`], [`noise`]) → layers
//! ([`layers`], [`matmul`]) → model ([`model`], [`workspace`]) → training ([`optim`],
//! [`recipe`], [`gpu`], [`checkpoint`], [`epoch`], [`train`]) → experiments ([`experiments`], [`pca`],
//! [`semisup`], drawing with [`figures`]) → reports ([`progress`], [`summary`]) → the commands
//! ([`commands`]), which the `trainer` binary parses arguments for and calls. The training loop
//! reports through [`epoch::Observer`] and hands a [`train::TestReport`] up; it draws nothing.

pub mod anomaly;
pub mod bench;
pub mod checkpoint;
pub mod commands;
pub mod data;
pub mod epoch;
pub mod experiments;
pub mod export;
pub mod figures;
pub mod gpu;
pub mod infer;
pub mod int8;
pub mod interrupt;
pub mod layers;
pub mod matmul;
pub mod mnist;
pub mod model;
pub mod noise;
pub mod optim;
pub mod pca;
pub mod progress;
pub mod provenance;
pub mod quantize;
pub mod recipe;
pub mod safetensors_export;
pub mod semisup;
pub mod simd;
pub mod spec;
pub mod summary;
pub mod tflite;
pub mod train;
pub mod upgrade;
pub mod workspace;
