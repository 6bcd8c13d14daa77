//! Layers: each module holds one layer's forward and backward side by side.
//!
//! Forward writes the layer's output; backward reads what forward kept (input or output) and
//! *adds* into the parameter gradients, so a weight used twice (the tied pair) sums both uses.

pub mod conv2d;
pub mod kl;
pub mod l1;
pub mod leaky_relu;
pub mod lifetime_topk;
pub mod linear;
pub mod max_pool;
pub mod mse;
pub mod sigmoid;
pub mod softmax_ce;
pub mod topk;
pub mod whole_batch;

#[cfg(test)]
pub(crate) mod gradcheck;
