//! Prints the GPU kernels as PTX, compiled by NVRTC (no GPU needed): for a GPU machine without
//! NVRTC, which loads the file named by `TRAINER_CUDA_PTX` instead.
//!
//! ```text
//! cargo run -p trainer --release --features cuda --example cuda_ptx > kernels.ptx
//! ```

fn main() {
    match trainer::gpu::cuda::compile() {
        Ok(ptx) => print!("{}", ptx.to_src()),
        Err(e) => {
            eprintln!("error: compiling the kernels with NVRTC: {e}");
            std::process::exit(1);
        }
    }
}
