//! Layers the generated models are built from.
//!
//! Each layer takes every size as a const parameter, derived ones included (head dim,
//! `3 * embed_dim`, conv output sizes): stable Rust cannot compute them from the others,
//! so `vit-macros` computes them from the spec and passes them in. A layer checks the
//! relations between its parameters at compile time (`CHECK` consts), so a hand-written
//! instantiation with inconsistent sizes fails to build too.

pub mod attention;
pub mod block;
pub mod cnn;
pub mod init;
pub mod mlp;
pub mod norm;
pub mod patches;
pub mod positions;
pub mod tokens;

pub use attention::{FusedAttention, PerHeadAttention};
pub use block::EncoderBlock;
pub use cnn::{Conv2d, Pool};
pub use mlp::Mlp;
pub use norm::LayerNorm;
pub use patches::{PatchConv, PatchEmbed};

/// Whether stochastic layers (dropout, drop path) are active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// Element-wise non-linearity between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The exact (erf) GELU, as PyTorch's `nn.GELU()`.
    Gelu,
    Relu,
}

use dfdx::prelude::*;

/// dfdx's prelude exports module *builders*; the built linear layer lives here.
pub use dfdx::nn::modules::Linear;

impl Activation {
    pub fn apply<S: Shape, D: Device<f32>, T: Tape<f32, D>>(
        self,
        x: Tensor<S, f32, D, T>,
    ) -> Tensor<S, f32, D, T> {
        match self {
            Activation::Gelu => x.accurate_gelu(),
            Activation::Relu => x.relu(),
        }
    }
}

/// Dropout that is the identity outside training or at `p == 0`.
pub fn dropout<S: Shape, D: Device<f32>, T: Tape<f32, D>>(
    x: Tensor<S, f32, D, T>,
    p: f32,
    mode: Mode,
) -> Tensor<S, f32, D, T> {
    if mode == Mode::Train && p > 0.0 {
        x.dropout(p)
    } else {
        x
    }
}
