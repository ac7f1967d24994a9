//! Layers the generated models are built from.
//!
//! Each layer takes every size as a const parameter, derived ones included (head dim,
//! `3 * embed_dim`, conv output sizes): stable Rust cannot compute them from the others,
//! so `vit-macros` computes them from the spec and passes them in. A layer checks the
//! relations between its parameters at compile time (`CHECK` consts), so a hand-written
//! instantiation with inconsistent sizes fails to build too.

pub mod attention;
pub mod batch_norm;
pub mod block;
pub mod cnn;
pub mod functional;
pub mod init;
pub mod kernels;
pub mod mlp;
pub mod norm;
pub mod patches;
pub mod positions;
pub mod tokens;

pub use attention::{FusedAttention, PerHeadAttention};
pub use batch_norm::BatchNorm2d;
pub use block::EncoderBlock;
pub use cnn::{Conv2d, Pool};
pub use functional::{dropout, gelu, linear, linear_2d, linear_rows, relu, Activation};
pub use kernels::composite::{gelu as composite_gelu, own_source};
pub use kernels::{AttentionMaps, BatchStatistics, Epilogue, Kernels, Mode, Shareable};
pub use mlp::Mlp;
pub use norm::LayerNorm;
pub use patches::{PatchConv, PatchEmbed};

/// dfdx's prelude exports module *builders*; the built linear layer lives here.
pub use dfdx::nn::modules::Linear;
