//! Training on a GPU (`--device cuda[:N]`, the `cuda` feature).
//!
//! The CPU trainer splits a batch into shards, one per thread; a device takes the whole batch
//! at once. [`session::Session`] holds a run's buffers on the device (the training set, the
//! parameters, Adam's moments, every layer's outputs and gradients) and runs the training step
//! there as matrix products and kernels ([`backend`]); the host shuffles, draws the denoising
//! noise, keeps the phase machine, and gets the weights and moments back after every epoch,
//! where validation, checkpoints and metrics read them as from a CPU run. A checkpoint thus
//! never says where it was trained: a run resumes on either.
//!
//! - [`device`]: `cpu`, `cuda`, `cuda:N`, as the command line names them;
//! - [`backend`]: what the step asks of a device;
//! - [`host`]: the reference backend in plain Rust, on which the step is tested anywhere;
//! - `cuda` (feature `cuda`): cuBLAS and the CUDA C kernels of `kernels.cu`, compiled by NVRTC
//!   when the run starts;
//! - [`session`]: the step on a backend.

pub mod backend;
pub mod device;
pub mod host;
pub mod session;

#[cfg(feature = "cuda")]
pub mod cuda;

pub use device::Device;
pub use session::Session;

/// A session on `device`, `None` for the CPU. Fails, naming the cause, when the device cannot
/// be used; it never falls back to the CPU.
pub fn open(device: Device) -> Result<Option<Session>, DeviceError> {
    match device {
        Device::Cpu => Ok(None),
        #[cfg(feature = "cuda")]
        Device::Cuda(ordinal) => cuda::open(ordinal).map(Some),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(DeviceError::NotBuilt(device.to_string())),
    }
}

/// Why a device cannot train.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The binary was built without the `cuda` feature.
    #[error(
        "--device {0}: this trainer was built without the `cuda` feature; build it with \
         `cargo build -p trainer --release --features cuda` (README, \"Training on a GPU\")"
    )]
    NotBuilt(String),
    /// A CUDA library could not be loaded.
    #[error(
        "--device {device}: the CUDA {what} library could not be loaded (tried {tried}); install \
         the NVIDIA driver{toolkit} or put its directory on LD_LIBRARY_PATH"
    )]
    Library {
        /// The device asked for.
        device: String,
        /// `driver`, `cuBLAS` or `NVRTC`.
        what: &'static str,
        /// The file names tried.
        tried: String,
        /// What to install beyond the driver.
        toolkit: &'static str,
    },
    /// No such GPU.
    #[error("--device {device}: {found}")]
    NoDevice {
        /// The device asked for.
        device: String,
        /// What there is.
        found: String,
    },
    /// The driver, cuBLAS or a kernel failed.
    #[error("{device}: {what}: {detail}")]
    Failed {
        /// The device.
        device: String,
        /// The call.
        what: String,
        /// The library's message.
        detail: String,
    },
    /// The model has a layer the device step does not run.
    #[error("the device cannot train this model: {0}")]
    Unsupported(String),
}
