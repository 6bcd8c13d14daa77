//! Layers: each module holds one layer's forward and backward side by side.
//!
//! Forward writes the layer's output; backward reads what forward kept (input or output) and
//! *adds* into the parameter gradients, so a weight used twice (the tied pair) sums both uses.

pub mod leaky_relu;
pub mod linear;
pub mod mse;
pub mod sigmoid;

#[cfg(test)]
pub(crate) mod gradcheck;
