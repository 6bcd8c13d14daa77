//! Adam and ReduceLROnPlateau, with PyTorch's semantics and defaults.

pub mod adam;
pub mod plateau;
