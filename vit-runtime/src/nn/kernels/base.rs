//! The ground floor of the kernels: the types the kernels and the layers above them share,
//! and reading a tensor out of dfdx's storage.

use dfdx::prelude::*;

/// Whether stochastic layers (dropout, drop path) are active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// One training batch's per-channel statistics (a batch norm's), as the running statistics
/// take them.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStatistics {
    pub mean: Vec<f32>,
    /// Biased (divided by `count`), as the normalisation uses it.
    pub var: Vec<f32>,
    /// Values per channel: batch x height x width.
    pub count: usize,
}

/// One value per channel: a batch norm's weight, bias or running statistic.
pub type Channels<const C: usize, D> = Tensor<Rank1<C>, f32, D>;

/// A `(B, C, H, W)` batch of maps with a compile-time channel count and size.
pub type Images<B, const C: usize, const H: usize, const W: usize, D, T> =
    Tensor<(B, Const<C>, Const<H>, Const<W>), f32, D, T>;

/// Post-softmax attention weights of one block: `(batch, heads, tokens, tokens)`.
pub type AttentionMaps<B, const H: usize, const S: usize, D> =
    Tensor<(B, Const<H>, Const<S>, Const<S>), f32, D>;

/// A tensor's elements, in order, in one copy of its storage (dfdx's `as_vec` walks them
/// one index at a time). The tensor must be contiguous, as every fused op's input and every
/// parameter and gradient is.
pub fn read<S: Shape, D: Device<f32>, T>(t: &Tensor<S, f32, D, T>) -> Vec<f32> {
    let mut data = vec![0.0; t.shape().num_elements()];
    t.copy_into(&mut data);
    data
}

/// Where q, k and v of token `s`, head `h`, feature `d` of image `b` live in a `qkv`
/// buffer: at `which * which_stride + b * batch_stride + h * head_stride + s * token_stride + d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QkvLayout {
    pub batch: usize,
    pub heads: usize,
    pub tokens: usize,
    pub head_dim: usize,
    pub which_stride: usize,
    pub batch_stride: usize,
    pub head_stride: usize,
    pub token_stride: usize,
}

impl QkvLayout {
    /// timm's fused `qkv` output `(B, S, 3 * DIM)`, i.e. `(B, S, 3, H, DH)`.
    pub fn fused(batch: usize, heads: usize, tokens: usize, head_dim: usize) -> Self {
        let dim = heads * head_dim;
        Self {
            batch,
            heads,
            tokens,
            head_dim,
            which_stride: dim,
            batch_stride: tokens * 3 * dim,
            head_stride: head_dim,
            token_stride: 3 * dim,
        }
    }

    /// The per-head maps' outputs stacked as `(3, H, B * S, DH)`.
    pub fn per_head(batch: usize, heads: usize, tokens: usize, head_dim: usize) -> Self {
        Self {
            batch,
            heads,
            tokens,
            head_dim,
            which_stride: heads * batch * tokens * head_dim,
            batch_stride: tokens * head_dim,
            head_stride: batch * tokens * head_dim,
            token_stride: head_dim,
        }
    }

    pub fn len(&self) -> usize {
        3 * self.batch * self.heads * self.tokens * self.head_dim
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A `(B, C, H, W)` batch of feature maps with dynamic dims, as the conv kernels take it.
pub type Maps<D, T> = Tensor<(usize, usize, usize, usize), f32, D, T>;

/// A conv or pool window: `k x k`, moved by `stride`, over a zero border of `padding`,
/// giving an `out.0 x out.1` output grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
    pub out: (usize, usize),
}

/// What a fused op applies to its result before writing it out, so that the activation
/// costs no pass over memory of its own (a CNN's `conv` then `relu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    Identity,
    /// `max(y, 0)`, with gradient 0 at 0 (as PyTorch).
    Relu,
}
