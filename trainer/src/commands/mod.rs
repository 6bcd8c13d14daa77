//! The application: one module per `trainer` command, each an argument struct (parsed by the
//! binary with clap) and one function the binary calls. Run caching, the resume policy and the
//! experiments' dispatch live here, where tests reach them; `main.rs` only parses and calls.

// The argument structs' doc comments are `--help` text, placeholders such as `<variant>` included.
#![allow(rustdoc::invalid_html_tags)]

pub mod all;
pub mod bench;
pub mod convert;
pub mod eval;
pub mod export;
pub mod inspect;
pub mod list;
pub mod spec;
pub mod train;
pub mod upgrade;

use crate::mnist::Mnist;
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Where the MNIST files are.
#[derive(Args, Clone, Debug, Default)]
pub struct DataArgs {
    /// Directory with the four MNIST IDX files [default: data/mnist].
    #[arg(long)]
    pub data: Option<PathBuf>,
}

/// `data/mnist` relative to the working directory, else the copy bundled with the sources.
pub fn load_data(args: &DataArgs) -> Result<Mnist> {
    let dir = match &args.data {
        Some(d) => d.clone(),
        None => {
            let local = PathBuf::from("data/mnist");
            if local.is_dir() {
                local
            } else {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
            }
        }
    };
    Mnist::load(&dir).with_context(|| format!("loading MNIST from {}", dir.display()))
}

/// Every core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Prints `text` to stdout; a reader that stops early (`| head`) is not an error.
pub fn print_all(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
